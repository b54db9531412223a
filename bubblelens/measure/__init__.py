"""Measure: which segments receive which narratives, how exposed each is to the other side, with CIs.

Pure metric functions live in :mod:`.metrics`; impression ranges in :mod:`.ranges`; matrices from the
store in :mod:`.matrices`; home leans in :mod:`.lean`; the cluster bootstrap in :mod:`.bootstrap`; the
supply → targeted → delivered funnel in :mod:`.funnel`; the store stage in :mod:`.pipeline`.
See docs/metrics.md for formulas, sources and rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pipeline import measure_store, metrics_frame

__all__ = ["measure_store", "metrics_frame"]


def __getattr__(name: str) -> Any:
    """Import the store stage on first use: the pipeline pulls in the numba bootstrap kernels (about a
    second), which the app's pure-metric imports (:mod:`.metrics`, :mod:`.aggregates`) do not need."""
    if name in __all__:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
