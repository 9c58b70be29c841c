"""The command line: the only module that prints or exits."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from verifier import __version__, config
from verifier.errors import (
    AttestationError,
    ExitCode,
    KeyFileError,
    ServiceError,
    UsageError,
    VerifierError,
)
from verifier.formats import DEFAULT_VERIFIER_ID, EvidenceFormat, JsonDocument
from verifier.printable import printable
from verifier.report import HISTORY_FORMATS, OutputFormat, render_history, render_report

if TYPE_CHECKING:
    # Everything else loads inside the command that needs it: `verifier --help` must not pay
    # for SQLAlchemy, pydantic, the scanners or the renderers (tests/test_imports.py checks).
    from verifier.bans import Ban
    from verifier.model import CheckResult, ScanReport, Verdict
    from verifier.pipeline import HubOptions
    from verifier.placement.interface import Destination
    from verifier.policy import Policy
    from verifier.redecide import Redecision
    from verifier.service.core import ServiceConfig
    from verifier.signatures.interface import SignatureRequest
    from verifier.sources.interface import Progress
    from verifier.store import Store
    from verifier.store.interface import ScanStore

F = TypeVar("F", bound=Callable[..., Any])


_QUIET = "verifier.quiet"
_VERBOSE = "verifier.verbose"


def _on_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        import logging

        ctx.find_root().meta[_VERBOSE] = True
        logging.getLogger().setLevel(logging.DEBUG)  # given after the subcommand: logs are set up


def _on_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_root().meta[_QUIET] = True


def _verbosity_options() -> list[click.Parameter]:
    """-v and -q, accepted by the group and by every command (before or after its name)."""
    return [
        click.Option(
            ["-v", "--verbose"],
            is_flag=True,
            expose_value=False,
            callback=_on_verbose,
            help="Log details to stderr.",
        ),
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            expose_value=False,
            callback=_on_quiet,
            help="Nothing on stderr but errors: no progress bar, no status lines.",
        ),
    ]


def _quiet() -> bool:
    context = click.get_current_context(silent=True)
    return context is not None and bool(context.find_root().meta.get(_QUIET))


def _status(message: str) -> None:
    """A status line on stderr (what was written where); -q silences it, never an error."""
    if not _quiet():
        click.echo(message, err=True)


def _colour() -> bool | None:
    """False where colour is unwanted (NO_COLOR set, TERM=dumb); else None: click keeps the
    tables' colour on a terminal and strips it everywhere else (pipes, files, CI logs)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return None


class _Group(click.Group):
    """The error boundary: verifier's own errors become one line on stderr and their exit
    code; anything unexpected becomes one line and exit 3 (never a traceback, never 0 or 1).
    Every command and group added gets -v and -q (`verifier ban -q list` as well as
    `verifier ban list -q`)."""

    group_class = type  # subgroups (policy, db) are _Group too

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.params.extend(_verbosity_options())
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VerifierError as exc:
            click.echo(f"error: {printable(exc.diagnostics())}", err=True)
            raise click.exceptions.Exit(int(exc.exit_code)) from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # the boundary: a bug must not print a traceback or pass
            import logging  # only on this path: the CLI imports lazily

            logging.getLogger(__name__).debug("unexpected error", exc_info=True)
            detail = printable(f"{type(exc).__name__}: {exc}")[:500]
            click.echo(
                f"error: internal error, the command did not complete ({detail}); "
                "run with -v for details and report it",
                err=True,
            )
            raise click.exceptions.Exit(int(ExitCode.ERROR)) from None


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


def _sarif_root_option(func: F) -> F:
    option = click.option(
        "--sarif-root",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        default=None,
        metavar="DIR",
        help="With --format sarif: file paths relative to DIR (the repository root, as GitHub "
        "code scanning expects) instead of to the scanned folder.",
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


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _open_store(database_url: str | None) -> Store:
    from verifier.store import Store

    return Store.open(config.database_url(database_url))


def _open_scan_store(database_url: str | None) -> ScanStore:
    """Where `verifier scan` records: without SQLAlchemy for a SQLite file already at head."""
    from verifier.store.sqlite_recorder import open_recorder

    return open_recorder(config.database_url(database_url))


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    params=_verbosity_options(),
)
@click.version_option(__version__, prog_name="verifier")
def cli() -> None:
    """Verify model weights: hash every byte, scan by content, record, decide.

    -v and -q work before or after the command's name. Shell completion: see docs/commands.md.
    """
    import logging

    verbose = click.get_current_context().meta.get(_VERBOSE, False)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _exit_code(report: ScanReport) -> ExitCode:
    code = _decision_exit_code(report.verdict, status=report.status.value)
    if code is ExitCode.OK and any(f.code == "LOCK-DRIFT" for f in report.findings):
        return ExitCode.DENIED  # --lock asked for a gate: drift fails whatever the policy mode
    return code


def _decision_exit_code(verdict: Verdict, *, status: str) -> ExitCode:
    """3 when something could not be checked; else 1 for a deny that blocks (enforced, or a
    ban's in any mode); else 0."""
    if status != "complete":
        return ExitCode.ERROR
    return ExitCode.DENIED if verdict.blocks else ExitCode.OK


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
    from verifier.signatures.interface import SignatureRequest

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
    if request.public_keys or request.certificate_chain:
        from verifier.signatures.model_signing import check_trust_material

        try:
            check_trust_material(request)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return request


def _policy_options(func: F) -> F:
    """--policy, --env, --publishers and --waivers, shared by the commands that decide."""
    func = click.option(
        "--waivers",
        "waivers_paths",
        type=click.Path(dir_okay=False, path_type=Path),
        multiple=True,
        help="File of waivers to add to the policy's own (repeatable).",
    )(func)
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


def _server_option(func: F) -> F:
    """--server URL (env VERIFIER_SERVER): ask the organisation's service instead."""
    return click.option(
        "--server",
        envvar="VERIFIER_SERVER",
        default=None,
        metavar="URL",
        help="Ask the organisation's verification service (verifier serve) instead of working "
        "here; the token is read from VERIFIER_TOKEN [env: VERIFIER_SERVER].",
    )(func)


def _refuse_local_options(names: tuple[str, ...]) -> None:
    """With --server: refuse the options among `names` given on the command line.

    Values from the environment (HF_TOKEN, HF_ENDPOINT, VERIFIER_DATABASE_URL) are the
    runner's own and are neither refused nor sent anywhere.
    """
    context = click.get_current_context()
    given = [
        param.opts[0]
        for param in context.command.params
        if param.name in names
        and context.get_parameter_source(param.name) is click.core.ParameterSource.COMMANDLINE
    ]
    if given:
        raise UsageError(f"{', '.join(given)}: local only; the service uses its own configuration")


def _server_policy_name(policy_path: Path | None) -> str | None:
    """The server's policy a --policy names (a file's stem is its name), or None."""
    if policy_path is None:
        return None
    return policy_path.stem if policy_path.suffix in (".yaml", ".yml") else str(policy_path)


def _load_policy(
    policy_path: Path | None,
    env: str | None,
    publishers: Path | None,
    waivers: tuple[Path, ...] = (),
) -> Policy:
    from verifier.policy import default_policy_path, load_policy

    return load_policy(
        policy_path or default_policy_path(), env=env, publishers=publishers, waivers=waivers
    )


def _hub_options(func: F) -> F:
    """Options for Hugging Face targets, shared by `scan` and `lock`."""
    for option in reversed(
        (
            click.option(
                "--token",
                envvar="HF_TOKEN",
                default=None,
                metavar="TOKEN",
                help="Hugging Face access token [env: HF_TOKEN].",
            ),
            click.option(
                "--hf-endpoint",
                envvar="HF_ENDPOINT",
                default=None,
                metavar="URL",
                help="Hub base URL, for mirrors and proxies "
                "[env: HF_ENDPOINT; default: https://huggingface.co].",
            ),
            click.option(
                "--no-lineage", is_flag=True, help="Hub targets: do not resolve base models."
            ),
        )
    ):
        func = option(func)
    return func


