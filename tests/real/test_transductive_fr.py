"""Camps without labels on French MPs' tweets, learnt at the level of authors (issue 16).

A user has 9,492 tweets of 498 MPs (``fr_mp_tweets_xv``) and a codebook of the three blocs of the 2017–22
Assemblée written from their names and programmes (``docs/examples/fr-assemblee-2017-2022.yaml``), no
labels. Truth, for the figure only: each MP's group (LREM + MODEM + UAI → ensemble, LR → lr, LFI + GDR + NG
→ nfp; NI dropped). Zero-shot pooled per MP is the baseline the transductive mode must clearly beat, with
the precision of the camps it names well above it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from bubblelens.classify import CampClassifier, load_codebook
from bubblelens.embed import get_encoder

CODEBOOK = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fr-assemblee-2017-2022.yaml"
GROUPS = {"LREM": "ensemble", "MODEM": "ensemble", "UAI": "ensemble", "LR": "lr", "LFI": "nfp", "GDR": "nfp",
          "NG": "nfp"}
UN = "unassigned"


def _figures(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """macro-F1 over the true camps (abstentions are misses) and precision of the assigned."""
    a = pred != UN
    return (float(f1_score(y, pred, labels=sorted(set(y)), average="macro", zero_division=0)),
            float((pred[a] == y[a]).mean()))


@pytest.mark.slow
def test_author_level_transductive_camps_beat_pooled_zero_shot(shared_data: Path) -> None:
    df = pd.read_csv(shared_data / "fr_mp_tweets_xv" / "Tweets_sample.csv")
    df = df[df["groupe_sigle"].isin(list(GROUPS)) & df["text"].notna()]
    texts, y = df["text"].astype(str).tolist(), df["groupe_sigle"].map(GROUPS).to_numpy(dtype=object)
    authors = df["author_id"].astype(str).tolist()
    enc = get_encoder("usem3")
    X = enc.encode(texts)
    cb = load_codebook(CODEBOOK)
    base = CampClassifier(codebook=cb, encoder=enc).fit()
    zs = np.array([c for c, *_ in base.assign(texts, sponsor_ids=authors, embeddings=X, pool="mean")], dtype=object)
    tr = CampClassifier(codebook=cb, encoder=enc, transductive=True).fit()
    out = np.array([c for c, *_ in tr.assign(texts, sponsor_ids=authors, embeddings=X, pool="mean")], dtype=object)
    f1_zs, prec_zs = _figures(y, zs)
    f1_tr, prec_tr = _figures(y, out)
    assert tr.transductive_history_[0]["level"] == "sponsor"
    assert tr.pooling_summary_["ads_unassigned_views_disagree"] > 0
    assert f1_tr >= 0.40 and f1_tr >= f1_zs + 0.08, (f1_tr, f1_zs)
    assert prec_tr >= 0.65 and prec_tr >= prec_zs + 0.15, (prec_tr, prec_zs)
