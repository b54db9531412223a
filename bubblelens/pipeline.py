"""The whole flow in one call: ingest → classify → segment → discover → measure (→ report).

``bubblelens run`` and ``bubblelens demo`` use :func:`run_pipeline`; the app's fixture store and the
report's verify round trip use the same function, so every entry point computes the same numbers. Each
stage writes its own tables in its own transaction and records a ``runs`` row; a stage that cannot run on
the data (no audiences for ``interests``, no deliveries for ``cells``) is skipped with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BubbleLensError
from .store import Store

__all__ = ["FIXTURE_INPUTS", "PipelineResult", "fixtures_dir", "run_pipeline"]

# The bundled fixtures, in ingest order. ``messages.csv`` comes before ``meta_ads.json``: the Meta export
# of the same ads is the newer, richer record (age × gender delivery, DSA targeting) and replaces the row.
FIXTURE_INPUTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("messages.csv", {"format": "table"}),
    ("meta_ads.json", {"format": "meta"}),
    ("google_creative_stats.csv", {"format": "google"}),
    ("panel.csv", {"format": "table"}),
    ("exposures.csv", {"format": "table"}),
)

# Schemes measured by default: delivery cells by region and by age × gender, interest clusters of the
# panel, and the panel's declared lean.
DEFAULT_SCHEMES: tuple[tuple[str, str | None], ...] = (
    ("cells", "region"),
    ("cells", "age,gender"),
    ("interests", None),
    ("declared", "declared_lean"),
)


def fixtures_dir() -> Path:
    """``data/fixtures`` of the source tree (the package is installed in editable mode), else of the cwd."""
    here = Path(__file__).resolve().parents[1] / "data" / "fixtures"
    return here if here.is_dir() else Path.cwd() / "data" / "fixtures"


@dataclass
class PipelineResult:
    """What each stage did: its run id, or why it was skipped; and the measured results per scheme."""

    stages: dict[str, str] = field(default_factory=dict)
    measures: dict[str, dict[str, Any]] = field(default_factory=dict)
    ingest_kept: int = 0
    ingest_rejected: int = 0
    #: Files that could not be read (``path: reason``): reported, the others went on, as ``ingest`` does.
    file_errors: list[str] = field(default_factory=list)


def run_pipeline(
    store: Store,
    inputs: Sequence[tuple[str | Path, dict[str, Any]]] = (),
    *,
    codebook: str | Path | None = None,
    sponsors: str | Path | None = None,
    encoder: str = "usem3",
    models: Sequence[str | Path] = (),
    schemes: Sequence[tuple[str, str | None]] = DEFAULT_SCHEMES,
    n_boot: int = 1000,
    seed: int = 0,
    k_min: int = 10,
    discover: bool = True,
    log: Callable[[str], None] = lambda _msg: None,
) -> PipelineResult:
    """Run every stage on ``store`` after ingesting ``inputs`` (``(path, ingest options)`` pairs).

    ``sponsors``: an extra sponsor → camp table joining the codebook's (see ``load_codebook``).

    Stages that raise a :class:`BubbleLensError` because the data cannot support them are skipped and
    reported in ``result.stages``; any other exception propagates (the store keeps what earlier stages
    committed, and a re-run resumes: ingest skips unchanged files, embeddings come from the cache).
    """
    from .classify import classify_store, load_codebook
    from .ingest import ingest_paths
    from .measure import measure_store
    from .segment import discover_store, segment_store

    res = PipelineResult()
    n_files = 0
    for path, options in inputs:
        rep = ingest_paths(store, [path], **options)
        res.ingest_kept += rep.kept
        res.ingest_rejected += rep.rejected
        n_files += len(rep.files)
        for f in rep.files:
            if f.error:  # a bad file among a folder is reported; the others go on (as ``ingest``)
                res.file_errors.append(f"{Path(f.path).name}: {f.error}")
                log(f"ingest {Path(f.path).name}: error: {f.error}")
        log(f"ingest {Path(path).name}: {rep.kept} kept, {rep.rejected} rejected")
    if inputs and n_files and len(res.file_errors) == n_files:
        raise BubbleLensError("no input file could be read: " + "; ".join(res.file_errors[:3]))
    res.stages["ingest"] = "ok" if not res.file_errors else f"ok ({len(res.file_errors)} file(s) not read)"

    cb = load_codebook(codebook, sponsors=sponsors)
    res.stages["classify"] = classify_store(store, codebook=cb, encoder=encoder, models=models)
    log(f"classify: run {res.stages['classify']}")
    for w in store.run_inputs(res.stages["classify"]).get("warnings", []):
        log(w)
    if discover:
        res.stages["discover"] = _attempt(lambda: discover_store(store, encoder=encoder, random_state=seed))
        log(f"discover: {res.stages['discover']}")

    for scheme, by in schemes:
        name = scheme if by is None else f"{scheme}:{by}"
        seg = _attempt(lambda s=scheme, b=by: segment_store(  # type: ignore[misc]
            store, scheme=s, by=b, random_state=seed, k_min=k_min, encoder=encoder))
        res.stages[f"segment {name}"] = seg
        log(f"segment {name}: {seg}")
        if seg.startswith("skipped"):
            continue
        try:
            res.measures[name] = measure_store(store, scheme=scheme, by=by, n_boot=n_boot, seed=seed,
                                               k_min=k_min)
            res.stages[f"measure {name}"] = "ok"
        except BubbleLensError as e:
            res.stages[f"measure {name}"] = f"skipped: {e}"
        log(f"measure {name}: {res.stages[f'measure {name}']}")
    return res


def _attempt(fn: Callable[[], str]) -> str:
    try:
        return fn()
    except BubbleLensError as e:
        return f"skipped: {e}"
