"""Build the admin-1 boundaries and region names that ship in ``bubblelens/resources/boundaries/``.

Input: the Natural Earth derived files of ``shared/data/boundaries/`` (see its README for their origin):
``ne_10m_admin1_world.geojson`` (4,556 admin-1 polygons), ``dissolved_regions.geojson`` (France's 18
régions, GB nations, BE/IT/ES regions) and ``admin1_names.csv`` (names in 26 languages).

Output (gzip, deterministic):

- ``admin1.geojson.gz``: one FeatureCollection, properties ``id`` (ISO 3166-2, or NE's ``adm1_code`` when
  NE has none), ``iso_a2``, ``name``, ``layer`` (``admin1`` or a dissolved layer). Geometry simplified with
  ``shapely.simplify(TOLERANCE, preserve_topology=True)`` and snapped to a ``GRID`` degree grid
  (``shapely.set_precision``), so coordinates are short decimals.
- ``names.json.gz``: ``regions``: ``[id, iso_a2, layer, [[field, name], ...], type_en]`` (NE's English
  type of the unit: "County", "City", "Province", ...); ``countries``: ISO
  3166-1 alpha-2 → country names in the CLDR locales below (from Babel, build time only) and NE's
  ``admin`` name.

Needs shapely 2.x and Babel (build time only, not dependencies of the package):
``python scripts/build_boundaries.py [--src DIR] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
from pathlib import Path

import shapely
from babel import Locale
from shapely.geometry import mapping, shape

TOLERANCE = 0.02  # degrees: ~2 km N-S; Berlin, Bremen, Brussels, the ACT stay recognisable
GRID = 0.01       # degrees: coordinates on a ~1 km grid (2 decimals)
DISSOLVED_COUNTRIES = {"fr_regions": "FR", "gb_nations": "GB", "be_regions": "BE", "it_regions": "IT",
                       "es_regions": "ES"}
# Natural Earth's 26 name languages, plus the EU's official languages and a few others ads are written in.
LOCALES = ["ar", "bn", "de", "en", "es", "fa", "fr", "el", "he", "hi", "hu", "id", "it", "ja", "ko", "nl",
           "pl", "pt", "ru", "sv", "tr", "uk", "ur", "vi", "zh", "zh_Hant",
           "bg", "cs", "da", "et", "fi", "ga", "hr", "lt", "lv", "mt", "ro", "sk", "sl", "ca", "nb", "lb",
           "eu", "gl", "sq", "sr", "bs", "mk", "is"]
NAME_FIELDS_SKIPPED = {"insee_code"}  # numbers, not names
# Country names ad libraries write that CLDR's current names miss (seen in real pulls: Meta's Dutch locale
# writes "Tsjechische Republiek").
EXTRA_COUNTRY_NAMES = {
    "CZ": ["Czech Republic", "Tsjechische Republiek", "Tschechische Republik", "République tchèque",
           "República Checa", "Repubblica Ceca"],
    "MK": ["Macedonia", "Republic of Macedonia", "Macedonië"],
    "GB": ["UK", "Great Britain", "Groot-Brittannië"],
    "US": ["USA", "United States of America"],
    "NL": ["Holland", "The Netherlands"],
}


def _geometry(geom: dict) -> dict | None:
    g = shapely.make_valid(shape(geom))
    s = shapely.set_precision(shapely.simplify(g, TOLERANCE, preserve_topology=True), GRID)
    if s.is_empty:  # a small island vanished at the grid: keep it on a finer grid
        s = shapely.set_precision(g, GRID / 10)
    if s.is_empty:
        return None
    if s.geom_type == "GeometryCollection":
        polys = [p for p in s.geoms if p.geom_type in ("Polygon", "MultiPolygon")]
        s = shapely.unary_union(polys)
    return {"type": s.geom_type, "coordinates": _round(mapping(s)["coordinates"])}


def _round(c: object) -> object:
    """Coordinates to 2 decimals (the grid), integers where they are whole (shorter JSON)."""
    if isinstance(c, float | int):
        r = round(float(c), 2)
        return int(r) if r == int(r) else r
    return [_round(x) for x in c]  # type: ignore[union-attr]


def _write_gz(path: Path, obj: object) -> None:
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=False).encode()
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as f:
        f.write(raw)
    path.write_bytes(buf.getvalue())


def build(src: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    world = json.loads((src / "ne_10m_admin1_world.geojson").read_text())
    dissolved = json.loads((src / "dissolved_regions.geojson").read_text())
    features = []
    admin_names: dict[str, str] = {}
    types: dict[str, str] = {}
    for f in world["features"]:
        p = f["properties"]
        key = p.get("iso_3166_2") or p.get("adm1_code")
        if not key or not p.get("iso_a2"):
            continue
        admin_names.setdefault(p["iso_a2"], p.get("admin") or "")
        types[key] = p.get("type_en") or ""
        geom = _geometry(f["geometry"])
        if geom is not None:
            features.append({"type": "Feature", "id": key, "properties": {
                "id": key, "iso_a2": p["iso_a2"], "name": p.get("name") or key, "layer": "admin1"},
                "geometry": geom})
    for f in dissolved["features"]:
        p = f["properties"]
        geom = _geometry(f["geometry"])
        if geom is not None:
            features.append({"type": "Feature", "id": p["iso_3166_2"], "properties": {
                "id": p["iso_3166_2"], "iso_a2": p["iso_a2"], "name": p["name"], "layer": p["layer"]},
                "geometry": geom})
    _write_gz(out / "admin1.geojson.gz", {"type": "FeatureCollection", "features": features})

    regions: dict[tuple[str, str], list] = {}
    with open(src / "admin1_names.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["name_field"] in NAME_FIELDS_SKIPPED or not row["name"]:
                continue
            k = (row["layer"], row["region_key"])
            entry = regions.setdefault(k, [row["region_key"], row["iso_a2"], row["layer"], [],
                                           types.get(row["region_key"], "") if row["layer"] == "admin1" else ""])
            entry[3].append([row["name_field"], row["name"]])
    countries: dict[str, list[str]] = {}
    for loc in LOCALES:
        terr = Locale.parse(loc).territories
        for code, name in terr.items():
            if len(code) == 2 and code.isalpha():
                countries.setdefault(code, [])
                if name not in countries[code]:
                    countries[code].append(name)
    for code, extra in EXTRA_COUNTRY_NAMES.items():
        countries.setdefault(code, []).extend(n for n in extra if n not in countries[code])
    for code, name in admin_names.items():
        if name and name not in countries.setdefault(code, []):
            countries[code].append(name)
    _write_gz(out / "names.json.gz", {"regions": list(regions.values()), "countries": countries})
    for p in sorted(out.glob("*.gz")):
        print(f"{p.name}: {p.stat().st_size:,} bytes")
    print(f"{len(features)} features, {len(regions)} named regions, {len(countries)} countries")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    ap.add_argument("--src", type=Path, default=root.parent / "shared" / "data" / "boundaries")
    ap.add_argument("--out", type=Path, default=root / "bubblelens" / "resources" / "boundaries")
    a = ap.parse_args()
    build(a.src, a.out)


if __name__ == "__main__":
    main()
