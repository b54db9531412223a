"""Bytes to text: encoding (UTF-8 with or without BOM, a cp1252 / latin-1 fallback with a warning),
binary and empty files refused with one sentence, and CSV delimiter sniffing.

Encoding is decided per line: a file with valid UTF-8 beyond ASCII somewhere is UTF-8, and a line
holding bytes that are not UTF-8 keeps them as lone surrogates (``surrogateescape``) for the readers
to reject that line (``jsonio.line_problem``); only a file with no UTF-8 evidence at all is read as
cp1252 / latin-1, with a warning."""

from __future__ import annotations

import csv
import hashlib
import re
import threading
import unicodedata
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import FormatError

__all__ = ["DecodedFile", "EncodingWarning", "clean_text", "is_utf8", "read_file", "sniff_delimiter"]


class EncodingWarning(UserWarning):
    """The file was not UTF-8 and was decoded with a legacy code page."""


#: From this size on, the SHA-256 of a file is computed in a thread while the file is parsed.
_HASH_IN_THREAD = 4 << 20


def is_utf8(data: bytes | pa.Buffer) -> bool:
    """True when ``data`` is valid UTF-8, checked by Arrow's validator over the bytes in place
    (a tenth of the time of ``bytes.decode``, and no copy as a ``str``)."""
    buf = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
    offsets = pa.py_buffer(np.array([0, buf.size], dtype=np.int64))
    arr = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, buf])
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


class DecodedFile:
    """A file read once: its bytes, their SHA-256, and its text, decoded on first use (UTF-8, a BOM
    dropped; else cp1252, then latin-1, with a warning). ``encoding`` is ``parquet`` for Parquet.

    The SHA-256 of a large file is computed in a thread (hashlib releases the GIL), so it overlaps
    with parsing; :attr:`sha256` waits for it."""

    def __init__(self, path: Path, data: bytes, *, encoding: str | None = None) -> None:
        self.path = path
        self.data = data
        self._sha256: str | None = None
        self._hasher: threading.Thread | None = None
        if len(data) >= _HASH_IN_THREAD:
            self._hasher = threading.Thread(target=self._hash, name="bubblelens-sha256", daemon=True)
            self._hasher.start()
        else:
            self._hash()
        self.had_bom = data.startswith(b"\xef\xbb\xbf")
        self.warnings: list[str] = []
        self._encoding = encoding
        self._text: str | None = None
        #: True when some lines are not valid UTF-8 (kept as lone surrogates for the readers to reject).
        self.invalid_utf8 = False

    def _hash(self) -> None:
        self._sha256 = hashlib.sha256(self.data).hexdigest()

    @property
    def sha256(self) -> str:
        """SHA-256 of the bytes, hex."""
        if self._hasher is not None:
            self._hasher.join()
            self._hasher = None
        assert self._sha256 is not None
        return self._sha256

    @property
    def head(self) -> str:
        """The first 64 KiB as text (for detection and sniffing)."""
        if self._text is not None:
            return self._text[:65536]
        return self.data[:65536].decode("utf-8-sig", errors="replace")

    @property
    def is_parquet(self) -> bool:
        """A Parquet file (by its magic bytes): no text (asks nothing of the encoding)."""
        return self._encoding == "parquet"

    @property
    def encoding(self) -> str:
        """``utf-8`` (with or without a BOM), ``cp1252``, ``latin-1`` or ``parquet``; valid UTF-8 is
        recognised without decoding the text."""
        if self._encoding is None and is_utf8(self.data):
            self._encoding = "utf-8"
        if self._encoding is None:
            _ = self.text
        assert self._encoding is not None
        return self._encoding

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self._decode()
        return self._text

    def _decode(self) -> str:
        if self._encoding == "parquet":
            return ""
        try:
            text = self.data.decode("utf-8-sig")
            self._encoding = "utf-8"
            return text
        except UnicodeDecodeError:
            pass
        text = self.data.decode("utf-8-sig", errors="surrogateescape")
        if _UTF8_EVIDENCE.search(text) is not None:
            # UTF-8 elsewhere in the file: the lines that are not are the readers' to reject
            n_bad = sum(1 for line in text.split("\n") if _SURROGATE.search(line))
            msg = f"{self.path.name}: {n_bad:,} line(s) not valid UTF-8 (rejected); the rest read as UTF-8"
            warnings.warn(msg, EncodingWarning, stacklevel=3)
            self.warnings.append(msg)
            self._encoding = "utf-8"
            self.invalid_utf8 = True
            return text
        for enc in ("cp1252", "latin-1"):
            try:
                text = self.data.decode(enc)
            except UnicodeDecodeError:
                continue
            msg = f"{self.path.name} is not UTF-8; read as {enc}"
            warnings.warn(msg, EncodingWarning, stacklevel=3)
            self.warnings.append(msg)
            self._encoding = enc
            return text
        raise FormatError(f"{self.path.name}: unknown text encoding")  # pragma: no cover


