"""The findings that open the report: who is most isolated, which narratives are most concentrated,
who pays for them, and which ads carry them.

Everything here reads the measurement (the JSON of ``bubblelens measure``, issue 5) and, for sponsors and
ads, the store. Definitions:

- **Most isolated segments**: the lowest cross-cutting share ``CC[s]`` (Bakshy, Messing & Adamic 2015),
  ties broken by the upper end of its 95% interval, so a segment is listed only on its own numbers.
- **Most concentrated narratives**: for a narrative ``k``, its audience ``q_k(s) = N[s,k] / N[·,k]`` is
  compared with the audience of everything, ``w(s) = N[s,·] / N``, by the Jensen–Shannon divergence
  ``JS(q_k ‖ w)`` (base 2, in [0, 1]): 0 when the narrative reaches segments in proportion to their size,
  1 when it goes only where nothing else goes. The share of ``k`` in its ``top_k`` segments, against
  those segments' share of all impressions, says the same thing in words.
- **Sponsors behind them** and **most-delivered ads**: impressions of each message in each segment (the
  point estimate of the measurement: geometric mean of the published bounds, see
  :func:`message_segment_impressions`), summed by sponsor, or ranked by ad.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial.distance import jensenshannon

from ..store import Store

__all__ = [
    "EVIDENCE",
    "Findings",
    "build_findings",
    "concentrated_narratives",
    "discovered_narratives",
    "findings_numbers",
    "has_evidence",
    "isolated_segments",
    "message_segment_impressions",
    "segment_matrix",
    "split_scheme",
]


@dataclass
class Findings:
    """What the report puts first. Lists of plain dicts, ready for the template and the manifest."""

    isolated: list[dict[str, Any]] = field(default_factory=list)
    concentrated: list[dict[str, Any]] = field(default_factory=list)
    sponsors: list[dict[str, Any]] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    discovered: list[dict[str, Any]] = field(default_factory=list)


def segment_matrix(measure: dict[str, Any], key: str = "narrative_share") -> tuple[
        list[str], np.ndarray, list[str], np.ndarray]:
    """Segments' labels, impressions, the column ids and the share matrix ``p[s, k]`` of a measurement.

    ``key`` is ``narrative_share`` or ``camp_share``; columns are sorted ids, missing shares are 0.
    """
    segs = measure.get("segments", [])
    labels = [str(s["segment"]) for s in segs]
    imp = np.array([float(s.get("impressions") or 0.0) for s in segs], dtype=float)
    cols = sorted({k for s in segs for k in (s.get(key) or {})})
    P = np.array([[float((s.get(key) or {}).get(k) or 0.0) for k in cols] for s in segs], dtype=float)
    return labels, imp, cols, P.reshape(len(segs), len(cols))


def _metric(seg: dict[str, Any], name: str) -> tuple[float | None, list[float] | None]:
    m = seg.get(name)
    if isinstance(m, dict):
        v = m.get("value")
        ci = m.get("ci")
        if ci is not None and any(c is None for c in ci):
            ci = None
        return (None if v is None else float(v)), (None if ci is None else [float(c) for c in ci])
    if isinstance(m, int | float):
        return float(m), None
    return None, None


#: a segment is a headline only with this much behind it (chosen on the German 2024 pull, where
#: spill-over regions abroad had ≤ 146 ads, ≤ 13 sponsors and ≤ 0.01 % of impressions, and the smallest
#: Land, Bremen, 1,806 ads, 43 sponsors and 0.54 %)
EVIDENCE = {"min_ads": 20, "min_sponsors": 3, "min_impression_share": 0.005}
_NO_PLACE = {"unknown", "other", "inconnu", "unbekannt", ""}


def has_evidence(seg: dict[str, Any], total_impressions: float, evidence: dict[str, float] | None = None) -> bool:
    """Enough behind a segment for a finding: ads, sponsors, a share of all impressions, a known label.

    >>> has_evidence({"segment": "Bayern", "n_ads": 2682, "n_sponsors": 48, "impressions": 11.0}, 100.0)
    True
    >>> has_evidence({"segment": "California", "n_ads": 1, "n_sponsors": 1, "impressions": 0.01}, 100.0)
    False
    """
    e = {**EVIDENCE, **(evidence or {})}
    n_ads = s_ads if (s_ads := seg.get("n_ads")) is not None else e["min_ads"]
    n_sp = s_sp if (s_sp := seg.get("n_sponsors")) is not None else e["min_sponsors"]
    share = float(seg.get("impressions") or 0.0) / total_impressions if total_impressions > 0 else 0.0
    return (n_ads >= e["min_ads"] and n_sp >= e["min_sponsors"] and share >= e["min_impression_share"]
            and not seg.get("few_ads", False) and str(seg.get("segment", "")).strip().lower() not in _NO_PLACE)


def isolated_segments(measure: dict[str, Any], *, n: int = 3, metric: str = "cross_cutting",
                      evidence: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The ``n`` segments with the lowest cross-cutting share (ties: lowest upper bound of the interval),
    among those with enough evidence (:data:`EVIDENCE`, :func:`has_evidence`): for the cross-cutting share,
    enough ads and sponsors *whose camp is known* (``n_camp_ads``, ``n_camp_sponsors``)."""
    rows = []
    segs = measure.get("segments", [])
    total = sum(float(s.get("impressions") or 0.0) for s in segs)
    e = {**EVIDENCE, **(evidence or {})}
    for s in segs:
        v, ci = _metric(s, metric)
        if v is None or not np.isfinite(v) or not has_evidence(s, total, evidence):
            continue
        # a camp share rests on the ads whose camp is known, not on every ad delivered there
        if metric == "cross_cutting" and (
                (s.get("n_camp_ads") is not None and s["n_camp_ads"] < e["min_ads"])
                or (s.get("n_camp_sponsors") is not None and s["n_camp_sponsors"] < e["min_sponsors"])):
            continue
        rows.append({"segment": str(s["segment"]), "value": v, "ci": ci,
                     "impressions": float(s.get("impressions") or 0.0), "home": s.get("home"),
                     "n_ads": s.get("n_ads"), "n_sponsors": s.get("n_sponsors")})
    rows.sort(key=lambda r: (r["value"], r["ci"][1] if r["ci"] else r["value"], r["segment"]))
    return rows[:n]


