"""After an upgrade of the fingerprint computation: the upkeep pass re-fingerprints registered
bases first, the registration follows the base's model@commit to its new scan, and a derivative
re-scanned after it is attributed again (verifier.service.upkeep, verifier.service.rescans)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import torch

from benchmarks import lineage_models as lm
from tests.hub_emulator import HubEmulator
from tests.lineage.conftest import ARCH
from tests.service.conftest import Api
from tests.service.test_answer_schemas import Checked
from tests.service.test_rescan_blobs import _Later
from tests.service.test_upkeep import serving
from verifier.lineage.fingerprint import FINGERPRINT_VERSION
from verifier.model import LineageStatus, VerifiedLineage
from verifier.pipeline import HubOptions
from verifier.service.core import Service
from verifier.service.jobs import JobContext, JobOutcome, run_scan_job
from verifier.service.model import Role
from verifier.service.upkeep import run_pass

CONFIG = b'{"model_type": "tiny-lm", "hidden_size": 32}'
#: Named to sort after the derivative: the base comes first because it is a base.
BASE, DERIVATIVE = "zeta/base", "mallory/renamed"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """safetensors bytes of a base and of an (undeclared) fine-tune of it."""
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("lineage-rescans")
    base = lm.base(ARCH, seed=21)
    states = {"base": base, "tuned": lm.fine_tune(ARCH, base, steps=15, seed=22)}
    return {
        name: (lm.save(state, work / name) / "model.safetensors").read_bytes()
        for name, state in states.items()
    }


def _files(weights: bytes) -> dict[str, bytes]:
    card = b"---\nlicense: apache-2.0\n---\n# model\n"
    return {"config.json": CONFIG, "README.md": card, "model.safetensors": weights}


def _lineage(service: Service, subject: str) -> tuple[str, VerifiedLineage]:
    newest = service.records.newest_scan_of(subject)
    assert newest is not None
    lineage = service.store.get_scan(newest.scan_id).verified_lineage
    assert lineage is not None and lineage.status is LineageStatus.VERIFIED
    return newest.scan_id, lineage


def _bases(lineage: VerifiedLineage) -> list[tuple[str, bool]]:
    return [(b.repo_id, b.registered_base) for b in lineage.verified_bases]


def test_after_a_fingerprint_upgrade_bases_then_derivatives_are_fingerprinted_again(
    database_url: str, hub: HubEmulator, weights: dict[str, bytes], tmp_path: Path
) -> None:
    base_subject = f"hf://{BASE}@{hub.add_repo(BASE, _files(weights['base'])).refs['main']}"
    commit = hub.add_repo(DERIVATIVE, _files(weights["tuned"])).refs["main"]
    derivative_subject = f"hf://{DERIVATIVE}@{commit}"
    with serving(database_url) as api:  # ten re-scans a pass
        registered = api.scan(base_subject)["scan_id"]
        api.service.store.register_base(registered)
        api.scan(derivative_subject)
        derived, lineage = _lineage(api.service, derivative_subject)
        assert _bases(lineage) == [(BASE, True)]
        # As if both were fingerprinted by the version before this one: nothing compares them.
        with api.service.store._engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE weight_fingerprints SET version = :v"),
                {"v": FINGERPRINT_VERSION - 1},
            )
            # And as if, compared with nothing, it had been allowed.
            connection.execute(
                sa.text("UPDATE decisions SET decision = 'allow' WHERE scan_id = :id"),
                {"id": derived},
            )
        listed = api.call("GET", "/api/v1/rescans", role=Role.VIEWER).json()["rescans"]
        assert [(e["target"], e["state"], e["causes"], e["registered_base"]) for e in listed] == [
            (base_subject, "waiting", ["fingerprint"], True),  # the base first
            (derivative_subject, "waiting", ["fingerprint"], False),
        ]
        assert {e["fingerprint_version"] for e in listed} == {FINGERPRINT_VERSION - 1}

        # The registered base only: the derivative waits until the base's re-scan is done,
        # on this pass and on the next while that re-scan is still queued.
        runner = api.service.runner
        api.service.runner = _Later()  # type: ignore[assignment]
        try:
            first = run_pass(api.service)
            assert first is not None
            assert [(r["target"], r["causes"]) for r in first.rescans] == [
                (base_subject, ["fingerprint"])
            ]
            waiting = run_pass(api.service)
            assert waiting is not None and waiting.rescans == []
        finally:
            api.service.runner = runner
        context = JobContext(
            store=api.service.store, policies=api.service.policies, hub=HubOptions()
        )
        assert run_scan_job(context, str(first.rescans[0]["job"])) is JobOutcome.DONE
        rescanned, _ = _lineage(api.service, base_subject)
        assert rescanned != registered
        # The registration followed the model@commit to the new scan (the one row stays).
        assert [b["scan_id"] for b in api.service.store.lineage_bases()] == [registered]
        [reference] = api.service.store.lineage_references(ARCH.hidden).references
        assert (reference.label, reference.registered_base) == (base_subject[5:], True)

        second = run_pass(api.service)
        assert second is not None
        assert [r["target"] for r in second.rescans] == [derivative_subject]
        api.service.runner.drain()
        _, lineage = _lineage(api.service, derivative_subject)
        assert _bases(lineage) == [(BASE, True)]  # attributed again
        assert lineage.older_version_references == 0
        # The change of decision names the scanner as its cause, and the fingerprint versions.
        [change] = api.call("GET", "/api/v1/decision-changes", role=Role.VIEWER).json()["changes"]
        assert (change["previous"], change["decision"], change["cause"]) == (
            "allow",
            "deny",
            "scanner",
        )
        assert change["detail"]["previous_fingerprint_version"] == FINGERPRINT_VERSION - 1
        assert change["detail"]["fingerprint_version"] == FINGERPRINT_VERSION
        assert lineage.undeclared_bases == (base_subject[5:],)

        # Both fingerprinted by this version now: nothing more to re-scan, and listed done.
        third = run_pass(api.service)
        assert third is not None and third.rescans == [] and third.rescans_held == []
        listed = api.call("GET", "/api/v1/rescans", role=Role.VIEWER).json()["rescans"]
        assert [(e["state"], e["causes"]) for e in listed] == [("done", []), ("done", [])]
        assert {e["fingerprint_version"] for e in listed} == {FINGERPRINT_VERSION}


def test_an_incomplete_scan_or_a_newer_fingerprint_is_not_rescanned_for_it(
    database_url: str, hub: HubEmulator, weights: dict[str, bytes]
) -> None:
    subject = f"hf://{BASE}@{hub.add_repo(BASE, _files(weights['base'])).refs['main']}"
    with serving(database_url) as api:
        scan_id = api.scan(subject)["scan_id"]
        with api.service.store._engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE weight_fingerprints SET version = :v"),
                {"v": FINGERPRINT_VERSION + 1},  # a newer server's, during a rolling upgrade
            )
        done = run_pass(api.service)
        assert done is not None and done.rescans == []
        with api.service.store._engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE weight_fingerprints SET version = :v"),
                {"v": FINGERPRINT_VERSION - 1},
            )
            connection.execute(
                sa.text("UPDATE scans SET status = 'incomplete' WHERE id = :id"), {"id": scan_id}
            )
        done = run_pass(api.service)
        assert done is not None and done.rescans == []


def test_a_model_this_version_rescanned_is_asked_again_when_its_fingerprint_ages(
    database_url: str, hub: HubEmulator, weights: dict[str, bytes]
) -> None:
    # Re-scanned once by this version's re-scanner (an older verifier had scanned it); then a
    # later build of the same version moves the fingerprint version: the job asked before is
    # for an earlier scan, so the model is asked for again, once.
    subject = f"hf://{BASE}@{hub.add_repo(BASE, _files(weights['base'])).refs['main']}"
    with serving(database_url) as api:
        old = api.scan(subject)["scan_id"]
        with api.service.store._engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE scans SET tool_version = '0.0.1' WHERE id = :id"), {"id": old}
            )
        first = run_pass(api.service)
        assert first is not None and [r["causes"] for r in first.rescans] == [["scanner"]]
        api.service.runner.drain()
        rescanned, _ = _lineage(api.service, subject)
        assert rescanned != old
        with api.service.store._engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE weight_fingerprints SET version = :v WHERE scan_id = :id"),
                {"v": FINGERPRINT_VERSION - 1, "id": rescanned},
            )
        second = run_pass(api.service)
        assert second is not None and [r["causes"] for r in second.rescans] == [["fingerprint"]]
        api.service.runner.drain()
        third = run_pass(api.service)
        assert third is not None and third.rescans == []


def _stale_base_and_derivative(
    api: Api, hub: HubEmulator, weights: dict[str, bytes]
) -> tuple[str, str, str]:
    """Register the base, age its fingerprint to the version before this one (an upgrade, its
    re-scan not made yet), then scan the derivative: `(base, derivative, derivative's scan)`."""
    base_subject = f"hf://{BASE}@{hub.add_repo(BASE, _files(weights['base'])).refs['main']}"
    commit = hub.add_repo(DERIVATIVE, _files(weights["tuned"])).refs["main"]
    derivative_subject = f"hf://{DERIVATIVE}@{commit}"
    api.service.store.register_base(api.scan(base_subject)["scan_id"])
    with api.service.store._engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE weight_fingerprints SET version = :v"), {"v": FINGERPRINT_VERSION - 1}
        )
    api.scan(derivative_subject)
    stale, lineage = _lineage(api.service, derivative_subject)
    # Compared with nothing: it says which base it could not compare, and is not attributed.
    assert lineage.older_version_bases == (base_subject[5:],)
    assert _bases(lineage) == [] and lineage.undeclared_bases == ()
    findings = api.service.store.get_scan(stale).findings
    assert any(f.code == "LINEAGE-UNVERIFIABLE" and f.evidence for f in findings)
    return base_subject, derivative_subject, stale


def _listed(api: Api) -> list[tuple[str, str, list[str]]]:
    """The route's entries, its answer checked against the schema `/openapi.json` serves."""
    answer = Checked(api.call("GET", "/openapi.json").json())(
        api.call("GET", "/api/v1/rescans", role=Role.VIEWER), "GET", "/api/v1/rescans"
    )
    return [(e["target"], e["state"], e["causes"]) for e in answer["rescans"]]


