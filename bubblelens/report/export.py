"""Tables (CSV and Parquet) and figures (PNG and SVG) of a report, for use in an article.

Everything goes to ``<out>_files/`` beside the report (``report.html`` → ``report_files/``):
``segments.{csv,parquet}`` (one row per segment: impressions, every metric with its interval),
``narrative_share.*`` and ``camp_share.*`` (segment × id, long form), ``global.*`` (segregation
indices), ``findings.*`` and one ``<figure>.png`` / ``<figure>.svg`` per figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..present.safe import csv_bytes

__all__ = ["export_files", "files_dir", "measure_tables"]


def files_dir(out: str | Path) -> Path:
    """``report.html`` → ``report_files`` (same folder)."""
    out = Path(out)
    return out.with_name(out.stem + "_files")


def _is_metric(v: Any) -> bool:
    return isinstance(v, dict) and "value" in v


def measure_tables(measure: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The measurement as flat tables (see module docstring)."""
    seg_rows, nar_rows, camp_rows = [], [], []
    for s in measure.get("segments", []):
        row: dict[str, Any] = {"segment": s["segment"], "impressions": s.get("impressions")}
        for k, v in s.items():
            if _is_metric(v):
                ci = v.get("ci") or [None, None]
                row[k] = v["value"]
                row[f"{k}_low"], row[f"{k}_high"] = ci[0], ci[1]
            elif isinstance(v, str | int | float | bool) and k not in row:
                row[k] = v
        seg_rows.append(row)
        for k, p in (s.get("narrative_share") or {}).items():
            nar_rows.append({"segment": s["segment"], "narrative": k, "share": p})
        for k, p in (s.get("camp_share") or {}).items():
            camp_rows.append({"segment": s["segment"], "camp": k, "share": p})
    glob = [{"metric": k, "value": v["value"], "low": (v.get("ci") or [None, None])[0],
             "high": (v.get("ci") or [None, None])[1]}
            for k, v in (measure.get("global") or {}).items() if _is_metric(v)]
    return {"segments": pd.DataFrame(seg_rows), "narrative_share": pd.DataFrame(nar_rows),
            "camp_share": pd.DataFrame(camp_rows), "global": pd.DataFrame(glob)}


def export_files(out: str | Path, *, tables: dict[str, pd.DataFrame],
                 figures: dict[str, tuple[bytes, bytes]]) -> list[Path]:
    """Write each table as CSV and Parquet and each figure ``name → (svg, png)``; return the paths."""
    d = files_dir(out)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables.items():
        csv, pq = d / f"{name}.csv", d / f"{name}.parquet"
        csv.write_bytes(csv_bytes(df))  # formula cells neutralised (present/safe.py)
        df.to_parquet(pq, index=False)
        written += [csv, pq]
    for name, (svg, png) in figures.items():
        (d / f"{name}.svg").write_bytes(svg)
        (d / f"{name}.png").write_bytes(png)
        written += [d / f"{name}.svg", d / f"{name}.png"]
    return written
