"""Re-decide recorded models from their stored facts (nothing fetched), recording each change."""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from verifier.bans import (
    BAN_RECHECKS,
    Ban,
    BanHit,
    BanKind,
    Relation,
    blast_radius,
    estate_model,
    hits_for,
)
from verifier.errors import BansChangedError, NotFoundError
from verifier.model import BAN_RULE_ID, Decision, ScanFacts, Verdict
from verifier.policy import Policy, build_evidence, decide
from verifier.policy.compiled import Mode
from verifier.store.bans import BanRecords
from verifier.store.database import Store


class Cause(enum.StrEnum):
    """Why a recorded model was decided again (kept with each change of decision)."""

    BAN = "ban"
    BAN_LIFTED = "ban-lifted"
    #: The policy file or the publisher registry it decides with changed.
    POLICY = "policy"
    #: A waiver was added, or one expired.
    WAIVER = "waiver"
    #: Decided again on request, with nothing else known to have changed.
    REQUESTED = "requested"
    #: Scanned again by another scanner version (the service's re-scans), which decided
    #: otherwise than the scan before.
    SCANNER = "scanner"


@dataclass(frozen=True)
class Redecision:
    """One recorded model decided again."""

    subject: str
    scan_id: str
    #: Its decision before, under the same policy digest and environment (None: none).
    previous: Decision | None
    verdict: Verdict
    #: Why it was decided again (the cause recorded with a change).
    cause: Cause
    bans: tuple[BanHit, ...] = ()
    #: Whether the decision was recorded (not in a dry-run policy).
    recorded: bool = False

    @property
    def changed(self) -> bool:
        """Whether the decision differs from the one before."""
        return self.previous is not self.verdict.decision

    def document(self, *, ban_id: int | None = None) -> dict[str, Any]:
        """The JSON form; with `ban_id`, how that ban reaches the model (relation, path)."""
        hit = next((h for h in self.bans if h.ban.ban_id == ban_id), None)
        return {
            "subject": self.subject,
            "scan_id": self.scan_id,
            "environment": self.verdict.environment,
            "decision": self.verdict.decision.value,
            "previous": self.previous.value if self.previous is not None else None,
            "recorded": self.recorded,
            "changed": self.changed,
            "cause": self.cause.value,
            "relation": hit.relation.value if hit is not None else None,
            "path": list(hit.path) if hit is not None else [],
        }


def _ban_ids(verdict: Verdict) -> set[str]:
    return {
        reason.evidence[0] if reason.evidence else reason.message
        for reason in verdict.reasons
        if reason.rule_id == BAN_RULE_ID
    }


def lapsed_waiver(waivers: Iterable[tuple[str, str]], *, today: date) -> bool:
    """Whether a decision applied a waiver that has expired by `today` (UTC) (pure).

    `waivers` are the decision's (status, expiry date) pairs. Such a decision is stale:
    decided again, the waiver no longer applies.
    """
    for status, expires in waivers:
        if status != "applied":
            continue
        try:
            if date.fromisoformat(expires) < today:
                return True
        except ValueError:
            return True  # unreadable: decide again rather than trust it
    return False


def infer_cause(previous: Verdict | None, verdict: Verdict) -> Cause:
    """Why a decision made again from the same facts differs from the one before (pure).

    Another policy digest (or none before) is a policy change; else bans that came or went;
    else waivers whose status changed (added, expired); else nothing known changed.
    """
    if previous is None or previous.policy_digest != verdict.policy_digest:
        return Cause.POLICY
    before, after = _ban_ids(previous), _ban_ids(verdict)
    if after - before:
        return Cause.BAN
    if before - after:
        return Cause.BAN_LIFTED
    waivers_before = {(w.waiver_id, w.status) for w in previous.waivers}
    if waivers_before != {(w.waiver_id, w.status) for w in verdict.waivers}:
        return Cause.WAIVER
    return Cause.REQUESTED