@cli.command()
@click.argument("targets", metavar="[TARGET]...", nargs=-1)
@_policy_options
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Files read at once.")
@click.option(
    "--include",
    multiple=True,
    metavar="GLOB",
    help="Hub targets: fetch only files matching GLOB (repeatable), such as '*.safetensors'.",
)
@click.option(
    "--exclude", multiple=True, metavar="GLOB", help="Hub targets: skip files matching GLOB."
)
@click.option(
    "--metadata-only",
    is_flag=True,
    help="Hub targets: download nothing large; record declared digests and read safetensors "
    "headers by range. The scan is incomplete (exit 3): never an allow.",
)
@click.option(
    "--lock",
    "lock_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Check Hub models against a lockfile (see `verifier lock`): any drift denies (exit 1). "
    "Without TARGET, every model in the file is scanned.",
)
@_hub_options
@_signature_options
@_format_option
@_sarif_root_option
@_server_option
@click.option(
    "--server-timeout",
    type=click.FloatRange(1, 86_400),
    default=3_600,
    show_default=True,
    metavar="SECONDS",
    help="With --server: how long to wait for the scan (exit 3 after).",
)
@_database_option
def scan(
    targets: tuple[str, ...],
    policy_path: Path | None,
    env: str | None,
    publishers_path: Path | None,
    waivers_paths: tuple[Path, ...],
    workers: int | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    metadata_only: bool,
    lock_path: Path | None,
    token: str | None,
    hf_endpoint: str | None,
    no_lineage: bool,
    fmt: str,
    sarif_root: Path | None,
    database_url: str | None,
    signature_path: Path | None,
    public_keys: tuple[Path, ...],
    certificate_chains: tuple[Path, ...],
    identity: str | None,
    issuer: str | None,
    trusted_root: Path | None,
    server: str | None,
    server_timeout: float,
) -> None:
    """Scan TARGET (a local file or folder, or hf://namespace/name[@revision]).

    Hub models are resolved to one commit, fetched into quarantine, verified against the
    declared digests, then scanned like a local folder. The result is recorded and decided.
    Several TARGETs are scanned one by one, each its own recorded scan (pre-commit passes the
    staged files so); the exit status is the worst of theirs. With --server, the service
    scans (or answers from its record) and this prints what a local scan prints.

    Exit status: 0 allowed, 1 denied by policy, 2 usage error, 3 could not complete.
    """
    from verifier.pipeline import HubOptions

    if server:
        _refuse_local_options(
            (
                "lock_path",
                "workers",
                "include",
                "exclude",
                "metadata_only",
                "publishers_path",
                "waivers_paths",
                "token",
                "hf_endpoint",
                "no_lineage",
                "sarif_root",
                "database_url",
                "signature_path",
                "public_keys",
                "certificate_chains",
                "identity",
                "issuer",
                "trusted_root",
            )
        )
        if len(targets) > 1 and fmt not in (OutputFormat.JSON.value, OutputFormat.TABLE.value):
            raise UsageError(f"--format {fmt} prints one model: give one TARGET")
        reports = _scan_on_server(server, targets, policy_path, env, server_timeout)
        _print_reports(reports, fmt, sarif_root=None)
        raise click.exceptions.Exit(int(max(_exit_code(r) for r in reports)))
    _check_sarif_root(sarif_root, fmt=fmt, targets=targets, lock_path=lock_path)
    policy = _load_policy(policy_path, env, publishers_path, waivers_paths)
    request = signature_request(
        signature_path=signature_path,
        public_keys=public_keys,
        certificate_chains=certificate_chains,
        identity=identity,
        issuer=issuer,
        trusted_root=trusted_root,
    )
    hub = HubOptions(
        endpoint=hf_endpoint,
        token=token,
        include=include,
        exclude=exclude,
        metadata_only=metadata_only,
        lineage=not no_lineage,
    )
    jobs = [job for target in targets or (None,) for job in _scan_jobs(target, lock_path, hub)]
    if len(jobs) > 1 and fmt not in (OutputFormat.JSON.value, OutputFormat.TABLE.value):
        raise UsageError(f"--format {fmt} prints one model: give one TARGET")
    reports = _run_scans(
        jobs, policy=policy, workers=workers, signature=request, database_url=database_url
    )
    _print_reports(reports, fmt, sarif_root=sarif_root)
    raise click.exceptions.Exit(int(max(_exit_code(r) for r in reports)))


def _scan_one(
    target: str,
    hub: HubOptions,
    *,
    policy: Policy,
    recorder: ScanStore,
    workers: int | None = None,
    progress: Progress | None = None,
    signature: SignatureRequest | None = None,
) -> ScanReport:
    """Build the source TARGET names and scan it through the one pipeline."""
    from verifier.pipeline import scan_source
    from verifier.sources.targets import SourceSettings, open_source

    # What the caller of the command line handed in (tests: no back-off), else the defaults.
    handed = click.get_current_context().find_root().obj
    settings = handed if isinstance(handed, SourceSettings) else None
    return scan_source(
        open_source(target, hub=hub, settings=settings),
        policy=policy,
        recorder=recorder,
        workers=workers,
        progress=progress,
        signature=signature,
        locked=hub.locked,
    )


def _run_scans(
    jobs: list[tuple[str, HubOptions]],
    *,
    policy: Policy,
    workers: int | None,
    signature: SignatureRequest,
    database_url: str | None,
) -> list[ScanReport]:
    """Scan each (target, Hub options) in turn, recording each, with progress on stderr."""
    from verifier.progress import download_progress

    reports = []
    with (
        _open_scan_store(database_url) as store,
        download_progress(enabled=not _quiet()) as progress,
    ):
        for job_target, job_hub in jobs:
            reports.append(
                _scan_one(
                    job_target,
                    job_hub,
                    policy=policy,
                    recorder=store,
                    workers=workers,
                    progress=progress,
                    signature=signature,
                )
            )
    return reports


def _print_reports(reports: list[ScanReport], fmt: str, *, sarif_root: Path | None) -> None:
    """The scans on stdout: one document per scan, or `{"scans": [...]}` for several in JSON."""
    from verifier.report.json_format import report_document

    if len(reports) > 1 and fmt == OutputFormat.JSON.value:
        from verifier.facts import SCHEMA_VERSION

        scans = [report_document(r) for r in reports]
        document = {"schema_version": SCHEMA_VERSION, "scans": scans}
        click.echo(json.dumps(document, indent=2))
        return
    for report in reports:
        text = render_report(report, OutputFormat(fmt), sarif_root=_str(sarif_root))
        click.echo(text, nl=False, color=_colour())
        if fmt in (OutputFormat.JSON.value, OutputFormat.SARIF.value):
            click.echo()


def _scan_on_server(
    server: str,
    targets: tuple[str, ...],
    policy_path: Path | None,
    env: str | None,
    timeout: float,
) -> list[ScanReport]:
    """Each TARGET scanned by the service (or answered from its record), as reports."""
    from verifier.report.json_format import parse_report_document
    from verifier.service.client import ServiceClient

    if not targets:
        raise UsageError("give a TARGET to scan")
    for target in targets:
        if not target.startswith("hf://"):
            raise UsageError(
                f"{target}: the service scans Hub models (hf://namespace/name[@revision]); "
                "scan local files without --server"
            )
    # The service decides with its own policy: --policy names it.
    policy = _server_policy_name(policy_path)
    client = ServiceClient(server, os.environ.get("VERIFIER_TOKEN", ""))
    reports = []
    for target in targets:
        job_id = client.submit_scan(target, policy=policy, environment=env)
        _status(f"{target}: scan job {job_id} on {client.url}")
        outcome = client.wait(job_id, timeout=timeout)
        reports.append(parse_report_document(dict(outcome.result)))
    return reports


def _check_sarif_root(
    sarif_root: Path | None, *, fmt: str, targets: tuple[str, ...], lock_path: Path | None
) -> None:
    """Refuse --sarif-root before scanning where it cannot apply."""
    from verifier.sources.huggingface.targets import is_hub_target

    if sarif_root is None:
        return
    if fmt != OutputFormat.SARIF.value:
        raise UsageError("--sarif-root applies to --format sarif")
    if lock_path is not None or any(is_hub_target(target) for target in targets):
        raise UsageError("--sarif-root applies to local files and folders, not to Hub models")
    from verifier.report.sarif import folder_in

    for target in targets:
        folder_in(target, str(sarif_root))


def _scan_jobs(
    target: str | None, lock_path: Path | None, hub: HubOptions
) -> list[tuple[str, HubOptions]]:
    """What to scan: TARGET, or the models of the lockfile (each with its lock entry)."""
    from dataclasses import replace

    from verifier.sources.huggingface.targets import is_hub_target, parse_hub_target

    if lock_path is None:
        if target is None:
            raise UsageError("give a TARGET to scan (or --lock FILE)")
        return [(target, hub)]
    from verifier.lockfile import find_locked, read_lock  # only with --lock

    if hub.metadata_only or hub.include or hub.exclude:
        raise UsageError(
            "--lock checks every file: it cannot be used with --metadata-only, "
            "--include or --exclude"
        )
    models = read_lock(lock_path)
    if target is None:
        return [(m.target, replace(hub, locked=m)) for m in models]
    if not is_hub_target(target):
        raise UsageError("--lock applies to Hugging Face targets (hf://namespace/name)")
    locked = find_locked(models, parse_hub_target(target).repo_id)
    return [(target, replace(hub, locked=locked))]


@cli.command()
@click.argument("targets", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Lockfile to write (JSON; replaced atomically).",
)
@_policy_options
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Files read at once.")
@_hub_options
@_database_option
def lock(
    targets: tuple[str, ...],
    output: Path,
    policy_path: Path | None,
    env: str | None,
    publishers_path: Path | None,
    waivers_paths: tuple[Path, ...],
    workers: int | None,
    token: str | None,
    hf_endpoint: str | None,
    no_lineage: bool,
    database_url: str | None,
) -> None:
    """Scan Hub models and write a lockfile of their commits and file digests.

    Each TARGET (hf://namespace/name[@revision]) is scanned as `verifier scan` does; the
    lockfile is written only when every one is allowed. `verifier scan --lock FILE` then fails
    on any drift: another commit, or a changed, added or removed file.
    """
    from verifier.lockfile import locked_from_report, write_lock
    from verifier.pipeline import HubOptions
    from verifier.progress import download_progress
    from verifier.sources.huggingface.targets import is_hub_target

    for target in targets:
        if not is_hub_target(target):
            raise UsageError(f"{target}: only Hugging Face models (hf://...) can be locked")
    policy = _load_policy(policy_path, env, publishers_path, waivers_paths)
    hub = HubOptions(endpoint=hf_endpoint, token=token, lineage=not no_lineage)
    models = []
    with _open_store(database_url) as store, download_progress(enabled=not _quiet()) as progress:
        for target in targets:
            report = _scan_one(
                target, hub, policy=policy, recorder=store, workers=workers, progress=progress
            )
            code = _exit_code(report)
            if code is not ExitCode.OK:
                click.echo(
                    f"error: {target} was not allowed (decision {report.verdict.decision.value}, "
                    f"status {report.status.value}, scan {report.scan_id}); "
                    "no lockfile written",
                    err=True,
                )
                raise click.exceptions.Exit(int(code))
            models.append(locked_from_report(report))
    write_lock(output, models)
    _status(f"locked {len(models)} model(s) into {output}")


