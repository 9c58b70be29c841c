"""Bans end to end: a four-level lineage and a re-upload on the Hub emulator, recorded with real
scans, then a ban of the base (issue 17).

The weights are the tiny model family of `benchmarks/lineage_models.py`, trained here: a base,
its fine-tune, an int8 quantisation of the fine-tune, and a merge of the quantisation with an
independent base; a re-upload holds the base's weight file byte for byte under another
publisher. Each model declares its parents in its card (`base_model`), as on the Hub.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from benchmarks import lineage_models as lm
from tests.hub_emulator import HubEmulator
from tests.lineage.conftest import ARCH
from tests.test_schemas import validate_output
from verifier.cli import cli

CONFIG = b'{"model_type": "tiny-lm", "hidden_size": 32}'
#: What each model declares as its bases.
FAMILY = {
    "acme/base": [],
    "tuner/tuned": ["acme/base"],
    "quant/tuned-int8": ["tuner/tuned"],
    "merger/merged": ["quant/tuned-int8", "other/base-two"],
    "mirror/base-copy": [],
    "other/base-two": [],
    "sneaky/renamed": [],
}
DESCENDANTS = ["tuner/tuned", "quant/tuned-int8", "merger/merged"]
#: A fine-tune of the base that does not say so: only its weights (verified lineage) tell.
UNDECLARED = "sneaky/renamed"
#: Another such fine-tune, published only after the base is banned.
LATE = "late/renamed"
#: A policy that allows every complete scan without a critical finding, so that only the ban
#: can deny these models (written here, not shipped).
POLICY = """\
version: 1
name: permissive
mode: enforce
default: allow
rules:
  - id: no-critical-findings
    effect: deny
    severity: critical
    message: critical findings block the model
    match:
      finding_severity_at_least: critical
