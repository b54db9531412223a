"""Chunked streaming readers: Parquet, CSV, JSONL, Meta Ad Library API JSON pages, or a folder of them.

Every reader yields pandas frames of any size; :func:`iter_chunks` re-cuts them into chunks of exactly
``chunk_size`` rows (the last may be shorter), numbered from 0. Chunk ``i`` always holds input rows
``[i * chunk_size, (i + 1) * chunk_size)``, whatever the file's row groups or blocks, so a chunk index is a
stable name for the same rows across runs: that is what makes resuming safe.

Memory stays flat: at most one input block plus one chunk are held at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import ScoreError
from ..ingest.meta_api import join_text

__all__ = ["Chunk", "Rejected", "detect_format", "input_files", "iter_chunks", "iter_frames", "meta_ad_row"]

FORMATS = ("parquet", "csv", "jsonl", "meta")
_SUFFIX = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".json": "meta"}
_EXT = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl", "meta": "json"}
_META_KEYS = ("ad_creative_bodies", "ad_creative_body", "ad_snapshot_url", "ad_creative_link_titles",
              "ad_creative_link_title")
_BLOCK_ROWS = 8192
_SNAPSHOT_ID = re.compile(r"[?&]id=(\d+)")


@dataclass(frozen=True)
class Chunk:
    """Rows ``[start, start + len(frame))`` of the input, the ``index``-th chunk."""

    index: int
    start: int
    frame: pd.DataFrame


def input_files(path: str | Path) -> list[Path]:
    """The files an input names: the file itself, or a folder's readable files sorted by name."""
    p = Path(path)
    if not p.exists():
        raise ScoreError(f"input {p} does not exist")
    if p.is_file():
        return [p]
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in _SUFFIX)
    if not files:
        raise ScoreError(f"folder {p} holds no .parquet, .csv, .jsonl or .json file")
    return files


def detect_format(path: str | Path) -> str:
    """The format of a file (or of a folder's files, which must agree), from the name's suffix."""
    kinds = {_SUFFIX.get(f.suffix.lower()) for f in input_files(path)}
    if None in kinds:
        raise ScoreError(f"cannot tell the format of {path}: name it .parquet, .csv, .jsonl or .json")
    if len(kinds) > 1:
        raise ScoreError(f"folder {path} mixes formats ({', '.join(sorted(k for k in kinds if k))}): name the files "
                         f"of one format instead (e.g. {Path(path).name}/*.{_EXT[sorted(k for k in kinds if k)[-1]]})")
    return str(kinds.pop())


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def meta_ad_row(ad: dict[str, Any]) -> dict[str, Any]:
    """One Meta ``/ads_archive`` ad → ``id, text, page_id, page_name``.

    ``text`` is built as ``bubblelens ingest`` builds it (:func:`..ingest.meta_api.join_text`): the
    creative bodies, link titles and link descriptions (each the new list field, else the old string
    field), de-duplicated, joined by a blank line; a value that is not a string is skipped. The id is
    ``id``, else the ``id=`` of ``ad_snapshot_url`` (2019 pages have no ``id``).
    """
    parts: list[str] = []
    for new, old in (("ad_creative_bodies", "ad_creative_body"),
                     ("ad_creative_link_titles", "ad_creative_link_title"),
                     ("ad_creative_link_descriptions", "ad_creative_link_description")):
        v = ad.get(new)
        parts += [x for x in _as_list(ad.get(old) if v is None else v) if isinstance(x, str)]
    ad_id = ad.get("id")
    if ad_id is None:
        m = _SNAPSHOT_ID.search(str(ad.get("ad_snapshot_url") or ""))
        ad_id = m.group(1) if m else None
    page_id = ad.get("page_id")
    return {"id": None if ad_id is None else str(ad_id), "text": join_text(parts),
            "page_id": None if page_id is None else str(page_id), "page_name": ad.get("page_name")}


def _meta_ads(doc: Any, file: Path) -> list[dict[str, Any]]:
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        return [a for a in doc["data"] if isinstance(a, dict)]
    if isinstance(doc, list):
        return [a for a in doc if isinstance(a, dict)]
    if isinstance(doc, dict) and ("error" in doc or {"message", "code"} <= doc.keys()):
        err = doc.get("error", doc)
        msg = err.get("message") if isinstance(err, dict) else err
        raise ScoreError(f"{file} is a Meta API error body, not ads: {msg}")
    if isinstance(doc, dict) and any(k in doc for k in (*_META_KEYS, "page_id")):
        return [doc]
    raise ScoreError(f"{file} holds no Meta ads (expected an object with 'data', a list, or one ad)")


def _records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    if records and any(k in records[0] for k in _META_KEYS):
        return pd.DataFrame([meta_ad_row(r) for r in records], columns=["id", "text", "page_id", "page_name"])
    return pd.DataFrame.from_records(records)


def _read_parquet(f: Path, rejects: list[Rejected] | None = None) -> Iterator[pd.DataFrame]:
    try:
        pf = pq.ParquetFile(f)
    except (pa.ArrowInvalid, OSError) as e:
        raise ScoreError(f"{f} is not a readable Parquet file: {e}") from e
    for batch in pf.iter_batches(batch_size=_BLOCK_ROWS):
        yield batch.to_pandas()


