"""Uncertainty of exposure metrics: a vectorized cluster bootstrap, BCa intervals, a permutation null.

Model of one replicate (docs/metrics.md "Uncertainty"):

- **Sponsors are the clusters**: each sponsor gets a Poisson(1) weight (the Poisson bootstrap, a
  large-sample equivalent of resampling sponsors with replacement; Hanley & MacGibbon 2006), shared by all
  its messages, because one advertiser's ads are not independent.
- **Impressions** of each message are drawn inside their published range (:mod:`.ranges`).
- **Labels**: each message's narrative and camp are drawn from its classifier probabilities, by inverse
  CDF on cumulative sums (vectorized over messages × replicates).
- The replicate's matrices ``N[s, k] = Σ_m D[m, s] · w_sponsor(m) · I_m · 1[z_m = k]`` are accumulated by
  a compiled kernel (numba) that streams the message × segment weights ``D`` once per chunk of
  replicates; there is no Python loop per message.
- The permutation null runs in the same kernel: in replicate ``r`` message ``m`` draws its labels from the
  distributions of message ``π_r(m)`` (impressions at their point values, every sponsor weight 1).

Intervals are percentile, or BCa (Efron 1987) with the acceleration from a delete-one-group jackknife over
sponsors (sponsors pooled into at most ``max_groups`` groups). Everything is seeded: the same inputs, seed
and ``n_boot`` give the same numbers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

from ..errors import MeasureError
from .ranges import draw_impressions, point_impressions

__all__ = [
    "ExposureData",
    "Statistic",
    "bootstrap",
    "draw_categories",
    "expected_matrices",
    "intervals",
    "jackknife",
    "permutation_null",
    "replicate_matrices",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
#: maps batched matrices ``(N_narr (B,S,Kn), N_camp (B,S,Kc))`` to named arrays with leading axis ``B``
Statistic = Callable[[FloatArray, FloatArray], Mapping[str, FloatArray]]

FEW_ADS = 5
#: ``BUBBLELENS_PLAIN_PERMUTATION=1``: the permutation null's former path (one Python-level shuffle and
#: draw per replicate), kept for the benchmark's before/after ratio (bench/bench_measure_de.py)
_PLAIN_PERMUTATION = os.environ.get("BUBBLELENS_PLAIN_PERMUTATION", "") not in ("", "0")
FEW_SPONSORS = 3


@dataclass
class ExposureData:
    """Everything the bootstrap needs, as arrays (built by :mod:`.matrices`).

    ``weights[m, s]`` is the share of message ``m``'s impressions delivered to segment ``s`` (cells), or
    the number of times members of ``s`` saw ``m`` (exposure logs; then ``lower = upper = 1``).
    ``narr_idx``/``narr_p`` (``M × T``) hold each message's candidate narrative columns and
    probabilities (rows sum to 1; pad with probability 0); likewise ``camp_idx``/``camp_p``.
    """

    weights: FloatArray | sp.csr_matrix
    lower: FloatArray
    upper: FloatArray
    sponsor: IntArray
    narr_idx: IntArray
    narr_p: FloatArray
    camp_idx: IntArray
    camp_p: FloatArray
    segments: list[str]
    narratives: list[str]
    camps: list[str]
    message_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        m = len(self.lower)
        if self.weights.shape[0] != m or len(self.sponsor) != m:
            raise MeasureError("weights, ranges and sponsors must have one row per message")
        if self.weights.shape[1] != len(self.segments):
            raise MeasureError("weights must have one column per segment")
        for p in (self.narr_p, self.camp_p):
            s = p.sum(axis=1)
            if m and not np.allclose(s, 1.0, atol=1e-6):
                raise MeasureError("label probabilities of every message must sum to 1")

    @property
    def n_messages(self) -> int:
        return len(self.lower)

    def dense_weights(self) -> FloatArray:
        w = self.weights
        return np.asarray(w.toarray() if isinstance(w, sp.spmatrix | sp.sparray) else w, dtype=np.float64)

    def support(self, among: NDArray[np.bool_] | None = None) -> tuple[IntArray, IntArray]:
        """Per segment: number of distinct ads and of distinct sponsors with a positive weight (only the
        messages where ``among`` is True, when given)."""
        w = sp.csc_matrix(self.weights)
        n_ads = np.zeros(len(self.segments), dtype=np.int64)
        n_sp = np.zeros(len(self.segments), dtype=np.int64)
        for s in range(len(self.segments)):
            rows = w.indices[w.indptr[s]:w.indptr[s + 1]][w.data[w.indptr[s]:w.indptr[s + 1]] > 0]
            if among is not None:
                rows = rows[among[rows]]
            n_ads[s] = len(rows)
            n_sp[s] = len(np.unique(self.sponsor[rows]))
        return n_ads, n_sp

    def few_ads(self) -> NDArray[np.bool_]:
        """Segments resting on few ads: fewer than 5 ads or fewer than 3 sponsors."""
        n_ads, n_sp = self.support()
        return (n_ads < FEW_ADS) | (n_sp < FEW_SPONSORS)


def _soft(idx: IntArray, p: FloatArray, k: int) -> FloatArray:
    out = np.zeros((idx.shape[0], k))
    np.add.at(out, (np.repeat(np.arange(idx.shape[0]), idx.shape[1]), idx.ravel()), p.ravel())
    return out


def expected_matrices(data: ExposureData, *, impressions: FloatArray | None = None,
                      drop: NDArray[np.bool_] | None = None) -> tuple[FloatArray, FloatArray]:
    """Point matrices: ``N[s, k] = Σ_m D[m, s] I_m P(z_m = k)`` with point impressions, soft counts."""
    v = point_impressions(data.lower, data.upper) if impressions is None else impressions
    if drop is not None:
        v = np.where(drop, 0.0, v)
    pn = _soft(data.narr_idx, data.narr_p, len(data.narratives)) * v[:, None]
    pc = _soft(data.camp_idx, data.camp_p, len(data.camps)) * v[:, None]
    w = data.weights
    return np.asarray(w.T @ pn), np.asarray(w.T @ pc)


def draw_categories(idx: IntArray, p: FloatArray, n_draws: int, rng: np.random.Generator) -> IntArray:
    """Draw each row's category ``n_draws`` times: inverse CDF on the row's cumulative sums.

    Returns ``(M, n_draws)`` column indices: ``t = #{j : u > cumsum(p)_j}`` for ``u ~ U(0, 1)``.
    """
    cum = np.cumsum(p, axis=1)
    cum[:, -1] = 1.0 + 1e-12  # guard against rounding
    u = rng.random((p.shape[0], n_draws))
    t = (u[:, :, None] > cum[:, None, :]).sum(axis=2)
    return np.take_along_axis(idx, np.minimum(t, p.shape[1] - 1), axis=1)


try:  # the compiled accumulation kernels (numba ships with umap-learn)
    from numba import njit, prange

    @njit(parallel=True, cache=True, fastmath=True)
    def _accumulate_dense(D, z, v, n_cols, n_threads):  # pragma: no cover
        M, R = v.shape
        S = D.shape[1]
        L = z.shape[2]
        part = np.zeros((n_threads, R, n_cols, S))
        for t in prange(n_threads):
            lo = M * t // n_threads
            hi = M * (t + 1) // n_threads
            out = part[t]
            for m in range(lo, hi):
                d = D[m]
                for r in range(R):
                    c = v[m, r]
                    if c == 0.0:
                        continue
                    for j in range(L):
                        row = out[r, z[m, r, j]]
                        for s in range(S):
                            row[s] += c * d[s]
        return part.sum(axis=0)

    @njit(parallel=True, cache=True, fastmath=True)
    def _accumulate_csr(indptr, indices, data, z, v, n_cols, n_seg, n_threads):  # pragma: no cover
        M, R = v.shape
        L = z.shape[2]
        part = np.zeros((n_threads, R, n_cols, n_seg))
        for t in prange(n_threads):
            lo = M * t // n_threads
            hi = M * (t + 1) // n_threads
            out = part[t]
            for m in range(lo, hi):
                a = indptr[m]
                b = indptr[m + 1]
                if a == b:
                    continue
                for r in range(R):
                    c = v[m, r]
                    if c == 0.0:
                        continue
                    for j in range(L):
                        row = out[r, z[m, r, j]]
                        for q in range(a, b):
                            row[indices[q]] += c * data[q]
        return part.sum(axis=0)

    _MASK21 = np.uint64((1 << 21) - 1)
    _INV21 = 1.0 / (1 << 21)

    @njit(inline="always")
    def _pick(cum, u):  # pragma: no cover
        t = 0
        n = cum.shape[0] - 1
        while t < n and u > cum[t]:
            t += 1
        return t

    @njit(inline="always")
    def _draw(x, w, llo, span, cum_n, idx_n, cum_c, idx_c):  # pragma: no cover
        """One (message, replicate): ``(c, k_narr, k_camp)`` from one raw 64-bit draw ``x``.

        ``x`` splits into three 21-bit uniforms (midpoints) ``u1, u2, u3``; impressions
        ``c = w · exp(llo + u1 · span)`` (log-uniform in the range), narrative and camp columns by
        inverse CDF of ``u2``, ``u3``.
        """
        u1 = (np.float64(x >> np.uint64(43)) + 0.5) * _INV21
        u2 = (np.float64((x >> np.uint64(22)) & _MASK21) + 0.5) * _INV21
        u3 = (np.float64((x >> np.uint64(1)) & _MASK21) + 0.5) * _INV21
        return w * np.exp(llo + u1 * span), idx_n[_pick(cum_n, u2)], idx_c[_pick(cum_c, u3)]

    @njit(parallel=True, cache=True, fastmath=True)
    def _replicates_dense(D, llo, span, spn, W, raw, src, cum_n, idx_n, cum_c, idx_c,
                          n_cols, n_threads):  # pragma: no cover
        M, R = raw.shape
        S = D.shape[1]
        permuted = src.shape[0] > 0
        part = np.zeros((n_threads, R, n_cols, S))
        for t in prange(n_threads):
            lo = M * t // n_threads
            hi = M * (t + 1) // n_threads
            out = part[t]
            for m in range(lo, hi):
                d = D[m]
                g = spn[m]
                for r in range(R):
                    w = W[g, r]
                    if w == 0.0:
                        continue
                    h = src[m, r] if permuted else m  # permutation null: the labels of message h
                    c, kn, kc = _draw(raw[m, r], w, llo[m], span[m], cum_n[h], idx_n[h], cum_c[h], idx_c[h])
                    for k in (kn, kc):
                        row = out[r, k]
                        for s in range(S):
                            row[s] += c * d[s]
        return part.sum(axis=0)

    @njit(parallel=True, cache=True, fastmath=True)
    def _replicates_csr(indptr, indices, data, llo, span, spn, W, raw, src, cum_n, idx_n,
                        cum_c, idx_c, n_cols, n_seg, n_threads):  # pragma: no cover
        M, R = raw.shape
        permuted = src.shape[0] > 0
        part = np.zeros((n_threads, R, n_cols, n_seg))
        for t in prange(n_threads):
            lo = M * t // n_threads
            hi = M * (t + 1) // n_threads
            out = part[t]
            for m in range(lo, hi):
                a = indptr[m]
                b = indptr[m + 1]
                if a == b:
                    continue
                g = spn[m]
                for r in range(R):
                    w = W[g, r]
                    if w == 0.0:
                        continue
                    h = src[m, r] if permuted else m  # permutation null: the labels of message h
                    c, kn, kc = _draw(raw[m, r], w, llo[m], span[m], cum_n[h], idx_n[h], cum_c[h], idx_c[h])
                    for k in (kn, kc):
                        row = out[r, k]
                        for q in range(a, b):
                            row[indices[q]] += c * data[q]
        return part.sum(axis=0)

    _HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a dependency of umap-learn
    _HAVE_NUMBA = False


def _accumulate(data: ExposureData, z: NDArray[np.int32], v: FloatArray, n_cols: int) -> FloatArray:
    """``out[r, s, k] = Σ_m D[m, s] v[m, r] Σ_j 1[z[m, r, j] = k]`` for a chunk of replicates."""
    w = data.weights
    n_seg = len(data.segments)
    if _HAVE_NUMBA:
        import numba

        nt = int(numba.get_num_threads())
        if sp.issparse(w):
            c = sp.csr_matrix(w)
            out = _accumulate_csr(c.indptr, c.indices, c.data.astype(np.float64), z, v, n_cols, n_seg, nt)
        else:
            out = _accumulate_dense(np.ascontiguousarray(w, dtype=np.float64), z, v, n_cols, nt)
        return np.ascontiguousarray(np.swapaxes(out, 1, 2))
    # fallback: one sparse product per replicate (slower, same numbers)
    m, r = v.shape
    res = np.empty((r, n_seg, n_cols))
    wt = sp.csr_matrix(w).T.tocsr()
    for i in range(r):
        y = sp.csr_matrix((np.repeat(v[:, i], z.shape[2]), (np.repeat(np.arange(m), z.shape[2]),
                                                           z[:, i, :].ravel())), shape=(m, n_cols))
        res[i] = (wt @ y).toarray()
    return res


def _cum(p: FloatArray) -> FloatArray:
    cum = np.cumsum(p, axis=1)
    cum[:, -1] = 2.0  # u < 1 always lands in the last column at worst (guards rounding)
    return cum


def _fused_replicates(data: ExposureData, n: int, rng: np.random.Generator, *, resample_sponsors: bool,
                      draw_ranges: bool, permute: bool = False) -> tuple[FloatArray, FloatArray]:
    """Compiled path: uniforms drawn here (seeded), transformed and accumulated inside the kernel.

    ``permute``: the permutation null's replicates (impressions at their point values, weight 1 per
    sponsor): in replicate ``r`` message ``m`` draws its labels from the distributions of message
    ``π_r(m)``, ``π_r`` a uniform random permutation (one per replicate, ``Generator.permuted``).
    """
    import numba

    from .ranges import bounds

    m = data.n_messages
    kn, kc = len(data.narratives), len(data.camps)
    if permute:
        resample_sponsors = draw_ranges = False
    lo, hi = bounds(data.lower, data.upper)
    llo = np.log(lo)
    span = np.log(hi) - llo if draw_ranges else np.zeros(m)
    if not draw_ranges:
        llo = np.log(point_impressions(data.lower, data.upper))
    n_sp = int(data.sponsor.max()) + 1 if m else 1
    W = rng.poisson(1.0, size=(n_sp, n)).astype(np.float64) if resample_sponsors else np.ones((n_sp, n))
    if permute:  # (M, n): the message whose labels message m carries in replicate r
        src = np.ascontiguousarray(rng.permuted(np.tile(np.arange(m, dtype=np.int64), (n, 1)), axis=1).T)
    else:
        src = np.zeros((0, 0), dtype=np.int64)
    # one raw 64-bit draw per (message, replicate), split into three 21-bit uniforms (midpoints):
    # impressions, narrative, camp
    raw = rng.bit_generator.random_raw((m, n))
    args = (llo, span, data.sponsor.astype(np.int64), W, raw, src,
            _cum(data.narr_p), data.narr_idx.astype(np.int64),
            _cum(data.camp_p), (data.camp_idx + kn).astype(np.int64), kn + kc)
    nt = int(numba.get_num_threads())
    w = data.weights
    if sp.issparse(w):
        c = sp.csr_matrix(w)
        out = _replicates_csr(c.indptr, c.indices, c.data.astype(np.float64), *args, len(data.segments), nt)
    else:
        out = _replicates_dense(np.ascontiguousarray(w, dtype=np.float64), *args, nt)
    out = np.swapaxes(out, 1, 2)
    return np.ascontiguousarray(out[:, :, :kn]), np.ascontiguousarray(out[:, :, kn:])


def replicate_matrices(data: ExposureData, n: int, rng: np.random.Generator, *,
                       resample_sponsors: bool = True, draw_ranges: bool = True,
                       draw_labels: bool = True, permute: bool = False) -> tuple[FloatArray, FloatArray]:
    """``n`` bootstrap replicates of ``(N_narr, N_camp)``: shapes ``(n, S, Kn)`` and ``(n, S, Kc)``.

    ``permute=True`` instead gives the permutation null: sponsors and impressions fixed at their point
    values, and each replicate's label distributions shuffled across messages before drawing.
    """
    m = data.n_messages
    kn, kc = len(data.narratives), len(data.camps)
    if permute and _HAVE_NUMBA and not _PLAIN_PERMUTATION:
        return _fused_replicates(data, n, rng, resample_sponsors=False, draw_ranges=False, permute=True)
    if permute:
        resample_sponsors = draw_ranges = False
    elif _HAVE_NUMBA and draw_labels:
        return _fused_replicates(data, n, rng, resample_sponsors=resample_sponsors, draw_ranges=draw_ranges)
    if draw_ranges:
        v = draw_impressions(data.lower, data.upper, n, rng)
    else:
        v = np.repeat(point_impressions(data.lower, data.upper)[:, None], n, axis=1)
    if resample_sponsors:
        n_sp = int(data.sponsor.max()) + 1 if m else 0
        v *= rng.poisson(1.0, size=(n_sp, n))[data.sponsor]
    if permute:
        zn = np.empty((m, n), dtype=np.int64)
        zc = np.empty((m, n), dtype=np.int64)
        for i in range(n):
            perm = rng.permutation(m)
            zn[:, i] = draw_categories(data.narr_idx[perm], data.narr_p[perm], 1, rng)[:, 0]
            zc[:, i] = draw_categories(data.camp_idx[perm], data.camp_p[perm], 1, rng)[:, 0]
    elif draw_labels:
        zn = draw_categories(data.narr_idx, data.narr_p, n, rng)
        zc = draw_categories(data.camp_idx, data.camp_p, n, rng)
    else:
        raise MeasureError("draw_labels=False is not supported: use expected_matrices for soft counts")
    z = np.stack([zn, zc + kn], axis=2).astype(np.int32)
    out = _accumulate(data, z, v, kn + kc)
    return out[:, :, :kn], out[:, :, kn:]


def bootstrap(data: ExposureData, statistic: Statistic, *, n_boot: int = 1000, seed: int = 0,
              chunk: int = 50, resample_sponsors: bool = True) -> dict[str, FloatArray]:
    """Run ``n_boot`` replicates in chunks; returns each statistic stacked, leading axis ``n_boot``.

    ``resample_sponsors=False`` keeps every advertiser with weight 1 (the census interval: only what is
    not known about these ads, impressions inside their ranges and labels, is drawn).
    Chunk ``i`` draws from its own stream (``SeedSequence(seed).spawn``), so results depend only on
    ``seed``, ``n_boot`` and ``chunk``.
    """
    if n_boot <= 0:
        return {}
    n_chunks = -(-n_boot // chunk)
    seqs = np.random.SeedSequence(seed).spawn(n_chunks)
    parts: dict[str, list[FloatArray]] = {}
    for i, ss in enumerate(seqs):
        n = min(chunk, n_boot - i * chunk)
        nn, nc = replicate_matrices(data, n, np.random.default_rng(ss), resample_sponsors=resample_sponsors)
        for k, val in statistic(nn, nc).items():
            parts.setdefault(k, []).append(np.asarray(val, dtype=np.float64))
    return {k: np.concatenate(v, axis=0) for k, v in parts.items()}


def jackknife(data: ExposureData, statistic: Statistic, *, max_groups: int = 100,
              seed: int = 0) -> dict[str, FloatArray]:
    """Delete-one-group jackknife over sponsors at the point estimate (soft counts, point impressions).

    Sponsors are pooled at random into ``min(#sponsors, max_groups)`` groups; returns each statistic
    with leading axis = groups.
    """
    n_sp = int(data.sponsor.max()) + 1 if data.n_messages else 0
    g = min(n_sp, max_groups)
    if g < 2:
        return {}
    rng = np.random.default_rng(seed)
    group_of_sponsor = rng.permutation(n_sp) % g
    grp = group_of_sponsor[data.sponsor]
    nn_list, nc_list = [], []
    for j in range(g):
        nn, nc = expected_matrices(data, drop=grp == j)
        nn_list.append(nn)
        nc_list.append(nc)
    return {k: np.asarray(v, dtype=np.float64) for k, v in statistic(np.stack(nn_list), np.stack(nc_list)).items()}


def intervals(theta: FloatArray, boot: FloatArray, jack: FloatArray | None = None, *,
              level: float = 0.95, method: str = "percentile") -> tuple[FloatArray, FloatArray, str]:
    """Confidence intervals from bootstrap replicates ``boot`` (leading axis = replicates).

    BCa (Efron 1987) when jackknife values are given: bias correction ``z0 = Φ⁻¹(#{θ* < θ̂}/B)``,
    acceleration ``a = Σ(θ̄−θ_i)³ / (6 (Σ(θ̄−θ_i)²)^{3/2})`` from the jackknife, and the adjusted
    percentiles ``Φ(z0 + (z0 + z_α) / (1 − a (z0 + z_α)))``. Falls back to plain percentiles where BCa
    is undefined (all replicates on one side, constant jackknife). Returns ``(low, high, method)``.
    """
    alpha = (1 - level) / 2
    b = np.asarray(boot, dtype=np.float64)
    th = np.asarray(theta, dtype=np.float64)
    valid = ~np.isnan(b)
    lo_p = np.nanquantile(b, alpha, axis=0) if valid.any() else np.full(th.shape, np.nan)
    hi_p = np.nanquantile(b, 1 - alpha, axis=0) if valid.any() else np.full(th.shape, np.nan)
    if method == "percentile" or jack is None or len(jack) < 2:
        return lo_p, hi_p, "percentile"
    if method != "bca":
        raise MeasureError(f"unknown interval method {method!r}: percentile or bca")
    nb = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = (np.where(valid, b < th, False).sum(axis=0) + 0.5 * np.where(valid, b == th, False).sum(axis=0)) / nb
        z0 = ndtri(np.clip(frac, 1e-6, 1 - 1e-6))
        jm = np.nanmean(jack, axis=0)
        d = jm - jack
        num = np.nansum(d ** 3, axis=0)
        den = 6.0 * np.nansum(d ** 2, axis=0) ** 1.5
        a = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        out = []
        for zq in (ndtri(alpha), ndtri(1 - alpha)):
            q = ndtr(z0 + (z0 + zq) / (1 - a * (z0 + zq)))
            out.append(q)
    ok = (frac > 0) & (frac < 1) & np.isfinite(out[0]) & np.isfinite(out[1])
    lo = np.array(lo_p, dtype=np.float64, copy=True)
    hi = np.array(hi_p, dtype=np.float64, copy=True)
    flat_b = b.reshape(b.shape[0], -1)
    for i, (qa, qb, good) in enumerate(zip(np.ravel(out[0]), np.ravel(out[1]), np.ravel(ok), strict=True)):
        if good:
            col = flat_b[:, i]
            col = col[~np.isnan(col)]
            lo.flat[i] = np.quantile(col, qa)
            hi.flat[i] = np.quantile(col, qb)
    return lo, hi, "bca"


def permutation_null(data: ExposureData, statistic: Callable[[FloatArray, FloatArray], FloatArray],
                     observed: float, *, n_perm: int = 499, seed: int = 0,
                     chunk: int = 50) -> tuple[float, FloatArray]:
    """Permutation p-value ``(1 + #{T_perm ≥ T_obs}) / (1 + n_perm)`` of a scalar statistic.

    Null: a message's narrative and camp are independent of where it was delivered. Each permutation
    shuffles the messages' label distributions across messages (keeping every message's delivery and
    every label's frequency) and draws labels from them.
    """
    if n_perm <= 0:
        return float("nan"), np.empty(0)
    seqs = np.random.SeedSequence([seed, 1]).spawn(-(-n_perm // chunk))
    vals = []
    for i, ss in enumerate(seqs):
        n = min(chunk, n_perm - i * chunk)
        nn, nc = replicate_matrices(data, n, np.random.default_rng(ss), permute=True)
        vals.append(np.asarray(statistic(nn, nc), dtype=np.float64))
    null = np.concatenate(vals)
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + len(null))), null
