"""Assurance: Monte Carlo over priors through the closed forms."""

import math

import numpy as np
import pytest
from scipy import stats as st

from trialplan.errors import InputError, UnreachableTargetError
from trialplan.stats import assurance as sa
from trialplan.stats import means, proportions

# Gauss-Legendre nodes on (0, 1): E f(X) = integral over u of f(F^-1(u)).
_U, _W = np.polynomial.legendre.leggauss(200)
_U, _W = 0.5 * (_U + 1.0), 0.5 * _W


def _partial(**kw):
    return dict(clustering="partial", icc=0.03, cluster_size=9, **kw)


def test_point_mass_prior_gives_the_power_exactly():
    priors = {"p1": sa.Prior.point(0.38), "p2": sa.Prior.point(0.29)}
    drawn = sa.draw_priors(priors, 1000, seed=1)
    args = _partial(p1=drawn["p1"], p2=drawn["p2"], n=np.full(1000, 600.0))
    probs = sa.favourable_power(proportions, args, drawn["p2"] - drawn["p1"], "less", 0.05)
    res = sa.expectation(probs, 1000, 1)
    one_sided = proportions(**_partial(p1=0.38, p2=0.29, n=600), alpha=0.025, sided="one",
                            alternative="less").power
    # Equal up to the rounding of summing 1000 equal numbers; every draw's value is exact.
    assert np.all(probs == one_sided)
    assert res.assurance == pytest.approx(one_sided, rel=1e-14) and res.mc_se < 1e-15
    # The two-sided power differs only by the (negligible) rejection in the harmful direction.
    two_sided = proportions(**_partial(p1=0.38, p2=0.29, n=600)).power
    assert 0 < two_sided - res.assurance < 1e-6


def test_mc_assurance_equals_quadrature_over_a_one_dimensional_prior():
    # Control rate beta(83, 133) (CORE, 83/216), risk ratio kept at 0.29/0.38.
    prior = sa.Prior.beta(83, 133)
    rr = 0.29 / 0.38

    def success(p1):
        p1 = np.asarray(p1, dtype=float)
        return sa.favourable_power(proportions, _partial(p1=p1, p2=p1 * rr, n=np.full(p1.shape,
                                   500.0)), p1 * rr - p1, "less", 0.05)

    drawn = sa.draw_priors({"p1": prior}, 100_000, seed=7)["p1"]
    mc = sa.expectation(success(drawn), 100_000, 7)
    exact = float(np.sum(_W * success(prior.ppf(_U))))
    assert abs(mc.assurance - exact) < 4 * mc.mc_se
    assert 0 < mc.mc_se < 0.002


def test_mc_assurance_equals_quadrature_over_a_two_dimensional_prior():
    # Independent priors on d (normal, may point the wrong way) and the baseline correlation.
    pd, pr = sa.Prior.normal(0.25, 0.12), sa.Prior.uniform(0.3, 0.6)

    def success(d, rho):
        d, rho = np.broadcast_arrays(np.asarray(d, float), np.asarray(rho, float))
        return sa.favourable_power(means, dict(d=d, baseline_corr=rho, n=np.full(d.shape, 150.0)),
                                   d, "greater", 0.05)

    drawn = sa.draw_priors({"d": pd, "rho": pr}, 100_000, seed=3)
    mc = sa.expectation(success(drawn["d"], drawn["rho"]), 100_000, 3)
    u, w = np.polynomial.legendre.leggauss(80)
    u, w = 0.5 * (u + 1.0), 0.5 * w
    dd, rr = np.meshgrid(pd.ppf(u), pr.ppf(u), indexing="ij")
    exact = float(np.sum(np.outer(w, w) * success(dd.ravel(), rr.ravel()).reshape(dd.shape)))
    assert abs(mc.assurance - exact) < 4 * mc.mc_se
    # Significance in the harmful direction is not success: it never exceeds alpha / 2.
    harmful = success(np.array([-0.3, -0.1]), np.array([0.4, 0.4]))
    assert np.all(harmful <= 0.025) and np.all(harmful >= 0)


