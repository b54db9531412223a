"""Ingest benchmark: Meta-API ads per second (issue 2: at least 20,000 ads/s on a 2-core machine).

Generates N ads in the ``/ads_archive`` shape (bodies, link titles, bounds as strings, 18
``demographic_distribution`` cells and 13 ``delivery_by_region`` regions each) as JSON Lines, then
ingests them into a fresh store REPEAT times and prints the median rate::

    python bench/bench_ingest.py                   # 100,000 ads, 3 repeats
    python bench/bench_ingest.py --n 20000 --repeat 1
    python bench/bench_ingest.py --baseline HEAD   # also the committed code, runs interleaved

Each run is a fresh interpreter that first ingests a small file (imports and first-call set-up are
not timed), then times ``ingest_paths`` on the whole file: wall clock and CPU time of all threads;
closing the store afterwards (a checkpoint DuckDB left for later is done there) is timed apart.
With ``--baseline REF`` the ``bubblelens`` package of that git revision runs the same file in turns
with the working tree's (baseline, current, current, baseline, ...), so both see the same load; the
1-minute load average is printed after every run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

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


def _worker(src: Path, db: Path, warm: Path) -> None:
    """One timed ingest in this interpreter (after a small untimed one); prints a JSON line."""
    import bubblelens
    from bubblelens.ingest import ingest_paths
    from bubblelens.store import Store

    with Store.open(db.with_suffix(".warm.duckdb")) as store:
        ingest_paths(store, [warm])
    store = Store.open(db)
    t0, c0 = time.perf_counter(), time.process_time()
    rep = ingest_paths(store, [src])
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    s = store.stats()
    t1, c1 = time.perf_counter(), time.process_time()
    store.close()  # a checkpoint left for later (data still in the WAL) is paid here
    close, close_cpu = time.perf_counter() - t1, time.process_time() - c1
    f = rep.files[0]
    print(json.dumps({"wall": dt, "cpu": cpu, "close": close, "close_cpu": close_cpu, "error": f.error,
                      "kept": f.kept, "rejected": f.rejected,
                      "messages": s["messages"], "deliveries": s["deliveries"],
                      "package": str(Path(bubblelens.__file__).parent)}))


def _baseline(ref: str, dest: Path) -> Path:
    """The ``bubblelens`` package of git revision ``ref``, extracted under ``dest``."""
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref, "bubblelens"],
                         check=True, capture_output=True).stdout
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / "baseline.tar"
    tmp.write_bytes(tar)
    with tarfile.open(tmp) as tf:
        tf.extractall(dest, filter="data")
    return dest


def _run(src: Path, db: Path, warm: Path, pythonpath: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    out = subprocess.run([sys.executable, __file__, "--worker", str(src), str(db), str(warm)],
                         check=True, capture_output=True, text=True, env=env, cwd=ROOT).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline", metavar="REF", help="also time this git revision's bubblelens, in turns")
    ap.add_argument("--worker", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(*args.worker)
        return
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        src, warm = tmp / "ads.jsonl", tmp / "warm.jsonl"
        t0 = time.perf_counter()
        generate(src, args.n)
        generate(warm, 3000, seed=1)
        print(f"generated {args.n:,} ads ({src.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - t0:.1f} s")
        codes = {"current": ROOT}
        if args.baseline:
            codes["baseline"] = _baseline(args.baseline, tmp / "baseline")
        results: dict[str, list[dict[str, float]]] = {k: [] for k in codes}
        loads = []
        for r in range(args.repeat):
            for name in (list(codes) if r % 2 else list(codes)[::-1]):
                res = _run(src, tmp / f"{name}{r}.duckdb", warm, codes[name])
                assert res["error"] is None and res["kept"] == args.n, res
                results[name].append(res)
                loads.append(_load())
                if r == 0:
                    print(f"{name} code: {res['package']}")
                print(f"run {r + 1} {name}: {res['wall']:.2f} s wall, {res['cpu']:.2f} s CPU (all threads), "
                      f"{args.n / res['wall']:,.0f} ads/s wall, {res['cpu'] / args.n * 1e6:.0f} µs CPU/ad; "
                      f"closing the store {res['close']:.2f} s ({res['close_cpu']:.2f} s CPU) "
                      f"({res['messages']:,} messages, {res['deliveries']:,} deliveries); "
                      f"load {loads[-1]:.1f}", flush=True)
        print(f"load average (1 min) after each run: {', '.join(f'{x:.1f}' for x in loads)}; now "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        med = {}
        for name, rs in results.items():
            med[name] = statistics.median(args.n / x["wall"] for x in rs)
            cpu = statistics.median(x["cpu"] for x in rs) / args.n
            closed = statistics.median(args.n / (x["wall"] + x["close"]) for x in rs)
            print(f"{name}: median {med[name]:,.0f} ads/s over {len(rs)} run(s), "
                  f"{cpu * 1e6:.0f} µs CPU per ad ({1 / cpu:,.0f} ads per CPU-second); "
                  f"{closed:,.0f} ads/s counting the store's close")
        if "baseline" in med:
            print(f"current / baseline ({args.baseline}): {med['current'] / med['baseline']:.2f}x")
        print(f"median: {med['current']:,.0f} ads/s (target ≥ 20,000): "
              f"{'OK' if med['current'] >= 20_000 else 'BELOW TARGET'}")


if __name__ == "__main__":
    main()
