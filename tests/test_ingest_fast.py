"""The column-wise Meta reader cut into pieces: the same rows, rejects, counts and store as the
row-wise reader, whatever the file holds; and the writer's bulk inserts stay all-or-nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bubblelens.ingest import ingest_paths, meta_fast, read_batch, writer
from bubblelens.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from bench_ingest import generate

ORDER = {"messages": ["message_id"], "deliveries": ["message_id", "kind", "age", "gender", "region", "share"]}


def _lines(path: Path, n: int, seed: int) -> list[str]:
    generate(path, n, seed=seed)
    return path.read_text(encoding="utf-8").splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def pieces(monkeypatch):
    """Small files take the column-wise path, cut into pieces of ~20 KB (a handful of ads each)."""
    monkeypatch.setattr(meta_fast, "MIN_LINES", 10)
    monkeypatch.setattr(meta_fast, "MIN_SPLIT_BYTES", 0)
    monkeypatch.setattr(meta_fast, "PIECE_BYTES", 20_000)
    monkeypatch.setattr(meta_fast, "STREAM_PIECE_BYTES", 20_000)


def _row_wise(path: Path, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(meta_fast, "MIN_LINES", 10**9)
        return read_batch(path)[1]


def _same(slow, fast) -> None:
    assert (fast.rows_read, fast.kept, len(fast.rejects)) == (slow.rows_read, slow.kept, len(slow.rejects))
    assert [(r.line, r.field, r.reason) for r in sorted(fast.rejects, key=lambda r: r.line)] == \
        [(r.line, r.field, r.reason) for r in sorted(slow.rejects, key=lambda r: r.line)]
    for table, key in ORDER.items():
        a = slow.to_arrow(table).drop_columns(["_row"]).sort_by([(k, "ascending") for k in key])
        b = fast.to_arrow(table).drop_columns(["_row"]).sort_by([(k, "ascending") for k in key])
        assert a.to_pylist() == b.to_pylist(), table


def test_pieces_give_the_row_wise_result(tmp_path, monkeypatch, pieces):
    """Bad rows in several pieces go row-wise with their own line numbers; many text parts,
    exponents and signs in shares, empty lists and nulls come out as the row-wise reader has them."""
    lines = _lines(tmp_path / "ads.jsonl", 400, seed=11)
    ads = [json.loads(x) for x in lines]
    ads[10]["delivery_by_region"][0]["percentage"] = "1.5"            # outside [0, 1]: rejected
    del ads[150]["id"]                                                  # no id: content id, row-wise
    ads[390]["impressions"] = {"lower_bound": "1,000", "upper_bound": "1999"}  # grouped: row-wise takes it
    ads[200]["ad_creative_bodies"] = [f"Partie {i}" for i in range(12)] + ["Partie 3"]
    ads[201]["demographic_distribution"][0]["percentage"] = "5e-2"
    ads[202]["demographic_distribution"][1]["percentage"] = "+0.25"    # row-wise: float() takes it
    ads[203]["demographic_distribution"][2]["percentage"] = " 0.25"
    ads[204]["delivery_by_region"][3]["percentage"] = "nan"
    ads[205]["ad_creative_link_titles"] = []
    ads[206]["languages"] = None
    ads[207]["delivery_by_region"] = []
    ads[208]["spend"] = {"lower_bound": "100"}                          # no upper bound: stays NULL
    ads[209]["ad_delivery_start_time"] = "2024-06-21T08:00:00+0200"
    ads[210]["ad_delivery_stop_time"] = "21/06/2024"                    # row-wise reads it
    ads[211]["ad_creative_bodies"] = ["  Espace\u00a0insécable  ", "Espace insécable", ""]
    path = _write(tmp_path / "ads.jsonl", [json.dumps(a, ensure_ascii=False) for a in ads])
    slow = _row_wise(path, monkeypatch)
    _, fast = read_batch(path)
    assert fast.arrow and len(meta_fast._pieces(path.read_bytes(), 2)) > 20
    _same(slow, fast)
    # shares outside [0, 1] ("1.5", "nan") leave those deliveries empty, not the ads (lines 11 and 205)
    assert not fast.rejects and fast.warnings == slow.warnings
    assert any(w.startswith("delivery_by_region: 2 value(s) unreadable, left empty (first: line 11,")
               for w in fast.warnings), fast.warnings


@pytest.mark.parametrize("change, fast_path", [
    (lambda a: a.update(eu_total_reach="12"), False),                            # a field it does not read
    (lambda a: a["impressions"].update(currency="EUR"), False),                  # unknown nested field
    (lambda a: a["demographic_distribution"][0].update(country="FR"), False),
    (lambda a: a.update(bylines=True), False),                                   # another JSON type
    (lambda a: a["impressions"].update(lower_bound=1000), False),                # a number among strings
    (lambda a: a.update(ad_creative_link_titles=["titre", None]), False),
])
def test_another_shape_gives_the_row_wise_result(tmp_path, monkeypatch, pieces, change, fast_path):
    lines = _lines(tmp_path / "ads.jsonl", 60, seed=12)
    for i in (5, 40):
        ad = json.loads(lines[i])
        change(ad)
        lines[i] = json.dumps(ad, ensure_ascii=False)
    path = _write(tmp_path / "ads.jsonl", lines)
    slow = _row_wise(path, monkeypatch)
    _, fast = read_batch(path)
    assert bool(fast.arrow) == fast_path
    _same(slow, fast)


def test_numbers_as_bounds_are_read_with_inferred_types(tmp_path, monkeypatch, pieces):
    ads = [json.loads(x) for x in _lines(tmp_path / "ads.jsonl", 60, seed=18)]
    for ad in ads:
        for key in ("impressions", "spend"):
            ad[key] = {k: int(v) for k, v in ad[key].items()}
    ads[7]["spend"]["upper_bound"] = -1  # the spend is left empty, the ad kept (a warning either way)
    path = _write(tmp_path / "ads.jsonl", [json.dumps(a, ensure_ascii=False) for a in ads])
    slow = _row_wise(path, monkeypatch)
    _, fast = read_batch(path)
    assert fast.arrow and not fast.rejects and fast.kept == 60
    assert fast.warnings == slow.warnings and fast.warnings[0].startswith("spend: 1 value(s) unreadable")
    _same(slow, fast)


@pytest.mark.parametrize("edit", ["blank line", "two objects on a line", "key twice", "pretty-printed"])
def test_line_numbers_never_slip(tmp_path, monkeypatch, pieces, edit):
    """Rows and lines must pair up one to one, else the file is read row-wise."""
    lines = _lines(tmp_path / "ads.jsonl", 60, seed=13)
    lines[45] = "{broken"
    if edit == "blank line":
        lines.insert(30, "")
    elif edit == "two objects on a line":
        lines[30] = lines[30] + " " + lines[31]
    elif edit == "key twice":
        lines[30] = lines[30][:-1] + ', "id": "twice"}'
    else:
        lines[30] = json.dumps(json.loads(lines[30]), indent=1)
    path = _write(tmp_path / "ads.jsonl", lines)
    slow = _row_wise(path, monkeypatch)
    _, fast = read_batch(path)
    assert not fast.arrow
    _same(slow, fast)
    broken = path.read_text(encoding="utf-8").split("\n").index("{broken") + 1
    assert broken in [r.line for r in fast.rejects]


def test_invalid_utf8_in_a_later_piece_rejects_that_line_only(tmp_path, pieces):
    lines = _lines(tmp_path / "ads.jsonl", 80, seed=14)
    data = ("\n".join(lines) + "\n").encode("utf-8")
    cut = data.rindex(b"S\xc3\xa9curit\xc3\xa9") if b"S\xc3\xa9curit\xc3\xa9" in data else data.rindex(b"\xc3\xa9")
    path = tmp_path / "ads.jsonl"
    path.write_bytes(data[:cut] + b"\xe9" + data[cut + 2:])  # one é in cp1252, near the end
    with pytest.warns(UserWarning, match="not valid UTF-8"):
        _, batch = read_batch(path)
    bad_line = data[:cut].count(b"\n") + 1
    assert not batch.arrow and (batch.rows_read, batch.kept) == (80, 79)
    assert [(r.line, r.field) for r in batch.rejects] == [(bad_line, "(encoding)")]
    assert "0xE9" in batch.rejects[0].reason


def _store_rows(store: Store) -> dict[str, list]:
    con = store.con
    return {
        "messages": con.execute("SELECT * FROM messages ORDER BY message_id").fetchall(),
        "deliveries": con.execute("SELECT * FROM deliveries ORDER BY ALL").fetchall(),
        "rejects": con.execute("SELECT line, field, reason FROM rejects ORDER BY ALL").fetchall(),
    }


def _report(f) -> tuple:
    return (f.rows_read, f.kept, f.rejected, f.added, f.updated, f.skipped, f.written)


def _both_ways(tmp_path, monkeypatch, files: list[Path], **kw) -> dict[str, tuple]:
    results = {}
    for mode in ("row-wise", "fast"):
        with monkeypatch.context() as m:
            if mode == "row-wise":
                m.setattr(meta_fast, "MIN_LINES", 10**9)
            with Store.open(tmp_path / f"{mode}.duckdb") as store:
                reports = []
                for p in files:
                    rep = ingest_paths(store, [p], **kw).files[0]
                    reports.append((rep.error, *_report(rep)))
                results[mode] = (reports, _store_rows(store), store.stats())
    return results


def test_the_store_and_counts_are_the_row_wise_ones(tmp_path, monkeypatch, pieces):
    """Ids repeated across pieces (the last line wins, with its deliveries), a newer export, and a
    re-ingest that adds nothing: the store and every count match the row-wise reader's."""
    monkeypatch.setattr(writer, "ROW_GROUP_SIZE", 1000)  # bulk inserts in several batches
    lines = _lines(tmp_path / "w1.jsonl", 300, seed=15)
    dup = json.loads(lines[250])
    dup["id"] = json.loads(lines[3])["id"]
    dup["delivery_by_region"] = dup["delivery_by_region"][:2]
    lines[250] = json.dumps(dup, ensure_ascii=False)
    bad = json.loads(lines[100])
    bad["spend"]["lower_bound"] = "-5"                       # left empty by the row-wise reader, ad kept
    lines[100] = json.dumps(bad, ensure_ascii=False)
    week1 = _write(tmp_path / "w1.jsonl", lines)
    newer = [json.loads(x) for x in lines[:150] if x.startswith("{")]
    for ad in newer[::3]:
        ad["impressions"]["upper_bound"] = str(int(ad["impressions"]["upper_bound"]) + 1)
        ad["demographic_distribution"] = ad["demographic_distribution"][:5]
    week2 = _write(tmp_path / "w2.jsonl", [json.dumps(a, ensure_ascii=False) for a in newer] + lines[280:])

    _, batch = read_batch(week1)
    assert batch.arrow  # the fast path takes this file
    results = _both_ways(tmp_path, monkeypatch, [week1, week2, week1])
    assert results["fast"] == results["row-wise"]
    reports, _, stats = results["fast"]
    assert reports[0][1:7] == (300, 300, 0, 299, 0, 1)  # (rows read, kept, rejected, added, ...)
    assert reports[2][4] == 0  # the re-ingest adds nothing
    assert stats["rejects"] == 0 and stats["messages"] == 299  # line 101's spend left empty, the ad kept


