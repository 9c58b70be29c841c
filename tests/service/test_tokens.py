"""API tokens through `verifier token`: shown once, stored as a hash, revocable, audited."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from tests.service.conftest import Api
from verifier.cli import cli
from verifier.service.model import AuditAction, Role
from verifier.service.tokens import TOKEN_PREFIX, token_digest
from verifier.store import Store
from verifier.store.service_records import ServiceRecords


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def create(url: str, name: str, role: str) -> str:
    code, out, err = run("token", "create", "--name", name, "--role", role, "--database-url", url)
    assert code == 0, err
    return out.splitlines()[-1]


def test_create_prints_the_secret_once_and_stores_only_its_hash(database_url: str) -> None:
    secret = create(database_url, "ci-main", "scanner")
    assert secret.startswith(TOKEN_PREFIX) and len(secret) > 40
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT * FROM api_tokens")).mappings().all()
            dumped = repr(connection.execute(sa.text("SELECT * FROM audit_events")).all())
    finally:
        engine.dispose()
    assert len(rows) == 1
    assert rows[0]["token_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(rows) and secret not in dumped
    with Store.open(database_url) as store:
        found = ServiceRecords(store).authenticate(token_digest(secret))
    assert found is not None and found.name == "ci-main" and found.role is Role.SCANNER


def test_two_tokens_differ(sqlite_url: str) -> None:
    assert create(sqlite_url, "one", "viewer") != create(sqlite_url, "two", "viewer")


def test_revoked_token_no_longer_authenticates_and_is_listed(sqlite_url: str) -> None:
    secret = create(sqlite_url, "old", "admin")
    code, out, _ = run("token", "revoke", "old", "--database-url", sqlite_url)
    assert code == 0 and "revoked token old" in out
    with Store.open(sqlite_url) as store:
        records = ServiceRecords(store)
        assert records.authenticate(token_digest(secret)) is None
        events = records.audit_events()
    assert [(e.action, e.subject) for e in events] == [
        (AuditAction.TOKEN_REVOKED, "old"),
        (AuditAction.TOKEN_CREATED, "old"),
    ]
    assert all(e.actor.startswith("cli") for e in events)
    code, out, _ = run("token", "list", "--database-url", sqlite_url)
    assert code == 0
    (line,) = out.splitlines()
    assert line.startswith("old\tadmin\tcreated ") and "revoked " in line
    assert secret not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("revoke", "nobody"), "no token is named 'nobody'"),
        (("create", "--name", "Bad Name", "--role", "viewer"), "is not valid"),
        (("create", "--name", "x", "--role", "root"), "Invalid value for '--role'"),
    ],
)
def test_usage_errors(sqlite_url: str, args: tuple[str, ...], message: str) -> None:
    code, _, err = run("token", *args, "--database-url", sqlite_url)
    assert code == 2 and message in err


def test_names_are_never_reused(sqlite_url: str) -> None:
    create(sqlite_url, "dup", "viewer")
    assert run("token", "revoke", "dup", "--database-url", sqlite_url)[0] == 0
    code, _, err = run(
        "token", "create", "--name", "dup", "--role", "viewer", "--database-url", sqlite_url
    )
    assert code == 2 and "exists already" in err
    code, _, err = run("token", "revoke", "dup", "--database-url", sqlite_url)
    assert code == 2 and "already revoked" in err


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.allows(Role.VIEWER) and Role.SCANNER.allows(Role.SCANNER)
    assert not Role.VIEWER.allows(Role.SCANNER) and not Role.SCANNER.allows(Role.APPROVER)


def test_tokens_over_http(api: Api) -> None:
    created = api.call("POST", "/api/v1/tokens", json={"name": "ci-main", "role": "scanner"})
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    secret = created.json()["secret"]
    assert secret.startswith("vrf_") and created.json()["token"]["role"] == "scanner"
    assert created.json()["token"]["created_by"] == "token:admin-token"
    # The new token reads (scanner includes viewer) but does not manage tokens.
    as_new = {"Authorization": f"Bearer {secret}"}
    assert api.call("GET", "/api/v1/waivers", role=None, headers=as_new).status_code == 200
    assert api.call("GET", "/api/v1/tokens", role=None, headers=as_new).status_code == 403
    listed = api.call("GET", "/api/v1/tokens")
    assert "ci-main" in {t["name"] for t in listed.json()["tokens"]}
    assert secret not in listed.text  # never a secret again
    assert token_digest(secret) not in listed.text

    again = api.call("POST", "/api/v1/tokens", json={"name": "ci-main", "role": "viewer"})
    assert again.status_code == 409 and "never reused" in again.json()["detail"]
    bad = api.call("POST", "/api/v1/tokens", json={"name": "CI Main", "role": "viewer"})
    assert bad.status_code == 422
    assert api.call("POST", "/api/v1/tokens", json={"name": "x", "role": "root"}).status_code == 422

    revoked = api.call("POST", "/api/v1/tokens/ci-main/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_by"] == "token:admin-token"
    assert api.call("GET", "/api/v1/waivers", role=None, headers=as_new).status_code == 401
    twice = api.call("POST", "/api/v1/tokens/ci-main/revoke")
    assert twice.status_code == 409
    assert api.call("POST", "/api/v1/tokens/nobody/revoke").status_code == 404

    events = api.call("GET", "/api/v1/audit").json()["events"]
    mine = [(e["action"], e["actor"]) for e in events if e["subject"] == "ci-main"]
    assert mine == [("token.revoked", "token:admin-token"), ("token.created", "token:admin-token")]
