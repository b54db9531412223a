"""``bubblelens measure``: exposure metrics of a segment scheme, with intervals (docs/metrics.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..store import Store
from .options import DB

__all__ = ["measure"]


@click.command()
@DB
@click.option("--scheme", type=click.Choice(["cells", "interests", "declared"]), required=True)
@click.option("--by", default=None,
              help="cells: dimensions (default region); declared: the attribute (default declared_lean); "
                   "interests: an audience type.")
@click.option("--lean", default=None,
              help="Home lean: a CSV/YAML file (segment → lean or camp shares), 'declared' or 'circular' "
                   "(default: declared when the panel has it, otherwise circular, flagged).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the segment metrics (long format) to this Parquet file.")
@click.option("--n-boot", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap replicates (0: point estimates only).")
@click.option("--n-perm", type=click.IntRange(min=0), default=499, show_default=True,
              help="Permutations for the segregation p-value.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--interval", type=click.Choice(["percentile", "bca"]), default="percentile", show_default=True,
              help="Bootstrap interval (docs/metrics.md: why percentile is the default).")
@click.option("--uncertainty", type=click.Choice(["census", "advertisers"]), default="census", show_default=True,
              help="What the interval describes: census = these ads (impressions in their ranges, labels); "
                   "advertisers = also the cluster bootstrap over sponsors (what other advertisers might do).")
@click.option("--k-min", type=click.IntRange(min=1), default=10, show_default=True,
              help="Privacy floor: segments with fewer people are never shown.")
@click.option("--impressions-min", type=float, default=100.0, show_default=True,
              help="Privacy floor: segments with fewer impressions are never shown.")
def measure(db: str, scheme: str, by: str | None, lean: str | None, as_json: bool, out: Path | None,
            n_boot: int, n_perm: int, seed: int, interval: str, uncertainty: str, k_min: int,
            impressions_min: float) -> None:
    """Which segments receive which narratives, and how exposed each is to the other side."""
    from ..measure.pipeline import measure_store, write_parquet

    with Store.open(db) as store:
        result = measure_store(store, scheme=scheme, by=by, lean=lean, n_boot=n_boot, seed=seed,
                               k_min=k_min, impressions_min=impressions_min, n_perm=n_perm, interval=interval,
                               uncertainty=uncertainty)
    for w in result["warnings"]:
        click.echo(w, err=True)
    if out is not None:
        write_parquet(result, out)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=1))
        return
    click.echo(f"{result['scheme']}: {len(result['segments'])} segments "
               f"({result['suppressed_segments']} under the privacy floor, not shown); run {result['run_id']}")
    click.echo("  intervals: 95 % " + ("census (these ads: impressions inside their ranges, labels from their "
                                       "probabilities)" if result["global"]["uncertainty"] == "census" else
                                       "advertiser-cluster bootstrap (what other advertisers might have done)"))
    for s in result["segments"]:
        cc = s["cross_cutting"]
        circ = " (circular lean)" if s["home_lean"]["circular"] else ""
        few = "  [few ads]" if s["few_ads"] else ""
        ci = "" if cc["ci"][0] is None else f" [{cc['ci'][0]:.2f}, {cc['ci'][1]:.2f}]"
        val = "n/a" if cc["value"] is None else f"{cc['value']:.2f}"
        click.echo(f"  {s['segment']}: {s['impressions']:,.0f} impressions; home {s['home_lean']['camp']}{circ}; "
                   f"cross-cutting {val}{ci}; effective narratives "
                   f"{(s['effective_narratives']['value'] or float('nan')):.1f}{few}")
    g = result["global"]
    for m in ("isolation", "theil_m", "echo_chamber"):
        e = g[m]
        if e["value"] is None:
            click.echo(f"  {m}: n/a")
            continue
        ci = "" if e["ci"][0] is None else f" [{e['ci'][0]:.3f}, {e['ci'][1]:.3f}]"
        pv = f", p = {e['p_value']:.3f}" if e.get("p_value") is not None else ""
        click.echo(f"  {m}: {e['value']:.3f}{ci}{pv}")
    t = result.get("timings") or {}
    if t:  # every step of the run (also in the run record and in --json)
        click.echo("  timings: " + ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in t.items()))
