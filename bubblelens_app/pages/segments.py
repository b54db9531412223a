"""Segments: a 2-D map of audiences coloured by segment, the cells table, sizes; suppressed ones shown
as suppressed (no label, no members drawn)."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from bubblelens_app import data, state
from bubblelens_app.figures import chart

ADS = "bubblelens_app/pages/ads.py"


def render() -> None:
    state.require_store()
    st.title("Segments")
    schemes = data.query("schemes")
    if schemes.empty:
        st.info("No segments yet: run `bubblelens segment`.")
        return
    st.dataframe(schemes, hide_index=True)
    scheme = state.scheme() or str(schemes["scheme"].iloc[0])
    st.caption(f"Scheme **{scheme}** (change it in the sidebar).")
    segs = data.query("segments", scheme)
    n_supp = int(segs["suppressed"].fillna(False).sum())
    if n_supp:
        st.warning(f"{n_supp} segment(s) under the privacy floor are suppressed: counted, never described.")

    is_cells = scheme == "cells" or scheme.startswith("cells:")
    if not is_cells:
        pts = data.audience_map(scheme)
        pts = pts[~pts["suppressed"].astype(bool)] if len(pts) else pts
        if len(pts) and pts["x"].notna().any():
            st.subheader("Map of audiences")
            st.caption(f"Projection: {pts['method'].iloc[0]} of the interest embeddings; "
                       "click a point to open the ads its segment received.")
            fig = px.scatter(pts, x="x", y="y", color="segment_id", hover_data=["member_id"],
                             custom_data=["segment_id"])
            fig.update_traces(marker={"size": 5})
            ev = chart(fig, pts.drop(columns=["interests"], errors="ignore"), key="seg_map", filename="segment_map",
                       on_select="rerun", selection_mode="points")
            points = getattr(getattr(ev, "selection", None), "points", None) or []
            if points:
                seg = (points[0].get("customdata") or [None])[0]
                if seg:
                    state.open_filtered(ADS, scheme=scheme, segment=seg)
        else:
            st.caption("No interest embeddings for this scheme: no map.")

    st.subheader("Sizes")
    shown = segs.assign(size=segs["size"].astype("float64"))
    fig = px.bar(shown, x="segment_id", y="size", color="suppressed", hover_data=["label", "impressions"])
    chart(fig, segs.drop(columns=["extra"], errors="ignore"), key="seg_sizes", filename="segments")
    st.subheader("Cells" if is_cells else "Segments")
    st.dataframe(segs.drop(columns=["extra"], errors="ignore"), hide_index=True)

    visible = list(segs.loc[~segs["suppressed"].fillna(False).astype(bool), "segment_id"])
    if visible:
        c1, c2 = st.columns([3, 1])
        pick = c1.selectbox("Segment", visible, key="seg_pick")
        if c2.button("Open its ads", key="seg_open"):
            state.open_filtered(ADS, scheme=scheme, segment=pick)


render()
