"""Identification bypasses (issue 11): files a loader reads as code that a sniff could miss.

Pickles spelled the way CPython's unpicklers accept but a naive sniff rejects, NumPy object
dtypes spelled every way numpy reads them, executables under model names, a zip behind leading
bytes, data files with a zip at their end, and unidentified blobs; beside them, the plain data
real models carry (a BERT vocabulary, tiktoken ranks) that must stay allowed.
"""

from __future__ import annotations

import base64
import io
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.corpus import benign, technique
from benchmarks.corpus.containers import payload, torch_zip
from benchmarks.corpus.pickleasm import shell, string0

DANGEROUS = "PICKLE-DANGEROUS-GLOBAL"


def _call0(m: Path, arg: bytes = b"") -> bytes:
    """os.system(cmd) in protocol 0 text opcodes, after `arg` inside the argument tuple."""
    return b"cos\nsystem\n(" + arg + string0(shell(m)) + b"tR."


# --- Pickles as the unpickler reads them ----------------------------------------------------


@technique("pickle-int-hex-spelling", family="identification", expect=DANGEROUS)
def int_hex(m: Path) -> bytes:
    """INT written 0x1: `int(x, 0)` accepts it, `int(x)` does not (a text-looking pickle)."""
    return b"I0x1\n0" + _call0(m)


@technique("pickle-int-nul-ends-line", family="identification", expect=DANGEROUS)
def int_nul(m: Path) -> bytes:
    """INT whose line the C unpickler stops reading at a NUL."""
    return b"I1\x00anything\n0" + _call0(m)


@technique("pickle-proto0-header", family="identification", expect=DANGEROUS)
def proto0(m: Path) -> bytes:
    """PROTO 0 (accepted by CPython), then 16 KiB of no-ops before the call."""
    return b"\x80\x00" + b"N0" * 8192 + _call0(m)


@technique("pickle-comment-string-pop", family="identification", expect=DANGEROUS)
def comment(m: Path) -> bytes:
    """A 60 KB protocol-0 string popped as a comment, then the call."""
    return b"S'" + b"c" * 60_000 + b"'\n0" + _call0(m)


@technique("pickle-first-argument-past-window", family="identification", expect=DANGEROUS)
def past_window(m: Path) -> bytes:
    """A first BINUNICODE of 200 KB (past the 64 KiB identification window), popped."""
    return b"X" + struct.pack("<I", 200_000) + b"x" * 200_000 + b"0" + _call0(m)


@technique("pickle-proto4-binbytes-no-frame", family="identification", expect=DANGEROUS)
def binbytes_no_frame(m: Path) -> bytes:
    """Protocol 4 starting PROTO then a 100 KB BINBYTES, no FRAME."""
    return b"\x80\x04B" + struct.pack("<I", 100_000) + b"\x00" * 100_000 + b"0" + _call0(m)


@technique(
    "torch-zip-int-hex-data-pkl",
    family="identification",
    filename="pytorch_model.bin",
    expect=DANGEROUS,
)
def torch_int_hex(m: Path) -> bytes:
    """A PyTorch zip whose data.pkl opens with INT 0x1 (text to a naive member sniff)."""
    return torch_zip(b"I0x1\n0" + _call0(m))


# --- NumPy object dtypes however they are spelled -------------------------------------------


def _npy(descr: object, pickled: bytes, *, version: int = 1) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": (1,)})
    raw = header.encode("utf-8" if version == 3 else "latin-1")
    fixed = 10 if version == 1 else 12
    raw += b" " * (-(len(raw) + fixed + 1) % 64) + b"\n"
    length = struct.pack("<H" if version == 1 else "<I", len(raw))
    return b"\x93NUMPY" + bytes([version, 0]) + length + raw + pickled


_NUMPY_SPELLINGS: dict[str, tuple[object, int]] = {
    "object-name": ("object", 1),
    "object-underscore": ("object_", 1),
    "comma-string": ("i4,O", 1),
    "list-field": ([("a", "<i4"), ("b", "|O")], 1),
    "subarray": (("|O", (2,)), 2),
    "nested-field": ([("outer", [("inner", "O")])], 2),
    "version-3": ("object", 3),
}


def _numpy_builder(descr: object, version: int) -> Callable[[Path], bytes]:
    def build(m: Path) -> bytes:
        return _npy(descr, payload(m), version=version)

    build.__doc__ = f"Object array whose descr is {descr!r} (header version {version})."
    return build


for _name, (_descr, _version) in _NUMPY_SPELLINGS.items():
    technique(
        f"numpy-descr-{_name}", family="identification", filename="array.npy", expect=DANGEROUS
    )(_numpy_builder(_descr, _version))


