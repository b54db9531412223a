"""A segment's home lean: declared (panel), external (a table the user gives), or circular.

- **declared**: the panel attribute ``declared_lean`` of the segment's members (audience schemes only).
  Home camp = the most common declared camp among members (empty values ignored); lean = the mean
  position of the members' declared camps (or numbers in ``[-1, 1]``).
- **external**: a CSV (``segment`` column and either a ``lean`` column in ``[-1, 1]`` or one column
  per camp holding shares, e.g. vote shares by region) or a YAML mapping ``segment: lean`` or
  ``segment: {camp: share}``. A segment is matched by id or by label. Home camp = the camp of largest
  share (or, for a bare number, the camp nearest to it); lean = share-weighted mean position.
- **circular**: the dominant camp a segment *receives*. It says what a segment gets, not who it is, so
  every output that uses it is flagged ``circular`` (cross-cutting against it is at most 1 − 1/#camps).

Camp positions on the left–right axis are data: the codebook's ``position`` of each camp, written to table
``camps`` by ``classify`` (:func:`camp_positions`). A camp without one has ``nan``: it still has a home and
cross-cutting exposure (categorical); only slant and the echo-chamber correlation need positions.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import MeasureError
from ..store import Store

__all__ = ["HomeLean", "Positions", "camp_positions", "circular_lean", "declared_lean", "external_lean", "position_of"]

Positions = Mapping[str, float]


def camp_positions(store: Store) -> dict[str, float]:
    """``camp id → position`` from table ``camps`` (``nan`` where the codebook gives no position)."""
    rows = store.con.execute("SELECT camp_id, position FROM camps").fetchall()
    return {str(c): (math.nan if p is None else float(p)) for c, p in rows}


def position_of(camp: str, positions: Positions) -> float:
    """Left–right position of a camp id in ``positions`` (``nan`` when unknown); a number in ``[-1, 1]``
    (a declared lean written as a number) is itself.

    >>> position_of("yes", {"yes": -0.4}), position_of("0.3", {}), math.isnan(position_of("no", {}))
    (-0.4, 0.3, True)
    """
    c = str(camp).strip()
    if c in positions:
        return float(positions[c])
    if c.lower() in positions:
        return float(positions[c.lower()])
    try:
        x = float(c)
    except ValueError:
        return math.nan
    return x if -1.0 <= x <= 1.0 else math.nan


@dataclass
class HomeLean:
    """Per segment: home camp (``None`` if unknown), numeric lean, and where it came from."""

    camp: list[str | None]
    value: np.ndarray
    source: str  # declared | external | circular

    @property
    def circular(self) -> bool:
        return self.source == "circular"


def _nearest_camp(x: float, camps: list[str], positions: Positions) -> str | None:
    known = [(abs(position_of(c, positions) - x), c) for c in camps if not math.isnan(position_of(c, positions))]
    return min(known)[1] if known and not math.isnan(x) else None


def declared_lean(store: Store, members: pd.DataFrame, segment_ids: list[str], *,
                  positions: Positions, attribute: str = "declared_lean") -> HomeLean:
    """Home lean of audience segments from their members' declared attribute ``attribute``."""
    attrs = store.con.execute("SELECT audience_id, value FROM audience_attrs WHERE name = ?", [attribute]).df()
    if attrs.empty:
        raise MeasureError(f"no audience declares {attribute!r}: give --lean FILE or let the lean be circular")
    m = members.merge(attrs, left_on="member_id", right_on="audience_id")
    m = m[m["value"].notna() & (m["value"].astype(str).str.strip() != "")]
    camps: list[str | None] = []
    values: list[float] = []
    for s in segment_ids:
        vals = m.loc[m["segment_id"] == s, "value"].astype(str).str.strip().str.lower().tolist()
        if not vals:
            camps.append(None)
            values.append(math.nan)
            continue
        top = Counter(vals).most_common()
        best = max(n for _, n in top)
        camps.append(sorted(v for v, n in top if n == best)[0])
        pos = [position_of(v, positions) for v in vals]
        pos = [p for p in pos if not math.isnan(p)]
        values.append(float(np.mean(pos)) if pos else math.nan)
    return HomeLean(camps, np.asarray(values, dtype=np.float64), "declared")


def _read_external(path: Path) -> dict[str, dict[str, float] | float]:
    if not path.exists():
        raise MeasureError(f"lean file {path} does not exist")
    out: dict[str, dict[str, float] | float] = {}
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict):
            raise MeasureError(f"{path}: expected a mapping segment → lean or segment → {{camp: share}}")
        for k, v in raw.items():
            if isinstance(v, dict):
                out[str(k)] = {str(a): float(b) for a, b in v.items()}
            else:
                out[str(k)] = float(v)
        return out
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "segment" not in rows[0]:
        raise MeasureError(f"{path}: a lean CSV needs a 'segment' column, and 'lean' or one column per camp")
    for i, r in enumerate(rows, start=2):
        try:
            if r.get("lean") not in (None, ""):
                out[r["segment"]] = float(r["lean"])
            else:
                out[r["segment"]] = {c: float(v) for c, v in r.items() if c != "segment" and v not in (None, "")}
        except ValueError as e:
            raise MeasureError(f"{path}, line {i}: {e}") from e
    return out


def external_lean(path: str | Path, segment_ids: list[str], labels: list[str], camps: list[str], *,
                  positions: Positions) -> HomeLean:
    """Home lean from a user table (CSV or YAML), matched on segment id, then label (case-insensitive).

    A home camp that no message carries is kept (nothing the segment received is from its camp); the
    measure stage warns about it, since a misspelt camp id looks the same.
    """
    table = _read_external(Path(path))
    low = {k.strip().lower(): v for k, v in table.items()}
    home: list[str | None] = []
    values = []
    for sid, lab in zip(segment_ids, labels, strict=True):
        v = table.get(sid, table.get(lab, low.get(str(lab).strip().lower())))
        if v is None:
            home.append(None)
            values.append(math.nan)
        elif isinstance(v, dict):
            tot = sum(v.values())
            if tot <= 0:
                home.append(None)
                values.append(math.nan)
                continue
            home.append(max(v.items(), key=lambda kv: kv[1])[0])
            pos = [(position_of(c, positions), s) for c, s in v.items()
                   if not math.isnan(position_of(c, positions))]
            w = sum(s for _, s in pos)
            values.append(sum(p * s for p, s in pos) / w if w > 0 else math.nan)
        else:
            home.append(_nearest_camp(float(v), camps, positions))
            values.append(float(v))
    return HomeLean(home, np.asarray(values, dtype=np.float64), "external")


def circular_lean(N_camp: np.ndarray, camps: list[str], *, positions: Positions) -> HomeLean:
    """The dominant camp each segment receives (``N_camp`` point matrix, ``unassigned`` ignored)."""
    use = [i for i, c in enumerate(camps) if c != "unassigned"]
    home: list[str | None] = []
    values = []
    for row in np.asarray(N_camp):
        if not use or row[use].sum() <= 0:
            home.append(None)
            values.append(math.nan)
            continue
        c = camps[use[int(np.argmax(row[use]))]]
        home.append(c)
        values.append(position_of(c, positions))
    return HomeLean(home, np.asarray(values, dtype=np.float64), "circular")