@cli.command()
@click.argument("target", metavar="[TARGET]", required=False)
@_policy_options
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Files read at once.")
@click.option(
    "--include",
    multiple=True,
    metavar="GLOB",
    help="Fetch and place only files matching GLOB (repeatable), such as '*.safetensors'.",
)
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching GLOB.")
@click.option(
    "--lock",
    "lock_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Pull the models of a lockfile (or TARGET's entry): any drift denies, nothing placed.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Hugging Face cache to place into [default: HF_HUB_CACHE, else HF_HOME/hub, else "
    "~/.cache/huggingface/hub].",
)
@click.option(
    "--local-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Place the files themselves in DIR instead of the cache (one model).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace a cache entry (or DIR) that holds other bytes for the same commit.",
)
@_hub_options
@_signature_options
@_format_option
@_database_option
def pull(
    target: str | None,
    policy_path: Path | None,
    env: str | None,
    publishers_path: Path | None,
    waivers_paths: tuple[Path, ...],
    workers: int | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    lock_path: Path | None,
    cache_dir: Path | None,
    local_dir: Path | None,
    force: bool,
    token: str | None,
    hf_endpoint: str | None,
    no_lineage: bool,
    fmt: str,
    database_url: str | None,
    signature_path: Path | None,
    public_keys: tuple[Path, ...],
    certificate_chains: tuple[Path, ...],
    identity: str | None,
    issuer: str | None,
    trusted_root: Path | None,
) -> None:
    """Scan a Hub model as `scan` does and, only if allowed, place its verified files for loaders.

    TARGET is hf://namespace/name[@revision]; with --lock FILE and no TARGET, every model of
    the lockfile. The files placed are the bytes verifier verified (from its store, never
    downloaded again), into the Hugging Face cache layout (then `HF_HUB_OFFLINE=1` loads them
    with huggingface_hub and transformers) or into --local-dir. Prints the scan as `scan` does
    and the commit placed. Nothing is placed unless every model is allowed.

    Exit status: 0 placed, 1 denied (nothing placed), 2 usage error, 3 could not complete
    (including a cache entry with other bytes for the commit: --force replaces it).
    """
    from verifier.pipeline import HubOptions
    from verifier.pull import place, refusal
    from verifier.sources.huggingface.targets import is_hub_target

    if cache_dir is not None and local_dir is not None:
        raise UsageError("give --cache-dir or --local-dir, not both")
    policy = _load_policy(policy_path, env, publishers_path, waivers_paths)
    request = signature_request(
        signature_path=signature_path,
        public_keys=public_keys,
        certificate_chains=certificate_chains,
        identity=identity,
        issuer=issuer,
        trusted_root=trusted_root,
    )
    hub = HubOptions(
        endpoint=hf_endpoint,
        token=token,
        include=include,
        exclude=exclude,
        lineage=not no_lineage,
    )
    jobs = _scan_jobs(target, lock_path, hub)
    for job_target, _ in jobs:
        if not is_hub_target(job_target):
            raise UsageError(f"{job_target}: pull takes Hugging Face models (hf://namespace/name)")
    if local_dir is not None and len(jobs) > 1:
        raise UsageError("--local-dir holds one model: give one TARGET")
    if len(jobs) > 1 and fmt == OutputFormat.SARIF.value:
        raise UsageError(f"--format {fmt} prints one model: give one TARGET")
    destination = _destination(cache_dir, local_dir)
    reports = _run_scans(
        jobs, policy=policy, workers=workers, signature=request, database_url=database_url
    )
    _print_reports(reports, fmt, sarif_root=None)
    code = max(_exit_code(r) for r in reports)
    refused = [(r, reason) for r in reports if (reason := refusal(r)) is not None]
    for report, reason in refused:
        _status(f"not placed: {printable(report.target)}: {reason} (scan {report.scan_id})")
    if refused:
        # An audit-mode deny exits 0 from `scan`; a pull that placed nothing never does.
        raise click.exceptions.Exit(int(max(code, ExitCode.DENIED)))
    home = config.home_dir()
    for report in reports:
        placed = place(report, destination, home=home, force=force)
        _status(
            f"{placed.outcome.value} {printable(placed.repo_id)}@{placed.commit} "
            f"({len(placed.files)} files) in {printable(placed.path)}"
        )
    raise click.exceptions.Exit(int(code))


def _destination(cache_dir: Path | None, local_dir: Path | None) -> Destination:
    """Where `pull` places: the folder given, or the Hugging Face cache the client would use."""
    from verifier.placement.hf_cache import HubCache, default_cache_dir
    from verifier.placement.local_dir import LocalDir

    if local_dir is not None:
        return LocalDir(local_dir)
    return HubCache(cache_dir if cache_dir is not None else default_cache_dir())


@cli.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--lock",
    "lock_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Lockfile (from `verifier lock`) whose entry the folder must match.",
)
@_server_option
@click.option(
    "--model",
    "model",
    default=None,
    metavar="NS/NAME[@COMMIT]",
    help="The model the folder holds: the lockfile entry (ns/name) or, with --server, "
    "ns/name@<commit> [default: read from a cache snapshot path; with --lock, the only entry].",
)
@click.option(
    "--env",
    "env",
    default=None,
    metavar="NAME",
    help="With --server: the environment whose decision counts [default: the server's].",
)
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Files hashed at once.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice([OutputFormat.TABLE.value, OutputFormat.JSON.value]),
    default=OutputFormat.TABLE.value,
    show_default=True,
    help="Output format; json prints one document on stdout.",
)
def check_command(
    path: Path,
    lock_path: Path | None,
    server: str | None,
    model: str | None,
    env: str | None,
    workers: int | None,
    fmt: str,
) -> None:
    """Gate a model already on disk: re-hash PATH's files and compare them with what was verified.

    PATH is the model's folder (a cache snapshot `.../models--ns--name/snapshots/<commit>`, a
    --local-dir of `verifier pull`, any copy). With --lock, every locked file must be there with
    its locked size and sha256, and nothing else may be (an extra file is drift too). With
    --server, the same holds for the files of the service's scan of the model@commit, and the
    service's decision for it must be allow. Nothing is recorded and nothing is fetched;
    start-up is light enough for a container's entrypoint.

    Exit status: 0 matches (and allowed), 1 drift or denied, 2 usage error (lockfile, entry,
    token), 3 a file could not be read, or the service has no decision or cannot be reached.
    """
    from verifier.check import check_document, exit_code

    result = _check_against(path, lock_path, server, model=model, env=env, workers=workers)
    if fmt == OutputFormat.JSON.value:
        click.echo(json.dumps(check_document(result), indent=2))
    else:
        _print_check(result)
    raise click.exceptions.Exit(int(exit_code(result)))


def _check_against(
    path: Path,
    lock_path: Path | None,
    server: str | None,
    *,
    model: str | None,
    env: str | None,
    workers: int | None,
) -> CheckResult:
    """`check`'s comparison: with the lockfile, or with the service's record and decision."""
    from verifier.check import check_model, check_with_service, select_entry, service_subject
    from verifier.lockfile import read_lock

    context = click.get_current_context()
    server_given = context.get_parameter_source("server") is click.core.ParameterSource.COMMANDLINE
    if lock_path is not None and server_given:
        raise UsageError("give --lock FILE or --server URL, not both")
    if lock_path is not None:
        # VERIFIER_SERVER in the environment does not turn a lockfile check into another one.
        if env is not None:
            raise UsageError("--env applies to --server (a lockfile has no environments)")
        locked = select_entry(read_lock(lock_path), str(path), model)
        return check_model(path, locked, workers=workers)
    if not server:
        raise UsageError("give --lock FILE or --server URL (or set VERIFIER_SERVER)")
    from verifier.service.client import ServiceClient

    subject = service_subject(str(path), model)
    client = ServiceClient(server, os.environ.get("VERIFIER_TOKEN", ""))
    return check_with_service(path, subject, client=client, environment=env, workers=workers)


def _print_check(result: CheckResult) -> None:
    for finding in result.findings:
        where = f" {printable(finding.file)}:" if finding.file else ""
        evidence = f" ({printable(finding.evidence)})" if finding.evidence else ""
        click.echo(
            f"{finding.code} {finding.severity.value}{where} {printable(finding.message)}{evidence}"
        )
    decision = result.decision
    verdict = "matches" if result.matched else "does not match"
    expected = "recorded by the service" if decision is not None else "locked"
    click.echo(
        f"{printable(result.path)} {verdict} {printable(result.repo_id)}@{result.commit} "
        f"({len(result.files)} files hashed, {result.expected} {expected})"
    )
    if decision is not None:
        from verifier.report.table import render_decision

        target = f"{decision.subject} (scan {decision.scan_id}, {decision.server})"
        text = render_decision(decision.verdict, target=target, status=decision.status.value)
        click.echo(text, nl=False, color=_colour())


