"""Render the report: one self-contained HTML file, its manifest and its exported files.

The HTML goes through a Jinja2 environment with autoescape on (``select_autoescape``): every value put in
the page — ad texts, sponsor names, segment labels — is escaped, because ad texts are written by whoever
bought the ad. Figures are ``data:`` images; the page loads nothing from anywhere (its
Content-Security-Policy says so too: ``default-src 'none'``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from ..present.rows import RowSelection, country_label, select_rows
from ..store import Store
from . import figures as figs
from . import pipeline
from .export import export_files, files_dir, measure_tables
from .findings import Findings, build_findings, findings_numbers, has_evidence, segment_matrix
from .i18n import strings
from .manifest import build_manifest, stage_runs
from .maps import map_heading, report_maps
from .targeting import targeting_section

__all__ = ["FORMULAS", "REFERENCES", "ReportResult", "build_report", "environment", "manifest_path"]

REFERENCES = (
    "Bakshy, E., Messing, S. & Adamic, L. A. (2015). Exposure to ideologically diverse news and opinion on "
    "Facebook. Science, 348(6239), 1130–1132.",
    "Gentzkow, M. & Shapiro, J. M. (2011). Ideological segregation online and offline. The Quarterly "
    "Journal of Economics, 126(4), 1799–1839.",
    "Cinelli, M., De Francisci Morales, G., Galeazzi, A., Quattrociocchi, W. & Starnini, M. (2021). The echo "
    "chamber effect on social media. PNAS, 118(9), e2023301118.",
    "Flaxman, S., Goel, S. & Rao, J. M. (2016). Filter bubbles, echo chambers, and online news consumption. "
    "Public Opinion Quarterly, 80(S1), 298–320.",
    "Theil, H. (1971). Principles of Econometrics (mutual-information segregation index); Stirling, A. "
    "(2007). A general framework for analysing diversity. J. R. Soc. Interface, 4(15), 707–719.",
)

FORMULAS = (
    {"name": "shares", "formula": "p[s,k] = N[s,k] / N[s,·]",
     "note": "N: impressions of segment s for narrative (or camp) k."},
    {"name": "cross-cutting share", "formula": "CC[s] = Σ_{k: c(k) ≠ home(s)} p[s,k]",
     "note": "after Bakshy, Messing & Adamic (2015)."},
    {"name": "isolation index",
     "formula": "S = Σ_k (R_k/R)(R_k/T_k) − Σ_k (L_k/L)(R_k/T_k)",
     "note": "two sides; narratives as outlets (Gentzkow & Shapiro 2011)."},
    {"name": "mutual-information segregation", "formula": "M = H(K) − Σ_g π_g H(K|g)",
     "note": "several blocs (Theil)."},
    {"name": "effective number of narratives", "formula": "exp(−Σ_k p_k ln p_k)", "note": "Shannon."},
    {"name": "Gini–Simpson", "formula": "1 − Σ_k p_k²", "note": ""},
    {"name": "Rao–Stirling", "formula": "Σ_{i≠j} d_ij p_i p_j",
     "note": "d: cosine distance between narrative centroids."},
    {"name": "echo-chamber correlation", "formula": "corr_w(ℓ[s], Σ_k p[s,k] a[k])",
     "note": "after Cinelli et al. (2021)."},
    {"name": "audience slant", "formula": "a[k] = Σ_s N[s,k] ℓ[s] / Σ_s N[s,k]",
     "note": "after Flaxman, Goel & Rao (2016)."},
    {"name": "Jensen–Shannon divergence", "formula": "JS(P‖Q) = ½ KL(P‖M) + ½ KL(Q‖M), M = ½(P+Q)",
     "note": "base 2, in [0, 1]; a segment's diet against the whole, a narrative's audience against all."},
    {"name": "point impressions", "formula": "√(max(lower, 1) · upper); open top → lower",
     "note": "the bootstrap draws inside the published ranges."},
)


# Keys of the measurement that name a run rather than a result (a re-run gets new ones).
VOLATILE = ("run_id", "timings", "warnings", "params")


@dataclass
class ReportResult:
    """What :func:`build_report` wrote, and whether it had to run the measurement."""

    path: Path
    manifest: Path
    files: Path
    ran_measure: bool
    numbers: dict[str, Any]


def manifest_path(out: str | Path) -> Path:
    """``report.html`` → ``report.manifest.json`` (same folder)."""
    out = Path(out)
    return out.with_name(out.stem + ".manifest.json")


def environment() -> jinja2.Environment:
    """The report's Jinja2 environment: templates of this package, autoescape on for HTML."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bubblelens.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2", "html.j2"),
                                            default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )


