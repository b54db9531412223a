"""The app in a real browser: ``streamlit run app.py`` on localhost, driven by Playwright with Debian's
Chromium (no browser download). Visits every page, goes from a heatmap cell to the filtered ads, saves
screenshots to ``artifacts/screenshots/``, and proves that ad text holding ``<script>`` and
``<img onerror>`` is shown as text and runs nothing.

Needs ``/usr/bin/chromium`` (``scripts/install_browser.sh``) and the ``playwright`` package.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from streamlit_server import ARGS, CHROMIUM, TIMEOUT, serve_app

from bubblelens.present.queries import CELL_KEY
from bubblelens.present.synthetic import XSS_TEXTS, build_synthetic_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
PAGES = [("", "Overview"), ("narratives", "Narratives"), ("segments", "Segments"), ("exposure", "Exposure"),
         ("ads", "Ads"), ("upload", "Upload"), ("methods", "Methods")]

if not Path(CHROMIUM).exists():
    pytest.skip("no /usr/bin/chromium: run scripts/install_browser.sh", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("browser") / "synthetic.duckdb"
    build_synthetic_store(path, n_ads=1500, n_audiences=600, seed=3)
    return str(path)


@pytest.fixture(scope="module")
def server(store: str) -> Iterator[str]:
    with serve_app(store) as url:
        yield url


def _click_through_to_ads(page: object, x: float, y: float, shot: str) -> None:
    """Click a chart point that opens the Ads page, and wait for it (screenshot ``shot``). A click that
    lands before plotly has bound its handlers, or during a rerun, is lost: click again, up to four times."""
    ads = page.get_by_role("heading", name="Ads", exact=True).first  # type: ignore[attr-defined]
    for attempt in range(4):
        page.mouse.move(x, y)  # type: ignore[attr-defined]
        page.mouse.click(x, y)  # type: ignore[attr-defined]
        try:
            ads.wait_for(timeout=TIMEOUT // 4 if attempt < 3 else TIMEOUT)
            break
        except Exception:
            if attempt == 3:
                raise
    assert page.url.endswith("/ads")  # type: ignore[attr-defined]
    _settle(page, "Ads")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / shot), full_page=True)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser: object) -> Iterator[object]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    pg = ctx.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    ctx.close()


def _settle(pg: object, title: str) -> None:
    """Wait for the page titled ``title`` and for its script run to finish."""
    pg.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=TIMEOUT)  # type: ignore[attr-defined]
    pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',  # type: ignore[attr-defined]
                         timeout=TIMEOUT)


def _idle(pg: object) -> None:
    """Wait until the app's script run has finished (a rerun replaces widgets under the cursor)."""
    pg.wait_for_timeout(200)  # type: ignore[attr-defined]  # let a rerun triggered just before start
    pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',  # type: ignore[attr-defined]
                         timeout=TIMEOUT)


def _choose(pg: object, label: str, value: str, *, sidebar: bool = False) -> None:
    """Pick ``value`` in the selectbox labelled exactly ``label`` (type to filter, Enter), between reruns."""
    _idle(pg)
    where = '[data-testid="stSidebar"]' if sidebar else '[data-testid="stMain"]'
    box = pg.locator(where).locator('[data-testid="stSelectbox"]').filter(  # type: ignore[attr-defined]
        has=pg.get_by_text(label, exact=True)).first  # type: ignore[attr-defined]
    box.click()
    pg.keyboard.type(value)  # type: ignore[attr-defined]
    pg.keyboard.press("Enter")  # type: ignore[attr-defined]
    _idle(pg)


