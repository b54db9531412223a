"""Targeting tables (Meta's Audience tab as Who Targets Me publishes it): read losslessly, measured as the
issue says (spend-weighted over pages, low/high bounds, zeros with their pages counted), compared with
delivery."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bubblelens.cli import main
from bubblelens.ingest import ingest_paths
from bubblelens.measure import targeting as T
from bubblelens.measure.targeting_run import group_of, targeting_report
from bubblelens.store import Store

PAGE_COLS = ["page_id", "page_name", "party", "ds", "total_num_ads", "total_spend_formatted", "main_currency",
             "euro_spend", "partyfacts_id"]


def _crit(pid: str, typ: str, value: str, pct: float, **kw: object) -> dict:
    return {"page_id": pid, "type": typ, "value": value, "num_ads": 1, "total_spend_pct": pct,
            "is_exclusion": kw.get("excl"), "location_type": kw.get("lt"), "detailed_type": kw.get("dt"),
            "custom_audience_type": kw.get("cat"), "num_obfuscated": 0 if typ == "location" else None}


def _ages(pid: str, lo: int, hi: int, pct: float = 1.0) -> list[dict]:
    return [_crit(pid, "age", a, pct if a in [str(x) for x in range(lo, hi + 1)] + (["65+"] if hi >= 65 else [])
                  else 0.0) for a in [str(x) for x in range(13, 65)] + ["65+"]]


@pytest.fixture
def tables(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame, pd.DataFrame]:
    pages = pd.DataFrame([
        ["1", "Green Page A", "Greens", "2024-06-04", 10, "€1,000", "EUR", 1000.0, "10"],
        ["2", "Green Page B", "Greens", "2024-06-04", 5, "3.000,00 €", "EUR", 3000.0, "10"],
        ["3", "Blue Page", "Blues", "2024-06-04", 7, "500", "EUR", 500.0, "20"],
        ["4", "Nameless", "", "2024-06-04", 1, "100", "EUR", 100.0, "30"],
    ], columns=PAGE_COLS)
    crit = pd.DataFrame([
        _crit("1", "custom_audience", "Customer list Custom Audience", 0.4, excl=False, cat="HAS_DFCA_INCLUSION"),
        _crit("1", "custom_audience", "Custom Audience", 0.5, excl=False, cat="HAS_CA_INCLUSION"),
        _crit("1", "custom_audience", "Custom Audience", 0.1, excl=True, cat="HAS_CA_EXCLUSION"),
        _crit("1", "lookalike_audience", "Lookalike Audience", 0.2, excl=False),
        _crit("1", "detailed", "Solar energy", 0.3, excl=False, dt="INTERESTS"),
        _crit("1", "detailed", "Cycling", 0.6, excl=False, dt="INTERESTS"),
        _crit("1", "location", "Germany", 1.0, excl=False, lt="countries"),
        _crit("1", "location", "10115, Germany", 0.25, excl=False, lt="zips"),
        _crit("1", "gender", "All", 0.9), _crit("1", "gender", "Women", 0.1),
        *_ages("1", 18, 65, 1.0),
        _crit("2", "detailed", "Solar energy", 0.8, excl=False, dt="INTERESTS"),
        _crit("2", "detailed", "Organic food", 0.7, excl=False, dt="INTERESTS"),
        _crit("2", "location", "Berlin, Germany", 0.5, excl=False, lt="regions"),
        _crit("2", "language", "German", 1.0),
        *_ages("2", 18, 34, 1.0),
        _crit("3", "detailed", "Cars", 1.0, excl=False, dt="INTERESTS"),
        _crit("3", "location", "Munich, Germany", 1.0, excl=False, lt="CITY"),
        *_ages("3", 18, 65, 1.0),
        _crit("4", "location", "Germany", 1.0, excl=False, lt="countries"),
    ])
    pages_csv, crit_csv = tmp_path / "pages.csv", tmp_path / "criteria.csv"
    pages.to_csv(pages_csv, index=False)
    crit.to_csv(crit_csv, index=False)
    return pages_csv, crit_csv, pages, crit


def test_pages_and_criteria_are_detected_and_every_row_kept(tmp_store: Store, tables: tuple) -> None:
    pages_csv, crit_csv, pages, crit = tables
    rep = ingest_paths(tmp_store, [pages_csv, crit_csv])
    assert {f.format for f in rep.files} == {"targeting"} and rep.rejected == 0
    n_pages, n_crit = tmp_store.con.execute(
        "SELECT (SELECT count(*) FROM targeting_pages), (SELECT count(*) FROM targeting_criteria)").fetchone()
    assert (n_pages, n_crit) == (len(pages), len(crit))
    ds = tmp_store.con.execute("SELECT DISTINCT ds FROM targeting_criteria").fetchall()
    assert [str(d[0]) for d in ds] == ["2024-06-04"]  # a criterion takes its page's window
    spend = dict(tmp_store.con.execute("SELECT page_id, spend FROM targeting_pages").fetchall())
    assert spend == {"1": 1000.0, "2": 3000.0, "3": 500.0, "4": 100.0}  # "€1,000", "3.000,00 €" parsed
    ingest_paths(tmp_store, [pages_csv, crit_csv])  # again: replaced, not doubled
    assert tmp_store.con.execute("SELECT count(*) FROM targeting_criteria").fetchone()[0] == len(crit)


def test_one_combined_table_as_published_and_parquet(tmp_path: Path, tables: tuple) -> None:
    _, _, pages, crit = tables
    combined = crit.merge(pages, on="page_id", how="left")
    combined.loc[0, "page_name"] = "Name with a\nline break"  # a quoted field spanning lines
    combined.to_csv(tmp_path / "all.csv", index=False)
    combined.to_parquet(tmp_path / "all.parquet", index=False)
    for f in ("all.csv", "all.parquet"):
        with Store.open(tmp_path / f"{f}.duckdb") as store:
            rep = ingest_paths(store, [tmp_path / f])
            assert rep.files[0].kind == "targeting:combined", rep.files[0]
            assert store.con.execute("SELECT count(*) FROM targeting_criteria").fetchone()[0] == len(crit)
            assert store.con.execute("SELECT count(*) FROM targeting_pages").fetchone()[0] == len(pages)


def test_a_bad_row_is_rejected_naming_file_line_and_field(tmp_store: Store, tmp_path: Path, tables: tuple) -> None:
    pages_csv, _, _, crit = tables
    bad = crit.astype({"total_spend_pct": object})
    bad.loc[2, "total_spend_pct"] = "lots"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    rep = ingest_paths(tmp_store, [pages_csv, tmp_path / "bad.csv"], format="targeting")
    f = next(r for r in rep.files if r.path.endswith("bad.csv"))
    assert (f.rows_read, f.rejected) == (len(crit), 1)
    line, field, reason = tmp_store.con.execute("SELECT line, field, reason FROM rejects").fetchone()
    assert (line, field) == (4, "total_spend_pct") and "lots" in reason  # header = line 1, row index 2 = line 4
    with Store.open(tmp_path / "strict.duckdb") as strict_store:
        rep = ingest_paths(strict_store, [pages_csv, tmp_path / "bad.csv"], strict=True)
        assert all(f.error and "--strict" in f.error for f in rep.files)
        assert strict_store.con.execute("SELECT count(*) FROM targeting_criteria").fetchone()[0] == 0


def test_criteria_without_pages_are_refused(tmp_store: Store, tables: tuple) -> None:
    _, crit_csv, _, _ = tables
    rep = ingest_paths(tmp_store, [crit_csv])
    assert rep.files[0].error and "pages" in rep.files[0].error


def _measured(pages: pd.DataFrame, crit: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    p = pages.assign(ds=None, weight=pages["euro_spend"].astype(float), party=pages["party"].replace("", None))
    p["group"] = group_of(p, "party")
    return p, crit.assign(ds=None)


def test_method_bounds_are_max_and_capped_sum_weighted_over_pages(tables: tuple) -> None:
    _, _, pages, crit = tables
    p, c = _measured(pages, crit)
    m = T.group_methods(p, c).set_index(["group", "method", "exclusion"])
    g = m.loc[("Greens", "detailed", False)]
    # page 1: max(0.3, 0.6) = 0.6, min(1, 0.9) = 0.9; page 2: max 0.8, min(1, 1.5) = 1; weights 1000, 3000
    assert g["low"] == pytest.approx((1000 * 0.6 + 3000 * 0.8) / 4000)
    assert g["high"] == pytest.approx((1000 * 0.9 + 3000 * 1.0) / 4000)
    assert (g["pages"], g["pages_using"]) == (2, 2)
    cl = m.loc[("Greens", "customer_list", False)]
    assert cl["low"] == cl["high"] == pytest.approx(1000 * 0.4 / 4000) and cl["pages_using"] == 1
    ca = m.loc[("Greens", "custom_audience", False)]
    assert (ca["low"], ca["high"]) == (pytest.approx(0.5 / 4), pytest.approx(0.9 / 4))
    assert m.loc[("Greens", "custom_audience", True)]["high"] == pytest.approx(0.1 / 4)  # exclusions apart
    # age: page 2 leaves out 35..65+ on all its spend; page 1 targets 18-65+ (no narrowing)
    assert m.loc[("Greens", "age", False)]["low"] == pytest.approx(0.75)
    assert m.loc[("Greens", "gender", False)]["low"] == pytest.approx(0.1 / 4)
    # location: below the country only; by level
    assert m.loc[("Greens", "location:postal_code", False)]["low"] == pytest.approx(0.25 / 4)
    assert m.loc[("Greens", "location:region", False)]["low"] == pytest.approx(0.5 * 3 / 4)
    assert m.loc[("Greens", "location:country", False)]["low"] == pytest.approx(0.25)


def test_a_group_without_customer_lists_gets_zero_with_its_pages_counted(tables: tuple) -> None:
    _, _, pages, crit = tables
    p, c = _measured(pages, crit)
    m = T.group_methods(p, c).set_index(["group", "method", "exclusion"])
    for grp, n in (("Blues", 1), ("partyfacts:30", 1)):
        row = m.loc[(grp, "customer_list", False)]
        assert (row["low"], row["high"], row["pages"], row["pages_using"]) == (0.0, 0.0, n, 0)
    pdi = T.personal_data_indicator(p, c, n_boot=200).set_index(["group", "method"])
    assert pdi.loc[("Blues", "personal_data"), ["low", "ci_low", "ci_high"]].tolist() == [0.0, 0.0, 0.0]
    g = pdi.loc[("Greens", "personal_data")]
    assert g["ci_low"] <= g["low"] <= g["high"] <= g["ci_high"]  # the interval is over pages
    assert g["pages_using"] == 1 and g["pages"] == 2


def test_distinctive_criteria_favour_what_one_group_uses_and_others_do_not() -> None:
    counts = pd.DataFrame({"solar": [90.0, 5.0], "cars": [10.0, 95.0], "news": [50.0, 50.0]}, index=["g", "b"])
    lo = T.log_odds_dirichlet(counts).set_index(["group", "feature"])
    assert lo.loc[("g", "solar"), "z"] > 0 > lo.loc[("b", "solar"), "z"]
    assert lo.loc[("b", "cars"), "z"] > abs(lo.loc[("b", "news"), "z"])
    assert lo.loc[("g", "solar"), "delta"] == pytest.approx(-lo.loc[("b", "solar"), "delta"], rel=0.2)


def test_distinctive_criteria_of_the_tables(tables: tuple) -> None:
    _, _, pages, crit = tables
    p, c = _measured(pages, crit)
    d = T.distinctive_criteria(p, c, types=("detailed",), min_pages=1)
    assert d[d["group"] == "Blues"]["value"].tolist() == ["Cars"]
    assert "Cars" not in d[d["group"] == "Greens"]["value"].tolist()


def test_targeted_vs_delivered_from_per_ad_dsa_fields() -> None:
    ads = pd.DataFrame({"message_id": ["a", "b", "c"], "page_id": ["p", "p", "q"], "page_name": ["P", "P", "Q"],
                        "spend": [300.0, 100.0, 50.0]})
    tg = pd.DataFrame({"message_id": ["a", "a", "b", "b", "b", "c"],
                       "dimension": ["age", "gender", "age", "gender", "location", "age"],
                       "value": ["18-24", "All", "18-65", "Women", "12345, Duitsland", "18-65"],
                       "included": [True] * 6})
    pages, crit = T.criteria_from_ads(ads, tg)
    assert pages.set_index("page_id")["spend"].to_dict() == {"p": 400.0, "q": 50.0}
    pc = crit[(crit["page_id"] == "p") & (crit["type"] == "age")].set_index("value")["total_spend_pct"]
    assert (pc["18"], pc["40"], pc["65+"]) == (1.0, 0.25, 0.25)
    assert crit[crit["type"] == "location"]["location_type"].tolist() == ["zips"]
    p = pages.assign(weight=pages["spend"], group=pages["page_id"])
    m = T.group_methods(p, crit).set_index(["group", "method", "exclusion"])
    assert m.loc[("p", "age", False), "low"] == pytest.approx(0.75)  # ad a (3/4 of the spend) narrows the ages
    assert m.loc[("p", "gender", False), "low"] == pytest.approx(0.25)
    tgt = T.targeted_shares(crit)
    dl = pd.DataFrame({"page_id": ["p"] * 3, "age": ["18-24", "25-34", "65+"], "gender": ["female", "male", "male"],
                       "impressions": [80.0, 20.0, 0.0]})
    sbs = T.side_by_side(tgt, T.delivered_shares(dl)).set_index(["dimension", "band"])
    assert set(sbs.index.get_level_values(0)) == {"age", "gender"} and "q" not in set(sbs["page_id"])
    assert sbs.loc[("age", "18-24"), ["targeted", "delivered"]].tolist() == [1.0, 0.8]
    assert sbs.loc[("age", "45-54"), ["targeted", "delivered"]].tolist() == [0.25, 0.0]
    assert sbs.loc[("gender", "female"), "delivered"] == pytest.approx(0.8)


def test_cli_json_has_the_shape_of_the_issue(tmp_path: Path, tables: tuple) -> None:
    pages_csv, crit_csv, _, _ = tables
    db = str(tmp_path / "s.duckdb")
    r = CliRunner().invoke(main, ["ingest", str(pages_csv), str(crit_csv), "--db", db])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["targeting", "--db", db, "--by", "party", "--json", "--no-clusters", "--boot", "50"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["window"]["ds"] == ["2024-06-04"] and "not delivery" in out["note"]
    g = out["groups"]["Greens"]
    assert (g["pages"], g["spend"]) == (2, 4000.0)
    assert {"low", "high", "pages"} <= set(g["methods"]["customer_list"])
    assert g["exclusions"]["custom_audience"]["high"] == pytest.approx(0.025)
    assert set(g["personal_data"]) == set(T.PERSONAL_DATA)
    assert all(np.isfinite(v["low"]) for v in g["methods"].values())
    sp = tmp_path / "sponsors.csv"
    sp.write_text("sponsor,sponsor_id,camp\n,3,left\nGreen Page A,,left\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["targeting", "--db", db, "--by", "camp", "--sponsors", str(sp), "--json",
                                  "--no-clusters", "--boot", "20"])
    assert r.exit_code == 0, r.output
    camps = json.loads(r.output)["groups"]
    assert camps["left"]["pages"] == 2 and camps["Greens"]["pages"] == 1  # the sponsor table overrides the party


def test_report_of_a_store_without_targeting_says_what_to_run(tmp_store: Store) -> None:
    from bubblelens.errors import MeasureError

    with pytest.raises(MeasureError, match="targeting"):
        targeting_report(tmp_store, source="table")


def test_the_report_section_exists_only_with_targeting_data(tmp_store: Store, tables: tuple) -> None:
    from bubblelens.report.targeting import targeting_section

    assert targeting_section(tmp_store) is None
    pages_csv, crit_csv, _, _ = tables
    ingest_paths(tmp_store, [pages_csv, crit_csv])
    sec = targeting_section(tmp_store, n_boot=50)
    assert sec is not None and [r["group"] for r in sec["rows"]][:2] == ["Greens", "Blues"]
    greens = sec["rows"][0]
    assert greens["customer_list"] == (pytest.approx(0.1), pytest.approx(0.1)) and greens["customer_list_pages"] == 1
    assert greens["distinctive"][0] in {"Solar energy", "Organic food", "Cycling"}


def test_a_page_ingested_for_two_windows_counts_once(tmp_store: Store, tmp_path: Path, tables: tuple) -> None:
    _, _, pages, crit = tables
    for ds, f in (("2024-05-28", "old"), ("2024-06-04", "new")):
        combined = crit.merge(pages.assign(ds=ds), on="page_id")
        combined.to_csv(tmp_path / f"{f}.csv", index=False)
        ingest_paths(tmp_store, [tmp_path / f"{f}.csv"])
    assert tmp_store.con.execute("SELECT count(*) FROM targeting_criteria").fetchone()[0] == 2 * len(crit)
    out = targeting_report(tmp_store, by="party", clusters=False, n_boot=20, compare=False)
    assert out["groups"]["Greens"]["pages"] == 2 and out["window"]["ds"] == ["2024-06-04"]
