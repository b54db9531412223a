"""The report on a small hand-made store: escaping, nothing external, sections, findings, manifest, export.

The store is built by hand (no model), so these tests run in a second; tests/test_report.py runs the real
pipeline on the fixture corpus.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from bubblelens.report import build_report
from bubblelens.report.findings import concentrated_narratives, isolated_segments
from bubblelens.report.manifest import compare_numbers, file_sha256, flatten_numbers
from bubblelens.store import Store

XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>"]
REGIONS = ["Bretagne", "Île-de-France", "Occitanie"]
NARR = ["pensions", "immigration", "climate"]
CAMP = ["nfp", "rn", "ensemble"]
EXTERNAL = ['src="http', "src='http", 'href="http', "href='http", "url(http", "url(//", "@import",
            "<script", 'src="//', "<link"]


def _measure() -> dict:
    def seg(name, imp, cc, ci, shares):
        return {"segment": name, "impressions": imp, "camp_share": {"nfp": 0.5, "rn": 0.5},
                "narrative_share": shares, "cross_cutting": {"value": cc, "ci": ci},
                "effective_narratives": {"value": 1.5, "ci": [1.2, 1.8]}}
    return {"segments": [
        seg("Bretagne", 5000, 0.05, [0.01, 0.1], {"pensions": 0.95, "immigration": 0.05}),
        seg("Île-de-France", 6000, 0.5, [0.4, 0.6], {"pensions": 0.3, "immigration": 0.7}),
        seg("Occitanie", 7000, 0.3, [0.2, 0.4], {"climate": 0.8, "pensions": 0.2})],
        "global": {"theil_m": {"value": 0.4, "ci": [0.3, 0.5]}}}


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    src = tmp_path / "ads.jsonl"
    src.write_text("{}\n", encoding="utf-8")
    s = Store.open(tmp_path / "s.duckdb")
    con = s.con
    now = dt.datetime(2024, 6, 1)
    con.execute("INSERT INTO sources VALUES (?, ?, 'meta_api', 'messages', 10, 9, 1, ?, 'r-ing')",
                [file_sha256(src), str(src), now])
    for i in range(9):
        text = f"{XSS[i]} ad {i}" if i < 2 else f"ad text {i}"
        con.execute("INSERT INTO messages (message_id, text, sponsor, impressions_lower, impressions_upper) "
                    "VALUES (?, ?, ?, ?, ?)", [str(i), text, f"Sponsor {i % 3}", 1000 * (i + 1), 4999 * (i + 1)])
        con.execute("INSERT INTO deliveries (message_id, kind, region, share) VALUES (?, 'region', ?, 1.0)",
                    [str(i), REGIONS[i % 3]])
        con.execute("INSERT INTO scores VALUES (?, 'narrative', ?, 0.8, 'zero-shot', '[]', 'usem3', 'r')",
                    [str(i), NARR[i % 3]])
        con.execute("INSERT INTO scores VALUES (?, 'camp', ?, 0.9, 'sponsor', '[]', 'usem3', 'r')",
                    [str(i), CAMP[i % 3]])
    for r in REGIONS:
        con.execute("INSERT INTO segments VALUES ('cells:region', ?, ?, 100, 1000, NULL, false, true, NULL, 'r')",
                    [f"region={r}", f"region={r}"])
        con.execute("INSERT INTO segment_members VALUES ('cells:region', ?, ?, 1.0, true)", [f"region={r}", r])
    con.execute("INSERT INTO segments VALUES ('cells:region', 'tiny', 'Tinyville', 2, 5, NULL, true, true, NULL, 'r')")
    con.execute("INSERT INTO rejects VALUES (?, 'x', 7, 'impressions', 'bad range <b>', '{}')", [str(src)])
    s.record_run("r-ing", "ingest", status="ok", started_at=now, finished_at=now, params={"format": "meta_api"})
    s.record_run("r-seg", "segment", status="ok", started_at=now, finished_at=now,
                 params={"scheme": "cells", "k_min": 10, "random_state": 0})
    return s


def test_isolated_segments_are_the_lowest_cross_cutting_shares() -> None:
    rows = isolated_segments(_measure(), n=2)
    assert [r["segment"] for r in rows] == ["Bretagne", "Occitanie"]
    assert rows[0]["ci"] == [0.01, 0.1]


def test_concentrated_narrative_is_the_one_sent_where_nothing_else_goes() -> None:
    rows = concentrated_narratives(_measure(), n=3, top_k=1)
    assert rows[0]["narrative"] == "climate"
    imp = {"Bretagne": 5000, "Île-de-France": 6000, "Occitanie": 7000}
    assert rows[0]["top_segments"] == ["Occitanie"]
    assert rows[0]["top_share"] == pytest.approx(1.0)
    assert rows[0]["base_share"] == pytest.approx(imp["Occitanie"] / sum(imp.values()))
    assert all(0.0 <= r["js"] <= 1.0 for r in rows)
    assert rows[0]["js"] > rows[-1]["js"]


def test_report_escapes_ads_loads_nothing_and_has_every_section(store: Store, tmp_path: Path) -> None:
    res = build_report(store, tmp_path / "r.html", scheme="cells:region", measure=_measure())
    html = res.path.read_text(encoding="utf-8")
    for sid in ("findings", "heatmap", "cross-cutting", "funnel", "cards", "methods", "provenance",
                "limitations"):
        assert f'<section id="{sid}">' in html
    for bad in EXTERNAL:
        assert bad not in html.lower(), bad
    for payload in XSS:
        assert payload not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "bad range &lt;b&gt;" in html
    assert "Tinyville" not in html  # suppressed: counted, never named
    assert "1 segment(s) under the privacy floor (k = 10)" in html
    findings = html.split('<section id="findings">')[1].split("</section>")[0]
    assert "Bretagne: only 5.0%" in findings
    assert "climate (climate): 100.0%" in findings or "climate" in findings
    # every image is inline
    assert re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert all(s.startswith("data:image/") for s in re.findall(r'<img[^>]+src="([^"]+)"', html))


def test_french_report(store: Store, tmp_path: Path) -> None:
    res = build_report(store, tmp_path / "r.html", scheme="cells:region", measure=_measure(), lang="fr",
                       export=False)
    html = res.path.read_text(encoding="utf-8")
    assert '<html lang="fr">' in html and "Constats" in html and "Limites" in html
    assert "Bretagne : seulement 5,0 %" in html


def test_manifest_records_inputs_and_every_number(store: Store, tmp_path: Path) -> None:
    res = build_report(store, tmp_path / "r.html", scheme="cells:region", measure=_measure())
    m = json.loads(res.manifest.read_text(encoding="utf-8"))
    (inp,) = m["inputs"]
    assert re.fullmatch(r"[0-9a-f]{64}", inp["sha256"]) and inp["sha256"] == file_sha256(inp["path"])
    assert (inp["rows_kept"], inp["rows_rejected"]) == (9, 1)
    assert m["numbers"]["measure/segments/Bretagne/cross_cutting/ci/1"] == 0.1
    assert m["numbers"]["measure/global/theil_m/value"] == 0.4
    assert m["numbers"]["findings/isolated/Bretagne/value"] == 0.05
    assert m["stages"]["segment"]["params"]["random_state"] == 0
    assert m["seeds"]["segment"] == {"random_state": 0}
    # the manifest's numbers are the ones the report shows
    assert m["numbers"] == flatten_numbers(res.numbers)


def test_export_writes_tables_and_figures(store: Store, tmp_path: Path) -> None:
    res = build_report(store, tmp_path / "r.html", scheme="cells:region", measure=_measure())
    files = {p.name for p in res.files.iterdir()}
    for name in ("segments", "narrative_share", "camp_share", "global", "findings"):
        assert {f"{name}.csv", f"{name}.parquet"} <= files
    for name in ("heatmap", "cross_cutting"):
        assert {f"{name}.svg", f"{name}.png"} <= files
    seg = pd.read_parquet(res.files / "segments.parquet")
    assert seg.set_index("segment").loc["Occitanie", "cross_cutting_low"] == 0.2
    assert (res.files / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_numbers_lists_each_difference() -> None:
    a = flatten_numbers({"x": {"value": 0.5, "ci": [0.4, 0.6]}, "s": "a"})
    b = flatten_numbers({"x": {"value": 0.5 + 1e-13, "ci": [0.4, 0.61]}, "s": "a", "y": 1})
    diff = compare_numbers(a, b)
    assert [d.key for d in diff] == ["x/ci/1", "y"]


def test_cli_verify_exit_status(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from click.testing import CliRunner

    import bubblelens.report as report
    from bubblelens.cli import main
    from bubblelens.report.manifest import Mismatch, VerifyResult

    m = tmp_path / "r.manifest.json"
    m.write_text("{}", encoding="utf-8")
    monkeypatch.setattr(report, "verify_manifest", lambda p: VerifyResult(ok=True, n_checked=3))
    res = CliRunner().invoke(main, ["report", "--verify", str(m)])
    assert res.exit_code == 0 and "all 3 numbers match" in res.output
    monkeypatch.setattr(report, "verify_manifest", lambda p: VerifyResult(
        ok=False, mismatches=[Mismatch("measure/global/theil_m/value", 0.4, 0.5)], n_checked=3))
    res = CliRunner().invoke(main, ["report", "--verify", str(m)])
    assert res.exit_code == 1
    assert "measure/global/theil_m/value: recorded 0.4, re-run 0.5" in res.output


def test_cli_report_writes_html_and_manifest(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from bubblelens.cli import main
    from bubblelens.report import pipeline

    monkeypatch.setattr(pipeline, "get_measure", lambda st, scheme, **kw: (_measure(), True))
    db = store.path
    store.close()
    out = tmp_path / "cli.html"
    res = CliRunner().invoke(main, ["report", "--db", db, "--out", str(out), "--scheme", "cells:region"])
    assert res.exit_code == 0, res.output
    assert out.exists() and (tmp_path / "cli.manifest.json").exists() and (tmp_path / "cli_files").is_dir()
    assert "ran `bubblelens measure` first" in res.output


def test_report_says_what_it_cannot_show_when_no_ads_lie_behind_the_findings(store: Store,
                                                                              tmp_path: Path) -> None:
    """A measurement with findings but a store with no ads behind them (no delivery rows: a panel's
    messages, another store's measurement) still gives a report; each finding and card says plainly that
    its sponsors and ads cannot be shown (the template used to fail on the missing ``sponsors``)."""
    store.con.execute("DELETE FROM deliveries")
    res = build_report(store, tmp_path / "r.html", scheme="cells:region", measure=_measure(), export=False)
    html = res.path.read_text(encoding="utf-8")
    findings = html.split('<section id="findings">')[1].split("</section>")[0]
    cards = html.split('<section id="cards">')[1].split("</section>")[0]
    n_findings = findings.count('class="finding isolated"') + findings.count('class="finding concentrated"')
    assert n_findings >= 2
    no_ads = "The store holds no ads behind this finding: its sponsors and ads cannot be shown."
    assert findings.count(no_ads) == n_findings
    assert "Sponsors behind them" not in findings
    assert cards.count(no_ads) == cards.count('<article class="card">') == n_findings
    assert 'class="ad"' not in cards
    fr = build_report(store, tmp_path / "fr.html", scheme="cells:region", measure=_measure(), lang="fr",
                      export=False).path.read_text(encoding="utf-8")
    assert "La base ne contient aucune annonce derrière ce constat" in fr


def test_a_finding_whose_segment_has_no_ads_says_so_and_the_others_keep_their_sponsors(
        store: Store, tmp_path: Path) -> None:
    store.con.execute("DELETE FROM deliveries WHERE region = 'Bretagne'")
    html = build_report(store, tmp_path / "r.html", scheme="cells:region", measure=_measure(),
                        export=False).path.read_text(encoding="utf-8")
    findings = html.split('<section id="findings">')[1].split("</section>")[0]
    bretagne = findings.split('data-segment="Bretagne">')[1].split("</div>\n")[0]
    occitanie = findings.split('data-segment="Occitanie">')[1].split("</div>\n")[0]
    assert "cannot be shown" in bretagne and "Sponsors behind them" not in bretagne
    assert "Sponsors behind them: Sponsor 2" in occitanie and "cannot be shown" not in occitanie
