"""Numbers, ranges, shares and dates as the sources write them.

Every parser returns a clean value or raises :class:`ValueError` with a short reason; the readers turn
that reason into a ``rejects`` row. Nothing here guesses silently: OCR repair (``O`` → ``0``, ``;`` →
``,``, spaces inside numbers and times) only runs when asked for (``ocr=True``) and the caller flags
the field it repaired.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "parse_bound",
    "parse_bucket",
    "parse_count",
    "parse_date",
    "parse_money",
    "parse_range",
    "parse_share",
]

_INT64_MAX = 2**63 - 1
_SUFFIX = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}
_INT_RE = re.compile(r"[+-]?\d+")
_GROUPED_RE = re.compile(r"\d{1,3}([.,\u202f\u00a0 ]\d{3})+")
_DEC_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _ocr_digits(s: str) -> str:
    """Undo the usual OCR confusions inside a number: letter O/o → 0, l/I → 1, ';' → ','."""
    s = re.sub(r"(?<=[\d,.; ])[Oo]|[Oo](?=[\d,.; ]|$)|^[Oo]$", "0", s)
    s = re.sub(r"(?<=\d)[lI]|[lI](?=\d)", "1", s)
    s = s.replace(";", ",")
    return re.sub(r"(?<=[\d,.])\s+(?=\d)", "", s)


def parse_count(value: Any, *, ocr: bool = False) -> int:
    """A non-negative whole count: ``12``, ``"12"``, ``"10,496"``, ``"10.496"`` (grouped thousands),
    ``"12.0"``; with ``ocr=True`` also ``"O"``, ``"7, 193"``, ``"119;800"``. Negative → ValueError."""
    if value is None or isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"not a whole number: {value!r}")
        n = int(value)
    else:
        s = str(value).strip()
        if ocr:
            s = _ocr_digits(s)
        if _INT_RE.fullmatch(s):
            n = int(s)
        elif _GROUPED_RE.fullmatch(s):
            n = int(re.sub(r"\D", "", s))
        elif _DEC_RE.fullmatch(s) and float(s) == int(float(s)):
            n = int(float(s))
        else:
            raise ValueError(f"not a whole number: {str(value)[:40]!r}")
    if n < 0:
        raise ValueError(f"negative count: {n}")
    if n > _INT64_MAX:
        raise ValueError(f"count {str(n)[:24]} beyond the 64-bit range")
    return n


def parse_bound(value: Any) -> int | None:
    """A range bound as the Meta API writes it (``"1000"`` or ``1000``); missing → None."""
    if value is None or value == "":
        return None
    return parse_count(value)


def parse_range(obj: Any) -> tuple[int | None, int | None]:
    """``{"lower_bound": "0", "upper_bound": "999"}`` → (0, 999); a missing upper bound stays None
    (the top bucket is open). A lower bound above the upper bound is an error."""
    if obj is None:
        return None, None
    if not isinstance(obj, dict):
        raise ValueError(f"not a range object: {str(obj)[:40]!r}")
    lo = parse_bound(obj.get("lower_bound"))
    hi = parse_bound(obj.get("upper_bound"))
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"lower bound {lo} above upper bound {hi}")
    return lo, hi


def _amount(s: str) -> float:
    s = s.strip().lower().replace("\u202f", "").replace("\u00a0", "").replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kmb]?)", s)
    if not m:
        raise ValueError(f"not an amount: {s!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def parse_bucket(value: Any) -> tuple[int | None, int | None]:
    """An impression bucket → (lower, upper): ``"≤ 10k"`` → (0, 10000), ``"10k-100k"`` → (10000,
    100000), ``"> 10M"`` → (10000000, None), ``"≤100"`` → (0, 100), ``"5000"`` → (5000, 5000)."""
    if value is None:
        return None, None
    s = str(value).strip().replace("\u2013", "-").replace("\u2014", "-")
    if s == "":
        return None, None
    try:
        if s[0] in "≤<" or s.startswith("<="):
            return 0, int(_amount(s.lstrip("≤<=")))
        if s[0] in "≥>" or s.startswith(">="):
            return int(_amount(s.lstrip("≥>="))), None
        if s.endswith("+"):
            return int(_amount(s[:-1])), None
        if "-" in s[1:]:
            a, b = s.split("-", 1)
            lo, hi = int(_amount(a)), int(_amount(b))
            if lo > hi:
                raise ValueError(f"lower bound above upper bound in {s!r}")
            return lo, hi
        n = parse_count(s)
        return n, n
    except ValueError as e:
        raise ValueError(f"not a bucket: {s[:40]!r} ({e})") from None


_MONEY_RE = re.compile(r"^\s*([A-Za-z$€£]{0,3})\s*([\d.,\s]+?)\s*([A-Za-z ]{0,7})\s*$")
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP"}


def parse_money(value: Any, *, ocr: bool = False) -> tuple[float, str | None]:
    """An amount with an optional currency: ``"499.49 RUB"`` → (499.49, 'RUB'), ``"3, 106.28 RUB"``
    → (3106.28, 'RUB') with ``ocr=True``, ``"€12"`` → (12.0, 'EUR'), ``"1,234.5"`` → (1234.5, None)."""
    if value is None or isinstance(value, bool):
        raise ValueError("not an amount")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"not an amount: {value}")
        return float(value), None
    s = str(value)
    if ocr:
        s = _ocr_digits(s)
    m = _MONEY_RE.match(s)
    if not m or not re.search(r"\d", m.group(2)):
        raise ValueError(f"not an amount: {str(value)[:40]!r}")
    cur = (m.group(1) or m.group(3)).replace(" ", "").upper()
    cur = _SYMBOLS.get(cur, cur)
    num = re.sub(r"\s", "", m.group(2))
    if ocr and num.count(".") > 1:  # "7.609.42": OCR read the thousands comma as a dot
        head, _, tail = num.rpartition(".")
        num = head.replace(".", ",") + "." + tail
    if "," in num and "." in num:
        num = num.replace(",", "")
    elif "," in num:
        num = num.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+", num) else num.replace(",", ".")
    try:
        amount = float(num)
    except ValueError:
        raise ValueError(f"not an amount: {str(value)[:40]!r}") from None
    if not math.isfinite(amount):
        raise ValueError(f"not an amount: {str(value)[:40]!r}")
    if cur and not re.fullmatch(r"[A-Z]{3}", cur):
        raise ValueError(f"unknown currency {cur!r}")
    return amount, cur or None


def parse_share(value: Any) -> float:
    """A share in [0, 1]: ``"0.25"``, ``0.25``, ``"25%"`` → 0.25. Outside [0, 1] → ValueError."""
    if value is None or isinstance(value, bool):
        raise ValueError("not a share")
    if isinstance(value, str):
        s = value.strip()
        pct = s.endswith("%")
        try:
            x = float(s.rstrip("%").strip().replace(",", ".")) / (100.0 if pct else 1.0)
        except ValueError:
            raise ValueError(f"not a share: {value[:40]!r}") from None
    elif isinstance(value, int | float):
        x = float(value)
    else:
        raise ValueError(f"not a share: {str(value)[:40]!r}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"share {x} outside [0, 1]")
    return x


_TZ = {"UTC": 0, "GMT": 0, "Z": 0, "PST": -8, "PDT": -7, "MST": -7, "MDT": -6, "CST": -6, "CDT": -5,
       "EST": -5, "EDT": -4, "CET": 1, "CEST": 2, "BST": 1}
_FORMATS = ("%m/%d/%y %I:%M:%S %p", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%y %H:%M:%S", "%m/%d/%Y",
            "%m/%d/%y", "%d/%m/%Y", "%d/%m/%Y %H:%M", "%d.%m.%Y", "%Y/%m/%d", "%Y%m%d")
#: Day-first: the same forms with day and month swapped, tried first (``05/07/2022`` is 5 July).
_DAYFIRST = (*(f.replace("%m/%d", "%d/%m") for f in _FORMATS if "%m/%d" in f), "%d/%m/%Y", "%d/%m/%Y %H:%M",
             "%d/%m/%Y %H:%M:%S", "%d.%m.%Y", "%d.%m.%Y %H:%M", "%d-%m-%Y", "%Y/%m/%d", "%Y%m%d")
_MONTHFIRST = (*_FORMATS, "%m.%d.%Y", "%m-%d-%Y")


def _ocr_time(s: str) -> str:
    s = re.sub(r"\s*([:/])\s*", r"\1", s)                            # "08: 03 :40" → "08:03:40"
    s = re.sub(r"(\d\d:\d\d)[ -](\d\d)", r"\1:\2", s)                 # "07:16 58" → "07:16:58"
    s = re.sub(r"(\d\d)-\s?(\d\d)-\s?(\d\d)(?=\s*[AP]M)", r"\1:\2:\3", s)  # "08-00-00 AM"
    s = re.sub(r"(\d\d/\d\d/\d\d)(\d\d:)", r"\1 \2", s)               # "12/08/1606:22" → "12/08/16 06:22"
    return re.sub(r"(\d)([AP]M)", r"\1 \2", s)


def parse_date(value: Any, *, ocr: bool = False, dayfirst: bool | None = None) -> datetime | None:
    """A date or timestamp → naive UTC datetime. ISO 8601 (``2019-05-13T15:30:04+0000``,
    ``2023-09-24``), Unix seconds, and US forms such as ``04/13/16 07:48:33 AM PDT`` (zone
    abbreviations of the US and Europe). Empty → None; anything else → ValueError.

    ``dayfirst``: True reads ``aa/bb/yyyy`` as day/month (``05/07/2022`` → 5 July), False as
    month/day; None tries month/day, then day/month (a reader decides per column, see
    ``table.date_order``). An impossible date (``31/02/2024``) is a ValueError."""
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            dt = datetime.fromtimestamp(float(value), UTC).replace(tzinfo=None)
        except (ValueError, OverflowError, OSError):
            raise ValueError(f"not a date: {value!r}") from None
    else:
        s = str(value).strip()
        if not s:
            return None
        if ocr:
            s = _ocr_time(s)
        try:
            dt = datetime.fromisoformat(s.replace(" UTC", "+00:00"))
        except ValueError:
            offset = None
            m = re.fullmatch(r"(.*?)\s*\b([A-Z]{1,4})$", s)
            if m and m.group(2) in _TZ:
                s, offset = m.group(1), _TZ[m.group(2)]
            for fmt in (_DAYFIRST if dayfirst else _MONTHFIRST if dayfirst is False else _FORMATS):
                try:
                    dt = datetime.strptime(s, fmt)
                    break
                except ValueError:
                    continue
            else:
                raise ValueError(f"not a date: {str(value)[:40]!r}") from None
            if offset is not None:
                dt = dt.replace(tzinfo=UTC) - timedelta(hours=offset)
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    if not 1990 <= dt.year <= 2100:
        raise ValueError(f"date out of range: {dt.date()}")
    return dt
