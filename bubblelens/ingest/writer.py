"""Column-wise row buffers and the one-transaction writer.

Readers append rows to :class:`Rows` buffers (one list per column, no per-row SQL); :func:`write_batch`
turns them into Arrow tables and upserts them into DuckDB inside one transaction, so a file is taken
whole or not at all. A batch may also bring a stream of column-wise pieces still being parsed
(:attr:`Batch.stream`): each piece is upserted as it comes, inside the same transaction.
Upsert rules (``docs/ingest.md``, "Idempotence"):

- messages by ``message_id``: a message seen again replaces the stored row, and its deliveries and
  targeting are replaced with the new ones;
- audiences by ``audience_id`` (attributes replaced with them); exposures by (audience, message);
- sponsor spend by (report, row key); rejects by (file SHA-256, line, field), never duplicated.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..store import ROW_GROUP_SIZE, Store, text_hash

__all__ = ["BadField", "Batch", "OptionalFields", "PieceSource", "Reject", "Rows", "StreamAborted", "WriteResult", "content_id",
           "write_batch"]


class BadField(Exception):
    """A row cannot be taken because of ``field``: the reader turns it into a :class:`Reject`."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


class StreamAborted(Exception):
    """A streamed batch cannot be finished as streamed (a piece not in the plain shape, an id in two
    pieces): the transaction is rolled back and the file is read again the whole-file way."""


class PieceSource(Protocol):
    """Pieces of one file in file order, each ``{"messages": table, "deliveries": table}`` with
    ``_row`` columns counted from the file's start (see ``meta_fast.PieceStream``)."""

    def __iter__(self) -> Iterator[dict[str, pa.Table]]: ...

    def parsed(self) -> bool:
        """True once every piece is parsed (the rest of the iteration does not wait)."""
        ...

    def close(self) -> None: ...


def content_id(text: str, url: str | None, flags: list[str]) -> str:
    """The id of a message its source gave none: ``sha1:`` + 16 hex of its text and URL (so a re-ingest
    finds it again); flags it ``content_id``. Raises :class:`BadField` when it has neither."""
    if not text and not url:
        raise BadField("id", "no id, no text and no URL")
    flags.append("content_id")
    return "sha1:" + text_hash(text + "\x1f" + (url or ""))[:16]

_S, _I, _F, _B = pa.string(), pa.int64(), pa.float64(), pa.bool_()
_T, _L = pa.timestamp("us"), pa.list_(pa.string())

SCHEMAS: dict[str, dict[str, pa.DataType]] = {
    "messages": {
        "message_id": _S, "source_format": _S, "source_file": _S, "source_line": _I, "source_sha256": _S,
        "text": _S, "text_hash": _S, "has_text": _B,
        "bodies": _L, "link_titles": _L, "link_descriptions": _L, "link_captions": _L,
        "sponsor": _S, "sponsor_id": _S, "page_name": _S, "channel": _S, "platforms": _L,
        "date_start": _T, "date_stop": _T, "created_at": _T, "url": _S, "lang": _S, "languages": _L,
        "impressions_lower": _I, "impressions_upper": _I, "spend_lower": _F, "spend_upper": _F,
        "currency": _S, "eu_total_reach": _I, "audience_size_lower": _I, "audience_size_upper": _I,
        "given_camp": _S, "given_narrative": _S, "flags": _L, "extra": _S,
    },
    "deliveries": {"message_id": _S, "kind": _S, "age": _S, "gender": _S, "region": _S, "country": _S,
                   "share": _F, "count": _I},
    "targeting": {"message_id": _S, "dimension": _S, "value": _S, "included": _B},
    "audiences": {"audience_id": _S, "audience_type": _S, "interests": _S, "source_file": _S,
                  "source_line": _I, "source_sha256": _S},
    "audience_attrs": {"audience_id": _S, "name": _S, "value": _S},
    "exposures": {"audience_id": _S, "message_id": _S, "count": _I, "source_file": _S, "source_line": _I,
                  "source_sha256": _S},
    "sponsor_spend": {"report": _S, "row_key": _S, "scope": _S, "page_id": _S, "page_name": _S,
                      "disclaimer": _S, "location": _S, "spend_lower": _F, "spend_upper": _F,
                      "currency": _S, "n_ads": _I, "source_format": _S, "source_file": _S,
                      "source_line": _I, "source_sha256": _S},
}
# Child rows carry the index of their parent row (``_row``) so that a message that appears twice in
# one file keeps only the children of its last occurrence.
_CHILD = {"deliveries": "messages", "targeting": "messages", "audience_attrs": "audiences"}


