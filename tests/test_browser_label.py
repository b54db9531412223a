"""The Label page in a real browser (``test_browser.py``'s way: ``streamlit run app.py``, Playwright on
Debian's Chromium): a label typed as its number and sent with Enter is stored, and the count goes up."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from streamlit_server import ARGS, CHROMIUM, TIMEOUT, serve_app
from test_app_label import HashEncoder

from bubblelens.present.synthetic import build_synthetic_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]


if not Path(CHROMIUM).exists():
    pytest.skip("no /usr/bin/chromium: run scripts/install_browser.sh", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("browser_label") / "label.duckdb"
    build_synthetic_store(path, n_ads=300, n_audiences=60, seed=4, encoder=HashEncoder())
    return str(path)


@pytest.fixture(scope="module")
def server(store: str) -> Iterator[str]:
    with serve_app(store) as url:
        yield url


def _idle(pg: object) -> None:
    pg.wait_for_timeout(200)  # type: ignore[attr-defined]
    pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',  # type: ignore[attr-defined]
                         timeout=TIMEOUT)


def test_a_label_typed_and_entered_is_counted(server: str, store: str) -> None:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1400, "height": 1400})
            pg.goto(f"{server}/label", timeout=TIMEOUT)
            pg.get_by_role("heading", name="Label", exact=True).first.wait_for(timeout=TIMEOUT)
            _idle(pg)
            pg.get_by_text("0 labelled, next refit at 25").first.wait_for(timeout=TIMEOUT)
            box = pg.get_by_label(re.compile(r"^Label \(1–\d+, 0 to skip\)"))
            box.click()
            pg.keyboard.type("2")
            pg.keyboard.press("Enter")
            pg.get_by_text("1 labelled, next refit at 25").first.wait_for(timeout=TIMEOUT)
            _idle(pg)
            assert box.input_value() == ""  # the form is cleared for the next ad
            assert pg.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()
    with duckdb.connect(store, read_only=True) as con:
        assert len(con.execute("SELECT label FROM labels WHERE task = 'camp' AND label <> 'skip'").fetchall()) == 1
