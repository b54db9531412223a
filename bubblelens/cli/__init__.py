"""The ``bubblelens`` command line: one sub-command per stage (click).

Each stage's commands live in their own module of this package and are added to :func:`main` here.
Errors of the :class:`~bubblelens.errors.BubbleLensError` tree become one clear sentence and exit 2.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..errors import BubbleLensError

__all__ = ["main"]


class _Group(click.Group):
    """A click group that turns BubbleLensError into one sentence on stderr, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BubbleLensError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="bubblelens")
def main() -> None:
    """BubbleLens: who is told what by political campaigns, and who never hears the other side."""


# The stages, in the order of the flow. Imported after ``main`` exists (each module defines commands only).
from .classify import classify, evaluate, train  # noqa: E402
from .fetch import fetch  # noqa: E402
from .ingest import ingest, stats  # noqa: E402
from .measure import measure  # noqa: E402
from .regions import regions  # noqa: E402
from .report import report  # noqa: E402
from .run import app, demo, run  # noqa: E402
from .score import score  # noqa: E402
from .segment import discover, narratives, segment  # noqa: E402
from .targeting import targeting  # noqa: E402

for _command in (fetch, ingest, stats, classify, train, evaluate, segment, discover, narratives, measure,
                 report, score, run, demo, app, targeting, regions):
    main.add_command(_command)
