"""The state of a fetch on disk: page files ``DIR/page-NNNNNN.jsonl`` and the manifest ``DIR/fetch.json``.

Both are written atomically (a hidden temporary file, flushed and fsynced, then renamed over the
target), so a reader — or a fetch resumed after SIGKILL — sees a file whole or not at all. A page file
is renamed into place *before* the manifest records the cursor after it; a fetch killed between the two
fetches that page again on resume and skips its ads, since the ids already on disk are loaded first.
So at most the page in flight is lost, and no ad is written twice.

The manifest holds no secret: the query, the API address and version, the cursor of every slice, counts,
timings and the HTTP errors met. The access token is never part of it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import FetchError

__all__ = ["MANIFEST", "Manifest", "Slice", "atomic_write", "iter_page_files", "page_path", "read_page_ids",
           "remove_partial_files", "utc_now"]

MANIFEST = "fetch.json"
FORMAT = "bubblelens-fetch/1"
#: At most this many HTTP errors are kept in the manifest (the oldest go first); counts keep them all.
MAX_ERRORS = 200
_PAGE = re.compile(r"^page-(\d{6,})\.jsonl$")
_TMP_PREFIX = ".tmp-"


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (``2024-06-09T12:00:00Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that it is there whole or not at all (temp file, fsync, rename)."""
    tmp = path.with_name(f"{_TMP_PREFIX}{path.name}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def page_path(out_dir: Path, number: int) -> Path:
    """``DIR/page-000001.jsonl``: the file of the ``number``-th page that held new ads."""
    return out_dir / f"page-{number:06d}.jsonl"


def iter_page_files(out_dir: Path) -> Iterator[tuple[int, Path]]:
    """The page files of ``out_dir`` as (number, path), in number order."""
    found = []
    for p in out_dir.iterdir() if out_dir.is_dir() else ():
        m = _PAGE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    yield from sorted(found)


def remove_partial_files(out_dir: Path) -> int:
    """Delete the temporary files a killed fetch left (never a finished page); returns how many."""
    n = 0
    for p in out_dir.glob(f"{_TMP_PREFIX}*"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def read_page_ids(path: Path, ad_key: Any) -> list[str]:
    """The ad keys (see :func:`bubblelens.collect.meta.ad_key`) of one page file, in order."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(ad_key(json.loads(line)))
            except json.JSONDecodeError as e:
                raise FetchError(f"{path.name}, line {line_no}: not JSON ({e.msg}); this folder was changed "
                                 "by something else than a fetch — move the file away and run again") from e
    return out


@dataclass
class Slice:
    """One part of the query that is paged on its own: up to 10 page ids and a date window.

    A slice whose window Meta finds too heavy is split in two halves (``split_into`` names them)."""

    key: str
    since: str
    until: str
    page_ids: list[str] = field(default_factory=list)
    after: str | None = None
    done: bool = False
    pages: int = 0
    ads: int = 0
    split_into: list[str] = field(default_factory=list)

    @property
    def window(self) -> str:
        return f"{self.since}..{self.until}"


@dataclass
class Manifest:
    """What ``DIR/fetch.json`` holds (see the module docstring); :meth:`save` writes it atomically."""

    query: dict[str, Any]
    api: dict[str, str]
    limit: dict[str, int]
    slices: list[Slice]
    format: str = FORMAT
    source: str = "meta-ad-library-api"
    status: str = "running"
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)
    pages: int = 0  # pages received from the API
    files: int = 0  # page files written (pages with at least one ad not seen before)
    ads: int = 0  # distinct ads written
    duplicates: int = 0  # ads the API sent again (overlapping windows, a page fetched again), not written
    requests: int = 0
    retries: int = 0
    waits: int = 0
    waited_s: float = 0.0
    seconds: float = 0.0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    ingested: dict[str, Any] = field(default_factory=lambda: {"db": None, "files": []})
    last_error: str | None = None

    # -- reading and writing -------------------------------------------------------------------------
    @classmethod
    def load(cls, out_dir: Path) -> Manifest | None:
        """The manifest of ``out_dir``, or None when there is none yet."""
        path = out_dir / MANIFEST
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise FetchError(f"{path} cannot be read ({e}); it is written atomically, so something else "
                             "changed it — move the folder away or restore the file") from e
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise FetchError(f"{path} is not a BubbleLens fetch manifest ({FORMAT}); choose another --out")
        known = {f.name for f in fields(cls)}
        raw = {k: v for k, v in raw.items() if k in known}
        raw["slices"] = [Slice(**s) for s in raw.get("slices", [])]
        return cls(**raw)

    def to_json(self) -> bytes:
        d = asdict(self)
        d["waited_s"] = round(self.waited_s, 3)
        d["seconds"] = round(self.seconds, 3)
        first = ("format", "source", "status", "last_error", "ads", "files", "pages", "duplicates", "requests",
                 "retries", "waits", "waited_s", "seconds", "created_at", "updated_at", "query", "api", "limit")
        d = {**{k: d[k] for k in first}, **d}
        return (json.dumps(d, ensure_ascii=False, indent=1) + "\n").encode("utf-8")

    def save(self, out_dir: Path) -> None:
        self.updated_at = utc_now()
        atomic_write(out_dir / MANIFEST, self.to_json())

    # -- bookkeeping ---------------------------------------------------------------------------------
    def add_error(self, entry: dict[str, Any]) -> None:
        """Keep one HTTP error (the newest :data:`MAX_ERRORS`) and count it by kind."""
        kind = str(entry.get("kind"))
        self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + 1
        self.errors.append(entry)
        del self.errors[:-MAX_ERRORS]

    def open_slices(self) -> list[Slice]:
        return [s for s in self.slices if not s.done]
