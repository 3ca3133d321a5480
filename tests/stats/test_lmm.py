"""REML fit, Kenward-Roger and Satterthwaite df of trialplan.stats.lmm against R.

Fixtures (tests/stats/data, written once by numpy with the seeds in their
comments below and kept as CSV so R reads the same numbers):

- lmm_partial.csv: partially nested, 64 control participants (cl = 0) and 8
  peer workers with caseloads of 6-12 (cl = 1..8); y, arm, covariate x.
- lmm_cluster.csv: cluster randomised, 14 clusters (7 per arm) of 4-12.
- lmm_small_caseloads.csv: one dataset of ``trialplan simulate`` (the
  continuous-primary example variant at n = 40, caseload 2, after attrition):
  18 controls and 10 caseloads of 1-2.

R 4 with nlme, lme4 1.1, lmerTest and pbkrtest; every call reads the CSV with
``d <- read.csv("lmm_partial.csv")`` (or ``c <- read.csv("lmm_cluster.csv")``)
under ``options(digits = 10)``.  R's optimisers stop at about 1e-8 relative,
so values are compared to 1e-6.
"""

import math
from pathlib import Path

import numpy as np
import pytest

from trialplan.stats.lmm import fit_reml, kenward_roger, satterthwaite

DATA = Path(__file__).parent / "data"
ARM = [0, 1, 0]  # the treatment coefficient in (intercept, arm, x)


def _read(name):
    d = np.genfromtxt(DATA / name, delimiter=",", names=True)
    return d["y"], d["arm"], d["x"], d["cl"]


@pytest.fixture(scope="module")
def partial():
    return _read("lmm_partial.csv")


@pytest.fixture(scope="module")
def cluster():
    return _read("lmm_cluster.csv")


def _x(arm, x):
    return np.column_stack([np.ones(arm.size), arm, x])


def test_heteroscedastic_partially_nested_model_matches_nlme(partial):
    y, arm, x, cl = partial
    fit = fit_reml(y, _x(arm, x), cl, random=arm == 1, group=arm)
    # R: m <- nlme::lme(y ~ arm + x, random = ~ 0 + arm | cl,
    #        weights = nlme::varIdent(form = ~ 1 | arm), data = d, method = "REML")
    # Control participants share cl = 0; their random effect is 0 (arm = 0).  Giving each
    # its own cluster id (cl2 <- ifelse(arm == 1, cl, 1000 + row)) prints the same values.
    assert fit.converged
    # fixef(m) -> 10.3407603123 0.1609230470 0.5802677891
    assert fit.beta == pytest.approx([10.3407603123, 0.1609230470, 0.5802677891], rel=1e-6)
    # sqrt(diag(vcov(m))) -> 0.1254227699 0.2884852436 0.1086686215
    assert np.sqrt(np.diag(fit.cov_beta)) == pytest.approx(
        [0.1254227699, 0.2884852436, 0.1086686215], rel=1e-6)
    # logLik(m) -> -230.9915425 (df=6)
    assert fit.loglik == pytest.approx(-230.9915425, abs=1e-6)
    # as.numeric(VarCorr(m)[, "Variance"]) -> 0.2665264548 (arm | cl); residual variances
    # m$sigma^2 * coef(m$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)^2
    #   -> 1.006186418 (arm 0) 2.419505243 (arm 1)
    assert fit.names == ("random intercept", "residual 0", "residual 1")
    assert fit.variances == pytest.approx([0.2665264548, 1.006186418, 2.419505243], rel=1e-5)


def test_caseloads_of_one_or_two_converge_to_nlme():
    """The peer-worker and intervention residual variances are nearly confounded when
    caseloads hold one or two participants (Fisher scoring alone crawled here)."""
    y, arm, x, cl = _read("lmm_small_caseloads.csv")  # 18 controls, 10 caseloads of 1-2
    fit = fit_reml(y, _x(arm, x), cl, random=arm == 1, group=arm)
    # R: m <- nlme::lme(y ~ arm + x, random = ~ 0 + arm | cl,
    #        weights = nlme::varIdent(form = ~ 1 | arm), data = d, method = "REML")
    #    (d <- read.csv("lmm_small_caseloads.csv"))
    assert fit.converged and fit.iterations < 20
    # fixef(m) -> -0.07104633008 0.24761251464 0.43882800738
    assert fit.beta == pytest.approx([-0.07104633008, 0.24761251464, 0.43882800738], rel=1e-6)
    # sqrt(diag(vcov(m))) -> 0.2633671866 0.3924366236 0.2139579877
    assert np.sqrt(np.diag(fit.cov_beta)) == pytest.approx(
        [0.2633671866, 0.3924366236, 0.2139579877], rel=1e-6)
    # logLik(m) -> -47.19031534; variances 0.2640048441 (arm | cl), residual 1.1493046152
    # (arm 0) and 0.8538474654 (arm 1)
    assert fit.loglik == pytest.approx(-47.19031534, abs=1e-7)
    assert fit.variances == pytest.approx([0.2640048441, 1.1493046152, 0.8538474654],
                                          rel=1e-5)


