"""TorchScript archives: their code is analysed and reported, their class names are not imports."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import pytest
import torch

from tests import samples
from tests.scanners import real_savers
from verifier.model import Decision, Finding, Severity
from verifier.pipeline import scan_target
from verifier.policy import Policy, default_policy_path, load_policy


class ReadsAFile(torch.nn.Module):
    """TorchScript that maps a file into a tensor when called (torch.from_file)."""

    def __init__(self) -> None:
        super().__init__()
        self.path = "/etc/hostname"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.from_file(self.path, False, 4, dtype=torch.uint8).float().sum()


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(default_policy_path())


def _scan(path: Path, policy: Policy) -> tuple[Decision, list[Finding]]:
    report = scan_target(str(path), policy=policy, recorder=None, workers=1)
    return report.verdict.decision, list(report.findings)


def _archive(tmp_path: Path, sample: str) -> Path:
    [path] = real_savers.build(sample, tmp_path).iterdir()
    return path


def _rewrite(archive: Path, out: Path, replace: dict[str, bytes]) -> Path:
    """A copy of `archive` with some records' contents replaced (names and order kept)."""
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info.filename, replace.get(info.filename, source.read(info)))
    return out


def test_scripted_archive_reports_its_code_not_its_class_names(
    tmp_path: Path, policy: Policy
) -> None:
    decision, findings = _scan(_archive(tmp_path, "torch-jit-save-scripted-module"), policy)
    assert decision is Decision.ALLOW
    [code] = [f for f in findings if f.code == "TORCHSCRIPT-CODE"]
    assert code.severity is Severity.MEDIUM
    assert {"torch.linear", "torch.relu", "torch.layer_norm"} <= set(
        (code.evidence or "").split(", ")
    )
    assert not [f for f in findings if f.code.startswith("PICKLE-") and f.code != "PICKLE-IMPORTS"]
    imports = " ".join(f.evidence or "" for f in findings if f.code == "PICKLE-IMPORTS")
    assert "__torch__.ScriptedBlock" in imports or "__torch__.tests" in imports


def test_a_file_reading_operator_is_high(tmp_path: Path, policy: Policy) -> None:
    path = tmp_path / "reads.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script is deprecated
        torch.jit.save(torch.jit.script(ReadsAFile()), str(path))
    decision, findings = _scan(path, policy)
    dangerous = [f for f in findings if f.code == "TORCHSCRIPT-DANGEROUS-CALL"]
    assert [f.evidence for f in dangerous] == ["torch.from_file"]
    assert dangerous[0].severity is Severity.HIGH
    assert decision is Decision.DENY


def test_code_that_does_not_parse_is_not_passed(tmp_path: Path, policy: Policy) -> None:
    archive = _archive(tmp_path, "torch-jit-save-scripted-module")
    with zipfile.ZipFile(archive) as source:
        code = next(n for n in source.namelist() if "/code/" in n and n.endswith(".py"))
    broken = _rewrite(archive, tmp_path / "broken.pt", {code: b"class (:\n"})
    decision, findings = _scan(broken, policy)
    assert "TORCHSCRIPT-CODE-UNPARSED" in {f.code for f in findings}
    assert decision is Decision.DENY


def test_python_imports_in_a_torchscript_archive_are_still_judged(
    tmp_path: Path, policy: Policy, marker_dir: Path
) -> None:
    archive = _archive(tmp_path, "torch-jit-save-scripted-module")
    with zipfile.ZipFile(archive) as source:
        [data] = [n for n in source.namelist() if n.endswith("/data.pkl")]
    bad = _rewrite(archive, tmp_path / "bad.pt", {data: samples.os_system(marker_dir)})
    decision, findings = _scan(bad, policy)
    assert ("PICKLE-DANGEROUS-GLOBAL", "os.system") in {(f.code, f.evidence) for f in findings}
    assert decision is Decision.DENY


