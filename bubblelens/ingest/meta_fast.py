"""Column-wise fast path of the Meta API reader for large JSON Lines files.

Arrow's JSON reader parses the file in C++ against the plain current API schema (:data:`SCHEMA`):
an unknown field, a value of another JSON type or a key given twice stops it, and the file goes the
slow way. Ranges, shares and dates are checked with Arrow compute over whole columns, and deliveries
are built by flattening the list columns (no Python object per delivery cell). Only rows that pass
every check are taken here; any other row (no ``id``, a bad bound, a share outside [0, 1], an odd
date) is handed back to the row-wise reader, which takes or rejects it with the same rules. A file
whose values are not the plain string-typed ones is retried with Arrow's type inference (numbers as
bounds, say); one with old 2019 names, DSA fields or unknown fields is read row-wise entirely: same
result, slower.

Both cores work: the file is cut at line ends into pieces of :data:`PIECE_BYTES`, and a pool with one
thread per core parses and builds the pieces (Arrow's reader and kernels release the GIL).

:class:`PieceStream` is the same reading, handed out piece by piece in file order as the pool gets
them done (pieces of :data:`STREAM_PIECE_BYTES`): the writer stores piece k while k+1 and k+2 are
parsed, so that DuckDB's inserts fill the time the cores would otherwise wait.
"""

from __future__ import annotations

import os
import threading
import unicodedata
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from .jsonio import MAX_STRING
from .text import DecodedFile, is_utf8
from .writer import SCHEMAS, StreamAborted

__all__ = ["MIN_LINES", "MIN_SPLIT_BYTES", "PIECE_BYTES", "SCHEMA", "STREAM_PIECE_BYTES", "PieceStream",
           "open_stream", "read_fast"]

#: Below this many lines the row-wise reader is as fast.
MIN_LINES = 2000
#: Largest piece parsed and built by one thread (pieces are cut at line ends; their number is a
#: multiple of the cores, so that every core gets as much to do).
PIECE_BYTES = 32 << 20
#: Piece size of a :class:`PieceStream`: small enough that the writer starts early (the first piece
#: is ready after about 0.3 s), large enough that the ~16 ms of CPU each piece costs whatever its
#: size (kernel calls, the SHA-1 query) stays small (20 pieces for 100,000 ads; see :func:`_stream_pieces`).
STREAM_PIECE_BYTES = 16 << 20
#: A file smaller than this is one piece (threads would cost more than they save).
MIN_SPLIT_BYTES = 4 << 20
#: Arrow's parse block: 1 MB blocks parse a fifth faster than one block per piece (they stay in cache).
_BLOCK = 1 << 20
_LIST = ("ad_creative_bodies", "ad_creative_link_titles", "ad_creative_link_descriptions",
         "ad_creative_link_captions", "languages", "publisher_platforms")
_STR = ("id", "ad_snapshot_url", "bylines", "page_id", "page_name", "currency")
_DATES = ("ad_creation_time", "ad_delivery_start_time", "ad_delivery_stop_time")
_RANGES = ("impressions", "spend", "estimated_audience_size")
_DIST = {"demographic_distribution": ("age", "gender"), "delivery_by_region": ("region",)}
FAST_FIELDS = frozenset((*_LIST, *_STR, *_DATES, *_RANGES, *_DIST))
_INT_RE = r"^\d{1,18}$"
_FLOAT_RE = r"^(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$"
_S = pa.string()
_BOUNDS = pa.struct([("lower_bound", _S), ("upper_bound", _S)])
#: The ``/ads_archive`` fields as the API gives them (every scalar a string, bounds and
#: percentages included); Arrow reads a file against it strictly.
SCHEMA = pa.schema([
    *((c, _S) for c in (*_STR, *_DATES)),
    *((c, pa.list_(_S)) for c in _LIST),
    *((c, _BOUNDS) for c in _RANGES),
    ("demographic_distribution", pa.list_(pa.struct([("percentage", _S), ("age", _S), ("gender", _S)]))),
    ("delivery_by_region", pa.list_(pa.struct([("percentage", _S), ("region", _S)]))),
])
#: More text parts than this in one row (bodies + titles + descriptions): de-duplicate by grouping.
_MAX_SLOTS = 8
_NOT_FAST = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, KeyError)