def redecide(
    store: Store,
    policy: Policy,
    *,
    actor: str,
    cause: Cause | None = None,
    only: Collection[str] | None = None,
    scans: Collection[str] | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> list[Redecision]:
    """Decide every recorded model (or those whose key is in `only`, or whose newest scan's
    id is in `scans`) again from its facts.

    The newest scan of each model is decided by `policy` with the bans in force; the
    decision is recorded (unless the policy runs dry) and, where it differs from the model's
    decision before in the same environment, so is the change, with `cause` (inferred per
    model by `infer_cause` when None).

    Raises:
        StoreError: The database cannot be reached, read or written.
        PolicyError: A rule raised while deciding.
    """
    moment = now or datetime.now(UTC)
    records = BanRecords(store)
    record = policy.mode is not Mode.DRY_RUN
    done: list[Redecision] = []
    for attempt in range(1, BAN_RECHECKS + 1):
        # The generation first: a ban made after it stops the pass at the next record (see
        # `Store.record_scan`); what was recorded before it stands, the ban's own re-decision
        # comes after it.
        seen = store.ban_generation()
        estate = records.estate()
        models = [estate_model(facts, publishers=policy.publishers) for facts in estate]
        hits = blast_radius(records.bans(active_only=True), models)
        finished = {item.scan_id for item in done}
        try:
            for facts, model in zip(estate, models, strict=True):
                if only is not None and model.key not in only:
                    continue
                if scans is not None and facts.scan_id not in scans:
                    continue
                if facts.scan_id in finished:
                    continue
                done.append(
                    _redecide_one(
                        records,
                        facts,
                        model.key,
                        policy,
                        bans=hits_for(model.key, hits),
                        bans_seen=seen if record else None,
                        cause=cause,
                        detail=detail,
                        actor=actor,
                        now=moment,
                    )
                )
        except BansChangedError:
            if attempt == BAN_RECHECKS:
                raise
            continue  # decide the rest again, with the bans in force now
        return done
    raise AssertionError("unreachable: the last attempt returns or raises")


def _redecide_one(
    records: BanRecords,
    facts: ScanFacts,
    subject: str,
    policy: Policy,
    *,
    bans: tuple[BanHit, ...],
    bans_seen: int | None,
    cause: Cause | None,
    detail: dict[str, Any] | None,
    actor: str,
    now: datetime,
) -> Redecision:
    """Decide one recorded model again and record it (unless `bans_seen` is None: dry run).

    Raises:
        BansChangedError: A ban was made or lifted since `bans_seen`; nothing was recorded.
        StoreError: The database cannot be reached, read or written.
        PolicyError: A rule raised while deciding.
    """
    evidence = build_evidence(facts, publishers=policy.publishers, now=now, bans=bans)
    verdict = decide(evidence, policy, now=now)
    before = records.current_verdict(facts.scan_id, environment=verdict.environment)
    why = infer_cause(before, verdict) if cause is None else cause
    previous = before.decision if before is not None else None
    if bans_seen is not None:
        records.record_decision(
            facts.scan_id,
            verdict,
            subject=subject,
            previous=previous,
            cause=why.value,
            detail=dict(detail or {}),
            actor=actor,
            bans_seen=bans_seen,
        )
    return Redecision(
        subject=subject,
        scan_id=facts.scan_id,
        previous=previous,
        verdict=verdict,
        cause=why,
        bans=bans,
        recorded=bans_seen is not None,
    )


def preview(store: Store, ban: Ban, *, policy: Policy) -> tuple[BanHit, ...]:
    """The recorded models `ban` would reach, were it in force (nothing is recorded).

    Raises:
        StoreError: The database cannot be reached or read.
    """
    estate = BanRecords(store).estate()
    models = [estate_model(facts, publishers=policy.publishers) for facts in estate]
    return blast_radius([ban], models)


def apply_ban_change(
    store: Store,
    ban: Ban,
    policies: Sequence[Policy],
    *,
    actor: str,
    lifted: bool = False,
) -> list[Redecision]:
    """Decide again, under each policy, every recorded model a ban reaches (reached, when it
    was just lifted), and record which models those were.

    Raises:
        StoreError: The database cannot be reached, read or written.
        PolicyError: A rule raised while deciding.
    """
    in_force = replace(ban, lifted_at=None, lifted_by=None, lift_reason=None)
    reached: set[str] = set()
    for policy in policies:
        reached |= {hit.model.key for hit in preview(store, in_force, policy=policy)}
    if not reached:
        return []
    BanRecords(store).record_reach(ban.ban_id, reached)
    cause = Cause.BAN_LIFTED if lifted else Cause.BAN
    detail = {"ban": ban.ban_id, "kind": ban.kind.value, "value": ban.value}
    done: list[Redecision] = []
    for policy in policies:
        done += redecide(store, policy, cause=cause, actor=actor, only=reached, detail=detail)
    return done


def register_banned_weights(store: Store, ban: Ban, redecided: Sequence[Redecision]) -> list[str]:
    """Register the weight fingerprints of the recorded models a model ban names as lineage
    bases, so that a later scan of a model derived from them is attributed to them by its
    weights (and so reached by the ban) whatever its card says. Returns the scans registered.

    Models without a fingerprint (no safetensors weights), scans registered before, and bans
    of other kinds register nothing.

    Raises:
        StoreError: The database cannot be reached, read or written.
    """
    if ban.kind is not BanKind.MODEL or not ban.active:
        return []
    registered = {base["scan_id"] for base in store.lineage_bases()}
    named = sorted(
        {
            item.scan_id
            for item in redecided
            for hit in item.bans
            if hit.ban.ban_id == ban.ban_id and hit.relation is Relation.NAMED
        }
    )
    done = []
    for scan_id in named:
        if scan_id in registered:
            continue
        try:
            store.register_base(scan_id)
        except NotFoundError:
            continue  # no weight fingerprint recorded: nothing to attribute by
        done.append(scan_id)
    return done
