"""Which recorded models need a re-scan (verifier.service.rescans.rescan_need), one case each,
without a database: the newest scans are built as `scanner_versions` reads them."""

from __future__ import annotations

import pytest
from packaging.version import Version

from verifier.service.model import RescanCause
from verifier.service.rescans import fingerprinted_now, rescan_need
from verifier.store.service_records import NewestScan

RUNNING = Version("2.0")
CURRENT = 5
BASE = "zeta/base@" + "a" * 40
OTHER = "zeta/other@" + "b" * 40


def _newest(
    *,
    tool_version: str = "2.0",
    complete: bool = True,
    printed: int | None = CURRENT,
    stale: tuple[str, ...] = (BASE,),
) -> NewestScan:
    return NewestScan(
        scan_id="s",
        tool_version=tool_version,
        complete=complete,
        fingerprint_version=printed,
        older_version_bases=stale,
    )


def _need(newest: NewestScan, fingerprinted: frozenset[str]) -> tuple[RescanCause, ...]:
    return rescan_need(newest, RUNNING, fingerprinted=fingerprinted, fingerprint_version=CURRENT)


@pytest.mark.parametrize(
    ("newest", "fingerprinted", "causes"),
    [
        # The base it could not compare has a fingerprint of this version now.
        (_newest(), frozenset({BASE}), (RescanCause.LINEAGE,)),
        # Not yet: the base is still fingerprinted by an older version only.
        (_newest(), frozenset(), ()),
        (_newest(), frozenset({OTHER}), ()),
        # Any base fingerprinted again is enough (another may stay held).
        (_newest(stale=(OTHER, BASE)), frozenset({BASE}), (RescanCause.LINEAGE,)),
        # Labels are compared without case (Hub repo ids are).
        (_newest(stale=(BASE.replace("zeta", "Zeta"),)), frozenset({BASE}), (RescanCause.LINEAGE,)),
        # It could compare every base.
        (_newest(stale=()), frozenset({BASE}), ()),
        # Its own fingerprint is older: re-scanned for that (and so compared again).
        (_newest(printed=CURRENT - 1), frozenset({BASE}), (RescanCause.FINGERPRINT,)),
        # Newer (a newer server's during a rolling upgrade), or none: left alone.
        (_newest(printed=CURRENT + 1), frozenset({BASE}), ()),
        (_newest(printed=None), frozenset({BASE}), ()),
        # An incomplete scan is not re-scanned for its lineage.
        (_newest(complete=False), frozenset({BASE}), ()),
        # A scan by a newer verifier is left alone; one by an older needs both.
        (_newest(tool_version="3.0"), frozenset({BASE}), ()),
        (
            _newest(tool_version="1.0"),
            frozenset({BASE}),
            (RescanCause.SCANNER, RescanCause.LINEAGE),
        ),
        (_newest(tool_version="not a version"), frozenset(), (RescanCause.SCANNER,)),
    ],
)
def test_rescan_need(
    newest: NewestScan, fingerprinted: frozenset[str], causes: tuple[RescanCause, ...]
) -> None:
    assert _need(newest, fingerprinted) == causes


def test_the_models_fingerprinted_now_are_those_whose_newest_scan_is_complete_and_current() -> None:
    scans = {
        f"hf://{BASE.replace('zeta', 'Zeta')}": _newest(stale=()),
        "hf://zeta/older@" + "c" * 40: _newest(printed=CURRENT - 1),
        "hf://zeta/newer@" + "d" * 40: _newest(printed=CURRENT + 1),
        "hf://zeta/none@" + "e" * 40: _newest(printed=None),
        f"hf://{OTHER}": _newest(complete=False),
    }
    assert fingerprinted_now(scans, fingerprint_version=CURRENT) == frozenset({BASE})


def test_a_rescan_that_compared_the_base_needs_no_other() -> None:
    # The re-scan compares the base and names only those it still could not compare: asked
    # again only once another of them is fingerprinted again, never for the same one.
    before = _newest(stale=(BASE, OTHER))
    after = _newest(stale=(OTHER,))
    assert _need(before, frozenset({BASE})) == (RescanCause.LINEAGE,)
    assert _need(after, frozenset({BASE})) == ()
    assert _need(after, frozenset({BASE, OTHER})) == (RescanCause.LINEAGE,)
