"""Time verifier's start-up against bare Python and picklescan, in the same run.

Writes one small benign pickle and a SQLite database already at the newest schema, then
alternates R times between:
  bare:       `python -c pass` (the interpreter verifier runs on);
  help:       `verifier --help` (the console script: interpreter, imports, click);
  picklescan: `picklescan --path ONE.pkl` (from the `compare` extra);
  scan:       `verifier scan ONE.pkl` recorded in the existing database.
Prints the median of each, in wall time and in CPU time (user + system of the child, which a
busy machine disturbs less), and the two figures the goals name: help minus bare (goal: within
0.25 s) and scan over picklescan (goal: within 3x).

With --before TREE (a checkout of verifier's sources, such as `git archive` of an older commit),
`help-before` and `scan-before` run that tree's `python -m verifier` in the same alternation
(PYTHONPATH=TREE, same interpreter, packages and database), so that a change is measured before
and after in one run.

Usage: python benchmarks/startup.py [--repeat R] [--dir D] [--before TREE]
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

#: The children's environment. Bytecode caching stays on whatever the caller's environment says:
#: an installed package has its `.pyc` files, and recompiling verifier's sources on every run
#: (PYTHONDONTWRITEBYTECODE=1) would measure the compiler, not the start-up.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(
    cmd: Sequence[str], *, ok: Sequence[int] = (0,), env: dict[str, str] | None = None
) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of `cmd`; exits when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False, env=env or ENV
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()[-400:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def tool(name: str) -> str:
    """A console script installed beside this interpreter (the same virtual environment)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        sys.exit(
            f"{name} is not installed: pip install -e '.[dev,compare]' (or the package itself)"
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--before", type=Path, default=None, help="an older source tree to compare")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="verifier-startup-"))
    work.mkdir(parents=True, exist_ok=True)
    sample = work / "ONE.pkl"
    # A small benign pickle (a checkpoint-like dict of plain values): both tools allow it.
    sample.write_bytes(pickle.dumps({"step": 1200, "loss": [0.5, 0.25], "name": "tiny"}, 4))
    ENV["VERIFIER_HOME"] = str(work / "home")
    ENV.pop("VERIFIER_DATABASE_URL", None)
    verifier, picklescan = tool("verifier"), tool("picklescan")
    subprocess.run([verifier, "db", "upgrade"], check=True, capture_output=True, env=ENV)

    commands = {
        "bare": [sys.executable, "-c", "pass"],
        "help": [verifier, "--help"],
        "picklescan": [picklescan, "--path", str(sample)],
        "scan": [verifier, "scan", str(sample), "-q"],
    }
    envs: dict[str, dict[str, str]] = {}
    if args.before is not None:
        # -P: the current folder (this checkout, perhaps) must not come before TREE on the path.
        old = [sys.executable, "-P", "-m", "verifier"]
        commands["help-before"] = [*old, "--help"]
        commands["scan-before"] = [*old, "scan", str(sample), "-q"]
        old_env = {**ENV, "PYTHONPATH": str(args.before.resolve())}
        envs = {"help-before": old_env, "scan-before": old_env}
    for name, cmd in commands.items():  # warm the page cache and the bytecode caches
        timed(cmd, env=envs.get(name))
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, cmd in commands.items():
            elapsed, used = timed(cmd, env=envs.get(name))
            wall[name].append(elapsed)
            cpu[name].append(used)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"runs: {args.repeat} of each, alternating; cores: {os.cpu_count()}; load: {load:.1f}")
    for label, times in (("wall", wall), ("cpu", cpu)):
        median = {name: statistics.median(values) for name, values in times.items()}
        for name in commands:
            spread = f"{min(times[name]):.3f}-{max(times[name]):.3f}"
            print(f"{label} {name:<11} median {median[name]:.3f} s  (range {spread})")
        over = median["help"] - median["bare"]
        ratio = median["scan"] / median["picklescan"]
        print(f"{label}: verifier --help over bare python: {over:+.3f} s (goal: within 0.25 s)")
        print(f"{label}: verifier scan / picklescan: {ratio:.2f}x (goal: within 3x)")
        if "scan-before" in median:
            old_ratio = median["scan-before"] / median["picklescan"]
            print(f"{label}: before: verifier scan / picklescan: {old_ratio:.2f}x")
    if args.dir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