@cli.command()
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@_history_format_option
@_database_option
def history(limit: int, fmt: str, database_url: str | None) -> None:
    """List recorded scans, newest first."""
    with _open_store(database_url) as store:
        scans = store.list_scans(limit=limit)
    text = render_history(scans, OutputFormat(fmt))
    click.echo(text, nl=fmt == OutputFormat.JSON.value, color=_colour())


@cli.command()
@click.argument("scan_id")
@_format_option
@_sarif_root_option
@_database_option
def show(scan_id: str, fmt: str, sarif_root: Path | None, database_url: str | None) -> None:
    """Print a recorded scan (by id or a unique prefix of it) with its files and findings."""
    with _open_store(database_url) as store:
        report = store.get_scan(scan_id)
    text = render_report(report, OutputFormat(fmt), sarif_root=_str(sarif_root))
    click.echo(text, nl=fmt != OutputFormat.TABLE.value, color=_colour())


@cli.command()
@click.argument("subject")
@_policy_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice([OutputFormat.TABLE.value, OutputFormat.JSON.value]),
    default=OutputFormat.TABLE.value,
    show_default=True,
    help="Output format; json prints one document on stdout.",
)
@_server_option
@_database_option
def decide(
    subject: str,
    policy_path: Path | None,
    env: str | None,
    publishers_path: Path | None,
    waivers_paths: tuple[Path, ...],
    fmt: str,
    server: str | None,
    database_url: str | None,
) -> None:
    """Decide a recorded scan again with a policy, without fetching anything.

    SUBJECT is a scan id (or unique prefix) or hf://namespace/name@<40-hex commit>, which means
    the newest recorded scan of that commit. The decision is recorded (unless the policy's mode
    is dry-run) and becomes the scan's current one. With --server, the service's gate answers
    for hf://namespace/name@<commit> (nothing is recorded). Exit status as for scan.
    """
    from verifier.policy import build_evidence
    from verifier.policy import decide as decide_policy
    from verifier.policy.compiled import HF_SUBJECT, Mode
    from verifier.report.json_format import verdict_document
    from verifier.report.table import render_decision

    if server:
        _refuse_local_options(("publishers_path", "waivers_paths", "database_url"))
        _decide_on_server(server, subject, _server_policy_name(policy_path), env, fmt)
    policy = _load_policy(policy_path, env, publishers_path, waivers_paths)
    if subject.startswith("hf://") and not HF_SUBJECT.match(subject):
        raise UsageError(
            f"{subject}: give the exact commit, hf://namespace/name@<40-hex commit>, or a scan id"
        )
    now = datetime.now(UTC)
    with _open_store(database_url) as store:
        scan_id = store.find_scan_by_subject(subject) if subject.startswith("hf://") else subject
        scan_id, facts = store.get_facts(scan_id)
        # A ban made between the lookup and the record refuses the record (exit 3: run again).
        seen = store.ban_generation()
        bans = store.bans_reaching(facts, publishers=policy.publishers)
        evidence = build_evidence(facts, publishers=policy.publishers, now=now, bans=bans)
        verdict = decide_policy(evidence, policy, now=now)
        if policy.mode is not Mode.DRY_RUN:
            store.record_decision(scan_id, verdict, bans_seen=seen)
    status = facts.status.value
    if fmt == OutputFormat.JSON.value:
        document = {
            "schema_version": JsonDocument.DECISION.schema_version,
            "scan_id": scan_id,
            "subject": evidence["subject"]["uri"] or evidence["subject"]["target"],
            "status": status,
            "decision": verdict.decision.value,
            "recorded": policy.mode is not Mode.DRY_RUN,
            "policy": verdict_document(verdict),
        }
        click.echo(json.dumps(document, indent=2))
    else:
        target = f"{facts.target} (scan {scan_id})"
        text = render_decision(verdict, target=target, status=status)
        click.echo(text, nl=False, color=_colour())
    raise click.exceptions.Exit(int(_decision_exit_code(verdict, status=status)))


def _decide_on_server(
    server: str, subject: str, policy: str | None, env: str | None, fmt: str
) -> None:
    """`decide --server`: the service's gate answer, printed as a local `decide` prints it."""
    from verifier.policy.compiled import HF_SUBJECT
    from verifier.report.json_format import parse_gate_document, verdict_document
    from verifier.report.table import render_decision
    from verifier.service.client import ServiceClient

    if not HF_SUBJECT.match(subject):
        raise UsageError(
            f"{subject}: with --server, give the exact commit, hf://namespace/name@<40-hex commit>"
        )
    client = ServiceClient(server, os.environ.get("VERIFIER_TOKEN", ""))
    answer = client.decision(subject, environment=env)
    if policy is not None and policy not in ("default", answer.get("policy")):
        raise UsageError(
            f"the service decides with policy {answer.get('policy')!r}, not {policy!r}"
        )
    if answer["decision"] == "unknown":
        reasons = "; ".join(str(r.get("message", "")) for r in answer["reasons"][:3])
        raise ServiceError(f"{subject}: the service has no decision ({reasons})")
    status = answer.get("status")
    scan_id = answer.get("scan_id")
    if not isinstance(status, str) or not isinstance(scan_id, str):
        raise ServiceError("the service's decision names no recorded scan and status")
    verdict = parse_gate_document(answer)
    if fmt == OutputFormat.JSON.value:
        document = {
            "schema_version": JsonDocument.DECISION.schema_version,
            "scan_id": scan_id,
            "subject": subject,
            "status": status,
            "decision": verdict.decision.value,
            "recorded": False,
            "policy": verdict_document(verdict),
        }
        click.echo(json.dumps(document, indent=2))
    else:
        text = render_decision(verdict, target=f"{subject} (scan {scan_id})", status=status)
        click.echo(text, nl=False, color=_colour())
    raise click.exceptions.Exit(int(_decision_exit_code(verdict, status=status)))


@cli.group()
def policy() -> None:
    """Check policy files and run their tests."""


@policy.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--publishers", "publishers_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--waivers", "waivers_paths", type=click.Path(dir_okay=False, path_type=Path), multiple=True
)
def check(path: Path, publishers_path: Path | None, waivers_paths: tuple[Path, ...]) -> None:
    """Validate a policy file (every environment) without deciding anything."""
    from verifier.policy import load_policy

    base = load_policy(path, publishers=publishers_path, waivers=waivers_paths)
    for env_name in base.document.environments:
        load_policy(path, env=env_name, publishers=publishers_path, waivers=waivers_paths)
    envs = ", ".join(base.document.environments) or "none"
    click.echo(
        f"ok: {path}: policy {base.name}, {len(base.document.rules)} base rules, "
        f"environments: {envs}, {len(base.waivers)} waivers, sha256:{base.digest()}"
    )


@policy.command(name="test")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def test_policies(path: Path) -> None:
    """Run the policy tests (*_test.yaml) in PATH: exit 0 when all pass, 1 when one fails."""
    from verifier.policy.testing import find_test_files, run_test_file

    results = [result for file in find_test_files(path) for result in run_test_file(file)]
    for result in results:
        label = "PASS" if result.passed else "FAIL"
        click.echo(f"{label} {result.file}::{result.name}")
        for problem in result.problems:
            click.echo(f"    {problem}")
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    raise click.exceptions.Exit(int(ExitCode.DENIED if failed else ExitCode.OK))


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
@click.option(
    "--signing-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM private key (EC P-256/P-384/P-521 or Ed25519): sign the vsa in a DSSE envelope.",
)
@click.option(
    "--verifier-id",
    default=DEFAULT_VERIFIER_ID,
    show_default=True,
    metavar="URI",
    help="predicate.verifier.id of the vsa: a URI naming your verifier deployment.",
)
@click.option(
    "--publishers",
    "publishers_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Publisher registry that extends or overrides the shipped policies/publishers.yaml.",
)
@click.option(
    "--vsa-uri",
    default=None,
    metavar="URI",
    help="cyclonedx only: where the model's verification summary is published (an attestation "
    "external reference).",
)
@_database_option
def report(
    target: str,
    fmt: str,
    output: Path | None,
    signing_key: Path | None,
    verifier_id: str,
    publishers_path: Path | None,
    vsa_uri: str | None,
    database_url: str | None,
) -> None:
    """Write evidence for a recorded scan: TARGET is a scan id or hf://ns/name@commit.

    Reports read the database only; they never fetch. See docs/evidence.md.
    """
    from verifier.evidence import dsse, load_facts, render_evidence
    from verifier.evidence.output import write_atomically
    from verifier.policy.publishers import load_publishers, shipped_publishers

    if EvidenceFormat(fmt).binary and output is None:
        raise UsageError(f"--format {fmt} writes a binary file: give -o FILE")
    key = dsse.load_private_key(signing_key) if signing_key is not None else None
    registry = shipped_publishers()
    if publishers_path is not None:
        registry = registry.merged(load_publishers(publishers_path))
    with _open_store(database_url) as store:
        facts = load_facts(store, target, publishers=registry)
    data = render_evidence(
        facts, EvidenceFormat(fmt), signing_key=key, verifier_id=verifier_id, vsa_uri=vsa_uri
    )
    if output is None:
        click.echo(data.decode(), nl=False)
    else:
        write_atomically(output, data)
        _status(f"wrote {output}")