def test_a_failed_bulk_insert_leaves_the_store_and_settings_unchanged(tmp_path, monkeypatch, pieces):
    """A bulk insert failing mid-way, in the streamed path (one DuckDB thread) and in the whole-file
    path (a parallel insert in any order): the store and DuckDB's settings are as before."""
    path = _write(tmp_path / "ads.jsonl", _lines(tmp_path / "ads.jsonl", 200, seed=16))
    for streamed in (True, False):
        monkeypatch.setattr(writer, "ROW_GROUP_SIZE", 100)  # pieces of ~200 delivery rows: several inserts
        with Store.open(tmp_path / f"s{streamed}.duckdb") as store:
            ingest_paths(store, [_write(tmp_path / "first.jsonl", _lines(tmp_path / "first.jsonl", 20, seed=17))])
            before = (store.stats(), _store_rows(store))
            settings = "SELECT current_setting('preserve_insertion_order'), current_setting('threads')"
            as_set = store.con.execute(settings).fetchall()
            failing = _FailingConnection(store.con)
            with monkeypatch.context() as m:
                m.setattr(store, "con", failing)
                if not streamed:
                    m.setattr(meta_fast, "MIN_SPLIT_BYTES", 1 << 30)  # one piece: the whole-file way
                with pytest.raises(RuntimeError, match="disk full"):
                    ingest_paths(store, [path])
            marker = "SET threads = 1" if streamed else "SET preserve_insertion_order = false"
            assert marker in failing.statements
            assert (store.stats(), _store_rows(store)) == before
            assert store.con.execute(settings).fetchall() == as_set


