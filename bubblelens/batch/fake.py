"""A deterministic stand-in scorer for tests and for measuring the engines' own overhead.

Labels and probabilities are a pure function of each text (its SHA-1), so any two runs, any chunking and
any engine give the same rows. ``BUBBLELENS_FAKE_DELAY`` (seconds per row, default 0) makes it slow
enough for a test to kill it mid-run. Use it with ``bubblelens score ... --scorer
bubblelens.batch.fake:make_fake_scorer`` (a hidden option).
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import pandas as pd

from .scorer import ScoreSettings

__all__ = ["FakeScorer", "make_fake_scorer"]

_NARRATIVES = ("cost_of_living", "pensions", "immigration", "climate", "unassigned")
_CAMPS = ("nfp", "ensemble", "lr", "rn", "unassigned")


class FakeScorer:
    """Scores by hashing: narrative ``_NARRATIVES[h % 5]``, p = ``(h >> 8) % 1000 / 1000``."""

    encoder_id = "fake-1"

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay

    def score_frame(self, df: pd.DataFrame, *, text_column: str = "text",
                    sponsor_column: str | None = None) -> pd.DataFrame:
        """One deterministic row per text; the camp source is ``sponsor`` when a sponsor is given."""
        rows = []
        sponsors = df[sponsor_column] if sponsor_column else [None] * len(df)
        for text, sponsor in zip(df[text_column], sponsors, strict=True):
            h = int(hashlib.sha1(str(text).encode()).hexdigest()[:12], 16)
            n, p = _NARRATIVES[h % 5], ((h >> 8) % 1000) / 1000
            second = _NARRATIVES[(h + 1) % 5]
            rows.append({
                "text": text, "narrative": n, "narrative_p": p,
                "narratives_topk": json.dumps([[n, p], [second, round((1 - p) / 2, 6)]]),
                "camp": _CAMPS[(h >> 16) % 5], "camp_p": ((h >> 24) % 1000) / 1000,
                "camp_source": "sponsor" if sponsor else "text", "encoder": self.encoder_id,
            })
        if self.delay:
            time.sleep(self.delay * len(df))
        return pd.DataFrame(rows, columns=["text", "narrative", "narrative_p", "narratives_topk", "camp",
                                           "camp_p", "camp_source", "encoder"])


def make_fake_scorer(settings: ScoreSettings) -> FakeScorer:
    """Scorer factory for ``--scorer bubblelens.batch.fake:make_fake_scorer``."""
    return FakeScorer(delay=float(os.environ.get("BUBBLELENS_FAKE_DELAY", "0")))
