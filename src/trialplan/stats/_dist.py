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
    """Student t quantile."""
    sc = _scipy()
    return sc.stdtrit(np.asarray(df, dtype=float), np.asarray(p, dtype=float)) if sc \
        else numpy_impl.stdtrit(df, p)


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
