"""Type I error of a two-proportion trial whose size is re-estimated from blinded data.

At an internal pilot the pooled event rate is observed without unblinding, the
sample size is recomputed from it (Friede & Kieser's blinded re-estimation for
a binary outcome) and the trial continues to the new size; the final test uses
every participant.  Whether this keeps the type I error at alpha is checked
here by simulation under the null hypothesis (both arms share one event rate),
beside the same test at the planned, fixed size on the same draws, so that any
inflation due to the re-estimation shows as the difference of the two.

Pure numbers: the re-estimated size comes in as a function of the pooled rate.
Draws are seeded from ``numpy.random.SeedSequence(seed)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from trialplan.errors import InputError
from trialplan.stats import _dist as sp
from trialplan.stats.progression import betabinom_pmf


@dataclass(frozen=True)
class ReestimationTypeI:
    """Simulated type I error with and without the blinded re-estimation."""

    rate: float
    with_reestimation: float
    fixed_size: float
    mc_se: float
    mean_n_per_arm: float
    draws: int
    seed: int

    def to_dict(self) -> dict:
        return {"rate": self.rate, "with_reestimation": self.with_reestimation,
                "fixed_size": self.fixed_size, "mc_se": self.mc_se,
                "mean_n_per_arm": self.mean_n_per_arm, "draws": self.draws, "seed": self.seed}


def _caseload_rates(rng, rate, icc, shape):
    """Each caseload's event probability: beta with mean ``rate`` and correlation ``icc``."""
    if icc <= 0:
        return np.full(shape, rate)
    s = (1.0 - icc) / icc
    return rng.beta(rate * s, (1.0 - rate) * s, size=shape)


def _caseload_totals(rng, counts: np.ndarray, caseload: int, rate: float,
                     icc: float) -> np.ndarray:
    """Events among ``counts`` further intervention participants per simulated trial.

    They fill caseloads of ``caseload`` (the last one partly), each with its own
    beta(rate, icc) probability.  The total is drawn at once from its exact
    distribution, the convolution of the caseloads' beta-binomial distributions,
    by inverting its CDF: one uniform per trial instead of a beta and a binomial
    draw per caseload.
    """
    out = np.zeros(counts.shape, dtype=np.int64)
    u = rng.random(counts.shape)
    unit = betabinom_pmf(caseload, rate, icc)
    power, have = np.ones(1), 0  # the distribution of `have` full caseloads' total
    for c in np.unique(counts):
        if c <= 0:
            continue
        full, rest = divmod(int(c), caseload)
        while have < full:
            power, have = np.convolve(power, unit), have + 1
        pmf = np.convolve(power, betabinom_pmf(rest, rate, icc)) if rest else power
        cdf = np.cumsum(pmf)
        chosen = counts == c
        out[chosen] = np.minimum(np.searchsorted(cdf, u[chosen] * cdf[-1], side="right"),
                                 pmf.size - 1)
    return out


def reestimation_type1(rate: float, *, n_pilot: int, n_planned: int, n_max: int | None,
                       n_for_pooled: Callable[[np.ndarray], np.ndarray], delta: float,
                       icc: float = 0.0, caseload: int = 1, alpha: float = 0.05,
                       draws: int = 20_000, seed: int = 0) -> ReestimationTypeI:
    """Type I error of the pooled two-proportion z test after blinded re-estimation.

    Parameters
    ----------
    rate : float
        The event rate of both arms (the null hypothesis).
    n_pilot : int
        Participants per arm with the outcome when the size is re-estimated.
    n_planned : int
        Planned participants analysed per arm; the re-estimate never goes below it.
    n_max : int or None
        The most participants analysed per arm the re-estimate may set.
    n_for_pooled : callable
        Analysed per arm for an array of re-estimated control rates (the pooled
        rate less half the planned difference, ``delta``, at 1:1).
    delta : float
        The planned difference (intervention minus control).
    icc, caseload : float, int
        Clustering of the intervention arm by peer worker (partial nesting):
        the test's variance is inflated by the design effect 1 + (m - 1) icc.
    alpha : float
        Two-sided significance level.
    draws, seed : int
        Simulated trials and the seed.

    Returns
    -------
    ReestimationTypeI
        Rejection rates with and without re-estimation (same draws) and the
        Monte Carlo standard error of a rate near alpha.
    """
    if not 0 < rate < 1:
        raise InputError(f"rate must be in (0, 1); got {rate!r}")
    if not 1 <= n_pilot <= n_planned:
        raise InputError(f"need 1 <= n_pilot <= n_planned; got {n_pilot}, {n_planned}")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    caseload = max(1, int(caseload))
    # The pilot: control participants independent, intervention participants in caseloads of
    # `caseload` (the last one partly filled, and filled further after the pilot).
    ctrl_pilot = rng.binomial(n_pilot, rate, draws)
    full = (math.ceil(n_pilot / caseload) - 1) * caseload  # in the pilot's full caseloads
    last = n_pilot - full  # in its last caseload
    # The full caseloads' events at once from their exact total; the last caseload's own
    # probability is kept, as it has more participants after the pilot.
    p_last = _caseload_rates(rng, rate, icc, (draws,))
    int_pilot = (_caseload_totals(rng, np.full(draws, full), caseload, rate, icc)
                 + rng.binomial(last, p_last))
    room = caseload - last
    pooled = (ctrl_pilot + int_pilot) / (2.0 * n_pilot)
    control = np.clip(pooled - delta / 2.0, 1e-6, 1 - 1e-6)
    # The pooled rate takes at most 2 n_pilot + 1 values: the size is computed once for each.
    values, index = np.unique(control, return_inverse=True)
    n_new = np.ceil(np.asarray(n_for_pooled(values), dtype=float)).astype(np.int64)[index]
    n_final = np.maximum(n_new, n_planned)
    if n_max is not None:
        n_final = np.minimum(n_final, n_max)
    de = 1.0 + (caseload - 1.0) * icc
    crit = float(sp.ndtri(1.0 - alpha / 2.0))

    def rejects(n):
        """The final test on the pilot's participants and those after them, up to n per arm."""
        extra = n - n_pilot
        ctrl = ctrl_pilot + rng.binomial(extra, rate)
        in_last = np.minimum(extra, room)
        inter = int_pilot + rng.binomial(in_last, p_last)
        inter = inter + _caseload_totals(rng, extra - in_last, caseload, rate, icc)
        p_c, p_i = ctrl / n, inter / n
        pbar = (ctrl + inter) / (2.0 * n)
        se = np.sqrt(np.maximum(pbar * (1 - pbar), 1e-12) * (1.0 + de) / n)
        return np.abs(p_c - p_i) / se > crit

    with_re = float(np.mean(rejects(n_final)))
    fixed = float(np.mean(rejects(np.full(draws, n_planned, dtype=np.int64))))
    se = math.sqrt(alpha * (1 - alpha) / draws)
    return ReestimationTypeI(rate=float(rate), with_reestimation=with_re, fixed_size=fixed,
                             mc_se=se, mean_n_per_arm=float(np.mean(n_final)), draws=draws,
                             seed=seed)
