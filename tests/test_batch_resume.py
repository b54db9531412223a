"""Kill ``bubblelens score`` (a subprocess) with SIGKILL at random points, resume, and get the output of an
uninterrupted run, row for row. Uses the deterministic fake scorer, slowed down so kills land mid-run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bubblelens.batch import ScoreSettings, score_file

FAKE = "bubblelens.batch.fake:make_fake_scorer"
N_ROWS, CHUNK = 3000, 100
N_CHUNKS = N_ROWS // CHUNK


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    words = ["prix", "retraite", "climat", "école", "frontière", "impôt", "santé", "europe", "ferme", "logement"]
    texts = [" ".join(rng.choice(words, int(rng.integers(1, 30)))) for _ in range(N_ROWS)]
    path = tmp_path_factory.mktemp("lib") / "ads.parquet"
    pd.DataFrame({"body": texts}).to_parquet(path, row_group_size=70)  # groups straddle chunks
    return path


def command(library: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", "from bubblelens.cli import main; main()", "score", str(library),
            "--out", str(out), "--text-column", "body", "--chunk-size", str(CHUNK), "--scorer", FAKE]


def env() -> dict[str, str]:
    return {**os.environ, "BUBBLELENS_FAKE_DELAY": "0.0004", "HF_HUB_OFFLINE": "1"}  # ~40 ms a chunk


def chunks_listed(out: Path) -> int:
    work = out if out.suffix != ".parquet" else out.parent / f".{out.name}.parts"
    try:
        return len(json.loads((work / "manifest.json").read_text())["chunks"])
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def kill_at(library: Path, out: Path, after_chunks: int, extra_s: float) -> int | None:
    """Start a run; once the manifest lists ``after_chunks`` chunks, wait ``extra_s`` and SIGKILL it."""
    proc = subprocess.Popen(command(library, out), env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while proc.poll() is None and chunks_listed(out) < after_chunks and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(extra_s)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    rc = proc.wait()
    assert rc in (0, -signal.SIGKILL), proc.stderr.read().decode() if proc.stderr else rc
    return rc


def reference(library: Path, tmp_path: Path) -> pd.DataFrame:
    ref = tmp_path / "ref.parquet"
    score_file(library, ref, settings=ScoreSettings(text_column="body", chunk_size=CHUNK, scorer=FAKE))
    return pd.read_parquet(ref)


def test_sigkill_at_random_points_then_resume_equals_uninterrupted_run(library: Path, tmp_path: Path) -> None:
    rng = random.Random(20240609)
    out = tmp_path / "scores"
    kill_points = sorted(rng.sample(range(1, N_CHUNKS - 2), 5))
    killed, progress = 0, []
    for k in kill_points:
        killed += kill_at(library, out, k, rng.uniform(0.0, 0.05)) == -signal.SIGKILL
        progress.append(chunks_listed(out))
    assert killed >= 4, "the kills must land while scoring runs"
    assert progress == sorted(progress) and progress[-1] < N_CHUNKS, progress
    final = subprocess.run(command(library, out), env=env(), capture_output=True, text=True, check=True)
    assert f"{N_CHUNKS - progress[-1]} chunks scored, {progress[-1]} already done" in final.stdout
    parts = sorted(out.glob("part-*.parquet"))
    assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(N_CHUNKS)]
    assert sorted(p.name for p in out.iterdir()) == sorted(["manifest.json", *(p.name for p in parts)])
    got = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(got, reference(library, tmp_path))


def test_single_parquet_is_absent_or_complete_at_every_kill(library: Path, tmp_path: Path) -> None:
    rng = random.Random(7)
    out = tmp_path / "scores.parquet"
    ref = reference(library, tmp_path)
    for k in [*sorted(rng.sample(range(1, N_CHUNKS), 3)), N_CHUNKS]:
        kill_at(library, out, k, rng.uniform(0.0, 0.05))
        if out.exists():  # only ever the whole result
            pd.testing.assert_frame_equal(pd.read_parquet(out), ref)
    subprocess.run(command(library, out), env=env(), capture_output=True, check=True)
    pd.testing.assert_frame_equal(pd.read_parquet(out), ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.parquet", "scores.parquet"]
