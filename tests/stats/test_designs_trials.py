"""Designs as peer-support trials are run: partial nesting with baseline, repeated follow-ups,
caseloads allocated vs analysed, cluster trials with baseline and few clusters.

Reference values come from R packages run on this machine (call and printed value beside
each) or from a plain simulation of the design analysed as planned.
"""

from __future__ import annotations

import numpy as np
import pytest

from trialplan.errors import InputError
from trialplan.stats import _special as sp
from trialplan.stats import frison_pocock_multiplier, means, proportions, teerenstra_correlation

Z80 = (float(sp.ndtri(0.975)) + float(sp.ndtri(0.8))) ** 2


# ---- PowerUpR power.ira_pn (within-caseload convention, the default) ------------------------

@pytest.mark.parametrize("d, n_total, icc, m, expected, df", [
    # R: PowerUpR::power.ira_pn(es=.30, n=400, rho_ic=.05, ic_size=10, p=.5)
    #    $power 0.7446478167, $df 50.0030077260
    (0.30, 400, 0.05, 10, 0.7446478167, 50.0030077260),
    # R: PowerUpR::power.ira_pn(es=.40, n=250, rho_ic=.10, ic_size=5, p=.5)
    #    $power 0.7859668383, $df 59.9780554709
    (0.40, 250, 0.10, 5, 0.7859668383, 59.9780554709),
])
def test_partial_nesting_reproduces_powerupr_ira_pn(d, n_total, icc, m, expected, df):
    r = means(d=d, n=n_total / 2, clustering="partial", icc=icc, cluster_size=m)
    assert r.power == pytest.approx(expected, abs=5e-10)
    # same Satterthwaite df: the t quantile at PowerUpR's df gives the same power
    assert r.design_effect["intervention"] == pytest.approx(1 + m * icc / (1 - icc))


def test_powerupr_mdes_ira_pn_close():
    # R: PowerUpR::mdes.ira_pn(n=250, rho_ic=.10, ic_size=5, power=.8)$mdes[1] 0.4072140723
    # PowerUpR's MDES uses the central-t shortcut (t_alpha + t_beta) SE; the exact solution
    # of its own power function is slightly smaller.
    r = means(n=125, power=0.8, clustering="partial", icc=0.10, cluster_size=5)
    assert r.effect["d"] == pytest.approx(0.4072140723, abs=2e-4)
    back = means(d=0.4072140723, n=125, clustering="partial", icc=0.10, cluster_size=5)
    assert back.power > 0.8


def test_powerupr_r21_scales_peer_worker_variance_too():
    # R: PowerUpR::power.ira_pn(es=.40, n=250, rho_ic=.10, ic_size=5, p=.5, r21=.3)
    #    $power 0.9081921597: PowerUpR multiplies the whole variance, peer-worker part
    # included, by 1 - R^2.  A baseline measured before allocation to a peer worker cannot
    # explain that part, so trialplan's power with r = sqrt(.3) is lower.
    ours = means(d=0.40, n=125, clustering="partial", icc=0.10, cluster_size=5,
                 baseline_corr=np.sqrt(0.3))
    assert ours.power < 0.9081921597
    # ... and equals the closed form with intervention factor DE_I - r^2, control 1 - r^2
    de_i = 1 + 5 * 0.1 / 0.9
    se = np.sqrt((1 - 0.3) / 125 + (de_i - 0.3) / 125)
    assert ours.power == pytest.approx(float(sp.nct_abs_sf(
        _satt(de_i - 0.3, 125, 5, 0.7, 1), 0.4 / se,
        float(sp.stdtrit(_satt(de_i - 0.3, 125, 5, 0.7, 1), 0.975)))), abs=1e-12)


def _satt(f_i, n, m, f_c, covariates):
    vi, vc = f_i / n, f_c / n
    return (vi + vc) ** 2 / (vi**2 / (n / m - 1) + vc**2 / (n - 1 - covariates))


# ---- partial nesting with baseline: the variance factors -------------------------------------