class Rows:
    """A column-wise buffer for one table: ``cols[name]`` is a list; :meth:`add` appends one row."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.names = list(SCHEMAS[table]) + (["_row"] if table in _CHILD else [])
        self.cols: dict[str, list[Any]] = {n: [] for n in self.names}

    def __len__(self) -> int:
        return len(self.cols[self.names[0]])

    def add(self, **values: Any) -> None:
        for n in self.names:
            self.cols[n].append(values.get(n))

    def truncate(self, n: int) -> None:
        """Drop rows from index ``n`` on (used to undo a half-added row)."""
        for v in self.cols.values():
            del v[n:]

    def to_arrow(self) -> pa.Table:
        schema = dict(SCHEMAS[self.table])
        if "_row" in self.cols:
            schema["_row"] = _I
        return pa.table({n: pa.array(self.cols[n], type=schema[n]) for n in self.names})


_TOKEN = re.compile(r"\b(access_token|token|api_key|apikey|key|sig|signature)=[^&#\s\"',;]*", re.IGNORECASE)
_UNSAFE = re.compile("[\x00\udc80-\udcff]")


def redact(raw: str) -> str:
    """A raw row as stored in ``rejects``: secrets in URLs (``access_token=…`` and the like) cut to
    ``NAME=[removed]``, bytes that were not UTF-8 and NUL written as ``\\xNN``."""
    if "=" in raw:
        raw = _TOKEN.sub(lambda m: m.group(1) + "=[removed]", raw)
    if _UNSAFE.search(raw):
        raw = _UNSAFE.sub(lambda m: f"\\x{(ord(m.group()) - 0xDC00) if m.group() != chr(0) else 0:02x}", raw)
    return raw


@dataclass
class Reject:
    """A row that could not be taken: where, which field, why, and the raw row (truncated, secrets
    removed: see :func:`redact`; a reader hashes person ids before it builds one)."""

    line: int
    field: str
    reason: str
    raw: str

    @staticmethod
    def of(line: int, field: str, reason: str, raw: Any, *, limit: int = 2000) -> Reject:
        if not isinstance(raw, str):
            try:
                raw = json.dumps(raw, ensure_ascii=False, default=str)
            except (TypeError, ValueError, RecursionError):
                raw = repr(raw)[:limit]
        raw = redact(raw if len(raw) <= limit else raw[:limit] + "…")
        return Reject(line, field, redact(reason), raw)


class OptionalFields:
    """Optional fields that could not be read in one file: a count per field and the first line.

    Only the fields that define a record (its id, or its text / URL) can reject it; any other field that
    cannot be read is left empty, and the file's warnings count it per field (:meth:`warnings`).
    """

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.first: dict[str, tuple[int, str]] = {}
        self.line = 0

    def drop(self, field: str, reason: str) -> None:
        self.count[field] += 1
        self.first.setdefault(field, (self.line, reason))

    def warnings(self) -> list[str]:
        return [f"{field}: {n:,} value(s) unreadable, left empty (first: line {self.first[field][0]}, "
                f"{self.first[field][1]})" for field, n in sorted(self.count.items())]


@dataclass
class Batch:
    """Everything one file yields, ready for :func:`write_batch`."""

    format: str
    kind: str
    rows_read: int = 0
    tables: dict[str, Rows] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Rows built column-wise (a fast path) that come before the row buffers; their ``_row`` values
    #: are below ``arrow_offset``, the buffers' are shifted by it.
    arrow: dict[str, pa.Table] = field(default_factory=dict)
    arrow_offset: int = 0
    #: Pieces still being read: :func:`write_batch` stores them as they come, then calls ``finish``,
    #: which completes the batch (the rows the pieces left to the row-wise reader, ``rows_read``).
    stream: PieceSource | None = None
    finish: Callable[[], None] | None = None
    #: Rows of the main table taken from the stream (counted in :attr:`kept`).
    streamed: int = 0
    #: What the writer found (lines that repeat another line's key), for the file's warnings.
    notes: list[str] = field(default_factory=list)
    #: Optional fields the reader could not read and left empty (``--strict`` refuses them too).
    dropped: OptionalFields | None = None

    def well_formed(self, header: list[str], records: Iterable[tuple[int, Any]]
                    ) -> Iterator[tuple[int, dict[str, str], list[str]]]:
        """CSV records as (line, ``{column: stripped value}``, raw values), counted in ``rows_read``; a
        record with another number of values than the header, or one the CSV reader refused (not
        UTF-8, a NUL, a limit), is rejected instead."""
        for line, rec in records:
            self.rows_read += 1
            if not isinstance(rec, list):
                self.rejects.append(Reject.of(line, rec.field, rec.reason, rec.raw))
                continue
            if len(rec) != len(header):
                self.rejects.append(Reject.of(line, "(row)", f"{len(rec)} values for {len(header)} columns", rec))
                continue
            yield line, {h: v.strip() for h, v in zip(header, rec, strict=True)}, rec

    def rows(self, table: str) -> Rows:
        if table not in self.tables:
            self.tables[table] = Rows(table)
        return self.tables[table]

    @property
    def kept(self) -> int:
        main = {"messages": "messages", "audiences": "audiences", "exposures": "exposures",
                "sponsor_spend": "sponsor_spend"}[self.kind]
        fast = self.arrow[main].num_rows if main in self.arrow else 0
        return self.streamed + fast + (len(self.tables[main]) if main in self.tables else 0)

    def n_rows(self, table: str) -> int:
        fast = self.arrow[table].num_rows if table in self.arrow else 0
        return fast + (len(self.tables[table]) if table in self.tables else 0)

    def to_arrow(self, table: str) -> pa.Table:
        """The table's rows (fast-path chunk first) with a ``_row`` column: the row's own index for
        a parent table, its parent's for a child."""
        parts = []
        if table in self.arrow:
            parts.append(self.arrow[table])
        if table in self.tables and len(self.tables[table]):
            t = self.tables[table].to_arrow()
            if "_row" in t.column_names:
                i = t.column_names.index("_row")
                t = t.set_column(i, "_row", pc.add(t["_row"], self.arrow_offset))
            else:
                t = t.append_column("_row", pa.array(range(self.arrow_offset, self.arrow_offset + t.num_rows),
                                                     type=pa.int64()))
            parts.append(t)
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


