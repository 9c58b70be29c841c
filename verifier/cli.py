"""The command line: the only module that prints or exits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from verifier import __version__, config
from verifier.errors import ExitCode, TargetError, UsageError, VerifierError
from verifier.evidence import EvidenceFormat, load_facts, render_evidence
from verifier.evidence.output import write_atomically
from verifier.model import Decision, ScanReport
from verifier.pipeline import scan_target
from verifier.policy import Policy, default_policy_path, load_policy
from verifier.policy.schema import Mode
from verifier.report import HISTORY_FORMATS, OutputFormat, render_history, render_report
from verifier.signatures.interface import SignatureRequest
from verifier.signatures.model_signing import check_trust_material
from verifier.store import Store

F = TypeVar("F", bound=Callable[..., Any])


class _Group(click.Group):
    """Turns verifier's own errors into one line on stderr and the matching exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VerifierError as exc:
            click.echo(f"error: {exc.diagnostics()}", err=True)
            raise click.exceptions.Exit(int(exc.exit_code)) from None


def _format_option(func: F) -> F:
    option = click.option(
        "--format",
        "fmt",
        type=click.Choice([f.value for f in OutputFormat]),
        default=OutputFormat.TABLE.value,
        show_default=True,
        help="Output format; json and sarif (SARIF 2.1.0) print one document on stdout.",
    )
    return option(func)


def _history_format_option(func: F) -> F:
    option = click.option(
        "--format",
        "fmt",
        type=click.Choice([f.value for f in HISTORY_FORMATS]),
        default=OutputFormat.TABLE.value,
        show_default=True,
        help="Output format; json prints one document on stdout.",
    )
    return option(func)


def _database_option(func: F) -> F:
    option = click.option(
        "--database-url",
        envvar="VERIFIER_DATABASE_URL",
        default=None,
        metavar="URL",
        help="SQLAlchemy URL of the database [env: VERIFIER_DATABASE_URL; "
        "default: SQLite in VERIFIER_HOME or the user data folder].",
    )
    return option(func)


def _open_store(database_url: str | None) -> Store:
    return Store.open(config.database_url(database_url))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="verifier")
