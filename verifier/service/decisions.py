"""The gate: allow, deny or unknown for a pinned model, answered from the database alone."""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from verifier.errors import PolicyError, UsageError
from verifier.model import BAN_RULE_ID, Verdict
from verifier.policy import Policy, build_evidence, decide, load_policy
from verifier.policy.schema import Mode, compile_waiver, waiver_conflict
from verifier.redecide import lapsed_waiver
from verifier.report.json_format import verdict_document
from verifier.service.model import GateDecision
from verifier.store.bans import BanRecords
from verifier.store.database import Store
from verifier.store.service_records import ServiceRecords
from verifier.store.waivers import RecordedWaiver, WaiverGeneration, WaiverRecords


@dataclass(frozen=True)
class _Loaded:
    """The policy of every environment as read from the files, and with the recorded waivers
    of one generation added."""

    #: As read from the files (the policy file, its registry and its waivers files).
    files: Mapping[str | None, Policy]
    policies: Mapping[str | None, Policy]
    generation: WaiverGeneration
    #: Digests of the same files with fewer of the recorded waivers (older generations).
    earlier: frozenset[str] = frozenset()
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        # Computed once: the gate reads it on every request.
        object.__setattr__(self, "digest", self.policies[None].digest())

    @property
    def name(self) -> str:
        """The policy's name."""
        return self.files[None].name

    @property
    def environments(self) -> tuple[str, ...]:
        """The environments the file names."""
        return tuple(self.files[None].document.environments)

    @property
    def files_digest(self) -> str:
        """The digest of the files alone (no recorded waiver)."""
        return self.files[None].digest()


@dataclass(frozen=True)
class PolicyReload:
    """What reading the policy files again did."""

    #: Whether the files said something else (the server decides with them from now on).
    changed: bool
    #: The policy digest before and after (with the recorded waivers).
    before: str
    after: str


