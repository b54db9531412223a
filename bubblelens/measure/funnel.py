"""The funnel supply → targeted → delivered, where the data allows it.

What is computable, per segment of a one-dimension **cells** scheme (``region``, ``age`` or ``gender``)
when the store has declared targeting (table ``targeting``, e.g. the EU DSA fields of Meta's library):

- **supply**: the ads of the measurement (ads delivered to at least one segment shown, i.e. active in the
  period and area of the data);
- **targeted**: those whose declared targeting includes the segment: no targeting on that dimension means
  everyone; a ``location`` includes the region it names or the country the region lies in, in any
  language (``Bayern, Duitsland`` = ``Bayern`` = ``DE-BY``; :mod:`bubblelens.geo`), unless the region or its
  country is excluded; a location finer than a region (a city, postcodes) includes the regions of its
  country (an upper bound: which region is not known) and one that names no known place includes every
  region (it cannot exclude any); both are counted in ``unresolved_locations``. An ``age`` range
  ``18-65`` / ``65+`` includes the age bands it covers; ``gender`` ``all`` includes both;
- **delivered**: those with a positive delivery share in the segment.

Each stage gives the number of ads and the (ad-count, label-probability weighted) cross-cutting share
against the segment's home camp: the step supply → targeted is the advertisers' choice, targeted →
delivered the platform's delivery. Interest and declared schemes have no declared targeting per segment:
no funnel (``None``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..store import Store
from .bootstrap import ExposureData

__all__ = ["funnel"]

_DIM_OF = {"region": "location", "age": "age", "gender": "gender"}


def _age_bounds(text: str) -> tuple[float, float] | None:
    t = str(text).strip()
    m = re.fullmatch(r"(\d+)\s*\+", t)
    if m:
        return float(m.group(1)), 200.0
    m = re.fullmatch(r"(\d+)\s*[-–]\s*(\d+)", t)
    if m:
        return float(m.group(1)), float(m.group(2))
    return None


@dataclass(frozen=True)
class _Rules:
    """One ad's declared targeting on one dimension, parsed once: included and excluded values."""

    inc: frozenset[str]
    exc: frozenset[str]
    ages: tuple[tuple[float, float] | None, ...]


def _parse_rules(rules: pd.DataFrame) -> dict[str, _Rules]:
    """Per message id, its rules (``value``, ``included``) as lower-cased sets (one pass over the rows)."""
    inc: dict[str, list[str]] = {}
    exc: dict[str, list[str]] = {}
    included = rules["included"].fillna(True).astype(bool).to_numpy()
    values = rules["value"].astype(str).str.strip().str.lower().to_numpy()
    for mid, val, ok in zip(rules["message_id"].to_numpy(), values, included, strict=True):
        (inc if ok else exc).setdefault(mid, []).append(val)
        (exc if ok else inc).setdefault(mid, [])
    ages = {v: _age_bounds(v) for v in set(values)}  # few distinct values: each parsed once
    return {m: _Rules(frozenset(inc[m]), frozenset(exc[m]), tuple(ages[v] for v in inc[m])) for m in inc}


@dataclass(frozen=True)
class _Place:
    """Where a label points: a region (ISO 3166-2), a country (ISO 3166-1) within which it lies, or nowhere."""

    region: str | None
    country: str | None


def _places(values: set[str]) -> dict[str, _Place]:
    """Each location label → its place, by the one region matcher (:func:`bubblelens.geo.region_matcher`)."""
    from ..geo import region_matcher

    m = region_matcher()
    out = {}
    for v in values:
        country = m.country_of(v)
        if country:
            out[v] = _Place(None, country)
            continue
        hit = m.explain(v)
        out[v] = _Place(hit.iso_3166_2, (hit.iso_3166_2 or "")[:2] or hit.country)
    return out


_NOWHERE = _Place(None, None)


@dataclass(frozen=True)
class _Reach:
    """What one set of location labels names: the labels, their regions, the countries named as a whole
    (or by a place finer than a region), and whether one names no known place."""

    labels: frozenset[str]
    regions: frozenset[str]
    countries: frozenset[str]
    unknown: bool


class _Places(dict[str, _Place]):
    """Label → place, and each rule set's :class:`_Reach` computed once (ads share rule sets)."""

    def __init__(self, places: dict[str, _Place]) -> None:
        super().__init__(places)
        self._reach: dict[frozenset[str], _Reach] = {}

    def reach(self, values: frozenset[str]) -> _Reach:
        r = self._reach.get(values)
        if r is None:
            ps = [self.get(v, _NOWHERE) for v in values]
            r = self._reach[values] = _Reach(
                values, frozenset(p.region for p in ps if p.region),
                frozenset(p.country for p in ps if p.region is None and p.country), _NOWHERE in ps)
        return r