@dataclass
class WriteResult:
    """Counts of one file's write. ``kept`` rows were taken and ``rejected`` not; of the kept,
    ``added`` are new, ``updated`` replaced a stored row that differed, and ``skipped`` were already
    stored unchanged or superseded by a later line of the same file (kept = added + updated + skipped)."""

    kept: int
    rejected: int
    added: int
    updated: int
    skipped: int
    written: dict[str, int]
    #: Rows that repeat the key of another line of the file (counted in ``kept`` and ``skipped``:
    #: the file's last line of a key wins); :attr:`notes` names their lines.
    duplicates: int = 0
    notes: list[str] = field(default_factory=list)


def _unregister(con: Any, name: str) -> None:
    """Drop a registered view; after a failed statement DuckDB refuses, and the rollback cleans up."""
    with contextlib.suppress(duckdb.Error):
        con.unregister(name)


@contextlib.contextmanager
def _settings(con: Any, **values: bool | int) -> Iterator[None]:
    """DuckDB settings for the statements inside (global ones: each is put back after)."""
    old = {k: con.execute(f"SELECT current_setting('{k}')").fetchall()[0][0] for k in values}
    try:
        for k, v in values.items():
            con.execute(f"SET {k} = {str(v).lower()}")
        yield
    finally:
        for k, v in old.items():
            con.execute(f"SET {k} = {str(v).lower()}")


