"""Keeping decisions current without a request: re-decide what went stale, poll watches.

At start-up, and then every `ServiceConfig.upkeep_seconds`, the server

- reads its policy file, publisher registry and waivers files again (`reload_policies`), and
  decides with them from then on when they changed (also on `POST /api/v1/policies/reload`);
- decides again, from their recorded facts, the recorded models whose newest scan has no
  decision under the server's policy digest in one of its environments (the policy file, the
  publisher registry or the waivers changed since) or whose decision rests on a waiver that
  has expired since (`refresh_decisions`), recording each change with its cause;
- asks the Hub where each watched branch or tag points and queues a scan of a commit it has
  not asked for before (`poll_watches`): the watch moves once that scan completed, as with a
  webhook;
- queues a re-scan of recorded models an older verifier version scanned, or whose weight
  fingerprint an older fingerprint version made (registered lineage bases first), or whose
  lineage could not compare a base fingerprinted again since, from the bytes kept of them
  (`rescan_older_versions`, `verifier.service.rescans.rescan_need`);
- records the notifications each configured URL is owed (decision changes, critical findings,
  waivers expiring soon) and delivers those due (`verifier.service.notify`).

Notifications also have a thread of their own, every `ServiceConfig.delivery_seconds`
(`start_background`): deliveries do not wait for, or need, the upkeep passes.

One server at a time does a pass (a lock in the database); the others skip theirs.
docs/service.md ("Keeping decisions current") is the user's description.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from verifier import __version__, config
from verifier.errors import SourceError, VerifierError
from verifier.model import is_commit_id
from verifier.notifications import Attempt, Notification, url_origin
from verifier.redecide import Redecision, lapsed_waiver, redecide
from verifier.service import notify
from verifier.service.decisions import PolicyReload
from verifier.service.model import AuditAction, RescanCause, Rescanner
from verifier.service.rescans import (
    asked_since,
    fingerprinted_now,
    hold_reason,
    rescan_need,
    rescan_order,
)
from verifier.store.bans import BanRecords
from verifier.store.service_records import try_exclusive
from verifier.store.watches import WatchRecords

if TYPE_CHECKING:
    from verifier.service.core import Service

log = logging.getLogger(__name__)

#: Who the audit log and the decision changes name for what the server does by itself.
SERVER_ACTOR = "server"
#: Who the audit log names for scans a poll of the watches asked for.
POLL_ACTOR = "watch-poll"
#: The database lock one pass holds: one server at a time keeps the decisions current.
LOCK_NAME = "verifier.upkeep"


def refresh_decisions(service: Service, *, now: datetime | None = None) -> list[Redecision]:
    """Decide again every recorded model whose newest decision, in any environment of the
    server's policy, was made under another policy digest (or none was made) or rests on a
    waiver that has expired since.

    Each decision is recorded; a change is recorded with its cause, read from the decision
    before (`policy` after another digest decided, `waiver` when a waiver expired).

    Raises:
        StoreError: The database cannot be reached, read or written.
        PolicyError: A rule raised while deciding.
    """
    moment = now or datetime.now(UTC)
    today = moment.astimezone(UTC).date()
    records = BanRecords(service.store)
    newest = records.newest_scan_ids()
    if not newest:
        return []
    policies = service.policies.current(service.store)  # with the waivers recorded so far
    digest = policies.digest
    done: list[Redecision] = []
    for policy in policies.each():
        newest_decisions = records.newest_decisions(environment=policy.environment)
        stale = set()
        for scan_id in newest:
            decided, waivers = newest_decisions.get(scan_id, (None, []))
            lapsed = lapsed_waiver(
                ((str(w.get("status")), str(w.get("expires"))) for w in waivers), today=today
            )
            if decided != digest or lapsed:
                stale.add(scan_id)
        if stale:
            done += redecide(
                service.store,
                policy,
                actor=SERVER_ACTOR,
                scans=stale,
                detail={"policy_digest": digest},
                now=moment,
            )
    return done


@dataclass(frozen=True)
class ReloadOutcome:
    """What reading the policy files again, and deciding again after, did."""

    reload: PolicyReload
    #: The recorded models decided again (empty when the files did not change, or when
    #: another server's pass held the lock: that pass or the next decides them).
    redecided: list[Redecision]
    #: False when another server held the lock and the models were not decided here.
    done: bool = True

    def document(self, *, policy: str) -> dict[str, Any]:
        """The JSON answer of `POST /api/v1/policies/reload`."""
        return {
            "changed": self.reload.changed,
            "policy": policy,
            "policy_digest_before": self.reload.before,
            "policy_digest": self.reload.after,
            "redecided": len(self.redecided),
            "redecided_here": self.done,
            "changes": [item.document() for item in self.redecided if item.changed],
        }


def reload_policies(service: Service, *, actor: str) -> PolicyReload:
    """Read the server's policy file, publisher registry and waivers files again; when they
    changed, the server decides with them from now on, puts them in force for every server
    sharing the database (`verifier.store.policies`) and the audit log says so.

    Raises:
        PolicyError: A file is missing or invalid now (the policy in use stays).
        UsageError: The policy now runs in dry-run mode (the policy in use stays).
        StoreError: The database cannot be reached, read or written.
    """
    outcome = service.policies.reload(service.store)
    if outcome.changed:
        # Every other server sharing the database notices (the change counter moves), reads
        # its files again and answers `unknown` until they are these.
        service.put_policy_in_force(actor=actor)
        service.records.record_event(
            actor,
            AuditAction.POLICY_RELOADED,
            service.policies.name,
            before=outcome.before,
            after=outcome.after,
        )
    return outcome


def reload_and_redecide(
    service: Service, *, actor: str, wait_seconds: float = 30.0
) -> ReloadOutcome:
    """`reload_policies`, then (when they changed) decide again every recorded model under
    the new policy, each change recorded with cause `policy`. Waits up to `wait_seconds` for
    a pass under way elsewhere to end.

    Raises:
        PolicyError: A file is missing or invalid now (the policy in use stays).
        UsageError: The policy now runs in dry-run mode (the policy in use stays).
        StoreError: The database cannot be reached, read or written.
    """
    outcome = reload_policies(service, actor=actor)
    if not outcome.changed:
        return ReloadOutcome(reload=outcome, redecided=[])
    deadline = time.monotonic() + wait_seconds
    while True:
        with try_exclusive(service.store, LOCK_NAME) as taken:
            if taken:
                return ReloadOutcome(reload=outcome, redecided=refresh_decisions(service))
        if time.monotonic() >= deadline:
            return ReloadOutcome(reload=outcome, redecided=[], done=False)
        time.sleep(0.1)


def poll_watches(service: Service) -> list[dict[str, Any]]:
    """Ask the Hub where each watched branch or tag points, and queue a scan of each commit
    not asked for before. Returns what was queued (`{"watch", "target", "job"}`).

    A watch with a scan still pending is left until that scan ends; a commit whose scan was
    asked for before (by a webhook, a poll, or the watch's creation) is not asked for again,
    even when that scan failed. A reference the Hub cannot resolve is logged and skipped.

    Raises:
        StoreError: The database cannot be reached, read or written.
    """
    from verifier.sources.huggingface.client import HubClient, HubSettings

    records = WatchRecords(service.store)
    hub: HubClient | None = None
    queued = []
    for watch in records.watches():
        if watch.pending or is_commit_id(watch.ref):
            continue  # a scan is under way, or a pinned commit (which never moves)
        if hub is None:
            hub = HubClient(
                HubSettings.from_env(
                    endpoint=service.config.hub_endpoint, token=service.config.hub_token
                )
            )
        try:
            commit = getattr(hub.model_info(watch.repo_id, watch.ref, files=False), "sha", None)
        except SourceError as exc:
            log.warning("watch %s: the Hub did not say where it points: %s", watch.target, exc)
            continue
        if not isinstance(commit, str) or not is_commit_id(commit) or commit == watch.commit:
            continue
        if commit in records.requested_commits(watch.watch_id):
            continue
        target = f"hf://{watch.repo_id}@{commit}"
        job = service.submit_scan(target, policy=None, environment=None, actor=POLL_ACTOR)
        records.record_update(watch.watch_id, commit=commit, job_id=job.job_id, source="poll")
        queued.append({"watch": watch.watch_id, "target": target, "job": job.job_id})
    return queued


@dataclass(frozen=True)
class RescanHeld:
    """A recorded model that needs a re-scan and was not queued for one."""

    target: str
    tool_version: str
    reason: str
    causes: tuple[RescanCause, ...] = ()

    def document(self) -> dict[str, Any]:
        """`{"target", "tool_version", "reason", "causes"}`."""
        return {
            "target": self.target,
            "tool_version": self.tool_version,
            "reason": self.reason,
            "causes": [cause.value for cause in self.causes],
        }


@dataclass
class Rescans:
    """What one pass asked for re-scans: queued, and held back with the reason."""

    queued: list[dict[str, Any]] = field(default_factory=list)
    held: list[RescanHeld] = field(default_factory=list)


def rescan_older_versions(service: Service) -> Rescans:
    """Queue a re-scan of up to `rescan_per_pass` recorded Hub models that need one
    (`rescans.rescan_need`: an older verifier version made their newest scan, or it recorded a
    weight fingerprint of an older version, or it could not compare a registered base that
    has been fingerprinted again since), registered lineage bases first
    (`rescans.rescan_order`), the others only once no base's re-scan is queued or running;
    each model once per newest scan, verifier version and way of re-scanning, whatever became
    of it (`rescans.asked_since`).

    By default a re-scan reads only the bytes kept of the model (this host's blob folder,
    the shared blob store) and asks the Hub nothing; a model with a declared file kept in
    neither is not queued but held, with the reason, on every pass until its bytes are kept
    or the operator lets re-scans fetch from the Hub (`rescan_from_hub`: kept bytes first,
    the Hub for the rest, the provenance asked again). A re-scan that decides otherwise than
    the scan before records the change with cause `scanner` as its job completes.

    Raises:
        StoreError: The database cannot be reached, read or written.
    """
    limit = service.config.rescan_per_pass
    done = Rescans()
    if limit <= 0:
        return done
    try:
        running = Version(__version__)
    except InvalidVersion:  # a build whose version does not order: it cannot say what is older
        log.error("verifier %r is not a PEP 440 version: no re-scans", __version__)
        return done
    rescanner = Rescanner(__version__, from_hub=service.config.rescan_from_hub)
    asked = service.records.jobs_requested_by(rescanner.actor)
    home = config.home_dir()
    scans = service.records.scanner_versions()
    fingerprinted = fingerprinted_now(scans)
    ordered = rescan_order(scans)
    # Other models wait while a registered base's re-scan is under way: re-scanned before
    # their base has a fingerprint of this version, they would be compared with nothing, and
    # their newest scan would then need no re-scan. (A held base does not hold them back: their
    # scans say which bases they could not compare.)
    base_under_way = any(
        newest.registered_base and (job := asked.get(subject)) is not None and job.open
        for subject, newest in ordered
    )
    for subject, newest in ordered:
        causes = rescan_need(newest, running, fingerprinted=fingerprinted)
        if not causes or asked_since(asked.get(subject), newest):
            continue
        if base_under_way and not newest.registered_base:
            break  # bases come first in `ordered`: every later model waits for a next pass
        if not rescanner.from_hub:
            reason = hold_reason(service, newest.scan_id, home=home)
            if reason is not None:
                done.held.append(RescanHeld(subject, newest.tool_version, reason, causes))
                continue
        job = service.submit_scan(
            subject, policy=None, environment=None, actor=rescanner.actor, rescan=True
        )
        done.queued.append(
            {
                "target": subject,
                "job": job.job_id,
                "tool_version": newest.tool_version,
                "causes": [cause.value for cause in causes],
            }
        )
        base_under_way = base_under_way or newest.registered_base
        if len(done.queued) >= limit:
            break
    return done


@dataclass
class UpkeepPass:
    """What one pass did."""

    redecided: list[Redecision] = field(default_factory=list)
    queued: list[dict[str, Any]] = field(default_factory=list)
    #: Re-scans queued for models that need one (`rescans.rescan_need`).
    rescans: list[dict[str, Any]] = field(default_factory=list)
    #: Models that need a re-scan and were not queued (bytes not kept), with why.
    rescans_held: list[RescanHeld] = field(default_factory=list)
    #: Notifications recorded, and the delivery attempts made.
    notified: int = 0
    delivered: list[tuple[Notification, Attempt]] = field(default_factory=list)


def run_pass(
    service: Service, *, poll: bool = True, deliver: bool = True, now: datetime | None = None
) -> UpkeepPass | None:
    """One pass: read the policy files again, refresh the decisions, (with `poll`) poll the
    watches, record the notifications owed and (with `deliver`) deliver those due.

    Policy files that no longer read well are logged, and the policy loaded before stays.
    The notifications are left to a delivery pass under way on another thread or server
    (`notify.run_pass`), which records them.

    Returns None when another server is doing a pass (it holds the lock).

    Raises:
        StoreError: The database cannot be reached, read or written.
        PolicyError: A rule raised while deciding.
    """
    moment = now or datetime.now(UTC)
    # Every server reads its own files, whichever does the pass.
    try:
        reload_policies(service, actor=SERVER_ACTOR)
    except VerifierError as exc:
        log.error(
            "the policy files could not be read again; deciding with the policy loaded "
            "before (%s): %s",
            service.policies.digest,
            exc.diagnostics(),
        )
    with try_exclusive(service.store, LOCK_NAME) as taken:
        if not taken:
            return None
        done = UpkeepPass(redecided=refresh_decisions(service, now=moment))
        if poll:
            done.queued = poll_watches(service)
            rescans = rescan_older_versions(service)
            done.rescans, done.rescans_held = rescans.queued, rescans.held
        sent = notify.run_pass(service, now=moment, deliver=deliver)
        if sent is not None:
            done.notified, done.delivered = sent.notified, sent.delivered
        return done


@dataclass
class Background:
    """The server's periodic threads (upkeep, deliveries), stopped together with it."""

    threads: list[PeriodicThread] = field(default_factory=list)

    def stop(self) -> None:
        """Stop every thread after the pass under way, if any."""
        for thread in self.threads:
            thread.stop()


def start_background(service: Service) -> Background:
    """At the server's start: refresh the decisions once, then start the upkeep thread when
    `upkeep_seconds` is set and the delivery thread when `delivery_seconds` is set (each
    independent of the other).

    Raises:
        StoreError: The database cannot be reached.
        PolicyError: A rule raised while deciding a recorded model.
    """
    run_pass(service, poll=False, deliver=False)
    started = Background()
    if service.config.upkeep_seconds > 0:
        started.threads.append(
            PeriodicThread(
                "verifier-upkeep",
                lambda: _log_failed(run_pass(service)),
                every=service.config.upkeep_seconds,
                doing="keeping decisions current",
            )
        )
    if service.config.delivery_seconds > 0:
        started.threads.append(
            PeriodicThread(
                "verifier-notify",
                lambda: _log_failed(notify.run_pass(service, now=datetime.now(UTC))),
                every=service.config.delivery_seconds,
                doing="sending notifications",
            )
        )
    for thread in started.threads:
        thread.start()
    return started


def _log_failed(done: UpkeepPass | notify.DeliveryPass | None) -> None:
    if done is None:
        return
    if isinstance(done, UpkeepPass) and done.rescans_held:
        first = done.rescans_held[0]
        log.warning(
            "%d model(s) that need a re-scan (an older verifier or fingerprint version) are not "
            "re-scanned: their bytes are not all kept (first: %s, scanned by %s: %s; all: "
            "GET /api/v1/rescans?state=held"
            "); keep them, or let re-scans fetch from the Hub with `verifier serve "
            "--rescan-from-hub`",
            len(done.rescans_held),
            first.target,
            first.tool_version,
            first.reason,
        )
    for notification, attempt in done.delivered:
        if not attempt.delivered:
            log.warning(
                "notification %d to %s not delivered (attempt %d): %s",
                notification.notification_id,
                url_origin(notification.url),
                notification.attempts + 1,
                attempt.error,
            )


class PeriodicThread:
    """Runs `work` every `every` seconds on a thread of the server, until `stop`."""

    def __init__(self, name: str, work: Callable[[], None], *, every: float, doing: str) -> None:
        """Prepare (nothing runs until `start`); `doing` names the work in the logs."""
        self._name, self._work, self._every, self._doing = name, work, every, doing
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (its first pass comes after one interval)."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the pass under way, if any."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._stopping.wait(self._every):
            try:
                self._work()
            except VerifierError as exc:
                log.warning("%s failed this time: %s", self._doing, exc)
            except Exception:
                # A bug: logged with its traceback, and the next pass tries again. It decides
                # nothing by itself: each decision recorded before it was complete.
                log.exception("%s failed on a bug", self._doing)
