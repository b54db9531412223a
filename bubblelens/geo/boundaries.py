"""The admin-1 shapes and region names shipped in ``bubblelens/resources/boundaries/`` (no download).

Made by ``scripts/build_boundaries.py`` from Natural Earth 1:10m admin-1 (public domain; origin and licence
in ``bubblelens/resources/boundaries/README.md``). Each feature has ``id`` (ISO 3166-2), ``iso_a2``,
``name`` and ``layer``: ``admin1`` (Natural Earth's first-level units) or a dissolved layer where ad
libraries report a higher level than Natural Earth's units (:data:`MAP_LAYERS`).
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = ["MAP_LAYERS", "country_geojson", "load_geojson", "load_names", "map_layer"]

# The layer a country is drawn with (its regions as Meta reports them); every other country: ``admin1``.
MAP_LAYERS = {"FR": "fr_regions", "GB": "gb_nations", "BE": "be_regions", "IT": "it_regions",
              "ES": "es_regions"}


def _read(name: str) -> Any:
    ref = resources.files("bubblelens.resources").joinpath("boundaries", name)
    with ref.open("rb") as fh, gzip.open(fh, "rt", encoding="utf-8") as gz:
        return json.load(gz)


@lru_cache(maxsize=1)
def load_geojson() -> dict[str, Any]:
    """The whole FeatureCollection (≈4,600 features; read once, cached; treat as read-only)."""
    return _read("admin1.geojson.gz")


@lru_cache(maxsize=1)
def load_names() -> dict[str, Any]:
    """``{"regions": [[id, iso_a2, layer, [[field, name], ...], type_en], ...], "countries": {iso_a2: [names]}}``
    (``type_en``: Natural Earth's English type of the unit, e.g. "County" or "City"; "" when none)."""
    return _read("names.json.gz")


def map_layer(iso_a2: str) -> str:
    """The layer a country's map is drawn with: its dissolved regions where they exist, else ``admin1``."""
    return MAP_LAYERS.get(iso_a2.upper(), "admin1")


@lru_cache(maxsize=64)
def _country_features(iso_a2: str, layer: str) -> tuple[dict[str, Any], ...]:
    return tuple(f for f in load_geojson()["features"]
                 if f["properties"]["iso_a2"] == iso_a2 and f["properties"]["layer"] == layer)


def country_geojson(iso_a2: str, codes: set[str] | None = None) -> dict[str, Any]:
    """A FeatureCollection of one country's map layer; features whose ``id`` is in ``codes`` are added
    from any layer (a label matched to an admin-1 unit of a country drawn with dissolved regions)."""
    iso = iso_a2.upper()
    feats = list(_country_features(iso, map_layer(iso)))
    have = {f["id"] for f in feats}
    extra = (codes or set()) - have
    if extra:
        feats += [f for f in _country_features(iso, "admin1") if f["id"] in extra]
    return {"type": "FeatureCollection", "features": feats}