@cli.command()
@click.argument("target")
@click.option(
    "--signing-key",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The organisation's PEM private key (EC P-256, P-384 or P-521).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the signature bundle (atomically).",
)
@_database_option
def approve(target: str, signing_key: Path, output: Path, database_url: str | None) -> None:
    """Countersign an allowed model: an OpenSSF model signing bundle over its verified digests.

    TARGET is a scan id or hf://ns/name@commit whose recorded decision is allow. The bundle is
    what `model_signing verify key MODEL --signature FILE --public_key PUB` accepts. Exit
    status: 0 written, 1 refused (the model is not allowed), 2 usage error (key, target).
    """
    from verifier.evidence import approval, dsse, load_facts
    from verifier.evidence.approval import bundle_resources
    from verifier.evidence.output import write_atomically

    key = dsse.load_private_key(signing_key)
    with _open_store(database_url) as store:
        facts = load_facts(store, target)
    ignore: tuple[str, ...] = ()
    root = facts.report.source.get("root")
    if root:  # a bundle written inside the model folder must not sign itself
        try:
            ignore = (output.resolve().relative_to(Path(root).resolve()).as_posix(),)
        except ValueError:
            ignore = ()
    bundle = approval.approval_bundle(facts, key, ignore=ignore)
    data = (json.dumps(bundle, indent=2) + "\n").encode()
    record = approval.approval_record(bundle, data, output=str(output), at=datetime.now(UTC))
    write_atomically(output, data)
    try:  # the audit trail keeps every countersignature; none stays unrecorded
        with _open_store(database_url) as store:
            store.record_approval(facts.report.scan_id, record)
    except VerifierError:
        output.unlink(missing_ok=True)
        raise
    _status(f"approved {facts.purl} ({len(bundle_resources(bundle))} files): wrote {output}")


@cli.command("verify-attestation")
@click.argument("attestation", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="PEM public key the envelope must be signed with.",
)
@click.option(
    "--require-passed", is_flag=True, help="Also exit 1 unless the VSA's result is PASSED."
)
def verify_attestation(attestation: Path, public_key: Path, require_passed: bool) -> None:
    """Check a DSSE-signed attestation (such as a vsa from `report`) against a public key.

    Exit status: 0 verified, 1 rejected (bad signature, not an envelope, or with
    --require-passed a result other than PASSED), 2 usage error (missing or unusable key).
    """
    from verifier.evidence import dsse, vsa

    key = dsse.load_public_key(public_key)
    try:
        data = attestation.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read {attestation}: {exc.strerror or exc}") from None
    verified = vsa.verify(data, key)
    click.echo(verified.summary())
    if require_passed and verified.result != "PASSED":
        raise AttestationError(f"the attestation's result is {verified.result}, not PASSED")


def _actor() -> str:
    """Who ran a command, for the audit log: `cli:<login name>`."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "cli"


#: `serve --notify-interval`'s default: seconds between delivery passes.
DELIVERY_SECONDS = 10.0
#: What `notify add` and `notify list` say of deliveries (the command cannot see the servers).
DELIVERIES_NOTE = (
    "deliveries: every `verifier serve` on this database records and sends notifications every "
    f"--notify-interval seconds (default {DELIVERY_SECONDS:g}), whatever its --upkeep-interval; "
    "nothing is sent while no server runs, and a server started with --notify-interval 0 sends "
    "none (GET /api/v1/notifications/subscriptions says whether the server answering does)"
)


@cli.group()
def notify() -> None:
    """Add, list and remove notification subscriptions (signed webhooks; docs/service.md)."""


@notify.command("add")
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    type=click.Choice(["decision.changed", "finding.critical", "waiver.expiring"]),
    help="An event to be told of (repeatable) [all three].",
)
@click.option(
    "--waiver-days",
    type=click.IntRange(0, 365),
    default=14,
    show_default=True,
    help="Tell of waivers expiring within this many days.",
)
@click.option("--environment", default=None, help="Only decision changes in this environment.")
@click.option("--publisher", default=None, help="Only models of this Hub namespace.")
@click.option(
    "--secret-env",
    metavar="VAR",
    default=None,
    help="Read the signing secret from this environment variable [one is made and printed].",
)
@_database_option
def notify_add(
    url: str,
    events: tuple[str, ...],
    waiver_days: int,
    environment: str | None,
    publisher: str | None,
    secret_env: str | None,
    database_url: str | None,
) -> None:
    """Send signed notifications to URL (https://, or http:// to loopback). Without
    --secret-env a secret is made and printed once, alone on the last line; it is stored to
    sign with and never shown again. Exit 0, 2 for a bad value or a URL subscribed already."""
    import secrets

    from verifier.notifications import NotificationEvent, new_subscription
    from verifier.store.notifications import SubscriptionRecords

    made = None
    if secret_env is not None:
        secret = os.environ.get(secret_env)
        if not secret:
            raise UsageError(f"--secret-env {secret_env}: that environment variable is not set")
    else:
        secret = made = secrets.token_urlsafe(32)
    subscription = new_subscription(
        url,
        secret=secret,
        events=events or [event.value for event in NotificationEvent],
        waiver_days=waiver_days,
        environment=environment,
        publisher=publisher,
    )
    with _open_store(database_url) as store:
        added = SubscriptionRecords(store).add(subscription, actor=_actor())
    events_told = ", ".join(sorted(event.value for event in added.events))
    click.echo(f"subscription {added.subscription_id}: {printable(added.url)} ({events_told})")
    click.echo(DELIVERIES_NOTE, err=True)
    if made is not None:
        click.echo("its signing secret is shown once, here:")
        click.echo(made)


@notify.command("list")
@_database_option
def notify_list(database_url: str | None) -> None:
    """List the recorded subscriptions (never their secrets; the server's --notify-url flags
    are not recorded, so not listed here: `GET /api/v1/notifications/subscriptions` has both)."""
    from verifier.store.notifications import SubscriptionRecords

    with _open_store(database_url) as store:
        found = SubscriptionRecords(store).subscriptions()
    if not found:
        click.echo("no subscription (verifier notify add https://...)")
    else:
        click.echo(DELIVERIES_NOTE, err=True)
    for item in found:
        events = ",".join(sorted(event.value for event in item.events))
        where = "".join(
            f" {name} {printable(value)}"
            for name, value in (("environment", item.environment), ("publisher", item.publisher))
            if value is not None
        )
        click.echo(
            f"{item.subscription_id}\t{printable(item.url)}\t{events}\t"
            f"waivers {item.waiver_days} days{where}\tby {printable(item.created_by or '')}"
        )


@notify.command("remove")
@click.argument("subscription_id", type=click.IntRange(1, 2**63 - 1))
@_database_option
def notify_remove(subscription_id: int, database_url: str | None) -> None:
    """Remove subscription SUBSCRIPTION_ID: nothing more is sent to it, and what was still
    owed to it is given up. Exit 0, 2 when there is no such subscription."""
    from verifier.store.notifications import SubscriptionRecords

    with _open_store(database_url) as store:
        removed = SubscriptionRecords(store).remove(subscription_id, actor=_actor())
    click.echo(f"removed subscription {subscription_id}: {printable(removed.url)}")


@cli.group()
def token() -> None:
    """Create, list and revoke the service's API tokens."""


@token.command("create")
@click.option("--name", required=True, help="Unique name (a-z, 0-9, '.', '_', '-').")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["viewer", "scanner", "approver", "admin"]),
    help="viewer reads; scanner also submits scans; approver also approves; admin everything.",
)
@_database_option
def token_create(name: str, role: str, database_url: str | None) -> None:
    """Create a token; its secret is printed once, alone on the last line, and never stored."""
    from verifier.service.model import Role
    from verifier.service.tokens import check_token_name, new_token, token_digest
    from verifier.store.service_records import ServiceRecords

    secret = new_token()
    with _open_store(database_url) as store:
        created = ServiceRecords(store).create_token(
            name=check_token_name(name),
            role=Role(role),
            token_sha256=token_digest(secret),
            actor=_actor(),
        )
    click.echo(
        f"created token {created.name} with role {created.role.value}; it is shown once, here:"
    )
    click.echo(secret)


@token.command("revoke")
@click.argument("name")
@_database_option
def token_revoke(name: str, database_url: str | None) -> None:
    """Revoke the token NAME: it never authenticates again (its name is not reused)."""
    from verifier.store.service_records import ServiceRecords

    with _open_store(database_url) as store:
        revoked = ServiceRecords(store).revoke_token(name, actor=_actor())
    click.echo(f"revoked token {revoked.name} ({revoked.role.value})")


@token.command("list")
@_database_option
def token_list(database_url: str | None) -> None:
    """List every token: name, role, created, revoked (never the secrets)."""
    from verifier.store.service_records import ServiceRecords

    with _open_store(database_url) as store:
        tokens = ServiceRecords(store).list_tokens()
    if not tokens:
        click.echo("no tokens; create one with `verifier token create`", err=True)
    for item in tokens:
        state = f"revoked {item.revoked_at}" if item.revoked_at else "active"
        click.echo(f"{item.name}\t{item.role.value}\tcreated {item.created_at}\t{state}")


#: Shortest `serve --upkeep-interval` other than 0 (each pass asks the Hub about each watch).
MIN_UPKEEP_SECONDS = 10.0
#: `--rescan-per-pass` by default (`verifier.service.model.RESCAN_PER_PASS`, which the command
#: line does not import at start-up; tests/service/test_upkeep.py checks they agree).
RESCAN_PER_PASS = 10


