"""The investigation report: one self-contained HTML file, a run manifest, and the tables and figures.

``build_report(store, out, scheme=..., lang="en"|"fr")`` writes ``out``, ``<out stem>.manifest.json`` and
``<out stem>_files/``; ``verify_manifest(path)`` re-runs a manifest from its inputs and says whether every
number matches. See ``docs/report.md``.
"""

from __future__ import annotations

from .manifest import Mismatch, VerifyResult, verify_manifest
from .render import ReportResult, build_report, manifest_path

__all__ = ["Mismatch", "ReportResult", "VerifyResult", "build_report", "manifest_path", "verify_manifest"]
