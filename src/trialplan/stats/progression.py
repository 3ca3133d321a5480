"""Operating characteristics of traffic-light progression criteria.

A pilot's progression criterion compares an observed share (retained,
adherent) or an observed count (randomised, as a share of the projection)
with a green and an amber threshold: green at or above ``green``, amber at or
above ``amber``, red below.  Given the true value, the probabilities of each
decision follow from the distribution of the observed count at the pilot's
actual denominator (Lewis et al., Pilot Feasibility Stud 2021):

- a share of ``n`` independent participants: binomial(n, p);
- a share clustered by peer worker or site (intra-cluster correlation rho):
  a sum over clusters of beta-binomial(m_j, p, rho) counts;
- a count of randomised participants: Poisson, or with between-site
  over-dispersion (site rates gamma distributed with coefficient of variation
  cv) a sum over sites of negative binomial counts.

Everything here is pure numbers.  Probabilities are exact sums of the count
distribution (binomial tails by the regularised incomplete beta function,
convolutions for sums over clusters and sites).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from trialplan.errors import InputError

DECISIONS = ("green", "amber", "red")
_TAIL = 1e-13  # count distributions are summed until this much probability is left


def _threshold_count(threshold: float, denominator: float) -> int:
    """The smallest count whose share of ``denominator`` reaches ``threshold``."""
    return int(math.ceil(threshold * denominator - 1e-9))


def _check(green, amber):
    if not 0 < amber < green:
        raise InputError(f"need 0 < amber < green; got amber {amber!r}, green {green!r}")


def binomial_sf(k, n, p):
    """P(X >= k) for X ~ binomial(n, p): the regularised incomplete beta I_p(k, n - k + 1)."""
    k = np.asarray(k, dtype=float)
    p = np.asarray(p, dtype=float)
    out = np.where(k <= 0, 1.0, 0.0)
    inside = (k > 0) & (k <= n)
    with np.errstate(invalid="ignore"):
        tail = special.betainc(np.where(inside, k, 1.0), np.where(inside, n - k + 1.0, 1.0), p)
    return np.where(inside, tail, out)


def _decide(p_ge_green, p_ge_amber) -> dict:
    green = np.asarray(p_ge_green, dtype=float)
    amber = np.asarray(p_ge_amber, dtype=float) - green
    red = 1.0 - green - amber
    return {"green": green, "amber": np.maximum(amber, 0.0), "red": np.maximum(red, 0.0)}


def binomial_oc(n: int, green: float, amber: float, true) -> dict:
    """P(green), P(amber), P(red) of a share of ``n`` independent participants.

    Parameters
    ----------
    n : int
        The denominator (participants the share is measured on).
    green, amber : float
        Thresholds: green if X / n >= green; amber if X / n >= amber; else red.
    true : float or array
        True share(s) p.

    Returns
    -------
    dict
        ``{"green": array, "amber": array, "red": array}`` over ``true``.
    """
    _check(green, amber)
    if n < 1:
        raise InputError(f"n must be at least 1; got {n!r}")
    return _decide(binomial_sf(_threshold_count(green, n), n, true),
                   binomial_sf(_threshold_count(amber, n), n, true))


_RHO_BINOMIAL = 1e-6


def betabinom_pmf(m: int, p: float, rho: float) -> np.ndarray:
    """pmf of beta-binomial(m, a, b) with mean p and intra-cluster correlation rho."""
    x = np.arange(m + 1, dtype=float)
    # Below _RHO_BINOMIAL the variance differs from the binomial's by a factor 1 + (m - 1) rho,
    # a few parts in 1e5, while the beta's parameters grow as 1 / rho and the difference of
    # the betaln terms loses digits (1e-300 gave NaN): the binomial is then the answer.
    if rho < _RHO_BINOMIAL:
        logp = (special.gammaln(m + 1) - special.gammaln(x + 1) - special.gammaln(m - x + 1)
                + special.xlogy(x, p) + special.xlog1py(m - x, -p))
        return np.exp(logp)
    s = (1.0 - rho) / rho
    a, b = p * s, (1.0 - p) * s
    logp = (special.gammaln(m + 1) - special.gammaln(x + 1) - special.gammaln(m - x + 1)
            + special.betaln(x + a, m - x + b) - special.betaln(a, b))
    return np.exp(logp)


def cluster_sizes(n: int, cluster_size: float) -> list[int]:
    """``n`` in the fewest clusters of at most ``cluster_size``, as even as possible."""
    k = max(1, int(math.ceil(n / cluster_size - 1e-9)))
    base, extra = divmod(n, k)
    return [base + 1] * extra + [base] * (k - extra)


def clustered_pmf(sizes, p: float, rho: float) -> np.ndarray:
    """pmf of the total count over clusters, each beta-binomial(m_j, p, rho)."""
    out = np.array([1.0])
    for m in sizes:
        out = np.convolve(out, betabinom_pmf(int(m), p, rho))
    return out


def clustered_oc(sizes, green: float, amber: float, true, icc: float) -> dict:
    """Decision probabilities of a share clustered by peer worker or site.

    Each cluster's count is beta-binomial with mean ``true`` and intra-cluster
    correlation ``icc`` (variance of the share inflated by 1 + (m - 1) icc);
    the total is their convolution.  ``icc = 0`` gives the binomial.
    """
    _check(green, amber)
    n = int(sum(sizes))
    kg, ka = _threshold_count(green, n), _threshold_count(amber, n)
    true = np.atleast_1d(np.asarray(true, dtype=float))
    ge_g, ge_a = np.empty(true.shape), np.empty(true.shape)
    for i, p in enumerate(true):
        p = min(max(float(p), 1e-12), 1.0 - 1e-12)  # the ends are the limits
        pmf = clustered_pmf(sizes, p, icc)
        tail = np.cumsum(pmf[::-1])[::-1]
        ge_g[i] = tail[kg] if kg <= n else 0.0
        ge_a[i] = tail[ka] if ka <= n else 0.0
    return _decide(np.clip(ge_g, 0, 1), np.clip(ge_a, 0, 1))


# Below this rate CV the negative binomial is the Poisson to double precision (its gamma
# shape 1 / cv^2 would overflow).
_CV_POISSON = 1e-6


def _count_pmf(mean: float, cv: float | None, top: int) -> np.ndarray:
    """pmf on 0..top of a Poisson(mean), or a negative binomial with rate CV ``cv``."""
    x = np.arange(top + 1, dtype=float)
    if mean <= 0:
        out = np.zeros(top + 1)
        out[0] = 1.0
        return out
    if not cv or cv < _CV_POISSON:
        return np.exp(special.xlogy(x, mean) - mean - special.gammaln(x + 1))
    k = 1.0 / (cv * cv)  # gamma shape of the site's rate
    q = mean / (mean + k)
    return np.exp(special.gammaln(x + k) - special.gammaln(k) - special.gammaln(x + 1)
                  + k * math.log1p(-q) + special.xlogy(x, q))


def count_pmf(site_means, cv: float | None = None) -> np.ndarray:
    """pmf of a total count over sites: Poisson, or negative binomial per site (rate CV ``cv``)."""
    site_means = [float(m) for m in site_means if m > 0]
    total = sum(site_means)
    var = sum(m + (cv * m) ** 2 if cv else m for m in site_means)
    top = int(math.ceil(total + 12.0 * math.sqrt(max(var, 1.0)) + 20))
    out = np.array([1.0])
    for m in site_means:
        out = np.convolve(out, _count_pmf(m, cv, top))[: top + 1]
    return out


def recruitment_oc(site_projection, green: float, amber: float, true, cv: float | None = None
                   ) -> dict:
    """Decision probabilities for recruitment judged as observed / projected randomised.

    Parameters
    ----------
    site_projection : sequence of float
        Projected number randomised at each site by the pilot's end.
    green, amber : float
        Thresholds on observed / projected.
    true : float or array
        True ratio(s) of the recruitment rate to the projected rate.
    cv : float, optional
        Between-site coefficient of variation of the rate: each site's count
        is then negative binomial (gamma-mixed Poisson), variance
        mu + (cv mu)^2; without it, Poisson.
    """
    _check(green, amber)
    site_projection = [float(s) for s in site_projection]
    projected = sum(site_projection)
    if projected <= 0:
        raise InputError("the projection must be positive")
    kg, ka = _threshold_count(green, projected), _threshold_count(amber, projected)
    true = np.atleast_1d(np.asarray(true, dtype=float))
    ge_g, ge_a = np.empty(true.shape), np.empty(true.shape)
    for i, r in enumerate(true):
        pmf = count_pmf([r * s for s in site_projection], cv)
        tail = np.cumsum(pmf[::-1])[::-1]
        ge_g[i] = tail[kg] if kg < tail.size else 0.0
        ge_a[i] = tail[ka] if ka < tail.size else 0.0
    return _decide(np.clip(ge_g, 0, 1), np.clip(ge_a, 0, 1))


def recruitment_half_width(site_projection, green: float, z: float, cv: float | None = None
                           ) -> float:
    """Half-width, on the observed/projected scale, of the interval at the green count.

    With the count at green x projected, its variance is the sum over sites of
    g mu_s (Poisson) plus (cv g mu_s)^2 (negative binomial); the half-width is
    z sqrt(variance) / projected, i.e. z sqrt(green / projected) for one
    Poisson count.
    """
    projected = float(sum(site_projection))
    var = sum(green * s + ((cv or 0.0) * green * s) ** 2 for s in site_projection)
    return z * math.sqrt(var) / projected


def design_effect(sizes, icc: float) -> float:
    """Variance inflation of a share from clusters of these sizes: 1 + (m_w - 1) icc.

    m_w = sum m_j^2 / sum m_j (the size-weighted mean cluster size).
    """
    sizes = np.asarray(sizes, dtype=float)
    mw = float(np.sum(sizes**2) / np.sum(sizes))
    return 1.0 + (mw - 1.0) * icc


def wilson(p: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval for a share p of n (n may be an effective size)."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def n_for_half_width(p: float, half_width: float, z: float, design_effect: float = 1.0) -> int:
    """Participants for a normal-approximation interval of +-``half_width`` around p.

    n = z^2 p (1 - p) DE / w^2, rounded up (Teare et al., Trials 2014, use this
    to size feasibility estimates; ``samplesize_confint_proportion`` in
    statsmodels without DE).
    """
    # Below 0.001 the n runs to millions (and 1e-300 squared is 0): no feasibility study
    # estimates a share that closely.
    if not 0.001 <= half_width < 1:
        raise InputError(f"half_width must be in [0.001, 1); got {half_width!r}")
    return int(math.ceil(z * z * p * (1 - p) * design_effect / half_width**2 - 1e-9))
