"""The fixture store: ``data/fixtures`` run through every installed stage, for the app's tests and demo.

Stages run in order (ingest, classify, segment cells / declared / interests, discover, measure); a stage
whose module is not installed, or that cannot run on the data (a :class:`BubbleLensError`), is skipped
and reported with its reason, so the store holds whatever the pipeline can produce today.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import BubbleLensError
from ..store import Store

__all__ = ["FIXTURE_FILES", "build_fixture_store"]

# (file, ingest options); mappings are the ``NAME.mapping.yaml`` files beside the CSVs.
FIXTURE_FILES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("meta_ads.json", {}),
    ("messages.csv", {"format": "table"}),
    ("google_creative_stats.csv", {}),
    ("panel.csv", {"format": "table"}),
    ("exposures.csv", {"format": "table"}),
)


def _stage(module: str, func: str) -> Callable[..., Any] | None:
    try:
        fn: Callable[..., Any] = getattr(importlib.import_module(module), func)
        return fn
    except (ImportError, AttributeError):
        return None


def build_fixture_store(path: str | Path, fixtures: str | Path, *, interests: bool = True,
                        extra: Callable[[Store], None] | None = None) -> dict[str, str]:
    """Build the store at ``path`` from the files of ``fixtures``; returns stage → ``ok`` or why skipped.

    ``interests`` runs the interest clustering (UMAP: ~35 s of compilation on a first fit).
    ``extra(store)`` runs after ingest (e.g. a test adds an attacker-shaped ad) so later stages see it.
    """
    fx = Path(fixtures)
    done: dict[str, str] = {}
    ingest = _stage("bubblelens.ingest", "ingest_paths")
    if ingest is None:
        raise BubbleLensError("bubblelens.ingest is not installed: cannot build the fixture store")
    with Store.open(path) as store:
        for name, opts in FIXTURE_FILES:
            if (fx / name).exists():
                rep = ingest(store, [fx / name], **opts)
                errors = [f.error for f in rep.files if f.error]
                done[f"ingest {name}"] = "ok" if not errors else f"failed: {errors[0]}"
        if extra is not None:
            extra(store)
        steps: list[tuple[str, str, str, dict[str, Any]]] = [
            ("classify", "bubblelens.classify", "classify_store", {}),
            ("segment cells", "bubblelens.segment", "segment_store", {"scheme": "cells"}),
            ("segment declared", "bubblelens.segment", "segment_store",
             {"scheme": "declared", "by": "declared_lean"}),
        ]
        if interests:
            steps += [("segment interests", "bubblelens.segment", "segment_store",
                       {"scheme": "interests", "stability_seeds": ()}),
                      ("discover", "bubblelens.segment", "discover_store", {})]
        steps.append(("measure cells", "bubblelens.measure.pipeline", "measure_store", {"scheme": "cells"}))
        for label, module, func, kwargs in steps:
            fn = _stage(module, func)
            if fn is None:
                done[label] = f"skipped: {module}.{func} is not installed yet"
                continue
            try:
                fn(store, **kwargs)
                done[label] = "ok"
            except BubbleLensError as e:
                done[label] = f"skipped: {e}"
    return done
