"""Reader of Google's political-ads transparency bundle.

``creative_stats`` (one row per ad) → ``messages``: no text, so each message keeps its ``Ad_URL`` and
the flag ``no_text``; ``Impressions`` buckets (``"≤ 10k"``, ``"10k-100k"``, ``"> 10M"``) → ranges;
spend ranges per currency (``Spend_Range_Min_EUR`` / ``Spend_Range_Max_EUR``; EUR first, then USD,
then the first currency with a value; all of them kept in ``extra``); declared age, gender and geo
targeting → ``targeting``. ``advertiser-stats`` (totals per advertiser) → ``sponsor_spend``. The other
bundle files (geo spend, weekly spend, ...) hold no ads: they are refused with one sentence.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import FormatError
from ..store import text_hash
from .csvio import read_csv_records
from .ranges import parse_bucket, parse_count, parse_date
from .text import DecodedFile
from .writer import BadField, Batch, Reject

__all__ = ["is_google_header", "read_google"]

FORMAT = "google"
_SPEND_MIN = re.compile(r"Spend_Range_Min_([A-Z]{3})$")
_NOT_TARGETED = {"", "not targeted", "none", "all", "unknown"}


def is_google_header(header: list[str]) -> bool:
    return "Advertiser_ID" in header or "Ad_ID" in header or (
        "Country_Subdivision_Primary" in header and "Spend_USD" in header)


def _money(v: str, field: str) -> float | None:
    v = v.strip()
    if not v:
        return None
    try:
        return float(parse_count(v))
    except ValueError:
        try:
            x = float(v)
        except ValueError:
            raise ValueError(f"non-numeric spend {v[:40]!r}") from None
        if x < 0 or x != x:
            raise ValueError(f"negative spend {x}") from None
        return x


def _split(v: str) -> list[str]:
    return [x.strip() for x in re.split(r"[,;|]", v) if x.strip()]


def read_google(src: DecodedFile, **_: Any) -> Batch:
    name = src.path.name
    header, records = read_csv_records(src.text, name, delimiter=",")
    if "Ad_ID" in header:
        return _creative_stats(src, header, records)
    if "Advertiser_ID" in header and "Week_Start_Date" not in header and (
            "Total_Creatives" in header):
        return _advertiser_stats(src, header, records)
    raise FormatError(
        f"{name} is a Google bundle file without ads ({', '.join(header[:4])}, ...): BubbleLens reads "
        "creative-stats (ads) and advertiser-stats (spend per advertiser)")


def _creative_stats(src: DecodedFile, header: list[str], records: Any) -> Batch:
    batch = Batch(format=FORMAT, kind="messages")
    msgs, targ = batch.rows("messages"), batch.rows("targeting")
    currencies = [m.group(1) for h in header if (m := _SPEND_MIN.match(h))]
    order = [c for c in ("EUR", "USD") if c in currencies] + [c for c in currencies
                                                               if c not in ("EUR", "USD")]
    for line, row, rec in batch.well_formed(header, records):
        try:
            mid, url = row.get("Ad_ID") or None, row.get("Ad_URL") or None
            if not mid and not url:
                raise BadField("Ad_ID", "no id, no text and no URL")
            if not mid:
                mid = "sha1:" + text_hash(url or "")[:16]
            try:
                lo, hi = parse_bucket(row.get("Impressions"))
            except ValueError as e:
                raise BadField("Impressions", str(e)) from None
            spends: dict[str, list[float | None]] = {}
            for c in currencies:
                try:
                    a = _money(row.get(f"Spend_Range_Min_{c}", ""), c)
                    b = _money(row.get(f"Spend_Range_Max_{c}", ""), c)
                except ValueError as e:
                    raise BadField(f"Spend_Range_Min_{c}", str(e)) from None
                if a is not None and b is not None and a > b:
                    raise BadField(f"Spend_Range_Min_{c}", f"lower bound {a} above upper bound {b}")
                if a is not None or b is not None:
                    spends[c] = [a, b]
            cur = next((c for c in order if c in spends), None)
            dates = {}
            for k in ("Date_Range_Start", "Date_Range_End", "First_Served_Timestamp",
                      "Last_Served_Timestamp"):
                try:
                    dates[k] = parse_date(row.get(k))
                except ValueError as e:
                    raise BadField(k, str(e)) from None
        except BadField as e:
            batch.rejects.append(Reject.of(line, e.field, e.reason, rec))
            continue
        r = len(msgs)
        extra = {"regions": _split(row.get("Regions", "")), "spend_ranges": spends,
                 "ad_campaigns": row.get("Ad_Campaigns_List") or None,
                 "num_of_days": row.get("Num_of_Days") or None}
        known = {"Ad_ID", "Ad_URL", "Ad_Type", "Regions", "Advertiser_ID", "Advertiser_Name",
                 "Date_Range_Start", "Date_Range_End", "Num_of_Days", "Ad_Campaigns_List", "Impressions",
                 "First_Served_Timestamp", "Last_Served_Timestamp", "Age_Targeting", "Gender_Targeting",
                 "Geo_Targeting_Included", "Geo_Targeting_Excluded", "Spend_USD"}
        extra.update({h: v for h, v in row.items()
                      if h not in known and not h.startswith("Spend_Range_") and v})
        msgs.add(message_id=mid, source_format=FORMAT, source_file=str(src.path), source_line=line,
                 source_sha256=src.sha256, text=None, text_hash=None, has_text=False,
                 sponsor=row.get("Advertiser_Name") or None, sponsor_id=row.get("Advertiser_ID") or None,
                 channel=(row.get("Ad_Type") or "ad").lower() + "_ad" if row.get("Ad_Type") else "search_ad",
                 date_start=dates["First_Served_Timestamp"] or dates["Date_Range_Start"],
                 date_stop=dates["Last_Served_Timestamp"] or dates["Date_Range_End"],
                 url=url, impressions_lower=lo, impressions_upper=hi,
                 spend_lower=spends[cur][0] if cur else None, spend_upper=spends[cur][1] if cur else None,
                 currency=cur, flags=["no_text"],
                 extra=json.dumps(extra, ensure_ascii=False, sort_keys=True))
        for col, dim, inc in (("Age_Targeting", "age", True), ("Gender_Targeting", "gender", True),
                              ("Geo_Targeting_Included", "geo", True),
                              ("Geo_Targeting_Excluded", "geo", False)):
            v = row.get(col, "")
            if v.lower() in _NOT_TARGETED:
                continue
            vals = _split_geo(v) if dim == "geo" else _split(v)
            for val in vals:
                targ.add(message_id=mid, dimension=dim, value=val, included=inc, _row=r)
    return batch


def _split_geo(v: str) -> list[str]:
    """Places are separated by ``", "`` or ``;``; a place with its parents ("Paris,Ile-de-France,France",
    no space) stays one place."""
    return [x.strip() for x in re.split(r";|,\s+|\|", v) if x.strip()]



def _advertiser_stats(src: DecodedFile, header: list[str], records: Any) -> Batch:
    batch = Batch(format=FORMAT, kind="sponsor_spend")
    rows = batch.rows("sponsor_spend")
    spend_col = "Spend_EUR" if "Spend_EUR" in header else ("Spend_USD" if "Spend_USD" in header
                                                          else "Total_Spend_USD")
    currency = spend_col.rsplit("_", 1)[1]
    for line, row, rec in batch.well_formed(header, records):
        try:
            spend = _money(row.get(spend_col, ""), spend_col)
            n = parse_count(row["Total_Creatives"]) if row.get("Total_Creatives") else None
        except ValueError as e:
            batch.rejects.append(Reject.of(line, spend_col, str(e), rec))
            continue
        if not row.get("Advertiser_ID"):
            batch.rejects.append(Reject.of(line, "Advertiser_ID", "no advertiser id", rec))
            continue
        rows.add(report=src.path.stem, row_key=row["Advertiser_ID"], scope="advertisers",
                 page_id=row["Advertiser_ID"], page_name=row.get("Advertiser_Name") or None,
                 disclaimer=None, location=row.get("Regions") or None, spend_lower=spend,
                 spend_upper=spend, currency=currency, n_ads=n, source_format=FORMAT,
                 source_file=str(src.path), source_line=line, source_sha256=src.sha256)
    return batch
