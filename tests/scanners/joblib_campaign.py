"""joblib files and NumPy `.npz` archives against their loaders: differential check, fuzz campaign.

The oracles are the loaders' own code, in process and calling nothing a sample names:

- `joblib_reads`: `joblib.load`'s own steps. joblib's compressor detection and decompressor
  files (zlib, gzip, bz2, xz, lzma, lz4, and the legacy `ZF` z-files through
  `numpy_pickle_compat`), then its `NumpyUnpickler` (or the legacy `ZipNumpyUnpickler`), whose
  `load_build` reads a `NumpyArrayWrapper`'s array bytes, object arrays as a nested pickle. Its
  `find_class` records each name and hands back a stand-in that records calls, except the few
  classes joblib needs to read an array at all (`NumpyArrayWrapper`, `numpy.dtype`,
  `numpy.ndarray`), which are the real ones.
- `npz_reads`: what `numpy.load(allow_pickle=True)` on an `.npz` reads: every member name of
  `zipfile`'s directory is a key (`npz[name]` opens the last entry of that name), a member
  opening with the `.npy` magic is read by NumPy's own header reader, and an object array's
  pickle by both recording unpicklers (`pickle_campaign.npy_reads`).

Three places where these loaders allocate what a header declares are bounded, each where the
real loader fails anyway: array bytes longer than what is left (joblib allocates
`numpy.empty(count)` first, then finds the data short), `BYTEARRAY8` longer than what is left,
and a z-file or decompressed stream past 64 MiB (read as far as that).

The property, `disagreement(data)`: whenever a loader would call a name, or import a module
whose import alone runs code, the scan of the file as `model.joblib` (and `arrays.npz` for a
zip) names it in a finding or blocks the file. `tests/scanners/test_joblib_campaign.py` checks
it on mutated seeds in CI (JOBLIB_CAMPAIGN_EXAMPLES, default 60). The coverage-guided campaign
instruments the scanner's pickle, joblib, compressed, zip and NumPy readers and joblib's own:

    pip install atheris
    python -m tests.scanners.joblib_campaign -atheris_runs=300000 -rss_limit_mb=3000 \\
        -max_total_time=1800 /tmp/joblib-corpus

It stops at the first disagreement and leaves the input as `crash-<sha1>`; keep it as a named
regression case built by code in `test_joblib_campaign.py`.
"""

from __future__ import annotations

import contextlib
import io
import math
import pickle
import struct
import sys
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

from tests.scanners.container_views import _instrument
from tests.scanners.pickle_campaign import (
    BLOCKING,
    Reads,
    _dotted,
    _must_report,
    _scan,
    _stand_in,
    _unreported,
    npy_reads,
)

__all__ = ["BLOCKING", "Reads", "disagreement", "joblib_reads", "npz_reads", "seeds"]

#: Most bytes a decompressed stream, z-file or `.npz` member is read to.
READ_LIMIT = 64 << 20
_CHUNK = 1 << 16


def _read_prefix(handle: Any) -> bytes:
    """What a reader gets from `handle` before it fails or passes READ_LIMIT.

    A loader reading a corrupt stream has unpickled what came before the fault: that counts.
    """
    parts: list[bytes] = []
    total = 0
    with contextlib.suppress(Exception):
        while total < READ_LIMIT:
            chunk = handle.read(min(_CHUNK, READ_LIMIT - total))
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
    return b"".join(parts)


class _EndedZlib:
    """joblib's zlib decompressor, refusing input once its stream has ended.

    Found by this campaign: joblib's `BinaryZlibFile` (zlib and gzip) feeds a decompressor whose
    stream ended its own `unused_data` again; zlib appends it there, so bytes after the stream
    double on every turn and `joblib.load` spins until memory runs out, returning nothing for
    the read that reached the end. Stopping at that turn is what the oracle can afford.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    @property
    def unused_data(self) -> bytes:
        return bytes(self._inner.unused_data)

    def decompress(self, data: bytes) -> bytes:
        if self._inner.eof:
            raise EOFError("joblib would spin here: bytes after the zlib stream")
        out: bytes = self._inner.decompress(data)
        return out


def _decompressor_file(compressor: str, data: bytes) -> Any:
    """joblib's own decompressor file for `data`, with its spinning zlib turn stopped."""
    from joblib import numpy_pickle_utils

    handle = numpy_pickle_utils._COMPRESSORS[compressor].decompressor_file(io.BytesIO(data))
    if getattr(handle, "_decompressor", None) is not None:
        handle._decompressor = _EndedZlib(handle._decompressor)
    return handle


