"""French MPs' tweets as R wrote them (``fr_mp_tweets_xv``: emoji as ``<U+XXXX>`` text) are stored with
their emoji: no escape is left to become a token of a classifier or of a discovered narrative."""

from __future__ import annotations

from pathlib import Path

from bubblelens.ingest import ingest_paths
from bubblelens.store import Store


def test_r_escapes_in_the_french_tweets_are_stored_as_characters(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "fr_mp_tweets_xv" / "Tweets_sample.csv"
    raw = src.read_text(encoding="utf-8")
    assert raw.count("<U+") > 1000  # the sample really carries them
    with Store.open(tmp_path / "s.duckdb") as store:
        f = ingest_paths(store, [src], map_pairs=["id=id", "text=text", "sponsor=author_id"]).files[0]
        assert f.rejected == 0 and f.kept > 9000
        left = store.con.execute("SELECT count(*) FROM messages WHERE text LIKE '%<U+%'").fetchone()
        flags = store.con.execute("SELECT count(*) FROM messages WHERE text LIKE '%🇫🇷%'").fetchone()
    assert left == (0,)
    assert flags is not None and flags[0] > 100  # 🇫🇷 was <U+0001F1EB><U+0001F1F7>
