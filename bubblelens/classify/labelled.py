"""A labelled set as a user brings it: messages with a label column (or labels in a second file joined on an id),
a group column (sponsor or author), and an optional map from the file's labels to the codebook's ids.

Nothing is lost silently: every row is kept or counted under the reason it was left out (no text, no label,
label mapped out); a message without a group becomes a group of its own and is counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from ..errors import BubbleLensError
from ..ingest.text import clean_text

__all__ = ["LabelledSet", "labelled_set", "read_label_map"]


@dataclass(frozen=True)
class LabelledSet:
    """``frame``: columns ``text``, ``y`` (label), ``group``; ``left_out``: reason → rows; ``no_group``: rows
    that had no group (each is its own group)."""

    frame: pd.DataFrame
    left_out: dict[str, int] = field(default_factory=dict)
    no_group: int = 0
    grouped: bool = True


def read_label_map(specs: Iterable[str]) -> dict[str, str]:
    """``FROM=TO`` pairs, or files: YAML (a mapping) or CSV (two columns, from and to). An empty ``TO`` leaves
    the label's rows out."""
    out: dict[str, str] = {}
    for spec in specs:
        p = Path(spec)
        if "=" not in spec or p.is_file():
            if not p.is_file():
                raise BubbleLensError(f"--map {spec!r}: neither FROM=TO nor a file")
            if p.suffix.lower() in (".yaml", ".yml"):
                doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
                if not isinstance(doc, dict):
                    raise BubbleLensError(f"{p}: a label map must be a YAML mapping (label: camp)")
                pairs = [(str(k), "" if v is None else str(v)) for k, v in doc.items()]
            else:
                t = pd.read_csv(p, dtype=str, keep_default_na=False)
                if t.shape[1] < 2:
                    raise BubbleLensError(f"{p}: a label map CSV needs two columns (label, camp)")
                pairs = list(zip(t.iloc[:, 0], t.iloc[:, 1], strict=True))
        else:
            k, v = spec.split("=", 1)
            pairs = [(k, v)]
        out.update({k.strip(): v.strip() for k, v in pairs})
    return out


def _column(frame: pd.DataFrame, name: str, what: str, where: str) -> pd.Series:
    if name not in frame.columns:
        raise BubbleLensError(f"no {what} column {name!r} in {where}; columns: {', '.join(map(str, frame.columns))}")
    return frame[name]


def _strings(s: pd.Series) -> pd.Series:
    return s.astype(object).where(s.notna(), "").map(lambda v: clean_text(v) if v != "" else "")


def _ids(s: pd.Series) -> pd.Series:
    """Ids as strings; a float that is a whole number loses its ``.0`` (a numeric column read as floats)."""
    return _strings(s.map(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v))


def labelled_set(messages: pd.DataFrame, *, text_column: str = "text", label_column: str = "camp",
                 group_column: str | None = None, labels: pd.DataFrame | None = None, id_column: str | None = None,
                 label_map: Mapping[str, str] | None = None, where: str = "the input") -> LabelledSet:
    """The labelled set of ``messages`` (see the module docstring); ``labels``: a second table holding
    ``id_column`` and ``label_column``, joined to the messages' ``id_column``. Texts are cleaned as ingest
    cleans them."""
    text = _strings(_column(messages, text_column, "text", where))
    if labels is not None:
        if id_column is None:
            raise BubbleLensError("a labels file needs --id-column, the id both files share")
        lab = labels.drop_duplicates(subset=[id_column], keep="last") if id_column in labels.columns else labels
        key = _ids(_column(lab, id_column, "id", "the labels file"))
        by_id = dict(zip(key, _strings(_column(lab, label_column, "label", "the labels file")), strict=True))
        y = _ids(_column(messages, id_column, "id", where)).map(lambda k: by_id.get(k, ""))
    else:
        y = _strings(_column(messages, label_column, "label", where))
    if group_column is not None:
        g = _strings(_column(messages, group_column, "group", where))
    else:
        g = pd.Series([""] * len(messages), index=messages.index, dtype=object)
    mapped = y.map(lambda v: (label_map or {}).get(v, v))
    reasons = pd.Series("", index=messages.index, dtype=object)
    reasons[text == ""] = "no text"
    reasons[(reasons == "") & (y == "")] = "no label"
    reasons[(reasons == "") & (mapped == "")] = "label mapped out"
    keep = reasons == ""
    no_group = keep & (g == "")
    groups = g.where(~no_group, pd.Series([f"\x00row {i}" for i in range(len(g))], index=g.index))
    frame = pd.DataFrame({"text": text[keep], "y": mapped[keep], "group": groups[keep]}).reset_index(drop=True)
    left = {str(k): int(v) for k, v in reasons[~keep].value_counts().items()}
    if frame.empty:
        raise BubbleLensError(f"no labelled message with text in {where} (left out: {left or 'none'})")
    return LabelledSet(frame, left, int(no_group.sum()), grouped=group_column is not None)
