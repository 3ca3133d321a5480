"""Operating characteristics of traffic-light progression criteria."""

import math

import numpy as np
import pytest
from scipy import stats as st

from trialplan.stats import progression as pg

TRUE = np.linspace(0.01, 0.99, 99)


@pytest.mark.parametrize("n,green,amber", [(38, 0.8, 0.6), (46, 0.75, 0.5), (193, 0.8, 0.5),
                                           (7, 0.5, 0.3)])
def test_binomial_oc_matches_scipy_binom(n, green, amber):
    oc = pg.binomial_oc(n, green, amber, TRUE)
    kg, ka = math.ceil(green * n - 1e-9), math.ceil(amber * n - 1e-9)
    want_green = st.binom.sf(kg - 1, n, TRUE)
    want_red = st.binom.cdf(ka - 1, n, TRUE)
    np.testing.assert_allclose(oc["green"], want_green, rtol=0, atol=1e-12)
    np.testing.assert_allclose(oc["red"], want_red, rtol=0, atol=1e-12)
    np.testing.assert_allclose(oc["amber"], 1 - want_green - want_red, rtol=0, atol=1e-12)


def test_clustered_oc_reduces_to_binomial_and_matches_scipy_betabinom():
    sizes = pg.cluster_sizes(46, 9)
    assert sizes == [8, 8, 8, 8, 7, 7]  # caseloads of at most 9, as even as possible
    flat = pg.clustered_oc(sizes, 0.75, 0.5, TRUE, 0.0)
    binom = pg.binomial_oc(46, 0.75, 0.5, TRUE)
    for k in pg.DECISIONS:
        np.testing.assert_allclose(flat[k], binom[k], rtol=0, atol=1e-12)
    # One cluster: beta-binomial with a = p (1 - rho) / rho, b = (1 - p) (1 - rho) / rho.
    rho, p = 0.05, np.array([0.3, 0.6, 0.8])
    one = pg.clustered_oc([20], 0.75, 0.5, p, rho)
    a, b = p * (1 - rho) / rho, (1 - p) * (1 - rho) / rho
    np.testing.assert_allclose(one["green"], st.betabinom.sf(14, 20, a, b), rtol=0, atol=1e-12)
    np.testing.assert_allclose(one["red"], st.betabinom.cdf(9, 20, a, b), rtol=0, atol=1e-12)


def test_clustering_flattens_the_operating_characteristic():
    sizes = pg.cluster_sizes(46, 9)
    flat = pg.clustered_oc(sizes, 0.75, 0.5, [0.9], 0.0)["green"][0]
    clustered = pg.clustered_oc(sizes, 0.75, 0.5, [0.9], 0.2)["green"][0]
    assert clustered < flat  # over-dispersion: less certain to see green when truly green
    assert pg.design_effect(sizes, 0.2) == pytest.approx(1 + (sum(m * m for m in sizes) / 46
                                                             - 1) * 0.2)


def test_recruitment_oc_matches_scipy_poisson_and_negative_binomial():
    sites = [10.0, 20.0, 30.0]
    r = np.array([0.5, 0.8, 1.0, 1.2])
    oc = pg.recruitment_oc(sites, 0.8, 0.5, r)
    # A sum of Poisson counts is Poisson with the summed mean.
    np.testing.assert_allclose(oc["green"], st.poisson.sf(47, 60 * r), rtol=0, atol=1e-12)
    np.testing.assert_allclose(oc["red"], st.poisson.cdf(29, 60 * r), rtol=0, atol=1e-12)
    # One site, gamma-distributed rate with CV 0.3: negative binomial with shape 1/cv^2.
    k = 1 / 0.3**2
    one = pg.recruitment_oc([60.0], 0.8, 0.5, r, cv=0.3)
    mu = 60 * r
    np.testing.assert_allclose(one["green"], st.nbinom.sf(47, k, k / (k + mu)), rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(one["red"], st.nbinom.cdf(29, k, k / (k + mu)), rtol=0,
                               atol=1e-12)


def test_recruitment_half_width_at_the_green_count():
    # Issue 13 s7: z sqrt(green / projected) on the ratio scale for a Poisson count.
    z = st.norm.ppf(0.975)
    assert pg.recruitment_half_width([193.0], 0.8, z) == pytest.approx(z * math.sqrt(0.8 / 193))
    split = [20.0, 70.0, 103.0]
    assert pg.recruitment_half_width(split, 0.8, z) == pytest.approx(z * math.sqrt(0.8 / 193))
    wider = pg.recruitment_half_width(split, 0.8, z, cv=0.3)
    var = sum(0.8 * s + (0.3 * 0.8 * s) ** 2 for s in split)
    assert wider == pytest.approx(z * math.sqrt(var) / 193)


def test_n_for_half_width_matches_statsmodels():
    z = st.norm.ppf(0.975)
    # statsmodels samplesize_confint_proportion(0.5, 0.1) = 96.0365 -> 97
    assert pg.n_for_half_width(0.5, 0.1, z) == 97
    # methods.md s5: p = .8, w = .10 gives 61.46 -> 62; p = .7 gives 80.67 -> 81
    assert pg.n_for_half_width(0.8, 0.1, z) == 62
    assert pg.n_for_half_width(0.7, 0.1, z) == 81
    assert pg.n_for_half_width(0.8, 0.1, z, design_effect=1.4) == math.ceil(61.4633 * 1.4)


def test_wilson_interval_matches_statsmodels_formula():
    lo, hi = pg.wilson(0.8, 50, st.norm.ppf(0.975))
    # statsmodels proportion_confint(40, 50, method="wilson") = (0.6696, 0.8876)
    assert (lo, hi) == pytest.approx((0.66962894, 0.88756250), abs=1e-7)


@pytest.mark.parametrize("rho", [1e-300, 1e-12, 2e-6])
def test_a_negligible_icc_is_the_binomial_without_losing_digits(rho):
    # found by fuzzing: rho = 1e-300 made the beta's parameters 1e300 and the pmf NaN.  Just
    # above the switch (2e-6) the beta-binomial must still agree with the binomial to the
    # order of its extra variance, (m - 1) rho.
    sizes = pg.cluster_sizes(46, 9)
    near = pg.clustered_oc(sizes, 0.75, 0.5, TRUE, rho)
    binom = pg.binomial_oc(46, 0.75, 0.5, TRUE)
    for k in pg.DECISIONS:
        np.testing.assert_allclose(near[k], binom[k], rtol=0, atol=1e-4)
