"""Reads for the Targeting page and the report's targeting section: the stored targeting tables measured
by :mod:`bubblelens.measure.targeting` (small DataFrames), and the pages and criteria behind any bar.

Each function takes an open DuckDB connection (read-only is enough) and never writes. A store without
a targeting table reads as empty (:func:`available` is False), so a page can say what to ingest.
These are platform-reported targeting choices (who an advertiser asked Meta to show its ads to), not delivery.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from ..measure import targeting as T
from ..measure.targeting_run import (
    compare_targeted_delivered,
    group_of,
    has_targeting,
    load_table,
    stored_clusters,
)

__all__ = ["METHOD_LABELS", "available", "clusters", "distinctive", "methods", "overview", "page_criteria",
           "pages_behind", "pages_behind_cluster", "pages_with_criterion", "personal_data", "targeted_vs_delivered"]

Con = duckdb.DuckDBPyConnection

#: the methods a reader sees first, with their names in plain words
METHOD_LABELS: dict[str, str] = {
    "personal_data": "Personal data (any of the three below)",
    "customer_list": "Customer lists (uploaded emails / phone numbers)",
    "custom_audience": "Custom audiences (lists, site visitors, engagement)",
    "lookalike_audience": "Lookalikes of custom audiences",
    "detailed": "Detailed targeting (interests, behaviours, demographics)",
    "location": "Locations below the country",
    "location:region": "… regions", "location:city": "… cities", "location:postal_code": "… postal codes",
    "age": "Age range narrowed", "gender": "One gender only", "language": "Language",
}


def available(con: Con) -> bool:
    """True when the store holds an ingested targeting table."""
    return has_targeting(con)


def _frames(con: Con, by: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    pages, crit = load_table(con)
    pages["weight"], _ = T.page_weights(pages)
    pages["group"] = group_of(pages, by)
    return pages, crit


def overview(con: Con) -> dict[str, Any]:
    """Pages, criteria rows, windows (``ds``), spend and its unit."""
    pages, crit = load_table(con)
    w, unit = T.page_weights(pages)
    return {"pages": len(pages), "criteria": len(crit), "spend": float(w.sum()), "unit": unit,
            "windows": sorted({str(pd.Timestamp(d).date()) for d in pages["ds"].dropna()})}


def methods(con: Con, by: str = "party") -> pd.DataFrame:
    """The methods table (inclusions and exclusions): ``group, method, exclusion, low, high, pages_using,
    pages, spend``, groups by decreasing spend."""
    pages, crit = _frames(con, by)
    out = T.group_methods(pages, crit)
    order = out.groupby("group")["spend"].first().sort_values(ascending=False).index
    out["group"] = pd.Categorical(out["group"], categories=list(order), ordered=True)
    return out.sort_values(["group", "method"]).assign(group=lambda d: d["group"].astype(str)).reset_index(drop=True)


def personal_data(con: Con, by: str = "party", *, n_boot: int = 500) -> pd.DataFrame:
    """The personal-data indicator with its interval over pages (:func:`targeting.personal_data_indicator`)."""
    pages, crit = _frames(con, by)
    return T.personal_data_indicator(pages, crit, n_boot=n_boot).sort_values("spend", ascending=False)


def distinctive(con: Con, by: str = "party", top: int = 5, kind: str = "detailed") -> pd.DataFrame:
    """The top distinctive criteria per group (``kind``: ``detailed`` or ``location``)."""
    pages, crit = _frames(con, by)
    return T.distinctive_criteria(pages, crit, top=top, types=(kind,))


def clusters(con: Con, by: str = "party") -> pd.DataFrame:
    """Spend of each group per stored cluster of detailed criteria (empty before ``bubblelens targeting``)."""
    assign = stored_clusters(con)
    if assign.empty:
        return pd.DataFrame(columns=["group", "cluster_id", "label", "spend", "share", "pages"])
    pages, crit = _frames(con, by)
    out = T.group_clusters(pages, crit, assign)
    return out[out["cluster_id"] != "outlier"].reset_index(drop=True)


def pages_behind(con: Con, group: str, method: str, by: str = "party", exclusion: bool = False) -> pd.DataFrame:
    """The pages of ``group`` with their share of spend behind ``method`` (``low``/``high``; 0 when unused):
    ``page_id, page_name, party, spend, low, high``, the pages that used it first."""
    pages, crit = _frames(con, by)
    pages = T.keyed(pages)
    pg = pages[pages["group"] == group]
    pm = T.page_methods(T.method_rows(crit))
    pm = pm[(pm["method"] == method) & (pm["exclusion"] == exclusion)]
    out = pg[["page_id", "ds", "page_name", "party", "weight"]].merge(pm[["page_id", "ds", "low", "high"]],
                                                                     on=["page_id", "ds"], how="left")
    out[["low", "high"]] = out[["low", "high"]].fillna(0.0)
    return out.rename(columns={"weight": "spend"}).sort_values(["high", "spend"], ascending=False).reset_index(drop=True)


def page_criteria(con: Con, page_id: str, *, types: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Every criterion of one page (all its windows): ``ds, type, value, total_spend_pct, is_exclusion,
    location_type, detailed_type, custom_audience_type, num_ads``; age rows only where the share is > 0."""
    df = con.execute(
        "SELECT CAST(ds AS VARCHAR) AS ds, type, value, total_spend_pct, is_exclusion, location_type, detailed_type, custom_audience_type, "
        "num_ads FROM targeting_criteria WHERE page_id = ? AND NOT (type = 'age' AND total_spend_pct = 0) "
        "ORDER BY ds, type, total_spend_pct DESC", [str(page_id)]).df()
    if types:
        df = df[df["type"].isin(types)]
    return df.reset_index(drop=True)


