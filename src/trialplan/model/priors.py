"""Planning assumptions given as distributions: the file format of priors.

Where the trial file expects a number for an uncertain assumption, it may give
a distribution instead, as a mapping with a ``distribution`` key::

    control_rate: {distribution: beta, events: 83, total: 216}
    icc: {distribution: beta, mean: 0.03, sd: 0.02}
    d: {distribution: normal, estimate: 0.3, ci: [0.05, 0.55]}
    hazard_ratio: {distribution: lognormal, estimate: 0.8, ci: [0.6, 1.07]}
    sd: {distribution: gamma, mean: 10, sd: 2}
    attrition: {distribution: uniform, lower: 0.1, upper: 0.25}

:func:`extract_priors` runs before the file is validated: it replaces each
such mapping by the distribution's stated centre (the number the plan uses,
validated like any other) and returns the priors, each converted to the
canonical parameters of :class:`trialplan.stats.assurance.Prior` (which the
planning layer builds; this module does not import ``stats``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from dataclasses import field as dc_field

from trialplan.model.loader import field_name

Z95 = 1.959963984540054  # the 97.5% normal quantile: a 95% interval is estimate +- Z95 SE

# Fields that may hold a prior, with the range their draws must stay in.
_PROBABILITY = (0.0, 1.0, "a probability, in (0, 1)")
_SHARE = (0.0, 1.0, "a share, in [0, 1)")
_REAL = (-math.inf, math.inf, "any number")
_POSITIVE = (0.0, math.inf, "a positive number")
_CORRELATION = (-1.0, 1.0, "a correlation, in (-1, 1)")
FIELDS = {
    ("assumptions", "attrition"): _SHARE,
    ("assumptions", "primary", "control_rate"): _PROBABILITY,
    ("assumptions", "primary", "intervention_rate"): _PROBABILITY,
    ("assumptions", "primary", "event_prob"): _PROBABILITY,
    ("assumptions", "primary", "difference"): _REAL,
    ("assumptions", "primary", "d"): _REAL,
    ("assumptions", "primary", "sd"): _POSITIVE,
    ("assumptions", "primary", "hazard_ratio"): _POSITIVE,
    ("assumptions", "primary", "rate"): _POSITIVE,
    ("assumptions", "primary", "rate_ratio"): _POSITIVE,
    ("assumptions", "primary", "baseline_corr"): _CORRELATION,
    ("assumptions", "clustering", "icc"): _SHARE,
    ("assumptions", "paths", "*", "a"): _REAL,
    ("assumptions", "paths", "*", "b"): _REAL,
    ("assumptions", "paths", "*", "cprime"): _REAL,
    ("assumptions", "paths", "*", "base_rate"): _PROBABILITY,
    ("change_model", "outcomes", "*", "attrition"): _SHARE,
}

# Each distribution's accepted parameter sets (file names), tried in order; each family's
# parser below turns them into the canonical parameters of stats.assurance.Prior.
FORMS = {
    "normal": (("mean", "sd"), ("estimate", "ci")),
    "lognormal": (("estimate", "ci"), ("median", "sd_log")),
    "gamma": (("mean", "sd"), ("shape", "scale")),
    "beta": (("events", "total"), ("mean", "sd"), ("a", "b")),
    "uniform": (("lower", "upper"),),
}
_TRUNCATION = ("lower", "upper")  # optional with a normal


@dataclass(frozen=True)
class PriorSpec:
    """One prior from the trial file, in canonical parameters.

    ``family`` and ``params`` are those of :class:`trialplan.stats.assurance.Prior`;
    ``centre`` is the number the plan uses; ``given`` echoes the file's mapping;
    ``path`` is where the file gives it (for located messages).
    """

    field: str
    family: str
    params: tuple
    centre: float
    given: tuple
    path: tuple = dc_field(default=(), compare=False)


def _key(path) -> tuple:
    return tuple("*" if isinstance(p, int) else p for p in path)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)


def _normal(v) -> tuple[tuple, float]:
    if "ci" in v:
        lo, hi = v["ci"]
        mean = v["estimate"]
        if not lo < mean < hi:
            raise ValueError(f"estimate {mean:g} must lie inside its ci [{lo:g}, {hi:g}]")
        sd = (hi - lo) / (2 * Z95)
    else:
        mean, sd = v["mean"], v["sd"]
    if sd <= 0:
        raise ValueError(f"sd must be positive; got {sd:g}")
    lower = v.get("lower", -math.inf)
    upper = v.get("upper", math.inf)
    if not lower <= mean <= upper:
        raise ValueError(f"the centre {mean:g} must lie between lower {lower:g} and upper "
                         f"{upper:g}")
    return (("mean", mean), ("sd", sd), ("lower", lower), ("upper", upper)), mean


def _lognormal(v) -> tuple[tuple, float]:
    if "ci" in v:
        lo, hi = v["ci"]
        median = v["estimate"]
        if lo <= 0 or not lo < median < hi:
            raise ValueError(f"a log-normal needs 0 < ci lower < estimate < ci upper; got "
                             f"{median:g} [{lo:g}, {hi:g}]")
        sigma = (math.log(hi) - math.log(lo)) / (2 * Z95)
    else:
        median, sigma = v["median"], v["sd_log"]
        if median <= 0 or sigma <= 0:
            raise ValueError("median and sd_log must be positive")
    if sigma > _SD_LOG_MAX:
        raise ValueError(f"sd_log {sigma:.3g} is more than {_SD_LOG_MAX:g}: a 95% interval over "
                         "a factor of 10^17 or more")
    return (("mu", math.log(median)), ("sigma", sigma)), median


# An sd below this share of the scale (mean, or mean (1 - mean) for a beta) is a fixed value
# written as a distribution: its parameters overflow (1e-300 squared is 0).
_SD_MIN = 1e-6
# The smallest a or b of a beta: below it, draws are exactly 0 or 1 in floating point often
# enough to matter (P(X < 5e-324) = 10^-32 at a = 0.1, 6e-4 at a = 0.01).
_BETA_MIN = 0.1
# The largest a + b of a beta: 1e12 puts its sd at a millionth of sqrt(mean (1 - mean)).
_BETA_MAX = 1e12
# The largest sd_log of a log-normal: a 95% interval over a factor of 10^17 is no belief about
# a ratio, and exp() of its draws overflows.
_SD_LOG_MAX = 10.0


def _too_narrow(sd: float) -> str:
    return (f"sd {sd:g} is too small for a distribution (below a millionth of the mean); "
            "give the value as a plain number if it is fixed")


def _gamma(v) -> tuple[tuple, float]:
    if "mean" in v:
        mean, sd = v["mean"], v["sd"]
        if mean <= 0 or sd <= 0:
            raise ValueError("mean and sd must be positive")
        if sd < _SD_MIN * mean:
            raise ValueError(_too_narrow(sd))
        shape, scale = (mean / sd) ** 2, sd * (sd / mean)  # sd * sd underflows for tiny sd
    else:
        shape, scale = v["shape"], v["scale"]
        if shape <= 0 or scale <= 0:
            raise ValueError("shape and scale must be positive")
    return (("shape", shape), ("scale", scale)), shape * scale


def _beta(v) -> tuple[tuple, float]:
    if "events" in v:
        # beta(events, total - events): its mean is the observed proportion.
        events, total = v["events"], v["total"]
        if not (float(events).is_integer() and float(total).is_integer()
                and 0 < events < total):
            raise ValueError(f"events and total must be whole numbers with 0 < events < "
                             f"total; got {events!r} of {total!r}")
        a, b = float(events), float(total - events)
    elif "mean" in v:
        mean, sd = v["mean"], v["sd"]
        if not 0 < mean < 1 or sd <= 0 or sd * sd >= mean * (1 - mean):
            top = math.sqrt(mean * (1 - mean)) if 0 < mean < 1 else 0.0
            raise ValueError(f"a beta with mean {mean:g} needs 0 < mean < 1 and 0 < sd < "
                             f"{top:.4g}")
        if sd < _SD_MIN * mean * (1 - mean):
            raise ValueError(_too_narrow(sd))
        k = mean * (1 - mean) / sd / sd - 1  # sd * sd underflows for tiny sd
        a, b = mean * k, (1 - mean) * k
    else:
        a, b = v["a"], v["b"]
        if a <= 0 or b <= 0:
            raise ValueError("a and b must be positive")
    if min(a, b) < _BETA_MIN:
        raise ValueError(f"this beta (a = {a:.3g}, b = {b:.3g}) puts its mass at 0 and 1 (its "
                         f"draws come out as exactly 0 or 1): a and b must be at least "
                         f"{_BETA_MIN:g}; give a smaller sd, or a uniform distribution")
    if a + b > _BETA_MAX:
        # Its sd is below a millionth of its scale: a fixed value (and a + b overflows).
        raise ValueError(f"this beta (a = {a:.3g}, b = {b:.3g}) is too narrow for a "
                         "distribution; give the value as a plain number if it is fixed")
    return (("a", a), ("b", b)), a / (a + b)


def _uniform(v) -> tuple[tuple, float]:
    lower, upper = v["lower"], v["upper"]
    if not lower < upper:
        raise ValueError(f"lower ({lower:g}) must be below upper ({upper:g})")
    return (("lower", lower), ("upper", upper)), 0.5 * (lower + upper)


_PARSERS = {"normal": _normal, "lognormal": _lognormal, "gamma": _gamma, "beta": _beta,
            "uniform": _uniform}


def _canonical(mapping: dict) -> tuple[str, tuple, float]:
    """(family, canonical params, centre) or ValueError saying what is wrong."""
    family = mapping.get("distribution")
    if not isinstance(family, str) or family not in FORMS:
        raise ValueError(f"distribution must be one of {', '.join(FORMS)}; got {family!r}")
    keys = set(mapping) - {"distribution"}
    extra_ok = set(_TRUNCATION) if family == "normal" else set()
    form = next((f for f in FORMS[family] if set(f) <= keys and keys - set(f) <= extra_ok),
                None)
    if form is None:
        wanted = " or ".join("{" + ", ".join(f) + "}" for f in FORMS[family])
        more = " (optionally with lower, upper)" if family == "normal" else ""
        raise ValueError(f"a {family} distribution takes {wanted}{more}; got "
                         f"{', '.join(sorted(keys)) or 'no parameters'}")
    v = {k: mapping[k] for k in keys}
    for k, val in v.items():
        if k == "ci":
            if not (isinstance(val, list) and len(val) == 2 and all(_number(x) for x in val)
                    and val[0] < val[1]):
                raise ValueError(f"ci must be a 95% interval [lower, upper] with lower < "
                                 f"upper; got {val!r}")
        elif not _number(val):
            raise ValueError(f"{k} must be a finite number; got {val!r}")
    params, centre = _PARSERS[family](v)
    spread = [value for name, value in params if name not in _TRUNCATION]
    if not all(math.isfinite(x) for x in (*spread, centre)):
        raise ValueError(f"this {family} distribution's parameters are not finite numbers "
                         f"({', '.join(f'{k} = {x:.3g}' for k, x in params)}); its values are "
                         "too extreme")
    return family, params, centre


def _support(family, params) -> tuple[float, float]:
    p = dict(params)
    if family in ("normal", "uniform"):
        return p["lower"], p["upper"]
    if family == "beta":
        return 0.0, 1.0
    return 0.0, math.inf


def _walk(data, path=()):
    if isinstance(data, dict):
        if "distribution" in data:
            yield path, data
            return
        for k, val in data.items():
            yield from _walk(val, (*path, k))
    elif isinstance(data, list):
        for i, val in enumerate(data):
            yield from _walk(val, (*path, i))


def extract_priors(data: dict, problem) -> tuple[dict, dict, list]:
    """Replace each distribution in the assumptions (and outcome attrition) by its centre.

    Parameters
    ----------
    data : dict
        The parsed trial file (not modified).
    problem : callable
        ``problem(path, message)`` -> a located problem (file, line, field).

    Returns
    -------
    data : dict
        A copy with each distribution replaced by its centre.
    priors : dict
        Field name (``assumptions.primary.control_rate``) -> :class:`PriorSpec`.
    problems : list
        One located problem for each distribution that is invalid or not allowed.
    """
    found = [*_walk(data.get("assumptions"), ("assumptions",)),
             *_walk(data.get("change_model"), ("change_model",))] if isinstance(data, dict) else []
    if not found:
        return data, {}, []
    out = copy.deepcopy(data)
    priors, problems = {}, []
    allowed = ", ".join(field_name(k) for k in FIELDS)
    for path, mapping in found:
        rule = FIELDS.get(_key(path))
        if rule is None:
            problems.append(problem(path, "a distribution is not accepted here; fields that "
                                    f"take one: {allowed}"))
            continue
        try:
            family, params, centre = _canonical(mapping)
        except ValueError as exc:
            problems.append(problem(path, str(exc)))
            continue
        lo, hi, what = rule
        s_lo, s_hi = _support(family, params)
        if s_lo < lo or s_hi > hi:
            problems.append(problem(path, f"this {family} distribution reaches "
                                    f"[{s_lo:g}, {s_hi:g}] but the field is {what}: "
                                    "truncate it (lower, upper) or choose a distribution "
                                    "that stays in range"))
            continue
        parent = out
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = centre
        name = field_name(path)
        priors[name] = PriorSpec(name, family, params, centre,
                                 tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                                              for k, v in mapping.items())), tuple(path))
    return out, priors, problems
