"""Static maps of the report: one per measured region scheme, drawn with matplotlib from the shipped
admin-1 GeoJSON (no tiles, no download, no script in the HTML).

Each map shows the country with the most impressions of the scheme, two panels when the measure stage
stored cross-cutting shares: impressions (left) and the cross-cutting share (right), each with its colour
bar. Colour scale: **viridis** (perceptually uniform, readable with the common colour-vision deficiencies,
and monotone in lightness so it prints in grey); a shape without a value is light grey. Coordinates are
drawn in plate carrée with the aspect ``1 / cos(mean latitude)``, which keeps a country's shape at the
scales drawn here. A source line under the map names the data, the scheme and the shapes (Natural Earth).
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.collections import PatchCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch
from matplotlib.path import Path

from ..present.maps import context_features, country_totals, map_values, region_schemes
from ..store import Store
from .figures import to_png, to_svg

__all__ = ["CMAP", "map_figure", "map_heading", "report_maps"]

CMAP = "viridis"
_STRINGS = {
    "en": {"title": "Map: {scheme}, {country}", "impressions": "impressions", "cc": "cross-cutting share",
           "cc_circular": "cross-cutting share (circular lean)",
           "circular": " Each region's home camp is the camp it receives most (circular lean, no --lean file): "
                       "the cross-cutting share says how much of what a region gets is not that camp, not who "
                       "lives there (docs/metrics.md).",
           "source": "Source: {n_ads} ads in this store, scheme {scheme}, measurement {run}. Shapes: Natural "
                     "Earth admin-1 (public domain). Colour: viridis; grey: no value or merged.",
           "caption": "{country}: impressions and cross-cutting share by region ({n} regions drawn). Of the "
                      "{total} measured segments, {here} are drawn on them, {abroad} are regions of other "
                      "countries and {left} are on no map: merged, unknown or not a region (see `bubblelens "
                      "regions`). Segments under the privacy floor are neither measured nor drawn."},
    "fr": {"title": "Carte : {scheme}, {country}", "impressions": "impressions", "cc": "part transversale",
           "cc_circular": "part transversale (orientation circulaire)",
           "circular": " Le camp de référence de chaque région est celui qu'elle reçoit le plus (orientation "
                       "circulaire, sans fichier --lean) : la part transversale dit combien de ce qu'elle reçoit "
                       "n'est pas ce camp, pas qui y vit (docs/metrics.md).",
           "source": "Source : {n_ads} annonces de cette base, schéma {scheme}, mesure {run}. Formes : Natural "
                     "Earth admin-1 (domaine public). Couleurs : viridis ; gris : sans valeur ou regroupé.",
           "caption": "{country} : impressions et part d'exposition transversale par région ({n} régions "
                      "dessinées). Des {total} segments mesurés, {here} y sont dessinés, {abroad} sont des régions "
                      "d'autres pays et {left} ne sont sur aucune carte : regroupés, inconnus ou pas une région "
                      "(voir `bubblelens regions`). Les segments sous le seuil de confidentialité ne sont ni "
                      "mesurés ni dessinés."},
}


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _path(geom: dict[str, Any]) -> Path:
    """One compound path per shape: outer rings counter-clockwise, holes clockwise (Berlin stays a hole
    in Brandenburg under the non-zero fill rule)."""
    polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    parts = []
    for poly in polys:
        for i, ring in enumerate(poly):
            r = np.asarray(ring, dtype=float)
            if len(r) < 3:
                continue
            ccw = _signed_area(r) > 0
            if (i == 0) != ccw:
                r = r[::-1]
            parts.append(Path(r, closed=True))
    return Path.make_compound_path(*parts)


def _panel(ax: Any, feats: list[dict[str, Any]], ctx: list[dict[str, Any]], values: dict[str, float],
           *, label: str, share: bool, fig: Figure) -> None:
    cmap = colormaps[CMAP]
    vals = np.array([v for v in values.values() if v is not None and np.isfinite(v)], dtype=float)
    lo = 0.0 if share or not len(vals) else float(vals.min())
    hi = float(vals.max()) if len(vals) else 1.0
    # every value equal (e.g. a cross-cutting share of 0 everywhere): a flat range would paint them with the
    # lowest colour under a made-up scale; widen it upwards so the colour bar tells the value
    norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + (0.1 if share else max(1.0, abs(lo))))
    grey = (0.88, 0.88, 0.88, 1.0)
    ax.add_collection(PatchCollection([PathPatch(_path(f["geometry"])) for f in ctx], facecolor=grey,
                                      edgecolor="white", linewidth=0.4))
    colours = []
    for f in feats:
        v = values.get(f["id"])
        colours.append(cmap(norm(v)) if v is not None and np.isfinite(v) else grey)
    ax.add_collection(PatchCollection([PathPatch(_path(f["geometry"])) for f in feats], facecolor=colours,
                                      edgecolor="white", linewidth=0.5))
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    cb = fig.colorbar(sm, ax=ax, orientation="horizontal", fraction=0.05, pad=0.02, aspect=30)
    cb.set_label(label)
    if share:
        cb.ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    else:
        cb.ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.set_axis_off()


def map_figure(values: pd.DataFrame, country: str, *, cc: pd.DataFrame | None = None, title: str = "",
               source: str = "", lang: str = "en", circular: bool = False) -> Figure:
    """The map of one country: impressions, and (``cc``, values of ``cross_cutting``) a second panel,
    labelled as measured against a circular lean when ``circular``."""
    from ..geo import country_geojson

    S = _STRINGS.get(lang, _STRINGS["en"])
    v = values[values["country"] == country]
    codes = set(v["iso_3166_2"])
    feats = [f for f in country_geojson(country, codes)["features"] if f["id"] in codes]
    ctx = context_features(country, codes)["features"]
    xy = np.concatenate([np.asarray(ring, dtype=float) for f in feats + ctx
                         for poly in ([f["geometry"]["coordinates"]] if f["geometry"]["type"] == "Polygon"
                                      else f["geometry"]["coordinates"]) for ring in poly])
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    aspect = 1.0 / max(0.2, math.cos(math.radians((y0 + y1) / 2)))
    panels = [("impressions", dict(zip(v["iso_3166_2"], v["value"].astype(float), strict=True)), False)]
    if cc is not None and len(cc):
        c = cc[cc["country"] == country]
        panels.append(("cc_circular" if circular else "cc",
                       dict(zip(c["iso_3166_2"], c["value"].astype(float), strict=True)), True))
    h = 5.2
    w_one = max(3.0, min(7.0, h * (x1 - x0) / max(1e-6, (y1 - y0) * aspect)))
    fig = Figure(figsize=(w_one * len(panels) + 0.6, h + 1.3))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, vals, share) in zip(axes, panels, strict=True):
        _panel(ax, feats, ctx, vals, label=S[name], share=share, fig=fig)
        ax.set_xlim(x0 - 0.02 * (x1 - x0), x1 + 0.02 * (x1 - x0))
        ax.set_ylim(y0 - 0.02 * (y1 - y0), y1 + 0.02 * (y1 - y0))
        ax.set_aspect(aspect)
    if title:
        fig.suptitle(title, fontsize=11)
    if source:
        fig.text(0.01, 0.01, source, fontsize=7, color="#444444", wrap=True)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.92 if title else 0.98, bottom=0.1, wspace=0.15)
    return fig


def map_heading(lang: str = "en") -> str:
    """The heading of the report's map section."""
    return "Cartes par région" if lang == "fr" else "Maps by region"


