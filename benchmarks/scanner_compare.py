"""Compare verifier with open pickle scanners on the labelled corpus.

Builds the corpus (benchmarks/corpus), then runs each tool's CLI on every sample folder, as a
new process each time, and prints a Markdown table: malicious samples detected, benign samples
flagged (false positives), errors (crashes, timeouts, "nothing scanned"), and total time.
Peers run only where installed (`pip install 'model-weights-verifier[compare]'`, or put their
virtual environment's bin folder first with --peer-bin).

With --real-savers the corpus is instead the real-saver corpus (tests/scanners/real_savers.py:
files written by torch, transformers, Lightning, joblib, scikit-learn, NumPy, Keras, gguf ... with
the libraries the `test` extra installs), every sample labelled benign: the table's false
positives are then what each tool denies of what real frameworks save. Keep the two apart: a
detection sample proves nothing about false positives.

Usage: python benchmarks/scanner_compare.py [--corpus DIR] [--real-savers] [--peer-bin DIR]
       [--tools a,b] [--timeout S] [--misses] [--whole]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.corpus import build_corpus  # noqa: E402

Outcome = str  # "flagged", "clean", "error"


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _verifier(path: Path, timeout: float, env: dict[str, str]) -> Outcome:
    exe = shutil.which("verifier", path=env["PATH"]) or "verifier"
    code = _run([exe, "scan", str(path), "--format", "json"], timeout, env)
    return {0: "clean", 1: "flagged"}.get(code, "error")


def _picklescan(path: Path, timeout: float, env: dict[str, str]) -> Outcome:
    code = _run(["picklescan", "-p", str(path)], timeout, env)
    return {0: "clean", 1: "flagged"}.get(code, "error")


def _modelscan(path: Path, timeout: float, env: dict[str, str]) -> Outcome:
    # 0 clean, 1 issues, 2 scan error, 3 no supported file found, 4 usage error.
    code = _run(["modelscan", "-p", str(path)], timeout, env)
    return {0: "clean", 1: "flagged", 3: "clean"}.get(code, "error")


def _fickling(path: Path, timeout: float, env: dict[str, str]) -> Outcome:
    # Fickling checks one file at a time: flagged if any file is; an exception is an error.
    outcomes = []
    for file in _files(path):
        code = _run(["fickling", "--check-safety", str(file)], timeout, env)
        outcomes.append({0: "clean", 1: "flagged"}.get(code, "error"))
    if "flagged" in outcomes:
        return "flagged"
    return "error" if "error" in outcomes else "clean"


def _modelaudit(path: Path, timeout: float, env: dict[str, str]) -> Outcome:
    code = _run(["modelaudit", "scan", str(path)], timeout, env)
    return {0: "clean", 1: "flagged"}.get(code, "error")


TOOLS: dict[str, tuple[str, Callable[[Path, float, dict[str, str]], Outcome]]] = {
    "verifier": ("verifier", _verifier),
    "picklescan": ("picklescan", _picklescan),
    "modelscan": ("modelscan", _modelscan),
    "fickling": ("fickling", _fickling),
    "modelaudit": ("modelaudit", _modelaudit),
}


def _run(cmd: list[str], timeout: float, env: dict[str, str]) -> int:
    try:
        done = subprocess.run(
            cmd, env=env, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return -1
    return done.returncode


@dataclass
class Tally:
    """One tool's results over the corpus."""

    detected: int = 0
    false_positives: int = 0
    errors: int = 0
    seconds: float = 0.0
    misses: list[str] = field(default_factory=list)
    flagged_benign: list[str] = field(default_factory=list)


