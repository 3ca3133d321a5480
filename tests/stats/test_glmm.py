"""Random-intercept logistic regression by adaptive quadrature, against R lme4 1.1-31.

The datasets in tests/stats/data/ were drawn once with numpy and are the
fixtures (columns y, arm, x, cl):

- ``glmm_partial.csv``: partially nested, 40 caseloads of 8 in the intervention
  arm (random-intercept SD 0.8) and 300 unclustered controls, each a cluster of
  one (labels 1000 upwards).
- ``glmm_cluster.csv``: cluster randomised, 24 clusters of 15 (SD 0.8).
- ``glmm_boundary.csv``: partially nested with no clustering at all (SD 0):
  lme4 reports a singular fit (theta = 0).

Every R value below is printed by::

    d <- read.csv("tests/stats/data/glmm_<name>.csv")
    f1 <- glmer(y ~ arm + x + (1|cl), data = d, family = binomial, nAGQ = K)
    f0 <- glmer(y ~ x + (1|cl), data = d, family = binomial, nAGQ = K)
    fixef(f1); sqrt(diag(as.matrix(vcov(f1)))); getME(f1, "theta"); logLik(f1)
    getME(f0, "theta"); logLik(f0); anova(f0, f1)

lme4's optimiser (bobyqa, then Nelder-Mead) stops at a relative tolerance of
about 1e-6 in the parameters, so estimates are compared to 2e-5 (absolute) and
log-likelihoods to 1e-5.  With 5 nodes our Newton steps (derivatives of the
exact integrals, evaluated at the nodes) stop where the 5-node log-likelihood no
longer rises, within 1e-6 of its maximum but not quite at its maximiser: there
the fixed effects are compared to 1e-4, sigma to 1e-3 (it is the flattest
direction) and the SEs to 5e-4 (relative).  The default, 15 nodes, agrees with
lme4 to lme4's own precision.
"""

from pathlib import Path

import numpy as np
import pytest

from trialplan.stats import glmm

DATA = Path(__file__).parent / "data"


def _load(name):
    d = np.loadtxt(DATA / f"glmm_{name}.csv", delimiter=",", skiprows=1)
    y, arm, x, cl = d.T
    return y, np.column_stack([np.ones_like(y), arm, x]), cl


# name, nAGQ, fixef, SEs, theta (sigma), logLik full, theta reduced, logLik reduced, Chisq
R_REFERENCE = [
    # partial, nAGQ = 15
    ("partial", 15, [-0.6632122538, 0.5254086415, 0.5214491015],
     [0.13864570356, 0.20885465481, 0.09705760974], 0.6461413244, -400.5711399,
     0.7213313295, -403.7358628, 6.32945),
    # partial, nAGQ = 5
    ("partial", 5, [-0.6632004057, 0.5253971756, 0.5214402286],
     [0.13863773359, 0.20884544967, 0.09705352029], 0.646084119, -400.5712538,
     0.7212426408, -403.7360509, 6.32959),
    # cluster, nAGQ = 15
    ("cluster", 15, [-0.6626183495, 0.3254341638, 0.2072973358],
     [0.2449456087, 0.3448678196, 0.1187653263], 0.631527679, -232.1640291,
     0.6546871155, -232.600744, 0.87343),
    # cluster, nAGQ = 5
    ("cluster", 5, [-0.6626054356, 0.3254410540, 0.2073022767],
     [0.2449276328, 0.3448428230, 0.1187647003], 0.6314505547, -232.164319,
     0.6546098012, -232.6010812, 0.87352),
    # boundary, nAGQ = 15: "boundary (singular) fit" for both models; isSingular(f1) TRUE
    ("boundary", 15, [-0.7226564626, 0.6722783845, 0.4844055804],
     [0.1992312218, 0.2508672778, 0.1280843361], 0.0, -193.4777285, 0.0, -197.151894,
     7.34833),
]


