"""The Label page with Streamlit's AppTest: 25 ads labelled through the form store 25 labels with who and
when, refit a head, and the page shows its grouped cross-validated macro-F1 beside the majority class and
where the head went (relative to the store, never a server path); ad text is shown as text."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pytest
from apptest_helpers import goto, open_app
from streamlit.testing.v1 import AppTest

from bubblelens.classify.labelling import heads_dir
from bubblelens.present.synthetic import build_synthetic_store


class HashEncoder:
    """A stand-in encoder: a text's vector is seeded by its hash (no model to load)."""

    id = "hash-test-encoder"
    dim = 16

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = []
        for t in texts:
            seed = int(hashlib.sha1(t.encode("utf-8")).hexdigest()[:8], 16)
            v = np.random.default_rng(seed).normal(size=self.dim)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32)


@pytest.fixture()
def store(tmp_path: Path) -> str:
    path = tmp_path / "label.duckdb"
    build_synthetic_store(path, n_ads=400, n_audiences=60, seed=5, encoder=HashEncoder())
    return str(path)


def _label(at: AppTest, key: str) -> AppTest:
    at.text_input(key="label_input").input(key)
    at.button(key="FormSubmitter:label_form-Submit label").click()
    return at.run()


def test_label_page_labels_25_ads_and_refits(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = goto(open_app(store, monkeypatch, timeout=120), "label")
    assert [t.value for t in at.title] == ["Label"]
    assert "0 labelled, next refit at 25" in at.get("progress")[0].proto.text
    at.text_input(key="label_by").set_value("Tester")
    shown = []
    for i in range(25):
        shown.append(at.text[0].value)  # the ad on screen, as plain text
        at = _label(at, str(i % 3 + 1))
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
    with duckdb.connect(store, read_only=True) as con:
        rows = con.execute("SELECT label, labelled_by, labelled_at FROM labels WHERE task = 'camp'").fetchall()
    assert len(rows) == 25 and {r[1] for r in rows} == {"Tester"} and all(r[2] is not None for r in rows)
    assert len({r[0] for r in rows}) == 3
    metrics = {m.label: m.value for m in at.metric}
    assert {"Macro-F1, grouped CV", "Macro-F1, sponsors seen", "Majority class"} <= set(metrics)
    assert float(metrics["Majority class"]) < 0.5 and 0.0 <= float(metrics["Macro-F1, grouped CV"]) <= 1.0
    assert metrics["Labels"] == "25"
    assert (heads_dir(store) / "camp" / "head.json").is_file()
    page_text = " ".join(c.value for c in at.caption)
    assert "label.duckdb.heads/camp" in page_text and str(Path(store).parent) not in page_text
    assert "25 labelled, next refit at 50" in at.get("progress")[0].proto.text


def test_a_wrong_key_is_refused_and_skip_is_no_label(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = goto(open_app(store, monkeypatch, timeout=120), "label")
    first = at.text[0].value
    at = _label(at, "99")
    assert at.error and "not a label" in at.error[0].value
    assert at.text[0].value == first  # the same ad stays
    at = _label(at, "0")
    assert not at.error and at.text[0].value != first
    with duckdb.connect(store, read_only=True) as con:
        assert con.execute("SELECT label FROM labels").fetchall() == [("skip",)]
    assert "0 labelled" in at.get("progress")[0].proto.text
