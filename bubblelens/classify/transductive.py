"""Transductive camps without labels: self-training from the codebook's zero-shot scores on the corpus itself.

Two levels. Where the messages have sponsors (or authors) and every camp gets enough of them,
:func:`sponsor_self_train` learns camps at the level of sponsors (its docstring); otherwise
:func:`self_train` learns them message by message:

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

Measured (bench/bench_classify_real.py, docs/classify.md): message level helps where the zero-shot start
is reasonably precise (German party ads, codebook of the German parties); sponsor level lifts the French
MPs' tweets with a codebook of their blocs (macro-F1 0.394 → 0.579 and precision 0.591 → 0.754, pooled
per MP); neither rescues a codebook that does not fit (the 2024 parties on 2017–22 MPs): self-training
amplifies its start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedKFold

from .supervised import LinearHead
from .zeroshot import UNASSIGNED

__all__ = ["MIN_SPONSORS", "SelfTraining", "self_train", "sponsor_self_train"]

#: sponsor-level self-training needs at least this many pseudo-labelled sponsors in every camp it keeps
MIN_SPONSORS = 20


@dataclass
class SelfTraining:
    """Result: probabilities over ``classes`` (n × K), the assigned labels and the per-iteration log."""

    proba: np.ndarray
    classes: np.ndarray
    labels: np.ndarray
    history: list[dict[str, float]] = field(default_factory=list)
    #: sponsor-level self-training only: each message's sponsor camp at the start (the centred zero-shot
    #: mean of its sponsor), ``unassigned`` for a message without a sponsor
    start: np.ndarray | None = None

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


def _sponsor_means(M: np.ndarray, inv: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.zeros((n_groups, M.shape[1]))
    np.add.at(out, inv, M)
    return out / np.bincount(inv, minlength=n_groups)[:, None]


def _confident_half(A: np.ndarray, frac: float) -> np.ndarray:
    """Per best class, the rows whose margin (best − second) is in the top ``frac`` of that class; −1 elsewhere."""
    srt = np.sort(A, axis=1)
    margin = srt[:, -1] - srt[:, -2]
    best = A.argmax(axis=1)
    keep = np.zeros(len(A), dtype=bool)
    for k in np.unique(best):
        rows = best == k
        keep |= rows & (margin >= np.quantile(margin[rows], 1.0 - frac))
    return np.where(keep, best, -1)


def sponsor_self_train(scores: np.ndarray, classes: np.ndarray, texts: list[str], X: np.ndarray,
                       keys: list[str | None], *, frac: float = 0.5, min_sponsors: int = MIN_SPONSORS, C: float = 1.0, folds: int = 5,
                       threshold: float = 0.5) -> SelfTraining | None:
    """Camps learnt at the level of sponsors (or authors) from zero-shot ``scores`` (n × K pooled cosines
    over ``classes``); ``keys``: the sponsor of each message (None: it has none, it is only scored).

    1. Each camp's score is centred on its corpus mean (a codebook's camps are not equally close to
       every text: that bias is a constant per camp), then averaged over each sponsor's messages.
    2. Per best camp, the sponsors whose margin is in the top ``frac`` are pseudo-labelled with it; every
       message of such a sponsor carries its sponsor's pseudo-label.
    3. A hybrid head (:class:`LinearHead`, word + char TF-IDF and embeddings, ``C``) learns the
       pseudo-labels; each message's probabilities come from a head that never saw its sponsor
       (``folds``-fold cross-fitting grouped by sponsor; unlabelled sponsors from the head fitted on all).

    Returns None (the caller keeps the message-level answer) when a camp has fewer than ``min_sponsors``
    pseudo-labelled sponsors: a head cross-fitted by sponsor then learns sponsors, not camps (German party
    ads, 62 pages for 7 camps). One round, no iteration: re-labelling sponsors from the head's own output
    drifted on the French tweets (docs/classify.md), so the stopping rule is a fixed single round.
    """
    S = np.asarray(scores, dtype=np.float64)
    n, K = S.shape
    rows = np.flatnonzero([k is not None for k in keys])
    if len(rows) < 2 or K < 2:
        return None
    codes, inv = np.unique(np.asarray([keys[i] for i in rows], dtype=object), return_inverse=True)
    A = _sponsor_means(S[rows] - S[rows].mean(axis=0), inv, len(codes))
    pseudo = _confident_half(A, frac)
    counts = np.bincount(pseudo[pseudo >= 0], minlength=K)
    present = counts > 0
    if present.sum() < 2 or counts[present].min() < min_sponsors:
        return None
    lab_rows = pseudo[inv]
    idx = rows[lab_rows >= 0]
    y = lab_rows[lab_rows >= 0]
    grp = inv[lab_rows >= 0]
    P = np.zeros((n, K))

    def fit_predict(tr: np.ndarray, te: np.ndarray) -> None:
        head = LinearHead(C=C).fit([texts[i] for i in tr], [str(v) for v in y_of[tr]], X[tr])
        cols = np.asarray([int(c) for c in head.classes_], dtype=np.int64)
        P[np.ix_(te, cols)] = head.predict_proba([texts[i] for i in te], X[te])

    y_of = np.full(n, -1, dtype=np.int64)
    y_of[idx] = y
    rest = np.setdiff1d(np.arange(n), idx)
    if len(rest):
        fit_predict(idx, rest)
    for tr, te in GroupKFold(int(min(folds, len(np.unique(grp))))).split(idx, groups=grp):
        fit_predict(idx[tr], idx[te])
    names = np.asarray(classes, dtype=object)
    labels = np.where(P.max(axis=1) >= threshold, names[P.argmax(axis=1)], UNASSIGNED).astype(object)
    history = [{"iteration": 0, "sponsors": len(codes), "pseudo_labelled_sponsors": int((pseudo >= 0).sum()),
                "assigned": round(float((labels != UNASSIGNED).mean()), 4), "classes": int(present.sum())}]
    start = np.full(n, UNASSIGNED, dtype=object)
    start[rows] = names[A.argmax(axis=1)][inv]
    return SelfTraining(P, names, labels, history, start)
