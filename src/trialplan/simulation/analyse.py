"""Analyse one dataset as the statistical analysis plan specifies, with statsmodels.

:func:`analyse` returns one :class:`Estimate` per estimand: the primary
outcome's effect and, for each mechanism, the indirect effect a x b (tested
by the plan's test) and its two paths.  A model that fails to fit or to
converge gives an estimate marked ``converged=False`` (and does not reject):
the caller counts it, never drops it.

Models are fitted on numpy arrays (no formula parsing) so the per-replicate
cost is that of the statsmodels fit itself; the generated script
(:mod:`trialplan.simulation.script`) fits the same models from formulas and a
test checks the two agree.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

from trialplan.simulation.spec import MechanismAnalysis, SimulationSpec
from trialplan.stats import _special as sp
from trialplan.stats import glmm

#: Draws for the Monte Carlo confidence interval of a x b (Preacher & Selig 2012).
MC_DRAWS = 2000


class Estimate(NamedTuple):
    """One estimand's estimate in one dataset."""

    estimate: float
    se: float
    lower: float
    upper: float
    p: float
    reject: bool
    converged: bool
    df: float | None = None  # of the t reference; None: normal
    fallback: bool = False  # the SAP's fallback analysis was used (see primary())


_FAILED = Estimate(math.nan, math.nan, math.nan, math.nan, math.nan, False, False)


def estimand_names(spec: SimulationSpec) -> list[str]:
    """The estimands of a spec, in report order."""
    names = [f"primary: {spec.primary.outcome}"]
    for m in spec.mechanisms:
        names += [f"{m.key}: indirect a x b", f"{m.key}: path a", f"{m.key}: path b"]
    return names


def _wald(est, se, alpha, df=None) -> Estimate:
    if not (math.isfinite(est) and math.isfinite(se) and se > 0):
        return _FAILED
    if df is None:
        crit = float(sp.ndtri(1.0 - alpha / 2.0))
        p = 2.0 * float(sp.ndtr(-abs(est) / se))
    else:
        crit = float(sp.stdtrit(df, 1.0 - alpha / 2.0))
        p = 2.0 * float(sp.stdtr(df, -abs(est) / se))
    return Estimate(est, se, est - crit * se, est + crit * se, p, p < alpha, True, df)


def _complete(data: dict, cols) -> np.ndarray:
    mask = np.ones(len(data["arm"]), dtype=bool)
    for c in cols:
        mask &= ~np.isnan(data[c])
    return mask


def _design(data, mask, cols, intercept=True, arm=True) -> np.ndarray:
    parts = ([np.ones(int(mask.sum()))] if intercept else []) + (
        [data["arm"][mask].astype(float)] if arm else [])
    parts += [data[c][mask] for c in cols]
    return np.column_stack(parts)


def _singleton_groups(data, mask) -> np.ndarray:
    """Cluster labels with each unclustered participant a cluster of one."""
    cl = data["cluster"][mask]
    return np.where(cl > 0, cl, -data["id"][mask])


def primary(spec: SimulationSpec, data: dict) -> Estimate:
    """The primary analysis: the allocation coefficient of the planned model."""
    import statsmodels.api as sm

    pa = spec.primary
    mask = _complete(data, (pa.outcome,) + pa.covariates)
    y = data[pa.outcome][mask]
    x = _design(data, mask, pa.covariates)
    if pa.type == "binary" and _separated(y, data["arm"][mask]):
        return _FAILED
    if pa.model == "ols":
        r = sm.OLS(y, x).fit()
        return _wald(float(r.params[1]), float(r.bse[1]), pa.alpha, df=float(r.df_resid))
    if pa.model == "logit":
        r = sm.Logit(y, x).fit(disp=0)
        ok = bool(r.mle_retvals["converged"])
        est = _wald(float(r.params[1]), float(r.bse[1]), pa.alpha)
        return est if ok else est._replace(reject=False, converged=False)
    if pa.model == "glmm":
        return _glmm_primary(y, x, _singleton_groups(data, mask), pa.alpha)
    if pa.model == "gee-exchangeable":
        groups = data["cluster"][mask]
        return _marginal_gee(y, x, groups, pa.alpha, exchangeable=True,
                             df=float(len(np.unique(groups)) - 2))
    if pa.model == "cluster-level":
        return _cluster_level(data, mask, y, x, pa.alpha)
    if pa.model in ("lmm-heteroscedastic", "lmm-cluster"):
        return _linear_mixed(pa, data, mask, y, x)
    raise NotImplementedError(f"primary model {pa.model!r} has no analysis")


