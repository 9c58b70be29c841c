"""Member listings against the readers themselves: the scanner walks what tarfile and zipfile list.

Nothing here loads or unpickles anything: members are compared as names, sizes and offsets. The
readers' own listings are the oracle (`tarfile.open(..., "r:").getmembers()`, which PyTorch's
legacy loader uses, and `zipfile.ZipFile(...).infolist()`, which Keras, `numpy.load` on `.npz`
and joblib use). A divergence is a member the loader reads and the scanner never opens, or a
tar the scanner walks while tarfile rejects it (PyTorch then unpickles the file from offset 0).

The rules, one per reader:
- tar: where tarfile lists members, the walk lists the same (name, link, type, size, data
  offset), or refuses the archive; where tarfile raises TarError, the walk does too.
- zip: where zipfile lists members, the directory read lists the same (name, local header
  offset, compressed and uncompressed size), or refuses the archive.

`tests/scanners/test_container_views.py` drives these with Hypothesis in CI. For a longer,
coverage-guided campaign with atheris (where it installs):

    pip install atheris
    python -m tests.scanners.container_views -atheris_runs=2000000 /tmp/views-corpus

which seeds `/tmp/views-corpus` (created if missing) with generated archives and stops at the
first divergence, leaving the input as `crash-<sha1>` in the working folder; keep it as a
regression case built by code in `test_container_views.py`.
"""

from __future__ import annotations

import inspect
import io
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks.corpus.container_bypasses import pax_records, plain_zip, tar_header
from tests.scanners.streams import BytesScanStream
from verifier.scanners.archive import ZipStructureError, read_directory
from verifier.scanners.tar import TarReadError, TarWalker, _NotFollowed

#: What a reader or the scanner did instead of listing members.
FAILS = "fails"
REFUSED = "refused"
OTHER = "other-error"

TarRow = tuple[str, str, bytes, int, int]
ZipRow = tuple[str, int, int, int]


def tarfile_view(data: bytes) -> list[TarRow] | str:
    """What tarfile lists; FAILS when it raises TarError (torch.load's cue to unpickle)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            members = tar.getmembers()
    except tarfile.TarError:
        return FAILS
    except Exception:
        return OTHER
    return [(m.name, m.linkname, m.type, m.size, m.offset_data) for m in members]


def walker_view(data: bytes) -> list[TarRow] | str:
    """What the scanner's tar walk lists; FAILS where it predicts TarError, REFUSED if it stops."""
    walker = TarWalker(BytesScanStream(data))
    rows: list[TarRow] = []
    try:
        while (m := walker.next_member()) is not None:
            rows.append((m.name, m.linkname, m.kind, m.size, m.data_offset))
    except TarReadError:
        return FAILS
    except _NotFollowed:
        return REFUSED
    return rows


def tar_agrees(data: bytes) -> tuple[bool, object, object]:
    """Whether the walk matches tarfile on `data`, and both views."""
    theirs, ours = tarfile_view(data), walker_view(data)
    if theirs == OTHER or ours == REFUSED:
        return True, theirs, ours
    return theirs == ours, theirs, ours


def zipfile_view(data: bytes) -> list[ZipRow] | str:
    """What zipfile lists, or FAILS when it cannot open the archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except Exception:
        return FAILS
    return [(i.filename, i.header_offset, i.compress_size, i.file_size) for i in infos]


def directory_view(data: bytes) -> list[ZipRow] | str:
    """What the scanner's directory read lists, or REFUSED (a finding that blocks)."""
    try:
        entries = read_directory(BytesScanStream(data))
    except ZipStructureError:
        return REFUSED
    return [(e.name, e.offset, e.compressed, e.size) for e in entries]


def zip_agrees(data: bytes) -> tuple[bool, object, object]:
    """Whether the directory read matches zipfile on `data` (refusing always agrees)."""
    theirs, ours = zipfile_view(data), directory_view(data)
    if theirs == FAILS or ours == REFUSED:
        return True, theirs, ours
    return theirs == ours, theirs, ours


# --- seeds: archives written the ways real tools and attackers write them ---------------------


def _tar_member(name: bytes, data: bytes, **kw: object) -> bytes:
    size = kw.pop("size", len(data))
    assert isinstance(size, int)
    padded = data + bytes(-len(data) % 512)
    return tar_header(name, size, **kw) + padded  # type: ignore[arg-type]


def tar_seeds() -> list[bytes]:
    """Small tars: plain, pax x and g, GNU long names, directories with sizes, links."""
    end = bytes(1024)
    body = b"(dp0\n." * 20
    pax = pax_records({"path": "renamed/pickle", "size": "512"})
    long_name = b"very/" * 30 + b"long"
    return [
        _tar_member(b"a", body) + _tar_member(b"b/", b"", kind=b"5") + end,
        _tar_member(b"././@PaxHeader", pax, kind=b"x")
        + _tar_member(b"c", bytes(512), size=0)
        + end,
        _tar_member(b"pax_global_header", pax, kind=b"g") + _tar_member(b"d", body) + end,
        _tar_member(b"././@LongLink", long_name + b"\0", kind=b"L") + _tar_member(b"e", body) + end,
        _tar_member(b"dir/", body, kind=b"5") + _tar_member(b"f", body) + end,
        _tar_member(b"link", b"", kind=b"2", linkname=b"../../x") + end,
        _tar_member(b"g", body, good_checksum=False) + end,
    ]


def zip_seeds() -> list[bytes]:
    """Small zips: stored, deflated, zip64 records, comment, data before and after."""
    members = {"archive/data.pkl": b"(dp0\n." * 10, "archive/version": b"3\n", "x.txt": b"hi"}
    plain = plain_zip(members)
    deflated = plain_zip(members, compression=zipfile.ZIP_DEFLATED)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            with archive.open(name, "w", force_zip64=True) as handle:
                handle.write(data)
        archive.comment = b"a comment"
    return [plain, deflated, buffer.getvalue(), b"J" * 37 + plain, plain + b"T" * 9]


def _instrument(module: ModuleType, instrument: Callable[[Any], object]) -> None:
    """Instrument every function and method defined in `module` (in place)."""
    for value in list(vars(module).values()):
        owned = getattr(value, "__module__", None) == module.__name__
        if inspect.isfunction(value) and owned:
            instrument(value)
        elif inspect.isclass(value) and owned:
            for member in vars(value).values():
                if inspect.isfunction(member):
                    instrument(member)


def _atheris_main() -> None:  # pragma: no cover - the longer campaign, run by hand
    import atheris

    def check(data: bytes) -> None:
        for agrees in (tar_agrees, zip_agrees):
            same, theirs, ours = agrees(data)
            if not same:
                raise AssertionError(f"{agrees.__name__}: reader {theirs!r}, scanner {ours!r}")

    folders = [a for a in sys.argv[1:] if not a.startswith("-")]
    for folder in folders:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for index, seed in enumerate(tar_seeds() + zip_seeds()):
            (Path(folder) / f"seed-{index}").write_bytes(seed)
    from verifier.scanners import archive, tar

    for module in (archive, tar, tarfile, zipfile):  # coverage of both sides
        _instrument(module, atheris.instrument_func)
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    _atheris_main()
