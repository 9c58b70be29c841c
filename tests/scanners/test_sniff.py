"""Content sniffing: real artifacts, hand-made headers, polyglots and text that must stay text."""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import struct
import tarfile
import zipfile
import zlib

import numpy as np
import pytest
import safetensors
import safetensors.numpy
import safetensors.torch
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.model import FileFormat
from verifier.scanners.sniff import HEAD_SIZE, identify

MIT_LICENCE = b"""MIT License

Copyright (c) 2024 Example Authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
"""
README = b"# Tiny model\n\nA model card.\n\n## Usage\n\n```python\nimport torch\n```\n"
PLAIN_DATA = {"a": [1, 2.5, "x", None, True], "b": (b"xy", 2**70), "c": {1, 2}}


def sniff(data: bytes) -> FileFormat:
    """What the pipeline would see: the first HEAD_SIZE bytes and the full size."""
    return identify(data[:HEAD_SIZE], len(data))


def torch_bytes(obj: object, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)  # type: ignore[arg-type]
    return buffer.getvalue()


def numpy_bytes(save: object, *args: object, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    save(buffer, *args, **kwargs)  # type: ignore[operator]
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes], *, compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def png_bytes() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + b"\xff\x00\x00" * 2 + b"\x00" + b"\x00\xff\x00" * 2)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def pb_varint(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def pb_bytes(field: int, body: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(body)) + body


def onnx_bytes() -> bytes:
    initializer = pb_bytes(1, pb_varint(1, 4)) + pb_bytes(9, struct.pack("<4f", 0, 1, 0, 0))
    graph = pb_bytes(1, b'\n\x01x\x12\x01y"\x04Relu') + pb_bytes(2, b"main") + initializer
    opset = pb_bytes(1, b"") + pb_varint(2, 17)
    return (
        pb_varint(1, 8)
        + pb_bytes(2, b"pytorch")
        + pb_bytes(3, b"2.13.0")
        + pb_bytes(7, graph)
        + pb_bytes(8, opset)
    )


def sentencepiece_bytes() -> bytes:
    pieces = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("\u2581the", -2.5, 1), ("s", -3.0, 1)]
    body = b"".join(
        pb_bytes(
            1, pb_bytes(1, text.encode()) + b"\x15" + struct.pack("<f", score) + pb_varint(3, kind)
        )
        for text, score, kind in pieces
    )
    trainer = pb_bytes(2, pb_bytes(1, b"corpus.txt") + pb_varint(3, 8000))
    return body + trainer


def safetensors_with_header_length(length: int, *, data: int = 0) -> tuple[bytes, int]:
    """The head of a safetensors file whose header is exactly `length` bytes, and its size."""
    header = json.dumps({"__metadata__": {"pad": ""}}).encode()
    pad = length - len(header)
    header = json.dumps({"__metadata__": {"pad": "x" * pad}}).encode()
    assert len(header) == length
    head = length.to_bytes(8, "little") + header[: HEAD_SIZE - 8]
    return head, 8 + length + data


SAFETENSORS_FILES = {
    "numpy-f32": lambda: safetensors.numpy.save({"w": np.ones((3, 4), dtype=np.float32)}),
    "numpy-i64-meta": lambda: safetensors.numpy.save({"i": np.arange(5)}, metadata={"f": "np"}),
    "torch-bf16": lambda: safetensors.torch.save({"w": torch.ones(4, 4, dtype=torch.bfloat16)}),
    "torch-f8": lambda: safetensors.torch.save({"w": torch.zeros(8, dtype=torch.float8_e4m3fn)}),
    "empty": lambda: safetensors.numpy.save({}),
    "large": lambda: safetensors.torch.save({f"layer.{i}": torch.zeros(64) for i in range(2000)}),
}


@pytest.mark.parametrize("build", SAFETENSORS_FILES.values(), ids=SAFETENSORS_FILES.keys())
def test_real_safetensors_files(build: object) -> None:
    assert sniff(build()) is FileFormat.SAFETENSORS  # type: ignore[operator]


@pytest.mark.parametrize("length", [0x280, 0x380, 0x480, 0x580, 0x4B0280, 0x8A0280])
def test_safetensors_whose_length_bytes_look_like_a_pickle_header(length: int) -> None:
    # 0x280 starts b"\x80\x02": a naive prefix check would call this a protocol 2 pickle.
    head, size = safetensors_with_header_length(length, data=16)
    assert head[0] == 0x80 and 2 <= head[1] <= 5
    assert identify(head, size) is FileFormat.SAFETENSORS


