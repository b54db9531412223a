"""The EP 2024 targeting table (one row per page × criterion) is never collapsed to the last criterion of
each page and reported as kept: detected, it is read as a targeting table (every criterion kept); forced
through the generic table reader as audiences, it is refused with its reason."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bubblelens.ingest import ingest_paths
from bubblelens.store import Store


def test_a_long_format_targeting_table_is_not_collapsed(shared_data: Path, tmp_path: Path) -> None:
    path = next(iter(sorted((shared_data / "meta_targeting_ep2024").glob("*.csv"))))
    n_rows = len(pd.read_csv(path, dtype=str))
    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_paths(store, [path], kind="audiences", audience_type="page", map_pairs=["id=page_id"])
        assert store.stats()["audiences"] == 0
        assert store.con.execute("SELECT count(*) FROM targeting_criteria").fetchone()[0] == n_rows
    with Store.open(tmp_path / "t.duckdb") as store:
        f = ingest_paths(store, [path], format="table", kind="audiences", audience_type="page",
                         map_pairs=["id=page_id"]).files[0]
        assert f.error is not None and "long-format" in f.error and "--format targeting" in f.error
        assert store.stats()["audiences"] == 0
