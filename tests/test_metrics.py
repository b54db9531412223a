"""Exposure metrics against hand-computed values, independent implementations, and their invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy as scipy_entropy
from sklearn.metrics import mutual_info_score

from bubblelens.measure import metrics as mt
from bubblelens.measure.ranges import OPEN_TOP_FACTOR, bounds, draw_impressions, point_impressions

# -- hand-computed values --------------------------------------------------------------------------
N = np.array([[6.0, 2.0, 0.0],
              [1.0, 1.0, 2.0]])


def test_shares_by_hand() -> None:
    assert mt.shares(N).tolist() == [[0.75, 0.25, 0.0], [0.25, 0.25, 0.5]]
    assert np.isnan(mt.shares([[0, 0]])).all()


def test_cross_cutting_by_hand() -> None:
    # camps as columns; segment 0 at home in camp 0 receives 25 % from others, segment 1 (home 2) 50 %
    assert mt.cross_cutting_share(mt.shares(N), [0, 1, 2], [0, 2]).tolist() == [0.25, 0.5]
    # by sides: columns left, left, right; homes left and right
    assert mt.cross_cutting_share(mt.shares(N), [-1, -1, 1], [-1, 1]).tolist() == [0.0, 0.5]


def test_isolation_by_hand() -> None:
    # R_k = [6, 2, 0], L_k = [1, 1, 2]; T = [7, 3, 2]; R = 8, L = 4
    expected = (6 / 8) * (6 / 7) + (2 / 8) * (2 / 3) - ((1 / 4) * (6 / 7) + (1 / 4) * (2 / 3) + 0)
    assert mt.isolation_index(N, [True, False]).item() == pytest.approx(expected)


def test_theil_by_hand_and_against_sklearn() -> None:
    pk = N.sum(0) / N.sum()
    hk = -sum(p * math.log(p) for p in pk)
    h0 = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    h1 = -(2 * 0.25 * math.log(0.25) + 0.5 * math.log(0.5))
    expected = hk - (8 / 12 * h0 + 4 / 12 * h1)
    assert mt.theil_m(N).item() == pytest.approx(expected)
    assert mt.theil_m(N).item() == pytest.approx(mutual_info_score(None, None, contingency=N))
    assert mt.theil_m(N, normalized=True).item() == pytest.approx(expected / hk)


def test_diversity_by_hand_and_against_scipy() -> None:
    p = mt.shares(N)
    assert mt.entropy(N).tolist() == pytest.approx([scipy_entropy(r) for r in N])
    assert mt.effective_number(N).tolist() == pytest.approx([math.exp(scipy_entropy(r)) for r in N])
    assert mt.gini_simpson(N).tolist() == pytest.approx([1 - 0.75**2 - 0.25**2, 1 - 0.0625 * 2 - 0.25])
    d = np.array([[0, 0.2, 1.0], [0.2, 0, 0.5], [1.0, 0.5, 0]])
    # Σ_{i≠j} d_ij p_i p_j, written out for row 1: 2 (0.2·.25·.25 + 1·.25·.5 + .5·.25·.5)
    assert mt.rao_stirling(N, d)[1] == pytest.approx(2 * (0.2 * 0.0625 + 0.125 + 0.0625))
    assert mt.rao_stirling(p, 1 - np.eye(3)).tolist() == pytest.approx(mt.gini_simpson(p).tolist())


def test_js_divergence_against_scipy() -> None:
    whole = N.sum(0)
    assert mt.js_divergence(N, whole).tolist() == pytest.approx(
        [jensenshannon(r, whole, base=2) ** 2 for r in N])


def test_cosine_distances_against_sklearn() -> None:
    from sklearn.metrics.pairwise import cosine_distances

    c = np.random.default_rng(0).normal(size=(5, 8))
    assert mt.cosine_distances(c) == pytest.approx(np.clip(cosine_distances(c), 0, 2), abs=1e-12)


def test_echo_chamber_and_slants_by_hand() -> None:
    Pc = [[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]]
    slant = mt.received_slant(Pc, [-1, 1])
    assert slant.tolist() == pytest.approx([-0.8, 0.0, 0.6])
    w = np.array([1.0, 2.0, 1.0])
    x = np.array([-0.5, 0.0, 0.7])
    assert mt.echo_chamber(x, Pc, [-1, 1], w).item() == pytest.approx(
        np.cov(x, slant, aweights=w)[0, 1] / math.sqrt(np.cov(x, aweights=w) * np.cov(slant, aweights=w)))
    # Flaxman et al.: the impression-weighted mean lean of a narrative's audience
    assert mt.audience_slant(N, [-1.0, 0.5]).tolist() == pytest.approx([(-6 + 0.5) / 7, (-2 + 0.5) / 3, 0.5])


def test_batched_equals_one_by_one() -> None:
    rng = np.random.default_rng(1)
    B = rng.integers(0, 20, size=(4, 3, 5)).astype(float) + 1
    right = [True, False, True]
    for f in (lambda n: mt.theil_m(n), lambda n: mt.isolation_index(n, right), mt.effective_number,
              lambda n: mt.js_divergence(n, n.sum(-2, keepdims=True))):
        assert np.asarray(f(B)) == pytest.approx(np.stack([f(b) for b in B]))


# -- ranges -------------------------------------------------------------------------------------------
def test_range_rules() -> None:
    assert point_impressions([0, 100, 1_000_000], [99, 400, None]).tolist() == [math.sqrt(99), 200.0, 1e6]
    _, hi = bounds([1_000_000], [None])
    assert hi.item() == OPEN_TOP_FACTOR * 1e6
    x = draw_impressions([1000, 1_000_000], [4999, None], 20_000, np.random.default_rng(0))
    assert x[0].min() >= 1000 and x[0].max() <= 4999 and x[1].min() >= 1e6 and x[1].max() <= 2e6
    # log-uniform: the median is the geometric mean of the bounds
    assert np.median(x[0]) == pytest.approx(math.sqrt(1000 * 4999), rel=0.02)


# -- properties ---------------------------------------------------------------------------------------
matrices = arrays(np.float64, st.tuples(st.integers(2, 5), st.integers(2, 6)),
                  elements=st.floats(0, 1000, allow_nan=False)).filter(
    lambda a: (a.sum(axis=1) > 1e-3).all() and (a.sum(axis=0) > 1e-3).all())


@settings(max_examples=60, deadline=None)
@given(matrices, st.floats(0.01, 1000))
def test_invariant_to_scaling(n: np.ndarray, c: float) -> None:
    right = np.arange(n.shape[0]) % 2 == 0
    for f in (mt.theil_m, mt.effective_number, mt.gini_simpson, lambda x: mt.isolation_index(x, right),
              lambda x: mt.js_divergence(x, x.sum(0))):
        assert np.asarray(f(n * c)) == pytest.approx(np.asarray(f(n)), abs=1e-9, nan_ok=True)


@settings(max_examples=60, deadline=None)
@given(matrices, st.randoms(use_true_random=False))
def test_invariant_to_permuting_narratives(n: np.ndarray, r: object) -> None:
    perm = np.random.default_rng(abs(hash(r)) % 2**32).permutation(n.shape[1])
    right = np.arange(n.shape[0]) % 2 == 0
    for f in (mt.theil_m, mt.effective_number, mt.gini_simpson, lambda x: mt.isolation_index(x, right),
              lambda x: mt.js_divergence(x, x.sum(0))):
        assert np.asarray(f(n[:, perm])) == pytest.approx(np.asarray(f(n)), abs=1e-9, nan_ok=True)


@settings(max_examples=60, deadline=None)
@given(matrices)
def test_bounds(n: np.ndarray) -> None:
    k = n.shape[1]
    right = np.arange(n.shape[0]) % 2 == 0
    assert (mt.effective_number(n) >= 1 - 1e-9).all() and (mt.effective_number(n) <= k + 1e-9).all()
    assert (mt.gini_simpson(n) >= -1e-12).all() and (mt.gini_simpson(n) <= 1 - 1 / k + 1e-9).all()
    assert -1e-12 <= mt.theil_m(n, normalized=True) <= 1 + 1e-9
    counts = np.floor(n) + 1  # scikit-learn takes a contingency table of counts
    assert mt.theil_m(counts) == pytest.approx(mutual_info_score(None, None, contingency=counts), abs=1e-9)
    assert -1 - 1e-9 <= mt.isolation_index(n, right) <= 1 + 1e-9
    js = mt.js_divergence(n, n.sum(0))
    assert (js >= 0).all() and (js <= 1 + 1e-9).all()
    cc = mt.cross_cutting_share(mt.shares(n), np.arange(k), np.zeros(n.shape[0], int))
    assert (cc >= -1e-12).all() and (cc <= 1 + 1e-9).all()


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.integers(2, 6), elements=st.floats(0.1, 100)), st.integers(1, 4))
def test_extremes(diet: np.ndarray, n_groups: int) -> None:
    # identical diets: no segregation, no divergence
    same = np.outer(np.arange(1, n_groups + 2), diet)
    right = np.arange(same.shape[0]) % 2 == 0
    assert mt.theil_m(same) == pytest.approx(0.0, abs=1e-9)
    assert mt.isolation_index(same, right) == pytest.approx(0.0, abs=1e-9)
    assert mt.js_divergence(same, same.sum(0)) == pytest.approx(0.0, abs=1e-9)
    # complete segregation: each narrative reaches one side only
    seg = np.diag(diet)
    right = np.arange(len(diet)) % 2 == 0
    assert mt.isolation_index(seg, right) == pytest.approx(1.0)
    assert mt.theil_m(seg, normalized=True) == pytest.approx(1.0)
    assert mt.cross_cutting_share(mt.shares(seg), np.arange(len(diet)), np.arange(len(diet))) == \
        pytest.approx(np.zeros(len(diet)))
