"""``bubblelens segment``, ``bubblelens discover`` and ``bubblelens narratives promote`` (docs/segments.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..store import Store
from .options import DB, ENCODER

__all__ = ["discover", "narratives", "segment"]



@click.command()
@DB
@click.option("--scheme", type=click.Choice(["cells", "interests", "declared"]), required=True)
@click.option("--by", default=None,
              help="cells: roll-up dimensions (age,gender,...; default all roll-ups); declared: the "
                   "attribute (required); interests: an audience type to keep (optional).")
@click.option("--min-cluster-size", type=click.IntRange(min=2), default=None,
              help="HDBSCAN's smallest cluster (default: 2.5% of the fitted audiences, 10 to 100).")
@click.option("--n-segments", type=click.IntRange(min=1), default=None,
              help="Merge clusters into this many segments (default: at most 30).")
@click.option("--random-state", type=int, default=0, show_default=True)
@click.option("--k-min", type=click.IntRange(min=1), default=10, show_default=True,
              help="Privacy floor: segments with fewer people are merged into 'other'.")
@click.option("--k-impressions", type=float, default=100.0, show_default=True,
              help="Privacy floor: segments with fewer impressions are merged into 'other'.")
@ENCODER
@click.option("--max-fit", type=click.IntRange(min=10), default=20_000, show_default=True,
              help="Fit on at most this many distinct audiences; the rest are assigned.")
@click.option("--stability-runs", type=click.IntRange(min=0), default=2, show_default=True,
              help="Refits with other seeds for the stability check (interests; 0 to skip).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the members to this Parquet file.")
def segment(db: str, scheme: str, by: str | None, min_cluster_size: int | None, n_segments: int | None,
            random_state: int, k_min: int, k_impressions: float, encoder: str, max_fit: int,
            stability_runs: int, out: Path | None) -> None:
    """Segment audiences: delivery cells, interest clusters or declared groups."""
    from ..segment import members_frame, segment_store
    from ..segment.cells import parse_dims, scheme_name

    with Store.open(db) as store:
        run_id = segment_store(store, scheme=scheme, by=by, min_cluster_size=min_cluster_size,
                               n_segments=n_segments, random_state=random_state, k_min=k_min,
                               k_impressions=k_impressions, encoder=encoder, max_fit=max_fit,
                               stability_seeds=tuple(range(random_state + 1, random_state + 1 + stability_runs)))
        shown = "interests" if scheme == "interests" else f"declared:{by}" if scheme == "declared" \
            else scheme_name(parse_dims(by))
        seg = store.con.execute(
            "SELECT segment_id, label, size, impressions, stable FROM segments WHERE scheme = ? "
            "ORDER BY segment_id IN ('other', 'outlier'), size DESC", [shown]).fetchall()
        for sid, label, size, imp, stable in seg:
            flag = "" if stable is None or stable else "  [unstable]"
            imp_s = "" if imp is None else f"  {imp:,.0f} impressions"
            click.echo(f"{sid:>8}  {size:>7}  {label}{imp_s}{flag}")
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            members_frame(store, shown).to_parquet(out, index=False)
            click.echo(f"members → {out}")
    click.echo(f"run {run_id}: scheme {shown}, {len(seg)} segments")


@click.command()
@DB
@click.option("--min-cluster-size", type=click.IntRange(min=2), default=None)
@click.option("--n-segments", type=click.IntRange(min=1), default=None)
@click.option("--random-state", type=int, default=0, show_default=True)
@ENCODER
def discover(db: str, min_cluster_size: int | None, n_segments: int | None, random_state: int,
             encoder: str) -> None:
    """Find narratives beyond the codebook among the messages scored 'unassigned'."""
    from ..segment import discover_store

    with Store.open(db) as store:
        run_id = discover_store(store, encoder=encoder, min_cluster_size=min_cluster_size,
                                n_segments=n_segments, random_state=random_state)
        rows = store.con.execute(
            "SELECT narrative_id, size, keywords FROM discovered ORDER BY narrative_id").fetchall()
        for nid, size, kw in rows:
            click.echo(f"{nid}  {size:>6}  {', '.join(json.loads(kw)[:8])}")
    click.echo(f"run {run_id}: {len(rows)} narratives discovered; promote one with "
               "`bubblelens narratives promote ID --name NAME`")


@click.group()
def narratives() -> None:
    """Manage narratives (promote a discovered one into a codebook)."""


@narratives.command()
@DB
@click.argument("narrative_id")
@click.option("--name", required=True, help="The narrative's name (its id is derived from it).")
@click.option("--codebook", default="codebook.yaml", show_default=True, type=click.Path(dir_okay=False),
              help="The user's codebook YAML (created from the default one if missing).")
def promote(db: str, narrative_id: str, name: str, codebook: str) -> None:
    """Add discovered narrative NARRATIVE_ID to the codebook, with its keywords and examples."""
    from ..segment import promote as do_promote

    with Store.open(db, read_only=True) as store:
        entry = do_promote(codebook, narrative_id, name=name, store=store)
    click.echo(f"{narrative_id} → narrative {entry['id']!r} in {codebook} "
               f"({len(entry['examples'])} examples)")
