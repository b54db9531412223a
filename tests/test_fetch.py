"""`bubblelens fetch meta` against a local replay of Meta's ads_archive endpoint.

The server (tests/meta_replay.py, on 127.0.0.1) serves real recorded response pages
(`meta_ad_library_api/`, their real cursors and Meta's real error body) and real ads cut from the German
2024 pull (`meta_api_de_2024/`) paged with cursors built there, and injects the faults a month-long pull
meets. What must hold: every ad once, whatever happens (faults, SIGKILL at random moments, a window split
in two); the token nowhere on disk, in the store or in any output; every parameter as Meta documents it.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from meta_replay import ReplayServer, offset_of

from bubblelens.cli import main
from bubblelens.collect import FIELD_SETS, MANIFEST, MetaQuery, classify_reply, fetch_meta, redact_url
from bubblelens.collect.meta import ad_key, usage_from_headers
from bubblelens.errors import FetchError
from bubblelens.ingest import ingest_paths
from bubblelens.store import Store

REPO = Path(__file__).resolve().parent.parent
TOKEN = "EAAFakeTokenForTests9f3kQz7XwLpVt2"  # distinctive: found anywhere means it leaked
SINCE, UNTIL = date(2024, 1, 1), date(2024, 12, 31)


# ---------------------------------------------------------------------------------------------------------
# Fixtures: the real data and the replay server
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def de_ads(shared_data: Path) -> list[dict[str, Any]]:
    """The first 400 real ads of the German 2024 pull (every one with an id and a snapshot URL)."""
    out = []
    with (shared_data / "meta_api_de_2024" / "ads_archive_de_2024_part00.jsonl").open(encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line))
            if len(out) == 400:
                break
    return out


@pytest.fixture(scope="module")
def recorded(shared_data: Path) -> dict[str | None, bytes]:
    """Two real pages chained by their real cursors: the 2023 page (20 ads, `paging.next` with the token),
    then the 2019 page in the Graph API's exact bytes (1 ad without `id`), then the end."""
    d = shared_data / "meta_ad_library_api"
    p1 = (d / "ads_archive_page_2023_br_us_v14.json").read_bytes()
    p2 = (d / "ads_archive_page_2019_us_v5_raw.json").read_bytes()
    return {None: p1, json.loads(p1)["paging"]["cursors"]["after"]: p2,
            json.loads(p2)["paging"]["cursors"]["after"]: b'{"data":[]}'}


@pytest.fixture
def server(de_ads: list[dict[str, Any]]) -> Iterator[ReplayServer]:
    srv = ReplayServer(TOKEN, ads=de_ads, slow_s=1.0).start()
    yield srv
    srv.stop()


def page_ids(ads: list[dict[str, Any]], n: int) -> tuple[str, ...]:
    return tuple(sorted({str(a["page_id"]) for a in ads}))[:n]


def query(ids: tuple[str, ...], **kw: Any) -> MetaQuery:
    return MetaQuery(countries=("DE",), since=kw.pop("since", SINCE), until=kw.pop("until", UNTIL),
                     page_ids=ids, **kw)


class Sleeps(list[float]):
    """An injected sleep: records the waits asked for, sleeps none of them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def fetch(srv: ReplayServer, out: Path, q: MetaQuery, **kw: Any) -> Any:
    kw.setdefault("sleep", Sleeps())
    kw.setdefault("limit", 25)
    kw.setdefault("max_wait", 5.0)
    kw.setdefault("rng", random.Random(0))
    return fetch_meta(q, out, token=kw.pop("token", TOKEN), api_url=srv.url, **kw)


def ads_on_disk(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for p in sorted(out.glob("page-*.jsonl"))
            for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def keys_on_disk(out: Path) -> list[str]:
    return [ad_key(a) for a in ads_on_disk(out)]


def expected_keys(srv: ReplayServer, ids: tuple[str, ...], since: date = SINCE, until: date = UNTIL) -> set[str]:
    """What Meta holds for the query: the library's ads of those pages delivered in the window."""
    out: set[str] = set()
    for i in range(0, len(ids), 10):
        q = {"search_page_ids": json.dumps(list(ids[i:i + 10])), "ad_delivery_date_min": since.isoformat(),
             "ad_delivery_date_max": until.isoformat()}
        out |= {str(a["id"]) for a in srv.select(q)}
    return out


