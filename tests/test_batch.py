"""Batch scoring: readers, chunking, output rules, resumption (in process, with the deterministic fake)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bubblelens.batch import OUTPUT_COLUMNS, ScoreSettings, iter_chunks, score_file
from bubblelens.batch.fake import FakeScorer, make_fake_scorer
from bubblelens.batch.readers import meta_ad_row
from bubblelens.cli import main
from bubblelens.errors import ScoreError

FAKE = "bubblelens.batch.fake:make_fake_scorer"
WORDS = ["la", "retraite", "prix", "essence", "immigration", "sécurité", "climat", "école", "santé", "impôts", "emploi", "europe"]


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, int(rng.integers(1, 25)))) for _ in range(n)]


@pytest.fixture
def ads(tmp_path: Path) -> pd.DataFrame:
    texts = make_texts(1000)
    return pd.DataFrame({"ad_id": [f"{i:05d}" for i in range(1000)], "body": texts,
                         "page": [None if i % 3 else f"page {i % 7}" for i in range(1000)]})


def settings(**kw: object) -> ScoreSettings:
    base = {"text_column": "body", "chunk_size": 128, "scorer": FAKE}
    return ScoreSettings(**{**base, **kw})  # type: ignore[arg-type]


def read_dir(out: Path) -> pd.DataFrame:
    parts = sorted(out.glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


# --- readers and chunking -------------------------------------------------------------------------

def test_chunks_have_exact_sizes_whatever_the_row_groups(tmp_path: Path, ads: pd.DataFrame) -> None:
    ads.to_parquet(tmp_path / "a.parquet", row_group_size=77)
    ads.to_csv(tmp_path / "a.csv", index=False)
    for f in ("a.parquet", "a.csv"):
        chunks = list(iter_chunks(tmp_path / f, chunk_size=128))
        assert [c.index for c in chunks] == list(range(8))
        assert [len(c.frame) for c in chunks] == [128] * 7 + [1000 - 7 * 128]
        assert [c.start for c in chunks] == [128 * i for i in range(8)]
        assert list(pd.concat([c.frame for c in chunks])["body"]) == list(ads["body"])


def test_csv_keeps_ids_as_given(tmp_path: Path, ads: pd.DataFrame) -> None:
    ads.to_csv(tmp_path / "a.csv", index=False)
    frame = next(iter(iter_chunks(tmp_path / "a.csv", chunk_size=10))).frame
    assert list(frame["ad_id"]) == [f"{i:05d}" for i in range(10)]


def test_meta_ad_text_joins_bodies_titles_descriptions_without_duplicates() -> None:
    row = meta_ad_row({"id": 12, "ad_creative_bodies": ["Votez!", "Votez!"], "ad_creative_link_titles":
                       ["Le 9 juin"], "ad_creative_link_descriptions": ["Votez!", "Tous aux urnes"],
                       "page_id": "77", "page_name": "Parti"})
    assert row == {"id": "12", "text": "Votez!\n\nLe 9 juin\n\nTous aux urnes", "page_id": "77",
                   "page_name": "Parti"}
    old = meta_ad_row({"ad_creative_body": "Texte", "ad_creative_link_title": "Titre",
                       "ad_snapshot_url": "https://www.facebook.com/ads/archive/render_ad/?id=4242&access_token=x"})
    assert (old["id"], old["text"]) == ("4242", "Texte\n\nTitre")


def test_real_meta_pages_and_folder(tmp_path: Path, shared_data: Path) -> None:
    SHARED = shared_data / "meta_ad_library_api"
    page = SHARED / "ads_archive_page_2023_br_us_v14.json"
    doc = json.loads(page.read_text(encoding="utf-8-sig"))
    frame = pd.concat(c.frame for c in iter_chunks(page, chunk_size=3))
    assert len(frame) == len(doc["data"])
    assert list(frame["id"]) == [str(a["id"]) for a in doc["data"]]
    old = pd.concat(c.frame for c in iter_chunks(SHARED / "ep2019_eu_political_ads_v3.jsonl", chunk_size=10))
    assert len(old) == 25 and old["id"].notna().all() and (old["text"].str.len() > 0).all()
    with pytest.raises(ScoreError, match="error body"):
        list(iter_chunks(SHARED / "ads_archive_error_2023.json", chunk_size=10))
    folder = tmp_path / "pages"
    folder.mkdir()
    for name in ("ads_archive_page_2023_br_us_v14.json", "ad_2021_us_single_lejo1.json"):
        (folder / name).write_bytes((SHARED / name).read_bytes())
    both = pd.concat(c.frame for c in iter_chunks(folder, chunk_size=4))
    assert len(both) == len(doc["data"]) + 1


# --- scoring a file -------------------------------------------------------------------------------

def test_output_columns_and_row_number_ids(tmp_path: Path, ads: pd.DataFrame) -> None:
    ads.to_parquet(tmp_path / "a.parquet")
    res = score_file(tmp_path / "a.parquet", tmp_path / "out", settings=settings())
    out = read_dir(tmp_path / "out")
    assert res.rows == 1000 and res.chunks_scored == 8
    assert tuple(out.columns) == OUTPUT_COLUMNS
    assert list(out["message_id"]) == list(range(1000))
    expected = FakeScorer().score_frame(pd.DataFrame({"text": ads["body"]}))
    for c in OUTPUT_COLUMNS[1:]:
        assert list(out[c]) == list(expected[c]), c


def test_text_is_cleaned_as_ingest_cleans_it(tmp_path: Path) -> None:
    """A file scored directly and the same file ingested hold the same text: NFC, R's <U+XXXX> escapes
    decoded, control characters dropped, no-break spaces as spaces."""
    raw = ["Vive la France <U+0001F1EB><U+0001F1F7>", "e\u0301lection\xa0 ", "a\x07b", "<U+110000> stays"]
    pd.DataFrame({"body": raw}).to_csv(tmp_path / "r.csv", index=False)
    score_file(tmp_path / "r.csv", tmp_path / "o.parquet", settings=settings())
    out = pd.read_parquet(tmp_path / "o.parquet")
    assert list(out["text"]) == ["Vive la France \U0001F1EB\U0001F1F7", "\u00e9lection", "ab", "<U+110000> stays"]


def test_id_column_as_given_and_sponsor_passed(tmp_path: Path, ads: pd.DataFrame) -> None:
    ads.to_csv(tmp_path / "a.csv", index=False)
    score_file(tmp_path / "a.csv", tmp_path / "o.parquet",
               settings=settings(id_column="ad_id", sponsor_column="page"))
    out = pd.read_parquet(tmp_path / "o.parquet")
    assert list(out["message_id"]) == list(ads["ad_id"])
    has_sponsor = ads["page"].fillna("").astype(bool)
    assert list(out["camp_source"]) == ["sponsor" if s else "text" for s in has_sponsor]


def test_length_sorting_restores_input_order(tmp_path: Path, ads: pd.DataFrame) -> None:
    ads.to_parquet(tmp_path / "a.parquet")
    score_file(tmp_path / "a.parquet", tmp_path / "s.parquet", settings=settings(sort_by_length=True))
    score_file(tmp_path / "a.parquet", tmp_path / "u.parquet", settings=settings(sort_by_length=False))
    s, u = pd.read_parquet(tmp_path / "s.parquet"), pd.read_parquet(tmp_path / "u.parquet")
    pd.testing.assert_frame_equal(s, u)
    assert list(s["text"]) == list(ads["body"])


def test_single_parquet_file_leaves_no_scratch(tmp_path: Path, ads: pd.DataFrame) -> None:
    ads.to_parquet(tmp_path / "a.parquet")
    score_file(tmp_path / "a.parquet", tmp_path / "d", settings=settings())
    score_file(tmp_path / "a.parquet", tmp_path / "one.parquet", settings=settings())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "d", "one.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "one.parquet"), read_dir(tmp_path / "d"))


def test_complete_directory_is_not_scored_again(tmp_path: Path, ads: pd.DataFrame) -> None:
    ads.to_parquet(tmp_path / "a.parquet")
    calls: list[int] = []

    def counting(s: ScoreSettings) -> FakeScorer:
        calls.append(1)
        return make_fake_scorer(s)

    score_file(tmp_path / "a.parquet", tmp_path / "out", settings=settings(), scorer_factory=counting)
    before = read_dir(tmp_path / "out")
    res = score_file(tmp_path / "a.parquet", tmp_path / "out", settings=settings(), scorer_factory=counting)
    assert calls == [1] and res.chunks_scored == 0 and res.chunks_skipped == 8
    pd.testing.assert_frame_equal(read_dir(tmp_path / "out"), before)


def test_resume_scores_only_missing_chunks(tmp_path: Path, ads: pd.DataFrame) -> None:
    ads.to_parquet(tmp_path / "a.parquet")
    score_file(tmp_path / "a.parquet", tmp_path / "ref", settings=settings())
    score_file(tmp_path / "a.parquet", tmp_path / "out", settings=settings())
    # Forget chunks 2 and 5 as if the run had died before listing them (part 5 even half-written).
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    del m["chunks"]["2"], m["chunks"]["5"]
    m["complete"] = False
    (tmp_path / "out" / "manifest.json").write_text(json.dumps(m))
    (tmp_path / "out" / "part-00002.parquet").unlink()
    (tmp_path / "out" / "part-00005.parquet").write_bytes(b"torn")
    res = score_file(tmp_path / "a.parquet", tmp_path / "out", settings=settings())
    assert (res.chunks_scored, res.chunks_skipped) == (2, 6)
    pd.testing.assert_frame_equal(read_dir(tmp_path / "out"), read_dir(tmp_path / "ref"))


def test_foreign_directory_is_refused_and_left_alone(tmp_path: Path, ads: pd.DataFrame) -> None:
    ads.to_parquet(tmp_path / "a.parquet")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("my notes")
    with pytest.raises(ScoreError, match="no scoring manifest"):
        score_file(tmp_path / "a.parquet", foreign, settings=settings())
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_directory_of_other_settings_or_input_is_refused(tmp_path: Path, ads: pd.DataFrame) -> None:
    ads.to_parquet(tmp_path / "a.parquet")
    score_file(tmp_path / "a.parquet", tmp_path / "out", settings=settings())
    with pytest.raises(ScoreError, match="another input or other settings"):
        score_file(tmp_path / "a.parquet", tmp_path / "out", settings=settings(chunk_size=100))
    ads.iloc[:500].to_parquet(tmp_path / "a.parquet")
    with pytest.raises(ScoreError, match="another input or other settings"):
        score_file(tmp_path / "a.parquet", tmp_path / "out", settings=settings())


def test_empty_directory_is_used(tmp_path: Path, ads: pd.DataFrame) -> None:
    ads.to_parquet(tmp_path / "a.parquet")
    (tmp_path / "empty").mkdir()
    assert score_file(tmp_path / "a.parquet", tmp_path / "empty", settings=settings()).rows == 1000


def test_missing_text_column_names_the_columns(tmp_path: Path, ads: pd.DataFrame) -> None:
    ads.to_parquet(tmp_path / "a.parquet")
    with pytest.raises(ScoreError, match=r"no text column 'text'.*ad_id, body, page"):
        score_file(tmp_path / "a.parquet", tmp_path / "o.parquet", settings=settings(text_column="text"))


def test_ray_missing_is_one_sentence(tmp_path: Path, ads: pd.DataFrame,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ads.to_parquet(tmp_path / "a.parquet")
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ScoreError, match=r"install bubblelens\[ray\]"):
        score_file(tmp_path / "a.parquet", tmp_path / "o", engine="ray", settings=settings())


def test_cli_scores_and_refuses_with_one_sentence(tmp_path: Path, ads: pd.DataFrame) -> None:
    ads.to_csv(tmp_path / "a.csv", index=False)
    runner = CliRunner()
    args = ["score", str(tmp_path / "a.csv"), "--text-column", "body", "--id-column", "ad_id",
            "--chunk-size", "300", "--scorer", FAKE]
    ok = runner.invoke(main, [*args, "--out", str(tmp_path / "o.parquet")])
    assert ok.exit_code == 0, ok.output
    assert "1000 rows" in ok.output
    assert list(pd.read_parquet(tmp_path / "o.parquet")["message_id"])[:2] == ["00000", "00001"]
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.csv").write_text("a\n")
    bad = runner.invoke(main, [*args, "--out", str(tmp_path / "busy")])
    assert bad.exit_code == 2
    assert "refusing to write into it" in bad.output and "Traceback" not in bad.output


def test_a_folder_mixing_formats_is_refused_with_the_remedy(tmp_path: Path) -> None:
    (tmp_path / "ads.jsonl").write_text('{"id": "1", "ad_creative_bodies": ["x"]}\n', encoding="utf-8")
    (tmp_path / "labels.csv").write_text("id,party\n1,A\n", encoding="utf-8")
    with pytest.raises(ScoreError, match=r"mixes formats \(csv, jsonl\): name the files of one format instead"):
        list(iter_chunks(tmp_path, chunk_size=10))
