"""Hostile and odd tables: dates, mappings, text-less and long-format tables, private rejects, limits."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from bubblelens.errors import FormatError
from bubblelens.ingest import ingest_paths, read_batch
from bubblelens.ingest.jsonio import MAX_DEPTH, MAX_STRING
from bubblelens.ingest.table import date_order
from bubblelens.store import Store


def _q(store, sql):
    return store.con.execute(sql).fetchall()


def test_french_day_first_dates_come_out_right(tmp_store, tmp_path):
    path = tmp_path / "tracts.csv"
    path.write_text("id;texte;date\n1;Votez !;05/07/2022\n2;Demain;25/07/2022\n3;Encore;01/08/2022\n",
                    encoding="utf-8")
    f = ingest_paths(tmp_store, [path], map_pairs=["text=texte"]).files[0]
    assert (f.kept, f.rejected) == (3, 0)
    assert dict(_q(tmp_store, "SELECT message_id, date_start FROM messages")) == {
        "1": datetime(2022, 7, 5), "2": datetime(2022, 7, 25), "3": datetime(2022, 8, 1)}


def test_ambiguous_dates_warn_and_can_be_forced(tmp_store, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,text,date\n1,a,05/07/2022\n2,b,06/08/2022\n")
    f = ingest_paths(tmp_store, [path]).files[0]
    assert any("ambiguous" in w for w in f.warnings)
    ingest_paths(tmp_store, [path], dayfirst=True)
    assert _q(tmp_store, "SELECT date_start FROM messages WHERE message_id = '1'") == [(datetime(2022, 7, 5),)]
    ingest_paths(tmp_store, [path], dayfirst=False)
    assert _q(tmp_store, "SELECT date_start FROM messages WHERE message_id = '1'") == [(datetime(2022, 5, 7),)]
    assert date_order(["13/01/2020", "01/02/2020"]) == (True, None)
    assert date_order(["01/13/2020"]) == (False, None)
    assert date_order(["13/01/2020", "01/13/2020"])[0] is None


def test_map_adds_to_the_guess_and_maps_any_delivery_column(tmp_store, tmp_path):
    path = tmp_path / "poll.csv"
    path.write_text("id,question,sponsor,date,BY,BE\nq1,Wer zahlt?,Partei A,2024-05-01,0.6,0.4\n")
    f = ingest_paths(tmp_store, [path], map_pairs=["text=question", "region.Bayern=BY",
                                                   "region.Berlin=BE"]).files[0]
    assert (f.kept, f.rejected) == (1, 0)
    assert _q(tmp_store, "SELECT message_id, text, sponsor FROM messages") == [("q1", "Wer zahlt?", "Partei A")]
    assert sorted(_q(tmp_store, "SELECT region, share FROM deliveries")) == [("Bayern", 0.6), ("Berlin", 0.4)]


def test_a_table_without_text_or_url_is_refused_with_its_columns(tmp_store, tmp_path):
    path = tmp_path / "meta.csv"
    path.write_text("id,ad_body_text,funding\n1,Hallo,X\n")
    with pytest.raises(FormatError, match=r"no column maps to text or url.*ad_body_text"):
        read_batch(path)
    f = ingest_paths(tmp_store, [path], textless=True).files[0]
    assert f.error is None and f.kept == 1


def test_a_long_format_table_read_as_audiences_is_refused(tmp_store, tmp_path):
    path = tmp_path / "targeting.csv"
    path.write_text("id,interests\np1,Politics\np1,Football\np2,Cooking\n")
    f = ingest_paths(tmp_store, [path], kind="audiences", audience_type="page").files[0]
    assert f.error is not None and "long-format" in f.error and "--format targeting" in f.error
    assert _q(tmp_store, "SELECT count(*) FROM audiences") == [(0,)]


def test_rejects_keep_person_ids_hashed_and_no_token(tmp_store, tmp_path):
    panel = tmp_path / "panel.csv"
    panel.write_text("person_id,interests\nalice@example.org,Politics\n,orphan\n\"bob@example.org\",x,extra\n")
    ingest_paths(tmp_store, [panel], kind="audiences")
    raws = " ".join(r[0] for r in _q(tmp_store, "SELECT raw FROM rejects"))
    assert _q(tmp_store, "SELECT count(*) FROM rejects")[0][0] == 2
    assert "@example.org" not in raws
    ads = tmp_path / "ads.jsonl"
    ads.write_text(json.dumps({"id": "1", "ad_snapshot_url": "https://x/?id=1&access_token=SECRET123",
                               "impressions": {"lower_bound": "9", "upper_bound": "1"}}) + "\n"
                   + json.dumps({"id": "2", "ad_creative_bodies": ["ok"]}) + "\n")
    ingest_paths(tmp_store, [ads])
    assert "SECRET123" not in " ".join(r[0] for r in _q(tmp_store, "SELECT raw FROM rejects"))


def test_one_line_never_takes_the_file(tmp_store, tmp_path):
    good = [json.dumps({"id": str(i), "ad_creative_bodies": [f"Ad {i} ä"]}, ensure_ascii=False) for i in range(3)]
    lines = [good[0].encode(), b'{"id": "x", "ad_creative_bodies": ["' + b"[" * 0 + b'a"], "k": ' + b"[" * (MAX_DEPTH + 5)
             + b"]" * (MAX_DEPTH + 5) + b"}", good[1].encode(), b'{"id": "y", "eu_total_reach": 1e309}',
             b'{"id": "z", "ad_creative_bodies": ["\x00"]}', b'{"id": "w", "ad_creative_bodies": ["\xff"]}',
             json.dumps({"id": "v", "ad_creative_bodies": ["y" * (MAX_STRING + 1)]}).encode(), good[2].encode()]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    f = ingest_paths(tmp_store, [path]).files[0]
    assert f.error is None and (f.kept, f.rejected) == (3, 5)
    assert sorted(r[0] for r in _q(tmp_store, "SELECT line FROM rejects")) == [2, 4, 5, 6, 7]
    assert _q(tmp_store, "SELECT text FROM messages WHERE message_id = '0'") == [("Ad 0 ä",)]


def test_the_salt_can_live_outside_the_store(tmp_path, monkeypatch):
    from bubblelens.errors import StoreError
    from bubblelens.store import Store, hash_person_id

    panel = tmp_path / "panel.csv"
    panel.write_text("person_id,interests\nalice@example.org,Politics\n")
    salt_file = tmp_path / "secret" / "salt.txt"
    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_paths(store, [panel], kind="audiences", salt_file=salt_file)
        salt = salt_file.read_text().strip()
        assert salt not in " ".join(str(v) for (v,) in _q(store, "SELECT value FROM meta"))
        assert _q(store, "SELECT audience_id FROM audiences") == [(hash_person_id("alice@example.org", salt),)]
        with pytest.raises(StoreError, match="kept outside"):
            ingest_paths(store, [panel], kind="audiences")
        monkeypatch.setenv("BUBBLELENS_SALT_FILE", str(salt_file))
        rep = ingest_paths(store, [panel], kind="audiences").files[0]
        assert (rep.added, rep.skipped) == (0, 1)
        other = tmp_path / "other.txt"
        other.write_text("x" * 40)
        with pytest.raises(StoreError, match="not the one"):
            ingest_paths(store, [panel], kind="audiences", salt_file=other)


def test_a_bad_csv_line_is_rejected_alone(tmp_store, tmp_path):
    path = tmp_path / "msgs.csv"
    path.write_bytes("id,text,date\n1,Première,2024-01-02\n".encode()
                     + b"2,caf\xe9,2024-01-02\n3,a\x00b,2024-01-02\n"
                     + "4,Dernière,None\n5,\"=HYPERLINK(\"\"x\"\")\",N/A\n".encode())
    f = ingest_paths(tmp_store, [path]).files[0]
    assert f.error is None and (f.rows_read, f.distinct, f.rejected) == (5, 3, 2)
    assert sorted(_q(tmp_store, "SELECT line, field FROM rejects")) == [(3, "(encoding)"), (4, "(encoding)")]
    assert _q(tmp_store, "SELECT text, date_start FROM messages WHERE message_id = '4'") == [("Dernière", None)]


def test_a_stray_quote_rejects_its_line_not_the_lines_after_it(tmp_store, tmp_path):
    path = tmp_path / "quotes.csv"
    path.write_text('id,text\n1,ok\n2,"broken\n3,fine\n4,"multi\nline ok"\n5,"never closed\n6,last\n')
    f = ingest_paths(tmp_store, [path]).files[0]
    assert (f.rows_read, f.distinct, f.rejected) == (6, 4, 2)
    assert sorted(r[0] for r in _q(tmp_store, "SELECT line FROM rejects")) == [3, 7]
    assert _q(tmp_store, "SELECT message_id, text FROM messages ORDER BY 1") == [
        ("1", "ok"), ("3", "fine"), ("4", "multi\nline ok"), ("6", "last")]


@pytest.mark.parametrize("first", [b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", b"not json at all",
                                   b'{"truncated": "ad'])
def test_a_hostile_first_line_does_not_change_the_format(tmp_path, first):
    """Detection looks past a first line that is garbage, too deep for the parser or not an ad: the file
    stays a Meta file, its first line is rejected and the ads after it are kept. (A first line that is a
    JSON array stays ambiguous: it makes the file one JSON document.)"""
    ads = [{"id": f"7{i}", "ad_creative_bodies": [f"Bonjour {i}"], "page_id": "1"} for i in range(5)]
    path = tmp_path / "ads.jsonl"
    path.write_bytes(first + b"\n" + b"".join(json.dumps(ad).encode() + b"\n" for ad in ads))
    with Store.open(tmp_path / "s.duckdb") as store:
        f = ingest_paths(store, [path]).files[0]
        assert f.error is None and f.format == "meta", f
        assert (f.kept, f.rejected) == (5, 1)