@pytest.mark.parametrize("name, nagq, fixef, se, theta, ll1, theta0, ll0, chisq",
                         R_REFERENCE, ids=[f"{r[0]}-{r[1]}" for r in R_REFERENCE])
def test_matches_lme4(name, nagq, fixef, se, theta, ll1, theta0, ll0, chisq):
    y, x, cl = _load(name)
    fit = glmm.fit_random_intercept_logistic(y, x, cl, nagq=nagq)
    tol, tol_sigma = (2e-5, 2e-5) if nagq >= 15 else (1e-4, 1e-3)
    assert fit.converged
    np.testing.assert_allclose(fit.params, fixef, atol=tol)
    np.testing.assert_allclose(fit.bse, se, rtol=1e-4 if nagq >= 15 else 5e-4)
    assert fit.sigma == pytest.approx(theta, abs=tol_sigma)
    assert fit.loglik == pytest.approx(ll1, abs=1e-5)
    assert fit.boundary == (theta == 0.0)
    lrt = glmm.likelihood_ratio_test(y, x, cl, 1, nagq=nagq, full=fit)
    assert lrt.converged
    assert lrt.reduced.sigma == pytest.approx(theta0, abs=tol_sigma)
    assert lrt.reduced.loglik == pytest.approx(ll0, abs=1e-5)
    assert lrt.statistic == pytest.approx(chisq, abs=2e-5)


def test_lrt_p_value_matches_r():
    # R: anova(f0, f1) on glmm_partial.csv, nAGQ = 15 -> Chisq 6.32945, Pr(>Chisq) 0.011875
    y, x, cl = _load("partial")
    assert glmm.likelihood_ratio_test(y, x, cl, 1).p == pytest.approx(0.011875, abs=1e-6)
    # R: pchisq(3.841458820694124, 1, lower.tail = FALSE) -> 0.05
    assert glmm.chi2_1_sf(3.841458820694124) == pytest.approx(0.05, rel=1e-12)


def test_marginal_risks_match_r_integration():
    # R, after the glmer fit of glmm_partial.csv (nAGQ = 15):
    #   b <- fixef(f1); s <- getME(f1, "theta")
    #   risk <- function(a) mean(sapply(d$x, function(xx) integrate(function(u)
    #     plogis(b[1] + b[2]*a + b[3]*xx + u) * dnorm(u, 0, s), -Inf, Inf,
    #     rel.tol = 1e-10)$value))
    #   -> r0 0.3640110637, r1 0.4747683761, rd 0.1107573124, lor 0.4569846076
    y, x, cl = _load("partial")
    fit = glmm.fit_random_intercept_logistic(y, x, cl)
    me = glmm.marginal_effect(x, 1, fit.params, fit.cov_full, sigma=fit.sigma)
    assert me.risk_control == pytest.approx(0.3640110637, abs=2e-6)
    assert me.risk_intervention == pytest.approx(0.4747683761, abs=2e-6)
    assert me.risk_difference == pytest.approx(0.1107573124, abs=2e-6)
    assert me.log_odds_ratio == pytest.approx(0.4569846076, abs=1e-5)


def test_marginal_delta_method_matches_numerical_gradient():
    # Property: the analytic gradient in the delta method equals a central difference.
    y, x, cl = _load("partial")
    fit = glmm.fit_random_intercept_logistic(y, x, cl)
    theta = np.r_[fit.params, np.log(fit.sigma)]

    def lor(t):
        return glmm.marginal_effect(x, 1, t[:3], np.eye(4), sigma=float(np.exp(t[3]))
                                    ).log_odds_ratio

    h = 1e-6
    grad = np.array([(lor(theta + h * e) - lor(theta - h * e)) / (2 * h) for e in np.eye(4)])
    me = glmm.marginal_effect(x, 1, fit.params, fit.cov_full, sigma=fit.sigma)
    assert me.log_odds_ratio_se == pytest.approx(float(np.sqrt(grad @ fit.cov_full @ grad)),
                                                 rel=1e-5)


