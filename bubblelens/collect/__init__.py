"""Collect: pull ad libraries from their APIs into files that the ingest stage reads (``docs/fetch.md``).

>>> from bubblelens.collect import FIELD_SETS
>>> sorted(FIELD_SETS)
['all', 'dsa', 'political']

:func:`fetch_meta` pulls Meta's Ad Library API (``ads_archive``) into ``DIR/page-NNNNNN.jsonl`` (what
``bubblelens ingest --format meta`` reads) and ``DIR/fetch.json`` (the resumable manifest); an
``ingest`` function gets each finished page as it arrives (the CLI's ``--ingest`` passes the ingest
stage: this package sits left of ingest in the flow and does not import it). The access token is never
written anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .manifest import MANIFEST, Manifest
from .meta import (
    AD_TYPES,
    API_VERSION_CHOSEN_ON,
    DEFAULT_API_URL,
    DEFAULT_API_VERSION,
    DEFAULT_LIMIT,
    FIELD_SETS,
    FetchSummary,
    MetaFetcher,
    MetaQuery,
    Progress,
    classify_reply,
    redact_url,
    resolve_fields,
    usage_from_headers,
)

__all__ = ["AD_TYPES", "API_VERSION_CHOSEN_ON", "DEFAULT_API_URL", "DEFAULT_API_VERSION", "DEFAULT_LIMIT",
           "FIELD_SETS", "MANIFEST", "FetchSummary", "Manifest", "MetaFetcher", "MetaQuery", "Progress",
           "classify_reply", "fetch_meta", "redact_url", "resolve_fields", "usage_from_headers"]


def fetch_meta(query: MetaQuery, out_dir: str | Path, *, token: str, **options: Any) -> FetchSummary:
    """Fetch ``query`` into ``out_dir`` (resuming what is there); ``options`` go to :class:`MetaFetcher`
    (``api_url``, ``api_version``, ``limit``, ``max_wait``, ``timeout``, ``sleep``, ``on_event``, and
    ``ingest``: a function called with each new page file, e.g. to stream it into a store)."""
    return MetaFetcher(query, out_dir, token=token, **options).run()
