"""The EP 2024 targeting samples (Meta's Audience tab, DE and NL party pages) ingested and measured as a
user would: every criterion row kept, the methods and the personal-data indicator equal to a hand
computation written here independently (pandas groupby over the raw file), zeros counted with their
pages, distinctive criteria that the party's pages use more than the others do, and targeted vs
delivered for pages that are also in the German Ad Library pull."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bubblelens.ingest import ingest_paths
from bubblelens.measure.targeting_run import compare_targeted_delivered, targeting_report
from bubblelens.store import Store

FILES = {"DE": "ep2024_data30_DE_party_pages.csv", "NL": "ep2024_data30_NL_party_pages.csv"}


@pytest.fixture(scope="module", params=sorted(FILES))
def sample(request: pytest.FixtureRequest, shared_data: Path,
           tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pd.DataFrame, Store, dict]:
    country = request.param
    path = shared_data / "meta_targeting_ep2024" / FILES[country]
    raw = pd.read_csv(path, dtype={"page_id": str})
    store = Store.open(tmp_path_factory.mktemp(country) / "store.duckdb")
    rep = ingest_paths(store, [path])
    assert rep.files[0].format == "targeting" and rep.rejected == 0
    report = targeting_report(store, by="party", clusters=False, n_boot=200, compare=False)
    yield country, raw, store, report
    store.close()


def test_every_criterion_row_is_kept_with_its_window(sample: tuple) -> None:
    _, raw, store, report = sample
    n, pages = store.con.execute(
        "SELECT count(*), count(DISTINCT page_id) FROM targeting_criteria").fetchone()
    assert n == len(raw) and pages == raw["page_id"].nunique()
    per_type = dict(store.con.execute("SELECT type, count(*) FROM targeting_criteria GROUP BY 1").fetchall())
    assert per_type == raw["type"].value_counts().to_dict()
    assert report["window"]["ds"] == sorted(raw["ds"].unique().tolist())


def _hand(raw: pd.DataFrame) -> pd.DataFrame:
    """Per party: Σ_pages spend × page share / Σ_pages spend, written without the package's code."""
    pages = raw.drop_duplicates("page_id")[["page_id", "party", "euro_spend"]].dropna(subset=["party"])
    ca = raw[raw["type"] == "custom_audience"]
    per_page = pd.DataFrame({
        "customer_list": ca[ca["custom_audience_type"] == "HAS_DFCA_INCLUSION"].groupby("page_id")["total_spend_pct"].sum(),
        "custom_audience_low": ca[ca["custom_audience_type"].isin(["HAS_CA_INCLUSION", "HAS_DFCA_INCLUSION"])]
        .groupby("page_id")["total_spend_pct"].max(),
        "custom_audience_high": ca[ca["custom_audience_type"].isin(["HAS_CA_INCLUSION", "HAS_DFCA_INCLUSION"])]
        .groupby("page_id")["total_spend_pct"].sum().clip(upper=1),
        "lookalike_audience": raw[(raw["type"] == "lookalike_audience") & (raw["is_exclusion"] == False)]  # noqa: E712
        .groupby("page_id")["total_spend_pct"].sum(),
        "detailed_low": raw[(raw["type"] == "detailed") & (raw["is_exclusion"] == False)]  # noqa: E712
        .groupby("page_id")["total_spend_pct"].max(),
        "detailed_high": raw[(raw["type"] == "detailed") & (raw["is_exclusion"] == False)]  # noqa: E712
        .groupby("page_id")["total_spend_pct"].sum().clip(upper=1),
        "gender_low": raw[raw["value"].isin(["Women", "Men"]) & (raw["type"] == "gender")]
        .groupby("page_id")["total_spend_pct"].max(),
    })
    m = pages.merge(per_page, left_on="page_id", right_index=True, how="left").fillna(0.0)
    cols = list(per_page.columns)
    weighted = m[cols].mul(m["euro_spend"], axis=0).groupby(m["party"]).sum()
    out = weighted.div(m.groupby("party")["euro_spend"].sum(), axis=0)
    out["pages"] = m.groupby("party").size()
    out["customer_list_pages"] = (m["customer_list"] > 0).groupby(m["party"]).sum()
    return out


def test_methods_and_personal_data_match_a_hand_computation(sample: tuple) -> None:
    country, raw, _, report = sample
    hand = _hand(raw)
    big = hand.sort_values("pages", ascending=False).index[:4]  # at least two parties, the largest
    assert len(big) >= 2
    for party in big:
        g = report["groups"][party]
        h = hand.loc[party]
        assert g["pages"] == h["pages"]
        m = g["methods"]
        assert m["customer_list"]["low"] == pytest.approx(h["customer_list"], abs=1e-6)
        assert m["custom_audience"]["low"] == pytest.approx(h["custom_audience_low"], abs=1e-6)
        assert m["custom_audience"]["high"] == pytest.approx(h["custom_audience_high"], abs=1e-6)
        assert m["lookalike_audience"]["low"] == pytest.approx(h["lookalike_audience"], abs=1e-6)
        assert m["detailed"]["low"] == pytest.approx(h["detailed_low"], abs=1e-6)
        assert m["detailed"]["high"] == pytest.approx(h["detailed_high"], abs=1e-6)
        assert m["gender"]["low"] == pytest.approx(h["gender_low"], abs=1e-6)
        pdi = g["personal_data"]
        assert pdi["customer_list"]["low"] == pytest.approx(h["customer_list"], abs=1e-6)
        assert pdi["customer_list"]["pages"] == h["customer_list_pages"]
        for k in ("customer_list", "custom_audience", "lookalike_audience", "personal_data"):
            lo, hi = pdi[k]["ci"]
            assert lo <= pdi[k]["low"] + 1e-9 and pdi[k]["high"] <= hi + 1e-9, (country, party, k, pdi[k])


