"""The local engine: stream chunks, score each once, write part files and the manifest atomically.

For each chunk the manifest does not list: score → write ``part-NNNNN.parquet`` (temporary name, then
:func:`os.replace`) → add the chunk to the manifest (atomic rewrite). A kill at any instant therefore
loses at most the chunk in flight, and a resumed run neither redoes a listed chunk nor duplicates rows
(a part written but not yet listed is simply rewritten with the same rows).

Output rules (:func:`prepare_output`): an ``out`` ending in ``.parquet`` is one file, assembled at the
end from parts kept in a hidden directory ``.NAME.parts`` next to it and renamed into place atomically;
any other ``out`` is a directory, created when absent, resumed when its manifest names the same input and
settings, and refused (:class:`~bubblelens.errors.ScoreError`) when it holds anything else.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ScoreError
from .manifest import Manifest, fingerprint_input
from .readers import Rejected, detect_format, iter_chunks
from .scorer import ScorerFactory, ScorerLike, ScoreSettings, score_chunk

__all__ = ["ScoreResult", "merge_parts", "part_name", "prepare_output", "run_local"]

_OURS = re.compile(r"^(manifest\.json|part-\d{5,}\.parquet|\..*\.tmp)$")


@dataclass
class ScoreResult:
    """What a scoring run did."""

    out: Path
    rows: int = 0
    chunks_scored: int = 0
    chunks_skipped: int = 0
    seconds: float = 0.0
    engine: str = "local"
    timings: dict[str, float] = field(default_factory=dict)
    #: Input lines (or files of a folder) not scored, with their reasons (as ``ingest`` rejects them).
    rejects: list[Rejected] = field(default_factory=list)


def part_name(index: int) -> str:
    """File name of chunk ``index``'s part: ``part-00000.parquet``."""
    return f"part-{index:05d}.parquet"


def _is_single_file(out: Path) -> bool:
    return out.suffix.lower() == ".parquet"


def prepare_output(out: Path, input_fp: dict[str, Any], settings_fp: dict[str, Any], *,
                   engine: str) -> tuple[Path, Manifest]:
    """Resolve the working directory of ``out`` and its manifest (loaded to resume, or new).

    Raises ScoreError for a directory that holds anything but a matching scoring output.
    """
    single = _is_single_file(out)
    work = out.parent / f".{out.name}.parts" if single else out
    if single and out.exists() and out.is_dir():
        raise ScoreError(f"{out} is a directory; an --out ending in .parquet names one file")
    if not single and out.exists() and not out.is_dir():
        raise ScoreError(f"{out} exists and is not a directory; refusing to overwrite it")
    fresh = Manifest(input=input_fp, settings=settings_fp, engine=engine)
    if not work.exists():
        work.mkdir(parents=True)
        return work, fresh
    entries = [e.name for e in work.iterdir()]
    manifest = Manifest.load(work)
    if manifest is not None and manifest.matches(input_fp, settings_fp) and manifest.engine == engine \
            and all(_OURS.match(n) for n in entries):
        return work, manifest
    if single and manifest is not None:
        # Our own hidden scratch directory, from a run with another input or settings: start over.
        shutil.rmtree(work)
        work.mkdir()
        return work, fresh
    if not entries:
        return work, fresh
    if manifest is None:
        raise ScoreError(f"{out} is not empty and holds no scoring manifest; refusing to write into it "
                         "(choose a new or empty directory)")
    what = (f"the {manifest.engine} engine's output" if manifest.engine != engine
            else "the output of another input or other settings")
    raise ScoreError(f"{out} holds {what}; refusing to mix them (choose a new directory or delete it)")


def merge_parts(parts: list[Path], dest: Path) -> int:
    """Concatenate Parquet parts (in the order given) into ``dest`` atomically; returns the row count."""
    tmp = dest.parent / f".{dest.name}.tmp"
    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for p in parts:
            table = pq.read_table(p)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            elif table.schema != writer.schema:
                table = table.cast(writer.schema)
            writer.write_table(table)
            rows += table.num_rows
        if writer is None:  # empty input: an empty file with the output columns
            from .scorer import OUTPUT_COLUMNS

            pq.write_table(pa.table({c: pa.array([], pa.string()) for c in OUTPUT_COLUMNS}), tmp)
        else:
            writer.close()
            writer = None
        tmp.replace(dest)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return rows


def _write_part(table: pa.Table, path: Path) -> None:
    tmp = path.parent / f".{path.name}.tmp"
    pq.write_table(table, tmp)
    tmp.replace(path)


def run_local(input: str | Path, out: str | Path, *, settings: ScoreSettings,
              scorer_factory: ScorerFactory, fmt: str | None = None) -> ScoreResult:
    """Score ``input`` into ``out`` chunk by chunk, resuming what a previous run finished."""
    t0 = time.perf_counter()
    out = Path(out)
    fmt = fmt or detect_format(input)
    input_fp = fingerprint_input(input)
    work, manifest = prepare_output(out, input_fp, settings.fingerprint(), engine="local")
    for stale in work.glob(".*.tmp"):
        stale.unlink()
    result = ScoreResult(out=out)
    scorer: ScorerLike | None = None
    t_score = 0.0
    if not manifest.complete:
        manifest.save(work)
        for chunk in iter_chunks(input, chunk_size=settings.chunk_size, fmt=fmt, rejects=result.rejects):
            key = str(chunk.index)
            part = work / part_name(chunk.index)
            if key in manifest.chunks and part.exists():
                result.chunks_skipped += 1
                continue
            if scorer is None:
                scorer = scorer_factory(settings)
            ts = time.perf_counter()
            frame = score_chunk(scorer, chunk.frame, start=chunk.start, settings=settings)
            t_score += time.perf_counter() - ts
            _write_part(pa.Table.from_pandas(frame, preserve_index=False), part)
            manifest.chunks[key] = {"file": part.name, "rows": len(frame), "start": chunk.start}
            manifest.save(work)
            result.chunks_scored += 1
        manifest.complete = True
        manifest.total_rows = sum(int(c["rows"]) for c in manifest.chunks.values())
        manifest.save(work)
    else:
        result.chunks_skipped = len(manifest.chunks)
    result.rows = int(manifest.total_rows or 0)
    if _is_single_file(out):
        parts = [work / manifest.chunks[k]["file"] for k in sorted(manifest.chunks, key=int)]
        merge_parts(parts, out)
        shutil.rmtree(work)
    result.seconds = time.perf_counter() - t0
    result.timings = {"score": t_score, "total": result.seconds}
    return result
