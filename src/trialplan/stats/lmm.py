"""REML fit of a linear mixed model with one random intercept, and its small-sample tests.

:func:`fit_reml` fits ``y = X beta + u_cluster + e`` by restricted maximum
likelihood (REML), where

- the random intercept ``u_cluster ~ N(0, sigma_u^2)`` applies to the
  observations flagged ``random`` (the intervention arm's peer-worker caseloads
  under partial nesting; every cluster in a cluster-randomised trial); the
  other observations are independent;
- the residual ``e ~ N(0, sigma_g^2)`` has a variance for each residual group
  ``g`` (the arms, for the heteroscedastic partially nested model of Baldwin et
  al. 2011 and Candlish et al. 2018) or one variance.

:func:`kenward_roger` and :func:`satterthwaite` then give the adjusted
standard error and the denominator degrees of freedom for one contrast of the
fixed effects (the treatment effect).

Notes
-----
The marginal covariance is linear in the variance parameters
``theta = (sigma_u^2, sigma_1^2, ..., sigma_G^2)``::

    V = sigma_u^2 Z Z' + sum_g sigma_g^2 D_g

with ``Z Z'`` block diagonal (a block of ones for each cluster with a random
intercept) and ``D_g`` diagonal (1 for the observations of group ``g``). A
cluster's observations share one residual group, so each block of ``V`` and
of every product of ``V^-1`` and the ``G_k`` (``Z Z'`` and the ``D_g``) is
compound symmetric, ``a I + c J`` (``J`` a block of ones), and
``(a I + c J)(a' I + c' J) = a a' I + (a c' + c a' + n c c') J`` for a block of
size ``n``.  So ``V^-1`` is ``(1/s) (I - t / (s + n t) J)`` (Sherman-Morrison),
``log|V_block| = (n - 1) log s + log(s + n t)``, and every quadratic form is
``a X_b'X_b + c S_b S_b'`` (``S_b`` the block's column sums): one pass over the
data per iteration, vectorised over clusters, O(n p^2).  An observation without
a random intercept is a block of one.

The REML log-likelihood is
``-(1/2) [(n - p) log 2 pi + log|V| + log|X'V^-1 X| + r'V^-1 r]``, with ``r``
the generalised least-squares residual; it is maximised by Newton's method
(Fisher scoring where the observed information is not positive definite) with
step halving.  ``sigma_u^2`` may sit at its boundary, 0: it is held there
while the score pushes it below zero (the constrained maximum).  Kenward and
Roger (1997) adjust ``Phi = (X'V^-1 X)^-1`` by
``Phi_A = Phi + 2 Phi [sum_ij W_ij (Q_ij - P_i Phi P_j)] Phi`` with
``P_i = X'V^-1 G_i V^-1 X``, ``Q_ij = X'V^-1 G_i V^-1 G_j V^-1 X`` and
``W = 2 I_E^-1``, ``I_E[i, j] = tr(P G_i P G_j)`` (``P`` the REML projection);
the second-derivative terms ``R_ij`` vanish because ``V`` is linear in theta
(pbkrtest's parameterisation).  For one contrast ``l`` their scale factor is 1
and the denominator df is ``2 (l'Phi l)^2 / (g'W g)``, ``g_i = l'Phi P_i Phi l``.
Satterthwaite's df uses the same gradient with the inverse observed
information of the REML log-likelihood, as lmerTest does.  Validated against
R (nlme ``lme`` with ``varIdent``, lme4 with pbkrtest and lmerTest) in
``tests/stats/test_lmm.py``.

References
----------
Kenward MG, Roger JH (1997). Small sample inference for fixed effects from
restricted maximum likelihood. Biometrics 53:983-997.
Baldwin SA, Bauer DJ, Stice E, Rohde P (2011). Evaluating models for partially
clustered designs. Psychological Methods 16:149-165.
Candlish J, Teare MD, Dimairo M, Flight L, Mandefield L, Walters SJ (2018).
Appropriate statistical methods for analysing partially nested randomised
controlled trials with continuous outcomes: a simulation study. BMC Medical
Research Methodology 18:105.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

#: The iteration stops when the expected gain in the REML log-likelihood falls below this.
TOL = 1e-12
MAX_ITER = 100
_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class LmmFit:
    """A REML fit of :func:`fit_reml`.

    Attributes
    ----------
    beta : ndarray (p,)
        Fixed effects (generalised least squares at the REML variances).
    cov_beta : ndarray (p, p)
        ``(X'V^-1 X)^-1``, the model-based covariance of ``beta`` (no
        small-sample adjustment; see :func:`kenward_roger`).
    variances : ndarray (k,)
        REML variance parameters, named by ``names``: the random-intercept
        variance first (when any observation has one), then the residual
        variance of each residual group in sorted order of its label.
    names : tuple of str
        ``"random intercept"`` and ``"residual <label>"``.
    loglik : float
        The maximised REML log-likelihood (R's ``logLik(fit, REML = TRUE)``).
    converged : bool
        False when the fit failed; the numbers are then NaN.
    iterations : int
    message : str
        Why the fit failed, or ``""``.
    boundary : tuple of bool
        Variance parameters estimated at 0.
    dvar : ndarray (k, p, p)
        ``P_k = X'V^-1 G_k V^-1 X`` (minus the derivative of ``X'V^-1 X``).
    dvar2 : ndarray (k, k, p, p)
        ``Q_kl = X'V^-1 G_k V^-1 G_l V^-1 X``.
    expected : ndarray (k, k)
        ``tr(P G_k P G_l)``: twice the expected information of the REML
        log-likelihood in ``variances``.
    observed : ndarray (k, k)
        Minus the Hessian of the REML log-likelihood in ``variances``.
    """

    beta: np.ndarray
    cov_beta: np.ndarray
    variances: np.ndarray
    names: tuple
    loglik: float
    converged: bool
    iterations: int
    message: str
    boundary: tuple
    dvar: np.ndarray
    dvar2: np.ndarray
    expected: np.ndarray
    observed: np.ndarray

    def variance(self, name: str) -> float:
        """One variance parameter by its name."""
        return float(self.variances[self.names.index(name)])


class ContrastTest(NamedTuple):
    """A contrast of the fixed effects with its small-sample reference distribution."""

    estimate: float
    se: float
    df: float
    method: str


class _Design(NamedTuple):
    """The data sorted by block, with the per-block sums every iteration reuses."""

    x: np.ndarray  # (n, p)
    y: np.ndarray  # (n,)
    block: np.ndarray  # (n,) block of each observation
    starts: np.ndarray  # (B,) first observation of each block
    size: np.ndarray  # (B,) observations per block
    has_re: np.ndarray  # (B,) 1.0 where the block has the random intercept
    group: np.ndarray  # (n,) residual group index
    block_group: np.ndarray  # (B,)
    n_groups: int
    random: bool  # any random intercept: theta[0] is its variance
    xtx: np.ndarray  # (B, p, p) sum of x x' over each block
    sx: np.ndarray  # (B, p) column sums of x over each block


def _sums(d: _Design, values: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, d.starts, axis=0)


def _design(y, x, cluster, random, group) -> tuple[_Design, np.ndarray]:
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    n = y.shape[0]
    if x.ndim != 2 or x.shape[0] != n:
        raise ValueError(f"x must be an (n, p) array with n = {n} rows; got shape {x.shape}")
    cluster = np.asarray(cluster)
    random = (np.ones(n, dtype=bool) if random is None
              else np.asarray(random, dtype=bool))
    labels = np.zeros(n, dtype=np.int64) if group is None else np.asarray(group)
    if cluster.shape != (n,) or random.shape != (n,) or labels.shape != (n,):
        raise ValueError("cluster, random and group must each have one entry per observation")
    group_labels, group_idx = np.unique(labels, return_inverse=True)
    # Blocks: one per cluster with a random intercept, then one per other observation.
    _, re_block = np.unique(cluster[random], return_inverse=True)
    n_re = int(re_block.max()) + 1 if re_block.size else 0
    block = np.empty(n, dtype=np.int64)
    block[random] = re_block
    block[~random] = n_re + np.arange(int((~random).sum()))
    order = np.argsort(block, kind="stable")
    block, x, y, group_idx = block[order], x[order], y[order], group_idx[order]
    starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]])
    size = np.diff(np.r_[starts, n])
    block_group = group_idx[starts]
    if np.any(block_group[block] != group_idx):
        raise ValueError("every observation of a cluster must be in the same residual group")
    xtx = np.add.reduceat(x[:, :, None] * x[:, None, :], starts, axis=0)
    d = _Design(x, y, block, starts, size.astype(float),
                (np.arange(len(starts)) < n_re).astype(float), group_idx, block_group,
                len(group_labels), n_re > 0, xtx, np.add.reduceat(x, starts, axis=0))
    return d, group_labels


# Block elements a I + c J as pairs of (B,) arrays.

def _mul(d: _Design, e1, e2):
    a1, c1 = e1
    a2, c2 = e2
    return a1 * a2, a1 * c2 + c1 * a2 + d.size * c1 * c2


def _structure(d: _Design) -> list:
    """G_k as block elements: Z Z' (a block of ones) and each group's diagonal."""
    zero = np.zeros(len(d.starts))
    gs = [((d.block_group == g).astype(float), zero) for g in range(d.n_groups)]
    return ([(zero, d.has_re)] if d.random else []) + gs


def _forms(d: _Design, elems) -> np.ndarray:
    """X' E X for each block element E: (m, p, p)."""
    a = np.array([e[0] for e in elems])
    c = np.array([e[1] for e in elems])
    return (np.einsum("mb,bpq->mpq", a, d.xtx)
            + np.einsum("mb,bp,bq->mpq", c, d.sx, d.sx))