def _fmt_pct(x: Any, lang: str) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    s = f"{100 * float(x):.1f}"
    return s.replace(".", ",") + " %" if lang == "fr" else s + "%"


def _fmt_num(x: Any, lang: str) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    s = f"{float(x):,.0f}"
    return s.replace(",", "\u202f") if lang == "fr" else s


def _fmt_val(x: Any, lang: str) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    s = f"{float(x):.3f}"
    return s.replace(".", ",") if lang == "fr" else s


def _metric_cell(v: Any, lang: str) -> str:
    if isinstance(v, dict) and "value" in v:
        ci = v.get("ci")
        s = _fmt_val(v["value"], lang)
        return f"{s} [{_fmt_val(ci[0], lang)}, {_fmt_val(ci[1], lang)}]" if ci else s
    return _fmt_val(v, lang) if isinstance(v, int | float) and not isinstance(v, bool) else str(v)


def _rows_short(sel: RowSelection, S: dict[str, str]) -> str:
    """The line under a figure with rows left out (in the exported PNG too); "" when none is."""
    return S["rows_short"].format(shown=sel.n_shown, total=sel.n_total) if sel.n_left_out else ""


def _rows_note(sel: RowSelection, S: dict[str, str], lang: str, *, where: list[str],
               volume: str | None = None, grouped: str = "rows_grouped") -> str:
    """The caption's sentence on the rows of a figure (``present.rows``): how many are shown, by which
    rule, how many are left out and ``where`` every row is; that rows are grouped by country. "" when
    every row is shown and in one country (or none)."""
    out = []
    if sel.n_left_out:
        volume = volume or S["rows_volume_impressions"]
        rule = (S["rows_rule_home"].format(n_home=sel.n_home, home=sel.home, volume=volume) if sel.home
                else S["rows_rule_largest"].format(volume=volume))
        out.append(S["rows_left_out"].format(shown=sel.n_shown, total=sel.n_total, rule=rule,
                                             left=sel.n_left_out, share=_fmt_pct(sel.left_out_share, lang)))
        if where:
            out[-1] = out[-1][:-1] + S["rows_where"].format(where=f" {S['rows_and']} ".join(where))
    if sel.grouped:
        out.append(S[grouped])
    return " ".join(out)


def _limitations(store: Store, measure: dict[str, Any], scheme: str, S: dict[str, str]) -> list[dict[str, Any]]:
    if measure.get("messages_only"):
        return [{"text": S["messages_only"].format(n=measure["messages_only"]["messages"]), "warn": True},
                {"text": S["classifier"], "warn": False}]
    out: list[dict[str, Any]] = [{"text": S["ranges"], "warn": False}]
    lean = pipeline.lean_source(measure)
    if lean:
        out.append({"text": S["lean_source"].format(source=lean), "warn": False})
    if pipeline.is_circular(measure):
        out.append({"text": S["circular"], "warn": True})
    n_sup, k = pipeline.suppressed(store, scheme, measure)
    out.append({"text": S["suppressed"].format(n=n_sup, k=k) if n_sup else S["no_suppressed"], "warn": False})
    segs = measure.get("segments", [])
    total = sum(float(x.get("impressions") or 0.0) for x in segs)
    thin = [str(x["segment"]) for x in segs if not has_evidence(x, total)]
    if thin:  # spill-over regions, unknown places, few ads: in the tables, never a finding
        out.append({"text": S["thin_segments"].format(n=len(thin), names=", ".join(thin[:8])
                                                       + (", …" if len(thin) > 8 else "")), "warn": False})
    n_few = pipeline.few_ads(measure)
    if n_few:
        out.append({"text": S["few_ads"].format(n=n_few), "warn": True})
    out.append({"text": S["classifier"], "warn": False})
    return out


