"""Every region label of a store, the shape it matched (or why none), and how many ads carry it.

Labels come from ``deliveries.region`` (e.g. Meta's ``delivery_by_region``), ``targeting`` rows of
dimension ``location`` (the DSA ``target_locations``: regions, but also countries, towns and postcodes),
the ``region`` attribute of audiences and the ``location`` of sponsor-level spend reports (Meta Ad Library
report "locations" files). A delivery label that is ambiguous alone ("Limburg": NL-LI or
BE-VLI) is matched again with the country its ads' other regions are in, when that country is one of the
candidates (the ads that carry it are mostly delivered in NL → NL-LI).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from ..store import Store
from .regions import RegionMatcher, region_matcher

__all__ = ["delivery_region_codes", "region_inventory", "summarise"]

_COLUMNS = ["source", "label", "iso_3166_2", "country", "kind", "candidates", "n_ads", "n_rows"]


def _con(store: Store | Any) -> Any:
    """The DuckDB connection of a Store, or the connection itself (the app's read-only one)."""
    return store.con if isinstance(store, Store) else store


def _context_country(store: Store | Any, label: str, codes: dict[str, str | None],
                     m: RegionMatcher) -> str | None:
    """The most common country of the other (matched) delivery regions of the ads that carry ``label``."""
    rows = _con(store).execute(
        "SELECT DISTINCT d2.region FROM deliveries d1 JOIN deliveries d2 USING (message_id) "
        "WHERE d1.region = ? AND d2.region IS NOT NULL AND d2.region <> ?", [label, label]).fetchall()
    counts = Counter(m.codes[c] for (r,) in rows if (c := codes.get(r)))
    return counts.most_common(1)[0][0] if counts else None


def delivery_region_codes(store: Store | Any, matcher: RegionMatcher | None = None) -> dict[str, str | None]:
    """``{delivery region label: ISO 3166-2 code or None}`` for every distinct ``deliveries.region``
    (ambiguous labels resolved by their ads' other regions, see module docstring). ``store``: a
    :class:`Store` or a DuckDB connection."""
    m = matcher or region_matcher()
    labels = [r for (r,) in _con(store).execute(
        "SELECT DISTINCT region FROM deliveries WHERE region IS NOT NULL").fetchall()]
    codes: dict[str, str | None] = {lab: m.match(lab) for lab in labels}
    for lab in labels:
        e = m.explain(lab)
        if e.kind == "ambiguous":
            c = _context_country(store, lab, codes, m)
            if c is not None and any(m.codes[x] == c for x in e.candidates):
                codes[lab] = m.match(lab, country=c)
    return codes


def region_inventory(store: Store, matcher: RegionMatcher | None = None) -> pd.DataFrame:
    """One row per (source, label): ``source`` (``deliveries`` | ``targeting`` | ``audiences`` | ``reports``),
    ``label``, ``iso_3166_2`` (or None), ``country``, ``kind`` (``region``, ``country``, ``postcode``,
    ``ambiguous``, ``unknown``), ``candidates`` (ambiguous only), ``n_ads`` (audiences for ``audiences``, reports for ``reports``), ``n_rows``."""
    m = matcher or region_matcher()
    queries = {
        "deliveries": "SELECT region AS label, count(DISTINCT message_id) AS n_ads, count(*) AS n_rows "
                      "FROM deliveries WHERE region IS NOT NULL GROUP BY region",
        "targeting": "SELECT value AS label, count(DISTINCT message_id) AS n_ads, count(*) AS n_rows "
                     "FROM targeting WHERE dimension = 'location' AND value IS NOT NULL GROUP BY value",
        "audiences": "SELECT value AS label, count(DISTINCT audience_id) AS n_ads, count(*) AS n_rows "
                     "FROM audience_attrs WHERE name = 'region' AND value IS NOT NULL GROUP BY value",
        "reports": "SELECT location AS label, count(DISTINCT report) AS n_ads, count(*) AS n_rows "
                   "FROM sponsor_spend WHERE location IS NOT NULL GROUP BY location",
    }
    resolved = delivery_region_codes(store, m)
    out: list[dict[str, Any]] = []
    for source, sql in queries.items():
        for label, n_ads, n_rows in store.con.execute(sql).fetchall():
            e = m.explain(label)
            code = resolved.get(label, e.iso_3166_2) if source == "deliveries" else e.iso_3166_2
            kind = "region" if code else e.kind
            out.append({"source": source, "label": label, "iso_3166_2": code,
                        "country": m.codes.get(code, e.country) if code else e.country, "kind": kind,
                        "candidates": list(e.candidates) if kind == "ambiguous" else [],
                        "n_ads": int(n_ads), "n_rows": int(n_rows)})
    df = pd.DataFrame(out, columns=_COLUMNS)
    return df.sort_values(["source", "n_ads", "label"], ascending=[True, False, True], ignore_index=True)


def summarise(inv: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per source: labels, matched labels, matched share of labels, of rows and of the labels that are not
    a country or a postcode (DSA target_locations mix regions with countries, towns and postcodes), and the
    number of labels per kind."""
    out: dict[str, dict[str, Any]] = {}
    for source, g in inv.groupby("source", sort=False):
        ok = g["iso_3166_2"].notna()
        out[str(source)] = {
            "labels": len(g), "matched": int(ok.sum()),
            "matched_share": round(float(ok.mean()), 4) if len(g) else None,
            "matched_share_rows": round(float(g.loc[ok, "n_rows"].sum() / g["n_rows"].sum()), 4)
            if g["n_rows"].sum() else None,
            "matched_share_regionlike": round(float(ok.sum() / max(1, (~g["kind"].isin(
                ["country", "postcode"])).sum())), 4),
            "kinds": {str(k): int(v) for k, v in g["kind"].value_counts().items()},
        }
    return out