def test_partial_with_baseline_total_convention_factor():
    # Issue 13: intervention factor 1 + (m - 1) rho - r^2, control 1 - r^2 (total scale).
    m, icc, r = 8, 0.05, 0.6
    res = means(d=0.3, power=0.9, clustering="partial", icc=icc, cluster_size=m,
                baseline_corr=r, control_variance="total")
    f_i, f_c = 1 + (m - 1) * icc - r**2, 1 - r**2
    z = (float(sp.ndtri(0.975)) + float(sp.ndtri(0.9))) ** 2
    normal_n = z * (f_c + f_i) / 0.09
    # the exact t solution (Satterthwaite df on about 24 peer workers) lies a little above
    assert normal_n < res.n_exact < normal_n * 1.05
    # the old, wrong factor (1 - r^2)(1 + (m - 1) rho) gives fewer
    wrong = z * (f_c + (1 - r**2) * (1 + (m - 1) * icc)) / 0.09
    assert res.n_exact > wrong


def test_partial_baseline_cannot_exceed_individual_variance():
    with pytest.raises(InputError, match="individual-level variance"):
        means(d=0.3, power=0.8, clustering="partial", icc=0.3, cluster_size=8,
              baseline_corr=0.9, control_variance="total")


def _simulate_partial(d, n_c, workers, m, icc, r, convention, reps, seed):
    """Power of the planned analysis, simulated plainly.

    Outcome = d X + u_j X + r z + e, z the standardised baseline; the control arm's
    variance is 1 (within) or the intervention total is 1 (total).  Analysis as planned
    with equal caseloads: the baseline slope from the pooled within-arm regression, then a
    Welch (Satterthwaite) t test of the peer workers' adjusted caseload means against the
    adjusted control outcomes -- the heteroscedastic partially nested model's estimate and
    df when caseloads are equal (Roberts & Roberts 2005).
    """
    from scipy import stats

    rng = np.random.default_rng(seed)
    if convention == "within":
        tau2, s2_i = icc / (1 - icc), 1.0
    else:
        tau2, s2_i = icc, 1.0 - icc
    n_i = workers * m
    rej = 0
    for _ in range(reps):
        zc = rng.standard_normal(n_c)
        zi = rng.standard_normal(n_i)
        yc = r * zc + rng.standard_normal(n_c) * np.sqrt(1 - r**2)
        u = np.repeat(rng.standard_normal(workers) * np.sqrt(tau2), m)
        yi = d + u + r * zi + rng.standard_normal(n_i) * np.sqrt(s2_i - r**2)
        # pooled within-group slope (caseload fixed effects; the control arm one group)
        zi_c = zi - np.repeat(zi.reshape(workers, m).mean(1), m)
        yi_c = yi - np.repeat(yi.reshape(workers, m).mean(1), m)
        zc_c, yc_c = zc - zc.mean(), yc - yc.mean()
        beta = (zi_c @ yi_c + zc_c @ yc_c) / (zi_c @ zi_c + zc_c @ zc_c)
        adj_i = (yi - beta * zi).reshape(workers, m).mean(1)
        adj_c = yc - beta * zc
        p = stats.ttest_ind(adj_i, adj_c, equal_var=False).pvalue
        rej += p < 0.05
    return rej / reps