def test_protocol_header_then_garbage_is_still_pickle() -> None:
    # Not safetensors, and an unpickler would start on it: report it as a pickle.
    assert sniff(b"\x80\x02K\x01\x00\x00garbage") is FileFormat.PICKLE


@settings(max_examples=300, deadline=None)
@given(length=st.integers(min_value=24, max_value=2**40), spaces=st.integers(0, 3))
def test_any_plausible_safetensors_length_sniffs_as_safetensors(length: int, spaces: int) -> None:
    header = b" " * spaces + b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    size = 8 + length + 4
    # The head the pipeline passes: the first HEAD_SIZE bytes, or the whole file.
    head = (length.to_bytes(8, "little") + header + b" " * HEAD_SIZE)[: min(HEAD_SIZE, size)]
    assert identify(head, size) is FileFormat.SAFETENSORS


def test_every_header_length_below_64k_sniffs_as_safetensors() -> None:
    # Length bytes such as b"N." or b"(." are also a complete (harmless) pickle; the header
    # that follows must still win. Exhaustive over two-byte lengths, with a realistic header.
    entries = (
        f'"model.layers.{i}.weight":{{"dtype":"BF16","shape":[64,64],'
        f'"data_offsets":[{i * 8192},{(i + 1) * 8192}]}}'
        for i in range(2000)
    )
    body = ('{"__metadata__":{"format":"pt"},' + ",".join(entries) + "}").encode()
    wrong = [
        length
        for length in range(2, 1 << 16)
        if identify(length.to_bytes(8, "little") + body[:length], 8 + length + 8)
        is not FileFormat.SAFETENSORS
    ]
    assert wrong == []


POLYGLOT_PAYLOAD = b"cos\nsystem\n(S'true'\ntR."


def safetensors_pickle_polyglot() -> bytes:
    """A valid safetensors file that is also a code-running pickle from offset 0.

    The length 0x1C55 reads as SHORT_BINSTRING of 28 bytes, which swallows the rest of the
    length and the start of the JSON; more SHORT_BINSTRINGs inside a metadata string hop
    over the header, and the pickle's GLOBAL/REDUCE sit in the tensor data.
    """
    size = len(POLYGLOT_PAYLOAD)
    tail = b'"},"w":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}' % (size, size)
    length = 0x1C55
    opening = b'{"__metadata__":{"x":"'
    middle = length - len(opening) - 2 - len(tail)
    hops = b""
    while middle > 0:
        # Hop lengths must be printable and not '"' or '\\' to stay inside the JSON string.
        step = min(126, middle - 2) if middle - 2 <= 126 or middle - 128 >= 37 else 60
        hops += b"U" + bytes([step]) + b"x" * step
        middle -= step + 2
    header = opening + hops + b"U" + bytes([len(tail)]) + tail
    assert len(header) == length and b"\\" not in hops and hops.count(b'"') == 0
    return length.to_bytes(8, "little") + header + POLYGLOT_PAYLOAD


def test_safetensors_that_is_also_a_code_running_pickle_is_pickle() -> None:
    polyglot = safetensors_pickle_polyglot()
    header, data_size = polyglot[8:0x1C5D], len(polyglot) - 0x1C5D
    assert safetensors.deserialize(polyglot)  # a loadable safetensors file...
    ops = [op.name for op, _, _ in pickletools.genops(polyglot)]  # ...and a well-formed pickle
    assert ops[-3:] == ["TUPLE", "REDUCE", "STOP"]
    assert json.loads(header)["w"]["shape"] == [data_size] == [len(POLYGLOT_PAYLOAD)]
    assert sniff(polyglot) is FileFormat.PICKLE


def test_safetensors_length_beyond_file_is_not_safetensors() -> None:
    data = safetensors.numpy.save({"w": np.ones(3, dtype=np.float32)})
    assert identify(data, len(data) - 20) is not FileFormat.SAFETENSORS


def test_torch_zip_checkpoint() -> None:
    assert sniff(torch_bytes({"w": torch.ones(3)})) is FileFormat.PYTORCH_ZIP


