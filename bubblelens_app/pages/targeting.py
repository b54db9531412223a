"""Targeting: what each camp asked Meta to aim its ads at, and how much of its spend used personal data.

Platform-reported targeting choices (the advertiser pages' "Audience" tab), not delivery. Every bar opens
the pages behind it, and each page its criteria. Reads through :mod:`bubblelens.present.targeting`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from bubblelens.present import targeting as P
from bubblelens_app import data, state
from bubblelens_app.figures import chart

NOTE = ("These are **platform-reported targeting choices**: who each advertiser asked Meta to show its ads to, "
        "as its pages' *Audience* tab reports them, not who saw the ads (delivery). Shares are of spend, "
        "weighted over pages (page spend × the criterion's share of it); where criteria of one method "
        "overlap, a range from the largest single criterion to their sum (capped at 100%).")
SHOWN = ("personal_data", "customer_list", "custom_audience", "lookalike_audience", "detailed", "location",
         "age", "gender", "language")


@st.cache_data(show_spinner=False, max_entries=256)
def _cached(name: str, path: str, key: str, args: tuple[Any, ...]) -> Any:
    with data.connect(path) as con:
        return getattr(P, name)(con, *args)


def q(name: str, *args: Any) -> Any:
    """``bubblelens.present.targeting.<name>(con, *args)`` on the session's store, cached per run."""
    path = str(st.session_state["db_path"])
    return _cached(name, path, data.run_key(path), args)


def _pct(x: float) -> str:
    return "—" if pd.isna(x) else f"{100 * x:.1f}%"


def _range(lo: float, hi: float) -> str:
    return _pct(lo) if abs(lo - hi) < 5e-4 else f"{_pct(lo)}–{_pct(hi)}"


def _picked(ev: Any) -> tuple[str, str] | None:
    """(group, method) of a clicked bar (its customdata), or None."""
    points = getattr(getattr(ev, "selection", None), "points", None) or []
    if points:
        cd = points[0].get("customdata") or []
        if len(cd) >= 2:
            return str(cd[0]), str(cd[1])
    return None


