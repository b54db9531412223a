"""Narratives: codebook and discovered, their weight, representative ads, over time; promote one."""

from __future__ import annotations

from pathlib import Path

import plotly.express as px
import streamlit as st

from bubblelens.present.safe import public_error
from bubblelens_app import data, state
from bubblelens_app.figures import chart


def _promote(narrative_id: str, name: str, codebook: str) -> None:
    from bubblelens.segment import promote
    from bubblelens.store import Store

    path = state.db_path()
    assert path is not None
    with Store.open(path, read_only=True) as store:
        entry = promote(codebook, narrative_id, name=name, store=store)
    st.success(f"Promoted {narrative_id} as {entry['id']!r} into {Path(codebook).name} (beside the store). "
               "Re-run `bubblelens classify --codebook` with it to score every message against it.")


def render() -> None:
    state.require_store()
    st.title("Narratives")
    summ = data.query("narrative_summary")
    if summ.empty:
        st.info("No narrative scores yet: run `bubblelens classify`.")
    else:
        st.subheader("Ads per narrative")
        metric = st.radio("Measure", ["ads", "impressions"], horizontal=True, key="narr_measure")
        fig = px.bar(summ, x="label", y=metric, hover_data=["mean_p", "share"])
        chart(fig, summ, key="narr_bar", filename="narratives")

        st.subheader("Over time")
        unit = st.selectbox("Period", ["week", "day", "month"], key="narr_unit")
        ot = data.query("narrative_over_time", unit=unit)
        if len(ot):
            chart(px.line(ot, x="period", y="ads", color="label"), ot, key="narr_time", filename="narratives_time")

        st.subheader("Representative ads")
        labels = list(summ["label"])
        chosen = st.selectbox("Narrative", labels, key="narr_pick")
        reps = data.query("representative_ads", chosen, n=5)
        for r in reps.itertuples():
            st.caption(f"{r.sponsor or '—'} · p = {r.p:.2f} · {r.message_id}")
            st.text(r.text)  # ad text: always plain text
        if st.button("Open these ads", key="narr_open"):
            state.open_filtered("bubblelens_app/pages/ads.py", narrative=chosen, scheme=state.scheme())

    cb = data.codebook_table()
    if len(cb):
        with st.expander(f"Codebook ({len(cb)} narratives)"):
            st.dataframe(cb, hide_index=True)

    st.subheader("Discovered narratives")
    disc = data.query("discovered")
    if disc.empty:
        st.caption("None: run `bubblelens discover` to cluster the messages the codebook leaves unassigned.")
        return
    show = disc.assign(keywords=disc["keywords"].map(", ".join))
    st.dataframe(show[["narrative_id", "size", "keywords"]], hide_index=True)
    pick = st.selectbox("Discovered narrative", list(disc["narrative_id"]), key="disc_pick")
    row = disc.set_index("narrative_id").loc[pick]
    for t in row["representatives"][:5]:
        st.text(t)
    with st.form("promote"):
        st.markdown("**Promote into a codebook** (the classify stage scores every message against it next run)")
        name = st.text_input("Name", key="promote_name", max_chars=80)
        # the codebook is always the one beside the store: a visitor never chooses where a file is written
        codebook = str(Path(state.db_path() or ".").with_name("codebook.yaml"))
        st.caption("Into `codebook.yaml` beside the store (created from the default when missing).")
        if st.form_submit_button("Promote") and name.strip():
            try:
                _promote(pick, name.strip(), codebook)
            except Exception as e:
                st.error(public_error(e))


render()