def test_a_derivative_that_could_not_compare_its_base_is_rescanned_once_the_base_is_again(
    database_url: str, hub: HubEmulator, weights: dict[str, bytes]
) -> None:
    with serving(database_url) as api:
        base_subject, derivative_subject, stale = _stale_base_and_derivative(api, hub, weights)
        # Its own fingerprint is of this version: while the base is stale it needs nothing.
        assert _listed(api) == [(base_subject, "waiting", ["fingerprint"])]

        runner = api.service.runner
        api.service.runner = _Later()  # type: ignore[assignment]
        try:
            first = run_pass(api.service)
            assert first is not None
            assert [(r["target"], r["causes"]) for r in first.rescans] == [
                (base_subject, ["fingerprint"])
            ]
            assert _listed(api) == [(base_subject, "queued", ["fingerprint"])]
        finally:
            api.service.runner = runner
        context = JobContext(
            store=api.service.store, policies=api.service.policies, hub=HubOptions()
        )
        assert run_scan_job(context, str(first.rescans[0]["job"])) is JobOutcome.DONE

        # The base has a fingerprint of this version now: the derivative needs a re-scan, for
        # its lineage, and is asked for once (not again while that re-scan is queued).
        assert _listed(api) == [
            (base_subject, "done", []),
            (derivative_subject, "waiting", ["lineage"]),
        ]
        api.service.runner = _Later()  # type: ignore[assignment]
        try:
            second = run_pass(api.service)
            assert second is not None
            assert [(r["target"], r["causes"]) for r in second.rescans] == [
                (derivative_subject, ["lineage"])
            ]
            again = run_pass(api.service)
            assert again is not None and again.rescans == []
        finally:
            api.service.runner = runner
        assert run_scan_job(context, str(second.rescans[0]["job"])) is JobOutcome.DONE

        rescanned, lineage = _lineage(api.service, derivative_subject)
        assert rescanned != stale
        assert _bases(lineage) == [(BASE, True)]  # attributed to its base now
        assert lineage.undeclared_bases == (base_subject[5:],)
        assert lineage.older_version_bases == () and lineage.older_version_references == 0
        [change] = api.call("GET", "/api/v1/decision-changes", role=Role.VIEWER).json()["changes"]
        assert (change["subject"], change["previous"], change["decision"], change["cause"]) == (
            derivative_subject,
            "allow",
            "deny",
            "scanner",
        )
        # Nothing more to ask: the new scan compared the base.
        third = run_pass(api.service)
        assert third is not None and third.rescans == [] and third.rescans_held == []
        assert _listed(api) == [(base_subject, "done", []), (derivative_subject, "done", [])]