def assert_no_token(out: Path, *texts: str, db: Path | None = None) -> None:
    for p in out.rglob("*"):
        if p.is_file():
            assert TOKEN.encode() not in p.read_bytes(), f"token written to {p.name}"
            assert b"access_token=" not in p.read_bytes(), f"access_token= left in {p.name}"
    for t in texts:
        assert TOKEN not in t
    if db is not None:
        assert TOKEN.encode() not in db.read_bytes()
        with Store.open(db, read_only=True) as store:
            tables = [r[0] for r in store.con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()]
            for t in tables:
                cols = [r[0] for r in store.con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                    "AND data_type = 'VARCHAR'", [t]).fetchall()]
                for c in cols:
                    n = store.con.execute(f'SELECT count(*) FROM "{t}" WHERE "{c}" LIKE ?',
                                          [f"%{TOKEN}%"]).fetchone()[0]
                    assert n == 0, f"token stored in {t}.{c}"


# ---------------------------------------------------------------------------------------------------------
# Pure parts: headers, replies, URLs
# ---------------------------------------------------------------------------------------------------------
def test_usage_headers_give_the_wait_meta_asks_for() -> None:
    buc = {"act_1": [{"type": "ads_archive", "call_count": 97, "total_cputime": 10, "total_time": 20,
                      "estimated_time_to_regain_access": 3}]}
    usage, wait = usage_from_headers({"X-Business-Use-Case-Usage": json.dumps(buc)})
    assert (usage, wait) == (97, 180)  # minutes → seconds
    usage, wait = usage_from_headers({"x-app-usage": json.dumps({"call_count": 12, "total_time": 40,
                                                                 "total_cputime": 5})})
    assert (usage, wait) == (40, None)  # usage without a wait: none is invented
    assert usage_from_headers({"x-ad-account-usage": '{"acc_id_util_pct": 9.5, "reset_time_duration": 45}'}) \
        == (9.5, 45)
    assert usage_from_headers({"Retry-After": "30", "x-app-usage": "not json"}) == (None, 30)


def test_replies_are_classified_by_graph_error_code(shared_data: Path) -> None:
    def err(code: int, msg: str = "x", **kw: Any) -> bytes:
        return json.dumps({"error": {"message": msg, "type": "OAuthException", "code": code, **kw}}).encode()

    assert classify_reply(400, {}, err(190, error_subcode=463)).kind == "token"
    for code in (4, 17, 32, 613, 80004):
        assert classify_reply(400, {}, err(code)).kind == "rate_limit"
    assert classify_reply(500, {}, err(1, "Please reduce the amount of data you're asking for")).kind == "reduce"
    assert classify_reply(500, {}, err(2, is_transient=True)).kind == "transient"
    assert classify_reply(502, {}, b"<html>Bad Gateway</html>").kind == "transient"
    assert classify_reply(200, {}, b'{"data": [{"id": "1"}], "pag').kind == "not_json"
    assert classify_reply(429, {"Retry-After": "5"}, b"").wait == 5
    assert classify_reply(404, {}, b"Not Found").kind == classify_reply(301, {}, b"").kind == "refused"
    real = (shared_data / "meta_ad_library_api" / "ads_archive_error_2023.json").read_bytes()
    for body in (real, json.dumps({"error": json.loads(real)}).encode()):  # bare, and as on the wire
        r = classify_reply(400, {}, body)
        assert r.kind == "refused" and r.code == 100 and r.subcode == 2334019
        assert "cannot be both empty" in r.message


