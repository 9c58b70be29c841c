"""Dashboard pages through TestClient: inventory severities, environments and paging; waivers
expiring soon; waivers, approvals and evidence downloads on the model page."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.hub_emulator import HubEmulator
from tests.samples import os_system
from tests.service.conftest import Api
from tests.service.test_dashboard import HOSTILE, log_in
from tests.service.test_upkeep import WAIVED, serving
from tests.sources.test_huggingface import model_files
from verifier.formats import help_uri
from verifier.model import Approval
from verifier.service import dashboard, dashboard_views
from verifier.service.dashboard import SECURITY_HEADERS
from verifier.service.model import Role
from verifier.service.upkeep import refresh_decisions

STAGED = """\
version: 1
name: staged
rules:
  - id: not-acme
    effect: deny
    severity: high
    message: acme models stay in research
    match:
      model_in: ["acme/*"]
environments:
  research:
    disable: [not-acme]
  production: {}
"""


def test_inventory_counts_findings_by_severity_and_decides_per_environment(
    database_url: str, hub: HubEmulator, tmp_path: Path, marker_dir: Path
) -> None:
    files = model_files()
    files["model.pkl"] = os_system(marker_dir)
    evil = hub.add_repo("acme/evil", files).refs["main"]
    policy = tmp_path / "staged.yaml"
    policy.write_text(STAGED)
    with serving(database_url, policy) as api:
        api.scan(f"hf://acme/evil@{evil}")
        [model] = api.call("GET", "/api/v1/models", role=Role.VIEWER).json()["models"]
        assert model["findings_by_severity"]["critical"] >= 1
        assert list(model["findings_by_severity"]) == ["critical", "high", "medium", "low", "info"]
        assert sum(model["findings_by_severity"].values()) == model["findings"]
        # The scan decided the default environment; the others wait for the upkeep.
        assert model["decisions"] == [
            {"environment": None, "decision": "deny"},
            {"environment": "research", "decision": None},
            {"environment": "production", "decision": None},
        ]
        refresh_decisions(api.service)
        [model] = api.call("GET", "/api/v1/models", role=Role.VIEWER).json()["models"]
        assert [d["decision"] for d in model["decisions"]] == ["deny", "allow", "deny"]

        log_in(api.client, api.tokens[Role.VIEWER])
        page = api.client.get("/dashboard/inventory")
        assert page.status_code == 200
        assert "default: deny; research: allow; production: deny" in page.text
        assert f"{model['findings_by_severity']['critical']} critical" in page.text
        rows = list(csv.DictReader(io.StringIO(api.client.get("/dashboard/inventory.csv").text)))
        assert rows[0]["decisions_by_environment"] == (
            "default: deny; research: allow; production: deny"
        )
        assert "critical" in rows[0]["findings_by_severity"]


def test_the_inventory_pages_past_what_one_read_returns(
    api: Api, hub: HubEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(5):
        hub.add_repo(f"acme/m{number}", model_files(fill=number + 1))
        api.scan(f"hf://acme/m{number}")
    # Small reads and pages stand in for the API's 1,000 and the page's 100.
    monkeypatch.setattr(dashboard, "INVENTORY_CHUNK", 2)
    monkeypatch.setattr(dashboard_views, "PAGE_SIZE", 2)
    log_in(api.client, api.tokens[Role.VIEWER])
    seen = []
    for number in (1, 2, 3):
        page = api.client.get(f"/dashboard/inventory?page={number}")
        assert page.status_code == 200
        assert f"page {number} of 3" in page.text
        seen += [f"acme/m{n}" for n in range(5) if f"acme/m{n}@" in page.text]
        assert ('rel="next"' in page.text) == (number < 3)
        assert ('rel="prev"' in page.text) == (number > 1)
    assert seen == [f"acme/m{n}" for n in range(5)]
    beyond = api.client.get("/dashboard/inventory?page=99")
    assert "page 3 of 3" in beyond.text
    exported = list(csv.DictReader(io.StringIO(api.client.get("/dashboard/inventory.csv").text)))
    assert len(exported) == 5
    matching = api.client.get("/dashboard/inventory?q=acme/m4")
    assert "1 model matching" in matching.text and "acme/m4@" in matching.text


def test_waivers_expiring_soon(database_url: str, hub: HubEmulator, tmp_path: Path) -> None:
    commit = hub.add_repo("acme/tiny", model_files()).refs["main"]
    today = datetime.now(UTC).date()
    policy = tmp_path / "waived.yaml"
    text = WAIVED.format(commit=commit, expires=today + timedelta(days=3))
    text = text.replace("justification: a trial", f'justification: "{HOSTILE}"')
    text += f"""\
  - id: old-trial
    rule: no-acme
    subject: hf://acme/old@{"a" * 40}
    expires: {today - timedelta(days=2)}
    approved_by: secteam
    ticket: SEC-0
    justification: over
