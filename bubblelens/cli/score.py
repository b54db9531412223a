"""``bubblelens score``: score a file of messages without a store, Parquet out (see docs/batch.md)."""

from __future__ import annotations

from pathlib import Path

import click

from ..batch import score_file
from ..batch.scorer import ScoreSettings
from .options import CODEBOOK, ENCODER

__all__ = ["score"]


@click.command()
@click.argument("input", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="A directory (resumable parts + manifest) or a file ending in .parquet.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the message text.")
@click.option("--id-column", default=None, help="Column copied to message_id (default: the row number).")
@click.option("--sponsor-column", default=None,
              help="Column naming the sponsor, for camps from the codebook's sponsor table.")
@CODEBOOK
@click.option("--model", "models", multiple=True, type=click.Path(exists=True),
              help="A trained head directory (repeatable).")
@ENCODER
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", default=None, help="Ray cluster to join (e.g. auto, ray://host:10001).")
@click.option("--concurrency", type=int, default=None, help="Ray: scorer actors (default: one per CPU).")
@click.option("--chunk-size", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Rows per chunk (the unit of resumption and of one part file).")
@click.option("--no-sort", is_flag=True, help="Do not length-sort texts inside a chunk before encoding.")
@click.option("--scorer", default=None, hidden=True, help="module:factory of a stand-in scorer (tests).")
def score(input: Path, out: Path, text_column: str, id_column: str | None, sponsor_column: str | None,
          codebook: str | None, models: tuple[str, ...], encoder: str, engine: str, address: str | None,
          concurrency: int | None, chunk_size: int, no_sort: bool, scorer: str | None) -> None:
    """Score every message of INPUT (Parquet, CSV, JSONL, Meta JSON pages, or a folder) into --out.

    Output columns: message_id, text, narrative, narrative_p, narratives_topk, camp, camp_p,
    camp_source, encoder. A directory --out resumes after an interruption.
    """
    settings = ScoreSettings(encoder=encoder, codebook=codebook, models=tuple(models),
                             text_column=text_column, id_column=id_column, sponsor_column=sponsor_column,
                             chunk_size=chunk_size, scorer=scorer, sort_by_length=not no_sort)
    res = score_file(input, out, engine=engine, settings=settings, address=address, concurrency=concurrency)
    rate = res.rows / res.seconds if res.seconds > 0 and res.chunks_scored else 0.0
    click.echo(f"{res.rows} rows → {res.out} ({res.engine}; {res.chunks_scored} chunks scored, "
               f"{res.chunks_skipped} already done; {res.seconds:.1f} s, {rate:.0f} msg/s)")
    rejects = getattr(res, "rejects", [])
    if rejects:
        click.echo(f"{len(rejects):,} line(s) or file(s) rejected, not scored:", err=True)
        for r in rejects[:20]:
            click.echo(f"  {r.file}" + (f", line {r.line}" if r.line else "") + f": {r.reason}", err=True)
        if len(rejects) > 20:
            click.echo(f"  ... and {len(rejects) - 20:,} more", err=True)
