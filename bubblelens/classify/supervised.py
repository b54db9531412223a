"""Supervised heads: logistic regression on embeddings, on TF-IDF n-grams, or on both (hybrid).

Features of the ``hybrid`` head (the default) are the horizontal stack of three L2-normalized blocks:
word TF-IDF (1–2-grams, sublinear tf), character TF-IDF (``char_wb`` 2–5-grams, sublinear tf) and the
sentence embedding times ``embedding_weight``. Lexical n-grams carry names, slogans and fixed wordings
(the issue reports TF-IDF beating embeddings on the bloc task), the embedding carries meaning across
paraphrases and languages. A multinomial logistic regression (``C``, balanced class weights) maps them
to probabilities. ``temperature`` (default 1, fitted by ``bubblelens train`` on grouped out-of-fold
probabilities, :mod:`.calibration`) rescales them: ``softmax(log p / T)``, same argmax, honest confidence.

A fitted head is saved as ``head.json`` (task, classes, parameters, encoder id, vocabularies) and
``head.npz`` (IDF weights, coefficients, intercepts): never a pickle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from ..errors import ModelError
from .calibration import apply_temperature

__all__ = ["C_CANDIDATES", "DEFAULT_C", "FEATURES", "HEAD_FORMAT", "LinearHead"]

FEATURES = ("hybrid", "embedding", "tfidf")
#: inverse regularization of a head fitted without a choice (the Label page's refits: a few dozen labels)
DEFAULT_C = 10.0
#: what ``bubblelens train`` chooses among by held-out log-loss (``--C auto``). Neither wins everywhere:
#: on thousands of messages C = 10's probabilities are overconfident and, pooled per author/page (what
#: classify and score do by default), C = 1 names far more camps right (French tweets 0.772 vs 0.606,
#: German ads 0.758 vs 0.689; bench/results/classify_real.txt); on 150 fixture messages C = 1 is so
#: unsure that a camp head abstains on nearly all (macro-F1 0.11 vs 0.65)
C_CANDIDATES = (1.0, 10.0)
HEAD_FORMAT = "bubblelens-head/1"


def _word_vectorizer(max_features: int) -> TfidfVectorizer:
    return TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=2, strip_accents=None,
                           lowercase=True, max_features=max_features, dtype=np.float32)


def _char_vectorizer(max_features: int) -> TfidfVectorizer:
    return TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2,
                           lowercase=True, max_features=max_features, dtype=np.float32)


class LinearHead(ClassifierMixin, BaseEstimator):
    """Logistic regression on TF-IDF and/or embedding features (see the module docstring).

    ``fit(texts, y, embeddings=None)``: ``embeddings`` (n × d) are required unless ``features="tfidf"``.
    """

    def __init__(self, *, features: str = "hybrid", C: float = DEFAULT_C, embedding_weight: float = 1.0,
                 max_features: int = 30000, class_weight: str | None = "balanced",
                 random_state: int | None = 0, temperature: float = 1.0) -> None:
        self.features = features
        self.C = C
        self.embedding_weight = embedding_weight
        self.max_features = max_features
        self.class_weight = class_weight
        self.random_state = random_state
        self.temperature = temperature

    def _design(self, texts: Sequence[str], embeddings: np.ndarray | None, *, fit: bool) -> sp.csr_matrix:
        blocks = []
        if self.features in ("hybrid", "tfidf"):
            texts = [t or "" for t in texts]
            if fit:
                self.word_ = _word_vectorizer(self.max_features).fit(texts)
                self.char_ = _char_vectorizer(self.max_features).fit(texts)
            blocks += [self.word_.transform(texts), self.char_.transform(texts)]
        if self.features in ("hybrid", "embedding"):
            if embeddings is None:
                raise ValueError(f"features={self.features!r} needs the embeddings of the texts")
            blocks.append(sp.csr_matrix(np.asarray(embeddings, dtype=np.float32) * self.embedding_weight))
        return sp.hstack(blocks, format="csr")

    def fit(self, texts: Sequence[str], y: Sequence[str], embeddings: np.ndarray | None = None) -> LinearHead:
        if self.features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}")
        texts = list(texts)
        X = self._design(texts, embeddings, fit=True)
        self.lr_ = LogisticRegression(C=self.C, max_iter=3000, class_weight=self.class_weight,
                                      random_state=self.random_state)
        self.lr_.fit(X, np.asarray(list(y), dtype=object))
        self.classes_ = self.lr_.classes_
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities, scaled by ``temperature`` (``softmax(log p / T)``)."""
        p = np.asarray(self.lr_.predict_proba(self._design(list(texts), embeddings, fit=False)))
        return apply_temperature(p, float(self.temperature)) if len(p) else p

    def predict(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(self.classes_[self.predict_proba(texts, embeddings).argmax(axis=1)])

    # -- safe persistence -----------------------------------------------------------------------
    def to_files(self, out: str | Path, *, meta: dict[str, Any]) -> None:
        """Write ``head.json`` and ``head.npz`` into directory ``out`` (created)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"coef": self.lr_.coef_, "intercept": self.lr_.intercept_}
        doc: dict[str, Any] = {"format": HEAD_FORMAT, **meta, "classes": [str(c) for c in self.classes_],
                               "params": self.get_params()}
        if self.features in ("hybrid", "tfidf"):
            for name, vec in (("word", self.word_), ("char", self.char_)):
                doc[f"{name}_vocabulary"] = {k: int(v) for k, v in vec.vocabulary_.items()}
                arrays[f"{name}_idf"] = vec.idf_
        (out / "head.json").write_text(json.dumps(doc, ensure_ascii=False, sort_keys=True), encoding="utf-8")
        np.savez_compressed(out / "head.npz", **arrays)  # type: ignore[arg-type]

    @classmethod
    def from_files(cls, path: str | Path) -> tuple[LinearHead, dict[str, Any]]:
        """Load a head written by :meth:`to_files`; returns it and the JSON document."""
        p = Path(path)
        try:
            doc = json.loads((p / "head.json").read_text(encoding="utf-8"))
            z = np.load(p / "head.npz", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ModelError(f"{p} is not a trained BubbleLens head (head.json + head.npz): {e}") from e
        if doc.get("format") != HEAD_FORMAT:
            raise ModelError(f"{p}/head.json has format {doc.get('format')!r}, expected {HEAD_FORMAT}")
        head = cls(**doc["params"])  # a head saved before ``temperature`` existed loads with T = 1
        if not float(head.temperature) > 0:
            raise ModelError(f"{p}/head.json has temperature {head.temperature!r}: it must be > 0")
        classes = np.array(doc["classes"], dtype=object)
        if head.features in ("hybrid", "tfidf"):
            for name, make in (("word", _word_vectorizer), ("char", _char_vectorizer)):
                vec = make(head.max_features)
                vec.vocabulary_ = doc[f"{name}_vocabulary"]
                vec.idf_ = z[f"{name}_idf"]
                setattr(head, f"{name}_", vec)
        lr = LogisticRegression(C=head.C, max_iter=3000, class_weight=head.class_weight)
        lr.classes_ = classes
        lr.coef_ = z["coef"]
        lr.intercept_ = z["intercept"]
        lr.n_features_in_ = z["coef"].shape[1]
        head.lr_ = lr
        head.classes_ = classes
        head.n_features_in_ = lr.n_features_in_
        return head, doc