def _bounded_wrapper() -> type:
    from joblib.numpy_pickle import NumpyArrayWrapper

    class BoundedWrapper(NumpyArrayWrapper):  # type: ignore[misc]
        """joblib's wrapper, refusing array bytes longer than what is left before allocating."""

        def read_array(self, unpickler: Any, ensure_native_byte_order: Any) -> Any:
            if not _consistent(self.dtype):
                # NumPy trusts a pickled dtype state: names that its fields do not hold make
                # numpy.empty crash the process (found by this campaign). The real loader dies
                # here; nothing after it runs.
                raise EOFError("a dtype whose names and fields disagree: joblib.load crashes")
            with contextlib.suppress(Exception):
                if not self.dtype.hasobject:
                    count = math.prod(int(d) for d in self.shape) if len(self.shape) else 1
                    handle = unpickler.file_handle
                    left = len(handle.getbuffer()) - handle.tell()
                    if count * self.dtype.itemsize > left:
                        # joblib would allocate numpy.empty(count) and then find the data short.
                        raise EOFError("array data past the end")
            return super().read_array(unpickler, ensure_native_byte_order)

    return BoundedWrapper


def _consistent(dtype: Any) -> bool:
    """Whether a (possibly unpickled) dtype's names are all in its fields, at any depth."""
    try:
        names = dtype.names or ()
        fields = dtype.fields or {}
        if any(name not in fields for name in names):
            return False
        subarray = dtype.subdtype
        inner = [fields[name][0] for name in names] + ([subarray[0]] if subarray else [])
    except Exception:  # a dtype NumPy cannot describe: not used
        return False
    return all(_consistent(d) for d in inner)


def _real_classes() -> dict[tuple[str, str], object]:
    """What joblib needs to read a wrapper's array at all: everything else is a stand-in."""
    import numpy as np

    return {
        ("joblib.numpy_pickle", "NumpyArrayWrapper"): _bounded_wrapper(),
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
    }


def _bytearray8_bounded(self: Any) -> None:
    (size,) = struct.unpack("<Q", self.read(8))
    handle = self.file_handle if hasattr(self, "file_handle") else None
    if handle is not None and size > len(handle.getbuffer()) - handle.tell():
        raise pickle.UnpicklingError("BYTEARRAY8 past the end")  # joblib allocates, then fails
    self.append(bytearray(self.read(size)))


def _recording(base: type, reads: Reads) -> type:
    real = _real_classes()
    dispatch = dict(base.dispatch)  # type: ignore[attr-defined]
    dispatch[pickle.BYTEARRAY8[0]] = _bytearray8_bounded  # type: ignore[attr-defined]

    class Recording(base):  # type: ignore[misc, valid-type]
        def find_class(self, module: str, name: str) -> object:
            reads.imported.add((module, name))
            if (module, name) in real:
                return real[(module, name)]
            if not module or not _dotted(name):
                raise pickle.UnpicklingError(f"no such name {module}.{name}")
            return _stand_in((module, name), reads)

    Recording.dispatch = dispatch
    return Recording


def _zfile_content(data: bytes) -> bytes | None:
    """The pickle inside a legacy joblib z-file: joblib's own `read_zfile`, length bounded."""
    from joblib.numpy_pickle_compat import _MAX_LEN, read_zfile
    from joblib.numpy_pickle_utils import _ZFILE_PREFIX

    try:
        length = int(data[len(_ZFILE_PREFIX) : len(_ZFILE_PREFIX) + _MAX_LEN], 16)
    except ValueError:
        return None
    if length > READ_LIMIT:
        return None  # zlib.decompress would allocate it first; no campaign input holds that much
    try:
        content: bytes = read_zfile(io.BytesIO(data))
    except Exception:
        return None
    return content


def joblib_reads(data: bytes) -> Reads | None:
    """What `joblib.load` imports and calls reading `data` (stand-ins only); None: nothing read."""
    from joblib import numpy_pickle, numpy_pickle_compat, numpy_pickle_utils

    reads = Reads()
    compressor = numpy_pickle_utils._detect_compressor(io.BytesIO(data))
    if compressor == "compat":
        content = _zfile_content(data)
        if content is None:
            return None
        base: type = numpy_pickle_compat.ZipNumpyUnpickler

        def make(handle: io.BytesIO) -> Any:
            unpickler = base.__new__(_recording(base, reads))
            unpickler._filename, unpickler._dirname = "model.joblib", ""
            unpickler.mmap_mode, unpickler.file_handle = None, handle
            unpickler.np = __import__("numpy")
            pickle._Unpickler.__init__(unpickler, handle)  # type: ignore[attr-defined]
            return unpickler

    else:
        if compressor in numpy_pickle_utils._COMPRESSORS:
            try:
                content = _read_prefix(_decompressor_file(compressor, data))
            except Exception:
                return None
        else:
            content = data
        recording = _recording(numpy_pickle.NumpyUnpickler, reads)

        def make(handle: io.BytesIO) -> Any:
            return recording("model.joblib", handle, ensure_native_byte_order=True)

    with warnings.catch_warnings(), contextlib.suppress(Exception, RecursionError):
        warnings.simplefilter("ignore")
        make(io.BytesIO(content)).load()
    return reads


