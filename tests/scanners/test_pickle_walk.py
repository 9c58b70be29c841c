"""The opcode walk's symbolic values: joblib arrays, nested pickles, protocols, sniffing traps."""

from __future__ import annotations

import io
import pickle
import zlib
from pathlib import Path

import joblib
import numpy as np
import pytest
from click.testing import CliRunner

from benchmarks.corpus import pickleasm as asm
from tests.scanners.streams import BytesScanStream
from verifier.cli import cli
from verifier.model import FileFormat, Finding
from verifier.scanners.interface import ScanContext
from verifier.scanners.pickle import PickleScanner, analyse_pickle
from verifier.scanners.registry import scanner_for
from verifier.scanners.sniff import compression_kind, identify


def _findings(data: bytes, name: str = "x.pkl") -> list[Finding]:
    fmt = identify(data[:65536], len(data))
    scanner = scanner_for(fmt)
    assert scanner is not None, fmt
    return list(scanner.scan(BytesScanStream(data), ScanContext(name, fmt)))


def _joblib(tmp_path: Path, obj: object, **kwargs: object) -> bytes:
    path = tmp_path / "a.joblib"
    joblib.dump(obj, path, **kwargs)  # type: ignore[arg-type]
    return path.read_bytes()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_joblib_array_data_is_skipped_by_shape_and_dtype(tmp_path: Path, protocol: int) -> None:
    arrays = {
        "f": np.arange(300, dtype=np.float64).reshape(10, 30),
        "u": np.array(["ab", "cde"]),
        "s": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]),
        "empty": np.zeros((0, 5), dtype=np.int16),
    }
    data = _joblib(tmp_path, arrays, protocol=protocol)
    analysis = analyse_pickle(BytesScanStream(data))
    assert analysis.error is None and analysis.stopped
    assert analysis.joblib_arrays == len(arrays)
    assert analysis.opcodes > 0


def test_joblib_object_array_pickle_is_walked(tmp_path: Path) -> None:
    data = _joblib(tmp_path, {"o": np.array([1, "x", None], dtype=object)})
    analysis = analyse_pickle(BytesScanStream(data))
    assert analysis.error is None
    names = {f"{m}.{n}" for m, n, _ in analysis.imports}
    assert any(name.endswith("multiarray._reconstruct") for name in names)


def test_joblib_wrapper_without_shape_is_malformed() -> None:
    wrapper = asm.glob("joblib.numpy_pickle", "NumpyArrayWrapper") + asm.EMPTY_TUPLE + asm.NEWOBJ
    data = asm.program(wrapper + asm.EMPTY_DICT + asm.BUILD)
    analysis = analyse_pickle(BytesScanStream(data))
    assert analysis.error is not None and "shape" in analysis.error


def test_pickle_embedded_in_pickle_loads_is_analysed(marker_dir: Path) -> None:
    inner = asm.shell_call("evilpkg", "run", marker_dir)
    data = asm.program(asm.call(asm.glob("pickle", "loads"), asm.binbytes(inner)), protocol=3)
    found = {(f.code, f.evidence) for f in _findings(data)}
    assert ("PICKLE-DANGEROUS-GLOBAL", "pickle.loads") in found
    assert ("PICKLE-UNKNOWN-GLOBAL", "evilpkg.run") in found


def test_unsupported_protocol_is_malformed() -> None:
    analysis = analyse_pickle(BytesScanStream(b"\x80\x06N."))
    assert analysis.error == "unsupported pickle protocol 6"


def test_text_string_must_be_quoted() -> None:
    analysis = analyse_pickle(BytesScanStream(b"Sabc\n."))
    assert analysis.error is not None


def test_protocol0_pickle_starting_with_mark_string_is_not_zlib() -> None:
    # `(S` is 0x28 0x53: a valid zlib header checksum. Only real deflate data is zlib.
    data = b"(S'a'\nS'b'\nt."
    assert (data[0] << 8 | data[1]) % 31 == 0
    assert compression_kind(data) is None
    assert identify(data, len(data)) is FileFormat.PICKLE
    assert compression_kind(zlib.compress(pickle.dumps([1, 2]))) == "zlib"


def test_findings_name_member_offset_and_evidence(marker_dir: Path) -> None:
    from benchmarks.corpus.containers import payload, torch_zip

    data = torch_zip(payload(marker_dir), folder="weird")
    [hit] = [f for f in _findings(data, "model.pt") if f.code == "PICKLE-DANGEROUS-GLOBAL"]
    assert (hit.file, hit.member, hit.evidence) == ("model.pt", "weird/data.pkl", "os.system")
    assert hit.offset is not None and hit.offset > 0


def test_dangerous_import_then_parse_error_exits_1(tmp_path: Path, marker_dir: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(asm.shell_call("os", "system", marker_dir)[:-1] + b"\xff")
    result = CliRunner().invoke(cli, ["scan", str(tmp_path), "--format", "json"])
    assert result.exit_code == 1
    codes = {f["code"] for f in __import__("json").loads(result.stdout)["findings"]}
    assert {"PICKLE-DANGEROUS-GLOBAL", "PICKLE-MALFORMED"} <= codes


def test_plain_pickle_scanner_reads_each_concatenated_pickle(marker_dir: Path) -> None:
    data = pickle.dumps([1]) + b"cos\nsystem\n(S'x'\ntR."
    stream = BytesScanStream(data)
    findings = list(PickleScanner().scan(stream, ScanContext("a.pkl", FileFormat.PICKLE)))
    hits = [f for f in findings if f.code == "PICKLE-DANGEROUS-GLOBAL"]
    assert [(f.evidence, f.member) for f in hits] == [("os.system", "pickle[1]")]
    _ = io
