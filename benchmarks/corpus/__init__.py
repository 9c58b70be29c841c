"""A labelled corpus of malicious and benign model files, built by code.

Each sample is a *technique*: a builder function registered with `@technique(...)` (or
`@benign(...)`) in one of the modules listed in `BUILDER_MODULES`. A builder receives the folder
where a payload would leave its marker and returns either the file's bytes or a mapping of
relative paths to bytes (a multi-file model). Payloads are harmless if ever run: they only
create `MARKER_NAME` in that folder. Nothing here unpickles or loads what it builds.

To add samples from another part of the project, write a module with decorated builders and
append its dotted name to `BUILDER_MODULES`.

Usage: python -m benchmarks.corpus OUT   (writes OUT/{malicious,benign}/<name>/... and
OUT/labels.json)
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

MARKER_NAME = "verifier-payload-ran"

#: Modules whose import registers builders. Append yours here (one line per module).
BUILDER_MODULES: list[str] = [
    "benchmarks.corpus.pickles",
    "benchmarks.corpus.containers",
    "benchmarks.corpus.container_bypasses",
    "benchmarks.corpus.benign_files",
    "benchmarks.corpus.gguf_samples",
    "benchmarks.corpus.remote_code_samples",
    "benchmarks.corpus.session_samples",
    "benchmarks.corpus.keras_samples",
    "benchmarks.corpus.onnx_samples",
    "benchmarks.corpus.savedmodel_samples",
    "benchmarks.corpus.identification_samples",
    "benchmarks.corpus.sklearn_samples",
]

Built = bytes | Mapping[str, bytes]
Builder = Callable[[Path], Built]


@dataclass(frozen=True)
class Technique:
    """One labelled sample: how to build it and what a scanner must say about it."""

    name: str
    family: str
    malicious: bool
    filename: str
    expect: tuple[str, ...]  # for malicious samples: finding codes, any of which must appear
    advisory: str | None
    build: Builder
    description: str


REGISTRY: dict[str, Technique] = {}


def technique(
    name: str,
    *,
    family: str,
    malicious: bool = True,
    filename: str = "model.bin",
    expect: str | tuple[str, ...] = "PICKLE-DANGEROUS-GLOBAL",
    advisory: str | None = None,
) -> Callable[[Builder], Builder]:
    """Register a builder as a labelled sample.

    Args:
        name: Unique sample name (also its folder name).
        family: Group for reports (pickle, torch, numpy, joblib, archive, keras, gguf, ...).
        malicious: Whether a scanner must flag it.
        filename: File name to write when the builder returns bytes.
        expect: Finding code(s) of which at least one must appear (malicious samples).
        advisory: Public advisory or write-up the sample reproduces, if any.
    """

    def register(build: Builder) -> Builder:
        if name in REGISTRY:
            raise ValueError(f"duplicate corpus sample name {name!r}")
        codes = (expect,) if isinstance(expect, str) else tuple(expect)
        REGISTRY[name] = Technique(
            name=name,
            family=family,
            malicious=malicious,
            filename=filename,
            expect=codes if malicious else (),
            advisory=advisory,
            build=build,
            description=(build.__doc__ or "").strip().splitlines()[0] if build.__doc__ else "",
        )
        return build

    return register


def benign(name: str, *, family: str, filename: str = "model.bin") -> Callable[[Builder], Builder]:
    """Register a builder as a benign sample (must be allowed by the default policy)."""
    return technique(name, family=family, malicious=False, filename=filename, expect=())


def load_all() -> dict[str, Technique]:
    """Import every builder module and return the registry."""
    for module in BUILDER_MODULES:
        importlib.import_module(module)
    return REGISTRY


@dataclass(frozen=True)
class BuiltSample:
    """A sample written to disk: the folder to scan and its label."""

    technique: Technique
    path: Path  # the sample's folder (scan this)


def build_sample(tech: Technique, out: Path, marker_dir: Path) -> BuiltSample:
    """Write one sample under `out/<malicious|benign>/<name>/`."""
    folder = out / ("malicious" if tech.malicious else "benign") / tech.name
    folder.mkdir(parents=True, exist_ok=True)
    built = tech.build(marker_dir)
    files = {tech.filename: built} if isinstance(built, bytes) else dict(built)
    for rel, data in files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return BuiltSample(tech, folder)


def build_corpus(out: Path, marker_dir: Path) -> list[BuiltSample]:
    """Build every registered sample; write `labels.json` beside them."""
    samples = [build_sample(t, out, marker_dir) for t in load_all().values()]
    labels = [
        {
            "name": s.technique.name,
            "family": s.technique.family,
            "malicious": s.technique.malicious,
            "expect": list(s.technique.expect),
            "advisory": s.technique.advisory,
            "path": str(s.path.relative_to(out)),
        }
        for s in samples
    ]
    (out / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    return samples
