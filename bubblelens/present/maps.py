"""Maps: the values of a region scheme's segments on the shipped admin-1 shapes.

A *region scheme* is a segmentation whose segments are regions: a delivery-cell scheme with segments whose
only cell is ``region=<label>`` (``cells:region``; in a mixed scheme only those segments are drawn) or
a declared scheme whose labels are mostly regions (e.g. ``declared:region`` from a panel). Each segment's region label goes through the one
:class:`~bubblelens.geo.RegionMatcher` to an ISO 3166-2 code; a merged segment ("other": regions under the
privacy floor) is no region and is not drawn (counted in ``not_drawn``).

Measures (all read from the store, nothing recomputed):

- ``impressions``: the segment's impressions (``segments.impressions``) with the interval of the published
  ranges (sum over the segment's ``exposure_matrix`` rows of ``impressions_lower`` / ``_upper``);
- ``cross_cutting``: the measure stage's cross-cutting share with its bootstrap / census interval;
- ``camp_share:<camp>`` and ``narrative_share:<narrative>``: the share of the segment's impressions
  (``metrics_segments``; interval where stored).

Several segments on one shape (e.g. "Alsace" and "Lorraine", both in FR-GES): impressions add up, shares
are averaged weighted by impressions, and no interval is shown (the intervals were not computed jointly).

Colour scale: **viridis** (sequential, perceptually uniform, readable with the common colour-vision
deficiencies and in grey-scale print); regions without a value are drawn light grey.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd

from ..geo import country_geojson, region_matcher
from ..geo.inventory import delivery_region_codes
from .queries import Con, has_table

__all__ = ["COLORSCALE", "MEASURES", "PLOTLY_GEO_CONFIG", "choropleth", "context_features", "country_totals",
           "map_values", "measure_options", "region_schemes", "region_segments",
           "segment_countries"]

COLORSCALE = "Viridis"  # matplotlib's "viridis" in the report: the same scale in both
# plotly.js fetches a base-map topojson (``<topojsonURL><name>.json``, default cdn.plot.ly) before it draws
# any geo trace, even with the base map off and every shape given as GeoJSON: offline, nothing is drawn.
# An empty topology as a data: URL (the ``#`` turns the appended name into a fragment) is all it needs.
PLOTLY_GEO_CONFIG = {"topojsonURL": 'data:application/json,{"type":"Topology","objects":{},"arcs":[]}#'}
MEASURES = ("impressions", "cross_cutting", "camp_share", "narrative_share")
_MIN_MATCHED = 0.5  # a scheme is a region scheme when at least half of its segments' labels are regions


def _segment_labels(con: Con, scheme: str) -> pd.DataFrame:
    """segment_id, region label (None for a merged segment), impressions, suppressed."""
    seg = con.execute("SELECT segment_id, label, impressions, size, coalesce(suppressed, false) AS suppressed "
                      "FROM segments WHERE scheme = ?",
                      [scheme]).df()
    if seg.empty:
        return seg.assign(region=pd.Series(dtype=object))
    if scheme.startswith("cells"):  # a segment is a region when its only cell is region=<label>
        mem = con.execute(
            "SELECT segment_id, any_value(member_id) AS member FROM segment_members WHERE scheme = ? "
            "GROUP BY segment_id HAVING count(*) = 1", [scheme]).fetchall()
        one = {sid: str(member).split("=", 1)[1] for sid, member in mem
               if str(member).startswith("region=") and "|" not in str(member)}
        seg["region"] = seg["segment_id"].map(one).astype(object)
    else:
        seg["region"] = seg["label"].astype(object)
    return seg


def region_schemes(con: Con) -> list[str]:
    """The schemes whose segments are regions (see module docstring), most impressions first."""
    if not has_table(con, "segments"):
        return []
    schemes = con.execute("SELECT scheme, sum(impressions) AS imp FROM segments GROUP BY scheme "
                          "ORDER BY imp DESC NULLS LAST, scheme").fetchall()
    m = region_matcher()
    out = []
    for scheme, _imp in schemes:
        seg = _segment_labels(con, scheme)
        labels = seg["region"].dropna()
        if not len(labels):
            continue
        matched = m.match_many(labels).notna()
        # cells: the region cells of a mixed scheme (age × gender cells and region cells) are enough
        if matched.any() if str(scheme).startswith("cells") else matched.mean() >= _MIN_MATCHED:
            out.append(str(scheme))
    return out


def region_segments(con: Con, scheme: str) -> pd.DataFrame:
    """One row per segment of ``scheme``: segment_id, region (label), iso_3166_2, country, impressions,
    impressions_lower/upper, n_ads, n_sponsors, suppressed."""
    m = region_matcher()
    seg = _segment_labels(con, scheme)
    if seg.empty:
        return pd.DataFrame(columns=["segment_id", "region", "iso_3166_2", "country", "impressions",
                                     "impressions_lower", "impressions_upper", "n_ads", "n_sponsors",
                                     "suppressed"])
    codes = m.match_many(seg["region"])
    if scheme.startswith("cells"):
        resolved = delivery_region_codes(con, m)  # ambiguous labels resolved by their ads' other regions
        codes = seg["region"].map(lambda r: resolved.get(r) if isinstance(r, str) else None).where(
            lambda s: s.notna(), codes)
    seg["iso_3166_2"] = codes.astype(object)
    seg["country"] = seg["iso_3166_2"].map(lambda c: m.codes.get(c) if isinstance(c, str) else None)
    em = con.execute(
        "SELECT segment_id, sum(impressions_lower) AS impressions_lower, sum(impressions_upper) AS "
        "impressions_upper, sum(n_ads) AS n_ads_em FROM exposure_matrix WHERE scheme = ? AND task = "
        "'narrative' GROUP BY segment_id", [scheme]).df() if has_table(con, "exposure_matrix") else None
    if em is not None and len(em):
        seg = seg.merge(em, on="segment_id", how="left")
    else:
        seg = seg.assign(impressions_lower=np.nan, impressions_upper=np.nan, n_ads_em=np.nan)
    sup = con.execute(
        "SELECT segment_id, max(CASE WHEN metric = 'support:n_ads' THEN value END) AS n_ads, "
        "max(CASE WHEN metric = 'support:n_sponsors' THEN value END) AS n_sponsors "
        "FROM metrics_segments WHERE scheme = ? GROUP BY segment_id", [scheme]).df() \
        if has_table(con, "metrics_segments") else pd.DataFrame(columns=["segment_id", "n_ads", "n_sponsors"])
    seg = seg.merge(sup, on="segment_id", how="left")
    seg["n_ads"] = seg["n_ads"].fillna(seg["n_ads_em"])
    if scheme.startswith("cells"):  # a delivery cell's size is its number of ads (before any measurement)
        seg["n_ads"] = seg["n_ads"].fillna(seg["size"].astype(float))
    cols = ["segment_id", "region", "iso_3166_2", "country", "impressions", "impressions_lower",
            "impressions_upper", "n_ads", "n_sponsors", "suppressed"]
    return seg[cols].sort_values("impressions", ascending=False, ignore_index=True)


def measure_options(con: Con, scheme: str) -> dict[str, list[str]]:
    """What can be mapped for ``scheme``: ``{"measures": [...], "camps": [...], "narratives": [...]}``
    (camps and narratives with a stored share; cross-cutting only when measured)."""
    if not has_table(con, "metrics_segments"):
        return {"measures": ["impressions"], "camps": [], "narratives": []}
    names = [r[0] for r in con.execute("SELECT DISTINCT metric FROM metrics_segments WHERE scheme = ? "
                                       "ORDER BY metric", [scheme]).fetchall()]
    camps = [n.split(":", 1)[1] for n in names if n.startswith("camp_share:") and not n.endswith(":unassigned")]
    narrs = [n.split(":", 1)[1] for n in names
             if n.startswith("narrative_share:") and not n.endswith(":unassigned")]
    measures = ["impressions"] + (["cross_cutting"] if "cross_cutting" in names else []) \
        + (["camp_share"] if camps else []) + (["narrative_share"] if narrs else [])
    return {"measures": measures, "camps": camps, "narratives": narrs}


def segment_countries(con: Con, scheme: str) -> dict[str, str]:
    """Segment id (and region label) → ISO 3166-1 alpha-2 of the region it is, for a region scheme
    (:func:`region_segments`: the shipped admin-1 shapes); {} for other schemes. The report's and the
    app's figures group their rows by it (``present.rows``)."""
    if scheme not in region_schemes(con):
        return {}
    out: dict[str, str] = {}
    for r in region_segments(con, scheme).itertuples(index=False):
        if isinstance(r.country, str):
            out[str(r.segment_id)] = r.country
            if isinstance(r.region, str):
                out.setdefault(r.region, r.country)
    return out