def _linear_mixed(pa, data: dict, mask, y, x) -> Estimate:
    """REML linear mixed model, t test of allocation on Kenward-Roger df (stats.lmm).

    Heteroscedastic partially nested: the random intercept applies to the intervention
    arm's caseloads only (control participants are independent) and each arm has its own
    residual variance.  Cluster randomised: a random intercept for every cluster.
    """
    from trialplan.stats.lmm import fit_reml, kenward_roger

    arm = data["arm"][mask]
    if pa.model == "lmm-heteroscedastic":
        fit = fit_reml(y, x, data["cluster"][mask], random=arm == 1, group=arm)
    else:
        fit = fit_reml(y, x, data["cluster"][mask])
    if not fit.converged:
        return _FAILED
    kr = kenward_roger(fit, _coefficient(x.shape[1], 1))
    return _wald(kr.estimate, kr.se, pa.alpha, df=kr.df)


def _coefficient(p: int, j: int) -> np.ndarray:
    out = np.zeros(p)
    out[j] = 1.0
    return out


def _cluster_level(data: dict, mask, y, x, alpha: float) -> Estimate:
    """Two-stage cluster-level analysis (Hayes & Moulton 2017): residuals of a regression on
    the covariates without allocation, averaged per cluster, then a two-sample t test of the
    cluster means on (clusters - 2) df."""
    covariates = np.delete(x, 1, axis=1)
    coef, *_ = np.linalg.lstsq(covariates, y, rcond=None)
    resid = y - covariates @ coef
    _, inverse = np.unique(data["cluster"][mask], return_inverse=True)
    size = np.bincount(inverse)
    means = np.bincount(inverse, weights=resid) / size
    treated = np.bincount(inverse, weights=data["arm"][mask]) / size > 0.5
    k1, k0 = int(treated.sum()), int((~treated).sum())
    if k1 < 2 or k0 < 2:
        return _FAILED
    pooled = (((k1 - 1) * np.var(means[treated], ddof=1)
               + (k0 - 1) * np.var(means[~treated], ddof=1)) / (k1 + k0 - 2))
    se = math.sqrt(pooled * (1.0 / k1 + 1.0 / k0))
    return _wald(float(means[treated].mean() - means[~treated].mean()), se, alpha,
                 df=float(k1 + k0 - 2))


def _marginal_gee(y, x, groups, alpha, *, exchangeable: bool, df=None) -> Estimate:
    """Logistic GEE with the Mancl-DeRouen bias-reduced sandwich; the marginal log odds
    ratio by standardisation over the covariates (delta method), t on ``df`` or normal."""
    import statsmodels.api as sm

    structure = sm.cov_struct.Exchangeable() if exchangeable else sm.cov_struct.Independence()
    r = sm.GEE(y, x, groups=groups, family=sm.families.Binomial(),
               cov_struct=structure).fit(cov_type="bias_reduced")
    me = glmm.marginal_effect(x, 1, r.params, r.cov_params())
    est = _wald(me.log_odds_ratio, me.log_odds_ratio_se, alpha, df)
    return est if bool(r.converged) else est._replace(reject=False, converged=False)


