"""Reader of generic tables (CSV, JSON Lines, Parquet) through a column :class:`Mapping`.

Messages (SMS, emails, door-to-door scripts, donated panels) with optional wide delivery columns;
audiences (an id, an interest text, declared attributes); exposure logs (audience × message × count).
A person's id (``audience_type`` ``person``) is stored only as ``hash_person_id(raw, salt)``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..store import hash_person_id, text_hash
from .csvio import read_csv_records
from .jsonio import JsonProblem, iter_json_records, looks_like_json
from .mapping import FieldSpec, Mapping, guess_mapping
from .ranges import parse_count, parse_date, parse_money, parse_share
from .text import DecodedFile
from .writer import BadField, Batch, Reject, content_id

__all__ = ["iter_table_records", "read_table"]

FORMAT = "table"



def iter_table_records(src: DecodedFile, *, delimiter: str | None = None
                       ) -> tuple[list[str], Iterator[tuple[int, Any]]]:
    """(columns, records): each record a dict, or a JsonProblem / a list for an unreadable row."""
    name = src.path.name
    if src.encoding == "parquet":
        import pyarrow.parquet as pq

        try:
            tbl = pq.read_table(src.path)
        except Exception as e:  # pyarrow raises several types for a broken file
            raise FormatError(f"{name} is not a readable Parquet file ({e})") from None
        return tbl.column_names, ((i, r) for i, r in enumerate(tbl.to_pylist(), 1))
    if looks_like_json(src.text):
        it = iter_json_records(src.text, name)
        first = list(zip(range(20), it, strict=False))
        cols: list[str] = []
        for _, (_, rec) in first:
            if isinstance(rec, dict):
                cols.extend(k for k in rec if k not in cols)

        def chained() -> Iterator[tuple[int, Any]]:
            for _, x in first:
                yield x
            yield from it
        return cols, chained()
    header, records = read_csv_records(src.text, name, delimiter=delimiter)

    def as_dicts() -> Iterator[tuple[int, Any]]:
        n = len(header)
        for line, rec in records:
            yield line, (dict(zip(header, rec, strict=True)) if len(rec) == n else rec)
    return header, as_dicts()


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and v != v)


def _get(rec: dict[str, Any], spec: FieldSpec | None) -> Any:
    if spec is None:
        return None
    if spec.how == "value":
        return spec.value
    if spec.how == "join":
        parts = [str(rec.get(c)) for c in spec.columns if not _empty(rec.get(c))]
        return _join(parts) or None
    for c in spec.columns:
        v = rec.get(c)
        if not _empty(v):
            return v
    return None


def _join(parts: list[str]) -> str:
    seen: set[str] = set()
    out = []
    for p in parts:
        t = _clean(p)
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return "\n\n".join(out)


def _clean(v: Any) -> str:
    return unicodedata.normalize("NFC", str(v).replace("\xa0", " ")).strip()


def _idval(v: Any) -> str | None:
    if _empty(v):
        return None
    if isinstance(v, float) and v == int(v):
        v = int(v)
    if isinstance(v, dict | list):
        raise ValueError("an id must be a string or a number")
    return str(v).strip()


def _repairable(parse: Any, v: Any, field: str, flags: list[str], ocr: bool) -> Any:
    """Parse ``v``; with OCR repair on, a value that parses only after repair is flagged."""
    try:
        return parse(v)
    except (ValueError, TypeError, OverflowError) as e:
        if not ocr:
            raise BadField(field, str(e)) from None
        try:
            out = parse(v, ocr=True)
        except (ValueError, TypeError, OverflowError):
            raise BadField(field, str(e)) from None
        flags.append(f"ocr_repaired:{field}")
        return out


def _message(rec: dict[str, Any], line: int, m: Mapping, src: DecodedFile, batch: Batch,
             wide: list[str]) -> None:
    f = m.fields
    flags: list[str] = []
    text = _get(rec, f.get("text"))
    text = _clean(text) if text is not None else ""
    url = _get(rec, f.get("url"))
    url = _clean(url) if url is not None else None
    try:
        mid = _idval(_get(rec, f.get("id")))
    except ValueError as e:
        raise BadField("id", str(e)) from None
    if mid is None:
        mid = content_id(text, url, flags)
    if not text:
        flags.append("no_text")
    bounds: dict[str, Any] = {}
    for b in ("impressions_lower", "impressions_upper"):
        v = _get(rec, f.get(b))
        bounds[b] = None if v is None else _repairable(parse_count, v, b, flags, m.ocr)
    v = _get(rec, f.get("impressions"))
    if v is not None:
        n = _repairable(parse_count, v, "impressions", flags, m.ocr)
        bounds["impressions_lower"] = bounds["impressions_lower"] if bounds["impressions_lower"] is not None else n
        bounds["impressions_upper"] = bounds["impressions_upper"] if bounds["impressions_upper"] is not None else n
    currency = _get(rec, f.get("currency"))
    for b in ("spend_lower", "spend_upper", "spend"):
        v = _get(rec, f.get(b))
        if v is None:
            continue
        amount, cur = _repairable(parse_money, v, b, flags, m.ocr)
        if cur:
            currency = cur
        if b == "spend":
            bounds.setdefault("spend_lower", amount)
            bounds.setdefault("spend_upper", amount)
        else:
            bounds[b] = amount
    for lo, hi in (("impressions_lower", "impressions_upper"), ("spend_lower", "spend_upper")):
        if bounds.get(lo) is not None and bounds.get(hi) is not None and bounds[lo] > bounds[hi]:
            raise BadField(lo, f"lower bound {bounds[lo]} above upper bound {bounds[hi]}")
    dates = {}
    for d in ("date", "date_stop"):
        v = _get(rec, f.get(d))
        dates[d] = None if v is None else _repairable(parse_date, v, d, flags, m.ocr)
    cells: list[tuple[str, float | None, int | None]] = []
    for col in wide:
        v = rec.get(col)
        if _empty(v):
            continue
        try:
            if m.wide_value == "share":
                cells.append((col[len(m.wide_prefix or ""):], parse_share(v), None))
            else:
                cells.append((col[len(m.wide_prefix or ""):], None, parse_count(v)))
        except ValueError as e:
            raise BadField(col, str(e)) from None
    used = m.columns() | set(wide)
    extra = {k: v for k, v in rec.items() if k not in used and not _empty(v)}

    def s(name: str) -> str | None:
        v = _get(rec, f.get(name))
        return None if v is None else _clean(v) or None

    msgs = batch.rows("messages")
    row = len(msgs)
    msgs.add(message_id=mid, source_format=FORMAT, source_file=str(src.path), source_line=line,
             source_sha256=src.sha256, text=text or None, text_hash=text_hash(text) if text else None,
             has_text=bool(text), bodies=[text] if text else [], sponsor=s("sponsor"),
             sponsor_id=s("sponsor_id"), channel=s("channel"), date_start=dates["date"],
             date_stop=dates["date_stop"], url=url, lang=s("lang"),
             languages=[s("lang")] if s("lang") else None,
             impressions_lower=bounds.get("impressions_lower"),
             impressions_upper=bounds.get("impressions_upper"),
             spend_lower=bounds.get("spend_lower"), spend_upper=bounds.get("spend_upper"),
             currency=None if currency is None else str(currency), given_camp=s("camp"),
             given_narrative=s("narrative"), flags=flags,
             extra=json.dumps(extra, ensure_ascii=False, default=str) if extra else None)
    if cells:
        drows = batch.rows("deliveries")
        dim = m.wide_dimension
        for cell, share, count in cells:
            drows.add(message_id=mid, kind=dim, share=share, count=count, _row=row,
                  **{dim if dim in ("age", "gender", "region", "country") else "region": cell})


def _audience(rec: dict[str, Any], line: int, m: Mapping, src: DecodedFile, batch: Batch,
              atype: str, salt: str) -> None:
    try:
        raw = _idval(_get(rec, m.fields.get("id")))
    except ValueError as e:
        raise BadField("id", str(e)) from None
    if raw is None:
        raise BadField("id", "no audience id")
    aid = hash_person_id(raw, salt) if atype == "person" else raw
    interests = _get(rec, m.fields.get("interests"))
    interests = _clean(interests) if interests is not None else None
    attrs = []
    for fname, spec in m.fields.items():
        if fname.startswith("attr."):
            v = _get(rec, spec)
            if v is not None:
                attrs.append((fname[5:], _clean(v)))
    aud = batch.rows("audiences")
    row = len(aud)
    aud.add(audience_id=aid, audience_type=atype, interests=interests or None, source_file=str(src.path),
          source_line=line, source_sha256=src.sha256)
    at = batch.rows("audience_attrs")
    for name, value in attrs:
        at.add(audience_id=aid, name=name, value=value, _row=row)


def _exposure(rec: dict[str, Any], line: int, m: Mapping, src: DecodedFile, batch: Batch,
              atype: str, salt: str) -> None:
    try:
        raw = _idval(_get(rec, m.fields.get("audience_id")))
        mid = _idval(_get(rec, m.fields.get("message_id")))
    except ValueError as e:
        raise BadField("audience_id", str(e)) from None
    if raw is None:
        raise BadField("audience_id", "no audience id")
    if mid is None:
        raise BadField("message_id", "no message id")
    v = _get(rec, m.fields.get("count"))
    try:
        count = 1 if v is None else parse_count(v)
    except ValueError as e:
        raise BadField("count", str(e)) from None
    aid = hash_person_id(raw, salt) if atype == "person" else raw
    batch.rows("exposures").add(audience_id=aid, message_id=mid, count=count, source_file=str(src.path),
                                source_line=line, source_sha256=src.sha256)


def read_table(src: DecodedFile, *, kind: str = "messages", mapping: Mapping | None = None,
               audience_type: str | None = None, salt: str = "", **_: Any) -> Batch:
    """Read a generic table with ``mapping`` (or, without one, columns named like the fields)."""
    name = src.path.name
    cols, records = iter_table_records(src, delimiter=mapping.delimiter if mapping else None)
    if mapping is None:
        mapping = guess_mapping(cols, kind)
    kind = mapping.kind
    atype = audience_type or mapping.audience_type or "person"
    missing = sorted(c for c in mapping.columns() if c not in cols)
    if missing and src.encoding != "parquet" and cols:
        raise FormatError(f"{name} lacks the mapped column(s) {', '.join(missing)} "
                          f"(its columns: {', '.join(cols[:12])}{', ...' if len(cols) > 12 else ''})")
    need = {"messages": ("id", "text", "url"), "audiences": ("id",),
            "exposures": ("audience_id", "message_id")}[kind]
    if not any(f in mapping.fields for f in need):
        raise FormatError(f"{name}: no column maps to {' or '.join(need)}; give --map FIELD=COLUMN or "
                          "--mapping FILE.yaml (see docs/ingest.md)")
    wide = [c for c in cols if mapping.wide_prefix and c.startswith(mapping.wide_prefix)]
    batch = Batch(format=FORMAT, kind=kind)
    for line, rec in records:
        batch.rows_read += 1
        if isinstance(rec, JsonProblem):
            batch.rejects.append(Reject.of(line, "(json)", rec.reason, rec.raw))
            continue
        if isinstance(rec, list):
            batch.rejects.append(Reject.of(line, "(row)", f"{len(rec)} values for {len(cols)} columns",
                                           rec))
            continue
        if not isinstance(rec, dict):
            batch.rejects.append(Reject.of(line, "(row)", f"not a JSON object but {type(rec).__name__}",
                                           rec))
            continue
        mark = {t: len(r) for t, r in batch.tables.items()}
        try:
            if kind == "messages":
                _message(rec, line, mapping, src, batch, wide)
            elif kind == "audiences":
                _audience(rec, line, mapping, src, batch, atype, salt)
            else:
                _exposure(rec, line, mapping, src, batch, atype, salt)
        except BadField as e:
            for t, r in batch.tables.items():
                r.truncate(mark.get(t, 0))
            batch.rejects.append(Reject.of(line, e.field, e.reason, rec))
    return batch


def sibling_mapping(path: Path) -> Path | None:
    """``messages.mapping.yaml`` beside ``messages.csv``, if there is one."""
    for cand in (path.with_suffix(".mapping.yaml"), path.with_suffix(".mapping.yml")):
        if cand.exists():
            return cand
    return None
