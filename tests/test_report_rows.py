"""Figures of a scheme with many segments stay readable: at most ``MAX_ROWS`` rows, the home country's
regions first, grouped by country, and a caption that says how many rows were left out and where they are
(bubblelens/present/rows.py, docs/report.md "Many segments")."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from bubblelens.geo import region_matcher
from bubblelens.geo.boundaries import load_names
from bubblelens.present.rows import MAX_ROWS, country_label, select_rows
from bubblelens.report import build_report
from bubblelens.report import figures as figs
from bubblelens.store import Store


def _regions(country: str) -> list[str]:
    """The admin-1 names of a country that the region matcher reads back as themselves."""
    m = region_matcher()
    out = []
    for code, iso_a2, layer, names, _type in load_names()["regions"]:
        name = dict(names).get("name")
        if iso_a2 == country and layer == "admin1" and name and m.match(name) == code:
            out.append(name)
    return out


DE, PL, US = _regions("DE"), _regions("PL"), _regions("US")


def _impressions() -> dict[str, float]:
    """DE holds most impressions (the home country); some US states received more than small Länder."""
    imp = {r: 50_000.0 - 1_000 * i for i, r in enumerate(DE)}
    imp[DE[-1]] = 800.0  # a small Land: fewer impressions than the largest regions abroad
    imp.update({r: 2_000.0 + 10 * i for i, r in enumerate(PL)})
    imp.update({r: 5_000.0 if i < 3 else 100.0 + i for i, r in enumerate(US)})
    return imp


def _measure(imp: dict[str, float]) -> dict[str, Any]:
    narr = ["pensions", "immigration", "climate"]
    segs = [{"segment": r, "segment_id": f"region={r}", "impressions": v, "camp_share": {"a": 0.6, "b": 0.4},
             "narrative_share": {narr[i % 3]: 0.7, narr[(i + 1) % 3]: 0.3},
             "effective_narratives": {"value": 1.8, "ci": [1.6, 2.0]}}
            for i, (r, v) in enumerate(sorted(imp.items(), key=lambda kv: -kv[1]))]
    # no narrative with enough ads behind it: no finding (this store holds segments, not ads)
    return {"segments": segs, "global": {"theil_m": {"value": 0.1, "ci": [0.05, 0.2]}, "narrative_support": {
        "value": None, "ci": [None, None], "by_narrative": {}}}}


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "s.duckdb")
    now = dt.datetime(2024, 6, 1)
    for r, v in _impressions().items():
        s.con.execute("INSERT INTO segments VALUES ('cells:region', ?, ?, 100, ?, NULL, false, true, NULL, 'r')",
                      [f"region={r}", r, v])
        s.con.execute("INSERT INTO segment_members VALUES ('cells:region', ?, ?, 1.0, true)",
                      [f"region={r}", f"region={r}"])
    s.record_run("r-seg", "segment", status="ok", started_at=now, finished_at=now, params={"scheme": "cells"})
    return s


def test_eighty_regions_in_three_countries_give_a_readable_heatmap(store: Store, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    n = len(DE) + len(PL) + len(US)
    assert n >= 75 and len(DE) == 16  # the setting: ~80 regions of Germany, Poland and the United States
    drawn: dict[str, Any] = {}
    heatmap = figs.heatmap_figure

    def spy(segments: list[str], narratives: list[str], P: Any, **kw: Any) -> Any:
        drawn.update(segments=list(segments), groups=list(kw.get("groups") or []))
        return heatmap(segments, narratives, P, **kw)

    monkeypatch.setattr(figs, "heatmap_figure", spy)
    res = build_report(store, tmp_path / "r.html", scheme="cells:region", measure=_measure(_impressions()))
    rows = drawn["segments"]
    assert len(rows) == MAX_ROWS
    # every Land is there, even the one with fewer impressions than regions abroad, and comes first
    assert rows[:16] == sorted(DE, key=lambda r: -_impressions()[r])
    assert drawn["groups"][:16] == ["DE"] * 16
    # then the 9 largest others (3 US states of 5,000, 6 voivodeships of ~2,100), grouped by country,
    # countries in order of all their impressions (PL ~33,000 before US ~20,000)
    assert drawn["groups"][16:] == ["PL"] * 6 + ["US"] * 3
    html = res.path.read_text(encoding="utf-8")
    caption = re.search(r'<section id="heatmap">.*?<figcaption class="caption">(.*?)</figcaption>', html, re.S)
    assert caption is not None
    text = caption.group(1)
    assert f"25 of {n} rows shown" in text
    assert f"the other {n - 25} " in text
    assert "all 16 rows of DE" in text and "grouped by country" in text
    assert "narrative_share.csv" in text
    # left out of the figure, not of the data: the table and the exported file keep every row
    table = html.split('<table class="metrics">')[1].split("</table>")[0]
    assert all(f"<td>{r}</td>" in table for r in DE + PL + US)
    csv = (res.files / "narrative_share.csv").read_text(encoding="utf-8")
    assert all(f'"{r}"' in csv for r in US)


def test_the_home_country_comes_first_then_the_largest_others() -> None:
    imp = [100.0, 90.0, 5.0, 80.0, 3.0, 2.0, 1.0]
    ctry = ["DE", "ES", "DE", "US", "DE", None, "ES"]
    sel = select_rows(imp, ctry, max_rows=5)  # DE holds 108 of 281: no home country
    assert sel.home is None
    assert sel.rows == (0, 2, 4, 1, 3)  # the five largest, grouped: DE (108), ES (91), US (80)
    assert sel.countries == ("DE", "DE", "DE", "ES", "US")
    imp_home = [100.0, 9.0, 5.0, 8.0, 3.0, 2.0, 1.0]  # DE 108 of 128: the home country
    sel = select_rows(imp_home, ctry, max_rows=5)
    assert sel.home == "DE" and sel.n_home == 3
    assert sel.rows == (0, 2, 4, 1, 3)  # all of DE first, then the largest others: ES 9, US 8
    assert sel.countries == ("DE", "DE", "DE", "ES", "US")
    assert sel.n_left_out == 2 and sel.left_out_share == pytest.approx(3.0 / 128.0)


def test_rows_without_a_country_come_last_and_one_country_is_not_grouped() -> None:
    sel = select_rows([5.0, 50.0, 6.0, 3.0, 1.0], [None, "FR", "BE", "FR", "BE"], max_rows=4)
    assert sel.rows == (1, 3, 2, 0) and sel.countries == ("FR", "FR", "BE", None)
    assert sel.n_left_out == 1 and sel.left_out_share == pytest.approx(1.0 / 65.0)
    sel = select_rows([5.0, 50.0, 4.0], ["FR", "FR", None])
    assert sel.rows == (0, 1, 2) and not sel.grouped and sel.n_left_out == 0  # caller's order kept
    sel = select_rows(list(range(40)), None)  # e.g. age × gender cells: the largest, no country
    assert sel.n_shown == MAX_ROWS and sel.rows == tuple(range(15, 40)) and not sel.grouped
    assert country_label("Bayern", "DE") == "Bayern (DE)" and country_label("Bayern", None) == "Bayern"


def test_a_scheme_that_fits_shows_every_row_and_says_nothing_more(store: Store, tmp_path: Path) -> None:
    few = {r: 1_000.0 * (i + 1) for i, r in enumerate(DE[:5])}
    res = build_report(store, tmp_path / "r.html", scheme="cells:region", measure=_measure(few), export=False)
    html = res.path.read_text(encoding="utf-8")
    assert "rows shown" not in html and "grouped by country" not in html