"""
    policy.write_text(text)
    with serving(database_url, policy) as api:
        assert api.client.get("/dashboard/waivers", follow_redirects=False).status_code == 303
        log_in(api.client, api.tokens[Role.VIEWER])
        page = api.client.get("/dashboard/waivers")
        assert page.status_code == 200
        assert "1 waiver of the server" in page.text and "within 14 days" in page.text
        assert "3 days left" in page.text and "expired 2 days ago" in page.text
        assert page.text.index("old-trial") < page.text.index("acme-trial")  # soonest first
        assert HOSTILE not in page.text and "&lt;script&gt;" in page.text
        narrow = api.client.get("/dashboard/waivers?days=2")
        assert "0 waivers of the server" in narrow.text
        assert api.client.get("/dashboard/waivers?days=-1").status_code == 422


def test_the_model_page_shows_waivers_approvals_and_evidence(
    database_url: str, hub: HubEmulator, tmp_path: Path
) -> None:
    commit = hub.add_repo("acme/tiny", model_files()).refs["main"]
    subject = f"hf://acme/tiny@{commit}"
    policy = tmp_path / "waived.yaml"
    expires = datetime.now(UTC).date() + timedelta(days=30)
    policy.write_text(WAIVED.format(commit=commit, expires=expires))
    with serving(database_url, policy) as api:
        scan_id = api.scan(subject)["scan_id"]
        api.service.store.record_approval(
            scan_id,
            Approval(
                approved_at="2026-12-04T10:00:00+00:00",
                key_fingerprint="ab" * 32,
                bundle_sha256="cd" * 32,
                output="approval.sig",
                files=4,
            ),
        )
        log_in(api.client, api.tokens[Role.VIEWER])
        page = api.client.get("/dashboard/model", params={"subject": subject})
        assert page.status_code == 200
        assert "acme-trial" in page.text and "applied" in page.text and "SEC-1" in page.text
        assert "ab" * 32 in page.text and "cd" * 32 in page.text
        for fmt in ("cyclonedx", "spdx", "vsa", "dossier-html", "markdown"):
            assert f"format={fmt}" in page.text
            got = api.client.get("/dashboard/evidence", params={"subject": subject, "format": fmt})
            assert got.status_code == 200, (fmt, got.text)
            disposition = got.headers["content-disposition"]
            assert disposition.startswith(f'attachment; filename="acme_tiny-{commit[:12]}.')
            for header, value in SECURITY_HEADERS.items():
                assert got.headers[header] == value
        cdx = api.client.get(
            "/dashboard/evidence", params={"subject": subject, "format": "cyclonedx"}
        )
        assert json.loads(cdx.content)["bomFormat"] == "CycloneDX"
        pdf = api.client.get(
            "/dashboard/evidence", params={"subject": subject, "format": "dossier-pdf"}
        )
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert pdf.headers["content-type"] == "application/pdf"
        for bad in (
            {"subject": subject, "format": "exe"},
            {"subject": "hf://acme/tiny@main", "format": "vsa"},
            {"subject": "/etc/passwd", "format": "vsa"},
        ):
            assert api.client.get("/dashboard/evidence", params=bad).status_code == 422, bad
        unknown = {"subject": f"hf://acme/other@{'b' * 40}", "format": "vsa"}
        assert api.client.get("/dashboard/evidence", params=unknown).status_code == 404
        api.client.cookies.clear()
        anonymous = api.client.get(
            "/dashboard/evidence",
            params={"subject": subject, "format": "vsa"},
            follow_redirects=False,
        )
        assert anonymous.status_code == 303


def test_the_model_page_links_each_finding_to_its_documentation(
    database_url: str, hub: HubEmulator, marker_dir: Path
) -> None:
    files = model_files()
    files["model.pkl"] = os_system(marker_dir)
    subject = f"hf://acme/evil@{hub.add_repo('acme/evil', files).refs['main']}"
    with serving(database_url) as api:
        codes = {finding["code"] for finding in api.scan(subject)["result"]["findings"]}
        assert codes
        log_in(api.client, api.tokens[Role.VIEWER])
        page = api.client.get("/dashboard/model", params={"subject": subject})
        assert page.status_code == 200
        for code in codes:
            assert f'<a href="{help_uri(code)}"' in page.text
            assert help_uri(code).endswith(f"/findings.md#{code.lower()}")
