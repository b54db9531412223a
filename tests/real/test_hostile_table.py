"""Real IRA ads (multi-line quoted texts) among hostile CSV lines, through the project's own mapping:
every real ad as a clean file gives it, every hostile line rejected with its line or kept as documented,
read = kept + rejected + duplicate, a second ingest adds nothing."""

from __future__ import annotations

import csv
import io
import random
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bubblelens.ingest import ingest_paths
from bubblelens.store import Store

REPO = Path(__file__).resolve().parents[2]
MAPPING = REPO / "mappings" / "ira_ads.messages.yaml"
N_REAL = 250
KINDS = {"columns": "reject", "stray_quote": "reject", "invalid_utf8": "reject", "nul": "reject",
         "placeholders": "keep", "formula": "keep", "big_cell": "keep", "control": "keep", "bom": "keep",
         "crlf": "keep", "bad_date": "keep", "negative": "keep", "empty": "skip", "no_id_no_text": "reject"}


def _line(header: list[str], row: dict[str, str]) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerow([row.get(h, "") for h in header])
    return out.getvalue().rstrip("\n").encode("utf-8")


def _hostile(kind: str, header: list[str], n: int, rng: random.Random) -> bytes:
    row = {"ad_id": f"h{n}", "ad_text": f"Hostile {n} ad", "ad_landing_page": "https://x.example",
           "impressions_clean": "100", "creation_date_clean": "2016-05-01"}
    if kind == "columns":
        return _line(header, row) + b",extra,cells"
    if kind == "stray_quote":
        return f'h{n},"Hostile {n} "quoted" text'.encode() + b"," * (len(header) - 2)
    if kind == "invalid_utf8":
        return _line(header, row).replace(b"Hostile", b"Host\xffile")
    if kind == "nul":
        return _line(header, row).replace(b"Hostile", b"Host\x00ile")
    if kind == "placeholders":
        return _line(header, {**row, "ad_spend": "None", "ad_impressions": "N/A", "end_date_clean": "-",
                              "ad_end_date": "nan", "spend_rub_clean": "NaN"})
    if kind == "formula":
        return _line(header, {**row, "ad_text": f'=HYPERLINK("http://evil","{n}")'})
    if kind == "big_cell":
        return _line(header, {**row, "ad_text": f"Hostile {n} " + "y" * 300_000})
    if kind == "control":
        return _line(header, {**row, "ad_text": f"Hostile {n}\x07\x1b[31m red"})
    if kind == "bom":
        return "\ufeff".encode() + _line(header, row)
    if kind == "crlf":
        return _line(header, row) + b"\r"
    if kind == "bad_date":
        return _line(header, {**row, "creation_date_clean": rng.choice(["2016-02-31", "31/31/2016", "yesterday"])})
    if kind == "negative":
        return _line(header, {**row, "impressions_clean": "-5", "spend_rub_clean": "1e309"})
    if kind == "no_id_no_text":
        return _line(header, {"ad_clicks": "3"})
    return rng.choice([b"", b"   "])


def _rows(store: Store) -> dict[str, tuple[Any, ...]]:
    return {r[0]: r[1:] for r in store.con.execute(
        "SELECT message_id, text, impressions_lower, spend_lower, date_start, date_stop FROM messages "
        "WHERE message_id NOT LIKE 'h%'").fetchall()}


@settings(max_examples=3, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def _fuzz(seed: int, header: list[str], real: list[bytes], clean: dict[str, tuple[Any, ...]], tmp: Path) -> None:
    rng = random.Random(seed)
    plan = [("real", i) for i in range(len(real))] + [("hostile", i) for i in range(600)]
    rng.shuffle(plan)
    kinds = list(KINDS)
    out = [_line(header, {h: h for h in header})]
    hostile: dict[int, str] = {}
    for what, i in plan:
        line = sum(x.count(b"\n") + 1 for x in out) + 1
        if what == "real":
            out.append(real[i])
            continue
        kind = kinds[i % len(kinds)] if i < 2 * len(kinds) else rng.choice(kinds)
        out.append(_hostile(kind, header, i, rng))
        hostile[line] = kind
    d = Path(tempfile.mkdtemp(dir=tmp))
    path = d / "ira_hostile.csv"
    path.write_bytes(b"\n".join(out) + b"\n")
    with Store.open(d / "s.duckdb") as store:
        f = ingest_paths(store, [path], mapping=MAPPING).files[0]
        assert f.error is None, f.error
        assert f.rows_read == f.distinct + f.rejected + f.duplicates
        assert _rows(store) == clean
        rejects = {ln: reason for ln, reason in store.con.execute("SELECT line, reason FROM rejects").fetchall()}
        for ln, kind in hostile.items():
            assert (ln in rejects) == (KINDS[kind] == "reject"), (ln, kind, rejects.get(ln))
        kept = dict(store.con.execute("SELECT message_id, text FROM messages WHERE message_id LIKE 'h%'").fetchall())
        assert len(kept) == sum(1 for k in hostile.values() if KINDS[k] == "keep")
        assert not any(c in t for t in kept.values() for c in "\x00\x07\x1b\ufeff\r")
        again = ingest_paths(store, [path], mapping=MAPPING).files[0]
        assert (again.added, again.updated) == (0, 0)


def test_real_ira_ads_survive_hostile_csv_lines(shared_data: Path, tmp_path: Path) -> None:
    text = (shared_data / "ira_ads" / "ira_ads.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], rows[1:N_REAL + 1]
    real = [_line(header, dict(zip(header, r, strict=True))) for r in body]
    clean_path = tmp_path / "clean.csv"
    clean_path.write_bytes(b"\n".join([_line(header, {h: h for h in header}), *real]) + b"\n")
    with Store.open(tmp_path / "clean.duckdb") as store:
        f = ingest_paths(store, [clean_path], mapping=MAPPING).files[0]
        assert f.rejected == 0 and f.distinct == N_REAL
        clean = _rows(store)
    _fuzz(header=header, real=real, clean=clean, tmp=tmp_path)
