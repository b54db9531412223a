"""Impression matrices from the store: what the bootstrap and the metrics need, as arrays.

``N[segment, narrative]`` and ``N[segment, camp]`` are ``Σ_m D[m, s] · I_m · P(label_m = k)`` where

- for **cells** schemes (``cells:region``, ``cells:age_gender``, ...) ``D[m, s]`` is the share of message
  ``m``'s impressions delivered to segment ``s`` (the delivery rows that fill the scheme's dimensions,
  one breakdown kind per message, as :mod:`bubblelens.segment.cells` rolls them up) and ``I_m`` its
  impressions, a range (:mod:`.ranges`); a breakdown given as counts is taken as exact impressions;
- for **interests** / **declared** schemes ``D[m, s]`` is the number of times members of ``s`` saw ``m``
  (table ``exposures``), exact, so ``I_m = 1``;
- ``P(label_m = k)`` comes from table ``scores`` (:func:`label_distribution`).

The matrices are returned as lower / point / upper (impressions at their bounds, soft label counts) by
:func:`impression_matrices`, and as an :class:`~.bootstrap.ExposureData` for the bootstrap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import MeasureError
from ..store import Store
from .bootstrap import ExposureData, expected_matrices
from .ranges import bounds

__all__ = ["UNASSIGNED", "SegmentTable", "impression_matrices", "label_distribution", "load_exposure_data",
           "stored_scheme"]

UNASSIGNED = "unassigned"


def stored_scheme(scheme: str, by: str | None) -> str:
    """Name of the scheme in table ``segments``: ``cells:<dims>``, ``declared:<attr>`` or ``interests``."""
    from ..segment.cells import parse_dims, scheme_name

    if scheme == "cells":
        return scheme_name(parse_dims(by or "region"))
    if scheme == "declared":
        return f"declared:{by or 'declared_lean'}"
    if scheme == "interests":
        return "interests"
    raise MeasureError(f"unknown scheme {scheme!r}: choose among cells, interests, declared")


def label_distribution(label: str | None, p: float | None, topk: str | None) -> dict[str, float]:
    """A message's label distribution from its ``scores`` row.

    The ``topk`` list ``[[label, p], ...]`` is used as given (negative values dropped, a total above 1
    rescaled); the mass it leaves is ``unassigned``. When the row's label is ``unassigned`` but ``topk``
    lacks it, ``unassigned`` gets the row's ``p`` and the listed labels share the rest in proportion.
    No ``topk``: the label with probability 1.

    >>> d = label_distribution("pensions", 0.7, '[["pensions", 0.7], ["jobs", 0.2]]')
    >>> {k: round(v, 6) for k, v in d.items()}
    {'pensions': 0.7, 'jobs': 0.2, 'unassigned': 0.1}
    """
    items: list[tuple[str, float]] = []
    if topk:
        try:
            raw = json.loads(topk)
            items = [(str(a), max(float(b), 0.0)) for a, b in raw]
        except (ValueError, TypeError):
            items = []
    if not items:
        return {str(label or UNASSIGNED): 1.0}
    dist: dict[str, float] = {}
    for a, b in items:
        dist[a] = dist.get(a, 0.0) + b
    tot = sum(dist.values())
    if label == UNASSIGNED and UNASSIGNED not in dist and p is not None and 0 < p <= 1:
        scale = (1.0 - p) / tot if tot > 0 else 0.0
        dist = {a: b * scale for a, b in dist.items()}
        dist[UNASSIGNED] = float(p)
    elif tot > 1.0:
        dist = {a: b / tot for a, b in dist.items()}
    elif tot < 1.0 - 1e-9:
        dist[UNASSIGNED] = dist.get(UNASSIGNED, 0.0) + 1.0 - tot
    return dist


@dataclass
class SegmentTable:
    """The segments measured (after the privacy floor) and how many were suppressed."""

    scheme: str
    ids: list[str]
    labels: list[str]
    size: np.ndarray          # people (audience schemes) or ads (cells)
    n_suppressed: int
    members: pd.DataFrame     # member_id, segment_id (kept segments only)


def _segments(store: Store, name: str, *, k_min: int) -> SegmentTable:
    seg = store.con.execute(
        "SELECT segment_id, label, size, suppressed, extra FROM segments WHERE scheme = ? ORDER BY segment_id",
        [name]).df()
    mem = store.con.execute("SELECT member_id, segment_id FROM segment_members WHERE scheme = ?", [name]).df()
    people = not name.startswith("cells")
    under = seg["suppressed"].fillna(False).astype(bool) | (seg["segment_id"] == "other")
    if people:
        under |= seg["size"].fillna(0) < k_min
    kept = seg[~under]
    # the segmentation merged segments under its floor into ``other``: count those it merged
    n_under = 0
    for sid, extra in zip(seg.loc[under, "segment_id"], seg.loc[under, "extra"], strict=True):
        merged = None
        if sid == "other" and isinstance(extra, str):
            try:
                merged = json.loads(extra).get("merged")
            except (ValueError, AttributeError):
                merged = None
        n_under += int(merged) if isinstance(merged, int) else 1
    return SegmentTable(name, kept["segment_id"].astype(str).tolist(), kept["label"].astype(str).tolist(),
                        kept["size"].fillna(0).to_numpy(np.int64), n_under,
                        mem[mem["segment_id"].isin(set(kept["segment_id"]))])


def _cell_label(segment_id: str) -> str:
    """``region=Bretagne`` → ``Bretagne``; ``age=25-34|gender=female`` → ``25-34 × female``."""
    return " × ".join(part.split("=", 1)[-1] for part in segment_id.split("|"))


def _cells_query(dims: list[str] | None) -> str:
    """SQL: each delivery row of the roll-up on ``dims`` with its cell key, one breakdown kind per message.

    The key is :func:`~bubblelens.segment.cells.cell_key` (``dim=value|...`` over the filled dimensions);
    among a message's rows the kind first in ``KIND_PREFERENCE`` is kept, as
    :func:`~bubblelens.segment.cells.rollup` does. Computed in DuckDB: no Python loop over the rows.
    """
    from ..segment.cells import DIMENSIONS, KIND_PREFERENCE

    use = list(dims) if dims else list(DIMENSIONS)
    if any(d not in DIMENSIONS for d in use):
        raise MeasureError(f"unknown cell dimension(s) in {use}: choose among {list(DIMENSIONS)}")
    parts = ", ".join(f"CASE WHEN {d} <> '' THEN '{d}=' || {d} END" for d in use)
    key = f"concat_ws('|', {parts})"
    where = " AND ".join(f"{d} IS NOT NULL AND {d} <> ''" for d in use) if dims else f"{key} <> ''"
    rank = "CASE kind " + " ".join(f"WHEN '{k}' THEN {i}" for i, k in enumerate(KIND_PREFERENCE)) + \
        f" ELSE {len(KIND_PREFERENCE)} END"
    return (f"SELECT message_id, {key} AS segment_id, "
            "CASE WHEN share IS NULL AND count IS NOT NULL THEN count ELSE share END AS val, "
            "(share IS NULL AND count IS NOT NULL) AS is_count "
            f"FROM deliveries WHERE {where} "
            f"QUALIFY {rank} = min({rank}) OVER (PARTITION BY message_id)")


def _cells_weights(store: Store, segs: SegmentTable, msg_index: pd.Index) -> tuple[sp.csr_matrix, np.ndarray]:
    """Share (or count) of each message in each kept cell segment; ``is_count`` per message."""
    dims = segs.scheme.split(":", 1)[1].split("_") if ":" in segs.scheme else None
    d = store.con.execute(_cells_query(dims)).fetchnumpy()
    cols = pd.Index(segs.ids).get_indexer(pd.Index(d["segment_id"]))
    rows = msg_index.get_indexer(pd.Index(d["message_id"]))
    # fetchnumpy gives masked arrays where a column has NULLs
    val = np.ma.filled(np.ma.asarray(d["val"]).astype(np.float64), np.nan)
    is_count_row = np.ma.filled(np.ma.asarray(d["is_count"]).astype(bool), False)
    keep = (cols >= 0) & (rows >= 0)
    ok = keep & ~np.isnan(val)
    w = sp.csr_matrix((val[ok], (rows[ok], cols[ok])), shape=(len(msg_index), len(segs.ids)))
    is_count = np.zeros(len(msg_index), dtype=bool)
    is_count[rows[keep & is_count_row]] = True
    return w, is_count


def _exposure_weights(store: Store, segs: SegmentTable, msg_index: pd.Index) -> sp.csr_matrix:
    ex = store.con.execute("SELECT audience_id, message_id, count FROM exposures").df()
    ex = ex.merge(segs.members, left_on="audience_id", right_on="member_id")
    col = {s: i for i, s in enumerate(segs.ids)}
    ex = ex[ex["message_id"].isin(msg_index)]
    return sp.csr_matrix((ex["count"].astype(np.float64).to_numpy(),
                          (msg_index.get_indexer(pd.Index(ex["message_id"])), ex["segment_id"].map(col).to_numpy())),
                         shape=(len(msg_index), len(segs.ids)))


def _compact(dists: list[dict[str, float]], columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    col = {c: i for i, c in enumerate(columns)}
    t = max((len(d) for d in dists), default=1)
    idx = np.zeros((len(dists), t), dtype=np.int64)
    p = np.zeros((len(dists), t))
    for i, d in enumerate(dists):
        tot = sum(d.values())
        for j, (a, b) in enumerate(d.items()):
            idx[i, j] = col[a]
            p[i, j] = b / tot
    return idx, p


def load_exposure_data(store: Store, *, scheme: str, by: str | None = None, k_min: int = 10,
                       impressions_min: float = 100.0) -> tuple[ExposureData, SegmentTable, dict[str, Any]]:
    """Arrays of a stored scheme (segments and scores must exist) and notes on what was left out.

    Segments under the privacy floor (``k_min`` people for audience schemes, ``impressions_min`` point
    impressions for every scheme) are dropped here, before any metric is computed.
    """
    name = stored_scheme(scheme, by)
    segs = _segments(store, name, k_min=k_min)
    msgs = store.con.execute(
        "SELECT message_id, coalesce(sponsor_id, sponsor, page_name, message_id) AS sponsor, "
        "impressions_lower, impressions_upper FROM messages ORDER BY message_id").df()
    idx = pd.Index(msgs["message_id"].astype(str))
    notes: dict[str, Any] = {"scheme": name}
    if scheme == "cells":
        w, is_count = _cells_weights(store, segs, idx)
        lower = msgs["impressions_lower"].astype("float64").to_numpy()
        upper = msgs["impressions_upper"].astype("float64").to_numpy()
        unknown = np.isnan(lower) & ~is_count
        notes["messages_without_impressions"] = int((unknown & (np.asarray(w.sum(axis=1)).ravel() > 0)).sum())
        lower = np.where(is_count | unknown, 1.0, lower)
        upper = np.where(is_count | unknown, 1.0, upper)
        if unknown.any():  # no impressions published: such a message cannot be weighted
            w = sp.diags((~unknown).astype(np.float64)) @ w
    else:
        w = _exposure_weights(store, segs, idx)
        lower = np.ones(len(idx))
        upper = np.ones(len(idx))
    # keep messages that reach a kept segment
    reach = np.asarray((w != 0).sum(axis=1)).ravel() > 0
    w = sp.csr_matrix(w[reach])
    idx = idx[reach]
    lower, upper = lower[reach], upper[reach]
    sponsors = msgs["sponsor"].astype(str).to_numpy()[reach]
    by_task: dict[str, dict[str, tuple[Any, Any, Any]]] = {}
    for mid, task, label, p, topk in store.con.execute(
            "SELECT message_id, task, label, p, topk FROM scores").fetchall():
        by_task.setdefault(task, {})[mid] = (label, p, topk)
    dists: dict[str, list[dict[str, float]]] = {}
    missing = 0
    seen: dict[tuple[Any, Any, Any], dict[str, float]] = {}  # many messages share one score row's values
    for task in ("narrative", "camp"):
        g = by_task.get(task, {})
        out = []
        for mid in idx:
            r = g.get(mid)
            if r is None:
                missing += 1
                out.append({UNASSIGNED: 1.0})
                continue
            dist = seen.get(r)
            if dist is None:
                label, p, topk = r
                dist = seen[r] = label_distribution(
                    None if label is None else str(label), None if p is None or p != p else float(p),
                    None if topk is None else str(topk))
            out.append(dist)
        dists[task] = out
    notes["messages"] = len(idx)
    notes["labels_missing"] = missing
    cols = {t: [*sorted({k for d in dists[t] for k in d if k != UNASSIGNED}), UNASSIGNED] for t in dists}
    n_idx, n_p = _compact(dists["narrative"], cols["narrative"])
    c_idx, c_p = _compact(dists["camp"], cols["camp"])
    sponsor_codes = pd.factorize(sponsors)[0].astype(np.int64)
    # dense weights are faster in the kernel when most cells are filled
    weights: Any = w.toarray() if w.nnz > 0.3 * w.shape[0] * max(w.shape[1], 1) else w
    data = ExposureData(weights=weights, lower=np.asarray(lower, dtype=np.float64),
                        upper=np.asarray(upper, dtype=np.float64), sponsor=sponsor_codes,
                        narr_idx=n_idx, narr_p=n_p, camp_idx=c_idx, camp_p=c_p, segments=segs.ids,
                        narratives=cols["narrative"], camps=cols["camp"], message_ids=list(idx))
    if scheme == "cells":
        segs.labels = [_cell_label(s) for s in segs.ids]
    # impressions floor on the point estimate
    nn, _ = expected_matrices(data)
    imp = nn.sum(axis=1)
    low_imp = imp < impressions_min
    if low_imp.any():
        keep = ~low_imp
        segs.n_suppressed += int(low_imp.sum())
        segs.ids = [s for s, k in zip(segs.ids, keep, strict=True) if k]
        segs.labels = [s for s, k in zip(segs.labels, keep, strict=True) if k]
        segs.size = segs.size[keep]
        data.weights = data.weights[:, keep] if not sp.issparse(data.weights) else sp.csr_matrix(
            data.weights[:, np.flatnonzero(keep)])
        data.segments = segs.ids
    return data, segs, notes


def impression_matrices(data: ExposureData) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"lower"|"point"|"upper": (N_narr, N_camp)}``: impressions at their lower bound (0 as 1), the
    point estimate, and the upper bound (an open top bucket at its lower bound), with soft label counts."""
    lo, hi = bounds(data.lower, data.upper)
    hi_open = np.where(np.isnan(np.asarray(data.upper, dtype=np.float64)), lo, hi)
    return {"lower": expected_matrices(data, impressions=lo), "point": expected_matrices(data),
            "upper": expected_matrices(data, impressions=hi_open)}