def _apply(d: _Design, e, v: np.ndarray) -> np.ndarray:
    """E v for a block element E and an (n,) vector v."""
    a, c = e
    return a[d.block] * v + (c * _sums(d, v))[d.block]


class _State(NamedTuple):
    loglik: float
    beta: np.ndarray
    phi: np.ndarray
    score: np.ndarray
    expected: np.ndarray  # tr(P G_k P G_l)
    vinv: tuple
    u: np.ndarray  # V^-1 r = P y
    dvar: np.ndarray
    dvar2: np.ndarray


def _evaluate(d: _Design, theta: np.ndarray, gk: list) -> _State:
    k0 = 1 if d.random else 0
    s = theta[k0 + d.block_group]
    t = theta[0] * d.has_re if d.random else np.zeros_like(s)
    denom = s + d.size * t
    vinv = (1.0 / s, -t / (s * denom))
    logdet_v = float(np.sum((d.size - 1.0) * np.log(s) + np.log(denom)))
    vg = [_mul(d, vinv, g) for g in gk]  # V^-1 G_k
    m = [_mul(d, e, vinv) for e in vg]  # V^-1 G_k V^-1
    n_k = len(gk)
    pairs = [(i, j) for i in range(n_k) for j in range(n_k)]
    # Block elements commute (polynomials in J), so G_l V^-1 = V^-1 G_l.
    mats = _forms(d, [vinv] + m + [_mul(d, m[i], vg[j]) for i, j in pairs])
    c = mats[0]
    dvar = mats[1:1 + n_k]
    dvar2 = mats[1 + n_k:].reshape(n_k, n_k, *c.shape)
    chol = np.linalg.cholesky(c)
    phi = np.linalg.inv(c)
    phi = 0.5 * (phi + phi.T)
    xty = d.x.T @ _apply(d, vinv, d.y)
    beta = phi @ xty
    r = d.y - d.x @ beta
    u = _apply(d, vinv, r)
    quad = float(r @ u)
    n, p = d.x.shape
    loglik = -0.5 * ((n - p) * _LOG_2PI + logdet_v + 2.0 * float(np.sum(np.log(np.diag(chol))))
                     + quad)
    tr_vg = np.array([float(np.sum(d.size * (a + cc))) for a, cc in vg])
    tr_phi_p = np.einsum("pq,kqp->k", phi, dvar)
    ugu = np.array([float(u @ _apply(d, g, u)) for g in gk])
    score = -0.5 * (tr_vg - tr_phi_p) + 0.5 * ugu
    # tr(V^-1 G_k V^-1 G_l) = sum over blocks of n (a + c) of the product.
    ktrace = np.empty((n_k, n_k))
    for i, j in pairs:
        a, cc = _mul(d, vg[i], vg[j])
        ktrace[i, j] = float(np.sum(d.size * (a + cc)))
    pphi = np.einsum("kpq,qr->kpr", dvar, phi)  # P_k Phi
    expected = (ktrace - 2.0 * np.einsum("pq,klqp->kl", phi, dvar2)
                + np.einsum("kpq,lqp->kl", pphi, pphi))
    return _State(loglik, beta, phi, score, expected, vinv, u, dvar, dvar2)