def test_favourable_power_of_a_harmful_effect_is_the_lower_tail():
    # A z-test of means with known SE: the favourable tail for d < 0 is Phi(d/se - z).
    d = np.array([-0.2, -0.05])
    got = sa.favourable_power(means, dict(d=d, n=np.full(2, 5000.0)), d, "greater", 0.05)
    se = math.sqrt(2 / 5000)
    want = st.norm.cdf(d / se - st.norm.ppf(0.975))
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-12)  # t, 9998 df, vs normal


def test_priors_match_scipy():
    cases = [
        (sa.Prior.beta(83, 133), st.beta(83, 133)),
        (sa.Prior.gamma(4.0, 2.5), st.gamma(4.0, scale=2.5)),
        (sa.Prior.lognormal(math.log(0.8), 0.2), st.lognorm(0.2, scale=0.8)),
        (sa.Prior.uniform(0.1, 0.25), st.uniform(0.1, 0.15)),
        (sa.Prior.normal(0.3, 0.1, 0.0, 1.0), st.truncnorm(-3.0, 7.0, loc=0.3, scale=0.1)),
    ]
    u = np.array([0.025, 0.5, 0.975])
    for prior, ref in cases:
        np.testing.assert_allclose(prior.ppf(u), ref.ppf(u), rtol=1e-8)
        assert prior.mean == pytest.approx(ref.mean(), rel=1e-10)
        draws = prior.draw(np.random.default_rng(5), 200_000)
        assert abs(draws.mean() - ref.mean()) < 5 * ref.std() / math.sqrt(200_000)
        assert draws.min() >= prior.support()[0] and draws.max() <= prior.support()[1]


def test_draws_depend_only_on_seed_and_name():
    a = sa.draw_priors({"x": sa.Prior.beta(2, 3)}, 100, seed=11)
    b = sa.draw_priors({"y": sa.Prior.normal(0, 1), "x": sa.Prior.beta(2, 3)}, 100, seed=11)
    np.testing.assert_array_equal(a["x"], b["x"])
    c = sa.draw_priors({"x": sa.Prior.beta(2, 3)}, 100, seed=12)
    assert not np.array_equal(a["x"], c["x"])


def test_n_for_assurance_and_its_ceiling():
    def f(n):
        return 0.9 * (1 - math.exp(-n / 100))

    n = sa.n_for_assurance(f, 0.6, lo=4, hi=10_000, ceiling=0.9)
    assert f(n) >= 0.6 > f(n - 1)
    with pytest.raises(UnreachableTargetError, match="prior probability"):
        sa.n_for_assurance(f, 0.95, lo=4, hi=10_000, ceiling=0.9)


@pytest.mark.parametrize("scale", [3.0, 100.0, 4000.0])
@pytest.mark.parametrize("target", [0.05, 0.3, 0.6, 0.85])
def test_n_for_assurance_is_the_smallest_n_reaching_the_target(scale, target):
    # A rising function with a flat stretch (whole-number steps), as the plan's assurance
    # is on the same draws: the search must give what a scan from the bottom gives.
    def f(n):
        return 0.9 * (1 - math.exp(-math.floor(n / 7) * 7 / scale))

    hi = 50_000
    smallest = next(n for n in range(4, hi + 1) if f(n) >= target)
    evaluated = []

    def counted(n):
        evaluated.append(n)
        return f(n)

    assert sa.n_for_assurance(counted, target, lo=4, hi=hi) == smallest
    # with points already known (the expected power curve) the answer is the same, and
    # fewer evaluations are needed than bisection's log2(hi - lo)
    known = {n: f(n) for n in (10, 100, 400, 1000, 3000, 9000)}
    fresh = []
    assert sa.n_for_assurance(lambda n: fresh.append(n) or f(n), target, lo=4, hi=hi,
                              known=known) == smallest
    assert not set(fresh) & set(known)
    assert max(len(fresh), len(evaluated)) <= 2 * math.ceil(math.log2(hi)) + 2


def test_bad_priors_are_refused():
    with pytest.raises(InputError, match="sd"):
        sa.Prior.normal(0, -1)
    with pytest.raises(InputError, match="family"):
        sa.Prior("cauchy", (("x", 1.0),))
    with pytest.raises(InputError, match="draws"):
        sa.draw_priors({"x": sa.Prior.beta(1, 1)}, 1)
