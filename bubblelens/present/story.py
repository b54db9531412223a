"""The app's front page story: the report's findings, as sentences, with the ads behind each.

Uses :mod:`bubblelens.report.findings` as is (same functions, same defaults, same evidence thresholds
:data:`~bubblelens.report.findings.EVIDENCE`) on the stored measurement of a scheme, so the Overview says
what the report says. Each finding carries what opens its ads: the segment (an isolated segment) or the
narrative (a concentrated narrative).
"""

from __future__ import annotations

import inspect
from typing import Any

from ..report.findings import EVIDENCE, build_findings, concentrated_narratives, isolated_segments
from ..report.i18n import strings
from ..report.pipeline import is_circular, load_measure, narrative_labels
from ..store import Store
from .queries import Con, has_table

__all__ = ["front_findings", "measured_schemes"]

_DEFAULTS = {k: p.default for k, p in inspect.signature(build_findings).parameters.items()
             if p.default is not inspect.Parameter.empty}


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * float(x):.1f} %"


def _num(x: Any) -> str:
    return "—" if x is None else f"{float(x):,.0f}"


def measured_schemes(con: Con) -> list[str]:
    """Schemes with a stored measurement, the last measured first."""
    if not has_table(con, "metrics_segments"):
        return []
    return [r[0] for r in con.execute(
        "SELECT scheme FROM metrics_segments GROUP BY scheme ORDER BY max(run_id) DESC, scheme").fetchall()]


def front_findings(con: Con, scheme: str, lang: str = "en") -> dict[str, Any]:
    """``{"scheme", "evidence", "circular", "isolated": [...], "concentrated": [...]}``; each finding has
    ``sentence`` (the report's wording, with its interval and its ads and sponsors), ``n_ads``,
    ``n_sponsors`` and what opens its ads: ``segment_id`` or ``narrative``."""
    out: dict[str, Any] = {"scheme": scheme, "evidence": dict(EVIDENCE), "circular": False, "isolated": [],
                           "concentrated": []}
    measure = load_measure(Store("", con, True), scheme)
    if measure is None:
        return out
    S = strings(lang)
    names = narrative_labels(lang)
    out["circular"] = circular = is_circular(measure)
    ids = {str(s["segment"]): s.get("segment_id") for s in measure.get("segments", [])}
    for f in isolated_segments(measure, n=_DEFAULTS["n_segments"]):
        ci = f.get("ci") or [f["value"], f["value"]]
        sentence = S["isolated_sentence"].format(
            segment=f["segment"], value=_pct(f["value"]), low=_pct(ci[0]), high=_pct(ci[1]),
            n_ads=_num(f.get("n_ads") or 0), n_sponsors=_num(f.get("n_sponsors") or 0))
        out["isolated"].append({**f, "segment_id": ids.get(f["segment"]),
                                "sentence": sentence + (" " + S["circular_short"] if circular else "")})
    for f in concentrated_narratives(measure, n=_DEFAULTS["n_narratives"], top_k=_DEFAULTS["top_k"]):
        n_ads, n_sp = con.execute(
            "SELECT count(DISTINCT m.message_id), count(DISTINCT m.sponsor) FROM scores s JOIN messages m "
            "USING (message_id) WHERE s.task = 'narrative' AND s.label = ?", [f["narrative"]]).fetchone() \
            or (0, 0)
        sentence = S["concentrated_sentence"].format(
            narrative=f"{names.get(str(f['narrative']), f['narrative'])} ({f['narrative']})",
            top_share=_pct(f["top_share"]), top_segments=", ".join(f"“{t}”" for t in f["top_segments"]),
            base_share=_pct(f["base_share"]), js=f"{f['js']:.3f}")
        tail = (f"{_num(n_ads)} ads from {_num(n_sp)} sponsors have it as their narrative." if n_ads else
                "No ad has it as its top narrative: its share comes from the label probabilities.")
        out["concentrated"].append({**f, "n_ads": int(n_ads), "n_sponsors": int(n_sp),
                                    "sentence": f"{sentence} {tail}"})
    return out
