"""Declared groups: audiences grouped by one of their declared attributes (table ``audience_attrs``).

``declared:age_band`` puts each audience in the segment named by its ``age_band`` value; audiences
without that attribute are not members. The privacy floor is applied by the caller.
"""

from __future__ import annotations

import pandas as pd

from ..errors import SegmentError

__all__ = ["declared_groups"]


def declared_groups(attrs: pd.DataFrame, by: str) -> pd.DataFrame:
    """Members of the groups of attribute ``by``: columns ``member_id, segment_id``.

    ``attrs`` has the columns of ``audience_attrs`` (``audience_id, name, value``).
    """
    if not by:
        raise SegmentError("the declared scheme needs --by ATTRIBUTE (e.g. age_band, region, declared_lean)")
    sub = attrs[(attrs["name"] == by) & attrs["value"].notna() & (attrs["value"].astype(str) != "")]
    if sub.empty:
        known = sorted(attrs["name"].dropna().unique().tolist())
        raise SegmentError(f"no audience has the attribute {by!r}; known attributes: {known}")
    return pd.DataFrame({"member_id": sub["audience_id"].astype(str).to_numpy(),
                         "segment_id": sub["value"].astype(str).str.strip().to_numpy()})