def test_a_party_without_customer_lists_gets_zero_with_its_pages_counted(sample: tuple) -> None:
    _, raw, _, report = sample
    ca = raw[(raw["custom_audience_type"] == "HAS_DFCA_INCLUSION") & (raw["total_spend_pct"] > 0)]
    without = set(raw["party"].dropna()) - set(ca["party"].dropna())
    assert without
    for party in without:
        g = report["groups"][party]
        cl = g["personal_data"]["customer_list"]
        assert (cl["low"], cl["high"], cl["pages"]) == (0.0, 0.0, 0)
        assert g["pages"] == raw.loc[raw["party"] == party, "page_id"].nunique() > 0


def test_distinctive_criteria_are_used_more_by_their_party(sample: tuple) -> None:
    _, raw, _, report = sample
    det = raw[(raw["type"] == "detailed") & (raw["is_exclusion"] == False)].copy()  # noqa: E712
    det["spend"] = det["euro_spend"] * det["total_spend_pct"]
    shown = 0
    for party, g in report["groups"].items():
        for d in g["distinctive"] if party in set(raw["party"].dropna()) else []:
            own = det[det["party"] == party]
            rest = det[det["party"] != party]
            share_own = own.loc[own["value"] == d["value"], "spend"].sum() / own["spend"].sum()
            share_rest = rest.loc[rest["value"] == d["value"], "spend"].sum() / max(rest["spend"].sum(), 1e-9)
            assert share_own > share_rest, (party, d)
            assert d["z"] > 0 and d["spend"] == pytest.approx(own.loc[own["value"] == d["value"], "spend"].sum(),
                                                             abs=0.01)
            shown += 1
    assert shown >= 5


def test_targeted_vs_delivered_for_pages_also_in_the_pull(shared_data: Path, tmp_path: Path) -> None:
    with Store.open(tmp_path / "both.duckdb") as store:
        ingest_paths(store, [shared_data / "meta_targeting_ep2024" / FILES["DE"],
                             shared_data / "meta_api_de_2024" / "ads_archive_de_2024_part00.jsonl"])
        tvd = compare_targeted_delivered(store.con)
        table_pages = {r[0] for r in store.con.execute("SELECT page_id FROM targeting_pages").fetchall()}
    assert len(tvd) and set(tvd["source"]) == {"table", "ads"}
    assert set(tvd.loc[tvd["source"] == "table", "page_id"]) <= table_pages
    assert tvd["targeted"].between(0, 1).all() and tvd["delivered"].between(0, 1).all()
    sums = tvd[tvd["dimension"] == "age"].groupby("page_id")["delivered"].sum()
    assert (sums <= 1 + 1e-9).all() and np.isclose(sums, 1, atol=0.05).mean() > 0.8  # almost all reach is 18+


def test_the_report_has_a_targeting_section_only_with_targeting_data(shared_data: Path, tmp_path: Path) -> None:
    from bubblelens.classify import classify_store
    from bubblelens.report import build_report
    from bubblelens.segment import segment_store

    src = shared_data / "meta_api_de_2024" / "ads_archive_de_2024_part00.jsonl"
    part = tmp_path / "de_300.jsonl"
    with src.open(encoding="utf-8") as f:
        part.write_text("".join(next(f) for _ in range(300)), encoding="utf-8")
    with Store.open(tmp_path / "r.duckdb") as store:
        ingest_paths(store, [part])
        classify_store(store)
        segment_store(store, scheme="cells", by="region")
        without = build_report(store, tmp_path / "without.html", export=False).path.read_text(encoding="utf-8")
        ingest_paths(store, [shared_data / "meta_targeting_ep2024" / FILES["DE"]])
        html = {lang: build_report(store, tmp_path / f"with_{lang}.html", lang=lang, export=False).path.read_text(
            encoding="utf-8") for lang in ("en", "fr")}
    assert 'id="targeting"' not in without
    assert 'id="targeting"' in html["en"] and "not who saw them" in html["en"]
    assert 'id="targeting"' in html["fr"] and "et non qui les a vues" in html["fr"]
    section = html["en"].split('id="targeting"', 1)[1].split("</section>", 1)[0]
    assert "<td>AfD</td>" in section and "<td>B90/Gr</td>" in section