def concentrated_narratives(measure: dict[str, Any], *, n: int = 3, top_k: int = 2,
                            exclude: tuple[str, ...] = ("unassigned",),
                            evidence: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The ``n`` narratives whose audience differs most from the whole: highest ``JS(q_k ‖ w)``, among
    those with enough ads and sponsors behind them (``global.narrative_support`` of the measurement).

    >>> m = {"segments": [
    ...     {"segment": "a", "impressions": 100, "narrative_share": {"x": 0.5, "y": 0.5}},
    ...     {"segment": "b", "impressions": 100, "narrative_share": {"x": 0.0, "y": 1.0}}]}
    >>> [r["narrative"] for r in concentrated_narratives(m, top_k=1)]
    ['x', 'y']
    >>> concentrated_narratives(m, top_k=1)[0]["top_share"], concentrated_narratives(m, top_k=1)[0]["base_share"]
    (1.0, 0.5)
    """
    labels, imp, cols, P = segment_matrix(measure)
    if not labels or imp.sum() <= 0:
        return []
    N = imp[:, None] * P
    w = imp / imp.sum()
    rows: list[dict[str, Any]] = []
    for j, k in enumerate(cols):
        if k in exclude or N[:, j].sum() <= 0:
            continue
        q = N[:, j] / N[:, j].sum()
        js = float(jensenshannon(q, w, base=2) ** 2)
        top = np.argsort(-q, kind="stable")[:top_k]
        rows.append({"narrative": k, "js": js, "impressions": float(N[:, j].sum()),
                     "top_segments": [labels[i] for i in top],
                     "top_share": float(q[top].sum()), "base_share": float(w[top].sum())})
    # a narrative is a headline only with enough ads and sponsors behind it (the segments' thresholds)
    support = ((measure.get("global") or {}).get("narrative_support") or {}).get("by_narrative")
    if support is not None:
        e = {**EVIDENCE, **(evidence or {})}
        rows = [{**r, **support[r["narrative"]]} for r in rows if r["narrative"] in support
                and support[r["narrative"]]["n_ads"] >= e["min_ads"]
                and support[r["narrative"]]["n_sponsors"] >= e["min_sponsors"]]
    rows.sort(key=lambda r: (-float(r["js"]), str(r["narrative"])))
    return rows[:n]


# -- the store side: impressions of each message in each segment ---------------------------------------

def split_scheme(scheme: str) -> tuple[str, str | None]:
    """``cells:region`` → (``cells``, ``region``); ``declared:declared_lean`` → (``declared``,
    ``declared_lean``); ``interests`` → (``interests``, None): the measurement's ``scheme`` and ``by``."""
    base, _, by = scheme.partition(":")
    return base, (by or None)


def message_segment_impressions(store: Store, scheme: str, *, k_min: int = 10,
                                impressions_min: float = 100.0) -> pd.DataFrame:
    """Columns ``message_id, segment_id, label, impressions``: the point impressions of each message in
    each segment of ``scheme`` that the measurement keeps (same privacy floor).

    Read through :func:`bubblelens.measure.matrices.load_exposure_data`, so the report ranks ads with the
    very weights the metrics use: for cells, the delivered share × the message's point impressions
    ``√(max(L, 1) · U)`` (open top bucket: ``L``); for audience schemes, the exposure counts of the
    segment's members.
    """
    from ..measure.matrices import load_exposure_data
    from ..measure.ranges import point_impressions

    base, by = split_scheme(scheme)
    data, segs, _notes = load_exposure_data(store, scheme=base, by=by, k_min=k_min,
                                            impressions_min=impressions_min)
    w = sp.coo_matrix(data.weights)
    imp = point_impressions(data.lower, data.upper)
    labels = dict(zip(segs.ids, segs.labels, strict=True))
    seg_ids = np.asarray(data.segments, dtype=object)
    mids = np.asarray(data.message_ids, dtype=object)
    out = pd.DataFrame({"message_id": mids[w.row], "segment_id": seg_ids[w.col],
                        "impressions": w.data * imp[w.row]})
    out["label"] = out["segment_id"].map(labels)
    out = out[out["impressions"] > 0]
    return out[["message_id", "segment_id", "label", "impressions"]].reset_index(drop=True)


def _messages_frame(store: Store) -> pd.DataFrame:
    df = store.con.execute(
        "SELECT m.message_id, m.text, m.sponsor, m.date_start, m.source_format, "
        "n.label AS narrative, n.p AS narrative_p, c.label AS camp "
        "FROM messages m "
        "LEFT JOIN scores n ON n.message_id = m.message_id AND n.task = 'narrative' "
        "LEFT JOIN scores c ON c.message_id = m.message_id AND c.task = 'camp'").df()
    return df


def _top_ads(frame: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    g = pd.DataFrame(frame.groupby("message_id", as_index=False)["impressions"].sum())
    g = g.sort_values(["impressions", "message_id"], ascending=[False, True]).head(n)
    return [{"message_id": str(m), "impressions": float(v)}
            for m, v in zip(g["message_id"], g["impressions"], strict=True)]


def discovered_narratives(store: Store, *, n: int = 5, n_keywords: int = 6,
                          n_representatives: int = 2) -> list[dict[str, Any]]:
    """Narratives found beyond the codebook (table ``discovered``), largest first: keywords, size and
    representative messages."""
    rows = store.con.execute(
        "SELECT narrative_id, keywords, representatives, size FROM discovered "
        "ORDER BY size DESC, narrative_id LIMIT ?", [n]).fetchall()
    out = []
    for nid, kw, reps, size in rows:
        keywords = json.loads(kw) if kw else []
        representatives = json.loads(reps) if reps else []
        out.append({"narrative": str(nid), "size": int(size or 0), "keywords": list(keywords)[:n_keywords],
                    "representatives": [r if isinstance(r, dict) else {"message_id": None, "text": str(r)}
                                        for r in representatives][:n_representatives]})
    return out


def _names_match(rule: int, name: str, sid: str, lab: str) -> bool:
    if rule == 0:
        return lab == name
    if rule == 1:
        return sid == name
    return lab.split("=", 1)[-1] == name or lab.replace("|", ", ") == name


def _segment_ids(measure: dict[str, Any], msi: pd.DataFrame) -> dict[str, list[str]]:
    """Measurement segment name → stored segment ids: by ``segment_id`` when the measurement gives it,
    else by label, else by the value of a cell label (``region=Bretagne`` is shown as ``Bretagne``)."""
    pairs = msi[["segment_id", "label"]].drop_duplicates()
    by_id = set(pairs["segment_id"].astype(str))
    out: dict[str, list[str]] = {}
    for s in measure.get("segments", []):
        name = str(s["segment"])
        if s.get("segment_id") is not None and str(s["segment_id"]) in by_id:
            out[name] = [str(s["segment_id"])]
            continue
        rows = [(str(sid), str(lab)) for sid, lab in pairs.itertuples(index=False)]
        for rule in range(3):
            ids = [sid for sid, lab in rows if _names_match(rule, name, sid, lab)]
            if ids:
                out[name] = ids
                break
    return out


def build_findings(store: Store, measure: dict[str, Any], *, scheme: str, n_segments: int = 5,
                   n_narratives: int = 3, n_ads: int = 3, n_sponsors: int = 3, top_k: int = 2,
                   k_min: int = 10, impressions_min: float = 100.0) -> Findings:
    """Findings of one measurement: isolated segments, concentrated narratives, their sponsors and ads."""
    f = Findings(isolated=isolated_segments(measure, n=n_segments),
                 concentrated=concentrated_narratives(measure, n=n_narratives, top_k=top_k),
                 discovered=discovered_narratives(store))
    if measure.get("messages_only"):  # rows are camps and each message counts once (no delivery known)
        msi = store.con.execute("SELECT message_id, label AS segment_id, label, 1.0 AS impressions FROM scores "
                                "WHERE task = 'camp'").df()
    else:
        msi = message_segment_impressions(store, scheme, k_min=k_min, impressions_min=impressions_min)
    msgs = _messages_frame(store).set_index("message_id")
    # no early return when no ad lies behind the measurement (a panel without its messages' delivery, a
    # segment with no ad rows): every finding still gets its (empty) sponsors and card, and the report
    # says what it cannot show
    msi = msi.join(msgs[["sponsor", "narrative"]], on="message_id")
    msi["sponsor"] = msi["sponsor"].fillna("—")
    def describe(ads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for a in ads:
            m = msgs.loc[a["message_id"]] if a["message_id"] in msgs.index else None
            out.append({"message_id": a["message_id"], "impressions": float(a["impressions"]),
                        "text": None if m is None else m["text"],
                        "sponsor": None if m is None else m["sponsor"],
                        "narrative": None if m is None else m["narrative"],
                        "camp": None if m is None else m["camp"]})
        return out

    def sponsors(frame: pd.DataFrame) -> list[dict[str, Any]]:
        g = pd.DataFrame(frame.groupby("sponsor", as_index=False)["impressions"].sum())
        total = float(g["impressions"].sum()) or 1.0
        g = g.sort_values(["impressions", "sponsor"], ascending=[False, True]).head(n_sponsors)
        return [{"sponsor": str(sp_), "impressions": float(v), "share": float(v) / total}
                for sp_, v in zip(g["sponsor"], g["impressions"], strict=True)]

    segment_ids = _segment_ids(measure, msi)
    for iso in f.isolated:
        sub = msi[msi["segment_id"].isin(segment_ids.get(iso["segment"], []))]
        sp = sponsors(sub)
        iso["sponsors"] = sp
        f.sponsors.append({"kind": "segment", "name": iso["segment"], "sponsors": sp})
        f.cards.append({"kind": "segment", "name": iso["segment"], "ads": describe(_top_ads(sub, n_ads))})
    for con in f.concentrated:
        sub = msi[msi["narrative"] == con["narrative"]]
        sp = sponsors(sub)
        con["sponsors"] = sp
        f.sponsors.append({"kind": "narrative", "name": con["narrative"], "sponsors": sp})
        f.cards.append({"kind": "narrative", "name": con["narrative"], "ads": describe(_top_ads(sub, n_ads))})
    return f


def findings_numbers(f: Findings) -> dict[str, Any]:
    """The findings as JSON-ready numbers (for the manifest)."""
    return json.loads(json.dumps({"isolated": f.isolated, "concentrated": f.concentrated,
                                  "sponsors": f.sponsors,
                                  "discovered": [{"narrative": d["narrative"], "size": d["size"],
                                                  "keywords": d["keywords"]} for d in f.discovered],
                                  "cards": [{"kind": c["kind"], "name": c["name"],
                                             "ads": [{"message_id": a["message_id"],
                                                      "impressions": a["impressions"]} for a in c["ads"]]}
                                            for c in f.cards]}, default=str))