class PolicySet:
    """The server's one policy file, loaded once per environment, with its waivers files and
    the waivers recorded through the service (`POST /api/v1/waivers`) added.

    Recorded waivers count in the policy digest, as waivers files do. `current(store)` picks
    up waivers recorded since (by any server) and returns a snapshot that does not change
    while a request uses it.
    """

    def __init__(
        self,
        path: Path,
        *,
        publishers: Path | None = None,
        waivers: Sequence[Path] = (),
    ) -> None:
        """Load and check the file and every environment in it.

        Raises:
            PolicyError: The file, the registry or a waivers file is missing or invalid.
            UsageError: The policy's mode is dry-run: the service records every scan.
        """
        self._path, self._publishers, self._waivers = path, publishers, tuple(waivers)
        self._lock = threading.Lock()
        files = self._load_files()
        self._state = _Loaded(files=files, policies=files, generation=(0, 0))
        #: Digests this server decided with before a reload (a job asked under one of them
        #: is decided with the policy loaded since).
        self._superseded: frozenset[str] = frozenset()

    def _load_files(self) -> Mapping[str | None, Policy]:
        """Read the files: the policy of every environment.

        Raises:
            PolicyError: The file, the registry or a waivers file is missing or invalid.
            UsageError: The policy's mode is dry-run somewhere.
        """
        base = self._load(None)
        files: dict[str | None, Policy] = {None: base}
        for name in base.document.environments:
            files[name] = self._load(name)
        if any(policy.mode is Mode.DRY_RUN for policy in files.values()):
            raise UsageError(
                f"policy {base.name} runs in dry-run mode somewhere; the service records every "
                "scan and decision, so serve a policy in enforce or audit mode"
            )
        return files

    def _load(self, environment: str | None) -> Policy:
        return load_policy(
            self._path, env=environment, publishers=self._publishers, waivers=self._waivers
        )

    @property
    def name(self) -> str:
        """The policy's name (as the file says now)."""
        return self._state.name

    @property
    def environments(self) -> tuple[str, ...]:
        """The environments the policy file names."""
        return self._state.environments

    @property
    def digest(self) -> str:
        """SHA-256 of the policy, its registry and every waiver (see `Policy.digest`)."""
        return self._state.digest

    @property
    def files_digest(self) -> str:
        """SHA-256 of the policy file, its registry and its waivers files, without the waivers
        recorded in the database (what `verifier.store.policies` compares across servers)."""
        return self._state.files_digest

    def current(self, store: Store) -> PolicySet:
        """A snapshot with every waiver recorded in `store` so far (one small query when
        none was added since the last call).

        Raises:
            StoreError: The database cannot be reached or read.
            PolicyError: A recorded waiver no longer fits the policy file (its rule is gone,
                or a waivers file now has its id).
        """
        records = WaiverRecords(store)
        state = self._state
        generation = records.generation()
        if generation != state.generation:
            fresh = self._with_waivers(state.files, records.waivers(), generation)
            with self._lock:
                # Unless a reload or a newer generation came meanwhile.
                if self._state.files is state.files and (
                    fresh.generation[1] >= self._state.generation[1]
                ):
                    self._state = fresh
        snapshot = copy.copy(self)
        snapshot._state = self._state
        return snapshot

    def reload(self, store: Store) -> PolicyReload:
        """Read the policy file, its registry and its waivers files again; when what they say
        changed (their digest), decide with them from now on.

        Snapshots taken before (`current`) keep the policy they had. The files read badly
        leave the policy in use as it was.

        Raises:
            PolicyError: A file is missing or invalid now, or a recorded waiver does not fit
                the policy file any more.
            UsageError: The policy now runs in dry-run mode somewhere.
            StoreError: The database cannot be reached or read.
        """
        files = self._load_files()
        before = self._state
        if files[None].digest() == before.files_digest:
            return PolicyReload(changed=False, before=before.digest, after=before.digest)
        return self._install(files, store)

    def follow(self, store: Store, files_digest: str) -> bool:
        """Read the files again and decide with them from now on only when their digest is
        `files_digest` (the files another server put in force); whether the files this
        server decides with now have that digest.

        Raises:
            PolicyError: A file is missing or invalid now, or a recorded waiver does not fit
                the policy file any more.
            UsageError: The policy now runs in dry-run mode somewhere.
            StoreError: The database cannot be reached or read.
        """
        if self._state.files_digest == files_digest:
            return True
        files = self._load_files()
        if files[None].digest() != files_digest:
            return False
        if files[None].digest() != self._state.files_digest:
            self._install(files, store)
        return True

    def _install(self, files: Mapping[str | None, Policy], store: Store) -> PolicyReload:
        records = WaiverRecords(store)
        generation = records.generation()
        fresh = self._with_waivers(files, records.waivers(), generation)
        with self._lock:
            old = self._state
            self._superseded |= {old.digest, *old.earlier}
            self._state = fresh
        return PolicyReload(changed=True, before=old.digest, after=fresh.digest)

    def _with_waivers(
        self,
        files: Mapping[str | None, Policy],
        rows: Sequence[RecordedWaiver],
        generation: WaiverGeneration,
    ) -> _Loaded:
        # `generation` was read before `rows`: a waiver recorded in between is read again next
        # time, never missed.
        recorded = [compile_waiver(row.waiver) for row in rows]
        document = files[None].document
        for i, waiver in enumerate(recorded):
            conflict = waiver_conflict(document, waiver, earlier=recorded[:i])
            if conflict is not None:
                raise PolicyError(
                    f"recorded waiver {waiver.id!r} does not fit policy {files[None].name}: "
                    f"{conflict[1]}; fix the policy file or its waivers files"
                )
        policies = {env: policy.with_waivers(recorded) for env, policy in files.items()}
        base = files[None]
        earlier = frozenset(
            base.with_waivers(recorded[:count]).digest() for count in range(len(recorded))
        )
        return _Loaded(files=files, policies=policies, generation=generation, earlier=earlier)

    def is_earlier_digest(self, digest: str) -> bool:
        """Whether `digest` is this policy's before some of its recorded waivers were added,
        or before a reload of its files (a job queued then is decided with the policy now)."""
        return digest in self._state.earlier or digest in self._superseded

    def for_environment(self, environment: str | None) -> Policy:
        """The policy bound to `environment` (None: the file's default).

        Raises:
            UsageError: The policy file has no such environment.
        """
        policy = self._state.policies.get(environment)
        if policy is None:
            known = ", ".join(self.environments) or "none"
            raise UsageError(
                f"policy {self.name} has no environment {environment!r} (it has: {known})"
            )
        return policy

    def each(self) -> list[Policy]:
        """The policy of each environment, once (the default may also be a named one)."""
        names = (None, *self.environments)
        return list({p.environment: p for p in map(self.for_environment, names)}.values())

    def resolve_name(self, requested: str | None) -> str:
        """The policy a request asked for, which must be this server's.

        Raises:
            UsageError: It names another policy.
        """
        if requested in (None, "default", self.name):
            return self.name
        raise UsageError(f"this server decides with policy {self.name!r} only, not {requested!r}")