def test_redact_url_cuts_the_token_wherever_it_stands() -> None:
    assert redact_url(f"https://x/render_ad/?id=1&access_token={TOKEN}") == "https://x/render_ad/?id=1"
    assert redact_url(f"https://x/?access_token={TOKEN}&limit=2&after=Q") == "https://x/?limit=2&after=Q"
    assert redact_url(f"https://x/?access_token={TOKEN}") == "https://x/"
    assert redact_url("https://x/?id=1&access_token&x=2") == "https://x/?id=1&x=2"  # blanked, still cut
    assert redact_url("https://x/?access_tokens=1") == "https://x/?access_tokens=1"


def test_a_query_meta_would_refuse_is_refused_before_any_call() -> None:
    with pytest.raises(FetchError, match="search-terms or --page-ids"):
        MetaQuery(countries=("FR",), since=SINCE, until=UNTIL)
    with pytest.raises(FetchError, match="two-letter"):
        MetaQuery(countries=("France",), since=SINCE, until=UNTIL, search_terms="x")
    with pytest.raises(FetchError, match="before"):
        MetaQuery(countries=("FR",), since=UNTIL, until=SINCE, search_terms="x")


# ---------------------------------------------------------------------------------------------------------
# The query on the wire
# ---------------------------------------------------------------------------------------------------------
def test_the_server_receives_every_parameter_as_meta_documents_it(server: ReplayServer, tmp_path: Path,
                                                                  de_ads: list[dict[str, Any]],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # httpx logs every request URL: the token must not reach a log
    ids = page_ids(de_ads, 12)
    fetch(server, tmp_path / "o", query(ids, languages=("de",), fields=FIELD_SETS["political"]), limit=40)
    assert "HTTP Request: GET" in caplog.text and TOKEN not in caplog.text
    reqs = server.data_requests()
    first = reqs[0]
    assert json.loads(first["ad_reached_countries"]) == ["DE"]
    assert (first["ad_delivery_date_min"], first["ad_delivery_date_max"]) == ("2024-01-01", "2024-12-31")
    assert first["ad_type"] == "POLITICAL_AND_ISSUE_ADS" and first["ad_active_status"] == "ALL"
    assert first["fields"].split(",") == list(FIELD_SETS["political"])
    assert json.loads(first["languages"]) == ["de"]
    assert first["limit"] == "40" and first["access_token"] == TOKEN and "after" not in first
    # at most 10 page ids a call (Meta's limit): 12 ids → two slices, every id asked for once
    asked = [json.loads(r["search_page_ids"]) for r in reqs if "after" not in r]
    assert [len(a) for a in asked] == [10, 2] and sorted(i for a in asked for i in a) == list(ids)
    # every next request carries the cursor of the page before it
    for prev, nxt in itertools.pairwise(reqs):
        if "after" in nxt:
            assert nxt["search_page_ids"] == prev["search_page_ids"]
            assert offset_of(nxt["after"]) == offset_of(prev.get("after")) + int(prev["limit"])


def test_recorded_pages_are_followed_by_their_real_cursors_and_stored_without_the_token(
        recorded: dict[str | None, bytes], tmp_path: Path) -> None:
    srv = ReplayServer(TOKEN, recorded=recorded).start()
    try:
        q = MetaQuery(countries=("BR", "US"), since=date(2023, 9, 1), until=date(2023, 9, 30),
                      search_terms="python", ad_type="all")
        s = fetch(srv, tmp_path / "o", q)
        reqs = srv.data_requests()
    finally:
        srv.stop()
    assert reqs[0]["search_terms"] == "python" and json.loads(reqs[0]["ad_reached_countries"]) == ["BR", "US"]
    assert reqs[0]["ad_type"] == "ALL"
    assert [r.get("after") for r in reqs] == [None, *list(recorded)[1:]]  # the real cursors, in order
    ads = ads_on_disk(tmp_path / "o")
    assert len(ads) == s.ads == 21 and len(set(keys_on_disk(tmp_path / "o"))) == 21
    assert all("access_token" not in a.get("ad_snapshot_url", "") for a in ads)
    assert_no_token(tmp_path / "o")
    # what `bubblelens ingest --format meta` reads, every ad kept (the 2019 one by its snapshot id)
    with Store.open(tmp_path / "s.duckdb") as store:
        rep = ingest_paths(store, sorted((tmp_path / "o").glob("page-*.jsonl")), format="meta")
        assert (rep.kept, rep.rejected) == (21, 0)


# ---------------------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------------------
def test_every_fault_is_survived_and_every_ad_fetched_once(server: ReplayServer, tmp_path: Path,
                                                           de_ads: list[dict[str, Any]]) -> None:
    ids = page_ids(de_ads, 8)
    server.faults.extend(["rate_buc", "500", "drop", "truncated", "slow", "rate_app", "rate_429", "502html"])
    sleeps, events = Sleeps(), []
    s = fetch(server, tmp_path / "o", query(ids), sleep=sleeps, max_wait=1000.0, timeout=0.3,
              on_event=lambda kind, text, p: events.append((kind, text, p)))
    keys = keys_on_disk(tmp_path / "o")
    assert len(keys) == len(set(keys)) and set(keys) == expected_keys(server, ids)
    m = json.loads((tmp_path / "o" / MANIFEST).read_text())
    assert m["status"] == "done" and m["ads"] == len(keys)
    assert m["errors_by_kind"] == {"rate_limit": 3, "transient": 2, "connection": 1, "not_json": 1,
                                   "timeout": 1}
    # rate limits wait as told: 2 min from x-business-use-case-usage, 7 s from Retry-After; where
    # x-app-usage gives usage but no time, a doubling wait (60 s, then 120 s: the 2nd of this page)
    waits = [text for kind, text, _ in events if kind == "wait" and "rate limited" in text]
    assert "(code 613), Meta asks 2 min 00 s, usage 100%" in waits[0]
    assert "(code 4), no wait given (doubling), usage 100%" in waits[1] and "Meta asks 7.0 s" in waits[2]
    rate = [sleeps[i] for i, (k, t, _) in enumerate(e for e in events if e[0] == "wait") if "rate" in t]
    assert rate == [120.0, 120.0, 7.0]
    # 5xx, a dropped connection, a truncated body, a timeout: backoff 2**n · U(0.5, 1) for the n-th try
    backoffs = [sleeps[i] for i, (k, t, _) in enumerate(e for e in events if e[0] == "wait") if "backoff" in t]
    assert len(backoffs) == 5 and all(2 ** n / 2 <= b <= 2 ** n for n, b in enumerate(backoffs, 1))
    assert s.retries == 5 and s.waits == 8
    assert any(p.usage is not None for _, _, p in events)  # the progress line shows the rate-limit state
    assert_no_token(tmp_path / "o", *(t for _, t, _ in events))


def test_every_wait_is_bounded_by_max_wait(server: ReplayServer, tmp_path: Path,
                                           de_ads: list[dict[str, Any]]) -> None:
    server.faults.extend(["rate_buc", "rate_429", "500"])
    sleeps = Sleeps()
    fetch(server, tmp_path / "o", query(page_ids(de_ads, 3)), sleep=sleeps, max_wait=0.25)
    assert len(sleeps) == 3 and max(sleeps) <= 0.25


def test_an_expired_token_stops_at_once_and_the_rerun_resumes(server: ReplayServer, tmp_path: Path,
                                                              de_ads: list[dict[str, Any]]) -> None:
    ids = page_ids(de_ads, 6)
    server.faults.extend([None, None, "token"])  # the third request fails
    with pytest.raises(FetchError) as e:
        fetch(server, tmp_path / "o", query(ids))
    msg = str(e.value)
    assert "page 3" in msg and "access token" in msg and "code 190/463" in msg and "re-run" in msg
    assert TOKEN not in msg
    assert len(server.data_requests()) == 3  # no retry of a refused token
    m = json.loads((tmp_path / "o" / MANIFEST).read_text())
    assert m["status"] == "stopped" and m["pages"] == 2 and TOKEN not in json.dumps(m)
    s = fetch(server, tmp_path / "o", query(ids))  # a new token, the same command
    keys = keys_on_disk(tmp_path / "o")
    assert s.resumed and len(keys) == len(set(keys)) and set(keys) == expected_keys(server, ids)
    assert server.data_requests()[3].get("after") == server.data_requests()[2].get("after")


def test_a_refused_query_reports_metas_own_words(shared_data: Path, server: ReplayServer, tmp_path: Path,
                                                 de_ads: list[dict[str, Any]]) -> None:
    server.error_body = json.loads((shared_data / "meta_ad_library_api" / "ads_archive_error_2023.json")
                                   .read_text())
    server.faults.append("error_body")
    with pytest.raises(FetchError, match=r"refused the query \(code 100/2334019\).*cannot be both empty"):
        fetch(server, tmp_path / "o", query(page_ids(de_ads, 2)))
    # an account whose identity Meta has not confirmed: told where to confirm it
    server.error_body = {"message": "Application does not have permission for this action", "type":
                         "OAuthException", "code": 10, "error_subcode": 2332002}
    server.faults.append("error_body")
    with pytest.raises(FetchError, match=r"code 10/2332002.*confirm your identity at facebook.com/ID"):
        fetch(server, tmp_path / "o", query(page_ids(de_ads, 2)))
    assert len(server.data_requests()) == 2  # neither is retried


def test_a_body_that_is_never_json_is_reported_with_its_page_number(server: ReplayServer, tmp_path: Path,
                                                                    de_ads: list[dict[str, Any]]) -> None:
    server.faults.extend([None, *["truncated"] * 6])
    with pytest.raises(FetchError, match=r"page 2 of 2024-01-01..2024-12-31: gave up after 6 tries "
                                         r"\(the reply was never JSON\)"):
        fetch(server, tmp_path / "o", query(page_ids(de_ads, 8)))
    ads = ads_on_disk(tmp_path / "o")
    assert len(ads) == 25  # page 1 only: nothing of the broken page was taken as data


def test_reduce_the_amount_of_data_shrinks_the_page_then_splits_the_window(server: ReplayServer,
                                                                           tmp_path: Path,
                                                                           de_ads: list[dict[str, Any]]) -> None:
    ids = page_ids(de_ads, 10)
    since, until = date(2024, 5, 1), date(2024, 6, 30)
    server.reduce_if_limit_over = 60
    server.reduce_if_days_over = 20
    events: list[tuple[str, str]] = []
    s = fetch(server, tmp_path / "o", query(ids, since=since, until=until), limit=200,
              on_event=lambda kind, text, p: events.append((kind, text)))
    notes = [t for k, t in events if k == "notice"]
    assert notes[0].endswith("--limit 200 → 100") and any("--limit 100 → 50" in n for n in notes)
    assert any("window 2024-05-01..2024-06-30 split into 2024-05-01..2024-05-30 and 2024-05-31..2024-06-30"
               in n for n in notes)
    limits = {int(r["limit"]) for r in server.data_requests()}
    assert min(limits) == 10 and s.splits >= 2
    windows = {(r["ad_delivery_date_min"], r["ad_delivery_date_max"]) for r in server.data_requests()}
    assert ("2024-05-01", "2024-05-15") in windows  # 61 days → 30 + 31 → 15 + 15 + 15 + 16
    keys = keys_on_disk(tmp_path / "o")
    # an ad delivered across two halves comes twice from the API and is written once
    assert len(keys) == len(set(keys)) and set(keys) == expected_keys(server, ids, since, until)
    assert s.duplicates > 0
    m = json.loads((tmp_path / "o" / MANIFEST).read_text())
    assert m["limit"] == {"asked": 200, "now": 10} and any(sl["split_into"] for sl in m["slices"])


# ---------------------------------------------------------------------------------------------------------
# Resume
# ---------------------------------------------------------------------------------------------------------
def test_a_different_query_on_the_same_folder_is_refused(server: ReplayServer, tmp_path: Path,
                                                         de_ads: list[dict[str, Any]]) -> None:
    ids = page_ids(de_ads, 3)
    fetch(server, tmp_path / "o", query(ids))
    with pytest.raises(FetchError, match=r"holds a different query \(differs in: ad_delivery_date_max\)"):
        fetch(server, tmp_path / "o", query(ids, until=date(2024, 6, 30)))
    s = fetch(server, tmp_path / "o", query(ids), limit=50)  # the same query resumes (a new --limit is fine)
    assert s.new_ads == 0 and s.requests == 0


def test_a_page_written_just_before_a_kill_is_not_duplicated(server: ReplayServer, tmp_path: Path,
                                                             de_ads: list[dict[str, Any]]) -> None:
    """The page file is renamed into place before the manifest records its cursor: kill between the two
    (here: the manifest of two pages earlier put back) and the resumed fetch skips what is on disk."""
    ids = page_ids(de_ads, 8)
    out = tmp_path / "o"
    saved: list[bytes] = []

    def keep(kind: str, text: str, p: Any) -> None:
        if kind == "page" and p.pages == 2:
            saved.append((out / MANIFEST).read_bytes())

    fetch(server, out, query(ids), on_event=keep)
    full = keys_on_disk(out)
    (out / MANIFEST).write_bytes(saved[0])
    (out / ".tmp-page-000099.jsonl").write_text('{"id": "half a li')  # a kill in the middle of a write
    s = fetch(server, out, query(ids))
    assert s.resumed and s.new_ads == 0 and s.duplicates > 0
    assert keys_on_disk(out) == full and not list(out.glob(".tmp-*"))


def _cli(args: list[str], env: dict[str, str]) -> list[str]:
    return [sys.executable, "-c", "import sys; from bubblelens.cli import main; sys.exit(main())", *args]


@pytest.mark.slow  # ~11 s: five processes start (the CLI imports every stage)
def test_sigkill_at_random_moments_then_resume_gives_the_same_ads_once_and_no_token_anywhere(
        server: ReplayServer, tmp_path: Path, de_ads: list[dict[str, Any]]) -> None:
    ids = page_ids(de_ads, 30)
    want = expected_keys(server, ids)
    fetch(server, tmp_path / "whole", query(ids), limit=10)  # uninterrupted, for comparison
    whole = keys_on_disk(tmp_path / "whole")
    assert set(whole) == want and len(whole) == len(want)

    server.delay = 0.02  # ~40 pages at 10 ads: long enough to be killed in the middle
    out, db = tmp_path / "killed", tmp_path / "store.duckdb"
    env = {**os.environ, "META_ACCESS_TOKEN": TOKEN, "PYTHONPATH": str(REPO)}
    args = ["fetch", "meta", "--country", "DE", "--since", "2024-01-01", "--until", "2024-12-31",
            "--page-ids", ",".join(ids), "--out", str(out), "--api-url", server.url, "--limit", "10",
            "--max-wait", "0.05", "--ingest", "--db", str(db)]
    rng = random.Random(20240609)
    outputs: list[str] = []
    kills = 0
    for _ in range(12):
        n0 = len(server.data_requests())
        proc = subprocess.Popen(_cli(args, env), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=tmp_path)
        if kills < 4:  # let it reach the API, then kill it at a random moment
            t_end = time.monotonic() + 30
            while len(server.data_requests()) == n0 and proc.poll() is None and time.monotonic() < t_end:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.4))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        so, se = proc.communicate(timeout=60)
        outputs += [so, se]
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, se
    assert kills >= 3 and proc.returncode == 0
    keys = keys_on_disk(out)
    assert len(keys) == len(set(keys)) and set(keys) == set(whole)
    m = json.loads((out / MANIFEST).read_text())
    assert m["status"] == "done" and m["ads"] == len(keys)
    assert [r["status"] for r in m["runs"]] == ["killed"] * kills + ["done"]
    assert sum(r.get("new_ads", 0) for r in m["runs"]) <= len(keys)  # a killed run's entry stops at its last page
    with Store.open(db, read_only=True) as store:  # streamed into the store as pages came: each ad once
        n = store.con.execute("SELECT count(*), count(DISTINCT message_id) FROM messages").fetchone()
    assert n == (len(keys), len(keys))
    assert_no_token(out, *outputs, db=db)


