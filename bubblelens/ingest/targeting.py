"""Reader of per-advertiser targeting tables: Meta Ad Library's "Audience" tab as Who Targets Me publishes it.

Two tables, CSV or Parquet, given together (``bubblelens ingest PAGES CRITERIA --format targeting``), or
one long table that repeats the page columns on every criterion row (the shape of the published
``ep2024`` files):

- **pages**: ``page_id, page_name, party, ds, total_num_ads, total_spend_formatted, main_currency,
  euro_spend, …`` (one row per page and window; ``ds`` is the window's last day);
- **criteria**: ``page_id, type, value, num_ads, total_spend_pct, is_exclusion, location_type,
  detailed_type, custom_audience_type, num_obfuscated`` (one row per targeting criterion of a page:
  ``total_spend_pct`` is the share, 0–1, of the page's spend on ads that used it).

Every criterion row is kept (``targeting_criteria``, with its file and line), the window ``ds`` too; a
page's ``party`` is its camp until a sponsor table says otherwise (``bubblelens targeting --sponsors``).
A row that cannot be read goes to ``rejects`` naming file, line and field. These are pages of
advertisers: nothing personal is read or stored. Re-ingesting a page's window replaces its rows.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from ..errors import FormatError, IngestError
from ..store import Store
from .text import read_file, sniff_delimiter

__all__ = ["CRITERIA_COLUMNS", "PAGE_COLUMNS", "TARGETING", "TargetingFile", "ingest_targeting",
           "is_targeting_file", "is_targeting_header", "parse_spend", "read_targeting", "targeting_role",
           "write_targeting"]

TARGETING = "targeting"
#: columns that make a table a criteria table (all needed)
CRITERIA_COLUMNS = frozenset({"page_id", "type", "value", "total_spend_pct"})
#: columns that make a table a pages table (page_id and one of the spend columns)
PAGE_COLUMNS = frozenset({"page_id", "total_spend_formatted", "euro_spend", "total_num_ads"})
KNOWN_TYPES = ("age", "gender", "location", "language", "detailed", "custom_audience", "lookalike_audience")
_MISSING = {"", "na", "nan", "none", "null", "<na>"}
_PAGE_FIELDS = ("page_name", "party", "ds", "cntry", "partyfacts_id", "left_right", "total_num_ads",
                "total_spend_formatted", "main_currency", "euro_spend", "tf")


def targeting_role(columns: Iterable[str]) -> str | None:
    """``combined`` (criteria with page columns), ``criteria``, ``pages`` or None, by the column names."""
    cols = {str(c).strip().lower() for c in columns}
    crit = cols >= CRITERIA_COLUMNS
    page = "page_id" in cols and bool(cols & (PAGE_COLUMNS - {"page_id"}))
    if crit and page:
        return "combined"
    if crit:
        return "criteria"
    if page and "type" not in cols:
        return "pages"
    return None


def is_targeting_header(columns: Iterable[str]) -> bool:
    """True when a header is a targeting table's (criteria, or pages with spend and party)."""
    cols = {str(c).strip().lower() for c in columns}
    role = targeting_role(cols)
    return role in ("combined", "criteria") or (role == "pages" and "party" in cols)


