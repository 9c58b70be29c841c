"""Evidence for a model scanned from the Hub emulator: recorded provenance, lineage, publisher."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from click.testing import CliRunner
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from model_signing import verifying
from pypdf import PdfReader

from tests.evidence.keys import p256, write_pair
from tests.hub_emulator import HubEmulator
from tests.sources.test_huggingface import CARD, model_files
from verifier.cli import cli

CARD_TEXT = (
    b"---\nlicense: apache-2.0\n---\n# tiny-instruct\n## Intended uses\nChat.\n"
    b"## Out-of-scope use\nMedical advice.\n## Limitations\nSmall.\n"
)


def _run(*args: str, database_url: str) -> tuple[int, str, str]:
    env = {"VERIFIER_DATABASE_URL": database_url}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_reports_of_a_hub_scan(hub: HubEmulator, sqlite_url: str, tmp_path: Path) -> None:
    base = hub.add_repo("Qwen/base", model_files(fill=2), card_data={"license": "mit"})
    files = {**model_files(), "README.md": CARD_TEXT}
    card = {**CARD, "base_model": "Qwen/base", "base_model_relation": "finetune"}
    repo = hub.add_repo("Qwen/tiny-instruct", files, card_data=card)
    commit, base_commit = repo.refs["main"], base.refs["main"]
    code, _, err = _run(
        "scan", "hf://Qwen/tiny-instruct", "--format", "json", database_url=sqlite_url
    )
    assert code == 0, err
    target = f"hf://Qwen/tiny-instruct@{commit}"

    code, text, err = _run("report", target, "--format", "cyclonedx", database_url=sqlite_url)
    assert code == 0, err
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    model = json.loads(text)["metadata"]["component"]
    assert model["purl"] == f"pkg:huggingface/Qwen/tiny-instruct@{commit}"
    assert model["supplier"]["address"] == {"country": "CN"}
    assert model["licenses"][0]["license"]["id"] == "Apache-2.0"
    [ancestor] = model["pedigree"]["ancestors"]
    assert ancestor["purl"] == f"pkg:huggingface/Qwen/base@{base_commit}"
    assert model["modelCard"]["modelParameters"]["datasets"] == [
        {"type": "dataset", "name": "acme/corpus"}
    ]
    refs = {r["type"]: r["url"] for r in model["externalReferences"]}
    assert refs["model-card"] == f"{hub.endpoint}/Qwen/tiny-instruct/blob/{commit}/README.md"

    code, text, _ = _run("report", target, "--format", "vsa", database_url=sqlite_url)
    predicate = json.loads(text)["predicate"]
    assert predicate["resourceUri"] == f"pkg:huggingface/Qwen/tiny-instruct@{commit}"
    assert predicate["verificationResult"] == "PASSED"
    assert "VERIFIER_DIGESTS_VERIFIED" in predicate["verifiedLevels"]
    assert "VERIFIER_PUBLISHER_IDENTIFIED" in predicate["verifiedLevels"]

    pdf = tmp_path / "dossier.pdf"
    code, _, err = _run(
        "report", target, "--format", "dossier-pdf", "-o", str(pdf), database_url=sqlite_url
    )
    assert code == 0, err
    pages = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.read_bytes())).pages)
    assert "Alibaba Cloud" in pages and "Qwen/base" in pages
    assert "Prohibited and out-of-scope uses present" in pages

    private, public = write_pair(tmp_path / "keys", "org", p256())
    signature = tmp_path / "approval.sig"
    code, _, err = _run(
        "approve",
        target,
        "--signing-key",
        str(private),
        "-o",
        str(signature),
        database_url=sqlite_url,
    )
    assert code == 0, err
    payload = json.loads(
        base64.b64decode(json.loads(signature.read_text())["dsseEnvelope"]["payload"])
    )
    assert {r["name"] for r in payload["predicate"]["resources"]} == set(files)
    local = tmp_path / "deployed" / "tiny-instruct"
    for path, data in files.items():
        (local / path).parent.mkdir(parents=True, exist_ok=True)
        (local / path).write_bytes(data)
    verifying.Config().use_elliptic_key_verifier(public_key=public).verify(local, signature)

    code, _, err = _run(
        "report",
        f"hf://Qwen/tiny-instruct@{base_commit}",
        "--format",
        "markdown",
        database_url=sqlite_url,
    )
    assert code == 2 and "scan it first" in err