def test_marginal_without_covariates_is_the_logistic_coefficient():
    # Property: with allocation the only regressor and sigma = 0 (a logistic model), the
    # standardised log OR is the coefficient itself and its SE the coefficient's.
    y, x, cl = _load("boundary")
    fit = glmm.fit_random_intercept_logistic(y, x[:, :2], cl)
    me = glmm.marginal_effect(x[:, :2], 1, fit.params, fit.cov)
    assert me.log_odds_ratio == pytest.approx(fit.params[1], abs=1e-10)
    assert me.log_odds_ratio_se == pytest.approx(fit.bse[1], rel=1e-10)
    assert me.risk_control == pytest.approx(y[x[:, 1] == 0].mean(), abs=1e-8)


def test_cluster_labels_and_row_order_do_not_matter():
    y, x, cl = _load("partial")
    order = np.random.default_rng(1).permutation(len(y))
    a = glmm.fit_random_intercept_logistic(y, x, cl)
    b = glmm.fit_random_intercept_logistic(y[order], x[order], (cl * 7 + 3)[order])
    np.testing.assert_allclose(a.params, b.params, atol=1e-10)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-9)


def test_separation_is_a_failed_fit_not_an_exception():
    y, x, cl = _load("partial")
    y = np.where(x[:, 1] == 1, 1.0, y)  # every intervention participant has the event
    fit = glmm.fit_random_intercept_logistic(y, x, cl)
    assert not fit.converged
    lrt = glmm.likelihood_ratio_test(y, x, cl, 1)
    assert not lrt.converged and np.isnan(lrt.p)


def test_too_few_nodes_is_refused():
    y, x, cl = _load("partial")
    with pytest.raises(ValueError, match="nagq must be at least 5"):
        glmm.fit_random_intercept_logistic(y, x, cl, nagq=1)


def test_gauss_hermite_nodes_integrate_a_normal_expectation():
    # Property: the quadrature behind the marginal risks integrates expit over N(0, s^2)
    # as a brute-force Riemann sum does.
    s = 1.3
    u = np.linspace(-12 * s, 12 * s, 200001)
    dens = np.exp(-0.5 * (u / s) ** 2) / (s * np.sqrt(2 * np.pi))
    brute = float(np.sum(1 / (1 + np.exp(-(0.4 + u))) * dens) * (u[1] - u[0]))
    me = glmm.marginal_effect(np.array([[1.0, 0.0]]), 1, [0.4, 0.0], np.eye(2), sigma=s)
    assert me.risk_control == pytest.approx(brute, abs=1e-9)


def test_small_and_awkward_datasets_never_raise():
    # Property: on small partially nested datasets (rare events, big clusters effects, a few
    # caseloads) every fit ends as a maximum (finite, sigma >= 0, an LRT statistic >= 0) or
    # is marked as failed; nothing escapes as an exception.
    rng = np.random.default_rng(20261126)
    for _ in range(40):
        j, m, n_c = rng.integers(2, 8), rng.integers(2, 10), rng.integers(5, 40)
        cl = np.r_[1000 + np.arange(n_c), np.repeat(np.arange(j), m)]
        arm = (cl < 1000).astype(float)
        u = np.where(arm == 1, rng.normal(0, rng.uniform(0, 3), j)[np.minimum(cl, j - 1)], 0)
        eta = rng.uniform(-4, 1) + rng.uniform(-1, 2) * arm + u
        y = (rng.random(len(cl)) < 1 / (1 + np.exp(-eta))).astype(float)
        x = np.column_stack([np.ones_like(y), arm])
        fit = glmm.fit_random_intercept_logistic(y, x, cl)
        if fit.converged:
            assert np.all(np.isfinite(fit.params)) and fit.sigma >= 0
            lrt = glmm.likelihood_ratio_test(y, x, cl, 1, full=fit)
            assert not lrt.converged or (lrt.statistic >= 0 and 0 <= lrt.p <= 1)