def test_torch_zip_with_large_first_tensor_is_still_torch() -> None:
    data = torch_bytes({"w": torch.ones(50_000)})
    assert len(data) > HEAD_SIZE
    assert sniff(data) is FileFormat.PYTORCH_ZIP


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_torch_legacy_checkpoint(protocol: int) -> None:
    data = torch_bytes(
        {"w": torch.ones(3)}, _use_new_zipfile_serialization=False, pickle_protocol=protocol
    )
    assert sniff(data) is FileFormat.PYTORCH_LEGACY


def test_torch_legacy_tar_format() -> None:
    members = {
        "sys_info": b"\x80\x02}q\x00.",
        "pickle": b"\x80\x02N.",
        "storages": b"\x80\x02K\x00.",
    }
    assert sniff(tar_bytes(members)) is FileFormat.PYTORCH_LEGACY


def test_other_tar_is_tar() -> None:
    assert sniff(tar_bytes({"notes.txt": b"hello\n"})) is FileFormat.TAR


def test_numpy_npy() -> None:
    assert sniff(numpy_bytes(np.save, np.arange(10))) is FileFormat.NUMPY


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_numpy_npz(save: object) -> None:
    data = numpy_bytes(save, a=np.ones(3), b=np.zeros((2, 2)))
    assert sniff(data) is FileFormat.NUMPY_NPZ


def test_plain_zip() -> None:
    assert sniff(zip_bytes({"a.txt": b"x", "b/c.bin": b"y"})) is FileFormat.ZIP


def test_empty_zip() -> None:
    data = zip_bytes({})
    assert data.startswith(b"PK\x05\x06")
    assert sniff(data) is FileFormat.ZIP


def test_zip_with_torch_member_named_anywhere_in_head() -> None:
    data = zip_bytes({"archive/readme.txt": b"hi", "archive/data.pkl": b"\x80\x02N."})
    assert sniff(data) is FileFormat.PYTORCH_ZIP


def test_zip_with_nested_data_pkl_is_plain_zip() -> None:
    assert sniff(zip_bytes({"a/b/data.pkl": b"\x80\x02N."})) is FileFormat.ZIP


@pytest.mark.parametrize("protocol", range(6))
def test_pickles_of_every_protocol(protocol: int) -> None:
    assert sniff(pickle.dumps(PLAIN_DATA, protocol=protocol)) is FileFormat.PICKLE


@pytest.mark.parametrize("protocol", range(6))
def test_pickles_larger_than_the_head(protocol: int) -> None:
    data = pickle.dumps([f"item {i}" * 5 for i in range(20_000)], protocol=protocol)
    assert len(data) > HEAD_SIZE
    assert sniff(data) is FileFormat.PICKLE


@pytest.mark.parametrize(
    "data",
    [
        b"cos\nsystem\n(S'true'\ntR.",
        b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.",
        # Code runs at REDUCE, before the unpickler meets the garbage that follows.
        b"cos\nsystem\n(S'true'\ntR\xff\xfe\x00garbage",
    ],
    ids=["protocol-0", "protocol-2", "call-then-garbage"],
)
def test_code_running_pickles(data: bytes) -> None:
    assert sniff(data) is FileFormat.PICKLE


def test_pickle_with_zip_appended_is_pickle() -> None:
    polyglot = pickle.dumps(PLAIN_DATA, protocol=2) + zip_bytes({"archive/data.pkl": b"x"})
    assert zipfile.is_zipfile(io.BytesIO(polyglot))
    assert sniff(polyglot) is FileFormat.PICKLE


def test_pickle_walk_that_hits_garbage_without_a_call_is_not_pickle() -> None:
    assert sniff(b"(I1\nI2\n\x00\x00\x00binary") is FileFormat.UNKNOWN


def test_gguf() -> None:
    key, value = b"general.architecture", b"llama"
    kv = struct.pack("<Q", len(key)) + key + struct.pack("<IQ", 8, len(value)) + value
    assert sniff(struct.pack("<4sIQQ", b"GGUF", 3, 1, 1) + kv) is FileFormat.GGUF


@pytest.mark.parametrize("offset", [0, 512, 1024, 2048])
def test_hdf5_signature_at_userblock_offsets(offset: int) -> None:
    data = b"\x00" * offset + b"\x89HDF\r\n\x1a\n" + b"\x00\x08\x08\x00" * 64
    assert sniff(data) is FileFormat.HDF5


