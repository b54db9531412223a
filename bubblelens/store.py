"""The store: one embedded DuckDB file, nothing to start.

Every stage reads and writes here, each stage's writes in one transaction, so a failed run leaves the
file as it was. The schema is created by code; its version is kept in the ``meta`` table. A file written
by an older version is upgraded in place (see :data:`MIGRATIONS`); a newer one is refused.

Tables (one line each; columns in :data:`SCHEMA`):

- ``meta``            key/value: schema version, the per-store salt for person ids
- ``sources``         one row per ingested file (SHA-256, format, kind, rows kept / rejected)
- ``messages``        one row per ad or message: normalized text, sponsor, channel, dates, ranges, labels
- ``deliveries``      message × delivery cell (age, gender, region, country) × share or count
- ``targeting``       declared targeting of a message (dimension, value, included)
- ``audiences``       panel members (hashed ids), ad targeting specs, pages: an interest text
- ``audience_attrs``  declared attributes of audiences (age band, region, declared lean, ...)
- ``exposures``       audience × message × count (panel logs)
- ``rejects``         rows that could not be taken: file, line, field, reason, raw row
- ``runs``            every stage run: parameters, model ids and versions, input hashes, timings
- ``embeddings``      cache: (encoder id, text hash) → vector
- ``scores``          narrative and camp of each message, with probability and source
- ``camps``           the camps of the codebook last used: label, left–right position (or NULL), bloc
- ``segments``        segments of each scheme, with size, label, suppression and stability flags
- ``segment_members`` member (audience id or delivery cell) → segment, with probability and fitted flag
- ``discovered``      narratives found beyond the codebook: keywords, representative messages, size
- ``metrics_segments`` per segment and metric: value, interval, flags (one row per measure run's scheme)
- ``metrics_global``  segregation and echo-chamber indices per scheme, with intervals and p-values
- ``discovered_members`` message → discovered narrative, with probability
- ``sponsor_spend``   spend per sponsor from reports that list no ads (Meta report CSV, Google advertiser stats)
- ``exposure_matrix`` segment × narrative / camp impressions (ranges) and ads per scheme, for the app
- ``targeting_pages``  advertiser pages of a targeting table (Meta "Audience" tab): window ``ds``, party,
  camp, spend
- ``targeting_criteria`` every targeting criterion of a page and window, with its share of the page's spend
- ``targeting_clusters`` detailed-targeting criterion → cluster (with its label), per encoder
- ``labels``          labels a user gave in the app's Label page: message, task, label, who, when (every
  row kept; the latest per message and task is the label, :mod:`bubblelens.classify.labelling`)
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from .errors import SchemaVersionError, StoreError

__all__ = ["DEFAULT_DB", "ROW_GROUP_SIZE", "SCHEMA_VERSION", "Store", "hash_person_id", "text_hash"]

DEFAULT_DB = "bubblelens.duckdb"
SCHEMA_VERSION = 1
#: Rows per row group of what BubbleLens writes (DuckDB's default: 122,880). A bulk insert writes each
#: full row group to the file as it goes (compressed by DuckDB's threads while the insert runs); a
#: partial one is left to the COMMIT, which compresses it on one core. With the default, the 100,000
#: messages of a 100,000-ad file all waited for the commit (1.1 s of 5). A per-attach setting, not
#: kept in the file: row groups of any size are read alike, and older files need no upgrade.
ROW_GROUP_SIZE = 32_768

SCHEMA: list[str] = [
    """CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS sources (
        sha256 VARCHAR PRIMARY KEY, path VARCHAR, format VARCHAR, kind VARCHAR,
        rows_read BIGINT, rows_kept BIGINT, rows_rejected BIGINT, ingested_at TIMESTAMP, run_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS messages (
        message_id VARCHAR PRIMARY KEY,
        source_format VARCHAR, source_file VARCHAR, source_line BIGINT, source_sha256 VARCHAR,
        text VARCHAR, text_hash VARCHAR, has_text BOOLEAN,
        bodies VARCHAR[], link_titles VARCHAR[], link_descriptions VARCHAR[], link_captions VARCHAR[],
        sponsor VARCHAR, sponsor_id VARCHAR, page_name VARCHAR,
        channel VARCHAR, platforms VARCHAR[],
        date_start TIMESTAMP, date_stop TIMESTAMP, created_at TIMESTAMP,
        url VARCHAR, lang VARCHAR, languages VARCHAR[],
        impressions_lower BIGINT, impressions_upper BIGINT,
        spend_lower DOUBLE, spend_upper DOUBLE, currency VARCHAR,
        eu_total_reach BIGINT, audience_size_lower BIGINT, audience_size_upper BIGINT,
        given_camp VARCHAR, given_narrative VARCHAR,
        flags VARCHAR[], extra VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS deliveries (
        message_id VARCHAR, kind VARCHAR, age VARCHAR, gender VARCHAR, region VARCHAR, country VARCHAR,
        share DOUBLE, count BIGINT)""",
    """CREATE TABLE IF NOT EXISTS targeting (
        message_id VARCHAR, dimension VARCHAR, value VARCHAR, included BOOLEAN)""",
    """CREATE TABLE IF NOT EXISTS audiences (
        audience_id VARCHAR PRIMARY KEY, audience_type VARCHAR, interests VARCHAR,
        source_file VARCHAR, source_line BIGINT, source_sha256 VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS audience_attrs (
        audience_id VARCHAR, name VARCHAR, value VARCHAR, PRIMARY KEY (audience_id, name))""",
    """CREATE TABLE IF NOT EXISTS exposures (
        audience_id VARCHAR, message_id VARCHAR, count BIGINT,
        source_file VARCHAR, source_line BIGINT, source_sha256 VARCHAR,
        PRIMARY KEY (audience_id, message_id))""",
    """CREATE TABLE IF NOT EXISTS rejects (
        source_file VARCHAR, source_sha256 VARCHAR, line BIGINT, field VARCHAR, reason VARCHAR, raw VARCHAR,
        PRIMARY KEY (source_sha256, line, field))""",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY, stage VARCHAR, status VARCHAR,
        started_at TIMESTAMP, finished_at TIMESTAMP,
        params VARCHAR, models VARCHAR, inputs VARCHAR, timings VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS embeddings (
        encoder_id VARCHAR, text_hash VARCHAR, vector FLOAT[], PRIMARY KEY (encoder_id, text_hash))""",
    """CREATE TABLE IF NOT EXISTS scores (
        message_id VARCHAR, task VARCHAR, label VARCHAR, p DOUBLE, source VARCHAR, topk VARCHAR,
        encoder_id VARCHAR, run_id VARCHAR, PRIMARY KEY (message_id, task))""",
    # The camps of the codebook the last ``classify`` used (camps are data: measure reads positions here).
    """CREATE TABLE IF NOT EXISTS camps (
        camp_id VARCHAR PRIMARY KEY, label VARCHAR, position DOUBLE, generic VARCHAR, active BOOLEAN,
        codebook VARCHAR, run_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS segments (
        scheme VARCHAR, segment_id VARCHAR, label VARCHAR, size BIGINT, impressions DOUBLE,
        parent VARCHAR, suppressed BOOLEAN, stable BOOLEAN, extra VARCHAR, run_id VARCHAR,
        PRIMARY KEY (scheme, segment_id))""",
    """CREATE TABLE IF NOT EXISTS segment_members (
        scheme VARCHAR, member_id VARCHAR, segment_id VARCHAR, probability DOUBLE, fitted BOOLEAN,
        PRIMARY KEY (scheme, member_id))""",
    """CREATE TABLE IF NOT EXISTS discovered (
        narrative_id VARCHAR PRIMARY KEY, keywords VARCHAR, representatives VARCHAR, size BIGINT,
        run_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS metrics_segments (
        run_id VARCHAR, scheme VARCHAR, segment_id VARCHAR, label VARCHAR, metric VARCHAR, value DOUBLE,
        ci_low DOUBLE, ci_high DOUBLE, impressions DOUBLE, few_ads BOOLEAN, home_lean_source VARCHAR,
        PRIMARY KEY (scheme, segment_id, metric))""",
    """CREATE TABLE IF NOT EXISTS metrics_global (
        run_id VARCHAR, scheme VARCHAR, metric VARCHAR, value DOUBLE, ci_low DOUBLE, ci_high DOUBLE,
        p_value DOUBLE, extra VARCHAR, PRIMARY KEY (scheme, metric))""",
    # Each unassigned message's discovered narrative (``outlier`` for HDBSCAN noise), per discover run.
    """CREATE TABLE IF NOT EXISTS discovered_members (
        message_id VARCHAR PRIMARY KEY, narrative_id VARCHAR, probability DOUBLE, run_id VARCHAR)""",
    # Sponsor-level spend from reports that list no ads (Meta Ad Library report CSV, Google
    # advertiser-stats): one row per (report, page/advertiser, disclaimer, location).
    """CREATE TABLE IF NOT EXISTS sponsor_spend (
        report VARCHAR, row_key VARCHAR, scope VARCHAR, page_id VARCHAR, page_name VARCHAR,
        disclaimer VARCHAR, location VARCHAR, spend_lower DOUBLE, spend_upper DOUBLE, currency VARCHAR,
        n_ads BIGINT, source_format VARCHAR, source_file VARCHAR, source_line BIGINT, source_sha256 VARCHAR,
        PRIMARY KEY (report, row_key))""",
    # Segment × label impressions of a scheme (bubblelens.measure.aggregates), written by the measure stage
    # so the app reads the Exposure heatmap without summing the delivery rows; ``inputs`` fingerprints the
    # ingest / classify / segment runs it was computed from (rows of older inputs are not read).
    """CREATE TABLE IF NOT EXISTS exposure_matrix (
        scheme VARCHAR, segment_id VARCHAR, task VARCHAR, label VARCHAR, impressions_lower DOUBLE,
        impressions DOUBLE, impressions_upper DOUBLE, n_ads BIGINT, run_id VARCHAR, inputs VARCHAR)""",
    # Per-advertiser targeting (bubblelens.ingest.targeting): pages (one row per page and window ``ds``,
    # the window's last day) and every criterion row of them; ``camp`` starts as the page's party.
    """CREATE TABLE IF NOT EXISTS targeting_pages (
        page_id VARCHAR, ds DATE, page_name VARCHAR, party VARCHAR, camp VARCHAR, country VARCHAR,
        partyfacts_id VARCHAR, left_right DOUBLE, total_num_ads BIGINT, spend DOUBLE, currency VARCHAR,
        spend_eur DOUBLE, window_days INTEGER, source_file VARCHAR, source_line BIGINT, source_sha256 VARCHAR,
        run_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS targeting_criteria (
        page_id VARCHAR, ds DATE, type VARCHAR, value VARCHAR, num_ads BIGINT, total_spend_pct DOUBLE,
        is_exclusion BOOLEAN, location_type VARCHAR, detailed_type VARCHAR, custom_audience_type VARCHAR,
        num_obfuscated BIGINT, source_file VARCHAR, source_line BIGINT, source_sha256 VARCHAR, run_id VARCHAR)""",
    # Clusters of detailed-targeting criteria (bubblelens targeting): criterion name → cluster, per encoder.
    """CREATE TABLE IF NOT EXISTS targeting_clusters (
        value VARCHAR, cluster_id VARCHAR, label VARCHAR, probability DOUBLE, encoder_id VARCHAR, run_id VARCHAR,
        PRIMARY KEY (value))""",
    # Labels a user gave (the app's Label page): history kept, the latest per (message_id, task) wins.
    # ``labelled_by`` is the name the labeller typed (not a third person's identifier).
    """CREATE TABLE IF NOT EXISTS labels (
        message_id VARCHAR, task VARCHAR, label VARCHAR, labelled_by VARCHAR, labelled_at TIMESTAMP)""",
]

# version -> statements that upgrade a store from (version - 1) to version.
MIGRATIONS: dict[int, list[str]] = {}

COUNTED_TABLES = ("messages", "deliveries", "targeting", "audiences", "exposures", "rejects")


_ALIAS = "bubblelens_store"
#: Files open for writing in this process: (the private connection that attached it, how many Stores
#: use it). DuckDB refuses to attach one file twice; a second Store gets a cursor of the first.
_ATTACHED: dict[str, tuple[duckdb.DuckDBPyConnection, int]] = {}
_ATTACH_LOCK = threading.Lock()


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _open_for_writing(path: str) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A connection whose default database is the file at ``path``, attached with
    :data:`ROW_GROUP_SIZE` (a file attached already in this process is shared); and its key."""
    key = os.path.realpath(path)
    with _ATTACH_LOCK:
        if key not in _ATTACHED:
            base = duckdb.connect()
            try:
                base.execute(f"ATTACH {_sql_str(path)} AS {_ALIAS} (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
                base.execute(f"SET temp_directory = {_sql_str(path + '.tmp')}")  # as for connect(path)
            except BaseException:
                base.close()
                raise
            _ATTACHED[key] = (base, 0)
        base, n = _ATTACHED[key]
        con = base.cursor()
        try:
            con.execute(f"USE {_ALIAS}")
        except BaseException:
            con.close()
            raise
        _ATTACHED[key] = (base, n + 1)
    return con, key


def _release(key: str) -> None:
    """One Store less on the file ``key``; the last one detaches it (DuckDB checkpoints then)."""
    with _ATTACH_LOCK:
        base, n = _ATTACHED[key]
        if n > 1:
            _ATTACHED[key] = (base, n - 1)
        else:
            del _ATTACHED[key]
            base.close()


def text_hash(text: str) -> str:
    """Stable key of a text for the embedding cache: SHA-1 of its UTF-8 bytes, hex."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def hash_person_id(raw_id: str, salt: str) -> str:
    """A person's id as stored: ``p_`` + 16 hex of SHA-256(salt ∥ id). The raw id is never stored."""
    return "p_" + hashlib.sha256((salt + "\x1f" + raw_id).encode("utf-8")).hexdigest()[:16]


@dataclass
class Store:
    """An open store. Use :meth:`open`; close with :meth:`close` or as a context manager."""

    path: str
    con: duckdb.DuckDBPyConnection
    read_only: bool = False
    _attached: str | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str | Path = DEFAULT_DB, *, read_only: bool = False) -> Store:
        """Open (and create or upgrade) the store at ``path``. A file opened for writing is attached
        with :data:`ROW_GROUP_SIZE`; read-only and ``:memory:`` stores are plain connections."""
        p = str(path)
        if read_only and p != ":memory:" and not Path(p).exists():
            raise StoreError(f"no store at {p}: run `bubblelens ingest` first")
        key = None
        try:
            if read_only or p == ":memory:":
                con = duckdb.connect(p, read_only=read_only)
            else:
                con, key = _open_for_writing(p)
        except duckdb.IOException as e:
            raise StoreError(f"cannot open the store {p}: {e}") from e
        except duckdb.Error as e:
            raise StoreError(f"{p} is not a BubbleLens store (DuckDB said: {e})") from e
        store = cls(p, con, read_only, key)
        try:
            if not read_only:
                store._ensure_schema()
            else:
                store._check_version()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self.con.close()
        if self._attached is not None:
            key, self._attached = self._attached, None
            _release(key)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -------------------------------------------------------------------------------
    def schema_version(self) -> int | None:
        try:
            rows = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        except duckdb.CatalogException:
            return None
        return int(rows[0][0]) if rows else None

    def _check_version(self) -> None:
        v = self.schema_version()
        if v is not None and v > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self.path} has schema version {v}, newer than this BubbleLens ({SCHEMA_VERSION}): "
                "upgrade BubbleLens to read it"
            )

    def _ensure_schema(self) -> None:
        self._check_version()
        v = self.schema_version()
        with self.transaction():
            for ddl in SCHEMA:
                self.con.execute(ddl)
            if v is None:
                self.con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
                self.con.execute("INSERT INTO meta VALUES ('salt', ?)", [secrets.token_hex(16)])
            else:
                for target in range(v + 1, SCHEMA_VERSION + 1):
                    for stmt in MIGRATIONS.get(target, []):
                        self.con.execute(stmt)
                self.con.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)]
                )

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All writes inside happen, or none: an exception rolls back and is re-raised."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")

    # -- small helpers ------------------------------------------------------------------------
    @property
    def salt(self) -> str:
        rows = self.con.execute("SELECT value FROM meta WHERE key = 'salt'").fetchall()
        if not rows:
            raise StoreError(f"{self.path} has no salt: not a BubbleLens store")
        return str(rows[0][0])

    def get_meta(self, key: str) -> str | None:
        rows = self.con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def stats(self) -> dict[str, Any]:
        """Integer row counts of the main tables, plus what each later stage has written."""
        out: dict[str, Any] = {}
        for t in (*COUNTED_TABLES, "sources", "embeddings", "scores", "segments", "runs"):
            out[t] = int(self.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0])
        out["schema_version"] = self.schema_version()
        return out

    def run_inputs(self, run_id: str) -> dict[str, Any]:
        """The ``inputs`` record of run ``run_id`` (empty when the run is unknown)."""
        row = self.con.execute("SELECT inputs FROM runs WHERE run_id = ?", [run_id]).fetchone()
        return json.loads(row[0]) if row and row[0] else {}

    def record_run(self, run_id: str, stage: str, *, status: str, started_at: Any, finished_at: Any,
                   params: dict[str, Any] | None = None, models: dict[str, Any] | None = None,
                   inputs: dict[str, Any] | None = None, timings: dict[str, Any] | None = None) -> None:
        """Write one row of ``runs`` (parameters, model ids and versions, input hashes, timings)."""
        self.con.execute(
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, stage, status, started_at, finished_at,
             json.dumps(params or {}, sort_keys=True, default=str),
             json.dumps(models or {}, sort_keys=True, default=str),
             json.dumps(inputs or {}, sort_keys=True, default=str),
             json.dumps(timings or {}, sort_keys=True, default=str)],
        )
