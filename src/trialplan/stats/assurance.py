"""Assurance: the probability that a trial succeeds, averaged over what is uncertain.

A power calculation fixes every planning assumption at one value.  Assurance
(O'Hagan, Stevens & Campbell, Pharm Stat 2005) gives each uncertain assumption
a prior distribution and reports the expected probability of success::

    assurance(n) = E_prior[ P(success | n, theta) ]

This module is pure numbers: priors in, draws, assurance out.  The expectation
is a Monte Carlo average over draws from the priors; each draw's probability is
computed by the closed-form power functions of :mod:`trialplan.stats.designs`
called once on the whole array of draws.  Because each draw contributes an
exact conditional probability (not a simulated 0/1 outcome), the Monte Carlo
standard error is ``sd(P) / sqrt(draws)``, and with a prior that is a point
mass the assurance is exactly the power.

Draws are seeded per parameter from ``SeedSequence([seed, crc32(name)])``, so a
parameter's draws depend only on the seed and its name, not on which other
parameters have priors.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from trialplan.errors import InputError, UnreachableTargetError
from trialplan.stats import _dist as sp

FAMILIES = ("normal", "lognormal", "gamma", "beta", "uniform", "point")
"""The prior families, with their canonical parameters:

- ``normal``: mean, sd, lower, upper (truncated to [lower, upper]; +-inf for none)
- ``lognormal``: mu, sigma (of the logarithm)
- ``gamma``: shape, scale
- ``beta``: a, b
- ``uniform``: lower, upper
- ``point``: value (a point mass: assurance equals power)
"""

_PARAMS = {"normal": ("mean", "sd", "lower", "upper"), "lognormal": ("mu", "sigma"),
           "gamma": ("shape", "scale"), "beta": ("a", "b"), "uniform": ("lower", "upper"),
           "point": ("value",)}

DEFAULT_DRAWS = 100_000


def _positive(name, value):
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a positive finite number; got {value!r}")


@dataclass(frozen=True)
class Prior:
    """A prior distribution for one planning assumption.

    Parameters
    ----------
    family : {"normal", "lognormal", "gamma", "beta", "uniform", "point"}
        See :data:`FAMILIES` for the parameters of each.
    params : tuple of (name, value)
        The family's canonical parameters (use the constructors below).
    """

    family: str
    params: tuple

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise InputError(f"family must be one of {', '.join(FAMILIES)}; got {self.family!r}")
        names = tuple(k for k, _ in self.params)
        if set(names) != set(_PARAMS[self.family]):
            raise InputError(f"a {self.family} prior takes {', '.join(_PARAMS[self.family])}; "
                             f"got {', '.join(names)}")
        p = self.p
        if self.family == "normal":
            _positive("sd", p["sd"])
            if not p["lower"] < p["upper"]:
                raise InputError(f"lower ({p['lower']:g}) must be below upper ({p['upper']:g})")
            if not p["lower"] <= p["mean"] <= p["upper"]:
                raise InputError(f"mean ({p['mean']:g}) must lie between lower and upper")
        elif self.family == "lognormal":
            _positive("sigma", p["sigma"])
        elif self.family == "gamma":
            _positive("shape", p["shape"])
            _positive("scale", p["scale"])
        elif self.family == "beta":
            _positive("a", p["a"])
            _positive("b", p["b"])
        elif self.family == "uniform":
            if not (math.isfinite(p["lower"]) and math.isfinite(p["upper"])
                    and p["lower"] < p["upper"]):
                raise InputError("a uniform prior needs finite lower < upper")

    @property
    def p(self) -> dict:
        return dict(self.params)

    # Constructors ---------------------------------------------------------------------------

    @classmethod
    def normal(cls, mean, sd, lower=-math.inf, upper=math.inf) -> Prior:
        return cls("normal", (("mean", float(mean)), ("sd", float(sd)),
                              ("lower", float(lower)), ("upper", float(upper))))

    @classmethod
    def lognormal(cls, mu, sigma) -> Prior:
        return cls("lognormal", (("mu", float(mu)), ("sigma", float(sigma))))

    @classmethod
    def gamma(cls, shape, scale) -> Prior:
        return cls("gamma", (("shape", float(shape)), ("scale", float(scale))))

    @classmethod
    def beta(cls, a, b) -> Prior:
        return cls("beta", (("a", float(a)), ("b", float(b))))

    @classmethod
    def uniform(cls, lower, upper) -> Prior:
        return cls("uniform", (("lower", float(lower)), ("upper", float(upper))))

    @classmethod
    def point(cls, value) -> Prior:
        return cls("point", (("value", float(value)),))

    # Summaries ------------------------------------------------------------------------------

    @property
    def mean(self) -> float:
        """The distribution's mean (for a truncated normal, of the truncated distribution)."""
        p, f = self.p, self.family
        if f == "normal":
            alpha, beta = self._std_bounds()
            za = float(sp.ndtr(alpha))
            zb = float(sp.ndtr(beta))
            phi = _phi(alpha) - _phi(beta)
            return p["mean"] + p["sd"] * phi / (zb - za)
        if f == "lognormal":
            return math.exp(p["mu"] + p["sigma"] ** 2 / 2)
        if f == "gamma":
            return p["shape"] * p["scale"]
        if f == "beta":
            return p["a"] / (p["a"] + p["b"])
        if f == "uniform":
            return 0.5 * (p["lower"] + p["upper"])
        return p["value"]

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The central ``level`` interval of the prior."""
        lo, hi = self.ppf(np.array([(1 - level) / 2, (1 + level) / 2]))
        return float(lo), float(hi)

    def support(self) -> tuple[float, float]:
        p, f = self.p, self.family
        if f == "normal":
            return p["lower"], p["upper"]
        if f in ("lognormal", "gamma"):
            return 0.0, math.inf
        if f == "beta":
            return 0.0, 1.0
        if f == "uniform":
            return p["lower"], p["upper"]
        return p["value"], p["value"]

    # Draws ----------------------------------------------------------------------------------

    def _std_bounds(self):
        p = self.p
        return (p["lower"] - p["mean"]) / p["sd"], (p["upper"] - p["mean"]) / p["sd"]

    def ppf(self, u) -> np.ndarray:
        """Quantile function (for quadrature and truncated-normal draws)."""
        from scipy import special

        u = np.asarray(u, dtype=float)
        p, f = self.p, self.family
        if f == "normal":
            alpha, beta = self._std_bounds()
            lo, hi = sp.ndtr(alpha), sp.ndtr(beta)
            return p["mean"] + p["sd"] * sp.ndtri(lo + u * (hi - lo))
        if f == "lognormal":
            return np.exp(p["mu"] + p["sigma"] * sp.ndtri(u))
        if f == "gamma":
            return p["scale"] * special.gammaincinv(p["shape"], u)
        if f == "beta":
            return special.betaincinv(p["a"], p["b"], u)
        if f == "uniform":
            return p["lower"] + u * (p["upper"] - p["lower"])
        return np.full(u.shape, p["value"])

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        p, f = self.p, self.family
        if f == "normal":
            if math.isinf(p["lower"]) and math.isinf(p["upper"]):
                return rng.normal(p["mean"], p["sd"], size)
            return self.ppf(rng.random(size))
        if f == "lognormal":
            return rng.lognormal(p["mu"], p["sigma"], size)
        if f == "gamma":
            return rng.gamma(p["shape"], p["scale"], size)
        if f == "beta":
            return rng.beta(p["a"], p["b"], size)
        if f == "uniform":
            return rng.uniform(p["lower"], p["upper"], size)
        return np.full(size, p["value"])

    def describe(self) -> str:
        """A short description for documents, e.g. ``beta(83, 133)``."""
        p, f = self.p, self.family
        if f == "normal":
            text = f"normal(mean {p['mean']:.4g}, sd {p['sd']:.4g})"
            if math.isfinite(p["lower"]) or math.isfinite(p["upper"]):
                text += f" truncated to [{p['lower']:.4g}, {p['upper']:.4g}]"
            return text
        if f == "lognormal":
            return f"log-normal(median {math.exp(p['mu']):.4g}, sd of log {p['sigma']:.4g})"
        if f == "gamma":
            return f"gamma(shape {p['shape']:.4g}, scale {p['scale']:.4g})"
        if f == "beta":
            return f"beta({p['a']:.4g}, {p['b']:.4g})"
        if f == "uniform":
            return f"uniform({p['lower']:.4g}, {p['upper']:.4g})"
        return f"point mass at {p['value']:.4g}"


def _phi(x):
    return 0.0 if math.isinf(x) else math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def draw_priors(priors: Mapping[str, Prior], draws: int = DEFAULT_DRAWS,
                seed: int = 0) -> dict[str, np.ndarray]:
    """Draws from each prior, seeded by ``(seed, name)`` so they do not depend on the others."""
    if not isinstance(draws, (int, np.integer)) or draws < 2:
        raise InputError(f"draws must be a whole number of at least 2; got {draws!r}")
    out = {}
    for name, prior in priors.items():
        ss = np.random.SeedSequence([int(seed), zlib.crc32(name.encode("utf-8"))])
        out[name] = prior.draw(np.random.default_rng(ss), int(draws))
    return out


@dataclass(frozen=True)
class Assurance:
    """An expected probability of success with its Monte Carlo error."""

    assurance: float
    mc_se: float
    draws: int
    seed: int

    def to_dict(self) -> dict:
        return {"assurance": self.assurance, "mc_se": self.mc_se, "draws": self.draws,
                "seed": self.seed}


def expectation(probabilities, draws: int, seed: int) -> Assurance:
    """The mean of per-draw success probabilities and its Monte Carlo standard error."""
    p = np.asarray(probabilities, dtype=float)
    se = float(np.std(p, ddof=1) / math.sqrt(p.size)) if p.size > 1 else 0.0
    return Assurance(float(np.mean(p)), se, int(draws), int(seed))


def _subset(args: dict, mask, shape) -> dict:
    return {k: (v[mask] if isinstance(v, np.ndarray) and v.shape == shape else v)
            for k, v in args.items()}


def favourable_power(design: Callable, args: dict, effect, direction: str, alpha: float):
    """P(a two-sided test at ``alpha`` is significant in favour of the intervention), per draw.

    Parameters
    ----------
    design : callable
        A closed-form design of :mod:`trialplan.stats.designs` (``means``,
        ``proportions``, ``survival``): called with ``n`` given and ``power``
        left out.
    args : dict
        Its arguments; arrays of the same shape as ``effect`` are the draws.
    effect : array
        The signed effect of each draw (intervention compared with control).
    direction : {"greater", "less"}
        The direction that counts as success.
    alpha : float
        Two-sided significance level.

    Notes
    -----
    A two-sided test rejects in the favourable direction with the probability
    of the one-sided test at alpha / 2 in that direction: for draws pointing
    that way it is computed so; for draws pointing the other way it is the
    two-sided power minus the one-sided power in the draw's own direction
    (the designs refuse a one-sided test against its effect).  A draw of
    exactly zero effect rejects in each direction with probability alpha / 2.
    Significance in the harmful direction is not counted as success.
    """
    effect = np.asarray(effect, dtype=float)
    shape = effect.shape
    other = "less" if direction == "greater" else "greater"
    good = effect > 0 if direction == "greater" else effect < 0
    zero = effect == 0
    bad = ~good & ~zero
    out = np.full(shape, alpha / 2.0)
    if good.any():
        out[good] = design(**_subset(args, good, shape), alpha=alpha / 2, sided="one",
                           alternative=direction).power
    if bad.any():
        sub = _subset(args, bad, shape)
        two = design(**sub, alpha=alpha).power
        own = design(**sub, alpha=alpha / 2, sided="one", alternative=other).power
        out[bad] = np.maximum(np.asarray(two) - np.asarray(own), 0.0)
    return out


def n_for_assurance(assurance_at: Callable[[int], float], target: float, *, lo: int,
                    hi: int, ceiling: float | None = None,
                    known: Mapping[int, float] | None = None) -> int:
    """The smallest whole n in [lo, hi] whose assurance reaches ``target``.

    ``assurance_at`` must rise with n (it does when the same draws are reused
    for every n).  ``ceiling`` is the assurance as n grows without bound (the
    prior probability that the effect favours the intervention): a target at or
    above it cannot be reached, whatever n.  ``known`` holds assurances already
    computed with the same function (the plan's expected power curve): they
    narrow the search before anything is evaluated.

    Notes
    -----
    Each evaluation averages over every draw, so the search keeps them few:
    it interpolates between the ends of the bracket (and the nearest point
    already computed, see ``_crossing``), checks the neighbour across a
    guess that narrowed the bracket tenfold, and bisects whenever a guess
    fails to halve the bracket.  For a rising function the answer is the same
    as bisection's.
    """
    if not 0 < target < 1:
        raise InputError(f"target assurance must be in (0, 1); got {target!r}")
    if ceiling is not None and target >= ceiling:
        raise UnreachableTargetError(
            f"assurance {target:g} cannot be reached at any n: even a very large trial succeeds "
            f"only when the true effect favours the intervention, which has prior probability "
            f"{ceiling:.3f}")
    values = {int(n): float(v) for n, v in (known or {}).items() if lo <= n <= hi}

    def at(n: int) -> float:
        if n not in values:
            values[n] = float(assurance_at(n))
        return values[n]

    reached = [n for n, v in values.items() if v >= target]
    if reached:
        hi = min(reached)
    elif at(hi) < target:
        raise UnreachableTargetError(f"assurance at n = {hi:,} is {at(hi):.3f}, "
                                     f"below the target {target:g}")
    below = [n for n, v in values.items() if v < target and n < hi]
    if below:
        lo = max(below)
    elif at(lo) >= target:
        return lo
    # invariant: at(lo) < target <= at(hi)
    bisect = False
    while hi - lo > 1:
        width = hi - lo
        guessed = not bisect
        mid = (lo + hi) // 2 if bisect else min(hi - 1, max(lo + 1, math.ceil(
            _crossing(values, lo, hi, target))))
        reached = at(mid) >= target
        lo, hi = (lo, mid) if reached else (mid, hi)
        if guessed and 1 < hi - lo <= width // 10:
            # A guess that narrowed the bracket tenfold is usually next to the answer:
            # look across it at once.
            beside = mid - 1 if reached else mid + 1
            lo, hi = (lo, beside) if at(beside) >= target else (beside, hi)
        bisect = guessed and 2 * (hi - lo) > width
    return hi


def _crossing(values: Mapping[int, float], lo: int, hi: int, target: float) -> float:
    """Where the assurance crosses ``target`` between lo and hi, interpolated.

    Inverse quadratic interpolation through the bracket's ends and the nearest
    other point already computed, when it falls inside the bracket; linear
    interpolation between the ends otherwise.
    """
    f_lo, f_hi = values[lo], values[hi]
    if not f_hi > f_lo:
        return (lo + hi) / 2
    linear = lo + (target - f_lo) / (f_hi - f_lo) * (hi - lo)
    others = [n for n in values if n not in (lo, hi)]
    if not others:
        return linear
    third = min(others, key=lambda n: min(abs(n - lo), abs(n - hi)))
    points = [(lo, f_lo), (hi, f_hi), (third, values[third])]
    if len({f for _, f in points}) < 3:
        return linear
    x = sum(n * math.prod((target - g) / (f - g) for m, g in points if m != n)
            for n, f in points)
    return x if lo < x < hi else linear