def _observed(d: _Design, st: _State, gk: list) -> np.ndarray:
    """Minus the Hessian: -tr(P G_k P G_l) / 2 + (G_k P y)' P (G_l P y)."""
    v = [_apply(d, g, st.u) for g in gk]
    w = [_apply(d, st.vinv, vk) for vk in v]  # V^-1 G_k P y
    xw = np.array([d.x.T @ wk for wk in w])
    vpv = np.array([[float(vi @ wj) for wj in w] for vi in v]) - xw @ st.phi @ xw.T
    return -0.5 * st.expected + vpv


def _direction(d: _Design, st: _State, gk: list, free: np.ndarray) -> np.ndarray:
    """Newton step where the observed information is positive definite, else Fisher scoring.

    Fisher scoring alone crawls (an oscillation decaying by a few per cent a step) when
    the random-intercept and residual variances are nearly confounded, as with caseloads
    of one or two; Newton's step converges quadratically near the maximum.
    """
    score = st.score[free]
    observed = _observed(d, st, gk)[np.ix_(free, free)]
    try:
        chol = np.linalg.cholesky(observed)
    except np.linalg.LinAlgError:
        return np.linalg.solve(0.5 * st.expected[np.ix_(free, free)], score)
    return np.linalg.solve(chol.T, np.linalg.solve(chol, score))


