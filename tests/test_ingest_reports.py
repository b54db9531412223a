"""Meta Ad Library report CSVs and Google's political-ads bundle."""

from __future__ import annotations

import csv
import io
import json

import pytest

from bubblelens.errors import FormatError
from bubblelens.ingest import ingest_paths, read_batch


def _q(store, sql):
    return store.con.execute(sql).fetchall()


def _rows(path):
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


# -- Meta Ad Library report (web export) ------------------------------------------------------------

def test_every_real_report_file_is_taken_whole(tmp_store, shared_data):
    files = sorted((shared_data / "meta_ad_library_report").glob("*.csv"))
    assert len(files) == 4
    rep = ingest_paths(tmp_store, files)
    for f in rep.files:
        assert (f.format, f.error, f.rejected) == ("meta-csv", None, 0)
        assert f.kept == f.rows_read == len(_rows(__import__("pathlib").Path(f.path)))
    n = sum(f.kept for f in rep.files)
    assert n == 510 + 642 + 1036 + 4
    assert _q(tmp_store, "SELECT count(*) FROM sponsor_spend")[0][0] == n  # repeated page ids all kept


def test_report_values_bom_small_amounts_and_currency(tmp_store, shared_data):
    path = shared_data / "meta_ad_library_report/FacebookAdLibraryReport_2025-07-12_BE_last_30_days_advertisers.csv"
    rows = _rows(path)
    ingest_paths(tmp_store, [path])
    small = sum(r["Amount spent (EUR)"] == "≤100" for r in rows)
    assert _q(tmp_store, "SELECT count(*) FROM sponsor_spend WHERE spend_lower = 0 AND spend_upper = 100")[0][0] \
        == small == 811
    vb = _q(tmp_store, """SELECT spend_lower, spend_upper, currency, n_ads, scope FROM sponsor_spend
                          WHERE page_id = '56605856504'""")
    assert vb == [(84970.0, 84970.0, "EUR", 24, "advertisers")]


def test_old_gb_report_has_no_page_ids_and_no_currency(tmp_store, shared_data):
    path = shared_data / "meta_ad_library_report/FacebookAdLibraryReportGB2019-05-11ThisWeekSpending.csv"
    ingest_paths(tmp_store, [path])
    assert _q(tmp_store, "SELECT count(*), count(page_id), count(currency) FROM sponsor_spend")[0] == (510, 0, 0)


def test_region_report_records_its_region(tmp_store, shared_data):
    path = shared_data / "meta_ad_library_report/FacebookAdLibraryReport_2025-07-12_BE_last_30_days_Wallonia.csv"
    ingest_paths(tmp_store, [path])
    assert _q(tmp_store, "SELECT DISTINCT scope, location FROM sponsor_spend") == [("Wallonia", "Wallonia")]


def test_bad_report_rows_are_rejected(tmp_store, tmp_path):
    path = tmp_path / "FacebookAdLibraryReport_2024-06-30_FR_yesterday_advertisers.csv"
    path.write_text("\ufeffPage ID,Page name,Disclaimer,Amount spent (EUR),Number of ads in Library\n"
                    "1,RN,Rassemblement national,5000,12\n"
                    "2,LFI,La France insoumise,beaucoup,3\n"
                    "3,PS,Parti socialiste,≤100,-1\n"
                    "4,EELV,Les Écologistes\n"
                    "5,LR,Les Républicains,≤100,2\n", encoding="utf-8")
    f = ingest_paths(tmp_store, [path]).files[0]
    assert (f.rows_read, f.kept, f.rejected) == (5, 2, 3)
    assert sorted(_q(tmp_store, "SELECT line, field FROM rejects")) == [
        (3, "Amount spent (EUR)"), (4, "Number of ads in Library"), (5, "(row)")]


# -- Google political-ads transparency bundle ------------------------------------------------------

def test_fixture_creative_stats(tmp_store, fixtures_dir):
    path = fixtures_dir / "google_creative_stats.csv"
    rows = _rows(path)
    f = ingest_paths(tmp_store, [path]).files[0]
    assert (f.format, f.kept, f.rejected) == ("google", len(rows), 0)
    # no text: every message keeps its ad URL and is flagged
    assert _q(tmp_store, """SELECT count(*) FROM messages WHERE NOT has_text AND url IS NOT NULL
                            AND list_contains(flags, 'no_text')""")[0][0] == len(rows)
    top = sum(r["Impressions"].startswith(">") for r in rows)
    assert _q(tmp_store, "SELECT count(*) FROM messages WHERE impressions_upper IS NULL")[0][0] == top
    r0 = rows[0]
    lo, hi, cur = _q(tmp_store, f"""SELECT spend_lower, spend_upper, currency FROM messages
                                   WHERE message_id = '{r0["Ad_ID"]}'""")[0]
    assert (lo, hi, cur) == (float(r0["Spend_Range_Min_EUR"]), float(r0["Spend_Range_Max_EUR"]), "EUR")


