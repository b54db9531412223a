"""Reader of generic tables (CSV, JSON Lines, Parquet) through a column :class:`Mapping`.

Messages (SMS, emails, door-to-door scripts, donated panels) with optional wide delivery columns;
audiences (an id, an interest text, declared attributes); exposure logs (audience × message × count).
A person's id (``audience_type`` ``person``) is stored only as ``hash_person_id(raw, salt)``, in kept
rows and in rejects alike.

Only the fields that define a record reject it (messages: the id, or a text or URL to make one;
audiences and exposures: their ids). An optional field that cannot be read (a count, an amount, a
date, a delivery cell) is left empty, and the file's warnings count it per field with its first line.
The placeholders ``None``, ``nan``, ``N/A``, ``NA``, ``null``, ``-`` are empty values. Dates written
``dd/mm/yyyy`` or ``mm/dd/yyyy`` are read the way each column's values allow (see :func:`date_order`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..store import hash_person_id, text_hash
from .csvio import read_csv_records
from .jsonio import JsonProblem, iter_json_records, looks_like_json
from .mapping import WIDE_DIMENSIONS, FieldSpec, Mapping, guess_mapping
from .ranges import parse_count, parse_date, parse_money, parse_share
from .text import DecodedFile, clean_text
from .writer import BadField, Batch, OptionalFields, Reject, content_id

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
            if isinstance(rec, JsonProblem):
                yield line, rec
            else:
                yield line, (dict(zip(header, rec, strict=True)) if len(rec) == n else rec)
    return header, as_dicts()


#: Cell values that mean "no value" (compared lower-case, stripped).
NULL_TOKENS = frozenset({"none", "nan", "n/a", "na", "null", "nil", "-", "--", "\u2013", "\u2014", "#n/a"})


def _empty(v: Any) -> bool:
    if v is None or (isinstance(v, float) and v != v):
        return True
    if isinstance(v, str):
        t = v.strip()
        return not t or (len(t) <= 4 and t.lower() in NULL_TOKENS)
    return False


_SLASHED = re.compile(r"\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})\b")


def date_order(values: Iterable[Any]) -> tuple[bool | None, str | None]:
    """Whether a column's ``aa/bb/yyyy`` dates are day-first, decided over all its values: any
    first number above 12 → day-first; any second above 12 → month-first; both → conflicting (None
    and a reason); neither → ambiguous (None and a reason: the reader then takes a dot-separated
    column as day-first and a slashed one as month-first, and warns)."""
    day = month = False
    seen = False
    for v in values:
        if not isinstance(v, str):
            continue
        m = _SLASHED.match(v)
        if m is None:
            continue
        seen = True
        a, b = int(m.group(1)), int(m.group(2))
        day |= a > 12
        month |= b > 12
    if day and month:
        return None, "both day-first and month-first dates"
    if day or month:
        return day, None
    return None, ("ambiguous (no day above 12)" if seen else None)


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
        t = clean_text(p)
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return "\n\n".join(out)


def _idval(v: Any) -> str | None:
    if _empty(v):
        return None
    if isinstance(v, float) and v == int(v):
        v = int(v)
    if isinstance(v, dict | list):
        raise ValueError("an id must be a string or a number")
    return clean_text(v) or None


def _repairable(parse: Any, v: Any, field: str, flags: list[str], ocr: bool,
                opt: OptionalFields | None = None, **kw: Any) -> Any:
    """Parse ``v``; with OCR repair on, a value that parses only after repair is flagged. A value
    that cannot be read is None (counted in ``opt``), or raises :class:`BadField` without ``opt``."""
    try:
        return parse(v, **kw)
    except (ValueError, TypeError, OverflowError) as e:
        err = str(e)
    if ocr:
        try:
            out = parse(v, ocr=True, **kw)
        except (ValueError, TypeError, OverflowError):
            pass
        else:
            flags.append(f"ocr_repaired:{field}")
            return out
    if opt is None:
        raise BadField(field, err)
    opt.drop(field, err)
    return None


def _message(rec: dict[str, Any], line: int, m: Mapping, src: DecodedFile, batch: Batch,
             wide: list[tuple[str, str, str]], opt: OptionalFields, dayfirst: dict[str, bool | None]) -> None:
    f = m.fields
    opt.line = line
    flags: list[str] = []
    text = _get(rec, f.get("text"))
    text = clean_text(text) if text is not None else ""
    url = _get(rec, f.get("url"))
    url = clean_text(url) if url is not None else None
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
        bounds[b] = None if v is None else _repairable(parse_count, v, b, flags, m.ocr, opt)
    v = _get(rec, f.get("impressions"))
    n = None if v is None else _repairable(parse_count, v, "impressions", flags, m.ocr, opt)
    if n is not None:
        bounds["impressions_lower"] = bounds["impressions_lower"] if bounds["impressions_lower"] is not None else n
        bounds["impressions_upper"] = bounds["impressions_upper"] if bounds["impressions_upper"] is not None else n
    currency = _get(rec, f.get("currency"))
    for b in ("spend_lower", "spend_upper", "spend"):
        v = _get(rec, f.get(b))
        if v is None:
            continue
        got = _repairable(parse_money, v, b, flags, m.ocr, opt)
        if got is None:
            continue
        amount, cur = got
        if cur:
            currency = cur
        if b == "spend":
            bounds.setdefault("spend_lower", amount)
            bounds.setdefault("spend_upper", amount)
        else:
            bounds[b] = amount
    for lo, hi in (("impressions_lower", "impressions_upper"), ("spend_lower", "spend_upper")):
        if bounds.get(lo) is not None and bounds.get(hi) is not None and bounds[lo] > bounds[hi]:
            opt.drop(lo, f"lower bound {bounds[lo]} above upper bound {bounds[hi]}")
            bounds[lo] = bounds[hi] = None
    dates = {}
    for d in ("date", "date_stop"):
        v = _get(rec, f.get(d))
        dates[d] = None if v is None else _repairable(parse_date, v, d, flags, m.ocr, opt,
                                                     dayfirst=dayfirst.get(d))
    cells: list[tuple[str, str, float | None, int | None]] = []
    for col, dim, cell in wide:
        v = rec.get(col)
        if _empty(v):
            continue
        try:
            if m.wide_value == "share":
                cells.append((dim, cell, parse_share(v), None))
            else:
                cells.append((dim, cell, None, parse_count(v)))
        except (ValueError, OverflowError) as e:
            opt.drop(col, str(e))
    used = m.columns() | {w[0] for w in wide}
    extra = {k: v for k, v in rec.items() if k not in used and not _empty(v)}

    def s(name: str) -> str | None:
        v = _get(rec, f.get(name))
        return None if v is None else clean_text(v) or None

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
        for dim, cell, share, count in cells:
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
    interests = clean_text(interests) if interests is not None else None
    attrs = []
    for fname, spec in m.fields.items():
        if fname.startswith("attr."):
            v = _get(rec, spec)
            if v is not None:
                attrs.append((fname[5:], clean_text(v)))
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


def _private(rec: Any, m: Mapping, atype: str, salt: str) -> Any:
    """A rejected row as stored: in a person table the id columns hashed like kept rows, and a row
    that could not be split into columns withheld (it may hold a raw person id)."""
    if m.kind == "messages" or atype != "person":
        return rec
    if not isinstance(rec, dict):
        return "[withheld: an unreadable row of a person table]"
    ids = {c for f in ("id", "audience_id") if f in m.fields for c in m.fields[f].columns}
    return {k: (hash_person_id(str(v).strip(), salt) if k in ids and not _empty(v) else v) for k, v in rec.items()}


def _wide_columns(cols: list[str], m: Mapping) -> list[tuple[str, str, str]]:
    """(column, dimension, cell) of the delivery columns: ``deliveries.wide_prefix`` columns, and
    fields ``DIMENSION.CELL`` mapped to any column (``--map region.Bayern=BY``)."""
    out = [(c, m.wide_dimension, c[len(m.wide_prefix):]) for c in cols if m.wide_prefix and c.startswith(m.wide_prefix)]
    for f, spec in m.fields.items():
        dim, _, cell = f.partition(".")
        if dim in WIDE_DIMENSIONS and cell and spec.columns:
            out.append((spec.columns[0], dim, cell))
    return out


def read_table(src: DecodedFile, *, kind: str = "messages", mapping: Mapping | None = None,
               audience_type: str | None = None, salt: str = "", dayfirst: bool | None = None,
               textless: bool = False, **_: Any) -> Batch:
    """Read a generic table with ``mapping`` (or, without one, columns named like the fields; a
    mapping of ``--map`` pairs only adds to that guess).

    ``dayfirst``: True/False forces the order of ``aa/bb/yyyy`` dates; None decides it per column
    (:func:`date_order`). A messages table with neither a text nor a URL column is refused, naming
    the columns it has, unless ``textless``. An audience table whose ids repeat with other values
    (long format: one row per id × criterion) is refused rather than collapsed to its last rows."""
    name = src.path.name
    cols, records = iter_table_records(src, delimiter=mapping.delimiter if mapping else None)
    if mapping is None:
        mapping = guess_mapping(cols, kind)
    elif mapping.guess:
        base = guess_mapping(cols, mapping.kind)
        taken = mapping.columns()
        fields = {f: sp for f, sp in base.fields.items() if not set(sp.columns) & taken}
        fields.update(mapping.fields)
        mapping = Mapping(**{**mapping.__dict__, "fields": fields, "guess": False})
    kind = mapping.kind
    atype = audience_type or mapping.audience_type or "person"
    listed = f"{', '.join(cols[:20])}{', ...' if len(cols) > 20 else ''}"
    missing = sorted(c for c in mapping.columns() if c not in cols)
    if missing and src.encoding != "parquet" and cols:
        raise FormatError(f"{name} lacks the mapped column(s) {', '.join(missing)} (its columns: {listed})")
    need = {"messages": ("id", "text", "url"), "audiences": ("id",),
            "exposures": ("audience_id", "message_id")}[kind]
    if not any(f in mapping.fields for f in need):
        raise FormatError(f"{name}: no column maps to {' or '.join(need)} (its columns: {listed}); give "
                          "--map FIELD=COLUMN or --mapping FILE.yaml (see docs/ingest.md)")
    if kind == "messages" and not textless and not ({"text", "url"} & mapping.fields.keys()):
        raise FormatError(f"{name}: no column maps to text or url (its columns: {listed}); give --map "
                          "text=COLUMN, or --textless if the messages really have no text")
    wide = _wide_columns(cols, mapping)
    batch = Batch(format=FORMAT, kind=kind)
    opt = OptionalFields()
    orders: dict[str, bool | None] = {}
    if kind == "messages":
        items = list(records)  # two passes: the date order of each column is decided first
        rows = [r for _, r in items]
        for d in ("date", "date_stop"):
            spec = mapping.fields.get(d)
            if spec is None or spec.how == "value":
                continue
            if dayfirst is not None:
                orders[d] = dayfirst
                continue
            values = (r.get(c) for r in rows if isinstance(r, dict) for c in spec.columns)
            order, why = date_order(values)
            if order is None and why is not None:
                dotted = any(isinstance(r, dict) and isinstance(r.get(c), str) and _SLASHED.match(r[c])
                             and "." in r[c][:6] for r in rows[:200] for c in spec.columns)
                order = dotted
                if "both" in why:
                    batch.warnings.append(f"{d}: column {'/'.join(spec.columns)} holds {why}; read "
                                          f"{'day' if dotted else 'month'}-first (--dayfirst/--monthfirst "
                                          "to force)")
                else:
                    batch.warnings.append(f"{d}: the dates of column {'/'.join(spec.columns)} are {why}; "
                                          f"read {'day' if dotted else 'month'}-first (--dayfirst or "
                                          "--monthfirst to say which)")
            orders[d] = order
        records = iter(items)
    seen_aud: dict[str, tuple[int, int]] = {}
    long_rows: list[tuple[int, int]] = []
    for line, rec in records:
        batch.rows_read += 1
        if isinstance(rec, JsonProblem):
            batch.rejects.append(Reject.of(line, rec.field, rec.reason, _private(rec.raw, mapping, atype, salt)))
            continue
        if isinstance(rec, list):
            batch.rejects.append(Reject.of(line, "(row)", f"{len(rec)} values for {len(cols)} columns",
                                           _private(rec, mapping, atype, salt)))
            continue
        if not isinstance(rec, dict):
            batch.rejects.append(Reject.of(line, "(row)", f"not a JSON object but {type(rec).__name__}",
                                           _private(rec, mapping, atype, salt)))
            continue
        mark = {t: len(r) for t, r in batch.tables.items()}
        try:
            if kind == "messages":
                _message(rec, line, mapping, src, batch, wide, opt, orders)
            elif kind == "audiences":
                _audience(rec, line, mapping, src, batch, atype, salt)
                aid = batch.tables["audiences"].cols["audience_id"][-1]
                # the whole row, not only its mapped columns: rows of one id that differ anywhere are
                # a long-format table (one row per id × criterion), not duplicates
                content = hash(tuple(sorted((str(k), str(v)) for k, v in rec.items())))
                prev = seen_aud.get(aid)
                if prev is not None and prev[1] != content:
                    long_rows.append((prev[0], line))
                seen_aud[aid] = (line, content)
            else:
                _exposure(rec, line, mapping, src, batch, atype, salt)
        except BadField as e:
            for t, r in batch.tables.items():
                r.truncate(mark.get(t, 0))
            batch.rejects.append(Reject.of(line, e.field, e.reason, _private(rec, mapping, atype, salt)))
    if long_rows:
        a, b = long_rows[0]
        raise FormatError(
            f"{name}: {len(long_rows):,} row(s) repeat an audience id with other values (first: lines {a} and "
            f"{b}): a long-format table (one row per id × criterion), which read as audiences would keep only "
            "the last row of each id. Read a targeting table with --format targeting, or give one row per "
            "audience (docs/ingest.md)")
    batch.warnings.extend(opt.warnings())
    return batch


def sibling_mapping(path: Path) -> Path | None:
    """``messages.mapping.yaml`` beside ``messages.csv``, if there is one."""
    for cand in (path.with_suffix(".mapping.yaml"), path.with_suffix(".mapping.yml")):
        if cand.exists():
            return cand
    return None
