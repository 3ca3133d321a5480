"""Random-intercept logistic regression: maximum likelihood by adaptive Gauss-Hermite quadrature.

The model, for participant j in cluster i::

    logit P(Y_ij = 1 | u_i) = x_ij' beta + u_i,    u_i ~ N(0, sigma^2)

is the one ``lme4::glmer(y ~ x + (1 | cluster), family = binomial, nAGQ = K)``
fits.  It is the planned primary model for a binary outcome under partial
nesting, where every peer worker's caseload and every control participant (a
cluster of one) share one random-intercept distribution (Roberts, Batistatou
& Roberts, Stat Med 2016).  Clusters of one are the common case there, so
everything is vectorised over clusters with segment sums
(:func:`numpy.add.reduceat` on data sorted by cluster); there is no loop over
clusters in Python.

Algorithm
---------
- Each cluster's marginal likelihood ``L_i = int prod_j p_ij(u) phi(u; sigma) du``
  is approximated by adaptive Gauss-Hermite quadrature (Pinheiro & Bates, JCGS
  1995): the nodes are centred at the mode of the cluster's integrand and scaled
  by its curvature there, found by a few vectorised Newton steps.  With
  :data:`NAGQ` nodes the quadrature error is far below the sampling error for
  caseloads of the sizes peer-support trials have; ``lme4`` allows up to 25
  nodes for a scalar random effect and defaults to 1 (the Laplace
  approximation), which is known to be biased for binary outcomes in small
  clusters.
- The log-likelihood is maximised over ``(beta, log sigma)`` by Newton-Raphson
  with step halving.  Its gradient and Hessian are posterior expectations over
  each cluster's random intercept (Louis, JRSS B 1982), evaluated at the same
  quadrature nodes, so no finite differences are needed and the fit is
  deterministic.
- The boundary ``sigma = 0`` (ordinary logistic regression) is checked first:
  the derivative of the log-likelihood in ``sigma^2`` at 0 is
  ``sum_i [(sum_j (y_ij - p_ij))^2 - sum_j p_ij (1 - p_ij)] / 2``; when it is
  not positive the maximum is taken to be on the boundary and the fit reports
  ``sigma = 0`` (``lme4`` reports a singular fit).  An interior search that
  drifts below :data:`SIGMA_ZERO` is also reported on the boundary.
- The covariance of the fixed effects is the inverse of the observed
  information of ``(beta, log sigma)`` at the maximum, its ``beta`` block (what
  ``vcov()`` of a ``glmer`` fit with ``nAGQ > 1`` gives, from a numerical
  Hessian of the same quantities).  At the boundary it is that of the ordinary
  logistic regression.

Validated against ``lme4`` 1.1-31 in ``tests/stats/test_glmm.py`` (estimates,
standard errors, sigma, log-likelihood and likelihood-ratio statistics).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

#: Quadrature nodes per cluster (``nAGQ`` in ``lme4``).
NAGQ = 15
#: Fewest nodes accepted.  The Newton steps use the derivatives of the exact integrals,
#: evaluated at the nodes; with fewer nodes they are too inexact to find the maximum of the
#: quadrature's log-likelihood (and the Laplace approximation, ``nAGQ = 1``, is biased for
#: binary outcomes in small clusters; Pinheiro & Chao, JCGS 2006).
MIN_NAGQ = 5
#: A random-intercept SD below this is reported as zero (``lme4``'s singularity tolerance
#: on theta, ``isSingular(tol = 1e-4)``).
SIGMA_ZERO = 1e-4
#: Gauss-Hermite nodes for the marginal risks (expit integrated over N(0, sigma^2)).
MARGINAL_NODES = 40
_MAX_ITER = 100
_MAX_HALVINGS = 30
_TOL = 1e-9  # on the Newton decrement g' H^-1 g / 2 (a change in log-likelihood)
_SIGMA_START = 0.5
# Coefficients (or a random-intercept SD) beyond this on the logit scale mean separation:
# the MLE is infinite.
_SEPARATED = 25.0
_MAX_STEP = 2.0  # longest Newton step in any of (beta, log sigma)


@dataclass(frozen=True, eq=False)
class GlmmFit:
    """A fitted random-intercept logistic model.

    Attributes
    ----------
    params : ndarray
        Fixed effects beta, in the columns' order of the design matrix.
    cov : ndarray
        Their covariance (inverse observed information).
    sigma : float
        SD of the random intercept (0 on the boundary).
    loglik : float
        The maximised log-likelihood (as ``logLik()`` of the ``glmer`` fit).
    converged : bool
        False when the maximisation did not reach a maximum (too many
        iterations, non-finite values, separation or an information matrix
        that is not positive definite); the other fields are then not to be used.
    iterations : int
        Newton iterations.
    cov_full : ndarray or None
        Covariance of ``(beta, log sigma)``; None on the boundary (sigma = 0).
    nagq : int
        Quadrature nodes per cluster.
    """

    params: np.ndarray
    cov: np.ndarray
    sigma: float
    loglik: float
    converged: bool
    iterations: int
    cov_full: np.ndarray | None
    nagq: int

    @property
    def boundary(self) -> bool:
        """The random-intercept SD is estimated at zero (a singular fit)."""
        return self.sigma == 0.0

    @property
    def bse(self) -> np.ndarray:
        """Standard errors of the fixed effects."""
        return np.sqrt(np.diag(self.cov))


@dataclass(frozen=True)
class LikelihoodRatioTest:
    """A likelihood-ratio test of one fixed effect (chi-square, 1 df)."""

    statistic: float
    p: float
    full: GlmmFit
    reduced: GlmmFit

    @property
    def converged(self) -> bool:
        return self.full.converged and self.reduced.converged


@dataclass(frozen=True)
class MarginalEffect:
    """Risks standardised over the sample's covariates (and the random intercept).

    ``risk_control`` and ``risk_intervention`` are the mean predicted risks
    with the allocation column set to 0 and to 1 for everyone; the risk
    difference and the log odds ratio are formed from them, with delta-method
    standard errors.
    """

    risk_control: float
    risk_intervention: float
    risk_difference: float
    risk_difference_se: float
    log_odds_ratio: float
    log_odds_ratio_se: float


def _expit(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _log1pexp(x):
    """log(1 + exp(x)) without overflow."""
    return np.logaddexp(0.0, x)


class _Data:
    """The data sorted by cluster, with the segment boundaries ``reduceat`` needs."""

    def __init__(self, y, x, groups):
        y = np.asarray(y, dtype=float)
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or y.ndim != 1 or len(y) != x.shape[0] or len(groups) != len(y):
            raise ValueError("y (n,), x (n, p) and groups (n,) must have matching lengths")
        _, codes = np.unique(np.asarray(groups), return_inverse=True)
        order = np.argsort(codes, kind="stable")
        self.y, self.x, self.codes = y[order], x[order], codes[order]
        self.starts = np.flatnonzero(np.r_[True, self.codes[1:] != self.codes[:-1]])
        self.n_groups = len(self.starts)

    def sum(self, values):
        """Per-cluster sums (of a vector, or of each column of a 2-D array)."""
        return np.add.reduceat(values, self.starts, axis=0)


@functools.lru_cache(maxsize=8)
def _gh(nagq: int):
    x, w = np.polynomial.hermite.hermgauss(nagq)
    return x, np.log(w) + x * x  # nodes and log weights for int exp(g(x)) dx


def _logistic(d: _Data):
    """Ordinary logistic regression by Newton: (beta, loglik, information, converged)."""
    x, y = d.x, d.y
    beta = np.zeros(x.shape[1])
    info = np.eye(x.shape[1])
    for _ in range(_MAX_ITER):
        eta = x @ beta
        p = _expit(eta)
        info = (x * (p * (1.0 - p))[:, None]).T @ x
        grad = x.T @ (y - p)
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            return beta, -math.inf, info, False
        beta = beta + step
        if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > _SEPARATED:
            return beta, -math.inf, info, False
        if float(grad @ step) < _TOL:
            break
    else:
        return beta, -math.inf, info, False
    eta = x @ beta
    p = _expit(eta)
    info = (x * (p * (1.0 - p))[:, None]).T @ x
    loglik = float(np.sum(y * eta - _log1pexp(eta)))
    return beta, loglik, info, True


class _Quadrature:
    """The log-likelihood and its derivatives at one (beta, log sigma) by adaptive quadrature."""

    def __init__(self, d: _Data, nagq: int):
        self.d = d
        self.nodes, self.logw = _gh(nagq)
        self.mode = np.zeros(d.n_groups)

    def _modes(self, eta, sigma):
        """Each cluster's mode of log f(y | u) + log phi(u; sigma), and the curvature there."""
        d = self.d
        u = self.mode
        events = d.sum(d.y)
        for _ in range(50):
            p = _expit(eta + u[d.codes])
            grad = events - d.sum(p) - u / sigma**2
            curv = d.sum(p * (1.0 - p)) + 1.0 / sigma**2
            step = np.clip(grad / curv, -2.0, 2.0)  # concave: damped Newton converges
            u = u + step
            if np.max(np.abs(step)) < 1e-10:
                break
        p = _expit(eta + u[d.codes])
        curv = d.sum(p * (1.0 - p)) + 1.0 / sigma**2
        self.mode = u
        return u, curv

    def loglik(self, beta, log_sigma, derivatives=False):
        """Log-likelihood; with ``derivatives``, also its gradient and Hessian in
        (beta, log sigma)."""
        d = self.d
        sigma = math.exp(log_sigma)
        eta = d.x @ beta
        mode, curv = self._modes(eta, sigma)
        scale = math.sqrt(2.0) / np.sqrt(curv)
        u = mode[:, None] + scale[:, None] * self.nodes[None, :]  # (clusters, nodes)
        lin = eta[:, None] + u[d.codes]  # (n, nodes)
        ll_obs = d.y[:, None] * lin - _log1pexp(lin)
        log_prior = -0.5 * (u / sigma) ** 2 - log_sigma - 0.5 * math.log(2.0 * math.pi)
        terms = d.sum(ll_obs) + log_prior + self.logw[None, :]
        top = terms.max(axis=1, keepdims=True)
        mass = np.exp(terms - top)
        total = mass.sum(axis=1)
        loglik = float(np.sum(top[:, 0] + np.log(total) + np.log(scale)))
        if not derivatives:
            return loglik
        post = mass / total[:, None]  # posterior weights of the nodes, per cluster
        p = _expit(lin)
        resid = d.y[:, None] - p
        # Scores of log f(y, u) at each node: beta (clusters, nodes, p), log sigma (clusters, nodes)
        s_beta = d.sum(resid[:, :, None] * d.x[:, None, :])
        s_sig = (u / sigma) ** 2 - 1.0
        scores = np.concatenate([s_beta, s_sig[:, :, None]], axis=2)
        weighted = scores * post[:, :, None]
        mean = weighted.sum(axis=1)
        grad = mean.sum(axis=0)
        # Louis: E[d2 log f] + E[s s'] - E[s] E[s]'
        k = d.x.shape[1]
        hess = np.zeros((k + 1, k + 1))
        w_obs = np.sum(post[d.codes] * p * (1.0 - p), axis=1)
        hess[:k, :k] = -(d.x * w_obs[:, None]).T @ d.x
        hess[k, k] = -2.0 * float(np.sum(post * (u / sigma) ** 2))
        flat = k + 1
        hess += weighted.reshape(-1, flat).T @ scores.reshape(-1, flat) - mean.T @ mean
        return loglik, grad, hess


