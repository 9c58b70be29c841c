"""Alembic environment: runs verifier's migrations on the connection the Store hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

from verifier.store.tables import Base, is_verifier_object

config = context.config
target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    """Run the pending migrations on `connection`, in its transaction when it has one."""
    context.configure(
        connection=connection, target_metadata=target_metadata, include_name=is_verifier_object
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through the Store's connection, or one made from `sqlalchemy.url`."""
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    # Only the alembic command line gets here, with a config file naming the database.
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    try:
        with engine.connect() as own_connection:
            run_on(own_connection)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    """Write the migration SQL instead of running it (`alembic upgrade head --sql`)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