class _NotFast(Exception):
    """The file's shape is not the plain current one: read it row-wise."""


class _OtherTypes(Exception):
    """A value is not of the API's JSON type (a number as a bound): Arrow's inference may read it."""


@dataclass
class _Piece:
    """What one piece of the file gave: its clean messages and deliveries, its other rows."""

    messages: pa.Table
    deliveries: list[pa.Table]
    bad_rows: list[int]
    n: int


def _col(tbl: pa.Table, name: str, n: int) -> pa.ChunkedArray | pa.Array:
    return tbl[name] if name in tbl.column_names else pa.nulls(n)


def _one(arr: Any) -> Any:
    """One contiguous array (a chunked column combined)."""
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _const(value: Any, type_: pa.DataType, n: int) -> pa.Array:
    """``n`` copies of one value (``pa.repeat``: one allocation, not a fill of nulls)."""
    return pa.repeat(pa.scalar(value, type_), n)


def _is_str(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)


def _bad_numbers(arr: Any, pattern: str) -> Any:
    """True where a value is present but not a number of that pattern (strings) — ints are fine."""
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_null(arr.type):
        return pc.fill_null(pc.less(arr, 0), False) if not pa.types.is_null(arr.type) else None
    if not _is_str(arr.type):
        raise _NotFast
    return pc.fill_null(pc.invert(pc.match_substring_regex(arr, pattern)), False)


def _bound(arr: Any) -> Any:
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.int64())
    return pc.cast(arr, pa.int64(), safe=False) if _is_str(arr.type) else pc.cast(arr, pa.int64())


def _dates(arr: Any) -> tuple[Any, Any]:
    """(timestamps, bad-mask) for a date column (Arrow may have inferred timestamps already)."""
    if pa.types.is_null(arr.type) or arr.null_count == len(arr):
        return pa.nulls(len(arr), pa.timestamp("us")), None
    if pa.types.is_timestamp(arr.type):  # Arrow stores UTC; drop the zone like parse_date does
        out = arr.cast(pa.timestamp("us", tz=arr.type.tz)).cast(pa.int64()).cast(pa.timestamp("us"))
        bad = None
    elif _is_str(arr.type):
        a = pc.strptime(arr, format="%Y-%m-%dT%H:%M:%S%z", unit="us", error_is_null=True)
        a = a.cast(pa.int64()).cast(pa.timestamp("us"))
        b = pc.strptime(arr, format="%Y-%m-%d", unit="us", error_is_null=True)
        out = pc.coalesce(a, b)
        bad = pc.and_(pc.is_valid(arr), pc.is_null(out))
    else:
        raise _NotFast
    year = pc.year(out)
    odd = pc.fill_null(pc.or_(pc.less(year, 1990), pc.greater(year, 2100)), False)
    return out, odd if bad is None else pc.or_(bad, odd)