def test_a_derivative_whose_base_stays_stale_is_not_asked_for(
    database_url: str, hub: HubEmulator, weights: dict[str, bytes]
) -> None:
    with serving(database_url) as api:
        base_subject, derivative_subject, _ = _stale_base_and_derivative(api, hub, weights)
        runner = api.service.runner
        api.service.runner = _Later()  # type: ignore[assignment]
        try:
            first = run_pass(api.service)
        finally:
            api.service.runner = runner
        assert first is not None and [r["target"] for r in first.rescans] == [base_subject]
        # The base's re-scan failed (the scan before stands): no base's re-scan is under way,
        # and the base is still fingerprinted by the version before only.
        with api.service.store._engine.begin() as connection:
            connection.execute(
                sa.text(
                    "UPDATE scan_jobs SET status = 'failed', open_key = NULL, error = 'gone' "
                    "WHERE id = :id"
                ),
                {"id": first.rescans[0]["job"]},
            )
        second = run_pass(api.service)
        assert second is not None and second.rescans == []
        assert _listed(api) == [(base_subject, "failed", ["fingerprint"])]

        # Scanned again by hand: the derivative is asked for then.
        api.service.submit_scan(
            base_subject, policy=None, environment=None, actor="operator", rescan=True
        )
        api.service.runner.drain()
        assert api.service.records.scanner_versions()[base_subject].fingerprint_version == (
            FINGERPRINT_VERSION
        )
        third = run_pass(api.service)
        assert third is not None
        assert [(r["target"], r["causes"]) for r in third.rescans] == [
            (derivative_subject, ["lineage"])
        ]
