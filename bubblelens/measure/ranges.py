"""Impression ranges: a point estimate, and draws inside a range for the bootstrap.

Ad libraries publish impressions as buckets ``[lower, upper]``; the top bucket has no upper bound
(``upper`` missing: ``None``/``nan``). Three rules, used everywhere (docs/metrics.md "Ranges"):

1. **Point estimate**: the geometric mean ``sqrt(L·U)`` of the bounds, a lower bound of ``0`` counting
   as ``1`` (buckets span orders of magnitude, so the geometric mean is the log-scale midpoint).
2. **Open top bucket**: the point estimate is its lower bound ``L`` (the only number published).
3. **Bootstrap draws**: log-uniform between the bounds, ``exp(U(ln L, ln U))``; for the open top
   bucket log-uniform on ``[L, 2L]`` (an explicit assumption: at most twice the bucket's floor).
   A known count (``lower == upper``) is drawn as itself.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["OPEN_TOP_FACTOR", "bounds", "draw_impressions", "point_impressions"]

#: the open top bucket ``[L, ∞)`` is drawn log-uniformly on ``[L, OPEN_TOP_FACTOR · L]``
OPEN_TOP_FACTOR = 2.0


def bounds(lower: ArrayLike, upper: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The effective ``(lo, hi)`` used by both rules: ``lo = max(L, 1)``; ``hi = U``, or ``2·lo`` if open.

    An upper bound below the lower one is taken as the lower one.

    >>> lo, hi = bounds([0, 1000, 1_000_000], [999, 4999, None])
    >>> lo.tolist(), hi.tolist()
    ([1.0, 1000.0, 1000000.0], [999.0, 4999.0, 2000000.0])
    """
    lo = np.maximum(np.asarray(lower, dtype=np.float64), 1.0)
    up = np.asarray(upper, dtype=np.float64)  # None -> nan
    hi = np.where(np.isnan(up), OPEN_TOP_FACTOR * lo, np.maximum(up, lo))
    return lo, hi


def point_impressions(lower: ArrayLike, upper: ArrayLike) -> NDArray[np.float64]:
    """Point estimate of impressions: ``sqrt(max(L,1) · U)``; the open top bucket gives ``max(L, 1)``.

    >>> point_impressions([0, 1000, 1_000_000], [100, 4000, None]).tolist()
    [10.0, 2000.0, 1000000.0]
    """
    lo = np.maximum(np.asarray(lower, dtype=np.float64), 1.0)
    up = np.asarray(upper, dtype=np.float64)
    return np.where(np.isnan(up), lo, np.sqrt(lo * np.maximum(up, lo)))


def draw_impressions(lower: ArrayLike, upper: ArrayLike, n_draws: int,
                     rng: np.random.Generator) -> NDArray[np.float64]:
    """``n_draws`` log-uniform draws inside each range: shape ``(len(lower), n_draws)``.

    ``exp(ln lo + u (ln hi − ln lo))`` with ``u ~ U(0, 1)`` and ``(lo, hi)`` from :func:`bounds`.

    >>> x = draw_impressions([10, 5], [1000, 5], 4, np.random.default_rng(0))
    >>> bool(((x[0] >= 10) & (x[0] <= 1000)).all()), x[1].round(9).tolist()
    (True, [5.0, 5.0, 5.0, 5.0])
    """
    lo, hi = bounds(lower, upper)
    llo = np.log(lo)[:, None]
    span = (np.log(hi) - np.log(lo))[:, None]
    u = rng.random((lo.shape[0], n_draws))
    return np.exp(llo + u * span)
