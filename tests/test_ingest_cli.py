"""``bubblelens ingest`` and ``bubblelens stats`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from bubblelens.cli import main

COUNTS = ("messages", "deliveries", "targeting", "audiences", "exposures", "rejects")


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_ingest_fixtures_then_stats_json(tmp_path, fixtures_dir):
    db = str(tmp_path / "s.duckdb")
    files = [str(fixtures_dir / n) for n in ("messages.csv", "meta_ads.json", "google_creative_stats.csv",
                                             "panel.csv", "exposures.csv")]
    r = _run("ingest", *files, "--db", db)
    assert r.exit_code == 0, r.output
    assert "messages.csv [table, messages]: 800 read = 800 kept" in r.output
    assert "store: 900 messages" in r.output
    r = _run("stats", "--db", db, "--json")
    stats = json.loads(r.output)
    assert all(isinstance(stats[k], int) for k in COUNTS)
    assert (stats["messages"], stats["audiences"], stats["rejects"]) == (900, 1500, 0)
    assert stats["exposures"] > 0 and stats["deliveries"] > 0
    r = _run("stats", "--db", db)
    assert r.exit_code == 0 and "audiences" in r.output and "1,500" in r.output


def test_wrong_format_is_one_sentence_and_exit_1(tmp_path):
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x00\x01\x02PNG" * 100)
    r = _run("ingest", str(binary), "--db", str(tmp_path / "s.duckdb"))
    assert r.exit_code == 1
    assert "photo.csv is a binary file" in r.output
    assert "Traceback" not in r.output


def test_rejects_do_not_fail_but_strict_does(tmp_path):
    path = tmp_path / "ads.jsonl"
    path.write_text('{"id": "1", "ad_creative_bodies": ["Bonjour"]}\n'
                    '{"id": {"x": 1}, "ad_creative_bodies": ["Id illisible"]}\n'
                    '{"id": "3", "ad_creative_bodies": ["Salut"], "spend": {"lower_bound": "-3"}, "page_id": "1"}\n')
    db = str(tmp_path / "s.duckdb")
    r = _run("ingest", str(path), "--db", db)
    assert r.exit_code == 0 and "3 read = 2 kept (2 added, 0 updated, 0 unchanged) + 1 rejected + 0 duplicate" in r.output
    assert "spend: 1 value(s) unreadable, left empty (first: line 3" in r.output, r.output
    for bad in (path, tmp_path / "only_spend.jsonl"):
        if bad != path:  # an unreadable optional value alone also stops --strict
            bad.write_text('{"id": "3", "ad_creative_bodies": ["Salut"], "spend": {"lower_bound": "-3"}}\n')
        strict_db = str(tmp_path / f"strict_{bad.stem}.duckdb")
        r = _run("ingest", str(bad), "--db", strict_db, "--strict")
        assert r.exit_code == 1 and "--strict" in r.output, r.output
        assert json.loads(_run("stats", "--db", strict_db, "--json").output)["messages"] == 0


def test_map_and_kind_options(tmp_path):
    path = tmp_path / "panel.csv"
    path.write_text("who,likes,lean\nA,rugby et pêche,rn\nB,vélo,nfp\n")
    db = str(tmp_path / "s.duckdb")
    r = _run("ingest", str(path), "--db", db, "--kind", "audiences", "--map", "id=who",
             "--map", "interests=likes", "--map", "attr.declared_lean=lean")
    assert r.exit_code == 0, r.output
    assert json.loads(_run("stats", "--db", db, "--json").output)["audiences"] == 2


def test_ira_mapping_from_the_command_line(tmp_path, shared_data):
    db = str(tmp_path / "s.duckdb")
    repo = Path(__file__).resolve().parent.parent
    r = _run("ingest", str(shared_data / "ira_ads/ira_ads.csv"), "--db", db,
             "--mapping", str(repo / "mappings/ira_ads.audiences.yaml"), "--audience-type", "targeting")
    assert r.exit_code == 0, r.output
    assert "3,517 kept" in r.output
