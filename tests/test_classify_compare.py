"""Side-by-side evaluation on a labelled set (``bubblelens evaluate INPUT…``): figures, grouped folds and
intervals over groups, the labelled-set reader that loses no row silently, and the command on the fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bubblelens.classify.compare import (
    bootstrap_groups,
    comparison_table,
    format_table,
    outcome,
    pooled_labels,
    supervised_runs,
)
from bubblelens.classify.labelled import labelled_set, read_label_map
from bubblelens.cli import main
from bubblelens.errors import BubbleLensError

UN = "unassigned"


# --- figures --------------------------------------------------------------------------------------

def test_abstention_is_a_miss_for_accuracy_but_not_for_precision() -> None:
    y = np.array(["a", "a", "b", "b"], dtype=object)
    pred = np.array(["a", UN, "b", "a"], dtype=object)
    f = outcome(y, pred, ["a", "b"])
    assert f["accuracy"] == 0.5 and f["coverage"] == 0.75 and f["precision"] == pytest.approx(2 / 3)
    assert np.isnan(outcome(y, np.array([UN] * 4, dtype=object), ["a", "b"])["precision"])


def test_bootstrap_draws_whole_groups() -> None:
    groups = np.array(["g1"] * 3 + ["g2"] * 1 + ["g3"] * 5)
    for rows in bootstrap_groups(groups, 50, seed=1):
        drawn = pd.Series(groups[rows]).value_counts()
        sizes = {"g1": 3, "g2": 1, "g3": 5}
        assert all(n % sizes[g] == 0 for g, n in drawn.items())  # a group comes with all its rows
        assert sum(n // sizes[g] for g, n in drawn.items()) == 3  # as many groups as the set has


def test_table_gives_the_median_over_seeds_and_an_interval_around_it() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice(np.array(["a", "b"], dtype=object), 400)
    g = np.repeat(np.arange(40), 10)
    noisy = [np.where(rng.random(400) < p, y, np.where(y == "a", "b", "a")) for p in (0.6, 0.7, 0.9)]
    rows = {r["method"]: r for r in comparison_table(y, g, {"perfect": [y.copy()], "noisy": noisy}, n_boot=100)}
    assert rows["perfect"]["accuracy"] == [1.0, 1.0, 1.0]
    med, lo, hi = rows["noisy"]["accuracy"]
    assert rows["noisy"]["seeds"] == 3
    assert med == pytest.approx(float(np.median([(p == y).mean() for p in noisy])), abs=1e-3)
    assert lo < med < hi
    text = format_table("t", list(rows.values()))
    assert "perfect" in text and "1.000 [1.000, 1.000]" in text


def test_pooling_gives_each_member_its_groups_camp() -> None:
    classes = np.array(["a", "b"], dtype=object)
    P = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.2, 0.8]])
    out = pooled_labels(P, classes, np.ones(4, dtype=bool), ["s", "s", "s", "t"])
    assert list(out[:3]) == ["a", "a", "a"] and out[3] == "b"


def test_grouped_folds_do_not_reward_learning_the_author() -> None:
    """Labels depend only on who writes, through a token private to each author: a head can learn the
    author, not the label. Grouped folds never hold an author's messages on both sides, so it scores chance."""
    rng = np.random.default_rng(0)
    authors = np.repeat(np.arange(60), 8)
    label_of = rng.choice(np.array(["x", "y"], dtype=object), 60)
    y = label_of[authors]
    texts = [f"signature{a} common words here" for a in authors]
    X = np.eye(60)[authors] + 0.01 * rng.standard_normal((len(authors), 60))
    runs = supervised_runs(texts, y, authors, X, seeds=1, pool=False)
    for name, preds in runs.items():
        assert (preds[0] == y).mean() < 0.7, name
    shuffled = supervised_runs(texts, y, np.arange(len(y)), X, seeds=1, pool=False)  # one group per message
    assert (shuffled["hybrid"][0] == y).mean() > 0.95  # the optimism grouped folds remove


# --- the labelled set -----------------------------------------------------------------------------

def test_labelled_set_counts_every_row_it_leaves_out(tmp_path: Path) -> None:
    msgs = pd.DataFrame({"body": ["one", "two", "", "four", "five", "six <U+0001F1EB><U+0001F1F7>"],
                         "party": ["LREM", "NI", "LR", None, "LFI", "LFI"],
                         "who": ["m1", "m2", "m3", "m4", None, "m6"]})
    (tmp_path / "map.yaml").write_text("LREM: ensemble\nNI: ''\n", encoding="utf-8")
    ls = labelled_set(msgs, text_column="body", label_column="party", group_column="who",
                      label_map=read_label_map([str(tmp_path / "map.yaml"), "LFI=nfp"]))
    assert ls.left_out == {"label mapped out": 1, "no text": 1, "no label": 1}
    assert list(ls.frame["y"]) == ["ensemble", "nfp", "nfp"]
    assert ls.frame["text"].iloc[2] == "six \U0001F1EB\U0001F1F7"  # cleaned as ingest cleans it
    assert ls.no_group == 1 and ls.frame["group"].nunique() == 3
    assert len(ls.frame) + sum(ls.left_out.values()) == len(msgs)


