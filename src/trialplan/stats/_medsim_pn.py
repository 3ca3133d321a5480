"""Simulation of mediation tests when peer workers cluster the intervention arm.

Data (residual scale; within-caseload residual SDs of 1)::

    M = a X + u_j X + e_M,      u_j ~ N(0, icc_m / (1 - icc_m))   (peer worker j)
    Y = c' X + b M + v_j X + e_Y,  v_j ~ N(0, icc_y / (1 - icc_y))

The n_t intervention participants are shared among J = ceil(n_t / m)
peer workers (caseload m, sizes differing by at most one); the control arm is
unclustered.  Each replicate is analysed in a way that respects the clustering:

- path a: the difference between the mean of the caseload means and the
  control mean, with variance s^2(caseload means) / J + s^2(control) / n_c and
  Welch-Satterthwaite degrees of freedom (a cluster-level summary analysis);
- path b: within caseloads and within the control arm (caseload fixed
  effects), so peer-worker effects on Y cannot bias or inflate it; residual
  df n - J - 2.

This matches ``b_level="individual"`` of the analytic partially nested test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trialplan.stats import _dist as sp
from trialplan.stats._medsim import CHUNK, _normals, _rng, ci_excludes_zero


@dataclass(frozen=True)
class NestedSpec:
    a: float
    b: float
    cprime: float
    icc_m: float
    icc_y: float
    cluster_size: float
    alpha: float = 0.05


def _caseloads(n_t: int, m: float) -> tuple[np.ndarray, int]:
    j = max(1, math.ceil(n_t / m - 1e-9))
    return np.arange(n_t) % j, j


def _draw(spec: NestedSpec, seed, chunk, reps, n_c, n_t):
    labels, j = _caseloads(n_t, spec.cluster_size)
    tau_m = math.sqrt(spec.icc_m / (1.0 - spec.icc_m))
    tau_y = math.sqrt(spec.icc_y / (1.0 - spec.icc_y))
    em_c = _normals(seed, chunk, 2, n_c, reps, 0)
    ey_c = _normals(seed, chunk, 3, n_c, reps, 0)
    em_t = _normals(seed, chunk, 2, n_t, reps, 10)
    ey_t = _normals(seed, chunk, 3, n_t, reps, 10)
    u = _normals(seed, chunk, 50, j, reps, 0) * tau_m  # (reps, J)
    v = _normals(seed, chunk, 51, j, reps, 0) * tau_y
    m_c = em_c
    y_c = spec.b * m_c + ey_c
    m_t = spec.a + u[:, labels] + em_t
    y_t = spec.cprime + spec.b * m_t + v[:, labels] + ey_t
    return m_c, y_c, m_t, y_t, labels, j


def _group_sums(x, labels, sizes):
    """Row-wise sums of ``x`` (reps, n) within each label: linear in n in time and memory.

    (A participant x peer-worker indicator matrix would be n x J: 2 GB at n = 100,000.)
    """
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate(([0], np.cumsum(sizes[:-1]))).astype(np.intp)
    return np.add.reduceat(x[:, order], starts, axis=1)


def estimates(m_c, y_c, m_t, y_t, labels, j):
    """a, SE(a), df(a), b, SE(b), df(b) for each replicate (row)."""
    n_c, n_t = m_c.shape[1], m_t.shape[1]
    sizes = np.bincount(labels, minlength=j).astype(float)
    mean_m_k = _group_sums(m_t, labels, sizes) / sizes  # (reps, J) caseload means
    mean_y_k = _group_sums(y_t, labels, sizes) / sizes
    a = mean_m_k.mean(axis=1) - m_c.mean(axis=1)
    var_t = mean_m_k.var(axis=1, ddof=1) / j
    var_c = m_c.var(axis=1, ddof=1) / n_c
    se_a = np.sqrt(var_t + var_c)
    df_a = (var_t + var_c) ** 2 / (var_t**2 / (j - 1) + var_c**2 / (n_c - 1))
    # b within caseloads and within the control arm
    mt = m_t - mean_m_k[:, labels]
    yt = y_t - mean_y_k[:, labels]
    mc = m_c - m_c.mean(axis=1, keepdims=True)
    yc = y_c - y_c.mean(axis=1, keepdims=True)
    sxx = (mt * mt).sum(axis=1) + (mc * mc).sum(axis=1)
    sxy = (mt * yt).sum(axis=1) + (mc * yc).sum(axis=1)
    b = sxy / sxx
    syy = (yt * yt).sum(axis=1) + (yc * yc).sum(axis=1)
    df_b = n_c + n_t - j - 2
    sigma2 = np.maximum(syy - b * sxy, 0.0) / df_b
    se_b = np.sqrt(sigma2 / sxx)
    return a, se_a, df_a, b, se_b, df_b


def power(spec: NestedSpec, test: str, n_c: int, n_t: int, *, reps: int, seed: int,
          draws: int = 5000, progress=None) -> tuple[float, int]:
    """Simulated power of the joint or Monte Carlo CI test, and the number of rejections."""
    lo_q, hi_q = spec.alpha / 2.0, 1.0 - spec.alpha / 2.0
    rejections = 0
    done = 0
    for chunk in range(math.ceil(reps / CHUNK)):
        r = min(CHUNK, reps - chunk * CHUNK)
        a, se_a, df_a, b, se_b, df_b = estimates(*_draw(spec, seed, chunk, r, n_c, n_t))
        if test == "joint":
            crit_a = sp.stdtrit(df_a, 1.0 - spec.alpha / 2.0)
            crit_b = float(sp.stdtrit(df_b, 1.0 - spec.alpha / 2.0))
            reject = (np.abs(a / se_a) > crit_a) & (np.abs(b / se_b) > crit_b)
        elif test == "mc":
            g = _rng(seed, chunk, 4, 2)
            # a's SE rests on J caseload means: draw a* from t with its Welch df rather
            # than the normal, or the interval is too narrow when peer workers are few.
            za = g.standard_t(df_a[:, None], size=(r, draws)).astype(np.float32)
            zb = g.standard_normal((r, draws), dtype=np.float32)
            reject = ci_excludes_zero([za, zb], [a, b], [se_a, se_b], lo_q, hi_q)
        else:  # pragma: no cover - validated by the caller
            raise ValueError(test)
        rejections += int(np.count_nonzero(reject))
        done += r
        if progress is not None:
            progress(done)
    return rejections / reps, rejections
