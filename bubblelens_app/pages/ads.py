"""Ads: the ads behind every number, filtered by the sidebar (narrative, camp, segment, sponsor, channel,
dates) and a semantic search; each with its text (always as plain text), scores and delivery."""

from __future__ import annotations

import contextlib
import json

import streamlit as st

from bubblelens.present.safe import csv_bytes
from bubblelens_app import data, state

PAGE_SIZE = 50
COLUMNS = ["message_id", "similarity", "text", "sponsor", "channel", "date_start", "narrative", "narrative_p",
           "camp", "camp_p", "camp_source", "impressions_lower", "impressions_upper", "spend_lower",
           "spend_upper", "currency"]


def _active(flt: object) -> str:
    parts = [f"{k} = {v}" for k, v in vars(flt).items() if v not in (None, "") and k != "ids"]
    return ", ".join(parts) or "none"


def render() -> None:
    state.require_store()
    st.title("Ads")
    query = st.text_input("Semantic search (any language the encoder knows)", key="ads_search",
                          placeholder="e.g. retraite à 60 ans")
    order: dict[str, float] | None = None
    if query.strip():
        order, how = data.semantic_hits(query.strip())
        st.caption(f"The {len(order)} nearest ads by cosine similarity ({how}), then the filters.")
    flt = state.ad_filter(ids=tuple(order) if order is not None else None)
    st.caption(f"Filters: {_active(flt)}")
    page = int(st.number_input("Page", min_value=1, value=1, step=1, key="ads_page"))
    df, total = data.query("ads", flt, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, order=order)
    st.markdown(f"**{total:,} ads** match; showing {min(total, (page - 1) * PAGE_SIZE + 1)}–"
                f"{min(total, page * PAGE_SIZE)}.")
    if df.empty:
        return
    cols = [c for c in COLUMNS if c in df.columns]
    st.dataframe(df[cols], hide_index=True, column_config={"text": st.column_config.TextColumn(width="large")})
    st.download_button("Download these ads (CSV)", csv_bytes(df[cols]),
                       file_name="ads.csv", mime="text/csv", key="ads_csv")

    st.subheader("One ad")
    pick = st.selectbox("Ad", list(df["message_id"]), key="ads_pick")
    row = df.set_index("message_id").loc[pick]
    st.text(row["text"] if isinstance(row["text"], str) else "")  # attacker-controlled: plain text only
    c = st.columns(3)
    c[0].metric("Narrative", str(row["narrative"]), None if row["narrative_p"] != row["narrative_p"] else
                f"p = {row['narrative_p']:.2f}", delta_color="off")
    c[1].metric("Camp", str(row["camp"]), f"{row['camp_source']}", delta_color="off")
    c[2].metric("Sponsor", str(row["sponsor"]))
    if isinstance(row.get("narrative_topk"), str):
        with contextlib.suppress(ValueError, TypeError):
            st.dataframe([{"narrative": k, "p": p} for k, p in json.loads(row["narrative_topk"])],
                         hide_index=True)
    st.markdown("**Delivery**")
    st.dataframe(data.query("ad_deliveries", pick), hide_index=True)


render()
