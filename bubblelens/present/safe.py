"""What may leave the program: spreadsheet cells that cannot run, error messages without server paths.

:func:`neutralise_cells` follows OWASP's advice on CSV injection
(https://owasp.org/www-community/attacks/CSV_Injection): a text cell that begins with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return is prefixed with a single quote, so that a spreadsheet shows it
as text instead of evaluating it (``=HYPERLINK(...)`` from an ad's text stays a string). Numbers are
left as numbers (a negative number is not text).
"""

from __future__ import annotations

import csv
import re
from typing import Any

import pandas as pd

__all__ = ["FORMULA_START", "csv_bytes", "neutralise", "neutralise_cells", "public_error"]

#: First characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.@~+-]+){2,}[\\/]?")


def neutralise(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is a string a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def neutralise_cells(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells (and column names) cannot start a formula."""
    out = df.copy()
    for c in out.columns:
        col = out[c]
        if col.dtype == object or pd.api.types.is_string_dtype(col):
            out[c] = col.map(neutralise)
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def csv_bytes(df: pd.DataFrame) -> bytes:
    """``df`` as UTF-8 CSV with formula cells neutralised (what every download and export writes)."""
    # every text cell quoted: a CR inside a cell cannot end the row in a reader that splits on it
    return neutralise_cells(df).to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC).encode("utf-8")


def public_error(err: BaseException | str, *, limit: int = 300) -> str:
    """An error as a visitor may read it: one line, server paths replaced by ``…``, no traceback."""
    msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return _PATH.sub("…", msg)[:limit]
