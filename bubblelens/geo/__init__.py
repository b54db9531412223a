"""Geography: the shipped admin-1 shapes and the matcher from ad-library region labels to them.

>>> from bubblelens.geo import region_matcher
>>> region_matcher().match("Nordrhein-Westfalen, Germany")
'DE-NW'
"""

from .boundaries import MAP_LAYERS, country_geojson, load_geojson, load_names, map_layer
from .regions import Match, RegionMatcher, normalise, region_matcher

__all__ = ["MAP_LAYERS", "Match", "RegionMatcher", "country_geojson", "load_geojson", "load_names",
           "map_layer", "normalise", "region_matcher"]
