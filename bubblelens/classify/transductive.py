"""Transductive camps without labels: self-training from the codebook's zero-shot scores on the corpus itself.

1. Start: the zero-shot classifier's probabilities ``P0`` and its own assign/abstain rule; the messages it
   assigns are pseudo-labelled with their best camp.
2. A camp with fewer pseudo-labels than ``max(min_count, min_share · #pseudo-labelled)`` is dropped: the
   corpus shows no sign of it (French 2024 parties in 2017–22 tweets of MPs who never belonged to them).
3. A multinomial logistic regression on the embeddings is fitted to the pseudo-labels (balanced class
   weights). Every message gets its probabilities from a head that did not see its own pseudo-label:
   pseudo-labelled messages by ``folds``-fold cross-fitting, the others from the head fitted on all.
4. New pseudo-labels: messages whose best probability reaches ``threshold``. Repeat from 2.

Stopping rule (no gold label is looked at): stop when the share of messages whose pseudo-label (camp or
``unassigned``) changed in an iteration falls under ``tol``, or after ``max_iter`` iterations. The last
probabilities and the ``threshold`` rule are the answer (``unassigned`` below it).

Measured (bench/bench_classify_real.py, docs/classify.md): it helps where the zero-shot start is
reasonably precise (German party ads, codebook of the German parties) and cannot rescue a start that is
mostly wrong (French MPs' tweets with the default 2024 codebook): self-training amplifies its start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from .zeroshot import UNASSIGNED

__all__ = ["SelfTraining", "self_train"]


@dataclass
class SelfTraining:
    """Result: probabilities over ``classes`` (n × K), the assigned labels and the per-iteration log."""

    proba: np.ndarray
    classes: np.ndarray
    labels: np.ndarray
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def assigned(self) -> np.ndarray:
        return np.asarray(self.labels != UNASSIGNED)


def _head(C: float, seed: int) -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=2000, class_weight="balanced", random_state=seed)


def self_train(X: np.ndarray, labels0: np.ndarray, *, C: float = 1.0, threshold: float = 0.5,
               max_iter: int = 5, tol: float = 0.05, min_share: float = 0.01, min_count: int = 10,
               folds: int = 5, random_state: int = 0) -> SelfTraining:
    """Self-train a head on the corpus ``X`` (n × d) from zero-shot labels ``labels0`` (``unassigned`` allowed)."""
    X = np.asarray(X, dtype=np.float32)
    labels = np.asarray([str(v) for v in labels0], dtype=object)
    n = len(labels)
    history: list[dict[str, float]] = []
    proba = np.zeros((n, 0))
    classes = np.asarray([], dtype=object)
    for it in range(max_iter):
        ok = labels != UNASSIGNED
        counts = pd.Series(labels[ok]).value_counts()
        keep = counts[counts >= max(min_count, min_share * ok.sum())].index.tolist()
        ok &= np.isin(labels, keep)
        if len(keep) < 2:
            break
        idx = np.flatnonzero(ok)
        head = _head(C, random_state).fit(X[idx], labels[idx])
        classes = np.asarray(head.classes_, dtype=object)
        proba = np.zeros((n, len(classes)))
        if (~ok).any():
            proba[~ok] = head.predict_proba(X[~ok])
        k = int(min(folds, counts[keep].min()))
        if k >= 2:
            for tr, te in StratifiedKFold(k, shuffle=True, random_state=random_state).split(idx, labels[idx]):
                part = _head(C, random_state).fit(X[idx[tr]], labels[idx[tr]])
                cols = np.searchsorted(classes, part.classes_)
                proba[idx[te]] = 0.0
                proba[np.ix_(idx[te], cols)] = part.predict_proba(X[idx[te]])
        else:
            proba[idx] = head.predict_proba(X[idx])
        new = np.where(proba.max(axis=1) >= threshold, classes[proba.argmax(axis=1)], UNASSIGNED).astype(object)
        changed = float((new != np.where(ok, labels, UNASSIGNED)).mean())
        history.append({"iteration": it, "changed": round(changed, 4), "assigned": round(float((new != UNASSIGNED).mean()), 4),
                        "classes": len(classes)})
        labels = new
        if changed < tol:
            break
    return SelfTraining(proba, classes, labels, history)