class _FailingConnection:
    """The store's connection, failing the second bulk insert of deliveries (after one went in), or
    the first when it is a parallel one."""

    def __init__(self, con) -> None:
        self._con = con
        self.statements: list[str] = []

    def __getattr__(self, name):
        return getattr(self._con, name)

    def execute(self, sql, *args):
        self.statements.append(sql)
        if sql.startswith("INSERT INTO deliveries") and (
                self.statements[-2] == "SET preserve_insertion_order = false"
                or sum(s.startswith("INSERT INTO deliveries") for s in self.statements) == 2):
            raise RuntimeError("disk full")
        return self._con.execute(sql, *args)


def _spy_stream(monkeypatch) -> list[str]:
    """Records, per streamed file, whether the pieces went in as streamed or the file was redone."""
    calls: list[str] = []
    real = writer._write_stream

    def spy(con, batch):
        try:
            out = real(con, batch)
        except writer.StreamAborted:
            calls.append("aborted")
            raise
        calls.append("streamed")
        return out

    monkeypatch.setattr(writer, "_write_stream", spy)
    return calls


def _same_piece_pair(lines: list[str], i: int) -> int:
    """An index j ≥ i such that lines j and j + 1 fall in the same streamed piece of the file."""
    data = ("\n".join(lines) + "\n").encode("utf-8")
    cuts = [b for _, b in meta_fast._stream_pieces(data, meta_fast._cores())]
    ends = [len(("\n".join(lines[:k + 1]) + "\n").encode("utf-8")) for k in range(len(lines))]
    j = i
    while any(ends[j] <= c < ends[j + 1] for c in cuts):
        j += 1
    return j


