"""CPython's own unpicklers as the oracle: what would `pickle.load` import from these bytes?

A worker subprocess loads each sample with both unpicklers (the C `pickle.Unpickler` that
`pickle.load` uses, and the Python `pickle._Unpickler`), with `find_class` overridden to record
the name and hand back a harmless stub: the real parser decides what is read, and nothing the
sample names is ever imported or called. The worker stays up for a whole test module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from types import TracebackType
from typing import Any

_WORKER = r"""
import io, json, pickle, sys

def stub(*args, **kwargs):
    return None

def recording(base):
    class Recording(base):
        def find_class(self, module, name):
            self.seen.append(f"{module}.{name}")
            return stub
        def persistent_load(self, pid):
            return None
    return Recording

KINDS = [recording(pickle.Unpickler), recording(pickle._Unpickler)]
for line in sys.stdin:
    data = bytes.fromhex(line.strip())
    out, raised = [], []
    for kind in KINDS:
        unpickler = kind(io.BytesIO(data))
        unpickler.seen = []
        try:
            unpickler.load()
            raised.append(False)
        except Exception:
            raised.append(True)
        out.append(unpickler.seen)
    out.append(raised)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
"""


class Worker:
    """A Python worker process answering one JSON line for each hex line of bytes it is sent."""

    def __init__(self, source: str) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-c", source],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, data: bytes) -> Any:
        """The worker's answer for `data`."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(data.hex() + "\n")
        self._proc.stdin.flush()
        return json.loads(self._proc.stdout.readline())

    def close(self) -> None:
        """Stop the worker."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=30)
        self._proc.stdout.close()


class UnpicklerOracle(Worker):
    """A worker process that reports the names each CPython unpickler imports from bytes."""

    def __init__(self) -> None:
        super().__init__(_WORKER)

    def imports(self, data: bytes) -> set[str]:
        """Every name either unpickler asked `find_class` for before it stopped."""
        names, _ = self.outcome(data)
        return names

    def outcome(self, data: bytes) -> tuple[set[str], bool]:
        """The names either unpickler imported, and whether both raised (returned nothing)."""
        c_names, python_names, raised = self.ask(data)
        return set(c_names) | set(python_names), all(raised)

    def __enter__(self) -> UnpicklerOracle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