def render() -> None:
    state.require_store()
    st.title("Targeting")
    if not q("available"):
        st.info("No targeting table in this store: ingest one with "
                "`bubblelens ingest PAGES CRITERIA --format targeting` (docs/targeting.md).")
        return
    st.markdown(NOTE)
    ov = q("overview")
    c = st.columns(4)
    c[0].metric("Pages", f"{ov['pages']:,}")
    c[1].metric("Criteria rows", f"{ov['criteria']:,}")
    c[2].metric(f"Spend ({ov['unit']})", f"{ov['spend']:,.0f}")
    c[3].metric("Window ends (ds)", ", ".join(ov["windows"]) or "unknown")
    by = st.radio("Group pages by", ["party", "camp", "sponsor"], horizontal=True, key="tg_by")

    # -- personal data ---------------------------------------------------------------------------
    st.subheader("Personal-data indicator")
    st.caption("Share of each group's spend on ads aimed with customer lists (uploaded emails or phone numbers), "
               "any custom audience, or lookalikes of them. Bars: lower bound; whiskers: 95% interval from "
               "a bootstrap **over pages** (how much the figure rests on a few pages). Click a bar for its pages.")
    pdi = q("personal_data", by)
    pd_rows = pdi[pdi["method"] == "personal_data"].copy()
    pd_rows["err_plus"] = (pd_rows["ci_high"] - pd_rows["low"]).clip(lower=0)
    pd_rows["err_minus"] = (pd_rows["low"] - pd_rows["ci_low"]).clip(lower=0)
    fig = px.bar(pd_rows, x="group", y="low", error_y="err_plus", error_y_minus="err_minus",
                 custom_data=["group", "method"], hover_data=["high", "pages_using", "pages"],
                 labels={"low": "share of spend", "group": by})
    fig.update_yaxes(tickformat=".0%")
    picked = _picked(chart(fig, pdi, key="tg_pdi", filename="personal_data", on_select="rerun",
                           selection_mode="points"))
    table = pdi.pivot_table(index="group", columns="method", values="low", aggfunc="first")
    shown = pd.DataFrame({
        "pages": pdi.groupby("group")["pages"].first(),
        **{m: [_range(lo, hi) + f" ({n} p)" for lo, hi, n in pdi[pdi["method"] == m].set_index("group")
               .reindex(table.index)[["low", "high", "pages_using"]].itertuples(index=False)]
           for m in ("personal_data", "customer_list", "custom_audience", "lookalike_audience")}},
        index=table.index).sort_values("pages", ascending=False)
    st.dataframe(shown, key="tg_pdi_table")

    # -- methods ---------------------------------------------------------------------------------
    st.subheader("Targeting methods by group")
    m = q("methods", by)
    inc = m[~m["exclusion"] & m["method"].isin(SHOWN)].copy()
    inc["method_label"] = inc["method"].map(lambda k: P.METHOD_LABELS.get(k, k))
    top_groups = list(inc.groupby("group")["spend"].first().sort_values(ascending=False).index[:8])
    fig = px.bar(inc[inc["group"].isin(top_groups) & inc["method"].isin(("detailed", "location", "age", "gender",
                                                                          "language"))],
                 x="group", y="low", color="method", barmode="group", custom_data=["group", "method"],
                 hover_data=["high", "pages_using", "pages"], labels={"low": "share of spend (lower bound)"})
    fig.update_yaxes(tickformat=".0%")
    picked = _picked(chart(fig, inc, key="tg_methods", filename="targeting_methods", on_select="rerun",
                           selection_mode="points")) or picked
    grid = inc.assign(cell=[_range(lo, hi) for lo, hi in zip(inc["low"], inc["high"], strict=True)]).pivot_table(
        index="group", columns="method", values="cell", aggfunc="first").reindex(columns=list(SHOWN))
    st.dataframe(grid.loc[[g for g in inc.groupby("group")["spend"].first().sort_values(ascending=False).index
                           if g in grid.index]], key="tg_methods_table")
    exc = m[m["exclusion"] & (m["pages_using"] > 0)]
    if len(exc):
        with st.expander("Exclusions (audiences and places left out)"):
            st.dataframe(exc[["group", "method", "low", "high", "pages_using", "pages"]], hide_index=True)

    # -- pages behind a bar ------------------------------------------------------------------------
    st.subheader("Pages behind a bar")
    groups = list(inc.groupby("group")["spend"].first().sort_values(ascending=False).index)
    methods = [k for k in SHOWN if k in set(inc["method"])] + sorted(set(inc["method"]) - set(SHOWN))
    if picked and picked[0] in groups and picked[1] in methods:
        st.session_state["tg_group"], st.session_state["tg_method"] = picked
    c1, c2 = st.columns(2)
    group = c1.selectbox("Group", groups, key="tg_group")
    method = c2.selectbox("Method", methods, key="tg_method", format_func=lambda k: P.METHOD_LABELS.get(k, k))
    behind = q("pages_behind", group, method, by)
    n_used = int((behind["high"] > 0).sum())
    st.markdown(f"**{len(behind)} page(s)** in {group}; **{n_used}** used {P.METHOD_LABELS.get(method, method)}.")
    st.dataframe(behind.drop(columns=["ds"], errors="ignore"), hide_index=True, key="tg_pages")
    if len(behind):
        names = dict(zip(behind["page_id"], behind["page_name"].fillna(behind["page_id"]), strict=True))
        page = st.selectbox("Its criteria", list(names), key="tg_page", format_func=lambda p: names[p])
        st.dataframe(q("page_criteria", page), hide_index=True, key="tg_page_criteria")

    # -- distinctive -------------------------------------------------------------------------------
    st.subheader("Distinctive criteria")
    st.caption("Detailed criteria a group's pages put more of their spend behind than the other groups' do: "
               "log-odds with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008), with the spend "
               "and pages behind each (at least 2 pages where the group has 2).")
    dist = q("distinctive", by)
    st.dataframe(dist.drop(columns=["type"]), hide_index=True, key="tg_distinctive")
    if len(dist):
        keys = [f"{g}\x1f{t}\x1f{v}" for g, t, v in zip(dist["group"], dist["type"], dist["value"], strict=True)]
        pick = st.selectbox("Pages behind a distinctive criterion", keys, key="tg_dist_pick",
                            format_func=lambda k: " · ".join(k.split("\x1f")[::2]))
        g, t, v = pick.split("\x1f")
        st.dataframe(q("pages_with_criterion", g, t, v, by), hide_index=True, key="tg_dist_pages")
    with st.expander("Distinctive places"):
        st.dataframe(q("distinctive", by, 5, "location").drop(columns=["type"]), hide_index=True)

    # -- clusters ----------------------------------------------------------------------------------
    st.subheader("Clusters of detailed criteria")
    cl = q("clusters", by)
    if cl.empty:
        st.info("No clusters yet: run `bubblelens targeting` (embeds the criteria names, UMAP + HDBSCAN).")
        return
    st.caption("Detailed criteria grouped by meaning (their names embedded, UMAP + HDBSCAN), labelled by "
               "their three criteria with most spend; the share is of the group's spend behind detailed criteria.")
    top = list(cl.groupby("label")["spend"].sum().sort_values(ascending=False).index[:12])
    fig = px.bar(cl[cl["label"].isin(top) & cl["group"].isin(groups[:10])], x="group", y="share", color="label",
                 custom_data=["group", "cluster_id"], hover_data=["spend", "pages"])
    fig.update_yaxes(tickformat=".0%")
    fig.update_layout(legend={"orientation": "h", "y": -0.3})
    ev = chart(fig, cl, key="tg_clusters", filename="targeting_clusters", on_select="rerun", selection_mode="points")
    st.dataframe(cl, hide_index=True, key="tg_clusters_table")
    labels = dict(zip(cl["cluster_id"], cl["label"], strict=False))
    clicked = _picked(ev)
    if clicked and clicked[0] in groups and clicked[1] in labels:
        st.session_state["tg_cgroup"], st.session_state["tg_cluster"] = clicked
    c1, c2 = st.columns(2)
    cgroup = c1.selectbox("Group", groups, key="tg_cgroup")
    cid = c2.selectbox("Cluster", sorted(labels), key="tg_cluster", format_func=lambda k: f"{k}: {labels[k]}")
    st.dataframe(q("pages_behind_cluster", cgroup, cid, by), hide_index=True, key="tg_cluster_pages")


