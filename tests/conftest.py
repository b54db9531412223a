"""Shared test fixtures: a fresh store, the bundled fixtures, the real third-party samples."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bubblelens.store import Store

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tmp_store(tmp_path: Path) -> Iterator[Store]:
    """A new, empty store in a temporary file."""
    store = Store.open(tmp_path / "test.duckdb")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``data/fixtures`` of the repository (the deterministic campaign corpus)."""
    return REPO / "data" / "fixtures"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real third-party samples (``$BUBBLELENS_SHARED_DATA``, default ``/work/shared/data``);
    tests that need them are skipped where they are absent (CI)."""
    p = Path(os.environ.get("BUBBLELENS_SHARED_DATA", "/work/shared/data"))
    if not p.is_dir():
        if os.environ.get("CI") == "true":  # CI has the samples: their absence is a failure there
            pytest.fail(f"real sample data not found at {p} (CI=true; set BUBBLELENS_SHARED_DATA)")
        pytest.skip(f"real sample data not found at {p} (set BUBBLELENS_SHARED_DATA)")
    return p