def _header(path: Path) -> list[str] | None:
    """The column names of a CSV or Parquet file, reading only its head (None when unreadable)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(65536)
    except OSError:
        return None
    if head[:4] == b"PAR1":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception:
            return None
    text = head.decode("utf-8-sig", errors="replace")
    if text.lstrip()[:1] in ("{", "["):
        return None
    first = text.split("\n", 1)[0]
    try:
        return next(csv.reader([first], delimiter=sniff_delimiter(text)))
    except (csv.Error, StopIteration):
        return None


def is_targeting_file(path: str | Path) -> bool:
    """True when the file's header is a targeting table's (read from its first 64 KiB or Parquet schema)."""
    h = _header(Path(path))
    return h is not None and is_targeting_header(h)


# -- values --------------------------------------------------------------------------------------
class _Bad(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def _s(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    s = str(v).strip()
    return None if s.lower() in _MISSING else s


def _id(v: Any, name: str) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = _s(v)
    if s is None:
        raise _Bad(name, "missing")
    if re.fullmatch(r"\d+\.0+", s):
        s = s.split(".")[0]
    return s


def _float(v: Any, name: str) -> float | None:
    s = _s(v)
    if s is None:
        return None
    try:
        x = float(s)
    except ValueError:
        raise _Bad(name, f"not a number: {s!r}") from None
    if math.isnan(x) or math.isinf(x):
        raise _Bad(name, f"not a finite number: {s!r}")
    return x


def _int(v: Any, name: str) -> int | None:
    x = _float(v, name)
    if x is None:
        return None
    if not x.is_integer():
        raise _Bad(name, f"not a whole number: {v!r}")
    return int(x)


def _bool(v: Any, name: str) -> bool | None:
    if isinstance(v, bool):
        return v
    s = _s(v)
    if s is None:
        return None
    low = s.lower()
    if low in ("true", "t", "1", "yes"):
        return True
    if low in ("false", "f", "0", "no"):
        return False
    raise _Bad(name, f"not a boolean: {s!r}")


def parse_spend(v: Any, name: str = "total_spend_formatted") -> float | None:
    """A spend as published: ``252.0``, ``€1,234``, ``1.234,56 €``, ``1 234`` → a float (None when empty).

    The last of ``.``/``,`` is the decimal mark when followed by one or two digits; other separators
    (and currency signs, spaces) are dropped."""
    s = _s(v)
    if s is None:
        return None
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    t = re.sub(r"[^\d.,\-]", "", s)
    if not re.search(r"\d", t):
        raise _Bad(name, f"not an amount: {s!r}")
    m = re.search(r"[.,](\d{1,2})$", t)
    if m:
        whole = re.sub(r"[.,]", "", t[: m.start()])
        t = f"{whole}.{m.group(1)}"
    else:
        t = re.sub(r"[.,]", "", t)
    try:
        return float(t)
    except ValueError:
        raise _Bad(name, f"not an amount: {s!r}") from None


def _date(v: Any, name: str) -> date | None:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    s = _s(v)
    if s is None:
        return None
    try:
        return date.fromisoformat(s[:10])
    except ValueError:
        raise _Bad(name, f"not a date (YYYY-MM-DD): {s!r}") from None


# -- reading ---------------------------------------------------------------------------------------
@dataclass
class TargetingFile:
    """What one file gave: its role, rows read, criteria and pages kept, rows rejected."""

    path: str
    sha256: str
    role: str
    rows_read: int = 0
    criteria: int = 0
    pages: int = 0
    rejected: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class TargetingBatch:
    """Pages and criteria of the files of one ingest, with the rejected rows and per-file accounting."""

    pages: list[dict[str, Any]] = field(default_factory=list)
    criteria: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    files: list[TargetingFile] = field(default_factory=list)


def _records(path: Path) -> tuple[str, list[str], Iterable[tuple[int, dict[str, Any]]]]:
    """(sha256, header, (line, record) pairs): CSV lines are physical line numbers where the record
    starts (a quoted field may span lines); Parquet rows are numbered from 1."""
    src = read_file(path)
    if src.is_parquet:
        import pyarrow.parquet as pq

        tbl = pq.read_table(io.BytesIO(src.data))
        header = [c.strip().lower() for c in tbl.column_names]
        tbl = tbl.rename_columns(header)
        return src.sha256, header, ((i + 1, r) for i, r in enumerate(tbl.to_pylist()))
    text = src.text
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(src.head))
    try:
        header = [c.strip().lower() for c in next(reader)]
    except StopIteration:
        raise FormatError(f"{path.name} is empty") from None

    def rows() -> Iterable[tuple[int, dict[str, Any]]]:
        start = reader.line_num + 1
        for rec in reader:
            line, start = start, reader.line_num + 1
            if not any(x.strip() for x in rec):
                continue
            if len(rec) != len(header):
                yield line, {"__bad__": f"{len(rec)} fields, the header has {len(header)}", "__raw__": rec}
                continue
            yield line, dict(zip(header, rec, strict=True))
    return src.sha256, header, rows()


def _page(rec: dict[str, Any]) -> dict[str, Any]:
    party = _s(rec.get("party"))
    spend = parse_spend(rec.get("total_spend_formatted"))
    eur = _float(rec.get("euro_spend"), "euro_spend")
    for name, x in (("total_spend_formatted", spend), ("euro_spend", eur)):
        if x is not None and x < 0:
            raise _Bad(name, f"a negative spend: {x}")
    return {"page_id": _id(rec.get("page_id"), "page_id"), "ds": _date(rec.get("ds"), "ds"),
            "page_name": _s(rec.get("page_name")), "party": party, "camp": party,
            "country": _s(rec.get("cntry")) or _s(rec.get("country")),
            "partyfacts_id": _s(rec.get("partyfacts_id")), "left_right": _float(rec.get("left_right"), "left_right"),
            "total_num_ads": _int(rec.get("total_num_ads"), "total_num_ads"), "spend": spend,
            "currency": _s(rec.get("main_currency")), "spend_eur": eur, "window_days": _int(rec.get("tf"), "tf")}


def _criterion(rec: dict[str, Any]) -> dict[str, Any]:
    typ = _s(rec.get("type"))
    if typ is None:
        raise _Bad("type", "missing")
    pct = _float(rec.get("total_spend_pct"), "total_spend_pct")
    if pct is None:
        raise _Bad("total_spend_pct", "missing")
    if not -1e-9 <= pct <= 1 + 1e-9:
        raise _Bad("total_spend_pct", f"a share must be within 0..1, got {pct}")
    n_ads = _int(rec.get("num_ads"), "num_ads")
    if n_ads is not None and n_ads < 0:
        raise _Bad("num_ads", f"a negative count: {n_ads}")
    return {"page_id": _id(rec.get("page_id"), "page_id"), "ds": _date(rec.get("ds"), "ds"),
            "type": typ.lower(), "value": _s(rec.get("value")), "num_ads": n_ads,
            "total_spend_pct": min(max(pct, 0.0), 1.0), "is_exclusion": _bool(rec.get("is_exclusion"), "is_exclusion"),
            "location_type": _s(rec.get("location_type")), "detailed_type": _s(rec.get("detailed_type")),
            "custom_audience_type": _s(rec.get("custom_audience_type")),
            "num_obfuscated": _int(rec.get("num_obfuscated"), "num_obfuscated")}


def read_targeting(paths: Sequence[str | Path]) -> TargetingBatch:
    """Read the pages and criteria tables (or one combined table) of one targeting data set.

    Raises :class:`IngestError` when a file is not a targeting table, or when criteria come without any
    page table (their spend would be unknown). A criterion whose page has one window but whose own
    ``ds`` is empty takes that window."""
    batch = TargetingBatch()
    seen_pages: dict[tuple[str, date | None], dict[str, Any]] = {}
    for raw in paths:
        p = Path(raw)
        sha, header, rows = _records(p)
        role = targeting_role(header)
        if role is None:
            raise FormatError(f"{p.name} is not a targeting table: it needs page_id with type, value, "
                              "total_spend_pct (criteria) or with total_spend_formatted / euro_spend (pages)")
        tf = TargetingFile(str(p), sha, role)
        for line, rec in rows:
            tf.rows_read += 1
            if "__bad__" in rec:
                batch.rejects.append({"source_file": str(p), "source_sha256": sha, "line": line, "field": "*",
                                      "reason": rec["__bad__"], "raw": ",".join(rec["__raw__"])[:2000]})
                tf.rejected += 1
                continue
            try:
                page = _page(rec) if role in ("pages", "combined") else None
                crit = _criterion(rec) if role in ("criteria", "combined") else None
            except _Bad as e:
                batch.rejects.append({"source_file": str(p), "source_sha256": sha, "line": line, "field": e.field,
                                      "reason": e.reason, "raw": repr({k: rec[k] for k in list(rec)[:40]})[:2000]})
                tf.rejected += 1
                continue
            if page is not None:
                key = (page["page_id"], page["ds"])
                if key not in seen_pages:
                    page.update(source_file=str(p), source_line=line, source_sha256=sha)
                    seen_pages[key] = page
                    batch.pages.append(page)
                    tf.pages += 1
            if crit is not None:
                crit.update(source_file=str(p), source_line=line, source_sha256=sha)
                batch.criteria.append(crit)
                tf.criteria += 1
        unknown = sorted({c["type"] for c in batch.criteria if c["source_sha256"] == sha} - set(KNOWN_TYPES))
        if unknown:
            tf.warnings.append(f"criterion types kept but not measured: {', '.join(unknown)}")
        batch.files.append(tf)
    if batch.criteria and not batch.pages:
        raise IngestError("targeting criteria need their pages table (page_id, total_spend_formatted or "
                          "euro_spend, party): give both files together")
    windows: dict[str, set[date | None]] = {}
    for pg in batch.pages:
        windows.setdefault(pg["page_id"], set()).add(pg["ds"])
    orphans = 0
    for c in batch.criteria:
        if c["ds"] is None and len(windows.get(c["page_id"], ())) == 1:
            c["ds"] = next(iter(windows[c["page_id"]]))
        if c["page_id"] not in windows:
            orphans += 1
    if orphans and batch.files:
        batch.files[-1].warnings.append(f"{orphans} criterion row(s) of pages absent from the pages table: "
                                        "kept, not measured (their spend is unknown)")
    return batch


_PAGE_COLS = ["page_id", "ds", "page_name", "party", "camp", "country", "partyfacts_id", "left_right",
              "total_num_ads", "spend", "currency", "spend_eur", "window_days", "source_file", "source_line",
              "source_sha256", "run_id"]
_CRIT_COLS = ["page_id", "ds", "type", "value", "num_ads", "total_spend_pct", "is_exclusion", "location_type",
              "detailed_type", "custom_audience_type", "num_obfuscated", "source_file", "source_line",
              "source_sha256", "run_id"]


def _frame(rows: list[dict[str, Any]], cols: list[str], run_id: str) -> pd.DataFrame:
    df = pd.DataFrame([{**r, "run_id": run_id} for r in rows], columns=cols)
    return df


def write_targeting(store: Store, batch: TargetingBatch, *, run_id: str) -> dict[str, int]:
    """Write a batch in one transaction: a page window's old pages and criteria rows are replaced;
    rejects and one ``sources`` row per file are recorded. Returns rows written per table."""
    pages = _frame(batch.pages, _PAGE_COLS, run_id)
    crit = _frame(batch.criteria, _CRIT_COLS, run_id)
    now = datetime.now(UTC).replace(tzinfo=None)
    con = store.con
    with store.transaction():
        keys = pd.concat([pages[["page_id", "ds"]], crit[["page_id", "ds"]]]).drop_duplicates()
        if len(keys):
            con.register("_bl_tkeys", pa.Table.from_pandas(keys, preserve_index=False))
            try:
                for t in ("targeting_criteria", "targeting_pages"):
                    con.execute(f"DELETE FROM {t} USING _bl_tkeys k WHERE {t}.page_id = k.page_id "
                                f"AND {t}.ds IS NOT DISTINCT FROM k.ds")
            finally:
                con.unregister("_bl_tkeys")
        for name, df in (("targeting_pages", pages), ("targeting_criteria", crit)):
            if len(df):
                con.register("_bl_tnew", pa.Table.from_pandas(df, preserve_index=False))
                try:
                    con.execute(f"INSERT INTO {name} ({', '.join(df.columns)}) SELECT * FROM _bl_tnew")
                finally:
                    con.unregister("_bl_tnew")
        for r in batch.rejects:
            con.execute("INSERT OR REPLACE INTO rejects VALUES (?, ?, ?, ?, ?, ?)",
                        [r["source_file"], r["source_sha256"], r["line"], r["field"], r["reason"], r["raw"]])
        for f in batch.files:
            con.execute("INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [f.sha256, f.path, TARGETING, f"targeting:{f.role}", f.rows_read,
                         f.rows_read - f.rejected, f.rejected, now, run_id])
    return {"targeting_pages": len(pages), "targeting_criteria": len(crit)}


def ingest_targeting(store: Store, paths: Sequence[str | Path], *, run_id: str, strict: bool = False) -> TargetingBatch:
    """Read (:func:`read_targeting`) and write (:func:`write_targeting`) one targeting data set; with
    ``strict``, any rejected row stops it before anything is written."""
    batch = read_targeting(paths)
    if strict and batch.rejects:
        r = batch.rejects[0]
        raise IngestError(f"{Path(r['source_file']).name}: {len(batch.rejects)} row(s) rejected (--strict), nothing "
                          f"written; first: line {r['line']}, {r['field']}: {r['reason']}")
    write_targeting(store, batch, run_id=run_id)
    return batch
