"""Targeting: what each camp aimed at, and how much of its spend used personal data. Pure functions.

Inputs are the stored targeting tables (:mod:`bubblelens.ingest.targeting`) as DataFrames, or the same
shape built from the per-ad DSA fields of an Ad Library pull (:func:`criteria_from_ads`): one row per
page and window (``pages``: ``page_id, ds, spend, group``) and one row per criterion (``criteria``:
``page_id, ds, type, value, total_spend_pct, is_exclusion, location_type, detailed_type,
custom_audience_type``). These are **platform-reported targeting choices**, not delivery.

Spend-weighting over pages. A page ``p`` of spend ``w_p`` puts the share ``s_pc`` of its spend on ads
using criterion ``c``; several criteria of one method overlap (an ad can use two interests), so a page's
share behind a method ``m`` is only bounded:

    low_pm  = max_{c ∈ m} s_pc          (the criteria all on the same ads)
    high_pm = min(1, Σ_{c ∈ m} s_pc)    (the criteria on disjoint ads)

and a group ``G``'s share is the spend-weighted mean over **all** its pages (a page without the method
counts 0): ``low_Gm = Σ_p w_p low_pm / Σ_p w_p``, likewise ``high``. Methods (:data:`METHODS`):

- ``custom_audience`` (any custom audience row), ``customer_list`` (the data-file custom audience,
  ``HAS_DFCA_INCLUSION``), ``lookalike_audience``, and ``personal_data``: any of the three;
- ``detailed`` (interests, demographics, behaviours; also split by ``detailed_type``), ``language``;
- ``location`` (any level below the country) and ``location:LEVEL`` (country, region, city,
  postal_code, electoral_district, neighborhood, other);
- ``age``: an ad that leaves out an adult age ``a`` (18 … 65+) narrows the age range; the rows give
  ``s_pa`` (share on ads that include ``a``), so the criteria are "leaves out a", of share ``1 − s_pa``;
- ``gender``: ``Women`` or ``Men`` (``All`` is no targeting).

Exclusions (``is_exclusion``, ``HAS_*_EXCLUSION``) are measured apart with the same bounds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MeasureError

__all__ = ["ADULT_AGES", "AGE_BANDS", "METHODS", "PERSONAL_DATA", "criteria_from_ads", "delivered_shares",
           "distinctive_criteria", "group_clusters", "group_methods", "keyed", "location_level",
           "log_odds_dirichlet", "method_rows", "page_methods", "page_weights", "personal_data_indicator",
           "side_by_side", "targeted_shares"]

ADULT_AGES: tuple[str, ...] = (*tuple(str(a) for a in range(18, 65)), "65+")
AGE_BANDS: dict[str, tuple[str, ...]] = {
    "18-24": tuple(str(a) for a in range(18, 25)), "25-34": tuple(str(a) for a in range(25, 35)),
    "35-44": tuple(str(a) for a in range(35, 45)), "45-54": tuple(str(a) for a in range(45, 55)),
    "55-64": tuple(str(a) for a in range(55, 65)), "65+": ("65+",)}
LOCATION_LEVELS = ("country", "region", "city", "postal_code", "electoral_district", "neighborhood", "other")
_LEVEL = {"countries": "country", "country": "country", "regions": "region", "region": "region",
          "cities": "city", "city": "city", "multi_city": "city", "kreisfreie_stadte": "city",
          "municipality": "city", "zips": "postal_code", "zip": "postal_code", "postal_code": "postal_code",
          "electoral_districts": "electoral_district", "electoral_district": "electoral_district",
          "neighborhood": "neighborhood", "neighborhoods": "neighborhood"}
PERSONAL_DATA = ("customer_list", "custom_audience", "lookalike_audience", "personal_data")
METHODS: tuple[str, ...] = (
    "personal_data", "custom_audience", "customer_list", "lookalike_audience", "detailed",
    "detailed:interests", "detailed:demographics", "detailed:behaviors", "location",
    *(f"location:{lv}" for lv in LOCATION_LEVELS), "age", "gender", "language")
_KEYS = ["page_id", "ds"]


def keyed(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its window ``ds`` as a ``YYYY-MM-DD`` string ("" when unknown), so pages and criteria
    join on ``(page_id, ds)`` whatever type the window came in."""
    out = df.copy()
    if "ds" not in out:
        out["ds"] = ""
    elif not (out["ds"].dtype == object and out["ds"].map(lambda x: isinstance(x, str)).all()):
        out["ds"] = pd.to_datetime(out["ds"], errors="coerce").dt.strftime("%Y-%m-%d").fillna("")
    out["page_id"] = out["page_id"].astype(str)
    return out


