"""Session state of the app: which store is open, and the sidebar filters shared by every page.

The sidebar is drawn by ``app.py`` before the page runs, so its widgets (keys ``f_*``) live in every run
and keep their values across pages. A page that wants to open another one filtered (a heatmap cell, a
segment) calls :func:`open_filtered`: the values wait in ``_pending`` and are applied at the top of the
next run, before the widgets exist (Streamlit refuses to change a widget's value after it is drawn).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import streamlit as st

from bubblelens.present.queries import AdFilter

from . import data

__all__ = [
    "FILTER_KEYS",
    "UPLOAD_PREFIX",
    "ad_filter",
    "apply_pending",
    "configured_stores",
    "db_path",
    "init",
    "open_filtered",
    "open_store",
    "require_store",
    "sidebar",
]

UPLOAD_PREFIX = "bubblelens-upload-"
FILTER_KEYS = ("f_narrative", "f_camp", "f_scheme", "f_segment", "f_sponsor", "f_channel",
               "f_date_from", "f_date_to")
_ANY = "(any)"


def init(default_db: str | None) -> None:
    """Set the store of this session on its first run: ``--db``, then ``BUBBLELENS_DB``."""
    if "db_path" not in st.session_state:
        st.session_state["db_path"] = default_db or os.environ.get("BUBBLELENS_DB") or None
        st.session_state["db_start"] = st.session_state["db_path"]


def db_path() -> str | None:
    """The store this session reads, or None."""
    p = st.session_state.get("db_path")
    return str(p) if p else None


def _foreign_upload(path: str) -> bool:
    """True for another session's uploaded store (under the temp dir, not this session's own)."""
    try:
        resolved = Path(path).resolve()
    except OSError:
        return False
    own = st.session_state.get("upload_dir")
    tmp = Path(tempfile.gettempdir()).resolve()
    inside_uploads = resolved.parent.name.startswith(UPLOAD_PREFIX) and resolved.parent.parent == tmp
    return inside_uploads and (own is None or Path(own).resolve() != resolved.parent)


def configured_stores() -> dict[str, str]:
    """The stores a visitor may choose, label → path: the one the app was started on (``--db`` or
    ``BUBBLELENS_DB``), those listed in ``BUBBLELENS_STORES`` (paths or folders of ``*.duckdb``,
    separated by ``os.pathsep``), and this session's own upload. Labels are file names: a visitor
    never types a path, and never learns which server paths exist."""
    paths: list[str] = []
    first = st.session_state.get("db_start")
    if first:
        paths.append(str(first))
    for item in filter(None, os.environ.get("BUBBLELENS_STORES", "").split(os.pathsep)):
        p = Path(item)
        paths.extend(str(q) for q in sorted(p.glob("*.duckdb"))) if p.is_dir() else paths.append(str(p))
    own = st.session_state.get("upload_dir")
    if own and (Path(own) / "upload.duckdb").is_file():
        paths.append(str(Path(own) / "upload.duckdb"))
    current = st.session_state.get("db_path")
    if current and current not in paths and not _foreign_upload(current):
        paths.append(str(current))  # opened by the app itself (an upload, a link between pages)
    out: dict[str, str] = {}
    for p in dict.fromkeys(paths):
        if _foreign_upload(p):
            continue
        label = "this session's upload" if own and Path(p).parent == Path(own) else Path(p).name
        while label in out:
            label = f"{Path(p).parent.name}/{label}"
        out[label] = p
    return out


def _on_db_pick() -> None:
    label = st.session_state.get("db_pick")
    path = configured_stores().get(str(label))
    if path is None:
        st.session_state["db_error"] = "That store is not one this app serves."
        return
    st.session_state["db_error"] = None
    if path != st.session_state.get("db_path"):
        st.session_state["db_path"] = path
        for k in FILTER_KEYS:
            st.session_state.pop(k, None)


def apply_pending() -> None:
    """Apply filters queued by :func:`open_filtered` (call before :func:`sidebar` draws its widgets)."""
    db = st.session_state.pop("_pending_db", None)
    if db:
        st.session_state["db_path"] = db
        for k in FILTER_KEYS:
            st.session_state.pop(k, None)
    pending = st.session_state.pop("_pending", None)
    if pending:
        for k in FILTER_KEYS:
            st.session_state[k] = pending.get(k)


def open_store(path: str) -> None:
    """Read ``path`` from the next run on (filters reset)."""
    st.session_state["db_path"] = path
    st.session_state["_pending_db"] = path


def open_filtered(page: str, **filters: Any) -> None:
    """Open ``page`` with the sidebar filters set to ``filters`` (``narrative=..., segment=...``); the
    other filters are cleared, so the page shows exactly the ads behind the clicked number."""
    st.session_state["_pending"] = {f"f_{k}": v for k, v in filters.items()}
    st.switch_page(page)


def _select(label: str, key: str, options: list[str]) -> None:
    current = st.session_state.get(key)
    opts = [_ANY, *options]
    if current is not None and current not in opts:
        opts.append(current)
    if current is None:
        st.session_state[key] = _ANY
    st.sidebar.selectbox(label, opts, key=key)


def sidebar() -> None:
    """Draw the store picker and the filters (narrative, camp, scheme, segment, sponsor, channel, dates)."""
    stores = configured_stores()
    path = db_path()
    labels = list(stores)
    current = next((k for k, v in stores.items() if v == path), None)
    if labels:
        if st.session_state.get("db_pick") not in labels or (current and st.session_state.get("db_pick") != current):
            st.session_state["db_pick"] = current or labels[0]
        st.sidebar.selectbox("Store", labels, key="db_pick", on_change=_on_db_pick,
                             help="The stores this app serves (BUBBLELENS_STORES), or upload a file on the "
                                  "Upload page.")
    if st.session_state.get("db_error"):
        st.sidebar.error(st.session_state["db_error"])
    if not path or not Path(path).is_file():
        return
    try:
        opts = data.query("filter_options")
    except Exception:  # a broken or locked store: say so (no path, no traceback), draw no filters
        st.sidebar.error("This store cannot be read (not a BubbleLens store, or in use by a writer).")
        return
    st.sidebar.caption(f"Reading `{Path(path).name}`")
    st.sidebar.subheader("Filters")
    _select("Narrative", "f_narrative", opts["narrative"])
    _select("Camp", "f_camp", opts["camp"])
    schemes = opts["scheme"]
    if schemes and st.session_state.get("f_scheme") in (None, _ANY):
        last = [m for m in opts.get("last_measured", []) if m in schemes]
        st.session_state["f_scheme"] = last[0] if last else schemes[0]
    _select("Segmentation scheme", "f_scheme", schemes)
    scheme = _value("f_scheme")
    seg_opts = [] if scheme is None else list(data.query("segments", scheme)["segment_id"])
    _select("Segment", "f_segment", seg_opts)
    _select("Sponsor", "f_sponsor", opts["sponsor"])
    _select("Channel", "f_channel", opts["channel"])
    st.sidebar.date_input("From", value=None, key="f_date_from")
    st.sidebar.date_input("To", value=None, key="f_date_to")
    if st.sidebar.button("Clear filters", key="clear_filters"):
        st.session_state["_pending"] = {"f_scheme": scheme}
        st.rerun()


def _value(key: str) -> Any:
    v = st.session_state.get(key)
    return None if v in (None, _ANY, "") else v


def ad_filter(*, ids: tuple[str, ...] | None = None) -> AdFilter:
    """The sidebar filters as an :class:`~bubblelens.present.queries.AdFilter`."""
    return AdFilter(narrative=_value("f_narrative"), camp=_value("f_camp"), scheme=_value("f_scheme"),
                    segment=_value("f_segment"), sponsor=_value("f_sponsor"), channel=_value("f_channel"),
                    date_from=_value("f_date_from"), date_to=_value("f_date_to"), ids=ids)


def scheme() -> str | None:
    """The segmentation scheme chosen in the sidebar."""
    return _value("f_scheme")


def require_store() -> str:
    """The open store's path; otherwise say how to open one and stop the page."""
    path = db_path()
    if not path or not Path(path).is_file():
        st.info("No store open. Start with `bubblelens app --db PATH` (or `streamlit run app.py -- --db PATH`), "
                "set `BUBBLELENS_DB` or `BUBBLELENS_STORES`, or upload a file on the **Upload** page.")
        st.stop()
    return path
