"""The Exposure page's heatmap of a region scheme with many segments follows the report's row rule
(``present.rows``, docs/report.md "Many segments"): at most 25 rows, the home country's regions first,
grouped by country, a caption naming how many rows were left out, and a checkbox that draws them all.
The store: 80-odd regions of Germany (most impressions), Poland and the United States."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from apptest_helpers import goto, open_app
from streamlit.testing.v1 import AppTest

from bubblelens.geo import region_matcher
from bubblelens.geo.boundaries import load_names
from bubblelens.present.exposure import heatmap_rows
from bubblelens.present.rows import MAX_ROWS
from bubblelens.store import Store

NARR = ("pensions", "immigration", "climate")


def _regions(country: str) -> list[str]:
    """The admin-1 names of a country that the region matcher reads back as themselves."""
    m = region_matcher()
    return [dict(names)["name"] for code, iso_a2, layer, names, _t in load_names()["regions"]
            if iso_a2 == country and layer == "admin1" and dict(names).get("name")
            and m.match(dict(names)["name"]) == code]


@pytest.fixture(scope="module")
def regions() -> dict[str, list[str]]:
    return {c: _regions(c) for c in ("DE", "PL", "US")}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, regions: dict[str, list[str]]) -> str:
    """One ad per region (30 for each German Land): Germany holds most impressions, three US states
    more than the smallest Land."""
    path = tmp_path_factory.mktemp("rows") / "regions.duckdb"
    s = Store.open(path)
    now = dt.datetime(2024, 6, 1)
    i = 0
    for country, names in regions.items():
        for k, r in enumerate(names):
            imp = {"DE": 50_000 - 1_000 * k, "PL": 2_000 + 10 * k, "US": 5_000 if k < 3 else 100 + k}[country]
            if country == "DE" and k == len(names) - 1:
                imp = 800
            for _ in range(30 if country == "DE" else 1):
                mid = f"m{i}"
                s.con.execute("INSERT INTO messages (message_id, text, sponsor, impressions_lower, "
                              "impressions_upper) VALUES (?, ?, ?, ?, ?)", [mid, f"ad {i}", f"S{i % 7}", imp, imp])
                s.con.execute("INSERT INTO deliveries (message_id, kind, region, share) VALUES (?, 'region', ?, "
                              "1.0)", [mid, r])
                s.con.execute("INSERT INTO scores VALUES (?, 'narrative', ?, 0.9, 'zero-shot', '[]', 'e', 'r')",
                              [mid, NARR[i % 3]])
                s.con.execute("INSERT INTO scores VALUES (?, 'camp', 'a', 0.9, 'sponsor', '[]', 'e', 'r')", [mid])
                i += 1
            s.con.execute("INSERT INTO segments VALUES ('cells:region', ?, ?, 30, ?, NULL, false, true, NULL, 'r')",
                          [f"region={r}", r, float(imp)])
            s.con.execute("INSERT INTO segment_members VALUES ('cells:region', ?, ?, 1.0, true)",
                          [f"region={r}", f"region={r}"])
    s.record_run("r-seg", "segment", status="ok", started_at=now, finished_at=now,
                 params={"scheme": "cells"})
    s.close()
    return str(path)


@pytest.fixture()
def app(store: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_app(store, monkeypatch, timeout=120)


def _heatmap(at: AppTest) -> dict:
    for c in at.get("plotly_chart"):
        fig = json.loads(c.proto.spec)
        if fig["data"] and fig["data"][0]["type"] == "heatmap":
            return fig
    raise AssertionError("no heatmap on the page")


def test_exposure_heatmap_shows_25_rows_home_country_first_and_all_on_request(
        app: AppTest, regions: dict[str, list[str]]) -> None:
    n = sum(len(v) for v in regions.values())
    assert n > 75 and len(regions["DE"]) == 16
    at = goto(app, "exposure")
    y = _heatmap(at)["data"][0]["y"]
    assert len(y) == MAX_ROWS
    assert y[:16] == [f"region={r} (DE)" for r in regions["DE"]]         # every Land first, largest first
    # then the 9 largest others, grouped: Poland (more impressions in all) before its 3 larger US states
    assert [c[-3:-1] for c in y[16:]] == ["PL"] * 6 + ["US"] * 3
    caption = " ".join(c.value for c in at.caption)
    assert f"25 of {n} rows shown: all 16 rows of DE" in caption and f"the other {n - 25} (" in caption
    assert "grouped by country" in caption
    assert len(at.selectbox(key="cell_segment").options) == n            # every row can still be opened
    at.checkbox(key="heatmap_all").check().run()
    assert not at.exception
    y_all = _heatmap(at)["data"][0]["y"]
    assert len(y_all) == n and y_all[:16] == y[:16]
    assert f"All {n} rows shown." in " ".join(c.value for c in at.caption)


def test_heatmap_rows_of_a_scheme_without_countries_keep_the_largest_in_impression_order() -> None:
    import pandas as pd

    shares = pd.DataFrame({"a": [0.5] * 30, "b": [0.5] * 30}, index=[f"s{i:02d}" for i in range(30)])
    imp = {f"s{i:02d}": float(i) for i in range(30)}
    rows = heatmap_rows(shares, imp, {})
    assert list(rows.shares.index) == [f"s{i:02d}" for i in range(29, 4, -1)]
    assert rows.labels == list(rows.shares.index) and not rows.selection.grouped
    assert rows.caption.startswith("25 of 30 rows shown: the largest by impressions; the other 5 (")
    assert "grouped" not in rows.caption
    small = heatmap_rows(shares.iloc[:3], imp, {})
    assert small.caption == "" and list(small.shares.index) == ["s02", "s01", "s00"]


def test_segments_the_measurement_left_out_reach_no_figure() -> None:
    from bubblelens.present.exposure import only_measured

    long = pd.DataFrame({"segment_id": ["region=A", "region=A", "region=B", "region=C"],
                         "label": ["x", "y", "x", "x"], "impressions": [500.0, 300.0, 60.0, 900.0]})
    measured = pd.DataFrame({"segment_id": ["region=A", "region=C"]})   # B is under the 100-impression floor
    assert list(only_measured(long, measured)["segment_id"]) == ["region=A", "region=A", "region=C"]
    assert len(only_measured(long, measured.iloc[0:0])) == 4            # not measured yet: nothing to apply
