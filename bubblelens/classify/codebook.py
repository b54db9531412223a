"""The codebook: narratives and camps, read from YAML and validated (format: ``models/README.md``)."""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ..errors import CodebookError

__all__ = ["DEFAULT_CODEBOOK", "GENERIC_CAMPS", "Camp", "Codebook", "Narrative", "SponsorRule", "load_codebook"]

DEFAULT_CODEBOOK = Path(__file__).resolve().parents[2] / "models" / "codebook.yaml"
GENERIC_CAMPS = ("left", "centre", "right")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_RESERVED = {"unassigned"}


@dataclass(frozen=True)
class Narrative:
    """One narrative: an id, labels and descriptions by language, example sentences (any language)."""

    id: str
    labels: dict[str, str]
    description: dict[str, str] = field(default_factory=dict)
    examples: tuple[str, ...] = ()

    def prototypes(self) -> list[tuple[str, str]]:
        """Texts that stand for the narrative, each with its kind: labels, ``label: description``, examples."""
        out: list[tuple[str, str]] = [("label", v) for v in self.labels.values()]
        for lang, d in self.description.items():
            lab = self.labels.get(lang) or next(iter(self.labels.values()))
            out.append(("description", f"{lab}: {d}"))
        out.extend(("example", e) for e in self.examples)
        return out


@dataclass(frozen=True)
class SponsorRule:
    """A sponsor → camp rule: an exact page id, a normalized name, or a regex (``/…/`` in YAML)."""

    camp: str
    name: str | None = None
    sponsor_id: str | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Camp(Narrative):
    """A camp: a narrative-like entry with an optional left–right position, its generic bloc and sponsor rules.

    ``position`` is ``None`` when the codebook gives none: cross-cutting exposure needs only the camps;
    slant and the echo-chamber correlation need positions.
    """

    position: float | None = None
    generic: str | None = None
    sponsors: tuple[SponsorRule, ...] = ()


@dataclass(frozen=True)
class Codebook:
    """Narratives, camps (the active set), the generic camp set, and the SHA-256 of the source files."""

    narratives: tuple[Narrative, ...]
    camps: tuple[Camp, ...]
    generic_camps: tuple[Camp, ...] = ()
    name: str = ""
    path: str | None = None
    sha256: str = ""
    camp_set: str = "default"
    countries: tuple[str, ...] = ()

    @property
    def languages(self) -> set[str]:
        """Languages the camps are described in (label and description keys; ``und`` = any)."""
        return {lang for c in self.camps for lang in (*c.labels, *c.description)}

    def all_camps(self) -> tuple[Camp, ...]:
        """The active camps, then the generic camps not among them (a sponsor table may name either)."""
        ids = set(self.camp_ids)
        return self.camps + tuple(g for g in self.generic_camps if g.id not in ids)

    @property
    def narrative_ids(self) -> list[str]:
        return [n.id for n in self.narratives]

    @property
    def camp_ids(self) -> list[str]:
        return [c.id for c in self.camps]

    def camp(self, camp_id: str) -> Camp:
        for c in self.camps:
            if c.id == camp_id:
                return c
        raise KeyError(camp_id)

    def sponsor_rules(self) -> list[SponsorRule]:
        """Rules of the active camps, then those naming a generic camp directly (a sponsor table may)."""
        return [r for c in self.all_camps() for r in c.sponsors]

    def with_generic_camps(self) -> Codebook:
        """The same codebook with the generic left/centre/right camps active.

        Each camp's sponsor rules move to its ``generic`` bloc, so a known sponsor still decides.
        """
        if self.camp_set == "generic":
            return self
        if not self.generic_camps:
            raise CodebookError(f"{self.path or 'the codebook'} has no generic_camps")
        moved: dict[str, list[SponsorRule]] = {g.id: [] for g in self.generic_camps}
        for c in self.camps:
            if c.generic in moved:
                moved[c.generic].extend(replace(r, camp=c.generic) for r in c.sponsors)
        camps = tuple(replace(g, sponsors=tuple(g.sponsors) + tuple(moved[g.id])) for g in self.generic_camps)
        return replace(self, camps=camps, camp_set="generic", countries=())  # left / right exist anywhere


