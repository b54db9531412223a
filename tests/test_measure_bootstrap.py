"""The bootstrap machinery: draws follow their distributions, the compiled path equals the plain one,
replicates are seeded, intervals behave, and the permutation null rejects only what it should."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bubblelens.measure import bootstrap as bs
from bubblelens.measure import metrics as mt
from bubblelens.measure.bootstrap import ExposureData


def small_data(seed: int = 0, m: int = 300, s: int = 4, sparse: bool = False) -> ExposureData:
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(s), size=m)
    if sparse:
        import scipy.sparse as sp

        w = sp.csr_matrix(np.where(w > 0.2, w, 0.0))
    pn = rng.dirichlet(np.ones(3), size=m)
    pc = rng.dirichlet(np.ones(2), size=m)
    return ExposureData(weights=w, lower=rng.choice([0.0, 1000.0, 10000.0], m),
                        upper=np.where(rng.random(m) < 0.2, np.nan, 20000.0), sponsor=rng.integers(0, 30, m),
                        narr_idx=np.tile(np.arange(3), (m, 1)), narr_p=pn, camp_idx=np.tile(np.arange(2), (m, 1)),
                        camp_p=pc, segments=[f"s{i}" for i in range(s)], narratives=["a", "b", "c"],
                        camps=["x", "y"])


def test_categorical_draws_follow_probabilities() -> None:
    p = np.array([[0.2, 0.5, 0.3]])
    z = bs.draw_categories(np.array([[4, 7, 9]]), p, 60_000, np.random.default_rng(0))[0]
    counts = np.array([(z == k).sum() for k in (4, 7, 9)])
    assert stats.chisquare(counts, 60_000 * p[0]).pvalue > 0.001


@pytest.mark.parametrize("sparse", [False, True])
def test_compiled_replicates_match_expectation(sparse: bool) -> None:
    """Without sponsor resampling and with fixed impressions, the mean of label draws is the soft count."""
    d = small_data(sparse=sparse)
    d.upper = np.where(np.isnan(d.upper), d.lower, d.upper)
    d.lower = d.upper.copy()  # exact impressions
    nn, nc = bs.replicate_matrices(d, 2000, np.random.default_rng(1), resample_sponsors=False)
    en, ec = bs.expected_matrices(d)
    assert nn.mean(axis=0) == pytest.approx(en, rel=0.03)
    assert nc.mean(axis=0) == pytest.approx(ec, rel=0.03)
    # every replicate keeps each segment's total impressions (labels only move mass between columns)
    assert nn.sum(axis=2) == pytest.approx(np.broadcast_to(en.sum(axis=1), nn.sum(axis=2).shape), rel=1e-9)


def test_plain_path_has_the_same_distribution_as_the_compiled_one() -> None:
    d = small_data()
    rng = np.random.default_rng(2)
    compiled = bs.replicate_matrices(d, 400, rng)[0].sum(axis=(1, 2))
    m, n = d.n_messages, 400
    v = bs.draw_impressions(d.lower, d.upper, n, rng) * rng.poisson(1.0, (30, n))[d.sponsor]
    z = np.stack([bs.draw_categories(d.narr_idx, d.narr_p, n, rng),
                  bs.draw_categories(d.camp_idx, d.camp_p, n, rng) + 3], axis=2).astype(np.int32)
    plain = bs._accumulate(d, z, v, 5)[:, :, :3].sum(axis=(1, 2))
    assert stats.ks_2samp(compiled, plain).pvalue > 0.001
    assert m == 300


def test_seeded_and_reproducible() -> None:
    d = small_data()

    def stat(nn: np.ndarray, nc: np.ndarray) -> dict[str, np.ndarray]:
        return {"m": mt.theil_m(nn)}

    a = bs.bootstrap(d, stat, n_boot=120, seed=5)["m"]
    b = bs.bootstrap(d, stat, n_boot=120, seed=5)["m"]
    c = bs.bootstrap(d, stat, n_boot=120, seed=6)["m"]
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()


def test_percentile_and_bca_intervals() -> None:
    rng = np.random.default_rng(0)
    boot = rng.normal(10, 2, size=(20_000, 1))
    lo, hi, method = bs.intervals(np.array([10.0]), boot)
    assert method == "percentile"
    assert lo[0] == pytest.approx(10 - 1.96 * 2, abs=0.1) and hi[0] == pytest.approx(10 + 1.96 * 2, abs=0.1)
    # symmetric jackknife (a = 0) and a median-centred bootstrap (z0 = 0): BCa = percentile
    jack = np.array([[9.0], [11.0], [10.0]])
    lo2, hi2, method2 = bs.intervals(np.array([float(np.median(boot))]), boot, jack, method="bca")
    assert method2 == "bca"
    assert lo2[0] == pytest.approx(lo[0], abs=0.05) and hi2[0] == pytest.approx(hi[0], abs=0.05)
    # a point estimate below most replicates shifts BCa down (bias correction)
    lo3, hi3, _ = bs.intervals(np.array([9.0]), boot, jack, method="bca")
    assert lo3[0] < lo[0] and hi3[0] < hi[0]


def test_few_ads_flag() -> None:
    d = small_data(m=6, s=2)
    d.weights = np.array([[1, 0], [1, 0], [1, 0], [1, 0], [1, 0], [0.5, 1.0]], dtype=float)
    d.sponsor = np.array([0, 1, 2, 3, 4, 5])
    assert d.few_ads().tolist() == [False, True]  # 6 ads, 6 sponsors | 1 ad


def test_permutation_null() -> None:
    """Delivery independent of labels → p-value not small; segregated delivery → p at its floor."""
    rng = np.random.default_rng(3)
    m = 400
    d = small_data(m=m, s=2)
    lab = rng.integers(0, 3, m)
    d.narr_p = np.eye(3)[lab]
    d.weights = np.eye(2)[rng.integers(0, 2, m)]

    def stat(nn: np.ndarray, nc: np.ndarray) -> np.ndarray:
        return mt.theil_m(nn)

    obs = float(mt.theil_m(bs.expected_matrices(d)[0]))
    p_null, _ = bs.permutation_null(d, stat, obs, n_perm=199, seed=1)
    assert p_null > 0.01
    d.weights = np.eye(2)[(lab == 0).astype(int)]  # narrative a goes to segment 1 only
    obs = float(mt.theil_m(bs.expected_matrices(d)[0]))
    p_seg, _ = bs.permutation_null(d, stat, obs, n_perm=199, seed=1)
    assert p_seg == pytest.approx(1 / 200)


@pytest.mark.parametrize("sparse", [False, True])
def test_compiled_permutation_null_has_the_distribution_of_the_plain_one(sparse: bool,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled permutation replicates (labels of message π_r(m) drawn for message m) give the null
    of the former one-shuffle-per-replicate path: same mean (the soft counts of the pooled label
    distribution), same spread of the statistic, and each replicate keeps every label's frequency."""
    d = small_data(seed=5, sparse=sparse)
    d.upper = np.where(np.isnan(d.upper), d.lower, d.upper)
    d.lower = d.upper.copy()
    imp = bs.point_impressions(d.lower, d.upper)
    pooled = d.narr_p.mean(axis=0)
    w = d.dense_weights()
    expect = (w * imp[:, None]).sum(axis=0)[:, None] * pooled[None, :]  # E[N[s, k]] under the null
    fused = bs.replicate_matrices(d, 1500, np.random.default_rng(4), permute=True)[0]
    assert fused.mean(axis=0) == pytest.approx(expect, rel=0.03)
    monkeypatch.setattr(bs, "_PLAIN_PERMUTATION", True)
    plain = bs.replicate_matrices(d, 1500, np.random.default_rng(4), permute=True)[0]
    assert stats.ks_2samp(mt.theil_m(fused), mt.theil_m(plain)).pvalue > 0.001
    # certain labels, one segment per message, equal impressions: every replicate carries exactly the
    # observed label counts (labels move between messages, never change their frequency)
    d.lower = d.upper = np.full(d.n_messages, 1000.0)
    imp = bs.point_impressions(d.lower, d.upper)
    d.narr_p = np.eye(3)[np.random.default_rng(6).integers(0, 3, d.n_messages)]
    d.weights = np.eye(d.weights.shape[1])[np.random.default_rng(7).integers(0, d.weights.shape[1], d.n_messages)]
    monkeypatch.setattr(bs, "_PLAIN_PERMUTATION", False)
    nn = bs.replicate_matrices(d, 50, np.random.default_rng(8), permute=True)[0]
    observed = (d.narr_p * imp[:, None]).sum(axis=0)
    assert nn.sum(axis=1) == pytest.approx(np.broadcast_to(observed, (50, 3)), rel=1e-9)
    assert not np.allclose(nn, nn[:1]), "replicates differ"


def test_census_interval_draws_only_what_is_unknown_about_these_ads() -> None:
    """An ad library is a census: with exact impressions and certain labels the census interval has width 0,
    while the advertiser-cluster bootstrap (an explicit option) still varies with the sponsors drawn."""
    d = small_data(seed=3)
    m = d.n_messages
    d.lower = d.upper = np.full(m, 1000.0)
    d.narr_p = np.eye(3)[np.arange(m) % 3]
    d.camp_p = np.eye(2)[np.arange(m) % 2]

    def stat(nn: np.ndarray, nc: np.ndarray) -> dict[str, np.ndarray]:
        return {"cc": mt.cross_cutting_share(mt.shares(nc), np.arange(2), np.zeros(4, dtype=np.int64))}

    census = bs.bootstrap(d, stat, n_boot=100, seed=0, resample_sponsors=False)["cc"]
    clusters = bs.bootstrap(d, stat, n_boot=100, seed=0, resample_sponsors=True)["cc"]
    assert np.ptp(census, axis=0).max() == pytest.approx(0.0, abs=1e-9)
    assert np.ptp(clusters, axis=0).min() > 0.01
