"""The normal and (noncentral) t functions every calculation calls, from one of two sources.

The rule: ``scipy.special`` is used whenever it is already imported, and the
numpy implementations in :mod:`trialplan.stats._special` otherwise.  Importing
scipy.special costs about half a second, which would dominate a single
closed-form answer (``trialplan size``), so those commands never import it and
use the numpy versions (accurate to 1e-9 or better, tested against scipy).
Everything heavier (the plan, mediation, documents, simulation) calls
:func:`use_scipy` first: from then on each call costs microseconds instead of
the milliseconds of the numpy continued fractions.  Both sides are tested.
"""

from __future__ import annotations

import sys

import numpy as np

from trialplan.stats import _special as numpy_impl


def use_scipy() -> None:
    """Import scipy.special, so that every later call here goes to it."""
    import scipy.special  # noqa: F401


def _scipy():
    return sys.modules.get("scipy.special")


def ndtr(x):
    """Standard normal CDF."""
    sc = _scipy()
    return sc.ndtr(np.asarray(x, dtype=float)) if sc else numpy_impl.ndtr(x)


def ndtri(p):
    """Standard normal quantile."""
    sc = _scipy()
    return sc.ndtri(np.asarray(p, dtype=float)) if sc else numpy_impl.ndtri(p)


def stdtrit(df, p):
    """Student t quantile.

    Many quantiles at one probability (the critical values of 100,000 prior
    draws, each with its own degrees of freedom) are interpolated from exact
    ones by :func:`_stdtrit_many`, five times faster and within 1e-12.
    """
    sc = _scipy()
    if sc is None:
        return numpy_impl.stdtrit(df, p)
    df = np.asarray(df, dtype=float)
    p = np.asarray(p, dtype=float)
    if df.size >= _MANY and p.size == 1 and 0.0 < float(p) < 1.0:
        return _stdtrit_many(sc, df, float(p))
    return sc.stdtrit(df, p)


_MANY = 4096  # below this, every quantile is computed exactly
_STEP = 1.0 / 64.0  # grid step in log(df)
_DF_MIN = 30.0  # interpolated from here up; smaller df are computed exactly
_NODES = 6  # quintic Lagrange interpolation
_REL_TOL = 1e-12  # the largest relative error accepted on the check points


def _stdtrit_many(sc, df: np.ndarray, p: float) -> np.ndarray:
    """t quantiles at one probability for many df, interpolated in log(df).

    The quantile is a smooth function of log(df) for df >= 30.  It is computed
    exactly on a grid of step 1/64 spanning the df asked for, and interpolated
    between the six nearest grid points (error about 1e-14 at p = 0.975 and
    below 5e-13 up to p = 1 - 1e-6, against scipy over df 30 to 1e7).  Every
    midpoint of the grid, where that error is largest, is computed exactly as
    well: if any differs by more than 1e-12 (relative, absolute below 1), every
    quantile is computed exactly instead.  Cells with df below 30, infinite or nan df are
    always computed exactly.
    """
    out = np.empty(df.shape)
    smooth = np.isfinite(df) & (df >= _DF_MIN)
    if not smooth.all():
        out[~smooth] = sc.stdtrit(df[~smooth], p)
    if not smooth.any():
        return out
    u = np.log(df[smooth])
    start = float(u.min()) - 2.0 * _STEP
    cells = int(np.ceil((float(u.max()) - start) / _STEP)) + 1
    grid = start + _STEP * np.arange(cells + _NODES)
    exact = sc.stdtrit(np.exp(grid), p)
    mid = grid[:-1] + 0.5 * _STEP
    check = sc.stdtrit(np.exp(mid), p)
    error = np.abs(_lagrange(exact, (mid - start) / _STEP, cells) - check)
    if not np.all(error <= _REL_TOL * np.maximum(np.abs(check), 1.0)):  # nan fails too
        out[smooth] = sc.stdtrit(df[smooth], p)
    else:
        out[smooth] = _lagrange(exact, (u - start) / _STEP, cells)
    return out


def _lagrange(values: np.ndarray, s: np.ndarray, cells: int) -> np.ndarray:
    """Interpolate equally spaced ``values`` at positions ``s`` (in grid steps).

    Each position uses the polynomial through the six grid values around it,
    written as coefficients in the offset from its first node and evaluated by
    Horner's rule.
    """
    first = np.clip(np.floor(s).astype(np.intp) - (_NODES // 2 - 1), 0, cells - 1)
    t = s - first
    windows = np.lib.stride_tricks.sliding_window_view(values, _NODES)[:cells]
    coef = windows @ _POWER_BASIS  # (cells, nodes): coefficients of t**0 ... t**5
    out = coef[first, _NODES - 1]
    for k in range(_NODES - 2, -1, -1):
        out = out * t + coef[first, k]
    return out


# Values at the nodes 0..5 times this matrix give the interpolating polynomial's
# coefficients: the inverse of the Vandermonde matrix of the nodes, transposed.
_POWER_BASIS = np.linalg.inv(np.vander(np.arange(float(_NODES)), increasing=True)).T


def nctdtr(df, delta, t):
    """Noncentral t CDF.

    scipy 1.17's ``nctdtr`` returns nan far into the upper tail at large df (e.g.
    df 490, delta -5.8, t 5.9, where the CDF is 1 to double precision); those
    cells are computed by the numpy implementation instead.
    """
    sc = _scipy()
    if sc is None:
        return numpy_impl.nctdtr(df, delta, t)
    df, delta, t = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (df, delta, t)))
    out = np.asarray(sc.nctdtr(df, delta, t), dtype=float)
    bad = np.isnan(out) & ~(np.isnan(df) | np.isnan(delta) | np.isnan(t))
    if bad.any():
        out = out.copy()
        out[bad] = numpy_impl.nctdtr(df[bad], delta[bad], t[bad])
    return out[()] if out.ndim == 0 else out


def nct_abs_sf(df, delta, t):
    """P(|T| > t), t >= 0, for T noncentral t: both tails of a two-sided test.

    With scipy: T^2 is noncentral F(1, df) with noncentrality delta^2, so the
    probability is the survival function of ``ncfdtr`` at t^2.
    """
    sc = _scipy()
    if sc is None:
        return numpy_impl.nct_abs_sf(df, delta, t)
    df, delta, t = (np.asarray(v, dtype=float) for v in (df, delta, t))
    return np.clip(1.0 - sc.ncfdtr(1.0, df, delta * delta, t * t), 0.0, 1.0)
