"""The interest clusterer on planted clusters: recovery, fit on a sample and assign the rest, the number
of segments under the user's control, duplicates, stability (UMAP: slow on 2 cores)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from bubblelens.errors import SegmentError
from bubblelens.segment import InterestClusterer, stability

pytestmark = pytest.mark.slow


def _blobs(n: int = 900, k: int = 6, dim: int = 48, noise: float = 0.08, seed: int = 0
           ) -> tuple[np.ndarray, np.ndarray]:
    """``k`` planted clusters on the unit sphere."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim))
    y = np.repeat(np.arange(k), n // k)
    X = centers[y] / np.linalg.norm(centers[y], axis=1, keepdims=True) + noise * rng.normal(size=(len(y), dim))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32), y


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    return _blobs()


@pytest.fixture(scope="module")
def fitted(blobs: tuple[np.ndarray, np.ndarray]) -> InterestClusterer:
    X, _ = blobs
    return InterestClusterer(max_fit=400, random_state=0).fit(X)


def test_planted_clusters_recovered_from_a_sample(fitted: InterestClusterer, blobs) -> None:
    X, y = blobs
    assert adjusted_rand_score(y, fitted.labels_) >= 0.95
    assert fitted.n_segments_ == 6
    # 400 rows fitted, the other 500 assigned by approximate_predict
    assert fitted.fitted_.sum() == 400 and (~fitted.fitted_).sum() == len(X) - 400
    assert adjusted_rand_score(y[~fitted.fitted_], fitted.labels_[~fitted.fitted_]) >= 0.95
    assert fitted.outlier_share_ == pytest.approx(float(np.mean(fitted.labels_ == -1)))
    # segments are numbered by decreasing size
    sizes = np.bincount(fitted.labels_[fitted.labels_ >= 0])
    assert list(sizes) == sorted(sizes, reverse=True)


def test_predict_agrees_with_fit_on_assigned_rows(fitted: InterestClusterer, blobs) -> None:
    X, _ = blobs
    rest = ~fitted.fitted_
    np.testing.assert_array_equal(fitted.predict(X[rest]), fitted.labels_[rest])


def test_n_segments_merges_clusters_and_keeps_the_tree(fitted: InterestClusterer, blobs) -> None:
    X, y = blobs
    m = InterestClusterer(max_fit=400, random_state=0, n_segments=3).fit(X)
    assert m.n_segments_ == 3 and m.n_clusters_ == fitted.n_clusters_
    # every HDBSCAN cluster lies inside one segment: the merge only joins clusters
    np.testing.assert_array_equal(m.cluster_labels_, fitted.cluster_labels_)
    assert m.linkage_ is not None and m.linkage_.shape == (m.n_clusters_ - 1, 4)
    # each planted cluster still falls entirely in one segment
    for c in range(6):
        assert len(set(m.labels_[(y == c) & (m.labels_ >= 0)])) == 1


def test_identical_rows_are_one_point_with_one_label(blobs) -> None:
    X, _ = blobs
    Xd = np.concatenate([X[:300], np.repeat(X[:1], 200, axis=0)])
    m = InterestClusterer(random_state=0).fit(Xd)
    assert m.n_unique_ == 300
    assert len(set(m.labels_[300:])) == 1 and m.labels_[300] == m.labels_[0]


def test_too_few_points_is_a_segment_error() -> None:
    X, _ = _blobs(n=12, k=2)
    with pytest.raises(SegmentError, match="too few"):
        InterestClusterer(min_cluster_size=20).fit(X)


def test_stability_over_seeds(fitted: InterestClusterer, blobs) -> None:
    X, _ = blobs
    rep = stability(fitted, X, seeds=(1,))
    assert rep.ari_mean >= 0.9
    assert all(rep.stable.values()) and set(rep.stable) == set(range(fitted.n_segments_))
    # a partition at random is not stable against the reference
    noise_ref = np.random.default_rng(0).integers(0, 6, len(X))
    rep2 = stability(fitted, X, seeds=(1,), reference=noise_ref)
    assert rep2.ari_mean < 0.1 and not any(rep2.stable.values())
