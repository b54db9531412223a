"""Camp assignment: the sponsor table first, then the text classifier.

Order of evidence for each message (the ``source`` recorded with every assignment):

1. ``given``: a camp the source itself gives (``messages.given_camp``), probability 1;
2. ``sponsor``: the sponsor's page id matches a rule, else its normalized name (casefold, accents and
   punctuation stripped, spaces collapsed) equals a rule's name, else a rule's regex matches the
   normalized name (patterns are applied to the normalized name, case-insensitively); probability 1;
3. ``sponsor_pooled``: the camp pooled from the text of all the sponsor's ads, with the sponsor's
   uncertainty (:mod:`.pooling`; on by default in ``classify``);
4. ``text``: the text classifier's best camp and its probability (a sponsor with one ad with text, or
   pooling off);
5. ``codebook_mismatch`` / ``no_text``: nothing to go on: ``unassigned`` with no probability.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from .codebook import Codebook, SponsorRule

__all__ = ["SponsorTable", "normalize_name"]

_PUNCT = re.compile(r"[^\w\s]|_", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalize_name(name: str) -> str:
    """Casefold, strip accents (NFKD, drop combining marks) and punctuation, collapse spaces."""
    s = unicodedata.normalize("NFKD", name.casefold())
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    return _SPACE.sub(" ", _PUNCT.sub(" ", s)).strip()


class SponsorTable:
    """Sponsor → camp lookup built from a codebook's rules (page ids, names, patterns)."""

    def __init__(self, rules: Sequence[SponsorRule]) -> None:
        self.by_id: dict[str, str] = {}
        self.by_name: dict[str, str] = {}
        self.patterns: list[tuple[re.Pattern[str], str]] = []
        for r in rules:
            if r.sponsor_id:
                self.by_id.setdefault(r.sponsor_id.strip(), r.camp)
            if r.name:
                self.by_name.setdefault(normalize_name(r.name), r.camp)
            if r.pattern:
                pat = normalize_name(r.pattern) if r.pattern.replace(" ", "").isalnum() else r.pattern
                self.patterns.append((re.compile(pat, re.IGNORECASE), r.camp))

    @classmethod
    def from_codebook(cls, codebook: Codebook) -> SponsorTable:
        return cls(codebook.sponsor_rules())

    def __len__(self) -> int:
        return len(self.by_id) + len(self.by_name) + len(self.patterns)

    def lookup(self, sponsor: str | None = None, sponsor_id: str | None = None) -> str | None:
        """The camp of a sponsor (page id first, then normalized name, then patterns), or None."""
        if sponsor_id is not None and str(sponsor_id).strip() in self.by_id:
            return self.by_id[str(sponsor_id).strip()]
        if sponsor:
            norm = normalize_name(str(sponsor))
            if norm in self.by_name:
                return self.by_name[norm]
            for pat, camp in self.patterns:
                if pat.search(norm):
                    return camp
        return None
