"""Pickles and `.npy` files against the unpickler: the differential check, and its fuzz campaign.

The oracle is CPython's own parsing, in process and calling nothing: both unpicklers (the C
`pickle.Unpickler` that `pickle.load` uses and the Python `pickle._Unpickler`) with `find_class`
overridden to record the name and hand back a harmless stub, and for `.npy` files NumPy's own
header reader (`numpy.lib.format`), after which `numpy.load(allow_pickle=True)` would unpickle the
rest for an object dtype. Nothing a sample names is ever imported, so no payload can run.

The property, `disagreement(data)`: whenever a loader would call a name, or import a module
whose import alone runs code, the scanner either names it in a finding or blocks the file (a
finding of high or critical severity). A file the scanner lets through while the unpickler runs
something it did not report is a bypass.

`tests/scanners/test_pickle_campaign.py` checks the property on generated inputs in CI. The
longer, coverage-guided campaign (atheris, where it installs) mutates seeds from that test and
instruments both sides, the scanner's pickle and NumPy readers and the standard library's
`pickle`:

    pip install atheris
    python -m tests.scanners.pickle_campaign -atheris_runs=500000 /tmp/pickle-corpus

It stops at the first disagreement and leaves the input as `crash-<sha1>` in the working folder;
keep it as a named regression case built by code in `test_pickle_campaign.py`.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import pickletools
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from tests.scanners.container_views import _instrument
from tests.scanners.streams import BytesScanStream
from verifier.model import Finding, Severity
from verifier.pipeline import scan_stream
from verifier.scanners.sniff import HEAD_SIZE

BLOCKING = frozenset({Severity.HIGH, Severity.CRITICAL})


@dataclass
class Reads:
    """What the unpicklers did with some bytes: the names they imported, and those they called."""

    imported: set[tuple[str, str]] = field(default_factory=set)
    called: set[tuple[str, str]] = field(default_factory=set)


def _stand_in(name: tuple[str, str], reads: Reads) -> type:
    """A harmless class for `name`: constructing it (REDUCE, NEWOBJ, INST) records a call."""

    def new(cls: type, *args: object, **kwargs: object) -> object:
        reads.called.add(name)
        return object.__new__(cls)

    def ignore(self: object, *args: object, **kwargs: object) -> None:
        return None

    return type("StandIn", (), {"__new__": new, "__init__": ignore, "__setstate__": ignore})


def _recording(base: type[pickle.Unpickler], reads: Reads) -> type[pickle.Unpickler]:
    class Recording(base):  # type: ignore[misc, valid-type]
        def find_class(self, module: str, name: str) -> object:
            reads.imported.add((module, name))
            if not module or not _dotted(name):
                # `__import__("")` raises before any search (the C unpickler never gets here
                # with one); an attribute that is no identifier exists in no real module, so
                # the real lookup fails and the unpickler stops. Any other module name is
                # searched for on sys.path and may be found (`po#six.py`): a stand-in.
                raise pickle.UnpicklingError(f"no such name {module}.{name}")
            return _stand_in((module, name), reads)

        def persistent_load(self, pid: object) -> None:
            return None

    return Recording


def unpickler_reads(data: bytes) -> Reads:
    """What either CPython unpickler imports and calls while reading `data` (stand-ins only)."""
    reads = Reads()
    data, small_memo = _bounded(data)
    bases: list[type[pickle.Unpickler]] = [pickle._Unpickler]  # type: ignore[attr-defined]
    if small_memo:
        bases.append(pickle.Unpickler)
    for base in bases:
        # A reader that gives up has still done what it did so far: that counts.
        with contextlib.suppress(Exception, RecursionError):
            _recording(base, reads)(io.BytesIO(data)).load()
    return reads


#: The C unpickler keeps its memo in an array sized by the largest index put, and fills it:
#: `r` with index 0x21560a30 makes it write 9 GB. Inputs that put past this are read by the
#: Python unpickler alone (a dict memo, same semantics).
MEMO_INDEX_LIMIT = 1 << 20


_TEXT_PUT = re.compile(rb"p[ \t]*[+-]?([0-9_]+)")


def _small_memo(data: bytes) -> bool:
    """Whether no memo index the C unpickler could read here passes MEMO_INDEX_LIMIT.

    Read loosely on purpose (any `p` then digits, any `r` then four bytes): the C unpickler's
    own key parsing stops at a NUL, which `pickletools` does not, and an input wrongly judged
    large is still read by the Python unpickler.
    """
    for match in _TEXT_PUT.finditer(data):
        digits = match.group(1).replace(b"_", b"")
        if len(digits) > 7 or (digits and int(digits) > MEMO_INDEX_LIMIT):
            return False
    at = data.find(b"r")
    while at >= 0:
        if int.from_bytes(data[at + 1 : at + 5], "little") > MEMO_INDEX_LIMIT:
            return False
        at = data.find(b"r", at + 1)
    return True


def _bounded(data: bytes) -> tuple[bytes, bool]:
    """The bytes the oracle may give the unpicklers without their allocating gigabytes.

    Both unpicklers allocate a BYTEARRAY8's declared length before reading it; one longer
    than the file fails right after, so the bytes before it read the same. Returns those bytes
    and whether the C unpickler may read them too (see _small_memo).
    """
    stream = io.BytesIO(data)
    end = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for _ in pickletools.genops(stream):
                end = stream.tell()
        except Exception:
            if data[end : end + 1] == pickle.BYTEARRAY8:  # type: ignore[attr-defined]
                data = data[:end]
    return data, _small_memo(data)


def unpickler_imports(data: bytes) -> set[str]:
    """Every name either CPython unpickler looks up while reading `data`."""
    return {f"{module}.{name}" for module, name in unpickler_reads(data).imported}


def npy_reads(data: bytes) -> Reads | None:
    """What `numpy.load(allow_pickle=True)` would import from a `.npy` file, or None if it refuses.

    NumPy's own header reader decides the dtype and where the data starts; for an object dtype
    `numpy.load` hands the rest of the file to `pickle.load`, which the recording unpicklers read.
    """
    import numpy as np
    from numpy.lib import _format_impl as npformat  # the reader numpy.load itself calls

    stream = io.BytesIO(data)
    try:
        version = npformat.read_magic(stream)
        shape, _, dtype = npformat._read_array_header(stream, version, max_header_size=10**7)
    except (Exception, RecursionError):
        return None
    if not np.dtype(dtype).hasobject or 0 in shape:
        return Reads()
    return unpickler_reads(data[stream.tell() :])


def _scan(data: bytes, name: str) -> list[Finding]:
    _, findings, _ = scan_stream(BytesScanStream(data), name, data[:HEAD_SIZE])
    return findings


#: Standard modules whose import alone runs code with an effect (a browser, output).
IMPORT_RUNS_CODE = frozenset({"antigravity", "this"})


def _must_report(reads: Reads) -> set[str]:
    """The names a scan must name or block on: every call, and every import that runs code.

    A file that only imports a harmless name and calls nothing (a word list such as
    `cat\\ndog` reads as one import) is text for the scanner, its documented choice; an
    import of a standard module runs no code of the file's author, and one whose lookup fails
    (`posix.nosuch`, a line cut by the end of the file) calls nothing.
    """
    runs = reads.called | {(m, n) for m, n in reads.imported if m in IMPORT_RUNS_CODE}
    return {f"{module}.{name}" for module, name in runs if module and _dotted(name)}


def _dotted(name: str) -> bool:
    return all(part.isidentifier() for part in name.split("."))


def _unreported(names: set[str], findings: list[Finding]) -> set[str]:
    if any(f.severity in BLOCKING for f in findings):
        return set()
    said = " ".join(f"{f.evidence} {f.message}" for f in findings)
    return {name for name in names if name not in said}


def disagreement(data: bytes) -> str | None:
    """Why the scanner and the loaders disagree on `data` as a pickle and as a `.npy`, or None."""
    names = _must_report(unpickler_reads(data))
    if names:
        for name in ("model.pkl", "model.bin"):
            missed = _unreported(names, _scan(data, name))
            if missed:
                return f"{name}: the unpickler runs {sorted(missed)}, allowed unreported"
    npy = npy_reads(data)
    names = _must_report(npy) if npy else set()
    if names:
        missed = _unreported(names, _scan(data, "array.npy"))
        if missed:
            return f"array.npy: numpy.load runs {sorted(missed)}, allowed unreported"
    return None


def seeds() -> list[bytes]:
    """Starting inputs: pickles of every protocol, with and without a payload, and `.npy` files."""
    import numpy as np

    out: list[bytes] = []
    benign: object = {"weights": [1.5, 2], "name": "x", "nested": (None, True, b"b")}
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        out.append(pickle.dumps(benign, protocol=protocol))
    out.append(b"cposix\nsystem\n(S'x'\ntR.")
    out.append(
        b"\x80\x04\x95\x1b\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x8c\x06system\x93\x8c\x01x\x85R."
    )
    out.append(b"ccollections\nOrderedDict\n)R.")
    for array in (np.arange(4, dtype="<f4"), np.array([1, "a", None], dtype=object)):
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=True)
        out.append(buffer.getvalue())
    return out


def _atheris_main() -> None:  # pragma: no cover - the longer campaign, run by hand
    import atheris

    def check(data: bytes) -> None:
        reason = disagreement(data)
        if reason is not None:
            raise AssertionError(reason)

    folders = [a for a in sys.argv[1:] if not a.startswith("-")]
    for folder in folders:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for index, seed in enumerate(seeds()):
            (Path(folder) / f"seed-{index}").write_bytes(seed)
    from verifier.scanners import numpy as numpy_scanner
    from verifier.scanners import pickle as pickle_scanner
    from verifier.scanners import pickle_walk, sniff

    for module in (pickle_scanner, pickle_walk, numpy_scanner, sniff, pickle):
        _instrument(module, atheris.instrument_func)  # coverage of both sides
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    _atheris_main()
