"""Every classification method side by side on one labelled set, with intervals over sponsors or authors.

What ``bubblelens evaluate INPUT…`` prints (and ``bench/bench_classify_real.py`` builds on): each method's
labels for every message, then one table.

Methods that see no label (the codebook and the corpus only; ``task="camp"`` unless said):

- ``majority``: every message to the most frequent true label. It peeks at the labels: it is the score a
  constant guess reaches, the floor any method must clear on accuracy (not on macro-F1).
- ``cosine``: the plain baseline, the label whose mean prototype embedding is nearest (cosine), always
  assigned.
- ``zero-shot``: the shipped classifier (:class:`CampClassifier` / :class:`NarrativeClassifier`) with its
  abstention rule.
- ``zero-shot+pool``: the same, then sponsor pooling (:mod:`.pooling`, ``mean``; camps only).
- ``transductive`` / ``transductive+pool``: what ``classify --transductive`` ships (:mod:`.transductive`;
  camps only);
- ``zero-shot[en]`` / ``zero-shot[en]+pool`` (when an English encoder is given): the encoder per language of
  ``classify --english-encoder``.

Supervised methods (labels of the other groups only): ``folds``-fold ``StratifiedGroupKFold`` by group,
once per seed, medians over seeds:

- ``logreg-emb``: baseline, a logistic regression (C = 1, balanced) on the same embeddings;
- ``hybrid``: the shipped head (:class:`.supervised.LinearHead`: word + char TF-IDF and embeddings, C = 1,
  the value ``train --C auto`` picks on both labelled real sets);
- ``… +pool`` (camps): the held-out predictions pooled per group (a group is held out whole, so its labels
  are never seen).

Columns: macro-F1 over the true labels (an abstention, or a label the truth does not hold, is a miss),
accuracy, coverage (share assigned), precision of assigned. ``[lo, hi]``: the 2.5 and 97.5 percentiles of
the figure over bootstrap resamples of the groups (sponsors or authors drawn with replacement, each with
all its messages). An ad library is a census, not a sample: the interval says how much the figure rests on
which speakers happen to be in the set, not the sampling error of a survey. Without groups each message is
its own group, and messages of one author then make both the folds and the interval too optimistic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedGroupKFold

from ..embed import Encoder
from ..errors import BubbleLensError
from .classifiers import CampClassifier, NarrativeClassifier
from .codebook import Codebook
from .labelled import LabelledSet
from .pooling import pool_sponsors
from .supervised import LinearHead
from .zeroshot import UNASSIGNED

__all__ = ["FIGURES", "HEADS", "EmbeddingLogReg", "Head", "bootstrap_groups", "compare_methods", "comparison_table",
           "cosine_labels", "format_table", "labels_outside", "no_label_runs", "outcome", "pooled_labels",
           "supervised_runs"]

#: the columns of a comparison table
FIGURES = ("macro_f1", "accuracy", "coverage", "precision")

Log = Callable[[str], None]


class Head(Protocol):
    """The call shape of a supervised head in a comparison (that of :class:`.supervised.LinearHead`)."""

    classes_: np.ndarray

    def fit(self, texts: Sequence[str], y: Sequence[str] | np.ndarray, embeddings: np.ndarray | None) -> Any: ...

    def predict_proba(self, texts: Sequence[str], embeddings: np.ndarray | None) -> np.ndarray: ...


class EmbeddingLogReg:
    """The plain supervised baseline: logistic regression (C = 1, balanced) on the embeddings alone."""

    def fit(self, texts: Sequence[str], y: Sequence[str] | np.ndarray, embeddings: np.ndarray | None
            ) -> EmbeddingLogReg:
        self.model_ = LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced").fit(embeddings, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, texts: Sequence[str], embeddings: np.ndarray | None) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(embeddings))


#: supervised methods of a comparison: name → a fresh head
HEADS: dict[str, Callable[[], Head]] = {"logreg-emb": EmbeddingLogReg, "hybrid": lambda: LinearHead(C=1.0)}


def outcome(y: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """macro-F1 over ``labels`` (abstentions are misses), accuracy, coverage, precision of assigned (NaN
    when nothing is assigned)."""
    y, pred = np.asarray(y, dtype=object), np.asarray(pred, dtype=object)
    a = pred != UNASSIGNED
    return {"macro_f1": float(f1_score(y, pred, labels=list(labels), average="macro", zero_division=0)),
            "accuracy": float((pred == y).mean()), "coverage": float(a.mean()),
            "precision": float((pred[a] == y[a]).mean()) if a.any() else float("nan")}


def bootstrap_groups(groups: np.ndarray, n_boot: int, seed: int = 0) -> list[np.ndarray]:
    """``n_boot`` resamples of the rows: groups drawn with replacement, each bringing all its rows."""
    uniq, inv = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(len(uniq) + 1))
    rows = [order[bounds[i]:bounds[i + 1]] for i in range(len(uniq))]
    rng = np.random.default_rng(seed)
    return [np.concatenate([rows[g] for g in rng.integers(0, len(uniq), len(uniq))]) for _ in range(n_boot)]


def pooled_labels(proba: np.ndarray, classes: np.ndarray, assigned: np.ndarray, groups: Sequence[str],
                  threshold: float = 0.5) -> np.ndarray:
    """Labels after sponsor pooling (``mean``, :func:`.pooling.pool_sponsors`); a message whose group was not
    pooled keeps its own label."""
    classes = np.asarray(classes, dtype=object)
    own = np.where(assigned, classes[proba.argmax(axis=1)], UNASSIGNED).astype(object)
    pool = pool_sponsors(proba, assigned, list(groups), how="mean", threshold=threshold)
    for i, q in enumerate(pool.proba):
        if q is not None:
            own[i] = classes[int(q.argmax())] if pool.assigned[i] else UNASSIGNED
    return own


def cosine_labels(codebook: Codebook, encoder: Encoder, X: np.ndarray, task: str = "camp") -> np.ndarray:
    """Nearest entry (camp or narrative) by the cosine of ``X`` to the normalised mean of its prototypes."""
    entries = codebook.camps if task == "camp" else codebook.narratives
    protos = []
    for e in entries:
        v = np.asarray(encoder.encode([t for _, t in e.prototypes()])).mean(axis=0)
        protos.append(v / np.linalg.norm(v))
    ids = np.asarray([e.id for e in entries], dtype=object)
    return ids[np.argmax(np.asarray(X) @ np.asarray(protos).T, axis=1)]


def no_label_runs(codebook: Codebook, encoder: Encoder, texts: list[str], y: np.ndarray, groups: np.ndarray,
                  X: np.ndarray, *, task: str = "camp", english: Encoder | None = None,
                  log: Log = lambda s: None) -> dict[str, np.ndarray]:
    """Each method that sees no label → its label for every message (see the module docstring).

    ``english`` (camps): also the encoder-per-language rows, ``zero-shot[en]`` (+pool): messages detected as
    English (py3langid, :func:`.fit.detect_languages`) get their camp from a classifier on that encoder, the
    others from ``encoder``, as ``classify --english-encoder`` does."""
    out: dict[str, np.ndarray] = {"majority": np.full(len(y), pd.Series(y).mode()[0], dtype=object),
                                  "cosine": cosine_labels(codebook, encoder, X, task)}
    if task != "camp":
        nar = NarrativeClassifier(codebook=codebook, encoder=encoder).fit()
        out["zero-shot"] = np.asarray(nar.predict(embeddings=X), dtype=object)
        return out
    keys = [str(v) for v in groups]
    zs = CampClassifier(codebook=codebook, encoder=encoder).fit()
    lab, P = zs.predict_with_proba(embeddings=X)
    out["zero-shot"] = np.asarray(lab, dtype=object)
    out["zero-shot+pool"] = pooled_labels(P, np.asarray(zs.classes_, dtype=object), lab != UNASSIGNED, keys)
    if english is not None:
        from .fit import detect_languages

        langs = detect_languages(texts)
        alt = CampClassifier(codebook=codebook, encoder=english).fit()
        log(f"English by py3langid: {sum(x == 'en' for x in langs):,} of {len(texts):,} messages, camps from "
            f"{english.id}")
        for name, pool in (("zero-shot[en]", None), ("zero-shot[en]+pool", "mean")):
            out[name] = np.asarray([c for c, *_ in zs.assign(texts, sponsor_ids=keys, embeddings=X, languages=langs,
                                                              by_language={"en": alt}, pool=pool)], dtype=object)
    tr = CampClassifier(codebook=codebook, encoder=encoder, transductive=True).fit()
    out["transductive"] = np.asarray([c for c, *_ in tr.assign(texts, sponsor_ids=keys, embeddings=X)], dtype=object)
    log(f"transductive: {tr.transductive_history_}")
    out["transductive+pool"] = np.asarray(
        [c for c, *_ in tr.assign(texts, sponsor_ids=keys, embeddings=X, pool="mean")], dtype=object)
    log(f"pooling: {tr.pooling_summary_}")
    return out


def supervised_runs(texts: list[str], y: np.ndarray, groups: np.ndarray, X: np.ndarray, *, seeds: int = 1,
                    folds: int = 5, heads: dict[str, Callable[[], Head]] | None = None, pool: bool = True,
                    log: Log = lambda s: None) -> dict[str, list[np.ndarray]]:
    """Each supervised head → its held-out labels, one array per seed (folds grouped by ``groups``)."""
    y = np.asarray(y, dtype=object)
    classes = np.asarray(sorted(set(y)), dtype=object)
    n_groups = len(np.unique(np.asarray(groups, dtype=str)))
    k = min(folds, n_groups)
    if k < 2:
        raise BubbleLensError(f"cross-validation needs at least 2 groups; the set has {n_groups}")
    out: dict[str, list[np.ndarray]] = {}
    for seed in range(seeds):
        splits = list(StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(X, y, groups))
        for name, make in (heads or HEADS).items():
            P = np.zeros((len(y), len(classes)))
            for tr, te in splits:
                head = make().fit([texts[i] for i in tr], y[tr], X[tr])
                cols = np.searchsorted(classes, np.asarray(head.classes_, dtype=object))
                P[np.ix_(te, cols)] = head.predict_proba([texts[i] for i in te], X[te])
            out.setdefault(name, []).append(classes[P.argmax(axis=1)])
            if pool:
                out.setdefault(f"{name}+pool", []).append(
                    pooled_labels(P, classes, P.max(axis=1) >= 0.5, [str(g) for g in groups]))
            log(f"{name}, seed {seed}: done")
    return out


def comparison_table(y: np.ndarray, groups: np.ndarray, runs: dict[str, list[np.ndarray]], *, n_boot: int = 200,
                     seed: int = 0) -> list[dict[str, Any]]:
    """One row per method: each figure as ``[median over seeds, lo, hi]``, the interval from bootstrap
    resamples of the groups applied to the median seed's labels (by macro-F1)."""
    y = np.asarray(y, dtype=object)
    labels = sorted(set(y))
    draws = bootstrap_groups(groups, n_boot, seed)
    rows = []
    for name, preds in runs.items():
        per_seed = [outcome(y, p, labels) for p in preds]
        med = {k: float(np.median([s[k] for s in per_seed])) for k in FIGURES}
        typical = preds[int(np.argsort([s["macro_f1"] for s in per_seed])[len(per_seed) // 2])]
        boot = pd.DataFrame([outcome(y[i], typical[i], labels) for i in draws])
        row: dict[str, Any] = {"method": name, "seeds": len(preds)}
        for k in FIGURES:
            lo, hi = boot[k].quantile([0.025, 0.975])
            row[k] = [round(med[k], 3), round(float(lo), 3), round(float(hi), 3)]
        rows.append(row)
    return rows


def format_table(title: str, rows: list[dict[str, Any]]) -> str:
    """The rows as a fixed-width text table under ``title``."""
    def cell(v: list[float]) -> str:
        return "n/a" if np.isnan(v[0]) else f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"

    width = max([len("method"), *(len(r["method"]) for r in rows)]) + 2
    lines = [title, f"{'method':{width}}" + "".join(f"{h:>22}" for h in ("macro-F1", "accuracy", "coverage",
                                                                          "precision"))]
    lines += [f"{r['method']:{width}}" + "".join(f"{cell(r[k]):>22}" for k in FIGURES) for r in rows]
    return "\n".join(lines)


def labels_outside(codebook: Codebook, labels: Sequence[str], task: str = "camp") -> tuple[list[str], list[str]]:
    """The codebook's ids for ``task`` and the sorted ``labels`` that are none of them (methods without
    labels can never name those)."""
    ids = codebook.camp_ids if task == "camp" else codebook.narrative_ids
    return ids, sorted(set(map(str, labels)) - set(ids))


def compare_methods(ls: LabelledSet, codebook: Codebook, encoder: Encoder, *, task: str = "camp",
                    english: Encoder | None = None, zero_shot: bool = True, supervised: bool = True, seeds: int = 1,
                    folds: int = 5, n_boot: int = 200, log: Log = lambda s: None) -> dict[str, Any]:
    """Every method on a labelled set: the report of ``bubblelens evaluate INPUT…`` (JSON-ready).

    ``labels_outside_codebook``: true labels that are not ids of the codebook (the methods without labels
    can never name them); ``tables``: ``no_labels`` and ``supervised``, rows of :func:`comparison_table`."""
    d = ls.frame
    texts, y, g = d["text"].tolist(), d["y"].to_numpy(dtype=object), d["group"].to_numpy(dtype=object)
    counts = d["y"].value_counts()
    if len(counts) < 2:
        raise BubbleLensError(f"a comparison needs at least two labels; the set has only {list(counts.index)}")
    if english is not None and task != "camp":
        raise BubbleLensError("an English encoder applies to camps (task camp)")
    ids, foreign = labels_outside(codebook, list(counts.index), task)
    rep: dict[str, Any] = {"n": len(d), "groups": int(d["group"].nunique()), "grouped": ls.grouped,
                           "labels": {str(k): int(v) for k, v in counts.items()}, "left_out": ls.left_out,
                           "no_group": ls.no_group, "task": task, "encoder": encoder.id,
                           "codebook_sha256": codebook.sha256, "codebook_ids": ids,
                           "labels_outside_codebook": foreign,
                           "interval": "95 % bootstrap over groups: how much the figure rests on which "
                                       + ("sponsors/authors" if ls.grouped else "messages") + " are in the set",
                           "tables": {}}
    X = encoder.encode(texts)
    if zero_shot:
        runs = no_label_runs(codebook, encoder, texts, y, g, X, task=task, english=english, log=log)
        rep["tables"]["no_labels"] = comparison_table(y, g, {k: [v] for k, v in runs.items()}, n_boot=n_boot)
    if supervised:
        sruns = supervised_runs(texts, y, g, X, seeds=seeds, folds=folds, pool=task == "camp", log=log)
        rep["tables"]["supervised"] = comparison_table(y, g, sruns, n_boot=n_boot)
    return rep
