"""The region map shared by the Map page and the Overview: choose a measure and a country, draw the
choropleth (``bubblelens.present.maps``), and open a clicked region's ads on the Ads page."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from bubblelens.present.maps import PLOTLY_GEO_CONFIG, choropleth, country_totals

from . import data, state
from .figures import PLOTLY_CONFIG

__all__ = ["ADS", "MEASURE_NAMES", "draw", "pick_measure"]

ADS = "bubblelens_app/pages/ads.py"
MEASURE_NAMES = {"impressions": "Impressions", "cross_cutting": "Cross-cutting share (with its interval)",
                 "camp_share": "A camp's share", "narrative_share": "A narrative's share"}
SOURCE = ("Shapes: Natural Earth admin-1 (public domain), shipped with BubbleLens. Colour: viridis "
          "(colour-blind safe, prints in grey); grey: no value.")


def pick_measure(scheme: str, *, key: str) -> tuple[str, str | None]:
    """Radio for the measure, and a select for the camp or narrative of a share."""
    opts = data.maps("measure_options", scheme)
    measure = st.radio("Measure", opts["measures"], format_func=lambda m: MEASURE_NAMES.get(m, m),
                       horizontal=True, key=f"{key}_measure")
    label = None
    if measure == "camp_share":
        label = st.selectbox("Camp", opts["camps"], key=f"{key}_camp")
    elif measure == "narrative_share":
        label = st.selectbox("Narrative", opts["narratives"], key=f"{key}_narrative")
    return str(measure), label


def _country_label(row: Any) -> str:
    return f"{row.country} — {row.impressions:,.0f} impressions, {row.regions} regions"


def draw(scheme: str, measure: str, label: str | None, *, key: str, choose_country: bool = True) -> None:
    """The map of ``scheme`` for one country (default: the one with most impressions); a click on a region
    opens its ads (the Ads page filtered to the region's segment)."""
    values: pd.DataFrame = data.maps("map_values", scheme, measure, label)
    if values.empty:
        st.info("No segment of this scheme matched a region shape: see `bubblelens regions --db PATH`.")
        return
    totals = country_totals(values)
    country = str(totals["country"].iloc[0])
    if choose_country and len(totals) > 1:
        rows = list(totals.itertuples(index=False))
        pick = st.selectbox("Country", range(len(rows)), format_func=lambda i: _country_label(rows[i]),
                            key=f"{key}_country")
        country = str(rows[int(pick)].country)
    share = measure != "impressions"
    what = MEASURE_NAMES.get(measure, measure) + (f": {label}" if label else "")
    fig = choropleth(values, country, share=share, colorbar_title="share" if share else "impressions")
    shown = values[values["country"] == country]
    table = shown[["region", "iso_3166_2", "value", "ci_low", "ci_high", "impressions", "n_ads", "n_sponsors",
                   "segment_id"]]
    st.caption(f"**{what}** by region, {country}, scheme `{scheme}`. Hover: value [interval], ads and "
               "sponsors; click a region to open its ads. " + SOURCE)
    ev = st.plotly_chart(fig, key=f"{key}_map", config={**PLOTLY_CONFIG, **PLOTLY_GEO_CONFIG}, width="stretch",
                         on_select="rerun", selection_mode="points")
    st.download_button("Download data (CSV)", table.to_csv(index=False).encode("utf-8"),
                       file_name=f"map_{scheme}_{measure}_{country}.csv".replace(":", "_"), mime="text/csv",
                       key=f"{key}_map_csv")
    points = getattr(getattr(ev, "selection", None), "points", None) or []
    if points:
        cd = points[0].get("customdata")
        loc = points[0].get("location")
        seg = cd[0] if cd else None
        if seg is None and loc is not None:
            hit = shown[shown["iso_3166_2"] == loc]
            seg = None if hit.empty else hit["segment_id"].iloc[0]
        if seg:
            state.open_filtered(ADS, scheme=scheme, segment=str(seg))
    with st.form(f"{key}_open"):
        c1, c2 = st.columns([3, 1])
        names = dict(zip(shown["segment_id"], shown["region"], strict=True))
        seg = c1.selectbox("Open the ads of a region", list(names), format_func=lambda s: str(names[s]),
                           key=f"{key}_region")
        if c2.form_submit_button("Open ads") and seg is not None:
            state.open_filtered(ADS, scheme=scheme, segment=str(seg))
