"""Vectorised Monte Carlo engine for the power of tests of an indirect effect.

Data-generating model (residual scale, see :mod:`trialplan.stats.mediation`)::

    M = a X + sqrt(r2_m) W + sqrt(1 - r2_m) e_M
    Y = c' X + b M + g W + e_Y,   g^2 (1 - r2_m) = r2_y,  Var(e_Y) = 1 - r2_y

X is a 0/1 treatment indicator (``n_c`` zeros, ``n_t`` ones) or standard
normal; W is one standard-normal baseline covariate, present when r2_m or r2_y
is positive (it explains r2_m of M's variance given X, and r2_y of Y's
variance given X and M).  Each replicate is analysed as a trialist would: OLS
of M on (1, X[, W]) and of Y on (1, X, M[, W]).

Everything is computed from weighted cross-products.  A replicate's data
(k columns) give the k x k matrix of sums of products; a bootstrap resample is
the same sums with multinomial counts as weights, so B resamples of R
replicates are one batched matrix product of counts (B x n) with the n x k(k+1)/2
products, followed by batched small solves.  No resample is ever materialised.

Common random numbers: the random numbers of replicate r come from streams
keyed by (seed, chunk, stream), drawn unit-major, so a larger n extends the same
data rather than redrawing it.  Simulated power is then a smooth function of n
(in practice monotone), which is what lets the solver search integers.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from trialplan.stats import _dist as sp

CHUNK = 50  # replicates per data chunk (fixed: part of the random-number layout)


def one_blas_thread(fn):
    """Run ``fn`` with BLAS limited to one thread (threadpoolctl).

    The simulations do many small matrix products and solves: extra BLAS
    threads only add CPU time (2-5x, measured for the trial simulation) and
    slow everything down when another process holds a core.
    """
    @functools.wraps(fn)
    def limited(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return fn(*args, **kwargs)

    return limited

_BOOT_CELLS = 4_000_000  # counts cells (replicates x resamples x n) held at once: ~100 MB

_STREAMS = {"x": 0, "w": 1, "em": 2, "ey": 3, "mc": 4}


@dataclass(frozen=True)
class SimSpec:
    a: float
    b: float
    cprime: float
    x: str  # "binary" | "continuous"
    r2_m: float = 0.0
    r2_y: float = 0.0
    alpha: float = 0.05

    @property
    def covariate(self) -> bool:
        return self.r2_m > 0 or self.r2_y > 0


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _normals(seed, chunk, stream, n_rows, reps, offset_stream=0):
    """(reps, n_rows) standard normals; row i is the same for any n_rows (unit-major)."""
    g = _rng(seed, chunk, stream + offset_stream)
    return g.standard_normal((n_rows, CHUNK))[:, :reps].T


def _data(spec: SimSpec, seed: int, chunk: int, reps: int, n_c: int, n_t: int):
    """Columns (1, X[, W], M, Y) of ``reps`` replicates: array (reps, n, k)."""
    if spec.x == "binary":
        # Control and treated units draw from separate streams so each arm extends on its own.
        parts = []
        for arm, n_arm in ((0, n_c), (1, n_t)):
            off = 10 * arm
            em = _normals(seed, chunk, _STREAMS["em"], n_arm, reps, off)
            ey = _normals(seed, chunk, _STREAMS["ey"], n_arm, reps, off)
            w = _normals(seed, chunk, _STREAMS["w"], n_arm, reps, off) if spec.covariate else None
            parts.append((np.full((reps, n_arm), float(arm)), w, em, ey))
        x = np.concatenate([p[0] for p in parts], axis=1)
        w = np.concatenate([p[1] for p in parts], axis=1) if spec.covariate else None
        em = np.concatenate([p[2] for p in parts], axis=1)
        ey = np.concatenate([p[3] for p in parts], axis=1)
    else:
        n = n_c + n_t
        x = _normals(seed, chunk, _STREAMS["x"], n, reps)
        w = _normals(seed, chunk, _STREAMS["w"], n, reps) if spec.covariate else None
        em = _normals(seed, chunk, _STREAMS["em"], n, reps)
        ey = _normals(seed, chunk, _STREAMS["ey"], n, reps)
    m = spec.a * x + math.sqrt(1.0 - spec.r2_m) * em
    y = spec.cprime * x + math.sqrt(1.0 - spec.r2_y) * ey
    cols = [np.ones_like(x), x]
    if w is not None:
        m = m + math.sqrt(spec.r2_m) * w
        g = math.sqrt(spec.r2_y / (1.0 - spec.r2_m)) if spec.r2_y > 0 else 0.0
        y = y + g * w
        cols.append(w)
    y = y + spec.b * m
    cols += [m, y]
    return np.stack(cols, axis=-1)


def _pairs(k):
    return [(i, j) for i in range(k) for j in range(i, k)]


def _moments(z, weights=None):
    """Sums of products S[..., i, j] of the columns of z (optionally weighted).

    z: (reps, n, k); weights: (reps, B, n) or None.  Returns (reps, [B,] k, k).
    Unweighted: one batched z'z.  Weighted: the k(k+1)/2 column products are
    formed once (contiguous, product-major) and every resample's sums are one
    batched matrix product with the counts.
    """
    if weights is None:
        return np.matmul(np.swapaxes(z, 1, 2), z)
    k = z.shape[-1]
    pairs = _pairs(k)
    cols = np.ascontiguousarray(np.moveaxis(z, -1, 0))  # (k, reps, n)
    prods = np.empty((z.shape[0], len(pairs), z.shape[1]))
    for q, (i, j) in enumerate(pairs):
        np.multiply(cols[i], cols[j], out=prods[:, q, :])
    s = np.matmul(weights, np.swapaxes(prods, 1, 2))  # (reps, B, q)
    out = np.empty(s.shape[:-1] + (k, k))
    for q, (i, j) in enumerate(pairs):
        out[..., i, j] = s[..., q]
        out[..., j, i] = s[..., q]
    return out


def _ols(s, response, predictors, n, with_se=True):
    """Coefficients and SEs from the moment matrix for one regression.

    ``s``: (..., k, k) sums of products; column 0 is the intercept.  Returns the
    coefficient array (..., p) and the standard errors (..., p) of ``predictors``.
    """
    idx = list(predictors)
    xtx = s[..., idx, :][..., :, idx]
    xty = s[..., idx, response]
    beta = np.linalg.solve(xtx, xty[..., None])[..., 0]
    if not with_se:
        return beta, None
    rss = s[..., response, response] - np.einsum("...i,...i->...", beta, xty)
    df = n - len(idx)
    sigma2 = np.maximum(rss, 0.0) / df
    inv_diag = np.diagonal(np.linalg.inv(xtx), axis1=-2, axis2=-1)
    return beta, np.sqrt(sigma2[..., None] * inv_diag)


def _paths(spec: SimSpec, s, n, with_se=True):
    """a, b (and their SEs) from moment matrices of columns (1, X[, W], M, Y)."""
    k = s.shape[-1]
    im, iy = k - 2, k - 1
    base = list(range(k - 2))  # intercept, X[, W]
    beta_m, se_m = _ols(s, im, base, n, with_se)
    beta_y, se_y = _ols(s, iy, base + [im], n, with_se)
    a, b = beta_m[..., 1], beta_y[..., -1]
    if not with_se:
        return a, b
    return a, se_m[..., 1], b, se_y[..., -1]


@one_blas_thread
def power(spec: SimSpec, test: str, n_c: int, n_t: int, *, reps: int, seed: int,
          draws: int = 5000, boot: int = 1000, progress=None) -> tuple[float, int]:
    """Simulated power of ``test`` and the number of rejections, over ``reps`` replicates."""
    n = n_c + n_t
    k = 5 if spec.covariate else 4
    df_a, df_b = n - (k - 2), n - (k - 1)
    crit_a = float(sp.stdtrit(df_a, 1.0 - spec.alpha / 2.0))
    crit_b = float(sp.stdtrit(df_b, 1.0 - spec.alpha / 2.0))
    lo_q, hi_q = spec.alpha / 2.0, 1.0 - spec.alpha / 2.0
    rejections = 0
    done = 0
    for chunk in range(math.ceil(reps / CHUNK)):
        r = min(CHUNK, reps - chunk * CHUNK)
        z = _data(spec, seed, chunk, r, n_c, n_t)
        s = _moments(z)
        a, se_a, b, se_b = _paths(spec, s, n)
        if test == "joint":
            reject = (np.abs(a / se_a) > crit_a) & (np.abs(b / se_b) > crit_b)
        elif test == "mc":
            g = _rng(seed, chunk, _STREAMS["mc"])
            reject = np.zeros(r, dtype=bool)
            rows = max(1, _BOOT_CELLS // (4 * draws))  # bounded memory for any draws
            for i in range(0, r, rows):
                j = min(r, i + rows)
                za = g.standard_normal((j - i, draws))
                zb = g.standard_normal((j - i, draws))
                reject[i:j] = ci_excludes_zero([za, zb], [a[i:j], b[i:j]],
                                               [se_a[i:j], se_b[i:j]], lo_q, hi_q)
        elif test in ("bootstrap", "bc-bootstrap"):
            reject = _boot_reject(spec, z, a * b, seed, chunk, boot, lo_q, hi_q,
                                  bias_corrected=test == "bc-bootstrap")
        else:  # pragma: no cover - validated by the caller
            raise ValueError(test)
        rejections += int(np.count_nonzero(reject))
        done += r
        if progress is not None:
            progress(done)
    return rejections / reps, rejections


def _boot_reject(spec, z, ab_hat, seed, chunk, boot, lo_q, hi_q, *, bias_corrected):
    """Bootstrap CI rejections for the replicates of one chunk, in bounded memory.

    Resample counts are built for as many replicates and resamples at a time as
    fit in about ``_BOOT_CELLS`` cells; the indirect effects of all B resamples
    (B numbers per replicate) are kept for the quantiles.
    """
    r, n, _ = z.shape
    block = max(1, min(boot, _BOOT_CELLS // n))  # resamples per block
    per = max(1, min(r, _BOOT_CELLS // (block * n)))  # replicates per block
    ab = np.empty((r, boot))
    gens = [_rng(seed, chunk, 100 + i) for i in range(r)]
    for start in range(0, r, per):
        stop = min(r, start + per)
        for b0 in range(0, boot, block):
            nb = min(block, boot - b0)
            counts = resample_counts(gens[start:stop], n, nb)
            s = _moments(z[start:stop], counts)
            with np.errstate(invalid="ignore", divide="ignore"):
                try:
                    a_b, b_b = _paths(spec, s, n, with_se=False)
                except np.linalg.LinAlgError:
                    a_b, b_b = _paths_safe(spec, s, n)
            ab[start:stop, b0:b0 + nb] = a_b * b_b
    if bias_corrected:
        est = ab_hat[:, None]
        prop = (np.count_nonzero(ab < est, axis=1) + 0.5 * np.count_nonzero(ab == est, axis=1)
                ) / boot
        z0 = sp.ndtri(np.clip(prop, 0.5 / boot, 1.0 - 0.5 / boot))
        q_lo = sp.ndtr(2.0 * z0 + sp.ndtri(lo_q))
        q_hi = sp.ndtr(2.0 * z0 + sp.ndtri(hi_q))
        ab.sort(axis=1)
        lo = _quantile_sorted(ab, q_lo)
        hi = _quantile_sorted(ab, q_hi)
    else:
        lo, hi = np.quantile(ab, [lo_q, hi_q], axis=1)
    return (lo > 0) | (hi < 0)


def resample_counts(gens, n: int, nb: int) -> np.ndarray:
    """Multinomial bootstrap counts, (len(gens), nb, n): one generator per replicate.

    Unit-major uniforms: resample b's j-th draw is floor(u[j, b] * n), so the same
    resamples extend when n grows (common random numbers across n).
    """
    counts = np.empty((len(gens), nb, n))
    offsets = (np.arange(nb) * n)[:, None]
    for i, g in enumerate(gens):
        u = g.random((n, nb), dtype=np.float32)
        idx = np.minimum((u * np.float32(n)).astype(np.intp), n - 1).T
        counts[i] = np.bincount((idx + offsets).ravel(), minlength=nb * n).reshape(nb, n)
    return counts


def ci_excludes_zero(draws, loc, scale, q_lo, q_hi):
    """Whether the [q_lo, q_hi] percentile interval of prod_c (loc_c + scale_c Z_c) excludes 0.

    ``draws``: standard normal arrays Z_c (rows x m); ``loc``, ``scale``: one value per
    row and factor.  The decision is the one ``np.quantile`` (linear interpolation)
    of the products would give, read from signs: factor c is negative where
    Z_c < -loc_c / scale_c, and the product is positive when an even number of
    factors is negative.  Only rows where an end of the interval falls between a
    non-positive and a positive order statistic need the products themselves.
    """
    m = draws[0].shape[1]
    odd = np.zeros(draws[0].shape, dtype=bool)
    zero = None
    for z_, mu_, sd_ in zip(draws, loc, scale, strict=True):
        cut = (-mu_ / sd_).astype(z_.dtype)[:, None]
        odd ^= z_ < cut
        if np.any(z_ == cut):
            zero = (z_ == cut) if zero is None else (zero | (z_ == cut))
    if zero is None:
        le0 = lt0 = np.count_nonzero(odd, axis=1)
    else:
        le0 = np.count_nonzero(odd | zero, axis=1)
        lt0 = np.count_nonzero(odd & ~zero, axis=1)
    f_lo = int(math.floor(q_lo * (m - 1)))
    f_hi = int(math.floor(q_hi * (m - 1)))
    above = le0 <= f_lo  # the q_lo order statistic is already positive
    below = lt0 >= f_hi + 2  # both order statistics around q_hi are negative
    unsure = (le0 == f_lo + 1) | (lt0 == f_hi + 1)
    if unsure.any():
        rows = np.flatnonzero(unsure)
        prod = np.prod([mu_[rows, None] + sd_[rows, None] * z_[rows]
                        for z_, mu_, sd_ in zip(draws, loc, scale, strict=True)], axis=0)
        lo, hi = _two_quantiles(prod, q_lo, q_hi)
        above[rows] = lo > 0
        below[rows] = hi < 0
    return above | below


def _two_quantiles(rows, q_lo, q_hi):
    """numpy's default (linear) quantiles q_lo and q_hi of each row, by one partition."""
    m = rows.shape[1]
    pos = [q_lo * (m - 1), q_hi * (m - 1)]
    idx = sorted({int(math.floor(p_)) for p_ in pos} | {min(m - 1, int(math.floor(p_)) + 1)
                                                        for p_ in pos})
    part = np.partition(rows, idx, axis=1)
    out = []
    for p_ in pos:
        lo = int(math.floor(p_))
        hi = min(m - 1, lo + 1)
        frac = p_ - lo
        out.append(part[:, lo] * (1 - frac) + part[:, hi] * frac)
    return out


def _paths_safe(spec, s, n):
    """Paths for resamples where a singular design (e.g. one arm drawn empty) occurs.

    Singular resamples get a zero indirect effect: they can only make the
    interval wider, never produce a rejection on their own.
    """
    k = s.shape[-1]
    base = list(range(k - 1))
    det = np.linalg.det(s[..., base, :][..., :, base])
    ok = np.abs(det) > 1e-9 * np.abs(s[..., 0, 0]) ** (k - 1)
    eye = np.broadcast_to(np.eye(k), s.shape)
    fixed = np.where(ok[..., None, None], s, eye * np.maximum(s[..., 0, 0], 1.0)[..., None, None])
    a, b = _paths(spec, fixed, n, with_se=False)
    return np.where(ok, a, 0.0), np.where(ok, b, 0.0)


def _quantile_sorted(sorted_rows, q):
    """Linear-interpolation quantile (numpy's default) with a different q per row."""
    m = sorted_rows.shape[1]
    pos = q * (m - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, m - 1)
    frac = pos - lo
    rows = np.arange(sorted_rows.shape[0])
    return sorted_rows[rows, lo] * (1 - frac) + sorted_rows[rows, hi] * frac
