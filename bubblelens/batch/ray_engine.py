"""The Ray engine: the same scoring as a Ray Data pipeline, on this machine or on a cluster.

``read`` (Parquet, CSV, JSONL lines, Meta JSON pages) → row numbers (``zip`` with ``range``, only when no
id column is given) → ``map_batches(ScorerActor)``, a callable class whose constructor builds the scorer,
so each worker loads the encoder and classifiers once → ``write_parquet``. Every batch goes through
:func:`~bubblelens.batch.scorer.score_chunk`, the function the local engine uses, so both engines give
the same rows. Ray restarts failed tasks itself; an interrupted Ray run is rerun whole (the local engine is
the one that resumes chunk by chunk).

``address=None`` starts Ray in local mode (or reuses a running ``ray.init``); ``address="auto"`` or
``"ray://host:10001"`` joins a cluster, whose workers must see the input path and have bubblelens installed.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ScoreError
from .local import ScoreResult, _is_single_file, merge_parts, part_name, prepare_output
from .manifest import fingerprint_input
from .readers import _meta_ads, _records_frame, csv_convert_options, detect_format, input_files
from .scorer import ScoreSettings, load_scorer_factory, score_chunk

__all__ = ["ScorerActor", "run_ray"]

_ROW = "__bubblelens_row__"
_MISSING = "The Ray engine needs Ray: install bubblelens[ray] (pip install 'bubblelens[ray]')."


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise ScoreError(_MISSING) from e
    return ray


class ScorerActor:
    """Ray Data callable class: builds the scorer once per worker, then scores each batch."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = ScoreSettings.from_dict(settings)
        self.scorer = load_scorer_factory(self.settings.scorer)(self.settings)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        rows = batch[_ROW].to_numpy() if _ROW in batch.columns else None
        return score_chunk(self.scorer, batch, start=0, settings=self.settings, row_numbers=rows)


def _parse_jsonl_lines(batch: pd.DataFrame) -> pd.DataFrame:
    return _records_frame([json.loads(t) for t in batch["text"]])


def _parse_meta_pages(batch: pd.DataFrame) -> pd.DataFrame:
    frames = [_records_frame(_meta_ads(json.loads(bytes(b).decode("utf-8-sig")), Path(str(p))))
              for b, p in zip(batch["bytes"], batch["path"], strict=True)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _read(ray: Any, files: list[str], fmt: str) -> Any:
    if fmt == "parquet":
        return ray.data.read_parquet(files)
    if fmt == "csv":
        import pyarrow.csv as pacsv

        return ray.data.read_csv(files, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                                 convert_options=csv_convert_options(Path(files[0])))
    if fmt == "jsonl":
        return ray.data.read_text(files).map_batches(_parse_jsonl_lines, batch_format="pandas")
    if fmt == "meta":
        return ray.data.read_binary_files(files, include_paths=True).map_batches(
            _parse_meta_pages, batch_format="pandas")
    raise ScoreError(f"unknown input format {fmt!r}")


def run_ray(input: str | Path, out: str | Path, *, settings: ScoreSettings, address: str | None = None,
            concurrency: int | None = None, fmt: str | None = None) -> ScoreResult:
    """Score ``input`` into ``out`` with Ray Data; same outputs and output rules as the local engine."""
    ray = _import_ray()
    t0 = time.perf_counter()
    out = Path(out)
    fmt = fmt or detect_format(input)
    files = [str(f.resolve()) for f in input_files(input)]
    work, manifest = prepare_output(out, fingerprint_input(input), settings.fingerprint(), engine="ray")
    result = ScoreResult(out=out, engine="ray")
    started = False
    if not manifest.complete:
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
            started = True
        try:
            ctx = ray.data.DataContext.get_current()
            ctx.execution_options.preserve_order = True
            ctx.enable_progress_bars = False
            ds = _read(ray, files, fmt)
            if settings.id_column is None:
                n = ds.count()
                rows = ray.data.range(n).map_batches(
                    lambda b: {_ROW: b["id"]}, batch_format="numpy")
                with warnings.catch_warnings():  # deprecated for 2.64; exact here (preserve_order)
                    warnings.simplefilter("ignore")
                    ds = ds.zip(rows)
            if concurrency is None:
                # One CPU is left to the read and write tasks: actors holding every CPU starve them.
                concurrency = max(1, int(ray.cluster_resources().get("CPU", 1)) - 1)
            scored = ds.map_batches(ScorerActor, fn_constructor_kwargs={"settings": settings.to_dict()},
                                    batch_size=settings.chunk_size, batch_format="pandas",
                                    compute=ray.data.ActorPoolStrategy(size=concurrency))
            tmp = work / ".ray-write.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            scored.write_parquet(str(tmp))
            written = sorted(tmp.glob("*.parquet"))
            import pyarrow.parquet as pq

            for i, f in enumerate(written):
                n_rows = pq.ParquetFile(f).metadata.num_rows
                f.replace(work / part_name(i))
                manifest.chunks[str(i)] = {"file": part_name(i), "rows": n_rows}
            shutil.rmtree(tmp, ignore_errors=True)
        finally:
            if started:
                ray.shutdown()
        manifest.complete = True
        manifest.total_rows = sum(int(c["rows"]) for c in manifest.chunks.values())
        manifest.save(work)
        result.chunks_scored = len(manifest.chunks)
    else:
        result.chunks_skipped = len(manifest.chunks)
    result.rows = int(manifest.total_rows or 0)
    if _is_single_file(out):
        merge_parts([work / manifest.chunks[k]["file"] for k in sorted(manifest.chunks, key=int)], out)
        shutil.rmtree(work)
    result.seconds = time.perf_counter() - t0
    result.timings = {"total": result.seconds}
    return result
