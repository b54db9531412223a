"""The Ray engine in local mode on the fixtures gives the local engine's scores, row for row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bubblelens.batch import ScoreSettings, score_file

ray = pytest.importorskip("ray", reason="the Ray engine needs the [ray] extra")
pytestmark = [pytest.mark.ray, pytest.mark.slow]

FAKE = "bubblelens.batch.fake:make_fake_scorer"


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def assert_same_scores(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal labels, ids and texts; probabilities equal to float tolerance (batches may differ)."""
    assert list(a.columns) == list(b.columns)
    for c in ("narrative_p", "camp_p"):
        np.testing.assert_allclose(a[c].to_numpy(), b[c].to_numpy(), rtol=1e-5, atol=1e-6)
    rest = [c for c in a.columns if c not in ("narrative_p", "camp_p", "narratives_topk")]
    pd.testing.assert_frame_equal(a[rest], b[rest])


@pytest.mark.parametrize(("name", "text", "ident"), [
    ("messages.csv", "body", None),          # row numbers: the zip-with-range path
    ("meta_ads.jsonl", "text", "id"),        # Meta JSONL: ids as given
])
def test_ray_local_mode_equals_local_engine(ray_local: None, fixtures_dir: Path, tmp_path: Path,
                                            name: str, text: str, ident: str | None) -> None:
    src = fixtures_dir / name
    s = ScoreSettings(text_column=text, id_column=ident, chunk_size=256, scorer=FAKE)
    local = score_file(src, tmp_path / "local.parquet", settings=s)
    remote = score_file(src, tmp_path / "ray.parquet", engine="ray", settings=s, concurrency=1)
    assert remote.rows == local.rows > 50
    assert_same_scores(pd.read_parquet(tmp_path / "ray.parquet"), pd.read_parquet(tmp_path / "local.parquet"))
