"""Column mappings of generic tables: which column fills which canonical field.

A mapping file (YAML) looks like::

    kind: messages              # messages | audiences | exposures
    audience_type: person       # audiences / exposures: person (ids hashed) | targeting | page
    ocr: false                  # repair OCR damage in numbers and dates (the row is flagged)
    fields:
      id: ad_id                 # a column
      text: {join: [body, subject]}          # non-empty values joined, duplicates dropped
      impressions: {first: [clean, raw]}     # the first non-empty value
      currency: {value: EUR}                 # a constant
      attr.age_band: age                     # audiences: any declared attribute
    deliveries: {wide_prefix: "reg_", dimension: region, value: share}

``--map FIELD=COLUMN`` on the command line adds to (or overrides) ``fields``; without a mapping file,
it adds to the columns guessed by name. ``region.CELL: COLUMN`` (also ``age.``, ``gender.``,
``country.``) maps one delivery column of any name, e.g. ``--map region.Bayern=BY``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import SchemaError

__all__ = ["FIELDS", "FieldSpec", "Mapping", "guess_mapping", "load_mapping"]

KINDS = ("messages", "audiences", "exposures")
#: Messages: a field ``DIMENSION.CELL`` maps one delivery column, whatever its name (``region.Bayern:
#: BY``), beside or instead of ``deliveries.wide_prefix``.
WIDE_DIMENSIONS = ("region", "age", "gender", "country")
AUDIENCE_TYPES = ("person", "targeting", "page")
#: Canonical fields per kind. ``impressions`` / ``spend`` fill both bounds of an exact figure;
#: ``date`` is the start date, ``date_stop`` the end.
FIELDS: dict[str, tuple[str, ...]] = {
    "messages": ("id", "text", "sponsor", "sponsor_id", "channel", "date", "date_stop", "url", "lang",
                 "impressions_lower", "impressions_upper", "impressions", "spend_lower", "spend_upper",
                 "spend", "currency", "camp", "narrative"),
    "audiences": ("id", "interests"),
    "exposures": ("audience_id", "message_id", "count"),
}
_SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "messages": {"id": ("id", "message_id", "msg_id", "ad_id"),
                 "text": ("text", "body", "message", "content", "script"),
                 "sponsor": ("sponsor", "sender", "from", "advertiser"),
                 "date": ("date", "sent_at", "date_start", "start_date")},
    "audiences": {"id": ("id", "audience_id", "person_id", "member_id", "panelist_id"),
                  "interests": ("interests", "interest_text", "interest")},
    "exposures": {"audience_id": ("audience_id", "person_id", "member_id", "panelist_id"),
                  "message_id": ("message_id", "ad_id", "msg_id"), "count": ("count", "n", "times")},
}


@dataclass(frozen=True)
class FieldSpec:
    """Where a field's value comes from: columns (one, the first non-empty, or joined) or a constant."""

    columns: tuple[str, ...] = ()
    how: str = "column"  # column | first | join | value
    value: Any = None

    @staticmethod
    def parse(field: str, spec: Any, *, where: str) -> FieldSpec:
        if isinstance(spec, str):
            return FieldSpec((spec,))
        if isinstance(spec, dict) and len(spec) == 1:
            (how, arg), = spec.items()
            if how == "value":
                return FieldSpec(how="value", value=arg)
            if how in ("first", "join") and isinstance(arg, list) and all(isinstance(c, str) for c in arg):
                return FieldSpec(tuple(arg), how=how)
        raise SchemaError("a field maps to a column name, {first: [cols]}, {join: [cols]} or "
                          "{value: constant}", file=where, field=field)