def _ascent_step(grad, hess):
    """Newton's step, with the Hessian's eigenvalues made negative where they are not (far
    from the maximum in sigma the log-likelihood need not be concave)."""
    values, vectors = np.linalg.eigh(hess)
    values = -np.maximum(np.abs(values), 1e-8)
    return vectors @ ((vectors.T @ grad) / -values)


def _boundary_score(d: _Data, beta) -> float:
    """Derivative of the log-likelihood in sigma^2 at sigma = 0."""
    p = _expit(d.x @ beta)
    return 0.5 * float(np.sum(d.sum(d.y - p) ** 2 - d.sum(p * (1.0 - p))))


def _boundary_fit(beta, loglik, info, iterations, nagq) -> GlmmFit:
    """The fit at sigma = 0: the ordinary logistic regression."""
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return _failed(len(beta), iterations, nagq)
    return GlmmFit(beta, cov, 0.0, loglik, True, iterations, None, nagq)


def _failed(k: int, iterations: int, nagq: int) -> GlmmFit:
    nan = np.full(k, np.nan)
    return GlmmFit(nan, np.full((k, k), np.nan), math.nan, math.nan, False, iterations, None,
                   nagq)


def fit_random_intercept_logistic(y, x, groups, *, nagq: int = NAGQ,
                                  sigma_start: float | None = None) -> GlmmFit:
    """Fit ``logit P(y = 1 | u) = x' beta + u_cluster`` by ML with adaptive quadrature.

    Parameters
    ----------
    y : array_like, shape (n,)
        0/1 outcomes.
    x : array_like, shape (n, p)
        Design matrix of the fixed effects (include the intercept column).
    groups : array_like, shape (n,)
        Cluster labels; a participant in no cluster has a label of their own.
    nagq : int
        Quadrature nodes per cluster (``nAGQ`` of ``lme4::glmer``), at least
        :data:`MIN_NAGQ`.
    sigma_start : float, optional
        Starting value of sigma (e.g. a related model's estimate); the fixed
        effects start at the ordinary logistic regression's.

    Returns
    -------
    GlmmFit
        Never raises on data the model cannot fit (separation, no convergence):
        the fit is then marked ``converged=False``.

    Notes
    -----
    Equivalent R call: ``lme4::glmer(y ~ x + (1 | groups), family = binomial,
    nAGQ = nagq)``.  See the module docstring for the algorithm.
    """
    if nagq < MIN_NAGQ:
        raise ValueError(f"nagq must be at least {MIN_NAGQ}; got {nagq}")
    d = _Data(y, x, groups)
    k = d.x.shape[1]
    with np.errstate(all="ignore"):
        beta0, ll0, info0, ok0 = _logistic(d)
        if not ok0:
            return _failed(k, 0, nagq)
        if _boundary_score(d, beta0) <= 0.0:
            return _boundary_fit(beta0, ll0, info0, 0, nagq)
        quad = _Quadrature(d, nagq)
        start = sigma_start if sigma_start and sigma_start > SIGMA_ZERO else _SIGMA_START
        theta = np.r_[beta0, math.log(start)]
        loglik, grad, hess = quad.loglik(theta[:k], theta[k], derivatives=True)
        for it in range(1, _MAX_ITER + 1):
            step = _ascent_step(grad, hess)
            longest = float(np.max(np.abs(step)))
            if longest > _MAX_STEP:  # far from the maximum: Newton's step can overshoot wildly
                step *= _MAX_STEP / longest
            decrement = float(grad @ step)
            t = 1.0
            for _ in range(_MAX_HALVINGS):
                trial = theta + t * step
                # With derivatives: a full step is nearly always accepted, and they are
                # then needed at that point.
                value, new_grad, new_hess = quad.loglik(trial[:k], trial[k], derivatives=True)
                if math.isfinite(value) and value >= loglik - 1e-12:
                    break
                t *= 0.5
            else:
                return _failed(k, it, nagq)
            theta = trial
            if theta[k] < math.log(SIGMA_ZERO):
                return _boundary_fit(beta0, ll0, info0, it, nagq)
            if np.max(np.abs(theta[:k])) > _SEPARATED or theta[k] > math.log(_SEPARATED):
                return _failed(k, it, nagq)
            gain = value - loglik
            loglik, grad, hess = value, new_grad, new_hess
            # The derivatives are those of the exact integrals (nodes held fixed), the
            # log-likelihood that of the quadrature: with few nodes they disagree slightly
            # near the maximum, and a step then gains nothing.  Either way we are there.
            if decrement < _TOL or (t < 1.0 and gain < _TOL):
                break
        else:
            return _failed(k, _MAX_ITER, nagq)
        try:
            cov_full = np.linalg.inv(-hess)
        except np.linalg.LinAlgError:
            return _failed(k, it, nagq)
        if not (np.all(np.isfinite(cov_full)) and np.all(np.linalg.eigvalsh(cov_full) > 0)):
            return _failed(k, it, nagq)
        if loglik < ll0:  # the boundary is higher: an interior local maximum was found
            return _boundary_fit(beta0, ll0, info0, it, nagq)
        return GlmmFit(theta[:k].copy(), cov_full[:k, :k].copy(), math.exp(theta[k]), loglik,
                       True, it, cov_full, nagq)