def pages_behind_cluster(con: Con, group: str, cluster_id: str, by: str = "party") -> pd.DataFrame:
    """The pages of ``group`` with their share of spend behind a cluster's criteria (``low`` = its
    largest criterion, ``high`` = their sum capped at 1) and those criteria: ``page_id, page_name, spend,
    low, high, criteria``."""
    assign = stored_clusters(con)
    values = set(assign.loc[assign["cluster_id"] == cluster_id, "value"])
    pages, crit = _frames(con, by)
    pages, crit = T.keyed(pages), T.keyed(crit)
    pg = pages[pages["group"] == group]
    c = crit[(crit["type"] == "detailed") & crit["value"].isin(values) & (crit["total_spend_pct"] > 0)]
    agg = c.groupby(["page_id", "ds"]).agg(low=("total_spend_pct", "max"), high=("total_spend_pct", "sum"),
                                          criteria=("value", lambda v: ", ".join(sorted(v)))).reset_index()
    agg["high"] = agg["high"].clip(upper=1.0)
    out = pg[["page_id", "ds", "page_name", "weight"]].merge(agg, on=["page_id", "ds"], how="left")
    out[["low", "high"]] = out[["low", "high"]].fillna(0.0)
    out["criteria"] = out["criteria"].fillna("")
    return out.rename(columns={"weight": "spend"}).drop(columns="ds").sort_values(
        ["high", "spend"], ascending=False).reset_index(drop=True)


def targeted_vs_delivered(con: Con) -> pd.DataFrame:
    """Pages with both targeting and delivery: targeted vs delivered share per age band and gender
    (:func:`bubblelens.measure.targeting_run.compare_targeted_delivered`)."""
    return compare_targeted_delivered(con)


def pages_with_criterion(con: Con, group: str, type: str, value: str, by: str = "party") -> pd.DataFrame:
    """The pages of ``group`` that used one criterion (included), with its share of their spend and the
    spend behind it: ``page_id, page_name, spend, share, spend_behind``."""
    pages, crit = _frames(con, by)
    pages, crit = T.keyed(pages), T.keyed(crit)
    c = crit[(crit["type"] == type) & (crit["value"] == value) & (crit["total_spend_pct"] > 0)
             & ~crit["is_exclusion"].astype("boolean").fillna(False).astype(bool)]
    out = pages[pages["group"] == group][["page_id", "ds", "page_name", "weight"]].merge(
        c[["page_id", "ds", "total_spend_pct"]], on=["page_id", "ds"], how="inner")
    out = out.rename(columns={"weight": "spend", "total_spend_pct": "share"})
    out["spend_behind"] = out["spend"] * out["share"]
    return out.drop(columns="ds").sort_values("spend_behind", ascending=False).reset_index(drop=True)