def _err(path: str, msg: str) -> CodebookError:
    return CodebookError(f"{path}: {msg}")


def _lang_map(v: Any, where: str, path: str, *, required: bool) -> dict[str, str]:
    if v is None:
        if required:
            raise _err(path, f"{where} is missing")
        return {}
    if isinstance(v, str):
        v = {"und": v}
    if not isinstance(v, dict) or not v or not all(isinstance(k, str) and isinstance(t, str) and t.strip()
                                                  for k, t in v.items()):
        hint = (" (YAML reads an unquoted Yes / No / On / Off as true / false: quote it)"
                if isinstance(v, dict) and any(isinstance(t, bool) for t in v.values()) else "")
        raise _err(path, f"{where} must map language codes to non-empty strings, e.g. {{fr: …, en: …}}{hint}")
    return {k: t.strip() for k, t in v.items()}


def _examples(v: Any, where: str, path: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(e, str) and e.strip() for e in v):
        raise _err(path, f"{where}.examples must be a list of non-empty strings")
    return tuple(e.strip() for e in v)


def _sponsor_rule(s: Any, camp: str, where: str, path: str) -> SponsorRule:
    if isinstance(s, dict):
        if "id" in s or "sponsor_id" in s:
            return SponsorRule(camp, sponsor_id=str(s.get("id", s.get("sponsor_id"))))
        if "pattern" in s:
            s = f"/{s['pattern']}/"
        elif "name" in s:
            s = str(s["name"])
    if isinstance(s, int):
        return SponsorRule(camp, sponsor_id=str(s))
    if not isinstance(s, str) or not s.strip():
        raise _err(path, f"{where}.sponsors: each sponsor is a name, a page id or a /pattern/")
    s = s.strip()
    if len(s) > 2 and s.startswith("/") and s.endswith("/"):
        try:
            re.compile(s[1:-1])
        except re.error as e:
            raise _err(path, f"{where}.sponsors: bad pattern {s}: {e}") from e
        return SponsorRule(camp, pattern=s[1:-1])
    if s.isdigit():
        return SponsorRule(camp, sponsor_id=s)
    return SponsorRule(camp, name=s)


def _parse_entries(raw: Any, key: str, path: str, *, camp: bool) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise _err(path, f"`{key}` must be a non-empty list")
    seen: set[str] = set()
    out = []
    for i, e in enumerate(raw):
        where = f"{key}[{i}]"
        if not isinstance(e, dict):
            raise _err(path, f"{where} must be a mapping with at least id and labels")
        eid = e.get("id")
        if not isinstance(eid, str) or not _ID.match(eid) or eid in _RESERVED:
            raise _err(path, f"{where}.id {eid!r} must be lower_snake_case and not 'unassigned'")
        if eid in seen:
            raise _err(path, f"{where}.id {eid!r} is duplicated")
        seen.add(eid)
        where = f"{key}[{eid}]"
        allowed = {"id", "labels", "description", "examples"} | (
            {"position", "generic", "sponsors"} if camp else set())
        extra = set(e) - allowed
        if extra:
            raise _err(path, f"{where} has unknown keys {sorted(extra)}")
        d: dict[str, Any] = {
            "id": eid,
            "labels": _lang_map(e.get("labels"), f"{where}.labels", path, required=True),
            "description": _lang_map(e.get("description"), f"{where}.description", path, required=False),
            "examples": _examples(e.get("examples"), where, path),
        }
        if camp:
            pos = e.get("position")
            if pos is not None and (not isinstance(pos, int | float) or isinstance(pos, bool)
                                    or not -1.0 <= float(pos) <= 1.0):
                raise _err(path, f"{where}.position must be a number in [-1, 1] (or left out)")
            gen = e.get("generic")
            if gen is not None and gen not in GENERIC_CAMPS:
                raise _err(path, f"{where}.generic must be one of {', '.join(GENERIC_CAMPS)}")
            sp = e.get("sponsors") or []
            if not isinstance(sp, list):
                raise _err(path, f"{where}.sponsors must be a list")
            d.update(position=None if pos is None else float(pos), generic=gen,
                     sponsors=tuple(_sponsor_rule(s, eid, where, path) for s in sp))
        out.append(d)
    return out


