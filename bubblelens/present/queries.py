"""Every read the app makes: SQL over the store, aggregated in DuckDB, returned as small DataFrames.

Each function takes an open DuckDB connection (read-only is enough) and never writes. A table that a
stage has not written yet reads as empty (``has_table`` guards), so a page can say which stage to run
instead of failing. Heavy aggregates (sums over deliveries or exposures) are GROUP BYs here, never loops
over rows in Python.

Conventions shared with the stages:

- a message's impressions are the midpoint of its published range, its lower bound when the top bucket
  has no upper bound (:data:`IMPRESSIONS_MID`, as in :mod:`bubblelens.segment.cells`);
- a delivery row's impressions: ``count`` when given, else ``share × impressions of the message``;
- a delivery row's cell key is ``dim=value|...`` over the filled ones of age, gender, region, country
  (:data:`CELL_KEY`, the SQL twin of :func:`bubblelens.segment.cells.cell_key`); schemes named ``cells``
  or ``cells:*`` have such keys as members, every other scheme has audience ids (joined to ``exposures``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ..measure.aggregates import INPUTS_FINGERPRINT, exposure_matrix_sql

__all__ = [
    "CELL_KEY",
    "IMPRESSIONS_MID",
    "AdFilter",
    "ad_deliveries",
    "ads",
    "audience_points",
    "camp_summary",
    "channels",
    "discovered",
    "exposure_matrix",
    "filter_options",
    "has_table",
    "latest_run_id",
    "message_encoders",
    "metrics_table",
    "narrative_over_time",
    "narrative_summary",
    "overview",
    "rejects_by_reason",
    "representative_ads",
    "runs",
    "schemes",
    "segments",
    "semantic_search",
    "sources",
    "spend_by_currency",
]

Con = duckdb.DuckDBPyConnection

IMPRESSIONS_MID = (
    "(CASE WHEN m.impressions_upper IS NULL THEN m.impressions_lower::DOUBLE "
    "ELSE (m.impressions_lower + m.impressions_upper) / 2.0 END)"
)
CELL_KEY = (
    "concat_ws('|', 'age=' || nullif(d.age, ''), 'gender=' || nullif(d.gender, ''), "
    "'region=' || nullif(d.region, ''), 'country=' || nullif(d.country, ''))"
)
_DELIVERY_IMPRESSIONS = f"coalesce(d.count::DOUBLE, d.share * {IMPRESSIONS_MID})"


def has_table(con: Con, name: str) -> bool:
    """True when the store holds table ``name`` (a later stage may not have created it yet)."""
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]
    ).fetchone()
    return bool(row and row[0])


def _df(con: Con, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def _scalar(con: Con, sql: str, params: list[Any] | None = None) -> Any:
    row = con.execute(sql, params or []).fetchone()
    return None if row is None else row[0]


def latest_run_id(con: Con) -> str | None:
    """Id of the most recent run of any stage (the cache key of every query), None on a fresh store."""
    if not has_table(con, "runs"):
        return None
    return _scalar(
        con, "SELECT run_id FROM runs ORDER BY coalesce(finished_at, started_at) DESC NULLS LAST, run_id DESC LIMIT 1"
    )


# -- overview -------------------------------------------------------------------------------------
def overview(con: Con) -> dict[str, Any]:
    """Headline counts and ranges: messages, sponsors, sources, impressions ``[Σ lower, Σ upper]``.

    ``impressions_upper`` is None when any message has an open top bucket (the sum has no upper bound).
    ``unassigned_share`` is the share of scored messages whose narrative is ``unassigned``;
    ``outlier_share`` the share of members of interest schemes placed in no cluster.
    """
    row = con.execute(
        """SELECT count(*), count(*) FILTER (WHERE has_text), count(DISTINCT sponsor),
                  sum(impressions_lower), sum(impressions_upper),
                  count(*) FILTER (WHERE impressions_lower IS NOT NULL AND impressions_upper IS NULL),
                  min(date_start), max(coalesce(date_stop, date_start))
           FROM messages"""
    ).fetchone()
    assert row is not None
    out: dict[str, Any] = {
        "messages": int(row[0]), "with_text": int(row[1]), "sponsors": int(row[2]),
        "impressions_lower": None if row[3] is None else int(row[3]),
        "impressions_upper": None if (row[4] is None or row[5]) else int(row[4]),
        "open_top_buckets": int(row[5]),
        "date_min": row[6], "date_max": row[7],
        "sources": int(_scalar(con, "SELECT count(*) FROM sources")),
        "deliveries": int(_scalar(con, "SELECT count(*) FROM deliveries")),
        "rejects": int(_scalar(con, "SELECT count(*) FROM rejects")),
        "unassigned_share": None, "outlier_share": None,
    }
    if has_table(con, "scores"):
        r = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE label = 'unassigned') FROM scores WHERE task = 'narrative'"
        ).fetchone()
        if r and r[0]:
            out["unassigned_share"] = r[1] / r[0]
    if has_table(con, "segment_members"):
        r = con.execute(
            """SELECT count(*), count(*) FILTER (WHERE segment_id = 'outlier') FROM segment_members
               WHERE scheme NOT LIKE 'cells%'"""
        ).fetchone()
        if r and r[0]:
            out["outlier_share"] = r[1] / r[0]
    return out


def spend_by_currency(con: Con) -> pd.DataFrame:
    """Spend ranges per currency: ``ads, spend_lower = Σ lower, spend_upper = Σ upper`` (never mixed)."""
    return _df(
        con,
        """SELECT coalesce(currency, '?') AS currency, count(*) AS ads,
                  sum(spend_lower) AS spend_lower, sum(spend_upper) AS spend_upper
           FROM messages WHERE spend_lower IS NOT NULL OR spend_upper IS NOT NULL
           GROUP BY 1 ORDER BY ads DESC""",
    )


def sources(con: Con) -> pd.DataFrame:
    """The ingested files: path, format, kind, rows read / kept / rejected, when."""
    return _df(
        con,
        """SELECT path, format, kind, rows_read, rows_kept, rows_rejected, ingested_at, sha256
           FROM sources ORDER BY ingested_at, path""",
    )


def channels(con: Con) -> pd.DataFrame:
    """Messages per channel."""
    return _df(
        con, "SELECT coalesce(channel, '?') AS channel, count(*) AS ads FROM messages GROUP BY 1 ORDER BY 2 DESC"
    )


def rejects_by_reason(con: Con) -> pd.DataFrame:
    """Rejected rows counted by file, field and reason (data quality)."""
    return _df(
        con,
        """SELECT source_file, field, reason, count(*) AS rows FROM rejects
           GROUP BY ALL ORDER BY rows DESC, source_file, field LIMIT 200""",
    )


# -- narratives and camps -------------------------------------------------------------------------
def narrative_summary(con: Con, *, task: str = "narrative") -> pd.DataFrame:
    """Per label of ``task``: ads, mean probability, impressions (Σ midpoints) and share of ads."""
    if not has_table(con, "scores"):
        return pd.DataFrame(columns=["label", "ads", "mean_p", "impressions", "share"])
    return _df(
        con,
        f"""SELECT s.label, count(*) AS ads, avg(s.p) AS mean_p, sum({IMPRESSIONS_MID}) AS impressions,
                   count(*) / sum(count(*)) OVER () AS share
            FROM scores s JOIN messages m USING (message_id)
            WHERE s.task = ? GROUP BY s.label ORDER BY ads DESC, s.label""",
        [task],
    )


def camp_summary(con: Con) -> pd.DataFrame:
    """Camps with where each assignment came from (sponsor table, text classifier, given)."""
    if not has_table(con, "scores"):
        return pd.DataFrame(columns=["label", "source", "ads"])
    return _df(
        con,
        """SELECT label, source, count(*) AS ads FROM scores WHERE task = 'camp'
           GROUP BY ALL ORDER BY ads DESC, label, source""",
    )


def narrative_over_time(con: Con, *, unit: str = "week", task: str = "narrative") -> pd.DataFrame:
    """Ads per period (``date_trunc(unit, date_start)``) and label."""
    if unit not in {"day", "week", "month"}:
        raise ValueError(f"unit must be day, week or month, not {unit!r}")
    if not has_table(con, "scores"):
        return pd.DataFrame(columns=["period", "label", "ads"])
    return _df(
        con,
        f"""SELECT date_trunc('{unit}', m.date_start) AS period, s.label, count(*) AS ads
            FROM scores s JOIN messages m USING (message_id)
            WHERE s.task = ? AND m.date_start IS NOT NULL GROUP BY ALL ORDER BY period, s.label""",
        [task],
    )


def representative_ads(con: Con, label: str, *, n: int = 5, task: str = "narrative") -> pd.DataFrame:
    """The ``n`` ads of ``label`` with the highest probability (ties: most impressions)."""
    return _df(
        con,
        f"""SELECT m.message_id, m.text, m.sponsor, s.p FROM scores s JOIN messages m USING (message_id)
            WHERE s.task = ? AND s.label = ? AND m.has_text
            ORDER BY s.p DESC, {IMPRESSIONS_MID} DESC NULLS LAST, m.message_id LIMIT ?""",
        [task, label, n],
    )


def discovered(con: Con) -> pd.DataFrame:
    """Narratives found beyond the codebook: id, size, keywords and representative texts (lists)."""
    if not has_table(con, "discovered"):
        return pd.DataFrame(columns=["narrative_id", "size", "keywords", "representatives"])
    df = _df(con, "SELECT narrative_id, size, keywords, representatives FROM discovered "
                  "ORDER BY size DESC, narrative_id")
    df["keywords"] = df["keywords"].map(lambda v: [str(k) for k in _json_list(v)])
    df["representatives"] = df["representatives"].map(
        lambda v: [str(r.get("text", "")) if isinstance(r, dict) else str(r) for r in _json_list(v)])
    return df


def _json_list(v: Any) -> list[Any]:
    if v is None:
        return []
    try:
        out = json.loads(v)
    except (TypeError, ValueError):
        return [str(v)]
    return out if isinstance(out, list) else [out]


# -- segments ---------------------------------------------------------------------------------------
def schemes(con: Con) -> pd.DataFrame:
    """Segmentation schemes: segments, suppressed segments, members."""
    if not has_table(con, "segments"):
        return pd.DataFrame(columns=["scheme", "segments", "suppressed", "members"])
    return _df(
        con,
        """SELECT s.scheme, count(*) AS segments, count(*) FILTER (WHERE s.suppressed) AS suppressed,
                  coalesce(max(mm.members), 0) AS members
           FROM segments s LEFT JOIN (SELECT scheme, count(*) AS members FROM segment_members GROUP BY scheme) mm
             USING (scheme)
           GROUP BY s.scheme ORDER BY s.scheme""",
    )


def segments(con: Con, scheme: str) -> pd.DataFrame:
    """Segments of ``scheme`` with size, impressions, and flags; suppressed ones keep no label."""
    df = _df(
        con,
        """SELECT segment_id, CASE WHEN suppressed THEN '(suppressed)' ELSE label END AS label, size,
                  impressions, parent, suppressed, stable, extra
           FROM segments WHERE scheme = ? ORDER BY suppressed, size DESC NULLS LAST, segment_id""",
        [scheme],
    )
    return df


def _is_cells(scheme: str) -> bool:
    return scheme == "cells" or scheme.startswith("cells:")


def audience_points(con: Con, scheme: str, *, limit: int = 5000) -> pd.DataFrame:
    """Members of an audience scheme with their segment and interest embedding (for the 2-D map).

    Columns ``member_id, segment_id, suppressed, interests, vector`` (a list of floats, None when the
    audience has no embedding), at most ``limit`` members, a deterministic sample (ordered by hash).
    """
    if _is_cells(scheme) or not has_table(con, "audiences"):
        return pd.DataFrame(columns=["member_id", "segment_id", "suppressed", "interests", "vector"])
    return _df(
        con,
        """WITH enc AS (SELECT encoder_id FROM embeddings GROUP BY 1 ORDER BY count(*) DESC LIMIT 1)
           SELECT sm.member_id, sm.segment_id, coalesce(sg.suppressed, false) AS suppressed,
                  a.interests, e.vector
           FROM segment_members sm
           JOIN audiences a ON a.audience_id = sm.member_id
           LEFT JOIN segments sg ON sg.scheme = sm.scheme AND sg.segment_id = sm.segment_id
           LEFT JOIN embeddings e ON e.text_hash = sha1(a.interests)
                AND e.encoder_id = (SELECT encoder_id FROM enc)
           WHERE sm.scheme = ? ORDER BY hash(sm.member_id) LIMIT ?""",
        [scheme, limit],
    )


# -- exposure -----------------------------------------------------------------------------------------
def exposure_matrix(con: Con, scheme: str, *, task: str = "narrative",
                    include_suppressed: bool = False) -> pd.DataFrame:
    """Long segment × label impression matrix: ``segment_id, label, impressions, ads`` (and the
    ``impressions_lower`` / ``impressions_upper`` bounds).

    Cells schemes: Σ over delivery rows of the segment's cells of the row's impressions (count, or share ×
    message midpoint); ``ads`` counts delivery rows, i.e. distinct ads for a finest cell, and ad × cell
    pairs for a roll-up. Audience schemes: Σ of ``exposures.count`` of the segment's members, ``ads`` the
    distinct ads they saw. Suppressed segments are left out unless ``include_suppressed``.

    Read from table ``exposure_matrix`` (written by the measure stage) when its rows for ``scheme`` were
    computed from the ingest / classify / segment runs the store holds now; otherwise computed by the same SQL
    (:mod:`bubblelens.measure.aggregates`).
    """
    cols = ["segment_id", "label", "impressions", "ads", "impressions_lower", "impressions_upper"]
    if not (has_table(con, "scores") and has_table(con, "segment_members")):
        return pd.DataFrame(columns=cols)
    supp = "" if include_suppressed else "AND NOT coalesce(sg.suppressed, false)"
    select = f"""SELECT x.segment_id, x.label, x.impressions, x.n_ads AS ads, x.impressions_lower,
                        x.impressions_upper
                 FROM {{src}} x
                 LEFT JOIN segments sg ON sg.scheme = $scheme AND sg.segment_id = x.segment_id
                 WHERE x.task = $task AND coalesce(x.impressions, 0) > 0 {supp}
                 ORDER BY 1, 2"""
    params = {"scheme": scheme, "task": task}
    if _precomputed(con, scheme):
        src = "(SELECT * FROM exposure_matrix WHERE scheme = $scheme)"
    else:
        src = f"({exposure_matrix_sql(scheme)})"
    return con.execute(select.format(src=src), params).df()


def _precomputed(con: Con, scheme: str) -> bool:
    """True when ``exposure_matrix`` holds rows of ``scheme`` computed from the ingest / classify /
    segment runs the store holds now (a later run of one of them makes them stale)."""
    if not (has_table(con, "exposure_matrix") and has_table(con, "runs")):
        return False
    try:
        row = con.execute(f"SELECT count(*) FROM exposure_matrix WHERE scheme = ? AND inputs = {INPUTS_FINGERPRINT}",
                          [scheme]).fetchone()
    except duckdb.BinderException:  # a table written before the ``inputs`` column
        return False
    return bool(row and row[0])


def metrics_table(con: Con, name: str, *, scheme: str | None = None) -> pd.DataFrame:
    """Rows of a table written by the measure stage (``metrics_segments``, ``metrics_global``), filtered
    on ``scheme`` when the table has that column; empty when the stage has not run."""
    if not has_table(con, name):
        return pd.DataFrame()
    cols = {r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()}
    if scheme is not None and "scheme" in cols:
        return _df(con, f"SELECT * FROM {name} WHERE scheme = ?", [scheme])
    return _df(con, f"SELECT * FROM {name}")


# -- ads -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AdFilter:
    """What the Ads page shows: every field None means "any". ``ids`` restricts to given messages (the
    semantic search's hits)."""

    narrative: str | None = None
    camp: str | None = None
    scheme: str | None = None
    segment: str | None = None
    sponsor: str | None = None
    channel: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    ids: tuple[str, ...] | None = None

    def where(self) -> tuple[str, list[Any]]:
        """SQL condition over ``m`` (messages), ``n`` (narrative scores), ``c`` (camp scores)."""
        conds: list[str] = []
        params: list[Any] = []
        if self.narrative:
            conds.append("n.label = ?")
            params.append(self.narrative)
        if self.camp:
            conds.append("c.label = ?")
            params.append(self.camp)
        if self.sponsor:
            conds.append("m.sponsor = ?")
            params.append(self.sponsor)
        if self.channel:
            conds.append("m.channel = ?")
            params.append(self.channel)
        if self.date_from:
            conds.append("coalesce(m.date_stop, m.date_start) >= ?")
            params.append(self.date_from)
        if self.date_to:
            conds.append("m.date_start < ? + INTERVAL 1 DAY")
            params.append(self.date_to)
        if self.ids is not None:
            conds.append("list_contains(?, m.message_id)")
            params.append(list(self.ids))
        if self.scheme and self.segment:
            if _is_cells(self.scheme):
                conds.append(
                    f"""m.message_id IN (SELECT d.message_id FROM deliveries d JOIN segment_members sm
                        ON sm.scheme = ? AND sm.member_id = {CELL_KEY} WHERE sm.segment_id = ?)"""
                )
            else:
                conds.append(
                    """m.message_id IN (SELECT e.message_id FROM exposures e JOIN segment_members sm
                        ON sm.scheme = ? AND sm.member_id = e.audience_id WHERE sm.segment_id = ?)"""
                )
            params += [self.scheme, self.segment]
        return (" AND ".join(conds) or "true"), params


_ADS_FROM = """FROM messages m
    LEFT JOIN scores n ON n.message_id = m.message_id AND n.task = 'narrative'
    LEFT JOIN scores c ON c.message_id = m.message_id AND c.task = 'camp'"""
_NO_SCORES = """WITH scores AS (SELECT NULL::VARCHAR AS message_id, NULL::VARCHAR AS task, NULL::VARCHAR AS label,
    NULL::DOUBLE AS p, NULL::VARCHAR AS source, NULL::VARCHAR AS topk WHERE false)"""


def ads(con: Con, flt: AdFilter, *, limit: int = 50, offset: int = 0,
        order: dict[str, float] | None = None) -> tuple[pd.DataFrame, int]:
    """One page of ads matching ``flt`` and the total count.

    Ordered by impressions (midpoint, descending), or by ``order`` (message id → score, descending; the
    semantic search's similarities). Columns: id, text, sponsor, channel, dates, ranges, narrative and
    camp with probability and source.
    """
    cte = "" if has_table(con, "scores") else _NO_SCORES
    cond, params = flt.where()
    total = int(_scalar(con, f"{cte} SELECT count(*) {_ADS_FROM} WHERE {cond}", params))
    if order:
        order_sql = "list_position(?, m.message_id) NULLS LAST, m.message_id"
        ranked = [k for k, _ in sorted(order.items(), key=lambda kv: -kv[1])]
        oparams: list[Any] = [ranked]
    else:
        order_sql = f"{IMPRESSIONS_MID} DESC NULLS LAST, m.message_id"
        oparams = []
    df = _df(
        con,
        f"""{cte} SELECT m.message_id, m.text, m.sponsor, m.channel, m.date_start, m.date_stop,
                   m.impressions_lower, m.impressions_upper, m.spend_lower, m.spend_upper, m.currency,
                   n.label AS narrative, n.p AS narrative_p, n.topk AS narrative_topk,
                   c.label AS camp, c.p AS camp_p, c.source AS camp_source
            {_ADS_FROM} WHERE {cond} ORDER BY {order_sql} LIMIT ? OFFSET ?""",
        params + oparams + [limit, offset],
    )
    if order:
        df.insert(1, "similarity", df["message_id"].map(order))
    return df, total


def ad_deliveries(con: Con, message_id: str) -> pd.DataFrame:
    """Delivery rows of one message: kind, cell, share or count, and impressions as computed."""
    return _df(
        con,
        f"""SELECT d.kind, {CELL_KEY} AS cell, d.share, d.count, {_DELIVERY_IMPRESSIONS} AS impressions
            FROM deliveries d JOIN messages m USING (message_id) WHERE d.message_id = ?
            ORDER BY d.kind, cell""",
        [message_id],
    )


def filter_options(con: Con) -> dict[str, list[str]]:
    """Distinct values offered by the sidebar filters (narratives, camps, sponsors, channels, schemes)."""
    out: dict[str, list[str]] = {}
    if has_table(con, "scores"):
        for task in ("narrative", "camp"):
            out[task] = [r[0] for r in con.execute(
                "SELECT DISTINCT label FROM scores WHERE task = ? AND label IS NOT NULL ORDER BY 1", [task]
            ).fetchall()]
    else:
        out["narrative"] = out["camp"] = []
    out["sponsor"] = [r[0] for r in con.execute(
        "SELECT sponsor FROM messages WHERE sponsor IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 500"
    ).fetchall()]
    out["channel"] = [r[0] for r in con.execute(
        "SELECT DISTINCT channel FROM messages WHERE channel IS NOT NULL ORDER BY 1").fetchall()]
    out["scheme"] = list(schemes(con)["scheme"]) if has_table(con, "segments") else []
    out["last_measured"] = []
    if has_table(con, "metrics_global") and has_table(con, "runs"):
        # the scheme the user measured last: what the app shows first, so it agrees with the report
        out["last_measured"] = [r[0] for r in con.execute(
            "SELECT g.scheme FROM metrics_global g JOIN runs r ON r.run_id = g.run_id "
            "GROUP BY g.scheme ORDER BY max(r.finished_at) DESC, 1 LIMIT 1").fetchall()]
    return out


def semantic_search(con: Con, vector: Sequence[float] | np.ndarray, encoder_id: str, *, limit: int = 50) -> dict[str, float]:
    """Messages nearest to ``vector`` by cosine similarity over the cached embeddings of ``encoder_id``.

    Computed in DuckDB (``list_cosine_similarity``): the vectors never leave the store. Returns message
    id → similarity, best first; empty when no message text was embedded with that encoder.
    """
    rows = con.execute(
        """SELECT m.message_id, list_cosine_similarity(e.vector, ?::FLOAT[]) AS sim
           FROM messages m JOIN embeddings e ON e.text_hash = m.text_hash AND e.encoder_id = ?
           WHERE m.has_text ORDER BY sim DESC, m.message_id LIMIT ?""",
        [np.asarray(vector, dtype=np.float32).tolist(), encoder_id, limit],
    ).fetchall()
    return {str(r[0]): float(r[1]) for r in rows}


def message_encoders(con: Con) -> list[str]:
    """Encoder ids that embedded message texts, most messages first."""
    return [r[0] for r in con.execute(
        """SELECT e.encoder_id FROM embeddings e JOIN messages m ON m.text_hash = e.text_hash
           GROUP BY 1 ORDER BY count(*) DESC"""
    ).fetchall()]


# -- methods --------------------------------------------------------------------------------------------
def runs(con: Con) -> pd.DataFrame:
    """The run manifest: every stage run with parameters, models, inputs and timings (JSON text)."""
    return _df(
        con,
        """SELECT run_id, stage, status, started_at, finished_at, params, models, inputs, timings
           FROM runs ORDER BY started_at DESC NULLS LAST, run_id""",
    )
