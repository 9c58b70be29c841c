"""`verifier scan --server`: the command line asks a real server on loopback and prints what
a local scan prints, with the same exit codes; every way the exchange can go wrong is one line."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner, Result

from tests.evidence.recorded import allowed_report, denied_report
from tests.hub_emulator import HubEmulator
from tests.samples import os_system
from tests.service.conftest import Running, free_port
from tests.sources.test_huggingface import model_files
from tests.test_schemas import validate
from verifier.cli import cli
from verifier.report.json_format import parse_report_document, report_document
from verifier.service.client import check_server_url
from verifier.service.model import Role


def _cli(*args: str, token: str | None) -> Result:
    env = {"VERIFIER_TOKEN": token} if token is not None else {"VERIFIER_TOKEN": ""}
    return CliRunner().invoke(cli, list(args), env=env)


def _show(server: Running, scan_id: str, fmt: str) -> str:
    shown = CliRunner().invoke(
        cli,
        ["show", scan_id, "--format", fmt, "--database-url", server.service.store.display_url],
    )
    assert shown.exit_code == 0, shown.output
    return shown.stdout


def test_scan_on_the_server_prints_what_the_local_command_prints(
    server: Running, hub: HubEmulator, marker_dir: Path
) -> None:
    commit = hub.add_repo("acme/tiny", model_files()).refs["main"]
    token = server.tokens[Role.SCANNER]
    result = _cli("scan", "hf://acme/tiny", "--server", server.url, "--format", "json", token=token)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["decision"] == "allow" and document["source"]["commit"] == commit
    assert document == json.loads(_show(server, document["scan_id"], "json"))
    assert "scan job" in result.stderr  # progress on stderr, the document alone on stdout

    table = _cli("scan", f"hf://acme/tiny@{commit}", "--server", server.url, token=token)
    assert table.exit_code == 0, table.output
    assert table.stdout == _show(server, document["scan_id"], "table")

    files = model_files()
    files["model.pkl"] = os_system(marker_dir)
    hub.add_repo("acme/evil", files)
    denied = _cli("scan", "hf://acme/evil", "--server", server.url, "--format", "json", token=token)
    assert denied.exit_code == 1, denied.output
    assert json.loads(denied.stdout)["decision"] == "deny"
    assert not list(marker_dir.iterdir())  # nothing was run, anywhere


def test_a_failed_job_exits_3_with_its_reason(server: Running) -> None:
    token = server.tokens[Role.SCANNER]
    result = _cli("scan", "hf://acme/missing", "--server", server.url, token=token)
    assert result.exit_code == 3
    assert "failed" in result.stderr and "acme/missing" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("role", "code", "says"),
    [
        (None, 2, "set VERIFIER_TOKEN"),
        ("wrong", 2, "HTTP 401"),
        (Role.VIEWER, 2, "HTTP 403"),
    ],
)
def test_tokens_and_roles(server: Running, role: Role | str | None, code: int, says: str) -> None:
    token = server.tokens[role] if isinstance(role, Role) else role
    result = _cli("scan", "hf://acme/tiny", "--server", server.url, token=token)
    assert result.exit_code == code, result.output
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["./model"], "scan local files without --server"),
        (["hf://a/b", "--lock", "x.lock"], "--lock: local only"),
        (["hf://a/b", "--metadata-only"], "--metadata-only: local only"),
        (["hf://a/b", "--server", "http://models.example.com"], "plain http sends the token"),
        (["hf://a/b", "--server", "ftp://127.0.0.1"], "give an http(s)"),
        (["hf://a/b", "--server", "https://user:pw@example.com"], "no credentials"),
    ],
)
def test_usage_errors_before_anything_is_sent(args: list[str], says: str) -> None:
    full = ["scan", *args]
    if "--server" not in args:
        full += ["--server", "http://127.0.0.1:9"]
    result = _cli(*full, token="t")
    assert result.exit_code == 2, result.output
    assert says in result.stderr and "Traceback" not in result.output


def test_an_unreachable_server_exits_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = _cli("scan", "hf://acme/tiny", "--server", url, token="t")
    assert result.exit_code == 3
    assert "cannot reach the service" in result.stderr


class _Redirect(http.server.BaseHTTPRequestHandler):
    """A server that sends every request elsewhere (and records whether one came back)."""

    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        self.send_response(307)
        self.send_header("Location", "http://127.0.0.1:9/steal")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_redirect_is_refused_and_the_token_goes_nowhere_else() -> None:
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirect) as redirector:
        thread = threading.Thread(target=redirector.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{redirector.server_address[1]}"
            result = _cli("scan", "hf://acme/tiny", "--server", url, token="secret")
        finally:
            redirector.shutdown()
    assert result.exit_code == 3
    assert "redirect" in result.stderr and "not followed" in result.stderr
    assert _Redirect.seen == ["Bearer secret"]  # once, to the configured server only


def test_server_addresses() -> None:
    assert check_server_url("https://verifier.example.com/") == "https://verifier.example.com"
    assert check_server_url("http://[::1]:8080") == "http://[::1]:8080"
    assert check_server_url("http://localhost:8080") == "http://localhost:8080"


@pytest.mark.parametrize("make", [allowed_report, denied_report])
def test_a_scan_document_reads_back_as_the_same_report(make: object) -> None:
    report = make()  # type: ignore[operator]
    document = report_document(report)
    again = parse_report_document(json.loads(json.dumps(document)))
    assert report_document(again) == document
    assert again.verdict == report.verdict


def test_a_document_without_a_decision_reads_as_deny() -> None:
    document = report_document(allowed_report())
    del document["decision"]
    assert parse_report_document(document).verdict.decision.value == "deny"
    document["decision"] = "ALLOW"
    assert parse_report_document(document).verdict.decision.value == "deny"


def _local_decide(server: Running, subject: str, *extra: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["decide", subject, *extra, "--database-url", server.service.store.display_url],
    )


def test_decide_on_the_server_prints_what_the_local_command_prints(
    server: Running, hub: HubEmulator, marker_dir: Path
) -> None:
    clean = hub.add_repo("acme/tiny", model_files()).refs["main"]
    files = model_files()
    files["model.pkl"] = os_system(marker_dir)
    evil = hub.add_repo("acme/evil", files).refs["main"]
    scanner = server.tokens[Role.SCANNER]
    for name, commit in (("tiny", clean), ("evil", evil)):
        assert _cli("scan", f"hf://acme/{name}@{commit}", "--server", server.url, token=scanner)
    viewer = server.tokens[Role.VIEWER]
    for name, commit, code in (("tiny", clean, 0), ("evil", evil, 1)):
        subject = f"hf://acme/{name}@{commit}"
        remote = _cli("decide", subject, "--server", server.url, "--format", "json", token=viewer)
        assert remote.exit_code == code, remote.output
        local = _local_decide(server, subject, "--format", "json")
        assert local.exit_code == code, local.output
        expected = json.loads(local.stdout)
        assert json.loads(remote.stdout) == {**expected, "recorded": False}
        validate("decision", json.loads(remote.stdout))
        table = _cli("decide", subject, "--server", server.url, token=viewer)
        assert table.exit_code == code
        assert table.stdout == _local_decide(server, subject).stdout


def test_decide_on_the_server_refuses_what_it_cannot_answer(server: Running) -> None:
    viewer = server.tokens[Role.VIEWER]
    unknown = _cli("decide", f"hf://acme/none@{'1' * 40}", "--server", server.url, token=viewer)
    assert unknown.exit_code == 3
    assert "no decision" in unknown.stderr and "no recorded scan" in unknown.stderr
    for subject, says in (
        ("hf://acme/tiny@main", "give the exact commit"),
        ("3f2a9c1e", "give the exact commit"),
    ):
        result = _cli("decide", subject, "--server", server.url, token=viewer)
        assert result.exit_code == 2 and says in result.stderr
    other = _cli(
        "decide",
        f"hf://acme/none@{'1' * 40}",
        "--server",
        server.url,
        "--policy",
        "policies/strict-production.yaml",
        token=viewer,
    )
    assert other.exit_code == 2 and "not 'strict-production'" in other.stderr
    waivers = _cli(
        "decide", f"hf://a/b@{'1' * 40}", "--server", server.url, "--waivers", "w.yaml", token="t"
    )
    assert waivers.exit_code == 2 and "--waivers: local only" in waivers.stderr