def location_level(location_type: Any) -> str:
    """The level of a ``location_type`` (``zips`` → postal_code, ``CITY`` → city, …; unknown → other)."""
    if location_type is None or (isinstance(location_type, float) and np.isnan(location_type)):
        return "other"
    return _LEVEL.get(str(location_type).strip().lower(), "other")


def page_weights(pages: pd.DataFrame) -> tuple[pd.Series, str]:
    """Each page's spend weight and its unit: ``spend_eur`` when every page has it, else ``spend`` in
    the one currency all pages share. Raises :class:`MeasureError` for mixed currencies without EUR."""
    if "spend_eur" in pages and len(pages) and pages["spend_eur"].notna().all():
        return pages["spend_eur"].astype(float).fillna(0.0), "EUR"
    cur = pages.get("currency", pd.Series([None] * len(pages))).dropna().unique()
    if len(cur) > 1:
        raise MeasureError(f"pages spend in several currencies ({', '.join(map(str, cur))}) and not all have "
                           "euro_spend: cannot weight them together")
    return pages["spend"].astype(float).fillna(0.0), str(cur[0]) if len(cur) else "spend"


def _flag(s: pd.Series) -> pd.Series:
    return s.astype("boolean").fillna(False).astype(bool)


def method_rows(criteria: pd.DataFrame) -> pd.DataFrame:
    """The criteria as ``(page_id, ds, method, exclusion, share)`` rows, one per method a criterion
    counts to (a customer-list row counts to ``customer_list``, ``custom_audience`` and
    ``personal_data``); age rows become "leaves out a" of share ``1 − s`` (adult ages only)."""
    c = keyed(criteria)
    typ = c["type"].astype(str).str.lower()
    cat = c.get("custom_audience_type", pd.Series([None] * len(c), index=c.index)).fillna("").astype(str).str.upper()
    excl = _flag(c["is_exclusion"]) | cat.str.endswith("_EXCLUSION")
    share = c["total_spend_pct"].astype(float).clip(0, 1)
    parts: list[pd.DataFrame] = []

    def add(mask: pd.Series, method: str | pd.Series, values: pd.Series | None = None) -> None:
        if not mask.any():
            return
        parts.append(pd.DataFrame({"page_id": c.loc[mask, "page_id"].values, "ds": c.loc[mask, "ds"].values,
                                   "method": method[mask].values if isinstance(method, pd.Series) else method,
                                   "exclusion": excl[mask].values,
                                   "share": (values if values is not None else share)[mask].values}))

    ca = typ.eq("custom_audience")
    lal = typ.eq("lookalike_audience")
    dfca = ca & (cat.str.contains("DFCA") | c["value"].fillna("").str.lower().str.contains("customer list"))
    add(ca, "custom_audience")
    add(dfca, "customer_list")
    add(lal, "lookalike_audience")
    add(ca | lal, "personal_data")
    det = typ.eq("detailed")
    add(det, "detailed")
    dt = c.get("detailed_type", pd.Series([None] * len(c), index=c.index)).fillna("").astype(str).str.lower()
    for sub in ("interests", "demographics", "behaviors"):
        add(det & dt.eq(sub), f"detailed:{sub}")
    loc = typ.eq("location")
    if loc.any():
        lv = c.get("location_type", pd.Series([None] * len(c), index=c.index)).map(location_level)
        add(loc, "location:" + lv)
        add(loc & lv.ne("country"), "location")
    add(typ.eq("language"), "language")
    age = typ.eq("age") & c["value"].astype(str).isin(ADULT_AGES) & ~excl
    add(age, "age", 1.0 - share)
    gender = typ.eq("gender") & c["value"].astype(str).str.lower().isin(["women", "men", "female", "male"])
    add(gender, "gender")
    if not parts:
        return pd.DataFrame(columns=["page_id", "ds", "method", "exclusion", "share"])
    return pd.concat(parts, ignore_index=True)


