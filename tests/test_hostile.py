"""Hostile input (issue 13): bounded, never a traceback, never forged output, never allowed.

The cases are built by benchmarks/hostile.py (which also measures them at full size).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import hostile
from verifier import bounded_json, bounded_yaml
from verifier.cli import cli
from verifier.model import ExtraDigest, FileFormat, FileResult, Finding, Severity
from verifier.pipeline import MAX_FINDINGS_PER_FILE, MAX_FINDINGS_PER_SCAN, cap_findings, scan_file
from verifier.policy.cel import CelEvaluationError, compile_expression, evaluate
from verifier.printable import os_name, printable, record_name
from verifier.sources.local import MAX_FOLDER_DEPTH, LocalFile


def _run(*args: str, database_url: str | None = None) -> tuple[int, str, str]:
    env = {"VERIFIER_DATABASE_URL": database_url} if database_url else {}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _codes(doc: dict[str, Any]) -> set[str]:
    return {f["code"] for f in doc["findings"]}


# -- escaping and names ---------------------------------------------------------------------


@pytest.mark.parametrize("attack", hostile.TERMINAL_ATTACKS)
def test_printable_leaves_no_escape_sequence(attack: str) -> None:
    shown = printable(f"name{attack}end")
    assert "\x1b" not in shown and "\x07" not in shown
    assert shown.startswith("name\\x1b") and shown.endswith("end")


def test_printable_escapes_newlines_and_bidi_controls() -> None:
    assert printable("a\nb\r\u202ec\u2066d\x85") == "a\\x0ab\\x0d\\u202ec\\u2066d\\x85"
    assert printable("plain: résumé 模型 ✓") == "plain: résumé 模型 ✓"


@given(st.binary(max_size=40))
def test_recorded_names_encode_as_utf8_and_reverse_exactly(raw: bytes) -> None:
    name = os.fsdecode(raw)
    recorded = record_name(name)
    recorded.encode("utf-8")  # never raises
    assert os_name(recorded) == name
    assert os.fsencode(os_name(recorded)) == raw


def test_record_name_changes_only_backslashes_and_bad_bytes() -> None:
    assert record_name("dir/model.safetensors") == "dir/model.safetensors"
    assert record_name("a\\b") == "a\\\\b"
    assert record_name(os.fsdecode(b"w\xff.bin")) == "w\\xff.bin"


def test_odd_file_names_are_recorded_and_never_forge_output(
    tmp_path: Path, database_url: str
) -> None:
    args = hostile.write_odd_names(tmp_path / "model")
    code, out, err = _run(*args, "--format", "json", database_url=database_url)
    assert code == 0, err
    doc = json.loads(out)
    paths = {f["path"] for f in doc["files"]}
    assert "notes-\\xff\\xfe.txt" in paths
    assert "x\ndecision: ALLOW  policy forged" in paths  # JSON keeps the name exactly
    code, table, _ = _run("show", doc["scan_id"], database_url=database_url)
    assert code == 0
    assert [line for line in table.splitlines() if line.startswith("decision:")] == [
        line for line in table.splitlines() if line.startswith("decision: ALLOW  policy default")
    ]
    assert "x\\x0adecision: ALLOW" in table
    assert "\u202e" not in table and "readme-\\u202etxt.exe" in table


def test_osc_sequences_in_global_names_never_reach_the_terminal(
    tmp_path: Path, database_url: str
) -> None:
    args = hostile.write_osc_globals(tmp_path / "model")
    code, out, _ = _run(*args, database_url=database_url)
    assert code == 1
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]52;c;" in out
    scan_id = re.search(r"\(scan\s+([0-9a-f]{32})\)", out)  # rich may wrap a long path
    assert scan_id is not None
    code, shown, _ = _run("show", scan_id.group(1), database_url=database_url)
    assert "\x1b" not in shown and "\\x1b]0;owned" in shown
    code, markdown, _ = _run(
        "report", scan_id.group(1), "--format", "markdown", database_url=database_url
    )
    assert "\x1b" not in markdown


# -- caps ----------------------------------------------------------------------------------


def test_deep_folder_is_a_finding_not_a_recursion_error(tmp_path: Path) -> None:
    args = hostile.write_deep_folder(tmp_path / "model", depth=1_100)
    try:
        code, out, err = _run(*args, "--format", "json")
    finally:
        hostile.remove_tree(tmp_path / "model")  # pytest's clean-up recurses per level
    assert code == 1, err
    doc = json.loads(out)
    deep = [f for f in doc["findings"] if f["code"] == "PATH-TOO-DEEP"]
    assert len(deep) == 1 and deep[0]["severity"] == "high"
    assert deep[0]["file"].count("/") == MAX_FOLDER_DEPTH
    assert doc["decision"] == "deny"


def test_many_pickle_imports_are_capped_and_block(tmp_path: Path) -> None:
    args = hostile.write_pickle_globals(tmp_path / "model", count=MAX_FINDINGS_PER_FILE + 500)
    code, out, _ = _run(*args, "--format", "json")
    doc = json.loads(out)
    assert code == 3 and doc["status"] == "incomplete" and doc["decision"] == "deny"
    findings = doc["files"][0]["findings"]
    assert len(findings) <= MAX_FINDINGS_PER_FILE + 3
    assert "FINDINGS-CAPPED" in {f["code"] for f in findings}


def test_a_scan_keeps_at_most_the_cap_of_findings() -> None:
    def finding(i: int) -> Finding:
        return Finding("PICKLE-GLOBAL", Severity.HIGH, f"m{i}", file="f")

    files = tuple(
        FileResult(f"f{n}", 1, "0" * 64, None, FileFormat.PICKLE, tuple(map(finding, range(900))))
        for n in range(12)
    )
    kept_files, kept = cap_findings(files, (finding(-1),))
    assert sum(len(f.findings) for f in kept_files) + len(kept) == MAX_FINDINGS_PER_SCAN + 1
    assert kept[-1].code == "FINDINGS-CAPPED" and kept[-1].severity is Severity.CRITICAL
    assert f"{12 * 900 + 1} findings" in kept[-1].message
    assert cap_findings(files[:2], ()) == (files[:2], ())


def test_config_of_millions_of_empty_lists_blocks(tmp_path: Path) -> None:
    args = hostile.write_config_empty_lists(tmp_path / "model", size_mb=8)
    code, out, _ = _run(*args, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["decision"] == "deny"
    [limit] = [f for f in doc["findings"] if f["code"] == "JSON-LIMIT"]
    assert limit["severity"] == "high" and "values, over the cap" in limit["message"]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b"[" * 65 + b"]" * 65, "nested deeper than 64"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested deeper than 64"),
        (b"[" * 100_000 + b"}", "nested deeper than 64"),  # unbalanced: the parser's depth
        (b"[" + b"0," * 1_000_001 + b"0]", "values, over the cap"),
        (b" " * (16 * 1024 * 1024 + 1), "bytes, over the cap"),
    ],
)
def test_bounded_json_refuses_before_parsing(document: bytes, problem: str) -> None:
    with pytest.raises(bounded_json.JsonLimitError, match=problem):
        bounded_json.loads(document, bounded_json.TRUST_INPUT)


_JSON_BYTES = st.sampled_from([b'"', b"\\", b"a", b"[", b"]", b"{", b"}", b",", b":", b"0"])


@given(st.lists(_JSON_BYTES, max_size=120).map(b"".join), st.integers(1, 16))
def test_bounded_json_windows_blank_strings_as_one_pass_does(raw: bytes, window: int) -> None:
    # Cut into windows never inside a string, the blanked document is the same bytes.
    blanked = b"".join(bounded_json._blanked(raw, window=window))
    assert blanked == bounded_json._STRING.sub(b"0", raw)


@given(st.lists(_JSON_BYTES, max_size=120).map(b"".join), st.integers(1, 16))
def test_bounded_json_string_cap_is_exact(raw: bytes, cap: int) -> None:
    # Refused exactly when the regex's view holds a string (or an unterminated one) over the cap.
    longest, pos = 0, 0
    while (quote := raw.find(b'"', pos)) >= 0:
        whole = bounded_json._STRING.match(raw, quote)
        pos = whole.end() if whole else len(raw)
        longest = max(longest, pos - quote)
    pieces = bounded_json._blanked(raw, window=cap, max_string=cap)
    if longest > cap:
        with pytest.raises(bounded_json.JsonLimitError, match="a string of"):
            list(pieces)
    else:
        assert b"".join(pieces) == bounded_json._STRING.sub(b"0", raw)


_WIDE_JSON = st.sampled_from(
    [
        '"',
        "\\",
        "u",
        "d",
        "8",
        "3",
        "D",
        "e",
        "0",
        "[",
        "]",
        ",",
        " ",
        "x",
        "\U0001f600",
        "\U0010ffff",
        "é",
    ]
)


@given(st.lists(_WIDE_JSON, max_size=60).map("".join), st.booleans())
def test_narrow_decoding_reads_as_json_reads_the_bytes(body: str, bom: bool) -> None:
    # Padded so that rewriting is the smaller spelling whenever a wide character is there.
    raw = (b"\xef\xbb\xbf" if bom else b"") + b" " * 400 + body.encode()
    text, _ = bounded_json.decode_narrow(raw)
    try:
        expected: object = json.loads(raw)
    except ValueError:
        expected = ValueError
    try:
        got: object = json.loads(text)
    except ValueError:
        got = ValueError
    assert got == expected


def test_narrow_decoding_keeps_a_wide_character_out_of_the_text() -> None:
    text, rewritten = bounded_json.decode_narrow(
        b'{"a": "' + b"x" * 1000 + "\U0001f600".encode() + b'"}'
    )
    assert rewritten and text.isascii()
    assert json.loads(text)["a"].endswith("\U0001f600")
    # Mostly wide characters: rewriting would be larger, so the text is decoded as it is.
    assert bounded_json.decode_narrow(("[" + '"\U0001f600",' * 100 + "0]").encode()) == (
        "[" + '"\U0001f600",' * 100 + "0]",
        False,
    )


def test_wide_strings_are_counted_before_parsing() -> None:
    limits = bounded_json.JsonLimits(max_bytes=1 << 24, max_wide_strings=1 << 20)
    wide = '"' + "x" * 100_000 + '\U0001f600"'
    # Eleven strings of 100 KB, each held at four bytes a character: over 1 MiB.
    with pytest.raises(bounded_json.JsonLimitError, match="over 1048576 bytes once parsed"):
        bounded_json.check_shape(("[" + ",".join([wide] * 11) + "]").encode(), limits)
    # The same bytes with the wide characters in short tokens (a tokenizer's emoji): counted one
    # by one, they hold a few KB.
    tokens = ",".join(
        f'"t{i}\U0001f600"' if i % 50 == 0 else f'"{"x" * 30}{i}"' for i in range(40_000)
    )
    bounded_json.check_shape(f"[{tokens}]".encode(), limits)
    # Escapes of a surrogate pair count as wide too.
    escaped = '"' + "x" * 100_000 + '\\ud83d\\ude00"'
    with pytest.raises(bounded_json.JsonLimitError, match="once parsed"):
        bounded_json.check_shape(("[" + ",".join([escaped] * 11) + "]").encode(), limits)


def test_model_json_string_over_the_cap_is_refused_before_decoding(tmp_path: Path) -> None:
    # One 5 MiB string with one emoji: Python would hold it at 4 bytes a character, twice.
    body = b"x" * (5 << 20) + "\U0001f600".encode()
    (tmp_path / "config.json").write_bytes(b'{"model_type": "bert", "note": "' + body + b'"}')
    db = f"sqlite:///{tmp_path / 'v.db'}"
    code, out, _ = _run("scan", str(tmp_path), "--format", "json", database_url=db)
    assert code == 1
    json_limits = [f for f in json.loads(out)["findings"] if f["code"] == "JSON-LIMIT"]
    assert len(json_limits) == 1
    assert "over the cap of 4194304" in json_limits[0]["message"]


def test_long_json_string_is_checked_in_bounded_memory() -> None:
    # The regex `"(?:[^"\\]|\\.)*"` kept state per character: 556 MiB for this 4 MB string,
    # 7 GB for a 60 MB one in a safetensors header or a config.json.
    import tracemalloc

    document = b'{"a": "' + b"x" * 4_000_000 + b'", "b": [' + b"1," * 1_000_000 + b"1]}"
    tracemalloc.start()
    try:
        bounded_json.check_shape(document, bounded_json.MODEL_CONFIG)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_bounded_json_parses_what_fits() -> None:
    text = '{"a": [[1, 2], {"b": "[[[[,,,,"}], "c": "\\"]]"}'
    assert bounded_json.loads(text, bounded_json.TRUST_INPUT) == json.loads(text)
    assert bounded_json.loads(b"[" * 64 + b"]" * 64, bounded_json.TRUST_INPUT) is not None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: " + "[" * 40 + "]" * 40, "nested deeper than 32"),
        ("\n".join(f"k{i}: v" for i in range(20_001)), "more than 20000 nodes"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
                for p, c in zip("abcde", "bcdef", strict=True)
            ),
            "more than 20000 nodes",
        ),
        ("expires: 2025-02-30", "invalid date '2025-02-30'"),
    ],
)
def test_bounded_yaml_stops_at_a_cap_with_the_line(text: str, problem: str) -> None:
    with pytest.raises(Exception, match=problem) as caught:
        bounded_yaml.load(text)
    mark = getattr(caught.value, "problem_mark", None)
    assert mark is not None


def test_bounded_yaml_reports_duplicate_keys_in_linear_time() -> None:
    data, duplicates = bounded_yaml.load("a: 1\nb: 2\na: 3\n")
    assert data == {"a": 3, "b": 2} and duplicates == ["'a' at line 3"]


def test_zip_of_eight_members_of_a_gib_is_refused_before_inflating(tmp_path: Path) -> None:
    args = hostile.write_zip_wide_bomb(tmp_path / "model")  # full size: 8 MB, 8 GiB inflated
    code, out, _ = _run(*args, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["decision"] == "deny"
    [bomb] = [f for f in doc["findings"] if f["code"] == "ARCHIVE-BOMB"]
    assert "declare 8589934592 bytes inflated" in bomb["message"]


def test_zip_nested_three_deep_is_streamed_and_its_payload_found(tmp_path: Path) -> None:
    args = hostile.write_zip_nested_bomb(tmp_path / "model", pad=16 << 20)
    code, out, _ = _run(*args, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["decision"] == "deny"
    [hit] = [f for f in doc["findings"] if f["code"] == "PICKLE-DANGEROUS-GLOBAL"]
    assert hit["member"] == "inner.zip!inner.zip!inner.zip!payload.pkl"


def test_keras_config_of_millions_of_lists_is_refused_before_parsing(tmp_path: Path) -> None:
    args = hostile.write_keras_config_lists(tmp_path / "model", size_mb=8)
    code, out, _ = _run(*args, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["decision"] == "deny"
    [refused] = [f for f in doc["findings"] if f["code"] == "KERAS-CONFIG-INVALID"]
    assert "past the JSON caps" in refused["message"]
    assert "values, over the cap" in refused["message"]


def test_keras_h5_attribute_is_parsed_under_the_json_caps(tmp_path: Path) -> None:
    import h5py
    import numpy as np

    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as handle:  # compact attributes: at most 64 KiB; nesting is free
        handle.attrs["model_config"] = np.bytes_(b"[" * 200 + b"]" * 200)
    code, out, _ = _run("scan", str(path), "--format", "json")
    doc = json.loads(out)
    assert code == 1
    [refused] = [f for f in doc["findings"] if f["code"] == "KERAS-CONFIG-INVALID"]
    assert "past the JSON caps (nested deeper than 128 levels)" in refused["message"]


def test_safetensors_header_of_millions_of_lists_is_refused_before_parsing(
    tmp_path: Path,
) -> None:
    args = hostile.write_safetensors_header_lists(tmp_path / "model", size_mb=8)
    code, out, _ = _run(*args, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["decision"] == "deny"
    [refused] = [f for f in doc["findings"] if f["code"] == "SAFETENSORS-HEADER-INVALID"]
    assert "past the JSON caps (more than" in refused["message"]


def test_safetensors_header_over_16_mib_is_refused_unparsed(tmp_path: Path) -> None:
    args = hostile.write_safetensors_metadata_string(tmp_path / "model", size=(16 << 20) + 64)
    code, out, _ = _run(*args, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["decision"] == "deny"
    [refused] = [f for f in doc["findings"] if f["code"] == "SAFETENSORS-HEADER-INVALID"]
    assert f"exceeds the {16 << 20}-byte cap" in refused["message"]


@pytest.mark.parametrize(
    "build",
    [
        lambda folder: hostile.write_safetensors_metadata_string(folder, size=1 << 20),
        lambda folder: hostile.write_safetensors_many_tensors(folder, count=5_000),
        lambda folder: hostile.write_config_long_string(folder, size_mb=2),
    ],
    ids=["metadata-string", "many-tensors", "config-string"],
)
def test_large_but_valid_headers_and_configs_are_allowed(tmp_path: Path, build: Any) -> None:
    code, out, _ = _run(*build(tmp_path / "model"), "--format", "json")
    assert code == 0 and json.loads(out)["decision"] == "allow"


def test_python_file_of_too_many_tokens_is_not_parsed(tmp_path: Path) -> None:
    args = hostile.write_python_lists(tmp_path / "model", size_mb=1)
    code, out, _ = _run(*args, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["decision"] == "deny"
    [refused] = [f for f in doc["findings"] if f["code"] == "REMOTE-CODE-UNPARSED"]
    assert "more than 200000 tokens" in refused["message"]


_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcde", "bcdef", strict=True)
)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: " + "[" * 65 + "]" * 65, "nested deeper than 64"),
        ("[" + "[]," * 100_000 + "[]]", "more than 100000 nodes"),
        (_LAUGHS, "more than 100000 nodes"),  # six lines that stand for a million nodes
        ("---\n" + "---\n".join("[" + "0," * 999 + "0]\n" for _ in range(101)), "nodes"),
    ],
)
def test_model_yaml_is_refused_from_its_events_before_anything_is_built(
    text: str, problem: str
) -> None:
    with pytest.raises(bounded_yaml.YamlLimitError, match=problem):
        bounded_yaml.load_all(text, bounded_yaml.MODEL_FILE)


def test_model_yaml_within_the_caps_loads_as_safe_load_does() -> None:
    import yaml

    text = "a: &x [1, 2]\nb: *x\nc: {d: 2025-01-02, e: 'q'}\n---\n- z\n"
    assert bounded_yaml.load_all(text, bounded_yaml.MODEL_FILE) == list(yaml.safe_load_all(text))


def test_a_model_yaml_of_many_nodes_blocks(tmp_path: Path) -> None:
    args = hostile.write_model_yaml_nodes(tmp_path / "model", size_mb=1)
    code, out, _ = _run(*args, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["decision"] == "deny"
    [refused] = [f for f in doc["findings"] if f["code"] == "CHAT-TEMPLATE-INVALID"]
    assert "more than 100000 nodes" in refused["message"]


def test_a_card_of_many_nodes_or_a_bad_date_keeps_no_facts_and_never_crashes(
    tmp_path: Path,
) -> None:
    args = hostile.write_card_front_matter(tmp_path / "huge", size_kb=400)
    code, out, _ = _run(*args, "--format", "json")
    assert code == 0, out
    assert not _codes(json.loads(out))
    folder = tmp_path / "date"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlicense: mit\ndate: 2025-02-30\n---\n# M\n")
    code, out, _ = _run("scan", str(folder), "--format", "json")
    assert code == 0 and "SCANNER-ERROR" not in _codes(json.loads(out))


# -- policy, lockfile and signature inputs ------------------------------------------------


@pytest.mark.parametrize(
    ("build", "line", "problem"),
    [
        (hostile.write_waiver_bad_date, 14, "invalid date '2025-02-30'"),
        (hostile.write_when_parentheses, None, "10004 characters, over 4096"),
        (hostile.write_when_comprehensions, None, "comprehensions"),
        (hostile.write_when_wide_comprehension, None, "evaluation took longer than 1 s"),
        (hostile.write_policy_many_keys, None, "more than 20000 nodes"),
        (hostile.write_policy_unknown_keys, 10, "and 280 more errors"),
    ],
)
def test_hostile_policies_are_one_line_exit_2(
    tmp_path: Path, build: Any, line: int | None, problem: str
) -> None:
    args = build(tmp_path / "case")
    code, out, err = _run(*args)
    assert code == 2, out + err
    assert len(err.strip().splitlines()) == 1 and problem in err
    assert "policy.yaml:" in err
    if line is not None:
        assert f"policy.yaml:{line}:" in err


def test_deep_lockfile_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = _run(*hostile.write_deep_lockfile(tmp_path / "case"))
    assert code == 2 and "nested deeper than 64" in err and "lock.json" in err


def test_deep_signature_is_invalid_and_recorded(tmp_path: Path, database_url: str) -> None:
    args = hostile.write_deep_signature(tmp_path / "case")
    code, out, err = _run(*args, "--format", "json", database_url=database_url)
    assert code == 1, err
    doc = json.loads(out)
    assert doc["signature"]["status"] == "invalid"
    assert "nested deeper than 64" in doc["signature"]["reason"]
    code, _, _ = _run("show", doc["scan_id"], database_url=database_url)
    assert code == 0


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("(" * 40 + "true" + ")" * 40, "brackets nested deeper than 32"),
        ("[[[1]]].all(a, a.all(b, b.all(c, c > 0)))", "comprehensions"),
        ("x" * 4097, "over 4096"),
    ],
)
def test_cel_caps_refuse_before_compiling(expression: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        compile_expression(expression)


def test_cel_caps_ignore_brackets_in_strings() -> None:
    program = compile_expression('"((((((((((((((((((((((((((((((((((" != ""')
    assert evaluate(program, {}) is True


def test_cel_evaluation_is_stopped_at_its_deadline() -> None:
    inner = "true"
    for i in range(2):
        inner = f"[{','.join(['1'] * 900)}].all(x{i}, {inner})"
    program = compile_expression(inner)
    # Run to its end, this evaluation takes minutes and returns True; only the deadline makes
    # it raise. No wall-clock bound here: the raise itself is the proof that it was stopped.
    with pytest.raises(CelEvaluationError, match=r"longer than 0\.2 s"):
        evaluate(program, {}, seconds=0.2)
    assert evaluate(compile_expression("1 < 2"), {}, seconds=0.2) is True


def test_cel_stopwatch_hooks_again_after_a_raise_is_swallowed(tmp_path: Path) -> None:
    """CPython drops a profile hook that raises; a raise swallowed where it lands (a dunder
    method inside a dictionary lookup) once let an evaluation run on unhooked for minutes."""
    from verifier.policy import cel

    fake: dict[str, Any] = {}
    source = "def visit():\n    return 1\ndef __eq__():\n    return 1\n"
    exec(compile(source, str(tmp_path / "celpy" / "evaluation.py"), "exec"), fake)
    stopwatch = cel._Stopwatch(0.01)
    raised = 0
    stopwatch.start()
    try:
        for _ in range(20_000):  # each alarm hooks once; count the raises, at least two
            try:
                fake["__eq__"]()  # never raises: it may run where errors are discarded
                fake["visit"]()
            except cel._Deadline:
                raised += 1
                if raised == 2:
                    break
            time.sleep(0.001)
    finally:
        stopwatch.stop()
    assert stopwatch.fired and raised == 2
    assert fake["visit"]() == 1  # stopped: the hook is gone


# -- a file rewritten while it is read ------------------------------------------------------


class _RewriteOnce:
    """A chunk observer that overwrites the file's first bytes in place (same size) once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done = False

    def update(self, data: memoryview, /) -> None:
        if not self.done:
            self.done = True
            # Timestamps have a clock tick of granularity: let one pass so the write moves them.
            time.sleep(0.05)
            with self.path.open("r+b") as handle:
                handle.write(b"\x80\x02cos\nsystem\n." + b"\0" * 32)

    def digests(self) -> tuple[ExtraDigest, ...]:
        return ()