def _start(d: _Design) -> np.ndarray:
    """Residual variances of each group from OLS; the random-intercept variance by moments."""
    beta, *_ = np.linalg.lstsq(d.x, d.y, rcond=None)
    r = d.y - d.x @ beta
    n, p = d.x.shape
    dof = max(n - p, 1) / n
    counts = np.bincount(d.group, minlength=d.n_groups)
    s = np.bincount(d.group, weights=r * r, minlength=d.n_groups) / np.maximum(counts, 1) / dof
    s = np.maximum(s, 1e-8 * max(float(np.var(d.y)), 1e-300))
    if not d.random:
        return s
    re = d.has_re > 0
    means = _sums(d, r)[re] / d.size[re]
    within = float(np.mean(s[d.block_group[re]] / d.size[re]))
    between = float(np.var(means, ddof=1)) if means.size > 1 else 0.0
    return np.r_[max(between - within, 0.1 * float(np.mean(s))), s]


def _label(value) -> str:
    """A group label as written: arm 1.0 (a float column) reads as 1."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _failed(k: int, p: int, names, iterations: int, message: str) -> LmmFit:
    nan = float("nan")
    return LmmFit(np.full(p, nan), np.full((p, p), nan), np.full(k, nan), names, nan, False,
                  iterations, message, (False,) * k, np.full((k, p, p), nan),
                  np.full((k, k, p, p), nan), np.full((k, k), nan), np.full((k, k), nan))


def fit_reml(y, x, cluster, *, random=None, group=None, tol: float = TOL,
             max_iter: int = MAX_ITER) -> LmmFit:
    """Fit the random-intercept model with group-specific residual variances by REML.

    Parameters
    ----------
    y : array_like (n,)
        Outcome (complete cases).
    x : array_like (n, p)
        Fixed-effects design, full column rank (include the intercept).
    cluster : array_like (n,)
        Cluster labels; observations with the same label and ``random`` True
        share a random intercept.
    random : array_like of bool (n,), optional
        Which observations have the random intercept (default: all).  Under
        partial nesting, the intervention arm: control participants are then
        independent whatever their cluster label.
    group : array_like (n,), optional
        Residual-variance groups (e.g. the arm).  Default: one residual
        variance.  A cluster's observations must share a group.
    tol : float
        Convergence: the expected gain of the next Newton (or Fisher-scoring)
        step in the REML log-likelihood.
    max_iter : int

    Returns
    -------
    LmmFit
        Frozen; ``converged`` is False (and the numbers NaN) when the fit
        failed (a rank-deficient design, a zero residual variance, no
        convergence).  Numerical failures never raise.

    Raises
    ------
    ValueError
        Arrays of inconsistent shapes, or a cluster spanning residual groups.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> arm = np.repeat([0, 1], 60)
    >>> cl = np.where(arm == 1, np.arange(120) % 6 + 1, 0)
    >>> y = 0.5 * arm + np.where(arm == 1, rng.normal(0, 0.4, 7)[cl], 0) + rng.normal(size=120)
    >>> fit = fit_reml(y, np.column_stack([np.ones(120), arm]), cl, random=arm == 1, group=arm)
    >>> fit.names, fit.converged
    (('random intercept', 'residual 0', 'residual 1'), True)
    """
    d, group_labels = _design(y, x, cluster, random, group)
    names = (("random intercept",) if d.random else ()) + tuple(
        f"residual {_label(g)}" for g in group_labels.tolist())
    n, p = d.x.shape
    k = len(names)
    if n - p < 1 or not (np.all(np.isfinite(d.y)) and np.all(np.isfinite(d.x))):
        return _failed(k, p, names, 0, "too few or non-finite observations")
    gk = _structure(d)
    floor = np.zeros(k, dtype=bool)
    if d.random:
        floor[0] = True  # sigma_u^2 >= 0; residual variances > 0
    with np.errstate(all="ignore"):
        try:
            theta = _start(d)
            st = _evaluate(d, theta, gk)
            for it in range(1, max_iter + 1):
                free = ~(floor & (theta <= 0) & (st.score <= 0))
                step = np.zeros(k)
                step[free] = _direction(d, st, gk, free)
                gain = float(st.score[free] @ step[free])
                if not math.isfinite(gain):
                    return _failed(k, p, names, it, "non-finite score")
                if gain < tol:
                    break
                lam = 1.0
                for _ in range(40):
                    new = theta + lam * step
                    new[floor] = np.maximum(new[floor], 0.0)
                    if np.all(new[~floor] > 0):
                        trial = _evaluate(d, new, gk)
                        if trial.loglik >= st.loglik - 1e-12 * (1.0 + abs(st.loglik)):
                            break
                    lam *= 0.5
                else:
                    return _failed(k, p, names, it, "step halving failed")
                theta, st = new, trial
            else:
                return _failed(k, p, names, max_iter, "no convergence")
            observed = _observed(d, st, gk)
        except (np.linalg.LinAlgError, FloatingPointError, ValueError) as exc:
            return _failed(k, p, names, 0, f"{type(exc).__name__}: {exc}")
    if not (math.isfinite(st.loglik) and np.all(np.isfinite(st.phi))):
        return _failed(k, p, names, it, "non-finite fit")
    return LmmFit(st.beta, st.phi, theta, names, st.loglik, True, it, "",
                  tuple(bool(b) for b in floor & (theta <= 0)), st.dvar, st.dvar2,
                  st.expected, observed)


def _contrast(fit: LmmFit, contrast) -> tuple[np.ndarray, float, np.ndarray]:
    ell = np.asarray(contrast, dtype=float)
    if ell.shape != fit.beta.shape:
        raise ValueError(f"the contrast must have {fit.beta.size} entries; got {ell.shape}")
    var = float(ell @ fit.cov_beta @ ell)
    phil = fit.cov_beta @ ell
    grad = np.einsum("p,kpq,q->k", phil, fit.dvar, phil)  # d var / d theta_k = -g_k
    return ell, var, grad


def _inverse(info: np.ndarray) -> np.ndarray:
    """Inverse, or Moore-Penrose inverse when nearly singular (as pbkrtest)."""
    eig = np.linalg.eigvalsh(info)
    return (np.linalg.inv(info) if np.min(np.abs(eig)) > 1e-10
            else np.linalg.pinv(info))


def kenward_roger(fit: LmmFit, contrast) -> ContrastTest:
    """Kenward-Roger adjusted SE and denominator df of one contrast of the fixed effects.

    Parameters
    ----------
    fit : LmmFit
    contrast : array_like (p,)
        E.g. ``[0, 1, 0]`` for the second coefficient.

    Returns
    -------
    ContrastTest
        ``se`` from the adjusted covariance ``Phi_A``; ``df`` the KR
        denominator df (the F scaling is exactly 1 for one contrast).  NaN
        when the fit failed.  Every variance parameter enters, including one
        at its boundary (as pbkrtest does).
    """
    if not fit.converged:
        return ContrastTest(math.nan, math.nan, math.nan, "kenward-roger")
    ell, var, grad = _contrast(fit, contrast)
    w = 2.0 * _inverse(fit.expected)
    phi = fit.cov_beta
    pphi = np.einsum("kpq,qr->kpr", fit.dvar, phi)
    uu = np.einsum("kl,klpq->pq", w, fit.dvar2) - np.einsum("kl,kpq,lqr->pr", w, pphi, fit.dvar)
    phi_a = phi + 2.0 * phi @ uu @ phi
    var_a = float(ell @ phi_a @ ell)
    a2 = float(grad @ w @ grad) / (var * var)
    df = 2.0 / a2 if a2 > 0 else math.inf
    return ContrastTest(float(ell @ fit.beta), math.sqrt(var_a) if var_a > 0 else math.nan,
                        df, "kenward-roger")


def satterthwaite(fit: LmmFit, contrast) -> ContrastTest:
    """Satterthwaite df of one contrast, with its model-based (unadjusted) SE.

    The variance of the variance parameters is the inverse observed
    information of the REML log-likelihood (as lmerTest).  Parameters at their
    boundary are held fixed.
    """
    if not fit.converged:
        return ContrastTest(math.nan, math.nan, math.nan, "satterthwaite")
    ell, var, grad = _contrast(fit, contrast)
    keep = ~np.array(fit.boundary, dtype=bool)
    cov = _inverse(fit.observed[np.ix_(keep, keep)])
    denom = float(grad[keep] @ cov @ grad[keep])
    df = 2.0 * var * var / denom if denom > 0 else math.inf
    return ContrastTest(float(ell @ fit.beta), math.sqrt(var), df, "satterthwaite")


__all__ = ["ContrastTest", "LmmFit", "fit_reml", "kenward_roger", "satterthwaite"]