def _glmm_primary(y, x, groups, alpha) -> Estimate:
    """The SAP's analysis of a binary outcome under partial nesting.

    A random-intercept logistic model (caseloads and control participants,
    clusters of one, sharing one random-intercept distribution) tested by a
    likelihood-ratio test; the estimate is the marginal log odds ratio by
    standardisation over the covariates and the random intercept, with a
    delta-method interval.  The SAP's rule: if the model does not converge or
    estimates a zero random-intercept variance, the independence GEE with the
    bias-reduced sandwich is the analysis (``fallback=True``, counted by the run).
    """
    full = glmm.fit_random_intercept_logistic(y, x, groups)
    lrt = (glmm.likelihood_ratio_test(y, x, groups, 1, full=full)
           if full.converged and not full.boundary else None)
    if lrt is None or not lrt.converged:
        return _safe(_marginal_gee, y, x, groups, alpha, exchangeable=False)._replace(
            fallback=True)
    me = glmm.marginal_effect(x, 1, full.params, full.cov_full, sigma=full.sigma)
    est = _wald(me.log_odds_ratio, me.log_odds_ratio_se, alpha)
    return est._replace(p=lrt.p, reject=lrt.p < alpha) if est.converged else est


def _separated(y: np.ndarray, arm: np.ndarray) -> bool:
    """An arm with no events or only events: the log odds ratio is infinite."""
    for a in (0, 1):
        rate = y[arm == a].mean() if np.any(arm == a) else 0.0
        if rate in (0.0, 1.0):
            return True
    return False


def _residualise(data, mask, y, covariates):
    """y minus its covariates' contribution (OLS on allocation and covariates)."""
    import statsmodels.api as sm

    if not covariates:
        return y
    x = _design(data, mask, covariates)
    r = sm.OLS(y, x).fit()
    return y - x[:, 2:] @ r.params[2:]


def path_a(m: MechanismAnalysis, spec: SimulationSpec, data: dict) -> Estimate:
    """Effect of allocation on the process variable."""
    import statsmodels.api as sm

    mask = _complete(data, (m.mediator,) + m.a_covariates + m.a_requires)
    y = data[m.mediator][mask]
    if m.a_model == "ols":
        r = sm.OLS(y, _design(data, mask, m.a_covariates)).fit()
        return _wald(float(r.params[1]), float(r.bse[1]), m.alpha, df=float(r.df_resid))
    # Cluster-level summary: the mean of the caseload means against the control mean, with
    # Welch-Satterthwaite df (as trialplan.stats._medsim_pn and the analytic partially nested
    # test assume).
    y = _residualise(data, mask, y, m.a_covariates)
    cl = data["cluster"][mask]
    treated = cl > 0
    labels, inverse = np.unique(cl[treated], return_inverse=True)
    means = np.bincount(inverse, weights=y[treated]) / np.bincount(inverse)
    control = y[~treated]
    j, n_c = len(labels), len(control)
    if j < 2 or n_c < 2:
        return _FAILED
    var_t = float(np.var(means, ddof=1)) / j
    var_c = float(np.var(control, ddof=1)) / n_c
    df = (var_t + var_c) ** 2 / (var_t**2 / (j - 1) + var_c**2 / (n_c - 1))
    return _wald(float(means.mean() - control.mean()), math.sqrt(var_t + var_c), m.alpha, df=df)


def _fixed_effects(groups: np.ndarray) -> np.ndarray:
    _, inverse = np.unique(groups, return_inverse=True)
    out = np.zeros((len(groups), int(inverse.max()) + 1))
    out[np.arange(len(groups)), inverse] = 1.0
    return out


