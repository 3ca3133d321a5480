"""Simulation engine for several mediators and for a binary outcome.

Model (residual scale, X a 0/1 treatment or standard normal)::

    M_j = a_j X [+ d M_1 for M_2 in a serial chain] + e_j,   corr(e) = R, Var(e_j) = 1
    Y   = c' X + sum_j b_j M_j + e_Y                  (continuous outcome, Var(e_Y) = 1)
    logit P(Y = 1) = b0 + c' X + sum_j b_j M_j        (binary outcome; b0 gives base_rate
                                                       in the control arm, marginal over M)

Each replicate is analysed as a trialist would: OLS of each mediator on X (and
M_1 for M_2 in a chain), and OLS or logistic regression of Y on X and all
mediators.  Linear fits come from (weighted) cross-products as in
:mod:`trialplan.stats._medsim`; logistic fits are batched Newton-Raphson
(IRLS) across replicates and bootstrap resamples in numpy, warm-started from
the replicate's own estimate.  A fit that does not converge, or separates
(a coefficient beyond 30 on the log-odds scale), is counted: a failed
replicate counts as a non-rejection, and failed bootstrap resamples are left
out of that replicate's percentile interval.  Both counts are reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trialplan.stats import _dist as sp
from trialplan.stats._medsim import (
    CHUNK,
    _moments,
    _normals,
    _ols,
    _rng,
    ci_excludes_zero,
    one_blas_thread,
    resample_counts,
)

_BOOT_CELLS = 2_000_000  # (replicates x resamples x n) held at once for logistic refits
_LOGIT_MAXITER = 30
_BETA_MAX = 30.0


@dataclass(frozen=True)
class MultiSpec:
    a: tuple
    b: tuple
    cprime: float
    x: str
    outcome: str = "continuous"
    base_rate: float | None = None
    corr: tuple | None = None  # k x k residual correlation of the mediators
    serial: float | None = None  # d: M_1 -> M_2 in a two-mediator chain
    alpha: float = 0.05

    @property
    def k(self) -> int:
        return len(self.a)

    def effects(self) -> list[tuple[str, list[tuple[int, int]]]]:
        """Each indirect effect: its name and its (model, coefficient) components.

        Models 0..k-1 are the mediators, model k the outcome.  Predictor
        layout: mediator j: (1, X[, M_1]); outcome: (1, X, M_1..M_k).
        """
        out = []
        for j in range(self.k):
            out.append((f"M{j + 1}", [(j, 1), (self.k, 2 + j)]))
        if self.serial is not None:
            out.append(("M1->M2", [(0, 1), (1, 2), (self.k, 3)]))
        return out


def _corr_matrix(spec: MultiSpec) -> np.ndarray:
    if spec.corr is None:
        return np.eye(spec.k)
    return np.asarray(spec.corr, dtype=float)


def mediator_cov_control(spec: MultiSpec) -> np.ndarray:
    """Covariance of the mediators given X (the control arm, X = 0)."""
    r = _corr_matrix(spec)
    if spec.serial is None:
        return r
    t = np.eye(spec.k)
    t[1, 0] = spec.serial  # M2 = d M1 + e2
    return t @ r @ t.T


def calibrate_intercept(spec: MultiSpec) -> float:
    """b0 with P(Y = 1 | X = 0) = base_rate, marginal over the mediators (Gauss-Hermite)."""
    b = np.asarray(spec.b, dtype=float)
    v = float(b @ mediator_cov_control(spec) @ b)
    z, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()
    s = math.sqrt(max(v, 0.0))

    def rate(b0):
        return float(np.sum(w / (1.0 + np.exp(-np.clip(b0 + s * z, -40, 40)))))

    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if rate(mid) < spec.base_rate:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _data(spec: MultiSpec, seed, chunk, reps, n_c, n_t, b0):
    """(reps, n, 3 + k): columns 1, X, M_1..M_k, Y."""
    k = spec.k
    chol = np.linalg.cholesky(_corr_matrix(spec))

    def draw(stream, n_arm, off):
        return _normals(seed, chunk, stream, n_arm, reps, off)

    if spec.x == "binary":
        parts = []
        for arm, n_arm in ((0, n_c), (1, n_t)):
            off = 10 * arm
            e = np.stack([draw(30 + j, n_arm, off) for j in range(k)], axis=-1)
            ey = draw(3, n_arm, off)
            u = _rng(seed, chunk, 40 + off).random((n_arm, CHUNK))[:, :reps].T
            parts.append((np.full((reps, n_arm), float(arm)), e, ey, u))
        x = np.concatenate([p_[0] for p_ in parts], axis=1)
        e = np.concatenate([p_[1] for p_ in parts], axis=1)
        ey = np.concatenate([p_[2] for p_ in parts], axis=1)
        u = np.concatenate([p_[3] for p_ in parts], axis=1)
    else:
        n = n_c + n_t
        x = draw(0, n, 0)
        e = np.stack([draw(30 + j, n, 0) for j in range(k)], axis=-1)
        ey = draw(3, n, 0)
        u = _rng(seed, chunk, 40).random((n, CHUNK))[:, :reps].T
    e = e @ chol.T
    m = np.empty_like(e)
    for j in range(k):
        m[..., j] = spec.a[j] * x + e[..., j]
        if spec.serial is not None and j == 1:
            m[..., j] += spec.serial * m[..., 0]
    lin = spec.cprime * x + np.einsum("rnk,k->rn", m, np.asarray(spec.b, dtype=float))
    if spec.outcome == "binary":
        y = (u < 1.0 / (1.0 + np.exp(-np.clip(b0 + lin, -40, 40)))).astype(float)
    else:
        y = lin + ey
    return np.concatenate([np.ones_like(x)[..., None], x[..., None], m, y[..., None]], axis=-1)


def _models(spec: MultiSpec):
    """(response column, predictor columns) of each model: mediators, then the outcome."""
    k = spec.k
    models = []
    for j in range(k):
        preds = [0, 1]
        if spec.serial is not None and j == 1:
            preds.append(2)
        models.append((2 + j, preds))
    models.append((2 + k, [0, 1] + [2 + j for j in range(k)]))
    return models


def _expit(eta):
    with np.errstate(over="ignore"):
        out = np.exp(-eta)
    out += 1.0
    return np.reciprocal(out, out=out)


def logistic_fit(xd, y, weights=None, beta0=None, with_se=False):
    """Batched logistic regression by Newton-Raphson.

    xd: (r, n, p) design; y: (r, n); weights: (r, B, n) case weights or None.
    Returns beta (r, B, p), ok (r, B) [converged and not separated], and the
    SEs (r, B, p) when ``with_se``.
    """
    r, n, p = xd.shape
    w = np.ones((r, 1, n)) if weights is None else weights
    bsz = w.shape[1]
    iu = [(i, j) for i in range(p) for j in range(i, p)]
    cols = np.ascontiguousarray(np.moveaxis(xd, -1, 0))  # (p, r, n)
    prods_t = np.empty((r, len(iu), n))
    for q, (i, j) in enumerate(iu):
        np.multiply(cols[i], cols[j], out=prods_t[:, q, :])
    prods = np.swapaxes(prods_t, 1, 2)  # (r, n, q) view
    xt = np.swapaxes(xd, 1, 2)  # (r, p, n)
    if beta0 is None:
        # Start at the intercept-only fit: the logit of the outcome rate.
        beta = np.zeros((r, bsz, p))
        rate = np.clip(y.mean(axis=1), 1e-3, 1 - 1e-3)
        beta[:, :, 0] = np.log(rate / (1.0 - rate))[:, None]
    else:
        beta = np.broadcast_to(beta0[:, None, :], (r, bsz, p)).copy()
    yy = y[:, None, :]
    ridge = 1e-10 * np.eye(p)
    step_max = np.full((r, bsz), np.inf)
    # Work buffers reused across iterations (no new 10-100 MB arrays per step).  Bootstrap
    # refits (case weights) do the elementwise work in float32, where exp is several times
    # faster; Newton's step then still resolves the coefficients to ~1e-6, far inside the
    # Monte Carlo error of a percentile interval.  Fits with SEs stay in float64.
    dt = np.float32 if weights is not None and not with_se else np.float64
    mu = np.empty((r, bsz, n), dtype=dt)
    tmp = np.empty((r, bsz, n), dtype=dt)
    if dt is np.float32:
        xt, xd, prods, w, yy = (np.ascontiguousarray(a_, dtype=dt) if a_.ndim else a_
                                for a_ in (xt, xd, prods, w, yy))
    for _ in range(_LOGIT_MAXITER):
        np.matmul(beta.astype(dt, copy=False), xt, out=mu)
        np.negative(mu, out=mu)
        with np.errstate(over="ignore"):
            np.exp(mu, out=mu)
        mu += 1.0
        np.reciprocal(mu, out=mu)  # mu = expit(x'beta)
        np.subtract(yy, mu, out=tmp)
        if weights is not None:
            tmp *= w
        grad = (tmp @ xd).astype(np.float64, copy=False)  # (r, B, p)
        np.subtract(1.0, mu, out=tmp)
        tmp *= mu
        if weights is not None:
            tmp *= w
        hq = (tmp @ prods).astype(np.float64, copy=False)  # (r, B, q)
        h = np.empty((r, bsz, p, p))
        for q, (i, j) in enumerate(iu):
            h[..., i, j] = hq[..., q]
            h[..., j, i] = hq[..., q]
        scale = np.maximum(np.trace(h, axis1=-2, axis2=-1), 1e-300)[..., None, None] / p
        step = np.linalg.solve(h + ridge * scale, grad[..., None])[..., 0]
        step = np.where(np.isfinite(step), step, 0.0)
        # Damp huge steps (separation drives coefficients to infinity).
        big = np.abs(step).max(axis=-1, keepdims=True)
        step = step * (10.0 / np.maximum(big, 10.0))
        beta = beta + step
        step_max = np.abs(step).max(axis=-1)
        # Newton converges quadratically: after a step s the error is about s^2, so a
        # step below 1e-4 leaves the coefficients within ~1e-8 (far inside the
        # Monte Carlo error of any interval built from them).
        if np.all((step_max < (1e-4 if dt is np.float64 else 3e-4)) |
                  (np.abs(beta).max(axis=-1) > _BETA_MAX)):
            break
    ok = (step_max < 1e-3) & np.all(np.isfinite(beta), axis=-1) & (
        np.abs(beta).max(axis=-1) <= _BETA_MAX)
    if not with_se:
        return beta, ok, None
    mu = _expit(beta @ xt)
    hq = (w * mu * (1.0 - mu)) @ prods
    h = np.empty((r, bsz, p, p))
    for q, (i, j) in enumerate(iu):
        h[..., i, j] = hq[..., q]
        h[..., j, i] = hq[..., q]
    with np.errstate(invalid="ignore"):
        try:
            cov = np.linalg.inv(h)
        except np.linalg.LinAlgError:
            cov = np.linalg.pinv(h)
        se = np.sqrt(np.maximum(np.diagonal(cov, axis1=-2, axis2=-1), 0.0))
    return beta, ok, se


def _fit_all(spec, z, weights=None, start=None, with_se=True):
    """Coefficients (and SEs) of every model: list over models of arrays (..., p_model)."""
    n = z.shape[1]
    models = _models(spec)
    s = _moments(z, weights)
    coefs, ses = [], []
    ok = None
    for idx, (resp, preds) in enumerate(models):
        if idx == spec.k and spec.outcome == "binary":
            xd = z[..., preds]
            beta, good, se = logistic_fit(xd, z[..., resp], weights,
                                          None if start is None else start, with_se=with_se)
            if weights is None:
                beta, good = beta[:, 0], good[:, 0]
                se = None if se is None else se[:, 0]
            coefs.append(beta)
            ses.append(se)
            ok = good
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            beta, se = _ols(s, resp, preds, n, with_se)
        coefs.append(beta)
        ses.append(se)
    if ok is None:
        ok = np.ones(coefs[0].shape[:-1], dtype=bool)
    return coefs, ses, ok


@one_blas_thread
def power(spec: MultiSpec, test: str, n_c: int, n_t: int, *, reps: int, seed: int,
          draws: int = 5000, boot: int = 1000, progress=None) -> dict:
    """Rejection rates for every indirect effect, all of them, and at least one."""
    n = n_c + n_t
    effects = spec.effects()
    models = _models(spec)
    b0 = calibrate_intercept(spec) if spec.outcome == "binary" else 0.0
    crit = []
    for idx, (_, preds) in enumerate(models):
        if idx == spec.k and spec.outcome == "binary":
            crit.append(float(sp.ndtri(1.0 - spec.alpha / 2.0)))
        else:
            crit.append(float(sp.stdtrit(n - len(preds), 1.0 - spec.alpha / 2.0)))
    lo_q, hi_q = spec.alpha / 2.0, 1.0 - spec.alpha / 2.0
    hits = np.zeros(len(effects), dtype=np.int64)
    all_hits = any_hits = failed = failed_resamples = 0
    done = 0
    # Joint and Monte Carlo tests fit every replicate in one batch (fewer, larger numpy
    # calls); the bootstrap goes chunk by chunk to bound memory.
    n_chunks = math.ceil(reps / CHUNK)
    group = n_chunks if test != "bootstrap" else 1
    group = max(1, min(group, 4_000_000 // max(1, CHUNK * n * (spec.k + 3))))
    for first in range(0, n_chunks, group):
        chunks = range(first, min(n_chunks, first + group))
        sizes = [min(CHUNK, reps - c * CHUNK) for c in chunks]
        z = np.concatenate([_data(spec, seed, c, r_, n_c, n_t, b0)
                            for c, r_ in zip(chunks, sizes, strict=True)])
        chunk = chunks[0]
        r = z.shape[0]
        coefs, ses, ok = _fit_all(spec, z)
        reject = np.zeros((r, len(effects)), dtype=bool)
        if test == "joint":
            for e, (_, comps) in enumerate(effects):
                sig = np.ones(r, dtype=bool)
                for mi, ci in comps:
                    sig &= np.abs(coefs[mi][:, ci] / ses[mi][:, ci]) > crit[mi]
                reject[:, e] = sig
        elif test == "mc":
            rows = max(1, min(CHUNK, 2_000_000 // (draws * 4)))
            for i in range(0, r, rows):
                j = min(r, i + rows)
                # Draws come from a stream per replicate block, whatever the grouping.
                g = _rng(seed, first * CHUNK + i, 4, 1)
                draws_by = {}
                for mi, ci in sorted({c for _, comps in effects for c in comps}):
                    # float32 standard normals: the decision needs their signs relative
                    # to -estimate/SE, and ~6 digits where the products are needed.
                    draws_by[(mi, ci)] = g.standard_normal((j - i, draws), dtype=np.float32)
                for e, (_, comps) in enumerate(effects):
                    reject[i:j, e] = ci_excludes_zero(
                        [draws_by[c] for c in comps],
                        [coefs[mi][i:j, ci] for mi, ci in comps],
                        [ses[mi][i:j, ci] for mi, ci in comps], lo_q, hi_q)
        elif test == "bootstrap":
            rej, nfail = _boot(spec, z, coefs, effects, seed, chunk, boot, lo_q, hi_q)
            reject = rej
            failed_resamples += nfail
        else:  # pragma: no cover - validated by the caller
            raise ValueError(test)
        reject &= ok[:, None]
        failed += int(np.count_nonzero(~ok))
        hits += reject.sum(axis=0)
        all_hits += int(np.count_nonzero(reject.all(axis=1)))
        any_hits += int(np.count_nonzero(reject.any(axis=1)))
        done += r
        if progress is not None:
            progress(done)
    return {"effects": [name for name, _ in effects],
            "power": (hits / reps).tolist(), "all": all_hits / reps, "any": any_hits / reps,
            "failed_fits": failed, "failed_resamples": failed_resamples, "intercept": b0}


def _boot(spec, z, coefs, effects, seed, chunk, boot, lo_q, hi_q):
    r, n, _ = z.shape
    cells = _BOOT_CELLS if spec.outcome == "binary" else 2 * _BOOT_CELLS
    block = max(1, min(boot, cells // n))
    per = max(1, min(r, cells // (block * n)))
    vals = np.full((r, len(effects), boot), np.nan)
    failed = 0
    gens = [_rng(seed, chunk, 100 + i) for i in range(r)]
    start_beta = coefs[spec.k] if spec.outcome == "binary" else None
    for s0 in range(0, r, per):
        s1 = min(r, s0 + per)
        for b0 in range(0, boot, block):
            nb = min(block, boot - b0)
            counts = resample_counts(gens[s0:s1], n, nb)
            start = None if start_beta is None else start_beta[s0:s1]
            try:
                cb, _, okb = _fit_all(spec, z[s0:s1], counts, start, with_se=False)
            except np.linalg.LinAlgError:
                okb = np.zeros((s1 - s0, nb), dtype=bool)
                cb = None
            if cb is not None:
                for e, (_, comps) in enumerate(effects):
                    prod = np.ones((s1 - s0, nb))
                    for mi, ci in comps:
                        prod = prod * cb[mi][..., ci]
                    vals[s0:s1, e, b0:b0 + nb] = np.where(okb, prod, np.nan)
            failed += int(np.count_nonzero(~okb))
    with np.errstate(invalid="ignore"):
        lo = np.nanquantile(vals, lo_q, axis=2)
        hi = np.nanquantile(vals, hi_q, axis=2)
    return (lo > 0) | (hi < 0), failed
