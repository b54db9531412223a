"""CSV records with their line numbers (a quoted field may span lines)."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator

from ..errors import FormatError
from .text import sniff_delimiter

__all__ = ["read_csv_records"]

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def read_csv_records(text: str, name: str, *, delimiter: str | None = None
                     ) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header (stripped names) and an iterator of (first line of the record, values).
    The header is line 1; blank lines are skipped."""
    delim = delimiter or sniff_delimiter(text[:65536])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    try:
        header = next(reader)
    except StopIteration:
        raise FormatError(f"{name} is empty") from None
    except csv.Error as e:
        raise FormatError(f"{name} is not a readable CSV file ({e})") from None
    header = [h.strip() for h in header]
    if not any(header):
        raise FormatError(f"{name} has no header row")

    def records() -> Iterator[tuple[int, list[str]]]:
        prev = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                raise FormatError(f"{name}: unreadable CSV near line {prev + 1} ({e})") from None
            start, prev = prev + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            yield start, row

    return header, records()
