"""``bubblelens ingest`` and ``bubblelens stats``."""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

import click

from ..ingest import FORMATS, IngestReport, ingest_paths
from ..store import Store
from .options import DB

__all__ = ["ingest", "source_accounts", "sponsor_spend_summary", "stats"]

_COUNTS = ("messages", "deliveries", "targeting", "audiences", "exposures", "rejects", "sponsor_spend")


def source_accounts(store: Store) -> list[dict[str, Any]]:
    """Per ingested file: rows read = kept (distinct) + rejected + duplicate (of another line)."""
    rows = store.con.execute(
        "SELECT path, format, kind, rows_read, rows_kept, rows_rejected FROM sources ORDER BY ingested_at, path"
    ).fetchall()
    return [{"path": p, "format": f, "kind": k, "read": int(r or 0), "kept": int(kp or 0), "rejected": int(rj or 0),
             "duplicate": max(0, int(r or 0) - int(kp or 0) - int(rj or 0))} for p, f, k, r, kp, rj in rows]


def sponsor_spend_summary(store: Store) -> list[dict[str, Any]]:
    """``sponsor_spend`` summed per sponsor (disclaimer, else page name) and currency, largest first."""
    rows = store.con.execute(
        "SELECT coalesce(disclaimer, page_name, page_id, '(unnamed)') AS sponsor, currency, "
        "sum(spend_lower), sum(spend_upper), count(*) FROM sponsor_spend GROUP BY 1, 2 "
        "ORDER BY 3 DESC NULLS LAST").fetchall()
    return [{"sponsor": str(sp), "currency": cur, "spend_lower": lo, "spend_upper": hi, "rows": int(n)}
            for sp, cur, lo, hi, n in rows]


def _summary_line(stats: dict[str, object]) -> str:
    return "store: " + ", ".join(f"{stats[k]:,} {k}" for k in _COUNTS)


def _print_report(report: IngestReport) -> None:
    for f in report.files:
        if f.error:
            click.echo(f"{f.path}: error: {f.error}", err=True)
            continue
        click.echo(f"{f.path} [{f.format}, {f.kind}]: {f.rows_read:,} read = {f.distinct:,} kept "
                   f"({f.added:,} added, {f.updated:,} updated, {f.skipped - f.duplicates:,} unchanged) "
                   f"+ {f.rejected:,} rejected + {f.duplicates:,} duplicate")
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
@click.option("--dayfirst/--monthfirst", "dayfirst", default=None,
              help="Read aa/bb/yyyy dates of tables as day/month or month/day (default: decided per column "
                   "from its values, with a warning when they cannot tell).")
@click.option("--salt-file", type=click.Path(dir_okay=False), default=None,
              help="Keep the salt of person ids in this file, not in the store (created when missing; "
                   "default: $BUBBLELENS_SALT_FILE). A copied store then cannot be brute-forced.")
@click.option("--textless", is_flag=True,
              help="A messages table without a text or URL column is meant so (else it is refused).")
def ingest(paths: tuple[str, ...], db: str, fmt: str | None, kind: str | None, audience_type: str | None,
           map_pairs: tuple[str, ...], mapping: str | None, strict: bool, dayfirst: bool | None,
           salt_file: str | None, textless: bool) -> None:
    """Read ad-library exports and tables (files or folders) into the store, one transaction per file.

    Exit status 1 when nothing could be read, or with --strict when a row was rejected."""
    with Store.open(db) as store, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # encoding fallbacks are reported per file below
        report = ingest_paths(store, paths, format=fmt, kind=kind, audience_type=audience_type,
                              mapping=mapping, map_pairs=map_pairs, strict=strict, dayfirst=dayfirst,
                              textless=textless, salt_file=salt_file)
        _print_report(report)
        click.echo(f"total: {sum(f.distinct for f in report.files):,} kept, {report.rejected:,} rejected, "
                   f"{sum(f.duplicates for f in report.files):,} duplicate in {len(report.files)} file(s); "
                   f"run {report.run_id}")
        counts = store.stats()
        counts["sponsor_spend"] = int(store.con.execute("SELECT count(*) FROM sponsor_spend").fetchall()[0][0])
        click.echo(_summary_line(counts))
    if report.nothing_read or (strict and any(f.error for f in report.files)):
        sys.exit(1)


@click.command()
@DB
@click.option("--json", "as_json", is_flag=True, help="One JSON object of integer counts.")
def stats(db: str, as_json: bool) -> None:
    """Row counts of the store (messages, deliveries, targeting, audiences, exposures, rejects, ...)."""
    with Store.open(db, read_only=True) as store:
        s: dict[str, Any] = store.stats()
        s["sponsor_spend"] = int(store.con.execute("SELECT count(*) FROM sponsor_spend").fetchall()[0][0])
        by_source = source_accounts(store)
        spend = sponsor_spend_summary(store)
    if as_json:
        click.echo(json.dumps({**s, "by_source": by_source, "spend_by_sponsor": spend}, sort_keys=False,
                              default=str))
        return
    click.echo(f"{db} (schema version {s.get('schema_version')})")
    width = max(len(k) for k in s)
    for k, v in s.items():
        if k != "schema_version":
            click.echo(f"  {k:<{width}}  {v:>12,}")
    if by_source:
        click.echo("\nper source: read = kept + rejected + duplicate")
        for r in by_source:
            click.echo(f"  {r['path']} [{r['format']}, {r['kind']}]: {r['read']:,} = {r['kept']:,} + "
                       f"{r['rejected']:,} + {r['duplicate']:,}")
    if spend:
        click.echo("\nsponsor spend (sponsor_spend: report CSVs, Google spend rows), largest first:")
        for r in spend[:15]:
            hi = "" if r["spend_upper"] is None else f"–{r['spend_upper']:,.0f}"
            click.echo(f"  {r['sponsor'][:48]:<48} {r['spend_lower'] or 0:>12,.0f}{hi} {r['currency'] or ''}"
                       f"  ({r['rows']:,} row(s))")
