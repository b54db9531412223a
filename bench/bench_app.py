"""Benchmark: each app page's render time on a generated 100,000-ad store (goal: under 1 s).

    python bench/bench_app.py [--n-ads 100000] [--store PATH] [--repeat 3] [--out bench/results/app.json]

Builds the store with :func:`bubblelens.present.synthetic.build_synthetic_store` (rows inserted straight
into DuckDB: messages, 1.7 M delivery rows, scores, segments, exposures; the precomputed aggregates written
by :func:`bubblelens.measure.aggregates.write_exposure_matrix`, the function the measure stage calls), then
renders every page with
Streamlit's ``AppTest``: ``cold`` is the first render after clearing the query cache (every aggregate
computed by DuckDB), ``warm`` the median of ``--repeat`` re-renders (answers from ``st.cache_data``, as
a user clicking around gets). Prints one line per page and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGES = ["overview", "narratives", "segments", "exposure", "ads", "methods"]


def time_page(page: str, repeat: int) -> dict[str, object]:
    """Render ``page`` of the app on ``$BUBBLELENS_DB`` in AppTest: the first render after the caches are
    cleared (cold), then ``repeat`` reruns (warm); prints one line and returns the figures."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    st.cache_data.clear()
    t0 = time.perf_counter()
    if page != "overview":
        at.switch_page(f"bubblelens_app/pages/{page}.py")
    at.run()
    cold = time.perf_counter() - t0
    if at.exception:
        raise SystemExit(f"{page}: {at.exception[0].value}")
    warm = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - t0)
    ok = "ok" if statistics.median(warm) < 1.0 else "OVER 1 s"
    print(f"{page:<11} cold {cold:6.2f} s   warm median {statistics.median(warm):6.2f} s   {ok}")
    return {"cold_s": round(cold, 3), "warm_median_s": round(statistics.median(warm), 3),
            "warm_s": [round(w, 3) for w in warm]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-ads", type=int, default=100_000)
    ap.add_argument("--store", default=str(Path(tempfile.gettempdir()) / "bubblelens_app_bench.duckdb"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rebuild", action="store_true", help="rebuild the store even if it exists")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "app.json"))
    args = ap.parse_args()

    import duckdb

    from bubblelens.present.synthetic import build_synthetic_store

    store = Path(args.store)
    store.parent.mkdir(parents=True, exist_ok=True)
    build_s = None
    n_existing = None
    if store.exists() and not args.rebuild:
        with duckdb.connect(str(store), read_only=True) as con:
            n_existing = con.execute("SELECT count(*) FROM messages WHERE message_id LIKE 'syn%'").fetchone()[0]  # type: ignore[index]
            if not con.execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = 'exposure_matrix' "
                               "AND column_name = 'inputs'").fetchone()[0]:  # type: ignore[index]
                n_existing = None  # built before the precomputed aggregates: rebuild
    if n_existing != args.n_ads:
        t0 = time.perf_counter()
        build_synthetic_store(store, n_ads=args.n_ads)
        build_s = time.perf_counter() - t0
    with duckdb.connect(str(store), read_only=True) as con:
        sizes = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                 for t in ("messages", "deliveries", "scores", "exposures", "segment_members", "exposure_matrix")}
    print(f"store {store} ({', '.join(f'{k} {v:,}' for k, v in sizes.items())})"
          + (f", built in {build_s:.1f} s" if build_s else ""))

    os.environ["BUBBLELENS_DB"] = str(store)
    results = {page: time_page(page, args.repeat) for page in PAGES}
    out = {"n_ads": args.n_ads, "sizes": sizes, "build_s": build_s, "pages": results,
           "cpus": os.cpu_count(), "load_avg": os.getloadavg()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
