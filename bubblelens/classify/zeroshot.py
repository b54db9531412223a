"""Zero-shot classification by similarity to prototypes, calibrated into probabilities.

Each class (a narrative or a camp) has several prototypes: its labels (fr, en), ``label: description`` in
each language, and each example. A message's score for class ``k`` pools its cosines ``c_j`` to the
prototypes of ``k``:

- ``max``:   ``s_k = max_j c_j``
- ``mean``:  ``s_k = mean_j c_j``
- ``lse`` (default): ``s_k = τ_p · log(mean_j exp(c_j / τ_p))``, a soft maximum (``τ_p`` =
  ``pool_temperature``, 0.05 by default) that rewards being close to several prototypes.

Probabilities: ``p_k = softmax(s / T)_k``. The temperature ``T`` is fitted without any labelled message:
on the codebook itself, each example is scored leave-one-out against the prototypes (its own row
removed) and ``T`` minimizes the negative log-likelihood of the example's own class. A message is
``unassigned`` when its best probability is under ``threshold`` or its best pooled cosine is under
``min_similarity`` (default: the 5th percentile of the examples' leave-one-out own-class scores, minus
``margin``): a message no closer to any narrative than its least typical example is to its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp, softmax
from sklearn.base import BaseEstimator, ClassifierMixin

__all__ = ["UNASSIGNED", "PrototypeClassifier", "pool_scores"]

UNASSIGNED = "unassigned"
POOLINGS = ("lse", "max", "mean")


def pool_scores(cos: np.ndarray, proto_class: np.ndarray, n_classes: int, *, pooling: str = "lse",
                pool_temperature: float = 0.05, mask: np.ndarray | None = None) -> np.ndarray:
    """Pool ``cos`` (n × m cosines to m prototypes) into n × K class scores (see the module docstring).

    ``mask`` (n × m, True = ignore) removes prototypes per row (used for leave-one-out).
    """
    n = cos.shape[0]
    out = np.empty((n, n_classes), dtype=np.float64)
    for k in range(n_classes):
        cols = np.flatnonzero(proto_class == k)
        c = cos[:, cols].astype(np.float64)
        valid = np.ones_like(c, dtype=bool) if mask is None else ~mask[:, cols]
        cnt = np.maximum(valid.sum(axis=1), 1)
        if pooling == "max":
            out[:, k] = np.where(valid, c, -np.inf).max(axis=1)
        elif pooling == "mean":
            out[:, k] = np.where(valid, c, 0.0).sum(axis=1) / cnt
        else:
            z = np.where(valid, c / pool_temperature, -np.inf)
            out[:, k] = pool_temperature * (logsumexp(z, axis=1) - np.log(cnt))
    return out


class PrototypeClassifier(ClassifierMixin, BaseEstimator):
    """Zero-shot classifier over prototype embeddings (scikit-learn estimator contract).

    ``fit(P, y, kinds=None)`` takes prototype embeddings ``P`` (m × d, L2-normalized) and the class of
    each; ``kinds`` marks which prototypes are examples (used to calibrate). ``predict_proba(X)`` takes
    message embeddings.
    """

    def __init__(self, *, pooling: str = "lse", pool_temperature: float = 0.05, temperature: float | None = None,
                 threshold: float = 0.0, min_similarity: float | None = None, margin: float = 0.05,
                 random_state: int | None = 0) -> None:
        self.pooling = pooling
        self.pool_temperature = pool_temperature
        self.temperature = temperature
        self.threshold = threshold
        self.min_similarity = min_similarity
        self.margin = margin
        self.random_state = random_state

    def fit(self, P: np.ndarray, y: Sequence[str], kinds: Sequence[str] | None = None) -> PrototypeClassifier:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}")
        P = np.asarray(P, dtype=np.float32)
        y_list = [str(v) for v in y]
        self.classes_ = np.asarray(list(dict.fromkeys(y_list)), dtype=object)
        index = {c: i for i, c in enumerate(self.classes_)}
        self.prototypes_ = P
        self.proto_class_ = np.array([index[c] for c in y_list], dtype=np.int64)
        kinds_arr = np.asarray(list(kinds) if kinds is not None else ["example"] * len(y_list), dtype=object)
        ex = np.flatnonzero(kinds_arr == "example")
        # Leave-one-out scores of the codebook's examples: the calibration set (no labelled messages).
        loo = None
        if len(ex) >= 2:
            cos = P[ex] @ P.T
            mask = np.zeros_like(cos, dtype=bool)
            mask[np.arange(len(ex)), ex] = True
            loo = pool_scores(cos, self.proto_class_, len(self.classes_), pooling=self.pooling,
                              pool_temperature=self.pool_temperature, mask=mask)
            own = self.proto_class_[ex]
        if self.temperature is not None:
            self.temperature_ = float(self.temperature)
        elif loo is not None:
            def nll(log_t: float) -> float:
                lp = loo / np.exp(log_t)
                lp = lp - logsumexp(lp, axis=1, keepdims=True)
                return float(-lp[np.arange(len(own)), own].mean())

            res = minimize_scalar(nll, bounds=(np.log(1e-3), np.log(1.0)), method="bounded")
            self.temperature_ = float(np.exp(res.x))
        else:
            self.temperature_ = 0.05
        if self.min_similarity is not None:
            self.min_similarity_ = float(self.min_similarity)
        elif loo is not None:
            self.min_similarity_ = float(np.quantile(loo[np.arange(len(own)), own], 0.05) - self.margin)
        else:
            self.min_similarity_ = -1.0
        self.n_features_in_ = P.shape[1]
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Pooled cosine of each message to each class (n × K)."""
        cos = np.asarray(X, dtype=np.float32) @ self.prototypes_.T
        return pool_scores(cos, self.proto_class_, len(self.classes_), pooling=self.pooling,
                           pool_temperature=self.pool_temperature)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``softmax(s / T)`` over the classes (n × K)."""
        return np.asarray(softmax(self.decision_function(X) / self.temperature_, axis=1))

    def assigned(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and a boolean per row: True where the message is assigned (not ``unassigned``)."""
        s = self.decision_function(X)
        proba = np.asarray(softmax(s / self.temperature_, axis=1))
        ok = (proba.max(axis=1) >= self.threshold) & (s.max(axis=1) >= self.min_similarity_)
        return proba, ok

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class, or ``unassigned`` (see the module docstring)."""
        proba, ok = self.assigned(X)
        return np.where(ok, self.classes_[proba.argmax(axis=1)], UNASSIGNED)
