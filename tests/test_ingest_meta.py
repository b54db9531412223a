"""The Meta Ad Library API reader: real responses, old and new field names, DSA fields, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bubblelens.errors import FormatError
from bubblelens.ingest import ingest_paths, meta_fast, read_batch


def _q(store, sql):
    return store.con.execute(sql).fetchall()


def _one(store, sql):
    return _q(store, sql)[0][0]


def _ads(shared_data: Path) -> list[dict]:
    lines = (shared_data / "meta_ad_library_api/ep2019_eu_political_ads_v3.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)
                              for r in rows) + "\n", encoding="utf-8")
    return path


# -- real responses ---------------------------------------------------------------------------------

def test_2019_eu_jsonl_old_field_names(tmp_store, shared_data):
    path = shared_data / "meta_ad_library_api/ep2019_eu_political_ads_v3.jsonl"
    ads = _ads(shared_data)
    rep = ingest_paths(tmp_store, [path]).files[0]
    assert (rep.format, rep.rows_read, rep.kept, rep.rejected) == ("meta", 25, 25, 0)
    # ids come from ad_snapshot_url (?id=...), and no token is stored
    ids = {r[0] for r in _q(tmp_store, "SELECT message_id FROM messages")}
    assert ids == {a["ad_snapshot_url"].split("?id=")[1].split("&")[0] for a in ads}
    assert _one(tmp_store, "SELECT count(*) FROM messages WHERE url LIKE '%access_token%'") == 0
    # every share went to deliveries, demographic and region alike
    assert _one(tmp_store, "SELECT count(*) FROM deliveries WHERE kind = 'demographic'") == sum(
        len(a["demographic_distribution"]) for a in ads)
    assert _one(tmp_store, "SELECT count(*) FROM deliveries WHERE kind = 'region'") == sum(
        len(a["region_distribution"]) for a in ads)
    assert _one(tmp_store, "SELECT max(n) FROM (SELECT count(*) n FROM deliveries GROUP BY message_id)") \
        >= 329
    first = ads[0]
    mid = first["ad_snapshot_url"].split("?id=")[1].split("&")[0]
    text, sponsor, lo, hi, cur, start = _q(tmp_store, f"""SELECT text, sponsor, impressions_lower,
        impressions_upper, currency, date_start FROM messages WHERE message_id = '{mid}'""")[0]
    assert text.startswith(first["ad_creative_body"].strip()[:40])
    assert sponsor == first["funding_entity"]
    assert (lo, hi) == (int(first["impressions"]["lower_bound"]), int(first["impressions"]["upper_bound"]))
    assert cur == "EUR" and start.isoformat() == "2019-05-13T15:30:13"


def test_2023_page_envelope_without_text(tmp_store, shared_data):
    path = shared_data / "meta_ad_library_api/ads_archive_page_2023_br_us_v14.json"
    rep = ingest_paths(tmp_store, [path]).files[0]
    assert (rep.rows_read, rep.kept, rep.rejected) == (20, 20, 0)
    # no body: valid (image or video) ads, flagged, with their snapshot URL
    assert _one(tmp_store, "SELECT count(*) FROM messages WHERE NOT has_text AND list_contains(flags, "
                           "'no_text') AND url IS NOT NULL") == 20
    assert _one(tmp_store, "SELECT count(*) FROM messages WHERE date_stop IS NOT NULL") == 10


def test_2021_single_ad_current_names(tmp_store, shared_data):
    path = shared_data / "meta_ad_library_api/ad_2021_us_single_lejo1.json"
    ad = json.loads(path.read_text())
    rep = ingest_paths(tmp_store, [path]).files[0]
    assert (rep.kept, rep.rejected) == (1, 0)
    row = _q(tmp_store, """SELECT message_id, impressions_lower, impressions_upper, spend_lower, spend_upper,
        audience_size_lower, audience_size_upper, platforms, lang, link_captions, text FROM messages""")[0]
    assert row[0] == ad["_id"]
    assert row[1:7] == (10000, 14999, 300.0, 399.0, 50001, 100000)
    assert row[7] == ["instagram"] and row[8] == "en" and row[9] == ["www.bloomberg.com"]
    assert "www.bloomberg.com" not in row[10]  # captions are domains: a field, not text
    assert _one(tmp_store, "SELECT count(*) FROM deliveries WHERE kind = 'region'") == len(
        ad["delivery_by_region"])
    total = _one(tmp_store, "SELECT sum(share) FROM deliveries WHERE kind = 'demographic'")
    assert total == pytest.approx(sum(float(x["percentage"]) for x in ad["demographic_distribution"]))


def test_raw_graph_bytes_with_escaped_slashes(tmp_store, shared_data):
    path = shared_data / "meta_ad_library_api/ads_archive_page_2019_us_v5_raw.json"
    rep = ingest_paths(tmp_store, [path]).files[0]
    assert (rep.kept, rep.rejected) == (1, 0)
    mid, url, flags = _q(tmp_store, "SELECT message_id, url, flags FROM messages")[0]
    assert mid == "2487345651520779"
    assert url == "https://www.facebook.com/ads/archive/render_ad/?id=2487345651520779"
    assert "id_from_snapshot_url" in flags


def test_an_error_body_is_one_sentence(tmp_path, shared_data):
    with pytest.raises(FormatError, match="search_terms and search_page_ids"):
        read_batch(shared_data / "meta_ad_library_api/ads_archive_error_2023.json")
    wrapped = tmp_path / "err.json"
    wrapped.write_text(json.dumps({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException",
                                             "code": 190}}))
    with pytest.raises(FormatError, match="Invalid OAuth access token"):
        read_batch(wrapped)


def test_a_folder_of_pages(tmp_store, tmp_path, shared_data):
    ads = _ads(shared_data)
    folder = tmp_path / "pages"
    folder.mkdir()
    for i in range(0, 25, 10):
        (folder / f"page{i:02d}.json").write_text(json.dumps({"data": ads[i:i + 10], "paging": {}}))
    rep = ingest_paths(tmp_store, [folder])
    assert [f.kept for f in rep.files] == [10, 10, 5]
    assert tmp_store.stats()["messages"] == 25


# -- EU DSA fields (no real sample exists: built from Meta's documentation) ------------------------

def test_dsa_fields(tmp_store, tmp_path):
    ad = {"id": "42", "ad_creative_bodies": ["Votez pour la retraite à 60 ans"], "page_id": "7",
          "ad_delivery_start_time": "2024-06-20", "eu_total_reach": "12345",
          "target_ages": ["25", "54"], "target_gender": "Women",
          "target_locations": [{"name": "Bretagne", "type": "region", "excluded": False},
                               {"name": "Paris", "type": "city", "excluded": True}],
          "beneficiary_payers": [{"payer": "Comité X", "beneficiary": "Candidate Y", "current": True}],
          "age_country_gender_reach_breakdown": [{"country": "FR", "age_gender_breakdowns": [
              {"age_range": "25-34", "male": 100, "female": 250, "unknown": 3},
              {"age_range": "35-44", "male": 80, "female": 120}]}]}
    rep = ingest_paths(tmp_store, [_write_jsonl(tmp_path / "dsa.jsonl", [ad])]).files[0]
    assert (rep.kept, rep.rejected) == (1, 0)
    assert _q(tmp_store, "SELECT sponsor, eu_total_reach FROM messages")[0] == ("Comité X", 12345)
    assert set(_q(tmp_store, "SELECT dimension, value, included FROM targeting")) == {
        ("age", "25-54", True), ("gender", "Women", True), ("location", "Bretagne", True),
        ("location", "Paris", False)}
    reach = _q(tmp_store, "SELECT country, age, gender, count FROM deliveries WHERE kind = 'reach' "
                          "ORDER BY age, gender")
    assert len(reach) == 5 and sum(r[3] for r in reach) == 100 + 250 + 3 + 80 + 120
    assert ("FR", "25-34", "female", 250) in reach
    assert "beneficiary_payers" in json.loads(_one(tmp_store, "SELECT extra FROM messages"))


# -- malformed variants -----------------------------------------------------------------------------

def test_truncated_page_keeps_the_complete_ads(tmp_store, tmp_path, shared_data):
    page = json.dumps({"data": _ads(shared_data)[:5], "paging": {}})
    cut = page.rfind('{"ad_creation_time"') + 300  # inside the fifth ad
    path = tmp_path / "truncated.json"
    path.write_text(page[:cut])
    rep = ingest_paths(tmp_store, [path]).files[0]
    assert (rep.rows_read, rep.kept, rep.rejected) == (5, 4, 1)
    assert "truncated" in _one(tmp_store, "SELECT reason FROM rejects")


def test_truncated_jsonl_rejects_the_last_line(tmp_store, tmp_path, shared_data):
    src = (shared_data / "meta_ad_library_api/ep2019_eu_political_ads_v3.jsonl").read_text()
    path = tmp_path / "cut.jsonl"
    path.write_text(src[: len(src) - 500])
    rep = ingest_paths(tmp_store, [path]).files[0]
    assert (rep.rows_read, rep.kept, rep.rejected) == (25, 24, 1)
    assert _q(tmp_store, "SELECT line, field FROM rejects") == [(25, "(json)")]


def test_only_what_defines_an_ad_can_reject_it(tmp_store, tmp_path):
    """Wrong types in the fields that define an ad (its text, its id, something to read at all) reject the
    line; an unreadable optional field (a bound, a share, a date, a count) is left empty and counted in the
    file's warnings: the ad, its text and what else it says are kept."""
    good = {"id": "1", "ad_creative_bodies": ["Un texte"], "page_id": "9",
            "impressions": {"lower_bound": "0", "upper_bound": "999"},
            "demographic_distribution": [{"percentage": "0.6", "age": "18-24", "gender": "female"},
                                         {"percentage": "0.4", "age": "25-34", "gender": "male"}]}
    rows = [
        good,                                                                   # 1 kept
        [1, 2, 3],                                                              # 2 not an object
        {**good, "id": "3", "impressions": {"lower_bound": "beaucoup"}},        # 3 kept, no impressions
        {**good, "id": "4", "demographic_distribution": [{"percentage": "1.7", "age": "x", "gender": "y"}]},
        {**good, "id": "5", "ad_creative_bodies": 5},                           # 5 wrong type: the text
        {**good, "id": "6", "ad_delivery_start_time": "hier"},                  # 6 kept, no start date
        {"page_id": "9", "currency": "EUR"},                                    # 7 no id, text, URL
        {**good, "id": "8", "eu_total_reach": -4},                              # 8 kept, no reach
        "{not json",                                                            # 9 invalid JSON
        {**good, "id": "10", "ad_creative_bodies": [], "ad_snapshot_url": "https://x/?id=10"},  # 10 kept
        {"ad_creative_bodies": ["Sans identifiant"]},                           # 11 kept, content id
    ]
    rep = ingest_paths(tmp_store, [_write_jsonl(tmp_path / "types.jsonl", rows)]).files[0]
    assert (rep.rows_read, rep.kept, rep.rejected) == (11, 7, 4)
    fields = dict(_q(tmp_store, "SELECT line, field FROM rejects"))
    assert fields == {2: "(row)", 5: "ad_creative_bodies", 7: "id", 9: "(json)"}
    ids = sorted(r[0] for r in _q(tmp_store, "SELECT message_id FROM messages"))
    assert ids[:6] == ["1", "10", "3", "4", "6", "8"] and ids[6].startswith("sha1:")
    kept = dict(_q(tmp_store, "SELECT message_id, text FROM messages"))
    assert kept["3"] == kept["8"] == "Un texte"
    assert _one(tmp_store, "SELECT impressions_lower FROM messages WHERE message_id = '3'") is None
    assert _one(tmp_store, "SELECT date_start FROM messages WHERE message_id = '6'") is None
    # the unreadable shares of ad 4 left no delivery behind; every field counted once, with its first line
    assert _one(tmp_store, "SELECT count(*) FROM deliveries WHERE message_id = '4'") == 0
    warned = " ".join(rep.warnings)
    for field, line in (("impressions", 3), ("demographic_distribution", 4), ("ad_delivery_start_time", 6),
                        ("eu_total_reach", 8)):
        assert f"{field}: 1 value(s) unreadable, left empty (first: line {line}," in warned, warned