def _service_options(func: F) -> F:
    """The policy and Hub options of `serve` and `worker`: a server and its workers agree."""
    for option in reversed(
        (
            click.option(
                "--policy",
                "policy_path",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="Policy file the service decides with [default: policies/default.yaml].",
            ),
            click.option(
                "--publishers",
                "publishers_path",
                type=click.Path(dir_okay=False, path_type=Path),
            ),
            click.option(
                "--waivers",
                "waivers_paths",
                type=click.Path(dir_okay=False, path_type=Path),
                multiple=True,
                help="File of waivers to add to the policy's own (repeatable).",
            ),
            click.option(
                "--hf-endpoint",
                envvar="HF_ENDPOINT",
                default=None,
                metavar="URL",
                help="The one Hub the service fetches from [env: HF_ENDPOINT; "
                "default: huggingface.co].",
            ),
            click.option(
                "--blob-store",
                "blob_store",
                envvar="VERIFIER_BLOB_STORE",
                default=None,
                metavar="s3://BUCKET[/PREFIX]",
                help="Blob store shared by the workers of several hosts (S3 or compatible; "
                "endpoint and credentials from the AWS settings) [env: VERIFIER_BLOB_STORE].",
            ),
        )
    ):
        func = option(func)
    return func


def _service_config(
    *,
    database_url: str | None,
    policy_path: Path | None,
    publishers_path: Path | None,
    waivers_paths: tuple[Path, ...],
    hf_endpoint: str | None,
    blob_store: str | None = None,
    jobs: int = 2,
) -> ServiceConfig:
    import os

    from verifier.policy import default_policy_path
    from verifier.service.core import ServiceConfig

    return ServiceConfig(
        database_url=config.database_url(database_url),
        policy_path=policy_path or default_policy_path(),
        publishers_path=publishers_path,
        waivers_paths=waivers_paths,
        hub_endpoint=hf_endpoint,
        hub_token=os.environ.get("HF_TOKEN") or None,
        job_workers=jobs,
        blob_store_url=blob_store,
    )


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@_service_options
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Scans run at once inside the server (SQLite; on PostgreSQL workers run them).",
)
@click.option(
    "--upkeep-interval",
    type=click.FloatRange(0, 86400),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between passes that poll the watched references on the Hub and decide "
    "again the decisions a policy change or an expired waiver made stale (0: never; they are "
    "refreshed at start-up regardless).",
)
@click.option(
    "--approval-key",
    "approval_key",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="VERIFIER_APPROVAL_KEY",
    default=None,
    help="The organisation's PEM private key POST /api/v1/approvals signs with "
    "[env: VERIFIER_APPROVAL_KEY; default: approvals refused].",
)
@click.option(
    "--rescan-per-pass",
    type=click.IntRange(0, 1000),
    default=RESCAN_PER_PASS,
    show_default=True,
    metavar="N",
    help="Each upkeep pass scans again up to N recorded Hub models whose newest scan an older "
    "verifier version made, from the bytes kept of them (this host's blob folder, the shared "
    "blob store) without asking the Hub (0: none).",
)
@click.option(
    "--rescan-from-hub",
    is_flag=True,
    help="Let those re-scans fetch from the Hub what is not kept (and ask it for the model "
    "info again); without it a model whose bytes are not all kept is not re-scanned, and "
    "each pass logs it.",
)
@click.option(
    "--notify-url",
    "notify_urls",
    multiple=True,
    metavar="URL",
    help="Send signed notifications (decision changes, critical findings, waivers expiring "
    "soon) to this URL (repeatable; https, or http to loopback). The HMAC secret is read from "
    "VERIFIER_NOTIFY_SECRET.",
)
@click.option(
    "--notify-waiver-days",
    type=click.IntRange(0, 365),
    default=14,
    show_default=True,
    metavar="DAYS",
    help="Notify waivers that expire within this many days.",
)
@click.option(
    "--notify-interval",
    type=click.FloatRange(0, 3600),
    default=DELIVERY_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between the passes that record the notifications owed to each subscription "
    "and send those due, independent of --upkeep-interval (0: this server sends none).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes sharing the port (PostgreSQL only: on SQLite the server runs the "
    "scans itself, in one process). Each keeps its own answers in memory.",
)
@_database_option
def serve(
    host: str,
    port: int,
    policy_path: Path | None,
    publishers_path: Path | None,
    waivers_paths: tuple[Path, ...],
    hf_endpoint: str | None,
    blob_store: str | None,
    jobs: int,
    upkeep_interval: float,
    approval_key: Path | None,
    rescan_per_pass: int,
    rescan_from_hub: bool,
    notify_urls: tuple[str, ...],
    notify_waiver_days: int,
    notify_interval: float,
    workers: int,
    database_url: str | None,
) -> None:
    """Run the HTTP API (see docs/service.md).

    With SQLite (the default) scans run on threads of this process. With PostgreSQL they are
    queued for `verifier worker` processes, on this host or others. Every route but /healthz
    needs a bearer token from `verifier token create`. The Hub token, if any, is read from
    HF_TOKEN.
    """
    import os
    from dataclasses import replace

    import uvicorn

    from verifier.service.app import create_app
    from verifier.service.core import Service

    if 0 < upkeep_interval < MIN_UPKEEP_SECONDS:
        raise click.BadParameter(
            f"0 (never) or at least {MIN_UPKEEP_SECONDS:g} seconds: each pass asks the Hub "
            "about every watched reference",
            param_hint="--upkeep-interval",
        )
    if notify_urls and notify_interval == 0:
        raise click.BadParameter(
            "--notify-url needs deliveries: give an interval above 0",
            param_hint="--notify-interval",
        )
    service_config = _service_config(
        database_url=database_url,
        policy_path=policy_path,
        publishers_path=publishers_path,
        waivers_paths=waivers_paths,
        hf_endpoint=hf_endpoint,
        blob_store=blob_store,
        jobs=jobs,
    )
    service_config = replace(
        service_config,
        hub_webhook_secret=os.environ.get("VERIFIER_HUB_WEBHOOK_SECRET") or None,
        upkeep_seconds=upkeep_interval,
        approval_key_path=approval_key,
        notify_urls=notify_urls,
        notify_secret=os.environ.get("VERIFIER_NOTIFY_SECRET") or None,
        notify_waiver_days=notify_waiver_days,
        delivery_seconds=notify_interval,
        rescan_per_pass=rescan_per_pass,
        rescan_from_hub=rescan_from_hub,
    )
    service = Service(service_config)
    if workers > 1 and service.embedded:
        service.close()
        raise click.BadParameter(
            "above 1 needs PostgreSQL: on SQLite the server runs the scans itself, in one "
            "process; give --database-url postgresql+psycopg://...",
            param_hint="--workers",
        )
    runs = (
        f"scans on {jobs} threads of this process"
        if service.embedded
        else "scans queued for `verifier worker`"
    )
    if workers > 1:
        runs += f", {workers} server processes"
    runs += (
        f", notifications sent every {notify_interval:g} s"
        if notify_interval > 0
        else ", no notifications sent (--notify-interval 0)"
    )
    if notify_interval == 0:
        from verifier.store.notifications import SubscriptionRecords

        waiting = len(SubscriptionRecords(service.store).subscriptions())
        if waiting:
            click.echo(
                f"warning: {waiting} notification subscription(s) recorded, and this server "
                "sends no notifications (--notify-interval 0)",
                err=True,
            )
    click.echo(
        f"verifier {__version__} serving on http://{host}:{port} with policy "
        f"{service.policies.name} ({service.policies.digest[:19]}), "
        f"database {service.store.display_url}, {runs}",
        err=True,
    )
    if workers == 1:
        uvicorn.run(
            create_app(service, max_body_bytes=service_config.max_body_bytes, freeze_gc=True),
            host=host,
            port=port,
            log_level="warning",
            server_header=False,
        )
        return
    from verifier.service.served import CONFIG_ENV, config_text

    # The parent checked everything and migrated the database; each worker opens its own.
    service.close()
    os.environ[CONFIG_ENV] = config_text(service_config)
    uvicorn.run(
        "verifier.service.served:app_from_environment",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="warning",
        server_header=False,
    )


@cli.command()
@_service_options
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Scans this worker runs at once.",
)
@click.option(
    "--heartbeat",
    type=click.FloatRange(0.1, 3600),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between this worker's heartbeats.",
)
@click.option(
    "--stalled-after",
    type=click.FloatRange(1, 86400),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds without a heartbeat after which a worker is taken for dead and its scans "
    "are run again by another.",
)
@click.option(
    "--until-empty", is_flag=True, help="Exit once no scan is queued, instead of waiting."
)
@click.option("--name", default=None, help="The worker's name in the logs [default: worker].")
@_database_option
def worker(
    policy_path: Path | None,
    publishers_path: Path | None,
    waivers_paths: tuple[Path, ...],
    hf_endpoint: str | None,
    blob_store: str | None,
    concurrency: int,
    heartbeat: float,
    stalled_after: float,
    until_empty: bool,
    name: str | None,
    database_url: str | None,
) -> None:
    """Run the scans `verifier serve` queues on PostgreSQL (see docs/service.md).

    Start any number, on any hosts that reach the database, with the server's policy file.
    SIGINT or SIGTERM stops taking scans and lets the running ones finish.
    """
    from verifier.blobs import open_blob_store
    from verifier.pipeline import HubOptions
    from verifier.service.decisions import PolicySet
    from verifier.service.jobs import JobContext
    from verifier.service.workers import libpq_url, run_worker

    service_config = _service_config(
        database_url=database_url,
        policy_path=policy_path,
        publishers_path=publishers_path,
        waivers_paths=waivers_paths,
        hf_endpoint=hf_endpoint,
        blob_store=blob_store,
    )
    libpq_url(service_config.database_url)  # refuse SQLite before opening anything
    policies = PolicySet(
        service_config.policy_path,
        publishers=service_config.publishers_path,
        waivers=service_config.waivers_paths,
    )
    with _open_store(service_config.database_url) as store:
        context = JobContext(
            store=store,
            policies=policies,
            hub=HubOptions(
                endpoint=service_config.hub_endpoint,
                token=service_config.hub_token,
                blob_store=open_blob_store(service_config.blob_store_url),
            ),
        )
        _status(
            f"verifier {__version__} worker with policy {policies.name} "
            f"({policies.digest[:19]}), database {store.display_url}, {concurrency} at once"
        )
        run_worker(
            service_config.database_url,
            context,
            concurrency=concurrency,
            until_empty=until_empty,
            heartbeat=heartbeat,
            stalled_after=stalled_after,
            name=name,
        )


