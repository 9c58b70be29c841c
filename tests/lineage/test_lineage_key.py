"""The store's lineage key: one per database, made once, and the only key its references share."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
import torch

from benchmarks import lineage_models as lm
from tests.lineage.conftest import ARCH
from verifier import pipeline
from verifier.lineage.fingerprint import LineageKey
from verifier.policy import default_policy_path, load_policy
from verifier.store import Store


def test_one_key_per_database_made_once_and_kept(database_url: str, tmp_path: Path) -> None:
    with Store.open(database_url) as first, Store.open(database_url) as second:
        key = first.lineage_key()
        assert second.lineage_key().key_id == key.key_id
        assert first.lineage_key() is key  # read once per store
    with Store.open(database_url) as again:
        assert again.lineage_key().secret == key.secret
    with Store.open(f"sqlite:///{tmp_path / 'other.db'}") as other:
        assert other.lineage_key().key_id != key.key_id


def test_fingerprints_of_another_key_are_not_references(database_url: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    folder = lm.save(lm.base(ARCH, seed=3), tmp_path / "model")
    policy = load_policy(default_policy_path())
    with Store.open(database_url) as store:
        report = pipeline.run_scan(str(folder), policy=policy, recorder=store)
        assert report.verified_lineage is not None
        assert report.verified_lineage.fingerprint is not None
        assert len(store.lineage_references(ARCH.hidden).references) == 1
    # As if the row had been copied from another store: its key is not this one's.
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE lineage_keys SET secret = :secret"),
            {"secret": LineageKey.generate().secret},
        )
    engine.dispose()
    with Store.open(database_url) as store:
        assert store.lineage_references(ARCH.hidden).references == ()