def targeted_vs_delivered() -> None:
    tvd = q("targeted_vs_delivered")
    if tvd.empty:
        return
    st.subheader("Targeted vs delivered")
    st.caption("For advertisers with both. **Targeted**: the share of the advertiser's spend on ads whose "
               "targeting is open to the age band or gender (100% = every ad could reach it; these need not sum "
               "to 100%). **Delivered**: the share of its ads' reach that fell in the band (these sum to 100%). "
               "A targeting table covers its window; the pull's ads may cover other days (dates shown).")
    first = tvd.drop_duplicates("page_id").sort_values("source", key=lambda s: s != "table", kind="stable")
    names = first.set_index("page_id")["page_name"].fillna("").to_dict()  # pages of the table first
    page = st.selectbox("Advertiser", list(names), key="tg_tvd_page", format_func=lambda p: names[p] or p)
    one = tvd[tvd["page_id"] == page]
    st.caption(f"Targeting from the {one['source'].iloc[0]}; delivery ({one['delivery_kind'].iloc[0]}) of ads "
               f"from {one['delivery_from'].iloc[0]} to {one['delivery_to'].iloc[0]}.")
    long = one.melt(id_vars=["dimension", "band"], value_vars=["targeted", "delivered"], var_name="side",
                    value_name="share")
    fig = px.bar(long, x="band", y="share", color="side", barmode="group", facet_col="dimension")
    fig.update_xaxes(matches=None)
    fig.update_yaxes(tickformat=".0%")
    chart(fig, one, key="tg_tvd", filename="targeted_vs_delivered")


render()
if st.session_state.get("db_path") and q("available"):
    targeted_vs_delivered()
