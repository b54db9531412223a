"""Exposure metrics: pure functions of impression matrices (arrays in, numbers out, no I/O).

Conventions. ``N`` is a segment × category impression matrix (categories: narratives, camps or outlets),
``N[s, k] ≥ 0``. Every function accepts leading batch axes (``N`` of shape ``(..., S, K)``), so one
call evaluates all bootstrap replicates at once. Shares of a row with no impressions are ``nan``.
Logarithms are natural unless a function says otherwise.

Sides. A camp has a position on the left–right axis in ``[-1, 1]``; its *side* is ``-1`` (left),
``0`` (centre) or ``+1`` (right), see :func:`side_of`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "audience_slant",
    "cosine_distances",
    "cross_cutting_share",
    "echo_chamber",
    "effective_number",
    "entropy",
    "gini_simpson",
    "group_rows",
    "isolation_index",
    "js_divergence",
    "rao_stirling",
    "received_slant",
    "shares",
    "side_of",
    "theil_m",
    "weighted_correlation",
]

FloatArray = NDArray[np.float64]


def _f(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def shares(N: ArrayLike) -> FloatArray:
    """Row shares ``p[s, k] = N[s, k] / Σ_k N[s, k]`` (a row with no impressions gives ``nan``).

    >>> shares([[3, 1], [0, 2]]).tolist()
    [[0.75, 0.25], [0.0, 1.0]]
    """
    n = _f(N)
    tot = n.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, n / np.where(tot > 0, tot, 1.0), np.nan)


def side_of(position: ArrayLike, *, centre_band: float = 0.2) -> NDArray[np.int64]:
    """Side of a left–right position: ``-1`` if ``x < -band``, ``+1`` if ``x > band``, else ``0``.

    >>> side_of([-0.7, 0.1, 0.0, 0.5, 0.95]).tolist()
    [-1, 0, 0, 1, 1]
    """
    x = _f(position)
    return np.where(x > centre_band, 1, np.where(x < -centre_band, -1, 0)).astype(np.int64)


def cross_cutting_share(P: ArrayLike, category_side: ArrayLike, home_side: ArrayLike) -> FloatArray:
    """Cross-cutting share (Bakshy, Messing & Adamic 2015, *Science* 348:1130).

    ``CC[s] = Σ_{k: c(k) ≠ home(s)} p[s, k]``: the share of what segment ``s`` receives that comes from
    another side than its home side. ``P`` is ``(..., S, K)`` shares, ``category_side`` the side of each
    column, ``home_side`` the side of each segment. Bounds: ``0`` (only home content) to ``1``.

    >>> P = [[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]]          # columns: a left, a centre, a right camp
    >>> cross_cutting_share(P, [-1, 0, 1], [-1, 1]).round(3).tolist()
    [0.1, 0.5]
    """
    p = _f(P)
    other = np.asarray(category_side)[None, :] != np.asarray(home_side)[:, None]  # (S, K)
    return (p * other).sum(axis=-1)


def group_rows(N: ArrayLike, groups: ArrayLike) -> tuple[FloatArray, NDArray[np.int64]]:
    """Sum the rows of ``N`` (``(..., S, K)``) by group label; returns ``(N_grouped, group_values)``.

    >>> G, g = group_rows([[1, 0], [2, 1], [0, 5]], [1, 1, -1])
    >>> G.tolist(), g.tolist()
    ([[0.0, 5.0], [3.0, 1.0]], [-1, 1])
    """
    n = _f(N)
    values, inv = np.unique(np.asarray(groups), return_inverse=True)
    onehot = (inv[None, :] == np.arange(len(values))[:, None]).astype(np.float64)  # (G, S)
    return np.einsum("gs,...sk->...gk", onehot, n), values


def isolation_index(N: ArrayLike, right: ArrayLike) -> FloatArray:
    """Isolation index (Gentzkow & Shapiro 2011, *QJE* 126:1799), categories (narratives) as outlets.

    ``S = Σ_k (R_k/R)(R_k/T_k) − Σ_k (L_k/L)(R_k/T_k)`` with ``R_k`` (``L_k``) the impressions of
    category ``k`` in right-side (left-side) segments, ``T_k = R_k + L_k``, ``R = Σ R_k``, ``L = Σ L_k``:
    the right side's average exposure to right-side co-audiences minus the left side's. ``right`` is a
    boolean per segment (rows of ``N``); segments to leave out must be dropped before. ``0`` when both
    sides have identical diets, ``1`` under complete segregation.

    >>> isolation_index([[10, 0], [0, 5]], [True, False]).item()      # complete segregation
    1.0
    >>> isolation_index([[3, 1], [6, 2]], [True, False]).item()       # identical diets
    0.0
    >>> round(isolation_index([[3, 1], [1, 3]], [True, False]).item(), 3)  # 0.75·0.75+0.25·0.25 − (0.25·0.75+0.75·0.25)
    0.25
    """
    n = _f(N)
    r = np.asarray(right, dtype=bool)
    R_k = n[..., r, :].sum(axis=-2)
    L_k = n[..., ~r, :].sum(axis=-2)
    T_k = R_k + L_k
    with np.errstate(invalid="ignore", divide="ignore"):
        frac_r = np.where(T_k > 0, R_k / np.where(T_k > 0, T_k, 1.0), 0.0)
        R = R_k.sum(axis=-1, keepdims=True)
        L = L_k.sum(axis=-1, keepdims=True)
        return ((R_k / R) * frac_r).sum(axis=-1) - ((L_k / L) * frac_r).sum(axis=-1)


def entropy(P: ArrayLike) -> FloatArray:
    """Shannon entropy ``H(p) = −Σ_k p_k ln p_k`` of each row (``0 ln 0 = 0``; rows renormalized).

    >>> round(entropy([0.5, 0.5]).item(), 6)
    0.693147
    """
    p = shares(P)
    with np.errstate(invalid="ignore", divide="ignore"):
        return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=-1)


def theil_m(N: ArrayLike, *, normalized: bool = False) -> FloatArray:
    """Mutual-information (Theil) segregation index of a group × category matrix.

    ``M = H(K) − Σ_g π_g H(K | g)`` with ``π_g = N_g· / N``: the mutual information between the group
    (row) and the category (column) of an impression (Theil & Finizza 1971; Mora & Ruiz-Castillo 2011).
    ``normalized=True`` gives Theil's ``H = M / H(K)`` in ``[0, 1]`` (``0`` when every group has the
    same diet, ``1`` when each category reaches one group only).

    >>> round(theil_m([[10, 0], [0, 10]]).item(), 6), theil_m([[10, 0], [0, 10]], normalized=True).item()
    (0.693147, 1.0)
    >>> theil_m([[2, 6], [1, 3]]).item()
    0.0
    """
    n = _f(N)
    tot_g = n.sum(axis=-1)
    pi = tot_g / tot_g.sum(axis=-1, keepdims=True)
    h_k = entropy(n.sum(axis=-2))
    h_kg = np.nan_to_num(entropy(n))
    m = h_k - (pi * h_kg).sum(axis=-1)
    m = np.maximum(m, 0.0)
    if normalized:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(h_k > 0, m / np.where(h_k > 0, h_k, 1.0), 0.0)
    return m


def effective_number(P: ArrayLike) -> FloatArray:
    """Effective number of categories (Hill number of order 1): ``exp(H) = exp(−Σ_k p_k ln p_k)``.

    ``1`` for a single narrative, ``K`` for ``K`` equally shared ones.

    >>> effective_number([[1, 0, 0], [1, 1, 1]]).round(6).tolist()
    [1.0, 3.0]
    """
    return np.exp(entropy(P))


def gini_simpson(P: ArrayLike) -> FloatArray:
    """Gini–Simpson diversity ``1 − Σ_k p_k²``: the chance two random impressions differ in category.

    >>> gini_simpson([[1, 0], [1, 1]]).tolist()
    [0.0, 0.5]
    """
    p = shares(P)
    return 1.0 - (p * p).sum(axis=-1)


def cosine_distances(centroids: ArrayLike) -> FloatArray:
    """``d_ij = 1 − cos(c_i, c_j)`` between category centroids (rows), clipped to ``[0, 2]``.

    >>> cosine_distances([[1, 0], [0, 2], [-1, 0]]).round(6).tolist()
    [[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]]
    """
    c = _f(centroids)
    norm = np.linalg.norm(c, axis=1, keepdims=True)
    u = c / np.where(norm > 0, norm, 1.0)
    d = np.clip(1.0 - u @ u.T, 0.0, 2.0)
    np.fill_diagonal(d, 0.0)
    return d


def rao_stirling(P: ArrayLike, d: ArrayLike) -> FloatArray:
    """Rao–Stirling diversity ``Σ_{i≠j} d_ij p_i p_j`` (Rao 1982; Stirling 2007).

    ``d`` is a category distance matrix, e.g. :func:`cosine_distances` of narrative centroids; its
    diagonal is ignored. With ``d_ij = 1`` for all ``i ≠ j`` it equals :func:`gini_simpson`.

    >>> rao_stirling([[0.5, 0.5, 0.0]], [[0, 1, 2], [1, 0, 1], [2, 1, 0]]).tolist()   # 2·1·0.25
    [0.5]
    """
    p = shares(P)
    dd = _f(d).copy()
    np.fill_diagonal(dd, 0.0)
    return np.einsum("...i,ij,...j->...", p, dd, p)


def received_slant(P: ArrayLike, position: ArrayLike) -> FloatArray:
    """Mean slant of what a segment receives: ``Σ_k p[s, k] a[k]`` (``a`` a position in ``[-1, 1]``).

    >>> received_slant([[0.5, 0.5], [1, 0]], [-1, 1]).tolist()
    [0.0, -1.0]
    """
    return (shares(P) * _f(position)).sum(axis=-1)


def weighted_correlation(x: ArrayLike, y: ArrayLike, w: ArrayLike) -> FloatArray:
    """Weighted Pearson correlation ``cov_w(x, y) / sqrt(var_w(x) var_w(y))`` along the last axis.

    Weights are normalized; ``nan`` when either variable is constant.

    >>> round(weighted_correlation([1, 2, 3], [2, 4, 7], [1, 1, 1]).item(), 6)
    0.993399
    """
    xx, yy, ww = np.broadcast_arrays(_f(x), _f(y), _f(w))
    ww = ww / ww.sum(axis=-1, keepdims=True)
    mx = (ww * xx).sum(axis=-1, keepdims=True)
    my = (ww * yy).sum(axis=-1, keepdims=True)
    cov = (ww * (xx - mx) * (yy - my)).sum(axis=-1)
    vx = (ww * (xx - mx) ** 2).sum(axis=-1)
    vy = (ww * (yy - my) ** 2).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((vx > 1e-15) & (vy > 1e-15), cov / np.sqrt(vx * vy), np.nan)


def echo_chamber(lean: ArrayLike, P_camp: ArrayLike, position: ArrayLike, weight: ArrayLike) -> FloatArray:
    """Echo-chamber correlation (after Cinelli et al. 2021, *PNAS* 118:e2023301118).

    Weighted correlation, over segments weighted by impressions, between a segment's home lean
    ``ℓ[s]`` and the mean slant it receives ``Σ_c p[s, c] a[c]`` (camp positions ``a``). Near ``1``:
    segments mostly receive content of their own lean.

    >>> round(echo_chamber([-1, 0, 1], [[1, 0], [0.5, 0.5], [0, 1]], [-1, 1], [1, 1, 1]).item(), 6)
    1.0
    """
    return weighted_correlation(lean, received_slant(P_camp, position), weight)


def audience_slant(N: ArrayLike, lean: ArrayLike) -> FloatArray:
    """Audience-based slant of each category (after Flaxman, Goel & Rao 2016, *POQ* 80:298).

    ``a[k] = Σ_s N[s, k] ℓ[s] / Σ_s N[s, k]``: the impression-weighted mean home lean of the segments
    a narrative reaches (``nan`` for a narrative nobody received).

    >>> audience_slant([[3, 0], [1, 2]], [-1, 1]).tolist()
    [-0.5, 1.0]
    """
    n = _f(N)
    tot = n.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.einsum("...sk,s->...k", n, _f(lean)) / tot


def js_divergence(P: ArrayLike, Q: ArrayLike) -> FloatArray:
    """Jensen–Shannon divergence in bits, ``½ KL(p‖m) + ½ KL(q‖m)`` with ``m = (p+q)/2`` (Lin 1991).

    ``0`` for identical diets, ``1`` for disjoint ones. Used for a segment's diet against the whole's.

    >>> js_divergence([[1, 0], [0.5, 0.5]], [0.5, 0.5]).round(6).tolist()
    [0.311278, 0.0]
    """
    p = shares(P)
    q = np.broadcast_to(shares(Q), p.shape)
    m = 0.5 * (p + q)

    def kl(a: FloatArray, b: FloatArray) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(a > 0, a * np.log2(np.where(a > 0, a, 1.0) / np.where(b > 0, b, 1.0)), 0.0).sum(-1)

    return np.maximum(0.5 * kl(p, m) + 0.5 * kl(q, m), 0.0)