def _location_includes(seg: str, rules: _Rules, places: dict[str, _Place]) -> bool:
    """Does a location rule set include the segment labelled ``seg`` (see the module docstring)?

    A label hits the segment when it is the segment's label, names the segment's region, or names (or lies
    finer than a region in) the segment's country."""
    gaz = places if isinstance(places, _Places) else _Places(places)
    sp_ = gaz.get(seg, _NOWHERE)

    def hits(values: frozenset[str]) -> bool:
        r = gaz.reach(values)
        return (seg in r.labels or (bool(sp_.region) and sp_.region in r.regions)
                or (sp_.country is not None and sp_.country in r.countries))

    if hits(rules.exc):
        return False
    if not rules.inc or hits(rules.inc):
        return True
    # a location that names no known place cannot exclude the segment
    return gaz.reach(rules.inc).unknown


def _includes(dim: str, segment_value: str, rules: _Rules | None, places: dict[str, _Place]) -> bool:
    """Does one ad's declared targeting on ``dim`` include the segment? (``None``: no rules = everyone)."""
    if rules is None:
        return True
    seg = segment_value.strip().lower()
    if dim == "location":
        return _location_includes(seg, rules, places)
    if dim == "gender":
        return not rules.inc or bool(rules.inc & {"all", "tous", seg})
    if dim == "age":
        band = _age_bounds(segment_value)
        if band is None:
            return True
        return any(rng is None or (rng[0] <= band[0] and band[1] <= rng[1]) for rng in rules.ages)
    return True


def funnel(store: Store, data: ExposureData, *, scheme_name: str, labels: list[str],
           home_camp: list[str | None]) -> list[dict[str, Any]] | None:
    """Rows ``{segment, supply, targeted, delivered}`` (each ``{"value": ads, "cross_cutting": x}``), or
    ``None`` when the scheme or the store has no declared targeting (see module docstring)."""
    if not scheme_name.startswith("cells:") or "_" in scheme_name.split(":", 1)[1]:
        return None
    dim_seg = scheme_name.split(":", 1)[1]
    dim = _DIM_OF.get(dim_seg)
    if dim is None:
        return None
    targ = store.con.execute("SELECT message_id, value, included FROM targeting WHERE dimension = ?", [dim]).df()
    if targ.empty:
        return None
    ids = pd.Index(data.message_ids)
    targ = targ[targ["message_id"].isin(ids)]
    groups = _parse_rules(targ)
    values = {v.strip().lower() for v in labels}
    places = _Places(_places(values | {v for r in groups.values() for v in r.inc | r.exc}) if dim == "location"
                     else {})
    unresolved = sorted({v for r in groups.values() for v in r.inc | r.exc
                         if dim == "location" and places[v].region is None})
    camp_p = np.zeros((data.n_messages, len(data.camps)))
    np.add.at(camp_p, (np.repeat(np.arange(data.n_messages), data.camp_idx.shape[1]), data.camp_idx.ravel()),
              data.camp_p.ravel())
    delivered = (sp.csc_matrix(data.weights) > 0).toarray() if sp.issparse(data.weights) else data.weights > 0
    # ads share rule sets: decide each distinct set once per segment (the last slot: no rules = everyone)
    distinct = list(dict.fromkeys(groups.values()))
    slot = {r: i for i, r in enumerate(distinct)}
    codes = np.array([slot[groups[m]] if m in groups else len(distinct) for m in data.message_ids], dtype=np.int64)
    rows = []
    for s, label in enumerate(labels):
        targeted = np.array([*(_includes(dim, label, r, places) for r in distinct), True], dtype=bool)[codes]
        stage_masks = {"supply": np.ones(data.n_messages, dtype=bool), "targeted": targeted,
                       "delivered": np.asarray(delivered[:, s], dtype=bool)}
        row: dict[str, Any] = {"segment": label}
        if dim == "location":
            row["unresolved_locations"] = len(unresolved)
        for name, mask in stage_masks.items():
            cc = None
            home = home_camp[s]
            if home in data.camps and mask.any():
                mass = camp_p[mask][:, [i for i, c in enumerate(data.camps) if c != "unassigned"]].sum()
                if mass > 0:
                    cc = round(float(1 - camp_p[mask, data.camps.index(home)].sum() / mass), 6)
            row[name] = {"value": int(mask.sum()), "cross_cutting": cc}
        rows.append(row)
    return rows
