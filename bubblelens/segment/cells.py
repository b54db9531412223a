"""Delivery cells: the age × gender × region (× country) cells that ad libraries report, with roll-ups.

A delivery row (table ``deliveries``) is one message in one cell, with a ``share`` of the message's
impressions or a ``count``. Ad libraries report some dimensions separately (Meta: age × gender in one
breakdown, region in another), so a row fills only some of ``age, gender, region, country``; its cell key
names the filled ones, e.g. ``age=25-34|gender=female``.

A roll-up groups cells on a subset ``D`` of dimensions (``cells:age``, ``cells:age_gender``, ...); it
takes the rows that fill every dimension of ``D``. Impressions of a row: ``count`` when given, otherwise
``share × impressions of the message``, a message's impressions being the midpoint of its published
range (its lower bound when the top bucket has no upper bound).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import pandas as pd

from ..errors import SegmentError

__all__ = ["DIMENSIONS", "ROLLUPS", "cell_key", "delivery_cells", "parse_dims", "rollup", "scheme_name"]

DIMENSIONS = ("age", "gender", "region", "country")

# When a message has several breakdowns covering a roll-up's dimensions, the first kind here is used.
KIND_PREFERENCE = ("reach", "demographic", "region")

# Roll-ups written by default (the finest cells are scheme ``cells``).
ROLLUPS: tuple[tuple[str, ...], ...] = (
    ("age",), ("gender",), ("region",), ("country",), ("age", "gender"),
)


def cell_key(row: Mapping[Hashable, Any] | pd.Series, dims: Sequence[str] = DIMENSIONS) -> str:
    """``dim=value|...`` over the dimensions of ``dims`` that are filled (the stable id of a cell)."""
    parts = []
    for d in dims:
        v = row.get(d)
        if v is not None and not (isinstance(v, float) and pd.isna(v)) and str(v) != "":
            parts.append(f"{d}={v}")
    return "|".join(parts)


def scheme_name(dims: Sequence[str] | None) -> str:
    """``cells`` for the finest cells, ``cells:age_gender`` for a roll-up on age and gender."""
    return "cells" if not dims else "cells:" + "_".join(dims)


def parse_dims(by: str | None) -> tuple[str, ...] | None:
    """``"age,gender"`` or ``"age_gender"`` → ``("age", "gender")``; None → None (all roll-ups)."""
    if not by:
        return None
    dims = tuple(d.strip() for d in by.replace("_", ",").replace("×", ",").split(",") if d.strip())
    bad = [d for d in dims if d not in DIMENSIONS]
    if bad:
        raise SegmentError(f"unknown cell dimension(s) {bad}: choose among {list(DIMENSIONS)}")
    return dims


def delivery_cells(deliveries: pd.DataFrame, messages: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per delivery row with its ``cell`` key and ``impressions`` (see module docstring)."""
    d = deliveries.copy()
    for c in DIMENSIONS:
        if c not in d:
            d[c] = None
    if messages is not None and len(messages):
        m = messages.set_index("message_id")
        lo, hi = m["impressions_lower"].astype("float64"), m["impressions_upper"].astype("float64")
        mid = ((lo + hi) / 2).where(hi.notna(), lo)
        d["message_impressions"] = d["message_id"].map(mid)
    else:
        d["message_impressions"] = float("nan")
    share = d["share"].astype("float64") if "share" in d else pd.Series(float("nan"), index=d.index)
    count = d["count"].astype("float64") if "count" in d else pd.Series(float("nan"), index=d.index)
    d["impressions"] = count.where(count.notna(), share * d["message_impressions"])
    d["cell"] = [cell_key(r) for r in d[list(DIMENSIONS)].to_dict("records")]
    return d[d["cell"] != ""]


def rollup(cells: pd.DataFrame, dims: Sequence[str] | None) -> pd.DataFrame:
    """Members (finest cell keys) and their segment on ``dims``: columns ``member_id, segment_id``, plus
    per segment ``size`` (distinct messages) and ``impressions`` (sum; NaN when none is known)."""
    if dims:
        sub = cells.dropna(subset=list(dims))
        sub = sub[(sub[list(dims)].astype(str) != "").all(axis=1)]
        keys: list[str] = [cell_key(r, dims) for r in sub[list(dims)].to_dict("records")]
        seg = pd.Series(keys, index=sub.index, dtype=object)
    else:
        sub = cells
        seg = sub["cell"]
    sub = sub.assign(segment_id=seg)
    if "kind" in sub and len(sub):
        # One breakdown per message, so that a message reported twice (a share breakdown and a reach
        # count breakdown over the same dimensions) is not counted twice.
        rank = sub["kind"].map(lambda k: KIND_PREFERENCE.index(k) if k in KIND_PREFERENCE
                               else len(KIND_PREFERENCE)).astype(int)
        best = rank.groupby(sub["message_id"]).transform("min")
        sub = sub[rank == best]
    members = sub[["cell", "segment_id"]].drop_duplicates("cell").rename(columns={"cell": "member_id"})
    agg = sub.groupby("segment_id").agg(
        size=("message_id", "nunique"),
        impressions=("impressions", lambda s: s.sum(min_count=1)),
    )
    return members.merge(agg, left_on="segment_id", right_index=True, how="left")