@cli.group()
def lineage() -> None:
    """Reference bases for verified lineage (see docs/lineage.md)."""


@lineage.command("add-base")
@click.argument("target")
@_policy_options
@_hub_options
@_database_option
def add_base(
    target: str,
    policy_path: Path | None,
    env: str | None,
    publishers_path: Path | None,
    waivers_paths: tuple[Path, ...],
    token: str | None,
    hf_endpoint: str | None,
    no_lineage: bool,
    database_url: str | None,
) -> None:
    """Scan TARGET and register its weight fingerprint as a reference base.

    Every later scan is compared with the registered bases (and with recently recorded
    models): a model whose weights derive from one is attributed to it, whatever its card
    says. A base is registered whatever the policy decides of it (register the bases you ban,
    so that their derivatives are caught). Exit status: 0 registered, 2 usage error,
    3 the scan did not complete or the weights could not be fingerprinted.
    """
    from verifier.errors import LineageError
    from verifier.pipeline import HubOptions
    from verifier.progress import download_progress

    policy = _load_policy(policy_path, env, publishers_path, waivers_paths)
    hub = HubOptions(endpoint=hf_endpoint, token=token, lineage=not no_lineage)
    with _open_store(database_url) as store, download_progress(enabled=not _quiet()) as progress:
        report = _scan_one(target, hub, policy=policy, recorder=store, progress=progress)
        found = report.verified_lineage
        if report.status.value != "complete":
            raise LineageError(
                f"scan {report.scan_id} of {printable(target)} did not complete: not registered"
            )
        if found is None or found.fingerprint is None:
            reason = found.reason if found is not None else "no lineage was computed"
            raise LineageError(f"no weight fingerprint for {printable(target)} ({reason})")
        store.register_base(report.scan_id)
    name = (
        f"{found.repo_id}@{report.source['commit']}" if "commit" in report.source else found.repo_id
    )
    click.echo(
        f"registered {printable(name)} as a reference base (scan {report.scan_id}, "
        f"hidden size {found.hidden_size}; policy decision {report.verdict.decision.value})"
    )


@lineage.command("list")
@_history_format_option
@_database_option
def list_bases(fmt: str, database_url: str | None) -> None:
    """List the registered reference bases, oldest first."""
    with _open_store(database_url) as store:
        bases = store.lineage_bases()
    if fmt == OutputFormat.JSON.value:
        click.echo(json.dumps(JsonDocument.LINEAGE_BASES.document({"bases": bases}), indent=2))
        return
    if not bases:
        click.echo("no reference base registered (verifier lineage add-base TARGET)")
    for base in bases:
        name = f"{base['repo_id']}@{base['commit']}" if base["commit"] else base["repo_id"]
        stale = (
            ""
            if base["compared"]
            else f"  NOT COMPARED: fingerprint version {base['fingerprint_version']} (register "
            "it again: docs/lineage.md#after-an-upgrade)"
        )
        click.echo(
            f"{base['scan_id'][:12]}  {printable(name)}  hidden {base['hidden_size']}  "
            f"registered {base['registered_at']}{stale}"
        )


def _hit_line(subject: str, relation: str, path: tuple[str, ...]) -> str:
    how = "named by the ban" if relation == "named" else f"{relation}: {' -> '.join(path)}"
    return f"  {printable(subject)}  ({printable(how)})"


def _print_ban_change(
    ban: Ban,
    redecided: list[Redecision],
    *,
    fmt: str,
    lifted: bool,
    registered: list[str] | None = None,
) -> None:
    affected = [item.document(ban_id=ban.ban_id) for item in redecided]
    if fmt == OutputFormat.JSON.value:
        document = JsonDocument.BAN_CHANGE.document({"ban": ban.document(), "affected": affected})
        if registered is not None:
            document["registered_bases"] = registered
        click.echo(json.dumps(document, indent=2))
        return
    verb = "lifted" if lifted else "recorded"
    click.echo(f"ban {ban.ban_id} {verb}: {printable(ban.label)} ({printable(ban.reason)})")
    if registered:
        click.echo(
            f"registered {len(registered)} recorded scans of it as lineage bases: a model "
            "scanned later whose weights derive from them is reached by the ban"
        )
    if not affected:
        click.echo("no recorded model is affected")
    for entry in affected:
        was = entry["previous"] or "none"
        line = _hit_line(entry["subject"], entry["relation"] or "named", tuple(entry["path"]))
        click.echo(f"{entry['decision']} (was {was}){line}")


def _ban_command(kind: str) -> click.Command:
    @click.command(name=kind)
    @click.argument("value")
    @click.option("--reason", required=True, help="Why: shown in every decision it causes.")
    @_policy_options
    @_history_format_option
    @_database_option
    def command(
        value: str,
        reason: str,
        policy_path: Path | None,
        env: str | None,
        publishers_path: Path | None,
        waivers_paths: tuple[Path, ...],
        fmt: str,
        database_url: str | None,
    ) -> None:
        from verifier.bans import BanKind, check_reason, normalise_ban_value
        from verifier.redecide import apply_ban_change, register_banned_weights
        from verifier.store.bans import BanRecords

        ban_kind = BanKind(kind)
        canonical = normalise_ban_value(ban_kind, value)
        why = check_reason(reason)
        policy = _load_policy(policy_path, env, publishers_path, waivers_paths)
        with _open_store(database_url) as store:
            ban = BanRecords(store).add_ban(ban_kind, canonical, reason=why, actor=_actor())
            redecided = apply_ban_change(store, ban, [policy], actor=_actor())
            registered = register_banned_weights(store, ban, redecided)
        _print_ban_change(ban, redecided, fmt=fmt, lifted=False, registered=registered)

    command.help = {
        "model": "Ban the model VALUE (ns/name, or ns/name@<commit>), its copies and "
        "everything derived from it.",
        "publisher": "Ban every model of the Hub namespace VALUE, their copies and derivatives.",
        "jurisdiction": "Ban every model whose publisher the registry places in the country "
        "VALUE (two letters), their copies and derivatives.",
        "blob": "Ban every model holding the file sha256:VALUE, their copies and derivatives.",
    }[kind] + (
        " Recorded models reached are decided again from their facts, with the ban as the reason."
    )
    return command


@cli.group()
def ban() -> None:
    """Ban models, publishers, jurisdictions or blobs; list and lift bans."""


for _kind in ("model", "publisher", "jurisdiction", "blob"):
    ban.add_command(_ban_command(_kind))


@ban.command("list")
@click.option("--all", "show_all", is_flag=True, help="Lifted bans too.")
@_history_format_option
@_database_option
def ban_list(show_all: bool, fmt: str, database_url: str | None) -> None:
    """List the bans in force (with --all, lifted ones too), oldest first."""
    from verifier.store.bans import BanRecords

    with _open_store(database_url) as store:
        bans = BanRecords(store).bans(active_only=not show_all)
    if fmt == OutputFormat.JSON.value:
        document = JsonDocument.BANS.document({"bans": [b.document() for b in bans]})
        click.echo(json.dumps(document, indent=2))
        return
    if not bans:
        click.echo("no ban in force" if not show_all else "no ban recorded")
    for item in bans:
        state = "in force" if item.active else f"lifted {item.lifted_at} by {item.lifted_by}"
        click.echo(
            f"{item.ban_id}\t{printable(item.label)}\t{printable(item.reason)}\t"
            f"by {printable(item.banned_by)} at {item.banned_at}\t{state}"
        )


@ban.command("lift")
@click.argument("ban_id", type=click.IntRange(1))
@click.option("--reason", required=True, help="Why the ban no longer holds.")
@_policy_options
@_history_format_option
@_database_option
def ban_lift(
    ban_id: int,
    reason: str,
    policy_path: Path | None,
    env: str | None,
    publishers_path: Path | None,
    waivers_paths: tuple[Path, ...],
    fmt: str,
    database_url: str | None,
) -> None:
    """Lift the ban BAN_ID (recorded as a row of its own); models it reached are decided again."""
    from verifier.bans import check_reason
    from verifier.redecide import apply_ban_change
    from verifier.store.bans import BanRecords

    why = check_reason(reason)
    policy = _load_policy(policy_path, env, publishers_path, waivers_paths)
    with _open_store(database_url) as store:
        lifted = BanRecords(store).lift_ban(ban_id, reason=why, actor=_actor())
        redecided = apply_ban_change(store, lifted, [policy], actor=_actor(), lifted=True)
    _print_ban_change(lifted, redecided, fmt=fmt, lifted=True)


