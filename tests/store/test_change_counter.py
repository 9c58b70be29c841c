"""The change counter (migration 0017): every change of what the gate reads moves it."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from verifier import __version__
from verifier.bans import BanKind
from verifier.model import ScanReport, ScanStatus
from verifier.pipeline import UNDECIDED, decide_report
from verifier.policy import default_policy_path, load_policy
from verifier.policy.schema import Waiver
from verifier.service.model import Role
from verifier.store.bans import BanRecords
from verifier.store.changes import ChangeCounter, change_count
from verifier.store.database import Store
from verifier.store.policies import PolicyRecords
from verifier.store.service_records import ServiceRecords
from verifier.store.tables import GATE_TABLES
from verifier.store.waivers import WaiverRecords

VERSIONS = Path(__file__).resolve().parents[2] / "migrations/versions"
#: The migrations that add triggers, each with its frozen `_TABLES`.
MIGRATIONS = ("0017_change_counter.py", "0019_policies_in_force.py")


def _report(name: str) -> ScanReport:
    commit = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()
    now = dt.datetime.now(dt.UTC).isoformat()
    report = ScanReport(
        scan_id=uuid.uuid4().hex,
        target=f"hf://acme/{name}@{commit}",
        started_at=now,
        finished_at=now,
        tool_version=__version__,
        status=ScanStatus.COMPLETE,
        files=(),
        findings=(),
        verdict=UNDECIDED,
        source={"type": "huggingface", "repo_id": f"acme/{name}", "commit": commit},
    )
    return decide_report(report, load_policy(default_policy_path()))


def test_the_migrations_cover_the_gate_tables() -> None:
    covered: list[str] = []
    for name in MIGRATIONS:
        spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), VERSIONS / name)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        covered += module._TABLES
    assert tuple(covered) == GATE_TABLES


def test_every_gate_table_has_its_triggers(database_url: str) -> None:
    with Store.open(database_url) as store, store._engine.connect() as connection:
        if store.backend == "postgresql":
            query = "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'change_counter_%'"
            expected = {f"change_counter_{t}{s}" for t in GATE_TABLES for s in ("", "_truncate")}
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            expected = {
                f"change_counter_{t}_{o}"
                for t in GATE_TABLES
                for o in ("insert", "update", "delete")
            }
        found = set(connection.execute(sa.text(query)).scalars())
    assert expected <= found


def _changes(store: Store) -> list[tuple[str, Callable[[], object]]]:
    records, bans, waivers = ServiceRecords(store), BanRecords(store), WaiverRecords(store)
    policies = PolicyRecords(store)
    report = _report("counted")
    subject = report.target
    ban = []
    return [
        ("scan recorded", lambda: store.record_scan(report)),
        (
            "decision recorded",
            lambda: bans.record_decision(
                report.scan_id,
                report.verdict,
                subject=subject,
                previous=None,
                cause="test",
                detail={},
                actor="test",
            ),
        ),
        (
            "ban made",
            lambda: ban.append(bans.add_ban(BanKind.PUBLISHER, "acme", reason="r", actor="t")),
        ),
        ("ban reach recorded", lambda: bans.record_reach(ban[0].ban_id, [subject])),
        ("ban lifted", lambda: bans.lift_ban(ban[0].ban_id, reason="r", actor="t")),
        (
            "waiver recorded",
            lambda: waivers.add_waiver(
                Waiver(
                    id="w-1",
                    rule="pickle.dangerous",
                    subject=subject,
                    expires=dt.date.today() + dt.timedelta(days=30),
                    approved_by="sec",
                    ticket="T-1",
                    justification="j",
                ),
                actor="t",
            ),
        ),
        ("waiver revoked", lambda: waivers.revoke_waiver("w-1", reason="r", actor="t")),
        (
            "token created",
            lambda: records.create_token(
                name="viewer", role=Role.VIEWER, token_sha256="0" * 64, actor="t"
            ),
        ),
        ("token revoked", lambda: records.revoke_token("viewer", actor="t")),
        ("policy put in force", lambda: policies.put_in_force("p", "sha256:1", actor="t")),
        ("another policy put in force", lambda: policies.put_in_force("p", "sha256:2", actor="t")),
    ]


def test_each_change_moves_the_counter(database_url: str) -> None:
    with Store.open(database_url) as store:
        for name, change in _changes(store):
            before = change_count(store)
            change()
            assert change_count(store) > before, name


def test_reads_leave_it(database_url: str) -> None:
    with Store.open(database_url) as store:
        before = change_count(store)
        ServiceRecords(store).authenticate("0" * 64)
        WaiverRecords(store).generation()
        ServiceRecords(store).audit_events(limit=5)
        PolicyRecords(store).in_force()
        assert change_count(store) == before


def test_putting_the_same_files_in_force_again_writes_nothing(database_url: str) -> None:
    with Store.open(database_url) as store:
        records = PolicyRecords(store)
        assert records.put_in_force("p", "sha256:1", actor="first")
        before = change_count(store)
        assert not records.put_in_force("p", "sha256:1", actor="second")
        assert change_count(store) == before
        found = records.in_force()
        assert found is not None and (found.files_digest, found.set_by) == ("sha256:1", "first")
        assert records.put_in_force("q", "sha256:2", actor="third")
        found = records.in_force()
        assert found is not None and (found.name, found.files_digest) == ("q", "sha256:2")


def test_a_schema_without_a_counter_is_a_store_error(tmp_path: Path) -> None:
    from verifier.errors import StoreError

    with Store(f"sqlite:///{tmp_path / 'empty.db'}") as store, pytest.raises(StoreError):
        change_count(store)


def test_the_kept_connection_reads_what_others_commit(database_url: str) -> None:
    with Store.open(database_url) as store, Store.open(database_url) as writer:
        counter = ChangeCounter(store)
        try:
            first = counter.read()
            assert first == change_count(store)
            BanRecords(writer).add_ban(BanKind.PUBLISHER, "acme", reason="r", actor="t")
            assert counter.read() > first
            counter.close()  # a later read connects again
            assert counter.read() == change_count(writer)
        finally:
            counter.close()


def test_a_kept_connection_without_a_counter_is_a_store_error(tmp_path: Path) -> None:
    from verifier.errors import StoreError

    with Store(f"sqlite:///{tmp_path / 'empty.db'}") as store:
        counter = ChangeCounter(store)
        with pytest.raises(StoreError, match="change counter"):
            counter.read()
        counter.close()