# ---------------------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------------------
def test_the_token_comes_only_from_the_environment_or_a_file(server: ReplayServer, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["fetch", "meta", "--country", "DE", "--since", "2024-01-01", "--until", "2024-01-31",
            "--search-terms", "Wahl", "--out", str(tmp_path / "o"), "--api-url", server.url]
    r = runner.invoke(main, base, env={"META_ACCESS_TOKEN": ""})
    assert r.exit_code == 2 and "set $META_ACCESS_TOKEN or give --token-file" in r.output
    r = runner.invoke(main, [*base, "--token", TOKEN])
    assert r.exit_code == 2 and "No such option" in r.output
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "token.txt").write_text(TOKEN)
    r = runner.invoke(main, [*base, "--token-file", str(tmp_path / "o" / "token.txt")])
    assert r.exit_code == 2 and "must not lie inside --out" in r.output
    (tmp_path / "token.txt").write_text(TOKEN + "\n")
    r = runner.invoke(main, [*base, "--token-file", str(tmp_path / "token.txt")], env={"META_ACCESS_TOKEN": ""})
    assert r.exit_code == 0, r.output
    assert server.data_requests()[-1]["access_token"] == TOKEN and TOKEN not in r.output


def test_fetch_ingest_streams_into_the_store_and_ingesting_again_adds_nothing(
        server: ReplayServer, tmp_path: Path, de_ads: list[dict[str, Any]]) -> None:
    ids = page_ids(de_ads, 8)
    runner = CliRunner()
    db, out = tmp_path / "s.duckdb", tmp_path / "o"
    args = ["fetch", "meta", "--country", "DE", "--since", "2024-01-01", "--until", "2024-12-31",
            "--page-ids", ",".join(ids), "--out", str(out), "--api-url", server.url, "--limit", "30",
            "--ingest", "--db", str(db)]
    r = runner.invoke(main, args, env={"META_ACCESS_TOKEN": TOKEN})
    assert r.exit_code == 0, r.output
    n = len(expected_keys(server, ids))
    assert f"fetched: {n:,} new ads" in r.output and f"store {db}: {n:,} messages" in r.output
    assert " ads · " in r.output and "window 2024-01-01..2024-12-31" in r.output  # the progress line
    with Store.open(db) as store:
        assert store.stats()["messages"] == n
        run = store.con.execute("SELECT stage, status, params FROM runs").fetchall()
        assert [(s, st) for s, st, _ in run] == [("ingest", "ok")] and TOKEN not in run[0][2]
        again = ingest_paths(store, sorted(out.glob("page-*.jsonl")), format="meta")
        assert again.kept == n and sum(f.added for f in again.files) == 0
        assert store.stats()["messages"] == n
    r = runner.invoke(main, args, env={"META_ACCESS_TOKEN": TOKEN})  # re-running a finished fetch: nothing new
    assert r.exit_code == 0 and "resumed: 0 new ads" in r.output
    assert_no_token(out, r.output, db=db)


def test_page_ids_come_from_a_file_and_a_bad_line_is_named(server: ReplayServer, tmp_path: Path,
                                                          de_ads: list[dict[str, Any]]) -> None:
    ids = page_ids(de_ads, 3)
    f = tmp_path / "pages.txt"
    f.write_text(f"# the advertisers\n{ids[0]}, {ids[1]}\n{ids[2]}  # last one\n")
    base = ["fetch", "meta", "--country", "DE", "--since", "2024-01-01", "--until", "2024-12-31",
            "--out", str(tmp_path / "o"), "--api-url", server.url, "--page-ids", str(f)]
    r = CliRunner().invoke(main, base, env={"META_ACCESS_TOKEN": TOKEN})
    assert r.exit_code == 0, r.output
    assert json.loads(server.data_requests()[0]["search_page_ids"]) == list(ids)
    f.write_text(f"{ids[0]}\nnot-an-id\n")
    r = CliRunner().invoke(main, [*base[:-1], str(f)], env={"META_ACCESS_TOKEN": TOKEN})
    assert r.exit_code == 2 and f"{f}, line 2: 'not-an-id' is not a page id" in r.output
