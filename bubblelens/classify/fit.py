"""Does the codebook fit the messages? Language and country of each message against the codebook's camps.

A codebook's camps are one country's parties (``countries:`` in the codebook) described in some languages
(the keys of their labels and descriptions). A message may get a camp *from its text* only when

- its language (the source's own ``lang``, else detected by py3langid with probability ≥
  :data:`MIN_LANG_P`; unknown when neither) is one the camps are described in, or unknown; and
- its country (the country its impressions were delivered in, from ``deliveries``) is one of the
  codebook's ``countries``, or unknown, or the codebook names none.

Otherwise its text camp is ``unassigned`` (source ``codebook_mismatch``): French parties are never
given to German ads. A sponsor table or a camp given by the source still decides. One warning per
reason says how many messages it concerned and how to give a fitting codebook or a sponsor table.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .codebook import Codebook

__all__ = ["MIN_LANG_P", "CodebookFit", "codebook_fit", "detect_languages"]

#: a detected language below this probability is "unknown" (short or mixed texts)
MIN_LANG_P = 0.8


@functools.lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def _base(lang: str | None) -> str | None:
    """``fr-FR`` / ``FR`` / ``fr_be`` → ``fr``; empty → None."""
    if lang is None or not isinstance(lang, str) or not lang.strip():
        return None
    return lang.strip().lower().replace("_", "-").split("-")[0]


def detect_languages(texts: Sequence[str | None], *, given: Sequence[str | None] | None = None,
                     min_p: float = MIN_LANG_P) -> list[str | None]:
    """ISO 639-1 language of each text: the source's own (``given``) first, else py3langid's guess when its
    normalized probability is at least ``min_p``, else None."""
    ident = None
    out: list[str | None] = []
    for i, t in enumerate(texts):
        g = _base(given[i]) if given is not None else None
        if g:
            out.append(g)
            continue
        if not t or not isinstance(t, str) or len(t.strip()) < 3:
            out.append(None)
            continue
        ident = ident or _identifier()
        lang, p = ident.classify(t)
        out.append(str(lang) if p >= min_p else None)
    return out


@dataclass
class CodebookFit:
    """Per message: may its camp come from its text? With the reasons and warnings."""

    allowed: np.ndarray
    languages: list[str | None]
    countries: list[str | None]
    warnings: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def codebook_fit(codebook: Codebook, languages: Sequence[str | None], countries: Sequence[str | None]
                 ) -> CodebookFit:
    """Which messages the codebook's camps can classify from text (see the module docstring)."""
    langs = {b for x in codebook.languages if (b := _base(x))}
    any_lang = not langs or "und" in langs
    cb_countries = {c.upper() for c in codebook.countries}
    n = len(languages)
    allowed = np.ones(n, dtype=bool)
    off_lang: Counter[str] = Counter()
    off_country: Counter[str] = Counter()
    for i in range(n):
        lang, country = _base(languages[i]), countries[i]
        if country and cb_countries and str(country).upper() not in cb_countries:
            allowed[i] = False
            off_country[str(country).upper()] += 1
        elif lang and not any_lang and lang not in langs:
            allowed[i] = False
            off_lang[lang] += 1
    name = codebook.name or codebook.path or "the codebook"
    how = ("give --codebook FILE with the camps of that data (models/README.md), or --sponsors CSV "
           "(sponsor, sponsor_id, camp) naming each page's camp")
    warnings = []
    if off_country:
        warnings.append(
            f"warning: {sum(off_country.values())} messages were delivered in "
            f"{', '.join(f'{c} ({k})' for c, k in off_country.most_common(5))}, but the camps of {name} are "
            f"parties of {', '.join(sorted(cb_countries))}: their camps stay unassigned unless a sponsor "
            f"rule names them; {how}")
    if off_lang:
        warnings.append(
            f"warning: {sum(off_lang.values())} messages are in "
            f"{', '.join(f'{c} ({k})' for c, k in off_lang.most_common(5))}, a language the camps of {name} "
            f"are not described in ({', '.join(sorted(langs))}): their camps stay unassigned unless a "
            f"sponsor rule names them; {how}")
    summary = {"languages": dict(Counter(x or "unknown" for x in map(_base, languages)).most_common(10)),
               "countries": dict(Counter(x or "unknown" for x in countries).most_common(10)),
               "codebook_languages": sorted(langs), "codebook_countries": sorted(cb_countries),
               "camp_from_text_refused": int((~allowed).sum())}
    return CodebookFit(allowed, list(languages), list(countries), warnings, summary)
