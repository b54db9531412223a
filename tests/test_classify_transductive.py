"""Transductive camps: self-training from the codebook's confident zero-shot scores (issue 16)."""

from __future__ import annotations

import numpy as np

from bubblelens.classify import CampClassifier
from bubblelens.classify.transductive import self_train

UN = "unassigned"


def _clusters(n_per: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 32)) * 2.0
    X = np.vstack([c + rng.normal(size=(n_per, 32)) for c in centres])
    y = np.repeat(np.array(["a", "b", "c"], dtype=object), n_per)
    return X / np.linalg.norm(X, axis=1, keepdims=True), y


def test_a_few_confident_pseudo_labels_spread_to_the_rest_of_their_cluster():
    X, y = _clusters()
    start = np.full(len(y), UN, dtype=object)
    rng = np.random.default_rng(1)
    seeds = np.concatenate([rng.choice(np.flatnonzero(y == k), 15, replace=False) for k in "abc"])
    start[seeds] = y[seeds]
    st = self_train(X, start)
    assert st.history[-1]["changed"] < 0.05 or len(st.history) == 5  # the stopping rule
    assert st.assigned.mean() > 0.9 and (st.labels[st.assigned] == y[st.assigned]).mean() > 0.95
    np.testing.assert_allclose(st.proba.sum(axis=1), 1.0, atol=1e-5)


def test_a_camp_the_corpus_shows_no_sign_of_is_dropped():
    X, y = _clusters()
    start = y.copy()
    start[::2] = UN
    start[:3] = "ghost"  # three stray pseudo-labels of a camp nobody here belongs to
    st = self_train(X, start)
    assert "ghost" not in set(st.classes) and "ghost" not in set(st.labels)


def test_too_few_confident_messages_leave_the_zero_shot_answer_standing():
    clf = CampClassifier(transductive=True).fit()
    texts = ["Stoppons l'immigration massive, priorité nationale !", "Bonne fête à toutes les mamans."]
    plain = CampClassifier().fit().assign(texts)
    assert clf.assign(texts) == plain


def test_classify_transductive_is_recorded_in_the_run(tmp_path):
    from click.testing import CliRunner

    from bubblelens.cli import main
    from bubblelens.store import Store, text_hash

    store = Store.open(tmp_path / "t.duckdb")
    for i, text in enumerate(["Nous abrogerons la réforme des retraites.", "Plus de police dans nos rues.",
                              "Baissons les impôts des classes moyennes."]):
        store.con.execute("INSERT INTO messages (message_id, text, text_hash, has_text, sponsor) VALUES (?, ?, ?, ?, ?)",
                          [f"m{i}", text, text_hash(text), True, f"Page {i}"])
    store.close()
    r = CliRunner().invoke(main, ["classify", "--db", str(tmp_path / "t.duckdb"), "--transductive"])
    assert r.exit_code == 0, r.output
    with Store.open(tmp_path / "t.duckdb") as s:
        params, models = s.con.execute("SELECT params, models FROM runs WHERE stage = 'classify'").fetchone()
    assert '"transductive": true' in params and '"mode": "transductive"' in models
