"""Measurement on the fixture corpus: the planted bubbles come out, the CLI speaks JSON, intervals cover.

Scores are written from the fixture truth with *calibrated* noisy probabilities (the classifier is tested
on its own): for a message of true label ``t`` the probabilities are drawn from ``Dirichlet(c·π + e_t)``,
``π`` the label frequencies. With that prior, ``P(true label = k | probabilities) = p_k`` exactly (the
posterior of a Dirichlet(c·π) draw after observing one label), so the bootstrap's label draws are honest.
The interest segments are the planted clusters (``truth/panel.csv``), written as scheme ``interests``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bubblelens.classify import load_codebook, write_camps
from bubblelens.cli import main
from bubblelens.measure import metrics as mt
from bubblelens.measure.bootstrap import ExposureData, bootstrap, intervals
from bubblelens.measure.pipeline import measure_store
from bubblelens.store import Store, hash_person_id

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"
CAMPS = ["nfp", "ensemble", "liot", "lr", "rn", "reconquete"]


def calibrated_probabilities(truth: list[str], labels: list[str], rng: np.random.Generator,
                             concentration: float = 0.6) -> np.ndarray:
    """Rows ``~ Dirichlet(c·π + e_t)``: calibrated by construction (see module docstring)."""
    col = {k: i for i, k in enumerate(labels)}
    t = np.array([col[x] for x in truth])
    pi = np.bincount(t, minlength=len(labels)) / len(t)
    alpha = concentration * np.maximum(pi, 1e-3)[None, :].repeat(len(t), 0)
    alpha[np.arange(len(t)), t] += 1.0
    g = rng.gamma(alpha)
    return g / g.sum(axis=1, keepdims=True)


def write_scores(store: Store, truth_messages: pd.DataFrame, *, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    # camps mostly come from the sponsor table (near-certain); narratives from text (uncertain)
    for task, colname, conc in (("narrative", "narrative", 0.6), ("camp", "camp", 0.02)):
        labels = sorted(truth_messages[colname].astype(str).unique())
        P = calibrated_probabilities(truth_messages[colname].astype(str).tolist(), labels, rng, conc)
        for mid, p in zip(truth_messages["msg_id"].astype(str), P, strict=True):
            order = np.argsort(-p)
            topk = [[labels[j], round(float(p[j]), 6)] for j in order if p[j] > 1e-6]
            rows.append((mid, task, topk[0][0], topk[0][1], "zero-shot", json.dumps(topk), "test", "score-test"))
    df = pd.DataFrame(rows, columns=["message_id", "task", "label", "p", "source", "topk", "encoder_id", "run_id"])
    with store.transaction():
        write_camps(store.con, load_codebook(), "score-test")  # camps are data: positions from the codebook
        store.con.execute("DELETE FROM scores")
        store.con.register("_s", df)
        store.con.execute("INSERT INTO scores SELECT * FROM _s")
        store.con.unregister("_s")


def write_truth_segments(store: Store, truth_panel: pd.DataFrame) -> None:
    salt = store.salt
    mem = pd.DataFrame({"scheme": "interests",
                        "member_id": [hash_person_id(p, salt) for p in truth_panel["panelist_id"]],
                        "segment_id": truth_panel["cluster"].astype(str), "probability": 1.0, "fitted": True})
    seg = (truth_panel.groupby("cluster").agg(label=("cluster_name", "first"), size=("panelist_id", "size"))
           .reset_index().rename(columns={"cluster": "segment_id"}))
    seg = seg.assign(scheme="interests", impressions=None, parent=None, suppressed=False, stable=True,
                     extra="{}", run_id="segment-test")
    seg = seg[["scheme", "segment_id", "label", "size", "impressions", "parent", "suppressed", "stable", "extra",
               "run_id"]]
    with store.transaction():
        for name, df in (("segments", seg), ("segment_members", mem)):
            store.con.execute(f"DELETE FROM {name} WHERE scheme = 'interests'")
            store.con.register("_d", df)
            store.con.execute(f"INSERT INTO {name} SELECT * FROM _d")
            store.con.unregister("_d")


@pytest.fixture(scope="module")
def fixture_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bubblelens.ingest import ingest_paths

    db = tmp_path_factory.mktemp("measure") / "fx.duckdb"
    with Store.open(db) as store:
        ingest_paths(store, [FIXTURES / "messages.csv", FIXTURES / "panel.csv", FIXTURES / "exposures.csv"])
        write_scores(store, pd.read_csv(FIXTURES / "truth" / "messages.csv", dtype={"msg_id": str}))
        write_truth_segments(store, pd.read_csv(FIXTURES / "truth" / "panel.csv"))
    return db


@pytest.fixture(scope="module")
def bubbles() -> dict:
    return json.loads((FIXTURES / "truth" / "bubbles.json").read_text(encoding="utf-8"))["clusters"]


@pytest.fixture(scope="module")
def interests_result(fixture_store: Path) -> dict:
    with Store.open(fixture_store) as store:
        return measure_store(store, scheme="interests", n_boot=200, n_perm=99, seed=1)


def test_planted_bubbles_come_out(interests_result: dict, bubbles: dict) -> None:
    """Isolated clusters' cross-cutting share is near 0; mixed ones are high, and near the planted value."""
    by_id = {s["segment_id"]: s for s in interests_result["segments"]}
    assert set(by_id) == set(bubbles)
    for cid, truth in bubbles.items():
        seg = by_id[cid]
        assert seg["home_lean"]["source"] == "declared"
        assert seg["home_lean"]["camp"] == truth["home_lean"]
        cc = seg["cross_cutting"]
        lo, hi = cc["ci"]
        if truth["kind"] == "isolated":
            assert cc["value"] < 0.15, (cid, cc)
        else:
            assert cc["value"] > 0.5, (cid, cc)
        assert lo <= cc["value"] <= hi
        assert abs(cc["value"] - truth["observed_cross_cutting"]) < 0.1, (cid, cc, truth)
        assert sum(seg["camp_share"].values()) == pytest.approx(1.0, abs=1e-5)
        for m in ("cross_cutting", "effective_narratives", "gini_simpson", "js_divergence"):
            lo, hi = seg[m]["ci"]
            assert lo <= seg[m]["value"] <= hi, (cid, m, seg[m])


