"""A client for `loader_oracle.py`: one long-lived subprocess that runs the real loaders."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from benchmarks.corpus import MARKER_NAME

_SCRIPT = Path(__file__).with_name("loader_oracle.py")


@dataclass(frozen=True)
class LoaderAnswer:
    """What the real loader did with one file."""

    ran: bool
    error: str | None
    members: list[str]


class LoaderOracle:
    """Runs the real loaders in a subprocess; restarts it if a loader kills it."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, str(_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                cwd=self._workdir,
            )
        return self._proc

    def marker_dir(self) -> Path:
        """A fresh folder for one payload's marker."""
        folder = self._workdir / uuid.uuid4().hex
        folder.mkdir()
        return folder

    def ask(self, data: bytes, loader: str, marker_dir: Path) -> LoaderAnswer:
        """Write `data` beside the marker folder and load it with `loader`."""
        path = marker_dir / "model.bin"
        path.write_bytes(data)
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        request = {"path": str(path), "loader": loader, "marker": str(marker_dir / MARKER_NAME)}
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:  # the loader crashed the interpreter: an answer too
            self.close()
            return LoaderAnswer((marker_dir / MARKER_NAME).exists(), "crashed", [])
        reply = json.loads(line)
        return LoaderAnswer(bool(reply["ran"]), reply["error"], list(reply["members"]))

    def close(self) -> None:
        """Stop the subprocess."""
        if self._proc is not None:
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.close()
            self._proc.wait(timeout=60)
            self._proc.stdout.close()
        self._proc = None