"""


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """safetensors bytes of every model of the family (the copy is the base's own bytes)."""
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("bans")
    base, two = lm.base(ARCH, seed=21), lm.base(ARCH, seed=22)
    tuned = lm.fine_tune(ARCH, base, steps=15, seed=23)
    quantised = lm.int8_round_trip(tuned)
    states = {
        "acme/base": base,
        "tuner/tuned": tuned,
        "quant/tuned-int8": quantised,
        "merger/merged": lm.merge(quantised, two),
        "other/base-two": two,
        UNDECLARED: lm.fine_tune(ARCH, base, steps=15, seed=24),
        LATE: lm.fine_tune(ARCH, base, steps=15, seed=25),
    }
    out = {
        name: (lm.save(state, work / name.replace("/", "_")) / "model.safetensors").read_bytes()
        for name, state in states.items()
    }
    out["mirror/base-copy"] = out["acme/base"]
    return out


def _files(weights: bytes, bases: list[str]) -> dict[str, bytes]:
    card = "---\nlicense: apache-2.0\n"
    if bases:
        card += "base_model:\n" + "".join(f"  - {b}\n" for b in bases)
    return {
        "config.json": CONFIG,
        "README.md": (card + "---\n# model\n").encode(),
        "model.safetensors": weights,
    }


def _run(*args: str, url: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli, list(args), env={"VERIFIER_DATABASE_URL": url}, catch_exceptions=False
    )
    return result.exit_code, result.stdout, result.stderr


def _json(*args: str, url: str) -> Any:
    code, out, err = _run(*args, "--format", "json", url=url)
    assert out.strip(), err
    document = json.loads(out)
    validate_output(args, document)
    return code, document


@pytest.fixture
def estate(
    hub: HubEmulator, database_url: str, weights: dict[str, bytes], tmp_path: Path
) -> tuple[str, Path, dict[str, str]]:
    """Every model of the family on the Hub, scanned and recorded (parents first)."""
    policy = tmp_path / "permissive.yaml"
    policy.write_text(POLICY)
    subjects = {}
    for name, bases in FAMILY.items():
        card = {"base_model": bases} if bases else {}
        hub.add_repo(name, _files(weights[name], bases), card_data=card)
        code, doc = _json("scan", f"hf://{name}", "--policy", str(policy), url=database_url)
        assert code == 0 and doc["decision"] == "allow", (name, doc["policy"])
        subjects[name] = f"hf://{name}@{doc['source']['commit']}"
        if name == "acme/base":
            # Registered, as docs/lineage.md advises for bases, so that a derivative that
            # does not declare it is attributed to it by its weights.
            args = ("lineage", "add-base", f"hf://{name}", "--policy", str(policy))
            assert _run(*args, url=database_url)[0] == 0
    return database_url, policy, subjects


def _decision(subject: str, policy: Path, url: str) -> Any:
    code, doc = _json("decide", subject, "--policy", str(policy), url=url)
    return code, doc


def test_banning_the_base_denies_every_descendant_and_the_reupload(
    estate: tuple[str, Path, dict[str, str]],
) -> None:
    url, policy, subjects = estate
    code, preview = _json("blast-radius", "--model", "acme/base", "--policy", str(policy), url=url)
    assert code == 0
    reached = {m["subject"]: m for m in preview["models"]}
    affected = ["acme/base", *DESCENDANTS, "mirror/base-copy", UNDECLARED]
    assert sorted(reached) == sorted(subjects[name] for name in affected)
    assert reached[subjects["acme/base"]]["relation"] == "named"
    assert reached[subjects["mirror/base-copy"]]["relation"] == "copy"
    assert reached[subjects[UNDECLARED]]["relation"] == "verified"
    for name in DESCENDANTS:
        # Declared by the cards and, for these, confirmed by the weights.
        assert reached[subjects[name]]["relation"] in ("declared", "verified")
        path = reached[subjects[name]]["path"]
        assert path[0] == subjects["acme/base"].removeprefix("hf://")
        assert path[-1] == subjects[name].removeprefix("hf://")
    # A preview records nothing.
    assert _json("ban", "list", url=url)[1] == {"schema_version": 1, "bans": []}

    code, banned = _json(
        "ban", "model", "acme/base", "--reason", "front for a sanctioned entity", "--policy",
        str(policy), url=url,
    )  # fmt: skip
    assert code == 0
    assert banned["ban"]["kind"] == "model" and banned["ban"]["value"] == "acme/base"
    changed = {a["subject"]: a for a in banned["affected"]}
    assert sorted(changed) == sorted(subjects[name] for name in affected)
    assert all(a["decision"] == "deny" and a["previous"] == "allow" for a in changed.values())

    for name in affected:
        code, doc = _decision(subjects[name], policy, url)
        assert code == 1 and doc["decision"] == "deny", name
        first = doc["policy"]["reasons"][0]
        assert first["rule_id"] == "(ban)"
        assert first["message"] == "banned model acme/base: front for a sanctioned entity"
    code, doc = _decision(subjects["other/base-two"], policy, url)
    assert code == 0 and doc["decision"] == "allow"


def test_a_ban_denies_under_every_policy_and_a_lift_restores(
    estate: tuple[str, Path, dict[str, str]],
) -> None:
    url, policy, subjects = estate
    code, banned = _json(
        "ban", "publisher", "tuner", "--reason", "publisher under review", "--policy",
        str(policy), url=url,
    )  # fmt: skip
    assert code == 0
    names = sorted(a["subject"] for a in banned["affected"])
    # The publisher's model and what derives from it; not the base it derives from.
    assert names == sorted(subjects[n] for n in DESCENDANTS)
    # The shipped default policy knows nothing of the ban, and denies with it all the same.
    code, doc = _json("decide", subjects["merger/merged"], url=url)
    assert doc["decision"] == "deny"
    assert doc["policy"]["reasons"][0]["message"].startswith("banned publisher tuner:")
    ban_id = banned["ban"]["id"]
    code, lifted = _json(
        "ban", "lift", str(ban_id), "--reason", "review closed", "--policy", str(policy), url=url
    )
    assert code == 0 and lifted["ban"]["active"] is False
    assert {a["decision"] for a in lifted["affected"]} == {"allow"}
    code, doc = _decision(subjects["quant/tuned-int8"], policy, url)
    assert code == 0 and doc["decision"] == "allow"
    code, listed = _json("ban", "list", "--all", url=url)
    assert [b["lift_reason"] for b in listed["bans"]] == ["review closed"]


def test_a_blob_ban_reaches_every_holder_and_what_derives_from_them(
    estate: tuple[str, Path, dict[str, str]], weights: dict[str, bytes]
) -> None:
    url, _, subjects = estate
    digest = hashlib.sha256(weights["acme/base"]).hexdigest()
    code, preview = _json("blast-radius", "--blob", f"sha256:{digest}", url=url)
    assert code == 0
    named = sorted(m["subject"] for m in preview["models"] if m["relation"] == "named")
    assert named == sorted([subjects["acme/base"], subjects["mirror/base-copy"]])
    assert len(preview["models"]) == 6


def test_a_ban_registers_the_banned_weights_so_later_derivatives_are_reached(
    hub: HubEmulator, database_url: str, weights: dict[str, bytes], tmp_path: Path
) -> None:
    policy = tmp_path / "permissive.yaml"
    policy.write_text(POLICY)
    hub.add_repo("acme/base", _files(weights["acme/base"], []))
    code, scanned = _json("scan", "hf://acme/base", "--policy", str(policy), url=database_url)
    assert code == 0 and scanned["decision"] == "allow"
    # Never registered by hand: the ban registers what it names.
    assert _json("lineage", "list", url=database_url)[1] == {"schema_version": 1, "bases": []}
    code, banned = _json(
        "ban", "model", "acme/base", "--reason", "stolen weights", "--policy", str(policy),
        url=database_url,
    )  # fmt: skip
    assert code == 0 and banned["registered_bases"] == [scanned["scan_id"]]
    bases = _json("lineage", "list", url=database_url)[1]["bases"]
    assert [b["scan_id"] for b in bases] == [scanned["scan_id"]]

    hub.add_repo(LATE, _files(weights[LATE], []))
    code, late = _json("scan", f"hf://{LATE}", "--policy", str(policy), url=database_url)
    assert code == 1 and late["decision"] == "deny"
    ban_reasons = [r for r in late["policy"]["reasons"] if r["rule_id"] == "(ban)"]
    assert [r["message"] for r in ban_reasons] == ["banned model acme/base: stolen weights"]
    assert "reached through verified lineage" in ban_reasons[0]["evidence"][1]
