"""Know when not to know, on real French MPs' tweets (issue #16): calibration and abstention of a trained head.

A user trains a camp head on tweets labelled with their author's bloc (LREM + MODEM + UAI → ensemble,
LR → lr, LFI + GDR + NG → nfp), folds grouped by author, TF-IDF features (no encoder, fast), on a
quarter of the MPs (drawn once, seed 0) to keep the test short. Two claims:

- the logistic head's held-out probabilities are miscalibrated (C = 10: overconfident) and one
  temperature, cross-fitted (fitted on the other folds only), lowers the expected calibration error;
- ``--min-precision 0.8`` chooses a threshold on held-out folds; chosen on the other folds and applied to
  each held-out fold (nested), the assigned labels stay at least 0.7 precise, above the head's accuracy
  when it assigns everything (abstaining buys precision).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from bubblelens.cli import main

BLOCS = {"LREM": "ensemble", "MODEM": "ensemble", "UAI": "ensemble", "LR": "lr", "LFI": "nfp", "GDR": "nfp",
         "NG": "nfp"}


def test_temperature_lowers_ece_and_the_nested_threshold_keeps_precision(shared_data: Path, tmp_path: Path) -> None:
    df = pd.read_csv(shared_data / "fr_mp_tweets_xv" / "Tweets_sample.csv", dtype=str)
    df = df[df["groupe_sigle"].isin(list(BLOCS)) & df["text"].notna()]
    authors = sorted(set(df["author_id"]))
    keep = set(np.random.default_rng(0).choice(authors, size=len(authors) // 4, replace=False))
    d = df[df["author_id"].isin(keep)].assign(camp=lambda t: t["groupe_sigle"].map(BLOCS))
    assert len(d) > 2000 and d["camp"].nunique() == 3
    d[["text", "camp", "author_id"]].to_csv(tmp_path / "tweets.csv", index=False)
    r = CliRunner().invoke(main, ["train", "--input", str(tmp_path / "tweets.csv"), "--text-column", "text",
                                  "--label-column", "camp", "--group-column", "author_id", "--task", "camp",
                                  "--features", "tfidf", "--C", "10", "--min-precision", "0.8",
                                  "--out", str(tmp_path / "head")])
    assert r.exit_code == 0, r.output
    print("\n" + r.output)
    rep = json.loads((tmp_path / "head" / "report.json").read_text())
    cal = rep["calibration"]
    assert rep["grouped"] and "ECE" in r.output
    assert cal["ece_after"] < cal["ece_before"]
    assert cal["temperature"] > 1  # C = 10 is overconfident on authors it never saw
    nested = cal["nested"]
    assert nested["coverage"] > 0.2
    assert nested["precision"] >= 0.7
    # the head's accuracy over all messages (argmax, nothing abstains) is below what it keeps
    assert nested["precision"] > cal["before"]["accuracy"] + 0.05
    doc = json.loads((tmp_path / "head" / "head.json").read_text())
    assert doc["threshold"] == cal["threshold"] > 0.5 and doc["params"]["temperature"] == cal["temperature"]
