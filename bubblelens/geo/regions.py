"""One matcher from the region strings ad libraries write to an admin-1 shape (ISO 3166-2).

Ad libraries write regions as free text: Meta's ``delivery_by_region`` in English or the page's language
("Saxony-Anhalt", "Nordrhein-Westfalen", "Lubusz Voivodeship"), the DSA ``target_locations`` in the
viewer's locale with the country appended ("Bayern, Duitsland"), reports in their own words ("Flemish
Region"). :class:`RegionMatcher` maps each to the ``iso_3166_2`` code of a shipped shape
(:mod:`bubblelens.geo.boundaries`), or ``None``.

How a label is matched (first rule that gives exactly one code wins):

1. the label is normalised: Unicode NFKD, combining marks dropped, casefolded, every run of non-letters
   and non-digits one space (so "Île-de-France", "ILE DE FRANCE" and "Ile de France" are one key);
2. trailing comma-separated parts that are country names (any of ~50 CLDR locales, or ISO alpha-2) are
   cut off and become the country (unless ``country`` is given);
3. an ISO 3166-2 code ("DE-BY") of a shipped shape is itself;
4. the names of ``admin1_names.csv`` (Natural Earth's 26 languages, alternative and local names), the
   country's map layer (France's régions, GB nations, BE/IT/ES regions) before its admin-1 units, NE's
   ``name`` before a translation before an alternative name before a WOE/GeoNames name; only candidates
   in the country when one is known; a bare country name is the country ("country"), unless only regions
   of *other* countries carry it ("Georgia" is US-GA, "Luxembourg" the country);
5. the same with generic designators dropped on both sides ("Region", "Voivodeship", "County", "District",
   "Province", "Canton of", "(region)", ...), so "Grevenmacher District" finds "Grevenmacher"; when several
   units share the name, the one whose Natural Earth type is the label's designator ("Zagreb County" is the
   county HR-01, not the city HR-21);
6. France's pre-2016 régions ("Alsace", "Rhône-Alpes", ...), which Meta still writes, go to the région
   that holds them now, before rule 4 (NE gives their names to départements as WOE names).

Several codes left at the best rank (e.g. "Limburg": NL-LI and BE-VLI, no country known) is ``None``:
:meth:`RegionMatcher.explain` says why a label did not match.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from .boundaries import MAP_LAYERS, load_names

__all__ = ["Match", "RegionMatcher", "normalise", "region_matcher"]

_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)
_ISO2 = re.compile(r"^[a-z]{2}$")
_ISO3166_2 = re.compile(r"^([a-z]{2}) ?([a-z0-9]{1,3})$")
_POSTCODE = re.compile(r"^\d[\d ]{2,9}\d$")
_POSTCODE_COUNT = re.compile(r"^(?:(.+?) )?\d[\d ]* (postcodes?|postal codes?|zip codes?|codes? postaux|postleitzahlen)$")

# Generic words for "region" that libraries add or drop; removed from both sides for rule 5.
_DESIGNATORS = (
    "autonomous community of", "principality of", "autonomous community", "autonomous region of", "autonomous region",
    "administrative region", "planning region", "statistical region", "federal state of", "free state of",
    "state of", "region of", "province of", "canton of", "county of", "department of", "municipality of",
    "voivodeship", "voivodship", "governorate", "municipality", "prefecture", "department", "province",
    "oblast", "county", "district", "region", "state", "canton", "krai", "land", "city of", "city",
)
_DESIGNATOR_RE = re.compile(r"\b(" + "|".join(re.escape(d) for d in _DESIGNATORS) + r")\b")

# France's 22 metropolitan régions before 2016, which Meta's delivery_by_region still writes for some ads.
_FR_BEFORE_2016 = {
    "alsace": "FR-GES", "lorraine": "FR-GES", "champagne ardenne": "FR-GES",
    "aquitaine": "FR-NAQ", "limousin": "FR-NAQ", "poitou charentes": "FR-NAQ",
    "auvergne": "FR-ARA", "rhone alpes": "FR-ARA",
    "bourgogne": "FR-BFC", "burgundy": "FR-BFC", "franche comte": "FR-BFC",
    "basse normandie": "FR-NOR", "haute normandie": "FR-NOR", "lower normandy": "FR-NOR",
    "upper normandy": "FR-NOR",
    "languedoc roussillon": "FR-OCC", "midi pyrenees": "FR-OCC",
    "nord pas de calais": "FR-HDF", "picardie": "FR-HDF", "picardy": "FR-HDF",
}
# Name fields by trust: the name itself and its translations, then alternative/local forms, then the
# WOE / GeoNames names (NE's ``woe_name`` is sometimes the containing region, e.g. Andalucía for Almería).
# NE's ``name_en`` comes from Wikidata and is not always right (DK-84's is "Denmark"), so it ranks with the
# other translations.
_FIELD_RANK = {"name": 0, "ne_region": 2, "name_alt": 2, "name_local": 2, "woe_name": 3, "gn_name": 3}
_OTHER_FIELD_RANK = 1  # name_en, name_de, ... name_zht
# Compass adjectives written both ways ("Southern Aegean" / "South Aegean"), unified for rule 5.
_COMPASS = {"southern": "south", "northern": "north", "eastern": "east", "western": "west"}


def normalise(text: str) -> str:
    """Accent-, case- and punctuation-insensitive key: NFKD, no combining marks, casefold, runs of
    non-alphanumerics → one space. ``normalise("Provence-Alpes-Côte d’Azur") == "provence alpes cote d azur"``."""
    t = unicodedata.normalize("NFKD", str(text))
    t = "".join(ch for ch in t if not unicodedata.combining(ch)).casefold()
    return _NON_ALNUM.sub(" ", t).strip()


def _strip_designators(key: str) -> str:
    return " ".join(_COMPASS.get(w, w) for w in _DESIGNATOR_RE.sub(" ", key).split())


@dataclass(frozen=True)
class Match:
    """How one label matched: the code (or ``None``), its country, and what kind of label it is
    (``region``, ``country``, ``postcode``, ``ambiguous`` or ``unknown``) with candidates when ambiguous."""

    label: str
    iso_3166_2: str | None
    country: str | None
    kind: str
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Cand:
    code: str
    iso_a2: str
    rank: int  # lower is better: layer (map layer 0, admin-1 10) + field rank


class RegionMatcher:
    """Region label → ISO 3166-2 code of a shipped shape (see module docstring for the rules).

    Build once (≈0.5 s: ~80,000 names normalised) and reuse: :func:`region_matcher` caches one.
    """

    def __init__(self) -> None:
        names = load_names()
        self._exact: dict[str, list[_Cand]] = {}
        self._loose: dict[str, list[_Cand]] = {}
        self.codes: dict[str, str] = {}  # code -> iso_a2
        self._types: dict[str, str] = {}
        for code, iso_a2, layer, fields, type_en in names["regions"]:
            self.codes.setdefault(code, iso_a2)
            if type_en:
                self._types[code] = normalise(type_en)
            layer_rank = 0 if MAP_LAYERS.get(iso_a2) == layer else 10
            seen: set[str] = set()
            for field, name in sorted(fields, key=lambda f: _FIELD_RANK.get(f[0], _OTHER_FIELD_RANK)):
                key = normalise(name)
                if not key or key in seen:
                    continue
                seen.add(key)
                cand = _Cand(code, iso_a2, layer_rank + _FIELD_RANK.get(field, _OTHER_FIELD_RANK))
                self._exact.setdefault(key, []).append(cand)
                loose = _strip_designators(key)
                if loose:
                    self._loose.setdefault(loose, []).append(cand)
        self._countries: dict[str, str] = {}
        for iso_a2, cnames in names["countries"].items():
            for n in cnames:
                self._countries.setdefault(normalise(n), iso_a2)
        for iso_a2 in {c for c in self.codes.values()} | set(names["countries"]):
            self._countries.setdefault(iso_a2.lower(), iso_a2)
        self._codes_lower = {c.lower(): c for c in self.codes}
        self._cache: dict[tuple[str, str | None], Match] = {}

    # -- countries --------------------------------------------------------------------------------------
    def country_of(self, label: str | None) -> str | None:
        """ISO 3166-1 alpha-2 of a country-only label ("Duitsland", "Germany", "DE", "Deutschland"), else
        ``None``."""
        if label is None or (isinstance(label, float) and pd.isna(label)):
            return None
        return self._countries.get(normalise(label))

    def _country_hint(self, country: str | None) -> str | None:
        if country is None:
            return None
        if len(country) == 2 and country.upper() in {c for c in self.codes.values()}:
            return country.upper()
        return self.country_of(country)

    # -- regions ----------------------------------------------------------------------------------------
    def match(self, label: str | None, country: str | None = None) -> str | None:
        """ISO 3166-2 code of the shape ``label`` names, or ``None`` (not a region, unknown or ambiguous).

        >>> m = region_matcher()
        >>> m.match("Bayern, Duitsland"), m.match("Ile de France"), m.match("de-by")
        ('DE-BY', 'FR-IDF', 'DE-BY')
        """
        return self.explain(label, country).iso_3166_2

    def explain(self, label: str | None, country: str | None = None) -> Match:
        """The :class:`Match` of one label: its code or why there is none."""
        text = "" if label is None or (isinstance(label, float) and pd.isna(label)) else str(label)
        ck = (text, country)
        hit = self._cache.get(ck)
        if hit is None:
            hit = self._explain(text, self._country_hint(country))
            self._cache[ck] = hit
        return hit

    def _explain(self, text: str, hint: str | None) -> Match:
        # "Lapland (Finland)": a country in brackets is a trailing country part
        parts = [p for p in (normalise(x) for x in re.sub(r"\(([^()]*)\)\s*$", r", \1", text).split(",")) if p]
        if not parts:
            return Match(text, None, hint, "unknown")
        # trailing country names: "Bayern, Duitsland", "Belgershain, Germany, Duitsland"
        while len(parts) > 1 and parts[-1] in self._countries:
            c = self._countries[parts.pop()]
            hint = hint or c
        key = " ".join(parts)
        of = re.match(r"^(.+) of (.+)$", key)  # "Capital Region of Denmark"
        if of and of.group(2) in self._countries and (hint is None or self._countries[of.group(2)] == hint):
            hint = self._countries[of.group(2)]
            key = of.group(1)
        pc = _POSTCODE_COUNT.match(key)  # "Duitsland: 3.962 postcodes"
        if pc:
            return Match(text, None, self._countries.get(pc.group(1) or "", hint), "postcode")
        if len(parts) == 1 and len(key) == 2 and key in self._countries:  # "DE" is the country, not Delaware
            return Match(text, None, self._countries[key], "country")
        if len(parts) == 1 and key in self._countries:
            c = self._countries[key]  # a country's name is the country, unless a region elsewhere has it
            others = self._lookup(key, hint)
            if not others or any(x.iso_a2 == c for x in others):
                return Match(text, None, c, "country")
        if hint in (None, "FR") and key in _FR_BEFORE_2016:
            return Match(text, _FR_BEFORE_2016[key], "FR", "region")
        if _POSTCODE.match(key):
            return Match(text, None, hint, "postcode")
        m = _ISO3166_2.match(key)
        if m:
            code = self._codes_lower.get(f"{m.group(1)}-{m.group(2)}")
            if code is not None and (hint is None or self.codes[code] == hint):
                return Match(text, code, self.codes[code], "region")
        cands = self._lookup(key, hint)
        if not cands and len(parts) > 1:  # "Eisenberg, Thuringen": a place inside a region is not a region
            return Match(text, None, hint, "unknown")
        if not cands:
            return Match(text, None, hint, "unknown")
        best = min(c.rank for c in cands)
        codes = sorted({c.code for c in cands if c.rank == best})
        if len(codes) > 1:  # "Zagreb County": HR-01 (a county) and HR-21 (a city) share the name
            words = set(_DESIGNATOR_RE.findall(key))
            typed = [c for c in codes if words and words & set(_DESIGNATOR_RE.findall(self._types.get(c, "")))]
            codes = typed or codes
        if len(codes) == 1:
            return Match(text, codes[0], self.codes[codes[0]], "region")
        return Match(text, None, hint, "ambiguous", tuple(codes))

    def _lookup(self, key: str, hint: str | None) -> list[_Cand]:
        for index, k in ((self._exact, key), (self._loose, _strip_designators(key))):
            cands = [c for c in index.get(k, []) if hint is None or c.iso_a2 == hint]
            if cands:
                return cands
        return []

    def covers(self, location: str | None, region: str | None) -> bool | None:
        """Does a targeted ``location`` include the delivery ``region``? (for the DSA funnel)

        ``True`` when both are the same shape ("Sachsen, Duitsland" and "Sachsen") or the location is the
        region's country ("Duitsland" and "Sachsen"); ``False`` when the location is another region or
        another country; ``None`` when it cannot be told (a town or postcode inside some region, an
        unmatched label).

        >>> m = region_matcher()
        >>> m.covers("Sachsen, Duitsland", "Sachsen"), m.covers("Duitsland", "Bayern"), m.covers("Bayern", "Sachsen")
        (True, True, False)
        """
        reg = self.explain(region)
        if reg.iso_3166_2 is None:
            return None
        loc = self.explain(location)
        if loc.iso_3166_2 is not None:
            return loc.iso_3166_2 == reg.iso_3166_2
        if loc.kind == "country" and loc.country is not None:
            return loc.country == reg.country
        return None

    def match_many(self, labels: Iterable[str | None] | pd.Series,
                   country: str | None = None) -> pd.Series:
        """:meth:`match` of many labels (each distinct label matched once), as a Series of codes/None
        aligned with the input."""
        s = labels if isinstance(labels, pd.Series) else pd.Series(list(labels), dtype=object)
        return pd.Series([self.match(x, country) for x in s], index=s.index, dtype=object)


@lru_cache(maxsize=1)
def region_matcher() -> RegionMatcher:
    """The process-wide :class:`RegionMatcher` (built on first use)."""
    return RegionMatcher()
