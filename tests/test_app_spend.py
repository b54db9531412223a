"""Sponsor spend is visible: ``stats``, the app's Spend page, the report's section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apptest_helpers import goto, open_app
from click.testing import CliRunner

from bubblelens.cli import main
from bubblelens.ingest import ingest_paths
from bubblelens.present.spend import report_period, spend_by_sponsor
from bubblelens.store import Store

REPORT = ("\ufeffPage ID,Page name,Disclaimer,Amount spent (EUR),Number of ads in Library\n"
          "1,Partei A,Partei A e.V.,84970,24\n2,Partei B,Partei B,≤100,3\n3,=HYPERLINK(\"x\"),Evil,500,1\n")


@pytest.fixture()
def spend_store(tmp_path: Path) -> str:
    db = tmp_path / "spend.duckdb"
    week1 = tmp_path / "FacebookAdLibraryReport_2024-05-04_DE_last_7_days_advertisers.csv"
    week2 = tmp_path / "FacebookAdLibraryReport_2024-05-11_DE_last_7_days_advertisers.csv"
    week1.write_text(REPORT, encoding="utf-8")
    week2.write_text(REPORT.replace("84970", "90000"), encoding="utf-8")
    with Store.open(db) as store:
        rep = ingest_paths(store, [week1, week2])
        assert rep.kept == 6
    return str(db)


def test_spend_by_sponsor_and_period(spend_store: str) -> None:
    assert report_period("FacebookAdLibraryReport_2024-05-04_DE_x") == "2024-05-04"
    with Store.open(spend_store, read_only=True) as store:
        df = spend_by_sponsor(store.con, camp_of=lambda s, i: "left" if s == "Partei A e.V." else None)
    assert sorted(set(df["period"])) == ["2024-05-04", "2024-05-11"]
    a = df[df["sponsor"] == "Partei A e.V."].set_index("period")
    assert a.loc["2024-05-11", "spend_lower"] == 90000 and set(a["camp"]) == {"left"}
    b = df[df["sponsor"] == "Partei B"]
    assert set(b["spend_lower"]) == {0} and set(b["spend_upper"]) == {100}


def test_stats_shows_sponsor_spend(spend_store: str) -> None:
    r = CliRunner().invoke(main, ["stats", "--db", spend_store, "--json"])
    s = json.loads(r.output)
    assert s["sponsor_spend"] == 6 and {x["sponsor"] for x in s["spend_by_sponsor"]} >= {"Partei A e.V."}
    assert all(x["read"] == x["kept"] + x["rejected"] + x["duplicate"] for x in s["by_source"])
    r = CliRunner().invoke(main, ["stats", "--db", spend_store])
    assert "sponsor spend" in r.output and "Partei A e.V." in r.output


def test_the_spend_page_draws_camps_over_time(spend_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = goto(open_app(spend_store, monkeypatch, timeout=60), "spend")
    assert at.title[0].value == "Spend"
    assert at.selectbox(key="spend_currency").value == "EUR"
    table = at.dataframe[0].value
    assert table["sponsor"].iloc[0] == "Partei A e.V." and table["spend_lower"].iloc[0] == 174970


def test_the_report_lists_declared_spend(spend_store: str) -> None:
    from bubblelens.report.i18n import strings
    from bubblelens.report.render import _spend_rows, environment

    with Store.open(spend_store, read_only=True) as store:
        rows = _spend_rows(store, "en")
    assert rows[0]["sponsor"] == "Partei A e.V." and rows[0]["amount"].endswith("EUR")
    assert any(r["amount"].startswith("0–100") for r in rows)
    src = environment().loader.get_source(environment(), "report.html.j2")[0]
    block = src[src.index("{% if spend %}"):src.index("{% endif %}", src.index("{% if spend %}")) + 11]
    html = environment().from_string(block).render(spend=[{**rows[0], "sponsor": "<script>x()</script>"}],
                                                   S=strings("en"))
    assert 'id="spend"' in html and "<script>x()" not in html and "&lt;script&gt;" in html