def chi2_1_sf(statistic: float) -> float:
    """Upper tail of the chi-square distribution with 1 df."""
    return math.erfc(math.sqrt(max(statistic, 0.0) / 2.0))


def likelihood_ratio_test(y, x, groups, column: int, *, nagq: int = NAGQ,
                          full: GlmmFit | None = None) -> LikelihoodRatioTest:
    """Likelihood-ratio test of the fixed effect in ``x[:, column]``.

    Both models are fitted by ML (sigma re-estimated in each); the statistic
    ``2 (loglik_full - loglik_reduced)`` is referred to chi-square with 1 df,
    as ``anova(reduced, full)`` on two ``glmer`` fits does.  ``full`` may be
    passed to reuse a fit of the full model.  When either fit fails, the
    statistic and p value are NaN.
    """
    x = np.asarray(x, dtype=float)
    if full is None:
        full = fit_random_intercept_logistic(y, x, groups, nagq=nagq)
    reduced = fit_random_intercept_logistic(y, np.delete(x, column, axis=1), groups, nagq=nagq,
                                            sigma_start=full.sigma)
    if not (full.converged and reduced.converged):
        return LikelihoodRatioTest(math.nan, math.nan, full, reduced)
    # Both maxima are found to ~1e-9; a tiny negative difference is rounding.
    stat = max(2.0 * (full.loglik - reduced.loglik), 0.0)
    return LikelihoodRatioTest(stat, chi2_1_sf(stat), full, reduced)


