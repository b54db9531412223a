#!/usr/bin/env python
"""Narrative discovery: BubbleLens's clusterer against BERTopic, same messages, same embeddings, one run.

    python bench/bench_cluster.py [--fixtures data/fixtures] [--seed 0] [--repeats 3]

Both get the fixture messages (the whole corpus, 800 messages in 12 planted narratives) and the same
precomputed USE-multilingual embeddings (computed once, outside both timings). Each method is warmed up
first on the first 120 messages (UMAP's numba compilation, for the code paths each one uses, is paid
before anything is timed), then run ``--repeats`` times, with seeds ``seed, seed + 1, …`` (the same for
both: one seed's UMAP layout is one draw, and NMI moves by ±0.03 between seeds). Reported: the median wall
time (fit + labels with c-TF-IDF keywords), and the mean over seeds of the NMI against the planted
narrative (noise counted as one class), the outlier share and the number of clusters.
BERTopic (``pip install bertopic``, the [bench] extra) is run with its defaults as documented (UMAP
n_neighbors 15, 5 components, min_dist 0, cosine, low_memory False; HDBSCAN min_cluster_size 10, eom;
c-TF-IDF), only the seed set; it is skipped with a note when absent. Both reduce to the same 5 dimensions.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score as nmi


def timed(fn: Callable[[int], Any], seeds: list[int]) -> tuple[list[float], list[Any]]:
    """Wall time and result of ``fn(seed)`` for each seed."""
    times, outs = [], []
    for seed in seeds:
        t = time.perf_counter()
        outs.append(fn(seed))
        times.append(time.perf_counter() - t)
    return times, outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--fixtures", default="data/fixtures", type=Path)
    ap.add_argument("--seed", default=0, type=int)
    ap.add_argument("--repeats", default=3, type=int)
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

    def bubblelens(n: int, seed: int) -> tuple[np.ndarray, int]:
        # the warm-up (n < all) fits half and assigns the rest, to compile the transform path too
        m = InterestClusterer(random_state=seed, **({"max_fit": n // 2} if n < len(docs) else {})).fit(X[:n])
        ids = np.where(m.labels_ < 0, "outlier", m.labels_.astype(str))
        top_terms(docs[:n], list(ids), n=10, exclude=("outlier",))
        return m.labels_, m.n_segments_

    methods: dict[str, Callable[[int, int], tuple[np.ndarray, int]]] = {"bubblelens": bubblelens}
    try:
        from bertopic import BERTopic
    except ImportError:
        print("BERTopic not installed (pip install bertopic): compared with nothing")
    else:
        from umap import UMAP

        def bertopic(n: int, seed: int) -> tuple[np.ndarray, int]:
            umap_model = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine",
                              low_memory=False, random_state=seed)
            topics, _ = BERTopic(umap_model=umap_model, calculate_probabilities=False).fit_transform(
                docs[:n], X[:n])
            topics = np.asarray(topics)
            return topics, len(set(topics.tolist()) - {-1})

        methods["bertopic"] = bertopic

    seeds = list(range(args.seed, args.seed + args.repeats))
    rows = []
    for name, fn in methods.items():
        t = time.perf_counter()
        fn(120, args.seed)  # warm-up: numba compilation of fit and transform paths, imports
        warm = time.perf_counter() - t
        times, outs = timed(lambda seed, fn=fn: fn(len(docs), seed), seeds)
        scores = [nmi(y, labels) for labels, _ in outs]
        rows.append({"method": name, "wall_s": statistics.median(times),
                     "runs_s": " ".join(f"{x:.2f}" for x in times), "warmup_s": warm,
                     "nmi": float(np.mean(scores)), "nmi_runs": " ".join(f"{x:.3f}" for x in scores),
                     "outlier_share": float(np.mean([np.mean(labels == -1) for labels, _ in outs])),
                     "clusters": float(np.mean([k for _, k in outs]))})
    res = pd.DataFrame(rows).set_index("method")
    print(f"wall time: median of {args.repeats} timed runs (seeds {seeds}) after one warm-up each; "
          "NMI, outliers, clusters: means over those runs")
    print(res.round(3).to_string())
    if len(res) == 2:
        b, o = res.loc["bertopic"], res.loc["bubblelens"]
        print(f"wall time ratio BERTopic / BubbleLens: {b.wall_s / o.wall_s:.2f}; "
              f"NMI {o.nmi:.3f} vs {b.nmi:.3f}; outliers {o.outlier_share:.1%} vs {b.outlier_share:.1%}")


if __name__ == "__main__":
    main()