def test_global_segregation_is_significant(interests_result: dict) -> None:
    g = interests_result["global"]
    for m in ("isolation", "theil_m", "echo_chamber"):
        assert g[m]["ci"][0] <= g[m]["value"] <= g[m]["ci"][1], (m, g[m])
    assert g["theil_m"]["p_value"] <= 0.02  # 99 permutations: the smallest p is 0.01
    assert 0 < g["theil_m"]["normalized"]["value"] <= 1
    assert g["echo_chamber"]["value"] > 0.5 and not g["echo_chamber"]["circular"]


def test_metric_tables_written_once_per_scheme(fixture_store: Path, interests_result: dict) -> None:
    with Store.open(fixture_store, read_only=True) as store:
        n = store.con.execute("SELECT count(DISTINCT segment_id) FROM metrics_segments "
                              "WHERE scheme = 'interests'").fetchone()[0]
        run = store.con.execute("SELECT stage, status FROM runs WHERE run_id = ?",
                                [interests_result["run_id"]]).fetchone()
        glob = dict(store.con.execute("SELECT metric, value FROM metrics_global WHERE scheme = 'interests'")
                    .fetchall())
    assert n == len(interests_result["segments"])
    assert run == ("measure", "ok")
    assert glob["isolation"] == pytest.approx(interests_result["global"]["isolation"]["value"], abs=1e-6)


def test_same_seed_same_numbers(fixture_store: Path, interests_result: dict) -> None:
    with Store.open(fixture_store) as store:
        again = measure_store(store, scheme="interests", n_boot=200, n_perm=99, seed=1)
    assert [s["cross_cutting"] for s in again["segments"]] == [s["cross_cutting"] for s in interests_result["segments"]]


