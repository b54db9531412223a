"""The EP 2024 targeting table (one row per page × criterion) read as audiences is refused with its
reason, never collapsed to the last criterion of each page and reported as kept."""

from __future__ import annotations

from pathlib import Path

from bubblelens.ingest import ingest_paths
from bubblelens.store import Store


def test_a_long_format_targeting_table_is_not_collapsed(shared_data: Path, tmp_path: Path) -> None:
    path = next(iter(sorted((shared_data / "meta_targeting_ep2024").glob("*.csv"))))
    with Store.open(tmp_path / "s.duckdb") as store:
        f = ingest_paths(store, [path], kind="audiences", audience_type="page", map_pairs=["id=page_id"]).files[0]
        assert f.error is not None and "long-format" in f.error and "--format targeting" in f.error
        assert store.stats()["audiences"] == 0
