"""Calibration and abstention: are the probabilities right, and when should a head say ``unassigned``?

All functions take held-out (out-of-fold) predictions: a probability matrix ``proba`` (n × K, rows sum
to 1) and the index of each message's true class ``y`` (0 … K−1, the column of ``proba``).

- :func:`reliability`: top-label reliability table. Messages are binned by their confidence
  ``c_i = max_k p_ik`` into ``bins`` equal-width bins of [0, 1]; per bin the mean confidence ``conf_b``,
  the share right ``acc_b`` (argmax = truth) and the count ``n_b``. Expected calibration error
  ``ECE = Σ_b n_b / n · |acc_b − conf_b|``; Brier score ``1/n Σ_i Σ_k (p_ik − [y_i = k])²``; log-loss
  ``−1/n Σ_i log p_i,y_i``.
- :class:`TemperatureScaler`: one temperature ``T > 0``, ``p' = softmax(log p / T)`` (``T > 1`` softens
  an overconfident head, ``T < 1`` sharpens an underconfident one), fitted by minimising the log-loss of
  ``p'`` on held-out predictions. It never changes the argmax, only the confidence.
- :func:`threshold_for_precision`: the abstention rule. A message is assigned when its confidence is at
  least ``t``; the smallest ``t`` whose assigned set reaches a target precision keeps the most messages.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["CrossFit", "Reliability", "TemperatureScaler", "ThresholdChoice", "apply_temperature", "cross_fit",
           "held_out_calibration", "precision_coverage", "reliability", "threshold_for_precision"]

_EPS = 1e-15  # floor of the true class's probability in the reported log-loss
_LOG_T_BOUNDS = (float(np.log(0.02)), float(np.log(50.0)))


def _check(proba: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    P = np.asarray(proba, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] < 2:
        raise ValueError("proba must be an n × K matrix with K ≥ 2")
    if y is None:
        return P, None
    yi = np.asarray(y)
    if yi.shape != (P.shape[0],) or not np.issubdtype(yi.dtype, np.integer):
        raise ValueError("y must hold one integer class index per row of proba")
    if len(yi) and (yi.min() < 0 or yi.max() >= P.shape[1]):
        raise ValueError("a class index of y is outside the columns of proba")
    return P, yi.astype(np.int64)


def _log(P: np.ndarray) -> np.ndarray:
    """``log p`` with ``log 0 = −inf`` (a class the head never saw stays at probability 0 at every T)."""
    with np.errstate(divide="ignore"):
        return np.asarray(np.log(P))


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)`` row-wise; ``T = 1`` gives ``p`` back (up to rounding); a 0 stays 0."""
    P, _ = _check(proba)
    if not temperature > 0:
        raise ValueError("the temperature must be > 0")
    if temperature == 1.0:
        return P
    z = _log(P) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _log_loss(P: np.ndarray, y: np.ndarray) -> float:
    """Mean ``−log p_y``, ``p_y`` floored at 1e-15 (as scikit-learn's log_loss)."""
    return float(-np.mean(np.log(np.clip(P[np.arange(len(y)), y], _EPS, None)))) if len(y) else float("nan")


@dataclass(frozen=True)
class Reliability:
    """A reliability table (one dict per non-empty bin) with ECE, Brier score and log-loss."""

    n: int
    ece: float
    brier: float
    log_loss: float
    accuracy: float
    bins: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        """JSON-ready, rounded to ``digits`` places."""
        d = asdict(self)
        for k in ("ece", "brier", "log_loss", "accuracy"):
            d[k] = round(d[k], digits)
        d["bins"] = [{k: (v if k == "count" else round(v, digits)) for k, v in b.items()} for b in self.bins]
        return d


def reliability(proba: np.ndarray, y_true_idx: np.ndarray, bins: int = 10) -> Reliability:
    """Top-label reliability of ``proba`` against the true class indices (see the module docstring)."""
    P, y = _check(proba, y_true_idx)
    assert y is not None
    n = len(y)
    if n == 0:
        raise ValueError("reliability needs at least one prediction")
    conf = P.max(axis=1)
    right = (P.argmax(axis=1) == y).astype(np.float64)
    b = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    table, ece = [], 0.0
    for j in range(bins):
        m = b == j
        nb = int(m.sum())
        if nb == 0:
            continue
        cb, ab = float(conf[m].mean()), float(right[m].mean())
        ece += nb / n * abs(ab - cb)
        table.append({"lo": j / bins, "hi": (j + 1) / bins, "confidence": cb, "accuracy": ab, "count": nb})
    onehot = np.zeros_like(P)
    onehot[np.arange(n), y] = 1.0
    return Reliability(n=n, ece=float(ece), brier=float(((P - onehot) ** 2).sum(axis=1).mean()),
                       log_loss=_log_loss(P, y), accuracy=float(right.mean()), bins=table)


