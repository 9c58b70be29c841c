"""Every command under Hypothesis: no traceback, exit 0/1/2/3, and 1 only when something decided.

Arguments, file names and file contents are generated; the files are written to a fresh folder
for each example. The property is the error boundary's: whatever the input, the command ends
with one of the documented exit codes and never shows a traceback (docs/scanners.md, "Hostile
input").
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.hostile import deep_json
from verifier.cli import cli

_SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Names: any character a file system allows in one component, control and bidi ones included.
_NAMES = st.text(
    alphabet=st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=24,
).filter(lambda n: n not in (".", "..") and len(n.encode()) < 200)

_CONTENT = st.one_of(
    st.binary(max_size=512),
    st.sampled_from(
        [
            b"\x80\x02cos\nsystem\nq\x00.",
            b'{"model_type": "bert"}',
            b"[" * 300 + b"]" * 300,
            deep_json(2_000),
            b"version: 1\nname: x\nrules: []\n",
            b"version: 1\nname: x\nwaivers:\n  - expires: 2025-02-30\n",
            b"a: &a [1, 2]\nb: [*a, *a]\n",
            b"PK\x03\x04" + b"\0" * 26,
            b"\x1b]52;c;aGk=\x07",
        ]
    ),
)


def _files(folder: Path, files: list[tuple[str, bytes]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in files:
        path = folder / name
        if not path.exists():
            path.write_bytes(content)
            written.append(path)
    return written


def _check(result: Result, *, may_deny: bool) -> None:
    output = result.stdout + result.stderr
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output, output
    assert result.exit_code in (0, 1, 2, 3), (result.exit_code, output)
    if result.exit_code == 1:
        assert may_deny, output


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args, catch_exceptions=True)


@_SETTINGS
@given(
    files=st.lists(st.tuples(_NAMES, _CONTENT), min_size=0, max_size=4),
    fmt=st.sampled_from(["table", "json"]),
    extra=st.lists(st.sampled_from(["--policy", "--lock", "--signature", "--waivers"]), max_size=2),
)
def test_scan_never_tracebacks(files: list[tuple[str, bytes]], fmt: str, extra: list[str]) -> None:
    with tempfile.TemporaryDirectory() as work:
        model = Path(work) / "model"
        written = _files(model, files)
        args = ["scan", str(model), "--format", fmt]
        for option in extra:
            given_file = written[0] if written else Path(work) / "missing"
            args += [option, str(given_file)]
        if "--lock" in extra:
            args.remove(str(model))
        result = _invoke(args)
        decided = "decision" in result.stdout.lower()
        _check(result, may_deny=decided)


@_SETTINGS
@given(
    command=st.sampled_from(
        [
            ["policy", "check"],
            ["policy", "test"],
            ["verify-attestation", "--public-key", "{file}"],
            ["scan", "--lock"],
            ["decide", "0000", "--policy"],
            ["scan", "{folder}", "--policy"],
            ["scan", "{folder}", "--publishers"],
        ]
    ),
    content=_CONTENT,
    name=_NAMES,
)
def test_commands_reading_a_file_never_traceback(
    command: list[str], content: bytes, name: str
) -> None:
    with tempfile.TemporaryDirectory() as work:
        [path] = _files(Path(work) / "in", [(name, content)])
        folder = Path(work) / "model"
        _files(folder, [("config.json", b'{"model_type": "bert"}')])
        args = [
            part.replace("{file}", str(path)).replace("{folder}", str(folder)) for part in command
        ]
        result = _invoke([*args, str(path)])
        # verify-attestation says no (1) to anything that is not a signed attestation, and
        # `policy test` fails (1) a test file whose cases fail: both are decisions.
        decided = command[0] in ("verify-attestation", "policy") or (
            "decision" in result.stdout.lower()
        )
        _check(result, may_deny=decided)


@_SETTINGS
@given(
    args=st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "scan",
                    "show",
                    "history",
                    "decide",
                    "report",
                    "approve",
                    "lock",
                    "policy",
                    "check",
                    "test",
                    "db",
                    "current",
                    "verify-attestation",
                    "--format",
                    "json",
                    "table",
                    "sarif",
                    "markdown",
                    "vsa",
                    "--limit",
                    "0",
                    "-1",
                    "--workers",
                    "-o",
                    "--signing-key",
                    "--public-key",
                    "hf://a/b",
                    "hf://a/b@main",
                    "--help",
                    "--metadata-only",
                    "--include",
                    "*",
                    "--env",
                    "production",
                    "-v",
                ]
            ),
            st.text(max_size=12),
        ),
        max_size=6,
    )
)
def test_any_arguments_never_traceback(args: list[str]) -> None:
    with tempfile.TemporaryDirectory() as work:
        cwd = os.getcwd()
        os.chdir(work)  # outputs (-o) and relative paths land in the temporary folder
        try:
            result = _invoke(args)
        finally:
            os.chdir(cwd)
    decided = "decision" in result.stdout.lower() or any(
        a in args for a in ("verify-attestation", "approve", "test")
    )
    _check(result, may_deny=decided)