def _string_bytes(arr: pa.Array) -> np.ndarray:
    """The bytes of all of a string array's values, end to end, as a uint8 view (no copy; numpy's
    kernels on it run without the GIL, which the other piece's thread and the writer need)."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64 if pa.types.is_large_string(arr.type)
                            else np.int32)
    lo, hi = int(offsets[arr.offset]), int(offsets[arr.offset + len(arr)])
    buf = arr.buffers()[2]
    if buf is None or hi <= lo:
        return np.zeros(0, dtype=np.uint8)
    return np.frombuffer(buf, dtype=np.uint8)[lo:hi]


def _decimal_chars(a: np.ndarray) -> bool:
    """True when every byte is one of ``0-9 . e E + -`` (the characters of a plain decimal number)."""
    digit = (a >= 0x30) & (a <= 0x39)
    return bool((digit | (a == 0x2E) | ((a | 0x20) == 0x65) | (a == 0x2B) | (a == 0x2D)).all())


def _shares(pct: Any) -> tuple[Any, Any]:
    """(shares as float64, mask of values that are not plain decimal numbers — None for none).
    Plain case: no nulls, only the characters ``0-9 . e E + -``, and Arrow's cast takes every
    value; Arrow and Python both round correctly, so the floats are the row-wise reader's. Else
    the values are matched against the decimal pattern one by one."""
    if pa.types.is_floating(pct.type) or pa.types.is_integer(pct.type):
        share = pc.cast(pct, pa.float64())
        return share, pc.is_null(share)
    if not _is_str(pct.type) or pa.types.is_null(pct.type):
        raise _NotFast
    if pct.null_count == 0 and _decimal_chars(_string_bytes(pct)):
        try:
            return pc.cast(pct, pa.float64()), None
        except pa.ArrowInvalid:
            pass
    nonnum = pc.fill_null(pc.invert(pc.match_substring_regex(pct, _FLOAT_RE)), True)
    return pc.cast(pc.if_else(nonnum, None, pct), pa.float64()), nonnum


def _latin_or_punctuation(raw: bytes | np.ndarray) -> bool:
    """True when every non-ASCII character of ``raw`` (valid UTF-8) is in U+0080–U+00FF (lead byte
    C2 or C3) or U+2002–U+203F (E2 80 82–BF): accented Latin letters, « », ’, “ ”, –, —, …. Each of
    them is NFC and composes with nothing before it (``NFC_Quick_Check`` Yes, combining class 0;
    ``tests/test_ingest_fast.py`` checks every one), so such text is NFC without decoding it."""
    a = np.frombuffer(raw, dtype=np.uint8) if isinstance(raw, bytes) else raw
    at = np.flatnonzero(a >= 0xC0)  # where a character of 2 to 4 bytes starts
    lead = a[at]
    latin = (lead == 0xC2) | (lead == 0xC3)
    if latin.all():
        return True
    e2 = at[lead == 0xE2]
    if len(e2) + int(latin.sum()) != len(lead) or e2[-1] + 2 >= len(a):
        return False
    third = a[e2 + 2]
    return bool((a[e2 + 1] == 0x80).all() and ((third >= 0x82) & (third <= 0xBF)).all())


def _nfc(flat: pa.Array) -> pa.Array:
    """No-break spaces to spaces, then NFC. Skips both when the values buffer (all strings end to end)
    has no U+00A0 and is NFC already: a string that is not NFC makes any concatenation holding it
    non-NFC, so the one check over the buffer answers for every string (and costs a tenth). Text of
    Latin letters and common punctuation needs not even the check (:func:`_latin_or_punctuation`)."""
    if flat.null_count == 0 and len(flat):
        raw = _string_bytes(flat)
        if not (raw >= 0x80).any():
            return flat
        c2 = np.flatnonzero(raw[:-1] == 0xC2)
        if not (raw[c2 + 1] == 0xA0).any():  # no U+00A0
            if _latin_or_punctuation(raw):
                return flat
            try:
                if unicodedata.is_normalized("NFC", raw.tobytes().decode("utf-8")):
                    return flat
            except UnicodeDecodeError:
                pass
    return pc.utf8_normalize(pc.replace_substring(flat, "\xa0", " "), "NFC")


def _parts(flat: pa.Array) -> pa.Array:
    """Text parts as the row-wise reader cleans them (NFC, no-break spaces made spaces, trimmed);
    an empty part becomes null."""
    part = pc.utf8_trim_whitespace(_nfc(flat))
    return pc.if_else(pc.equal(pc.utf8_length(part), 0), pa.scalar(None, _S), part)


def _text(lists: list[Any], n: int) -> pa.Array:
    """The de-duplicated join (order kept) of each row's bodies, link titles and descriptions,
    column-wise: NFC, no-break spaces to spaces, trimmed, empty parts and repeats dropped; "" when
    nothing is left (same rule as the row-wise reader).

    Part ``j`` of each list is a "slot" (one string or null per row): a slot is nulled where it
    equals an earlier slot of the same row, and the slots are joined in order. Rows with more than
    :data:`_MAX_SLOTS` parts in all make the whole piece go through :func:`_text_grouped`."""
    slots: list[Any] = []
    for arr in lists:
        if not pa.types.is_list(arr.type):
            continue
        a = _one(arr)
        lens = pc.fill_null(pc.list_value_length(a), 0).cast(pa.int64())
        k = pc.max(lens).as_py() or 0
        if len(slots) + k > _MAX_SLOTS:
            return _text_grouped(lists, n)
        if k == 0:
            continue
        flat = _parts(_one(pc.list_flatten(a)).cast(_S))
        starts = pc.subtract(pc.cumulative_sum(lens), lens)
        for j in range(k):
            slots.append(pc.take(flat, pc.if_else(pc.greater(lens, j), pc.add(starts, j), None)))
    if not slots:
        return _const("", _S, n)
    kept: list[Any] = []
    for s in slots:
        for t in kept:
            s = pc.if_else(pc.fill_null(pc.equal(s, t), False), pa.scalar(None, _S), s)
        kept.append(s)
    out = pc.fill_null(kept[0], "")
    for s in kept[1:]:
        # binary_join_element_wise is null where s is null; "" means no part yet
        both = pc.binary_join_element_wise(out, s, "\n\n")
        out = pc.if_else(pc.is_null(s), out, pc.if_else(pc.equal(out, ""), s, both))
    return out


def _text_grouped(lists: list[Any], n: int) -> pa.Array:
    """:func:`_text` for rows with many parts: first occurrences by grouping (row, part)."""
    flats, parents = [], []
    for arr in lists:
        if pa.types.is_list(arr.type):
            flats.append(_one(pc.list_flatten(arr)).cast(_S))
            parents.append(_one(pc.list_parent_indices(arr)).cast(pa.int64()))
    flat = pa.concat_arrays(flats)
    par = pa.concat_arrays(parents)
    t = pa.table({"par": par, "s": _parts(flat), "gi": pa.array(np.arange(len(flat), dtype=np.int64))})
    t = t.filter(pc.is_valid(t["s"]))
    first = t.group_by(["par", "s"], use_threads=False).aggregate([("gi", "min")])
    first = first.sort_by([("par", "ascending"), ("gi_min", "ascending")])
    agg = first.group_by("par", use_threads=False).aggregate([("s", "list")])
    joined = pc.binary_join(agg["s_list"], "\n\n")
    pos = pc.index_in(pa.array(np.arange(n, dtype=np.int64)), value_set=agg["par"])
    return pc.fill_null(pc.take(joined, pos), "")


#: One private in-memory DuckDB for the SHA-1s, made on first use (a connection costs ~40 ms), and a
#: cursor of it per thread.
_SHA_DB: list[duckdb.DuckDBPyConnection] = []
_SHA_LOCK = threading.Lock()
_SHA_CURSOR = threading.local()


def _sha_cursor() -> duckdb.DuckDBPyConnection:
    cur: duckdb.DuckDBPyConnection | None = getattr(_SHA_CURSOR, "cursor", None)
    if cur is None:
        with _SHA_LOCK:
            if not _SHA_DB:
                db = duckdb.connect()
                db.execute("SET threads = 1")  # the pieces already run one per core
                _SHA_DB.append(db)
        cur = _SHA_CURSOR.cursor = _SHA_DB[0].cursor()
    return cur


def _sha1_hex(texts: pa.Array) -> pa.Array:
    """``store.text_hash`` of each text (SHA-1 of its UTF-8 bytes, hex), null for ""; computed by
    DuckDB's ``sha1`` in C++ on this thread's cursor of a private in-memory database (same digest,
    no Python per row)."""
    con = _sha_cursor()
    con.register("_bl_texts", pa.table({"s": texts}))
    try:
        rel = con.sql("SELECT CASE WHEN s = '' THEN NULL ELSE sha1(s) END AS h FROM _bl_texts")
        out = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    finally:
        con.unregister("_bl_texts")
    return out["h"].combine_chunks().cast(pa.string())


def _first(arr: Any) -> pa.Array:
    """The first element of each list; null for a null or empty list."""
    a = _one(arr)
    if pa.types.is_null(a.type) or len(a.values) == 0:
        return pa.nulls(len(a), pa.string())
    has = pc.fill_null(pc.greater(pc.list_value_length(a), 0), False)
    starts = pc.if_else(has, a.offsets[:-1], 0)
    return pc.if_else(has, pc.take(a.values, starts), pa.scalar(None, a.type.value_type))


def _cores() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _pieces(data: bytes, workers: int, piece_bytes: int | None = None, start: int = 0,
            stop: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of pieces of ``data[start:stop]`` of at most about ``piece_bytes``
    (:data:`PIECE_BYTES`), each ending at a line end, as many as a multiple of ``workers`` (one piece
    for a small file)."""
    stop = len(data) if stop is None else stop
    n = 1
    if stop - start >= MIN_SPLIT_BYTES:
        n = -(-(stop - start) // (piece_bytes or PIECE_BYTES))  # pieces of at most piece_bytes ...
        n = -(-n // workers) * workers  # ... as many as a multiple of the workers
    size = -(-(stop - start) // n)
    out: list[tuple[int, int]] = []
    while start < stop:
        cut = data.find(b"\n", start + size - 1, stop) if start + size < stop else -1
        end = stop if cut < 0 else cut + 1
        out.append((start, end))
        start = end
    return out


def _stream_pieces(data: bytes, workers: int) -> list[tuple[int, int]]:
    """Pieces for a :class:`PieceStream`: of :data:`STREAM_PIECE_BYTES`, but the last ``workers``
    a quarter of that, so that little is left to insert once the last piece is parsed."""
    small = STREAM_PIECE_BYTES // 4
    if len(data) < max(MIN_SPLIT_BYTES, 4 * workers * small):
        return _pieces(data, workers, STREAM_PIECE_BYTES)
    cut = data.find(b"\n", len(data) - workers * small) + 1
    if cut <= 0 or cut >= len(data):
        return _pieces(data, workers, STREAM_PIECE_BYTES)
    return _pieces(data, workers, STREAM_PIECE_BYTES, stop=cut) + _pieces(data, workers, small, start=cut)


def _shift(piece: _Piece, row0: int) -> _Piece:
    """The piece with its row numbers counted from ``row0`` (pieces are built from row 0)."""
    if not row0:
        return piece
    m = piece.messages
    for c in ("_row", "source_line"):
        m = m.set_column(m.column_names.index(c), c, pc.add(m[c], row0))
    ds = [d.set_column(d.column_names.index("_row"), "_row", pc.add(d["_row"], row0))
          for d in piece.deliveries]
    return _Piece(m, ds, [row0 + i for i in piece.bad_rows], piece.n)


def _eligible(src: DecodedFile) -> bool:
    """JSON Lines of objects, UTF-8 without BOM, LF line ends, enough lines to pay off."""
    data = src.data
    if src.had_bom or data.count(b"\n", 0, 1 << 24) < MIN_LINES or b"\r" in data[:65536]:
        return False
    if b"\\u000" in data or b"\\u001" in data or b"\\u007f" in data:  # control characters: row-wise
        return False
    head = data[:64].lstrip()
    return head.startswith(b"{") and not head.replace(b" ", b"").startswith(b'{"data"')


class PieceStream:
    """The pieces of a file, parsed and built by a pool (one thread per core) from the moment the
    stream is made, handed out in file order as ``{"messages": ..., "deliveries": ...}`` tables with
    their row numbers counted from the file's start. Once iterated, :attr:`bad_lines` (1-based lines
    the pieces left to the row-wise reader) and :attr:`n` (rows) are complete. A piece that cannot be
    read column-wise raises :class:`StreamAborted`: the file is then read again with
    :func:`read_fast` and the row-wise reader. :meth:`close` stops the pool (always call it)."""

    def __init__(self, src: DecodedFile, pieces: list[tuple[int, int]], workers: int) -> None:
        self.src = src
        self.bad_lines: list[int] = []
        self.n = 0
        self._pool = ThreadPoolExecutor(min(len(pieces), workers), thread_name_prefix="bubblelens-piece")
        self._futures: list[Future[_Piece]] = [self._pool.submit(_read_piece, src, a, b) for a, b in pieces]

    def __iter__(self) -> Iterator[dict[str, pa.Table]]:
        for fut in self._futures:
            try:
                piece = fut.result()
            except (*_NOT_FAST, _NotFast, _OtherTypes) as e:
                raise StreamAborted(f"a piece is not in the plain API shape ({type(e).__name__})") from e
            piece = _shift(piece, self.n)
            self.n += piece.n
            self.bad_lines.extend(i + 1 for i in piece.bad_rows)
            out = {"messages": piece.messages}
            if piece.deliveries:
                out["deliveries"] = pa.concat_tables(piece.deliveries)
            yield out

    def parsed(self) -> bool:
        """True once every piece is parsed and built."""
        return all(f.done() for f in self._futures)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def open_stream(src: DecodedFile) -> PieceStream | None:
    """A :class:`PieceStream` of ``src``, or None when the file is not one for the column-wise path
    or is too small to be cut (then :func:`read_fast` reads it at once)."""
    if not _eligible(src):
        return None
    workers = _cores()
    pieces = _stream_pieces(src.data, workers)
    return PieceStream(src, pieces, workers) if len(pieces) > 1 else None


def read_fast(src: DecodedFile) -> tuple[dict[str, pa.Table], list[int], int] | None:
    """Arrow tables (messages, deliveries) of the clean rows, the 1-based lines of the others and
    the number of rows, or None when the file must be read row-wise."""
    if not _eligible(src):
        return None
    data = src.data
    workers = _cores()
    pieces = _pieces(data, workers)
    try:
        try:
            if len(pieces) == 1:
                parts = [_read_piece(src, *pieces[0])]
            else:
                with ThreadPoolExecutor(min(len(pieces), workers)) as ex:
                    parts = list(ex.map(lambda p: _read_piece(src, *p), pieces))
        except _OtherTypes:  # e.g. numbers as bounds: let Arrow infer the types of the whole file
            parts = [_read_piece(src, 0, len(data), infer=True)]
    except (*_NOT_FAST, _NotFast, _OtherTypes):
        return None
    row0 = 0
    for i, p in enumerate(parts):
        parts[i], row0 = _shift(p, row0), row0 + p.n
    out = {"messages": pa.concat_tables([p.messages for p in parts])}
    deliveries = [d for p in parts for d in p.deliveries]
    if deliveries:
        out["deliveries"] = pa.concat_tables(deliveries)
    return out, [i + 1 for p in parts for i in p.bad_rows], row0


def _parse_strict(buf: pa.Buffer, block: int) -> pa.Table:
    """Arrow's JSON reader against :data:`SCHEMA`, refusing unknown fields, in one thread."""
    return pj.read_json(
        pa.BufferReader(buf), read_options=pj.ReadOptions(use_threads=False, block_size=block),
        parse_options=pj.ParseOptions(newlines_in_values=False, explicit_schema=SCHEMA,
                                      unexpected_field_behavior="error"))


def _read_piece(src: DecodedFile, start: int, end: int, *, infer: bool = False) -> _Piece:
    """Check, parse and build ``data[start:end]`` (rows numbered from 0): valid UTF-8 (Arrow's
    reader does not check), one JSON object per line, parsed strictly against :data:`SCHEMA` (one
    thread: the pieces run in parallel) or with Arrow's inference."""
    data = src.data
    buf = pa.py_buffer(data).slice(start, end - start)
    if not is_utf8(buf):
        raise _NotFast
    # numpy counts the line ends in a third of bytes.count's time, and without the GIL
    lines = int(np.count_nonzero(np.frombuffer(buf, dtype=np.uint8) == 10)) + (end > start and data[end - 1] != 10)
    if infer:
        tbl = pj.read_json(pa.BufferReader(buf), parse_options=pj.ParseOptions(newlines_in_values=False))
    else:
        try:
            tbl = _parse_strict(buf, _BLOCK)
        except pa.ArrowInvalid as e:
            if "changed from" in str(e):
                raise _OtherTypes from e
            if "straddl" not in str(e) or buf.size >= 2**31 - 1:
                raise
            tbl = _parse_strict(buf, buf.size)  # a line longer than a block
    if tbl.num_rows != lines:  # a blank line, or two objects on one line: line numbers would slip
        raise _NotFast
    return _build(tbl, src)


def _build(tbl: pa.Table, src: DecodedFile) -> _Piece:
    n = tbl.num_rows
    if not set(tbl.column_names) <= FAST_FIELDS or "id" not in tbl.column_names:
        raise _NotFast
    tbl = tbl.combine_chunks()
    bad = pc.is_null(tbl["id"])
    if not _is_str(tbl["id"].type):
        raise _NotFast
    for c in _STR:
        if c in tbl.column_names and not _is_str(tbl[c].type):
            raise _NotFast
    for c in _LIST:
        if c in tbl.column_names:
            t = tbl[c].type
            if pa.types.is_null(t):
                continue
            if not (pa.types.is_list(t) and _is_str(t.value_type)):
                raise _NotFast
            if pc.list_flatten(tbl[c]).null_count:
                raise _NotFast
    bad = pc.or_(bad, pc.fill_null(pc.equal(pc.utf8_length(tbl["id"]), 0), False))
    ranges: dict[str, tuple[Any, Any]] = {}
    for c in _RANGES:
        if c not in tbl.column_names or tbl[c].null_count == n:
            ranges[c] = (pa.nulls(n, pa.int64()), pa.nulls(n, pa.int64()))
            continue
        t = tbl[c].type
        if not pa.types.is_struct(t) or {t.field(i).name for i in range(t.num_fields)} - {
                "lower_bound", "upper_bound"}:
            raise _NotFast
        st = _one(tbl[c])
        los: list[Any] = []
        his: list[Any] = []
        for b, store in (("lower_bound", los), ("upper_bound", his)):
            if t.get_field_index(b) < 0:
                store.append(pa.nulls(n, pa.int64()))
                continue
            arr = pc.struct_field(st, b)
            m = _bad_numbers(arr, _INT_RE)
            if m is not None:
                bad = pc.or_(bad, m)
            clean = pc.if_else(m, None, arr) if m is not None else arr
            store.append(_bound(clean))
        lo, hi = los[0], his[0]
        bad = pc.or_(bad, pc.fill_null(pc.greater(lo, hi), False))
        ranges[c] = (lo, hi)
    dates = {}
    for c in _DATES:
        out, m = _dates(_col(tbl, c, n))
        dates[c] = out
        if m is not None:
            bad = pc.or_(bad, m)
    dists: dict[str, tuple[Any, Any, dict[str, Any]]] = {}
    for c, labels in _DIST.items():
        if c not in tbl.column_names or pa.types.is_null(tbl[c].type):
            continue
        t = tbl[c].type
        if not (pa.types.is_list(t) and pa.types.is_struct(t.value_type)):
            raise _NotFast
        arr = _one(tbl[c])
        flat = _one(pc.list_flatten(arr))
        if not len(flat):
            continue
        parents = pc.list_parent_indices(arr).cast(pa.int64())
        vt = t.value_type
        if vt.get_field_index("percentage") < 0:
            raise _NotFast
        share, nonnum = _shares(pc.struct_field(flat, "percentage"))
        out_of_range = pc.fill_null(pc.or_(pc.less(share, 0.0), pc.greater(share, 1.0)), True)
        badcell = out_of_range if nonnum is None else pc.or_(nonnum, out_of_range)
        if pc.any(badcell).as_py():
            badrows = pc.unique(pc.filter(parents, badcell))
            mask = pc.is_in(pa.array(np.arange(n, dtype=np.int64)), value_set=badrows)
            bad = pc.or_(bad, mask)
        lab = {}
        for name in labels:
            if vt.get_field_index(name) >= 0:
                v = pc.struct_field(flat, name)
                if not _is_str(v.type):
                    raise _NotFast
                lab[name] = v.cast(_S)
            else:
                lab[name] = pa.nulls(len(flat), _S)
        dists[c] = (parents, share, lab)

    bad_idx = pc.indices_nonzero(bad).to_pylist()
    keep = pc.invert(bad)
    ids = _one(tbl["id"]).cast(_S)
    text_arr = _text([_col(tbl, c, n) for c in ("ad_creative_bodies", "ad_creative_link_titles",
                                                 "ad_creative_link_descriptions")], n)
    lengths = pc.utf8_length(text_arr)
    if (pc.max(lengths).as_py() or 0) > MAX_STRING:  # a text beyond the limit: row-wise rejects it
        raise _NotFast
    has_text = pc.greater(lengths, 0)
    hashes = _sha1_hex(text_arr)
    url = _col(tbl, "ad_snapshot_url", n).cast(_S)
    if pc.any(pc.match_substring(url, "access_token")).as_py():
        url = pc.replace_substring_regex(url, r"&access_token(=[^&#]*)?", "")
        url = pc.replace_substring_regex(url, r"\?access_token(=[^&#]*)?&?", "?")
        url = pc.replace_substring_regex(url, r"\?+$", "")  # as rstrip("?") row-wise
    langs = _col(tbl, "languages", n)
    rows = pa.array(np.arange(n, dtype=np.int64))

    def lst(name: str) -> Any:
        c = _col(tbl, name, n)
        return c if pa.types.is_list(c.type) else pa.nulls(n, pa.list_(_S))

    def empty_if_null(name: str) -> Any:
        c = lst(name)
        return pc.if_else(pc.is_null(c), pa.scalar([], pa.list_(_S)), c) if c.null_count else c

    flags = pc.if_else(has_text, pa.scalar([], pa.list_(_S)), pa.scalar(["no_text"], pa.list_(_S)))
    cols: dict[str, Any] = {
        "message_id": ids, "source_format": _const("meta", _S, n),
        "source_file": _const(str(src.path), _S, n), "source_line": pc.add(rows, 1),
        "source_sha256": _const(src.sha256, _S, n),
        "text": pc.if_else(has_text, text_arr, None), "text_hash": hashes, "has_text": has_text,
        "bodies": empty_if_null("ad_creative_bodies"), "link_titles": empty_if_null("ad_creative_link_titles"),
        "link_descriptions": empty_if_null("ad_creative_link_descriptions"),
        "link_captions": empty_if_null("ad_creative_link_captions"),
        "sponsor": _col(tbl, "bylines", n).cast(_S),
        "sponsor_id": _col(tbl, "page_id", n).cast(_S),
        "page_name": _col(tbl, "page_name", n).cast(_S),
        "channel": _const("social_ad", _S, n),
        "platforms": lst("publisher_platforms"),
        "date_start": dates["ad_delivery_start_time"], "date_stop": dates["ad_delivery_stop_time"],
        "created_at": dates["ad_creation_time"], "url": url,
        "lang": _first(lst("languages")),
        "languages": langs if pa.types.is_list(langs.type) else pa.nulls(n, pa.list_(_S)),
        "impressions_lower": ranges["impressions"][0], "impressions_upper": ranges["impressions"][1],
        "spend_lower": pc.cast(ranges["spend"][0], pa.float64()),
        "spend_upper": pc.cast(ranges["spend"][1], pa.float64()),
        "currency": _col(tbl, "currency", n).cast(_S),
        "eu_total_reach": pa.nulls(n, pa.int64()),
        "audience_size_lower": ranges["estimated_audience_size"][0],
        "audience_size_upper": ranges["estimated_audience_size"][1],
        "given_camp": pa.nulls(n, _S), "given_narrative": pa.nulls(n, _S),
        "flags": flags, "extra": pa.nulls(n, _S),
    }
    schema = SCHEMAS["messages"]
    msgs = pa.table({k: cols[k] if cols[k].type == schema[k] else pc.cast(cols[k], schema[k]) for k in schema})
    msgs = msgs.append_column("_row", rows)
    if bad_idx:
        msgs = msgs.filter(keep)
    dparts = []
    for c, (parents, share, lab) in dists.items():
        kind = "demographic" if c == "demographic_distribution" else "region"
        m = len(share)
        d = pa.table({
            "message_id": pc.take(ids, parents),
            "kind": _const(kind, _S, m),
            "age": lab.get("age", pa.nulls(m, _S)),
            "gender": lab.get("gender", pa.nulls(m, _S)),
            "region": lab.get("region", pa.nulls(m, _S)),
            "country": pa.nulls(m, _S),
            "share": share, "count": pa.nulls(m, pa.int64()), "_row": parents,
        })
        dparts.append(d.filter(pc.take(keep, parents)) if bad_idx else d)
    return _Piece(msgs, dparts, bad_idx, n)
