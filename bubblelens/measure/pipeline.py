"""Store integration: measure a segment scheme and write ``metrics_segments`` and ``metrics_global``.

One run = one transaction (the scheme's previous metric rows replaced, a ``runs`` row with parameters,
seed, counts and timings). Classification and segmentation are run first when their outputs are missing,
and the result says so (``warnings``).
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MeasureError
from ..store import Store
from . import metrics as mt
from .aggregates import write_exposure_matrix
from .bootstrap import ExposureData, bootstrap, intervals, jackknife, permutation_null
from .lean import (
    HomeLean,
    Positions,
    camp_positions,
    circular_lean,
    declared_lean,
    external_lean,
    position_of,
)
from .matrices import UNASSIGNED, impression_matrices, load_exposure_data, stored_scheme

__all__ = ["SEGMENT_METRICS", "UNCERTAINTIES", "measure_store", "metrics_frame"]

SEGMENT_METRICS = ("cross_cutting", "effective_narratives", "gini_simpson", "rao_stirling", "js_divergence")
GLOBAL_METRICS = ("isolation", "theil_m", "theil_h", "echo_chamber")
CENTRE_BAND = 0.2
#: what an interval describes: ``census`` (these ads: ranges and labels) or ``advertisers`` (+ sponsors)
UNCERTAINTIES = ("census", "advertisers")


def _new_run_id() -> str:
    return f"measure-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


def _ensure_inputs(store: Store, *, scheme: str, by: str | None, k_min: int, impressions_min: float,
                   seed: int) -> list[str]:
    """Run classification / segmentation when their outputs are missing; one warning line each."""
    warnings: list[str] = []
    n_scores = store.con.execute("SELECT count(*) FROM scores WHERE task = 'narrative'").fetchall()[0][0]
    if not n_scores:
        from ..classify import classify_store

        run = classify_store(store)
        warnings.append(f"warning: no narrative scores in the store: ran classification first (run {run})")
    name = stored_scheme(scheme, by)
    n_seg = store.con.execute("SELECT count(*) FROM segments WHERE scheme = ?", [name]).fetchall()[0][0]
    if not n_seg:
        from ..segment import segment_store

        seg_by = by if scheme != "declared" else (by or "declared_lean")
        if scheme == "cells":
            seg_by = by or "region"
        run = segment_store(store, scheme=scheme, by=seg_by, k_min=k_min, k_impressions=impressions_min,
                            random_state=seed)
        warnings.append(f"warning: no segments {name!r} in the store: ran segmentation first (run {run})")
    return warnings


def _narrative_distances(store: Store, data: ExposureData, cols: list[int]) -> np.ndarray | None:
    """Cosine distances between narrative centroids (probability-weighted mean message embeddings)."""
    found = store.con.execute("SELECT encoder_id FROM scores WHERE task = 'narrative' AND encoder_id IS NOT NULL "
                              "LIMIT 1").fetchall()
    if not found:
        return None
    row = found[0]
    ids = pd.DataFrame({"message_id": data.message_ids, "i": np.arange(len(data.message_ids))})
    store.con.register("_measure_ids", ids)
    try:
        emb = store.con.execute(
            "SELECT i.i, e.vector FROM _measure_ids i JOIN messages m ON m.message_id = i.message_id "
            "JOIN embeddings e ON e.text_hash = m.text_hash AND e.encoder_id = ? ORDER BY i.i",
            [row[0]]).fetchnumpy()
    finally:
        store.con.unregister("_measure_ids")
    if not len(emb["i"]):
        return None
    rows = np.asarray(emb["i"], dtype=np.int64)
    X = np.stack(list(emb["vector"])).astype(np.float64)  # one array per row: stacked once
    P = np.zeros((len(rows), len(data.narratives)))
    np.add.at(P, (np.repeat(np.arange(len(rows)), data.narr_idx.shape[1]), data.narr_idx[rows].ravel()),
              data.narr_p[rows].ravel())
    P = P[:, cols]
    mass = P.sum(axis=0)
    if (mass <= 0).any():
        return None
    return mt.cosine_distances((P.T @ X) / mass[:, None])


def _lean(store: Store, lean: str | None, scheme: str, members: pd.DataFrame, ids: list[str],
          labels: list[str], camps: list[str], n_camp_point: np.ndarray, positions: Positions) -> HomeLean:
    if lean not in (None, "", "declared", "circular"):
        return external_lean(str(lean), ids, labels, camps, positions=positions)
    if lean == "circular":
        return circular_lean(n_camp_point, camps, positions=positions)
    if scheme != "cells":
        try:
            return declared_lean(store, members, ids, positions=positions)
        except MeasureError:
            if lean == "declared":
                raise
    elif lean == "declared":
        raise MeasureError("delivery cells have no declared lean: give --lean FILE (e.g. vote shares by region)")
    return circular_lean(n_camp_point, camps, positions=positions)


def _narrative_support(data: ExposureData) -> dict[str, dict[str, int]]:
    """Per narrative: the ads it is the label of (more than half their probability) and their sponsors,
    among the measured ads: what a finding about that narrative rests on."""
    out = {}
    for k, name in enumerate(data.narratives):
        if name == UNASSIGNED:
            continue
        mine = np.where(data.narr_idx == k, data.narr_p, 0.0).sum(axis=1) > 0.5
        out[name] = {"n_ads": int(mine.sum()), "n_sponsors": len(np.unique(data.sponsor[mine]))}
    return out


def _check_links(store: Store, scheme: str, by: str | None) -> None:
    """Refuse with the real cause when nothing links the scheme's segments to messages (before the privacy
    floor would refuse every segment for having no impressions)."""
    if scheme == "cells":
        found = store.con.execute("SELECT count(*) FROM deliveries").fetchone()
        if not (found and found[0]):
            raise MeasureError("no deliveries in the store: delivery cells need an ad library with regional or "
                               "demographic delivery; for messages only, `bubblelens report` describes what "
                               "each camp says")
        return
    name = stored_scheme(scheme, by)
    found = store.con.execute(
        "SELECT count(*) FROM exposures e JOIN segment_members s ON s.member_id = e.audience_id "
        "AND s.scheme = ? JOIN messages m ON m.message_id = e.message_id", [name]).fetchone()
    if not (found and found[0]):
        raise MeasureError(f"no exposure links the audiences of {name!r} to the store's messages: ingest the "
                           "panel's exposure logs (`bubblelens ingest FILE --kind exposures`), with the same "
                           "audience and message ids")


def _sides(home: HomeLean, camps: list[str], positions: Positions) -> tuple[np.ndarray, str]:
    """Each segment's side for the isolation index (+1 right, −1 left, 0 centre or unknown) and how.

    By the lean's position when positions exist; a two-camp codebook without positions (a referendum's
    yes / no) sides each segment with its home camp (the second camp is +1).
    """
    lean_v = home.value
    if not np.isnan(lean_v).all():
        side = mt.side_of(np.nan_to_num(lean_v, nan=0.0), centre_band=CENTRE_BAND)
        side[np.isnan(lean_v)] = 0
        return side, "position"
    if len(camps) == 2:
        return np.array([{camps[0]: -1, camps[1]: 1}.get(c or "", 0) for c in home.camp]), "two camps"
    return np.zeros(len(home.camp), dtype=np.int64), "none"


def _nanmedian(x: np.ndarray) -> np.ndarray:
    """Median over replicates (axis 0) ignoring nan; nan where every replicate is nan (no warning)."""
    x = np.asarray(x, dtype=np.float64)
    n = (~np.isnan(x)).sum(axis=0)
    srt = np.sort(np.where(np.isnan(x), np.inf, x), axis=0)  # nan last
    lo = np.take_along_axis(srt, np.maximum((n - 1) // 2, 0)[None, ...], axis=0)[0]
    hi = np.take_along_axis(srt, np.maximum(n // 2, 0)[None, ...], axis=0)[0]
    return np.where(n > 0, 0.5 * (lo + hi), np.nan)


def _entry(value: float, lo: float, hi: float) -> dict[str, Any]:
    def f(x: float) -> float | None:
        return None if x is None or not np.isfinite(x) else round(float(x), 6)

    return {"value": f(value), "ci": [f(lo), f(hi)]}


def measure_store(store: Store, *, scheme: str, by: str | None = None, lean: str | None = None,
                  n_boot: int = 1000, seed: int = 0, k_min: int = 10, impressions_min: float = 100.0,
                  n_perm: int = 499, level: float = 0.95, interval: str = "percentile",
                  uncertainty: str = "census") -> dict[str, Any]:
    """Measure segment scheme ``scheme`` and write the metric tables; returns the JSON-ready result.

    ``lean``: ``None`` (declared when the panel has ``declared_lean``, otherwise circular), ``"declared"``,
    ``"circular"``, or the path of an external CSV/YAML table (:mod:`.lean`). Segments under the privacy
    floor (``k_min`` people, ``impressions_min`` impressions) are dropped before anything is computed.
    ``interval``: ``percentile`` (default) or ``bca`` (docs/metrics.md says why percentile is the default).
    ``uncertainty``: ``census`` (default: an ad library lists every ad, so the interval describes what is
    not known about *these* ads: impressions inside their ranges, labels from their probabilities) or
    ``advertisers`` (adds the cluster bootstrap over sponsors: what other advertisers might have done).
    """
    if uncertainty not in UNCERTAINTIES:
        raise MeasureError(f"unknown uncertainty {uncertainty!r}: choose among {', '.join(UNCERTAINTIES)}")
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    warnings = _ensure_inputs(store, scheme=scheme, by=by, k_min=k_min, impressions_min=impressions_min,
                              seed=seed)
    _check_links(store, scheme, by)
    data, segs, notes = load_exposure_data(store, scheme=scheme, by=by, k_min=k_min,
                                           impressions_min=impressions_min)
    timings["load_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    if notes.get("labels_missing"):
        warnings.append(f"warning: {notes['labels_missing']} message labels missing from scores: "
                        "counted as unassigned")
    run_id = _new_run_id()
    S = len(segs.ids)
    result: dict[str, Any] = {"run_id": run_id, "scheme": segs.scheme, "segments": [], "global": {},
                              "suppressed_segments": segs.n_suppressed, "warnings": warnings,
                              "privacy_floor": {"k_min": k_min, "impressions_min": impressions_min}}
    mats = impression_matrices(data)
    nn0, nc0 = mats["point"]
    positions = camp_positions(store)
    active_camps = [str(r[0]) for r in store.con.execute(
        "SELECT camp_id FROM camps WHERE active ORDER BY camp_id").fetchall()]
    home = _lean(store, lean, scheme, segs.members, segs.ids, segs.labels, data.camps, nc0, positions)
    narr_cols = [i for i, k in enumerate(data.narratives) if k != UNASSIGNED]
    # camps are categories: every camp counts for cross-cutting exposure; positions only for slant / echo
    camp_cols = [i for i, c in enumerate(data.camps) if c != UNASSIGNED]
    camps_all = [data.camps[i] for i in camp_cols]
    pos_all = np.array([position_of(c, positions) for c in camps_all], dtype=np.float64)
    pos_cols = [camp_cols[j] for j in range(len(camp_cols)) if not np.isnan(pos_all[j])]
    pos = pos_all[~np.isnan(pos_all)]
    # a home camp no message carries: everything the segment received is from another camp
    home_idx = np.array([-1 if c is None else (camps_all.index(c) if c in camps_all else len(camps_all))
                         for c in home.camp])
    absent = sorted({c for c in home.camp if c is not None and c not in camps_all})
    if absent:
        warnings.append(f"warning: home camps {', '.join(absent)} (from the lean) are carried by no message: "
                        "their segments' cross-cutting share is 1 (check the camp ids if unexpected)")
    unplaced = [c for c, x in zip(camps_all, pos_all, strict=True) if np.isnan(x)]
    if unplaced:
        what = ("slant and the echo-chamber correlation use only the camps that have one" if len(pos) >= 2
                else "slant and the echo-chamber correlation are not computed")
        warnings.append(f"note: camps without a left–right position in the codebook ({', '.join(unplaced)}): "
                        f"{what}; cross-cutting exposure needs none")
    lean_v = home.value
    side, side_basis = _sides(home, camps_all, positions)
    two_sides = (side != 0)
    d = _narrative_distances(store, data, narr_cols) if narr_cols else None

    def stat(nn: np.ndarray, nc: np.ndarray) -> dict[str, np.ndarray]:
        an = nn[..., narr_cols]
        pc = mt.shares(nc[..., camp_cols])
        pn = mt.shares(an)
        cc = mt.cross_cutting_share(pc, np.arange(len(camp_cols)), home_idx)
        cc = np.where(home_idx >= 0, cc, np.nan)
        whole = an.sum(axis=-2, keepdims=True)
        out = {"cross_cutting": cc, "effective_narratives": mt.effective_number(pn),
               "gini_simpson": mt.gini_simpson(pn), "js_divergence": mt.js_divergence(pn, whole),
               "theil_m": mt.theil_m(an), "theil_h": mt.theil_m(an, normalized=True)}
        if d is not None:
            out["rao_stirling"] = mt.rao_stirling(pn, d)
        sides = side[two_sides]
        if (sides > 0).any() and (sides < 0).any():
            out["isolation"] = mt.isolation_index(an[..., two_sides, :], sides > 0)
        ok = ~np.isnan(lean_v)
        if ok.sum() >= 3 and len(pos_cols) >= 2:
            imp = nn.sum(axis=-1)[..., ok]
            out["echo_chamber"] = mt.echo_chamber(lean_v[ok], nc[..., ok, :][..., pos_cols], pos, imp)
        return out

    if S == 0:
        raise MeasureError(f"no segment of {segs.scheme!r} is above the privacy floor "
                           f"({segs.n_suppressed} suppressed): nothing can be shown")
    point = {k: np.asarray(v)[0] for k, v in stat(nn0[None], nc0[None]).items()}
    timings["prepare_s"] = time.perf_counter() - t1  # camps, lean, sides, narrative distances, point values
    t1 = time.perf_counter()
    boot = bootstrap(data, stat, n_boot=n_boot, seed=seed, resample_sponsors=uncertainty == "advertisers")
    timings["bootstrap_s"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    jack = jackknife(data, stat, seed=seed) if interval == "bca" else {}
    cis: dict[str, tuple[np.ndarray, np.ndarray, str]] = {}
    for k, v in point.items():
        if k in boot:
            cis[k] = intervals(v, boot[k], jack.get(k), level=level, method=interval)
        else:
            cis[k] = (np.full(np.shape(v), np.nan), np.full(np.shape(v), np.nan), "none")
    # The value shown: the median over the census draws, i.e. the metric of a plausible labelling of these
    # ads at plausible impressions. The metric of the expected (soft-count) matrix is the metric of no
    # labelling: it overstates diversity and understates segregation (Jensen), and fell outside every
    # draw on the German pull (Bremen's Gini–Simpson 0.798 vs draws up to 0.797). Under the advertiser
    # bootstrap the value stays the census one: resampling sponsors is about other ads, not these.
    census = boot if uncertainty == "census" else bootstrap(data, stat, n_boot=n_boot, seed=seed)
    point = {k: (np.where(np.isnan(med), v, med) if k in census else v)
             for k, v in point.items() for med in [_nanmedian(census[k]) if k in census else v]}
    timings["intervals_s"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    p_value, _ = (permutation_null(data, lambda nn, nc: mt.theil_m(nn[..., narr_cols]),
                                   float(point["theil_m"]), n_perm=n_perm, seed=seed)
                  if n_perm > 0 else (math.nan, None))
    timings["permutation_s"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    few = data.few_ads()
    n_ads, n_sp = data.support()
    # what a cross-cutting finding rests on: the ads whose camp is known (more than half its probability)
    unassigned_col = data.camps.index(UNASSIGNED) if UNASSIGNED in data.camps else -1
    camp_known = (np.where(data.camp_idx == unassigned_col, 0.0, data.camp_p).sum(axis=1) > 0.5)
    n_camp_ads, n_camp_sp = data.support(camp_known)
    imp_lo = mats["lower"][0].sum(axis=1)
    imp_hi = mats["upper"][0].sum(axis=1)
    pn0 = mt.shares(nn0)
    pc0 = mt.shares(nc0)
    pc_pos = mt.shares(nc0[:, pos_cols]) if pos_cols else np.zeros((S, 0))
    for s in range(S):
        seg: dict[str, Any] = {
            "segment": segs.labels[s], "segment_id": segs.ids[s],
            "impressions": round(float(nn0[s].sum()), 1),
            "impressions_range": [round(float(imp_lo[s]), 1), round(float(imp_hi[s]), 1)],
            # every active camp of the codebook has a number, 0 where no message of it reached the segment
            "camp_share": {**dict.fromkeys(active_camps, 0.0),
                           **{c: round(float(pc0[s, i]), 6) for i, c in enumerate(data.camps)}},
            "narrative_share": {k: round(float(pn0[s, i]), 6) for i, k in enumerate(data.narratives)},
        }
        for m in SEGMENT_METRICS:
            if m in point:
                lo, hi, _ = cis[m]
                seg[m] = _entry(point[m][s], lo[s], hi[s])
            else:
                seg[m] = {"value": None, "ci": [None, None]}
        seg["home_lean"] = {"camp": home.camp[s], "value": None if math.isnan(lean_v[s]) else round(float(lean_v[s]), 4),
                            "source": home.source, "circular": home.circular}
        slant = mt.received_slant(pc_pos[s], pos) if len(pos) and nc0[s, pos_cols].sum() > 0 else math.nan
        seg["echo"] = {"lean": seg["home_lean"]["value"],
                       "received_slant": None if not np.isfinite(slant) else round(float(slant), 4)}
        seg["few_ads"] = bool(few[s])
        seg["n_ads"] = int(n_ads[s])
        seg["n_sponsors"] = int(n_sp[s])
        seg["n_camp_ads"] = int(n_camp_ads[s])
        seg["n_camp_sponsors"] = int(n_camp_sp[s])
        result["segments"].append(seg)
    g: dict[str, Any] = {}
    for m in GLOBAL_METRICS:
        if m in point:
            lo, hi, _ = cis[m]
            g[m] = _entry(float(point[m]), float(lo), float(hi))
        else:
            g[m] = {"value": None, "ci": [None, None]}
    g["theil_m"]["p_value"] = None if math.isnan(p_value) else round(p_value, 6)
    g["theil_m"]["normalized"] = g.pop("theil_h")
    g["echo_chamber"]["circular"] = home.circular
    g["isolation"]["circular"] = home.circular
    slant = mt.audience_slant(nn0[:, narr_cols][~np.isnan(lean_v)], lean_v[~np.isnan(lean_v)]) \
        if (~np.isnan(lean_v)).any() else np.full(len(narr_cols), np.nan)
    g["narrative_slant"] = {data.narratives[i]: (None if not np.isfinite(a) else round(float(a), 4))
                            for i, a in zip(narr_cols, slant, strict=True)}
    g["narrative_slant_circular"] = home.circular
    g["camps"] = {"ids": camps_all, "without_position": unplaced, "isolation_sides": side_basis}
    g["narrative_support"] = {"value": None, "ci": [None, None], "by_narrative": _narrative_support(data)}
    g["interval_method"] = sorted({c[2] for c in cis.values() if c[2] != "none"})
    g["n_boot"] = n_boot
    g["uncertainty"] = uncertainty
    g["seed"] = seed
    result["global"] = g
    from .funnel import funnel

    timings["results_s"] = time.perf_counter() - t1  # per-segment rows, support, slants
    t1 = time.perf_counter()
    result["funnel"] = funnel(store, data, scheme_name=segs.scheme, labels=segs.labels, home_camp=home.camp)
    for seg, row in zip(result["segments"], result["funnel"] or [], strict=False):
        seg["funnel"] = {k: v for k, v in row.items() if isinstance(v, dict)}
    if result["funnel"] and "unresolved_locations" in result["funnel"][0]:
        n_unres = result["funnel"][0]["unresolved_locations"]
        result["global"]["funnel_unresolved_locations"] = n_unres
        if n_unres:
            warnings.append(f"note: {n_unres} targeted locations name no region (a city, postcodes, or an "
                            "unknown place): the funnel counts them in every region of their country, or "
                            "everywhere when the country is unknown (`bubblelens regions` lists them)")
    timings["funnel_s"] = time.perf_counter() - t1
    timings["total_s"] = time.perf_counter() - t0
    result["timings"] = {k: round(v, 3) for k, v in timings.items()}
    _write(store, result, run_id=run_id, started=started, params={
        "scheme": scheme, "by": by, "lean": lean, "n_boot": n_boot, "seed": seed, "k_min": k_min,
        "impressions_min": impressions_min, "n_perm": n_perm, "level": level,
        "interval": interval, "uncertainty": uncertainty}, notes=notes, timings=timings)
    return result


def metrics_frame(result: Mapping[str, Any]) -> pd.DataFrame:
    """Long table of a result's segment metrics: one row per (segment, metric), shares included."""
    rows = []
    for seg in result["segments"]:
        base = {"scheme": result["scheme"], "segment_id": seg["segment_id"], "segment": seg["segment"],
                "impressions": seg["impressions"], "few_ads": seg["few_ads"],
                "home_lean_source": seg["home_lean"]["source"]}
        for m in SEGMENT_METRICS:
            e = seg[m]
            rows.append({**base, "metric": m, "value": e["value"], "ci_low": e["ci"][0], "ci_high": e["ci"][1]})
        for k in ("n_ads", "n_sponsors", "n_camp_ads", "n_camp_sponsors"):  # what a finding rests on
            rows.append({**base, "metric": f"support:{k}", "value": seg.get(k), "ci_low": None, "ci_high": None})
        for k, v in (seg.get("echo") or {}).items():  # the echo-chamber plot's points (app, report)
            rows.append({**base, "metric": f"echo:{k}", "value": v, "ci_low": None, "ci_high": None})
        for kind in ("camp_share", "narrative_share"):
            for k, v in seg[kind].items():
                rows.append({**base, "metric": f"{kind}:{k}", "value": v, "ci_low": None, "ci_high": None})
        for stage, e in (seg.get("funnel") or {}).items():
            rows.append({**base, "metric": f"funnel:{stage}", "value": e["value"], "ci_low": None, "ci_high": None})
            rows.append({**base, "metric": f"funnel_cross_cutting:{stage}", "value": e["cross_cutting"],
                         "ci_low": None, "ci_high": None})
    return pd.DataFrame(rows, columns=["scheme", "segment_id", "segment", "impressions", "few_ads",
                                       "home_lean_source", "metric", "value", "ci_low", "ci_high"])


