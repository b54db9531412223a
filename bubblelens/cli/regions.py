"""``bubblelens regions``: each region label of the store, the shape it matched, and what is left."""

from __future__ import annotations

import json

import click

from ..geo.inventory import region_inventory, summarise
from ..store import Store
from .options import DB

__all__ = ["regions"]

_WHY = {"ambiguous": "several shapes carry this name", "country": "a country, not a region",
        "postcode": "a postcode, not a region", "unknown": "no region of that name (a town, district, "
                                                           "'Unknown', or a level the shapes do not have)"}


@click.command()
@DB
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object: {summary, labels: [{source, label, iso_3166_2, country, kind, ...}]}.")
@click.option("--limit", default=25, show_default=True, help="Unmatched labels named per source (text).")
def regions(db: str, as_json: bool, limit: int) -> None:
    """Each region label of the store's deliveries, targeting and audiences, the shape it matched
    (ISO 3166-2) or null, and counts; matched share printed, unmatched named with the reason."""
    with Store.open(db, read_only=True) as store:
        inv = region_inventory(store)
    summary = summarise(inv)
    if as_json:
        labels = inv.astype(object).where(inv.notna(), None).to_dict(orient="records")
        click.echo(json.dumps({"summary": summary, "labels": labels}, ensure_ascii=False))
        return
    if inv.empty:
        click.echo("no region labels in the store")
        return
    for source, s in summary.items():
        kinds = ", ".join(f"{v} {k}" for k, v in s["kinds"].items())
        click.echo(f"{source}: {s['labels']} labels, {s['matched']} matched ({s['matched_share']:.1%} of labels, "
                   f"{s['matched_share_rows']:.1%} of rows; {s['matched_share_regionlike']:.1%} of the labels "
                   f"that are not a country or a postcode); {kinds}")
        g = inv[inv["source"] == source]
        for r in g[g["iso_3166_2"].notna()].head(limit).itertuples():
            click.echo(f"  {r.label!s:<40} {r.iso_3166_2:<8} {r.n_ads:>7,} ads")
        left = g[g["iso_3166_2"].isna() & g["kind"].isin(["ambiguous", "unknown"])]
        n_other = int((g["iso_3166_2"].isna() & ~g["kind"].isin(["ambiguous", "unknown"])).sum())
        if n_other:
            click.echo(f"  {n_other} labels are countries or postcodes (not regions; --json lists them)")
        if not left.empty:
            click.echo(f"  unmatched ({len(left)}):")
            for rec in left.head(limit).to_dict(orient="records"):
                kind = str(rec["kind"])
                extra = f": {', '.join(rec['candidates'])}" if kind == "ambiguous" else ""
                click.echo(f"    {rec['label']!s:<38} {rec['n_ads']:>7,} ads  {kind}: {_WHY.get(kind, '')}{extra}")
            if len(left) > limit:
                click.echo(f"    ... and {len(left) - limit} more (--json lists all)")
