"""Segments: delivery cells, interest clusters, declared groups; narratives found beyond the codebook.

One clustering machinery (UMAP on cosine → HDBSCAN, fitted on a sample with the rest assigned, HDBSCAN's
clusters merged to a readable number of segments, labels by class-based TF-IDF) serves both the
audience segments and narrative discovery. See ``docs/segments.md``.
"""

from __future__ import annotations

from .cells import cell_key, delivery_cells, rollup
from .cluster import InterestClusterer, default_min_cluster_size
from .ctfidf import class_tfidf, top_terms
from .declared import declared_groups
from .discover import discover_frame, discover_store, promote
from .pipeline import SCHEMES, members_frame, segment_store
from .privacy import OTHER, OUTLIER, PrivacyFloor, apply_floor
from .stability import StabilityReport, best_jaccard, stability

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
