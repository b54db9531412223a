"""JSON containers: a whole document, JSON Lines, or a truncated ``{"data": [...`` page.

:func:`iter_json_records` yields ``(line, value)`` for every record, or ``(line, JsonProblem)`` for a line
that is not valid JSON or breaks a limit, so a reader can reject that line and go on. One line never
takes the file down. The limits (``docs/ingest.md``, "Limits"):

- nesting deeper than :data:`MAX_DEPTH` levels;
- ``NaN``, ``Infinity`` and numbers beyond the float range (``1e309``); integers of more than
  :data:`MAX_INT_DIGITS` digits;
- a string longer than :data:`MAX_STRING` characters;
- a NUL character (a raw byte or ``\\u0000``), or bytes that are not valid UTF-8 (see ``text.py``).

A byte-order mark at the start of a line (files concatenated after a BOM) is dropped, as at the start
of the file; CRLF line ends are read as LF.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import FormatError

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "MAX_STRING", "JsonProblem", "iter_json_records", "line_problem",
           "load_line", "looks_like_json", "value_problem"]

#: Deepest nesting of arrays and objects in one record (an ad is 4 levels deep).
MAX_DEPTH = 64
#: Longest string value, in characters: 8 Mi (the longest ad text in the 2024 German pull has about
#: 5,000; a 5 MB text is kept whole, one beyond this is a corrupt line).
MAX_STRING = 8 << 20
#: Most digits of a JSON integer (an int64 has 19).
MAX_INT_DIGITS = 20
_BAD_CHARS = re.compile("[\x00\udc80-\udcff]")


@dataclass
class JsonProblem:
    """A record that could not be decoded: the reason, the raw text and the field it names
    (``(json)``, ``(encoding)``, ``(limit)``)."""

    reason: str
    raw: str
    field: str = "(json)"


def line_problem(s: str) -> JsonProblem | None:
    """The reason a line of text cannot be read at all: bytes that are not UTF-8 (decoded as lone
    surrogates, see ``text.py``) or a NUL character; None when it is readable."""
    m = _BAD_CHARS.search(s)
    if m is None:
        return None
    ch = m.group()
    if ch == "\x00":
        return JsonProblem(f"NUL character at column {m.start() + 1}", s, "(encoding)")
    return JsonProblem(f"not valid UTF-8: byte 0x{ord(ch) - 0xDC00:02X} at column {m.start() + 1}", s,
                       "(encoding)")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _float(s: str) -> float:
    x = float(s)
    if x in (float("inf"), float("-inf")):
        raise ValueError(f"number {s[:40]} beyond the float range")
    return x


def _int(s: str) -> int:
    if len(s.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"integer of {len(s)} digits (limit {MAX_INT_DIGITS})")
    return int(s)


_DECODER = json.JSONDecoder(parse_float=_float, parse_int=_int, parse_constant=_no_constant)


def _depth(s: str) -> int:
    """Deepest bracket nesting of a JSON text, strings skipped (only run when brackets abound)."""
    depth = best = 0
    in_str = esc = False
    for ch in s:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


def value_problem(v: Any, depth: int = 0) -> str | None:
    """The limit a decoded value breaks (depth, string length, NUL), or None."""
    if isinstance(v, str):
        if len(v) > MAX_STRING:
            return f"a string of {len(v):,} characters (limit {MAX_STRING:,})"
        m = _BAD_CHARS.search(v)
        if m is not None:
            return "a NUL character in a string" if m.group() == "\x00" else "a string that is not valid UTF-8"
        return None
    if depth >= MAX_DEPTH and isinstance(v, dict | list):
        return f"nested deeper than {MAX_DEPTH} levels"
    if isinstance(v, dict):
        for k, x in v.items():
            r = value_problem(k, depth + 1) or value_problem(x, depth + 1)
            if r:
                return r
    elif isinstance(v, list):
        for x in v:
            r = value_problem(x, depth + 1)
            if r:
                return r
    return None


def load_line(s: str) -> Any:
    """One JSON Lines record (stripped line) → its value, or a :class:`JsonProblem` naming why the
    line is refused: invalid JSON, not UTF-8, a NUL, or a limit broken."""
    bad = line_problem(s)
    if bad is not None:
        return bad
    if s.count("[") + s.count("{") > MAX_DEPTH and _depth(s) > MAX_DEPTH:
        return JsonProblem(f"nested deeper than {MAX_DEPTH} levels", s, "(limit)")
    try:
        v = _DECODER.decode(s)
    except json.JSONDecodeError as e:
        return JsonProblem(f"invalid JSON ({e.msg})", s)
    except (ValueError, RecursionError) as e:  # the hooks above, or Python's digit limit
        return JsonProblem(str(e) or "invalid JSON", s, "(limit)")
    if len(s) > MAX_STRING or "\\u0000" in s:
        r = value_problem(v)
        if r is not None:
            return JsonProblem(r, s, "(limit)")
    return v


def looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _page_items(doc: Any, name: str) -> Iterator[tuple[int, Any]]:
    items = doc["data"] if isinstance(doc, dict) and isinstance(doc.get("data"), list) else \
        doc if isinstance(doc, list) else [doc]
    for i, item in enumerate(items, 1):
        r = value_problem(item, 1)
        if r is not None:
            yield i, JsonProblem(r, json.dumps(item, ensure_ascii=False, default=str)[:2000], "(limit)")
        else:
            yield i, item


def _truncated_page(text: str, name: str) -> Iterator[tuple[int, Any]]:
    """Recover the complete records of a page cut off mid-way; the broken tail is one problem."""
    dec = _DECODER
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
        except (ValueError, RecursionError) as e:
            i += 1
            yield i, JsonProblem(f"{e or 'invalid JSON'}; the rest of the page cannot be read", text[pos:pos + 2000],
                                 "(limit)")
            return
        i += 1
        r = value_problem(obj, 1)
        yield i, (obj if r is None else JsonProblem(r, text[pos:min(end, pos + 2000)], "(limit)"))
        pos = end


def iter_json_records(text: str, name: str) -> Iterator[tuple[int, Any]]:
    """Records of a JSON document (a page's ``data``, an array, or one object) or of JSON Lines.
    The number is the record's position (a page) or its line (JSON Lines)."""
    stripped = text.strip()
    try:
        if line_problem(stripped) is not None:
            raise json.JSONDecodeError("not valid UTF-8 or a NUL character", stripped, 0)
        doc = _DECODER.decode(stripped)
    except (ValueError, RecursionError) as e:
        msg = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
        lineno = e.lineno if isinstance(e, json.JSONDecodeError) else 1
        first_line = stripped.split("\n", 1)[0].strip().lstrip("\ufeff")
        multi = "\n" in stripped
        head = stripped[:200].replace(" ", "").replace("\n", "")
        if multi:
            is_jsonl = not isinstance(load_line(first_line), JsonProblem)
            # a hostile first line: JSON Lines still, when one of the next lines is a JSON object
            page = head.startswith('{"data":[') or head.startswith("[{")
            is_jsonl = is_jsonl or (not page and any(
                isinstance(load_line(x.strip().lstrip("\ufeff")), dict)
                for x in stripped.split("\n", 50)[1:50] if x.strip().startswith("{")))
            if is_jsonl or first_line.endswith("}"):
                yield from _json_lines(text)
                return
        if head.startswith('{"data":[') or head.startswith("[{"):
            yield from _truncated_page(stripped, name)
            return
        raise FormatError(f"{name} is not valid JSON ({msg} at line {lineno})") from None
    yield from _page_items(doc, name)


def _json_lines(text: str) -> Iterator[tuple[int, Any]]:
    for i, line in enumerate(text.split("\n"), 1):
        s = line.strip().lstrip("\ufeff")
        if not s:
            continue
        yield i, load_line(s)