@pytest.mark.parametrize("parsed", [False, True], ids=["piece by piece", "all at once"])
def test_streamed_pieces_give_the_row_wise_store_and_counts(tmp_path, monkeypatch, pieces, parsed):
    """Pieces stored while later ones are parsed (or, once all are parsed, the rest at once): a
    repeat inside a piece, rows left to the row-wise reader, a newer export updating in place, a
    re-ingest adding nothing; same store and counts as the row-wise reader."""
    monkeypatch.setattr(writer, "ROW_GROUP_SIZE", 500)
    monkeypatch.setattr(meta_fast.PieceStream, "parsed", lambda self: parsed)
    lines = _lines(tmp_path / "w1.jsonl", 300, seed=21)
    j = _same_piece_pair(lines, 120)
    dup = json.loads(lines[j + 1])
    dup["id"] = json.loads(lines[j])["id"]
    dup["delivery_by_region"] = dup["delivery_by_region"][:3]
    lines[j + 1] = json.dumps(dup, ensure_ascii=False)
    assert _same_piece_pair(lines, j) == j
    bad = json.loads(lines[40])
    bad["delivery_by_region"][0]["percentage"] = "1.5"                   # left empty, the ad kept
    lines[40] = json.dumps(bad, ensure_ascii=False)
    odd = json.loads(lines[260])
    odd["ad_delivery_stop_time"] = "30/06/2024"                          # the row-wise reader takes it
    lines[260] = json.dumps(odd, ensure_ascii=False)
    week1 = _write(tmp_path / "w1.jsonl", lines)
    newer = [json.loads(x) for x in lines[:200]]
    for ad in newer[::4]:
        ad["impressions"]["upper_bound"] = str(int(ad["impressions"]["upper_bound"]) + 1)
        ad["demographic_distribution"] = ad["demographic_distribution"][:4]
    fresh = [json.loads(x) for x in _lines(tmp_path / "new.jsonl", 60, seed=22)]
    for ad in fresh:
        ad["id"] = "9" + ad["id"]                                         # ads not in week 1
    week2 = _write(tmp_path / "w2.jsonl", [json.dumps(a, ensure_ascii=False) for a in fresh + newer])
    calls = _spy_stream(monkeypatch)
    results = _both_ways(tmp_path, monkeypatch, [week1, week2, week1, week1])
    assert calls == ["streamed"] * 4
    assert results["fast"] == results["row-wise"]
    reports, _, stats = results["fast"]
    assert reports[0][1:7] == (300, 300, 0, 299, 0, 1)
    assert reports[1][4:6] == (60, 49)  # week 2: 60 new ads; 48 changed (50 edited, one rejected, one repeat)
    assert reports[2][4] == 0 and reports[3][4:6] == (0, 0)  # re-ingests add nothing; the last changes nothing
    assert stats["rejects"] == 0 and stats["messages"] == 299 + 60  # line 41's shares left empty