def test_same_size_rewrite_during_hashing_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0" * (3 * 1024 * 1024))
    result = scan_file(LocalFile("weights.bin", str(path)), observers=[_RewriteOnce(path)])
    assert path.stat().st_size == 3 * 1024 * 1024
    assert not result.complete
    [changed] = [f for f in result.findings if f.code == "FILE-CHANGED-DURING-SCAN"]
    assert changed.severity is Severity.CRITICAL and "time" in changed.message


def test_a_file_replaced_during_the_read_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0" * 1024)

    class Replace(_RewriteOnce):
        def update(self, data: memoryview, /) -> None:
            if not self.done:
                self.done = True
                other = tmp_path / "other"
                other.write_bytes(b"\1" * 1024)
                os.replace(other, path)

    result = scan_file(LocalFile("weights.bin", str(path)), observers=[Replace(path)])
    assert not result.complete
    assert "FILE-CHANGED-DURING-SCAN" in {f.code for f in result.findings}


def test_an_untouched_file_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0" * 1024)
    result = scan_file(LocalFile("weights.bin", str(path)))
    assert result.complete
    assert "FILE-CHANGED-DURING-SCAN" not in {f.code for f in result.findings}


def test_rewrite_by_another_thread_during_a_scan(tmp_path: Path) -> None:
    """The issue's case: a thread overwrites the first bytes while the file is hashed."""
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0" * (64 * 1024 * 1024))
    started = threading.Event()

    class Signal(_RewriteOnce):
        def update(self, data: memoryview, /) -> None:
            if not self.done:
                self.done = True
                started.set()
                time.sleep(0.2)  # the writer thread writes meanwhile

    def writer() -> None:
        started.wait()
        time.sleep(0.05)
        with path.open("r+b") as handle:
            handle.write(b"\x80\x02cos\nsystem\n.")

    thread = threading.Thread(target=writer)
    thread.start()
    result = scan_file(LocalFile("weights.bin", str(path)), observers=[Signal(path)])
    thread.join()
    assert "FILE-CHANGED-DURING-SCAN" in {f.code for f in result.findings}
