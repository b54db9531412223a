"""Measure: which segments receive which narratives, how exposed each is to the other side, with CIs.

Pure metric functions live in :mod:`.metrics`; impression ranges in :mod:`.ranges`; matrices from the
store in :mod:`.matrices`; home leans in :mod:`.lean`; the cluster bootstrap in :mod:`.bootstrap`; the
supply → targeted → delivered funnel in :mod:`.funnel`; the store stage in :mod:`.pipeline`.
See docs/metrics.md for formulas, sources and rules.
"""

from __future__ import annotations

from .pipeline import measure_store, metrics_frame

__all__ = ["measure_store", "metrics_frame"]
