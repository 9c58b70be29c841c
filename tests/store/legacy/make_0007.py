"""Writes the schema-0007 fixture: a database recorded by verifier at revision 0007, and answers.

Run once with the code of main at 6b7aafa (the last commit whose store wrote schema 0007):

    python -m tests.store.legacy.make_0007 tests/store/legacy

It scans, through the CLI of that version, a local model (card-declared lineage), two local
models with a dangerous pickle (denied), a key-signed local model, and a Hub model with lineage
(the Hub emulator), records a failed scan, re-decides one denied scan with a waiver, and
approves the Hub scan. It writes `0007.sql` (the SQLite database as SQL text) and
`0007-answers.json` (what `history`, `show`, `report` and then `decide` printed for each scan).
tests/store/test_legacy_upgrade.py upgrades that database with today's code and checks every
answer is unchanged.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner

from tests.evidence.keys import p256, write_pair
from tests.hub_emulator import HubEmulator
from tests.samples import os_system
from tests.signatures.signing import make_model, sign_with_key, write_key
from tests.sources.test_huggingface import CARD, model_files, safetensors_file
from verifier.cli import cli
from verifier.store import Store

#: The formats `verifier report` wrote at 0007 whose output does not depend on the clock.
REPORT_FORMATS = ("cyclonedx", "vsa", "markdown", "dossier-html")
CARD_TEXT = (
    b"---\nlicense: mit\nbase_model: acme/base\nbase_model_relation: finetune\n"
    b"datasets: [acme/corpus]\n---\n# local\n## Intended uses\nTests.\n"
)


def _run(url: str, *args: str) -> dict[str, object]:
    result = CliRunner().invoke(
        cli, list(args), env={"VERIFIER_DATABASE_URL": url}, catch_exceptions=False
    )
    return {"args": list(args), "exit": result.exit_code, "stdout": result.stdout}


def _scan_id(url: str, target: str, *options: str) -> str:
    answer = _run(url, "scan", target, "--format", "json", *options)
    return str(json.loads(str(answer["stdout"]))["scan_id"])


def _models(base: Path) -> tuple[dict[str, str], Path]:
    local = base / "local"
    local.mkdir()
    (local / "model.safetensors").write_bytes(safetensors_file())
    (local / "config.json").write_text('{"model_type": "tiny", "architectures": ["TinyLM"]}')
    (local / "README.md").write_bytes(CARD_TEXT)
    for name in ("waived", "denied"):
        folder = base / name
        folder.mkdir()
        (folder / "model.pkl").write_bytes(os_system(base / "markers"))
        (folder / "config.json").write_text("{}")
    signed = make_model(base / "signed")
    private, public = write_key(base, "signer")
    sign_with_key(signed, private)
    names = ("local", "waived", "denied", "signed")
    return {name: str(base / name) for name in names}, public


def main(out: Path) -> None:
    """Build the database and the answers under `out`."""
    with tempfile.TemporaryDirectory() as tmp, HubEmulator() as hub:
        base = Path(tmp)
        os.environ["HF_ENDPOINT"] = hub.endpoint
        os.environ["HF_HOME"] = str(base / "hf-home")
        os.environ["VERIFIER_HOME"] = str(base / "home")
        url = f"sqlite:///{base / 'legacy.db'}"
        hub.add_repo("Qwen/base", model_files(fill=2), card_data={"license": "mit"})
        card = {**CARD, "base_model": "Qwen/base", "base_model_relation": "finetune"}
        hub.add_repo("Qwen/tiny", model_files(), card_data=card)
        targets, public = _models(base)
        key = ("--public-key", str(public))
        ids = {
            name: _scan_id(url, target, *(key if name == "signed" else ()))
            for name, target in targets.items()
        }
        ids["hub"] = _scan_id(url, "hf://Qwen/tiny")
        with Store.open(url) as store:
            store.record_failed_scan(
                scan_id="f" * 32,
                target=targets["local"],
                started_at="2026-12-01T10:00:00+00:00",
                finished_at="2026-12-01T10:00:01+00:00",
                tool_version="0.1.0",
                error="OSError: disk went away",
            )
        ids["failed"] = "f" * 32
        shown = _run(url, "show", ids["waived"], "--format", "json")
        files = json.loads(str(shown["stdout"]))["files"]
        digest = next(f["sha256"] for f in files if f["path"] == "model.pkl")
        waivers = base / "waivers.yaml"
        waivers.write_text(
            "version: 1\nwaivers:\n  - id: reviewed-pickle\n"
            "    rule: no-high-or-critical-findings\n"
            f"    subject: sha256:{digest}\n    expires: 2099-01-01\n"
            "    approved_by: security@example.com\n    ticket: SEC-1\n    justification: test\n"
        )
        waived = _run(url, "decide", ids["waived"], "--waivers", str(waivers), "--format", "json")
        private, _ = write_pair(base / "keys", "org", p256())
        approved = _run(
            url, "approve", ids["hub"], "--signing-key", str(private), "-o", str(base / "a.sig")
        )
        assert waived["exit"] == 0 and approved["exit"] == 0, (waived, approved)
        connection = sqlite3.connect(base / "legacy.db")
        (out / "0007.sql").write_text("\n".join(connection.iterdump()) + "\n")
        connection.close()
        answers: list[dict[str, object]] = [_run(url, "history", "--format", "json")]
        for scan_id in ids.values():
            answers.append(_run(url, "show", scan_id, "--format", "json"))
            answers.append(_run(url, "show", scan_id))
        for name, scan_id in ids.items():
            if name == "failed":
                continue
            for fmt in REPORT_FORMATS:
                answers.append(_run(url, "report", scan_id, "--format", fmt))
        for scan_id in ids.values():
            answers.append(_run(url, "decide", scan_id, "--format", "json"))
            answers.append(_run(url, "decide", scan_id))
        (out / "0007-answers.json").write_text(
            json.dumps({"ids": ids, "root": tmp, "answers": answers}, indent=1) + "\n"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
