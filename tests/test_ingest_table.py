"""Generic tables (CSV, JSON Lines, Parquet) through a column mapping; the IRA ads."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bubblelens.errors import FormatError, SchemaError
from bubblelens.ingest import ingest_paths, read_batch
from bubblelens.ingest.text import EncodingWarning
from bubblelens.store import hash_person_id

REPO = Path(__file__).resolve().parent.parent


def _q(store, sql):
    return store.con.execute(sql).fetchall()


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


# -- the bundled fixtures (each with its NAME.mapping.yaml beside it) ----------------------------

def test_fixture_messages_with_wide_region_columns(tmp_store, fixtures_dir):
    path = fixtures_dir / "messages.csv"
    rows = _rows(path)
    f = ingest_paths(tmp_store, [path]).files[0]
    assert (f.format, f.kind, f.kept, f.rejected) == ("table", "messages", len(rows), 0)
    wide = [c for c in rows[0] if c.startswith("reg_")]
    n_cells = sum(1 for r in rows for c in wide if r[c].strip())
    assert _q(tmp_store, "SELECT count(*) FROM deliveries WHERE kind = 'region'")[0][0] == n_cells
    r = next(r for r in rows if r["camp_label"] and r["spend_min"])
    got = _q(tmp_store, f"""SELECT sponsor, channel, lang, given_camp, given_narrative, spend_lower, currency,
                            impressions_lower FROM messages WHERE message_id = '{r["msg_id"]}'""")[0]
    assert got == (r["sender"], r["channel"], r["lang"], r["camp_label"], r["narrative_label"] or None,
                   float(r["spend_min"]), r["currency"], int(r["imp_min"]))
    # multi-line bodies: the stored line is where the record starts
    assert _q(tmp_store, "SELECT max(source_line) FROM messages")[0][0] > len(rows) + 1


def test_fixture_panel_ids_are_only_stored_hashed(tmp_store, fixtures_dir):
    path = fixtures_dir / "panel.csv"
    rows = _rows(path)
    f = ingest_paths(tmp_store, [path]).files[0]
    assert (f.kind, f.kept, f.rejected) == ("audiences", len(rows), 0)
    salt = tmp_store.salt
    stored = {r[0] for r in _q(tmp_store, "SELECT audience_id FROM audiences")}
    assert stored == {hash_person_id(r["panelist_id"], salt) for r in rows}
    raw = rows[0]["panelist_id"]
    for table, col in (("audiences", "audience_id"), ("audience_attrs", "audience_id")):
        assert _q(tmp_store, f"SELECT count(*) FROM {table} WHERE {col} = '{raw}'")[0][0] == 0
    assert _q(tmp_store, "SELECT DISTINCT audience_type FROM audiences") == [("person",)]
    names = {r[0] for r in _q(tmp_store, "SELECT DISTINCT name FROM audience_attrs")}
    assert names == {"age_band", "region", "declared_lean"}


def test_fixture_exposures_hash_audience_ids_the_same_way(tmp_store, fixtures_dir):
    ingest_paths(tmp_store, [fixtures_dir / "panel.csv"])
    path = fixtures_dir / "exposures.csv"
    rows = _rows(path)
    f = ingest_paths(tmp_store, [path]).files[0]
    pairs = {(r["panelist_id"], r["msg_id"]) for r in rows}
    assert (f.kind, f.rejected, f.kept) == ("exposures", 0, len(rows))
    assert _q(tmp_store, "SELECT count(*) FROM exposures")[0][0] == len(pairs)
    # every exposure joins a panel member
    assert _q(tmp_store, """SELECT count(*) FROM exposures e LEFT JOIN audiences a USING (audience_id)
                            WHERE a.audience_id IS NULL""")[0][0] == 0


# -- mappings ---------------------------------------------------------------------------------------

def test_map_pairs_semicolon_csv_and_constants(tmp_store, tmp_path):
    path = tmp_path / "sms.csv"
    path.write_text("numero;texte;expediteur;quand\n"
                    "1;Votez dimanche !;Comité A;2024-06-28\n"
                    "2;;Comité B;2024-06-28\n"
                    "3;Rendez-vous au marché;Comité B;demain\n", encoding="utf-8")
    f = ingest_paths(tmp_store, [path], map_pairs=["id=numero", "text=texte", "sponsor=expediteur",
                                                   "date=quand"]).files[0]
    # an unreadable optional field (the date "demain") is left empty and counted, the message kept
    assert (f.rows_read, f.kept, f.rejected) == (3, 3, 0)
    assert any(w.startswith("date: 1 value(s) unreadable, left empty (first: line 4") for w in f.warnings)
    assert _q(tmp_store, "SELECT message_id, has_text, flags, date_start IS NULL FROM messages ORDER BY 1") == [
        ("1", True, [], False), ("2", False, ["no_text"], False), ("3", True, [], True)]


def test_r_unicode_escapes_become_their_characters(tmp_store, tmp_path):
    # R's write.csv wrote the emoji it could not encode as <U+XXXX>; an impossible code point stays as written
    path = tmp_path / "tweets.csv"
    path.write_text('id,text\n1,"Allez les <U+0001F1EB><U+0001F1F7> ! <U+27A1><U+FE0F> bit.ly"\n'
                    '2,"<U+D800> et <U+110000> restent, <u+00e9> aussi"\n', encoding="utf-8")
    f = ingest_paths(tmp_store, [path], map_pairs=["id=id", "text=text"]).files[0]
    assert (f.kept, f.rejected) == (2, 0)
    assert dict(_q(tmp_store, "SELECT message_id, text FROM messages")) == {
        "1": "Allez les \U0001F1EB\U0001F1F7 ! \u27A1\uFE0F bit.ly",
        "2": "<U+D800> et <U+110000> restent, <u+00e9> aussi"}


def test_mapping_file_join_first_value(tmp_store, tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("kind: messages\nfields:\n  id: id\n  text: {join: [subject, body]}\n"
                       "  impressions: {first: [clean, raw]}\n  channel: {value: email}\n")
    path = tmp_path / "mails.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"id": 1, "subject": "Retraites", "body": "Retraites", "clean": None, "raw": "1,200"},
        {"id": 2, "subject": "Écoles", "body": "Nos écoles ferment.", "clean": 50, "raw": "x"},
        {"id": 3, "subject": "Impôts", "body": "Baisse", "clean": -4},
        [1, 2],
    ]) + "\n")
    f = ingest_paths(tmp_store, [path], mapping=mapping).files[0]
    assert (f.rows_read, f.kept, f.rejected) == (4, 3, 1)
    assert _q(tmp_store, "SELECT message_id, text, impressions_lower, impressions_upper, channel FROM messages "
                         "ORDER BY 1") == [("1", "Retraites", 1200, 1200, "email"),
                                           ("2", "Écoles\n\nNos écoles ferment.", 50, 50, "email"),
                                           ("3", "Impôts\n\nBaisse", None, None, "email")]
    assert sorted(_q(tmp_store, "SELECT line, field FROM rejects")) == [(4, "(row)")]
    assert any(w.startswith("impressions: 1 value(s) unreadable") for w in f.warnings)


def test_parquet_and_no_id_gives_a_content_id(tmp_store, tmp_path):
    path = tmp_path / "scripts.parquet"
    pq.write_table(pa.table({"text": ["Bonjour, je viens vous parler de l'hôpital.", None],
                             "url": [None, None]}), path)
    f = ingest_paths(tmp_store, [path]).files[0]
    assert (f.rows_read, f.kept, f.rejected) == (2, 1, 1)
    (mid,) = _q(tmp_store, "SELECT message_id FROM messages")[0]
    assert mid.startswith("sha1:") and len(mid) == 5 + 16
    assert _q(tmp_store, "SELECT field, reason FROM rejects") == [("id", "no id, no text and no URL")]


def test_cp1252_file_is_read_with_a_warning(tmp_store, tmp_path):
    path = tmp_path / "legacy.csv"
    path.write_bytes("id,text\n1,Sécurité pour tous\n".encode("cp1252"))
    with pytest.warns(EncodingWarning, match="cp1252"):
        f = ingest_paths(tmp_store, [path]).files[0]
    assert f.kept == 1 and any("cp1252" in w for w in f.warnings)
    assert _q(tmp_store, "SELECT text FROM messages") == [("Sécurité pour tous",)]


def test_mapping_errors_are_clear(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(FormatError, match="lacks the mapped column"):
        read_batch(path, map_pairs=["id=zzz"])
    with pytest.raises(SchemaError, match="unknown field"):
        read_batch(path, map_pairs=["colour=a"])
    with pytest.raises(FormatError, match="no column maps to"):
        read_batch(path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: messages\nfields:\n  text: {sum: [a, b]}\n")
    with pytest.raises(SchemaError, match="first"):
        read_batch(path, mapping=bad)


def test_targeting_audiences_keep_their_ids(tmp_store, tmp_path):
    path = tmp_path / "specs.csv"
    path.write_text("spec,interests,age\nT1,Interests: Immigration or Politics,18-65+\nT2,,\n")
    f = ingest_paths(tmp_store, [path], kind="audiences", audience_type="targeting",
                     map_pairs=["id=spec", "interests=interests", "attr.age=age"]).files[0]
    assert (f.kept, f.rejected) == (2, 0)
    assert _q(tmp_store, "SELECT audience_id, audience_type, interests FROM audiences ORDER BY 1") == [
        ("T1", "targeting", "Interests: Immigration or Politics"), ("T2", "targeting", None)]


# -- the IRA ads (real, OCR-damaged) ---------------------------------------------------------------

def test_ira_ads_as_messages(tmp_store, shared_data):
    path = shared_data / "ira_ads/ira_ads.csv"
    f = ingest_paths(tmp_store, [path], mapping=REPO / "mappings/ira_ads.messages.yaml").files[0]
    assert (f.rows_read, f.kept, f.rejected) == (3517, 3517, 0)
    # OCR damage: dates beyond repair are left empty and counted (the ad is kept), or flagged repairs
    warned = {w.split(":")[0]: int(w.split(":")[1].split()[0]) for w in f.warnings if "unreadable" in w}
    assert warned == {"date": 6, "date_stop": 3}  # one ad has both dates beyond repair
    flags = dict(_q(tmp_store, "SELECT f, count(*) FROM (SELECT unnest(flags) f FROM messages) GROUP BY 1"))
    assert flags["no_text"] == 43 and flags["ocr_repaired:spend"] == 17
    assert _q(tmp_store, "SELECT DISTINCT currency FROM messages ORDER BY 1") == [("RUB",), ("USD",)]
    # the cleaned columns win over the raw OCR ones
    assert _q(tmp_store, """SELECT impressions_lower, impressions_upper, spend_lower, date_start
                            FROM messages WHERE message_id = '986'""")[0][:3] == (10496, 10496, 200.0)


def test_ira_ads_as_targeting_audiences(tmp_store, shared_data):
    path = shared_data / "ira_ads/ira_ads.csv"
    f = ingest_paths(tmp_store, [path], mapping=REPO / "mappings/ira_ads.audiences.yaml").files[0]
    assert (f.kind, f.kept, f.rejected) == ("audiences", 3517, 0)
    text = _q(tmp_store, "SELECT interests FROM audiences WHERE audience_id = '1349'")[0][0]
    assert text == "Interests: Immigration or Politics"
    n_interest = _q(tmp_store, "SELECT count(interests) FROM audiences")[0][0]
    assert 2292 <= n_interest < 3517  # "people who match" (2,292 ads) plus plain interests
