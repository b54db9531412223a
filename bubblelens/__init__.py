"""BubbleLens: who is being told what by political campaigns, and who never hears the other side.

The flow runs one way: sources → ingest → store → embed → classify → segment → measure → present.
This module is the small public facade; the stages live in their own sub-packages.
"""

from __future__ import annotations

from .errors import (
    BubbleLensError,
    CodebookError,
    FormatError,
    IngestError,
    MeasureError,
    ModelError,
    SchemaError,
    SchemaVersionError,
    ScoreError,
    SegmentError,
    StoreError,
)
from .store import Store

__version__ = "0.1.0"

__all__ = [
    "BubbleLensError",
    "CodebookError",
    "FormatError",
    "IngestError",
    "MeasureError",
    "ModelError",
    "SchemaError",
    "SchemaVersionError",
    "ScoreError",
    "SegmentError",
    "Store",
    "StoreError",
    "__version__",
]
