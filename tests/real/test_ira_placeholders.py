"""The IRA ads as another public copy writes them: ``None``, ``nan``, ``N/A`` or ``-`` in the empty
optional fields ingest exactly like the original through ``mappings/ira_ads.messages.yaml``."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from bubblelens.ingest import ingest_paths
from bubblelens.store import Store

REPO = Path(__file__).resolve().parents[2]
MAPPING = REPO / "mappings" / "ira_ads.messages.yaml"
OPTIONAL = ("ad_spend", "ad_impressions", "ad_clicks", "ad_end_date", "impressions_clean", "clicks_clean",
            "spend_rub_clean", "end_date_clean", "ad_targeting_interests", "ad_targeting_age")


def _rows(store: Store) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in store.con.execute(
        "SELECT message_id, text, impressions_lower, spend_lower, currency, date_start, date_stop FROM messages"
    ).fetchall()}


def test_placeholders_in_empty_optional_fields_change_nothing(shared_data: Path, tmp_path: Path) -> None:
    orig = shared_data / "ira_ads" / "ira_ads.csv"
    text = orig.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], rows[1:]
    idx = [header.index(c) for c in OPTIONAL if c in header]
    rng = random.Random(15)
    filled = 0
    for r in body:
        for i in idx:
            if i < len(r) and not r[i].strip():
                r[i] = rng.choice(["None", "nan", "N/A", "-", "NaN", "null"])
                filled += 1
    assert filled > 786  # at least as many as the copy the issue found (786 ads with 'None' spend)
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows([header, *body])
    copy = tmp_path / "ira_ads_none.csv"
    copy.write_text(out.getvalue(), encoding="utf-8")

    with Store.open(tmp_path / "a.duckdb") as a, Store.open(tmp_path / "b.duckdb") as b:
        fa = ingest_paths(a, [orig], mapping=MAPPING).files[0]
        fb = ingest_paths(b, [copy], mapping=MAPPING).files[0]
        assert fa.rows_read == fb.rows_read == len(body)
        lost = [r for r in a.con.execute("SELECT line, field, reason FROM rejects").fetchall()]
        assert fa.rows_read - fa.distinct <= 8, lost  # each lost ad is named in rejects
        assert fa.rows_read - fa.distinct == len(lost) + fa.duplicates
        assert (fb.distinct, fb.rejected) == (fa.distinct, fa.rejected)
        assert _rows(b) == _rows(a)
