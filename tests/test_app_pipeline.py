"""The app's pages on the store the real pipeline (:func:`bubblelens.pipeline.run_pipeline`) builds from
``data/fixtures`` plus one hostile ad (ingest, classify, discover, segment, measure).

Slow: classification embeds the fixtures and interest clustering compiles UMAP (~35 s on a first fit).
"""

from __future__ import annotations

import duckdb
import pytest
from apptest_helpers import PAGES, ads_total, goto, open_app
from streamlit.testing.v1 import AppTest

from bubblelens.pipeline import FIXTURE_INPUTS, fixtures_dir, run_pipeline
from bubblelens.store import Store

pytestmark = pytest.mark.slow

XSS = "<script>window.__xss = 1</script><img src=x onerror=alert(1)> Votez pour nous"


@pytest.fixture(scope="module")
def fixture_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("pipeline")
    xss = tmp / "xss.csv"  # a generic table whose columns carry the canonical field names
    xss.write_text('id,text,sponsor,channel\nxss-fixture,"' + XSS + '",XSS sponsor,sms\n', encoding="utf-8")
    fx = fixtures_dir()
    inputs = [(fx / name, opts) for name, opts in FIXTURE_INPUTS] + [(xss, {"format": "table"})]
    path = tmp / "fixtures.duckdb"
    with Store.open(path) as store:
        res = run_pipeline(store, inputs, sponsors=fx / "sponsors.csv", n_boot=200)
    return str(path), res.stages


@pytest.fixture()
def app(fixture_store: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_app(fixture_store[0], monkeypatch, timeout=300)


def _stage(done: dict[str, str], name: str) -> None:
    if done.get(name) is None or done[name].startswith("skipped"):
        pytest.skip(f"stage {name!r} not available on the fixture store: {done.get(name)}")


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_on_the_fixture_store(app: AppTest, page: str) -> None:
    at = goto(app, page)
    assert len(at.title) == 1


def test_overview_counts_the_fixture_messages(app: AppTest, fixture_store: tuple[str, dict[str, str]]) -> None:
    at = goto(app, "overview")
    with duckdb.connect(fixture_store[0], read_only=True) as con:
        (n,) = con.execute("SELECT count(*) FROM messages").fetchone()  # type: ignore[misc]
    assert {m.label: m.value for m in at.metric}["Ads and messages"] == f"{n:,}"


def test_narrative_filter_on_real_scores(app: AppTest, fixture_store: tuple[str, dict[str, str]]) -> None:
    _stage(fixture_store[1], "classify")
    at = goto(app, "ads")
    with duckdb.connect(fixture_store[0], read_only=True) as con:
        label, n = con.execute("""SELECT label, count(*) FROM scores WHERE task = 'narrative'
                                  AND label <> 'unassigned' GROUP BY 1 ORDER BY 2 DESC LIMIT 1""").fetchone()  # type: ignore[misc]
    at.sidebar.selectbox(key="f_narrative").set_value(label).run()
    assert ads_total(at) == n


def test_exposure_heatmap_rows_are_the_unsuppressed_cells(app: AppTest,
                                                          fixture_store: tuple[str, dict[str, str]]) -> None:
    _stage(fixture_store[1], "classify")
    _stage(fixture_store[1], "segment cells:region")
    at = goto(app, "exposure")
    rows = set(at.selectbox(key="cell_segment").options)
    with duckdb.connect(fixture_store[0], read_only=True) as con:
        suppressed = {r[0] for r in con.execute(
            "SELECT segment_id FROM segments WHERE scheme = 'cells' AND suppressed").fetchall()}
    assert rows and not rows & suppressed


def test_fixture_xss_ad_is_plain_text(app: AppTest) -> None:
    at = goto(app, "ads")
    at.sidebar.selectbox(key="f_sponsor").set_value("XSS sponsor").run()
    assert XSS in [t.value for t in at.text]
    assert not at.get("html")
