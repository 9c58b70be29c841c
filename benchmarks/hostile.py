"""Hostile inputs (issue 13), built by code: each must finish fast, bounded, blocked or refused.

Every case is a folder (a model, or the policy, lockfile or signature it is scanned with) and
the `verifier` command line to run over it. `python benchmarks/hostile.py` runs each in a
child process and prints its exit code, wall time and peak memory (max RSS) as a Markdown
table for docs/benchmarks.md. tests/test_hostile.py runs the same builders (smaller where a
smaller case shows the same thing) and asserts the outcome, never the time.

    python benchmarks/hostile.py                 # every case, full size
    python benchmarks/hostile.py --case deep-folder --case config-empty-lists
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: A small benign model file that every model folder below holds besides the hostile part.
_BENIGN_JSON = b'{"model_type": "bert"}\n'


def pickle_with_globals(
    count: int, *, name: Callable[[int], tuple[str, str]] | None = None
) -> bytes:
    """A protocol-2 pickle that imports `count` distinct globals (GLOBAL then POP), then None."""
    name = name or (lambda i: (f"evil_module_{i}", f"thing_{i}"))
    parts = [b"\x80\x02"]
    for i in range(count):
        module, attr = name(i)
        parts.append(b"c" + module.encode() + b"\n" + attr.encode() + b"\n0")
    parts.append(b"N.")
    return b"".join(parts)


def write_pickle_globals(folder: Path, *, count: int = 200_000) -> list[str]:
    """A model whose one pickle imports `count` distinct unknown globals."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.pkl").write_bytes(pickle_with_globals(count))
    return ["scan", str(folder)]


