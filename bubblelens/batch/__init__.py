"""Batch scoring at scale: stream a file of messages, score it, get Parquet out.

One call, two engines::

    from bubblelens.batch import score_file
    score_file("ads.parquet", "scores/", chunk_size=10_000)             # local, resumable
    score_file("ads.parquet", "scores.parquet", engine="ray")           # Ray Data, local mode

The scorer is injected: ``scorer_factory(settings) -> object with score_frame`` (default: the codebook
and encoder of :mod:`bubblelens.classify`). See ``docs/batch.md``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ScoreError
from .local import ScoreResult, run_local
from .readers import Chunk, detect_format, iter_chunks, iter_frames
from .scorer import (
    OUTPUT_COLUMNS,
    ScorerFactory,
    ScorerLike,
    ScoreSettings,
    default_scorer_factory,
    load_scorer_factory,
    score_chunk,
)

__all__ = [
    "OUTPUT_COLUMNS",
    "Chunk",
    "ScoreResult",
    "ScoreSettings",
    "ScorerFactory",
    "ScorerLike",
    "default_scorer_factory",
    "detect_format",
    "iter_chunks",
    "iter_frames",
    "load_scorer_factory",
    "score_chunk",
    "score_file",
]

ENGINES = ("local", "ray")


def score_file(input: str | Path, out: str | Path, *, engine: str = "local",
               settings: ScoreSettings | None = None, chunk_size: int | None = None,
               scorer_factory: ScorerFactory | None = None, address: str | None = None,
               concurrency: int | None = None) -> ScoreResult:
    """Score every message of ``input`` into ``out`` (a directory of parts, or one ``.parquet`` file).

    ``chunk_size`` overrides ``settings.chunk_size``. ``scorer_factory`` overrides ``settings.scorer``
    for the local engine; Ray workers build their scorer from ``settings.scorer`` (an importable
    ``module:factory``), since a closure cannot be shipped to a cluster reliably.
    """
    settings = settings or ScoreSettings()
    if chunk_size is not None:
        from dataclasses import replace

        settings = replace(settings, chunk_size=chunk_size)
    if engine == "local":
        return run_local(input, out, settings=settings,
                         scorer_factory=scorer_factory or load_scorer_factory(settings.scorer))
    if engine == "ray":
        if scorer_factory is not None:
            raise ScoreError("the Ray engine takes its scorer as settings.scorer='module:factory'")
        from .ray_engine import run_ray

        return run_ray(input, out, settings=settings, address=address, concurrency=concurrency)
    raise ScoreError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