def _read_csv(f: Path, rejects: list[Rejected] | None = None) -> Iterator[pd.DataFrame]:
    # Every column as a string (ids "as given", leading zeros kept); quoted newlines allowed; the
    # reader skips a UTF-8 BOM. The Ray engine reads with the same options.
    try:
        reader = pacsv.open_csv(f, read_options=pacsv.ReadOptions(block_size=1 << 20),
                                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                                convert_options=csv_convert_options(f))
        for batch in reader:
            yield batch.to_pandas()
    except pa.ArrowInvalid as e:
        raise ScoreError(f"{f}: cannot parse as CSV: {e}") from e


def csv_convert_options(f: Path) -> pacsv.ConvertOptions:
    """CSV conversion that keeps every column a string and empty cells as ``""``."""
    names = pacsv.open_csv(f, parse_options=pacsv.ParseOptions(newlines_in_values=True)).schema.names
    return pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                                quoted_strings_can_be_null=False)


@dataclass(frozen=True)
class Rejected:
    """An input line (or file, line 0) that was not scored, and why: as ``bubblelens ingest`` rejects it."""

    file: str
    line: int
    reason: str


def _read_jsonl(f: Path, rejects: list[Rejected] | None = None) -> Iterator[pd.DataFrame]:
    """JSON objects, one per line; a line that is not one (invalid JSON, not UTF-8, a NUL, beyond the
    limits of ``ingest.jsonio``, not an object) is rejected and the rest goes on (without
    ``rejects``, the first such line raises)."""
    from ..ingest.jsonio import JsonProblem, load_line

    records: list[dict[str, Any]] = []
    with f.open(encoding="utf-8-sig", errors="surrogateescape", newline="\n") as fh:
        for lineno, line in enumerate(fh, 1):
            s = line.strip().lstrip("\ufeff")
            if not s:
                continue
            rec = load_line(s)
            reason = rec.reason if isinstance(rec, JsonProblem) else \
                None if isinstance(rec, dict) else "expected one JSON object per line"
            if reason is not None:
                if rejects is None:
                    raise ScoreError(f"{f}, line {lineno}: {reason}")
                rejects.append(Rejected(f.name, lineno, reason))
                continue
            records.append(rec)
            if len(records) >= _BLOCK_ROWS:
                yield _records_frame(records)
                records = []
    if records:
        yield _records_frame(records)


def _read_meta(f: Path, rejects: list[Rejected] | None = None) -> Iterator[pd.DataFrame]:
    try:
        doc = json.loads(f.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise ScoreError(f"{f}: not JSON ({e.msg}, line {e.lineno})") from e
    ads = _meta_ads(doc, f)
    if ads:
        yield _records_frame(ads)


_READERS = {"parquet": _read_parquet, "csv": _read_csv, "jsonl": _read_jsonl, "meta": _read_meta}


def iter_frames(path: str | Path, *, fmt: str | None = None,
                rejects: list[Rejected] | None = None) -> Iterator[pd.DataFrame]:
    """Stream an input (file or folder) as pandas frames of any size, in file and row order.

    With ``rejects``, bad JSON Lines are listed there and skipped, and so is a file of a folder that
    cannot be read at all (line 0; only before any of its rows was given): the rest goes on."""
    fmt = fmt or detect_format(path)
    if fmt not in _READERS:
        raise ScoreError(f"unknown input format {fmt!r}; choose one of {', '.join(FORMATS)}")
    files = input_files(path)
    for f in files:
        if rejects is None or len(files) == 1:
            yield from _READERS[fmt](f, rejects)
            continue
        it = _READERS[fmt](f, rejects)
        started = False
        while True:
            try:
                frame = next(it)
            except StopIteration:
                break
            except (ScoreError, UnicodeDecodeError) as e:
                if started:
                    raise
                rejects.append(Rejected(f.name, 0, str(e)))
                break
            started = True
            yield frame


def iter_chunks(path: str | Path, *, chunk_size: int, fmt: str | None = None,
                rejects: list[Rejected] | None = None) -> Iterator[Chunk]:
    """Stream an input as :class:`Chunk` s of exactly ``chunk_size`` rows (the last one may be shorter)."""
    if chunk_size < 1:
        raise ScoreError(f"chunk size must be at least 1, got {chunk_size}")
    pending: list[pd.DataFrame] = []
    n_pending = 0
    index = 0
    for frame in iter_frames(path, fmt=fmt, rejects=rejects):
        pending.append(frame)
        n_pending += len(frame)
        while n_pending >= chunk_size:
            buf = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
            yield Chunk(index, index * chunk_size, buf.iloc[:chunk_size].reset_index(drop=True))
            index += 1
            rest = buf.iloc[chunk_size:].reset_index(drop=True)
            pending, n_pending = ([rest], len(rest)) if len(rest) else ([], 0)
    if n_pending:
        buf = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
        yield Chunk(index, index * chunk_size, buf.reset_index(drop=True))
