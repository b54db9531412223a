"""Pull Meta's Ad Library API (Graph API ``ads_archive``) into JSON Lines, resumably and politely.

The query is cut into *slices* (at most 10 page ids each, as Meta allows, and a date window) that are
paged with Meta's ``after`` cursors. Every page is written atomically as ``DIR/page-NNNNNN.jsonl`` (one ad
a line, Meta's own field names, ``access_token`` cut out of every URL) before ``DIR/fetch.json`` records
the cursor after it, so a fetch killed at any moment resumes without losing or repeating an ad.

Faults, as Meta documents them:

- rate limiting (Graph error codes 4, 17, 32, 613, 80000–80014, or HTTP 429): wait as the headers say —
  ``estimated_time_to_regain_access`` (minutes) in ``x-business-use-case-usage`` / ``x-app-usage``,
  ``reset_time_duration`` (seconds) in ``x-ad-account-usage``, ``Retry-After`` — else a doubling wait;
  every wait is bounded by ``max_wait``;
- 5xx, transient Graph errors, timeouts, dropped connections and bodies that are not JSON: retried with
  exponential backoff and jitter (``min(max_wait, 2**n) * U(0.5, 1)`` seconds), at most ``max_tries``
  times a page, then the fetch stops and says which page;
- an invalid or expired token (code 190): stops at once and says what to do;
- "reduce the amount of data" (code 1): halve the page size down to :data:`MIN_LIMIT`, then split the
  slice's date window in two.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from ..errors import FetchError
from .manifest import (
    Manifest,
    Slice,
    atomic_write,
    iter_page_files,
    page_path,
    read_page_ids,
    remove_partial_files,
    utc_now,
)

__all__ = ["AD_TYPES", "API_VERSION_CHOSEN_ON", "DEFAULT_API_URL", "DEFAULT_API_VERSION", "DEFAULT_LIMIT",
           "FIELD_SETS", "FetchSummary", "MetaFetcher", "MetaQuery", "Progress", "Reply", "ad_key",
           "classify_reply", "redact_url", "usage_from_headers"]

DEFAULT_API_URL = "https://graph.facebook.com"
#: The Graph API version used when none is asked for: the newest one on the day it was chosen
#: (:data:`API_VERSION_CHOSEN_ON`), per Meta's changelog (v27.0 was introduced on 2026-11-04; Meta keeps a
#: version callable for about two years). ``--api-version`` overrides it.
DEFAULT_API_VERSION = "v27.0"
API_VERSION_CHOSEN_ON = "2026-12-07"
DEFAULT_LIMIT = 200
#: The page size is never shrunk below this; past it, the date window is split instead.
MIN_LIMIT = 10
#: Meta accepts up to 10 ids in ``search_page_ids``.
PAGE_IDS_PER_CALL = 10

_COMMON = ("id", "ad_creation_time", "ad_creative_bodies", "ad_creative_link_captions",
           "ad_creative_link_descriptions", "ad_creative_link_titles", "ad_delivery_start_time",
           "ad_delivery_stop_time", "ad_snapshot_url", "languages", "page_id", "page_name",
           "publisher_platforms")
#: The field sets of ``--fields``: ``political`` (spend, impressions, delivery breakdowns: political and
#: issue ads, worldwide), ``dsa`` (the EU Digital Services Act transparency fields: any ad delivered in
#: the EU), ``all`` (both).
FIELD_SETS: dict[str, tuple[str, ...]] = {
    "political": (*_COMMON, "bylines", "currency", "delivery_by_region", "demographic_distribution",
                  "estimated_audience_size", "impressions", "spend"),
    "dsa": (*_COMMON, "age_country_gender_reach_breakdown", "beneficiary_payers", "eu_total_reach",
            "target_ages", "target_gender", "target_locations"),
}
FIELD_SETS["all"] = tuple(dict.fromkeys(FIELD_SETS["political"] + FIELD_SETS["dsa"]))
AD_TYPES = {"political": "POLITICAL_AND_ISSUE_ADS", "all": "ALL"}

RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
TOKEN_CODES = frozenset({102, 190})
TRANSIENT_CODES = frozenset({1, 2})
_REDUCE = "reduce the amount of data"
_IDENTITY_SUBCODES = {2332002: "confirm your identity at facebook.com/ID and accept the Ad Library API "
                               "terms at facebook.com/ads/library/api (docs/fetch.md)"}
_TOKEN_IN_URL = re.compile(r"([?&])access_token(?:=[^&#\s\"']*)?(?=[&#\s\"']|$)&?")
_ID_IN_URL = re.compile(r"[?&]id=(\d+)")
_COUNTRY = re.compile(r"^(?:[A-Z]{2}|ALL)$")
_VERSION = re.compile(r"^v\d+\.\d+$")
_FIELD = re.compile(r"^[a-z_]+(?:\{[a-z_,]+\})?$")
_LANG = re.compile(r"^[a-z]{2,3}$")
_PAGE_ID = re.compile(r"^\d+$")


# ---------------------------------------------------------------------------------------------------------
# The query
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetaQuery:
    """What to ask ``ads_archive`` for. ``fields`` is a field-set name or a list of Meta field names."""

    countries: tuple[str, ...]
    since: date
    until: date
    search_terms: str | None = None
    page_ids: tuple[str, ...] = ()
    ad_type: str = "political"
    fields: tuple[str, ...] = FIELD_SETS["all"]
    languages: tuple[str, ...] = ()
    ad_active_status: str = "ALL"

    def __post_init__(self) -> None:
        countries = tuple(dict.fromkeys(c.strip().upper() for c in self.countries if c.strip()))
        bad = [c for c in countries if not _COUNTRY.match(c)]
        if not countries or bad:
            raise FetchError(f"--country wants ISO 3166 two-letter codes (FR, BE, …) or ALL; got "
                             f"{', '.join(bad) or 'none'}")
        if self.until < self.since:
            raise FetchError(f"--until {self.until} is before --since {self.since}")
        if self.ad_type not in AD_TYPES:
            raise FetchError(f"--ad-type must be one of {', '.join(AD_TYPES)}, not {self.ad_type!r}")
        if not self.search_terms and not self.page_ids:
            raise FetchError("give --search-terms or --page-ids: Meta refuses a query with neither "
                             "(Graph error 100/2334019)")
        bad_ids = [p for p in self.page_ids if not _PAGE_ID.match(p)]
        if bad_ids:
            raise FetchError(f"page ids are numbers; not: {', '.join(bad_ids[:5])}")
        flds = tuple(dict.fromkeys(("id", *self.fields)))  # the id is what resume and dedup stand on
        bad_f = [f for f in flds if not _FIELD.match(f)]
        if bad_f:
            raise FetchError(f"not a Meta field name: {', '.join(bad_f[:5])} (see docs/fetch.md)")
        langs = tuple(x.strip().lower() for x in self.languages if x.strip())
        bad_l = [x for x in langs if not _LANG.match(x)]
        if bad_l:
            raise FetchError(f"--languages wants ISO 639-1 codes (fr, de, …); not: {', '.join(bad_l)}")
        object.__setattr__(self, "countries", countries)
        object.__setattr__(self, "page_ids", tuple(dict.fromkeys(self.page_ids)))
        object.__setattr__(self, "fields", flds)
        object.__setattr__(self, "languages", langs)

    def identity(self) -> dict[str, Any]:
        """What makes two fetches the same one (a folder resumes only the query it was started with)."""
        return {"ad_reached_countries": list(self.countries), "ad_delivery_date_min": self.since.isoformat(),
                "ad_delivery_date_max": self.until.isoformat(), "search_terms": self.search_terms,
                "search_page_ids": list(self.page_ids), "ad_type": AD_TYPES[self.ad_type],
                "fields": list(self.fields), "languages": list(self.languages),
                "ad_active_status": self.ad_active_status}

    def slices(self) -> list[Slice]:
        """The whole window, once per group of at most :data:`PAGE_IDS_PER_CALL` page ids."""
        groups = [list(self.page_ids[i:i + PAGE_IDS_PER_CALL])
                  for i in range(0, len(self.page_ids), PAGE_IDS_PER_CALL)] or [[]]
        return [Slice(key=f"s{i}", since=self.since.isoformat(), until=self.until.isoformat(), page_ids=g)
                for i, g in enumerate(groups)]

    def params(self, sl: Slice, *, limit: int, after: str | None) -> dict[str, str]:
        """The query string of one request, as Meta documents each parameter (token not included):
        lists are JSON arrays (``ad_reached_countries=["FR","BE"]``), ``fields`` is comma-separated."""
        p = {"ad_reached_countries": _json_list(self.countries), "ad_delivery_date_min": sl.since,
             "ad_delivery_date_max": sl.until, "ad_type": AD_TYPES[self.ad_type],
             "ad_active_status": self.ad_active_status, "fields": ",".join(self.fields), "limit": str(limit)}
        if self.search_terms:
            p["search_terms"] = self.search_terms
        if sl.page_ids:
            p["search_page_ids"] = _json_list(sl.page_ids)
        if self.languages:
            p["languages"] = _json_list(self.languages)
        if after:
            p["after"] = after
        return p


def _json_list(values: Sequence[str]) -> str:
    return json.dumps(list(values), separators=(",", ":"))


def resolve_fields(spec: str) -> tuple[str, ...]:
    """``political`` | ``dsa`` | ``all`` | ``a,b,c`` → the field names to ask for."""
    spec = spec.strip()
    if spec in FIELD_SETS:
        return FIELD_SETS[spec]
    out = tuple(f.strip() for f in spec.split(",") if f.strip())
    if not out:
        raise FetchError(f"--fields: give {', '.join(FIELD_SETS)} or a comma-separated list of field names")
    return out


# ---------------------------------------------------------------------------------------------------------
# Replies and their faults (pure functions)
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    """One HTTP reply, classified. ``kind``: ok | rate_limit | token | reduce | transient | not_json |
    refused. ``wait``: seconds the server asked us to wait; ``usage``: highest usage % in its headers."""

    kind: str
    status: int
    body: dict[str, Any] | None = None
    code: int | None = None
    subcode: int | None = None
    message: str = ""
    wait: float | None = None
    usage: float | None = None


def _number(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v and v >= 0 else None


def _usage_entries(name: str, raw: str) -> list[dict[str, Any]]:
    try:
        obj = json.loads(raw)
    except (TypeError, ValueError):
        return []
    if name == "x-business-use-case-usage" and isinstance(obj, dict):
        # {"<business id>": [{"type": ..., "call_count": %, ..., "estimated_time_to_regain_access": min}]}
        return [e for v in obj.values() if isinstance(v, list) for e in v if isinstance(e, dict)]
    return [obj] if isinstance(obj, dict) else []


def usage_from_headers(headers: Mapping[str, str]) -> tuple[float | None, float | None]:
    """(highest usage percentage, seconds to wait) from Meta's rate-limit headers.

    ``x-app-usage`` / ``x-page-usage``: ``call_count``, ``total_cputime``, ``total_time`` in % of the
    limit; ``x-business-use-case-usage``: the same per business and type, with
    ``estimated_time_to_regain_access`` in **minutes**; ``x-ad-account-usage``: ``acc_id_util_pct`` and
    ``reset_time_duration`` in **seconds**; ``Retry-After``: seconds or an HTTP date. The wait is the
    longest of those given (None when none is)."""
    h = {k.lower(): v for k, v in headers.items()}
    usage: float | None = None
    wait: float | None = None

    def more(a: float | None, b: float | None) -> float | None:
        return b if a is None or (b is not None and b > a) else a

    for name in ("x-business-use-case-usage", "x-app-usage", "x-page-usage", "x-ad-account-usage"):
        if name not in h:
            continue
        for e in _usage_entries(name, h[name]):
            for k in ("call_count", "total_cputime", "total_time", "acc_id_util_pct"):
                usage = more(usage, _number(e.get(k)))
            minutes = _number(e.get("estimated_time_to_regain_access"))
            if minutes:
                wait = more(wait, minutes * 60.0)
            secs = _number(e.get("reset_time_duration"))
            if secs:
                wait = more(wait, secs)
    ra = h.get("retry-after")
    if ra:
        secs = _number(ra.strip())
        if secs is None:
            try:
                when = parsedate_to_datetime(ra)
                secs = max(0.0, when.timestamp() - time.time())
            except (TypeError, ValueError, IndexError):
                secs = None
        if secs:
            wait = more(wait, secs)
    return usage, wait


def _graph_error(obj: Any) -> dict[str, Any] | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("error"), dict):
        return obj["error"]
    if obj.keys() >= {"message", "type", "code"} and "data" not in obj:  # the bare error object
        return obj
    return None


def classify_reply(status: int, headers: Mapping[str, str], body: bytes) -> Reply:
    """What one reply means for the fetch (see :class:`Reply`); never raises."""
    usage, wait = usage_from_headers(headers)
    try:
        obj: Any = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        obj = None
    err = _graph_error(obj)
    if err is not None:
        code = err.get("code") if isinstance(err.get("code"), int) else None
        sub = err.get("error_subcode") if isinstance(err.get("error_subcode"), int) else None
        msg = str(err.get("error_user_msg") or err.get("message") or "unknown error")
        if "message" in err and err.get("error_user_msg") and err["message"] not in msg:
            msg = f"{err['message']}: {msg}"
        args: dict[str, Any] = {"status": status, "body": None, "code": code, "subcode": sub, "message": msg,
                                "wait": wait, "usage": usage}
        if code in TOKEN_CODES:
            return Reply("token", **args)
        if code in RATE_LIMIT_CODES or status == 429:
            return Reply("rate_limit", **args)
        if _REDUCE in msg.lower() or _REDUCE in str(err.get("message", "")).lower():
            return Reply("reduce", **args)
        if err.get("is_transient") is True or code in TRANSIENT_CODES or status >= 500:
            return Reply("transient", **args)
        return Reply("refused", **args)
    if status == 429:
        return Reply("rate_limit", status, message="HTTP 429 Too Many Requests", wait=wait, usage=usage)
    if status >= 500:
        return Reply("transient", status, message=f"HTTP {status}", wait=wait, usage=usage)
    if status >= 400 or 300 <= status < 400:
        return Reply("refused", status, message=f"HTTP {status} (check --api-url and --api-version)",
                     usage=usage)
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        return Reply("ok", status, body=obj, usage=usage)
    what = "is not JSON" if obj is None else "is JSON without a data list"
    return Reply("not_json", status, message=f"the reply ({len(body):,} bytes) {what}", usage=usage)


# ---------------------------------------------------------------------------------------------------------
# Ads
# ---------------------------------------------------------------------------------------------------------
def redact_url(url: str) -> str:
    """``url`` without its ``access_token=...`` parameter (Meta puts the caller's token in snapshot URLs
    and in ``paging.next``)."""
    if "access_token" not in url:
        return url
    out = _TOKEN_IN_URL.sub(lambda m: m.group(1), url)
    return out.rstrip("?&")


def _strip_tokens(x: Any) -> Any:
    if isinstance(x, str):
        return redact_url(x)
    if isinstance(x, list):
        return [_strip_tokens(v) for v in x]
    if isinstance(x, dict):
        return {k: _strip_tokens(v) for k, v in x.items()}
    return x


def ad_key(ad: Any) -> str:
    """The identity of an ad: its ``id``; else the ``id=`` of its snapshot URL (2019 pages have no
    ``id``); else a hash of its content."""
    if isinstance(ad, dict):
        if ad.get("id") not in (None, ""):
            return str(ad["id"])
        m = _ID_IN_URL.search(str(ad.get("ad_snapshot_url") or ""))
        if m:
            return m.group(1)
    return "sha1:" + hashlib.sha1(json.dumps(ad, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# The fetcher
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Progress:
    """The state shown on the progress line."""

    pages: int = 0
    ads: int = 0
    new_ads: int = 0
    window: str = ""
    slice_no: int = 0
    slices: int = 0
    limit: int = 0
    usage: float | None = None
    waiting: float | None = None
    retries: int = 0


@dataclass
class FetchSummary:
    """What one run of a fetch did (counts of this run; ``ads`` is the folder's total)."""

    out_dir: Path
    status: str
    ads: int
    new_ads: int
    pages: int
    requests: int
    retries: int
    waits: int
    waited_s: float
    seconds: float
    duplicates: int
    shrinks: int
    splits: int
    ingested_files: int = 0
    resumed: bool = False
    notes: list[str] = field(default_factory=list)


Event = Callable[[str, str, Progress], None]  # (kind, text, progress); kinds: page wait retry notice


class _TokenFilter(logging.Filter):
    """Keeps the token out of httpx's own log lines (it logs request URLs at INFO)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if self.token in msg or "access_token=" in msg:
            record.msg, record.args = redact_url(msg).replace(self.token, "***"), None
        return True


class MetaFetcher:
    """One fetch of ``query`` into ``out_dir`` (see the module docstring). :meth:`run` does it.

    ``sleep`` and ``rng`` are injectable so that tests run waits in no time; ``on_event`` gets progress;
    ``ingest`` (a function of a page file) streams each new page into a store."""

    def __init__(self, query: MetaQuery, out_dir: str | Path, *, token: str, api_url: str = DEFAULT_API_URL,
                 api_version: str = DEFAULT_API_VERSION, limit: int = DEFAULT_LIMIT, max_wait: float = 3600.0,
                 timeout: float = 60.0, max_tries: int = 6, max_rate_waits: int = 100,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                 on_event: Event | None = None, ingest: Callable[[Path], None] | None = None,
                 ingest_db: str | None = None) -> None:
        if not token or not token.strip():
            raise FetchError("no access token: set $META_ACCESS_TOKEN or give --token-file (docs/fetch.md "
                             "says how to get one)")
        if not _VERSION.match(api_version):
            raise FetchError(f"--api-version looks like v27.0, not {api_version!r}")
        if limit < 1:
            raise FetchError("--limit must be at least 1")
        if max_wait < 0:
            raise FetchError("--max-wait cannot be negative")
        self.query = query
        self.out_dir = Path(out_dir)
        self._token = token.strip()
        self.api_url = api_url.rstrip("/")
        self.api_version = api_version
        self.limit = limit
        self.max_wait = float(max_wait)
        self.timeout = float(timeout)
        self.max_tries = max(1, max_tries)
        self.max_rate_waits = max(1, max_rate_waits)
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.on_event = on_event
        self.ingest = ingest
        self.ingest_db = ingest_db
        self.progress = Progress()
        self._seen: set[str] = set()
        self._t0 = time.monotonic()
        self._seconds_before = 0.0
        self._run_counts: dict[str, float] = {"requests": 0, "retries": 0, "waits": 0, "waited": 0.0, "pages": 0, "new": 0,
                            "dups": 0, "shrinks": 0, "splits": 0, "ingested": 0}

    @property
    def endpoint(self) -> str:
        return f"{self.api_url}/{self.api_version}/ads_archive"

    # -- helpers -------------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return redact_url(text).replace(self._token, "***")

    def _event(self, kind: str, text: str) -> None:
        if self.on_event is not None:
            self.on_event(kind, self._redact(text), replace(self.progress))

    def _wait(self, seconds: float, why: str) -> None:
        capped = seconds > self.max_wait
        seconds = max(0.0, min(seconds, self.max_wait))
        self.progress.waiting = seconds
        self._event("wait", f"waiting {_fmt_s(seconds)}{' (--max-wait)' if capped else ''}: {why}")
        self.sleep(seconds)
        self.progress.waiting = None
        self._run_counts["waits"] += 1
        self._run_counts["waited"] += seconds
        self.m.waits += 1
        self.m.waited_s += seconds

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: ``min(max_wait, 60, 2**attempt) * U(0.5, 1)`` seconds."""
        return min(self.max_wait, 60.0, 2.0 ** attempt) * (0.5 + 0.5 * self.rng.random())

    # -- state ---------------------------------------------------------------------------------------
    def _prepare(self) -> bool:
        """Load or create the manifest; load the ids on disk. True when this run resumes a fetch."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        remove_partial_files(self.out_dir)
        m = Manifest.load(self.out_dir)
        resumed = m is not None
        if m is None:
            if any(True for _ in iter_page_files(self.out_dir)):
                raise FetchError(f"{self.out_dir} holds page files but no fetch.json; choose an empty --out")
            m = Manifest(query=self.query.identity(),
                         api={"url": self.api_url, "version": self.api_version},
                         limit={"asked": self.limit, "now": self.limit}, slices=self.query.slices())
        elif m.query != self.query.identity():
            diff = sorted(k for k in set(m.query) | set(self.query.identity())
                          if m.query.get(k) != self.query.identity().get(k))
            raise FetchError(f"{self.out_dir} holds a different query (differs in: {', '.join(diff)}); "
                             "re-run the same command to resume it, or choose another --out")
        else:
            if m.limit.get("asked") != self.limit:
                m.limit = {"asked": self.limit, "now": min(self.limit, m.limit.get("now", self.limit))}
            if m.api != {"url": self.api_url, "version": self.api_version}:
                m.notes.append(f"{utc_now()} resumed with API {self.api_version} at {self.api_url} "
                               f"(was {m.api.get('version')} at {m.api.get('url')})")
                m.api = {"url": self.api_url, "version": self.api_version}
        self.m = m
        for _n, p in iter_page_files(self.out_dir):
            for k in read_page_ids(p, ad_key):
                self._seen.add(k)
        if len(self._seen) != m.ads:  # the page written just before a kill is counted from the files
            m.ads = len(self._seen)
        m.files = max(m.files, max((n for n, _ in iter_page_files(self.out_dir)), default=0))
        for r in m.runs:
            if r.get("status") == "running":  # that run was killed: its entry stops at its last page
                r["status"] = "killed"
        m.status = "running"
        m.last_error = None
        m.runs.append({"started_at": utc_now(), "finished_at": None, "status": "running"})
        del m.runs[:-50]
        m.save(self.out_dir)
        return resumed

    def _ingest_pending(self) -> None:
        if self.ingest is None:
            return
        db = self.ingest_db
        if self.m.ingested.get("db") != db:
            self.m.ingested = {"db": db, "files": []}
        done = set(self.m.ingested.get("files", []))
        for _n, p in iter_page_files(self.out_dir):
            if p.name not in done:
                self._ingest_one(p)

    def _ingest_one(self, path: Path) -> None:
        assert self.ingest is not None
        self.ingest(path)
        self.m.ingested.setdefault("files", []).append(path.name)
        self._run_counts["ingested"] += 1
        self.m.save(self.out_dir)

    # -- one request ---------------------------------------------------------------------------------
    def _error_entry(self, reply: Reply | None, kind: str, message: str, page: int, sl: Slice) -> None:
        self.m.add_error({"at": utc_now(), "page": page, "slice": sl.key, "window": sl.window,
                          "status": reply.status if reply else None, "kind": kind,
                          "code": reply.code if reply else None, "subcode": reply.subcode if reply else None,
                          "message": self._redact(message)[:300]})

    def _request(self, client: httpx.Client, sl: Slice) -> Reply:
        """GET one page of ``sl``; retries and waits as the module docstring says. Returns an ``ok`` or
        ``reduce`` reply; raises :class:`FetchError` when the fetch cannot go on."""
        page = self.m.pages + 1
        tries = 0
        rate_waits = 0
        while True:
            params = self.query.params(sl, limit=self.m.limit["now"], after=sl.after)
            params["access_token"] = self._token
            self.m.requests += 1
            self._run_counts["requests"] += 1
            reply: Reply | None = None
            try:
                r = client.get(self.endpoint, params=params)
                reply = classify_reply(r.status_code, r.headers, r.content)
                kind, message = reply.kind, reply.message
            except httpx.TimeoutException:
                kind, message = "timeout", f"no reply within {self.timeout:g} s"
            except httpx.TransportError as e:
                kind, message = "connection", f"connection failed ({type(e).__name__})"
            if reply is not None:
                self.progress.usage = reply.usage if reply.usage is not None else self.progress.usage
                if kind in ("ok", "reduce"):
                    if kind == "reduce":
                        self._error_entry(reply, kind, message, page, sl)
                    return reply
            self._error_entry(reply, kind, message, page, sl)
            code = f" (code {reply.code}{f'/{reply.subcode}' if reply and reply.subcode else ''})" \
                if reply is not None and reply.code is not None else ""
            if kind == "token":
                raise FetchError(f"page {page}: Meta refused the access token{code}: {message}. Get a new "
                                 "token (Graph API Explorer or your app's long-lived token, docs/fetch.md) "
                                 "and re-run the same command: the fetch resumes where it stopped")
            if kind == "refused":
                hint = _IDENTITY_SUBCODES.get(reply.subcode) if reply is not None and reply.subcode else None
                raise FetchError(f"page {page}: Meta refused the query{code}: {message}"
                                 f"{f'; {hint}' if hint else ''}")
            if kind == "rate_limit":
                rate_waits += 1
                if rate_waits > self.max_rate_waits:
                    raise FetchError(f"page {page}: still rate limited after {self.max_rate_waits} waits; "
                                     "re-run the same command later to resume")
                told = reply.wait if reply is not None and reply.wait else None
                secs = told if told is not None else min(60.0 * 2 ** (rate_waits - 1), 3600.0)
                src = f"Meta asks {_fmt_s(told)}" if told is not None else "no wait given (doubling)"
                self.m.errors[-1]["wait_asked_s"] = told
                self._wait(secs, f"rate limited{code}, {src}"
                                 f"{f', usage {reply.usage:.0f}%' if reply and reply.usage is not None else ''}")
                continue
            # transient, timeout, connection, not_json: back off and retry, a bounded number of times
            tries += 1
            if tries >= self.max_tries:
                what = "the reply was never JSON" if kind == "not_json" else message
                raise FetchError(f"page {page} of {sl.window}: gave up after {tries} tries ({what}{code}); "
                                 "re-run the same command to resume from this page")
            self.m.retries += 1
            self._run_counts["retries"] += 1
            self.progress.retries += 1
            self._event("retry", f"page {page}: {kind}{code}: {message}; retry {tries}/{self.max_tries - 1}")
            self._wait(self._backoff(tries), f"backoff after {kind}")

    # -- reduce: smaller pages, then smaller windows --------------------------------------------------
    def _shrink(self, i: int, sl: Slice) -> None:
        now = self.m.limit["now"]
        if now > MIN_LIMIT:
            new = max(MIN_LIMIT, now // 2)
            self.m.limit["now"] = new
            self._run_counts["shrinks"] += 1
            self._note(f"Meta asked to reduce the amount of data: --limit {now} → {new}")
            return
        lo, hi = date.fromisoformat(sl.since), date.fromisoformat(sl.until)
        if hi <= lo:
            raise FetchError(f"Meta asks to reduce the amount of data even for one day ({sl.since}) at "
                             f"--limit {now}: ask for fewer --fields (e.g. --fields political)")
        mid = lo + timedelta(days=((hi - lo).days + 1) // 2 - 1)
        a = Slice(key=f"{sl.key}a", since=lo.isoformat(), until=mid.isoformat(), page_ids=list(sl.page_ids))
        b = Slice(key=f"{sl.key}b", since=(mid + timedelta(days=1)).isoformat(), until=hi.isoformat(),
                  page_ids=list(sl.page_ids))
        sl.done, sl.after, sl.split_into = True, None, [a.key, b.key]
        self.m.slices[i + 1:i + 1] = [a, b]
        self._run_counts["splits"] += 1
        self._note(f"Meta asked to reduce the amount of data at --limit {now}: window {sl.window} split into "
                   f"{a.window} and {b.window}")

    def _note(self, text: str) -> None:
        self.m.notes.append(f"{utc_now()} {text}")
        del self.m.notes[:-200]
        self.m.save(self.out_dir)
        self._event("notice", text)

    # -- a page --------------------------------------------------------------------------------------
    def _take_page(self, sl: Slice, body: dict[str, Any]) -> None:
        ads = [a for a in body.get("data", []) if isinstance(a, dict)]
        paging: dict[str, Any] = body["paging"] if isinstance(body.get("paging"), dict) else {}
        cursors: dict[str, Any] = paging["cursors"] if isinstance(paging.get("cursors"), dict) else {}
        after = cursors.get("after") if isinstance(cursors.get("after"), str) else None
        more = bool(ads) and bool(paging.get("next")) and after is not None and after != sl.after
        lines: list[str] = []
        keys: list[str] = []
        for ad in ads:
            k = ad_key(ad)
            if k in self._seen or k in keys:
                self.m.duplicates += 1
                self._run_counts["dups"] += 1
                continue
            line = json.dumps(_strip_tokens(ad), ensure_ascii=False, separators=(",", ":"))
            if self._token in line:  # a token somewhere else than a URL parameter
                line = line.replace(self._token, "REDACTED")
            lines.append(line)
            keys.append(k)
        path = None
        if lines:
            path = page_path(self.out_dir, self.m.files + 1)
            atomic_write(path, ("\n".join(lines) + "\n").encode("utf-8"))
            self.m.files += 1
            self._seen.update(keys)
        self.m.pages += 1
        self.m.ads += len(keys)
        sl.pages += 1
        sl.ads += len(keys)
        sl.after, sl.done = (after, False) if more else (None, True)
        self._run_counts["pages"] += 1
        self._run_counts["new"] += len(keys)
        self._record_run()
        self.m.save(self.out_dir)
        if path is not None and self.ingest is not None:
            self._ingest_one(path)
        self.progress.pages, self.progress.ads = self.m.pages, self.m.ads
        self.progress.new_ads = int(self._run_counts["new"])
        self._event("page", f"page {self.m.pages}: {len(ads)} ads, {len(keys)} new")

    # -- the whole fetch -----------------------------------------------------------------------------
    def _record_run(self, *, finished: bool = False) -> None:
        """This run's counts and time into its ``runs`` entry (kept current page by page, so that a run
        killed by SIGKILL still shows what it did) and the fetch's total seconds."""
        elapsed = time.monotonic() - self._t0
        c = self._run_counts
        self.m.seconds = self._seconds_before + elapsed
        self.m.runs[-1].update({"finished_at": utc_now() if finished else None, "seconds": round(elapsed, 3),
                                "pages": int(c["pages"]), "new_ads": int(c["new"]), "requests": int(c["requests"]),
                                "retries": int(c["retries"]), "waits": int(c["waits"]),
                                "waited_s": round(c["waited"], 3)})

    def run(self) -> FetchSummary:
        """Fetch every slice to its end (resuming what the folder holds) and return the summary."""
        t0 = self._t0 = time.monotonic()
        resumed = self._prepare()
        self._seconds_before = self.m.seconds
        m = self.m
        if resumed:
            self._event("notice", f"resuming {self.out_dir}: {m.ads:,} ads in {m.files} files, "
                                  f"{len(m.open_slices())} slice(s) to go")
        log_filter = _TokenFilter(self._token)
        loggers = [logging.getLogger(n) for n in ("httpx", "httpcore")]
        for lg in loggers:
            lg.addFilter(log_filter)
        status = "failed"
        try:
            self._ingest_pending()
            timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 30.0))
            headers = {"User-Agent": "bubblelens-fetch (+https://github.com/bubblelens)"}
            with httpx.Client(timeout=timeout, headers=headers, follow_redirects=False) as client:
                i = 0
                while i < len(m.slices):
                    sl = m.slices[i]
                    if sl.done:
                        i += 1
                        continue
                    self.progress.window = sl.window
                    self.progress.slice_no = sum(1 for s in m.slices[:i + 1] if not s.split_into)
                    self.progress.slices = sum(1 for s in m.slices if not s.split_into)
                    self.progress.limit = m.limit["now"]
                    reply = self._request(client, sl)
                    if reply.kind == "reduce":
                        self._shrink(i, sl)
                        continue
                    assert reply.body is not None
                    self._take_page(sl, reply.body)
            status = "done"
        except FetchError as e:
            m.last_error = self._redact(str(e))
            status = "stopped"
            raise FetchError(self._redact(str(e))) from None
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            for lg in loggers:
                lg.removeFilter(log_filter)
            m.status = status
            self._record_run(finished=True)
            m.runs[-1]["status"] = status
            m.save(self.out_dir)
        c = self._run_counts
        return FetchSummary(self.out_dir, status, m.ads, int(c["new"]), int(c["pages"]), int(c["requests"]),
                            int(c["retries"]), int(c["waits"]), float(c["waited"]), time.monotonic() - t0,
                            int(c["dups"]), int(c["shrinks"]), int(c["splits"]), int(c["ingested"]),
                            resumed, list(m.notes))


def _fmt_s(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``3 min 20 s``, ``1 h 05 min``."""
    if seconds < 0.1:
        return f"{seconds:.2f} s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
