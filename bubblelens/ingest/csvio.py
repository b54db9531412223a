"""CSV records with their line numbers (a quoted field may span lines)."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator

from ..errors import FormatError
from .jsonio import MAX_STRING, JsonProblem, line_problem
from .text import sniff_delimiter

__all__ = ["read_csv_records"]

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def read_csv_records(text: str, name: str, *, delimiter: str | None = None
                     ) -> tuple[list[str], Iterator[tuple[int, list[str] | JsonProblem]]]:
    """The header (stripped names) and an iterator of (first line of the record, values).
    The header is line 1; blank lines are skipped. A record holding bytes that are not UTF-8, a NUL
    or a value longer than :data:`~.jsonio.MAX_STRING` comes as a :class:`~.jsonio.JsonProblem`
    (its line is rejected, the file goes on); so does a record the csv module cannot parse (read
    strictly: a stray quote rejects its line, and the lines after it are read on their own)."""
    delim = delimiter or sniff_delimiter(text[:65536])
    src_lines = io.StringIO(text, newline="").readlines()  # physical lines, as the csv reader counts them
    reader = csv.reader(src_lines, delimiter=delim, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise FormatError(f"{name} is empty") from None
    except csv.Error as e:
        raise FormatError(f"{name} is not a readable CSV file ({e})") from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    if not any(header):
        raise FormatError(f"{name} has no header row")

    def checked(start: int, row: list[str]) -> Iterator[tuple[int, list[str] | JsonProblem]]:
        if not row or (len(row) == 1 and not row[0].strip()):
            return
        joined = "\x1f".join(row)
        bad = line_problem(joined)
        if bad is not None:
            bad.raw = ",".join(row)
            yield start, bad
        elif len(joined) > MAX_STRING and max(map(len, row)) > MAX_STRING:
            yield start, JsonProblem(f"a value of {max(map(len, row)):,} characters (limit {MAX_STRING:,})",
                                     ",".join(row), "(limit)")
        else:
            yield start, row

    def records() -> Iterator[tuple[int, list[str] | JsonProblem]]:
        # strict: a stray quote (text after a closing quote, a quote never closed) is an error, not
        # a value that swallows the next lines; its line is rejected and the lines after it are read
        # again on their own, so nothing is lost silently
        rdr, base, prev = reader, 0, reader.line_num
        while True:
            try:
                row = next(rdr)
            except StopIteration:
                return
            except csv.Error as e:
                bad_line = prev + 1
                yield bad_line, JsonProblem(f"unreadable CSV ({e}); the lines after it are read on their own",
                                            src_lines[bad_line - 1][:2000] if bad_line <= len(src_lines) else "",
                                            "(row)")
                rdr, base, prev = csv.reader(src_lines[bad_line:], delimiter=delim, strict=True), bad_line, bad_line
                continue
            first, prev = prev + 1, base + rdr.line_num
            yield from checked(first, row)

    return header, records()
