"""The segment × narrative matrix is precomputed when the store is written, and the app reads it.

The measure stage writes table ``exposure_matrix`` for the scheme it measures (in its transaction);
``queries.exposure_matrix`` serves those rows while no ingest / classify / segment run was recorded after
them, and computes the same numbers from the delivery rows or exposures otherwise.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bubblelens.measure import measure_store
from bubblelens.present import queries as Q
from bubblelens.present.synthetic import build_synthetic_store
from bubblelens.store import Store, hash_person_id

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"
COLS = ["segment_id", "label", "impressions", "ads"]


def _computed(con, scheme: str, task: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The matrix computed from the raw rows, bypassing the precomputed table."""
    orig = Q._precomputed
    Q._precomputed = lambda con, scheme: False  # type: ignore[assignment]
    try:
        return Q.exposure_matrix(con, scheme, task=task, include_suppressed=True)
    finally:
        Q._precomputed = orig  # type: ignore[assignment]


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The fixture panel, truth labels as scores and truth clusters as the ``interests`` scheme, measured."""
    from bubblelens.ingest import ingest_paths

    db = tmp_path_factory.mktemp("agg") / "fx.duckdb"
    truth = pd.read_csv(FIXTURES / "truth" / "messages.csv", dtype={"msg_id": str})
    panel = pd.read_csv(FIXTURES / "truth" / "panel.csv")
    with Store.open(db) as store:
        ingest_paths(store, [FIXTURES / "messages.csv", FIXTURES / "panel.csv", FIXTURES / "exposures.csv"])
        scores = pd.concat([pd.DataFrame({"message_id": truth["msg_id"], "task": task, "label": truth[task],
                                          "p": 1.0, "source": "given", "topk": None, "encoder_id": None,
                                          "run_id": "truth"}) for task in ("narrative", "camp")])
        mem = pd.DataFrame({"scheme": "interests",
                            "member_id": [hash_person_id(p, store.salt) for p in panel["panelist_id"]],
                            "segment_id": panel["cluster"].astype(str), "probability": 1.0, "fitted": True})
        seg = mem.groupby("segment_id").size().rename("size").reset_index().assign(
            scheme="interests", label=lambda d: d["segment_id"], impressions=None, parent=None,
            suppressed=False, stable=True, extra="{}", run_id="truth")
        with store.transaction():
            for name, df in (("scores", scores), ("segment_members", mem), ("segments", seg)):
                store.con.register("_d", df)
                store.con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _d")
                store.con.unregister("_d")
        res = measure_store(store, scheme="interests", n_boot=20, n_perm=0, seed=0)
    return db, res["run_id"]


def test_measure_writes_the_matrix_in_its_run(measured: tuple[Path, str]) -> None:
    db, run_id = measured
    with Store.open(db, read_only=True) as store:
        con = store.con
        rows = con.execute("SELECT DISTINCT scheme, run_id, task FROM exposure_matrix ORDER BY task").fetchall()
        assert rows == [("interests", run_id, "camp"), ("interests", run_id, "narrative")]
        # every exposure of a segment member to a scored message is counted once per task
        total = con.execute(
            """SELECT sum(e.count) FROM exposures e
               JOIN segment_members sm ON sm.scheme = 'interests' AND sm.member_id = e.audience_id
               WHERE e.message_id IN (SELECT message_id FROM scores WHERE task = 'narrative')""").fetchone()
        assert total is not None and total[0] > 0
        for task in ("narrative", "camp"):
            got = con.execute("SELECT sum(impressions), sum(impressions_lower), sum(impressions_upper) "
                              "FROM exposure_matrix WHERE task = ?", [task]).fetchone()
            assert got == (float(total[0]),) * 3  # exposures are exact counts: the bounds agree
        inputs = con.execute("SELECT inputs FROM runs WHERE run_id = ?", [run_id]).fetchone()
        assert inputs is not None and '"exposure_matrix_rows"' in inputs[0]


def test_app_reads_the_precomputed_rows_and_they_equal_the_computed_ones(measured: tuple[Path, str]) -> None:
    db, _ = measured
    with Store.open(db, read_only=True) as store:
        assert Q._precomputed(store.con, "interests")
        for task in ("narrative", "camp"):
            pre = Q.exposure_matrix(store.con, "interests", task=task, include_suppressed=True)
            assert len(pre) > 0
            pd.testing.assert_frame_equal(pre[COLS], _computed(store.con, "interests", task)[COLS])


def test_rows_older_than_a_later_stage_run_are_not_served(measured: tuple[Path, str], tmp_path: Path) -> None:
    db = tmp_path / "copy.duckdb"
    db.write_bytes(measured[0].read_bytes())
    with Store.open(db) as store:
        store.con.execute("UPDATE exposure_matrix SET impressions = impressions * 10")
        tampered = Q.exposure_matrix(store.con, "interests")
        truth = _computed(store.con, "interests", "narrative")
        truth = truth[truth["segment_id"].isin(tampered["segment_id"])].reset_index(drop=True)
        assert np.allclose(tampered["impressions"], 10 * truth["impressions"])  # served from the table
        earlier = datetime(2000, 1, 1)  # whatever clock a stage records, its run is a new input
        store.record_run("classify-again", "classify", status="ok", started_at=earlier, finished_at=earlier)
        assert not Q._precomputed(store.con, "interests")
        pd.testing.assert_frame_equal(Q.exposure_matrix(store.con, "interests")[COLS], truth[COLS])


def test_synthetic_store_precomputes_every_scheme_like_the_measure_stage(tmp_path: Path) -> None:
    db = tmp_path / "syn.duckdb"
    build_synthetic_store(db, n_ads=400, n_audiences=200, seed=1)
    with Store.open(db, read_only=True) as store:
        con = store.con
        schemes = [r[0] for r in con.execute("SELECT DISTINCT scheme FROM segments ORDER BY 1").fetchall()]
        assert schemes == ["cells", "cells:age", "interests"]
        for scheme in schemes:
            assert Q._precomputed(con, scheme)
            for task in ("narrative", "camp"):
                pd.testing.assert_frame_equal(Q.exposure_matrix(con, scheme, task=task, include_suppressed=True),
                                              _computed(con, scheme, task))
        # cells: lower ≤ point ≤ upper, and the point sums to Σ share × midpoint over the scheme's cells
        b = con.execute("""SELECT bool_and(impressions_lower <= impressions AND impressions <= impressions_upper),
                                  sum(impressions) FROM exposure_matrix
                           WHERE scheme = 'cells' AND task = 'narrative'""").fetchone()
        direct = con.execute(
            f"""SELECT sum(coalesce(d.count::DOUBLE, d.share * {Q.IMPRESSIONS_MID}))
                FROM deliveries d JOIN messages m USING (message_id)
                JOIN segment_members sm ON sm.scheme = 'cells' AND sm.member_id = {Q.CELL_KEY}
                WHERE d.message_id IN (SELECT message_id FROM scores WHERE task = 'narrative')""").fetchone()
        assert b is not None and direct is not None
        assert b[0] and b[1] == pytest.approx(direct[0], rel=1e-9)
