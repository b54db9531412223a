"""Ingest: read ad-library exports and newsroom tables into the store, losslessly.

>>> from bubblelens.ingest import FORMATS
>>> FORMATS
('meta', 'meta-csv', 'google', 'table', 'targeting')

:func:`ingest_paths` reads files (or folders of them), one transaction per file, and returns an
:class:`IngestReport`. Rows that cannot be taken go to ``rejects``; a file that is not in a readable
format is reported with one sentence and the other files go on. See ``docs/ingest.md``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import IngestError, SchemaError
from ..store import Store
from .detect import FORMATS, detect_format
from .google import read_google
from .mapping import Mapping, load_mapping
from .meta_api import read_meta_api
from .meta_report import read_meta_report
from .salt import salt_for
from .table import read_table, sibling_mapping
from .targeting import TARGETING, ingest_targeting, is_targeting_file
from .text import DecodedFile, read_file
from .writer import Batch, StreamAborted, write_batch

__all__ = ["FORMATS", "FileReport", "IngestReport", "Mapping", "expand_paths", "ingest_file",
           "ingest_paths", "load_mapping", "read_batch"]

SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet")
_READERS = {"meta": read_meta_api, "meta-csv": read_meta_report, "google": read_google,
            "table": read_table}


@dataclass
class FileReport:
    """What one file gave: rows read, kept (added + updated + skipped), rejected; or an error."""

    path: str
    format: str | None = None
    kind: str | None = None
    sha256: str | None = None
    rows_read: int = 0
    kept: int = 0
    rejected: int = 0
    added: int = 0
    updated: int = 0
    skipped: int = 0
    written: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    #: Rows that repeat the key of another line of the file (in ``kept`` and ``skipped``; the last
    #: line of a key wins; the warnings name their lines).
    duplicates: int = 0

    @property
    def distinct(self) -> int:
        """Rows kept once each: rows read = distinct + duplicates + rejected."""
        return self.kept - self.duplicates


@dataclass
class IngestReport:
    """The reports of every file of one ingest run, and the run id."""

    run_id: str
    files: list[FileReport] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return sum(f.kept for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def nothing_read(self) -> bool:
        """True when no file could be read at all (every file failed or held no rows)."""
        return not any(f.error is None and f.rows_read > 0 for f in self.files)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders → their data files (``.json .jsonl .ndjson .csv .tsv .parquet``), sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in SUFFIXES))
        else:
            out.append(p)
    return out


def _resolve_mapping(path: Path, kind: str | None, mapping: Mapping | str | Path | None,
                     map_pairs: Sequence[str]) -> Mapping | None:
    """The mapping given (a file or an object), else ``NAME.mapping.yaml`` beside the file when it is
    for the same kind; ``--map`` pairs go on top. None: the reader guesses from column names."""
    m: Mapping | None = None
    if isinstance(mapping, str | Path):
        m = load_mapping(mapping)
    elif isinstance(mapping, Mapping):
        m = Mapping(**{**mapping.__dict__, "fields": dict(mapping.fields)})
    if m is not None and kind is not None and m.kind != kind:
        raise SchemaError(f"the mapping is for {m.kind}, but kind {kind} was asked for", file=m.source,
                          field="kind")
    if m is None:
        sib = sibling_mapping(path)
        if sib is not None:
            m = load_mapping(sib)
            if kind is not None and m.kind != kind:
                m = None
    if map_pairs:
        m = (m or Mapping(kind=kind or "messages", guess=True)).with_pairs(list(map_pairs))
    return m


def read_batch(path: str | Path, *, format: str | None = None, kind: str | None = None,
               audience_type: str | None = None, mapping: Mapping | str | Path | None = None,
               map_pairs: Sequence[str] = (), salt: str = "", dayfirst: bool | None = None,
               textless: bool = False) -> tuple[DecodedFile, Batch]:
    """Read one file into a :class:`~bubblelens.ingest.writer.Batch` (nothing is written)."""
    p = Path(path)
    src = read_file(p)
    return src, _read_src(src, p, format=format, kind=kind, audience_type=audience_type, mapping=mapping,
                          map_pairs=map_pairs, salt=salt, dayfirst=dayfirst, textless=textless)


def _read_src(src: DecodedFile, p: Path, *, format: str | None, kind: str | None, audience_type: str | None,
              mapping: Mapping | str | Path | None, map_pairs: Sequence[str], salt: str,
              stream: bool = False, dayfirst: bool | None = None, textless: bool = False) -> Batch:
    """:func:`read_batch` of a file read already; ``stream``: a large Meta JSON Lines file comes as
    pieces still being parsed (:attr:`Batch.stream`), for :func:`write_batch` to store as they come."""
    fmt = format or detect_format(src)
    if fmt == TARGETING:
        raise IngestError(f"{p.name} is a targeting table: ingest it with its pages/criteria table "
                          "(bubblelens ingest PAGES CRITERIA --format targeting)")
    if fmt not in _READERS:
        raise IngestError(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")
    if fmt == "table":
        m = _resolve_mapping(p, kind, mapping, map_pairs)
        batch = read_table(src, kind=kind or (m.kind if m else "messages"), mapping=m,
                           audience_type=audience_type, salt=salt, dayfirst=dayfirst, textless=textless)
    else:
        if kind not in (None, "messages"):
            raise IngestError(f"{p.name} is a {fmt} file: it holds messages, not {kind}")
        batch = read_meta_api(src, stream=stream) if fmt == "meta" else _READERS[fmt](src)
    batch.warnings.extend(src.warnings)
    return batch


def _refuse_rejects(path: str | Path) -> Callable[[Batch], None]:
    """The ``--strict`` check: any rejected row, or any optional value left empty because it could not be
    read, stops the file (raised before anything is committed)."""
    def check(batch: Batch) -> None:
        if batch.rejects:
            first = batch.rejects[0]
            raise IngestError(f"{Path(path).name}: {len(batch.rejects)} row(s) rejected (--strict), nothing "
                              f"written; first: line {first.line}, {first.field}: {first.reason}")
        dropped = batch.dropped
        if dropped is not None and dropped.count:  # nothing left empty either
            fld, (line, reason) = min(dropped.first.items(), key=lambda kv: kv[1][0])
            raise IngestError(f"{Path(path).name}: {sum(dropped.count.values())} value(s) unreadable "
                              f"(--strict), nothing written; first: line {line}, {fld}: {reason}")
    return check


def ingest_file(store: Store, path: str | Path, *, run_id: str, format: str | None = None,
                kind: str | None = None, audience_type: str | None = None,
                mapping: Mapping | str | Path | None = None, map_pairs: Sequence[str] = (),
                strict: bool = False, dayfirst: bool | None = None, textless: bool = False,
                salt: str | None = None) -> FileReport:
    """Read and write one file in one transaction. Raises :class:`IngestError` (one sentence) when
    the file cannot be read, and with ``strict`` when any row was rejected (nothing is written).

    A large Meta JSON Lines file is written piece by piece while the next pieces are parsed; when a
    piece turns out not to fit that way (:class:`StreamAborted`), the transaction is rolled back and
    the file is read and written again the whole-file way."""
    t0 = time.perf_counter()
    p = Path(path)
    src = read_file(p)
    opts: dict[str, Any] = {"format": format, "kind": kind, "audience_type": audience_type, "mapping": mapping,
                            "map_pairs": map_pairs, "salt": salt if salt is not None else salt_for(store),
                            "dayfirst": dayfirst,
                            "textless": textless}
    check = _refuse_rejects(path) if strict else None
    batch = _read_src(src, p, stream=True, **opts)
    try:
        res = write_batch(store, batch, source_file=str(path), sha256=src.sha256, run_id=run_id, check=check)
    except StreamAborted:
        batch = _read_src(src, p, **opts)
        res = write_batch(store, batch, source_file=str(path), sha256=src.sha256, run_id=run_id, check=check)
    rep = FileReport(str(path), batch.format, batch.kind, src.sha256, batch.rows_read,
                     warnings=list(batch.warnings))
    rep.kept, rep.rejected, rep.added = res.kept, res.rejected, res.added
    rep.updated, rep.skipped, rep.written = res.updated, res.skipped, res.written
    rep.duplicates = res.duplicates
    rep.warnings.extend(res.notes)
    rep.seconds = time.perf_counter() - t0
    return rep


def _ingest_targeting(store: Store, paths: list[Path], run_id: str, strict: bool) -> list[FileReport]:
    """The targeting tables of one ingest, read and written together (one transaction)."""
    t0 = time.perf_counter()
    try:
        batch = ingest_targeting(store, paths, run_id=run_id, strict=strict)
    except IngestError as e:
        return [FileReport(str(p), format=TARGETING, error=str(e)) for p in paths]
    dt = (time.perf_counter() - t0) / max(len(batch.files), 1)
    return [FileReport(f.path, TARGETING, f"targeting:{f.role}", f.sha256, f.rows_read,
                       kept=f.rows_read - f.rejected, rejected=f.rejected, added=f.rows_read - f.rejected,
                       written={"targeting_pages": f.pages, "targeting_criteria": f.criteria},
                       warnings=list(f.warnings), seconds=dt) for f in batch.files]


def ingest_paths(store: Store, paths: Iterable[str | Path], *, format: str | None = None,
                 kind: str | None = None, audience_type: str | None = None,
                 mapping: Mapping | str | Path | None = None, map_pairs: Sequence[str] = (),
                 strict: bool = False, dayfirst: bool | None = None, textless: bool = False,
                 salt_file: str | Path | None = None) -> IngestReport:
    """Ingest files and folders, one transaction per file; a file that fails is reported, not fatal.

    ``kind`` defaults to the mapping's kind (else messages); ``audience_type`` to the mapping's (else
    person: ids hashed). ``mapping`` is a :class:`Mapping` or a YAML path; without one, a
    ``NAME.mapping.yaml`` beside ``NAME.csv`` is used, else columns named like the fields.
    ``salt_file``: the salt of person ids kept outside the store (see :mod:`.salt`)."""
    run_id = f"ingest-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    started = datetime.now(UTC).replace(tzinfo=None)
    report = IngestReport(run_id)
    files = expand_paths(paths)
    salt = salt_for(store, salt_file)
    targeting = [p for p in files if format == TARGETING or (format is None and is_targeting_file(p))]
    if targeting:  # pages and criteria tables are read together (bubblelens.ingest.targeting)
        files = [p for p in files if p not in targeting]
        report.files.extend(_ingest_targeting(store, targeting, run_id, strict))
    for p in files:
        try:
            rep = ingest_file(store, p, run_id=run_id, format=format, kind=kind,
                              audience_type=audience_type, mapping=mapping, map_pairs=map_pairs,
                              strict=strict, dayfirst=dayfirst, textless=textless, salt=salt)
        except IngestError as e:
            rep = FileReport(str(p), error=str(e))
        report.files.append(rep)
    params: dict[str, Any] = {"format": format, "kind": kind, "audience_type": audience_type,
                              "mapping": str(mapping) if mapping is not None else None,
                              "map": list(map_pairs), "strict": strict, "dayfirst": dayfirst,
                              "textless": textless}
    with store.transaction():
        store.record_run(
            run_id, "ingest", status="ok" if not report.nothing_read else "nothing-read",
            started_at=started, finished_at=datetime.now(UTC).replace(tzinfo=None), params=params,
            inputs={f.path: f.sha256 for f in report.files},
            timings={f.path: round(f.seconds, 4) for f in report.files})
    return report