def test_empty_and_binary_files_are_one_sentence(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("  \n")
    with pytest.raises(FormatError, match="empty"):
        read_batch(empty)
    binary = tmp_path / "image.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    with pytest.raises(FormatError, match="binary"):
        read_batch(binary)
    with pytest.raises(FormatError, match="not valid JSON"):
        read_batch(tmp_path / "x.csv", format="meta") if (tmp_path / "x.csv").write_text(
            "a,b\n1,2\n") else None


def test_a_huge_field_is_kept_whole(tmp_store, tmp_path):
    body = ("Pouvoir d'achat. " * 320_000)[:5_000_000]
    path = _write_jsonl(tmp_path / "huge.jsonl", [{"id": "big", "ad_creative_bodies": [body]},
                                                  {"id": "small", "ad_creative_bodies": ["court"]}])
    rep = ingest_paths(tmp_store, [path]).files[0]
    assert (rep.kept, rep.rejected) == (2, 0)
    assert _one(tmp_store, "SELECT length(text) FROM messages WHERE message_id = 'big'") == len(body.strip())


# -- the column-wise fast path gives exactly what the row-wise reader gives --------------------------

def test_fast_path_matches_row_path(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from bench_ingest import generate

    path = tmp_path / "ads.jsonl"
    generate(path, 300, seed=3)
    lines = path.read_text(encoding="utf-8").splitlines()
    bad_share = json.loads(lines[10])
    bad_share["delivery_by_region"][0]["percentage"] = "1.5"
    no_id = json.loads(lines[20])
    del no_id["id"]
    odd_bound = json.loads(lines[30])
    odd_bound["impressions"]["lower_bound"] = "1,000"   # grouped: the row-wise parser takes it
    lines[10], lines[20], lines[30] = json.dumps(bad_share), json.dumps(no_id), json.dumps(odd_bound)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    monkeypatch.setattr(meta_fast, "MIN_LINES", 10**9)
    _, slow = read_batch(path)
    monkeypatch.setattr(meta_fast, "MIN_LINES", 10)
    _, fast = read_batch(path)
    assert fast.arrow, "the fast path was not taken"
    assert (fast.rows_read, fast.kept, len(fast.rejects)) == (slow.rows_read, slow.kept, len(slow.rejects)) \
        == (300, 300, 0)  # the share outside [0, 1] is left empty, not the ad (a warning each way)
    assert fast.warnings == slow.warnings and any("delivery_by_region: 1 value(s)" in w for w in fast.warnings)
    key = ["message_id"]
    a = slow.to_arrow("messages").drop_columns(["_row"]).sort_by([(k, "ascending") for k in key])
    b = fast.to_arrow("messages").drop_columns(["_row"]).sort_by([(k, "ascending") for k in key])
    assert a.to_pylist() == b.to_pylist()

    order = [(c, "ascending") for c in ("message_id", "kind", "age", "gender", "region")]
    a = slow.to_arrow("deliveries").drop_columns(["_row"]).sort_by(order)
    b = fast.to_arrow("deliveries").drop_columns(["_row"]).sort_by(order)
    assert a.to_pylist() == b.to_pylist()


def test_fast_path_matches_row_path_on_unnormalized_text(tmp_path, monkeypatch):
    """Decomposed accents and no-break spaces are normalized, a title repeating the body is dropped,
    and an empty or missing language list gives no language: column-wise as row-wise."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from bench_ingest import generate

    path = tmp_path / "ads.jsonl"
    generate(path, 100, seed=5)
    ads = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    ads[3]["ad_creative_bodies"] = ["Re\u0301forme\u00a0des retraites ", "  "]
    ads[4]["ad_creative_link_titles"] = list(ads[4]["ad_creative_bodies"])
    ads[5]["languages"] = []
    del ads[6]["languages"]
    path.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in ads), encoding="utf-8")

    monkeypatch.setattr(meta_fast, "MIN_LINES", 10**9)
    _, slow = read_batch(path)
    monkeypatch.setattr(meta_fast, "MIN_LINES", 10)
    _, fast = read_batch(path)
    assert fast.arrow and not fast.rejects, "the fast path was not taken"
    a = slow.to_arrow("messages").drop_columns(["_row"]).sort_by("message_id").to_pylist()
    b = fast.to_arrow("messages").drop_columns(["_row"]).sort_by("message_id").to_pylist()
    assert a == b
    by_id = {m["message_id"]: m for m in b}
    assert by_id[ads[3]["id"]]["text"].startswith("R\u00e9forme des retraites")
    assert by_id[ads[4]["id"]]["text"] == ads[4]["ad_creative_bodies"][0]
    assert by_id[ads[5]["id"]]["lang"] is None and by_id[ads[6]["id"]]["lang"] is None


def test_a_large_cp1252_file_is_read_row_wise_with_a_warning(tmp_path, monkeypatch):
    """JSON Lines in a legacy code page are decoded as such (the column-wise path reads UTF-8 only)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from bench_ingest import generate

    path = tmp_path / "ads.jsonl"
    generate(path, 40, seed=6)
    text = path.read_text(encoding="utf-8").replace("sécurité", "sûreté")
    path.write_bytes(text.encode("cp1252"))
    monkeypatch.setattr(meta_fast, "MIN_LINES", 10)
    with pytest.warns(UserWarning, match="not UTF-8"):
        _, batch = read_batch(path)
    assert not batch.arrow
    assert (batch.rows_read, batch.kept, len(batch.rejects)) == (40, 40, 0)
    texts = batch.to_arrow("messages")["text"].to_pylist()
    assert sum("sûreté" in t for t in texts) == sum("sûreté" in line for line in text.splitlines()) > 0


def test_an_invalid_line_sends_the_whole_file_row_wise(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from bench_ingest import generate

    path = tmp_path / "ads.jsonl"
    generate(path, 50, seed=4)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[7] = "{broken"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(meta_fast, "MIN_LINES", 10)
    _, batch = read_batch(path)
    assert not batch.arrow
    assert (batch.rows_read, batch.kept, [r.line for r in batch.rejects]) == (50, 49, [8])
