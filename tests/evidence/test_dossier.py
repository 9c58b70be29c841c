"""The procurement dossier: HTML escaped and golden, PDF rendered to pages and read back."""

from __future__ import annotations

import io
import sys
from dataclasses import replace
from pathlib import Path

import pypdfium2
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from tests.evidence.golden_files import check_golden
from tests.evidence.recorded import allowed_report, denied_report
from verifier.cli import cli
from verifier.evidence import EvidenceFormat, facts_of, render_evidence
from verifier.evidence.checklist import ItemStatus, eu_ai_act_checklist
from verifier.evidence.dossier_pdf import latin1
from verifier.model import Lineage, ModelDetails
from verifier.store import Store

REPORTS = {"allowed": allowed_report, "denied": denied_report}


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


@pytest.mark.parametrize("which", list(REPORTS))
def test_html_golden(which: str) -> None:
    facts = facts_of(REPORTS[which]())
    check_golden(f"{which}.dossier.html", render_evidence(facts, EvidenceFormat.DOSSIER_HTML))


@pytest.mark.parametrize("which", list(REPORTS))
def test_pdf_text_golden(which: str) -> None:
    data = render_evidence(facts_of(REPORTS[which]()), EvidenceFormat.DOSSIER_PDF)
    check_golden(f"{which}.dossier-pdf.txt", _pdf_text(data).encode())


def test_html_escapes_everything_recorded() -> None:
    page = render_evidence(facts_of(denied_report()), EvidenceFormat.DOSSIER_HTML).decode()
    assert "<script>" not in page
    assert "os.system &lt;script&gt;alert(1)&lt;/script&gt; | on load" in page
    assert "suspicious &lt;model&gt;" in page
    assert "default-src 'none'" in page  # nothing in the page may load or run anything


def test_pdf_states_the_facts_a_reviewer_needs() -> None:
    report = allowed_report()
    data = render_evidence(facts_of(report), EvidenceFormat.DOSSIER_PDF)
    assert data == render_evidence(facts_of(report), EvidenceFormat.DOSSIER_PDF)  # deterministic
    text = _pdf_text(data)
    flat = "".join(text.split())
    for expected in (
        "Model procurement dossier: Qwen/Qwen2.5-0.5B-Instruct",
        "PASSED",
        "Alibaba Cloud (Alibaba Group)",
        "Jurisdiction (ISO 3166-1) CN",
        "example-lab/root-model",
        "EU AI Act checklist",
        "Copyright policy missing",
        "Parameter count present",
        "494,032,768",
        "Signature status verified",
    ):
        assert expected in text, expected
    for f in report.files:
        assert f.sha256 is not None and f.sha256 in flat
    denied = _pdf_text(render_evidence(facts_of(denied_report()), EvidenceFormat.DOSSIER_PDF))
    assert "FAILED" in denied and "PICKLE-DANGEROUS-GLOBAL" in "".join(denied.split())
    assert "Legal entity not recorded" in denied


def test_pdf_pages_render_on_paper(tmp_path: Path) -> None:
    data = render_evidence(facts_of(allowed_report()), EvidenceFormat.DOSSIER_PDF)
    document = pypdfium2.PdfDocument(data)
    try:
        assert len(document) >= 1
        for index in range(len(document)):
            page = document[index]
            assert round(page.get_width()) == 595 and round(page.get_height()) == 842  # A4
            image = page.render(scale=1).to_pil().convert("L")
            image.save(tmp_path / f"page-{index}.png")
            dark = image.point(lambda value: 255 if value < 128 else 0).histogram()[255]
            assert dark > 1000, f"page {index} is blank"
            page.close()
    finally:
        document.close()


def test_pdf_escapes_what_latin1_cannot_print() -> None:
    assert latin1("Qwen\u901a\u4e49 caf\u00e9\x07") == "Qwen\\u901a\\u4e49 caf\u00e9\\x07"
    report = replace(denied_report("/models/\u901a\u4e49-7b"), details=ModelDetails())
    text = _pdf_text(render_evidence(facts_of(report), EvidenceFormat.DOSSIER_PDF))
    assert "\\u901a\\u4e49-7b" in text


def test_checklist_marks_missing_and_not_applicable() -> None:
    items = {i.key: i for i in eu_ai_act_checklist(facts_of(denied_report()))}
    assert items["intended-uses"].status is ItemStatus.MISSING
    assert items["intended-uses"].basis == "no model card (README.md) read"
    assert items["parameters"].status is ItemStatus.MISSING
    assert items["base-model"].status is ItemStatus.NOT_APPLICABLE
    allowed = {i.key: i for i in eu_ai_act_checklist(facts_of(allowed_report()))}
    assert allowed["intended-uses"].status is ItemStatus.PRESENT
    assert allowed["limitations"].basis == "model card section 'Limitations'"
    assert allowed["base-model"].status is ItemStatus.PRESENT
    report = allowed_report()
    assert report.provenance is not None
    original = replace(report, provenance=replace(report.provenance, lineage=Lineage()))
    items = {i.key: i for i in eu_ai_act_checklist(facts_of(original))}
    assert items["base-model"].status is ItemStatus.NOT_APPLICABLE


def test_pdf_needs_an_output_file(sqlite_url: str, tmp_path: Path) -> None:
    with Store.open(sqlite_url) as store:
        store.record_scan(allowed_report())
    env = {"VERIFIER_DATABASE_URL": sqlite_url}
    scan_id = allowed_report().scan_id
    result = CliRunner().invoke(cli, ["report", scan_id, "--format", "dossier-pdf"], env=env)
    assert result.exit_code == 2 and "-o FILE" in result.stderr
    out = tmp_path / "dossier.pdf"
    args = ["report", scan_id, "--format", "dossier-pdf", "-o", str(out)]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0
    assert out.read_bytes().startswith(b"%PDF-")
    result = CliRunner().invoke(cli, ["report", scan_id, "--format", "dossier-html"], env=env)
    assert result.exit_code == 0 and result.stdout.startswith("<!DOCTYPE html>")


def test_pdf_without_the_pdf_extra_says_how_to_install_it(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fpdf2 is the optional `pdf` extra: without it the PDF dossier is a usage error that
    # names the extra, and every other format still works.
    with Store.open(sqlite_url) as store:
        store.record_scan(allowed_report())
    monkeypatch.delitem(sys.modules, "verifier.evidence.dossier_pdf", raising=False)
    monkeypatch.setitem(sys.modules, "fpdf", None)  # `import fpdf` now fails as if absent
    env = {"VERIFIER_DATABASE_URL": sqlite_url}
    out = tmp_path / "dossier.pdf"
    scan_id = allowed_report().scan_id
    args = ["report", scan_id, "--format", "dossier-pdf", "-o", str(out)]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 2
    assert "pip install 'model-weights-verifier[pdf]'" in result.stderr
    assert not out.exists()
    result = CliRunner().invoke(cli, ["report", scan_id, "--format", "dossier-html"], env=env)
    assert result.exit_code == 0
