"""``bubblelens run`` (the whole pipeline on your files) and ``bubblelens demo`` (on the bundled fixtures)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from ..pipeline import FIXTURE_INPUTS, PipelineResult, fixtures_dir, run_pipeline
from ..store import Store
from .options import CODEBOOK, DB, ENCODER, SPONSORS

__all__ = ["LOOPBACK", "app", "app_command", "demo", "run"]

#: Addresses that serve this machine only (the default: the app can upload files and write a codebook).
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def app_command(db: str | Path, *, port: int = 8501, host: str = "127.0.0.1") -> tuple[list[str], dict[str, str]]:
    """The command and environment that serve the Streamlit app on ``db`` at ``host:port``
    (``127.0.0.1`` by default: this machine only)."""
    app_py = fixtures_dir().parents[1] / "app.py"
    env = {**os.environ, "BUBBLELENS_DB": str(Path(db).resolve())}
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_py), "--server.headless", "true",
           "--server.address", host, "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--client.showErrorDetails", "none", "--client.disableDataExport", "true",
           "--client.toolbarMode", "viewer"]
    return cmd, env


def _serve(db: str, port: int, host: str) -> None:
    if host not in LOOPBACK:
        click.echo(f"warning: serving on {host}: anyone who can reach this machine can read the store, upload "
                   "files and write a codebook. Use the default 127.0.0.1 unless you mean it.", err=True)
    shown = host if host not in ("0.0.0.0", "::") else "localhost"
    click.echo(f"\nBubbleLens app: http://{shown}:{port}  (Ctrl-C to stop)")
    cmd, env = app_command(db, port=port, host=host)
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run(cmd, env=env, check=False)


_HOST = click.option("--host", default="127.0.0.1", show_default=True,
                     help="Address the app listens on; anything but 127.0.0.1 opens it to the network.")


def _summary(store: Store, res: PipelineResult) -> dict[str, Any]:
    # the report package imports its figures (matplotlib): imported here, not when any command starts
    from ..report.findings import isolated_segments

    out: dict[str, Any] = {"store": store.path, "counts": store.stats(), "stages": res.stages,
                           "file_errors": res.file_errors}
    out["segments"] = {}
    out["no_cross_cutting"] = {}
    for name, m in res.measures.items():
        # the report's findings: least cross-cutting segments with enough evidence (never a spill-over region)
        found = isolated_segments(m, n=5)
        out["segments"][name] = [
            {"segment": f["segment"], "impressions": round(f["impressions"]), "n_ads": f["n_ads"],
             "n_sponsors": f["n_sponsors"],
             "cross_cutting": [round(f["value"], 3)] + [round(x, 3) for x in (f["ci"] or [f["value"]] * 2)]}
            for f in found]
        if not found:
            out["no_cross_cutting"][name] = _why_none(m)
    return out


def _why_none(m: dict[str, Any]) -> str:
    """Why a measurement has no cross-cutting finding, in one line."""
    from ..report.findings import EVIDENCE

    segs = m.get("segments", [])
    known = max((int(s.get("n_camp_ads") or 0) for s in segs), default=0)
    if known < EVIDENCE["min_ads"]:
        return (f"the camp is known for at most {known} ads of any segment (see the classify warnings: give a "
                "codebook of the data's camps, or a sponsor table)")
    return "no segment has enough ads, sponsors and impressions behind it for a finding (docs/report.md)"


def _print_summary(summary: dict[str, Any]) -> None:
    c = summary["counts"]
    for err in summary.get("file_errors", []):
        click.echo(f"not read: {err}", err=True)
    click.echo(f"\nStore {summary['store']}: {c['messages']} messages, {c['deliveries']} deliveries, "
               f"{c['targeting']} targeting rows, {c['audiences']} audiences, {c['exposures']} exposures, "
               f"{c['rejects']} rejects, {c['scores']} scores, {c['segments']} segments")
    for name, segs in summary["segments"].items():
        if not segs:
            click.echo(f"\n{name}: no cross-cutting finding: {summary['no_cross_cutting'].get(name, '')}")
            continue
        click.echo(f"\nLeast cross-cutting exposure, {name} (share of impressions from other camps, 95% census "
                   "interval; segments with enough evidence):")
        for s in segs:
            v, lo, hi = s["cross_cutting"]
            click.echo(f"  {s['segment']:<32} {v:6.1%}  [{lo:.1%}, {hi:.1%}]  {s['impressions']:,} impressions, "
                       f"{s['n_ads']:,} ads, {s['n_sponsors']:,} sponsors")


def _options(f: Any) -> Any:
    f = DB(f)
    f = ENCODER(f)
    f = CODEBOOK(f)
    f = SPONSORS(f)
    f = click.option("--n-boot", default=1000, show_default=True, help="Bootstrap replicates.")(f)
    f = click.option("--seed", default=0, show_default=True, help="Seed of every random step.")(f)
    f = click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")(f)
    return f


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@_options
def run(paths: tuple[str, ...], db: str, encoder: str, codebook: str | None, sponsors: str | None,
        n_boot: int, seed: int, as_json: bool) -> None:
    """Ingest PATHS (format detected; NAME.mapping.yaml beside a table is used) and run every stage."""
    with Store.open(db) as store:
        res = run_pipeline(store, [(p, {}) for p in paths], codebook=codebook, sponsors=sponsors, encoder=encoder,
                           n_boot=n_boot, seed=seed, log=lambda m: click.echo(m, err=True))
        summary = _summary(store, res)
    click.echo(json.dumps(summary, indent=2, default=str) if as_json else "", nl=as_json)
    if not as_json:
        _print_summary(summary)


@click.command()
@_options
@click.option("--app/--no-app", default=True, show_default=True,
              help="Open the Streamlit app on the store afterwards.")
@click.option("--port", default=8501, show_default=True, help="Port of the app.")
@_HOST
def demo(db: str, encoder: str, codebook: str | None, sponsors: str | None, n_boot: int, seed: int,
         as_json: bool, app: bool, port: int, host: str) -> None:
    """Run the whole pipeline on the bundled fixtures (data/fixtures), print a summary, open the app.

    The fixtures' sponsor table (``sponsors.csv``: the pages a newsroom has attributed) joins the codebook
    unless ``--sponsors`` names another.
    """
    fx = fixtures_dir()
    sponsors = sponsors or str(fx / "sponsors.csv")
    inputs = [(fx / name, opts) for name, opts in FIXTURE_INPUTS]
    with Store.open(db) as store:
        res = run_pipeline(store, inputs, codebook=codebook, sponsors=sponsors, encoder=encoder, n_boot=n_boot,
                           seed=seed,
                           log=lambda m: click.echo(m, err=True))
        summary = _summary(store, res)
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
    else:
        _print_summary(summary)
    if not app or not (fx.parents[1] / "app.py").exists():
        return
    _serve(db, port, host)


@click.command("app")
@DB
@click.option("--port", default=8501, show_default=True, help="Port of the app.")
@_HOST
def app(db: str, port: int, host: str) -> None:
    """Serve the Streamlit app on the store --db (on 127.0.0.1: this machine only, unless --host)."""
    _serve(db, port, host)