class TemperatureScaler(TransformerMixin, BaseEstimator):
    """One temperature for a probability (or logit) matrix, fitted on held-out predictions.

    ``inputs="proba"``: ``X`` holds probabilities, scaled as ``softmax(log p / T)``; ``"logits"``: ``X``
    holds logits ``z``, scaled as ``softmax(z / T)`` (the same thing, as ``log p = z − logsumexp z``).
    ``fit`` minimises the log-loss over ``log T`` in [log 0.02, log 50] (bounded Brent search); rows whose
    true class has probability exactly 0 are left out (no T changes them).
    """

    def __init__(self, *, inputs: str = "proba") -> None:
        self.inputs = inputs

    def _logp(self, X: np.ndarray) -> np.ndarray:
        if self.inputs not in ("proba", "logits"):
            raise ValueError("inputs must be 'proba' or 'logits'")
        Z, _ = _check(X)
        if self.inputs == "proba":
            return _log(Z)
        Z = Z - Z.max(axis=1, keepdims=True)
        return np.asarray(Z - np.log(np.exp(Z).sum(axis=1, keepdims=True)))

    def fit(self, X: np.ndarray, y: np.ndarray) -> TemperatureScaler:
        """Fit ``temperature_`` on ``X`` and the true class indices ``y``."""
        L = self._logp(X)
        _, yi = _check(L, y)
        assert yi is not None
        # a row whose true class has probability 0 (absent from the training folds) has infinite loss at
        # every T: it says nothing about T and is left out (clipping it would drive T to its bound)
        keep = np.isfinite(L[np.arange(len(yi)), yi])
        L, yi = L[keep], yi[keep]
        if len(yi) == 0:
            raise ValueError("a temperature needs at least one prediction whose true class has p > 0")

        def nll(log_t: float) -> float:
            z = L / np.exp(log_t)
            z = z - z.max(axis=1, keepdims=True)
            lse = np.log(np.exp(z).sum(axis=1))
            return float(np.mean(lse - z[np.arange(len(yi)), yi]))

        res = minimize_scalar(nll, bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-4})
        self.temperature_ = float(np.exp(res.x))
        self.log_loss_ = float(res.fun)
        self.n_features_in_ = L.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``softmax(log p / T)``."""
        return apply_temperature(np.exp(self._logp(X)), self.temperature_)


@dataclass(frozen=True)
class ThresholdChoice:
    """An abstention threshold with the coverage and precision of what it assigns."""

    threshold: float
    coverage: float
    precision: float
    n_assigned: int


def precision_coverage(conf: np.ndarray, correct: np.ndarray, threshold: float) -> tuple[float, float]:
    """Coverage (share with ``conf ≥ threshold``) and precision of that assigned set (NaN if empty)."""
    c, ok = np.asarray(conf, dtype=np.float64), np.asarray(correct, dtype=bool)
    a = c >= threshold
    return float(a.mean()) if len(c) else float("nan"), float(ok[a].mean()) if a.any() else float("nan")


def threshold_for_precision(conf: np.ndarray, correct: np.ndarray, target: float) -> ThresholdChoice | None:
    """The smallest threshold ``t`` (one of the confidences) whose assigned set ``conf ≥ t`` reaches
    precision ``target`` on these held-out predictions; None when no non-empty set reaches it.

    The smallest such ``t`` keeps the most messages. Precision need not grow with ``t``; every candidate
    is checked (sort once, cumulative counts).
    """
    c, ok = np.asarray(conf, dtype=np.float64), np.asarray(correct, dtype=bool)
    if c.shape != ok.shape or c.ndim != 1:
        raise ValueError("conf and correct must be 1-d arrays of one length")
    if not 0.0 < target <= 1.0:
        raise ValueError("the target precision must be in (0, 1]")
    if len(c) == 0:
        return None
    order = np.argsort(-c, kind="stable")
    cs, oks = c[order], ok[order]
    n_at = np.arange(1, len(cs) + 1)
    prec = np.cumsum(oks) / n_at
    last_of_tie = np.r_[cs[1:] != cs[:-1], True]  # a threshold takes every message of equal confidence
    good = np.flatnonzero(last_of_tie & (prec >= target - 1e-12))
    if len(good) == 0:
        return None
    i = int(good[-1])  # the largest assigned set, i.e. the smallest threshold
    return ThresholdChoice(threshold=float(cs[i]), coverage=float(n_at[i] / len(cs)), precision=float(prec[i]),
                           n_assigned=int(n_at[i]))


def _fit_t(P: np.ndarray, y: np.ndarray) -> float:
    return TemperatureScaler().fit(P, y).temperature_


@dataclass(frozen=True)
class CrossFit:
    """Out-of-fold predictions scaled fold by fold with what the other folds chose.

    ``proba``: each fold's rows scaled by ``fold_temperatures`` (fitted on the other folds; 1 when not
    calibrated); ``assigned``: each fold's rows at or above its threshold (chosen on the other folds for a
    target precision, else the fixed one; None where no threshold reached the target: nothing assigned).
    """

    proba: np.ndarray
    assigned: np.ndarray
    fold_temperatures: list[float]
    fold_thresholds: list[float | None]


def cross_fit(proba: np.ndarray, y_true_idx: np.ndarray, fold: np.ndarray, *, threshold: float = 0.0,
              min_precision: float | None = None, calibrate: bool = True) -> CrossFit:
    """Cross-fitted temperature and threshold (see :class:`CrossFit`): no row helps calibrate itself."""
    P, y = _check(proba, y_true_idx)
    assert y is not None
    fold = np.asarray(fold)
    if fold.shape != y.shape:
        raise ValueError("one fold per row")
    correct = P.argmax(axis=1) == y
    P_cf = P.copy()
    ok = np.zeros(len(y), dtype=bool)
    temps: list[float] = []
    thrs: list[float | None] = []
    for f in np.unique(fold):
        te, tr = fold == f, fold != f
        t_f = _fit_t(P[tr], y[tr]) if calibrate else 1.0
        P_cf[te] = apply_temperature(P[te], t_f)
        thr_f: float | None = threshold
        if min_precision is not None:
            ch = threshold_for_precision(apply_temperature(P[tr], t_f).max(axis=1), correct[tr], min_precision)
            thr_f = ch.threshold if ch else None
        temps.append(t_f)
        thrs.append(thr_f)
        if thr_f is not None:
            ok[te] = P_cf[te].max(axis=1) >= thr_f
    return CrossFit(proba=P_cf, assigned=ok, fold_temperatures=temps, fold_thresholds=thrs)


def held_out_calibration(proba: np.ndarray, y_true_idx: np.ndarray, fold: np.ndarray, *, threshold: float,
                         min_precision: float | None = None, calibrate: bool = True, bins: int = 10
                         ) -> dict[str, Any]:
    """Calibration and abstention figures of out-of-fold predictions (``fold``: the held-out fold of each row).

    - ``before``: reliability of the raw held-out probabilities;
    - ``after`` (``calibrate``): reliability after temperature scaling *cross-fitted*: the rows of fold
      ``f`` are scaled by a temperature fitted on the other folds' rows only, so no row calibrates itself;
    - ``temperature``: the one fitted on all rows (``temperature_fitted``), what a head trained on all of
      them carries, if it passed the held-out check (``temperature_adopted``: the cross-fitted ECE is
      lower than the raw one); else 1, and the threshold and nested figures are those of raw probabilities;
    - ``threshold``: ``min_precision`` given, the smallest threshold whose assigned set reaches it on all
      rows scaled by ``temperature`` (None if none does); else the given ``threshold``;
    - ``at_threshold``: coverage and precision of assigned at it, on those same rows (the threshold was
      chosen on them: optimistic);
    - ``nested``: each fold gets the temperature and the threshold chosen on the other folds only, applied
      to it (a fold where no threshold reaches the target assigns nothing): the honest figure.
    """
    P, y = _check(proba, y_true_idx)
    assert y is not None
    cf = cross_fit(P, y, fold, threshold=threshold, min_precision=min_precision, calibrate=calibrate)
    before, after = reliability(P, y, bins), reliability(cf.proba, y, bins) if calibrate else None
    t_fit = _fit_t(P, y) if calibrate else 1.0
    # the held-out check: a temperature that does not lower the cross-fitted ECE is not adopted (log-loss
    # can ask for near-uniform probabilities when whole held-out groups are confidently wrong)
    adopted = after is not None and after.ece < before.ece
    if calibrate and not adopted:
        cf = cross_fit(P, y, fold, threshold=threshold, min_precision=min_precision, calibrate=False)
    t_all = t_fit if adopted else 1.0
    correct = P.argmax(axis=1) == y
    conf_all = apply_temperature(P, t_all).max(axis=1)
    thr: float | None = threshold
    if min_precision is not None:
        ch = threshold_for_precision(conf_all, correct, min_precision)
        thr = ch.threshold if ch else None
    out: dict[str, Any] = {
        "calibrated": calibrate, "temperature": round(t_all, 4), "temperature_fitted": round(t_fit, 4),
        "temperature_adopted": adopted, "fold_temperatures": [round(t, 4) for t in cf.fold_temperatures],
        "before": before.to_dict(), "after": after.to_dict() if after else None,
        "ece_before": round(before.ece, 4), "ece_after": round(after.ece, 4) if after else None,
        "min_precision": min_precision, "threshold": None if thr is None else round(thr, 6),
    }
    if thr is not None:
        cov, prec = precision_coverage(conf_all, correct, thr)
        out["at_threshold"] = {"coverage": round(cov, 4), "precision": round(prec, 4),
                               "n_assigned": int((conf_all >= thr).sum()),
                               "chosen_on_these_predictions": min_precision is not None}
    n_a = int(cf.assigned.sum())
    out["nested"] = {"coverage": round(n_a / len(y), 4),
                     "precision": round(float(correct[cf.assigned].mean()), 4) if n_a else None,
                     "n_assigned": n_a,
                     "fold_thresholds": [None if t is None else round(t, 4) for t in cf.fold_thresholds]}
    return out
