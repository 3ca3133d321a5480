"""One vectorised root finder shared by every closed-form design, and one whole-number search.

Every design answers "solve for the one missing quantity" through
:func:`solve_increasing`: the unknown (a sample size, an effect magnitude) is
found where an increasing function of it (power) meets the target.  It works
elementwise on arrays, so a whole grid of assumptions is one call, and each
iteration evaluates only the cells that have not converged.

The bracket is checked before any iteration: if the function never reaches the
target inside the admissible range the caller's ``unreachable`` callback raises
an error that says how far it gets.  A bracket bound is never returned as an
answer.  Iteration is the Anderson-Bjorck variant of regula falsi (superlinear,
never leaves the bracket) on a scale where power curves are nearly straight:
probit(power) against sqrt(n) or against the effect.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from trialplan.stats._dist import ndtri

_EPS = 1e-15
_SCALES = {
    "linear": (lambda v: v, lambda v: v),
    "sqrt": (np.sqrt, np.square),
    "log": (np.log, np.exp),
}


def solve_increasing(
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    target,
    lo,
    hi,
    *,
    scale: str = "linear",
    rtol: float = 1e-11,
    ftol: float = 1e-12,
    maxiter: int = 200,
    unreachable: Callable[[np.ndarray, np.ndarray], None],
    guess=None,
    values: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Solve ``fn(x) == target`` for x in ``[lo, hi]``, with fn increasing in x.

    Parameters
    ----------
    fn
        ``fn(x, cells)``: the function at ``x`` for the flat cell indices
        ``cells`` (a 1-d integer array into the broadcast shape); it returns
        one value per cell.
    target, lo, hi
        Target values and the admissible range, broadcast together.
    scale
        ``"linear"``, ``"sqrt"`` or ``"log"``: the scale of x to iterate on.
    rtol, ftol
        Stop when the bracket is narrower than ``rtol`` relative to x, or the
        function is within ``ftol`` of the target on the probit scale.
    unreachable
        Called with the boolean mask (broadcast shape) of cells where
        ``fn(hi) < target`` and the values ``fn(hi)``; it must raise.
    guess
        An approximate root.  The bracket is narrowed around it by doubling
        (or halving) first, which keeps every evaluation near the answer.
    values
        Also return ``fn`` at each root: the solver's own last evaluation,
        so a caller that reports the power at the answer need not compute it
        again.

    Returns
    -------
    numpy.ndarray
        The root for every cell, in the broadcast shape.  Cells where
        ``fn(lo) >= target`` already return ``lo``.  With ``values``, the
        pair (roots, ``fn`` at the roots).
    """
    target, lo, hi = np.broadcast_arrays(
        np.asarray(target, dtype=float), np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    )
    if guess is not None:
        guess = np.broadcast_to(np.asarray(guess, dtype=float), target.shape)
    shape = target.shape
    target = target.ravel()
    lo = lo.ravel().copy()
    hi = hi.ravel().copy()
    size = target.size
    probit_target = ndtri(np.clip(target, _EPS, 1 - _EPS))

    def f(x, cells):
        return np.asarray(fn(x, cells), dtype=float).reshape(-1)

    everyone = np.arange(size)
    f_lo = np.full(size, np.nan)
    f_hi = np.full(size, np.nan)
    if guess is not None:
        x0 = np.clip(guess.ravel(), lo, hi)
        x0 = np.where(np.isfinite(x0), x0, hi)
        f0 = f(x0, everyone)
        reached = f0 >= target
        hi = np.where(reached, x0, hi)
        f_hi = np.where(reached, f0, f_hi)
        lo = np.where(reached, lo, x0)
        f_lo = np.where(reached, f_lo, f0)
        # Walk up from below by doubling; down from above by halving.
        pending = np.flatnonzero(~reached & (x0 < hi))
        step_hi = x0.copy()
        # A good guess is close: try 5% and 25% above it first, then double.
        for factor in (1.05, 1.25, *([2.0] * 64)):
            if pending.size == 0:
                break
            step_hi[pending] = np.minimum(step_hi[pending] * factor, hi[pending])
            fv = f(step_hi[pending], pending)
            ok = fv >= target[pending]
            hi[pending[ok]] = step_hi[pending[ok]]
            f_hi[pending[ok]] = fv[ok]
            lo[pending[~ok]] = step_hi[pending[~ok]]
            f_lo[pending[~ok]] = fv[~ok]
            pending = pending[~ok & (step_hi[pending] < hi[pending])]
        above = np.flatnonzero(reached)
        if above.size:
            down = np.maximum(x0[above] / 1.25, lo[above])
            fv = f(down, above)
            below = fv < target[above]
            lo[above[below]] = down[below]
            f_lo[above[below]] = fv[below]
    need = np.flatnonzero(np.isnan(f_hi))
    if need.size:
        f_hi[need] = f(hi[need], need)
    bad = ~(f_hi >= target)
    if bad.any():
        unreachable(bad.reshape(shape), f_hi.reshape(shape))
    need = np.flatnonzero(np.isnan(f_lo))
    if need.size:
        f_lo[need] = f(lo[need], need)

    fwd, inv = _SCALES[scale]

    def g(values, cells):
        return ndtri(np.clip(values, _EPS, 1 - _EPS)) - probit_target[cells]

    a, b = fwd(lo), fwd(hi)
    ga, gb = g(f_lo, everyone), g(f_hi, everyone)
    done = ga >= 0
    x = np.where(done, lo, hi)
    fx = np.where(done, f_lo, f_hi)
    active = np.flatnonzero(~done)
    for _ in range(maxiter):
        if active.size == 0:
            break
        aa, bb, fa, fb = a[active], b[active], ga[active], gb[active]
        denom = fb - fa
        c = np.where(denom != 0, bb - fb * (bb - aa) / np.where(denom != 0, denom, 1.0),
                     0.5 * (aa + bb))
        inside = (c > np.minimum(aa, bb)) & (c < np.maximum(aa, bb))
        c = np.where(inside, c, 0.5 * (aa + bb))
        fv = f(inv(c), active)
        fc = g(fv, active)
        same = np.sign(fc) == np.sign(fb)
        # Anderson-Bjorck: shrink the stale end's value rather than halving it.
        m = np.where(fb != 0, 1.0 - fc / np.where(fb != 0, fb, 1.0), 0.5)
        m = np.where(m > 0, m, 0.5)
        a[active] = np.where(same, aa, bb)
        ga[active] = np.where(same, fa * m, fb)
        b[active] = c
        gb[active] = fc
        x[active] = inv(c)
        fx[active] = fv
        width = np.abs(c - a[active])
        tol = rtol if scale == "log" else rtol * np.maximum(np.abs(c), 1e-300)
        converged = (width <= tol) | (np.abs(fc) <= ftol)
        active = active[~converged]
    if values:
        return x.reshape(shape), fx.reshape(shape)
    return x.reshape(shape)


def smallest_whole(reaches: Callable[[int], bool], lo: int, hi: int) -> int:
    """The smallest whole number in ``(lo, hi]`` for which ``reaches`` is true.

    ``reaches`` must be monotone (false up to some point, true from there on),
    false at ``lo`` and true at ``hi``; bisection then asks it about
    log2(hi - lo) numbers.  Used where the unknown is a count (participants,
    clusters) and each power evaluation is costly or simulated.
    """
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if reaches(mid):
            hi = mid
        else:
            lo = mid
    return hi
