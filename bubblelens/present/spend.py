"""Sponsor spend (``sponsor_spend``: Meta Ad Library report CSVs, Google advertiser stats) by sponsor,
camp and period, for ``stats``, the app and the report.

A report's period is the date in its name (``FacebookAdLibraryReport_2025-07-12_…`` → 2025-07-12);
without one, the report's name. Only the per-advertiser rows are summed (``scope = 'advertisers'``):
the regional and location rows of a Meta report break the same spend down again and would count it
twice. A sponsor's camp comes from the codebook's sponsor table (page id, then name), else from the
camp most of its scored messages in the store were given, else ``unassigned``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pandas as pd

__all__ = ["report_period", "spend_by_sponsor"]

_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})|(\d{4})-(\d{2})(?!\d)")


def report_period(report: str) -> str:
    """The period a report covers, as its name dates it: ``YYYY-MM-DD`` (or ``YYYY-MM``), else the name."""
    m = _DATE.search(report or "")
    if m is None:
        return report
    if m.group(1):
        return f"{m.group(1)}-{m.group(2)}-{m.group(3)}"
    return f"{m.group(4)}-{m.group(5)}"


def spend_by_sponsor(con: Any, *, camp_of: Callable[[str | None, str | None], str | None] | None = None
                     ) -> pd.DataFrame:
    """One row per (period, report, sponsor, currency): ``spend_lower``, ``spend_upper`` (ranges as the
    sources give them; an open top stays NULL), ``n_ads``, ``rows`` and ``camp``."""
    df = con.execute(
        "SELECT report, coalesce(disclaimer, page_name, page_id, '(unnamed)') AS sponsor, "
        "any_value(page_id) AS page_id, currency, sum(spend_lower) AS spend_lower, "
        "CASE WHEN bool_and(spend_upper IS NOT NULL) THEN sum(spend_upper) END AS spend_upper, "
        "sum(n_ads) AS n_ads, count(*) AS rows FROM sponsor_spend "
        "WHERE scope IS NULL OR scope = 'advertisers' GROUP BY report, 2, currency").df()
    if df.empty:
        return df.assign(period=pd.Series(dtype=str), camp=pd.Series(dtype=str))
    df["period"] = df["report"].map(report_period)
    stored = _camps_from_messages(con)
    camps = []
    for sponsor, page_id in zip(df["sponsor"], df["page_id"], strict=True):
        camp = camp_of(sponsor, page_id) if camp_of is not None else None
        camps.append(camp or stored.get(str(sponsor)) or "unassigned")
    df["camp"] = camps
    return df.sort_values(["period", "spend_lower"], ascending=[True, False]).reset_index(drop=True)


def _camps_from_messages(con: Any) -> dict[str, str]:
    """Sponsor name → the camp most of its scored messages were given (empty without scores)."""
    try:
        rows = con.execute(
            "SELECT sponsor, label FROM (SELECT m.sponsor, s.label, count(*) n, row_number() OVER "
            "(PARTITION BY m.sponsor ORDER BY count(*) DESC, s.label) r FROM messages m JOIN scores s "
            "ON s.message_id = m.message_id AND s.task = 'camp' WHERE m.sponsor IS NOT NULL AND "
            "s.label <> 'unassigned' GROUP BY 1, 2) WHERE r = 1").fetchall()
    except Exception:
        return {}
    return {str(s): str(c) for s, c in rows}