def _file_names(v: Any) -> Any:
    """Run parameters as the report shows them: an absolute path becomes its file name (the manifest keeps
    the full path for ``--verify``; the document that is shared does not tell where it was made)."""
    if isinstance(v, dict):
        return {k: _file_names(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_file_names(x) for x in v]
    if isinstance(v, str) and (v.startswith("/") or v[1:3] in (":\\", ":/")):
        return Path(v).name
    return v


def _rejects(store: Store) -> list[dict[str, Any]]:
    rows = store.con.execute(
        "SELECT source_file, field, reason, count(*) AS n, min(line) AS first_line FROM rejects "
        "GROUP BY ALL ORDER BY n DESC, source_file, field, reason LIMIT 50").fetchall()
    return [{"file": Path(str(f)).name, "field": fld, "reason": reason, "n": int(n),
             "first_line": None if line is None else int(line)} for f, fld, reason, n, line in rows]


def _spend_rows(store: Store, lang: str, *, top: int = 30) -> list[dict[str, Any]]:
    """The largest sponsors of ``sponsor_spend`` per period (``present.spend``), formatted; [] without any."""
    from ..present.spend import spend_by_sponsor

    camp_of = None
    try:
        from ..classify import load_codebook
        from ..classify.camps import SponsorTable

        camp_of = SponsorTable.from_codebook(load_codebook()).lookup
    except Exception:
        pass
    df = spend_by_sponsor(store.con, camp_of=camp_of)
    if df.empty:
        return []
    df = df.sort_values("spend_lower", ascending=False).head(top)
    rows = []
    for r in df.to_dict("records"):
        lo = None if pd.isna(r["spend_lower"]) else float(r["spend_lower"])
        hi = None if pd.isna(r["spend_upper"]) else float(r["spend_upper"])
        top_ = "…" if hi is None else _fmt_num(hi, lang)
        amount = _fmt_num(lo, lang) if hi == lo else f"{_fmt_num(lo, lang)}–{top_}"
        cur = r["currency"] if isinstance(r["currency"], str) else ""
        rows.append({"period": str(r["period"]), "sponsor": str(r["sponsor"]), "camp": str(r["camp"]),
                     "amount": f"{amount} {cur}".strip(), "n_ads": r["n_ads"]})
    return rows


def report_numbers(store: Store, measure: dict[str, Any], findings: Findings) -> dict[str, Any]:
    """Every number the report shows: the measurement, the findings, the inputs' row counts, and the
    model ids and versions of the stages behind them (a re-run with another model version differs)."""
    inputs = store.con.execute(
        "SELECT path, rows_read, rows_kept, rows_rejected FROM sources ORDER BY path").fetchall()
    prov = {Path(str(p)).name: {"rows_read": a, "rows_kept": b, "rows_rejected": c} for p, a, b, c in inputs}
    shown = {k: v for k, v in measure.items() if k not in VOLATILE}
    models = {st: r["models"] for st, r in stage_runs(store, str(measure.get("scheme") or "")).items()
              if st in ("classify", "discover", "segment") and r["models"]}
    return json.loads(json.dumps({"measure": shown, "findings": findings_numbers(findings),
                                  "provenance": prov, "models": models}, default=str))


def build_report(store: Store | str | Path, out: str | Path, *, scheme: str = "cells", title: str | None = None,
                 lang: str = "en", measure: dict[str, Any] | None = None,
                 measure_options: dict[str, Any] | None = None, export: bool = True) -> ReportResult:
    """Write ``out`` (HTML), its manifest and (``export``) its tables and figures; see module docstring.

    The measurement of ``scheme`` is read from the store, or run (and stored) when missing.
    """
    S = strings(lang)
    own = not isinstance(store, Store)
    st = Store.open(store) if not isinstance(store, Store) else store
    try:
        ran = False
        scheme = pipeline.stored_name(scheme)
        if measure is None:
            measure = pipeline.messages_only_measure(st)  # no delivery, no exposure: what was said, by camp
            if measure is not None:
                scheme = pipeline.MESSAGES_SCHEME
            else:
                measure, ran = pipeline.get_measure(st, scheme=scheme, **(measure_options or {}))
        findings = build_findings(st, measure, scheme=scheme, **pipeline.floor_of(measure))
        result = _write(st, Path(out), measure, findings, scheme=scheme, title=title or S["title"],
                        lang=lang, export=export, settings={"measure_options": measure_options or {}})
        result.ran_measure = ran
        return result
    finally:
        if own:
            st.close()


def _write(store: Store, out: Path, measure: dict[str, Any], findings: Findings, *, scheme: str, title: str,
           lang: str, export: bool, settings: dict[str, Any]) -> ReportResult:
    S = strings(lang)
    if measure.get("messages_only"):  # rows are camps, counts are messages (pipeline.messages_only_measure)
        S = {**S, "heatmap_caption": S["heatmap_caption_messages"], "impressions": S["messages"],
             "segment": S.get("camp", "Camp"), "concentrated_sentence": S["concentrated_sentence_messages"],
             "heatmap": S["heatmap_messages"]}
    if (measure.get("params") or {}).get("uncertainty") == "advertisers":  # say what the interval describes
        S = {**S, "cross_cutting_caption": S["cross_cutting_caption_advertisers"]}
    names = pipeline.narrative_labels(lang, store)

    def nlabel(k: Any) -> str:
        return names.get(str(k), str(k)) if k is not None else "—"

    pct = lambda x: _fmt_pct(x, lang)  # noqa: E731
    num = lambda x: _fmt_num(x, lang)  # noqa: E731

    circular = pipeline.is_circular(measure)
    iso = []
    for f in findings.isolated:
        ci = f.get("ci") or [f["value"], f["value"]]
        sentence = S["isolated_sentence"].format(segment=f["segment"], value=pct(f["value"]), low=pct(ci[0]),
                                                 high=pct(ci[1]), n_ads=num(f.get("n_ads") or 0),
                                                 n_sponsors=num(f.get("n_sponsors") or 0))
        iso.append({**f, "sentence": sentence + (" " + S["circular_short"] if circular else "")})
    conc = []
    for f in findings.concentrated:
        conc.append({**f, "sentence": S["concentrated_sentence"].format(
            narrative=f"{nlabel(f['narrative'])} ({f['narrative']})", top_share=pct(f["top_share"]),
            top_segments=", ".join(f"“{t}”" for t in f["top_segments"]), base_share=pct(f["base_share"]),
            js=_fmt_val(f["js"], lang))})
    disc = [{**d, "sentence": S["discovered_sentence"].format(
        narrative=d["narrative"], size=d["size"], keywords=", ".join(map(str, d["keywords"])))}
        for d in findings.discovered]
    cards = []
    for c in findings.cards:
        t = c["name"] if c["kind"] == "segment" else f"{nlabel(c['name'])} ({c['name']})"
        cards.append({"kind": c["kind"], "title": t,
                      "ads": [{**a, "narrative_label": nlabel(a.get("narrative"))} for a in c["ads"]]})

    # figures: at most present.rows.MAX_ROWS rows each, grouped by country; the caption says what is left out
    labels, imp, cols, P = segment_matrix(measure)
    segs = measure.get("segments", [])
    place = {} if measure.get("messages_only") else pipeline.segment_countries(store, scheme)

    def country(label: str, sid: Any = None) -> str | None:
        return place.get(str(sid)) if sid is not None and str(sid) in place else place.get(label)

    fig_bytes: dict[str, tuple[bytes, bytes]] = {}
    files = files_dir(out).name + "/" if export else None
    notes = {"heatmap": "", "cross_cutting": "", "funnel": ""}
    if labels and cols:
        sel = select_rows(imp, [country(str(s["segment"]), s.get("segment_id")) for s in segs])
        table = [] if measure.get("messages_only") else [S["rows_table"].format(table=S["segment_metrics"])]
        notes["heatmap"] = _rows_note(sel, S, lang, where=table + ([S["rows_file"].format(
            path=files + "narrative_share.csv")] if files else []), grouped="rows_grouped_heatmap")
        fig = figs.heatmap_figure([labels[i] for i in sel.rows], [nlabel(k) for k in cols], P[list(sel.rows)],
                                  groups=sel.countries, note=_rows_short(sel, S))
        fig_bytes["heatmap"] = (figs.to_svg(fig), figs.to_png(fig))
    with_cc = [s for s in segs if isinstance(s.get("cross_cutting"), dict)
               and s["cross_cutting"].get("value") is not None]
    if with_cc:
        sel = select_rows([float(s.get("impressions") or 0.0) for s in with_cc],
                          [country(str(s["segment"]), s.get("segment_id")) for s in with_cc])
        notes["cross_cutting"] = _rows_note(sel, S, lang, where=[S["rows_below"]] + ([S["rows_file"].format(
            path=files + "segments.csv")] if files else []))
        cc_rows = [{"segment": country_label(str(s["segment"]), c), "value": s["cross_cutting"]["value"],
                    "ci": s["cross_cutting"].get("ci")}
                   for s, c in zip([with_cc[i] for i in sel.rows], sel.countries, strict=True)]
        fig = figs.cross_cutting_figure(cc_rows, xlabel=S["cross_cutting"], note=_rows_short(sel, S))
        fig_bytes["cross_cutting"] = (figs.to_svg(fig), figs.to_png(fig))
    funnel = pipeline.funnel_rows(measure)
    if funnel:  # rows: the most delivered ads first
        sel = select_rows([float(r.get("delivered") or 0.0) for r in funnel],
                          [country(str(r["segment"])) for r in funnel])
        notes["funnel"] = _rows_note(sel, S, lang, where=[S["rows_below"]], volume=S["rows_volume_ads"])
        fig = figs.funnel_figure([{**funnel[i], "segment": country_label(str(funnel[i]["segment"]), c)}
                                  for i, c in zip(sel.rows, sel.countries, strict=True)], note=_rows_short(sel, S))
        fig_bytes["funnel"] = (figs.to_svg(fig), figs.to_png(fig))
    maps = [{**m, "key": f"map_{i + 1}"} for i, m in enumerate(report_maps(store, lang))]  # one per region scheme
    fig_bytes.update({m["key"]: (m.pop("svg"), m.pop("png")) for m in maps})
    figures = {k: figs.data_uri(v[0], "image/svg+xml") for k, v in fig_bytes.items()}
    figures.setdefault("heatmap", "")
    figures.setdefault("cross_cutting", "")
    figures.setdefault("funnel", "")

    metric_names = sorted({k for s in segs for k, v in s.items() if isinstance(v, dict) and "value" in v})
    segment_rows = [{"segment": s["segment"], "impressions": s.get("impressions"),
                     "metrics": {m: _metric_cell(s.get(m), lang) if m in s else "—" for m in metric_names}}
                    for s in segs]
    global_rows = [{"name": k, "value": _fmt_val(v["value"], lang),
                    "ci": (f"[{_fmt_val(v['ci'][0], lang)}, {_fmt_val(v['ci'][1], lang)}]" if v.get("ci") else "")}
                   for k, v in (measure.get("global") or {}).items() if isinstance(v, dict) and "value" in v]

    numbers = report_numbers(store, measure, findings)
    manifest = build_manifest(store, report=out, numbers=numbers, scheme=scheme, lang=lang, title=title,
                              settings=settings)
    stages = {stg: {"run_id": r["run_id"], "models_json": json.dumps(r["models"], sort_keys=True),
                    "params_json": json.dumps(_file_names(r["params"]), sort_keys=True, default=str)}
              for stg, r in manifest["stages"].items()}
    mpath = manifest_path(out)
    targeting = targeting_section(store)
    spend = _spend_rows(store, lang)
    sections = [(sid, S[key]) for sid, key in (
        ("findings", "findings"), ("heatmap", "heatmap"), ("cross-cutting", "cross_cutting"),
        ("funnel", "funnel"), *([("targeting", "targeting")] if targeting else []), ("cards", "cards"),
        *((("spend", "spend"),) if spend else ()), ("methods", "methods"), ("provenance", "provenance"),
        ("limitations", "limitations"))]
    if maps:
        sections.insert(2, ("maps", map_heading(lang)))
    if measure.get("messages_only"):  # no exposure: the sections about who received what are left out
        sections = [(sid, t) for sid, t in sections if sid not in ("cross-cutting", "funnel", "maps")]
    try:
        bl_version = version("bubblelens")
    except PackageNotFoundError:
        bl_version = "dev"
    html = environment().get_template("report.html.j2").render(
        lang=lang, S=S, title=title, scheme=scheme, bubblelens_version=bl_version,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), sections=sections,
        findings={"isolated": iso, "concentrated": conc, "discovered": disc}, figures=figures, metric_names=metric_names,
        maps=maps, maps_heading=map_heading(lang), messages_only=bool(measure.get("messages_only")),
        segment_rows=segment_rows, global_rows=global_rows, cards=cards, formulas=FORMULAS,
        references=REFERENCES, stages=stages,
        packages_json=json.dumps(manifest["packages"], sort_keys=True),
        inputs=[{**i, "name": Path(str(i["path"])).name} for i in manifest["inputs"]],
        rejects=_rejects(store), manifest_sentence=S["manifest_sentence"].format(manifest=mpath.name),
        limitations=_limitations(store, measure, scheme, S), pct=pct, num=num, funnel=funnel,
        notes=notes, ratio=lambda a, b: pct(float(a) / float(b)) if a is not None and b else "—", targeting=targeting,
        span=lambda b: pct(b[0]) if abs(b[0] - b[1]) < 5e-4 else f"{pct(b[0])}–{pct(b[1])}", spend=spend,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    mpath.write_text(json.dumps(manifest, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    if export:
        tables = measure_tables(measure)
        tables["findings"] = pd.DataFrame(
            [{"kind": "isolated_segment", "name": f["segment"], "value": f["value"],
              "low": (f.get("ci") or [None, None])[0], "high": (f.get("ci") or [None, None])[1]}
             for f in findings.isolated]
            + [{"kind": "concentrated_narrative", "name": f["narrative"], "value": f["js"],
                "low": None, "high": None} for f in findings.concentrated])
        export_files(out, tables=tables, figures=fig_bytes)
    return ReportResult(path=out, manifest=mpath, files=files_dir(out), ran_measure=False, numbers=numbers)
