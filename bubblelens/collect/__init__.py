"""Collect: pull ad libraries from their APIs into files that the ingest stage reads (``docs/fetch.md``).

>>> from bubblelens.collect import FIELD_SETS
>>> sorted(FIELD_SETS)
['all', 'dsa', 'political']

:func:`fetch_meta` pulls Meta's Ad Library API (``ads_archive``) into ``DIR/page-NNNNNN.jsonl`` (what
``bubblelens ingest --format meta`` reads) and ``DIR/fetch.json`` (the resumable manifest); with a
store, each finished page is ingested as it arrives. The access token is never written anywhere.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..store import Store
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
           "classify_reply", "fetch_meta", "redact_url", "resolve_fields", "store_ingester",
           "usage_from_headers"]


def store_ingester(store: Store, query: MetaQuery) -> Callable[[Path], None]:
    """A function that ingests one page file into ``store`` (the ingest stage as it is: identical ads
    add nothing) and keeps one ``ingest`` run row up to date, so later stages see the new messages."""
    from ..ingest import ingest_file  # the ingest stage, only when a store is given

    run_id = f"ingest-fetch-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    started = datetime.now(UTC).replace(tzinfo=None)
    inputs: dict[str, Any] = {}
    params: dict[str, Any] = {"format": "meta", "kind": None, "audience_type": None, "mapping": None,
                              "map": [], "strict": False, "fetch": query.identity()}

    def ingest(path: Path) -> None:
        rep = ingest_file(store, path, run_id=run_id, format="meta")
        inputs[str(path)] = rep.sha256
        with store.transaction():
            store.record_run(run_id, "ingest", status="ok", started_at=started,
                             finished_at=datetime.now(UTC).replace(tzinfo=None), params=params, inputs=inputs)

    return ingest


def fetch_meta(query: MetaQuery, out_dir: str | Path, *, token: str, store: Store | None = None,
               **options: Any) -> FetchSummary:
    """Fetch ``query`` into ``out_dir`` (resuming what is there); ``options`` go to :class:`MetaFetcher`
    (``api_url``, ``api_version``, ``limit``, ``max_wait``, ``timeout``, ``sleep``, ``on_event``, ...).
    With ``store``, each finished page is ingested as it arrives."""
    if store is not None:
        options["ingest"] = store_ingester(store, query)
        options["ingest_db"] = str(Path(store.path).resolve()) if str(store.path) != ":memory:" else ":memory:"
    return MetaFetcher(query, out_dir, token=token, **options).run()