def test_homoscedastic_partially_nested_kr_and_satterthwaite_match_r(partial):
    y, arm, x, cl = partial
    fit = fit_reml(y, _x(arm, x), cl, random=arm == 1)
    # R: h <- lme4::lmer(y ~ arm + x + (0 + arm | cl), data = d, REML = TRUE)
    # logLik(h) -> -236.925697; as.data.frame(VarCorr(h))$vcov -> 0.3463865562 1.7252705620
    assert fit.loglik == pytest.approx(-236.925697, abs=1e-6)
    assert fit.variances == pytest.approx([0.3463865562, 1.7252705620], rel=1e-5)
    kr = kenward_roger(fit, ARM)
    # pbkrtest::KRmodcomp(h, matrix(c(0, 1, 0), nrow = 1)) -> ddf 13.35848, F.scaling 1
    # summary(h, ddf = "Kenward-Roger")$coefficients["arm", "df"] -> 13.35847735
    assert kr.df == pytest.approx(13.35847735, rel=1e-6)
    # sqrt(diag(as.matrix(pbkrtest::vcovAdj(h))))["arm"] -> 0.3086141041
    assert kr.se == pytest.approx(0.3086141041, rel=1e-6)
    assert kr.estimate == pytest.approx(0.1537402969, rel=1e-6)  # fixef(h)["arm"]
    sw = satterthwaite(fit, ARM)
    # summary(h, ddf = "Satterthwaite")$coefficients["arm", ] -> SE 0.3081453989, df 13.20887713
    assert sw.se == pytest.approx(0.3081453989, rel=1e-6)
    assert sw.df == pytest.approx(13.20887713, rel=1e-5)
    # the covariate's row: KR df 133.82382830, SE 0.1180622681; Satterthwaite df 133.82161529
    assert kenward_roger(fit, [0, 0, 1]).df == pytest.approx(133.82382830, rel=1e-6)
    assert kenward_roger(fit, [0, 0, 1]).se == pytest.approx(0.1180622681, rel=1e-6)
    assert satterthwaite(fit, [0, 0, 1]).df == pytest.approx(133.82161529, rel=1e-5)


def test_cluster_randomised_kr_and_satterthwaite_match_r(cluster):
    y, arm, x, cl = cluster
    fit = fit_reml(y, _x(arm, x), cl)
    # R: g <- lme4::lmer(y ~ arm + x + (1 | cl), data = c, REML = TRUE)
    # logLik(g) -> -161.5252051; as.data.frame(VarCorr(g))$vcov -> 0.5006058062 0.7122523046
    assert fit.names == ("random intercept", "residual 0")
    assert fit.loglik == pytest.approx(-161.5252051, abs=1e-6)
    assert fit.variances == pytest.approx([0.5006058062, 0.7122523046], rel=1e-5)
    # fixef(g) -> 0.43009534453 -0.09565859296 0.55828796846
    assert fit.beta == pytest.approx([0.43009534453, -0.09565859296, 0.55828796846], rel=1e-6)
    kr = kenward_roger(fit, ARM)
    # pbkrtest::KRmodcomp(g, matrix(c(0, 1, 0), nrow = 1)) -> ddf 11.94138, F.scaling 1;
    # summary(g, ddf = "Kenward-Roger")$coefficients["arm", ] -> SE 0.41204708879,
    # df 11.94137706
    assert kr.df == pytest.approx(11.94137706, rel=1e-6)
    assert kr.se == pytest.approx(0.41204708879, rel=1e-6)
    sw = satterthwaite(fit, ARM)
    # summary(g, ddf = "Satterthwaite")$coefficients["arm", ] -> SE 0.41182928869,
    # df 12.58658807
    assert sw.se == pytest.approx(0.41182928869, rel=1e-6)
    assert sw.df == pytest.approx(12.58658807, rel=1e-5)
    # the intercept's row: KR df 11.97037958, SE 0.29167282880; Satterthwaite df 12.61696578
    assert kenward_roger(fit, [1, 0, 0]).df == pytest.approx(11.97037958, rel=1e-6)
    assert kenward_roger(fit, [1, 0, 0]).se == pytest.approx(0.29167282880, rel=1e-6)
    assert satterthwaite(fit, [1, 0, 0]).df == pytest.approx(12.61696578, rel=1e-5)