def _any_order(con: Any) -> contextlib.AbstractContextManager[None]:
    """Let DuckDB append rows in any order (``preserve_insertion_order``), so that a table in pieces
    of any size goes in in parallel without a copy, leaving at most a partial row group per thread;
    SQL gives rows no order anyway."""
    return _settings(con, preserve_insertion_order=False)


def _insert(con: Any, table: str, tbl: pa.Table, *, mode: str = "INSERT", any_order: bool = True) -> None:
    """``INSERT INTO table`` the rows of ``tbl`` (its ``_row`` column left out); a large table in
    pieces goes in in parallel, in any order (``any_order``)."""
    cols = [c for c in tbl.column_names if c != "_row"]
    pieces = any_order and tbl.num_rows > ROW_GROUP_SIZE and any(c.num_chunks > 1 for c in tbl.columns)
    if tbl.num_rows > ROW_GROUP_SIZE and not pieces:
        # one chunk: cut into batches of exactly a row group (slices, no copy), which DuckDB appends in
        # parallel; batches of other sizes would each leave a partial row group for the commit to
        # compress again (3.1 M delivery rows in 18 batches: 2.9 s of commit CPU instead of 1.0 s)
        tbl = pa.Table.from_batches(tbl.to_batches(max_chunksize=ROW_GROUP_SIZE), schema=tbl.schema)
    con.register("_bl_new", tbl)
    try:
        collist = ", ".join(f'"{c}"' for c in cols)
        with _any_order(con) if pieces else contextlib.nullcontext():
            con.execute(f'{mode} INTO {table} ({collist}) SELECT {collist} FROM _bl_new').fetchall()
    finally:
        _unregister(con, "_bl_new")


def _name_duplicates(tbl: pa.Table, key: list[str], notes: list[str], *, limit: int = 5) -> None:
    """Name the lines that repeat a key of another line (``source_line``): identical, or with other
    content (the last line wins). At most ``limit`` notes of each kind, then a count."""
    if "source_line" not in tbl.column_names or tbl.num_rows == 0:
        return
    counts = tbl.group_by(key, use_threads=False).aggregate([("source_line", "count")])
    dup_keys = counts.filter(pc.greater(counts["source_line_count"], 1)).select(key)
    if dup_keys.num_rows == 0:
        return
    mask = pc.is_in(tbl[key[0]], value_set=dup_keys[key[0]].combine_chunks())
    rows = tbl.filter(mask).drop_columns([c for c in ("_row",) if c in tbl.column_names]).to_pylist()
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in key), []).append(r)
    same: list[tuple[int, str]] = []
    other: list[tuple[int, str]] = []
    for g in groups.values():
        g.sort(key=lambda r: r["source_line"] or 0)
        last = g[-1]
        content = {k: v for k, v in last.items() if not k.startswith("source_")}
        for r in g[:-1]:
            if {k: v for k, v in r.items() if not k.startswith("source_")} == content:
                same.append((r["source_line"] or 0, f"line {r['source_line']} is an identical duplicate of line "
                                                    f"{last['source_line']}"))
            else:
                other.append((r["source_line"] or 0, f"line {r['source_line']} has the id of line "
                                                     f"{last['source_line']} with other content: line "
                                                     f"{last['source_line']} kept"))
    for found in (same, other):
        found.sort()
        notes.extend(n for _, n in found[:limit])
        if len(found) > limit:
            notes.append(f"... and {len(found) - limit:,} more such line(s)")