@technique(
    "numpy-descr-dict",
    family="identification",
    filename="array.npy",
    expect="NUMPY-DTYPE-UNSUPPORTED",
)
def numpy_dict(m: Path) -> bytes:
    """A dict descr (older numpy reads it as fields, which may be objects): refused."""
    return _npy({"names": ["a"], "formats": ["O"]}, payload(m))


# --- Executables, zips behind leading bytes, polyglots, unknown content ---------------------


def _pe() -> bytes:
    dos = b"MZ\x90\x00" + b"\x00" * 56 + struct.pack("<I", 0x80)
    dos += b"\x00" * (0x80 - len(dos))
    return dos + b"PE\x00\x00" + struct.pack("<HH", 0x8664, 1) + b"\x00" * 240


@technique(
    "pe-named-bin",
    family="identification",
    filename="pytorch_model.bin",
    expect="FORMAT-EXECUTABLE",
)
def pe_named_bin(m: Path) -> bytes:
    """A Windows PE executable named like PyTorch weights."""
    return _pe()


@technique(
    "elf-named-safetensors-shard",
    family="identification",
    filename="weights.bin",
    expect="FORMAT-EXECUTABLE",
)
def elf(m: Path) -> bytes:
    """An ELF shared library named like a weight shard."""
    return b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + struct.pack("<HH", 3, 0x3E) + b"\x00" * 200


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@technique(
    "zip-behind-leading-junk",
    family="identification",
    filename="model.keras",
    expect=DANGEROUS,
)
def zip_behind_junk(m: Path) -> bytes:
    """100 junk bytes, then a zip holding a hostile pickle (zipfile and Keras still open it)."""
    return bytes(range(100)) + _zip({"model/data.pkl": payload(m)})


@technique("text-with-zip-appended", family="identification", filename="README.txt")
def text_zip(m: Path) -> bytes:
    """70 KB of text (past the window), then a zip with a hostile pickle at its end."""
    return b"A plain model card line.\n" * 2800 + _zip({"data.pkl": payload(m)})


@technique(
    "unidentified-blob",
    family="identification",
    filename="extra.bin",
    expect="FORMAT-UNKNOWN",
)
def blob(m: Path) -> bytes:
    """Bytes of no format the scanner analyses: never allowed unnamed."""
    return bytes(range(1, 256)) * 64 + b"\x00" * 64


# --- Plain data real models carry ------------------------------------------------------------


@benign("bert-vocab-txt", family="identification", filename="vocab.txt")
def bert_vocab(m: Path) -> bytes:
    """A BERT WordPiece vocabulary (starts `[PAD]`, which is not JSON)."""
    head = [b"[PAD]"] + [b"[unused%d]" % i for i in range(99)] + [b"[UNK]", b"[CLS]", b"[SEP]"]
    words = [b"the", b"of", b"and", b"##s", b"##ing", b"caf\xc3\xa9"]
    return b"\n".join(head + words * 500) + b"\n"


@benign("tiktoken-ranks", family="identification", filename="tokenizer.model")
def tiktoken(m: Path) -> bytes:
    """tiktoken BPE ranks: base64 token, space, rank, one per line."""
    tokens = [bytes([i]) for i in range(256)] + [b"the", b" and", b"ing"]
    return b"".join(base64.b64encode(t) + b" %d\n" % i for i, t in enumerate(tokens))


@benign("numpy-structured-plain", family="identification", filename="array.npy")
def numpy_plain(m: Path) -> bytes:
    """A structured array with a sub-array field and no object field."""
    return _npy([("a", "<i4"), ("b", "<f8", (2,))], b"\x00" * 20)


# --- Keras archives read as Keras reads them -------------------------------------------------


def _reencode_config(archive: bytes, encoding: str) -> bytes:
    """The same .keras archive with its config.json in another encoding (json.loads reads it)."""
    import codecs

    source = zipfile.ZipFile(io.BytesIO(archive))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "config.json":
                data = codecs.BOM_UTF16_LE + data.decode("utf-8").encode(encoding)
            out.writestr(info, data)
    return buffer.getvalue()


@technique(
    "keras-config-utf16",
    family="identification",
    filename="model.keras",
    expect="KERAS-LAMBDA-LAYER",
)
def keras_utf16(m: Path) -> bytes:
    """A Lambda-layer .keras whose config.json is UTF-16 (the sniff saw NULs and called it
    unknown; Keras's json.loads detects the encoding)."""
    from benchmarks.corpus.keras_samples import keras_lambda

    return _reencode_config(keras_lambda(m), "utf-16-le")


@technique(
    "keras-behind-leading-junk",
    family="identification",
    filename="model.keras",
    expect="KERAS-LAMBDA-LAYER",
)
def keras_junk(m: Path) -> bytes:
    """A Lambda-layer .keras behind 100 junk bytes (zipfile and Keras open it anyway)."""
    from benchmarks.corpus.keras_samples import keras_lambda

    return bytes(range(100)) + keras_lambda(m)
