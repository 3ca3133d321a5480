"""Type I error of the two-proportion test after blinded sample-size re-estimation."""

import math

import numpy as np
import pytest
from scipy import stats

from trialplan.errors import InputError
from trialplan.stats.reestimation import reestimation_type1


def _exact_fixed_type1(n: int, rate: float, alpha: float) -> float:
    """P(|z| > z_{1-alpha/2}) for the pooled z test at n per arm, by enumerating both counts."""
    x = np.arange(n + 1)
    pmf = stats.binom.pmf(x, n, rate)
    xc, xi = np.meshgrid(x, x, indexing="ij")
    pbar = (xc + xi) / (2.0 * n)
    se = np.sqrt(np.maximum(pbar * (1 - pbar), 1e-12) * 2.0 / n)
    reject = np.abs(xc - xi) / n / se > stats.norm.ppf(1 - alpha / 2)
    return float(np.sum(np.outer(pmf, pmf) * reject))


def test_fixed_size_rejection_rate_matches_exact_enumeration():
    # No clustering and a re-estimate that never moves: both rates are the fixed test's.
    exact = _exact_fixed_type1(200, 0.3, 0.05)
    res = reestimation_type1(0.3, n_pilot=50, n_planned=200, n_max=None,
                             n_for_pooled=lambda c: np.full(c.shape, 150.0), delta=-0.1,
                             draws=40_000, seed=3)
    se = math.sqrt(exact * (1 - exact) / 40_000)
    assert abs(res.fixed_size - exact) < 4 * se
    assert abs(res.with_reestimation - exact) < 4 * se
    assert res.mean_n_per_arm == 200


def test_reestimated_sizes_respect_the_floor_and_the_cap():
    res = reestimation_type1(0.35, n_pilot=60, n_planned=300, n_max=340,
                             n_for_pooled=lambda c: 300 + 2000 * (c - 0.3), delta=-0.1,
                             icc=0.03, caseload=9, draws=4_000, seed=1)
    assert 300 <= res.mean_n_per_arm <= 340


def test_a_size_that_grows_with_the_pooled_rate_keeps_alpha_in_this_design():
    # Blinded re-estimation from the pooled rate (the effect is not re-estimated) is expected
    # to leave the type I error near alpha; a gross inflation would show here.
    res = reestimation_type1(0.34, n_pilot=90, n_planned=590, n_max=None,
                             n_for_pooled=lambda c: 590 * (c * (1 - c)) / (0.384 * 0.616),
                             delta=-0.094, icc=0.03, caseload=9, draws=20_000, seed=7)
    assert abs(res.with_reestimation - 0.05) < 4 * res.mc_se + 0.005


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="rate"):
        reestimation_type1(1.2, n_pilot=1, n_planned=2, n_max=None,
                           n_for_pooled=lambda c: c, delta=0.1)
    with pytest.raises(InputError, match="n_pilot"):
        reestimation_type1(0.3, n_pilot=5, n_planned=2, n_max=None,
                           n_for_pooled=lambda c: c, delta=0.1)


def test_caseload_pmf_is_scipy_beta_binomial_and_binomial_without_clustering():
    from trialplan.stats.progression import betabinom_pmf  # what the caseloads use

    icc, rate = 0.05, 0.3
    s = (1 - icc) / icc
    for m in (1, 4, 9, 30):
        np.testing.assert_allclose(betabinom_pmf(m, rate, icc),
                                   stats.betabinom.pmf(np.arange(m + 1), m, rate * s,
                                                       (1 - rate) * s), rtol=1e-12)
        np.testing.assert_allclose(betabinom_pmf(m, rate, 0.0),
                                   stats.binom.pmf(np.arange(m + 1), m, rate), rtol=1e-12)


def test_caseload_totals_follow_the_convolved_beta_binomials():
    # 23 further participants in caseloads of 9: two full caseloads and one of 5, each with
    # its own beta-distributed event probability; frequencies against scipy's pmfs convolved.
    from trialplan.stats.reestimation import _caseload_totals

    icc, rate = 0.05, 0.3
    s = (1 - icc) / icc
    bb = [stats.betabinom.pmf(np.arange(m + 1), m, rate * s, (1 - rate) * s) for m in (9, 9, 5)]
    exact = np.convolve(np.convolve(bb[0], bb[1]), bb[2])
    draws = 200_000
    got = _caseload_totals(np.random.default_rng(4), np.full(draws, 23), 9, rate, icc)
    freq = np.bincount(got, minlength=exact.size) / draws
    assert np.all(np.abs(freq - exact) < 5 * np.sqrt(exact * (1 - exact) / draws) + 1e-6)
