"""Options that several commands share, defined once so that their names, defaults and help agree."""

from __future__ import annotations

import click

from ..store import DEFAULT_DB

__all__ = ["CODEBOOK", "DB", "ENCODER", "SPONSORS"]

DB = click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False),
                  help="The store (a DuckDB file).")
ENCODER = click.option(
    "--encoder", default="usem3", show_default=True,
    help="usem3, st:minilm or st:PATH_OR_ID (st: models run on CTranslate2 int8; "
         "$BUBBLELENS_ST_BACKEND=torch|ct2-int8|onnx|onnx-int8 chooses).")
CODEBOOK = click.option("--codebook", type=click.Path(exists=True, dir_okay=False), default=None,
                        help="Codebook YAML (default: the shipped one, models/codebook.yaml).")
SPONSORS = click.option("--sponsors", type=click.Path(exists=True, dir_okay=False), default=None,
                        help="Extra sponsor table (CSV: sponsor, sponsor_id, camp) joining the codebook's.")