def report_maps(store: Store, lang: str = "en") -> list[dict[str, Any]]:
    """One map per measured region scheme: ``{scheme, country, title, caption, svg, png}``.

    A map shows the measurement: only the segments the measure stage kept are drawn and counted (the
    segments table also holds those under the measurement's floor, which the measurement left out), so the
    caption's counts add up to the number of measured segments: drawn + abroad + on no map.
    """
    S = _STRINGS.get(lang, _STRINGS["en"])
    con = store.con
    measured = {r[0]: r[1] for r in con.execute(
        "SELECT scheme, max(run_id) FROM metrics_segments GROUP BY scheme").fetchall()}
    kept: dict[str, set[str]] = {}
    for sch, sid in con.execute("SELECT DISTINCT scheme, segment_id FROM metrics_segments").fetchall():
        kept.setdefault(str(sch), set()).add(str(sid))
    n_ads = con.execute("SELECT count(*) FROM messages").fetchone()
    circular = {str(r[0]) for r in con.execute(
        "SELECT scheme FROM metrics_segments WHERE metric = 'cross_cutting' GROUP BY scheme "
        "HAVING bool_and(coalesce(home_lean_source, '') = 'circular')").fetchall()}
    out = []
    for scheme in region_schemes(con):
        if scheme not in measured:
            continue
        imp = map_values(con, scheme, "impressions", segments=kept[scheme])
        if imp.empty:
            continue
        cc = map_values(con, scheme, "cross_cutting", segments=kept[scheme])
        country = str(country_totals(imp)["country"].iloc[0])
        title = S["title"].format(scheme=scheme, country=country)
        source = S["source"].format(n_ads=f"{(n_ads or (0,))[0]:,}", scheme=scheme, run=measured[scheme])
        fig = map_figure(imp, country, cc=cc if cc["value"].notna().any() else None, title=title,
                         source=source, lang=lang, circular=scheme in circular)
        here = imp["country"] == country
        total = len(kept[scheme])
        left = total - int(imp["n_segments"].sum())
        out.append({"scheme": scheme, "country": country, "title": title,
                    "caption": S["caption"].format(country=country, n=int(here.sum()), total=total,
                                                   here=int(imp.loc[here, "n_segments"].sum()), left=left,
                                                   abroad=int(imp.loc[~here, "n_segments"].sum()))
                    + (S["circular"] if scheme in circular and cc["value"].notna().any() else ""),
                    "svg": to_svg(fig), "png": to_png(fig)})
    return out
