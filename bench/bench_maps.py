"""Benchmark: the Map page (and the Overview, which now draws the findings and the map) on a generated
100,000-ad store (goal: under 1 s warm), and the map queries alone.

    python bench/bench_maps.py [--n-ads 100000] [--store PATH] [--repeat 3] [--out bench/results/maps.json]

Same store and method as ``bench/bench_app.py`` (it reuses that store when it exists): ``cold`` is the
first render after clearing Streamlit's caches (the region matcher and the shapes are already loaded in
the process: they load once per process, timed separately as ``load_s``), ``warm`` the median of
``--repeat`` re-renders.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-ads", type=int, default=100_000)
    ap.add_argument("--store", default=str(Path(tempfile.gettempdir()) / "bubblelens_app_bench.duckdb"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "maps.json"))
    args = ap.parse_args()

    import duckdb
    from bench_app import time_page

    from bubblelens.geo import load_geojson, region_matcher
    from bubblelens.present import maps as M
    from bubblelens.present.synthetic import build_synthetic_store

    store = Path(args.store)
    if not store.exists():
        t0 = time.perf_counter()
        build_synthetic_store(store, n_ads=args.n_ads)
        print(f"built {store} in {time.perf_counter() - t0:.1f} s")
    with duckdb.connect(str(store), read_only=True) as con:
        n_ads = con.execute("SELECT count(*) FROM messages").fetchone()[0]  # type: ignore[index]
        n_del = con.execute("SELECT count(*) FROM deliveries").fetchone()[0]  # type: ignore[index]
    t0 = time.perf_counter()
    region_matcher()
    load_geojson()
    load_s = time.perf_counter() - t0
    print(f"store {store}: {n_ads:,} ads, {n_del:,} delivery rows; matcher + shapes loaded in {load_s:.2f} s")

    queries = {}
    with duckdb.connect(str(store), read_only=True) as con:
        for name, fn in (("region_schemes", lambda: M.region_schemes(con)),
                         ("map_values impressions", lambda: M.map_values(con, "cells", "impressions")),
                         ("map_values cross_cutting", lambda: M.map_values(con, "cells", "cross_cutting")),
                         ("choropleth", lambda: M.choropleth(M.map_values(con, "cells"), "FR"))):
            t0 = time.perf_counter()
            fn()
            queries[name] = round(time.perf_counter() - t0, 3)
            print(f"  {name:<26} {queries[name]:6.3f} s")

    os.environ["BUBBLELENS_DB"] = str(store)
    pages = {page: time_page(page, args.repeat) for page in ("map", "overview")}
    out = {"n_ads": n_ads, "deliveries": n_del, "load_s": round(load_s, 3), "queries_s": queries, "pages": pages,
           "cpus": os.cpu_count(), "load_avg": os.getloadavg()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