def _write(store: Store, result: dict[str, Any], *, run_id: str, started: datetime, params: dict[str, Any],
           notes: dict[str, Any], timings: dict[str, float]) -> None:
    t_write = time.perf_counter()
    seg_df = metrics_frame(result).assign(run_id=run_id)
    glob_rows = []
    for m, e in result["global"].items():
        if isinstance(e, dict) and "value" in e:
            glob_rows.append({"run_id": run_id, "scheme": result["scheme"], "metric": m, "value": e["value"],
                              "ci_low": e["ci"][0], "ci_high": e["ci"][1], "p_value": e.get("p_value"),
                              "extra": json.dumps({**{k: v for k, v in e.items() if k not in ("value", "ci")},
                                                   "uncertainty": result["global"]["uncertainty"]},
                                                  default=str)})
    glob_df = pd.DataFrame(glob_rows, columns=["run_id", "scheme", "metric", "value", "ci_low", "ci_high",
                                               "p_value", "extra"])
    con = store.con
    with store.transaction():
        con.execute("DELETE FROM metrics_segments WHERE scheme = ?", [result["scheme"]])
        con.execute("DELETE FROM metrics_global WHERE scheme = ?", [result["scheme"]])
        con.register("_ms_df", seg_df)
        con.register("_mg_df", glob_df)
        try:
            con.execute("INSERT INTO metrics_segments SELECT run_id, scheme, segment_id, segment, metric, value, "
                        "ci_low, ci_high, impressions, few_ads, home_lean_source FROM _ms_df")
            con.execute("INSERT INTO metrics_global SELECT run_id, scheme, metric, value, ci_low, ci_high, "
                        "p_value, extra FROM _mg_df")
        finally:
            con.unregister("_ms_df")
            con.unregister("_mg_df")
        # the app's heatmap reads this instead of summing the delivery rows per page open
        notes = {**notes, "exposure_matrix_rows": write_exposure_matrix(con, result["scheme"], run_id=run_id)}
        timings["write_s"] = time.perf_counter() - t_write  # the run record itself is the only step left out
        timings["total_s"] = timings.pop("total_s", 0.0) + timings["write_s"]  # (last, as printed)
        result["timings"] = {k: round(v, 3) for k, v in timings.items()}
        store.record_run(run_id, "measure", status="ok", started_at=started, finished_at=datetime.now(UTC),
                         params=params, inputs=notes, timings=timings)


def write_parquet(result: Mapping[str, Any], path: str | Path) -> Path:
    """Write the long metric table of ``result`` to Parquet."""
    p = Path(path)
    metrics_frame(result).to_parquet(p, index=False)
    return p
