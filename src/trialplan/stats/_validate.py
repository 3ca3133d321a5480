"""Up-front argument checks with one message format: "power must be in (0, 1); got 1.2"."""

from __future__ import annotations

import numpy as np

from trialplan.errors import InputError


def _show(value) -> str:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return f"{float(arr):g}"
    return ", ".join(f"{v:g}" for v in arr.ravel()[:6]) + (" ..." if arr.size > 6 else "")


def as_array(name: str, value) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number; got {value!r}", names=(name,)) from None
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} must be finite; got {_show(arr)}", names=(name,))
    return arr


def in_range(name: str, value, low: float, high: float, *, low_open=True, high_open=True):
    arr = as_array(name, value)
    ok_low = arr > low if low_open else arr >= low
    ok_high = arr < high if high_open else arr <= high
    if not np.all(ok_low & ok_high):
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        hi = "inf" if high == np.inf else f"{high:g}"
        raise InputError(f"{name} must be in {left}{low:g}, {hi}{right}; got {_show(arr)}",
                         names=(name,))
    return arr


def positive(name: str, value):
    return in_range(name, value, 0.0, np.inf)


def at_least(name: str, value, bound: float):
    arr = as_array(name, value)
    if not np.all(arr >= bound):
        raise InputError(f"{name} must be at least {bound:g}; got {_show(arr)}", names=(name,))
    return arr


def _and(words) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def exactly_one_missing(**named) -> str:
    """The one argument left out (None), which is what gets solved for."""
    missing = [k for k, v in named.items() if v is None]
    if len(missing) != 1:
        names = _and(named)
        if not missing:
            raise InputError(f"leave out exactly one of {names} to solve for it; {names} were "
                             "all given", names=tuple(named))
        both = "both" if len(missing) == 2 else "all"
        raise InputError(f"leave out exactly one of {names} to solve for it; "
                         f"{_and(missing)} were {both} left out", names=tuple(named))
    return missing[0]


def choice(name: str, value: str, options) -> str:
    if value not in options:
        raise InputError(f"{name} must be one of {', '.join(options)}; got {value!r}",
                         names=(name,))
    return value
