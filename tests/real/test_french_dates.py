"""French deputies' tweets with their dates rewritten the French way (``dd/mm/yyyy``) come out on
the same days as the ISO originals: day-first is decided from the column's values, never guessed per row."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

from bubblelens.ingest import ingest_paths
from bubblelens.store import Store


def test_french_day_first_dates_match_the_iso_originals(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "fr_mp_tweets_xv" / "Tweets_sample.csv"
    rows = list(csv.DictReader(io.StringIO(src.read_text(encoding="utf-8"), newline="")))[:2000]
    iso = {r["id"]: datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")).replace(tzinfo=None)
           for r in rows}
    assert any(d.day <= 12 for d in iso.values()) and any(d.day > 12 for d in iso.values())
    out = io.StringIO(newline="")
    w = csv.DictWriter(out, fieldnames=["id", "text", "twitter", "created_at"], extrasaction="ignore",
                       lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "created_at": iso[r["id"]].strftime("%d/%m/%Y")})
    fr = tmp_path / "tweets_fr.csv"
    fr.write_text(out.getvalue(), encoding="utf-8")
    with Store.open(tmp_path / "s.duckdb") as store:
        f = ingest_paths(store, [fr], map_pairs=["date=created_at", "sponsor=twitter"]).files[0]
        assert f.rejected == 0 and not any("date" in w for w in f.warnings), f.warnings
        got = dict(store.con.execute("SELECT message_id, date_start FROM messages").fetchall())
    assert len(got) == len(iso)
    assert all(got[k] == datetime(v.year, v.month, v.day) for k, v in iso.items())
