"""BubbleLens app: the router. ``streamlit run app.py -- --db PATH`` (or ``BUBBLELENS_DB``, or the sidebar).

Pages live in ``bubblelens_app/pages`` and only orchestrate; every query is in
``bubblelens.present.queries`` behind ``bubblelens_app.data``'s caches.
"""

from __future__ import annotations

import argparse
import sys

import streamlit as st

from bubblelens_app import data, state


def _cli_db(argv: list[str]) -> str | None:
    """``--db PATH`` from the arguments after ``--`` (unknown ones are ignored)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db", default=None)
    args, _ = parser.parse_known_args(argv)
    return args.db


st.set_page_config(page_title="BubbleLens", page_icon=":material/search:", layout="wide")
st.set_option("client.showErrorDetails", "none")  # no traceback reaches a page (also .streamlit/config.toml)
state.init(_cli_db(sys.argv[1:]))
state.apply_pending()

PAGES = "bubblelens_app/pages/"
nav = st.navigation({
    "Explore": [
        st.Page(PAGES + "overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page(PAGES + "narratives.py", title="Narratives", icon=":material/campaign:"),
        st.Page(PAGES + "segments.py", title="Segments", icon=":material/groups:"),
        st.Page(PAGES + "exposure.py", title="Exposure", icon=":material/grid_on:"),
        st.Page(PAGES + "map.py", title="Map", icon=":material/map:"),
        st.Page(PAGES + "ads.py", title="Ads", icon=":material/article:"),
        st.Page(PAGES + "targeting.py", title="Targeting", icon=":material/my_location:"),
    ],
    "Data": [
        st.Page(PAGES + "upload.py", title="Upload", icon=":material/upload_file:"),
        st.Page(PAGES + "label.py", title="Label", icon=":material/label:"),
        st.Page(PAGES + "spend.py", title="Spend", icon=":material/payments:"),
        st.Page(PAGES + "methods.py", title="Methods", icon=":material/functions:"),
    ],
})
with data.script_run():  # one read-only connection per store for this run's queries, closed after it
    try:
        state.sidebar()
        nav.run()
    except Exception as e:
        from bubblelens.present.safe import public_error

        st.error(f"This page could not be drawn ({type(e).__name__}: {public_error(e)}). The store is unchanged.")
