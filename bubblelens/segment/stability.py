"""Stability of a clustering: refit over seeds, compare the partitions, flag segments that do not survive.

For each seed ``r`` the clusterer is refitted on the same rows and compared with the reference labels:

- the adjusted Rand index ``ARI(reference, run_r)`` (noise counted as one more class), averaged over runs;
- per reference segment ``s``, its best Jaccard match in run ``r``: ``max_t |s ∩ t| / |s ∪ t|``
  (after Hennig 2007, "Cluster-wise assessment of cluster stability"); a segment whose mean best match
  is below ``threshold`` (default 0.5) is flagged unstable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

__all__ = ["StabilityReport", "best_jaccard", "stability"]


@dataclass
class StabilityReport:
    """ARI of each refit against the reference, and each segment's mean best Jaccard match."""

    seeds: list[int]
    ari: list[float]
    jaccard: dict[int, float] = field(default_factory=dict)
    threshold: float = 0.5

    @property
    def ari_mean(self) -> float:
        return float(np.mean(self.ari)) if self.ari else float("nan")

    @property
    def stable(self) -> dict[int, bool]:
        """Segment → True when its mean best Jaccard match reaches the threshold."""
        return {s: j >= self.threshold for s, j in self.jaccard.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"seeds": self.seeds, "ari": self.ari, "ari_mean": self.ari_mean,
                "jaccard": {str(k): v for k, v in self.jaccard.items()}, "threshold": self.threshold}


def best_jaccard(reference: np.ndarray, other: np.ndarray) -> dict[int, float]:
    """For each segment ``s ≥ 0`` of ``reference``: ``max_t |s ∩ t| / |s ∪ t|`` over segments ``t ≥ 0``
    of ``other`` (0 when ``other`` has none)."""
    reference, other = np.asarray(reference), np.asarray(other)
    out: dict[int, float] = {}
    others = [other == t for t in np.unique(other[other >= 0])]
    for s in np.unique(reference[reference >= 0]):
        a = reference == s
        out[int(s)] = max((float((a & b).sum() / (a | b).sum()) for b in others), default=0.0)
    return out


def stability(estimator: Any, X: Any, *, seeds: Sequence[int] = (1, 2), reference: np.ndarray | None = None,
              threshold: float = 0.5) -> StabilityReport:
    """Refit a clone of ``estimator`` (which has ``random_state`` and ``labels_``) once per seed on ``X``.

    ``reference`` defaults to the fitted ``estimator.labels_`` (fitting it first if needed).
    """
    if reference is None:
        if not hasattr(estimator, "labels_"):
            estimator.fit(X)
        reference = np.asarray(estimator.labels_)
    aris: list[float] = []
    per_seg: dict[int, list[float]] = {int(s): [] for s in np.unique(reference[reference >= 0])}
    for seed in seeds:
        run = clone(estimator).set_params(random_state=int(seed)).fit(X)
        labels = np.asarray(run.labels_)
        aris.append(float(adjusted_rand_score(reference, labels)))
        for s, j in best_jaccard(reference, labels).items():
            per_seg[s].append(j)
    return StabilityReport(seeds=[int(s) for s in seeds], ari=aris,
                           jaccard={s: float(np.mean(v)) if v else 0.0 for s, v in per_seg.items()},
                           threshold=threshold)
