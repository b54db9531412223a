"""``bubblelens score`` treats bad lines and files as ``ingest`` does: rejected, reported, the rest goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from bubblelens.cli import main

FAKE = "bubblelens.batch.fake:make_fake_scorer"


def test_bad_jsonl_lines_are_rejected_and_empty_texts_scored_as_no_text(tmp_path: Path) -> None:
    src = tmp_path / "msgs.jsonl"
    src.write_bytes(b"\n".join([
        json.dumps({"id": "a", "text": "Renten sichern"}).encode(),
        b'{"id": "b", "text": ',                                   # truncated
        json.dumps({"id": "c", "text": ""}).encode(),              # empty text: scored as no text
        b'{"id": "d", "text": "x\xff"}',                           # not UTF-8
        b"[" * 5000 + b"]" * 5000,                                  # deep nesting
        b'{"id": "e", "n": 1e309}',                                 # beyond the float range
        json.dumps({"id": "f", "text": None}).encode(),
        b"42",
        json.dumps({"id": "g", "text": "Grenzen"}).encode(),
    ]) + b"\n")
    out = tmp_path / "out.parquet"
    r = CliRunner().invoke(main, ["score", str(src), "--out", str(out), "--id-column", "id", "--scorer", FAKE])
    assert r.exit_code == 0, r.output
    assert "5 line(s) or file(s) rejected" in r.output
    for line in (2, 4, 5, 6, 8):
        assert f"msgs.jsonl, line {line}:" in r.output
    df = pd.read_parquet(out)
    assert list(df["message_id"]) == ["a", "c", "f", "g"]
    assert list(df["text"]) == ["Renten sichern", "", "", "Grenzen"]


def test_a_bad_file_in_a_folder_is_reported_and_the_others_scored(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.json").write_text(json.dumps({"data": [{"id": "1", "ad_creative_bodies": ["Hallo"]}]}))
    (d / "b.json").write_text(json.dumps({"error": {"message": "Invalid token", "code": 190}}))
    (d / "c.json").write_text(json.dumps([{"id": "2", "ad_creative_bodies": ["Welt"]}]))
    out = tmp_path / "out.parquet"
    r = CliRunner().invoke(main, ["score", str(d), "--out", str(out), "--id-column", "id", "--scorer", FAKE])
    assert r.exit_code == 0, r.output
    assert "b.json: " in r.output and "Invalid token" in r.output
    assert sorted(pd.read_parquet(out)["message_id"]) == ["1", "2"]


def test_run_reports_a_bad_file_of_a_folder_and_goes_on(tmp_path: Path, monkeypatch) -> None:
    import bubblelens.classify as classify
    from bubblelens.errors import BubbleLensError
    from bubblelens.pipeline import run_pipeline
    from bubblelens.store import Store

    monkeypatch.setattr(classify, "classify_store", lambda store, **_: "stub")
    monkeypatch.setattr(classify, "load_codebook", lambda *a, **k: None)
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.jsonl").write_text(json.dumps({"id": "1", "ad_creative_bodies": ["Hallo"]}) + "\n")
    (d / "b.json").write_text(json.dumps({"error": {"message": "Invalid token", "type": "OAuthException",
                                                    "code": 190}}))
    (d / "c.jsonl").write_text(json.dumps({"id": "2", "ad_creative_bodies": ["Welt"]}) + "\n")
    with Store.open(tmp_path / "s.duckdb") as store:
        res = run_pipeline(store, [(d, {})], discover=False, schemes=())
        assert res.ingest_kept == 2 and len(res.file_errors) == 1 and "Invalid token" in res.file_errors[0]
        assert store.stats()["messages"] == 2
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "b.json").write_text(json.dumps({"error": {"message": "Invalid token"}}))
    with Store.open(tmp_path / "t.duckdb") as store:
        try:
            run_pipeline(store, [(bad, {})], discover=False, schemes=())
        except BubbleLensError as e:
            assert "no input file could be read" in str(e)
        else:
            raise AssertionError("a folder of nothing readable must fail")
