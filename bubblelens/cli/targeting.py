"""``bubblelens targeting``: what each camp aimed at, and how much of its spend used personal data."""

from __future__ import annotations

import json

import click

from ..measure.targeting_run import BY, SOURCES, targeting_report
from ..store import Store
from .options import DB, ENCODER, SPONSORS

__all__ = ["targeting"]

_SHOWN = ("personal_data", "customer_list", "custom_audience", "lookalike_audience", "detailed", "location",
          "age", "gender", "language")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _bounds(cell: dict) -> str:
    lo, hi = cell.get("low"), cell.get("high")
    return _pct(lo) if lo == hi else f"{_pct(lo)}–{_pct(hi)}"


@click.command()
@DB
@click.option("--by", type=click.Choice(BY), default="camp", show_default=True,
              help="Group pages by camp (party unless --sponsors says otherwise), party, or sponsor (page).")
@click.option("--source", type=click.Choice(SOURCES), default=None,
              help="table: ingested targeting tables; ads: the per-ad DSA fields of a pull (default: table "
                   "when there is one).")
@SPONSORS
@click.option("--top", default=5, show_default=True, help="Distinctive criteria and clusters per group.")
@click.option("--clusters/--no-clusters", default=True, show_default=True,
              help="Cluster the detailed-targeting criteria (embeds their names; writes targeting_clusters).")
@ENCODER
@click.option("--boot", "n_boot", default=1000, show_default=True, help="Bootstrap resamples over pages.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def targeting(db: str, by: str, source: str | None, sponsors: str | None, top: int, clusters: bool, encoder: str,
              n_boot: int, as_json: bool) -> None:
    """Targeting methods, personal-data indicator, distinctive criteria and clusters per group.

    Platform-reported targeting choices (who the advertiser asked for), not delivery; spend-weighted over
    pages; where several criteria of one method overlap, a lower and an upper bound."""
    with Store.open(db) as store:
        rep = targeting_report(store, by=by, source=source, sponsors=sponsors, top=top, clusters=clusters,
                               encoder=encoder, n_boot=n_boot)
    if as_json:
        click.echo(json.dumps(rep, ensure_ascii=False, default=str))
        return
    w = rep["window"]
    click.echo(f"targeting ({rep['source']}, by {by}; window ds {', '.join(w['ds']) or 'unknown'}; spend in "
               f"{rep['spend_unit']}): {rep['note']}")
    click.echo(f"bounds: {rep['bounds']}")
    head = f"{'group':<22} {'pages':>5} {'spend':>11}  " + "  ".join(f"{m[:14]:>14}" for m in _SHOWN)
    click.echo(head)
    for g, e in rep["groups"].items():
        cells = "  ".join(f"{_bounds(e['methods'][m]):>14}" for m in _SHOWN)
        click.echo(f"{g[:22]:<22} {e['pages']:>5} {e['spend'] or 0:>11,.0f}  {cells}")
    click.echo("\npersonal data (any custom audience or lookalike), interval over pages:")
    for g, e in rep["groups"].items():
        p = e["personal_data"]["personal_data"]
        cl = e["personal_data"]["customer_list"]
        click.echo(f"  {g}: {_bounds(p)} [{_pct(p['ci'][0])}, {_pct(p['ci'][1])}] on {p['pages']} of {e['pages']} "
                   f"page(s); customer lists {_bounds(cl)} on {cl['pages']} page(s)")
    click.echo("\ndistinctive detailed criteria (log-odds, informative Dirichlet prior):")
    for g, e in rep["groups"].items():
        if e["distinctive"]:
            items = "; ".join(f"{d['value']} ({d['pages']} p, {d['spend']:,.0f})" for d in e["distinctive"])
            click.echo(f"  {g}: {items}")
    if rep.get("clusters"):
        click.echo(f"\n{len(rep['clusters'])} clusters of detailed criteria; per group, the largest:")
        for g, e in rep["groups"].items():
            if e["clusters"]:
                click.echo(f"  {g}: " + "; ".join(f"{c['label']} ({_pct(c['share'])})" for c in e["clusters"][:3]))
    tvd = rep.get("targeted_vs_delivered") or {}
    if tvd:
        click.echo(f"\ntargeted vs delivered ({len(tvd)} page(s) with both); age bands, share targeted / delivered:")
        for _pid, t in list(tvd.items())[:20]:
            ages = [r for r in t["rows"] if r["dimension"] == "age"]
            click.echo(f"  {t['page_name']} [{t['source']}]: " + ", ".join(
                f"{r['band']} {_pct(r['targeted'])}/{_pct(r['delivered'])}" for r in ages))