def marginal_effect(x, column: int, params, cov, *, sigma: float = 0.0,
                    nodes: int = MARGINAL_NODES) -> MarginalEffect:
    """Marginal risks in each arm by standardisation, with the risk difference and log OR.

    The risk in arm a is ``mean_j E_u[expit(x_j(a)' beta + u)]``, ``x_j(a)``
    being participant j's covariates with ``x[:, column]`` set to a and u
    ~ N(0, sigma^2) integrated by Gauss-Hermite quadrature with ``nodes``
    nodes (sigma = 0: no random effect, as for a GEE or a logistic model).  The
    quadrature is not adaptive here (the integrand is smooth and has no data
    in it), hence more nodes than the fit's.

    Parameters
    ----------
    x : array_like, shape (n, p)
        The sample's design matrix (the covariates standardised over).
    column : int
        The allocation column.
    params : array_like, shape (p,)
        Fixed effects.
    cov : array_like, shape (p, p) or (p + 1, p + 1)
        Their covariance, or that of ``(beta, log sigma)`` (then the
        uncertainty in sigma enters the standard errors).
    sigma : float
        SD of the random intercept.

    Notes
    -----
    The standard errors are by the delta method and treat the sample's
    covariates as fixed (the estimand is standardised to this sample).
    """
    x = np.array(x, dtype=float)
    beta = np.asarray(params, dtype=float)
    cov = np.asarray(cov, dtype=float)
    k = len(beta)
    if sigma > 0:
        z, w = np.polynomial.hermite_e.hermegauss(nodes)
        w = w / w.sum()
        z = sigma * z
    else:
        z, w = np.zeros(1), np.ones(1)
    risks, grads = [], []
    for a in (0.0, 1.0):
        x[:, column] = a
        p = _expit((x @ beta)[:, None] + z[None, :])
        dens = p * (1.0 - p) @ w  # (n,)
        g_beta = x.T @ dens / len(x)
        g_sig = float(np.mean(p * (1.0 - p) @ (w * z)))  # d risk / d log sigma
        risks.append(float(np.mean(p @ w)))
        grads.append(np.r_[g_beta, g_sig][:cov.shape[0]] if cov.shape[0] > k else g_beta)
    r0, r1 = risks
    g_rd = grads[1] - grads[0]
    g_lor = grads[1] / (r1 * (1.0 - r1)) - grads[0] / (r0 * (1.0 - r0))
    lor = math.log(r1 / (1.0 - r1)) - math.log(r0 / (1.0 - r0))
    return MarginalEffect(r0, r1, r1 - r0, math.sqrt(float(g_rd @ cov @ g_rd)), lor,
                          math.sqrt(float(g_lor @ cov @ g_lor)))