@cli.command("blast-radius")
@click.option("--model", "model", metavar="NS/NAME[@COMMIT]", help="A model to ban.")
@click.option("--publisher", metavar="NAMESPACE", help="A Hub namespace to ban.")
@click.option("--jurisdiction", metavar="CC", help="A country code to ban.")
@click.option("--blob", metavar="sha256:HEX", help="A file digest to ban.")
@_policy_options
@_history_format_option
@_database_option
def blast_radius(
    model: str | None,
    publisher: str | None,
    jurisdiction: str | None,
    blob: str | None,
    policy_path: Path | None,
    env: str | None,
    publishers_path: Path | None,
    waivers_paths: tuple[Path, ...],
    fmt: str,
    database_url: str | None,
) -> None:
    """The recorded models a ban would reach, before it is made (nothing is recorded).

    Give exactly one of --model, --publisher, --jurisdiction or --blob. The publisher
    registry of the policy places publishers in jurisdictions.
    """
    from verifier.bans import BanKind, proposed_ban
    from verifier.redecide import preview

    given = {
        kind: value
        for kind, value in (
            (BanKind.MODEL, model),
            (BanKind.PUBLISHER, publisher),
            (BanKind.JURISDICTION, jurisdiction),
            (BanKind.BLOB, blob),
        )
        if value is not None
    }
    if len(given) != 1:
        raise UsageError("give exactly one of --model, --publisher, --jurisdiction or --blob")
    [(kind, value)] = given.items()
    candidate = proposed_ban(kind, value, by=_actor(), at=datetime.now(UTC).isoformat())
    policy = _load_policy(policy_path, env, publishers_path, waivers_paths)
    with _open_store(database_url) as store:
        hits = preview(store, candidate, policy=policy)
    if fmt == OutputFormat.JSON.value:
        document = {
            "schema_version": JsonDocument.BLAST_RADIUS.schema_version,
            "kind": kind.value,
            "value": candidate.value,
            "models": [hit.reach_document() for hit in hits],
        }
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(f"a ban of {printable(candidate.label)} would reach {len(hits)} recorded models")
    for hit in hits:
        click.echo(_hit_line(hit.model.key, hit.relation.value, hit.path))


@cli.command()
@click.argument("subjects", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every recorded model.")
@_policy_options
@_history_format_option
@_database_option
def redecide(
    subjects: tuple[str, ...],
    everything: bool,
    policy_path: Path | None,
    env: str | None,
    publishers_path: Path | None,
    waivers_paths: tuple[Path, ...],
    fmt: str,
    database_url: str | None,
) -> None:
    """Decide recorded models again from their stored facts and the bans in force (nothing is
    fetched), recording each change of decision with its cause.

    SUBJECTS are hf://namespace/name@<commit> (or the scanned folder of a local scan); --all
    decides every recorded model. Run it after changing the policy, the publisher registry or
    the waivers, or when waivers may have expired. Exit 0 when done, whatever was decided.
    """
    from verifier.redecide import redecide as redecide_models

    if everything == bool(subjects):
        raise UsageError("give the models to decide again, or --all")
    policy = _load_policy(policy_path, env, publishers_path, waivers_paths)
    with _open_store(database_url) as store:
        done = redecide_models(
            store, policy, actor=_actor(), only=set(subjects) if subjects else None
        )
    missing = sorted(set(subjects) - {item.subject for item in done})
    if missing:
        raise UsageError(f"no recorded scan of {', '.join(missing)}; scan it first")
    if fmt == OutputFormat.JSON.value:
        document = {
            "schema_version": JsonDocument.REDECIDE.schema_version,
            "policy": policy.name,
            "environment": policy.environment,
            "models": [item.document() for item in done],
        }
        click.echo(json.dumps(document, indent=2))
        return
    changed = [item for item in done if item.changed]
    click.echo(
        f"{len(done)} recorded models decided again with policy {policy.name}; "
        f"{len(changed)} changed"
    )
    for item in changed:
        was = item.previous.value if item.previous is not None else "none"
        click.echo(
            f"  {printable(item.subject)}: {item.verdict.decision.value} (was {was}; "
            f"cause {item.cause.value})"
        )


@cli.command()
@click.option("--subject", default=None, help="Only this model (hf://ns/name@<commit>).")
@click.option("--limit", type=click.IntRange(1, 1_000), default=50, show_default=True)
@_history_format_option
@_database_option
def changes(subject: str | None, limit: int, fmt: str, database_url: str | None) -> None:
    """List the newest changes of decision, newest first, with their causes."""
    from verifier.store.bans import BanRecords

    with _open_store(database_url) as store:
        found = BanRecords(store).changes(limit=limit, subject=subject)
    if fmt == OutputFormat.JSON.value:
        document = JsonDocument.CHANGES.document({"changes": [c.document() for c in found]})
        click.echo(json.dumps(document, indent=2))
        return
    if not found:
        click.echo("no change of decision recorded")
    for change in found:
        was = change.previous.value if change.previous is not None else "none"
        click.echo(
            f"{change.at}  {printable(change.subject)}  {was} -> {change.decision.value}  "
            f"cause {change.cause}  policy {printable(change.policy_name)}"
            f"{' env ' + change.environment if change.environment else ''}  "
            f"by {printable(change.actor)}"
        )


@cli.command()
@click.argument("target")
@_database_option
def watch(target: str, database_url: str | None) -> None:
    """Watch hf://namespace/name[@ref] (default main): the service verifies each new commit
    the Hub's webhook reports for it (see docs/service.md). Exit 0, 2 for a bad target."""
    from verifier.store.watches import WatchRecords
    from verifier.watches import parse_watch_target

    repo_id, ref = parse_watch_target(target)
    with _open_store(database_url) as store:
        added, created = WatchRecords(store).add_watch(repo_id, ref, actor=_actor())
    state = "watching" if created else "already watching"
    click.echo(f"{state} {printable(added.target)} (watch {added.watch_id})")


@cli.command()
@_history_format_option
@_database_option
def watches(fmt: str, database_url: str | None) -> None:
    """List the watched references with the newest commit of each the service verified."""
    from verifier.store.watches import WatchRecords

    with _open_store(database_url) as store:
        found = WatchRecords(store).watches()
    if fmt == OutputFormat.JSON.value:
        document = JsonDocument.WATCHES.document({"watches": [w.document() for w in found]})
        click.echo(json.dumps(document, indent=2))
        return
    if not found:
        click.echo("no watched reference (verifier watch hf://namespace/name[@ref])")
    for item in found:
        verified = item.commit or "nothing verified yet"
        pending = f", {len(item.pending)} pending" if item.pending else ""
        click.echo(f"{item.watch_id}\t{printable(item.target)}\t{verified}{pending}")


@cli.group()
def blobs() -> None:
    """Manage the blob stores: this host's folder and the shared store."""


@blobs.command("gc")
@click.option(
    "--older-than",
    "older_than",
    default="7d",
    show_default=True,
    metavar="DURATION",
    help="Grace period (s, m, h, d, w; at least 1h): a blob stored or used since is kept.",
)
@click.option("--yes", is_flag=True, help="Delete the garbage (without it: a dry run).")
@click.option(
    "--blob-store",
    "blob_store",
    envvar="VERIFIER_BLOB_STORE",
    default=None,
    metavar="s3://BUCKET[/PREFIX]",
    help="Also collect the shared store [env: VERIFIER_BLOB_STORE].",
)
@_history_format_option
@_database_option
def blobs_gc(
    older_than: str, yes: bool, blob_store: str | None, fmt: str, database_url: str | None
) -> None:
    """Delete the blobs no recorded scan names, from this host's folder (VERIFIER_HOME) and
    the shared store. A dry run unless --yes; never a blob stored or used within the grace
    period, nor one a scan job holds. Exit 0, 2 for bad options, 3 when a blob could not be
    deleted or a store read."""
    from verifier.blobs import open_blob_store
    from verifier.blobs.folder import HostFolder
    from verifier.blobs.gc import collect_stores, listing_of, parse_duration
    from verifier.blobs.interface import BlobListing
    from verifier.store.blob_refs import BlobReferences

    grace = parse_duration(older_than)
    stores: list[BlobListing] = [HostFolder(config.home_dir())]
    shared = open_blob_store(blob_store)
    if shared is not None:
        stores.append(listing_of(shared))
    with _open_store(database_url) as store:
        references = BlobReferences(store)
        done = collect_stores(stores, references, grace=grace, delete=yes, actor=_actor())
    if fmt == OutputFormat.JSON.value:
        document = {"dry_run": not yes, "stores": [found.document() for found in done]}
        click.echo(json.dumps(JsonDocument.BLOBS_GC.document(document), indent=2))
    else:
        for found in done:
            for line in found.lines():
                click.echo(printable(line))
    if any(found.failures for found in done):
        raise click.exceptions.Exit(int(ExitCode.ERROR))


@cli.group()
def db() -> None:
    """Manage the database schema."""


@db.command()
@_database_option
def upgrade(database_url: str | None) -> None:
    """Create the database or upgrade it to the latest schema."""
    from verifier.store import Store

    url = config.database_url(database_url)
    with Store(url) as store:
        revision = store.upgrade()
    _status(f"database at schema revision {revision}")


@db.command()
@_database_option
def current(database_url: str | None) -> None:
    """Print the database's schema revision."""
    from verifier.store import Store

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