def write_config_empty_lists(folder: Path, *, size_mb: int = 198) -> list[str]:
    """A model whose config.json is `size_mb` MB of empty lists (66 million objects at 198)."""
    folder.mkdir(parents=True, exist_ok=True)
    count = size_mb * 1_000_000 // 3
    with (folder / "config.json").open("wb") as out:
        out.write(b"[")
        block = b"[]," * 100_000
        for _ in range(count // 100_000):
            out.write(block)
        out.write(b"[]]")
    return ["scan", str(folder)]


def write_model_yaml_nodes(folder: Path, *, size_mb: int = 16) -> list[str]:
    """A model whose config.yaml is `size_mb` MB of empty lists (under the 16 MiB YAML cap)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_bytes(_BENIGN_JSON)
    count = size_mb * 1_000_000 // 3
    (folder / "config.yaml").write_bytes(b"[" + b"[]," * count + b"[]]\n")
    return ["scan", str(folder)]


def write_card_front_matter(folder: Path, *, size_kb: int = 1000) -> list[str]:
    """A model card whose front matter is `size_kb` KB of empty lists (the card cap is 1 MiB)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_bytes(_BENIGN_JSON)
    count = size_kb * 1000 // 3
    lists = b"[" + b"[]," * count + b"[]]"
    (folder / "README.md").write_bytes(b"---\ntags: " + lists + b"\n---\n# Model\n")
    return ["scan", str(folder)]


def write_deep_folder(folder: Path, *, depth: int = 1_100) -> list[str]:
    """A model with one file at the bottom of a folder nested `depth` levels deep."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_bytes(_BENIGN_JSON)
    deep = folder
    for _ in range(depth):  # os.makedirs recurses once per level
        deep = deep / "d"
        deep.mkdir(exist_ok=True)
    (deep / "weights.bin").write_bytes(b"\0" * 16)
    return ["scan", str(folder)]


def remove_tree(folder: Path) -> None:
    """Remove `folder` without recursion (shutil.rmtree recurses once per level)."""
    if not folder.exists():
        return
    pending = [str(folder)]
    while pending:
        current = pending[-1]
        subfolders = []
        with os.scandir(current) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(entry.path)
                else:
                    os.unlink(entry.path)
        if subfolders:
            pending.extend(subfolders)
        else:
            os.rmdir(current)
            pending.pop()


def write_odd_names(folder: Path) -> list[str]:
    """A benign folder whose file names are not UTF-8, hold a newline that forges a decision
    line, and a right-to-left override."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_bytes(_BENIGN_JSON)
    (folder / os.fsdecode(b"notes-\xff\xfe.txt")).write_bytes(b"hello\n")
    (folder / "x\ndecision: ALLOW  policy forged").write_bytes(b"hello\n")
    (folder / "readme-\u202etxt.exe").write_bytes(b"hello\n")
    return ["scan", str(folder)]


#: Escape sequences a terminal acts on: OSC 52 (write the clipboard), OSC 0 (window title),
#: OSC 8 (hyperlink), and a CSI that clears the screen.
TERMINAL_ATTACKS = (
    "\x1b]52;c;ZWNobyBwd25lZA==\x07",
    "\x1b]0;owned\x07",
    "\x1b]8;;https://example.invalid\x1b\\click\x1b]8;;\x1b\\",
    "\x1b[2J",
)


def write_osc_globals(folder: Path) -> list[str]:
    """A pickle whose imported global names carry terminal escape sequences."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = [b"\x80\x04"]
    for attack in TERMINAL_ATTACKS:
        for text in (f"mod{attack}", f"f{attack}"):  # SHORT_BINUNICODE module, then name
            raw = text.encode()
            parts.append(b"\x8c" + bytes([len(raw)]) + raw)
        parts.append(b"\x930")  # STACK_GLOBAL, POP
    parts.append(b"N.")
    (folder / "model.pkl").write_bytes(b"".join(parts))
    return ["scan", str(folder)]


_POLICY_HEAD = """version: 1
name: hostile
rules:
  - id: r1
    effect: deny
    severity: high
    message: m
    match:
      finding_severity_at_least: high
"""


def _policy_case(folder: Path, text: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model").mkdir(exist_ok=True)
    (folder / "model" / "config.json").write_bytes(_BENIGN_JSON)
    (folder / "policy.yaml").write_text(text, encoding="utf-8")
    return ["policy", "check", str(folder / "policy.yaml")]


def write_waiver_bad_date(folder: Path) -> list[str]:
    """A waiver that expires on 2025-02-30."""
    return _policy_case(
        folder,
        _POLICY_HEAD
        + "waivers:\n  - id: w1\n    rule: r1\n    subject: sha256:"
        + "0" * 64
        + "\n    expires: 2025-02-30\n    approved_by: a\n    ticket: T-1\n"
        "    justification: j\n",
    )


def write_when_parentheses(folder: Path, *, depth: int = 5_000) -> list[str]:
    """A `when:` of `depth` nested parentheses."""
    return _policy_case(
        folder,
        _POLICY_HEAD + f"  - id: r2\n    effect: warn\n    message: m\n    when: '{'(' * depth}"
        f"true{')' * depth}'\n",
    )


def write_when_comprehensions(folder: Path, *, nesting: int = 5) -> list[str]:
    """A `when:` of nested comprehensions over literal lists (10 ** nesting steps)."""
    inner = "true"
    for i in range(nesting):
        inner = f"[1,2,3,4,5,6,7,8,9,10].all(x{i}, {inner})"
    return _policy_case(
        folder,
        _POLICY_HEAD + f"  - id: r2\n    effect: warn\n    message: m\n    when: '{inner}'\n",
    )


def write_when_wide_comprehension(folder: Path, *, width: int = 900) -> list[str]:
    """Two nested comprehensions (the cap) over literal lists of `width` (width ** 2 steps)."""
    items = ",".join("1" for _ in range(width))
    expr = f"[{items}].all(a, [{items}].all(b, a == b))"
    return _policy_case(
        folder, _POLICY_HEAD + f"  - id: r2\n    effect: warn\n    message: m\n    when: '{expr}'\n"
    )


def write_policy_many_keys(folder: Path, *, keys: int = 40_000) -> list[str]:
    """A policy of about 470 KB: `keys` keys in one mapping."""
    lines = [_POLICY_HEAD.rstrip("\n"), "extra:"]
    lines += [f"  key_{i:06d}: value" for i in range(keys)]
    return _policy_case(folder, "\n".join(lines) + "\n")


def write_policy_unknown_keys(folder: Path, *, keys: int = 300) -> list[str]:
    """A policy with `keys` unknown top-level keys."""
    lines = [_POLICY_HEAD.rstrip("\n")]
    lines += [f"unknown_{i}: {i}" for i in range(keys)]
    return _policy_case(folder, "\n".join(lines) + "\n")


def deep_json(depth: int) -> bytes:
    """A JSON document nested `depth` levels deep."""
    return b'{"a":' * depth + b"1" + b"}" * depth


def write_deep_lockfile(folder: Path, *, depth: int = 100_000) -> list[str]:
    """A lockfile nested `depth` deep."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lock.json").write_bytes(deep_json(depth))
    return ["scan", "--lock", str(folder / "lock.json")]


