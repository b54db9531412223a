"""``bubblelens report``: the investigation report (HTML + manifest + tables and figures), and
``bubblelens report --verify MANIFEST`` (see docs/report.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..store import DEFAULT_DB

__all__ = ["report"]


@click.command()
@click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_DB,
              show_default=True, help="The store (a DuckDB file).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The HTML report to write; its manifest and <out>_files/ go beside it.")
@click.option("--scheme", default="cells", show_default=True,
              help="Segmentation scheme: cells, cells:region, interests, declared:lean, ...")
@click.option("--title", default=None, help="Report title (default: 'Who was told what').")
@click.option("--lang", type=click.Choice(["en", "fr"]), default="en", show_default=True)
@click.option("--no-export", is_flag=True, help="Do not write the CSV/Parquet tables and PNG/SVG figures.")
@click.option("--verify", "verify", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Re-run a report's manifest from its inputs; exit 0 when every number matches, 1 otherwise.")
def report(db: Path, out: Path | None, scheme: str, title: str | None, lang: str, no_export: bool,
           verify: Path | None) -> None:
    """Write a self-contained HTML report of one segmentation scheme, or verify a report's manifest."""
    from ..report import build_report, verify_manifest

    if verify is not None:
        click.echo(f"re-running {verify} from its inputs (ingest, classify, segment, measure)...", err=True)
        checked = verify_manifest(verify)
        click.echo(checked.summary())
        sys.exit(0 if checked.ok else 1)
    if out is None:
        raise click.UsageError("give --out report.html (or --verify MANIFEST)")
    if not db.exists():
        raise click.UsageError(f"no store at {db}: run `bubblelens ingest` first")
    res = build_report(db, out, scheme=scheme, title=title, lang=lang, export=not no_export)
    if res.ran_measure:
        click.echo(f"no measurement of scheme {scheme!r} in {db}: ran `bubblelens measure` first", err=True)
    click.echo(f"report: {res.path}")
    click.echo(f"manifest: {res.manifest}")
    if not no_export:
        click.echo(f"tables and figures: {res.files}/")
