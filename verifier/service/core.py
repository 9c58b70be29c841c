"""The service without HTTP: authenticate, accept scans, report jobs, answer the gate."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verifier.blobs import open_blob_store
from verifier.config import home_dir
from verifier.errors import NotFoundError, StoreError, VerifierError
from verifier.evidence.dsse import PrivateKey, load_private_key
from verifier.model import ScanStatus, Severity
from verifier.notifications import check_notify_url, check_secret
from verifier.pipeline import HubOptions
from verifier.report.json_format import report_document
from verifier.service.admission import (
    judge_uris,
    parse_review,
    review_response,
    unchecked_response,
)
from verifier.service.decisions import GateAnswer, PolicySet, gate_kept, outdated_answer
from verifier.service.gate_cache import GateCache, answer_body
from verifier.service.jobs import EmbeddedJobRunner, JobContext, JobQueue
from verifier.service.model import RESCAN_PER_PASS, ApiToken, JobStatus, ScanJob
from verifier.service.targets import check_target, pinned_subject, require_pinned
from verifier.service.tokens import MAX_TOKEN_LENGTH, token_digest
from verifier.store.changes import ChangeCounter
from verifier.store.database import Store
from verifier.store.policies import PolicyRecords
from verifier.store.server_lock import hold_server_lock
from verifier.store.service_records import ServiceRecords

if TYPE_CHECKING:
    from verifier.blobs.gc import Collection

log = logging.getLogger(__name__)

#: Scan job ids: uuid4 hex.
JOB_ID_LENGTH = 32
#: Seconds between reads of its own policy files by a server whose files are not the ones in
#: force (it answers `unknown` meanwhile); it also reads them whenever the counter moves.
POLICY_RECHECK_SECONDS = 2.0


@dataclass(frozen=True)
class ServiceConfig:
    """How the server runs: its database, its policy, its Hub and its job threads.

    On SQLite, `job_workers` threads of the server run the scans; on PostgreSQL the server
    queues them for `verifier worker` processes (procrastinate) and runs none itself.
    """

    database_url: str
    policy_path: Path
    publishers_path: Path | None = None
    waivers_paths: tuple[Path, ...] = ()
    hub_endpoint: str | None = None
    hub_token: str | None = None
    job_workers: int = 2
    #: Largest request body read, in bytes (an AdmissionReview carries a whole object).
    max_body_bytes: int = 1 << 20
    #: The secret Hugging Face webhooks send (`X-Webhook-Secret`); None refuses every one.
    hub_webhook_secret: str | None = None
    #: Seconds between passes that re-decide stale decisions and poll the watched references
    #: (0: none; decisions are still refreshed once at start-up).
    upkeep_seconds: float = 0.0
    #: The organisation's PEM private key `POST /api/v1/approvals` signs with (None: refused).
    approval_key_path: Path | None = None
    #: The blob store shared by the hosts' workers (`s3://bucket[/prefix]`; None: none).
    blob_store_url: str | None = None
    #: Where outgoing notifications go (signed webhooks; see `verifier.notifications`).
    notify_urls: tuple[str, ...] = ()
    #: The secret they are signed with (required with `notify_urls`).
    notify_secret: str | None = None
    #: Seconds between delivery passes, which record what each subscription is owed and send
    #: what is due, independently of the upkeep passes (0: none; `verifier serve` defaults to
    #: `verifier.cli.DELIVERY_SECONDS`).
    delivery_seconds: float = 0.0
    #: Waivers expiring within this many days are notified.
    notify_waiver_days: int = 14
    #: Recorded Hub models an older verifier version scanned that one upkeep pass queues for
    #: a re-scan (0: none; see `verifier.service.upkeep.rescan_older_versions`).
    rescan_per_pass: int = RESCAN_PER_PASS
    #: Whether a re-scan may fetch from the Hub what is not kept (else kept bytes only).
    rescan_from_hub: bool = False


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Service:
    """One server's state: the store, the policy set, and its job queue."""

    def __init__(self, config: ServiceConfig) -> None:
        """Open the database (migrating it) and load the policy.

        Raises:
            StoreError: The database cannot be reached or migrated.
            PolicyError: The policy, registry or waivers are missing or invalid.
            UsageError: The policy runs in dry-run mode, or a notification URL or the
                notification secret is not acceptable.
            KeyFileError: The approval key is missing or not a usable private key.
        """
        if config.notify_urls:
            for url in config.notify_urls:
                check_notify_url(url)
            check_secret(config.notify_secret)
        self.config = config
        self.policies = PolicySet(
            config.policy_path, publishers=config.publishers_path, waivers=config.waivers_paths
        )
        self.approval_key: PrivateKey | None = None
        if config.approval_key_path is not None:
            self.approval_key = load_private_key(config.approval_key_path)
        self.store = Store.open(config.database_url)
        try:
            # On SQLite this server runs the scan jobs itself: one server per file.
            self._server_lock = hold_server_lock(self.store)
        except StoreError:
            self.store.close()
            raise
        try:
            self.records = ServiceRecords(self.store)
            #: Checked tokens and gate answers, each kept while the change counter stays put.
            self.gate_cache = GateCache()
            self._changes = ChangeCounter(self.store)
            self.policies.current(self.store)  # recorded waivers that no longer fit: fail at start
            #: This server's files are put in force for every server sharing the database (the
            #: newest start or reload wins; see `verifier.store.policies`).
            self.put_policy_in_force(actor=f"server:{socket.gethostname()}:{os.getpid()}")
            self._follow_lock = threading.Lock()
            #: (change count, monotonic time, why not in force or None) of the last comparison.
            self._followed: tuple[int, float, str | None] | None = None
            self.blob_store = open_blob_store(config.blob_store_url)
            context = JobContext(
                store=self.store,
                policies=self.policies,
                hub=HubOptions(
                    endpoint=config.hub_endpoint, token=config.hub_token, blob_store=self.blob_store
                ),
            )
            self.runner: JobQueue
            if self.store.backend == "postgresql":
                from verifier.service.workers import ProcrastinateQueue

                self.runner = ProcrastinateQueue(config.database_url, context)
            else:
                self.runner = EmbeddedJobRunner(context, workers=config.job_workers)
        except BaseException:
            # A server that does not start lets go of the database for the next one.
            self._server_lock.release()
            self.store.close()
            raise

    @property
    def embedded(self) -> bool:
        """Whether scans run on threads of this process (else `verifier worker`s run them)."""
        return isinstance(self.runner, EmbeddedJobRunner)

    def start(self) -> int:
        """Start the job queue; returns how many unfinished jobs were queued again.

        Raises:
            StoreError: The database cannot be reached.
        """
        return self.runner.start()

    def close(self) -> None:
        """Stop the job queue (queued jobs stay queued in the database) and the store."""
        self.runner.stop()
        self._changes.close()
        self.store.close()
        self._server_lock.release()

    def authenticate(self, secret: str) -> ApiToken | None:
        """The active token with this secret, or None.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        if not secret or len(secret) > MAX_TOKEN_LENGTH:
            return None
        digest = token_digest(secret)
        count = self.change_count()
        token = self.gate_cache.token(digest, count=count)
        if token is None:
            token = self.records.authenticate(digest)
            if token is not None:
                self.gate_cache.keep_token(digest, token, count=count)
        return token

    def put_policy_in_force(self, *, actor: str) -> bool:
        """Make this server's policy files the ones every server sharing the database decides
        with (False: they already were). The others read their files again when they notice.

        Raises:
            StoreError: The database cannot be reached or written.
        """
        return PolicyRecords(self.store).put_in_force(
            self.policies.name, self.policies.files_digest, actor=actor
        )

    def policy_outdated(self, count: int) -> str | None:
        """None when this server decides with the policy files in force at change count
        `count`; else why not (its gate then answers `unknown`).

        Compared once per change count: the files in force are a row whose every change
        moves the counter. A server whose files differ reads them again (and decides with
        them when they are now the ones in force), and while they still differ it reads them
        again at most every `POLICY_RECHECK_SECONDS`.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        followed = self._followed
        if self._still(followed, count):
            assert followed is not None
            return followed[2]
        with self._follow_lock:
            followed = self._followed
            if self._still(followed, count):
                assert followed is not None
                return followed[2]
            outdated = self._follow()
            if outdated is not None and (followed is None or followed[2] is None):
                log.warning("%s", outdated)
            self._followed = (count, time.monotonic(), outdated)
            return outdated

    @staticmethod
    def _still(followed: tuple[int, float, str | None] | None, count: int) -> bool:
        if followed is None or followed[0] != count:
            return False
        return followed[2] is None or time.monotonic() - followed[1] < POLICY_RECHECK_SECONDS

    def _follow(self) -> str | None:
        in_force = PolicyRecords(self.store).in_force()
        if in_force is None or in_force.files_digest == self.policies.files_digest:
            return None
        own = self.policies.files_digest
        try:
            if self.policies.follow(self.store, in_force.files_digest):
                log.info(
                    "policy %s: now deciding with the files put in force by %s (%s)",
                    self.policies.name,
                    in_force.set_by,
                    in_force.files_digest,
                )
                return None
            reason = f"its files read again have digest {self.policies.files_digest}"
        except VerifierError as exc:
            reason = f"its files do not read well: {exc.diagnostics()}"
        return (
            f"this server's policy is not the one in force: it decides with "
            f"{self.policies.name} (files {own}), and {in_force.set_by} put {in_force.name} "
            f"(files {in_force.files_digest}) in force at {in_force.set_at} ({reason}); roll "
            "the policy files out to this server (it reads them again by itself)"
        )

    def change_count(self) -> int:
        """The database's change counter now (see `verifier.store.changes`).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        return self._changes.read()

    def submit_scan(
        self,
        target: str,
        *,
        policy: str | None,
        environment: str | None,
        actor: str,
        rescan: bool = False,
    ) -> ScanJob:
        """Accept a scan request: an existing answer at once, else a queued job.

        A pinned target already scanned completely and decided under the same policy digest
        and environment is answered by that scan (unless `rescan`: scanned again regardless);
        a target already queued or running under them is answered by that job.

        Raises:
            UsageError: The target, policy or environment is not acceptable.
            StoreError: The database cannot be reached or written.
        """
        check_target(target)
        policies = self.policies.current(self.store)
        policies.resolve_name(policy)
        env = policies.for_environment(environment).environment
        pending = self.records.pending_job(target, policy_digest=policies.digest, environment=env)
        if pending is not None:
            return pending
        now = _now()
        job = ScanJob(
            job_id=uuid.uuid4().hex,
            target=target,
            policy_name=policies.name,
            policy_digest=policies.digest,
            environment=env,
            status=JobStatus.QUEUED,
            requested_by=actor,
            created_at=now,
            updated_at=now,
        )
        subject = pinned_subject(target)
        if subject is not None and not rescan:
            known = self.records.recorded_subject(
                subject, policy_digest=policies.digest, environment=env
            )
            if (
                known is not None
                and known.verdict is not None
                and known.status is ScanStatus.COMPLETE
            ):
                job = replace(job, status=JobStatus.COMPLETE, scan_id=known.scan_id)
        if job.status is not JobStatus.QUEUED:
            self.records.add_job(job)
            return job
        recorded = self.records.add_job(
            job, enqueue=lambda connection: self.runner.enqueue(connection, job.job_id)
        )
        if recorded.job_id == job.job_id:
            self.runner.committed(job.job_id)
        return recorded

    def job_document(self, job_id: str) -> dict[str, Any]:
        """`{"id", "status", ..., "result"}` of a job; the result is what `verifier scan
        --format json` prints, with the decision under the job's policy and environment.

        Raises:
            NotFoundError: No job has this id.
            StoreError: The database cannot be reached or read.
        """
        if len(job_id) != JOB_ID_LENGTH or not job_id.isalnum():
            raise NotFoundError(f"no scan job has the id {job_id!r}")
        job = self.records.get_job(job_id)
        result = None
        if job.status is JobStatus.COMPLETE and job.scan_id is not None:
            report = self.store.get_scan(job.scan_id)
            verdict = self.records.decision_of(
                job.scan_id, policy_digest=job.policy_digest, environment=job.environment
            )
            if verdict is not None:
                report = replace(report, verdict=verdict)
            result = report_document(report)
        return {
            "id": job.job_id,
            "status": job.status.value,
            "target": job.target,
            "policy": job.policy_name,
            "policy_digest": job.policy_digest,
            "environment": job.environment,
            "scan_id": job.scan_id,
            "error": job.error,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
            "result": result,
        }

    def inventory(self, *, limit: int, offset: int) -> dict[str, Any]:
        """`{"models": [...], "limit", "offset"}`: every model@commit scanned, by subject.

        Raises:
            UsageError: `limit` or `offset` is out of range.
            StoreError: The database cannot be reached or read.
        """
        policies = self.policies.current(self.store)
        registry = policies.for_environment(None).publishers
        entries = self.records.inventory(limit=limit, offset=offset)
        scan_ids = [entry.scan_id for entry in entries]
        severities = self.records.severity_counts(scan_ids)
        by_environment = self.records.decisions_by_environment(
            scan_ids, policy_digest=policies.digest
        )
        environments = [policy.environment for policy in policies.each()]
        models = []
        for entry in entries:
            repo_id, _, commit = entry.subject.removeprefix("hf://").partition("@")
            namespace = repo_id.split("/", 1)[0]
            publisher = registry.lookup(namespace)
            models.append(
                {
                    "subject": entry.subject,
                    "repo_id": repo_id,
                    "commit": commit,
                    "publisher": {
                        "namespace": namespace,
                        "known": publisher is not None,
                        "legal_entity": publisher.legal_entity if publisher else None,
                        "jurisdiction": publisher.country if publisher else None,
                    },
                    "scan_id": entry.scan_id,
                    "scanned_at": entry.scanned_at,
                    "status": entry.status.value,
                    "decision": entry.decision.value,
                    "policy": entry.policy_name,
                    "policy_digest": entry.policy_digest,
                    "environment": entry.environment,
                    "findings": entry.findings,
                    "findings_by_severity": {
                        severity.value: severities.get(entry.scan_id, {}).get(severity.value, 0)
                        for severity in reversed(Severity)
                    },
                    "decisions": [
                        {
                            "environment": env,
                            "decision": (
                                found.value
                                if (found := by_environment.get(entry.scan_id, {}).get(env))
                                else None
                            ),
                        }
                        for env in environments
                    ],
                    "signature": entry.signature,
                }
            )
        return {"models": models, "limit": limit, "offset": offset}

    def model(self, subject: str) -> dict[str, Any]:
        """One model at one commit (`GET /api/v1/models/{id}`): what is recorded of it.

        `scan` is the newest recorded scan's document (what `verifier scan --format json`
        prints, decided under the server's policy in its default environment); `decisions`
        the gate's answer in every environment of the policy; `scans` every recorded scan of
        the commit, newest first; `changes` its decision changes with their causes.

        Raises:
            UsageError: `subject` is not a pinned Hub reference.
            NotFoundError: No scan of `subject` is recorded.
            StoreError: The database cannot be reached or read.
        """
        from verifier.store.bans import BanRecords

        subject = require_pinned(subject)
        scans = self.records.scans_of(subject)
        if not scans:
            raise NotFoundError(f"no recorded scan of {subject}; submit it to POST /api/v1/scans")
        newest = scans[0][0]
        report = self.store.get_scan(newest)
        policies = self.policies.current(self.store)
        count, moment = self.change_count(), datetime.now(UTC)
        answers = [
            self.gate(subject, env, count=count, moment=moment)[0]
            for env in (None, *policies.environments)
        ]
        default = answers[0]
        verdict = self.records.decision_of(
            newest, policy_digest=policies.digest, environment=default.environment
        )
        if verdict is not None:
            report = replace(report, verdict=verdict)
        changes = BanRecords(self.store).changes(subject=subject)
        return {
            "subject": subject,
            "scan": report_document(report),
            "decisions": [answer.document() for answer in answers[1:] or answers],
            "scans": [
                {"scan_id": scan_id, "started_at": started, "status": status.value}
                for scan_id, started, status in scans
            ],
            "changes": [change.document() for change in changes],
        }

    def collect_blobs(self, *, grace: timedelta, delete: bool, actor: str) -> list[Collection]:
        """`verifier blobs gc` in the server: this host's folder and the shared store (the
        embedded server's own job locks are seen here), with an audit event per store when
        `delete`.

        Raises:
            UsageError: The grace period is too short, or the database records no scan.
            BlobStoreError: A store could not be listed.
            StoreError: The database cannot be reached or written.
        """
        from verifier.blobs.folder import HostFolder
        from verifier.blobs.gc import collect_stores, listing_of
        from verifier.blobs.interface import BlobListing
        from verifier.store.blob_refs import BlobReferences

        stores: list[BlobListing] = [HostFolder(home_dir())]
        if self.blob_store is not None:
            stores.append(listing_of(self.blob_store))
        references = BlobReferences(self.store)
        return collect_stores(stores, references, grace=grace, delete=delete, actor=actor)

    def gate(
        self, subject: str, environment: str | None, *, count: int, moment: datetime
    ) -> tuple[GateAnswer, bool]:
        """The gate's answer for a pinned subject, read after the change counter read
        `count`, and whether it may be kept (see `gate_kept`): from `gate_cache` when it was
        kept at `count`, on the day of `moment`, under the policy digest in use; else decided
        and kept when it may be. A server whose policy files are not the ones in force
        answers `unknown` (never kept).

        Raises:
            UsageError: The environment is not one of the policy's.
            StoreError: The database cannot be reached or read.
            PolicyError: A rule raised while deciding from recorded facts.
        """
        outdated = self.policy_outdated(count)
        if outdated is not None:
            return outdated_answer(self.policies, subject, environment, outdated), False
        key = (subject, environment)
        day = moment.astimezone(UTC).date()
        kept = self.gate_cache.gate(key, count=count, day=day, digest=self.policies.digest)
        if kept is not None:
            return kept, True
        answer, keep = gate_kept(
            self.store, self.policies, subject, environment=environment, now=moment
        )
        if keep:
            self.gate_cache.keep_gate(
                key, answer, count=count, day=day, digest=answer.policy_digest
            )
        return answer, keep

    def decision(self, target: str, *, environment: str | None) -> GateAnswer:
        """The gate's answer for a pinned target.

        Raises:
            UsageError: The target is not a pinned Hub reference, or the environment is unknown.
            StoreError: The database cannot be reached or read.
        """
        subject = require_pinned(target)
        count = self.change_count()
        return self.gate(subject, environment, count=count, moment=datetime.now(UTC))[0]

    def decision_body(self, target: str, *, environment: str | None) -> bytes:
        """`decision`'s JSON document, kept in `gate_cache` when it may be (served from
        there to the next requests with the same query until the database or the policy
        changes).

        Raises:
            UsageError: The target is not a pinned Hub reference, or the environment is unknown.
            StoreError: The database cannot be reached or read.
        """
        subject = require_pinned(target)
        count = self.change_count()
        moment = datetime.now(UTC)
        answer, keep = self.gate(subject, environment, count=count, moment=moment)
        body = answer_body(answer.document())
        if keep:
            key = (target, environment)
            self.gate_cache.keep_answer(
                key, body, count=count, day=moment.date(), digest=answer.policy_digest
            )
        return body

    def admission(self, review: Any, *, environment: str | None) -> dict[str, Any]:
        """The AdmissionReview answer for a review of an InferenceService: each pinned model
        answered as `GET /api/v1/decision` answers it (kept answers included).

        Raises:
            UsageError: The body is not an AdmissionReview, or the environment is unknown.
            StoreError: The database cannot be reached or read.
        """
        self.policies.for_environment(environment)
        request = parse_review(review)
        if request.operation == "DELETE":
            return unchecked_response(request, "a deletion runs no model: nothing to check")
        count = self.change_count()
        moment = datetime.now(UTC)
        outcomes = judge_uris(
            request,
            lambda subject: self.gate(subject, environment, count=count, moment=moment)[0],
        )
        return review_response(request, outcomes)
