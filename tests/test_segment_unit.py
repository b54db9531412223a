"""Segments without UMAP: c-TF-IDF, the merge tree, stability matching, the privacy floor, cells,
declared groups, promotion into a codebook, and the CLI on the schemes that need no model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.cluster.hierarchy import linkage

from bubblelens.classify.codebook import DEFAULT_CODEBOOK, load_codebook
from bubblelens.cli import main
from bubblelens.errors import SegmentError
from bubblelens.segment import (
    OTHER,
    PrivacyFloor,
    apply_floor,
    best_jaccard,
    cell_key,
    class_tfidf,
    declared_groups,
    default_min_cluster_size,
    delivery_cells,
    promote,
    rollup,
    segment_store,
    top_terms,
)
from bubblelens.segment.cluster import weighted_ward_linkage
from bubblelens.segment.pipeline import clean_interest_text, label_from_terms
from bubblelens.store import Store

# -- c-TF-IDF ---------------------------------------------------------------------------------------


def test_ctfidf_weight_follows_the_formula() -> None:
    docs = ["chasse pêche chasse", "chasse", "théâtre lecture", "lecture musées"]
    classes = ["rural", "rural", "culture", "culture"]
    order, vocab, W = class_tfidf(docs, classes, ngram_range=(1, 1))
    assert order == ["culture", "rural"]
    # rural: chasse ×3, pêche ×1 (4 words); culture: théâtre, lecture ×2, musées (4 words); A = 4
    j = vocab.index("chasse")
    assert W[order.index("rural"), j] == pytest.approx(3 / 4 * np.log1p(4 / 3))
    j = vocab.index("lecture")
    assert W[order.index("culture"), j] == pytest.approx(2 / 4 * np.log1p(4 / 2))
    assert W[order.index("culture"), vocab.index("chasse")] == 0


def test_top_terms_skip_french_and_english_stop_words_and_excluded_classes() -> None:
    docs = ["les animaux dans les cages de l'élevage", "the animals and the cages",
            "les écrans et les enfants", "children and their screens", "le la les"]
    classes = ["a", "a", "b", "b", "outlier"]
    terms = top_terms(docs, classes, n=5, ngram_range=(1, 1), exclude=("outlier",))
    assert set(terms) == {"a", "b"}
    words_a = [t for t, _ in terms["a"]]
    assert "animaux" in words_a and "cages" in words_a
    assert not {"les", "the", "and", "de", "dans"} & set(words_a)
    assert "écrans" in [t for t, _ in terms["b"]]


def test_label_takes_distinct_top_terms() -> None:
    terms = [("maltraitance animale", 0.9), ("animale", 0.8), ("élevage", 0.7), ("cage", 0.6), ("zoo", 0.5),
             ("x", 0.1)]
    assert label_from_terms(terms, n=4) == "maltraitance animale, élevage, cage, zoo"


def test_targeting_spec_boilerplate_is_removed_before_embedding() -> None:
    spec = "Interests: Black history or Malcolm X And Must Also Match: Behaviors: African American (US)"
    assert clean_interest_text(spec) == "Black history or Malcolm X African American (US)"


# -- merge tree ---------------------------------------------------------------------------------------


def test_weighted_ward_equals_scipy_ward_for_single_points() -> None:
    rng = np.random.default_rng(3)
    P = rng.normal(size=(12, 4))
    Z = weighted_ward_linkage(P, np.ones(len(P)))
    ref = linkage(P, method="ward")
    np.testing.assert_allclose(Z[:, 2], ref[:, 2], rtol=1e-9)
    np.testing.assert_array_equal(Z[:, 3], ref[:, 3])


def test_weighted_ward_absorbs_a_small_cluster_before_merging_two_large_ones() -> None:
    # two large clusters 1.0 apart, a small one 0.6 from the first: Ward merges the small one first
    C = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.6]])
    Z = weighted_ward_linkage(C, np.array([300, 300, 10]))
    assert {int(Z[0, 0]), int(Z[0, 1])} == {0, 2}


def test_default_min_cluster_size_is_a_fortieth_within_bounds() -> None:
    assert default_min_cluster_size(100) == 10
    assert default_min_cluster_size(800) == 20
    assert default_min_cluster_size(1_000_000) == 100


# -- stability ----------------------------------------------------------------------------------------


def test_best_jaccard_matches_each_reference_segment() -> None:
    ref = np.array([0, 0, 0, 0, 1, 1, 1, 1, -1])
    run = np.array([5, 5, 5, 7, 7, 7, 7, 7, 5])
    j = best_jaccard(ref, run)
    assert j[0] == pytest.approx(3 / 5)       # {0,1,2,3} vs {0,1,2,8}: 3 shared, 5 in the union
    assert j[1] == pytest.approx(4 / 5)       # {4,5,6,7} vs {3,...,7}


# -- privacy floor -----------------------------------------------------------------------------------


def test_floor_merges_small_segments_into_other_and_keeps_outliers() -> None:
    ids = pd.Series(["a"] * 12 + ["b"] * 9 + ["outlier"] * 3 + ["c"] * 10)
    out, merged = apply_floor(ids, floor=PrivacyFloor(k_min=10))
    assert merged == ["b"]
    assert (out == OTHER).sum() == 9
    assert (out == "outlier").sum() == 3


def test_floor_on_impressions() -> None:
    ids = pd.Series(["x", "y"])
    out, merged = apply_floor(ids, floor=PrivacyFloor(k_min=0, k_impressions=100),
                              impressions={"x": 99.0, "y": 100.0})
    assert merged == ["x"] and list(out) == [OTHER, "y"]


# -- cells -------------------------------------------------------------------------------------------


def _deliveries() -> tuple[pd.DataFrame, pd.DataFrame]:
    d = pd.DataFrame([
        # message m1: age × gender shares and a region breakdown
        ("m1", "demographic", "18-24", "female", None, None, 0.6, None),
        ("m1", "demographic", "18-24", "male", None, None, 0.4, None),
        ("m1", "region", None, None, "Bretagne", None, 1.0, None),
        # message m2: shares and a reach count breakdown over the same dimensions
        ("m2", "demographic", "18-24", "female", None, None, 1.0, None),
        ("m2", "reach", "18-24", "female", None, "FR", None, 700),
    ], columns=["message_id", "kind", "age", "gender", "region", "country", "share", "count"])
    m = pd.DataFrame({"message_id": ["m1", "m2"], "impressions_lower": [1000, 5000],
                      "impressions_upper": [1999, None]})
    return d, m


def test_cell_key_names_filled_dimensions() -> None:
    assert cell_key({"age": "18-24", "gender": None, "region": "Bretagne", "country": ""}) == \
        "age=18-24|region=Bretagne"


def test_cells_impressions_from_shares_and_counts() -> None:
    d, m = _deliveries()
    cells = delivery_cells(d, m)
    m1 = cells[(cells.message_id == "m1") & (cells.gender == "female")]
    assert float(m1["impressions"].iloc[0]) == pytest.approx(0.6 * (1000 + 1999) / 2)
    # the top bucket has no upper bound: the lower bound is used
    m2 = cells[(cells.message_id == "m2") & (cells.kind == "demographic")]
    assert float(m2["impressions"].iloc[0]) == pytest.approx(5000)


def test_rollup_uses_one_breakdown_per_message() -> None:
    d, m = _deliveries()
    r = rollup(delivery_cells(d, m), ("age",))
    imp = r.groupby("segment_id")["impressions"].first()
    # m1: both shares (1499.5); m2: the reach count (700), not the share breakdown as well
    assert imp["age=18-24"] == pytest.approx(1499.5 + 700)
    assert set(r["member_id"]) == {"age=18-24|gender=female", "age=18-24|gender=male",
                                   "age=18-24|gender=female|country=FR"}


def test_cells_scheme_in_store_with_floor(tmp_store: Store) -> None:
    d, _ = _deliveries()
    tmp_store.con.execute("INSERT INTO messages (message_id, impressions_lower, impressions_upper) "
                          "VALUES ('m1', 1000, 1999), ('m2', 5000, NULL)")
    tmp_store.con.register("d", d)
    tmp_store.con.execute("INSERT INTO deliveries SELECT * FROM d")
    run = segment_store(tmp_store, scheme="cells", k_impressions=1000)
    seg = tmp_store.con.execute("SELECT scheme, segment_id, impressions, suppressed FROM segments").df()
    assert set(seg.scheme) >= {"cells", "cells:age", "cells:gender", "cells:region", "cells:age_gender"}
    g = seg[seg.scheme == "cells:gender"].set_index("segment_id")
    # male: 0.4 × 1499.5 = 599.8 < 1000 impressions → merged into other
    assert "gender=male" not in g.index and bool(g.loc[OTHER, "suppressed"])
    assert g.loc["gender=female", "impressions"] == pytest.approx(0.6 * 1499.5 + 700)
    row = tmp_store.con.execute("SELECT stage, status FROM runs WHERE run_id = ?", [run]).fetchone()
    assert row == ("segment", "ok")


# -- declared ----------------------------------------------------------------------------------------


def _panel_store(store: Store, n_small: int = 4) -> None:
    rows = [(f"p_{i:04d}", "age_band", "25-34") for i in range(15)]
    rows += [(f"p_{100 + i:04d}", "age_band", "65+") for i in range(n_small)]
    rows += [(f"p_{200 + i:04d}", "region", "Bretagne") for i in range(3)]
    store.con.executemany("INSERT INTO audience_attrs VALUES (?, ?, ?)", rows)


def test_declared_groups_need_a_known_attribute() -> None:
    attrs = pd.DataFrame({"audience_id": ["a"], "name": ["age_band"], "value": ["25-34"]})
    assert declared_groups(attrs, "age_band")["segment_id"].tolist() == ["25-34"]
    with pytest.raises(SegmentError, match="known attributes"):
        declared_groups(attrs, "lean")


def test_declared_cli_writes_parquet_with_floor(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with Store.open(db) as store:
        _panel_store(store)
    out = tmp_path / "members.parquet"
    res = CliRunner().invoke(main, ["segment", "--db", str(db), "--scheme", "declared", "--by", "age_band",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out)
    assert list(df.columns) == ["audience_id", "segment_id", "segment_label", "probability", "fitted"]
    assert (df.segment_id == "25-34").sum() == 15
    assert (df.segment_id == OTHER).sum() == 4            # 65+ has 4 people < k = 10
    assert "65+" not in set(df.segment_label.dropna())   # no output describes the small group
    with Store.open(db, read_only=True) as store:
        seg = store.con.execute("SELECT segment_id FROM segments WHERE scheme = 'declared:age_band'").df()
    assert set(seg.segment_id) == {"25-34", OTHER}


def test_segment_cli_errors_are_one_sentence(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    Store.open(db).close()
    res = CliRunner().invoke(main, ["segment", "--db", str(db), "--scheme", "declared", "--by", "lean"])
    assert res.exit_code == 2 and res.output.startswith("error: no audience attributes")


# -- promotion ---------------------------------------------------------------------------------------


def test_promote_appends_a_narrative_the_classifier_can_load(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with Store.open(db) as store:
        store.con.execute(
            "INSERT INTO discovered VALUES (?, ?, ?, ?, ?)",
            ["d02", json.dumps(["animaux", "élevage", "cage"]),
             json.dumps([{"message_id": "1", "text": "Fin des cages pour les poules."},
                         {"message_id": "2", "text": "Stop à la maltraitance animale."}]), 35, "r"])
    cb = tmp_path / "codebook.yaml"
    cb.write_text(DEFAULT_CODEBOOK.read_text(encoding="utf-8"), encoding="utf-8")
    before = load_codebook(cb).narrative_ids
    res = CliRunner().invoke(main, ["narratives", "promote", "d02", "--name", "Bien-être animal",
                                    "--db", str(db), "--codebook", str(cb)])
    assert res.exit_code == 0, res.output
    loaded = load_codebook(cb)
    assert loaded.narrative_ids == [*before, "bien_etre_animal"]
    new = loaded.narratives[-1]
    assert new.labels == {"fr": "Bien-être animal", "en": "Bien-être animal"}
    assert "animaux, élevage, cage" in new.description["fr"]
    assert list(new.examples) == ["Fin des cages pour les poules.", "Stop à la maltraitance animale."]
    with Store.open(db, read_only=True) as store, pytest.raises(SegmentError, match="no discovered"):
        promote(cb, "d99", name="x", store=store)
