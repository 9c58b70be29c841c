"""`ServiceRecords.scanner_versions` picks in SQL what the Python selection it replaced picked.

It used to read every scan of every subject, newest first, and keep the first row of each
subject in Python (extracting each row's facts). That selection is kept here as the reference;
a store with many scans per subject (equal start times, failed scans without facts, incomplete
ones, scans without a subject, with and without fingerprints, registered bases, lists and
non-lists of stale bases) must give exactly the same answer on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, insert, select

from verifier.model import ScanStatus
from verifier.store.database import Store
from verifier.store.scan_tables import (
    LINEAGE_BASES,
    SCAN_FACTS,
    SCANS,
    WEIGHT_FINGERPRINTS,
    registered_base,
)
from verifier.store.service_records import NewestScan, ServiceRecords, _labels
from verifier.store.tables import ScanFactsRow, ScanRow

_START = datetime(2026, 1, 1, tzinfo=UTC)


def fill(store: Store, *, subjects: int, scans_each: int, seed: int = 0) -> None:
    """Record `scans_each` scans of each of `subjects` Hub subjects, drawn from `seed`."""
    rng = random.Random(seed)
    scans: list[dict[str, Any]] = []
    facts: list[dict[str, Any]] = []
    prints: list[dict[str, Any]] = []
    bases: list[dict[str, Any]] = []
    for s in range(subjects):
        subject = f"hf://acme/model-{s}@{s:040x}"
        for n in range(scans_each):
            # Few distinct start times: ties are broken by the scan id.
            started = _START + timedelta(minutes=rng.randrange(max(2, scans_each // 2)))
            scan_id = f"{rng.getrandbits(64):016x}{s:08x}{n:08x}"
            status = rng.choice(list(ScanStatus))
            scans.append(
                {
                    "id": scan_id,
                    "target": subject,
                    "source_type": "hub",
                    "source": {},
                    "started_at": started,
                    "finished_at": started + timedelta(seconds=5),
                    "tool_version": rng.choice(["0.1.0", "0.2.0", "0.3.0"]),
                    "status": status.value,
                    "error": None,
                }
            )
            if status is ScanStatus.FAILED:
                continue  # failed scans keep no facts
            stale = rng.choice(
                [None, [], ["acme/base@" + "a" * 40], ["acme/base@" + "b" * 40, 7], "nope"]
            )
            lineage: dict[str, Any] = {} if stale is None else {"older_version_bases": stale}
            facts.append(
                {
                    "scan_id": scan_id,
                    # Now and then a scan without a subject (a local folder): never listed.
                    "subject": None if rng.random() < 0.05 else subject,
                    "document": {"verified_lineage": lineage} if rng.random() < 0.9 else {},
                }
            )
            if rng.random() < 0.7:
                prints.append(
                    {
                        "scan_id": scan_id,
                        "repo_id": f"acme/model-{s}",
                        "commit": f"{s:040x}" if rng.random() < 0.9 else None,
                        "publisher": None,
                        "hidden_size": 64,
                        "version": rng.choice([1, 2, 3]),
                        "fingerprint": b"\0" * 8,
                    }
                )
                if rng.random() < 0.1:
                    bases.append({"scan_id": scan_id, "registered_at": started})
    with store._sessions.begin() as session:
        for table, rows in (
            (SCANS, scans),
            (SCAN_FACTS, facts),
            (WEIGHT_FINGERPRINTS, prints),
            (LINEAGE_BASES, bases),
        ):
            if rows:
                session.execute(insert(table), rows)


def old_scanner_versions(records: ServiceRecords) -> dict[str, NewestScan]:
    """The selection `scanner_versions` made before: every scan read, newest first, the first
    of each subject kept in Python."""
    prints = WEIGHT_FINGERPRINTS.c
    stale_bases = case(
        (
            prints.version.is_not(None),
            SCAN_FACTS.c.document[("verified_lineage", "older_version_bases")],
        ),
        else_=None,
    )
    query = (
        select(
            ScanFactsRow.subject,
            ScanRow.id,
            ScanRow.tool_version,
            ScanRow.status,
            prints.version,
            registered_base(prints),
            ScanRow.started_at,
            stale_bases,
        )
        .join(ScanRow, ScanRow.id == ScanFactsRow.scan_id)
        .outerjoin(WEIGHT_FINGERPRINTS, prints.scan_id == ScanRow.id)
        .where(ScanFactsRow.subject.is_not(None))
        .order_by(ScanRow.started_at.desc(), ScanRow.id.desc())
    )
    found: dict[str, NewestScan] = {}
    with records._sessions() as session:
        for row in session.execute(query):
            subject, scan_id, version, status, printed, registered, started, stale = row
            if subject is not None and subject not in found:
                found[subject] = NewestScan(
                    scan_id=scan_id,
                    tool_version=version,
                    complete=status == ScanStatus.COMPLETE.value,
                    fingerprint_version=printed,
                    registered_base=bool(registered),
                    started_at=started,
                    older_version_bases=_labels(stale),
                )
    return found


def test_newest_scans_are_those_the_python_selection_chose(database_url: str) -> None:
    with Store.open(database_url) as store:
        fill(store, subjects=40, scans_each=12, seed=18)
        records = ServiceRecords(store)
        expected = old_scanner_versions(records)
        found = records.scanner_versions()
    # The fixture reaches every case the rule distinguishes (else the test proves little).
    assert len(expected) >= 35
    newest = list(expected.values())
    assert {n.complete for n in newest} == {True, False}
    assert {n.fingerprint_version for n in newest} >= {None, 1, 2, 3}
    assert any(n.registered_base for n in newest)
    assert any(n.older_version_bases for n in newest)
    assert list(found.items()) == list(expected.items())


def test_no_scans_no_newest(database_url: str) -> None:
    with Store.open(database_url) as store:
        assert ServiceRecords(store).scanner_versions() == {}
