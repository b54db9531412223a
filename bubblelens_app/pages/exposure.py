"""Exposure: who receives which narratives (heatmap), cross-cutting exposure, segregation, diversity,
and the echo-chamber plot. Clicking a heatmap cell opens the ads behind it."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from bubblelens.present import exposure as E
from bubblelens.present.rows import MAX_ROWS
from bubblelens.report.findings import has_evidence
from bubblelens_app import data, state
from bubblelens_app.figures import chart

ADS = "bubblelens_app/pages/ads.py"


def _heatmap(scheme: str, long: pd.DataFrame, shares: pd.DataFrame, countries: dict[str, str]) -> None:
    st.subheader("Share of each narrative in what each segment receives")
    st.caption("Rows: segments (suppressed ones left out); columns: narratives; colour: share of the "
               "segment's impressions. Click a cell to open its ads.")
    # at most present.rows.MAX_ROWS rows, the home country first, grouped by country (the report's rule)
    show_all = len(shares) > MAX_ROWS and st.checkbox(f"Show all {len(shares)} rows", value=False,
                                                      key="heatmap_all")
    rows = E.heatmap_rows(shares, long.groupby("segment_id")["impressions"].sum(), countries, show_all=show_all)
    if rows.caption:
        st.caption(rows.caption)
    P = rows.shares
    label = dict(zip(P.index, rows.labels, strict=True))
    fig = go.Figure(go.Heatmap(z=P.to_numpy(), x=list(P.columns), y=rows.labels, colorscale="Blues",
                               colorbar={"title": "share"}, hoverinfo="skip"))
    # Plotly heatmaps cannot be selected: a transparent square marker on every cell takes the click.
    cells = P.stack().reset_index()
    cells.columns = pd.Index(["segment_id", "label", "share"])
    cells = cells.merge(long, on=["segment_id", "label"], how="left")
    fig.add_trace(go.Scatter(
        x=cells["label"], y=cells["segment_id"].map(label), mode="markers",
        marker={"symbol": "square", "size": 22, "color": "rgba(0,0,0,0)"},
        customdata=cells[["segment_id", "label", "share", "impressions", "ads"]].fillna(0).to_numpy(),
        hovertemplate="%{customdata[0]} × %{customdata[1]}<br>share %{customdata[2]:.1%}<br>"
                      "impressions %{customdata[3]:,.0f} · ads %{customdata[4]}<extra></extra>",
        showlegend=False))
    for i in range(1, len(rows.countries)):  # a line between countries when the rows are grouped
        if rows.countries[i] != rows.countries[i - 1]:
            fig.add_hline(y=i - 0.5, line={"color": "black", "width": 1.5})
    fig.update_layout(height=max(320, 28 * len(P) + 160), xaxis_title="narrative", yaxis_title="segment",
                      clickmode="event+select", margin={"t": 30})
    # the first row (home country, most impressions) on top; a fixed range: no autorange padding
    fig.update_yaxes(range=[len(P) - 0.5, -0.5])
    ev = chart(fig, long, key="heatmap", filename=f"exposure_{scheme}", on_select="rerun",
               selection_mode="points")
    points = getattr(getattr(ev, "selection", None), "points", None) or []
    if points:
        cd = points[0].get("customdata") or [points[0].get("y"), points[0].get("x")]
        if cd[0] is not None and cd[1] is not None:
            state.open_filtered(ADS, scheme=scheme, segment=str(cd[0]), narrative=str(cd[1]))
    with st.form("open_cell"):
        st.markdown("**Open the ads of one cell**")
        c1, c2 = st.columns(2)
        by_imp = long.groupby("segment_id")["impressions"].sum().sort_values(ascending=False).index
        seg = c1.selectbox("Segment", [s for s in by_imp if s in shares.index],  # every row, drawn or not
                           key="cell_segment")
        narr = c2.selectbox("Narrative", list(shares.columns), key="cell_narrative")
        if st.form_submit_button("Open ads"):
            state.open_filtered(ADS, scheme=scheme, segment=seg, narrative=narr)


def render() -> None:
    state.require_store()
    st.title("Exposure")
    scheme = state.scheme()
    if scheme is None:
        st.info("No segments yet: run `bubblelens segment`.")
        return
    st.caption(f"Scheme **{scheme}** (change it in the sidebar).")
    ex = data.exposure(scheme)
    long = ex["long"]
    if long.empty:
        st.info("No impressions can be attributed to this scheme's segments yet (needs scores and "
                "deliveries or exposures).")
        return
    _heatmap(scheme, long, ex["shares"], ex["countries"])

    measured = ex["measured"]
    if not len(measured):
        st.info(f"The scheme **{scheme}** has not been measured yet: run `bubblelens measure --scheme "
                f"{scheme.split(':')[0]}` (or `bubblelens run`) for its metrics and their intervals. The app "
                "shows the measure stage's numbers only, so that it never contradicts the report.")
        return
    st.subheader("Cross-cutting exposure and diversity per segment")
    lean_src = ", ".join(sorted(set(measured.get("home_lean_source", pd.Series(dtype=str)).dropna())))
    glob = ex["global_measured"]
    unc = _uncertainty(glob)
    st.caption(f"From the measure stage; {unc}. Home lean: {lean_src or '—'}. Segments backed by few ads "
               "are flagged.")
    total = float(measured["impressions"].fillna(0).sum())
    enough = measured.apply(lambda r: has_evidence({"segment": r.get("label"), "n_ads": r.get("n_ads"),
                                                    "n_sponsors": r.get("n_sponsors"),
                                                    "impressions": r.get("impressions"),
                                                    "few_ads": bool(r.get("few_ads"))}, total), axis=1)
    thin = int((~enough).sum())
    if thin and not st.checkbox(f"Show the {thin} segments with too little behind them (spill-over regions, "
                                "few ads or sponsors, unknown place)", value=False, key="cc_thin"):
        measured = measured[enough.to_numpy()]
    if "cross_cutting" in measured and measured["cross_cutting"].notna().any():
        cc = measured.dropna(subset=["cross_cutting"]).sort_values("cross_cutting")
        fig = px.scatter(cc, x="cross_cutting", y="label", error_x=cc["cross_cutting_high"] - cc["cross_cutting"],
                         error_x_minus=cc["cross_cutting"] - cc["cross_cutting_low"],
                         color="few_ads" if "few_ads" in cc else None,
                         labels={"cross_cutting": "cross-cutting share", "label": "segment"})
        fig.update_layout(height=max(320, 22 * len(cc) + 120))
        chart(fig, cc, key="cc_bar", filename=f"cross_cutting_{scheme}")
    st.dataframe(measured, hide_index=True)

    st.subheader("Segregation")
    st.caption("From the measure stage: value [interval]; Theil's M with its permutation p-value.")
    g = glob.set_index("metric")
    c = st.columns(max(1, len(g)))
    for col, (name, r) in zip(c, g.iterrows(), strict=False):
        val = "—" if pd.isna(r["value"]) else f"{r['value']:.3f}"
        ci = "" if pd.isna(r["ci_low"]) else f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
        pv = "" if pd.isna(r.get("p_value")) else f" p = {r['p_value']:.3g}"
        col.metric(str(name), val, f"{ci}{pv}" or None, delta_color="off")

    if {"lean", "received_slant"} <= set(measured.columns):
        ec = measured.dropna(subset=["lean", "received_slant"])
        if len(ec):
            st.subheader("Echo chamber: home lean against the slant received")
            fig = px.scatter(ec, x="lean", y="received_slant", size="impressions", hover_name="label",
                             range_x=[-1.05, 1.05], range_y=[-1.05, 1.05])
            fig.add_shape(type="line", x0=-1, y0=-1, x1=1, y1=1, line={"dash": "dot", "color": "grey"})
            chart(fig, ec, key="echo", filename=f"echo_chamber_{scheme}")


def _uncertainty(glob: pd.DataFrame) -> str:
    """What the intervals describe, from the measure run's record (census or advertisers)."""
    import json

    kind = None
    for extra in glob.get("extra", pd.Series(dtype=str)).dropna():
        try:
            kind = json.loads(extra).get("uncertainty") or kind
        except (ValueError, AttributeError):
            continue
    if kind == "advertisers":
        return ("95 % intervals of the advertiser bootstrap (what other advertisers might have done), "
                "not only what is unknown about these ads")
    return ("95 % census intervals: what is not known about these ads (impressions inside their published "
            "ranges, labels drawn from their probabilities)")


render()