def npz_reads(data: bytes) -> Reads | None:
    """What `numpy.load(allow_pickle=True)` on an `.npz` reads through every key; None if no zip."""
    if not data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return None
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = list(dict.fromkeys(archive.namelist()))
    except Exception:
        return None
    reads = Reads()
    for name in names:
        try:
            member = archive.open(name)
        except Exception:
            continue
        body = _read_prefix(member)
        found = npy_reads(body)
        if found is not None:
            reads.imported |= found.imported
            reads.called |= found.called
    return reads


def disagreement(data: bytes) -> str | None:
    """Why the scanner and joblib or `numpy.load` disagree on `data`, or None."""
    joblib = joblib_reads(data)
    names = _must_report(joblib) if joblib else set()
    if names:
        missed = _unreported(names, _scan(data, "model.joblib"))
        if missed:
            return f"model.joblib: joblib.load runs {sorted(missed)}, allowed unreported"
    npz = npz_reads(data)
    names = _must_report(npz) if npz else set()
    if names:
        missed = _unreported(names, _scan(data, "arrays.npz"))
        if missed:
            return f"arrays.npz: numpy.load runs {sorted(missed)}, allowed unreported"
    return None


def _joblib_dump(value: object, compress: object = 0) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(value, buffer, compress=compress)  # type: ignore[arg-type]
    return buffer.getvalue()


def _zfile(payload: bytes) -> bytes:
    """A legacy joblib z-file (before 0.9.3) holding `payload`, built as joblib wrote them."""
    return b"ZF" + f"0x{len(payload):x}".encode().ljust(19) + zlib.compress(payload)


def seeds() -> list[bytes]:
    """Starting inputs: joblib dumps (arrays of several dtypes, object arrays, payload calls,
    every compressor), a z-file, and `.npz` archives (plain and object arrays, deflated)."""
    import collections

    import numpy as np

    call = b"\x80\x02cposix\nsystem\nq\x00X\x01\x00\x00\x00xq\x01\x85q\x02Rq\x03."
    objects = np.array([collections.OrderedDict(a=1), "b", None], dtype=object)
    values: list[object] = [
        np.arange(6, dtype="<f4").reshape(2, 3),
        {"w": np.arange(3, dtype="<i8"), "s": np.array(["ab", "c"]), "o": objects},
        [np.zeros((2, 2), dtype="|u1", order="F"), np.ones(2, dtype=[("a", "<i4"), ("b", "<f8")])],
    ]
    out = [_joblib_dump(value) for value in values]
    # A payload between two arrays: the fuzzer moves it into array bytes, padding, wrappers.
    out.append(out[0][:-1] + call)
    for compress in (("zlib", 3), ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)):
        out.append(_joblib_dump(values[1], compress))
    out.append(_zfile(call))
    for save in (np.savez, np.savez_compressed):
        buffer = io.BytesIO()
        save(buffer, a=np.arange(4, dtype="<f4"), b=objects)  # type: ignore[operator]
        out.append(buffer.getvalue())
    return out


def _atheris_main() -> None:  # pragma: no cover - the longer campaign, run by hand
    import atheris
    import joblib.numpy_pickle
    import joblib.numpy_pickle_compat
    import joblib.numpy_pickle_utils

    def check(data: bytes) -> None:
        reason = disagreement(data)
        if reason is not None:
            raise AssertionError(reason)

    for folder in [a for a in sys.argv[1:] if not a.startswith("-")]:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for index, seed in enumerate(seeds()):
            (Path(folder) / f"seed-{index}").write_bytes(seed)
    from verifier.scanners import archive, compressed, members, numpy_descr, pickle_walk, sniff
    from verifier.scanners import numpy as numpy_scanner
    from verifier.scanners import pickle as pickle_scanner

    instrumented = (
        pickle_scanner,
        pickle_walk,
        numpy_scanner,
        numpy_descr,
        compressed,
        archive,
        members,
        sniff,
        joblib.numpy_pickle,
        joblib.numpy_pickle_compat,
        joblib.numpy_pickle_utils,
    )
    for module in instrumented:
        _instrument(module, atheris.instrument_func)  # coverage of both sides
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    _atheris_main()
