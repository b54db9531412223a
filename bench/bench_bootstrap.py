"""Benchmark: 1,000 bootstrap replicates over 100,000 messages × 50 segments (budget: < 10 s).

Synthetic data: every message delivered to all 50 segments (dense shares, the worst case), impression
ranges of Meta's buckets with some open top buckets, 2,000 sponsors, 14 narratives + unassigned as
3 candidates per message, 6 camps. The statistic is the per-segment set the pipeline computes (shares,
cross-cutting, diversity, JS divergence) plus the global isolation and Theil M. Prints the median of 3 runs
(after one warm-up run that compiles the kernel).

    python bench/bench_bootstrap.py [--messages 100000] [--segments 50] [--n-boot 1000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bubblelens.measure import metrics as mt
from bubblelens.measure.bootstrap import ExposureData, bootstrap


def make_data(n_messages: int, n_segments: int, seed: int = 0) -> ExposureData:
    rng = np.random.default_rng(seed)
    kn, kc, t = 15, 6, 3
    w = rng.dirichlet(np.full(n_segments, 0.5), size=n_messages)
    buckets = np.array([0, 1000, 5000, 10000, 50000, 100000, 500000, 1000000])
    b = rng.integers(0, len(buckets), n_messages)
    lower = buckets[b].astype(float)
    upper = np.where(b < len(buckets) - 1, buckets[np.minimum(b + 1, len(buckets) - 1)] - 1, np.nan)
    narr_idx = np.stack([rng.choice(kn, t, replace=False) for _ in range(1000)])[rng.integers(0, 1000, n_messages)]
    narr_p = rng.dirichlet(np.ones(t), size=n_messages)
    camp_idx = np.stack([rng.choice(kc, 2, replace=False) for _ in range(100)])[rng.integers(0, 100, n_messages)]
    camp_p = rng.dirichlet(np.ones(2), size=n_messages)
    return ExposureData(
        weights=w, lower=lower, upper=upper, sponsor=rng.integers(0, 2000, n_messages),
        narr_idx=narr_idx, narr_p=narr_p, camp_idx=camp_idx, camp_p=camp_p,
        segments=[f"s{i}" for i in range(n_segments)], narratives=[f"n{i}" for i in range(kn)],
        camps=[f"c{i}" for i in range(kc)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--segments", type=int, default=50)
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    data = make_data(args.messages, args.segments)
    pos = np.array([-0.7, 0.1, 0.0, 0.5, 0.85, 0.95])
    cside = mt.side_of(pos)
    home = np.resize([-1, 1], args.segments)

    def stat(nn: np.ndarray, nc: np.ndarray) -> dict[str, np.ndarray]:
        pn, pc = mt.shares(nn), mt.shares(nc)
        return {"cc": mt.cross_cutting_share(pc, cside, home), "eff": mt.effective_number(pn),
                "gs": mt.gini_simpson(pn), "js": mt.js_divergence(pn, nn.sum(axis=-2)[..., None, :]),
                "iso": mt.isolation_index(nn, home > 0), "m": mt.theil_m(nn)}

    bootstrap(data, stat, n_boot=50, seed=1)  # warm-up: compile / load the cached kernel
    times, cpu = [], []
    for rep in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        out = bootstrap(data, stat, n_boot=args.n_boot, seed=rep)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(f"bootstrap: {args.n_boot} replicates × {args.messages:,} messages × {args.segments} segments: "
          f"median {statistics.median(times):.2f} s over 3 runs ({', '.join(f'{t:.2f}' for t in times)}); "
          f"CPU time median {statistics.median(cpu):.2f} s (all threads); cc shape {out['cc'].shape}")


if __name__ == "__main__":
    main()
