"""Methods: the formulas behind every number, the sources, the models, and the run manifest."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from bubblelens_app import data, state

FORMULAS = [
    ("Shares", r"p_{s,k} = N_{s,k} / \sum_{k'} N_{s,k'}",
     "N: impressions of segment s for narrative k (delivery share × midpoint of the published range, or counts)."),
    ("Cross-cutting share (Bakshy, Messing & Adamic 2015)", r"CC_s = \sum_{c:\ side(c) \neq side(home(s))} p_{s,c}",
     "Share of what a segment receives that comes from camps of another side than its own."),
    ("Isolation index (Gentzkow & Shapiro 2011)",
     r"S = \sum_k \frac{R_k}{R}\frac{R_k}{T_k} - \sum_k \frac{L_k}{L}\frac{R_k}{T_k}",
     "Narratives as outlets, right- vs left-leaning segments."),
    ("Theil / mutual-information segregation", r"M = H(K) - \sum_g \pi_g H(K \mid g)",
     "Segments as groups; normalized by H(K)."),
    ("Effective number of narratives", r"\exp\left(-\sum_k p_k \ln p_k\right)", ""),
    ("Gini–Simpson", r"1 - \sum_k p_k^2", ""),
    ("Rao–Stirling", r"\sum_{i \neq j} d_{ij} p_i p_j", "d: cosine distance between narrative centroids."),
    ("Echo-chamber correlation (after Cinelli et al. 2021)",
     r"\rho_w\left(\ell_s,\ \sum_c p_{s,c} a_c\right)",
     "Impression-weighted correlation of a segment's home lean and the mean slant it receives."),
]


def _models(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in runs.itertuples():
        try:
            models = json.loads(str(r.models or "{}"))
        except ValueError:
            continue
        for k, v in models.items():
            rows.append({"stage": r.stage, "run_id": r.run_id, "model": k, "id": json.dumps(v) if
                         not isinstance(v, str) else v})
    return pd.DataFrame(rows)


def render() -> None:
    state.require_store()
    st.title("Methods")
    st.subheader("Formulas")
    for name, tex, note in FORMULAS:
        st.markdown(f"**{name}**")
        st.latex(tex)
        if note:
            st.caption(note)
    st.markdown("Uncertainty: cluster bootstrap over advertisers, impressions drawn inside their published "
                "ranges, narratives and camps drawn from their probabilities; segments under the privacy "
                "floor (10 people or 100 impressions) are suppressed everywhere.")
    runs = data.query("runs")
    st.subheader("Models")
    models = _models(runs)
    if len(models):
        st.dataframe(models, hide_index=True)
    else:
        st.caption("No run recorded a model yet.")
    st.subheader("Sources")
    st.dataframe(data.query("sources"), hide_index=True)
    st.subheader("Run manifest")
    st.dataframe(runs, hide_index=True)
    st.download_button("Download the manifest (JSON)", runs.to_json(orient="records", date_format="iso"),
                       file_name="runs.json", mime="application/json", key="runs_json")


render()
