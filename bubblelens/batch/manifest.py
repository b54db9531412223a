"""The manifest of a scoring output: which input, which settings, which chunks are finished.

It lives in ``manifest.json`` inside the output directory and is rewritten atomically (a temporary file
in the same directory, then :func:`os.replace`) after every finished chunk, so a kill at any instant
leaves either the old or the new manifest, never half of one. A chunk counts as finished only once its
part file has been renamed into place *and* the manifest lists it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ScoreError
from .readers import input_files

__all__ = ["MANIFEST_NAME", "Manifest", "atomic_write_bytes", "fingerprint_file", "fingerprint_input",
           "sha256_path"]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
_MiB = 1 << 20


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a torn one."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fingerprint_file(path: str | Path) -> dict[str, Any]:
    """Identity of one input file: path, size, mtime and SHA-256.

    The hash covers the whole file up to 4 MiB, else its first and last MiB plus the size (``sampled``):
    cheap on a 10 GB library, and with the size and mtime it catches any edit short of a same-size change
    in the middle that also restores the mtime.
    """
    p = Path(path)
    st = p.stat()
    h = hashlib.sha256()
    with p.open("rb") as fh:
        if st.st_size <= 4 * _MiB:
            while block := fh.read(_MiB):
                h.update(block)
            mode = "full"
        else:
            h.update(fh.read(_MiB))
            fh.seek(st.st_size - _MiB)
            h.update(fh.read(_MiB))
            h.update(str(st.st_size).encode())
            mode = "sampled"
    return {"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256": h.hexdigest(), "hash": mode}


def fingerprint_input(path: str | Path) -> dict[str, Any]:
    """Identity of an input: one file, or every file of a folder (sorted by name)."""
    p = Path(path)
    return {"path": str(p.resolve()), "files": [fingerprint_file(f) for f in input_files(p)]}


def sha256_path(path: str | Path) -> str:
    """SHA-256 of a file, or of a folder's files (relative names and contents, sorted): a model's identity."""
    p = Path(path)
    h = hashlib.sha256()
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    for f in files:
        h.update(str(f.relative_to(p) if f != p else f.name).encode())
        with f.open("rb") as fh:
            while block := fh.read(_MiB):
                h.update(block)
    return h.hexdigest()


def _same_input(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Same files by content identity (size, mtime, hash); the path may differ (a moved library)."""
    key = ("size", "mtime_ns", "sha256")
    fa, fb = a.get("files", []), b.get("files", [])
    return len(fa) == len(fb) and all(
        all(x.get(k) == y.get(k) for k in key) for x, y in zip(fa, fb, strict=True))


@dataclass
class Manifest:
    """What an output directory holds. ``chunks`` maps a chunk index (as a string) to its part."""

    input: dict[str, Any]
    settings: dict[str, Any]
    engine: str = "local"
    chunks: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: bool = False
    total_rows: int | None = None
    version: int = MANIFEST_VERSION

    def matches(self, input_fp: dict[str, Any], settings: dict[str, Any]) -> bool:
        """True when this manifest describes the same input and the same settings."""
        return self.version == MANIFEST_VERSION and _same_input(self.input, input_fp) and \
            self.settings == settings

    def save(self, directory: str | Path) -> None:
        """Write atomically to ``directory/manifest.json``."""
        data = json.dumps(asdict(self), indent=1, sort_keys=True).encode()
        atomic_write_bytes(Path(directory) / MANIFEST_NAME, data)

    @classmethod
    def load(cls, directory: str | Path) -> Manifest | None:
        """The manifest of ``directory``, or None when it has none."""
        p = Path(directory) / MANIFEST_NAME
        if not p.exists():
            return None
        try:
            raw = json.loads(p.read_text())
            return cls(**raw)
        except (json.JSONDecodeError, TypeError) as e:
            raise ScoreError(f"{p} is not a BubbleLens scoring manifest ({e})") from e