def _read_sponsors_file(file: Path, camps: set[str], path: str) -> list[SponsorRule]:
    if not file.exists():
        raise _err(path, f"sponsors_file {file} does not exist")
    rules = []
    with file.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "camp" not in reader.fieldnames:
            raise _err(path, f"sponsors_file {file} needs the columns sponsor, sponsor_id, camp")
        for line, row in enumerate(reader, start=2):
            camp = (row.get("camp") or "").strip()
            if camp not in camps:
                raise _err(path, f"sponsors_file {file} line {line}: unknown camp {camp!r} "
                                 f"(the codebook's camps: {', '.join(sorted(camps))})")
            sid = (row.get("sponsor_id") or "").strip()
            name = (row.get("sponsor") or "").strip()
            if sid:
                rules.append(SponsorRule(camp, sponsor_id=sid))
            if name:
                rules.append(_sponsor_rule(name, camp, f"sponsors_file line {line}", path))
    return rules


def _countries(v: Any, path: str) -> tuple[str, ...]:
    """``countries: [FR, BE]``: ISO 3166-1 alpha-2 codes of the countries whose camps these are."""
    if v is None:
        return ()
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list) or not all(isinstance(c, str) and re.fullmatch(r"[A-Za-z]{2}", c.strip())
                                              for c in items):
        raise _err(path, "countries must be a list of ISO 3166-1 alpha-2 codes, e.g. [FR, BE]")
    return tuple(c.strip().upper() for c in items)


def load_codebook(path: str | Path | None = None, *, sponsors: str | Path | None = None) -> Codebook:
    """Read and validate a codebook YAML (default ``models/codebook.yaml``); raise CodebookError if invalid.

    ``sponsors``: an extra sponsor table (CSV ``sponsor, sponsor_id, camp``), e.g. the pages a newsroom
    has already attributed; its rules join the codebook's own (and its bytes the codebook's SHA-256).
    """
    p = Path(path) if path is not None else DEFAULT_CODEBOOK
    ps = str(p)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise CodebookError(f"cannot read the codebook {ps}: {e.strerror or e}") from e
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as e:
        raise _err(ps, f"not valid YAML ({e})") from e
    if not isinstance(doc, dict):
        raise _err(ps, "must be a mapping with `narratives` and `camps`")
    unknown = set(doc) - {"version", "name", "narratives", "camps", "generic_camps", "sponsors_file", "countries"}
    if unknown:
        raise _err(ps, f"unknown top-level keys {sorted(unknown)}")
    h = hashlib.sha256(data)
    narratives = tuple(Narrative(**d) for d in _parse_entries(doc.get("narratives"), "narratives", ps,
                                                                camp=False))
    camp_dicts = _parse_entries(doc.get("camps"), "camps", ps, camp=True)
    generic_dicts = (_parse_entries(doc["generic_camps"], "generic_camps", ps, camp=True)
                     if doc.get("generic_camps") is not None else [])
    bad = {g["id"] for g in generic_dicts} - set(GENERIC_CAMPS)
    if bad:
        raise _err(ps, f"generic_camps ids must be among {', '.join(GENERIC_CAMPS)}, not {sorted(bad)}")
    # a sponsor table may name any camp of the codebook, generic ones included
    targets = {d["id"]: d for d in generic_dicts} | {d["id"]: d for d in camp_dicts}
    files: list[tuple[Path, str]] = []
    if doc.get("sponsors_file"):
        f = Path(str(doc["sponsors_file"]))
        files.append((f if f.is_absolute() else p.parent / f, ps))
    if sponsors is not None:
        files.append((Path(sponsors), str(sponsors)))
    for f, where in files:
        extra = _read_sponsors_file(f, set(targets), where)
        h.update(f.read_bytes())
        for r in extra:
            targets[r.camp]["sponsors"] = (*targets[r.camp]["sponsors"], r)
    return Codebook(narratives=narratives, camps=tuple(Camp(**d) for d in camp_dicts),
                    generic_camps=tuple(Camp(**d) for d in generic_dicts), name=str(doc.get("name", "")),
                    path=ps, sha256=h.hexdigest(), countries=_countries(doc.get("countries"), ps))
