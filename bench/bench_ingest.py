"""Ingest benchmark: Meta-API ads per second (issue 2: at least 20,000 ads/s on a 2-core machine).

Generates N ads in the ``/ads_archive`` shape (bodies, link titles, bounds as strings, 18
``demographic_distribution`` cells and 13 ``delivery_by_region`` regions each) as JSON Lines, then
ingests them into a fresh store REPEAT times and prints the median rate::

    python bench/bench_ingest.py               # 100,000 ads, 3 repeats
    python bench/bench_ingest.py --n 20000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from bubblelens.ingest import ingest_paths
from bubblelens.store import Store

REGIONS = ["Auvergne-Rhône-Alpes", "Bourgogne-Franche-Comté", "Bretagne", "Centre-Val de Loire", "Corse",
           "Grand Est", "Hauts-de-France", "Île-de-France", "Normandie", "Nouvelle-Aquitaine", "Occitanie",
           "Pays de la Loire", "Provence-Alpes-Côte d'Azur"]
AGES = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
WORDS = ['pouvoir', "d'achat", 'retraites', 'sécurité', 'école', 'santé', 'hôpital', 'climat', 'Europe',
         'impôts', 'emploi', 'logement', 'agriculture', 'démocratie', 'défense', 'votez', 'dimanche',
         'ensemble', 'avenir', 'familles', 'territoires']


def _shares(rng: random.Random, n: int) -> list[str]:
    w = [rng.random() for _ in range(n)]
    t = sum(w)
    return [f"{x / t:.6f}" for x in w]


def generate(path: Path, n: int, *, seed: int = 0) -> None:
    """Write ``n`` synthetic ads as JSON Lines (deterministic for a seed)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            ad_id = str(10**15 + i)
            lo = rng.choice([0, 1000, 5000, 10000, 50000, 100000])
            body = " ".join(rng.choices(WORDS, k=rng.randint(15, 60))).capitalize() + "."
            demo = [{"percentage": p, "age": a, "gender": g} for p, (a, g) in
                    zip(_shares(rng, 18), [(a, g) for a in AGES for g in ("female", "male", "unknown")],
                        strict=True)]
            regs = [{"percentage": p, "region": r} for p, r in zip(_shares(rng, 13), REGIONS, strict=True)]
            ad = {
                "id": ad_id, "ad_creation_time": "2024-06-20",
                "ad_creative_bodies": [body],
                "ad_creative_link_titles": [" ".join(rng.choices(WORDS, k=4))],
                "ad_creative_link_captions": ["example.fr"],
                "ad_delivery_start_time": "2024-06-21", "ad_delivery_stop_time": "2024-06-30",
                "ad_snapshot_url": f"https://www.facebook.com/ads/archive/render_ad/?id={ad_id}"
                                   "&access_token=REDACTED",
                "bylines": f"Sponsor {i % 400}", "page_id": str(10**11 + i % 400),
                "page_name": f"Page {i % 400}", "currency": "EUR",
                "impressions": {"lower_bound": str(lo), "upper_bound": str(lo * 2 + 999)},
                "spend": {"lower_bound": "100", "upper_bound": "199"},
                "languages": ["fr"], "publisher_platforms": ["facebook", "instagram"],
                "demographic_distribution": demo, "delivery_by_region": regs,
            }
            fh.write(json.dumps(ad, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "ads.jsonl"
        t0 = time.perf_counter()
        generate(src, args.n)
        print(f"generated {args.n:,} ads ({src.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - t0:.1f} s")
        rates, cpu_rates = [], []
        for r in range(args.repeat):
            db = Path(tmp) / f"bench{r}.duckdb"
            with Store.open(db) as store:
                t0, c0 = time.perf_counter(), time.process_time()
                rep = ingest_paths(store, [src])
                dt, cpu = time.perf_counter() - t0, time.process_time() - c0
                s = store.stats()
            f = rep.files[0]
            assert f.error is None and f.kept == args.n, f
            rates.append(args.n / dt)
            cpu_rates.append(args.n / cpu)
            print(f"run {r + 1}: {dt:.2f} s wall, {cpu:.2f} s CPU (all threads), {args.n / dt:,.0f} ads/s "
                  f"wall, {cpu / args.n * 1e6:.0f} µs CPU/ad ({s['messages']:,} messages, "
                  f"{s['deliveries']:,} deliveries)")
        med = statistics.median(rates)
        print(f"median CPU cost: {1e6 / statistics.median(cpu_rates):.0f} µs/ad "
              f"({statistics.median(cpu_rates):,.0f} ads per CPU-second)")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"load average while running: {load:.1f} on {os.cpu_count()} CPUs")
        print(f"median: {med:,.0f} ads/s over {args.repeat} run(s) (target ≥ 20,000): "
              f"{'OK' if med >= 20_000 else 'BELOW TARGET'}")


if __name__ == "__main__":
    main()
