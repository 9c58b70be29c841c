"""Regression fixtures for issue 11's container bypasses, each checked against its real loader.

Every fixture is built by code (`benchmarks/corpus/container_bypasses.py`). For each, the real
loader runs in a subprocess on a marker-only payload: the test first proves the bypass is real
(the loader runs the payload, or lists the escaping name), then that the scanner blocks it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.corpus import REGISTRY, load_all
from tests.scanners.oracle_client import LoaderOracle
from tests.scanners.streams import BytesScanStream
from verifier.model import Finding
from verifier.scanners.interface import ScanContext
from verifier.scanners.registry import scanner_for
from verifier.scanners.sniff import HEAD_SIZE, identify

load_all()

#: Bypass -> the loader that runs its payload.
RUNS_PAYLOAD = {
    "tar-pax-size-override": "torch",
    "tar-pax-global-size": "torch",
    "tar-gnu-longname-member": "torch",
    "tar-bad-checksum-pickle-at-zero": "torch",
    "tar-dir-with-size": "torch",
    "zip64-locator-elsewhere": "torch",
    "zip-count-below-directory": "zip-members",
    "gzip-multistream-payload": "gzip",
    "bz2-multistream-payload": "joblib",
    "xz-multistream-payload": "joblib",
    "zlib-empty-stored-blocks": "joblib",
    "joblib-legacy-zfile": "joblib",
    "joblib-alignment-zero": "joblib",
}

#: Bypass -> (loader that lists the member, the escaping name or link target).
ESCAPES = {
    "tar-member-traversal": ("tar-members", "../../evil.txt"),
    "tar-member-absolute": ("tar-members", "/etc/passwd"),
    "tar-member-backslash": ("tar-members", "..\\evil.txt"),
    "tar-hardlink-out": ("tar-members", "shadow"),
    "zip-member-traversal": ("zip-members", "../../evil.txt"),
    "zip-member-absolute": ("zip-members", "/etc/passwd"),
    "zip-member-backslash": ("zip-members", "..\\evil.txt"),
    "zip-symlink-out": ("zip-members", "link"),
}

#: Findings that show the scanner refused what it could not read exactly as the loader.
REFUSALS = frozenset({"CONTAINER-AMBIGUOUS", "ARCHIVE-UNSCANNABLE", "ARCHIVE-BOMB"})


def scan_bytes(data: bytes) -> list[Finding]:
    """Identify and scan `data` as a file."""
    fmt = identify(data[:HEAD_SIZE], len(data))
    scanner = scanner_for(fmt)
    if scanner is None:
        return []
    return list(scanner.scan(BytesScanStream(data), ScanContext("model.bin", fmt)))


def reports_payload(findings: list[Finding]) -> bool:
    """The scanner named the payload's callable, or refused the container."""
    return any(
        (f.code == "PICKLE-DANGEROUS-GLOBAL" and f.evidence == "os.system") or f.code in REFUSALS
        for f in findings
    )


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoaderOracle]:
    runner = LoaderOracle(tmp_path_factory.mktemp("oracle"))
    yield runner
    runner.close()


@pytest.mark.parametrize("name", sorted(RUNS_PAYLOAD))
def test_bypass_runs_under_its_loader_and_is_reported(oracle: LoaderOracle, name: str) -> None:
    marker_dir = oracle.marker_dir()
    data = REGISTRY[name].build(marker_dir)
    answer = oracle.ask(data, RUNS_PAYLOAD[name], marker_dir)
    assert answer.ran, f"the fixture no longer runs under {RUNS_PAYLOAD[name]}: {answer.error}"
    findings = scan_bytes(data)
    assert reports_payload(findings), sorted({f.code for f in findings})


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escaping_member_is_listed_by_its_reader_and_reported(
    oracle: LoaderOracle, name: str
) -> None:
    loader, member = ESCAPES[name]
    marker_dir = oracle.marker_dir()
    data = REGISTRY[name].build(marker_dir)
    answer = oracle.ask(data, loader, marker_dir)
    assert member in answer.members, answer
    assert "ARCHIVE-PATH-TRAVERSAL" in {f.code for f in scan_bytes(data)}


def test_every_container_bypass_sample_is_covered() -> None:
    from benchmarks.corpus import container_bypasses

    names = {t.name for t in REGISTRY.values() if t.build.__module__ == container_bypasses.__name__}
    assert names == set(RUNS_PAYLOAD) | set(ESCAPES)
