"""Segments: delivery cells, interest clusters, declared groups; narratives found beyond the codebook.

One clustering machinery (UMAP on cosine → HDBSCAN, fitted on a sample with the rest assigned, HDBSCAN's
clusters merged to a readable number of segments, labels by class-based TF-IDF) serves both the
audience segments and narrative discovery. See ``docs/segments.md``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .cells import cell_key, delivery_cells, rollup

if TYPE_CHECKING:  # imported on first use at run time: the clustering stack (scikit-learn, UMAP) is slow to
    # import, and reading delivery cells (measure) needs none of it
    from .cluster import InterestClusterer, default_min_cluster_size
    from .ctfidf import class_tfidf, top_terms
    from .declared import declared_groups
    from .discover import discover_frame, discover_store, promote
    from .pipeline import SCHEMES, members_frame, segment_store
    from .privacy import OTHER, OUTLIER, PrivacyFloor, apply_floor
    from .stability import StabilityReport, best_jaccard, stability

_LAZY = {
    "InterestClusterer": "cluster", "default_min_cluster_size": "cluster",
    "class_tfidf": "ctfidf", "top_terms": "ctfidf",
    "declared_groups": "declared",
    "discover_frame": "discover", "discover_store": "discover", "promote": "discover",
    "SCHEMES": "pipeline", "members_frame": "pipeline", "segment_store": "pipeline",
    "OTHER": "privacy", "OUTLIER": "privacy", "PrivacyFloor": "privacy", "apply_floor": "privacy",
    "StabilityReport": "stability", "best_jaccard": "stability", "stability": "stability",
}


def __getattr__(name: str) -> Any:
    """PEP 562: the names of the clustering modules, all imported when one is first asked for (a name such
    as ``stability`` is also a submodule's: the function is set over the module, as an eager import did)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    modules = {m: import_module(f".{m}", __name__) for m in dict.fromkeys(_LAZY.values())}
    for attr, m in _LAZY.items():
        globals()[attr] = getattr(modules[m], attr)
    return globals()[name]


__all__ = [
    "OTHER",
    "OUTLIER",
    "SCHEMES",
    "InterestClusterer",
    "PrivacyFloor",
    "StabilityReport",
    "apply_floor",
    "best_jaccard",
    "cell_key",
    "class_tfidf",
    "declared_groups",
    "default_min_cluster_size",
    "delivery_cells",
    "discover_frame",
    "discover_store",
    "members_frame",
    "promote",
    "rollup",
    "segment_store",
    "stability",
    "top_terms",
]