def page_methods(rows: pd.DataFrame) -> pd.DataFrame:
    """Per page, window, method and exclusion flag: ``low = max share``, ``high = min(1, Σ share)``."""
    g = rows.groupby([*_KEYS, "method", "exclusion"], dropna=False)["share"]
    out = pd.DataFrame({"low": g.max(), "high": g.sum().clip(upper=1.0)}).reset_index()
    return out


def _weighted(pages: pd.DataFrame, pm: pd.DataFrame, by: str) -> pd.DataFrame:
    """Group × method × exclusion: spend-weighted low/high over all pages of the group, pages using it."""
    w = pages[[*_KEYS, by, "weight"]]
    m = pm.merge(w, on=_KEYS, how="inner")
    m["wlow"], m["whigh"] = m["low"] * m["weight"], m["high"] * m["weight"]
    m["used"] = m["high"] > 0
    agg = m.groupby([by, "method", "exclusion"], dropna=False).agg(
        wlow=("wlow", "sum"), whigh=("whigh", "sum"), pages_using=("used", "sum")).reset_index()
    tot = w.groupby(by, dropna=False).agg(spend=("weight", "sum"), pages=("page_id", "size")).reset_index()
    agg = agg.merge(tot, on=by)
    den = agg["spend"].where(agg["spend"] > 0)
    agg["low"], agg["high"] = agg["wlow"] / den, agg["whigh"] / den
    return agg.drop(columns=["wlow", "whigh"])


def group_methods(pages: pd.DataFrame, criteria: pd.DataFrame, *, by: str = "group") -> pd.DataFrame:
    """The methods table: every group × method (:data:`METHODS`) × exclusion, with ``low``, ``high``
    (shares of the group's spend), ``pages_using``, ``pages`` and ``spend``. A group whose pages never
    used a method gets 0 with its pages counted, never a missing value. ``pages`` needs ``weight``."""
    pages = keyed(pages)
    pm = page_methods(method_rows(criteria))
    agg = _weighted(pages, pm, by)
    tot = pages.groupby(by, dropna=False).agg(spend=("weight", "sum"), pages=("page_id", "size")).reset_index()
    grid = tot.merge(pd.DataFrame({"method": list(METHODS)}), how="cross").merge(
        pd.DataFrame({"exclusion": [False, True]}), how="cross")
    out = grid.merge(agg.drop(columns=["spend", "pages"]), on=[by, "method", "exclusion"], how="left")
    out["pages_using"] = out["pages_using"].fillna(0).astype(int)
    zero = out["spend"] > 0
    for k in ("low", "high"):
        out[k] = out[k].where(out[k].notna(), np.where(zero, 0.0, np.nan))
    return out


