"""The planned primary analysis of a binary outcome, as the SAP (planning.analysis) specifies it.

- Partial nesting: random-intercept logistic model (lme4-equivalent fitter,
  validated in tests/stats/test_glmm.py), likelihood-ratio test, standardised
  marginal log OR; the SAP's GEE fallback when the model fails or estimates a
  zero random-intercept variance, counted by the run.
- Cluster randomised: logistic GEE, exchangeable working correlation,
  Mancl-DeRouen bias-reduced sandwich, t on (clusters - 2) df.

The generated analysis script must give the same numbers as the in-process
analysis on the same data, on both branches of the SAP's rule.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from trialplan.cli.simulate import summary
from trialplan.model.checks import example_text, load_trial_text
from trialplan.planning import build_plan
from trialplan.simulation import analyse as an
from trialplan.simulation.dummy import dummy_dataset, to_csv
from trialplan.simulation.executor import chunk_seed
from trialplan.simulation.generate import generate
from trialplan.simulation.run import _rows, chunk_task
from trialplan.simulation.script import analysis_script
from trialplan.simulation.spec import build_spec
from trialplan.stats import glmm

GEE_DATA = Path(__file__).resolve().parents[1] / "stats" / "data" / "glmm_cluster.csv"


@pytest.fixture(scope="module")
def partial():
    trial = load_trial_text(example_text(), "example.yaml")
    return trial, build_plan(trial)


@pytest.fixture(scope="module")
def cluster():
    trial = load_trial_text(example_text().replace("kind: partial ", "kind: cluster "),
                            "cluster.yaml")
    return trial, build_plan(trial)


def _script_primary(spec, data, tmp_path):
    import pandas as pd

    path = tmp_path / "analysis_mod.py"
    path.write_text(analysis_script(spec, title="t", source="t.yaml"))
    mod_spec = importlib.util.spec_from_file_location(f"analysis_{id(spec)}", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    (tmp_path / "d.csv").write_text(to_csv(data))
    return mod.primary(pd.read_csv(tmp_path / "d.csv"))


def _agree(est, ref):
    for key in ("estimate", "se", "lower", "upper", "p"):
        assert getattr(est, key) == pytest.approx(ref[key], rel=1e-6, abs=1e-12), key


def test_partial_nesting_fits_the_sap_model(partial):
    trial, plan = partial
    spec = build_spec(trial, plan, {"n": 400})
    assert (spec.primary.planned, spec.primary.model) == ("glmm-logistic", "glmm")
    assert not any("instead" in n for n in spec.notes)  # fitted as the SAP plans it


@pytest.mark.parametrize("fallback", [False, True])
def test_partial_nesting_script_agrees_on_both_branches_of_the_sap_rule(partial, tmp_path,
                                                                        fallback):
    # With no peer-worker variance (icc 0) the mixed model often estimates sigma = 0 and the
    # SAP's GEE fallback is the analysis: take the first dummy dataset on each branch.
    trial, plan = partial
    spec = build_spec(trial, plan, {"n": 400, "icc": 0})
    for seed in range(30):
        data, _ = dummy_dataset(spec, seed)
        est = an.primary(spec, data)
        if est.fallback == fallback:
            break
    assert est.converged and est.fallback == fallback
    ref = _script_primary(spec, data, tmp_path)
    assert ref["fallback"] == fallback
    _agree(est, ref)


def test_glmm_primary_is_the_lrt_and_the_standardised_marginal_log_or(partial):
    trial, plan = partial
    spec = build_spec(trial, plan, {"n": 400})
    for seed in range(30):  # the first dataset the mixed model analyses (no fallback)
        data, _ = dummy_dataset(spec, seed)
        est = an.primary(spec, data)
        if not est.fallback:
            break
    assert est.converged and not est.fallback
    mask = ~np.isnan(data[spec.primary.outcome])
    y = data[spec.primary.outcome][mask]
    x = np.column_stack([np.ones(len(y)), data["arm"][mask]])
    groups = np.where(data["cluster"][mask] > 0, data["cluster"][mask], -data["id"][mask])
    full = glmm.fit_random_intercept_logistic(y, x, groups)
    lrt = glmm.likelihood_ratio_test(y, x, groups, 1, full=full)
    assert est.p == pytest.approx(lrt.p, rel=1e-12)
    assert est.reject == (lrt.p < spec.primary.alpha)
    # The marginal log OR, not the conditional coefficient (larger in absolute value).
    me = glmm.marginal_effect(x, 1, full.params, full.cov_full, sigma=full.sigma)
    assert est.estimate == pytest.approx(me.log_odds_ratio, rel=1e-12)
    assert abs(est.estimate) < abs(full.params[1])
    # No covariates: the standardised control risk is the observed control proportion.
    assert me.risk_control == pytest.approx(y[x[:, 1] == 0].mean(), abs=2e-4)


def test_cluster_randomised_is_exchangeable_gee_with_t_on_clusters_minus_2(cluster, tmp_path):
    trial, plan = cluster
    spec = build_spec(trial, plan, {"n": 400})
    assert (spec.primary.planned, spec.primary.model) == ("gee-logistic", "gee-exchangeable")
    data, _ = dummy_dataset(spec, 7)
    est = an.primary(spec, data)
    assert est.converged and not est.fallback
    assert est.df == spec.clusters_control + spec.clusters_intervention - 2
    _agree(est, _script_primary(spec, data, tmp_path))


def test_fallback_is_counted_and_reported(partial):
    trial, plan = partial
    spec = build_spec(trial, plan, {"n": 120, "icc": 0})
    stats = chunk_task((spec, 6, 6), 0, chunk_seed(5, 0))
    assert 0 < stats[0][7] <= stats[0][0] == 6  # fallback replicates of the primary
    assert all(row[7] == 0 for row in stats[1:])  # the mechanisms have no fallback
    analytic = [None] * len(stats)
    rows = _rows(spec, stats, analytic, False)
    assert rows[0]["fallback"] == stats[0][7]
    assert all(r["fallback"] is None for r in rows[1:])
    result = {"settings": {"reps": 6, "seed": 5, "chunk_size": 6, "missing": "mcar"},
              "trial": {"acronym": "T", "title": "T"}, "flags": [],
              "scenarios": [{"label": spec.label, "estimands": rows}]}
    assert (f"the SAP's fallback (GEE, the mixed model not converging or estimating a zero "
            f"random-intercept variance) was the analysis in {stats[0][7]} of 6 replicates"
            in " ".join(summary(result).split()))


# --------------------------------------------------------------------------------------------
# statsmodels' exchangeable GEE and its bias-reduced sandwich


def _gee_fit(cov_type):
    import statsmodels.api as sm

    y, arm, x, cl = np.loadtxt(GEE_DATA, delimiter=",", skiprows=1).T
    exog = np.column_stack([np.ones_like(y), arm, x])
    model = sm.GEE(y, exog, groups=cl, family=sm.families.Binomial(),
                   cov_struct=sm.cov_struct.Exchangeable())
    return model, model.fit(cov_type=cov_type), y, exog, cl


def test_exchangeable_gee_matches_geepack():
    # R: d <- read.csv("tests/stats/data/glmm_cluster.csv")
    #    g <- geepack::geeglm(y ~ arm + x, id = cl, data = d, family = binomial,
    #                         corstr = "exchangeable")
    #    coef(g) -> -0.6207666088 0.3175048107 0.1884309875
    #    summary(g)$coefficients[, "Std.err"] -> 0.16011194200 0.31340905387 0.09812189474
    #    summary(g)$corr -> alpha 0.08068784153
    # The moment estimators of alpha differ in their df: statsmodels divides the scale by
    # (N - p) and the sum over pairs by (pairs - p), geepack by N and by the pairs (at
    # statsmodels' estimates these give 0.0801 and 0.0807), so the estimates agree to about
    # 1e-3, not to rounding.
    model, fit, *_ = _gee_fit("robust")
    np.testing.assert_allclose(fit.params, [-0.6207666088, 0.3175048107, 0.1884309875],
                               atol=1e-3)
    np.testing.assert_allclose(fit.bse, [0.16011194200, 0.31340905387, 0.09812189474],
                               rtol=1e-3)
    assert model.cov_struct.dep_params == pytest.approx(0.08068784153, abs=1e-3)


def test_bias_reduced_sandwich_is_mancl_derouen():
    # Independent computation of Mancl & DeRouen (Biometrics 2001), eq. (6), at statsmodels'
    # estimates: V = B^-1 [sum D_i' V_i^-1 (I - H_i)^-1 r_i r_i' (I - H_i)^-T V_i^-1 D_i] B^-1,
    # H_i = D_i B^-1 D_i' V_i^-1 (the scale parameter cancels).
    model, fit, y, x, cl = _gee_fit("bias_reduced")
    alpha = float(model.cov_struct.dep_params)
    mu = 1 / (1 + np.exp(-x @ fit.params))
    parts = []
    for c in np.unique(cl):
        i = cl == c
        a = mu[i] * (1 - mu[i])
        d_i = x[i] * a[:, None]
        r = np.full((i.sum(), i.sum()), alpha) + (1 - alpha) * np.eye(i.sum())
        v_inv = np.linalg.inv(np.sqrt(a)[:, None] * r * np.sqrt(a)[None, :])
        parts.append((d_i, v_inv, y[i] - mu[i]))
    bread = sum(d.T @ v @ d for d, v, _ in parts)
    b_inv = np.linalg.inv(bread)
    meat = np.zeros_like(bread)
    for d, v, res in parts:
        h = d @ b_inv @ d.T @ v
        adj = np.linalg.solve(np.eye(len(res)) - h, res)
        s = d.T @ v @ adj
        meat += np.outer(s, s)
    np.testing.assert_allclose(fit.cov_params(), b_inv @ meat @ b_inv, rtol=1e-6)
    assert np.all(fit.bse > _gee_fit("robust")[1].bse)  # the correction inflates the SEs


@pytest.mark.slow
def test_sap_rule_type_i_error_is_alpha(partial):
    """The primary analysis alone (mixed model + LRT, or the GEE fallback) under the null, at
    the example's planned size: type I error within 4 MC SE of alpha (1,000 replicates, about
    a minute; 3,000 replicates run by hand on 26 November 2026 gave 0.050)."""
    trial, plan = partial
    spec = build_spec(trial, plan, null=True)
    rng = np.random.default_rng(20261126)
    reps, rejected, fallback = 1000, 0, 0
    for _ in range(reps):
        est = an.primary(spec, generate(spec, rng))
        assert est.converged
        rejected += est.reject
        fallback += est.fallback
    alpha = spec.primary.alpha
    assert abs(rejected / reps - alpha) < 4 * np.sqrt(alpha * (1 - alpha) / reps)
    assert 0 < fallback < reps / 2  # the rule is exercised, and the mixed model is the rule