@pytest.mark.parametrize("convention, icc, m, r, n", [
    ("within", 0.10, 6, 0.6, 90),
    ("total", 0.08, 8, 0.5, 96),
])
def test_partial_with_baseline_matches_simulation(convention, icc, m, r, n):
    reps = 1500
    planned = means(d=0.45, n=n, clustering="partial", icc=icc, cluster_size=m,
                    baseline_corr=r, control_variance=convention)
    sim = _simulate_partial(0.45, n, n // m, m, icc, r, convention, reps, seed=13)
    mc_se = np.sqrt(sim * (1 - sim) / reps)
    assert abs(sim - planned.power) < 4 * mc_se + 0.01
    # the old factor (1 - r^2) on the whole intervention variance overstates power
    de_i = planned.design_effect["intervention"]
    old = np.sqrt((1 - r**2) / n + (1 - r**2) * de_i / n)
    assert float(sp.ndtr(0.45 / old - 1.96)) > sim + 2 * mc_se


@pytest.mark.slow
def test_partial_nesting_matches_statsmodels_mixed_model():
    """Random intercept for peer worker in the intervention arm only (MixedLM), baseline
    covariate, residual variance common to both arms (the within convention)."""
    import warnings

    import statsmodels.api as sm
    from statsmodels.regression.mixed_linear_model import VCSpec

    d, n_c, workers, m, icc, r = 0.45, 80, 10, 8, 0.10, 0.5
    planned = means(d=d, n=n_c, clustering="partial", icc=icc, cluster_size=m, baseline_corr=r)
    rng = np.random.default_rng(2013)
    reps = 400
    tau2 = icc / (1 - icc)
    n_i = workers * m
    treat = np.r_[np.zeros(n_c), np.ones(n_i)]
    worker = np.r_[np.full(n_c, -1), np.repeat(np.arange(workers), m)]
    # one variance component: peer-worker indicators, all zero for controls (one group holds
    # everyone, so no control "cluster" shares a random effect)
    vc = VCSpec(["peer_worker"], [["all"]],
                [[np.column_stack([(worker == k).astype(float) for k in range(workers)])]])
    rej = 0
    for _ in range(reps):
        z = rng.standard_normal(n_c + n_i)
        u = np.r_[np.zeros(n_c), np.repeat(rng.standard_normal(workers) * np.sqrt(tau2), m)]
        y = d * treat + u + r * z + rng.standard_normal(n_c + n_i) * np.sqrt(1 - r**2)
        exog = np.column_stack([np.ones_like(y), treat, z])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.MixedLM(y, exog, np.zeros_like(y), exog_vc=vc).fit(reml=True)
        t = fit.fe_params[1] / fit.bse_fe[1]
        # the plan's Satterthwaite df for the t reference
        df = _satt(planned.design_effect["intervention"] - r**2, n_c, m, 1 - r**2, 1)
        rej += abs(t) > float(sp.stdtrit(df, 0.975))
    sim = rej / reps
    mc_se = np.sqrt(sim * (1 - sim) / reps)
    assert abs(sim - planned.power) < 4 * mc_se + 0.01


# ---- repeated follow-ups ---------------------------------------------------------------------

@pytest.mark.parametrize("r, rho, n_per_group", [
    # R: u <- list(u1=rep(1,r), u2=rep(0,r)); v <- list(v1=rep(1,r), v2=rep(1,r))
    #    longpower::liu.liang.linear.power(delta=.4, u=u, v=v, sigma2=1, R=rho, power=.8)$n[1]
    (2, 0.3, 63.77214784),
    (2, 0.6, 78.48879734),
    (3, 0.3, 52.3258649),
    (4, 0.6, 68.67769768),
])
def test_mean_of_follow_ups_matches_longpower(r, rho, n_per_group):
    mult = frison_pocock_multiplier(0.0, 0, r, rho)
    assert 2 * Z80 * mult / 0.16 == pytest.approx(n_per_group, rel=1e-8)
    # the t-based n sits just above longpower's normal-approximation n
    res = means(d=0.4, power=0.8, follow_ups=r, follow_up_corr=rho)
    assert n_per_group < res.n_exact < n_per_group + 1.5


@pytest.mark.parametrize("r, rho, n_per_group", [
    # R: tt <- c(0, rep(1, r)); u <- list(u1=tt, u2=rep(0, r+1))
    #    v <- list(v1=cbind(1, tt), v2=cbind(1, tt))
    #    longpower::liu.liang.linear.power(delta=.4, u=u, v=v, sigma2=1, R=rho, power=.8)$n[1]
    (1, 0.5, 73.58324751),
    (2, 0.6, 43.16883854),
    (3, 0.5, 40.87958195),
])
def test_baseline_and_follow_ups_match_longpower_constrained_baseline(r, rho, n_per_group):
    mult = frison_pocock_multiplier(rho, 1, r)
    assert 2 * Z80 * mult / 0.16 == pytest.approx(n_per_group, rel=1e-8)


@pytest.mark.parametrize("kwargs, message", [
    ({"follow_ups": 3}, "need follow_up_corr"),
    ({"baselines": 1}, "baseline_corr is not given"),
    ({"baselines": -1, "baseline_corr": 0.5}, "baselines must be a whole number of at least 0"),
    ({"baselines": 0, "baseline_corr": 0.5}, "baselines is 0"),
    ({"follow_up_corr": 0.5}, "follow_up_corr was given"),
    ({"follow_ups": 0}, "follow_ups must be a whole number of at least 1"),
    ({"baselines": 2, "baseline_corr": 0.5}, "need follow_up_corr"),
    ({"baseline_corr": 0.9, "follow_ups": 2, "follow_up_corr": 0.1}, "not positive"),
])
def test_repeated_measures_validation(kwargs, message):
    with pytest.raises(InputError, match=message):
        means(d=0.4, power=0.8, **kwargs)


def test_no_baseline_loses_no_df():
    assert means(d=0.5, n=30, baselines=0).power == means(d=0.5, n=30).power


# ---- caseload allocated vs analysed ----------------------------------------------------------

def test_caseload_is_allocated_and_design_effect_uses_analysed():
    att = 0.2
    r = means(d=0.3, power=0.8, clustering="partial", icc=0.05, cluster_size=10,
              attrition=att, control_variance="total")
    # design effect on the analysed caseload 10 x 0.8 = 8
    assert r.design_effect["intervention"] == pytest.approx(1 + 7 * 0.05)
    # peer workers cover everyone allocated to the intervention arm
    assert r.peer_workers == int(np.ceil(r.n_per_arm["intervention"] / 10))
    assert r.peer_workers > np.ceil(r.n_analysed_per_arm["intervention"] / 10) - 1


def test_cluster_counts_from_recruited_and_analysed_per_cluster():
    r = means(d=0.3, power=0.8, clustering="cluster", icc=0.05, cluster_size=20, attrition=0.2)
    k = r.clusters_per_arm["control"]
    assert r.n_per_arm["control"] == k * 20
    assert r.n_analysed_per_arm["control"] == k * 16
    assert r.design_effect["control"] == pytest.approx(1 + 15 * 0.05)
    # CRTSize with the analysed cluster size: ceiling of its (approximate t) clusters per arm
    # R: CRTSize::n4means(delta=.3, sigma=1, m=16, ICC=.05)$n  20.08964778 -> 21 per arm
    assert k == 21


# ---- cluster trials: baseline (Teerenstra) and few clusters ----------------------------------

def test_teerenstra_design_effect():
    m, icc, rho_c, rho_i = 20, 0.05, 0.8, 0.5
    r = means(d=0.4, power=0.8, clustering="cluster", icc=icc, cluster_size=m,
              cluster_autocorr=rho_c, individual_autocorr=rho_i)
    de = 1 + (m - 1) * icc
    corr = (m * icc * rho_c + (1 - icc) * rho_i) / de
    assert any(f"{de * (1 - corr**2):.3g}" in note for note in r.notes)
    cross = means(d=0.4, power=0.8, clustering="cluster", icc=icc, cluster_size=m,
                  cluster_autocorr=rho_c)
    plain = means(d=0.4, power=0.8, clustering="cluster", icc=icc, cluster_size=m)
    # cohort < cross-sectional < no adjustment
    assert r.n_total <= cross.n_total <= plain.n_total


def test_teerenstra_matches_simulated_cluster_level_ancova():
    """r is the correlation of a cluster's baseline and follow-up means; the ANCOVA
    variance factor is DE (1 - r^2).  Simulate cluster means and check both."""
    rng = np.random.default_rng(7)
    k, m, icc, rho_c, rho_i = 20000, 10, 0.1, 0.7, 0.4
    cov_b = np.array([[1, rho_c], [rho_c, 1]]) * icc
    cov_w = np.array([[1, rho_i], [rho_i, 1]]) * (1 - icc)
    b = rng.multivariate_normal([0, 0], cov_b, size=k)
    w = rng.multivariate_normal([0, 0], cov_w, size=(k, m)).mean(axis=1)
    means_ = b + w
    r_sim = np.corrcoef(means_.T)[0, 1]
    de = 1 + (m - 1) * icc
    r_formula = (m * icc * rho_c + (1 - icc) * rho_i) / de
    assert teerenstra_correlation(m, icc, rho_c, rho_i) == pytest.approx(r_formula)
    assert r_sim == pytest.approx(r_formula, abs=4 / np.sqrt(k))
    resid = means_[:, 1] - np.polyfit(means_[:, 0], means_[:, 1], 1)[0] * means_[:, 0]
    assert resid.var() * m == pytest.approx(de * (1 - r_formula**2), rel=0.03)


def test_few_clusters_warns_and_uses_cluster_df():
    r = means(d=0.5, power=0.8, clustering="cluster", icc=0.05, cluster_size=15)
    k = r.clusters_per_arm["control"]
    assert k < 20
    assert any("Few clusters" in note and "Leyrat" in note for note in r.notes)
    many = means(d=0.2, power=0.8, clustering="cluster", icc=0.01, cluster_size=15)
    assert not any("Few clusters" in note for note in many.notes)


@pytest.mark.parametrize("kwargs, message", [
    ({"clustering": "cluster", "icc": 0.05, "cluster_size": 10, "baseline_corr": 0.5},
     "cluster_autocorr"),
    ({"cluster_autocorr": 0.5}, "apply to cluster-randomised"),
    ({"clustering": "cluster", "icc": 0.05, "cluster_size": 10, "individual_autocorr": 0.5},
     "needs cluster_autocorr"),
    ({"control_variance": "both"}, "control_variance must be one of within, total"),
])
def test_cluster_baseline_validation(kwargs, message):
    with pytest.raises(InputError, match=message):
        means(d=0.4, power=0.8, **kwargs)


def test_proportions_partial_icc_on_total_scale():
    r = proportions(p1=0.4, p2=0.3, power=0.8, clustering="partial", icc=0.05,
                    cluster_size=9)
    assert r.design_effect["intervention"] == pytest.approx(1 + 8 * 0.05)


# ---- survival: rpact's exponential dropout beside the attrition convention -------------------

@pytest.mark.parametrize("kw, events, subjects", [
    # R: rpact::getSampleSizeSurvival(hazardRatio=.7, alpha=.025, sided=1, beta=.2,
    #      lambda2=log(2)/12, accrualTime=c(0,12), followUpTime=12)
    #    maxNumberOfEvents 246.7871045, maxNumberOfSubjects 428.5962121
    (dict(hr=0.7, power=0.8, control_median=12, accrual=12, follow_up=12),
     246.7871045, 428.5962121),
    # ... the same with dropoutRate1=.1, dropoutRate2=.1, dropoutTime=12
    #    maxNumberOfEvents 246.7871045, maxNumberOfSubjects 458.3503975
    (dict(hr=0.7, power=0.8, control_median=12, accrual=12, follow_up=12, dropout_rate=0.1,
          dropout_time=12), 246.7871045, 458.3503975),
    # R: getSampleSizeSurvival(hazardRatio=.75, alpha=.025, sided=1, beta=.1,
    #      lambda2=log(2)/18, accrualTime=c(0,18), followUpTime=6, dropoutRate1=.15,
    #      dropoutRate2=.15, dropoutTime=12)
    #    maxNumberOfEvents 507.8443354, maxNumberOfSubjects 1450.805422
    (dict(hr=0.75, power=0.9, control_median=18, accrual=18, follow_up=6, dropout_rate=0.15,
          dropout_time=12), 507.8443354, 1450.805422),
])
def test_survival_dropout_matches_rpact(kw, events, subjects):
    from trialplan.stats import survival

    r = survival(**kw, sided="one", alternative="less", alpha=0.025)
    assert r.events == int(np.ceil(events))
    assert 2 * r.n_exact == pytest.approx(subjects, rel=1e-8)


def test_survival_attrition_convention_is_more_conservative_than_rpact_dropout():
    from trialplan.stats import survival

    base = dict(hr=0.7, power=0.8, control_median=12, accrual=12, follow_up=12)
    rpact = survival(**base, dropout_rate=0.1, dropout_time=12)
    divided = survival(**base, attrition=0.1)
    assert divided.n_total > rpact.n_total
    with pytest.raises(InputError, match="attrition or dropout_rate"):
        survival(**base, attrition=0.1, dropout_rate=0.1, dropout_time=12)
    with pytest.raises(InputError, match="go together"):
        survival(**base, dropout_rate=0.1)
