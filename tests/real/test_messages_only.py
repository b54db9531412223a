"""Messages with no delivery and no exposure (French MPs' tweets) still get a report: what each camp says.

The report gives its narrative and camp sections, says why exposure is absent, and leaves out the sections
about who received what; with the default codebook the camps abstain rather than invent the far right.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bubblelens.classify import classify_store
from bubblelens.ingest import ingest_paths
from bubblelens.report.render import build_report
from bubblelens.store import Store

N = 400


@pytest.fixture(scope="module")
def tweets_store(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    d = tmp_path_factory.mktemp("tweets")
    src = pd.read_csv(shared_data / "fr_mp_tweets_xv" / "Tweets_sample.csv", dtype=str).head(N)
    src[["id", "text", "created_at", "twitter"]].rename(columns={"twitter": "sender"}).to_csv(
        d / "tweets.csv", index=False)
    store = Store.open(d / "s.duckdb")
    rep = ingest_paths(store, [d / "tweets.csv"])
    assert rep.kept == N
    classify_store(store)
    return store


def test_camps_abstain_rather_than_invent(tweets_store: Store) -> None:
    camps = dict(tweets_store.con.execute(
        "SELECT label, count(*) FROM scores WHERE task = 'camp' GROUP BY 1").fetchall())
    far_right = camps.get("rn", 0) + camps.get("reconquete", 0)
    assert camps.get("unassigned", 0) > N / 2
    assert far_right < 0.1 * N, camps  # was 36 % of tweets before camps could abstain


def test_report_on_messages_only_says_why_exposure_is_absent(tweets_store: Store, tmp_path: Path) -> None:
    res = build_report(tweets_store, tmp_path / "r.html", export=False)
    html = res.path.read_text(encoding="utf-8")
    assert "No delivery or exposure data" in html and f"{N} messages" in html
    assert 'id="cross-cutting"' not in html and 'id="funnel"' not in html
    assert "Narratives by camp" in html
    assert "Traceback" not in html
    for where in (Path(__file__).resolve().parents[2], Path(str(tweets_store.path)).parent):
        assert str(where) not in html, f"the report tells where it was made: {where}"
    assert res.numbers["measure"]["messages_only"]["messages"] == N