def test_a_later_piece_of_another_shape_redoes_the_file(tmp_path, monkeypatch, pieces):
    """A field the column-wise path does not read, near the end: the pieces stored already are rolled
    back and the file is read the whole-file way (row-wise), with the row-wise result."""
    lines = _lines(tmp_path / "ads.jsonl", 200, seed=23)
    ad = json.loads(lines[190])
    ad["eu_total_reach"] = "1200"
    lines[190] = json.dumps(ad, ensure_ascii=False)
    path = _write(tmp_path / "ads.jsonl", lines)
    calls = _spy_stream(monkeypatch)
    results = _both_ways(tmp_path, monkeypatch, [path, path])
    assert calls == ["aborted", "aborted"]
    assert results["fast"] == results["row-wise"]


def test_strict_refuses_a_streamed_file_with_a_reject(tmp_path, monkeypatch, pieces):
    lines = _lines(tmp_path / "ads.jsonl", 200, seed=24)
    bad = json.loads(lines[150])
    bad["impressions"]["lower_bound"] = "-3"
    lines[150] = json.dumps(bad, ensure_ascii=False)
    path = _write(tmp_path / "ads.jsonl", lines)
    calls = _spy_stream(monkeypatch)
    with Store.open(tmp_path / "s.duckdb") as store:
        before = _store_rows(store), store.stats()["sources"]
        rep = ingest_paths(store, [path], strict=True).files[0]
        assert rep.error and "line 151" in rep.error and "--strict" in rep.error
        assert (_store_rows(store), store.stats()["sources"]) == before
    assert calls == ["streamed"]


def test_an_exception_mid_stream_leaves_the_store_unchanged(tmp_path, monkeypatch, pieces):
    import threading

    monkeypatch.setattr(meta_fast.PieceStream, "parsed", lambda self: False)  # piece by piece
    first = [json.loads(x) for x in _lines(tmp_path / "first.jsonl", 20, seed=25)]
    for ad in first:
        ad["id"] = "9" + ad["id"]  # other ads than the file's: its pieces go in one by one
    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_paths(store, [_write(tmp_path / "first.jsonl", [json.dumps(a) for a in first])])
        before = (store.stats(), _store_rows(store))
        real, calls = writer._insert, {"n": 0}

        def failing(con, table, tbl, **kw):
            calls["n"] += 1
            if calls["n"] == 6:  # the third piece's deliveries
                raise RuntimeError("disk full")
            return real(con, table, tbl, **kw)

        monkeypatch.setattr(writer, "_insert", failing)
        with pytest.raises(RuntimeError, match="disk full"):
            ingest_paths(store, [_write(tmp_path / "ads.jsonl", _lines(tmp_path / "ads.jsonl", 200, seed=26))])
        assert (store.stats(), _store_rows(store)) == before
    assert not [t for t in threading.enumerate() if t.name.startswith("bubblelens-piece")]


def test_latin_text_is_nfc_without_the_check():
    """Every character the byte-level shortcut lets through is NFC alone and after any of them (or
    ASCII): nothing composes with what precedes it. Others go to the full check."""
    import unicodedata

    allowed = [chr(c) for c in (*range(0x80, 0x100), *range(0x2002, 0x2040))]
    before = allowed + [chr(c) for c in range(0x20, 0x7F)]
    for ch in allowed:
        assert meta_fast._latin_or_punctuation(("a" + ch).encode("utf-8"))
        assert unicodedata.combining(ch) == 0
        assert all(unicodedata.is_normalized("NFC", b + ch) for b in before), hex(ord(ch))
    for text in ("e\u0301", "\u2000", "\u2001", "Ω\u2126", "20 \u20ac", "\u0105", "한"):
        assert not meta_fast._latin_or_punctuation(text.encode("utf-8")), text