def test_creative_stats_buckets_targeting_and_rejects(tmp_store, tmp_path):
    head = ("Ad_ID,Ad_URL,Ad_Type,Regions,Advertiser_ID,Advertiser_Name,Date_Range_Start,Date_Range_End,"
            "Num_of_Days,Impressions,Age_Targeting,Gender_Targeting,Geo_Targeting_Included,"
            "Geo_Targeting_Excluded,Spend_Range_Min_EUR,Spend_Range_Max_EUR,Spend_Range_Min_USD,"
            "Spend_Range_Max_USD\n")
    body = [
        'CR1,https://g/1,Text,FR,AR1,Parti A,2024-06-10,2024-06-20,11,≤ 10k,"18-24, 25-34",Female,'
        '"Paris,Ile-de-France,France",,0,100,0,110',
        "CR2,https://g/2,Video,FR,AR1,Parti A,2024-06-10,2024-06-20,11,> 10M,Not targeted,Not targeted,France,"
        "Corse,50000,,55000,",
        "CR3,https://g/3,Image,FR,AR2,Parti B,2024-06-10,2024-06-20,11,quelques-uns,,,,,0,100,0,110",
        "CR4,https://g/4,Image,FR,AR2,Parti B,le 10 juin,2024-06-20,11,10k-100k,,,,,0,100,0,110",
        "CR5,https://g/5,Image,FR,AR2,Parti B,2024-06-10,2024-06-20,11,10k-100k,,,,,500,100,0,110",
    ]
    path = tmp_path / "google-political-ads-creative-stats.csv"
    path.write_text(head + "\n".join(body) + "\n", encoding="utf-8")
    f = ingest_paths(tmp_store, [path]).files[0]
    assert (f.rows_read, f.kept, f.rejected) == (5, 2, 3)
    assert sorted(_q(tmp_store, "SELECT line, field FROM rejects")) == [
        (4, "Impressions"), (5, "Date_Range_Start"), (6, "Spend_Range_Min_EUR")]
    assert _q(tmp_store, """SELECT message_id, impressions_lower, impressions_upper, spend_lower, spend_upper,
                            channel FROM messages ORDER BY 1""") == [
        ("CR1", 0, 10000, 0.0, 100.0, "text_ad"), ("CR2", 10_000_000, None, 50000.0, None, "video_ad")]
    assert set(_q(tmp_store, "SELECT message_id, dimension, value, included FROM targeting")) == {
        ("CR1", "age", "18-24", True), ("CR1", "age", "25-34", True), ("CR1", "gender", "Female", True),
        ("CR1", "geo", "Paris,Ile-de-France,France", True), ("CR2", "geo", "France", True),
        ("CR2", "geo", "Corse", False)}
    extra = json.loads(_q(tmp_store, "SELECT extra FROM messages WHERE message_id = 'CR1'")[0][0])
    assert extra["spend_ranges"] == {"EUR": [0.0, 100.0], "USD": [0.0, 110.0]}


def test_real_bundle_files(tmp_store, shared_data):
    folder = shared_data / "google_political_ads_bundle"
    rep = {p.name: p for p in folder.glob("*.csv")}
    out = {f.path.rsplit("/", 1)[1]: f for f in ingest_paths(tmp_store, list(rep.values())).files}
    stats = out["google-political-ads-advertiser-stats.csv"]
    assert (stats.kind, stats.kept, stats.rejected) == ("sponsor_spend", 1193, 0)
    assert (out["google-political-ads-advertiser-stats.2018-09.csv"].kept,
            out["google-political-ads-advertiser-stats.2018-09.csv"].rejected) == (372, 0)
    for name in ("google-political-ads-geo-spend.csv", "google-political-ads-advertiser-weekly-spend.head500.csv"):
        assert "without ads" in out[name].error
    spend = _q(tmp_store, """SELECT spend_lower, currency, n_ads FROM sponsor_spend
                             WHERE page_id = 'AR100207290732249088' AND report = 'google-political-ads-advertiser-stats'""")
    assert spend == [(100.0, "EUR", 1)]


def test_google_format_on_another_csv_is_one_sentence(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(FormatError, match="without ads"):
        read_batch(path, format="google")
