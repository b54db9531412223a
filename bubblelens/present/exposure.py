"""Exposure metrics for display: the measure stage's stored rows reshaped for the app
(:func:`measured_segments`), and point estimates from a segment × category matrix for synthetic stores
(:func:`segment_metrics`, :func:`global_metrics`: the benchmark's generator, which has no measure run).

The app shows only what the measure stage stored, so that it never contradicts the report. Camp
positions are data (the codebook's, table ``camps``): :func:`segment_metrics` takes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..measure import metrics as M
from .rows import RowSelection, country_label, select_rows

__all__ = ["SEGMENT_METRICS", "HeatmapRows", "global_metrics", "heatmap_rows", "measured_segments", "only_measured",
           "pivot", "rows_caption", "segment_metrics"]

def pivot(long: pd.DataFrame, *, value: str = "impressions") -> pd.DataFrame:
    """Long ``segment_id, label, value`` rows → a segment × label matrix (missing pairs are 0)."""
    if long.empty:
        return pd.DataFrame(dtype=float)
    return long.pivot_table(index="segment_id", columns="label", values=value, aggfunc="sum", fill_value=0.0)


def segment_metrics(N_narr: pd.DataFrame, N_camp: pd.DataFrame, *,
                    positions: Mapping[str, float]) -> pd.DataFrame:
    """Per segment: impressions, effective number of narratives ``exp(H)``, Gini–Simpson ``1 − Σ p²``,
    home camp (dominant camp received) and its lean ``ℓ``, received slant ``Σ_c p[s,c] a[c]`` and
    cross-cutting share ``Σ_{c: side(c) ≠ side(home)} p[s,c]`` (camps without a position are left out)."""
    out = pd.DataFrame(index=N_narr.index.union(N_camp.index))
    out.index.name = "segment_id"
    if not N_narr.empty:
        P = M.shares(N_narr.to_numpy())
        out.loc[N_narr.index, "impressions"] = N_narr.sum(axis=1)
        out.loc[N_narr.index, "effective_narratives"] = M.effective_number(P)
        out.loc[N_narr.index, "gini_simpson"] = M.gini_simpson(P)
    known = [c for c in N_camp.columns if c in positions]
    if known:
        C = N_camp[known]
        C = C[C.sum(axis=1) > 0]
        pos = np.array([positions[c] for c in known])
        home = C.idxmax(axis=1)
        lean = home.map(positions).to_numpy(dtype=float)
        P = M.shares(C.to_numpy())
        out.loc[C.index, "home_camp"] = home
        out.loc[C.index, "lean"] = lean
        out.loc[C.index, "received_slant"] = M.received_slant(C.to_numpy(), pos)
        out.loc[C.index, "cross_cutting"] = M.cross_cutting_share(P, M.side_of(pos), M.side_of(lean))
        out.loc[C.index, "camp_impressions"] = C.sum(axis=1)
    return out.reset_index()


def global_metrics(N_narr: pd.DataFrame, seg: pd.DataFrame) -> dict[str, Any]:
    """Segregation of the narrative diet across segments: Theil's ``M`` (and normalized), the isolation
    index between right-leaning and left-leaning segments (centre ones left out), and the echo-chamber
    correlation (impression-weighted) of lean against received slant."""
    out: dict[str, Any] = {"theil_m": None, "theil_m_normalized": None, "isolation": None, "echo_chamber": None}
    if N_narr.empty:
        return out
    N = N_narr.to_numpy()
    out["theil_m"] = float(M.theil_m(N))
    out["theil_m_normalized"] = float(M.theil_m(N, normalized=True))
    if "lean" in seg:
        s = seg.set_index("segment_id").reindex(N_narr.index)
        side = M.side_of(s["lean"].fillna(0.0).to_numpy())
        keep = side != 0
        if (side[keep] > 0).any() and (side[keep] < 0).any():
            out["isolation"] = float(M.isolation_index(N[keep], side[keep] > 0))
        ok = s["lean"].notna() & s["received_slant"].notna()
        if ok.sum() >= 3:
            out["echo_chamber"] = float(M.weighted_correlation(
                s.loc[ok, "lean"].to_numpy(), s.loc[ok, "received_slant"].to_numpy(),
                s.loc[ok, "camp_impressions"].to_numpy()))
    return out


SEGMENT_METRICS = ("cross_cutting", "effective_narratives", "gini_simpson", "rao_stirling", "js_divergence")


def measured_segments(long: pd.DataFrame) -> pd.DataFrame:
    """The measure stage's ``metrics_segments`` rows (one per segment × metric) as one row per segment:
    ``segment_id, segment, impressions, few_ads, home_lean_source`` and, per metric, its value with
    ``<metric>_low`` / ``<metric>_high`` interval bounds; ``lean`` and ``received_slant`` where camps
    have positions (the echo-chamber plot); ``n_ads``, ``n_sponsors`` (and those whose camp is known)."""
    if long.empty:
        return pd.DataFrame()
    rows = long[long["metric"].isin(SEGMENT_METRICS)]
    wide = rows.pivot_table(index="segment_id", columns="metric", values=["value", "ci_low", "ci_high"],
                            aggfunc="first")
    out = pd.DataFrame(index=wide.index)
    for m in SEGMENT_METRICS:
        if ("value", m) in wide:
            out[m] = wide[("value", m)]
            out[f"{m}_low"] = wide.get(("ci_low", m), np.nan)
            out[f"{m}_high"] = wide.get(("ci_high", m), np.nan)
    for m in ("lean", "received_slant"):
        pts = long[long["metric"] == f"echo:{m}"].set_index("segment_id")["value"]
        if pts.notna().any():
            out[m] = pts.reindex(out.index).astype(float)
    for k in ("n_ads", "n_sponsors", "n_camp_ads", "n_camp_sponsors"):  # what a finding rests on
        sup = long[long["metric"] == f"support:{k}"].set_index("segment_id")["value"]
        if len(sup):
            out[k] = sup.reindex(out.index)
    base = long.drop_duplicates("segment_id").set_index("segment_id")
    keep = [c for c in ("label", "impressions", "few_ads", "home_lean_source") if c in base]
    return base[keep].join(out, how="right").reset_index()


@dataclass(frozen=True)
class HeatmapRows:
    """The rows the app's narratives-by-segment heatmap draws: ``shares`` (segment × narrative, in display
    order, indexed by segment id), each row's ``labels`` (its country in brackets when grouped), its
    ``countries`` (``None`` when not grouped), the ``selection`` (``present.rows``) and the ``caption``."""

    shares: pd.DataFrame
    labels: list[str]
    countries: list[str | None]
    selection: RowSelection
    caption: str


def heatmap_rows(shares: pd.DataFrame, impressions: Mapping[str, float] | pd.Series,
                 countries: Mapping[str, str], *, show_all: bool = False) -> HeatmapRows:
    """The rows of a segment × narrative ``shares`` matrix the heatmap shows, by the report's rule
    (:func:`present.rows.select_rows`: at most 25, the home country first, grouped by country), or every
    row (``show_all``, in the same grouped order). ``impressions`` and ``countries`` are by segment id."""
    by_imp = sorted(range(len(shares)), key=lambda i: -float(impressions.get(str(shares.index[i]), 0.0) or 0.0))
    shares = shares.iloc[by_imp]  # rows not grouped by country: most impressions on top
    ids = [str(s) for s in shares.index]
    imp = [float(impressions.get(s, 0.0) or 0.0) for s in ids]
    ctry = [countries.get(s) for s in ids]
    sel = select_rows(imp, ctry)
    shown = select_rows(imp, ctry, max_rows=len(ids)) if show_all else sel
    rows = list(shown.rows)
    return HeatmapRows(shares=shares.iloc[rows], labels=[country_label(ids[i], c) for i, c in
                                                         zip(rows, shown.countries, strict=True)],
                       countries=list(shown.countries), selection=sel,
                       caption=rows_caption(sel, all_shown=show_all, grouped=shown.grouped))


def rows_caption(sel: RowSelection, *, all_shown: bool = False, grouped: bool | None = None,
                 volume: str = "impressions") -> str:
    """The app's sentence on a figure's rows: how many are shown, by which rule, how many are left out
    (and their share of ``volume``) and whether the rows drawn are ``grouped`` by country (default: as
    ``sel``); "" when there is nothing to say. ``all_shown``: the reader asked for every row."""
    out = []
    if sel.n_left_out and all_shown:
        out.append(f"All {sel.n_total} rows shown.")
    elif sel.n_left_out:
        rule = (f"all {sel.n_home} rows of {sel.home} (the country with most of the {volume}), then the largest "
                f"others by {volume}" if sel.home else f"the largest by {volume}")
        out.append(f"{sel.n_shown} of {sel.n_total} rows shown: {rule}; the other {sel.n_left_out} "
                   f"({sel.left_out_share:.1%} of the {volume}) are left out of the figure, not of the data: "
                   f"tick “Show all {sel.n_total} rows” to draw them.")
    if sel.grouped if grouped is None else grouped:
        out.append("Rows are grouped by country (ISO code in brackets; none: no known country).")
    return " ".join(out)


def only_measured(long: pd.DataFrame, measured: pd.DataFrame) -> pd.DataFrame:
    """The rows of a long segment matrix whose segment the measurement kept (``measured``: its
    ``segment_id`` column); all rows while the scheme is not measured. Segments under the measurement's
    privacy floor (too few impressions) stay in the segments table but must not reach a figure."""
    if measured.empty or "segment_id" not in measured:
        return long
    return long[long["segment_id"].astype(str).isin(set(measured["segment_id"].astype(str)))]
