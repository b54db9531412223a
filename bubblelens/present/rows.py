"""Which segment rows a figure shows when a scheme has more segments than a reader can take in, and in
what order (the report's heatmap, cross-cutting and funnel figures; docs/report.md, "Many segments").

A region scheme of a real export holds every region an ad reached, abroad too: 150 of Meta's 2024 German
ads leave 213 measured regions of about 20 countries, eight times more rows than fit a page. The rule:

1. at most :data:`MAX_ROWS` (25) rows: an A4 page or a laptop screen at the report's 9 pt labels, and
   enough for the 16 German Länder, the 13 French régions or the 17 Spanish communities and a few more;
2. the *home country*, one holding more than half of all impressions, comes first: its segments all
   (largest first, up to the maximum), even when a region abroad received more of a small sample, because
   a reader of a national data set looks for every region of the country;
3. the rest of the rows go to the largest other segments by impressions;
4. when the rows shown are in two countries or more, they are grouped by country: the home country (else
   the one with most impressions) first, then the others by their impressions, segments with no known
   country last; inside a group, largest first. Otherwise the caller's order is kept.

Nothing is dropped silently: :class:`RowSelection` says how many segments were left out and their share of
the impressions, for the figure's caption; tables and exported files keep every row. Suppressed segments
(under the privacy floor) are never among the rows: they are not in the measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_ROWS", "RowSelection", "country_label", "select_rows"]

#: rows of a figure at most (see module docstring)
MAX_ROWS = 25
#: a country holding more than this share of all impressions is the home country
HOME_SHARE = 0.5


@dataclass(frozen=True)
class RowSelection:
    """The rows a figure shows: ``rows`` (indices into the input, in display order), ``countries`` (the
    country of each shown row when the figure groups by country, else all ``None``), how many rows there
    were, the share of all impressions left out, and the home country (``None`` when none)."""

    rows: tuple[int, ...]
    countries: tuple[str | None, ...]
    n_total: int
    left_out_share: float
    home: str | None
    n_home: int

    @property
    def n_shown(self) -> int:
        """Rows shown."""
        return len(self.rows)

    @property
    def n_left_out(self) -> int:
        """Rows of the input not shown (they are in the tables)."""
        return self.n_total - len(self.rows)

    @property
    def grouped(self) -> bool:
        """True when the rows are grouped by country."""
        return any(c is not None for c in self.countries)


def select_rows(impressions: Sequence[float] | np.ndarray, countries: Sequence[str | None] | None = None, *,
                max_rows: int = MAX_ROWS) -> RowSelection:
    """The rows to show of segments with these ``impressions`` (and ISO 3166-1 ``countries``, ``None``
    where a segment is no place of a known country), following the module's rule."""
    imp = np.nan_to_num(np.asarray(impressions, dtype=float).reshape(-1), nan=0.0)
    n = len(imp)
    ctry: list[str | None] = list(countries) if countries is not None else [None] * n
    if len(ctry) != n:
        raise ValueError(f"{len(ctry)} countries for {n} rows")
    total = float(imp.sum())
    by_country: dict[str, float] = {}
    for c, v in zip(ctry, imp, strict=True):
        if c is not None:
            by_country[c] = by_country.get(c, 0.0) + float(v)
    ranked = sorted(by_country, key=lambda c: (-by_country[c], c))
    home = ranked[0] if ranked and total > 0 and by_country[ranked[0]] > HOME_SHARE * total else None

    def largest(idx: list[int]) -> list[int]:
        return sorted(idx, key=lambda i: (-imp[i], i))

    first = largest([i for i in range(n) if home is not None and ctry[i] == home])[:max_rows]
    taken = set(first)
    rest = largest([i for i in range(n) if i not in taken])[:max_rows - len(first)]
    chosen = set(first) | set(rest)
    shown_countries = {ctry[i] for i in chosen if ctry[i] is not None}
    if len(shown_countries) >= 2:
        order = {c: k for k, c in enumerate(ranked)}  # the home country, when any, is the first
        rows = sorted(chosen, key=lambda i: (order.get(ctry[i] or "", len(order)), -imp[i], i))
        shown: tuple[str | None, ...] = tuple(ctry[i] for i in rows)
    else:
        rows = sorted(chosen)
        shown = (None,) * len(rows)
    left = float(imp[[i for i in range(n) if i not in chosen]].sum()) if n > len(chosen) else 0.0
    return RowSelection(rows=tuple(rows), countries=shown, n_total=n,
                        left_out_share=left / total if total > 0 else 0.0, home=home, n_home=len(first))


def country_label(label: str, country: str | None) -> str:
    """A row's label with its country when the rows are grouped: ``"Bayern (DE)"``."""
    return f"{label} ({country})" if country else label
