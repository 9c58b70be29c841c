"""Time `verifier check` (the load-time gate) against `sha256sum` over the same files, in one run.

Writes a model folder (a few safetensors-sized files of random bytes, SIZE_MB in total, and the
small JSON files a model has) and its lockfile, then alternates R times between:
  bare:      `python -c pass` (the interpreter verifier runs on);
  sha256sum: `sha256sum FILE...` (coreutils: the floor for hashing the same bytes);
  check:     `verifier check DIR --lock L` (start-up, walk, hash, compare, report);
  server:    with --server, `verifier check DIR --server URL --model ...` against a stand-in
             service on loopback that answers the gate and the model record at once (the
             client's cost: start-up, two requests, hash, compare; not the service's).
Prints the median wall and CPU time of each, and the two figures docs/benchmarks.md quotes:
check over sha256sum (a ratio in the same run, so a busy machine disturbs both alike) and
check minus sha256sum (verifier's fixed cost: interpreter and imports).

Usage: python benchmarks/check_speed.py [--repeat R] [--size-mb N] [--dir D] [--server]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.startup import ENV, timed, tool
from verifier.lockfile import LockedFile, LockedModel, read_lock, write_lock


def make_model(folder: Path, size_mb: int) -> list[Path]:
    """A model folder: weights split in shards of random bytes, plus small JSON files."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = 4
    files = {
        "config.json": b'{"model_type": "bert", "hidden_size": 384}',
        "tokenizer.json": b'{"version": "1.0"}' * 1000,
    }
    for index in range(shards):
        files[f"model-{index + 1:05d}-of-{shards:05d}.safetensors"] = os.urandom(
            size_mb * 1024 * 1024 // shards
        )
    for name, data in files.items():
        (folder / name).write_bytes(data)
    entries = tuple(
        LockedFile(name, len(data), hashlib.sha256(data).hexdigest())
        for name, data in sorted(files.items())
    )
    write_lock(
        folder.parent / "models.lock",
        [LockedModel("acme/bench", "main", "b" * 40, "https://huggingface.co", entries)],
    )
    return [folder / name for name in sorted(files)]


COMMIT = "b" * 40


def stand_in_service(entries: tuple[LockedFile, ...]) -> ThreadingHTTPServer:
    """A loopback server with the two answers `check --server` asks for: an allow from the
    gate and the scan document of exactly these files (answers of the real service's shape)."""
    decision = {
        "decision": "allow", "target": f"hf://acme/bench@{COMMIT}", "environment": None,
        "scan_id": "bench", "policy": "default", "policy_digest": "sha256:0", "mode": "enforce",
        "status": "complete", "reasons": [], "waivers": [],
    }  # fmt: skip
    scan = {
        "scan_id": "bench", "status": "complete", "decision": "allow",
        "source": {"type": "huggingface", "repo_id": "acme/bench", "revision_requested": "main",
                   "commit": COMMIT, "endpoint": "https://huggingface.co"},
        "files": [{"path": e.path, "size": e.size, "sha256": e.sha256, "complete": True}
                  for e in entries],
    }  # fmt: skip
    bodies = {"/api/v1/decision": decision, "/api/v1/models/": {"scan": scan}}

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            [body] = [b for route, b in bodies.items() if self.path.startswith(route)]
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--server", action="store_true", help="also check against a service")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="verifier-check-"))
    model = work / "model"
    paths = make_model(model, args.size_mb)
    ENV["VERIFIER_HOME"] = str(work / "home")
    sha256sum = shutil.which("sha256sum")
    if sha256sum is None:
        sys.exit("sha256sum (coreutils) is not installed")
    commands = {
        "bare": [sys.executable, "-c", "pass"],
        "sha256sum": [sha256sum, *map(str, paths)],
        "check": [tool("verifier"), "check", str(model), "--lock", str(work / "models.lock")],
    }
    service = None
    if args.server:
        service = stand_in_service(read_lock(work / "models.lock")[0].files)
        url = f"http://127.0.0.1:{service.server_address[1]}"
        ENV["VERIFIER_TOKEN"] = "bench"
        commands["server"] = [
            *(tool("verifier"), "check", str(model), "--server", url),
            *("--model", f"acme/bench@{COMMIT}"),
        ]
    for cmd in commands.values():  # warm the page cache and the bytecode caches
        timed(cmd)
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, cmd in commands.items():
            elapsed, used = timed(cmd)
            wall[name].append(elapsed)
            cpu[name].append(used)
    load = os.getloadavg()[0]
    print(
        f"runs: {args.repeat} of each, alternating; {args.size_mb} MB in {len(paths)} files; "
        f"cores: {os.cpu_count()}; load: {load:.1f}"
    )
    for label, times in (("wall", wall), ("cpu", cpu)):
        median = {name: statistics.median(values) for name, values in times.items()}
        for name in commands:
            spread = f"{min(times[name]):.3f}-{max(times[name]):.3f}"
            print(f"{label} {name:<10} median {median[name]:.3f} s  (range {spread})")
        ratio = median["check"] / median["sha256sum"]
        fixed = median["check"] - median["sha256sum"]
        print(f"{label}: verifier check / sha256sum: {ratio:.2f}x ({fixed:+.3f} s)")
        if "server" in median:
            ratio = median["server"] / median["sha256sum"]
            extra = median["server"] - median["check"]
            print(f"{label}: check --server / sha256sum: {ratio:.2f}x ({extra:+.3f} s over --lock)")
    if service is not None:
        service.shutdown()
    if args.dir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