def personal_data_indicator(pages: pd.DataFrame, criteria: pd.DataFrame, *, by: str = "group",
                            n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Per group and personal-data method (:data:`PERSONAL_DATA`): ``low``, ``high``, ``pages_using``,
    ``pages`` and an interval **over pages**: the group's pages are resampled with replacement
    (``n_boot`` times) and the spend-weighted share recomputed; ``ci_low`` is the ``(1−level)/2``
    quantile of the resampled lower bounds, ``ci_high`` the ``(1+level)/2`` quantile of the upper ones.
    It says how much the figure rests on a few pages, not how uncertain Meta's shares are."""
    pages = keyed(pages)
    pm = page_methods(method_rows(criteria))
    pm = pm[~pm["exclusion"] & pm["method"].isin(PERSONAL_DATA)]
    table = group_methods(pages, criteria, by=by)
    table = table[~table["exclusion"] & table["method"].isin(PERSONAL_DATA)].copy()
    rng = np.random.default_rng(seed)
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    ci_low, ci_high = [], []
    cache: dict[Any, tuple[np.ndarray, np.ndarray]] = {}
    for _, row in table.iterrows():
        g = row[by]
        pg = pages[pages[by] == g] if not pd.isna(g) else pages[pages[by].isna()]
        if g not in cache:
            n = len(pg)
            cache[g] = (rng.integers(0, n, size=(n_boot, n)) if n else np.zeros((n_boot, 0), dtype=int),
                        pg["weight"].to_numpy(float))
        idx, w = cache[g]
        sub = pm[pm["method"] == row["method"]]
        vals = pg[_KEYS].merge(sub, on=_KEYS, how="left")
        lo, hi = vals["low"].fillna(0).to_numpy(float), vals["high"].fillna(0).to_numpy(float)
        W = w[idx].sum(axis=1) if idx.size else np.zeros(n_boot)
        with np.errstate(invalid="ignore", divide="ignore"):
            bl = (w[idx] * lo[idx]).sum(axis=1) / W if idx.size else np.full(n_boot, np.nan)
            bh = (w[idx] * hi[idx]).sum(axis=1) / W if idx.size else np.full(n_boot, np.nan)
        ci_low.append(float(np.nanquantile(bl, lo_q)) if np.isfinite(bl).any() else np.nan)
        ci_high.append(float(np.nanquantile(bh, hi_q)) if np.isfinite(bh).any() else np.nan)
    table["ci_low"], table["ci_high"] = ci_low, ci_high
    return table.reset_index(drop=True)


# -- distinctive criteria ------------------------------------------------------------------------
def log_odds_dirichlet(counts: pd.DataFrame, *, prior_strength: float | None = None) -> pd.DataFrame:
    """Monroe, Colaresi & Quinn (2008) log-odds ratio with an informative Dirichlet prior.

    ``counts``: groups × features (non-negative). With ``y_kw`` the count of feature ``w`` in group
    ``k``, ``n_k = Σ_w y_kw``, the rest ``y_-kw``, ``n_-k``, and the prior ``α_w = α_0 π_w`` (``π_w``
    the pooled share of ``w``; ``α_0`` = ``prior_strength``, default the mean group total)::

        δ_kw = log((y_kw + α_w) / (n_k + α_0 − y_kw − α_w)) − log((y_-kw + α_w) / (n_-k + α_0 − y_-kw − α_w))
        σ²_kw ≈ 1 / (y_kw + α_w) + 1 / (y_-kw + α_w),      z_kw = δ_kw / σ_kw

    Returns a long frame ``group, feature, delta, z``. A feature with a large ``z`` is used more by
    that group than by the others, more than chance in a small group would make it look."""
    Y = counts.to_numpy(float)
    if Y.size == 0:
        return pd.DataFrame(columns=["group", "feature", "delta", "z"])
    total = Y.sum()
    if total <= 0:
        raise MeasureError("no criteria with spend to compare")
    pi = Y.sum(axis=0) / total
    a0 = float(prior_strength) if prior_strength else float(Y.sum(axis=1).mean())
    alpha = a0 * pi
    n = Y.sum(axis=1, keepdims=True)
    rest = Y.sum(axis=0, keepdims=True) - Y
    n_rest = total - n
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (np.log((Y + alpha) / (n + a0 - Y - alpha))
                 - np.log((rest + alpha) / (n_rest + a0 - rest - alpha)))
        z = delta / np.sqrt(1.0 / (Y + alpha) + 1.0 / (rest + alpha))
    out = pd.DataFrame({"group": np.repeat(counts.index.to_numpy(), Y.shape[1]),
                        "feature": np.tile(counts.columns.to_numpy(), Y.shape[0]),
                        "delta": delta.ravel(), "z": z.ravel()})
    return out


def criterion_label(criteria: pd.DataFrame) -> pd.Series:
    """``type: value`` of each criterion (location with its level: ``location (postal_code): 10115, Germany``)."""
    typ = criteria["type"].astype(str)
    lv = criteria.get("location_type", pd.Series([None] * len(criteria), index=criteria.index)).map(location_level)
    kind = typ.where(typ != "location", "location (" + lv + ")")
    return kind + ": " + criteria["value"].fillna("").astype(str)


def distinctive_criteria(pages: pd.DataFrame, criteria: pd.DataFrame, *, by: str = "group", top: int = 5,
                         min_pages: int = 2, types: Sequence[str] = ("detailed", "location", "language"),
                         prior_strength: float | None = None) -> pd.DataFrame:
    """The criteria that most set each group apart: :func:`log_odds_dirichlet` on spend (``w_p × s_pc``
    summed over the group's pages) of included criteria of ``types`` (country-level locations left out:
    every page has one). Kept per group: the ``top`` by ``z`` with positive ``δ`` and at least
    ``min(min_pages, pages of the group)`` pages behind them. Columns: ``group, criterion, type, value,
    delta, z, spend, pages``."""
    pages, criteria = keyed(pages), keyed(criteria)
    c = criteria[criteria["type"].astype(str).isin(types) & ~_flag(criteria["is_exclusion"])].copy()
    if "location_type" in c:
        c = c[~((c["type"] == "location") & (c["location_type"].map(location_level) == "country"))]
    c = c[c["total_spend_pct"].astype(float) > 0]
    cols = ["group", "criterion", "type", "value", "delta", "z", "spend", "pages"]
    if c.empty:
        return pd.DataFrame(columns=cols)
    c["criterion"] = criterion_label(c)
    m = c.merge(pages[[*_KEYS, by, "weight"]], on=_KEYS, how="inner")
    m["spend"] = m["weight"] * m["total_spend_pct"].astype(float)
    m[by] = m[by].astype(str)
    agg = m.groupby([by, "criterion"]).agg(spend=("spend", "sum"), pages=("page_id", "nunique"),
                                           type=("type", "first"), value=("value", "first")).reset_index()
    counts = agg.pivot_table(index=by, columns="criterion", values="spend", aggfunc="sum", fill_value=0.0)
    counts = counts.reindex(sorted(pages[by].astype(str).unique()), fill_value=0.0)
    lo = log_odds_dirichlet(counts, prior_strength=prior_strength).rename(
        columns={"group": by, "feature": "criterion"})
    res = lo.merge(agg, on=[by, "criterion"], how="inner")
    n_pages = pages.assign(**{by: pages[by].astype(str)}).groupby(by)["page_id"].size()
    need = res[by].map(lambda g: min(min_pages, int(n_pages.get(g, 1))))
    res = res[(res["delta"] > 0) & (res["pages"] >= need) & (res["spend"] > 0)]
    res = res.sort_values([by, "z"], ascending=[True, False]).groupby(by).head(top)
    return res.rename(columns={by: "group"})[cols].reset_index(drop=True)


# -- clusters of detailed criteria ---------------------------------------------------------------
def group_clusters(pages: pd.DataFrame, criteria: pd.DataFrame, assignment: pd.DataFrame, *,
                   by: str = "group") -> pd.DataFrame:
    """Spend of each group on each cluster of detailed criteria (``assignment``: ``value, cluster_id,
    label``), and its share of the group's detailed spend. Spend of a criterion = ``w_p × s_pc``;
    overlapping interests of one ad count once each (this is spend *behind* a cluster, not a partition).
    Columns: ``group, cluster_id, label, spend, share, pages``."""
    pages, criteria = keyed(pages), keyed(criteria)
    c = criteria[(criteria["type"] == "detailed") & ~_flag(criteria["is_exclusion"])]
    m = c.merge(pages[[*_KEYS, by, "weight"]], on=_KEYS).merge(assignment[["value", "cluster_id", "label"]],
                                                              on="value", how="inner")
    cols = ["group", "cluster_id", "label", "spend", "share", "pages"]
    if m.empty:
        return pd.DataFrame(columns=cols)
    m["spend"] = m["weight"] * m["total_spend_pct"].astype(float)
    agg = m.groupby([by, "cluster_id", "label"], dropna=False).agg(
        spend=("spend", "sum"), pages=("page_id", "nunique")).reset_index()
    tot = agg.groupby(by)["spend"].transform("sum")
    agg["share"] = agg["spend"] / tot.where(tot > 0)
    return agg.rename(columns={by: "group"}).sort_values(["group", "spend"], ascending=[True, False])[cols]


# -- per-ad DSA fields (an Ad Library pull) --------------------------------------------------------
_AGE_RANGE = re.compile(r"^\s*(\d+)\s*[-–]\s*(\d+)\+?\s*$")
_ZIP = re.compile(r"^\s*\d{4,5}\b")


def _ages_of(value: str) -> list[str]:
    """Single adult ages of a DSA ``target_ages`` value (``18-65`` → 18 … 64 and 65+)."""
    m = _AGE_RANGE.match(str(value))
    if not m:
        return []
    lo, hi = int(m.group(1)), int(m.group(2))
    ages = [str(a) for a in range(max(lo, 18), min(hi, 64) + 1)]
    return ages + (["65+"] if hi >= 65 else [])


def _dsa_location_type(name: str) -> str:
    """The DSA fields store a place's name only: a leading 4–5 digit code is a postal code, a name without
    a comma a country (``Duitsland``), anything else a region or city we cannot tell apart (other)."""
    if _ZIP.match(name):
        return "zips"
    return "countries" if "," not in name else "other"


def criteria_from_ads(ads: pd.DataFrame, targeting: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pages and criteria in the targeting-table shape, from an Ad Library pull's per-ad DSA fields.

    ``ads``: ``message_id, page_id, page_name, spend`` (an ad's spend: the midpoint of its range) and
    optionally ``group``; ``targeting``: the stored ``message_id, dimension, value, included``. A page's
    criterion share is exact here: ``s_pc = Σ spend of its ads with c / Σ spend of its ads``; ages
    ranges become single-year rows as in the table, genders ``All/Women/Men``, places ``location`` rows
    (type guessed from the name, see :func:`_dsa_location_type`; excluded places are exclusions)."""
    a = ads.copy()
    a["spend"] = a["spend"].astype(float).fillna(0.0)
    pages = a.groupby("page_id", dropna=False).agg(
        page_name=("page_name", "first"), spend=("spend", "sum"),
        **({"group": ("group", lambda s: s.mode().iloc[0] if s.notna().any() else None)}
           if "group" in a else {})).reset_index()
    pages["ds"] = None
    t = targeting.merge(a[["message_id", "page_id", "spend"]], on="message_id", how="inner")
    rows: list[dict[str, Any]] = []
    for (pid, dim), g in t.groupby(["page_id", "dimension"]):
        if dim == "age":
            exp = g.assign(age=g["value"].map(_ages_of)).explode("age").dropna(subset=["age"])
            by_val = exp.groupby("age")["spend"].sum()
            for age in ADULT_AGES:
                rows.append({"page_id": pid, "type": "age", "value": age, "spend": float(by_val.get(age, 0.0)),
                             "is_exclusion": None, "location_type": None})
        elif dim == "gender":
            for val, s in g.groupby("value")["spend"].sum().items():
                rows.append({"page_id": pid, "type": "gender", "value": str(val), "spend": float(s),
                             "is_exclusion": None, "location_type": None})
        elif dim == "location":
            sums = g.groupby(["value", "included"])["spend"].sum().reset_index()
            for val, inc, s in zip(sums["value"], sums["included"], sums["spend"].astype(float), strict=True):
                rows.append({"page_id": pid, "type": "location", "value": str(val), "spend": float(s),
                             "is_exclusion": not bool(inc), "location_type": _dsa_location_type(str(val))})
    crit = pd.DataFrame(rows, columns=["page_id", "type", "value", "spend", "is_exclusion", "location_type"])
    tot = crit["page_id"].map(pages.set_index("page_id")["spend"])
    crit["total_spend_pct"] = (crit["spend"] / tot.where(tot > 0)).fillna(0.0).clip(0, 1)
    crit["ds"] = None
    for k in ("detailed_type", "custom_audience_type"):
        crit[k] = None
    return pages, crit.drop(columns=["spend"])


def targeted_shares(criteria: pd.DataFrame) -> pd.DataFrame:
    """Per page: the share of its spend on ads whose targeting **includes** each age band (the mean of
    the band's single-year shares) and each gender (``female``: ``All`` + ``Women``; ``male``: ``All``
    + ``Men``). Columns ``page_id, dimension, band, targeted``."""
    out: list[pd.DataFrame] = []
    age = criteria[criteria["type"] == "age"]
    if len(age):
        band = {a: b for b, ages in AGE_BANDS.items() for a in ages}
        a = age.assign(band=age["value"].astype(str).map(band)).dropna(subset=["band"])
        out.append(a.groupby(["page_id", "band"])["total_spend_pct"].mean().rename("targeted").reset_index()
                   .assign(dimension="age"))
    gen = criteria[criteria["type"] == "gender"]
    if len(gen):
        v = gen.assign(value=gen["value"].astype(str).str.lower())
        piv = v.pivot_table(index="page_id", columns="value", values="total_spend_pct", aggfunc="sum", fill_value=0)
        for b, col in (("female", "women"), ("male", "men")):
            s = piv.get("all", 0) + piv.get(col, 0)
            out.append(pd.DataFrame({"page_id": piv.index, "band": b, "targeted": np.clip(np.asarray(s, float), 0, 1),
                                     "dimension": "gender"}))
    if not out:
        return pd.DataFrame(columns=["page_id", "dimension", "band", "targeted"])
    return pd.concat(out, ignore_index=True)[["page_id", "dimension", "band", "targeted"]]


def delivered_shares(deliveries: pd.DataFrame) -> pd.DataFrame:
    """Per page: the share of its delivered impressions (or reach) in each age band and gender.
    ``deliveries``: ``page_id, age, gender, impressions`` (one kind of delivery row only). Columns
    ``page_id, dimension, band, delivered``."""
    d = deliveries.copy()
    d["impressions"] = d["impressions"].astype(float).fillna(0.0)
    out = []
    for dim, col, keep in (("age", "age", tuple(AGE_BANDS)), ("gender", "gender", ("female", "male"))):
        tot = d.groupby("page_id")["impressions"].sum()
        x = d[d[col].astype(str).str.lower().isin([k.lower() for k in keep])]
        s = x.groupby(["page_id", x[col].astype(str).str.lower()])["impressions"].sum().rename("n").reset_index()
        s["delivered"] = s["n"] / s["page_id"].map(tot).where(lambda v: v > 0)
        out.append(s.rename(columns={col: "band"}).assign(dimension=dim)[["page_id", "dimension", "band", "delivered"]])
    return pd.concat(out, ignore_index=True)


def side_by_side(targeted: pd.DataFrame, delivered: pd.DataFrame) -> pd.DataFrame:
    """Targeted vs delivered per page, dimension and band, for pages that have both; a band the page's
    delivery never reached counts 0 delivered."""
    both = set(targeted["page_id"]) & set(delivered["page_id"])
    t = targeted[targeted["page_id"].isin(both)]
    m = t.merge(delivered, on=["page_id", "dimension", "band"], how="left")
    m["delivered"] = m["delivered"].fillna(0.0)
    order = {b: i for i, b in enumerate([*AGE_BANDS, "female", "male"])}
    m["_o"] = m["band"].map(order)
    return m.sort_values(["page_id", "dimension", "_o"]).drop(columns="_o").reset_index(drop=True)
