"""Class-based TF-IDF: the words that set one segment apart from the others (Grootendorst 2022).

All documents of a class are joined into one, then each term ``t`` of class ``c`` is weighted

    W[t, c] = tf[t, c] / n_c · log(1 + A / f[t])

with ``tf[t, c]`` the count of ``t`` in class ``c``, ``n_c`` the number of words of ``c``, ``f[t]`` the
count of ``t`` over all classes and ``A`` the mean number of words per class. Words frequent in one class
and rare elsewhere score high. Terms come from scikit-learn's ``CountVectorizer`` (unigrams and bigrams,
accents kept, English and French stop words removed).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

__all__ = ["FRENCH_STOP_WORDS", "STOP_WORDS", "class_tfidf", "top_terms"]

_FRENCH = """
a à afin ai aie aient aies ait alors as au aucun aucune auquel aura aurai auraient aurais aurait auras
aurez auriez aurions aurons auront aussi autre autres aux auxquelles auxquels avaient avais avait avant
avec avez aviez avions avoir avons ayant ayez ayons bon c ça car ce ceci cela celle celles celui cependant
certain certaines certains ces cet cette ceux chacun chaque chez ci comme comment d dans de des depuis
dès deux doit donc dont du elle elles en encore entre es est et étaient étais était étant été êtes étiez
étions être eu eue eues eûmes eurent eus eusse eussent eusses eussiez eussions eut eût eux fait faire
fais faites font fut fût furent fus hors ici il ils j je jusqu jusque l la là le les leur leurs lors
lui m ma mais me même mêmes mes moi moins mon n ne ni nos notre nous on ont ou où par parce pas peu
peut plus pour pourquoi qu quand que quel quelle quelles quels qui quoi s sa sans se sera serai seraient
serais serait seras serez seriez serions serons seront ses si sien son sont sous soyez soyons suis sur
t ta tandis te tes toi ton tous tout toute toutes très tu un une unes uns vos votre vous vu y c'est
qu'il qu'elle n'est d'un d'une l'on aujourd hui va vont faut cet être avoir ainsi déjà non oui
"""
FRENCH_STOP_WORDS: frozenset[str] = frozenset(_FRENCH.split())

STOP_WORDS: frozenset[str] = frozenset(ENGLISH_STOP_WORDS) | FRENCH_STOP_WORDS

# Words (letters, digits inside, apostrophes and hyphens inside), two characters or more; elided
# articles ("l'", "d'", "qu'") are split off by the apostrophe.
TOKEN_PATTERN = r"(?u)\b[^\W\d_][\w\-]*[^\W_]\b"


def class_tfidf(docs: Sequence[str], classes: Sequence[Hashable], *, ngram_range: tuple[int, int] = (1, 2),
                stop_words: frozenset[str] | None = None, min_df: int = 1,
                ) -> tuple[list[Hashable], list[str], np.ndarray]:
    """c-TF-IDF matrix: (class order, vocabulary, W[class, term]) for ``docs`` grouped by ``classes``."""
    if len(docs) != len(classes):
        raise ValueError(f"{len(docs)} documents but {len(classes)} class labels")
    order = sorted(set(classes), key=str)
    joined = [" ".join(d for d, c in zip(docs, classes, strict=True) if c == k) for k in order]
    vec = CountVectorizer(ngram_range=ngram_range, stop_words=sorted(stop_words or STOP_WORDS),
                          token_pattern=TOKEN_PATTERN, min_df=min_df, lowercase=True)
    try:
        tf = vec.fit_transform(joined).toarray().astype(np.float64)
    except ValueError:  # empty vocabulary: only stop words
        return order, [], np.zeros((len(order), 0))
    words_per_class = tf.sum(axis=1, keepdims=True)
    A = float(words_per_class.mean())
    f = tf.sum(axis=0)
    W = (tf / np.where(words_per_class == 0, 1.0, words_per_class)) * np.log1p(A / np.where(f == 0, 1, f))
    return order, list(vec.get_feature_names_out()), W


def top_terms(docs: Sequence[str], classes: Sequence[Hashable], *, n: int = 10,
              ngram_range: tuple[int, int] = (1, 2), exclude: Sequence[Hashable] = (),
              ) -> dict[str, list[tuple[str, float]]]:
    """The ``n`` highest c-TF-IDF terms of each class (classes in ``exclude``, e.g. noise, get none).

    Excluded classes still count as "the others" in the IDF, so a word common to the noise is not
    taken for a segment's signature. Keys are the classes as strings.
    """
    order, vocab, W = class_tfidf(docs, classes, ngram_range=ngram_range)
    out: dict[str, list[tuple[str, float]]] = {}
    for i, k in enumerate(order):
        if k in exclude:
            continue
        if not vocab:
            out[str(k)] = []
            continue
        row = W[i]
        idx = np.argsort(-row, kind="stable")[:n]
        out[str(k)] = [(vocab[j], float(row[j])) for j in idx if row[j] > 0]
    return out
