"""Helpers shared by the app tests (``test_app.py``, ``test_app_pipeline.py``): open ``app.py`` in
Streamlit's AppTest on a store, go to a page, read the Ads page's count."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGES = ["overview", "narratives", "segments", "exposure", "ads", "methods", "upload"]


def open_app(db: str, monkeypatch: pytest.MonkeyPatch, *, timeout: float) -> AppTest:
    """``app.py`` on the store at ``db`` (``BUBBLELENS_DB``), not yet run."""
    monkeypatch.setenv("BUBBLELENS_DB", db)
    return AppTest.from_file(APP, default_timeout=timeout)


def goto(at: AppTest, page: str) -> AppTest:
    """Run the app, switch to ``page`` (``overview`` is the entry page) and check it raised nothing."""
    at.run()
    if page != "overview":
        at.switch_page(f"bubblelens_app/pages/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def ads_total(at: AppTest) -> int:
    """The count the Ads page shows: ``**N ads** match``."""
    for md in at.markdown:
        m = re.match(r"\*\*([\d,]+) ads\*\* match", md.value)
        if m:
            return int(m.group(1).replace(",", ""))
    raise AssertionError("the Ads page shows no count")