def _last_occurrence(tbl: pa.Table, key: list[str]) -> pa.Table:
    """Keep the last row of each key (a later line of the same file updates an earlier one)."""
    if tbl.num_rows == 0:
        return tbl
    idx = pa.array(range(tbl.num_rows), type=pa.int64())
    t = tbl.append_column("__i", idx)
    last = t.group_by(key, use_threads=False).aggregate([("__i", "max")])["__i_max"]
    if len(last) == tbl.num_rows:
        return tbl
    return tbl.take(np.sort(last.to_numpy()))


#: Columns that a source may lack but another gave (labels of a newsroom table, the language): when a
#: message is replaced and the new row has NULL there, the stored value is kept.
KEEP_IF_MISSING = {"messages": ("given_camp", "given_narrative", "lang")}


def _same_condition(table: str, key: list[str]) -> str:
    """SQL condition: a stored row ``t`` equals the new row ``n`` apart from where it was read."""
    keep = KEEP_IF_MISSING.get(table, ())
    cols = [c for c in SCHEMAS[table] if c not in key and not c.startswith("source_")]
    return " AND ".join(
        f'(n."{c}" IS NULL OR t."{c}" = n."{c}")' if c in keep else f't."{c}" IS NOT DISTINCT FROM n."{c}"'
        for c in cols)


def _carry_over(con: Any, table: str, key: list[str], tbl: pa.Table) -> pa.Table:
    """Fill the KEEP_IF_MISSING columns of ``tbl`` that are NULL from the stored rows."""
    keep = KEEP_IF_MISSING.get(table, ())
    if not keep or not any(tbl[c].null_count for c in keep):
        return tbl
    con.register("_bl_cmp", tbl.select(key))
    try:
        sel = ", ".join(f"t.{c}" for c in (*key, *keep))
        cond = " AND ".join(f"t.{k} = n.{k}" for k in key)
        old = _arrow(con.sql(f"SELECT {sel} FROM {table} t JOIN _bl_cmp n ON {cond}"))
    finally:
        _unregister(con, "_bl_cmp")
    if old.num_rows == 0:
        return tbl
    pos = pc.index_in(tbl[key[0]], value_set=old[key[0]])
    for c in keep:
        stored = pc.take(old[c], pos)
        i = tbl.column_names.index(c)
        tbl = tbl.set_column(i, c, pc.coalesce(tbl[c], stored))
    return tbl


def _upsert(con: Any, table: str, key: list[str], tbl: pa.Table, children: Iterable[str] = ()) -> tuple[int, int]:
    """Delete the stored rows of ``table`` whose key is in ``tbl`` (and their children) before the new
    rows go in; return (rows that existed, rows that existed unchanged)."""
    cond = " AND ".join(f"t.{k} = n.{k}" for k in key)
    con.register("_bl_cmp", tbl)
    try:
        n_old, n_same = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {_same_condition(table, key)}) "
            f"FROM {table} t JOIN _bl_cmp n ON {cond}").fetchall()[0]
        for child in children:  # children can exist without a parent row: delete them either way
            con.execute(f"DELETE FROM {child} WHERE {key[0]} IN (SELECT {key[0]} FROM _bl_cmp)").fetchall()
        if n_old:
            con.execute(f"DELETE FROM {table} t USING _bl_cmp n WHERE {cond}").fetchall()
    finally:
        _unregister(con, "_bl_cmp")
    return int(n_old or 0), int(n_same or 0)


def _stored_ids(con: Any) -> set[str]:
    """Message ids with a stored message, delivery or targeting row."""
    tbl = _arrow(con.sql("SELECT message_id FROM messages UNION SELECT message_id FROM deliveries "
                         "UNION SELECT message_id FROM targeting"))
    return set(tbl["message_id"].to_pylist())


