"""Compiled (numba) row kernels of the USE-m3 forward pass: everything but the second convolution's GEMM.

Written as loops over a micro-batch's rows so that each row is read once: the numpy version made a dozen
full passes over (tokens × 3,840) arrays (gathers, shifted sums, ReLU, residuals, layer-norm statistics),
which took as long as the GEMM itself. Both kernels release the GIL, so micro-batches run in parallel
threads. Layout (see ``usem3_forward``): sentences lie in one run of rows separated by zero rows; ``slot[r]``
is row ``r``'s token in the per-id cache, 0 (the cache's zero row) on separator rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["SEP", "assign_ngrams", "first_conv", "second_conv_pool"]


@njit(nogil=True, cache=True, fastmath=True)
def first_conv(slot: np.ndarray, rows: np.ndarray, cache: np.ndarray, b1: np.ndarray, x_off: int, order: int,
               left: int, p_off: int, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out[j] = relu(b1 + Σ_k P[slot[r - left + k], tap k]) + x[slot[r]]`` for ``r = rows[j]``: one branch's
    first convolution (taps and ``x`` read from the per-id cache at columns ``p_off``, ``x_off``)."""
    width = out.shape[1]
    for j in range(rows.shape[0]):
        r = rows[j]
        acc = out[j]
        acc[:] = b1
        for k in range(order):
            acc += cache[slot[r - left + k], p_off + k * width:p_off + (k + 1) * width]
        x = cache[slot[r], x_off:x_off + width]
        for c in range(width):
            v = acc[c]
            acc[c] = (v if v > 0.0 else 0.0) + x[c]


@njit(nogil=True, cache=True, fastmath=True)
def second_conv_pool(slot: np.ndarray, starts: np.ndarray, lens: np.ndarray, cache: np.ndarray, emb: int,
                     stores: tuple[np.ndarray, ...], pslot: np.ndarray, b2: np.ndarray, orders: np.ndarray,
                     lefts: np.ndarray, eps: float, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out[s] = Σ_{t in s} (f_t − μ_t) / sqrt(σ²_t + eps)``, the un-scaled layer-normed sum of each sentence.

    ``f_t = [e_t | c_t]`` with ``c_{i,t} = relu(b2_i + Σ_k Y_i[t − left_i + k, tap k]) + h_{i,t}``, where
    ``[h_{i,q} | Y_i[q]] = [h_{i,q} | h_{i,q} W2cat_i]`` is ``stores[i][pslot[i, q]]``: the second
    convolution's shifted sum, its residual and the layer-norm statistics, one row at a time; the
    per-sentence γ, β scaling is left to the caller.
    """
    d = out.shape[1]
    width = (d - emb) // orders.shape[0]
    f = np.empty(d, dtype=np.float32)
    for s in range(starts.shape[0]):
        for r in range(starts[s], starts[s] + lens[s]):
            f[:emb] = cache[slot[r], :emb]
            for i in range(orders.shape[0]):
                y = stores[i]
                acc = f[emb + i * width:emb + (i + 1) * width]
                acc[:] = b2[i]
                for k in range(orders[i]):
                    acc += y[pslot[i, r - lefts[i] + k], (k + 1) * width:(k + 2) * width]
                h = y[pslot[i, r], :width]
                for c in range(width):
                    v = acc[c]
                    acc[c] = (v if v > 0.0 else 0.0) + h[c]
            mu = 0.0
            sq = 0.0
            for c in range(d):
                mu += f[c]
                sq += f[c] * f[c]
            mu /= d
            w = 1.0 / np.sqrt(max(sq / d - mu * mu, 0.0) + eps)
            for c in range(d):
                out[s, c] += w * (f[c] - mu)

SEP = (1 << 17) - 1  # the token id of separator rows in n-gram keys (ids are < 2**17: 128,010 pieces)


@njit(cache=True)
def assign_ngrams(row_ids: np.ndarray, orders: np.ndarray, lefts: np.ndarray, index: dict[tuple[np.int64, np.int64], int],
                  used: np.ndarray, pslot: np.ndarray, new_rows: np.ndarray,
                  n_new: np.ndarray) -> None:  # pragma: no cover - compiled
    """Find each row's n-gram of branch ``i`` in ``index`` (key → store row), adding the ones not seen.

    The key packs branch ``i`` and the ids of the window ``row_ids[r - left_i : r - left_i + n_i]`` (17 bits
    each) into two integers, so it is exact. New keys take consecutive store rows from ``used[i]``; their
    first rows are listed in ``new_rows[i, :n_new[i]]`` for the caller to compute. ``pslot[i, r]`` is 0 (the
    store's zero row) on separator rows.
    """
    for i in range(orders.shape[0]):
        cnt = 0
        for r in range(row_ids.shape[0]):
            if row_ids[r] == SEP:
                pslot[i, r] = 0
                continue
            hi = np.int64(i) << 60
            lo = np.int64(0)
            for k in range(orders[i]):
                v = np.int64(row_ids[r - lefts[i] + k])
                if k < 3:
                    hi |= v << (17 * k)
                else:
                    lo |= v << (17 * (k - 3))
            key = (hi, lo)
            s = index.get(key, -1)
            if s < 0:
                s = used[i]
                used[i] += 1
                index[key] = s
                new_rows[i, cnt] = r
                cnt += 1
            pslot[i, r] = s
        n_new[i] = cnt
