"""The pure core of bans (`verifier.bans`): values, the estate view of facts, the blast radius."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import replace

import pytest

from verifier.bans import (
    Ban,
    BanKind,
    EstateModel,
    ParentLink,
    Relation,
    blast_radius,
    check_reason,
    estate_model,
    hits_for,
    normalise_ban_value,
)
from verifier.errors import UsageError
from verifier.model import (
    Decision,
    FileFormat,
    FileResult,
    ModelCard,
    ModelDetails,
    ScanFacts,
    ScanStatus,
)
from verifier.policy import build_evidence, decide, load_policy
from verifier.policy.compiled import PublisherRegistry, RegisteredPublisher

COMMIT_A, COMMIT_B = "a" * 40, "b" * 40
REGISTRY = PublisherRegistry(
    {
        "acme": RegisteredPublisher(
            legal_entity="Acme Ltd",
            country="GB",
            source="https://example.com/registry",
            reviewed=dt.date(2026, 1, 1),
            verified=False,
            note="",
        ),
        "faraway": RegisteredPublisher(
            legal_entity="Far Away Co",
            country="CN",
            source="https://example.com/registry",
            reviewed=dt.date(2026, 1, 1),
            verified=False,
            note="",
        ),
    }
)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _ban(kind: BanKind, value: str, ban_id: int = 1) -> Ban:
    return Ban(
        ban_id=ban_id,
        kind=kind,
        value=normalise_ban_value(kind, value),
        reason="test",
        banned_by="tester",
        banned_at="2026-12-04T00:00:00+00:00",
    )


def _model(
    repo: str,
    commit: str | None = COMMIT_A,
    *,
    weights: tuple[str, ...] = (),
    parents: tuple[ParentLink, ...] = (),
    country: str | None = None,
) -> EstateModel:
    blobs = frozenset(_sha(w) for w in weights)
    return EstateModel(
        key=f"hf://{repo}@{commit}" if commit else repo,
        scan_id=_sha(repo)[:32],
        repo_id=repo,
        commit=commit,
        namespace=repo.split("/")[0],
        country=country,
        blobs=blobs | {_sha(repo + "/config.json")},
        weight_blobs=blobs,
        parents=parents,
    )


def _declared(repo: str, commit: str | None = None) -> ParentLink:
    return ParentLink(repo, commit, Relation.DECLARED)


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        (BanKind.MODEL, "hf://acme/base", "acme/base"),
        (BanKind.MODEL, f"acme/base@{COMMIT_A}", f"acme/base@{COMMIT_A}"),
        (BanKind.PUBLISHER, " acme ", "acme"),
        (BanKind.JURISDICTION, "cn", "CN"),
        (BanKind.BLOB, "A" * 64, "sha256:" + "a" * 64),
        (BanKind.BLOB, "sha256:" + "b" * 64, "sha256:" + "b" * 64),
    ],
)
def test_values_are_normalised(kind: BanKind, text: str, value: str) -> None:
    assert normalise_ban_value(kind, text) == value


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (BanKind.MODEL, "acme/base@main"),
        (BanKind.MODEL, "../etc"),
        (BanKind.MODEL, "acme"),
        (BanKind.PUBLISHER, "acme/base"),
        (BanKind.PUBLISHER, ""),
        (BanKind.JURISDICTION, "GBR"),
        (BanKind.BLOB, "md5:" + "a" * 32),
        (BanKind.BLOB, "sha256:" + "g" * 64),
    ],
)
def test_bad_values_are_usage_errors(kind: BanKind, text: str) -> None:
    with pytest.raises(UsageError):
        normalise_ban_value(kind, text)


def test_a_reason_is_required() -> None:
    with pytest.raises(UsageError):
        check_reason("  ")
    assert check_reason(" why ") == "why"


def test_a_model_ban_reaches_descendants_at_any_depth_and_copies() -> None:
    base = _model("acme/base", weights=("base",))
    tuned = _model("tuner/tuned", weights=("tuned",), parents=(_declared("acme/base"),))
    quant = _model("quant/q", weights=("q",), parents=(_declared("tuner/tuned", COMMIT_A),))
    other = _model("other/two", weights=("two",))
    merged = _model(
        "merger/m", weights=("m",), parents=(_declared("quant/q"), _declared("other/two"))
    )
    copy = _model("mirror/copy", weights=("base",))
    copy_child = _model("kid/of-copy", parents=(_declared("mirror/copy", COMMIT_A),))
    estate = [base, tuned, quant, other, merged, copy, copy_child]
    hits = {h.model.repo_id: h for h in blast_radius([_ban(BanKind.MODEL, "acme/base")], estate)}
    assert sorted(hits) == sorted(
        ["acme/base", "tuner/tuned", "quant/q", "merger/m", "mirror/copy", "kid/of-copy"]
    )
    assert hits["acme/base"].relation is Relation.NAMED
    assert hits["mirror/copy"].relation is Relation.COPY
    assert hits["merger/m"].path == (
        f"acme/base@{COMMIT_A}",
        f"tuner/tuned@{COMMIT_A}",
        f"quant/q@{COMMIT_A}",
        f"merger/m@{COMMIT_A}",
    )
    assert hits["merger/m"].relation is Relation.DECLARED


def test_a_commit_ban_spares_other_commits_and_their_pinned_children() -> None:
    old = _model("acme/base", COMMIT_A, weights=("old",))
    new = _model("acme/base", COMMIT_B, weights=("new",))
    pinned_to_new = _model("x/pinned", parents=(_declared("acme/base", COMMIT_B),))
    unpinned = _model("y/unpinned", parents=(_declared("acme/base"),))
    estate = [old, new, pinned_to_new, unpinned]
    hits = blast_radius([_ban(BanKind.MODEL, f"acme/base@{COMMIT_A}")], estate)
    # A declaration without a commit is not a way out: it may be the banned one.
    assert sorted(h.model.key for h in hits) == sorted([old.key, unpinned.key])


def test_a_ban_of_an_unrecorded_model_reaches_what_declares_it() -> None:
    child = _model("x/child", parents=(_declared("gone/base"),))
    grandchild = _model("y/grandchild", parents=(_declared("x/child"),))
    hits = blast_radius([_ban(BanKind.MODEL, "gone/base")], [child, grandchild])
    assert [h.path for h in hits] == [
        ("gone/base", f"x/child@{COMMIT_A}"),
        ("gone/base", f"x/child@{COMMIT_A}", f"y/grandchild@{COMMIT_A}"),
    ]


def test_publisher_jurisdiction_and_blob_bans() -> None:
    acme = _model("acme/one", weights=("w1",), country="GB")
    far = _model("faraway/two", weights=("w2",), country="CN")
    child = _model("z/child", parents=(ParentLink("faraway/two", None, Relation.VERIFIED),))
    estate = [acme, far, child]

    def reached(ban: Ban) -> list[str]:
        return [h.model.repo_id or "" for h in blast_radius([ban], estate)]

    assert reached(_ban(BanKind.PUBLISHER, "ACME")) == ["acme/one"]
    assert reached(_ban(BanKind.JURISDICTION, "cn")) == ["faraway/two", "z/child"]
    assert reached(_ban(BanKind.BLOB, _sha("w1"))) == ["acme/one"]
    assert reached(_ban(BanKind.BLOB, _sha("acme/one/config.json"))) == ["acme/one"]
    assert reached(_ban(BanKind.BLOB, _sha("nothing"))) == []


def test_lifted_bans_reach_nothing_and_hits_are_per_model() -> None:
    model = _model("acme/one")
    lifted = Ban(
        ban_id=2,
        kind=BanKind.PUBLISHER,
        value="acme",
        reason="r",
        banned_by="a",
        banned_at="t",
        lifted_at="t2",
        lifted_by="b",
    )
    assert blast_radius([lifted], [model]) == ()
    hits = blast_radius(
        [_ban(BanKind.PUBLISHER, "acme"), _ban(BanKind.MODEL, "acme/one", 3)], [model]
    )
    assert [h.ban.ban_id for h in hits_for(model.key, hits)] == [1, 3]


def _local_facts(target: str, *, weights: bytes, base: str | None) -> ScanFacts:
    card = ModelCard(metadata={"base_model": base}) if base else None
    return ScanFacts(
        scan_id=_sha(target)[:32],
        target=target,
        started_at="2026-12-04T00:00:00+00:00",
        finished_at="2026-12-04T00:00:01+00:00",
        tool_version="test",
        status=ScanStatus.COMPLETE,
        files=(
            FileResult(
                path="model.safetensors",
                size=len(weights),
                sha256=hashlib.sha256(weights).hexdigest(),
                git_sha1=None,
                format=FileFormat.SAFETENSORS,
            ),
            FileResult(
                path="config.json", size=2, sha256=_sha("{}"), git_sha1=None, format=FileFormat.JSON
            ),
        ),
        findings=(),
        source={"type": "local", "root": target},
        details=ModelDetails(card=card),
    )


def test_local_models_declaring_a_base_in_their_card_are_reached() -> None:
    base = estate_model(
        _local_facts("/models/base", weights=b"base", base=None), publishers=REGISTRY
    )
    child = estate_model(
        _local_facts("/models/child", weights=b"child", base="acme/base"), publishers=REGISTRY
    )
    assert child.parents == (ParentLink("acme/base", None, Relation.DECLARED),)
    # config.json is the same file in both, but it is not weights: no copy.
    assert base.weight_blobs.isdisjoint(child.weight_blobs)
    hits = blast_radius([_ban(BanKind.MODEL, "acme/base")], [base, child])
    assert [h.model.key for h in hits] == ["/models/child"]


def test_a_ban_denies_whatever_the_policy_with_the_ban_as_first_reason() -> None:
    facts = _local_facts("/models/child", weights=b"child", base="acme/base")
    model = estate_model(facts, publishers=REGISTRY)
    hits = hits_for(model.key, blast_radius([_ban(BanKind.MODEL, "acme/base")], [model]))
    policy = load_policy("policies/default.yaml")
    now = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    plain = decide(build_evidence(facts, publishers=REGISTRY, now=now), policy, now=now)
    banned = decide(build_evidence(facts, publishers=REGISTRY, now=now, bans=hits), policy, now=now)
    assert plain.decision is Decision.ALLOW
    assert banned.decision is Decision.DENY
    first = banned.reasons[0]
    assert (first.rule_id, first.effect, first.message) == (
        "(ban)",
        "deny",
        "banned model acme/base: test",
    )
    assert first.evidence[1] == "reached through declared lineage: acme/base -> /models/child"


def test_the_registry_places_a_publisher_in_its_jurisdiction() -> None:
    facts = replace(
        _local_facts("hf://faraway/m", weights=b"w", base=None),
        source={"type": "huggingface", "repo_id": "faraway/m", "commit": COMMIT_A},
    )
    model = estate_model(facts, publishers=REGISTRY)
    assert (model.key, model.namespace, model.country) == (
        f"hf://faraway/m@{COMMIT_A}",
        "faraway",
        "CN",
    )
    hits = blast_radius([_ban(BanKind.JURISDICTION, "CN")], [model])
    assert [h.model.key for h in hits] == [model.key]