def test_variance_at_the_boundary_matches_r(partial):
    y, arm, x, cl = partial
    y = y.copy()
    tr = arm == 1
    _, inv = np.unique(cl[tr], return_inverse=True)
    means = np.bincount(inv, weights=y[tr]) / np.bincount(inv)
    y[tr] = y[tr] - means[inv] + y[tr].mean()
    fit = fit_reml(y, _x(arm, x), cl, random=tr)
    # R: d$y[tr] <- d$y[tr] - ave(d$y[tr], d$cl[tr]) + mean(d$y[tr])  (caseload means equal)
    # h <- lme4::lmer(y ~ arm + x + (0 + arm | cl), data = d, REML = TRUE)
    #   -> boundary (singular) fit; as.data.frame(VarCorr(h))$vcov -> 0 1.669289236;
    #   logLik(h) -> -231.153558; fixef(h) -> 10.3388011393 0.1912674335 0.5101086155
    assert fit.converged and fit.boundary == (True, False)
    assert fit.variances[0] == 0.0
    assert fit.variances[1] == pytest.approx(1.669289236, rel=1e-6)
    assert fit.loglik == pytest.approx(-231.153558, abs=1e-6)
    assert fit.beta == pytest.approx([10.3388011393, 0.1912674335, 0.5101086155], rel=1e-6)
    # pbkrtest keeps the zero variance among the parameters:
    # KRmodcomp(h, matrix(c(0, 1, 0), nrow = 1)) -> ddf 27.48681;
    # sqrt(diag(as.matrix(vcovAdj(h))))["arm"] -> 0.2231065181
    kr = kenward_roger(fit, ARM)
    assert kr.df == pytest.approx(27.48681, rel=1e-6)
    assert kr.se == pytest.approx(0.2231065181, rel=1e-6)
    # lmerTest holds it fixed: summary(h, ddf = "Satterthwaite") -> arm SE 0.2217735230, df 134
    sw = satterthwaite(fit, ARM)
    assert sw.se == pytest.approx(0.2217735230, rel=1e-6)
    assert sw.df == pytest.approx(134.0, rel=1e-9)


def test_unclustered_arm_specific_variances_give_welch(partial):
    """No clustering, a variance per arm, y ~ arm: the Behrens-Fisher problem.  The REML
    variances are the arms' sample variances, Satterthwaite's df is Welch's and Kenward-
    Roger's adjustment vanishes (Q_ii = P_i Phi P_i), so it gives Welch's df and SE too."""
    y, arm, _, cl = partial
    fit = fit_reml(y, _x(arm, np.zeros(arm.size))[:, :2], cl, random=np.zeros(arm.size, bool),
                   group=arm)
    assert fit.names == ("residual 0", "residual 1")
    v = [float(np.var(y[arm == a], ddof=1)) / np.sum(arm == a) for a in (0, 1)]
    n = [np.sum(arm == a) for a in (0, 1)]
    welch_df = sum(v) ** 2 / sum(vi * vi / (ni - 1) for vi, ni in zip(v, n, strict=True))
    diff = y[arm == 1].mean() - y[arm == 0].mean()
    for test in (satterthwaite(fit, [0, 1]), kenward_roger(fit, [0, 1])):
        assert test.estimate == pytest.approx(diff, rel=1e-10)
        assert test.se == pytest.approx(math.sqrt(sum(v)), rel=1e-8)
        assert test.df == pytest.approx(welch_df, rel=1e-8)


def test_row_order_does_not_matter(partial):
    y, arm, x, cl = partial
    perm = np.random.default_rng(0).permutation(y.size)
    a = fit_reml(y, _x(arm, x), cl, random=arm == 1, group=arm)
    b = fit_reml(y[perm], _x(arm, x)[perm], cl[perm], random=arm[perm] == 1, group=arm[perm])
    assert b.beta == pytest.approx(a.beta, rel=1e-10)
    assert b.loglik == pytest.approx(a.loglik, rel=1e-12)
    assert kenward_roger(b, ARM).df == pytest.approx(kenward_roger(a, ARM).df, rel=1e-8)


def test_failures_are_reported_not_raised(partial):
    y, arm, x, cl = partial
    collinear = np.column_stack([_x(arm, x), arm])
    fit = fit_reml(y, collinear, cl, random=arm == 1, group=arm)
    assert not fit.converged and "LinAlgError" in fit.message
    assert math.isnan(kenward_roger(fit, [0, 1, 0, 0]).df)
    assert math.isnan(satterthwaite(fit, [0, 1, 0, 0]).se)
    flat = np.where(arm == 0, 3.0, y)  # no residual variance in the control arm
    assert not fit_reml(flat, _x(arm, x), cl, random=arm == 1, group=arm).converged
    assert not fit_reml(y[:3], _x(arm, x)[:3], cl[:3], random=arm[:3] == 1).converged
    with pytest.raises(ValueError, match="same residual group"):
        fit_reml(y, _x(arm, x), np.ones(y.size), group=arm)