@dataclass(frozen=True)
class GateAnswer:
    """The gate's answer for one model in one environment."""

    decision: GateDecision
    target: str
    environment: str | None
    policy_name: str
    policy_digest: str
    scan_id: str | None = None
    mode: str | None = None
    reasons: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    #: The answering scan's status (`complete`, `incomplete`); None when unknown.
    status: str | None = None
    #: Waivers that concerned the subject (as in the scan document's `policy.waivers`).
    waivers: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def banned(self) -> bool:
        """Whether a ban denied the model."""
        return any(r.get("rule_id") == BAN_RULE_ID for r in self.reasons)

    @property
    def admits(self) -> bool:
        """Whether a cluster may run the model: allowed, or denied by a policy in audit mode
        for a reason other than a ban (a ban blocks in every mode). Unknown never admits."""
        if self.decision is GateDecision.ALLOW:
            return True
        return (
            self.decision is GateDecision.DENY and self.mode == Mode.AUDIT.value and not self.banned
        )

    def summary(self) -> str:
        """One line: the decision and the first reasons that denied."""
        denying = [r["message"] for r in self.reasons if r.get("effect") != "allow"]
        text = f"{self.target}: {self.decision.value}"
        if self.admits and self.decision is GateDecision.DENY:
            text += " (policy in audit mode: admitted)"
        return text + (f" ({'; '.join(denying[:3])})" if denying else "")

    def document(self) -> dict[str, Any]:
        """The JSON answer of `GET /api/v1/decision`."""
        return {
            "decision": self.decision.value,
            "target": self.target,
            "environment": self.environment,
            "scan_id": self.scan_id,
            "policy": self.policy_name,
            "policy_digest": self.policy_digest,
            "mode": self.mode,
            "status": self.status,
            "reasons": list(self.reasons),
            "waivers": list(self.waivers),
        }


def _answer(
    verdict: Verdict, *, subject: str, scan_id: str, status: str, policies: PolicySet
) -> GateAnswer:
    document = verdict_document(verdict)
    return GateAnswer(
        decision=GateDecision(verdict.decision.value),
        target=subject,
        environment=verdict.environment,
        policy_name=policies.name,
        policy_digest=policies.digest,
        scan_id=scan_id,
        mode=verdict.mode,
        reasons=tuple(document["reasons"]),
        status=status,
        waivers=tuple(document["waivers"]),
    )


