"""Format detection when ``--format`` is absent.

Parquet by its magic bytes; JSON / JSON Lines whose objects carry ad-archive fields (``ad_snapshot_url``,
``ad_creative_bodies``, ``page_id``, ...) → ``meta``; CSV headers with ``Ad_ID`` / ``Advertiser_ID`` →
``google``, with ``Amount spent`` and ``Disclaimer`` → ``meta-csv``; ``page_id`` with ``type, value,
total_spend_pct`` (or with page spend and ``party``) → ``targeting``; anything else → ``table``.
"""

from __future__ import annotations

import json

from .csvio import read_csv_records
from .google import is_google_header
from .meta_api import is_meta_record
from .meta_report import is_meta_report_header
from .targeting import is_targeting_header
from .text import DecodedFile

__all__ = ["FORMATS", "detect_format"]

FORMATS = ("meta", "meta-csv", "google", "table", "targeting")


#: JSON Lines: how many lines of the head detection looks at for an ad (hostile lines may come first)
DETECT_LINES = 50


def _parse(line: str) -> object:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):  # not JSON, a NaN, nesting beyond the parser's depth
        return None


def _is_ad_or_error(obj: object) -> bool:
    return isinstance(obj, dict) and (is_meta_record(obj) or "error" in obj
                                      or {"message", "type", "code"} <= obj.keys())


def _first_json_object(text: str) -> object:
    """The first record without parsing a whole (possibly huge) file: the first of the first
    :data:`DETECT_LINES` lines that is an ad or an API error (else the first JSON line), else the first
    object inside a page's ``data`` (or an array), else the whole document."""
    s = text.lstrip()
    first: object = None
    for i, line in enumerate(s.split("\n", DETECT_LINES)[:DETECT_LINES]):
        obj = _parse(line.strip().lstrip("\ufeff")) if line.strip() else None
        if _is_ad_or_error(obj):
            return obj
        if i == 0 and obj is not None:
            first = obj
    if first is not None:
        return first
    compact = s[:300].replace(" ", "").replace("\n", "").replace("\r", "").replace("\t", "")
    if compact.startswith('{"data":[') or compact.startswith("["):
        start = s.find("{", s.find("[") + 1)
        if start > 0:
            try:
                obj, _ = json.JSONDecoder().raw_decode(s, start)
            except (ValueError, RecursionError):
                return None
            return {"data": [obj]} if compact.startswith("{") else [obj]
        return None
    return _parse(s)


def detect_format(src: DecodedFile) -> str:
    """One of :data:`FORMATS` for a decoded file."""
    if src.is_parquet:
        return "table"
    text = src.head
    if text.lstrip()[:1] in ("{", "["):
        end = src.data.find(b"\n", 0, 1 << 26)
        if end > len(text):  # a first line longer than the head (a huge field): parse that line whole
            text = src.data[:end].decode("utf-8-sig", errors="replace")
        obj = _first_json_object(text)
        if isinstance(obj, list):
            obj = next((x for x in obj if isinstance(x, dict)), None)
        if isinstance(obj, dict) and ("error" in obj or {"message", "type", "code"} <= obj.keys()):
            return "meta"  # an API error body: the Meta reader names it
        return "meta" if is_meta_record(obj) else "table"
    # JSON Lines whose first line is garbage: an ad among the next lines still makes it a Meta file
    if any(_is_ad_or_error(_parse(x.strip())) for x in text.lstrip().split("\n", DETECT_LINES)[1:DETECT_LINES]
           if x.lstrip().startswith("{")):
        return "meta"
    try:
        header, _ = read_csv_records(text, src.path.name)
    except Exception:
        return "table"
    if is_google_header(header):
        return "google"
    if is_meta_report_header(header):
        return "meta-csv"
    if is_targeting_header(header):
        return "targeting"
    return "table"
