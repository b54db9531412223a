#!/usr/bin/env python
"""Interest segments of the real IRA ads' targeting specs (US House HPSCI release, 2015–2017).

    python bench/ira_segments.py [--csv /work/shared/data/ira_ads/ira_ads.csv] [--n-segments N]

Each ad's ``ad_targeting_people_who_match`` spec (else ``ad_targeting_interests``) is an audience
(``audience_type`` ``targeting``, id = the ad id); they are segmented through the store exactly as
``bubblelens segment --scheme interests`` does. Prints each segment's size, label (c-TF-IDF), two
representative specs, the stability flag, and the outlier share.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--csv", default="/work/shared/data/ira_ads/ira_ads.csv", type=Path)
    ap.add_argument("--n-segments", default=None, type=int)
    ap.add_argument("--stability-runs", default=2, type=int)
    args = ap.parse_args()
    if not args.csv.exists():
        raise SystemExit(f"{args.csv} not found")

    from bubblelens.segment import segment_store
    from bubblelens.store import Store

    ads = pd.read_csv(args.csv)
    spec = ads["ad_targeting_people_who_match"].fillna(ads["ad_targeting_interests"])
    ads = ads.assign(spec=spec)[spec.notna() & ads["ad_id"].notna()].drop_duplicates("ad_id")
    with tempfile.TemporaryDirectory() as d, Store.open(Path(d) / "ira.duckdb") as store:
        store.con.executemany(
            "INSERT INTO audiences (audience_id, audience_type, interests) VALUES (?, 'targeting', ?)",
            [[str(int(i)) if float(i).is_integer() else str(i), str(s)]
             for i, s in zip(ads["ad_id"], ads["spec"], strict=True)])
        t = time.perf_counter()
        run = segment_store(store, scheme="interests", n_segments=args.n_segments,
                            stability_seeds=tuple(range(1, 1 + args.stability_runs)))
        wall = time.perf_counter() - t
        seg = store.con.execute("SELECT * FROM segments WHERE scheme = 'interests' ORDER BY size DESC").df()
        params = json.loads(store.con.execute("SELECT params FROM runs WHERE run_id = ?", [run]).fetchone()[0])
    r = params["result"]
    print(f"{len(ads)} ads with a targeting spec ({r['n_unique']} distinct specs), {wall:.0f} s; "
          f"HDBSCAN clusters {r['n_clusters']} → segments {r['n_segments']} "
          f"(min_cluster_size {r['min_cluster_size']}); outlier share {r['outlier_share']:.1%}; "
          f"stability ARI {r['stability']['ari_mean'] if r['stability'] else float('nan'):.2f}")
    for s in seg.itertuples():
        ex = json.loads(s.extra)
        reps = " | ".join(x["text"][:70] for x in ex.get("representatives", [])[:2])
        flag = "" if pd.isna(s.stable) or s.stable else " [unstable]"
        print(f"{s.segment_id:>8} {s.size:>5}  {s.label}{flag}\n{'':15}e.g. {reps}")


if __name__ == "__main__":
    main()