def _arrow(rel: Any) -> pa.Table:
    return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()  # DuckDB 1.x: arrow


def _write_stream(con: Any, batch: Batch) -> tuple[int, int, dict[str, int], set[str]]:
    """Write the pieces of ``batch.stream`` (messages and their deliveries) by the rules of the
    whole-file way. Returns (messages that existed, of them unchanged, rows written per table, the
    ids written).

    Pieces go in one by one as they are parsed while they hold only new ids (nothing stored to
    compare, carry over or delete) and later pieces are still being parsed; from the first piece
    with a stored id, or once all pieces are parsed, the rest is upserted at once (one join and one
    delete per table, as for a whole file), its deliveries inserted with all of DuckDB's threads.
    The last line of an id wins within a piece; an id in two pieces raises :class:`StreamAborted`.

    Inserts while pieces are parsed run in this thread (``threads = 1``): the cores are busy
    parsing anyway, and inserts by several threads each leave a partial row group per thread
    (measured on 100,000 ads in 36 pieces: 1.7 s of CPU to compress them again at the next
    checkpoint). Every row group goes to the file as soon as it is full
    (``write_buffer_row_group_count = 1``; with the default 5, the messages' last row groups waited
    for the commit: 0.9 s on one core)."""
    stream = batch.stream
    assert stream is not None
    key = ["message_id"]
    stored = _stored_ids(con)
    seen: set[str] = set()
    written: dict[str, int] = {"messages": 0}

    def take(piece: dict[str, pa.Table]) -> tuple[dict[str, pa.Table], bool]:
        """The piece's rows (the last line of each id) and whether any of its ids is stored."""
        msgs = piece["messages"]
        batch.streamed += msgs.num_rows
        ids = msgs["message_id"].to_pylist()
        fresh = set(ids)
        if not seen.isdisjoint(fresh):
            raise StreamAborted("a message id is in two pieces of the file")
        seen.update(fresh)
        out = dict(piece)
        if len(fresh) != len(ids):
            _name_duplicates(msgs, key, batch.notes)
            out["messages"] = tbl = _last_occurrence(msgs, key)
            if "deliveries" in piece:
                keep = pc.is_in(piece["deliveries"]["_row"], value_set=tbl["_row"].combine_chunks())
                out["deliveries"] = piece["deliveries"].filter(keep)
        return out, not stored.isdisjoint(fresh)

    def insert(parts: list[dict[str, pa.Table]], *, any_order: bool) -> None:
        for table in ("messages", "deliveries"):
            tables = [p[table] for p in parts if table in p]
            if tables:
                _insert(con, table, pa.concat_tables(tables), any_order=any_order)
                written[table] = written.get(table, 0) + sum(t.num_rows for t in tables)

    rest: list[dict[str, pa.Table]] = []
    pieces = iter(stream)
    with _settings(con, threads=1, write_buffer_row_group_count=1):
        for piece in pieces:
            parsed = stream.parsed()
            rows, known = take(piece)
            if known or parsed:
                rest.append(rows)
                break
            insert([rows], any_order=False)
    rest.extend(take(p)[0] for p in pieces)
    n_old = n_same = 0
    if rest:
        msgs = pa.concat_tables([p["messages"] for p in rest])
        if stored:
            msgs = _carry_over(con, "messages", key, msgs)
            n_old, n_same = _upsert(con, "messages", key, msgs, ["deliveries", "targeting"])
        # messages in one thread (they continue the last row group; a parallel insert of a row group
        # or two leaves a partial one per thread), deliveries (many row groups) with all threads
        with _settings(con, threads=1, write_buffer_row_group_count=1):
            insert([{"messages": msgs}], any_order=False)
        insert([{"deliveries": p["deliveries"]} for p in rest if "deliveries" in p], any_order=True)
    return n_old, n_same, written, seen


