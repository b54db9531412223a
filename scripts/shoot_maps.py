"""Screenshots of the Map page, the Overview and the report's map section (Playwright + Debian Chromium).

``python scripts/shoot_maps.py --db STORE --report REPORT.html --name NAME`` writes
``docs/images/map_NAME.png``, ``overview_NAME.png`` and ``report_map_NAME.png``. Starts
``streamlit run app.py`` on localhost for the app pages; the report is opened as a file.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _idle(pg: object) -> None:
    pg.wait_for_timeout(300)  # type: ignore[attr-defined]
    pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',  # type: ignore[attr-defined]
                         timeout=180_000)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", default=str(ROOT / "docs" / "images"))
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    port = _port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1", "--", "--db", a.db],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
            pg = b.new_context(viewport={"width": 1400, "height": 1250}).new_page()
            for path, title, shot in (("map", "Map", "map"), ("", "Overview", "overview")):
                pg.goto(f"{url}/{path}", timeout=180_000)
                pg.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=180_000)
                _idle(pg)
                pg.locator(".js-plotly-plot").first.wait_for(timeout=180_000)
                pg.wait_for_timeout(1500)  # plotly draws the shapes after the bundle loads
                if shot == "map":  # hover a region in the middle of the map: the tooltip is in the shot
                    shapes = pg.locator(".js-plotly-plot path.choroplethlocation")
                    shapes.first.wait_for(timeout=60_000)
                    box = shapes.nth(shapes.count() - 1).bounding_box()  # a shape of the value trace
                    if box:
                        pg.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
                        pg.wait_for_timeout(800)
                pg.screenshot(path=str(out / f"{shot}_{a.name}.png"), full_page=shot == "overview")
            rp = b.new_context(viewport={"width": 1300, "height": 1000}).new_page()
            rp.goto(Path(a.report).resolve().as_uri())
            rp.locator("#maps").scroll_into_view_if_needed()
            rp.locator("#maps").screenshot(path=str(out / f"report_map_{a.name}.png"))
            b.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()