def outdated_answer(
    policies: PolicySet, subject: str, environment: str | None, reason: str
) -> GateAnswer:
    """`unknown` from a server whose policy files are not the ones in force (`reason` says
    why): it cannot decide under a policy it does not have, and never admits.

    Raises:
        UsageError: The environment is not one of the policy's.
    """
    policy = policies.for_environment(environment)
    return _unknown(policies, policy, subject, "service.policy-not-in-force", reason)


def _unknown(
    policies: PolicySet, policy: Policy, subject: str, rule_id: str, message: str
) -> GateAnswer:
    """`unknown` with one reason (`rule_id`, `message`): never allow, never admitted."""
    return GateAnswer(
        decision=GateDecision.UNKNOWN,
        target=subject,
        environment=policy.environment,
        policy_name=policies.name,
        policy_digest=policies.digest,
        mode=policy.mode.value,
        reasons=(
            {
                "rule_id": rule_id,
                "effect": "deny",
                "severity": "high",
                "message": message,
                "evidence": [],
                "waived_by": None,
            },
        ),
    )


def gate(
    store: Store,
    policies: PolicySet,
    subject: str,
    *,
    environment: str | None,
    now: datetime | None = None,
) -> GateAnswer:
    """The decision for a pinned subject (`hf://ns/name@<commit>`) in `environment`.

    The newest recorded scan of the subject answers: with the decision recorded under the
    server's policy digest and this environment when there is one made after every ban that
    reached the subject was made or lifted and no waiver it applied has expired since, else
    decided now from the scan's recorded facts
    and the bans in force (nothing is fetched, nothing is recorded). With no recorded scan the
    answer is `unknown`, which never admits.

    Raises:
        UsageError: The environment is not one of the policy's.
        StoreError: The database cannot be reached or read.
        PolicyError: A rule raised while deciding from recorded facts.
    """
    return gate_kept(store, policies, subject, environment=environment, now=now)[0]


def gate_kept(
    store: Store,
    policies: PolicySet,
    subject: str,
    *,
    environment: str | None,
    now: datetime | None = None,
) -> tuple[GateAnswer, bool]:
    """`gate`'s answer, and whether it may be kept until the database changes or the UTC day
    of `now` ends (see `verifier.service.gate_cache`).

    An unknown answer and a recorded decision may: they depend on the rows read and, through
    lapsed waivers, on the day. An answer decided from the facts at the moment of the request
    may not: its rules may read the time (`now`, `model.age_days`).

    Raises:
        UsageError: The environment is not one of the policy's.
        StoreError: The database cannot be reached or read.
        PolicyError: A rule raised while deciding from recorded facts.
    """
    policies = policies.current(store)
    policy = policies.for_environment(environment)
    recorded = ServiceRecords(store).recorded_subject(
        subject, policy_digest=policies.digest, environment=policy.environment
    )
    if recorded is None:
        unknown = _unknown(
            policies,
            policy,
            subject,
            "service.not-scanned",
            f"no recorded scan of {subject}; submit it to POST /api/v1/scans",
        )
        return unknown, True
    moment = now or datetime.now(UTC)
    if (
        recorded.verdict is not None
        and not lapsed_waiver(
            ((w.status, w.expires) for w in recorded.verdict.waivers),
            today=moment.astimezone(UTC).date(),
        )
        and not BanRecords(store).banned_or_lifted_since(
            subject, recorded.scan_id, policy_digest=policies.digest, environment=policy.environment
        )
    ):
        kept = _answer(
            recorded.verdict,
            subject=subject,
            scan_id=recorded.scan_id,
            status=recorded.status.value,
            policies=policies,
        )
        return kept, True
    scan_id, facts = store.get_facts(recorded.scan_id)
    bans = store.bans_reaching(facts, publishers=policy.publishers)
    evidence = build_evidence(facts, publishers=policy.publishers, now=moment, bans=bans)
    verdict = decide(evidence, policy, now=moment)
    decided = _answer(
        verdict, subject=subject, scan_id=scan_id, status=facts.status.value, policies=policies
    )
    return decided, False