_CTRL = bytes(range(9)) + bytes(range(14, 32))  # control bytes other than TAB, LF, VT, FF, CR
#: A non-ASCII character decoded from valid UTF-8 (not a lone surrogate from an invalid byte).
_UTF8_EVIDENCE = re.compile("[\u0080-\ud7ff\ue000-\U0010ffff]")
_SURROGATE = re.compile("[\udc80-\udcff]")


def _looks_binary(head: bytes) -> bool:
    """Many control bytes (NUL included: more than 5 % of the head) mean binary; a NUL or two in a
    text file only cost their lines (rejected by the readers)."""
    ctrl = len(head) - len(head.translate(None, _CTRL))
    return len(head) > 0 and (ctrl / len(head) > 0.05 or head[:4096].count(0) > 64)


def read_file(path: str | Path) -> DecodedFile:
    """Read ``path`` (text decoded lazily). Empty and binary files raise :class:`FormatError`;
    Parquet (by its magic bytes) is returned with ``encoding == "parquet"``."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise FormatError(f"cannot read {p}: {e.strerror or e}") from None
    if data[:4] == b"PAR1":
        return DecodedFile(p, data, encoding="parquet")
    if not data[:65536].strip() and not data.strip():  # the head first: no copy of a big file
        raise FormatError(f"{p.name} is empty")
    if _looks_binary(data[:65536]):
        raise FormatError(f"{p.name} is a binary file, not CSV, JSON or JSONL text")
    return DecodedFile(p, data)


def sniff_delimiter(sample: str) -> str:
    """The CSV delimiter among ``, ; TAB |``: the one the header line holds most of (headers rarely
    quote), else csv.Sniffer on the first lines, else comma."""
    lines = sample.splitlines()
    first = lines[0] if lines else ""
    counts = {d: first.count(d) for d in ",;\t|"}
    best = max(counts, key=lambda d: counts[d])
    if counts[best] and sorted(counts.values())[-2] < counts[best]:
        return best
    try:
        return csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


_CONTROL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff]")
#: R's ``write.csv`` on some systems writes a character it cannot encode as ``<U+XXXX>`` (emoji above all:
#: ``<U+0001F1EB><U+0001F1F7>`` for 🇫🇷, ``<U+27A1><U+FE0F>`` for ➡️); 4 to 8 hex digits
_R_ESCAPE = re.compile(r"<U\+([0-9A-Fa-f]{4,8})>")


def _r_char(m: re.Match[str]) -> str:
    cp = int(m.group(1), 16)
    return chr(cp) if cp <= 0x10FFFF and not 0xD800 <= cp <= 0xDFFF else m.group(0)


def clean_text(v: Any) -> str:
    """NFC, no-break spaces as spaces, control characters and stray BOMs dropped, R's ``<U+XXXX>`` escapes
    turned back into their characters (an invalid code point stays as written), stripped."""
    t = str(v).replace("\xa0", " ")
    if _CONTROL.search(t):
        t = _CONTROL.sub("", t)
    if "<U+" in t:
        t = _R_ESCAPE.sub(_r_char, t)
    return unicodedata.normalize("NFC", t).strip()
