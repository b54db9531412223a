"""``bubblelens ingest`` and ``bubblelens stats``."""

from __future__ import annotations

import json
import sys
import warnings

import click

from ..ingest import FORMATS, IngestReport, ingest_paths
from ..store import Store
from .options import DB

__all__ = ["ingest", "stats"]

_COUNTS = ("messages", "deliveries", "targeting", "audiences", "exposures", "rejects")


def _summary_line(stats: dict[str, object]) -> str:
    return "store: " + ", ".join(f"{stats[k]:,} {k}" for k in _COUNTS)


def _print_report(report: IngestReport) -> None:
    for f in report.files:
        if f.error:
            click.echo(f"{f.path}: error: {f.error}", err=True)
            continue
        click.echo(f"{f.path} [{f.format}, {f.kind}]: {f.rows_read:,} read, {f.kept:,} kept "
                   f"({f.added:,} added, {f.updated:,} updated, {f.skipped:,} skipped), "
                   f"{f.rejected:,} rejected")
        for w in f.warnings:
            click.echo(f"  warning: {w}", err=True)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@DB
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Input format (default: detected).")
@click.option("--kind", type=click.Choice(["messages", "audiences", "exposures"]),
              help="What a generic table holds (default: the mapping's kind, else messages).")
@click.option("--audience-type", type=click.Choice(["person", "targeting", "page"]),
              help="Audience ids: person (stored only as salted hashes; the default), targeting, page.")
@click.option("--map", "map_pairs", multiple=True, metavar="FIELD=COLUMN",
              help="Fill a canonical field from a column (repeatable).")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False),
              help="A mapping YAML file {kind: ..., fields: {FIELD: COLUMN}} (docs/ingest.md).")
@click.option("--strict", is_flag=True, help="Fail (write nothing) for a file with any rejected row.")
def ingest(paths: tuple[str, ...], db: str, fmt: str | None, kind: str | None, audience_type: str | None,
           map_pairs: tuple[str, ...], mapping: str | None, strict: bool) -> None:
    """Read ad-library exports and tables (files or folders) into the store, one transaction per file.

    Exit status 1 when nothing could be read, or with --strict when a row was rejected."""
    with Store.open(db) as store, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # encoding fallbacks are reported per file below
        report = ingest_paths(store, paths, format=fmt, kind=kind, audience_type=audience_type,
                              mapping=mapping, map_pairs=map_pairs, strict=strict)
        _print_report(report)
        click.echo(f"total: {report.kept:,} kept, {report.rejected:,} rejected in "
                   f"{len(report.files)} file(s); run {report.run_id}")
        click.echo(_summary_line(store.stats()))
    if report.nothing_read or (strict and any(f.error for f in report.files)):
        sys.exit(1)


@click.command()
@DB
@click.option("--json", "as_json", is_flag=True, help="One JSON object of integer counts.")
def stats(db: str, as_json: bool) -> None:
    """Row counts of the store (messages, deliveries, targeting, audiences, exposures, rejects, ...)."""
    with Store.open(db, read_only=True) as store:
        s = store.stats()
    if as_json:
        click.echo(json.dumps(s, sort_keys=False))
        return
    click.echo(f"{db} (schema version {s.get('schema_version')})")
    width = max(len(k) for k in s)
    for k, v in s.items():
        if k != "schema_version":
            click.echo(f"  {k:<{width}}  {v:>12,}")