def write_batch(store: Store, batch: Batch, *, source_file: str, sha256: str, run_id: str,
                check: Callable[[Batch], None] | None = None) -> WriteResult:
    """Write one file's batch in one transaction (all or nothing) and record it in ``sources``.
    ``check`` sees the complete batch before anything is committed (it may raise: nothing is
    written). A streamed batch raises :class:`StreamAborted` after rolling back when it cannot be
    finished as streamed."""
    try:
        with store.transaction() as con:
            return _write(con, batch, source_file=source_file, sha256=sha256, run_id=run_id, check=check)
    finally:
        if batch.stream is not None:
            batch.stream.close()


def _write(con: Any, batch: Batch, *, source_file: str, sha256: str, run_id: str,
           check: Callable[[Batch], None] | None) -> WriteResult:
    written: dict[str, int] = {}
    notes = batch.notes
    n_old = n_same = 0
    streamed: set[str] = set()
    if batch.stream is not None:
        n_old, n_same, written, streamed = _write_stream(con, batch)
        if batch.finish is not None:
            batch.finish()
    if check is not None:
        check(batch)
    plan: list[tuple[str, list[str], list[str]]] = [
        ("messages", ["message_id"], ["deliveries", "targeting"]),
        ("audiences", ["audience_id"], ["audience_attrs"]),
        ("exposures", ["audience_id", "message_id"], []),
        ("sponsor_spend", ["report", "row_key"], []),
    ]
    for table, key, children in plan:
        if not batch.n_rows(table):
            continue
        n_in = batch.n_rows(table)
        tbl = batch.to_arrow(table)
        if table == batch.kind:
            _name_duplicates(tbl, key, notes)
        tbl = _last_occurrence(tbl, key)
        if streamed and table == "messages" and not streamed.isdisjoint(tbl["message_id"].to_pylist()):
            raise StreamAborted("a row read row-wise has the id of a streamed one")
        tbl = _carry_over(con, table, key, tbl)
        old, same = _upsert(con, table, key, tbl, children)
        if table == batch.kind:
            n_old, n_same = n_old + old, n_same + same
        _insert(con, table, tbl)
        written[table] = written.get(table, 0) + tbl.num_rows
        keep = tbl["_row"].combine_chunks()
        for child in children:
            if batch.n_rows(child):
                ctbl = batch.to_arrow(child)
                if len(keep) != n_in:
                    ctbl = ctbl.filter(pc.is_in(ctbl["_row"], value_set=keep))
                _insert(con, child, ctbl)
                written[child] = written.get(child, 0) + ctbl.num_rows
    if batch.rejects:
        seen: dict[tuple[int, str], Reject] = {}
        for r in batch.rejects:
            seen.setdefault((r.line, r.field), r)
        rtbl = pa.table({
            "source_file": pa.array([source_file] * len(seen), _S),
            "source_sha256": pa.array([sha256] * len(seen), _S),
            "line": pa.array([k[0] for k in seen], _I),
            "field": pa.array([k[1] for k in seen], _S),
            "reason": pa.array([r.reason for r in seen.values()], _S),
            "raw": pa.array([r.raw for r in seen.values()], _S),
        })
        _insert(con, "rejects", rtbl, mode="INSERT OR IGNORE")
        written["rejects"] = rtbl.num_rows
    distinct = written.get(batch.kind, 0)
    # sources.kept: distinct rows kept; rows_read - kept - rejected: duplicates of another line
    con.execute(
        "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [sha256, source_file, batch.format, batch.kind, batch.rows_read, distinct,
         len(batch.rejects), datetime.now(UTC).replace(tzinfo=None), run_id],
    ).fetchall()
    return WriteResult(kept=batch.kept, rejected=len(batch.rejects), added=distinct - n_old,
                       updated=n_old - n_same, skipped=n_same + (batch.kept - distinct), written=written,
                       duplicates=batch.kept - distinct, notes=list(notes))