def path_b(m: MechanismAnalysis, spec: SimulationSpec, data: dict) -> Estimate:
    """Effect of the process variable on the outcome, given allocation (and the covariates)."""
    import statsmodels.api as sm

    mask = _complete(data, (m.outcome_column, m.mediator) + m.b_covariates)
    y = data[m.outcome_column][mask]
    regressors = [data[m.mediator][mask]] + [data[c][mask] for c in m.b_covariates]
    if m.b_model in ("ols", "logit"):
        x = np.column_stack([np.ones(len(y)), data["arm"][mask].astype(float)] + regressors)
        col = 2
        if m.b_model == "ols":
            r = sm.OLS(y, x).fit()
            return _wald(float(r.params[col]), float(r.bse[col]), m.alpha, df=float(r.df_resid))
    else:
        # Within caseloads and the control arm: one fixed effect per caseload and one for the
        # control arm (cluster 0), which also absorb allocation.
        groups = data["cluster"][mask]
        if m.b_model == "within-logit":
            # A caseload whose outcomes are all 0 or all 1 carries no information on b and
            # would send its fixed effect to infinity: leave it out.
            keep = _informative(groups, y)
            y, groups = y[keep], groups[keep]
            regressors = [r_[keep] for r_ in regressors]
        x = np.column_stack(regressors + [_fixed_effects(groups)])
        col = 0
        if m.b_model == "within-ols":
            r = sm.OLS(y, x).fit()
            return _wald(float(r.params[col]), float(r.bse[col]), m.alpha, df=float(r.df_resid))
    r = sm.Logit(y, x).fit(disp=0)
    est = _wald(float(r.params[col]), float(r.bse[col]), m.alpha)
    return est if bool(r.mle_retvals["converged"]) else est._replace(reject=False,
                                                                     converged=False)


def _informative(groups: np.ndarray, y: np.ndarray) -> np.ndarray:
    _, inverse = np.unique(groups, return_inverse=True)
    events = np.bincount(inverse, weights=y)
    sizes = np.bincount(inverse)
    ok = (events > 0) & (events < sizes)
    return ok[inverse]


def indirect(m: MechanismAnalysis, a: Estimate, b: Estimate,
             rng: np.random.Generator) -> Estimate:
    """a x b with its Monte Carlo interval; rejects by the plan's test."""
    if not (a.converged and b.converged):
        return _FAILED
    ab = a.estimate * b.estimate
    # a from J caseload means has a t reference: draw it from t, or the interval is too
    # narrow when peer workers are few.
    za = rng.standard_t(a.df, MC_DRAWS) if a.df is not None else rng.standard_normal(MC_DRAWS)
    zb = rng.standard_normal(MC_DRAWS)
    draws = (a.estimate + a.se * za) * (b.estimate + b.se * zb)
    lower, upper = (float(q) for q in np.quantile(draws, [m.alpha / 2.0, 1.0 - m.alpha / 2.0]))
    var = a.estimate**2 * b.se**2 + b.estimate**2 * a.se**2
    if m.test == "aroian":
        var += a.se**2 * b.se**2
    se = math.sqrt(var)
    p = 2.0 * float(sp.ndtr(-abs(ab) / se)) if se > 0 else math.nan
    if m.test == "joint":
        reject = a.reject and b.reject
        p = max(a.p, b.p)
    elif m.test == "mc":
        reject = lower > 0 or upper < 0
    else:
        reject = p < m.alpha
    return Estimate(ab, se, lower, upper, p, bool(reject), True)


def _safe(fn, *args, **kwargs) -> Estimate:
    """Fit, turning a numerical failure into a counted non-convergence."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    except (np.linalg.LinAlgError, ValueError, ZeroDivisionError, FloatingPointError):
        return _FAILED
    except Exception as exc:  # statsmodels' PerfectSeparationError and kin
        if type(exc).__module__.startswith("statsmodels"):
            return _FAILED
        raise


def analyse(spec: SimulationSpec, data: dict, rng: np.random.Generator) -> list[Estimate]:
    """Every estimand's estimate in one dataset, in :func:`estimand_names` order."""
    out = [_safe(primary, spec, data)]
    for m in spec.mechanisms:
        a = _safe(path_a, m, spec, data)
        b = _safe(path_b, m, spec, data)
        out += [indirect(m, a, b, rng), a, b]
    return out