def test_torchscript_names_outside_a_torchscript_archive_are_not_trusted(
    tmp_path: Path, policy: Policy
) -> None:
    # Without constants.pkl, torch.load unpickles data.pkl in Python: `__torch__` is a name
    # to import there, and torch.jit._pickle a module of torch.jit.
    for module, name in [("__torch__", "Evil"), ("torch.jit._pickle", "build_intlist")]:
        data = samples.global_call(module, name, "x")
        path = tmp_path / f"{name}.pt"
        path.write_bytes(samples.torch_zip_with_pickle(data))
        decision, findings = _scan(path, policy)
        assert decision is Decision.DENY
        assert f"{module}.{name}" in {f.evidence for f in findings}


def test_nested_bytes_in_a_torchscript_pickle_are_read_as_python_reads_them(
    tmp_path: Path, policy: Policy
) -> None:
    # A blob handed to a nested loader is unpickled in Python, even inside an archive.
    inner = samples.global_call("__torch__", "Evil", "x", protocol=2)
    outer = b"\x80\x03ctorch.storage\n_load_from_bytes\n(C" + bytes([len(inner)]) + inner + b"tR."
    archive = _archive(tmp_path, "torch-jit-save-scripted-module")
    with zipfile.ZipFile(archive) as source:
        [data] = [n for n in source.namelist() if n.endswith("/data.pkl")]
    bad = _rewrite(archive, tmp_path / "nested.pt", {data: outer})
    decision, findings = _scan(bad, policy)
    nested = [f for f in findings if "nested@" in (f.member or "")]
    assert "__torch__.Evil" in {f.evidence for f in nested}
    assert decision is Decision.DENY


@pytest.mark.parametrize(
    ("source", "evidence"),
    [
        ('x = getattr(torch, "from_file")("/etc/hostname", True, 4)\n', "torch.from_file"),
        ("f = ops.aten.save.default\n", "ops.aten.save.default"),
        (
            "y = torch.ops.debugprims.load_tensor('t', [1], 6, 0)\n",
            "torch.ops.debugprims.load_tensor",
        ),
        ("z = ops._c10d_functional.all_reduce(x, 'sum', '0')\n", "ops._c10d_functional.all_reduce"),
        ("s = storage.from_file('/etc/hostname', True, 4)\n", ".from_file"),
    ],
)
def test_dangerous_operators_however_they_are_reached(
    tmp_path: Path, policy: Policy, source: str, evidence: str
) -> None:
    # The archive's code is the publisher's text, compiled by the loader: not only what
    # torch's printer writes.
    archive = _archive(tmp_path, "torch-jit-save-scripted-module")
    with zipfile.ZipFile(archive) as original:
        code = next(n for n in original.namelist() if "/code/" in n and n.endswith(".py"))
        text = original.read(code) + b"\n" + source.encode()
    decision, findings = _scan(_rewrite(archive, tmp_path / "edited.pt", {code: text}), policy)
    dangerous = [f.evidence for f in findings if f.code == "TORCHSCRIPT-DANGEROUS-CALL"]
    assert dangerous == [evidence]
    assert decision is Decision.DENY


def test_extra_files_are_not_read_by_torchscript(tmp_path: Path, policy: Policy) -> None:
    # torch.jit.load hands `extra/` records to the caller as bytes: the caller may unpickle
    # them in Python, where `__torch__` is a name to import.
    archive = _archive(tmp_path, "torch-jit-save-scripted-module")
    with zipfile.ZipFile(archive) as original:
        [extra] = [n for n in original.namelist() if "/extra/" in n]
    data = samples.global_call("__torch__", "Evil", "x")
    decision, findings = _scan(_rewrite(archive, tmp_path / "extra.pt", {extra: data}), policy)
    assert "__torch__.Evil" in {f.evidence for f in findings if f.code.startswith("PICKLE-")}
    assert decision is Decision.DENY