def map_values(con: Con, scheme: str, measure: str = "impressions", label: str | None = None, *,
               segments: Collection[str] | None = None) -> pd.DataFrame:
    """One row per drawn shape: iso_3166_2, country, region (label(s)), segment_id (the largest segment
    on the shape: the one a click opens), value, ci_low, ci_high, impressions, n_ads, n_sponsors, n_segments.
    ``measure`` is one of :data:`MEASURES`; ``label`` names the camp or narrative of a share; ``segments``
    (ids), when given, keeps only those segments; by default, once the scheme is measured, the segments the
    measurement kept (those under its privacy floor are in the segments table but in no output)."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; one of {', '.join(MEASURES)}")
    if segments is None and has_table(con, "metrics_segments"):
        measured = {str(r[0]) for r in con.execute(
            "SELECT DISTINCT segment_id FROM metrics_segments WHERE scheme = ?", [scheme]).fetchall()}
        segments = measured or None
    seg = region_segments(con, scheme)
    keep = seg["iso_3166_2"].notna() & ~seg["suppressed"].fillna(False).astype(bool)
    if segments is not None:
        keep &= seg["segment_id"].astype(str).isin(set(segments))
    seg = seg[keep].copy()
    if measure == "impressions":
        seg["value"] = seg["impressions"]
        seg["ci_low"], seg["ci_high"] = seg["impressions_lower"], seg["impressions_upper"]
    else:
        metric = measure if measure == "cross_cutting" else f"{measure}:{label}"
        met = con.execute("SELECT segment_id, value, ci_low, ci_high FROM metrics_segments WHERE scheme = ? "
                          "AND metric = ?", [scheme, metric]).df() if has_table(con, "metrics_segments") \
            else pd.DataFrame(columns=["segment_id", "value", "ci_low", "ci_high"])
        seg = seg.merge(met, on="segment_id", how="left")
    seg = seg.sort_values("impressions", ascending=False)
    rows: list[dict[str, Any]] = []
    for code, g in seg.groupby("iso_3166_2", sort=False):
        first = g.iloc[0]
        if len(g) == 1:
            value, lo, hi = first["value"], first["ci_low"], first["ci_high"]
        elif measure == "impressions":
            value, lo, hi = g["value"].sum(), g["ci_low"].sum(min_count=1), g["ci_high"].sum(min_count=1)
        else:
            ok = g["value"].notna() & (g["impressions"] > 0)
            value = float(np.average(g.loc[ok, "value"], weights=g.loc[ok, "impressions"])) if ok.any() else np.nan
            lo = hi = np.nan
        rows.append({"iso_3166_2": code, "country": first["country"], "region": " + ".join(map(str, g["region"])),
                     "segment_id": first["segment_id"], "value": value, "ci_low": lo, "ci_high": hi,
                     "impressions": g["impressions"].sum(), "n_ads": g["n_ads"].sum(min_count=1),
                     "n_sponsors": g["n_sponsors"].max(), "n_segments": len(g)})
    return pd.DataFrame(rows, columns=["iso_3166_2", "country", "region", "segment_id", "value", "ci_low",
                                       "ci_high", "impressions", "n_ads", "n_sponsors", "n_segments"])


def country_totals(values: pd.DataFrame) -> pd.DataFrame:
    """Countries of the drawn shapes with their impressions and shapes, most impressions first."""
    if values.empty:
        return pd.DataFrame(columns=["country", "impressions", "regions"])
    g = values.groupby("country").agg(impressions=("impressions", "sum"), regions=("iso_3166_2", "count"))
    return g.reset_index().sort_values(["impressions", "country"], ascending=[False, True], ignore_index=True)


def _bbox(geom: dict[str, Any]) -> tuple[float, float, float, float]:
    xy = np.array([pt for ring in _rings(geom) for pt in ring], dtype=float)
    return float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())


def _rings(geom: dict[str, Any]) -> list[list[list[float]]]:
    c = geom["coordinates"]
    polys = [c] if geom["type"] == "Polygon" else c
    return [ring for poly in polys for ring in poly]


def context_features(country: str, codes: set[str]) -> dict[str, Any]:
    """The country's map-layer shapes near the drawn ones (inside their box, 20 % margin): drawn grey
    behind the values, so a region without data shows as such without the overseas ones widening
    the view."""
    gj = country_geojson(country, codes)
    drawn = [f for f in gj["features"] if f["id"] in codes]
    if not drawn:
        return {"type": "FeatureCollection", "features": []}
    boxes = np.array([_bbox(f["geometry"]) for f in drawn])
    x0, y0, x1, y1 = boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()
    mx, my = 0.2 * (x1 - x0), 0.2 * (y1 - y0)
    near = []
    for f in gj["features"]:
        if f["id"] in codes:
            continue
        a, b, c, d = _bbox(f["geometry"])
        if a >= x0 - mx and c <= x1 + mx and b >= y0 - my and d <= y1 + my:
            near.append(f)
    return {"type": "FeatureCollection", "features": near}


def _known(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and np.isnan(v))


def _fmt(v: Any, share: bool) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    return f"{100 * float(v):.1f} %" if share else f"{float(v):,.0f}"


def choropleth(values: pd.DataFrame, country: str, *, title: str = "", share: bool = False,
               colorbar_title: str = "") -> Any:
    """A plotly choropleth of one country's ``values`` (from :func:`map_values`) on the shipped shapes:
    no tiles and no download (geojson passed in, ``fitbounds="locations"``, base map off); hover: the
    region, the value with its interval, the number of ads and sponsors; ``customdata[0]`` is the
    segment a click opens."""
    import plotly.graph_objects as go

    v = values[values["country"] == country]
    codes = set(v["iso_3166_2"])
    gj = country_geojson(country, codes)
    ctx = context_features(country, codes)
    hover = [
        f"<b>{r['region']}</b> ({r['iso_3166_2']})<br>{_fmt(r['value'], share)}"
        + (f" [{_fmt(r['ci_low'], share)}, {_fmt(r['ci_high'], share)}]" if _known(r["ci_low"]) else "")
        + f"<br>{_fmt(r['n_ads'], False)} ads" + (f", {_fmt(r['n_sponsors'], False)} sponsors"
                                                   if _known(r["n_sponsors"]) else "")
        + (f"<br>{_fmt(r['impressions'], False)} impressions" if share else "")
        + ("<br>click: its ads" if r["segment_id"] else "")
        for r in v.to_dict(orient="records")]
    fig = go.Figure()
    if ctx["features"]:
        fig.add_trace(go.Choropleth(
            geojson=ctx, featureidkey="id", locations=[f["id"] for f in ctx["features"]],
            z=[0] * len(ctx["features"]), colorscale=[[0, "#e6e6e6"], [1, "#e6e6e6"]], showscale=False,
            hoverinfo="skip", marker={"line": {"color": "white", "width": 0.5}}))
    z = v["value"].astype(float)
    fig.add_trace(go.Choropleth(
        geojson=gj, featureidkey="id", locations=list(v["iso_3166_2"]), z=z.fillna(np.nan).tolist(),
        colorscale=COLORSCALE, zmin=0 if share else None, marker={"line": {"color": "white", "width": 0.6}},
        customdata=v[["segment_id", "iso_3166_2"]].to_numpy(), text=hover,
        hovertemplate="%{text}<extra></extra>",
        colorbar={"title": {"text": colorbar_title}, "tickformat": ".0%" if share else ",.0f"}))
    fig.update_geos(fitbounds="locations", visible=False, projection_type="mercator")
    fig.update_layout(title=title or None, margin={"l": 0, "r": 0, "t": 40 if title else 0, "b": 0},
                      height=560, clickmode="event+select", dragmode=False)
    return fig
