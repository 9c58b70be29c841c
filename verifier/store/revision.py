"""The schema revision this verifier writes, known without loading Alembic."""

#: The newest migration in `migrations/versions`; a test keeps it equal to alembic's head.
#: Knowing it lets a store that is already up to date skip importing alembic at all (and lets
#: `verifier scan` record in SQLite without SQLAlchemy: `sqlite_recorder`).
SCHEMA_HEAD = "0019"