def test_labels_from_a_second_file_joined_on_an_id() -> None:
    msgs = pd.DataFrame({"id": ["1", "2", "3"], "text": ["a", "b", "c"], "page": ["p", "p", "q"]})
    labels = pd.DataFrame({"id": ["3", "1", "9"], "partei": ["SPD", "CDU", "FDP"]})
    ls = labelled_set(msgs, label_column="partei", group_column="page", labels=labels, id_column="id")
    assert list(ls.frame["y"]) == ["CDU", "SPD"] and ls.left_out == {"no label": 1}
    with pytest.raises(BubbleLensError, match="--id-column"):
        labelled_set(msgs, label_column="partei", labels=labels)


def test_ids_read_as_floats_join_ids_read_as_text() -> None:
    msgs = pd.DataFrame({"id": [1.0, 2.0], "text": ["a", "b"]})
    labels = pd.DataFrame({"id": ["1", "2"], "camp": ["x", "y"]})
    assert list(labelled_set(msgs, labels=labels, id_column="id").frame["y"]) == ["x", "y"]


def test_one_label_is_no_comparison() -> None:
    from bubblelens.classify import load_codebook
    from bubblelens.classify.compare import compare_methods

    ls = labelled_set(pd.DataFrame({"text": ["a", "b"], "camp": ["x", "x"]}))
    with pytest.raises(BubbleLensError, match="at least two labels"):
        compare_methods(ls, load_codebook(), encoder=None)  # type: ignore[arg-type]


def test_a_missing_column_is_named_with_the_columns_there_are() -> None:
    with pytest.raises(BubbleLensError, match=r"no label column 'camp' in x\.csv; columns: text, who"):
        labelled_set(pd.DataFrame({"text": ["a"], "who": ["w"]}), where="x.csv")
    with pytest.raises(BubbleLensError, match="neither FROM=TO nor a file"):
        read_label_map(["no-such-file.yaml"])


# --- the command ----------------------------------------------------------------------------------

def test_evaluate_a_labelled_file_side_by_side(fixtures_dir: Path) -> None:
    """The fixtures' messages with their truth in a second file: every method, grouped by sender, with the
    encoder-per-language rows (English messages scored by MiniLM)."""
    res = CliRunner().invoke(main, [
        "evaluate", str(fixtures_dir / "messages.csv"), "--text-column", "body",
        "--labels", str(fixtures_dir / "truth" / "messages.csv"), "--id-column", "msg_id",
        "--group-column", "sender_id", "--boot", "30", "--english-encoder", "st:minilm", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["n"] == 800 and rep["grouped"] and rep["groups"] == 40
    no_lab = {r["method"]: r for r in rep["tables"]["no_labels"]}
    sup = {r["method"]: r for r in rep["tables"]["supervised"]}
    assert set(no_lab) == {"majority", "cosine", "zero-shot", "zero-shot+pool", "zero-shot[en]", "zero-shot[en]+pool",
                           "transductive", "transductive+pool"}
    assert no_lab["zero-shot[en]"]["accuracy"] != no_lab["zero-shot"]["accuracy"]  # the English ads changed
    assert set(sup) == {"logreg-emb", "logreg-emb+pool", "hybrid", "hybrid+pool"}
    assert no_lab["cosine"]["macro_f1"][0] > no_lab["majority"]["macro_f1"][0] + 0.2
    assert sup["hybrid"]["macro_f1"][0] > no_lab["cosine"]["macro_f1"][0]
    for row in [*no_lab.values(), *sup.values()]:
        for k in ("macro_f1", "accuracy", "coverage"):
            med, lo, hi = row[k]
            assert 0 <= lo <= hi <= 1 and lo - 0.05 <= med <= hi + 0.05, (row["method"], k)


def test_evaluate_says_when_the_codebook_does_not_fit_the_labels(tmp_path: Path) -> None:
    rows = [{"text": f"Wir fordern mehr Klimaschutz und Windräder {i}", "partei": "Grüne", "page": f"p{i % 4}"}
            for i in range(12)] + [{"text": f"Steuern senken, Wirtschaft stärken {i}", "partei": "FDP",
                                    "page": f"q{i % 4}"} for i in range(12)]
    pd.DataFrame(rows).to_csv(tmp_path / "de.csv", index=False)
    res = CliRunner().invoke(main, ["evaluate", str(tmp_path / "de.csv"), "--label-column", "partei",
                                    "--group-column", "page", "--no-supervised", "--boot", "10"])
    assert res.exit_code == 0, res.output
    assert "the codebook does not fit these labels: FDP, Grüne (100% of the messages)" in res.output
    assert "--map FROM=TO" in res.output


def test_store_mode_folds_are_grouped_by_sponsor(tmp_path: Path, fixtures_dir: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    r = CliRunner().invoke(main, ["ingest", str(fixtures_dir / "messages.csv"), "--db", db])
    assert r.exit_code == 0, r.output
    res = CliRunner().invoke(main, ["evaluate", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    for task in ("camp", "narrative"):
        assert rep[f"supervised_{task}"]["grouped"] and rep[f"supervised_{task}"]["n_groups"] == 40
