"""The privacy floor: segments too small to publish are merged into ``other`` in every output.

A segment is under the floor when it holds fewer than ``k_min`` people (default 10) or, where its
impressions are known, fewer than ``k_impressions`` impressions (default 100). Its members are moved to the
segment ``other``, and its own row (label, top terms) is never written, so no output describes a group of
fewer than ``k_min`` people.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["OTHER", "OUTLIER", "PrivacyFloor", "apply_floor"]

OTHER = "other"
OUTLIER = "outlier"


@dataclass(frozen=True)
class PrivacyFloor:
    """Thresholds of the floor: ``k_min`` people, ``k_impressions`` impressions."""

    k_min: int = 10
    k_impressions: float = 100.0

    def under(self, size: int, impressions: float | None = None) -> bool:
        """True when a segment of ``size`` members and ``impressions`` must be suppressed."""
        if size < self.k_min:
            return True
        return impressions is not None and not np.isnan(impressions) and impressions < self.k_impressions


def apply_floor(segment_ids: pd.Series, *, floor: PrivacyFloor,
                impressions: Mapping[str, float] | None = None,
                keep: tuple[str, ...] = (OUTLIER,)) -> tuple[pd.Series, list[str]]:
    """Relabel members of segments under the floor as ``other``; return the new ids and those merged.

    ``segment_ids`` holds one segment id per member; ``impressions`` optionally maps segment → impressions.
    Ids in ``keep`` (the noise bin) are not merged but are still reported, never hidden.
    """
    sizes = segment_ids.value_counts()
    merged = sorted(
        str(s) for s, n in sizes.items()
        if s not in keep and s != OTHER
        and floor.under(int(n), None if impressions is None else impressions.get(str(s)))
    )
    out = segment_ids.where(~segment_ids.isin(merged), OTHER)
    return out, merged
