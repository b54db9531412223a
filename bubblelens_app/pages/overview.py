"""Overview: the story first (the report's findings, each with its interval, ads and sponsors, and a link
to its ads), then the map, then data quality and what the store holds (counts, spend and reach ranges)."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from bubblelens_app import data, mapview, state
from bubblelens_app.figures import chart

ADS = "bubblelens_app/pages/ads.py"


def _fmt(n: float | int | None) -> str:
    return "—" if n is None else f"{n:,.0f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def _findings() -> None:
    st.subheader("What the data says")
    schemes = data.maps("measured_schemes")
    if not schemes:
        st.info("No measurement yet: run `bubblelens measure` (or `bubblelens run`) for the findings.")
        return
    current = state.scheme()
    scheme = current if current in schemes else schemes[0]
    f = data.maps("front_findings", scheme)
    ev = f["evidence"]
    st.caption(f"Scheme `{scheme}` (change it in the sidebar); the report's findings and thresholds: a segment "
               f"counts with at least {ev['min_ads']} ads, {ev['min_sponsors']} sponsors and "
               f"{ev['min_impression_share']:.1%} of the impressions.")
    if not f["isolated"] and not f["concentrated"]:
        st.markdown("No segment has enough evidence for a finding in this scheme.")
    if f["isolated"]:
        st.markdown("**Most isolated segments**")
    for i, r in enumerate(f["isolated"]):
        c1, c2 = st.columns([6, 1])
        c1.markdown(r["sentence"])
        if r.get("segment_id") and c2.button(f"Its {r.get('n_ads') or 0:,} ads", key=f"ov_iso_{i}"):
            state.open_filtered(ADS, scheme=scheme, segment=r["segment_id"])
    if f["concentrated"]:
        st.markdown("**Most concentrated narratives**")
    for i, r in enumerate(f["concentrated"]):
        c1, c2 = st.columns([6, 1])
        c1.markdown(r["sentence"])
        if r["n_ads"] and c2.button(f"Its {r['n_ads']:,} ads", key=f"ov_con_{i}"):
            state.open_filtered(ADS, narrative=r["narrative"])


def _map() -> None:
    schemes = data.maps("region_schemes")
    if not schemes:
        return
    st.subheader("Map")
    current = state.scheme()
    scheme = current if current in schemes else schemes[0]
    mapview.draw(scheme, "impressions", None, key="ov")
    st.caption("More measures (cross-cutting share, a camp's or a narrative's share) on the **Map** page.")


def render() -> None:
    state.require_store()
    st.title("Overview")
    _findings()
    _map()

    ov = data.query("overview")
    st.subheader("Data quality")
    q = st.columns(3)
    q[0].metric("Rejected rows", _fmt(ov["rejects"]), help="Rows of the inputs that could not be taken.")
    q[1].metric("Unassigned share", _pct(ov["unassigned_share"]),
                help="Scored messages that fit no codebook narrative above the threshold.")
    q[2].metric("Outlier share", _pct(ov["outlier_share"]),
                help="Members of interest segments that HDBSCAN placed in no cluster.")
    rej = data.query("rejects_by_reason")
    if len(rej):
        with st.expander(f"Rejects by reason ({len(rej)})"):
            st.dataframe(rej, hide_index=True)

    st.subheader("What the store holds")
    c = st.columns(4)
    c[0].metric("Ads and messages", _fmt(ov["messages"]), help="Rows of `messages`.")
    c[1].metric("Sponsors", _fmt(ov["sponsors"]))
    c[2].metric("Source files", _fmt(ov["sources"]))
    c[3].metric("Delivery rows", _fmt(ov["deliveries"]))
    hi = "no upper bound" if ov["impressions_upper"] is None else _fmt(ov["impressions_upper"])
    st.markdown(f"**Impressions**: between {_fmt(ov['impressions_lower'])} and {hi} "
                f"({ov['open_top_buckets']} ads in an open top bucket). "
                f"**Dates**: {ov['date_min'] or '—'} → {ov['date_max'] or '—'}.")
    spend = data.query("spend_by_currency")
    st.subheader("Spend (published ranges, per currency)")
    st.dataframe(spend, hide_index=True)

    st.subheader("Channels")
    ch = data.query("channels")
    if len(ch):
        chart(px.bar(ch, x="channel", y="ads"), ch, key="channels", filename="channels")
    st.subheader("Sources")
    st.dataframe(data.query("sources"), hide_index=True)


render()
