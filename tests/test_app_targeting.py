"""The Targeting page in Streamlit's AppTest: it shows the store's own numbers, every bar's pages and each
page's criteria, the clusters' pages, and says what to do on a store without targeting."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from apptest_helpers import goto, open_app

from bubblelens.ingest import ingest_paths
from bubblelens.store import Store


def _rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    pages = pd.DataFrame({
        "page_id": ["11", "12", "13", "21", "22"],
        "page_name": ["Green North", "Green South", "Green East", "Blue One", "Blue Two"],
        "party": ["Greens", "Greens", "Greens", "Blues", "Blues"], "ds": "2024-06-04",
        "total_num_ads": [3, 4, 5, 6, 7], "total_spend_formatted": [100, 200, 300, 400, 500],
        "main_currency": "EUR", "euro_spend": [100.0, 200.0, 300.0, 400.0, 500.0]})
    crit = []
    for pid in pages["page_id"]:
        crit += [{"page_id": pid, "type": "age", "value": str(a), "total_spend_pct": 1.0 if a >= 18 else 0.0}
                 for a in range(13, 65)] + [{"page_id": pid, "type": "age", "value": "65+", "total_spend_pct": 1.0}]
        crit.append({"page_id": pid, "type": "location", "value": "Germany", "total_spend_pct": 1.0,
                     "location_type": "countries", "is_exclusion": False})
    crit += [
        {"page_id": "11", "type": "custom_audience", "value": "Customer list Custom Audience", "total_spend_pct": 0.5,
         "custom_audience_type": "HAS_DFCA_INCLUSION", "is_exclusion": False},
        {"page_id": "12", "type": "lookalike_audience", "value": "Lookalike Audience", "total_spend_pct": 0.25,
         "is_exclusion": False},
        {"page_id": "11", "type": "detailed", "value": "Solar energy", "total_spend_pct": 0.4,
         "detailed_type": "INTERESTS", "is_exclusion": False},
        {"page_id": "13", "type": "detailed", "value": "Cycling", "total_spend_pct": 0.3,
         "detailed_type": "INTERESTS", "is_exclusion": False},
        {"page_id": "21", "type": "detailed", "value": "Cars", "total_spend_pct": 0.9,
         "detailed_type": "INTERESTS", "is_exclusion": False},
        {"page_id": "22", "type": "detailed", "value": "Cars", "total_spend_pct": 0.2,
         "detailed_type": "INTERESTS", "is_exclusion": False},
    ]
    return pages, pd.DataFrame(crit)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = tmp_path_factory.mktemp("app_targeting")
    pages, crit = _rows()
    pages.to_csv(d / "pages.csv", index=False)
    crit.to_csv(d / "criteria.csv", index=False)
    path = d / "store.duckdb"
    with Store.open(path) as s:
        ingest_paths(s, [d / "pages.csv", d / "criteria.csv"])
        s.con.execute("INSERT INTO targeting_clusters VALUES ('Solar energy', 't00', 'Solar energy · Cycling', 1, 'x', "
                      "'r'), ('Cycling', 't00', 'Solar energy · Cycling', 1, 'x', 'r'), ('Cars', 't01', 'Cars', 1, "
                      "'x', 'r')")
    return str(path)


def test_the_page_shows_the_store_and_says_what_it_is(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = goto(open_app(store, monkeypatch, timeout=120), "targeting")
    assert [t.value for t in at.title] == ["Targeting"]
    assert any("platform-reported targeting choices" in m.value and "not who saw the ads" in m.value
               for m in at.markdown)
    metrics = {m.label: m.value for m in at.metric}
    pages, crit = _rows()
    assert metrics["Pages"] == str(len(pages)) and metrics["Criteria rows"] == str(len(crit))
    assert metrics["Spend (EUR)"] == f"{pages['euro_spend'].sum():,.0f}"
    pdi = next(d.value for d in at.dataframe if "customer_list" in d.value.columns)
    # Blues never used a customer list: 0, with its two pages counted; Greens: 100 × 0.5 / 600
    assert pdi.loc["Blues", "customer_list"] == "0.0% (0 p)" and pdi.loc["Blues", "pages"] == 2
    assert pdi.loc["Greens", "customer_list"].startswith(f"{100 * 50 / 600:.1f}%")


def test_a_bar_lists_its_pages_and_a_page_its_criteria(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = goto(open_app(store, monkeypatch, timeout=120), "targeting")
    at.selectbox(key="tg_group").set_value("Greens")
    at.selectbox(key="tg_method").set_value("lookalike_audience")
    at.run()
    assert not at.exception
    assert any(m.value.startswith("**3 page(s)** in Greens; **1** used Lookalikes") for m in at.markdown)
    behind = next(d.value for d in at.dataframe if {"page_name", "party", "low", "high"} <= set(d.value.columns))
    assert behind.iloc[0]["page_name"] == "Green South" and behind.iloc[0]["high"] == 0.25
    assert sorted(behind["page_name"]) == ["Green East", "Green North", "Green South"]
    at.selectbox(key="tg_page").set_value("11")
    at.run()
    crit = next(d.value for d in at.dataframe if {"type", "total_spend_pct", "num_ads"} <= set(d.value.columns))
    _, all_crit = _rows()
    mine = all_crit[(all_crit["page_id"] == "11") & ~((all_crit["type"] == "age") & (all_crit["total_spend_pct"] == 0))]
    assert len(crit) == len(mine) and set(crit["type"]) == set(mine["type"])


def test_a_cluster_lists_its_pages(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = goto(open_app(store, monkeypatch, timeout=120), "targeting")
    at.selectbox(key="tg_cgroup").set_value("Greens")
    at.selectbox(key="tg_cluster").set_value("t00")
    at.run()
    table = next(d.value for d in at.dataframe if "criteria" in d.value.columns)
    used = table[table["high"] > 0]
    assert sorted(used["page_name"]) == ["Green East", "Green North"] and len(table) == 3


def test_a_distinctive_criterion_lists_its_pages(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = goto(open_app(store, monkeypatch, timeout=120), "targeting")
    at.selectbox(key="tg_dist_pick").set_value("Blues\x1fdetailed\x1fCars")
    at.run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "spend_behind" in d.value.columns)
    assert table["page_name"].tolist() == ["Blue One", "Blue Two"]
    assert table["spend_behind"].tolist() == [pytest.approx(400 * 0.9), pytest.approx(500 * 0.2)]


def test_a_store_without_targeting_says_what_to_ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "empty.duckdb"
    Store.open(path).close()
    at = goto(open_app(str(path), monkeypatch, timeout=60), "targeting")
    assert any("--format targeting" in i.value for i in at.info)
