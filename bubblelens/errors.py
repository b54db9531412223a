"""The one exception tree of BubbleLens.

Every error the package raises on purpose derives from :class:`BubbleLensError`, so a caller (the CLI,
the app) can catch one class and show one clear sentence instead of a traceback::

    BubbleLensError
    ├── StoreError            the DuckDB file: missing, locked, newer schema than this code
    │   └── SchemaVersionError
    ├── IngestError           reading an input file
    │   ├── FormatError       the file is not in the format asked for (or detected)
    │   └── SchemaError       a row or field breaks the format's schema (carries file, line, field)
    ├── ModelError            an encoder or a trained head cannot be loaded (names what to install)
    ├── CodebookError         a codebook YAML is invalid
    ├── SegmentError          a segmentation cannot run (no audiences, too few points, ...)
    ├── MeasureError          a measurement cannot run (no deliveries, no exposures, ...)
    ├── ScoreError            batch scoring: output directory conflicts, bad input
    └── FetchError            collecting from an API: no or expired token, a refused query, retries spent
"""

from __future__ import annotations

__all__ = [
    "BubbleLensError",
    "CodebookError",
    "FetchError",
    "FormatError",
    "IngestError",
    "MeasureError",
    "ModelError",
    "SchemaError",
    "SchemaVersionError",
    "ScoreError",
    "SegmentError",
    "StoreError",
]


class BubbleLensError(Exception):
    """Base of every error BubbleLens raises on purpose."""


class StoreError(BubbleLensError):
    """The store (a DuckDB file) cannot be opened or written."""


class SchemaVersionError(StoreError):
    """The store was written by a newer (or unknown) schema version than this code understands."""


class IngestError(BubbleLensError):
    """An input file cannot be read."""


class FormatError(IngestError):
    """The file is not in the expected format (wrong format, binary, empty, an API error body)."""


class SchemaError(IngestError):
    """A value breaks the schema of its format; names the file, the line and the field."""

    def __init__(self, reason: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.reason = reason
        self.file = file
        self.line = line
        self.field = field
        where = ", ".join(
            p for p in (file and f"file {file}", line is not None and f"line {line}",
                        field and f"field {field!r}") if p
        )
        super().__init__(f"{where}: {reason}" if where else reason)


class ModelError(BubbleLensError):
    """An encoder or trained head cannot be loaded; the message names what to install."""


class CodebookError(BubbleLensError):
    """A codebook YAML file is invalid."""


class SegmentError(BubbleLensError):
    """A segmentation cannot run on the data given."""


class MeasureError(BubbleLensError):
    """A measurement cannot run on the data given."""


class ScoreError(BubbleLensError):
    """Batch scoring cannot run (bad input, an output directory that belongs to something else)."""


class FetchError(BubbleLensError):
    """Collecting from an API cannot go on (no or expired token, a refused query, retries exhausted);
    the message says what to do. Never carries the access token."""
