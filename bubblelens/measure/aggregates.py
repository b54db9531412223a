"""Aggregates precomputed for display: the segment × label impression matrix of a scheme, in DuckDB.

The app's Exposure page shows ``N[s, k]`` (impressions of label ``k`` received by segment ``s``) for a
scheme; summing ~1.7 M delivery rows per page open takes seconds, so the measure stage writes the matrix
into table ``exposure_matrix`` in its transaction (:func:`write_exposure_matrix`) and the app reads it
with an indexed SELECT. The same SQL (:func:`exposure_matrix_sql`) answers when a scheme was not measured.

Counting rules (hard labels: each message counted under its ``scores.label``):

- **cells** schemes (``cells``, ``cells:*``; members are delivery-cell keys): Σ over the delivery rows of
  the segment's cells of ``count``, else ``share × I_m`` where ``I_m`` is the message's impressions at its
  lower bound, midpoint (lower bound for an open top bucket) and upper bound (lower bound for an open top
  bucket); ``n_ads`` counts delivery rows (distinct ads for a finest cell, ad × cell pairs for a roll-up);
- **audience** schemes: Σ ``exposures.count`` of the segment's members (exact: the three bounds agree),
  ``n_ads`` the distinct ads they saw.

Rows of suppressed segments are written too; readers leave them out (``segments.suppressed``).
"""

from __future__ import annotations

import duckdb

__all__ = ["AGGREGATE_INPUT_STAGES", "INPUTS_FINGERPRINT", "exposure_matrix_sql", "is_cells_scheme", "write_exposure_matrix"]

# Stages whose runs change what the matrix sums (messages, deliveries, exposures, scores, segments):
# rows written before a later run of one of them are stale.
AGGREGATE_INPUT_STAGES = ("ingest", "classify", "segment")

# md5 of the sorted ids of the input stages' runs: compared as a whole, so no clock (stages record their
# times with and without a time zone) decides whether the rows are current.
INPUTS_FINGERPRINT = f"""(SELECT md5(coalesce(string_agg(run_id, ',' ORDER BY run_id), '')) FROM runs
    WHERE stage IN ({", ".join(f"'{s}'" for s in AGGREGATE_INPUT_STAGES)}))"""

_CELL_KEY = (
    "concat_ws('|', 'age=' || nullif(pc.age, ''), 'gender=' || nullif(pc.gender, ''), "
    "'region=' || nullif(pc.region, ''), 'country=' || nullif(pc.country, ''))"
)
_LOWER = "m.impressions_lower::DOUBLE"
_MID = ("(CASE WHEN m.impressions_upper IS NULL THEN m.impressions_lower::DOUBLE "
        "ELSE (m.impressions_lower + m.impressions_upper) / 2.0 END)")
_UPPER = "coalesce(m.impressions_upper, m.impressions_lower)::DOUBLE"


def is_cells_scheme(scheme: str) -> bool:
    """True for delivery-cell schemes (``cells``, ``cells:<dims>``), whose members are cell keys."""
    return scheme == "cells" or scheme.startswith("cells:")


def exposure_matrix_sql(scheme: str) -> str:
    """SQL of the long matrix of ``scheme`` for every segment (suppressed ones included) and both tasks.

    Parameters ``$scheme``; columns ``segment_id, task, label, impressions_lower, impressions,
    impressions_upper, n_ads``. Cells schemes aggregate the delivery rows per (cell dimensions, label)
    first, then map the few distinct cells to segments (5× faster than a key per row before the join).
    """
    if is_cells_scheme(scheme):
        def imp(bound: str) -> str:
            return f"sum(coalesce(d.count::DOUBLE, d.share * {bound}))"

        return f"""
            WITH pc AS (
                SELECT d.age, d.gender, d.region, d.country, s.task, s.label,
                       {imp(_LOWER)} AS lo, {imp(_MID)} AS mid, {imp(_UPPER)} AS hi, count(*) AS n
                FROM deliveries d JOIN messages m USING (message_id)
                JOIN scores s ON s.message_id = d.message_id AND s.task IN ('narrative', 'camp')
                GROUP BY ALL)
            SELECT sm.segment_id, pc.task, pc.label, sum(pc.lo) AS impressions_lower,
                   sum(pc.mid) AS impressions, sum(pc.hi) AS impressions_upper, sum(pc.n)::BIGINT AS n_ads
            FROM pc JOIN segment_members sm ON sm.scheme = $scheme AND sm.member_id = {_CELL_KEY}
            GROUP BY ALL"""
    return """
        SELECT sm.segment_id, s.task, s.label, sum(e.count)::DOUBLE AS impressions_lower,
               sum(e.count)::DOUBLE AS impressions, sum(e.count)::DOUBLE AS impressions_upper,
               count(DISTINCT e.message_id)::BIGINT AS n_ads
        FROM exposures e
        JOIN segment_members sm ON sm.scheme = $scheme AND sm.member_id = e.audience_id
        JOIN scores s ON s.message_id = e.message_id AND s.task IN ('narrative', 'camp')
        GROUP BY ALL"""


def write_exposure_matrix(con: duckdb.DuckDBPyConnection, scheme: str, *, run_id: str) -> int:
    """Replace the ``exposure_matrix`` rows of ``scheme`` by the matrix computed now, tagged ``run_id``.

    Call it inside the writing stage's transaction, after the input stages' runs are recorded: the rows
    carry the fingerprint of the ingest / classify / segment runs (:data:`INPUTS_FINGERPRINT`), and readers
    ignore them once another such run is recorded. Returns the number of rows written.
    """
    con.execute("DELETE FROM exposure_matrix WHERE scheme = $scheme", {"scheme": scheme})
    con.execute(
        f"""INSERT INTO exposure_matrix (scheme, segment_id, task, label, impressions_lower, impressions,
                                         impressions_upper, n_ads, run_id, inputs)
            SELECT $scheme, segment_id, task, label, impressions_lower, impressions, impressions_upper,
                   n_ads, $run_id, {INPUTS_FINGERPRINT}
            FROM ({exposure_matrix_sql(scheme)})""",
        {"scheme": scheme, "run_id": run_id},
    )
    row = con.execute("SELECT count(*) FROM exposure_matrix WHERE scheme = $scheme", {"scheme": scheme}).fetchone()
    return int(row[0]) if row else 0