def test_every_page_renders_in_a_browser(server: str, page: object) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for path, title in PAGES:
        page.goto(f"{server}/{path}", timeout=TIMEOUT)  # type: ignore[attr-defined]
        _settle(page, title)
        assert page.locator('[data-testid="stException"]').count() == 0, title  # type: ignore[attr-defined]
        page.screenshot(path=str(SHOTS / f"{title.lower()}.png"), full_page=True)  # type: ignore[attr-defined]
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_heatmap_cell_opens_the_filtered_ads(server: str, page: object, store: str) -> None:
    page.goto(f"{server}/exposure", timeout=TIMEOUT)  # type: ignore[attr-defined]
    _settle(page, "Exposure")
    heat = page.locator(".js-plotly-plot").first  # type: ignore[attr-defined]
    heat.wait_for(timeout=TIMEOUT)  # plotly's bundle loads lazily: slow on a busy machine
    heat.scroll_into_view_if_needed(timeout=TIMEOUT)
    drag = heat.locator(".nsewdrag").first
    box = drag.bounding_box()
    assert box is not None
    # A cell well inside the grid: a quarter across, a third down.
    x, y = box["x"] + box["width"] * 0.27, box["y"] + box["height"] * 0.35
    _click_through_to_ads(page, x, y, "heatmap_to_ads.png")
    caption = page.get_by_text(re.compile(r"^Filters: ")).first.inner_text()  # type: ignore[attr-defined]
    m = re.search(r"narrative = ([^,]+), scheme = cells, segment = (.+)$", caption.strip())
    assert m, caption
    narrative, segment = m.group(1), m.group(2)
    shown = page.get_by_text(re.compile(r"ads match")).first.inner_text()  # type: ignore[attr-defined]
    with duckdb.connect(store, read_only=True) as con:
        (expected,) = con.execute(
            f"""SELECT count(DISTINCT d.message_id) FROM deliveries d
                JOIN scores s ON s.message_id = d.message_id AND s.task = 'narrative'
                WHERE {CELL_KEY} = ? AND s.label = ?""", [segment, narrative]).fetchone()  # type: ignore[misc]
    assert int(re.search(r"([\d,]+) ads", shown).group(1).replace(",", "")) == expected > 0  # type: ignore[union-attr]


def test_ad_text_with_script_and_onerror_is_inert_text(server: str, page: object) -> None:
    page.goto(f"{server}/ads", timeout=TIMEOUT)  # type: ignore[attr-defined]
    _settle(page, "Ads")
    _choose(page, "Sponsor", "Page NFP 00", sidebar=True)
    page.get_by_text("sponsor = Page NFP 00").first.wait_for(timeout=TIMEOUT)  # type: ignore[attr-defined]
    for i, text in enumerate(XSS_TEXTS):
        shown = page.locator('[data-testid="stText"]').filter(has_text=text[-20:]).first  # type: ignore[attr-defined]
        for attempt in range(3):  # a choice typed during a rerun is lost: choose again
            _choose(page, "Ad", f"xss{i}")
            try:
                shown.wait_for(timeout=TIMEOUT // 3)
                break
            except sync_api.TimeoutError:
                if attempt == 2:
                    raise
        assert shown.inner_text() == text  # the markup itself is on screen, as characters
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "xss_as_text.png"), full_page=True)  # type: ignore[attr-defined]
    assert page.evaluate("() => window.__xss") is None  # type: ignore[attr-defined]
    assert page.locator('img[src="x"]').count() == 0  # type: ignore[attr-defined]
    assert page.dialogs == []  # type: ignore[attr-defined]
    # Control: the same text put into the page as HTML does run, so the checks above can fail.
    page.evaluate("(t) => { const d = document.createElement('div'); d.innerHTML = t; "  # type: ignore[attr-defined]
                  "document.body.appendChild(d); }", XSS_TEXTS[1])
    page.wait_for_function("() => window.__xss === 2", timeout=10_000)  # type: ignore[attr-defined]
    page.wait_for_timeout(300)  # type: ignore[attr-defined]
    assert page.dialogs == ["2"]  # type: ignore[attr-defined]


def test_map_region_click_opens_its_ads(server: str, page: object, store: str) -> None:
    """The Map page draws the régions offline (no CDN), and a click on one lands on exactly its ads."""
    page.goto(f"{server}/map", timeout=TIMEOUT)  # type: ignore[attr-defined]
    _settle(page, "Map")
    shapes = page.locator(".js-plotly-plot path.choroplethlocation")  # type: ignore[attr-defined]
    shapes.first.wait_for(timeout=TIMEOUT)  # drawn from the shipped GeoJSON, nothing fetched
    boxes = [shapes.nth(i).bounding_box() for i in range(shapes.count())]
    # the value trace is drawn last; its largest shape has its middle inside it
    box = max((b for b in boxes[-5:] if b), key=lambda b: b["width"] * b["height"])
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    _click_through_to_ads(page, x, y, "map_to_ads.png")
    caption = page.get_by_text(re.compile(r"^Filters: ")).first.inner_text()  # type: ignore[attr-defined]
    m = re.search(r"segment = (region=.+)$", caption.strip())
    assert m, caption
    shown = page.get_by_text(re.compile(r"ads match")).first.inner_text()  # type: ignore[attr-defined]
    with duckdb.connect(store, read_only=True) as con:
        (expected,) = con.execute(f"SELECT count(DISTINCT d.message_id) FROM deliveries d WHERE {CELL_KEY} = ?",
                                  [m.group(1)]).fetchone()  # type: ignore[misc]
    assert int(re.search(r"([\d,]+) ads", shown).group(1).replace(",", "")) == expected > 0  # type: ignore[union-attr]
