"""Hostile visitors in a real browser (Playwright + Debian Chromium): strings typed into every input of
every page (SQL, HTML/JS, 100 kB, right-to-left overrides, numbers out of range) and hostile files
uploaded (empty, binary named .csv, formula cells, a JSON bomb). No traceback, no dialog, the store
unchanged; the CSV the Ads page exports holds no live formula.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit_server import ARGS, CHROMIUM, TIMEOUT, serve_app

from bubblelens.present.safe import FORMULA_START
from bubblelens.present.synthetic import build_synthetic_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
PAGES = [("", "Overview"), ("narratives", "Narratives"), ("segments", "Segments"), ("exposure", "Exposure"),
         ("ads", "Ads"), ("spend", "Spend"), ("upload", "Upload"), ("methods", "Methods")]
HOSTILE = [
    "'; DROP TABLE messages; --",
    "\" OR 1=1 --",
    "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">",
    "=HYPERLINK(\"http://evil.example\",\"click\")",
    "\u202etxt.exe\u202d \u2067RTL\u2069",
    "../../../../etc/passwd",
    "x" * 100_000,
]
NUMBERS = ["1e309", "-1", "NaN", "99999999999999999999"]
TRACE = ("Traceback (most recent call last)", 'File "/', "site-packages")

if not Path(CHROMIUM).exists():
    pytest.skip("no /usr/bin/chromium: run scripts/install_browser.sh", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("hostile") / "synthetic.duckdb"
    build_synthetic_store(path, n_ads=600, n_audiences=300, seed=5)
    return str(path)


@pytest.fixture(scope="module")
def server(store: str) -> Iterator[str]:
    with serve_app(store) as url:
        yield url


@pytest.fixture()
def page() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        ctx = b.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        pg = ctx.new_page()
        pg.dialogs = []
        pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
        yield pg
        ctx.close()
        b.close()


def _idle(pg: object) -> None:
    pg.wait_for_timeout(300)  # type: ignore[attr-defined]
    pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',  # type: ignore[attr-defined]
                         timeout=TIMEOUT)


def _clean(pg: object, where: str) -> None:
    """No exception box, no traceback text, no dialog, no script of ours ran."""
    assert pg.locator('[data-testid="stException"]').count() == 0, where  # type: ignore[attr-defined]
    body = pg.locator("body").inner_text()  # type: ignore[attr-defined]
    assert not any(t in body for t in TRACE), where
    assert pg.dialogs == [], where  # type: ignore[attr-defined]
    assert pg.evaluate("() => window.__pwned") is None, where  # type: ignore[attr-defined]


def _open(pg: object, server: str, path: str, title: str) -> None:
    pg.goto(f"{server}/{path}", timeout=TIMEOUT)  # type: ignore[attr-defined]
    pg.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=TIMEOUT)  # type: ignore[attr-defined]
    _idle(pg)


def test_hostile_strings_in_every_input_of_every_page(server: str, page: object, store: str) -> None:
    before = _sha(store)
    for path, title in PAGES:
        _open(page, server, path, title)
        main = page.locator('[data-testid="stMain"]')  # type: ignore[attr-defined]
        texts = main.locator('[data-testid="stTextInput"] input, [data-testid="stTextArea"] textarea')
        numbers = main.locator('[data-testid="stNumberInput"] input')
        for i in range(texts.count()):
            for s in HOSTILE:
                box = texts.nth(i)
                if not box.is_visible() or not box.is_enabled():
                    continue
                box.fill(s)
                box.press("Enter")
                _idle(page)
                _clean(page, f"{title}: text input {i}: {s[:30]!r}")
        for i in range(numbers.count()):
            for s in NUMBERS:
                box = numbers.nth(i)
                if not box.is_visible():
                    continue
                box.click()
                page.keyboard.press("Control+A")  # type: ignore[attr-defined]
                page.keyboard.type(s)  # type: ignore[attr-defined]  # the browser drops what a number cannot hold
                box.press("Enter")
                _idle(page)
                _clean(page, f"{title}: number input {i}: {s!r}")
        _clean(page, title)
    assert _sha(store) == before, "the store changed"


def _upload(pg: object, server: str, path: Path) -> str:
    _open(pg, server, "upload", "Upload")
    pg.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(path))  # type: ignore[attr-defined]
    _idle(pg)
    go = pg.get_by_role("button", name="Ingest and run the pipeline")  # type: ignore[attr-defined]
    # the button comes with the rerun the upload starts, which may begin after _idle looked; a file the
    # page refuses at once shows none
    with contextlib.suppress(Exception):
        go.first.wait_for(timeout=15_000)
    if go.count():
        go.first.click()
        _idle(pg)
    return str(pg.locator('[data-testid="stMain"]').inner_text())  # type: ignore[attr-defined]


def test_hostile_uploads_and_exports(server: str, page: object, store: str, tmp_path: Path) -> None:
    before = _sha(store)
    files = {
        "empty.csv": b"",
        "binary.csv": bytes(range(256)) * 64,
        "bomb.json": b"[" * 200_000 + b"]" * 200_000,
        "nested.jsonl": b'{"id": "1", "ad_creative_bodies": ["ok"], "x": ' + b"[" * 5000 + b"]" * 5000 + b"}\n",
        "formula.csv": (b"id,text,sponsor\n"
                        b"f1,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\",=cmd|' /C calc'!A0\n"
                        b"f2,+SUM(1;2) Wahlaufruf,@evil\n"
                        b"f3,-2+3 Rente sichern,\tTab\n"),
    }
    for name, data in files.items():
        p = tmp_path / name
        p.write_bytes(data)
        shown = _upload(page, server, p)
        _clean(page, f"upload {name}")
        assert str(tmp_path) not in shown and "/tmp/" not in shown, f"upload {name} shows a server path"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "hostile_upload.png"), full_page=True)  # type: ignore[attr-defined]
    assert _sha(store) == before, "an upload changed the served store"

    # the formula upload is this session's store now (same browser session: navigate, do not reload)
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Ads", exact=True).click()  # type: ignore[attr-defined]
    page.get_by_role("heading", name="Ads", exact=True).first.wait_for(timeout=TIMEOUT)  # type: ignore[attr-defined]
    _idle(page)
    page.screenshot(path=str(SHOTS / "hostile_upload_ads.png"), full_page=True)  # type: ignore[attr-defined]
    button = page.locator('[data-testid="stDownloadButton"]').filter(  # type: ignore[attr-defined]
        has_text="Download these ads (CSV)").locator("button")
    button.first.wait_for(timeout=TIMEOUT)
    with page.expect_download(timeout=TIMEOUT) as dl:  # type: ignore[attr-defined]
        button.first.click()
    out = tmp_path / "ads.csv"
    shutil.copy(dl.value.path(), out)
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    cells = [c for r in rows for c in r]
    assert any("HYPERLINK" in c for c in cells), "the formula ads are not in the export"
    assert not any(c.startswith(FORMULA_START) for c in cells)
    _clean(page, "export")
