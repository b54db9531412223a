"""Upload a file and run the pipeline on it, in a temporary store that belongs to this session only.

The store lives in a fresh ``tempfile.mkdtemp`` directory recorded in this session's state; the cached
queries are keyed by its (unique) path, and the sidebar refuses another session's upload directory, so
no upload is ever shown to another session. Files above ``BUBBLELENS_UPLOAD_MB`` (default 50) MB are
refused with a message that says so. Uploaded data is personal data: an upload directory nobody has
written to for ``BUBBLELENS_UPLOAD_TTL_H`` hours (default 24) is deleted when the next upload directory
is made (:func:`purge_stale_uploads`), so an ended session's data does not linger in the temp folder.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from bubblelens.present.safe import public_error

from . import data, state

__all__ = ["FORMAT_CHOICES", "max_upload_mb", "purge_stale_uploads", "render", "run_pipeline"]

FORMAT_CHOICES = {
    "Detect automatically": None,
    "Meta Ad Library API (JSON / JSONL)": "meta",
    "Meta Ad Library report (CSV)": "meta-csv",
    "Google political ads (creative_stats CSV)": "google",
    "Generic table (CSV, with a column mapping)": "table",
}
_NONE = "(none)"


def max_upload_mb() -> float:
    """The size limit of an upload, in MB (``BUBBLELENS_UPLOAD_MB``, default 50)."""
    return float(os.environ.get("BUBBLELENS_UPLOAD_MB", "50"))


def purge_stale_uploads(root: Path | None = None, *, ttl_hours: float | None = None,
                        keep: Path | None = None) -> int:
    """Delete the upload directories under ``root`` (the temp folder) whose newest file is older than
    ``ttl_hours`` (``BUBBLELENS_UPLOAD_TTL_H``, default 24); ``keep`` is never deleted. Returns how many."""
    root = Path(root or tempfile.gettempdir())
    ttl = float(os.environ.get("BUBBLELENS_UPLOAD_TTL_H", "24")) if ttl_hours is None else ttl_hours
    cutoff = time.time() - ttl * 3600
    gone = 0
    for d in root.glob(state.UPLOAD_PREFIX + "*"):
        if not d.is_dir() or d.is_symlink() or (keep is not None and d.resolve() == keep.resolve()):
            continue
        try:
            newest = max([d.stat().st_mtime] + [f.stat().st_mtime for f in d.rglob("*")])
        except OSError:
            continue
        if newest < cutoff:
            shutil.rmtree(d, ignore_errors=True)
            gone += 1
    return gone


def _session_dir() -> Path:
    d = st.session_state.get("upload_dir")
    if not d or not Path(d).is_dir():
        purge_stale_uploads()
        d = tempfile.mkdtemp(prefix=state.UPLOAD_PREFIX)
        st.session_state["upload_dir"] = d
    return Path(d)


def _stages() -> list[tuple[str, Callable[[Any], Any]]]:
    """The stages after ingest that are installed, in order (each takes the open store)."""
    out: list[tuple[str, Callable[[Any], Any]]] = []
    try:
        from bubblelens.classify import classify_store

        out.append(("classify", lambda s: classify_store(s)))
    except ImportError:
        pass
    try:
        from bubblelens.segment import segment_store

        out.append(("segment (delivery cells)", lambda s: segment_store(s, scheme="cells")))
    except ImportError:
        pass
    try:
        from bubblelens.measure.pipeline import measure_store

        out.append(("measure (delivery cells)", lambda s: measure_store(s, scheme="cells")))
    except ImportError:
        pass
    return out


def run_pipeline(file_path: Path, store_path: Path, *, format: str | None, map_pairs: list[str],
                 progress: Callable[[float, str], None]) -> list[str]:
    """Ingest ``file_path`` into ``store_path`` and run the installed stages; returns one line per step.

    A stage that cannot run on this data (e.g. no deliveries to segment) is reported and skipped.
    """
    from bubblelens.errors import BubbleLensError
    from bubblelens.ingest import ingest_paths
    from bubblelens.store import Store

    lines: list[str] = []
    stages = _stages()
    total = 1 + len(stages)
    with Store.open(store_path) as store:
        progress(0.0, "ingest")
        rep = ingest_paths(store, [file_path], format=format, map_pairs=map_pairs)
        for f in rep.files:
            if f.error:
                raise BubbleLensError(f.error)
            lines.append(f"ingest: {f.kept} rows kept, {f.rejected} rejected ({f.format})")
        for i, (name, fn) in enumerate(stages, start=1):
            progress(i / total, name)
            try:
                fn(store)
                lines.append(f"{name}: done")
            except BubbleLensError as e:
                lines.append(f"{name}: skipped ({e})")
    progress(1.0, "done")
    return lines


def _step(bar: Any, fraction: float, what: str) -> None:
    bar.progress(fraction, text=what)


def _mapping_form(raw: bytes) -> list[str] | None:
    """Column-mapping form of a generic CSV; returns ``field=column`` pairs once submitted."""
    from bubblelens.ingest.mapping import FIELDS, guess_mapping

    try:
        head = pd.read_csv(io.BytesIO(raw), nrows=5, dtype=str, encoding_errors="replace")
    except Exception as e:
        st.error(f"Cannot read this file as CSV: {public_error(e)}")
        return None
    cols = [str(c) for c in head.columns]
    try:
        guessed = {k: v.columns[0] for k, v in guess_mapping(cols, "messages").fields.items() if v.columns}
    except Exception:
        guessed = {}
    st.dataframe(head, hide_index=True)
    with st.form("mapping"):
        st.markdown("**Which column holds which field?**")
        pairs: list[str] = []
        grid = st.columns(3)
        for i, field in enumerate(FIELDS["messages"]):
            opts = [_NONE, *cols]
            default = opts.index(guessed[field]) if guessed.get(field) in opts else 0
            pick = grid[i % 3].selectbox(field, opts, index=default, key=f"map_{field}")
            if pick != _NONE:
                pairs.append(f"{field}={pick}")
        if st.form_submit_button("Ingest and run the pipeline"):
            if not any(p.startswith("text=") for p in pairs):
                st.error("Map a column to `text`: it is what gets classified.")
                return None
            return pairs
    return None


def render() -> None:
    """The Upload page."""
    st.title("Upload")
    limit = max_upload_mb()
    st.caption(f"The file stays in this browser session (a temporary store nobody else can open); "
               f"limit {limit:g} MB.")
    choice = st.selectbox("Format", list(FORMAT_CHOICES), key="upload_format")
    fmt = FORMAT_CHOICES[choice]
    up = st.file_uploader("File", type=["json", "jsonl", "ndjson", "csv", "tsv"], key="upload_file")
    if up is None:
        return
    if up.size > limit * 1024 * 1024:
        st.error(f"{up.name} is {up.size / 1024 / 1024:.1f} MB, over the {limit:g} MB limit of an upload. "
                 "Ingest it with the CLI (`bubblelens ingest FILE`) and open the store instead.")
        return
    raw = up.getvalue()
    if fmt == "table":
        pairs = _mapping_form(raw)
        if pairs is None:
            return
    else:
        pairs = []
        if not st.button("Ingest and run the pipeline", key="upload_go"):
            return
    d = _session_dir()
    src = d / Path(up.name).name
    src.write_bytes(raw)
    store_path = d / "upload.duckdb"
    bar = st.progress(0.0, text="starting")
    data.release()  # a read-only connection of this run to a previous upload.duckdb would block the writer
    try:
        lines = run_pipeline(src, store_path, format=fmt, map_pairs=pairs,
                             progress=lambda f, what: _step(bar, f, what))
    except Exception as e:
        st.error(f"The pipeline stopped: {public_error(e)}")
        return
    for line in lines:
        st.write(line)
    state.open_store(str(store_path))
    st.success("Done: the app now reads this upload. Open the Overview.")
    st.page_link("bubblelens_app/pages/overview.py", label="Overview")
