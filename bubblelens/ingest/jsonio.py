"""JSON containers: a whole document, JSON Lines, or a truncated ``{"data": [...`` page.

:func:`iter_json_records` yields ``(line, value)`` for every record, or ``(line, JsonProblem)`` for a line
that is not valid JSON, so a reader can reject that line and go on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import FormatError

__all__ = ["JsonProblem", "iter_json_records", "looks_like_json"]


@dataclass
class JsonProblem:
    """A record that could not be decoded: the reason and the raw text."""

    reason: str
    raw: str


def looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _page_items(doc: Any, name: str) -> Iterator[tuple[int, Any]]:
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        for i, item in enumerate(doc["data"], 1):
            yield i, item
    elif isinstance(doc, list):
        for i, item in enumerate(doc, 1):
            yield i, item
    else:
        yield 1, doc


def _truncated_page(text: str, name: str) -> Iterator[tuple[int, Any]]:
    """Recover the complete records of a page cut off mid-way; the broken tail is one problem."""
    dec = json.JSONDecoder()
    start = text.find("[", text.find('"data"') if '"data"' in text[:200] else 0)
    pos, i, n = start + 1, 0, len(text)
    while True:
        while pos < n and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= n or text[pos] == "]":
            if pos >= n:
                i += 1
                yield i, JsonProblem("truncated JSON: the file ends inside the page", text[-200:])
            return
        try:
            obj, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            i += 1
            yield i, JsonProblem(f"truncated or invalid JSON ({e.msg})", text[pos:pos + 2000])
            return
        i += 1
        yield i, obj
        pos = end


def iter_json_records(text: str, name: str) -> Iterator[tuple[int, Any]]:
    """Records of a JSON document (a page's ``data``, an array, or one object) or of JSON Lines.
    The number is the record's position (a page) or its line (JSON Lines)."""
    stripped = text.strip()
    try:
        doc = json.loads(stripped)
    except json.JSONDecodeError as e:
        first_line = stripped.split("\n", 1)[0].strip()
        multi = "\n" in stripped
        if multi:
            try:
                json.loads(first_line)
                is_jsonl = True
            except json.JSONDecodeError:
                is_jsonl = False
            if is_jsonl or first_line.endswith("}"):
                yield from _json_lines(text)
                return
        head = stripped[:200].replace(" ", "").replace("\n", "")
        if head.startswith('{"data":[') or head.startswith("[{"):
            yield from _truncated_page(stripped, name)
            return
        raise FormatError(f"{name} is not valid JSON ({e.msg} at line {e.lineno})") from None
    yield from _page_items(doc, name)


def _json_lines(text: str) -> Iterator[tuple[int, Any]]:
    loads = json.loads
    for i, line in enumerate(text.split("\n"), 1):
        s = line.strip()
        if not s:
            continue
        try:
            yield i, loads(s)
        except json.JSONDecodeError as e:
            yield i, JsonProblem(f"invalid JSON ({e.msg})", s)
