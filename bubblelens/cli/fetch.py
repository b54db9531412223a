"""``bubblelens fetch meta``: pull Meta's Ad Library API yourself (``docs/fetch.md``).

The access token comes from ``$META_ACCESS_TOKEN`` or ``--token-file``, never from the command line (a
command line is visible to every user of the machine and kept in shell histories).
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from ..collect import (
    AD_TYPES,
    DEFAULT_API_URL,
    DEFAULT_API_VERSION,
    DEFAULT_LIMIT,
    MANIFEST,
    FetchSummary,
    MetaQuery,
    Progress,
    fetch_meta,
    resolve_fields,
)
from ..errors import FetchError
from ..ingest import ingest_file
from ..store import Store
from .options import DB

__all__ = ["fetch", "store_ingester"]

TOKEN_ENV = "META_ACCESS_TOKEN"


def _split(values: tuple[str, ...] | str | None) -> list[str]:
    if not values:
        return []
    items = [values] if isinstance(values, str) else list(values)
    return [x.strip() for v in items for x in v.split(",") if x.strip()]


def _page_ids(spec: str | None) -> list[str]:
    """``ID,ID,…`` or a file of ids (one or more a line, comma or space separated, ``#`` comments)."""
    if not spec:
        return []
    p = Path(spec)
    if not p.is_file():
        return _split(spec)
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8-sig").splitlines(), 1):
        line = line.split("#", 1)[0]
        for x in line.replace(",", " ").split():
            if not x.isdigit():
                raise FetchError(f"{p}, line {n}: {x!r} is not a page id (page ids are numbers)")
            out.append(x)
    if not out:
        raise FetchError(f"{p} holds no page id")
    return out


def _token(token_file: str | None, out: Path) -> str:
    if token_file:
        tf = Path(token_file).resolve()
        if tf.is_relative_to(out.resolve()):
            raise FetchError("--token-file must not lie inside --out (the output folder holds no secret)")
        lines = [x.strip() for x in tf.read_text(encoding="utf-8").splitlines() if x.strip()]
        if not lines:
            raise FetchError(f"--token-file {token_file} is empty")
        return lines[0]
    tok = os.environ.get(TOKEN_ENV, "").strip()
    if not tok:
        raise FetchError(f"no access token: set ${TOKEN_ENV} or give --token-file PATH "
                         "(docs/fetch.md says how to get one; it is never taken on the command line)")
    return tok


def store_ingester(store: Store, query: MetaQuery) -> Callable[[Path], None]:
    """A function that ingests one page file into ``store`` (the ingest stage as it is: identical ads
    add nothing) and keeps one ``ingest`` run row up to date, so later stages see the new messages."""
    run_id = f"ingest-fetch-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    started = datetime.now(UTC).replace(tzinfo=None)
    inputs: dict[str, Any] = {}
    params: dict[str, Any] = {"format": "meta", "kind": None, "audience_type": None, "mapping": None,
                              "map": [], "strict": False, "fetch": query.identity()}

    def ingest(path: Path) -> None:
        rep = ingest_file(store, path, run_id=run_id, format="meta")
        inputs[str(path)] = rep.sha256
        with store.transaction():
            store.record_run(run_id, "ingest", status="ok", started_at=started,
                             finished_at=datetime.now(UTC).replace(tzinfo=None), params=params, inputs=inputs)

    return ingest


def _line(p: Progress) -> str:
    rate = f"usage {p.usage:.0f}%" if p.usage is not None else "usage n/a"
    parts = [f"{p.ads:,} ads", f"{p.pages:,} pages", f"window {p.window}",
             f"slice {p.slice_no}/{p.slices}", f"limit {p.limit}", rate]
    if p.retries:
        parts.append(f"{p.retries} retries")
    return " · ".join(parts)


class _Printer:
    """The progress line on stderr: rewritten in place on a terminal, one line a page otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.open = False

    def __call__(self, kind: str, text: str, progress: Progress) -> None:
        if kind == "page":
            msg = _line(progress)
            if self.tty:
                click.echo(f"\r\x1b[2K{msg}", err=True, nl=False)
                self.open = True
            else:
                click.echo(msg, err=True)
            return
        if self.open:
            click.echo("", err=True)
            self.open = False
        prefix = {"wait": "⏳ ", "retry": "↻ ", "notice": ""}.get(kind, "")
        click.echo(f"{prefix}{text}", err=True)

    def close(self) -> None:
        if self.open:
            click.echo("", err=True)
            self.open = False


def _summary(s: FetchSummary) -> str:
    lines = [f"{'resumed' if s.resumed else 'fetched'}: {s.new_ads:,} new ads in {s.pages:,} pages "
             f"({s.duplicates:,} sent again, skipped); {s.ads:,} ads in {s.out_dir}",
             f"requests {s.requests:,}, retries {s.retries:,}, waits {s.waits:,} "
             f"({s.waited_s:,.1f} s), time {s.seconds:,.1f} s"
             + (f", page size shrunk {s.shrinks}x, windows split {s.splits}x" if s.shrinks or s.splits else ""),
             f"manifest: {s.out_dir / MANIFEST}"]
    if s.ingested_files:
        lines.append(f"ingested: {s.ingested_files:,} page file(s)")
    return "\n".join(lines)


@click.group()
def fetch() -> None:
    """Collect ad libraries from their APIs into files that `bubblelens ingest` reads."""


@fetch.command("meta")
@click.option("--country", "countries", multiple=True, required=True, metavar="CC",
              help="Country the ads reached (ISO code; repeatable or comma-separated; ALL for any).")
@click.option("--since", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="First delivery day (ad_delivery_date_min), YYYY-MM-DD.")
@click.option("--until", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Last delivery day (ad_delivery_date_max), YYYY-MM-DD.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: page-NNNNNN.jsonl and fetch.json (re-run to resume).")
@click.option("--search-terms", help="Keywords (Meta does not translate them: write them in the ads' language).")
@click.option("--page-ids", metavar="ID,ID…|FILE", help="Advertiser page ids, or a file of them.")
@click.option("--ad-type", type=click.Choice(list(AD_TYPES)), default="political", show_default=True,
              help="political: POLITICAL_AND_ISSUE_ADS (worldwide); all: every ad delivered in the EU.")
@click.option("--fields", "fields_spec", default="all", show_default=True, metavar="political|dsa|all|a,b,c",
              help="Field set or comma-separated Meta field names.")
@click.option("--languages", help="Ad languages, ISO 639-1, comma-separated (e.g. fr,nl).")
@click.option("--limit", type=click.IntRange(1, 5000), default=DEFAULT_LIMIT, show_default=True,
              help="Ads per page (shrunk automatically when Meta asks to reduce the amount of data).")
@click.option("--api-url", default=DEFAULT_API_URL, show_default=True, help="Graph API host.")
@click.option("--api-version", default=DEFAULT_API_VERSION, show_default=True, help="Graph API version.")
@click.option("--max-wait", type=click.FloatRange(0), default=3600.0, show_default=True,
              help="Longest single wait in seconds (rate limits, backoff).")
@click.option("--timeout", type=click.FloatRange(0.1), default=60.0, show_default=True,
              help="Seconds to wait for one reply before retrying.")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False),
              help=f"File holding the access token (else ${TOKEN_ENV}).")
@click.option("--ingest", "do_ingest", is_flag=True, help="Ingest each finished page into --db as it arrives.")
@DB
def meta(countries: tuple[str, ...], since: datetime, until: datetime, out: str, search_terms: str | None,
         page_ids: str | None, ad_type: str, fields_spec: str, languages: str | None, limit: int,
         api_url: str, api_version: str, max_wait: float, timeout: float, token_file: str | None,
         do_ingest: bool, db: str) -> None:
    """Pull Meta's Ad Library API (ads_archive) into OUT, resumably; re-run the same command to resume.

    The token comes from $META_ACCESS_TOKEN or --token-file and is never written anywhere."""
    out_dir = Path(out)
    query = MetaQuery(countries=tuple(_split(countries)), since=since.date(), until=until.date(),
                      search_terms=search_terms or None, page_ids=tuple(_page_ids(page_ids)), ad_type=ad_type,
                      fields=resolve_fields(fields_spec), languages=tuple(_split(languages)))
    token = _token(token_file, out_dir)
    printer = _Printer()
    opts: dict[str, Any] = {"api_url": api_url, "api_version": api_version, "limit": limit, "max_wait": max_wait,
            "timeout": timeout, "on_event": printer}
    try:
        if do_ingest:
            with Store.open(db) as store:
                summary = fetch_meta(query, out_dir, token=token, ingest=store_ingester(store, query),
                                     ingest_db=str(Path(db).resolve()), **opts)
                printer.close()
                click.echo(_summary(summary))
                stats = store.stats()
                click.echo(f"store {db}: {stats['messages']:,} messages, {stats['deliveries']:,} deliveries")
        else:
            summary = fetch_meta(query, out_dir, token=token, **opts)
            printer.close()
            click.echo(_summary(summary))
            click.echo(f"next: bubblelens ingest {out_dir}/page-*.jsonl --format meta")
    except KeyboardInterrupt:
        printer.close()
        click.echo(f"interrupted; re-run the same command to resume from {out_dir / MANIFEST}", err=True)
        sys.exit(130)
    finally:
        printer.close()
