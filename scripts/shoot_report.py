"""Screenshot one section of a report (Playwright + Debian Chromium, scripts/install_browser.sh).

``python scripts/shoot_report.py REPORT.html --section heatmap --out docs/images/report_regions_real.png``
opens the report as a file (it loads nothing from anywhere) and writes the PNG of ``<section id=...>``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--section", default="heatmap", help="the id of the report's <section>")
    ap.add_argument("--out", required=True)
    ap.add_argument("--width", type=int, default=1100)
    a = ap.parse_args()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        pg = b.new_context(viewport={"width": a.width, "height": 900}).new_page()
        pg.goto(Path(a.report).resolve().as_uri())
        sec = pg.locator(f"section#{a.section}")
        sec.scroll_into_view_if_needed()
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        sec.screenshot(path=a.out)
        b.close()


if __name__ == "__main__":
    main()
