"""Narratives and camps of messages: codebook, zero-shot and supervised classifiers, store pipeline."""

from .camps import SponsorTable, normalize_name
from .classifiers import CampClassifier, NarrativeClassifier, load_head
from .codebook import Camp, Codebook, Narrative, load_codebook
from .pipeline import classify_store, write_camps
from .scoring import Scorer
from .zeroshot import UNASSIGNED

__all__ = [
    "UNASSIGNED",
    "Camp",
    "CampClassifier",
    "Codebook",
    "Narrative",
    "NarrativeClassifier",
    "Scorer",
    "SponsorTable",
    "classify_store",
    "load_codebook",
    "load_head",
    "normalize_name",
    "write_camps",
]
