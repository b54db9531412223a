"""Benchmark: ``bubblelens measure --scheme cells --by region`` on the whole German 2024 pull (< 10 s).

The store is built once (ingest both parts, classify with the German parties' codebook and a page → party
sponsor table written from the pull's own label file, segment ``cells:region``) and cached in
``/tmp/bubblelens-bench-de/store.duckdb``; each timed run measures a fresh copy of it with the defaults
(``n_boot`` 1000, ``n_perm`` 499, census uncertainty), in its own interpreter (as the CLI runs), after one
warm-up run that compiles / loads the numba kernels. Prints the median wall time of the runs, each step's
timing (the run record's ``timings``), the whole process's wall time (interpreter start and imports
included, as ``bubblelens measure`` runs) and, with ``--baseline REF``, the same figures for a git revision
(exported with ``git archive`` into /tmp) in turns with the working tree, and their ratio.

    python bench/bench_measure_de.py [--runs 3] [--baseline main] [--data /work/shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / "bubblelens-bench-de"
CODEBOOK = ROOT / "docs" / "examples" / "de-parties-2024.yaml"
PARTY_CAMP = {"B90/GRÜNE": "gruene", "SPD": "spd", "FDP": "fdp", "CDU": "cdu_csu", "CSU": "cdu_csu",
              "BSW": "bsw", "LINKE": "linke", "AfD": "afd"}

# one measure run in a fresh interpreter: the code under ``sys.argv[1]``, the store ``sys.argv[2]``
_RUN = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
t0 = time.perf_counter()
from bubblelens.measure.pipeline import measure_store
from bubblelens.store import Store
store = Store.open(sys.argv[2])
t1 = time.perf_counter()
res = measure_store(store, scheme="cells", by="region")
t2 = time.perf_counter()
store.close()
g = res["global"]
print(json.dumps({"wall_s": t2 - t1, "import_open_s": t1 - t0, "timings": res["timings"],
                  "p_value": g["theil_m"].get("p_value"), "theil_m": g["theil_m"]["value"],
                  "isolation": g["isolation"]["value"], "segments": len(res["segments"]),
                  "gini_simpson": {s["segment"]: s["gini_simpson"]["value"] for s in res["segments"]},
                  "cross_cutting": {s["segment"]: s["cross_cutting"]["value"] for s in res["segments"]}}))
"""


def build_store(data: Path) -> Path:
    """Ingest, classify and segment the pull once; reuse the cached store afterwards."""
    store_path = CACHE / "store.duckdb"
    if store_path.exists():
        return store_path
    from bubblelens.classify import classify_store, load_codebook
    from bubblelens.ingest import ingest_paths
    from bubblelens.segment import segment_store
    from bubblelens.store import Store

    CACHE.mkdir(parents=True, exist_ok=True)
    pull = data / "meta_api_de_2024"
    labels = pd.read_csv(pull / "ad_party_labels_de_2024.csv", dtype=str)
    pages = labels[labels["partei"].isin(list(PARTY_CAMP))].drop_duplicates("page_id")
    sponsors = CACHE / "pages.csv"
    pd.DataFrame({"sponsor": pages["page_name"], "sponsor_id": pages["page_id"],
                  "camp": pages["partei"].map(PARTY_CAMP)}).to_csv(sponsors, index=False)
    tmp = CACHE / "building.duckdb"
    tmp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    store = Store.open(tmp)
    rep = ingest_paths(store, [pull / "ads_archive_de_2024_part00.jsonl", pull / "ads_archive_de_2024_part01.jsonl"])
    print(f"ingested {rep.kept} ads ({rep.rejected} rejected) in {time.perf_counter() - t0:.1f} s", flush=True)
    classify_store(store, codebook=load_codebook(CODEBOOK, sponsors=sponsors))
    segment_store(store, scheme="cells", by="region")
    n = store.con.execute("SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM deliveries)").fetchone()
    store.close()
    tmp.rename(store_path)
    print(f"store built in {time.perf_counter() - t0:.1f} s: {n[0]} messages, {n[1]} delivery rows", flush=True)
    return store_path


def run_once(code: Path, store_path: Path) -> dict:
    with tempfile.TemporaryDirectory() as d:
        copy = Path(d) / "store.duckdb"
        shutil.copy(store_path, copy)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(code)}
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _RUN, str(code), str(copy)], env=env, check=True,
                             capture_output=True, text=True).stdout
        process = time.perf_counter() - t0
    return {**json.loads(out.strip().splitlines()[-1]), "process_s": process}


def checkout(ref: str) -> Path:
    """The package of revision ``ref`` exported (``git archive``) into /tmp: no worktree is registered."""
    d = Path(tempfile.gettempdir()) / f"bubblelens-bench-de-{ref.replace('/', '_')}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "bubblelens"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(d)], input=tar, check=True)
    return d


def summary(name: str, runs: list[dict]) -> float:
    wall = statistics.median(r["wall_s"] for r in runs)
    steps = sorted({k for r in runs for k in r["timings"]})
    med = {k: statistics.median(r["timings"].get(k, float("nan")) for r in runs) for k in steps}
    each = ", ".join(f"{r['wall_s']:.2f}" for r in runs)
    proc = statistics.median(r["process_s"] for r in runs)
    print(f"{name}: median wall {wall:.2f} s over {len(runs)} runs ({each}); whole process (interpreter, "
          f"imports, measure) {proc:.2f} s")
    print("  steps (median s): " + ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
    r = runs[0]
    print(f"  theil_m {r['theil_m']} (p {r['p_value']}), isolation {r['isolation']}, {r['segments']} segments")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--baseline", default=None, help="a git revision timed in turns with the working tree")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("BUBBLELENS_DATA", "/work/shared/data")))
    ap.add_argument("--json", type=Path, default=None, help="write every run's figures here")
    args = ap.parse_args()
    store_path = build_store(args.data)
    codes = {"new": ROOT}
    if args.baseline:
        codes["baseline"] = checkout(args.baseline)
    print(f"load average before: {os.getloadavg()}", flush=True)
    for code in codes.values():  # warm-up: numba caches, page cache
        run_once(code, store_path)
    runs: dict[str, list[dict]] = {k: [] for k in codes}
    for _ in range(args.runs):
        for k, code in codes.items():
            runs[k].append(run_once(code, store_path))
    print(f"load average after: {os.getloadavg()}")
    walls = {k: summary(k if k == "new" else f"baseline {args.baseline}", v) for k, v in runs.items()}
    if "baseline" in walls:
        print(f"speed-up (baseline / new, medians): {walls['baseline'] / walls['new']:.2f}x")
        a, b = runs["new"][0], runs["baseline"][0]
        diffs = [abs((a[m][s] or 0) - (b[m][s] or 0)) for m in ("gini_simpson", "cross_cutting") for s in a[m]
                 if s in b[m]]
        print(f"  largest |difference| of a segment value (Gini–Simpson, cross-cutting): {max(diffs, default=0):.4g}")
    if args.json:
        args.json.write_text(json.dumps({"load": os.getloadavg(), "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