def write_deep_signature(folder: Path, *, depth: int = 100_000) -> list[str]:
    """A model whose model.sig is nested `depth` deep."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_bytes(_BENIGN_JSON)
    (folder / "model.sig").write_bytes(deep_json(depth))
    return ["scan", str(folder)]


# -- zip bombs: zips built by hand from segments (bytes, or an int: that many zero bytes) ------

Segments = list[bytes | int]
_MIB = bytes(1 << 20)


def _size(parts: Segments) -> int:
    return sum(p if isinstance(p, int) else len(p) for p in parts)


@functools.cache
def _zeros_crc(count: int, crc: int) -> int:
    whole, rest = divmod(count, len(_MIB))
    for _ in range(whole):
        crc = zlib.crc32(_MIB, crc)
    return zlib.crc32(_MIB[:rest], crc)


def _crc(parts: Segments) -> int:
    crc = 0
    for part in parts:
        crc = _zeros_crc(part, crc) if isinstance(part, int) else zlib.crc32(part, crc)
    return crc


def _deflate(parts: Segments) -> bytes:
    """Raw deflate of `parts`; a run of zeros costs one compressed MiB block, repeated
    (after a full flush the compressor's output for a MiB of zeros is always the same)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = b""
    out = []
    for part in parts:
        if isinstance(part, int):
            whole, rest = divmod(part, len(_MIB))
            out.append(packer.flush(zlib.Z_FULL_FLUSH))
            if whole and not block:
                block = packer.compress(_MIB) + packer.flush(zlib.Z_FULL_FLUSH)
                whole -= 1
                out.append(block)
            out.append(block * whole)
            out.append(packer.compress(_MIB[:rest]))
        else:
            out.append(packer.compress(part))
    out.append(packer.flush())
    return b"".join(out)


@dataclass(frozen=True)
class ZipMember:
    """One member: name, method (0 stored, 8 deflated), content (as segments)."""

    name: str
    method: int
    content: Segments


def zip_segments(members: list[ZipMember]) -> Segments:
    """A plain zip (no zip64) of `members`, as segments."""
    out: Segments = []
    central = bytearray()
    offset = 0
    for m in members:
        name = m.name.encode()
        data: Segments = [_deflate(m.content)] if m.method == 8 else list(m.content)
        crc, size, csize = _crc(m.content), _size(m.content), _size(data)
        fields = (20, 0, m.method, 0, 0, crc, csize, size, len(name), 0)
        out.append(b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", *fields) + name)
        out.extend(data)
        central += (
            b"PK\x01\x02"
            + struct.pack(
                "<HHHHHHIIIHHHHHII",
                20,
                20,
                0,
                m.method,
                0,
                0,
                crc,
                csize,
                size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
        offset += 30 + len(name) + csize
    out.append(
        bytes(central)
        + struct.pack(
            "<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), offset, 0
        )
    )
    return out


def materialise(parts: Segments) -> bytes:
    """The bytes `parts` stand for."""
    return b"".join(bytes(p) if isinstance(p, int) else p for p in parts)


def write_zip_wide_bomb(folder: Path, *, members: int = 8, member_size: int = 1 << 30) -> list[str]:
    """A zip of `members` members that each inflate to `member_size` zero bytes (8 MB at the
    defaults: each member is 1 GiB from 1 MB, under the per-member ratio rule)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_bytes(_BENIGN_JSON)
    zeros = [ZipMember(f"part{i}.bin", 8, [member_size]) for i in range(members)]
    (folder / "bundle.zip").write_bytes(materialise(zip_segments(zeros)))
    return ["scan", str(folder)]


def nested_zip(levels: int, pad: int, inner: list[ZipMember]) -> bytes:
    """A zip of `inner`, wrapped `levels` times in a zip that holds the previous one deflated;
    every wrapper but the outermost also holds `pad` stored zero bytes, so each level is large
    once inflated and the file on disk is small."""
    data = zip_segments(inner)
    for level in range(levels):
        wrapper = [ZipMember("inner.zip", 8, data)]
        if level < levels - 1:
            wrapper.append(ZipMember("pad.bin", 0, [pad]))
        data = zip_segments(wrapper)
    return materialise(data)


#: A pickle that runs `id` when loaded.
EVIL_PICKLE = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R."


def write_zip_nested_bomb(folder: Path, *, levels: int = 3, pad: int = 250 << 20) -> list[str]:
    """A 260 KB zip nested `levels` deep, each level about `pad` bytes once inflated; the
    innermost holds a pickle that runs a command, after `pad` bytes of zeros."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_bytes(_BENIGN_JSON)
    inner = [ZipMember("weights.bin", 0, [pad]), ZipMember("payload.pkl", 0, [EVIL_PICKLE])]
    (folder / "bundle.zip").write_bytes(nested_zip(levels, pad, inner))
    return ["scan", str(folder)]


def write_keras_deflated_hdf5(folder: Path, *, size: int = 250 << 20) -> list[str]:
    """A 260 KB .keras zip whose deflated HDF5 member inflates to `size` bytes (an HDF5 file is
    read by offset, so a compressed one is the one member held in memory, up to 256 MiB)."""
    folder.mkdir(parents=True, exist_ok=True)
    member = ZipMember("model.weights.h5", 8, [b"\x89HDF\r\n\x1a\n", size - 8])
    (folder / "model.keras").write_bytes(materialise(zip_segments([member])))
    return ["scan", str(folder)]


def write_keras_config_lists(folder: Path, *, size_mb: int = 60) -> list[str]:
    """A 60 KB .keras zip whose deflated config.json is `size_mb` MB of empty lists (under the
    64 MiB config cap: 20 million objects for json.loads)."""
    folder.mkdir(parents=True, exist_ok=True)
    lists = b"[" + b"[]," * (size_mb * 1_000_000 // 3) + b"[]]"
    member = ZipMember("config.json", 8, [lists])
    (folder / "model.keras").write_bytes(materialise(zip_segments([member])))
    return ["scan", str(folder)]


def write_safetensors_header_lists(folder: Path, *, size_mb: int = 90) -> list[str]:
    """A safetensors file whose header is `size_mb` MB of empty lists (the library's cap is 100
    MB; verifier's is 16 MiB)."""
    folder.mkdir(parents=True, exist_ok=True)
    lists = b"[" + b"[]," * (size_mb * 1_000_000 // 3) + b"[]]"
    header = b'{"__metadata__":{"a":"b"},"x":' + lists + b"}"
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    return ["scan", str(folder)]


def write_safetensors_metadata_string(folder: Path, *, size: int = (16 << 20) - 64) -> list[str]:
    """A safetensors file whose header, just under the 16 MiB cap, is one metadata string with
    one character outside the Basic Multilingual Plane (Python then stores four bytes a
    character, in the decoded header and in the parsed string)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = b"x" * (size - 32) + "\U0001f600".encode()
    header = b'{"__metadata__":{"a":"' + text + b'"}}'
    header += b" " * (-len(header) % 8)
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    return ["scan", str(folder)]


def write_safetensors_many_tensors(folder: Path, *, count: int = 140_000) -> list[str]:
    """A valid safetensors file of `count` one-element tensors: a header just under the node
    cap (seven values a tensor), every entry checked and fingerprinted."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = ",".join(
        f'"model.layers.{i}.weight":{{"dtype":"F32","shape":[1],'
        f'"data_offsets":[{4 * i},{4 * i + 4}]}}'
        for i in range(count)
    )
    header = ("{" + entries + "}").encode()
    header += b" " * (-len(header) % 8)
    data = struct.pack("<Q", len(header)) + header + bytes(4 * count)
    (folder / "model.safetensors").write_bytes(data)
    return ["scan", str(folder)]


def write_config_long_string(folder: Path, *, size_mb: int = 60) -> list[str]:
    """A model whose config.json is one string of `size_mb` MB (under the 64 MiB JSON cap)."""
    folder.mkdir(parents=True, exist_ok=True)
    body = b"x" * (size_mb * 1_000_000) + "\U0001f600".encode()
    (folder / "config.json").write_bytes(b'{"model_type": "bert", "note": "' + body + b'"}')
    return ["scan", str(folder)]


def write_config_astral_strings(folder: Path, *, size_mb: int = 60) -> list[str]:
    """A config.json of `size_mb` MB in strings just under the 4 MiB string cap, each with one
    character outside the Basic Multilingual Plane (each parsed at four bytes a character)."""
    folder.mkdir(parents=True, exist_ok=True)
    piece = b'"' + b"x" * 4_000_000 + "\U0001f600".encode() + b'"'
    body = b",".join([piece] * (size_mb // 4))
    (folder / "config.json").write_bytes(b'{"model_type": "bert", "notes": [' + body + b"]}")
    return ["scan", str(folder)]


def write_tokenizer_with_emoji(folder: Path, *, tokens: int = 262_144) -> list[str]:
    """Not hostile: a tokenizer.json the shape of Gemma 3's (262,144 tokens, twice as many merges;
    an emoji token in fifty), to show the wide-string count does not refuse it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_bytes(_BENIGN_JSON)
    vocab = ",".join(
        f'"{chr(0x1F600 + i % 80)}{i}": {i}' if i % 50 == 0 else f'"\u2581tok{i}": {i}'
        for i in range(tokens)
    )
    merges = ",".join(f'"tok{i} {i}"' for i in range(2 * tokens))
    document = f'{{"model": {{"type": "BPE", "vocab": {{{vocab}}}, "merges": [{merges}]}}}}'
    (folder / "tokenizer.json").write_text(document, encoding="utf-8")
    return ["scan", str(folder)]


def write_python_lists(folder: Path, *, size_mb: int = 4) -> list[str]:
    """A model whose modeling_x.py is `size_mb` MB of empty lists (the source cap is 4 MiB)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_bytes(_BENIGN_JSON)
    count = size_mb * 1_000_000 // 3 - 10
    (folder / "modeling_x.py").write_bytes(b"x = [" + b"[]," * count + b"[]]\n")
    return ["scan", str(folder)]


@dataclass(frozen=True)
class Case:
    """One hostile input: its name, what issue 13 measured before, and its builder."""

    name: str
    before: str
    build: Callable[[Path], list[str]]


CASES = (
    Case("pickle-200k-globals", "44 s, 1 GB", write_pickle_globals),
    Case("config-empty-lists", "33 s, 5.1 GB, allowed", write_config_empty_lists),
    Case("model-yaml-16mb-of-lists", "2 MB: 55 s, 750 MB, allowed", write_model_yaml_nodes),
    Case("card-front-matter-1mb-of-lists", "18 s, 420 MB", write_card_front_matter),
    Case("python-4mb-of-lists", "(new) 140 s, 2.4 GB, allowed", write_python_lists),
    Case("deep-folder", "RecursionError, exit 1", write_deep_folder),
    Case("odd-file-names", "UnicodeEncodeError, exit 1", write_odd_names),
    Case("osc-global-names", "OSC sequences printed raw", write_osc_globals),
    Case("waiver-2025-02-30", "traceback", write_waiver_bad_date),
    Case("when-5000-parentheses", "RecursionError", write_when_parentheses),
    Case("when-nested-comprehensions", "over 150 s", write_when_comprehensions),
    Case("when-wide-comprehension", "(new)", write_when_wide_comprehension),
    Case("policy-40000-keys", "46 s", write_policy_many_keys),
    Case("policy-300-unknown-keys", "74 s", write_policy_unknown_keys),
    Case("lockfile-100000-deep", "RecursionError", write_deep_lockfile),
    Case("model-sig-100000-deep", "RecursionError, not recorded", write_deep_signature),
    Case("zip-8-members-of-1-gib", "47 s, allowed", write_zip_wide_bomb),
    Case("zip-nested-3-deep", "1.58 GB", write_zip_nested_bomb),
    Case("keras-deflated-hdf5-250mb", "(new) 835 MB", write_keras_deflated_hdf5),
    Case("keras-config-60mb-of-lists", "(new) 106 s, 2.9 GB", write_keras_config_lists),
    Case("safetensors-header-90mb-of-lists", "(new) 42 s, 2.4 GB", write_safetensors_header_lists),
    Case(
        "safetensors-header-16mib-metadata-string",
        "(new) 60 MB: 28 s, 7.0 GB",
        write_safetensors_metadata_string,
    ),
    Case(
        "safetensors-140000-tensors", "(new) 280,000: 14 s, 418 MiB", write_safetensors_many_tensors
    ),
    Case("config-json-60mb-string", "(new) 583 MiB", write_config_long_string),
    Case("config-json-60mb-astral-strings", "(new) 530 MiB, allowed", write_config_astral_strings),
    Case("tokenizer-json-emoji-tokens (benign)", "(new)", write_tokenizer_with_emoji),
)


def run_case(case: Case, work: Path) -> tuple[int, float, float, float, str]:
    """Build `case` in `work`, run verifier on it; (exit code, seconds, CPU seconds, peak MiB,
    stderr). CPU seconds (user and system) move far less than wall time with the machine's load.

    The case is built in a process of its own: Linux carries a process's peak memory across
    `exec`, so a child forked from a benchmark that had just built a large input in memory
    reported the benchmark's peak as its own (earlier figures were inflated by it).
    """
    built = subprocess.run(
        [sys.executable, __file__, "--build", case.name, "--dir", str(work)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    args = json.loads(built.stdout)
    env = {**os.environ, "VERIFIER_HOME": str(work / "home")}
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "verifier", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert child.stderr is not None
    stderr = child.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return child.returncode, seconds, cpu, usage.ru_maxrss / 1024, stderr


def main() -> int:
    """Run the cases and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", help="run only this case (repeatable)")
    parser.add_argument("--dir", type=Path, default=None, help="work folder [default: a temp]")
    parser.add_argument("--build", help=argparse.SUPPRESS)  # build one case, print its args
    options = parser.parse_args()
    if options.build:
        [case] = [c for c in CASES if c.name == options.build]
        print(json.dumps(case.build(options.dir / case.name)))
        return 0
    chosen = [c for c in CASES if not options.case or c.name in options.case]
    work = options.dir or Path(tempfile.mkdtemp(prefix="verifier-hostile-"))
    print("| case | before | exit | time (s) | CPU (s) | peak memory (MiB) | stderr |")
    print("|---|---|---|---|---|---|---|")
    try:
        for case in chosen:
            code, seconds, cpu, peak, stderr = run_case(case, work)
            line = json.dumps(stderr.strip().splitlines()[-1][:90] if stderr.strip() else "")
            print(
                f"| {case.name} | {case.before} | {code} | {seconds:.1f} | {cpu:.1f} | {peak:.0f}"
                f" | {line} |"
            )
            sys.stdout.flush()
            remove_tree(work / case.name)
    finally:
        if options.dir is None:
            remove_tree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