def compare(
    corpus: Path, tools: list[str], timeout: float, env: dict[str, str]
) -> dict[str, Tally]:
    """Run every tool over every sample of the corpus."""
    labels = json.loads((corpus / "labels.json").read_text())
    results: dict[str, Tally] = {}
    for tool in tools:
        run = TOOLS[tool][1]
        tally = Tally()
        for label in labels:
            start = time.perf_counter()
            outcome = run(corpus / label["path"], timeout, env)
            tally.seconds += time.perf_counter() - start
            if outcome == "error":
                tally.errors += 1
            if label["malicious"]:
                if outcome == "flagged":
                    tally.detected += 1
                else:
                    tally.misses.append(f"{label['name']} ({outcome})")
            elif outcome == "flagged":
                tally.false_positives += 1
                tally.flagged_benign.append(label["name"])
        results[tool] = tally
        print(f"{tool}: done in {tally.seconds:.1f} s", file=sys.stderr)
    return results


def build_real_savers(out: Path) -> None:
    """Write the real-saver corpus under `out`, each sample labelled benign (labels.json)."""
    import pytest

    from tests.scanners import real_savers

    labels = []
    for name in real_savers.SAMPLES:
        try:
            folder = real_savers.build(name, out)
        except (Exception, pytest.skip.Exception) as exc:  # a saver this environment lacks
            print(f"real-saver sample {name} not written: {type(exc).__name__}", file=sys.stderr)
            continue
        labels.append({"name": name, "malicious": False, "path": folder.name})
    (out / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")


def table(results: dict[str, Tally], malicious: int, benign: int) -> str:
    """The comparison as a Markdown table."""
    lines = [
        f"| tool | detected (of {malicious}) | false positives (of {benign}) | errors | "
        "time (s) | s/file |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    total = malicious + benign
    for tool, t in results.items():
        lines.append(
            f"| {tool} | {t.detected} | {t.false_positives} | {t.errors} | "
            f"{t.seconds:.1f} | {t.seconds / total:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Build or reuse the corpus, run the tools, print the table (and misses with --misses)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--real-savers", action="store_true")
    parser.add_argument("--peer-bin", type=Path, default=None)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--misses", action="store_true")
    parser.add_argument(
        "--whole",
        action="store_true",
        help="also time one run of each tool over the whole corpus (engine speed without "
        "per-process start-up)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="verifier-compare-"))
    corpus = (args.corpus or work / "corpus").resolve()
    if not (corpus / "labels.json").exists():
        if args.real_savers:
            build_real_savers(corpus)
        else:
            build_corpus(corpus, work / "marker")
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent)]
        + ([str(args.peer_bin)] if args.peer_bin else [])
        + [env.get("PATH", "")]
    )
    # Keep runs offline and stateless: no telemetry, a private verifier home and database.
    env.update(
        {
            "VERIFIER_HOME": str(work / "home"),
            "DO_NOT_TRACK": "1",
            "PROMPTFOO_DISABLE_TELEMETRY": "1",
            "MODELAUDIT_DISABLE_TELEMETRY": "1",
            "HF_HUB_OFFLINE": "1",
        }
    )
    tools = [t for t in args.tools.split(",") if shutil.which(TOOLS[t][0], path=env["PATH"])]
    skipped = sorted(set(args.tools.split(",")) - set(tools))
    if skipped:
        print(f"not installed, skipped: {', '.join(skipped)}", file=sys.stderr)
    labels = json.loads((corpus / "labels.json").read_text())
    malicious = sum(1 for label in labels if label["malicious"])
    os.chdir(work)  # peers leave files in their working folder (fickling's safety_results.json)
    results = compare(corpus, tools, args.timeout, env)
    print(table(results, malicious, len(labels) - malicious))
    if args.whole:
        print("\n| tool | whole corpus, one run (s) |\n| --- | --- |")
        for tool in tools:
            if tool == "fickling":
                continue  # checks one file per run
            start = time.perf_counter()
            TOOLS[tool][1](corpus, args.timeout * 10, env)
            print(f"| {tool} | {time.perf_counter() - start:.1f} |")
    if args.misses:
        for tool, t in results.items():
            print(f"\n{tool} missed: {', '.join(t.misses) or 'none'}")
            print(f"{tool} flagged benign: {', '.join(t.flagged_benign) or 'none'}")
    marker = work / "marker" / "verifier-payload-ran"
    if marker.exists():
        print("WARNING: a payload ran (a tool executed a sample)", file=sys.stderr)


if __name__ == "__main__":
    main()
