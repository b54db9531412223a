"""The embedding cache: the store's ``embeddings`` table, keyed by (encoder id, text hash).

Nothing is embedded twice: :meth:`EmbeddingCache.embed` looks every distinct text up by its
``text_hash`` under the encoder's id, encodes only the misses and stores them. Another encoder (or another
version or backend of one, which changes its id) embeds anew. ``n_encoded`` and ``n_cached`` count
distinct texts encoded and found, over the cache's lifetime.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ..store import text_hash
from .encoders import Encoder

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["EmbeddingCache"]


class EmbeddingCache:
    """Embed texts through the store's cache (see the module docstring)."""

    def __init__(self, store: Store, encoder: Encoder, *, batch_size: int = 64, progress: bool = False) -> None:
        self.store = store
        self.encoder = encoder
        self.batch_size = batch_size
        self.progress = progress
        self.n_encoded = 0
        self.n_cached = 0

    def _lookup(self, hashes: list[str]) -> dict[str, np.ndarray]:
        if not hashes:
            return {}
        keys = pa.table({"text_hash": pa.array(hashes, pa.string())})
        con = self.store.con
        con.register("_bl_keys", keys)
        try:
            tbl = con.sql(
                "SELECT e.text_hash, e.vector FROM embeddings e JOIN _bl_keys k USING (text_hash) "
                "WHERE e.encoder_id = $enc", params={"enc": self.encoder.id}).to_arrow_table()
        finally:
            con.unregister("_bl_keys")
        if tbl.num_rows == 0:
            return {}
        vec = tbl.column("vector").combine_chunks()
        flat = vec.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        mat = flat.reshape(tbl.num_rows, -1)
        return dict(zip(tbl.column("text_hash").to_pylist(), mat, strict=True))

    def _insert(self, hashes: list[str], vectors: np.ndarray) -> None:
        if not hashes or self.store.read_only:
            return
        n, d = vectors.shape
        lists = pa.ListArray.from_arrays(pa.array(np.arange(0, n * d + 1, d, dtype=np.int32)),
                                         pa.array(vectors.reshape(-1).astype(np.float32)))
        tbl = pa.table({"encoder_id": pa.array([self.encoder.id] * n, pa.string()),
                        "text_hash": pa.array(hashes, pa.string()), "vector": lists})
        con = self.store.con
        con.register("_bl_new", tbl)
        try:
            con.execute("INSERT OR IGNORE INTO embeddings SELECT encoder_id, text_hash, vector FROM _bl_new")
        finally:
            con.unregister("_bl_new")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` (float32, L2-normalized rows), encoding only texts not cached yet."""
        texts = list(texts)
        out = np.zeros((len(texts), self.encoder.dim), dtype=np.float32)
        if not texts:
            return out
        hashes = [text_hash(t) for t in texts]
        first: dict[str, int] = {}
        for i, h in enumerate(hashes):
            first.setdefault(h, i)
        found = self._lookup(list(first))
        missing = [h for h in first if h not in found]
        self.n_cached += len(found)
        if missing:
            vecs = self.encoder.encode([texts[first[h]] for h in missing], batch_size=self.batch_size,
                                       progress=self.progress)
            self.n_encoded += len(missing)
            self._insert(missing, vecs)
            found.update(zip(missing, vecs, strict=True))
        for i, h in enumerate(hashes):
            out[i] = found[h]
        return out
