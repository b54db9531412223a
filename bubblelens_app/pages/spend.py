"""Spend: what sponsors declared spending (Meta report CSVs, Google advertiser stats), by camp and period."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from bubblelens_app import data, state
from bubblelens_app.figures import chart


def render() -> None:
    state.require_store()
    st.title("Spend")
    st.caption("From `sponsor_spend`: the Meta Ad Library report CSVs and Google's advertiser stats. These list "
               "spend per sponsor, not ads; only the per-advertiser rows are summed (a report's regional rows "
               "break the same money down again). Amounts are ranges where the source gives ranges.")
    df = data.spend()
    if df.empty:
        st.info("No sponsor spend in this store: ingest a Meta Ad Library report CSV or Google's "
                "advertiser-stats file (`bubblelens ingest FILE`).")
        return
    currencies = sorted(c for c in df["currency"].dropna().unique())
    cur = st.selectbox("Currency", currencies or ["(none)"], key="spend_currency")
    d = df[df["currency"] == cur] if currencies else df
    by_camp = d.groupby(["period", "camp"], as_index=False)[["spend_lower", "n_ads"]].sum()
    st.subheader("By camp and period")
    fig = px.bar(by_camp, x="period", y="spend_lower", color="camp", barmode="stack",
                 labels={"spend_lower": f"spend (lower bound, {cur})"})
    fig.update_xaxes(type="category")  # a report's period is a label (a week, 30 days), not a timestamp
    chart(fig, by_camp, key="spend_camp", filename="spend_by_camp")
    st.subheader("Largest sponsors")
    top_n = int(st.number_input("Sponsors shown", min_value=5, max_value=200, value=20, step=5, key="spend_top"))
    top = (d.groupby(["sponsor", "camp"], as_index=False)[["spend_lower", "spend_upper", "n_ads", "rows"]]
           .sum(min_count=1).sort_values("spend_lower", ascending=False).head(top_n))
    st.dataframe(top, hide_index=True)  # sponsor names are data: shown as plain cells
    fig2 = px.bar(top, x="spend_lower", y="sponsor", color="camp", orientation="h",
                  labels={"spend_lower": f"spend (lower bound, {cur})"})
    fig2.update_yaxes(autorange="reversed")
    chart(fig2, top, key="spend_top_chart", filename="spend_by_sponsor")


render()
