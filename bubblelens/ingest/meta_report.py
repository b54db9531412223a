"""Reader of the Meta Ad Library *report* CSV (the web export: spend by page, by location or region).

The report lists no ads, only spend per (page, disclaimer), so its rows go to ``sponsor_spend``, not to
``messages``: one row per (report, page, disclaimer) (or per location in the locations file). Amounts
are ranges like every other spend: a number ``n`` is (n, n); ``≤100`` is (0, 100). The report is named by
its file name (``FacebookAdLibraryReport_<date>_<country>_<period>_<scope>``), so a newer download of
the same report updates its rows and another day's report adds its own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import FormatError
from .csvio import read_csv_records
from .ranges import parse_bucket, parse_count
from .text import DecodedFile
from .writer import Batch, Reject

__all__ = ["is_meta_report_header", "read_meta_report"]

FORMAT = "meta-csv"
_CURRENCY = re.compile(r"amount spent(?:\s*\(([A-Z]{3})\))?", re.I)


def _col(header: list[str], *names: str) -> int | None:
    low = [h.lower() for h in header]
    for n in names:
        if n in low:
            return low.index(n)
    return None


def is_meta_report_header(header: list[str]) -> bool:
    low = [h.lower() for h in header]
    return any(h.startswith("amount spent") for h in low) and (
        "disclaimer" in low or "location name" in low)


def _report_name(path: Path) -> tuple[str, str]:
    """(report id, scope): the file stem, and its last part (advertisers, locations or a region)."""
    stem = path.stem
    m = re.match(r"FacebookAdLibraryReport_?(.*)$", stem)
    scope = "advertisers"
    if m and "_" in m.group(1):
        last = m.group(1).rsplit("_", 1)[1]
        if not re.fullmatch(r"\d+|days|yesterday|lifetime", last):
            scope = last
    return stem, scope


def read_meta_report(src: DecodedFile, **_: Any) -> Batch:
    """Read one report CSV into ``sponsor_spend`` rows."""
    name = src.path.name
    header, records = read_csv_records(src.text, name)
    if not is_meta_report_header(header):
        raise FormatError(f"{name} is not a Meta Ad Library report CSV (no 'Amount spent' and "
                          "'Disclaimer' or 'Location name' columns)")
    report, scope = _report_name(src.path)
    amount = next(i for i, h in enumerate(header) if h.lower().startswith("amount spent"))
    m = _CURRENCY.match(header[amount])
    currency = m.group(1) if m and m.group(1) else None
    i_id, i_page = _col(header, "page id"), _col(header, "page name")
    i_disc, i_n = _col(header, "disclaimer"), _col(header, "number of ads in library")
    i_loc = _col(header, "location name")
    batch = Batch(format=FORMAT, kind="sponsor_spend")
    rows = batch.rows("sponsor_spend")
    seen: dict[str, int] = {}
    region = None if scope in ("advertisers", "locations") else scope
    for line, _, rec in batch.well_formed(header, records):

        def get(i: int | None, rec: list[str] = rec) -> str | None:
            return (rec[i].strip() or None) if i is not None else None

        try:
            lo, hi = parse_bucket(rec[amount])
        except ValueError as e:
            batch.rejects.append(Reject.of(line, header[amount], str(e), rec))
            continue
        n_ads = None
        if i_n is not None and get(i_n) is not None:
            try:
                n_ads = parse_count(get(i_n))
            except ValueError as e:
                batch.rejects.append(Reject.of(line, header[i_n], str(e), rec))
                continue
        page_id, page, disc, loc = get(i_id), get(i_page), get(i_disc), get(i_loc) or region
        key = "\x1f".join(x or "" for x in (page_id, page, disc, get(i_loc)))
        if not key.strip("\x1f"):
            batch.rejects.append(Reject.of(line, "(row)", "no page, disclaimer or location", rec))
            continue
        # two rows with the same page and disclaimer are two pages that share a name (GB 2019),
        # or Instagram users (page id 0): keep both, numbered in file order
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key += f"\x1f#{seen[key]}"
        rows.add(report=report, row_key=key, scope=scope, page_id=page_id, page_name=page,
                 disclaimer=disc, location=loc, spend_lower=None if lo is None else float(lo),
                 spend_upper=None if hi is None else float(hi), currency=currency, n_ads=n_ads,
                 source_format=FORMAT, source_file=str(src.path), source_line=line,
                 source_sha256=src.sha256)
    return batch
