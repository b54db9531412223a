"""Overview: what the store holds, how much it cost and reached (as ranges), and its data quality."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from bubblelens_app import data, state
from bubblelens_app.figures import chart


def _fmt(n: float | int | None) -> str:
    return "—" if n is None else f"{n:,.0f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def render() -> None:
    state.require_store()
    st.title("Overview")
    ov = data.query("overview")
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

    st.subheader("Channels")
    ch = data.query("channels")
    if len(ch):
        chart(px.bar(ch, x="channel", y="ads"), ch, key="channels", filename="channels")
    st.subheader("Sources")
    st.dataframe(data.query("sources"), hide_index=True)


render()
