"""Idempotence, updates in place, and all-or-nothing writes (one transaction per file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bubblelens.ingest import ingest_paths, writer

COUNTED = ("messages", "deliveries", "targeting", "audiences", "exposures", "rejects")


def _counts(store) -> dict[str, int]:
    s = store.stats()
    return {k: s[k] for k in (*COUNTED, "sources")}


def _ad(i: int, *, impressions: str = "999", body: str | None = None) -> dict:
    return {"id": str(i), "ad_creative_bodies": [body or f"Message numéro {i}"], "page_id": "77",
            "impressions": {"lower_bound": "0", "upper_bound": impressions},
            "target_gender": "All",
            "delivery_by_region": [{"percentage": "0.5", "region": "Bretagne"},
                                   {"percentage": "0.5", "region": "Corse"}]}


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_reingest_adds_nothing_rejects_included(tmp_store, fixtures_dir, tmp_path):
    files = [fixtures_dir / n for n in ("messages.csv", "meta_ads.json", "meta_ads.jsonl",
                                        "google_creative_stats.csv", "panel.csv", "exposures.csv")]
    files.append(_jsonl(tmp_path / "bad.jsonl", [_ad(1), "{oops", [1]]))
    ingest_paths(tmp_store, files)
    before = _counts(tmp_store)
    assert before["rejects"] == 2 and before["messages"] > 0 and before["exposures"] > 0
    rep = ingest_paths(tmp_store, files)
    assert _counts(tmp_store) == before
    assert all(f.added == 0 for f in rep.files)
    # messages.csv and meta_ads.json hold the same 388 ads (two sources): each re-read replaces the
    # other's version; every other file is unchanged row for row
    by_name = {Path(f.path).name: f for f in rep.files}
    for name in ("google_creative_stats.csv", "panel.csv", "exposures.csv", "meta_ads.jsonl", "bad.jsonl"):
        assert by_name[name].updated == 0 and by_name[name].skipped == by_name[name].kept


def test_a_newer_export_updates_in_place(tmp_store, tmp_path):
    ingest_paths(tmp_store, [_jsonl(tmp_path / "week1.jsonl", [_ad(1), _ad(2)])])
    newer = _ad(2, impressions="4999")
    newer["delivery_by_region"] = [{"percentage": "1.0", "region": "Corse"}]
    f = ingest_paths(tmp_store, [_jsonl(tmp_path / "week2.jsonl", [_ad(1), newer, _ad(3)])]).files[0]
    assert (f.kept, f.added, f.updated, f.skipped) == (3, 1, 1, 1)
    c = _counts(tmp_store)
    assert (c["messages"], c["deliveries"], c["targeting"]) == (3, 2 + 1 + 2, 3)
    con = tmp_store.con
    assert con.execute("SELECT impressions_upper FROM messages WHERE message_id = '2'").fetchall() == [(4999,)]
    assert con.execute("SELECT region, share FROM deliveries WHERE message_id = '2'").fetchall() == [("Corse", 1.0)]


def test_the_same_id_twice_in_one_file_keeps_the_last(tmp_store, tmp_path):
    f = ingest_paths(tmp_store, [_jsonl(tmp_path / "dup.jsonl",
                                        [_ad(1, body="première version"), _ad(1, body="seconde version")])]).files[0]
    assert (f.kept, f.added, f.skipped) == (2, 1, 1)
    assert tmp_store.con.execute("SELECT text FROM messages").fetchall() == [("seconde version",)]
    assert _counts(tmp_store)["deliveries"] == 2


def test_an_exception_mid_file_leaves_the_store_unchanged(tmp_store, tmp_path, monkeypatch):
    ingest_paths(tmp_store, [_jsonl(tmp_path / "a.jsonl", [_ad(1), _ad(2)])])
    before = _counts(tmp_store)
    snapshot = tmp_store.con.execute("SELECT * FROM messages ORDER BY message_id").fetchall()
    calls = {"n": 0}
    real = writer._insert

    def failing(con, table, tbl, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # messages are in, deliveries not yet
            raise RuntimeError("disk full")
        return real(con, table, tbl, **kw)

    monkeypatch.setattr(writer, "_insert", failing)
    newer = [_ad(2, impressions="4999"), _ad(3), "{bad json"]
    with pytest.raises(RuntimeError, match="disk full"):
        ingest_paths(tmp_store, [_jsonl(tmp_path / "b.jsonl", newer)])
    assert calls["n"] == 2
    assert _counts(tmp_store) == before
    assert tmp_store.con.execute("SELECT * FROM messages ORDER BY message_id").fetchall() == snapshot


def test_labels_from_a_newsroom_table_survive_an_ad_library_update(tmp_store, tmp_path):
    table = tmp_path / "labels.csv"
    table.write_text("id,text,camp,narrative,lang\n1,Message numéro 1,rn,immigration,fr\n")
    ingest_paths(tmp_store, [table])
    ingest_paths(tmp_store, [_jsonl(tmp_path / "api.jsonl", [_ad(1)])])
    assert tmp_store.con.execute("SELECT source_format, given_camp, given_narrative, lang FROM messages")\
        .fetchall() == [("meta", "rn", "immigration", "fr")]
