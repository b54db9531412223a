"""Do the default (census) 95 % intervals cover the truth? A simulation with a known truth.

Each simulated ad library: 40 sponsors × 10 ads, each sponsor of one of ``K`` camps; each ad delivered over
6 regions; its true impressions inside a Meta-style published range; its camp known to the classifier only
through probabilities. The truth is the cross-cutting share of each region against a fixed home camp
(an external lean), computed from the true camps and true impressions. The census interval is computed
from what a user sees (ranges and probabilities) by ``bubblelens.measure.bootstrap.bootstrap`` with
``resample_sponsors=False`` (the default ``--uncertainty census``) and percentile bounds.

Scenarios (each the share of intervals, over regions and libraries, that contain the truth, and their
mean width):

- ``calibrated``: labels calibrated (``P(true camp | p) = p``; ``p ~ Dirichlet(c·π + e_true)``), impressions
  log-uniform in their ranges (what the interval assumes);
- ``uniform-impressions``: the same with true impressions uniform in their ranges (the assumption wrong);
- ``sponsor-certain bubble``: camps from a sponsor table (p = 1) and delivery that depends on the camp;
- ``diffuse bubble``: delivery depends on the camp *and* the camp comes from diffuse text probabilities:
  the probabilities are then no longer calibrated given where the ad was delivered (docs/metrics.md).

    python bench/bench_census_coverage.py [--libraries 200] [--boot 300]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from bubblelens.measure import bootstrap as bs
from bubblelens.measure import metrics as mt
from bubblelens.measure.bootstrap import ExposureData

BUCKETS = [(0, 999), (1000, 4999), (5000, 9999), (10000, 49999), (50000, 99999), (100000, 199999)]


def simulate(rng: np.random.Generator, *, scenario: str, n_camps: int = 3, n_sponsors: int = 40,
             per_sponsor: int = 10, n_regions: int = 6, concentration: float = 0.6
             ) -> tuple[ExposureData, np.ndarray, np.ndarray]:
    """One library: (what the user sees, true camp per ad, true impressions per ad)."""
    m = n_sponsors * per_sponsor
    sponsor = np.repeat(np.arange(n_sponsors), per_sponsor)
    camp_of_sponsor = rng.integers(0, n_camps, n_sponsors)
    truth = camp_of_sponsor[sponsor]
    bubble = scenario in ("sponsor-certain bubble", "diffuse bubble")
    pref = rng.dirichlet(np.full(n_regions, 0.7), n_camps) if bubble else np.full((n_camps, n_regions), 1.0)
    weights = np.vstack([rng.dirichlet(5 * pref[c] + 0.2) for c in truth])
    b = rng.integers(0, len(BUCKETS), m)
    lower = np.array([BUCKETS[i][0] for i in b], dtype=float)
    upper = np.array([BUCKETS[i][1] for i in b], dtype=float)
    lo, hi = np.maximum(lower, 1.0), upper
    u = rng.random(m)
    true_imp = lo + u * (hi - lo) if scenario == "uniform-impressions" else np.exp(
        np.log(lo) + u * (np.log(hi) - np.log(lo)))
    if scenario == "sponsor-certain bubble":
        camp_p = np.eye(n_camps)[truth]
    else:
        pi = np.bincount(truth, minlength=n_camps) / m
        alpha = concentration * np.maximum(pi, 1e-3)[None, :].repeat(m, 0)
        alpha[np.arange(m), truth] += 1.0
        g = rng.gamma(alpha)
        camp_p = g / g.sum(axis=1, keepdims=True)
    data = ExposureData(weights=weights, lower=lower, upper=upper, sponsor=sponsor,
                        narr_idx=np.zeros((m, 1), dtype=np.int64), narr_p=np.ones((m, 1)),
                        camp_idx=np.tile(np.arange(n_camps), (m, 1)), camp_p=camp_p,
                        segments=[f"r{i}" for i in range(n_regions)], narratives=["n"],
                        camps=[f"c{i}" for i in range(n_camps)])
    return data, truth, true_imp


def coverage(scenario: str, *, libraries: int, n_boot: int, seed: int = 0, n_camps: int = 3
             ) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    hits, widths = [], []
    for lib in range(libraries):
        data, truth, true_imp = simulate(rng, scenario=scenario, n_camps=n_camps)
        home = np.arange(data.weights.shape[1]) % n_camps

        def stat(nn: np.ndarray, nc: np.ndarray, home: np.ndarray = home) -> dict[str, np.ndarray]:
            return {"cc": mt.cross_cutting_share(mt.shares(nc), np.arange(n_camps), home)}

        N_true = (data.weights * true_imp[:, None]).T @ np.eye(n_camps)[truth]
        true_cc = stat(np.zeros(1), N_true)["cc"]
        boot = bs.bootstrap(data, stat, n_boot=n_boot, seed=seed + lib, resample_sponsors=False)["cc"]
        lo, hi = np.quantile(boot, [0.025, 0.975], axis=0)
        hits.extend(((lo <= true_cc) & (true_cc <= hi)).tolist())
        widths.extend((hi - lo).tolist())
    return {"scenario": scenario, "coverage": float(np.mean(hits)), "width": float(np.mean(widths)),
            "intervals": len(hits)}


SCENARIOS = ("calibrated", "uniform-impressions", "sponsor-certain bubble", "diffuse bubble")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--libraries", type=int, default=200)
    ap.add_argument("--boot", type=int, default=300)
    args = ap.parse_args()
    print(f"{'scenario':24} {'coverage':>9} {'mean width':>11} {'intervals':>10}")
    for sc in SCENARIOS:
        t0 = time.perf_counter()
        r = coverage(sc, libraries=args.libraries, n_boot=args.boot)
        print(f"{sc:24} {r['coverage']:9.3f} {r['width']:11.3f} {r['intervals']:10d}   "
              f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
