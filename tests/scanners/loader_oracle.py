"""The real loaders, run in a subprocess on marker-only payloads: one request per line.

Protocol: each stdin line is JSON {"path", "loader", "marker"}; each stdout line is JSON
{"ran": bool, "error": str | null, "members": [...]}: whether the marker file appeared while the
loader read the file, and what it listed. Used by the differential tests only; the scanner
never imports this. Loaders:
- torch: torch.load(path, weights_only=False) (torch's zip reader, tarfile, pickle fallback)
- joblib: joblib.load(path)
- gzip, bz2, lzma: pickle.load(<module>.open(path))
- tar-members: every member tarfile lists, read with extractfile and pickle.loads
- zip-members: every member zipfile lists, read and pickle.loads
- pickle: pickle.load of the file
- numpy: numpy.load(path, allow_pickle=True), and every member of an .npz
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import pickle
import signal
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

TIMEOUT = 30


def _timeout(signum: int, frame: Any) -> None:
    raise TimeoutError("loader timed out")


def _members_tar(path: Path) -> list[str]:
    with tarfile.open(path, mode="r:") as tar:
        members = tar.getmembers()
        for info in members:
            with contextlib.suppress(Exception):
                handle = tar.extractfile(info)
                if handle is not None:
                    pickle.loads(handle.read())
    return [info.name for info in members]


def _members_zip(path: Path) -> list[str]:
    names = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            names.append(info.filename)
            with contextlib.suppress(Exception):
                pickle.loads(archive.read(info))
    return names


def run(path: Path, loader: str) -> list[str]:
    """Load `path` with `loader`; return the member names it listed (if any)."""
    if loader == "torch":
        import torch

        torch.load(path, weights_only=False)
    elif loader == "joblib":
        import joblib

        joblib.load(path)
    elif loader in ("gzip", "bz2", "lzma"):
        module: Any = importlib.import_module(loader)
        with module.open(path) as handle:
            pickle.load(handle)
    elif loader == "tar-members":
        return _members_tar(path)
    elif loader == "zip-members":
        return _members_zip(path)
    elif loader == "numpy":
        import numpy

        loaded = numpy.load(path, allow_pickle=True)
        if isinstance(loaded, numpy.lib.npyio.NpzFile):
            with loaded:
                return [name for name in loaded.files if loaded[name] is not None]
    elif loader == "pickle":
        with open(path, "rb") as handle:
            pickle.load(io.BufferedReader(handle))
    else:
        raise ValueError(f"unknown loader {loader}")
    return []


def main() -> None:
    # Imported before any request (and its alarm): a half-imported torch stays broken.
    import joblib  # noqa: F401
    import torch  # noqa: F401

    signal.signal(signal.SIGALRM, _timeout)
    for line in sys.stdin:
        request = json.loads(line)
        marker = Path(request["marker"])
        error = None
        members: list[str] = []
        signal.alarm(TIMEOUT)
        try:
            members = run(Path(request["path"]), request["loader"])
        except BaseException as exc:  # the loader's failure is an answer, not a crash
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        finally:
            signal.alarm(0)
        reply = {"ran": marker.exists(), "error": error, "members": members}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
