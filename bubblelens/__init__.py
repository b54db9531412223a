"""BubbleLens: who is being told what by political campaigns, and who never hears the other side.

The flow runs one way: sources → ingest → store → embed → classify → segment → measure → present.
This module is the small public facade; the stages live in their own sub-packages.
"""

from __future__ import annotations

from . import errors
from .errors import *  # noqa: F403  (the error classes; their names are listed once, in errors.__all__)
from .store import Store

__version__ = "0.1.0"

__all__ = [*errors.__all__, "Store", "__version__"]