def test_cli_cells_json_privacy_floor_and_circular_flag(fixture_store: Path, tmp_path: Path) -> None:
    """Cells by region: labels are region names; segments under the floor never appear; lean circular."""
    out = tmp_path / "m.parquet"
    r = CliRunner().invoke(main, ["measure", "--db", str(fixture_store), "--scheme", "cells", "--by", "region",
                                  "--json", "--n-boot", "50", "--n-perm", "19", "--impressions-min", "1.1e6",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    with Store.open(fixture_store, read_only=True) as store:
        regions = {x[0] for x in store.con.execute("SELECT DISTINCT region FROM deliveries").fetchall()}
    labels = [s["segment"] for s in res["segments"]]
    assert labels and set(labels) <= regions
    assert all(s["impressions"] >= 1.1e6 for s in res["segments"])
    assert res["suppressed_segments"] >= 1  # Corse receives about 0.5 M impressions
    assert "Corse" not in labels
    assert len(labels) + res["suppressed_segments"] == len(regions - {None})
    assert all(s["home_lean"]["circular"] for s in res["segments"])
    assert pd.read_parquet(out)["segment"].isin(labels).all()


def test_cli_external_lean(fixture_store: Path, tmp_path: Path) -> None:
    lean = tmp_path / "lean.csv"
    lean.write_text("segment,nfp,rn\nBretagne,0.6,0.4\nÎle-de-France,0.3,0.7\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["measure", "--db", str(fixture_store), "--scheme", "cells", "--json",
                                  "--n-boot", "20", "--n-perm", "0", "--lean", str(lean)])
    assert r.exit_code == 0, r.output
    segs = {s["segment"]: s for s in json.loads(r.stdout)["segments"]}
    assert segs["Bretagne"]["home_lean"] == {"camp": "nfp", "value": pytest.approx(0.6 * -0.7 + 0.4 * 0.85, abs=1e-4),
                                             "source": "external", "circular": False}
    share = segs["Bretagne"]["camp_share"]
    at_point = 1 - share["nfp"] / (1 - share.get("unassigned", 0))  # CC of the point matrix, camps assigned
    cc = segs["Bretagne"]["cross_cutting"]
    assert cc["ci"][0] <= at_point <= cc["ci"][1]
    # the value is the bootstrap median (docs/metrics.md): label draws from the probabilities move it a few
    # points away from the hard-label point matrix, and 20 replicates add noise of their own
    assert cc["value"] == pytest.approx(at_point, abs=0.08)


# -- coverage ---------------------------------------------------------------------------------------
def _generator():
    spec = importlib.util.spec_from_file_location("fixture_generate_cov", FIXTURES / "generate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def exposure_data_from_truth(root: Path, rng: np.random.Generator, narrative_concentration: float = 0.2) -> tuple[ExposureData, np.ndarray, np.ndarray,
                                                                             np.ndarray]:
    """Arrays straight from a generated corpus: exposures by planted cluster, calibrated label probabilities.

    Returns the data, the true narrative and camp matrices (from the true labels), and each segment's home
    camp index (most common declared lean of its members).
    """
    tm = pd.read_csv(root / "truth" / "messages.csv", dtype={"msg_id": str})
    tp = pd.read_csv(root / "truth" / "panel.csv")
    panel = pd.read_csv(root / "panel.csv")
    ex = pd.read_csv(root / "exposures.csv", dtype={"msg_id": str})
    segs = sorted(tp["cluster"].unique())
    cluster = dict(zip(tp["panelist_id"], tp["cluster"], strict=True))
    mids = pd.Index(tm["msg_id"])
    W = np.zeros((len(mids), len(segs)))
    np.add.at(W, (mids.get_indexer(ex["msg_id"]), [segs.index(cluster[p]) for p in ex["panelist_id"]]),
              ex["n_seen"].to_numpy(float))
    narrs = sorted(tm["narrative"].unique())
    Pn = calibrated_probabilities(tm["narrative"].tolist(), narrs, rng, narrative_concentration)
    Pc = calibrated_probabilities(tm["camp"].tolist(), CAMPS, rng, 0.02)  # camps from sponsors: near-certain
    m = len(mids)
    data = ExposureData(weights=W, lower=np.ones(m), upper=np.ones(m),
                        sponsor=pd.factorize(tm["sponsor"])[0].astype(np.int64),
                        narr_idx=np.tile(np.arange(len(narrs)), (m, 1)), narr_p=Pn,
                        camp_idx=np.tile(np.arange(len(CAMPS)), (m, 1)), camp_p=Pc, segments=segs,
                        narratives=narrs, camps=CAMPS)
    onehot_n = (tm["narrative"].to_numpy()[:, None] == np.array(narrs)[None, :]).astype(float)
    onehot_c = (tm["camp"].to_numpy()[:, None] == np.array(CAMPS)[None, :]).astype(float)
    lean = panel.assign(cluster=panel["panelist_id"].map(cluster)).dropna(subset=["declared_lean"])
    home = np.array([CAMPS.index(lean.loc[lean["cluster"] == s, "declared_lean"].value_counts().index[0])
                     for s in segs])
    return data, W.T @ onehot_n, W.T @ onehot_c, home


@pytest.mark.slow
def test_intervals_cover_truth_over_regenerated_fixtures(tmp_path: Path) -> None:
    """95 % intervals cover the values from the true labels in ≥ 90 % of 50 regenerated fixture seeds.

    For speed, matrices are built directly from each generated corpus's truth (exposure logs by planted
    cluster) and calibrated noisy probabilities, instead of running the encoder 50 times. Checked per seed:
    every segment's cross-cutting share and effective number of narratives, and the Theil M index, with
    percentile intervals (the default). Camps are near-certain (they come from the sponsor table in
    practice); narratives are uncertain (mean probability of the true narrative ≈ 0.83).
    """
    gen = _generator()
    covered = []
    for seed in range(50):
        root = tmp_path / f"s{seed}"
        gen.generate(root, seed=100 + seed)
        data, Nn_true, Nc_true, home = exposure_data_from_truth(root, np.random.default_rng(seed))

        def stat(nn: np.ndarray, nc: np.ndarray, home: np.ndarray = home) -> dict[str, np.ndarray]:
            return {"cc": mt.cross_cutting_share(mt.shares(nc), np.arange(len(CAMPS)), home),
                    "eff": mt.effective_number(mt.shares(nn)), "m": mt.theil_m(nn)}

        truth = {k: np.asarray(v)[0] for k, v in stat(Nn_true[None], Nc_true[None]).items()}
        from bubblelens.measure.bootstrap import expected_matrices

        nn0, nc0 = expected_matrices(data)
        point = {k: np.asarray(v)[0] for k, v in stat(nn0[None], nc0[None]).items()}
        boot = bootstrap(data, stat, n_boot=300, seed=seed)
        for k in truth:
            lo, hi, method = intervals(point[k], boot[k])
            assert method == "percentile"
            covered.extend(np.ravel((lo - 1e-9 <= truth[k]) & (truth[k] <= hi + 1e-9)).tolist())
    rate = float(np.mean(covered))
    print(f"coverage of 95% intervals over 50 seeds: {rate:.3f} ({len(covered)} intervals)")
    assert rate >= 0.90


def test_funnel_on_meta_ads_with_declared_targeting(tmp_path: Path) -> None:
    """Meta ads with DSA targeting: per age band, supply ≥ targeted, and delivered ads are counted."""
    from bubblelens.ingest import ingest_paths

    with Store.open(tmp_path / "meta.duckdb") as store:
        ingest_paths(store, [FIXTURES / "meta_ads.jsonl"])
        ids = {r[0] for r in store.con.execute("SELECT message_id FROM messages").fetchall()}
        truth = pd.read_csv(FIXTURES / "truth" / "messages.csv", dtype={"msg_id": str})
        write_scores(store, truth[truth["msg_id"].isin(ids)])
        res = measure_store(store, scheme="cells", by="age", n_boot=20, n_perm=0, lean="circular")
        targeting = store.con.execute("SELECT count(*) FROM targeting WHERE dimension = 'age'").fetchall()[0][0]
    assert targeting > 0
    rows = res["funnel"]
    assert rows and {r["segment"] for r in rows} == {s["segment"] for s in res["segments"]}
    n_ads = {s["segment"]: s["n_ads"] for s in res["segments"]}
    for r in rows:
        assert r["supply"]["value"] >= r["targeted"]["value"] > 0
        assert r["delivered"]["value"] == n_ads[r["segment"]]


def test_every_step_is_timed_and_recorded(fixture_store: Path, interests_result: dict) -> None:
    """The run's timings name every step; the steps add up to the total; the run record holds them."""
    t = interests_result["timings"]
    steps = ["load_s", "prepare_s", "bootstrap_s", "intervals_s", "permutation_s", "results_s", "funnel_s",
             "write_s"]
    assert set(t) == {*steps, "total_s"} and list(t)[-1] == "total_s"
    assert all(t[k] >= 0 for k in t)
    assert sum(t[k] for k in steps) == pytest.approx(t["total_s"], abs=0.001 * len(steps))
    with Store.open(fixture_store, read_only=True) as store:
        rec = json.loads(store.con.execute("SELECT timings FROM runs WHERE run_id = ?",
                                           [interests_result["run_id"]]).fetchone()[0])
    assert set(rec) == set(t)


@pytest.mark.parametrize("by", ["region", "age_gender", "gender"])
def test_cell_weights_are_the_delivery_rows_of_each_cell(tmp_path: Path, by: str) -> None:
    """``D[m, s]``: the share (or count) of message m's delivery rows whose cell on the scheme's dimensions
    is s, one breakdown kind per message (the first of KIND_PREFERENCE it has), as the roll-up counts."""
    import scipy.sparse as sp

    from bubblelens.ingest import ingest_paths
    from bubblelens.measure.matrices import load_exposure_data
    from bubblelens.segment import segment_store
    from bubblelens.segment.cells import KIND_PREFERENCE, cell_key, parse_dims

    dims = list(parse_dims(by) or ())
    with Store.open(tmp_path / "meta.duckdb") as store:
        ingest_paths(store, [FIXTURES / "meta_ads.jsonl"])
        ids = {r[0] for r in store.con.execute("SELECT message_id FROM messages").fetchall()}
        truth = pd.read_csv(FIXTURES / "truth" / "messages.csv", dtype={"msg_id": str})
        write_scores(store, truth[truth["msg_id"].isin(ids)])
        segment_store(store, scheme="cells", by=by)
        data, segs, _ = load_exposure_data(store, scheme="cells", by=by, impressions_min=0)
        d = store.con.execute("SELECT * FROM deliveries").df()
    d = d.dropna(subset=dims)
    d = d[(d[dims].astype(str) != "").all(axis=1)]
    rank = d["kind"].map(lambda k: KIND_PREFERENCE.index(k) if k in KIND_PREFERENCE else len(KIND_PREFERENCE))
    d = d[rank == rank.groupby(d["message_id"]).transform("min")]
    d = d.assign(segment_id=[cell_key(r, dims) for r in d[dims].to_dict("records")])
    d = d[d["segment_id"].isin(segs.ids) & d["message_id"].isin(data.message_ids)]
    val = d["share"].astype("float64").where(d["share"].notna(), d["count"].astype("float64"))
    want = np.zeros((len(data.message_ids), len(segs.ids)))
    np.add.at(want, (pd.Index(data.message_ids).get_indexer(d["message_id"]),
                     pd.Index(segs.ids).get_indexer(d["segment_id"])), val.fillna(0).to_numpy())
    got = data.weights.toarray() if sp.issparse(data.weights) else data.weights
    assert len(d) > 0 and len(segs.ids) > 1
    np.testing.assert_allclose(got, want, rtol=1e-12)
