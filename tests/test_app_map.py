"""The Map page and the Overview's story, with Streamlit's AppTest on a generated store (French régions).

The map draws every region segment of the scheme on its shape (no download), the measure changes what is
drawn, and opening a region lands on the Ads page filtered to exactly that region's ads. The Overview
opens with the report's findings (same functions, same thresholds), each linking to its ads, then the map.
"""

from __future__ import annotations

import json

import duckdb
import pytest
from apptest_helpers import ads_total, goto, open_app
from streamlit.testing.v1 import AppTest

from bubblelens.present.queries import CELL_KEY
from bubblelens.present.synthetic import build_synthetic_store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("map") / "synthetic.duckdb"
    build_synthetic_store(path, n_ads=1500, n_audiences=600, seed=3)
    return str(path)


@pytest.fixture()
def app(store: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_app(store, monkeypatch, timeout=120)


def _figure(at: AppTest) -> dict:
    charts = [e for e in at.get("plotly_chart")]
    assert charts, "no plotly chart on the page"
    return json.loads(charts[0].proto.spec)


def test_map_page_draws_every_region_on_its_shape(app: AppTest, store: str) -> None:
    at = goto(app, "map")
    assert [t.value for t in at.title] == ["Map"]
    fig = _figure(at)
    trace = fig["data"][-1]
    assert trace["type"] == "choropleth"
    assert fig["layout"]["geo"]["fitbounds"] == "locations" and fig["layout"]["geo"]["visible"] is False
    with duckdb.connect(store, read_only=True) as con:
        regions = [r for (r,) in con.execute("SELECT DISTINCT region FROM deliveries WHERE region IS NOT NULL")
                   .fetchall()]
    assert len(trace["locations"]) == len(regions) == 5
    assert all(code.startswith("FR-") for code in trace["locations"])
    assert {f["id"] for f in trace["geojson"]["features"]} >= set(trace["locations"])  # shapes passed in
    assert all("ads" in t for t in trace["text"])          # hover: value, interval, ads


def test_map_measure_changes_the_values(app: AppTest) -> None:
    at = goto(app, "map")
    imp = _figure(at)["data"][-1]["z"]
    at.radio(key="mp_measure").set_value("cross_cutting").run()
    assert not at.exception
    cc = _figure(at)["data"][-1]["z"]
    assert imp != cc and all(0 <= v <= 1 for v in cc if v is not None)
    if "A camp's share" in at.radio(key="mp_measure").options:  # where the measure stage stored shares
        at.radio(key="mp_measure").set_value("camp_share").run()
        assert at.selectbox(key="mp_camp").options


def test_opening_a_region_lands_on_exactly_its_ads(app: AppTest, store: str) -> None:
    at = goto(app, "map")
    seg = "region=Bretagne"
    at.selectbox(key="mp_region").set_value(seg)
    at.button[[b.label for b in at.button].index("Open ads")].click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Ads"]
    assert at.sidebar.selectbox(key="f_segment").value == seg
    with duckdb.connect(store, read_only=True) as con:
        (expected,) = con.execute(f"SELECT count(DISTINCT d.message_id) FROM deliveries d WHERE {CELL_KEY} = ?",
                                  [seg]).fetchone()
    assert ads_total(at) == expected > 0


def test_overview_opens_with_the_findings_then_the_map(app: AppTest) -> None:
    at = goto(app, "overview")
    heads = [h.value for h in at.subheader]
    assert heads.index("What the data says") < heads.index("Map") < heads.index("Data quality")


def test_a_finding_opens_its_ads(app: AppTest, store: str) -> None:
    at = goto(app, "overview")
    at.sidebar.selectbox(key="f_scheme").set_value("interests").run()  # the generated store's findings
    buttons = [b for b in at.button if str(b.key or "").startswith("ov_iso_")]
    assert buttons, "no isolated-segment finding on the generated store"
    sentence = next(m.value for m in at.markdown if "of its impressions come from outside" in m.value)
    buttons[0].click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Ads"]
    assert at.sidebar.selectbox(key="f_scheme").value == "interests"
    seg = at.sidebar.selectbox(key="f_segment").value
    assert seg not in (None, "(any)") and ads_total(at) > 0
    assert "ads from" in sentence and "interval" in sentence