def test_hdf5_signature_at_other_offsets_is_not_hdf5() -> None:
    assert sniff(b"\x00" * 100 + b"\x89HDF\r\n\x1a\n" + b"\x00" * 64) is FileFormat.UNKNOWN


def test_onnx() -> None:
    assert sniff(onnx_bytes()) is FileFormat.ONNX


@pytest.mark.parametrize(
    "data",
    [
        b"\x08\x07",  # ir_version alone
        b"\x08\x07\x12\xff\x7fpytorch",  # producer_name longer than the file
        b"\x08\x07\x98\x01\x00",  # field 19 is not a ModelProto field
        b"\x08\x07\x12\x02\xff\xfe",  # producer_name not UTF-8
    ],
)
def test_onnx_lookalikes(data: bytes) -> None:
    assert sniff(data) is not FileFormat.ONNX


def test_sentencepiece() -> None:
    assert sniff(sentencepiece_bytes()) is FileFormat.SENTENCEPIECE


def test_blank_lines_are_not_sentencepiece() -> None:
    assert sniff(b"\n\n\n\n\n\n\n\n\n\n\n\n") is FileFormat.TEXT


@pytest.mark.parametrize(
    "data",
    [
        png_bytes(),
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04;",
        b"GIF87a\x01\x00\x01\x00\x00\x00\x00;",
        b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00",
    ],
    ids=["png", "jpeg", "gif89a", "gif87a", "webp"],
)
def test_images(data: bytes) -> None:
    assert sniff(data) is FileFormat.IMAGE


@pytest.mark.parametrize(
    "data",
    [
        b'{"architectures": ["LlamaForCausalLM"], "hidden_size": 64}',
        b"[1, 2, 3]",
        b"\xef\xbb\xbf  \n\t{}",
        b'{"tokens": "' + "\u00e9".encode() * 40_000 + b'"}',
    ],
    ids=["object", "array", "bom-and-whitespace", "multibyte-cut-at-head-end"],
)
def test_json(data: bytes) -> None:
    assert sniff(data) is FileFormat.JSON


@pytest.mark.parametrize(
    "data",
    [
        README,
        MIT_LICENCE,
        b"Version 1.0\nThe model is good.\n" * 4000,
        b"Nice model\nwith weights\nbased on nothing\n",
        b"commit 4231370\nAuthor: someone\n\n    message\n",
        b"import torch\nmodel = torch.nn.Linear(2, 2)\n",
        b"model:\n  name: tiny\n  layers: 2\n",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>',
        "Gr\u00fc\u00dfe \u2014 \u00e9t\u00e9\n".encode() * 10_000,
    ],
    ids=["readme", "mit", "version-lines", "prose", "git-log", "python", "yaml", "svg", "utf8"],
)
def test_text_is_never_pickle(data: bytes) -> None:
    assert sniff(data) is FileFormat.TEXT


def test_text_with_nul_is_unknown() -> None:
    assert sniff(b"hello\x00world") is FileFormat.UNKNOWN


def test_invalid_utf8_is_unknown() -> None:
    assert sniff(b"caf\xe9 au lait") is FileFormat.UNKNOWN


def test_truncated_multibyte_is_only_allowed_at_a_cut_head() -> None:
    whole = b"abc\xc3"
    assert identify(whole, len(whole)) is FileFormat.UNKNOWN
    assert identify(whole, len(whole) + 10) is FileFormat.TEXT


def test_empty_file() -> None:
    assert identify(b"", 0) is FileFormat.EMPTY


def test_unknown_binary() -> None:
    assert sniff(bytes(range(1, 256)) + b"\x00" * 56) is FileFormat.UNKNOWN


def test_elf_is_an_executable() -> None:
    assert sniff(b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56) is FileFormat.EXECUTABLE


@settings(max_examples=500, deadline=None)
@given(head=st.binary(max_size=2048), extra=st.integers(min_value=0, max_value=2**64))
def test_identify_never_raises(head: bytes, extra: int) -> None:
    assert isinstance(identify(head, len(head) + extra), FileFormat)


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from(
        [b"\x80\x02", b"\x80\x04\x95", b"(", b"c", b"GGUF", b"PK\x03\x04", b"\x08\x07", b"\n"]
    ),
    body=st.binary(max_size=512),
)
def test_identify_never_raises_on_format_prefixes(prefix: bytes, body: bytes) -> None:
    data = prefix + body
    assert isinstance(identify(data, len(data)), FileFormat)