@dataclass
class Mapping:
    """A parsed mapping: the kind, canonical field → :class:`FieldSpec`, wide delivery columns."""

    kind: str = "messages"
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    audience_type: str | None = None
    ocr: bool = False
    delimiter: str | None = None
    wide_prefix: str | None = None
    wide_dimension: str = "region"
    wide_value: str = "share"
    source: str = "(command line)"
    #: True for a mapping of ``--map`` pairs only: they add to the columns guessed by name.
    guess: bool = False

    def validate(self) -> Mapping:
        if self.kind not in KINDS:
            raise SchemaError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}",
                              file=self.source, field="kind")
        if self.audience_type is not None and self.audience_type not in AUDIENCE_TYPES:
            raise SchemaError(f"audience_type must be one of {', '.join(AUDIENCE_TYPES)}",
                              file=self.source, field="audience_type")
        for f in self.fields:
            wide = self.kind == "messages" and f.partition(".")[0] in WIDE_DIMENSIONS and f.partition(".")[2]
            if f not in FIELDS[self.kind] and not (self.kind == "audiences" and f.startswith("attr.")) and not wide:
                allowed = ", ".join(FIELDS[self.kind]) + (", attr.NAME" if self.kind == "audiences" else
                                                          ", region.CELL, age.CELL, gender.CELL, country.CELL"
                                                          if self.kind == "messages" else "")
                raise SchemaError(f"unknown field for {self.kind} (fields: {allowed})", file=self.source,
                                  field=f)
        if self.wide_value not in ("share", "count"):
            raise SchemaError("deliveries.value must be share or count", file=self.source,
                              field="deliveries.value")
        return self

    def columns(self) -> set[str]:
        return {c for s in self.fields.values() for c in s.columns}

    def with_pairs(self, pairs: list[str]) -> Mapping:
        """Add ``FIELD=COLUMN`` pairs (from ``--map``)."""
        for p in pairs:
            if "=" not in p:
                raise SchemaError(f"--map takes FIELD=COLUMN, not {p!r}", field="--map")
            f, c = (x.strip() for x in p.split("=", 1))
            self.fields[f] = FieldSpec((c,))
        return self.validate()


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping YAML file."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise SchemaError(f"cannot read the mapping: {e.strerror or e}", file=str(p)) from None
    except yaml.YAMLError as e:
        raise SchemaError(f"not valid YAML ({str(e).splitlines()[0]})", file=str(p)) from None
    if not isinstance(doc, dict):
        raise SchemaError("a mapping file is a YAML object with kind and fields", file=str(p))
    fields = doc.get("fields") or {}
    if not isinstance(fields, dict):
        raise SchemaError("fields must be an object FIELD: COLUMN", file=str(p), field="fields")
    m = Mapping(kind=str(doc.get("kind", "messages")), audience_type=doc.get("audience_type"),
                ocr=bool(doc.get("ocr", False)), delimiter=doc.get("delimiter"), source=str(p),
                fields={str(f): FieldSpec.parse(str(f), s, where=str(p)) for f, s in fields.items()})
    d = doc.get("deliveries")
    if d is not None:
        if not isinstance(d, dict) or not isinstance(d.get("wide_prefix"), str):
            raise SchemaError("deliveries needs wide_prefix (and optionally dimension, value)",
                              file=str(p), field="deliveries")
        m.wide_prefix = d["wide_prefix"]
        m.wide_dimension = str(d.get("dimension", "region"))
        m.wide_value = str(d.get("value", "share"))
    return m.validate()


def guess_mapping(columns: list[str], kind: str) -> Mapping:
    """Map columns named like a canonical field (or a common synonym, case-insensitive)."""
    low = {c.lower(): c for c in columns}
    m = Mapping(kind=kind)
    for f in FIELDS[kind]:
        for name in _SYNONYMS.get(kind, {}).get(f, (f,)):
            if name in low:
                m.fields[f] = FieldSpec((low[name],))
                break
    if kind == "audiences":
        for c in columns:
            if c.lower().startswith("attr.") or c.lower().startswith("attr_"):
                m.fields["attr." + c[5:]] = FieldSpec((c,))
    return m.validate()
