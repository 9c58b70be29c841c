"""A ban made while a scan records: the scan's recorded decision sees it (docs/policy.md, "Bans").

The window: the scan looked up the bans in force, then `verifier ban` recorded a ban and
decided again every recorded model it reaches, before the scan was recorded. That
re-decision cannot see the scan, and the scan's decision is newer than the ban; so the
recording transaction checks that no ban was made or lifted since the lookup, and the scan
is decided again when one was.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from verifier.bans import BAN_RECHECKS
from verifier.cli import cli
from verifier.errors import BansChangedError
from verifier.model import BAN_RULE_ID, Decision, ScanReport
from verifier.pipeline import run_scan
from verifier.policy import default_policy_path, load_policy
from verifier.store import Store
from verifier.store.bans import BanRecords
from verifier.store.interface import ScanStore
from verifier.store.sqlite_recorder import SQLiteRecorder, open_recorder


class BansInTheWindow:
    """A recorder that runs `verifier ban` just before each of its first `times` records,
    after the scan looked up the bans: the moment the race needs, without timing."""

    def __init__(self, inner: ScanStore, url: str, weights: Path, *, times: int = 1) -> None:
        self._inner, self._url, self._weights, self._times = inner, url, weights, times
        self.bans_made = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def record_scan(self, report: ScanReport, *, bans_seen: int | None = None) -> None:
        if self.bans_made < self._times:
            self.bans_made += 1
            digest = hashlib.sha256(self._weights.read_bytes()).hexdigest()
            reason = f"leaked {self.bans_made}"
            result = CliRunner().invoke(
                cli,
                ["ban", "blob", f"sha256:{digest}", "--reason", reason, "--format", "json"],
                env={"VERIFIER_DATABASE_URL": self._url},
            )
            assert result.exit_code == 0, result.output
            # `verifier ban` decided again what the ban reaches: not this scan, unrecorded.
            assert json.loads(result.stdout)["affected"] == []
        self._inner.record_scan(report, bans_seen=bans_seen)


def _weights(model: Path) -> Path:
    (weights,) = model.glob("*.safetensors")
    return weights


def _recorder(url: str, kind: str) -> ScanStore:
    """The recorder `verifier scan` records with: `Store`, or on a SQLite file `sqlite3`."""
    store = Store.open(url)  # at the newest schema, so that SQLite gets the sqlite3 recorder
    if kind == "store":
        return store
    store.close()
    chosen = open_recorder(url)
    if not isinstance(chosen, SQLiteRecorder):
        chosen.close()
        pytest.skip("the sqlite3 recorder records in SQLite files only")
    return chosen


@pytest.mark.parametrize("kind", ["store", "sqlite3"])
def test_a_ban_made_before_a_scan_records_is_in_its_recorded_decision(
    tiny_model: Path, database_url: str, kind: str
) -> None:
    policy = load_policy(default_policy_path())
    with _recorder(database_url, kind) as recorder:
        racing = BansInTheWindow(recorder, database_url, _weights(tiny_model))
        report = run_scan(str(tiny_model), policy=policy, recorder=racing)  # type: ignore[arg-type]
    assert racing.bans_made == 1
    banned = [r.message for r in report.verdict.reasons if r.rule_id == BAN_RULE_ID]
    assert report.verdict.decision is Decision.DENY
    assert banned and banned[0].endswith("leaked 1"), banned
    with Store.open(database_url) as store:
        recorded = BanRecords(store).current_verdict(report.scan_id, environment=None)
        assert recorded is not None and recorded.decision is Decision.DENY
        assert store.get_scan(report.scan_id).verdict.decision is Decision.DENY


def test_a_scan_is_not_recorded_with_a_stale_ban_lookup(
    tiny_model: Path, database_url: str
) -> None:
    policy = load_policy(default_policy_path())
    with Store.open(database_url) as store:
        seen = store.ban_generation()
        clean = run_scan(str(tiny_model), policy=policy, recorder=None)
        BanRecords(store).lift_ban(
            BanRecords(store).add_ban(*_blob_ban(tiny_model), reason="r", actor="test").ban_id,
            reason="lifted",
            actor="test",
        )
        assert store.ban_generation() == seen + 2  # a ban and its lift: both count
        with pytest.raises(BansChangedError):
            store.record_scan(clean, bans_seen=seen)
        if store.backend == "sqlite":
            with _recorder(database_url, "sqlite3") as recorder, pytest.raises(BansChangedError):
                recorder.record_scan(clean, bans_seen=seen)
        assert store.list_scans() == []  # nothing kept
        store.record_scan(clean, bans_seen=seen + 2)
        assert store.get_scan(clean.scan_id).scan_id == clean.scan_id


def _blob_ban(model: Path) -> tuple[Any, str]:
    from verifier.bans import BanKind

    digest = hashlib.sha256(_weights(model).read_bytes()).hexdigest()
    return BanKind.BLOB, f"sha256:{digest}"


def test_bans_made_at_every_attempt_fail_the_scan_closed(tiny_model: Path, sqlite_url: str) -> None:
    policy = load_policy(default_policy_path())
    with Store.open(sqlite_url) as store:
        racing = BansInTheWindow(store, sqlite_url, _weights(tiny_model), times=BAN_RECHECKS)
        with pytest.raises(BansChangedError):
            run_scan(str(tiny_model), policy=policy, recorder=racing)  # type: ignore[arg-type]
        assert racing.bans_made == BAN_RECHECKS
        (scan,) = store.list_scans()
        assert scan.status.value == "failed"