@click.option("-v", "--verbose", is_flag=True, help="Log details to stderr.")
def cli(verbose: bool) -> None:
    """Verify model weights: hash every byte, scan by content, record, decide."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _exit_code(report: ScanReport) -> ExitCode:
    if report.verdict.mode != Mode.ENFORCE.value:
        incomplete = report.status.value != "complete"
        return ExitCode.ERROR if incomplete else ExitCode.OK
    if report.status.value != "complete":
        return ExitCode.ERROR
    return ExitCode.OK if report.verdict.decision is Decision.ALLOW else ExitCode.DENIED


def _signature_options(func: F) -> F:
    pem = click.Path(exists=True, dir_okay=False, path_type=Path)
    options = [
        click.option(
            "--signature",
            "signature_path",
            type=pem,
            default=None,
            help="Model signature (Sigstore bundle) [default: model.sig at the model's root].",
        ),
        click.option(
            "--public-key",
            "public_keys",
            type=pem,
            multiple=True,
            help="PEM elliptic-curve public key; repeat for several (any may match).",
        ),
        click.option(
            "--certificate-chain",
            "certificate_chains",
            type=pem,
            multiple=True,
            help="PEM root (and intermediate) certificates; only self-signed roots are trusted.",
        ),
        click.option(
            "--identity", default=None, help="Sigstore signer identity (e-mail or URI) required."
        ),
        click.option("--issuer", default=None, help="OIDC issuer URL of the Sigstore identity."),
        click.option(
            "--trusted-root",
            type=pem,
            default=None,
            help="Sigstore trusted root JSON [default: the public-good root sigstore ships].",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def signature_request(
    *,
    signature_path: Path | None,
    public_keys: tuple[Path, ...],
    certificate_chains: tuple[Path, ...],
    identity: str | None,
    issuer: str | None,
    trusted_root: Path | None,
) -> SignatureRequest:
    """The signature options as a request, with every trust file read and checked.

    Raises:
        UsageError: a file is unreadable or not what its option expects, or an identity was
            given without its issuer (or the reverse).
    """
    if (identity is None) != (issuer is None):
        raise UsageError("--identity and --issuer go together: give both or neither")
    if trusted_root is not None and identity is None:
        raise UsageError("--trusted-root is for Sigstore identities: give --identity and --issuer")
    request = SignatureRequest(
        signature_path=str(signature_path) if signature_path is not None else None,
        public_keys=tuple((str(p), _read(p)) for p in public_keys),
        certificate_chain=tuple((str(p), _read(p)) for p in certificate_chains),
        identity=identity,
        issuer=issuer,
        trusted_root=_read(trusted_root) if trusted_root is not None else None,
    )
    try:
        check_trust_material(request)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return request


def _policy_options(func: F) -> F:
    """--policy, --env and --publishers, shared by the commands that decide."""
    func = click.option(
        "--publishers",
        "publishers_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Publisher registry that extends or overrides the shipped policies/publishers.yaml.",
    )(func)
    func = click.option(
        "--env",
        "env",
        default=None,
        metavar="NAME",
        help="Environment of the policy file (research, production, ...) [default: the file's].",
    )(func)
    return click.option(
        "--policy",
        "policy_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Policy file [default: policies/default.yaml].",
    )(func)


def _load_policy(policy_path: Path | None, env: str | None, publishers: Path | None) -> Policy:
    return load_policy(policy_path or default_policy_path(), env=env, publishers=publishers)


@cli.command()
@click.argument("target")
@_policy_options
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Files read at once.")
@_signature_options
@_format_option
@_database_option
def scan(
    target: str,
    policy_path: Path | None,
    env: str | None,
    publishers_path: Path | None,
    workers: int | None,
    fmt: str,
    database_url: str | None,
    signature_path: Path | None,
    public_keys: tuple[Path, ...],
    certificate_chains: tuple[Path, ...],
    identity: str | None,
    issuer: str | None,
    trusted_root: Path | None,
) -> None:
    """Scan TARGET (a local file or folder), record the result and decide.

    Exit status: 0 allowed, 1 denied by policy, 2 usage error, 3 could not complete.
    """
    if target.startswith(("hf://", "https://huggingface.co/")):
        raise TargetError(
            f"{target}: Hugging Face targets are not supported yet; scan a local folder "
            "(for example a snapshot in your HF cache)"
        )
    policy = _load_policy(policy_path, env, publishers_path)
    request = signature_request(
        signature_path=signature_path,
        public_keys=public_keys,
        certificate_chains=certificate_chains,
        identity=identity,
        issuer=issuer,
        trusted_root=trusted_root,
    )
    with _open_store(database_url) as store:
        report = scan_target(
            target, policy=policy, recorder=store, workers=workers, signature=request
        )
    click.echo(render_report(report, OutputFormat(fmt)), nl=False)
    if fmt in (OutputFormat.JSON.value, OutputFormat.SARIF.value):
        click.echo()
    raise click.exceptions.Exit(int(_exit_code(report)))


@cli.command()
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@_history_format_option
@_database_option
def history(limit: int, fmt: str, database_url: str | None) -> None:
    """List recorded scans, newest first."""
    with _open_store(database_url) as store:
        scans = store.list_scans(limit=limit)
    click.echo(render_history(scans, OutputFormat(fmt)), nl=fmt == OutputFormat.JSON.value)


@cli.command()
@click.argument("scan_id")
@_format_option
@_database_option
def show(scan_id: str, fmt: str, database_url: str | None) -> None:
    """Print a recorded scan (by id or a unique prefix of it) with its files and findings."""
    with _open_store(database_url) as store:
        report = store.get_scan(scan_id)
    click.echo(render_report(report, OutputFormat(fmt)), nl=fmt != OutputFormat.TABLE.value)


@cli.command()
@click.argument("target")
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in EvidenceFormat]),
    required=True,
    help="Evidence format.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to FILE (atomically) instead of stdout.",
)
@_database_option
def report(target: str, fmt: str, output: Path | None, database_url: str | None) -> None:
    """Write evidence for a recorded scan: TARGET is a scan id or hf://ns/name@commit.

    Reports read the database only; they never fetch. See docs/evidence.md.
    """
    with _open_store(database_url) as store:
        facts = load_facts(store, target)
    data = render_evidence(facts, EvidenceFormat(fmt))
    if output is None:
        click.echo(data.decode(), nl=False)
    else:
        write_atomically(output, data)
        click.echo(f"wrote {output}", err=True)


@cli.group()
def db() -> None:
    """Manage the database schema."""


@db.command()
@_database_option
def upgrade(database_url: str | None) -> None:
    """Create the database or upgrade it to the latest schema."""
    url = config.database_url(database_url)
    with Store(url) as store:
        revision = store.upgrade()
    click.echo(f"database at schema revision {revision}", err=True)


@db.command()
@_database_option
def current(database_url: str | None) -> None:
    """Print the database's schema revision."""
    with Store(config.database_url(database_url)) as store:
        click.echo(store.current_revision() or "(empty)")


def main() -> int:
    """Run the command line; returns the exit code."""
    try:
        # Non-standalone mode returns the code of a `click.exceptions.Exit` instead of exiting.
        result = cli.main(prog_name="verifier", standalone_mode=False)
    except click.exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return int(ExitCode.ERROR)
    return result if isinstance(result, int) else int(ExitCode.OK)
