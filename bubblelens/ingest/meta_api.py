"""Reader of the Meta Ad Library API (``/ads_archive``): a page, JSON Lines of ads, or a list of ads.

Field names old (2019: ``ad_creative_body``, ``funding_entity``, ``region_distribution``, no ``id``) and
new (``ad_creative_bodies``, ``bylines``, ``delivery_by_region``, the EU DSA fields) are both read.
Ranges stay ranges (a missing upper bound stays NULL); percentages become shares in [0, 1] in
``deliveries``; declared targeting (DSA ``target_*``) goes to ``targeting``. An error body (``{"error":
...}`` or the bare error object) raises :class:`FormatError` with Meta's message. Access tokens are cut
out of every URL.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import FormatError
from ..store import text_hash
from .jsonio import JsonProblem, iter_json_records, load_line
from .meta_fast import open_stream, read_fast
from .ranges import parse_count, parse_date, parse_range
from .text import DecodedFile
from .writer import BadField, Batch, OptionalFields, Reject, content_id

__all__ = ["AD_FIELDS", "is_meta_record", "join_text", "read_meta_api"]

FORMAT = "meta"
#: Fields that mark a JSON object as an ad-archive ad (any one suffices for detection).
AD_FIELDS = frozenset({
    "ad_snapshot_url", "ad_creative_bodies", "ad_creative_body", "page_id", "ad_delivery_start_time",
    "ad_creation_time", "ad_creative_link_titles", "ad_creative_link_title", "bylines", "funding_entity",
    "demographic_distribution", "delivery_by_region", "region_distribution", "publisher_platforms",
    "eu_total_reach", "age_country_gender_reach_breakdown", "target_locations", "beneficiary_payers",
})
_KNOWN = AD_FIELDS | {
    "id", "_id", "ad_creative_link_descriptions", "ad_creative_link_description",
    "ad_creative_link_captions", "ad_creative_link_caption", "ad_delivery_stop_time", "currency",
    "impressions", "spend", "languages", "page_name", "estimated_audience_size", "target_ages",
    "target_gender",
}
_ERROR_KEYS = {"message", "type", "code"}
_ID_IN_URL = re.compile(r"[?&]id=(\d+)")
_TOKEN_AMP = re.compile(r"&access_token(=[^&#]*)?")
_TOKEN_Q = re.compile(r"\?access_token(=[^&#]*)?&?")



def is_meta_record(obj: Any) -> bool:
    """True when ``obj`` is an ad-archive ad or page (by its fields)."""
    if not isinstance(obj, dict):
        return False
    if isinstance(obj.get("data"), list):
        return any(is_meta_record(x) for x in obj["data"][:5]) or not obj["data"]
    return not AD_FIELDS.isdisjoint(obj)


def _error_message(obj: dict[str, Any]) -> str | None:
    err = obj.get("error") if isinstance(obj.get("error"), dict) else None
    if err is None and obj.keys() >= _ERROR_KEYS and AD_FIELDS.isdisjoint(obj):
        err = obj
    if err is None:
        return None
    msg = err.get("error_user_msg") or err.get("message") or "unknown error"
    code = err.get("code")
    return f"{msg} ({err.get('type', 'error')}{f' {code}' if code is not None else ''})"


def strip_token(url: str) -> str:
    """Remove ``access_token=...`` from a URL (Meta puts the caller's token in snapshot URLs)."""
    if "access_token" not in url:
        return url
    return _TOKEN_Q.sub("?", _TOKEN_AMP.sub("", url)).rstrip("?")


def _strings(ad: dict[str, Any], new: str, old: str) -> list[str]:
    v = ad.get(new)
    key = new
    if v is None:
        v, key = ad.get(old), old
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return v
    raise BadField(key, f"expected a string or a list of strings, got {type(v).__name__}")


_CONTROL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")


def join_text(parts: list[str]) -> str:
    """De-duplicated join, order kept: bodies, then link titles, then descriptions. Control
    characters other than tab and line ends are dropped (they only hide text)."""
    seen: set[str] = set()
    out: list[str] = []
    for p in parts:
        if _CONTROL.search(p):
            p = _CONTROL.sub("", p)
        t = unicodedata.normalize("NFC", p.replace("\xa0", " ")).strip()
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return "\n\n".join(out)


def _range(ad: dict[str, Any], key: str) -> tuple[int | None, int | None]:
    try:
        return parse_range(ad.get(key))
    except ValueError as e:
        raise BadField(key, str(e)) from None


def _date(ad: dict[str, Any], key: str) -> Any:
    v = ad.get(key)
    if v is None or v == "":
        return None
    try:
        return parse_date(v)
    except (ValueError, TypeError, OverflowError) as e:
        raise BadField(key, str(e)) from None


def _shares(entries: Any, key: str, label: str) -> tuple[list[float], list[Any]]:
    """Percentages as floats in [0, 1] and the ``label`` values (age, region, ...) of each entry."""
    if not isinstance(entries, list):
        raise BadField(key, f"expected a list, got {type(entries).__name__}")
    try:
        shares = [float(e["percentage"]) for e in entries]
        labels = [e.get(label) for e in entries]
    except (KeyError, TypeError, ValueError, AttributeError):
        for e in entries:
            if not isinstance(e, dict):
                raise BadField(key, f"entry is not an object: {str(e)[:40]!r}") from None
            try:
                float(e["percentage"])
            except KeyError:
                raise BadField(key, "entry without a percentage") from None
            except (TypeError, ValueError):
                raise BadField(key, f"non-numeric percentage {str(e['percentage'])[:40]!r}") from None
        raise BadField(key, "malformed entries") from None
    if shares:
        lo, hi, total = min(shares), max(shares), sum(shares)
        if total != total or lo < 0.0 or hi > 1.0:
            bad = next(x for x in shares if not 0.0 <= x <= 1.0)
            raise BadField(key, f"share {bad} outside [0, 1]")
    return shares, labels


def _reach(entries: Any) -> list[tuple[str | None, str | None, str, int]]:
    """DSA ``age_country_gender_reach_breakdown`` → (country, age, gender, count) rows."""
    key = "age_country_gender_reach_breakdown"
    if not isinstance(entries, list):
        raise BadField(key, "expected a list")
    out = []
    for c in entries:
        if not isinstance(c, dict):
            raise BadField(key, "entry is not an object")
        for b in c.get("age_gender_breakdowns") or []:
            if not isinstance(b, dict):
                raise BadField(key, "breakdown is not an object")
            for gender in ("male", "female", "unknown"):
                if b.get(gender) is None:
                    continue
                try:
                    n = parse_count(b[gender])
                except ValueError as e:
                    raise BadField(key, str(e)) from None
                out.append((c.get("country"), b.get("age_range"), gender, n))
    return out


def _targeting(ad: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """DSA declared targeting → (dimension, value, included)."""
    out: list[tuple[str, str, bool]] = []
    ages = ad.get("target_ages")
    if isinstance(ages, list) and ages:
        vals = [str(a) for a in ages]
        out.append(("age", f"{vals[0]}-{vals[-1]}" if len(vals) == 2 else ",".join(vals), True))
    elif isinstance(ages, str | int) and str(ages):
        out.append(("age", str(ages), True))
    gender = ad.get("target_gender")
    if isinstance(gender, str) and gender:
        out.append(("gender", gender, True))
    locs = ad.get("target_locations")
    if locs is not None:
        if not isinstance(locs, list):
            raise BadField("target_locations", "expected a list")
        for loc in locs:
            if isinstance(loc, dict):
                name = loc.get("name") or loc.get("key")
                if name:
                    out.append(("location", str(name), not bool(loc.get("excluded"))))
            elif isinstance(loc, str):
                out.append(("location", loc, True))
    return out


def _sponsor(ad: dict[str, Any]) -> str | None:
    s = ad.get("bylines") or ad.get("funding_entity")
    if isinstance(s, list):
        s = ", ".join(str(x) for x in s)
    if not s:
        bp = ad.get("beneficiary_payers")
        if isinstance(bp, list) and bp and isinstance(bp[0], dict):
            s = bp[0].get("payer") or bp[0].get("beneficiary")
    return str(s) if s else None


def _optstr(ad: dict[str, Any], key: str) -> str | None:
    v = ad.get(key)
    if v is None or isinstance(v, str):
        return v
    raise BadField(key, f"expected a string, got {type(v).__name__}")


def _idstr(v: Any, key: str) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, str | int) and not isinstance(v, bool):
        return str(v)
    raise BadField(key, f"id of the wrong type ({type(v).__name__})")


def _add_ad(ad: dict[str, Any], line: int, batch: Batch, src: DecodedFile, *, channel: str,
            opt: OptionalFields | None = None) -> None:
    """Validate one ad fully, then append it and its children; raises BadField before appending anything.

    Only what defines the ad can reject it: its id and its text / snapshot URL. Any other field that cannot
    be read (a range, a share, a date, a list of the wrong type) is left empty and counted in ``opt`` (the
    file's warnings), so an ad is never lost over an optional field.
    """
    opt = opt if opt is not None else OptionalFields()
    opt.line = line

    def soft(read: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        try:
            return read(*args)
        except BadField as e:
            opt.drop(e.field, e.reason)
            return default

    bodies = _strings(ad, "ad_creative_bodies", "ad_creative_body")
    titles = _strings(ad, "ad_creative_link_titles", "ad_creative_link_title")
    descs = _strings(ad, "ad_creative_link_descriptions", "ad_creative_link_description")
    caps = _strings(ad, "ad_creative_link_captions", "ad_creative_link_caption")
    text = join_text(bodies + titles + descs)
    url = ad.get("ad_snapshot_url")
    if url is not None and not isinstance(url, str):
        raise BadField("ad_snapshot_url", "not a string")
    flags: list[str] = []
    mid = _idstr(ad.get("id"), "id") or _idstr(ad.get("_id"), "_id")
    if mid is None and url:
        m = _ID_IN_URL.search(url)
        if m:
            mid = m.group(1)
            flags.append("id_from_snapshot_url")
    if mid is None:
        mid = content_id(text, url, flags)
    if not text:
        flags.append("no_text")
    imp_lo, imp_hi = soft(_range, ad, "impressions", default=(None, None))
    sp_lo, sp_hi = soft(_range, ad, "spend", default=(None, None))
    aud_lo, aud_hi = soft(_range, ad, "estimated_audience_size", default=(None, None))
    start, stop, created = (soft(_date, ad, k) for k in ("ad_delivery_start_time", "ad_delivery_stop_time",
                                                          "ad_creation_time"))
    reach = soft(_count, ad, "eu_total_reach")
    demo = ad.get("demographic_distribution")
    d_shares, d_ages = soft(_shares, demo, "demographic_distribution", "age", default=([], [])) \
        if demo is not None else ([], [])
    d_genders = [e.get("gender") for e in demo] if demo and d_shares else []
    reg_key = "delivery_by_region" if "delivery_by_region" in ad else "region_distribution"
    regs = ad.get(reg_key)
    r_shares, r_names = soft(_shares, regs, reg_key, "region", default=([], [])) if regs is not None else ([], [])
    reach_rows = soft(_reach, ad["age_country_gender_reach_breakdown"], default=[]) \
        if ad.get("age_country_gender_reach_breakdown") is not None else []
    targ = soft(_targeting, ad, default=[])
    platforms = soft(_str_list, ad, "publisher_platforms")
    languages = soft(_str_list, ad, "languages")
    page_name, currency = soft(_optstr, ad, "page_name"), soft(_optstr, ad, "currency")
    sponsor_id = soft(lambda: _idstr(ad.get("page_id"), "page_id"))
    extra = {k: v for k, v in ad.items() if k not in _KNOWN}
    if "beneficiary_payers" in ad:
        extra["beneficiary_payers"] = ad["beneficiary_payers"]
    for k in ("spend", "impressions"):
        if isinstance(ad.get(k), dict) and set(ad[k]) - {"lower_bound", "upper_bound"}:
            extra[k] = ad[k]

    msgs = batch.rows("messages")
    row = len(msgs)
    msgs.add(
        message_id=mid, source_format=FORMAT, source_file=str(src.path), source_line=line,
        source_sha256=src.sha256, text=text or None, text_hash=text_hash(text) if text else None,
        has_text=bool(text), bodies=bodies, link_titles=titles, link_descriptions=descs,
        link_captions=caps, sponsor=soft(_sponsor, ad), sponsor_id=sponsor_id,
        page_name=page_name, channel=channel, platforms=platforms,
        date_start=start, date_stop=stop, created_at=created,
        url=strip_token(url) if url else None, lang=languages[0] if languages else None,
        languages=languages, impressions_lower=imp_lo, impressions_upper=imp_hi,
        spend_lower=None if sp_lo is None else float(sp_lo),
        spend_upper=None if sp_hi is None else float(sp_hi), currency=currency,
        eu_total_reach=reach, audience_size_lower=aud_lo, audience_size_upper=aud_hi,
        flags=flags, extra=json.dumps(extra, ensure_ascii=False, default=str) if extra else None,
    )
    n_d, n_r, n_x = len(d_shares), len(r_shares), len(reach_rows)
    if n_d or n_r or n_x:
        dc = batch.rows("deliveries").cols
        n = n_d + n_r + n_x
        dc["message_id"].extend([mid] * n)
        dc["_row"].extend([row] * n)
        dc["kind"].extend(["demographic"] * n_d + ["region"] * n_r + ["reach"] * n_x)
        dc["age"].extend(d_ages + [None] * n_r + [r[1] for r in reach_rows])
        dc["gender"].extend(d_genders + [None] * n_r + [r[2] for r in reach_rows])
        dc["region"].extend([None] * n_d + r_names + [None] * n_x)
        dc["country"].extend([None] * (n_d + n_r) + [r[0] for r in reach_rows])
        dc["share"].extend(d_shares + r_shares + [None] * n_x)
        dc["count"].extend([None] * (n_d + n_r) + [r[3] for r in reach_rows])
    if targ:
        t = batch.rows("targeting")
        for dim, value, inc in targ:
            t.add(message_id=mid, dimension=dim, value=value, included=inc, _row=row)


def _count(ad: dict[str, Any], key: str) -> int | None:
    v = ad.get(key)
    if v is None:
        return None
    try:
        return parse_count(v)
    except ValueError as e:
        raise BadField(key, str(e)) from None


def _str_list(ad: dict[str, Any], key: str) -> list[str] | None:
    v = ad.get(key)
    if v is not None and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
        raise BadField(key, "expected a list of strings")
    return v


def _loads(line: str) -> Any:
    return load_line(line.strip().lstrip("\ufeff"))


def read_meta_api(src: DecodedFile, *, channel: str = "social_ad", stream: bool = False, **_: Any) -> Batch:
    """Read a Meta ad-archive page, a JSON list of ads, one ad, or JSON Lines of ads (or of pages).

    Large JSON Lines go column-wise (:mod:`.meta_fast`); with ``stream`` the batch brings its pieces
    still being parsed (:attr:`Batch.stream`) and reads the rows they leave over in ``finish``."""
    batch = Batch(format=FORMAT, kind="messages")
    if channel == "social_ad":
        pieces = open_stream(src) if stream else None
        if pieces is not None:
            batch.stream = pieces
            batch.finish = lambda: _take_others(batch, src, pieces.bad_lines, pieces.n)
            return batch
        fast = read_fast(src)
        if fast is not None:  # large JSON Lines: clean rows column-wise, the others row by row
            batch.arrow = fast[0]
            _take_others(batch, src, fast[1], fast[2])
            return batch
    _read_records(batch, src, iter_json_records(src.text, src.path.name), seen_ad=False, channel=channel)
    return batch


def _take_others(batch: Batch, src: DecodedFile, others: list[int], n: int) -> None:
    """After the column-wise path took the clean rows of ``n``: the lines ``others`` row by row."""
    batch.arrow_offset = n
    batch.rows_read = n - len(others)
    lines = src.text.split("\n") if others else []
    _read_records(batch, src, ((ln, _loads(lines[ln - 1])) for ln in others), seen_ad=True)


def _read_records(batch: Batch, src: DecodedFile, records: Iterable[tuple[int, Any]], *, seen_ad: bool,
                  channel: str = "social_ad") -> None:
    """Take or reject each record (an ad, or a page of ads) into ``batch``."""
    name = src.path.name
    n_records = 0
    opt = OptionalFields()
    for line, rec in records:
        n_records += 1
        if isinstance(rec, JsonProblem):
            batch.rows_read += 1
            batch.rejects.append(Reject.of(line, rec.field, rec.reason, rec.raw))
            continue
        if isinstance(rec, dict):
            err = _error_message(rec)
            if err is not None:
                if n_records == 1 and not seen_ad and "\n" not in src.text.strip():
                    raise FormatError(f"{name} is an error from the Meta API, not ads: {err}")
                batch.rows_read += 1
                batch.rejects.append(Reject.of(line, "(error)", f"Meta API error: {err}", rec))
                continue
        # a page per line (JSON Lines of pages) gives its ads; anything else is one record
        items = list(enumerate(rec["data"], 1)) if isinstance(rec, dict) and isinstance(
            rec.get("data"), list) else [(line, rec)]
        for ln, ad in items:
            batch.rows_read += 1
            if not isinstance(ad, dict):
                batch.rejects.append(Reject.of(ln, "(row)", f"not a JSON object but {type(ad).__name__}",
                                               ad))
                continue
            if not seen_ad and AD_FIELDS.isdisjoint(ad) and "id" not in ad:
                batch.rejects.append(Reject.of(ln, "(row)", "no ad-archive field in this object", ad))
                continue
            seen_ad = True
            mark = {t: len(r) for t, r in batch.tables.items()}
            try:
                _add_ad(ad, ln, batch, src, channel=channel, opt=opt)
            except BadField as e:
                for t, r in batch.tables.items():
                    r.truncate(mark.get(t, 0))
                batch.rejects.append(Reject.of(ln, e.field, e.reason, ad))
    batch.warnings.extend(opt.warnings())
    if opt.count:
        batch.dropped = opt
    if not seen_ad and batch.rows_read and not batch.rejects:
        raise FormatError(f"{name} holds no Meta ad-archive ads")
    if not seen_ad and batch.rejects and all(r.field == "(row)" for r in batch.rejects):
        raise FormatError(f"{name} holds JSON but no Meta ad-archive ads (no field such as "
                          "ad_snapshot_url, ad_creative_bodies or page_id)")
