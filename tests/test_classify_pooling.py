"""Sponsors carry camps (pooling) and grouped evaluation (issue 16)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bubblelens.classify import Scorer
from bubblelens.classify.evaluate import cross_validate
from bubblelens.classify.pooling import FEW_ADS, pool_sponsors
from bubblelens.cli import main


def test_a_sponsor_camp_pools_the_ads_the_classifier_names_and_carries_their_uncertainty():
    P = np.array([[0.8, 0.1, 0.1],   # sponsor a: two sure ads of camp 0 ...
                  [0.6, 0.3, 0.1],
                  [0.2, 0.4, 0.4],   # ... and an unsure one (abstained): it is given the sponsor's camp
                  [0.1, 0.7, 0.2],   # sponsor b: one ad, nothing to pool
                  [0.4, 0.3, 0.3],   # sponsor c: no ad the classifier names: not pooled
                  [0.3, 0.4, 0.3],
                  [0.2, 0.2, 0.6]])  # no sponsor
    assigned = P.max(axis=1) >= 0.5
    pooled = pool_sponsors(P, assigned, ["a", "a", "a", "b", "c", "c", None], how="mean")
    for i in range(3):  # both named ads say camp 0: every resample does
        np.testing.assert_allclose(pooled.proba[i], [1.0, 0.0, 0.0])
    assert pooled.assigned[:3].all()
    assert all(pooled.proba[i] is None for i in range(3, 7)) and not pooled.assigned[3:].any()
    s = pooled.summary
    assert s["sponsors_pooled"] == 1 and s["ads_pooled"] == 3 and s["sponsors_without_evidence"] == 1
    assert s["sponsors_few_ads"] == 1 and s["few_ads"] == FEW_ADS  # two named ads are few


def test_a_sponsor_sure_in_aggregate_is_sure_and_a_split_sponsor_abstains():
    # 30 of 40 named ads say camp 0 (at 0.55), 10 say camp 1: the mean probability of camp 0 is under a
    # half (0.475), yet no resample of the sponsor's ads makes it anything but camp 0
    lean = np.array([[0.55, 0.25, 0.2]] * 30 + [[0.25, 0.55, 0.2]] * 10)
    assert lean.mean(axis=0)[0] < 0.5
    sure = pool_sponsors(lean, [True] * 40, ["s"] * 40)
    assert sure.proba[0] is not None and sure.proba[0][0] > 0.95 and sure.assigned.all()
    logsum = pool_sponsors(lean, [True] * 40, ["s"] * 40, how="logsum")
    assert logsum.proba[0] is not None and logsum.proba[0].argmax() == 0
    rng = np.random.default_rng(1)
    split = np.eye(3)[np.repeat([0, 1, 2], 3)] * 0.8 + 0.2 / 3 + rng.uniform(0, 0.01, (9, 3))
    split /= split.sum(axis=1, keepdims=True)
    pooled = pool_sponsors(split, [True] * 9, ["s"] * 9, threshold=0.5)
    assert pooled.proba[0] is not None and pooled.proba[0].max() < 0.5 and not pooled.assigned.any()
    P = lean
    with pytest.raises(ValueError, match="pooling"):
        pool_sponsors(P, [True] * 3, ["s"] * 3, how="median")


def test_scorer_gives_each_ad_its_sponsors_pooled_camp_and_the_sponsor_table_still_wins():
    texts = ["Stoppons l'immigration massive, priorité nationale et préférence française !",
             "Remigration : la France aux Français, fermons les frontières.",
             "Bonne fête à toutes les mamans.",
             "Bonne fête à toutes les mamans."]
    sponsors = ["Page inconnue", "Page inconnue", "Page inconnue", "Rassemblement National"]
    pooled = Scorer(sponsor_pooling="mean").score_records(texts, sponsors=sponsors)
    plain = Scorer(sponsor_pooling=None).score_records(texts, sponsors=sponsors)
    assert plain["camp_source"][:3] == ["text"] * 3
    assert pooled["camp_source"] == ["sponsor_pooled"] * 3 + ["sponsor"]
    assert len(set(pooled["camp"][:3])) == 1 and pooled["camp"][0] != "unassigned"
    assert len(set(pooled["camp_p"][:3])) == 1 and 0.5 <= pooled["camp_p"][0] <= 1.0
    assert json.loads(pooled["camp_topk"][2])[0][0] == pooled["camp"][2]


def _authored(n_authors: int = 40, per_author: int = 12, seed: int = 0) -> pd.DataFrame:
    """Each author writes their own signature word plus shared words; the label is the author's, by chance."""
    rng = np.random.default_rng(seed)
    shared = [f"w{i}" for i in range(60)]
    rows = []
    letters = list("abcdefghijklmnopqrstuvwxyz")
    camps = rng.permutation(["left", "right"] * (n_authors // 2))
    for a in range(n_authors):
        sig = "".join(rng.choice(letters, size=10))
        for _ in range(per_author):
            rows.append({"text": f"{sig} " + " ".join(rng.choice(shared, size=8)), "camp": camps[a],
                         "author": f"author{a}"})
    return pd.DataFrame(rows)


def test_grouped_folds_catch_a_head_that_learned_its_authors_not_their_camps():
    d = _authored()
    free = cross_validate(d["text"], d["camp"], None, task="camp", features="tfidf", C=10.0)
    grouped = cross_validate(d["text"], d["camp"], None, task="camp", features="tfidf", C=10.0,
                             groups=d["author"])
    assert not free["grouped"] and grouped["grouped"] and grouped["n_groups"] == 40
    assert free["macro_f1"] > 0.9  # the signature word is seen in training: memorized
    assert grouped["macro_f1"] < 0.7  # unseen authors: the words carry no camp


def test_train_command_says_its_folds_are_grouped(tmp_path):
    d = _authored()
    d.to_csv(tmp_path / "t.csv", index=False)
    args = ["train", "--input", str(tmp_path / "t.csv"), "--text-column", "text", "--label-column", "camp",
            "--task", "camp", "--features", "tfidf", "--out", str(tmp_path / "head")]
    r = CliRunner().invoke(main, [*args, "--group-column", "author"])
    assert r.exit_code == 0, r.output
    assert "grouped by author (40 groups held out whole)" in r.output
    rep = json.loads((tmp_path / "head" / "report.json").read_text())
    assert rep["grouped"] and rep["n_groups"] == 40
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0 and "not grouped" in r.output and "--group-column" in r.output
    d.loc[3, "author"] = None
    d.to_csv(tmp_path / "bad.csv", index=False)
    r = CliRunner().invoke(main, [*args[:2], str(tmp_path / "bad.csv"), *args[3:], "--group-column", "author"])
    assert r.exit_code != 0 and "data row 4" in r.output and "'author'" in r.output
    r = CliRunner().invoke(main, [*args, "--group-column", "sponsor"])
    assert r.exit_code != 0 and "no column 'sponsor'" in r.output


def test_the_support_of_a_large_sponsor_is_computed_in_blocks_with_the_same_answer():
    from bubblelens.classify.pooling import bootstrap_support

    rng = np.random.default_rng(0)
    P = rng.dirichlet([3.0, 1.0, 1.0], size=30_000)
    s = bootstrap_support(P)
    assert s.shape == (3,) and s.sum() == pytest.approx(1.0) and s[0] == 1.0
