"""Closed-form power and sample size for two-arm trials.

Three designs -- :func:`means`, :func:`proportions`, :func:`survival` -- share
one engine.  Each takes every quantity of its power equation and leaves exactly
one of ``n``, ``power`` and the effect as ``None``; that one is solved through
:func:`trialplan.stats._solver.solve_increasing` (R ``pwr``'s contract).

The engine writes the test statistic of every design as an effect over its
standard error, with the per-arm variances inflated by clustering::

    SE^2 = v_C * DE_C / n_C + v_I * DE_I / n_I

- ``clustering="none"``: DE_C = DE_I = 1.
- ``clustering="cluster"``: both arms, DE = 1 + ((CV^2 + 1) m - 1) ICC
  (Eldridge, Ashby & Kerry 2006; CV = 0 gives the familiar 1 + (m - 1) ICC),
  and critical values from t with (clusters - 2) df.
- ``clustering="partial"``: only the intervention arm is clustered by peer
  worker, DE_C = 1, with the Satterthwaite df of the two arm variances
  (Roberts & Roberts 2005; Baldwin et al. 2011).  ``control_variance`` names
  the convention (:data:`CONTROL_VARIANCES`): ``"within"`` (default, as
  PowerUpR and Kelcey et al.) gives the control arm the within-caseload
  variance, so peer workers add variance and DE_I = 1 + m ICC / (1 - ICC);
  ``"total"`` gives it the intervention arm's total variance, DE_I =
  1 + (m - 1) ICC.  The effect is standardised by the control arm's SD.

``cluster_size`` is the number of participants *allocated* to a cluster or a
peer worker (a peer worker supports everyone allocated to them); the design
effect uses the number analysed, m (1 - attrition), and clusters and peer
workers are counted from the numbers recruited.

Sample sizes are solved as continuous numbers, rounded up once at the end, and
the power achieved at the rounded numbers is reported.  Attrition inflates the
analysed numbers to numbers recruited, n / (1 - attrition); co-primary
outcomes divide alpha by their number (Bonferroni).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from trialplan.choices import (
    ALTERNATIVES,
    CLUSTERINGS,
    CONTROL_VARIANCES,
    PROPORTION_METHODS,
    RATE_METHODS,
    SIDES,
    SURVIVAL_METHODS,
)
from trialplan.errors import InputError, UnreachableTargetError
from trialplan.stats import _dist as sp
from trialplan.stats import _validate as v
from trialplan.stats._solver import solve_increasing
from trialplan.stats.result import SizeResult

N_MAX = 1e7
# Participants per arm beyond any trial (recruited, or given as n): a larger number means an
# input is off by orders of magnitude (attrition next to 1, a huge cluster size or n).
N_LIMIT = 1e9
# Smallest significance level per test: below it the normal and t quantiles lose accuracy
# (1e-16 gives NaN), and no trial tests at such a level.
ALPHA_MIN = 1e-10
#: Allocation ratios are limited to [MIN_RATIO, 1 / MIN_RATIO].
MIN_RATIO = 1e-3
# How far below the target a solved n's achieved power may fall (rounding of the solver).
_POWER_SLACK = 1e-6
_ROUND_SLACK = 1e-9
BASELINE_DESIGNS = ("cohort", "cross-sectional")
# Below this many clusters per arm (40 in all, the range Leyrat et al. 2018 studied) the
# plan warns and the analysis text names a small-sample correction.
FEW_CLUSTERS_PER_ARM = 20


@dataclass(frozen=True)
class _Common:
    alpha: np.ndarray  # per-test alpha after the co-primary correction
    sided: str
    alternative: str | None
    ratio: np.ndarray
    clustering: str
    icc: np.ndarray
    cluster_size: np.ndarray
    cluster_cv: np.ndarray
    attrition: np.ndarray
    co_primary: int
    de_c: np.ndarray
    de_i: np.ndarray
    control_variance: str
    m_analysed: np.ndarray  # cluster size or caseload analysed, m (1 - attrition)
    between: np.ndarray  # peer-worker variance, in control-arm variance units
    within: np.ndarray  # intervention individual-level variance, same units


def _common(alpha, sided, alternative, ratio, clustering, icc, cluster_size, cluster_cv,
            attrition, co_primary, control_variance="within") -> _Common:
    alpha = v.in_range("alpha", alpha, 0.0, 1.0)
    v.choice("sided", sided, SIDES)
    if alternative is not None:
        v.choice("alternative", alternative, ALTERNATIVES)
    if sided == "one" and alternative is None:
        raise InputError(
            "a one-sided test needs its direction: alternative must be 'greater' or 'less' "
            "(intervention compared with control)", names=("alternative",)
        )
    # Beyond 1:1000 one arm is a rounding error of the other: no trial is planned so, and
    # the arm sizes would overflow the integer counts.
    ratio = v.in_range("ratio", ratio, MIN_RATIO, 1.0 / MIN_RATIO, low_open=False,
                       high_open=False)
    v.choice("clustering", clustering, CLUSTERINGS)
    if not isinstance(co_primary, (int, np.integer)) or co_primary < 1:
        raise InputError(f"co_primary must be a whole number of at least 1; got {co_primary!r}",
                         names=("co_primary",))
    attrition = v.in_range("attrition", attrition, 0.0, 1.0, low_open=False)
    if np.any(alpha / co_primary < ALPHA_MIN):
        raise InputError(f"alpha per test (alpha / co_primary) must be at least "
                         f"{ALPHA_MIN:g}; got {v._show(alpha / co_primary)}",
                         names=("alpha", "co_primary"))
    v.choice("control_variance", control_variance, CONTROL_VARIANCES)
    if clustering == "none":
        for name, value in (("icc", icc), ("cluster_size", cluster_size)):
            if value is not None:
                raise InputError(f"{name} was given but clustering is 'none'; "
                                 "set clustering to 'cluster' or 'partial'",
                                 names=(name, "clustering"))
        icc_a = np.asarray(0.0)
        m = np.asarray(1.0)
        cv = np.asarray(0.0)
    else:
        if icc is None or cluster_size is None:
            raise InputError(f"clustering '{clustering}' needs both icc and cluster_size",
                             names=("clustering", "icc", "cluster_size"))
        icc_a = v.in_range("icc", icc, 0.0, 1.0, low_open=False)
        m = v.at_least("cluster_size", cluster_size, 1.0)
        cv = v.in_range("cluster_cv", 0.0 if cluster_cv is None else cluster_cv, 0.0, np.inf,
                        low_open=False)
    m_a = m * (1.0 - attrition) if clustering != "none" else m
    if clustering == "partial" and control_variance == "within":
        between, within = icc_a / (1.0 - icc_a), np.ones_like(icc_a)
    else:
        between, within = icc_a, 1.0 - icc_a
    # (CV^2 + 1) m between + within: Eldridge et al.'s 1 + ((CV^2 + 1) m - 1) ICC when
    # the variances are on the total scale.
    de = (cv**2 + 1.0) * m_a * between + within
    de_c = de if clustering == "cluster" else np.ones_like(de)
    return _Common(
        alpha=alpha / co_primary, sided=sided, alternative=alternative, ratio=ratio,
        clustering=clustering, icc=icc_a, cluster_size=m, cluster_cv=cv, attrition=attrition,
        co_primary=int(co_primary), de_c=de_c, de_i=de, control_variance=control_variance,
        m_analysed=m_a, between=between, within=within,
    )



def _satterthwaite(v1, df1, v2, df2):
    return (v1 + v2) ** 2 / (v1**2 / df1 + v2**2 / df2)


class _Cells:
    """Design parameters broadcast to the result shape, flattened, selectable by cell."""

    def __init__(self, shape, clustering: str, sided: str, **arrays):
        self.shape = shape
        self.clustering = clustering
        self.sided = sided
        self._flat = {k: np.broadcast_to(np.asarray(a, dtype=float), shape).ravel()
                      for k, a in arrays.items()}

    def take(self, cells=None):
        ns = _Cells.__new__(_Cells)
        ns.shape, ns.clustering, ns.sided = self.shape, self.clustering, self.sided
        for k, a in self._flat.items():
            setattr(ns, k, a if cells is None else a[cells])
        return ns


def _df(p, n_c, n_i, var_c, var_i, covariates: int, normal: bool):
    """Degrees of freedom of the test; inf means a normal (z) reference.

    ``var_c`` and ``var_i`` are each arm's variance per participant analysed,
    clustering included.  Cluster trials use clusters - 2 (minus a cluster-level
    baseline covariate): the small-sample df of a cluster-level analysis and of
    the between-within correction (Leyrat et al. 2018).
    """
    m = p.m
    if p.clustering == "cluster":
        return n_c / m + n_i / m - 2.0 - covariates
    if p.clustering == "partial":
        return _satterthwaite(var_i / n_i, n_i / m - 1.0, var_c / n_c,
                              n_c - 1.0 - covariates)
    if normal:
        return np.full(np.broadcast(n_c, n_i).shape, np.inf)
    return n_c + n_i - 2.0 - covariates


def _critical(alpha, sided, df):
    q = 1.0 - (alpha / 2.0 if sided == "two" else alpha)
    q, df = np.broadcast_arrays(np.asarray(q, float), np.asarray(df, float))
    finite = np.isfinite(df)
    if not finite.any():
        return sp.ndtri(q)
    # Each cell's quantile once: t where df is finite, normal elsewhere.  One
    # probability for every cell (one alpha) is passed as a scalar, which lets
    # stdtrit take its path for many quantiles at one probability.
    q_t = q[finite]
    out = np.empty(q.shape)
    out[finite] = sp.stdtrit(df[finite], q_t[0] if np.all(q_t == q_t[0]) else q_t)
    if not finite.all():
        out[~finite] = sp.ndtri(q[~finite])
    return out


def _power_t(effect, se, df, alpha, sided):
    """Noncentral-t power; both tails counted for a two-sided test (as R pwr)."""
    ncp = effect / se
    crit = _critical(alpha, sided, df)
    if sided == "one":
        return 1.0 - sp.nctdtr(df, ncp, crit)
    return sp.nct_abs_sf(df, ncp, crit)


def _power_z(effect, se0, se1, df, alpha, sided):
    """Normal power with null and alternative SEs; t critical values when df is finite."""
    crit = _critical(alpha, sided, df)
    upper = sp.ndtr((effect - crit * se0) / se1)
    if sided == "one":
        return upper
    return upper + sp.ndtr((-effect - crit * se0) / se1)


def _check_direction(c: _Common, effect_signed, what: str):
    """Reject a one-sided test whose hypothesised effect points the other way."""
    if c.sided != "one":
        return
    arr = np.asarray(effect_signed)
    wrong = arr <= 0 if c.alternative == "greater" else arr >= 0
    if np.any(wrong):
        raise InputError(
            f"the one-sided alternative is '{c.alternative}' but {what} points the other way "
            "(or is zero): power would be below alpha; flip the alternative or the effect",
            names=("alternative",)
        )


def _round_up(x):
    return np.ceil(np.asarray(x, dtype=float) * (1.0 - _ROUND_SLACK))


def _scalar_or_array(x, shape):
    arr = np.broadcast_to(np.asarray(x, dtype=float), shape)
    return float(arr) if shape == () else np.array(arr)


def _as_int(x, shape):
    arr = np.broadcast_to(np.asarray(x, dtype=float), shape)
    if shape == ():
        return int(arr)
    return np.array(arr).astype(np.int64)


def _unreachable_n(what: str, c_unit: str = "n per arm"):
    def raise_(mask, best):
        worst = float(np.min(np.where(mask, best, np.inf)))
        if not np.isfinite(worst):
            raise UnreachableTargetError(
                f"power cannot be computed up to {c_unit} = {N_MAX:,.0f} for these inputs "
                "(values at the edge of their range); no sample size reaches the target")
        raise UnreachableTargetError(
            f"power at {c_unit} = {N_MAX:,.0f} is still {worst:.3g}: {what}; no sample size "
            "reaches the target"
        )

    return raise_


def _solve_n(power_of_n, power, lo, what, guess, unit="n per arm"):
    """``power_of_n(x, cells)`` is power at control-arm size (or events) x."""
    return solve_increasing(
        power_of_n, power, lo, N_MAX, scale="sqrt", unreachable=_unreachable_n(what, unit),
        guess=guess,
    )


def _normal_guess(c: _Common, power, effect, var_c, var_i):
    """Normal-approximation n_C, a starting point for the exact solver."""
    z = sp.ndtri(1.0 - (c.alpha / 2.0 if c.sided == "two" else c.alpha)) + sp.ndtri(power)
    return z**2 * (var_c * c.de_c + var_i * c.de_i / c.ratio) / effect**2


def _t_guess(c: _Common, power, effect, f_c, f_i):
    """Normal-approximation n_C plus Guenther's (1981) t correction z_alpha^2 / 4.

    ``f_c`` and ``f_i`` are the arms' variance factors, clustering included.
    """
    z_a = sp.ndtri(1.0 - (c.alpha / 2.0 if c.sided == "two" else c.alpha))
    z = z_a + sp.ndtri(power)
    return z**2 * (f_c + f_i / c.ratio) / effect**2 + z_a**2 / 4.0


def _solve_effect(power_of_x, power, hi, what):
    def raise_(mask, best):
        worst = float(np.min(np.where(mask, best, np.inf)))
        raise UnreachableTargetError(
            f"power tops out at {worst:.3g} even at the largest admissible {what}; "
            "increase n or lower the target power"
        )

    return solve_increasing(power_of_x, power, np.asarray(hi) * 1e-9, hi, unreachable=raise_,
                            guess=np.asarray(hi) * 0.01, values=True)


def _cluster_count(c: _Common, rec_c, rec_i, shape):
    """Clusters per arm, or peer workers: participants recruited (allocated) / cluster size."""
    m = c.cluster_size
    if c.clustering == "cluster":
        return {"control": _as_int(_round_up(rec_c / m), shape),
                "intervention": _as_int(_round_up(rec_i / m), shape)}, None
    if c.clustering == "partial":
        return None, _as_int(_round_up(rec_i / m), shape)
    return None, None


def _finish(*, design, solved, c: _Common, n_c_exact, power_at, shape, effect, method, reference,
            inputs, notes, events=None):
    """Round, inflate for attrition and assemble the result.

    ``power_at(n_c, n_i)`` returns power at analysed arm sizes.
    """
    ratio = c.ratio
    keep = 1.0 - c.attrition
    if solved == "n" and c.clustering == "cluster":
        # Whole clusters of m allocated, m (1 - attrition) analysed in each.
        m, m_a = c.cluster_size, c.m_analysed
        k_c = _round_up(n_c_exact / m_a)
        k_i = _round_up(ratio * n_c_exact / m_a)
        achieved = power_at(k_c * m_a, k_i * m_a)
        n_c, n_i = np.floor(k_c * m_a + 0.5), np.floor(k_i * m_a + 0.5)
        rec_c, rec_i = _round_up(k_c * m), _round_up(k_i * m)
    else:
        exact_c, exact_i = n_c_exact, ratio * n_c_exact
        if solved == "n":
            n_c, n_i = _round_up(exact_c), _round_up(exact_i)
        else:
            n_c, n_i = exact_c, exact_i
        achieved = power_at(n_c, n_i)
        rec_c = _round_up(exact_c / keep)
        rec_i = _round_up(exact_i / keep)
    clusters, workers = _cluster_count(c, rec_c, rec_i, shape)
    if c.clustering == "partial":
        de_i = c.de_i
        convention = (
            "Partial nesting: the control arm's variance is "
            + ("the within-caseload variance (peer workers add variance)"
               if c.control_variance == "within" else "the intervention arm's total variance")
            + f" (control_variance '{c.control_variance}'); d is on the control arm's SD."
            if design == "means" else
            f"Partial nesting: the ICC is a share of the intervention arm's total variance "
            f"(a {design} outcome's variance is fixed by its mean).")
        notes = notes + (
            convention,
            f"Optimal allocation (intervention:control) for this design effect is "
            f"sqrt(DE) = {_fmt(np.sqrt(de_i))}; 1:1 is used unless ratio is set.",
        )
    if c.clustering != "none" and np.any(c.attrition > 0):
        unit = "peer worker" if c.clustering == "partial" else "cluster"
        notes = notes + (
            f"{_fmt(c.cluster_size)} participants allocated per {unit}, "
            f"{_fmt(c.m_analysed)} analysed after attrition: the design effect uses the "
            f"number analysed and {unit}s are counted from the numbers recruited.",
        )
    if c.clustering == "cluster" and clusters is not None:
        fewest = np.min(np.minimum(clusters["control"], clusters["intervention"]))
        if fewest < FEW_CLUSTERS_PER_ARM:
            notes = notes + (
                f"Few clusters ({int(fewest)} in an arm, under {FEW_CLUSTERS_PER_ARM} per "
                "arm): critical values from t on clusters - 2 df; analyse with a "
                "small-sample correction (cluster-level analysis, or a mixed model with "
                "Kenward-Roger or Satterthwaite df; Leyrat et al. 2018) and consider "
                "restricted randomisation to balance the arms.",
            )
    if solved != "n" and c.clustering != "none":
        notes = notes + ("Cluster and peer-worker counts are rounded up from the numbers "
                         "recruited / cluster size.",)
    if np.any(c.attrition > 0):
        notes = notes + (
            "Recruited numbers are analysed numbers / (1 - attrition), rounded up once.",
        )
    if c.co_primary > 1:
        notes = notes + (
            f"Alpha is divided by {c.co_primary} co-primary outcomes (Bonferroni).",
        )
    _check_promises(solved=solved, n_c=n_c, n_i=n_i, rec_c=rec_c, rec_i=rec_i,
                    achieved=achieved, target=inputs.get("power"), effect=effect,
                    unit="events" if events is not None else "participants")
    integral = solved == "n"
    conv = _as_int if integral else _scalar_or_array
    return SizeResult(
        design=design,
        solved_for=solved,
        n_per_arm={"control": _as_int(rec_c, shape), "intervention": _as_int(rec_i, shape)},
        n_analysed_per_arm={"control": conv(n_c, shape), "intervention": conv(n_i, shape)},
        n_total=_as_int(rec_c + rec_i, shape),
        power=_scalar_or_array(achieved, shape),
        effect={k: _scalar_or_array(val, shape) for k, val in effect.items()},
        alpha=_scalar_or_array(c.alpha, shape),
        design_effect={"control": _scalar_or_array(c.de_c, shape),
                       "intervention": _scalar_or_array(c.de_i, shape)},
        method=method,
        reference=reference,
        inputs=inputs,
        notes=notes,
        events=events,
        clusters_per_arm=clusters,
        peer_workers=workers,
        n_exact=_scalar_or_array(n_c_exact, shape) if solved == "n" else None,
        shape=shape,
    )


def _check_promises(*, solved, n_c, n_i, rec_c, rec_i, achieved, target, effect, unit):
    """The last check before a result is returned: every number finite and in range, and a
    solved n reaching its target power.  Anything else is an error, never a shown answer."""
    numbers = {"n": (n_c, n_i, rec_c, rec_i), "power": (achieved,),
               "effect": tuple(effect.values())}
    for what, values in numbers.items():
        if not all(np.all(np.isfinite(np.asarray(x, dtype=float))) for x in values):
            raise UnreachableTargetError(
                f"the {what} cannot be computed for these inputs (too few {unit} for the "
                "design, or values at the edge of their range); nothing is reported")
    biggest = max(float(np.max(np.asarray(x, dtype=float))) for x in numbers["n"])
    if biggest > N_LIMIT:
        error = UnreachableTargetError if solved == "n" else InputError
        cause = ("attrition close to 1, the cluster size, or an effect too small"
                 if solved == "n" else
                 "the n or cluster size given")
        shown = f"{biggest:,.0f}" if biggest < 1e15 else f"{biggest:.3g}"
        raise error(f"this needs {shown} {unit} in one arm, more than the limit of "
                    f"{N_LIMIT:,.0f}: check {cause}")
    power = np.asarray(achieved, dtype=float)
    if np.any((power < 0.0) | (power > 1.0)):
        raise UnreachableTargetError("the power computed is outside [0, 1] for these inputs")
    if solved == "n" and target is not None and np.any(power < np.asarray(target) - _POWER_SLACK):
        worst = float(np.min(power - np.asarray(target)))
        raise UnreachableTargetError(
            f"the sample size found reaches power {worst:+.3g} below the target for these "
            "inputs (the design's approximation breaks down here, e.g. an extreme allocation "
            "ratio); nothing is reported")


def _fmt(x) -> str:
    arr = np.asarray(x)
    if arr.ndim == 0:
        return f"{float(arr):.3g}"
    return "(varies)"


def _echo(**kw):
    """Inputs as given: scalars stay scalars, grid axes stay arrays (split by ``cells()``)."""
    return {k: (np.asarray(val, dtype=float) if isinstance(val, np.ndarray) and val.ndim else val)
            for k, val in kw.items()}


_CLUSTER_REFS = {
    "none": "",
    "cluster": "; design effect 1 + ((CV^2 + 1) m - 1) ICC (Eldridge, Ashby & Kerry 2006)",
    "partial": "; partially nested: intervention arm clustered by peer worker, Satterthwaite df "
               "(Roberts & Roberts 2005; Baldwin et al. 2011)",
}


# --------------------------------------------------------------------------------------------
# Means


def frison_pocock_multiplier(corr, baselines: int = 1, follow_ups: int = 1, repeat_corr=None):
    """Variance multiplier of ANCOVA on means of repeated measures (Frison & Pocock 1992).

    (1 + (r - 1) rho_r) / r - p rho^2 / (1 + (p - 1) rho_r), relative to a
    single post-randomisation measurement analysed without baseline; p
    baselines, r follow-ups, rho the baseline-follow-up correlation and rho_r
    the correlation between repeated measurements within a phase (between
    follow-ups, and between baselines); ``repeat_corr=None`` takes rho_r = rho
    (compound symmetry).  With p = r = 1 it is 1 - rho^2 (Borm, Fransen &
    Lemmens 2007).  Under compound symmetry it equals the constrained
    longitudinal analysis of R ``longpower::liu.liang.linear.power``.
    """
    rho = np.asarray(corr, dtype=float)
    rho_r = rho if repeat_corr is None else np.asarray(repeat_corr, dtype=float)
    p, r = baselines, follow_ups
    base = rho**2 * p / (1.0 + (p - 1.0) * rho_r) if p > 0 else 0.0 * rho
    return (1.0 + (r - 1.0) * rho_r) / r - base


def teerenstra_correlation(cluster_size, icc, cluster_autocorr, individual_autocorr=0.0):
    """Correlation of a cluster's baseline and follow-up means (Teerenstra et al. 2012).

    r = (m ICC rho_c + (1 - ICC) rho_i) / (1 + (m - 1) ICC), m the number
    analysed per cluster, rho_c the cluster and rho_i the individual
    autocorrelation (0 in a cross-sectional design).  Baseline adjustment
    multiplies the design effect by 1 - r^2.
    """
    m = np.asarray(cluster_size, dtype=float)
    icc = np.asarray(icc, dtype=float)
    return (m * icc * cluster_autocorr + (1.0 - icc) * individual_autocorr) / (
        1.0 + (m - 1.0) * icc)


def _whole(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"{name} must be a whole number of at least {low}; got {value!r}",
                         names=(name,))
    return int(value)


@dataclass(frozen=True)
class _Repeated:
    """Baseline adjustment and repeated follow-ups, validated: the arms' variance factors."""

    f_c: np.ndarray  # control-arm variance per participant analysed, clustering included
    f_i: np.ndarray
    covariates: int
    notes: tuple
    method: str


def _repeated(c: _Common, baseline_corr, baselines, follow_ups, follow_up_corr,
              cluster_autocorr, individual_autocorr) -> _Repeated:
    """Variance factors of the analysis on baseline(s) and the mean of the follow-ups.

    Individually randomised: both arms F (Frison & Pocock).  Partially nested:
    the baseline precedes the peer worker, so it cannot explain peer-worker
    variance; it removes the same individual-level variance 1 - F from both
    arms: control F, intervention DE_I - (1 - F) (1 + (m - 1) ICC - r^2 on the
    total scale).  Cluster randomised: Teerenstra et al. (2012), DE (1 - r^2)
    with r = (m ICC rho_c + (1 - ICC) rho_i) / (1 + (m - 1) ICC), rho_c the
    cluster and rho_i the individual autocorrelation (0 in a cross-sectional
    design).
    """
    follow_ups = _whole("follow_ups", follow_ups, 1)
    if baselines is None:
        baselines = 0 if baseline_corr is None else 1
    baselines = _whole("baselines", baselines, 0)
    notes: tuple = ()
    if c.clustering == "cluster":
        if baseline_corr is not None or baselines > 1 or follow_ups > 1:
            raise InputError(
                "in a cluster-randomised trial baseline adjustment is given by cluster_autocorr "
                "(and individual_autocorr for a cohort design; Teerenstra et al. 2012), with "
                "one baseline and one follow-up; got baseline_corr, baselines or follow_ups",
            names=("follow_ups", "baseline_corr", "baselines", "cluster_autocorr",
                   "individual_autocorr"))
        if follow_up_corr is not None:
            raise InputError("follow_up_corr applies to several follow-ups of an individually "
                             "randomised trial; this trial is cluster randomised",
            names=("follow_up_corr",))
        if cluster_autocorr is None:
            if individual_autocorr is not None:
                raise InputError("individual_autocorr needs cluster_autocorr (the correlation "
                                 "of a cluster's baseline and follow-up means)",
            names=("cluster_autocorr", "individual_autocorr"))
            return _Repeated(c.de_c, c.de_i, 0, notes, "")
        rho_c = v.in_range("cluster_autocorr", cluster_autocorr, -1.0, 1.0, high_open=False)
        cohort = individual_autocorr is not None
        rho_i = (v.in_range("individual_autocorr", individual_autocorr, -1.0, 1.0,
                            high_open=False) if cohort else 0.0)
        r = teerenstra_correlation(c.m_analysed, c.icc, rho_c, rho_i)
        f = c.de_c * (1.0 - r**2)
        design = "cohort" if cohort else "cross-sectional"
        notes += (f"Baseline adjustment, {design} design (Teerenstra et al. 2012): cluster "
                  f"autocorrelation {_fmt(rho_c)}"
                  + (f", individual autocorrelation {_fmt(rho_i)}" if cohort else "")
                  + f"; r = {_fmt(r)}, design effect {_fmt(c.de_c)} x (1 - r^2) = {_fmt(f)}.",)
        return _Repeated(f, f, 1, notes, f"ANCOVA on baseline ({design}, Teerenstra et al.)")
    if cluster_autocorr is not None or individual_autocorr is not None:
        raise InputError("cluster_autocorr and individual_autocorr apply to cluster-randomised "
                         "trials (clustering 'cluster'); use baseline_corr",
            names=("baseline_corr", "cluster_autocorr", "individual_autocorr"))
    if baselines > 0 and baseline_corr is None:
        raise InputError(f"baselines is {baselines} but baseline_corr is not given: give the "
                         "baseline-outcome correlation, or set baselines to 0 (no baseline "
                         "adjustment)",
            names=("baseline_corr", "baselines"))
    if baselines == 0 and baseline_corr is not None:
        raise InputError("baseline_corr was given but baselines is 0; give baselines of at "
                         "least 1, or leave baseline_corr out",
            names=("baseline_corr", "baselines"))
    repeats = follow_ups > 1 or baselines > 1
    if repeats and follow_up_corr is None:
        raise InputError(
            f"follow_ups {follow_ups} and baselines {baselines} need follow_up_corr, the "
            "correlation between repeated measurements of the outcome (it is not assumed "
            "to be zero)",
            names=("follow_up_corr", "follow_ups", "baselines"))
    if not repeats and follow_up_corr is not None:
        raise InputError("follow_up_corr was given but there is one follow-up and at most one "
                         "baseline; give follow_ups (or baselines) greater than 1, or leave it out",
            names=("follow_up_corr", "follow_ups", "baselines"))
    rho_r = None
    if follow_up_corr is not None:
        rho_r = v.in_range("follow_up_corr", follow_up_corr, -1.0, 1.0)
    if baseline_corr is not None:
        rho = v.in_range("baseline_corr", baseline_corr, -1.0, 1.0)
        mult = frison_pocock_multiplier(rho, baselines, follow_ups, rho_r)
    else:
        mult = frison_pocock_multiplier(0.0, 0, follow_ups, rho_r)
    if np.any(mult <= 0):
        raise InputError("the correlations imply a variance multiplier of "
                         f"{v._show(mult)} (not positive): the baseline-outcome correlation "
                         "is too large for the correlation between repeated measurements",
                         names=("baseline_corr", "follow_up_corr"))
    covariates = 1 if baselines > 0 else 0
    method = "two-sample t test (noncentral t)"
    if baselines > 0 or follow_ups > 1:
        method = ("ANCOVA on baseline" if baselines > 0 else "t test on the mean of "
                  "follow-ups") + " (noncentral t, Frison & Pocock variance multiplier)"
        notes += (f"Variance multiplied by {_fmt(mult)} (Frison & Pocock: {baselines} "
                  f"baseline(s), {follow_ups} follow-up(s)"
                  + (f", baseline correlation {_fmt(baseline_corr)}" if baselines else "")
                  + (f", correlation between repeated measurements {_fmt(rho_r)}"
                     if rho_r is not None else "") + ").",)
    if c.clustering != "partial":
        return _Repeated(mult, mult, covariates, notes, method)
    f_i = c.de_i - (1.0 - mult)
    if np.any(f_i <= c.de_i - c.within):
        raise InputError(
            "baseline adjustment would remove more than the intervention arm's individual-"
            f"level variance ({v._show(c.within)} of the control variance, with "
            f"control_variance '{c.control_variance}'): lower baseline_corr or use "
            "control_variance 'within'",
            names=("baseline_corr", "control_variance"))
    if covariates or follow_ups > 1:
        notes += (f"Peer-worker variance is not explained by the baseline: variance factors "
                  f"control {_fmt(mult)}, intervention {_fmt(c.de_i)} - {_fmt(1.0 - mult)} = "
                  f"{_fmt(f_i)}.",)
    return _Repeated(mult, f_i, covariates, notes, method)


def means(*, d=None, n=None, power=None, alpha=0.05, sided="two", alternative=None, ratio=1.0,
          baseline_corr=None, baselines=None, follow_ups=1, follow_up_corr=None,
          clustering="none", icc=None, cluster_size=None, cluster_cv=None,
          control_variance="within", cluster_autocorr=None, individual_autocorr=None,
          attrition=0.0, co_primary=1) -> SizeResult:
    """Two-sample comparison of means (t test, or ANCOVA with baseline).

    Parameters
    ----------
    d : float or array, optional
        Standardised difference (intervention - control) / SD, Cohen's d.
    n : float or array, optional
        Participants analysed in the control arm (the intervention arm has
        ``ratio * n``).
    power : float or array, optional
        Target power.  Exactly one of ``d``, ``n``, ``power`` is None.
    alpha : float
        Significance level (per family of co-primary outcomes).
    sided : {"two", "one"}
        Two-sided tests count both rejection tails, as R ``pwr`` does.
    alternative : {"greater", "less"}, optional
        Direction of a one-sided test (intervention vs control); needed when
        ``sided="one"``, and the direction searched for a detectable effect.
    ratio : float
        Allocation ratio intervention : control.
    baseline_corr : float, optional
        Correlation of baseline and outcome; the variance is multiplied by the
        Frison & Pocock factor (1 - rho^2 for one baseline and one follow-up).
    baselines : int, optional
        Baseline measurements analysed as their mean: default 1 with
        ``baseline_corr``, else 0 (no adjustment and no df lost).  Given
        without ``baseline_corr`` it is an error.
    follow_ups : int
        Follow-up measurements analysed as their mean (Frison & Pocock).
    follow_up_corr : float, optional
        Correlation between repeated measurements (between follow-ups, and
        between baselines); required with more than one follow-up or baseline.
    control_variance : {"within", "total"}
        Partial nesting: the control arm's variance is the within-caseload
        variance (default; peer workers add variance, as PowerUpR) or the
        intervention arm's total variance.
    cluster_autocorr, individual_autocorr : float, optional
        Cluster-randomised trials: baseline adjustment by Teerenstra et al.
        (2012) with the cluster autocorrelation, and the individual
        autocorrelation for a cohort design (leave it out for a
        cross-sectional design).
    clustering : {"none", "cluster", "partial"}
    icc, cluster_size, cluster_cv : float, optional
        Intra-cluster correlation, mean participants allocated per cluster
        (peer-worker caseload for partial nesting; the design effect uses
        cluster_size x (1 - attrition) analysed), and coefficient of variation
        of cluster size.
    attrition : float
        Expected loss to follow-up, in [0, 1).
    co_primary : int
        Number of co-primary outcomes (alpha / co_primary).

    Returns
    -------
    SizeResult

    Raises
    ------
    InputError
        For out-of-range values, or not exactly one unknown.
    UnreachableTargetError
        When no sample size (or effect) reaches the target power.

    Notes
    -----
    Power is the noncentral t probability of rejection, both tails counted:
    ncp = d / sqrt(F_C / n_C + F_I / n_I), df = n_C + n_I - 2 (minus 1 for a
    baseline covariate), with F the Frison-Pocock multiplier in both arms when
    individually randomised.  Partially nested: F_C = F and F_I = DE_I - (1 - F)
    (the baseline cannot explain peer-worker variance); cluster randomised:
    F = DE (1 - r^2) (Teerenstra et al. 2012).  With clustering see the module
    notes.  Partial nesting with ``control_variance="within"`` reproduces
    PowerUpR ``power.ira_pn`` (Satterthwaite df included).  Validated against R ``pwr.t.test`` and
    ``power.t.test(strict=TRUE)`` and statsmodels ``TTestIndPower``.

    References
    ----------
    Cohen J (1988). Statistical Power Analysis for the Behavioral Sciences.
    Borm GF, Fransen J, Lemmens WA (2007). J Clin Epidemiol 60:1234-8.
    Frison L, Pocock SJ (1992). Stat Med 11:1685-1704.
    Teerenstra S, Eldridge S, Graff M, de Hoop E, Borm GF (2012). Stat Med 31:2169-2178.

    Examples
    --------
    >>> r = means(d=0.5, power=0.8)
    >>> r.n_analysed_per_arm
    {'control': 64, 'intervention': 64}
    >>> round(means(d=0.5, n=64).power, 4)
    0.8015
    """
    solved = v.exactly_one_missing(n=n, power=power, d=d)
    solved = "effect" if solved == "d" else solved
    c = _common(alpha, sided, alternative, ratio, clustering, icc, cluster_size, cluster_cv,
                attrition, co_primary, control_variance)
    rep = _repeated(c, baseline_corr, baselines, follow_ups, follow_up_corr, cluster_autocorr,
                    individual_autocorr)
    covariates = rep.covariates

    if d is not None:
        d = v.as_array("d", d)
        _check_direction(c, d, "d")
    if power is not None:
        power = v.in_range("power", power, 0.0, 1.0)
    if n is not None:
        n = v.as_array("n", n)
    lo = _admissible_n(c, n, covariates)
    if solved == "n" and np.any(d == 0):
        raise InputError("d must be non-zero to solve for n; got 0", names=("d",))

    def power_at(p, effect, n_c, n_i):
        se = np.sqrt(p.f_c / n_c + p.f_i / n_i)
        df = _df(p, n_c, n_i, p.f_c, p.f_i, covariates, normal=False)
        return _power_t(effect, se, df, p.alpha, p.sided)

    shape, n_c, mag, achieved = _two_arm(
        c=c, solved=solved, n=n, power=power, magnitude=None if d is None else np.abs(d), lo=lo,
        power_at=power_at, guess=lambda mag_: _t_guess(c, power, mag_, rep.f_c, rep.f_i),
        effect_hi=50.0, effect_name="d", extra={"f_c": rep.f_c, "f_i": rep.f_i},
    )
    sign = -1.0 if c.alternative == "less" else 1.0
    effect_val = d if solved != "effect" else sign * mag

    method = rep.method or "two-sample t test (noncentral t)"
    if c.clustering == "cluster":
        method += ", cluster randomised (t on clusters - 2 df)"
    elif c.clustering == "partial":
        method += ", partially nested by peer worker (Satterthwaite df)"
    reference = "Cohen 1988; R pwr.t.test; Frison & Pocock 1992; Borm et al. 2007"
    if cluster_autocorr is not None:
        reference += "; Teerenstra et al. 2012"
    return _finish(
        design="means", solved=solved, c=c, n_c_exact=n_c, power_at=achieved, shape=shape,
        effect={"d": effect_val}, method=method,
        reference=reference + _CLUSTER_REFS[c.clustering],
        inputs=_echo(d=d if solved != "effect" else None, n=n, power=power, alpha=alpha,
                     sided=sided, alternative=alternative, ratio=ratio,
                     baseline_corr=baseline_corr, baselines=baselines, follow_ups=follow_ups,
                     follow_up_corr=follow_up_corr, clustering=clustering, icc=icc,
                     cluster_size=cluster_size, cluster_cv=cluster_cv,
                     control_variance=control_variance if clustering == "partial" else None,
                     cluster_autocorr=cluster_autocorr, individual_autocorr=individual_autocorr,
                     attrition=attrition, co_primary=co_primary),
        notes=rep.notes,
    )


def _two_arm(*, c: _Common, solved, n, power, magnitude, lo, power_at, guess, effect_hi,
             effect_name, extra, n_unit="n per arm"):
    """Shared flow: broadcast, solve the unknown, and give power at any arm sizes.

    ``power_at(p, magnitude, n_c, n_i)`` is the design's power with ``p`` the
    cell parameters.  Returns the shape, the control-arm size (solved or
    given), the effect magnitude (solved or given) and ``achieved(n_c, n_i)``.
    """
    given = [a for a in (n, power, magnitude) if a is not None]
    shape = np.broadcast_shapes(*(np.shape(a) for a in given), c.ratio.shape, c.alpha.shape,
                                c.attrition.shape,
                                c.de_i.shape, *(np.shape(a) for a in extra.values()))
    cells = _Cells(shape, c.clustering, c.sided,
                   effect=magnitude if magnitude is not None else 0.0,
                   n=n if n is not None else 0.0, alpha=c.alpha, ratio=c.ratio, de_c=c.de_c,
                   de_i=c.de_i, m=c.m_analysed, **extra)
    if solved == "n":
        def of_n(x, idx):
            p = cells.take(idx)
            return power_at(p, p.effect, x, p.ratio * x)

        n_c = _solve_n(of_n, np.broadcast_to(power, shape), lo,
                       "the effect is too small for this design", guess(magnitude), n_unit)
        mag = magnitude
    elif solved == "power":
        n_c = np.broadcast_to(n, shape)
        mag = magnitude
    else:
        def of_effect(x, idx):
            p = cells.take(idx)
            return power_at(p, x, p.n, p.ratio * p.n)

        mag, at_mag = _solve_effect(of_effect, np.broadcast_to(power, shape), effect_hi,
                                    effect_name)
        n_c = np.broadcast_to(n, shape)
    everyone = cells.take()
    mag_flat = np.broadcast_to(mag, shape).ravel()

    def achieved(n_c_, n_i_):
        if solved == "effect" and n_c_ is n_c:
            return at_mag  # the solver's last evaluation, at the given n
        return power_at(everyone, mag_flat, np.broadcast_to(n_c_, shape).ravel(),
                        np.broadcast_to(n_i_, shape).ravel()).reshape(shape)

    return shape, n_c, mag, achieved


def _admissible_n(c: _Common, n, covariates: int):
    """The smallest admissible control-arm n; a given n must exceed it."""
    lo = _min_n(c, covariates)
    if n is not None and np.any(n <= lo):
        raise InputError(f"n must be greater than {float(np.max(lo)):g} for this design; got "
                         f"{v._show(n)}", names=("n",))
    return lo


def _min_n(c: _Common, covariates: int):
    """Smallest admissible control-arm n: at least 2 df everywhere, two clusters per arm."""
    if c.clustering == "cluster":
        return np.maximum(2.0 * c.m_analysed, 2.0)
    if c.clustering == "partial":
        return np.maximum(2.0 * c.m_analysed / c.ratio, 2.0 + covariates)
    return np.asarray(2.0 + covariates)


# --------------------------------------------------------------------------------------------
# Proportions


def _intervention_rate(p1, p2, rr, odds_ratio, rd):
    given = {k: val for k, val in (("p2", p2), ("rr", rr), ("odds_ratio", odds_ratio), ("rd", rd))
             if val is not None}
    if len(given) > 1:
        raise InputError(f"give the intervention rate one way only; got {v._and(given)}",
                         names=tuple(given))
    if p2 is not None:
        return v.in_range("p2", p2, 0.0, 1.0)
    if rr is not None:
        rr = v.positive("rr", rr)
        out = p1 * rr
    elif odds_ratio is not None:
        odds_ratio = v.positive("odds_ratio", odds_ratio)
        odds = p1 / (1.0 - p1) * odds_ratio
        out = odds / (1.0 + odds)
    elif rd is not None:
        rd = v.as_array("rd", rd)
        out = p1 + rd
    else:
        return None
    if not np.all((out > 0) & (out < 1)):
        raise InputError(f"the intervention rate implied by the effect must be in (0, 1); got "
                         f"{v._show(out)}")
    return out


def proportions(*, p1=None, p2=None, rr=None, odds_ratio=None, rd=None, n=None, power=None,
                alpha=0.05, sided="two", alternative=None, ratio=1.0, method="pooled",
                continuity=False, clustering="none", icc=None, cluster_size=None,
                cluster_cv=None, attrition=0.0, co_primary=1) -> SizeResult:
    """Two independent proportions (normal test).

    Parameters
    ----------
    p1 : float or array
        Event rate in the control arm.
    p2, rr, odds_ratio, rd : float or array, optional
        The intervention arm's rate, given directly or as a risk ratio, odds
        ratio or risk difference (each intervention relative to control:
        ``rd=-0.09`` is 9 points lower).  Leave all unset to solve for the
        detectable intervention rate.
    n, power
        Analysed control-arm size and power; exactly one of n, power and the
        intervention rate is unset.
    method : {"pooled", "arcsine"}
        ``"pooled"``: pooled variance under H0 and unpooled under H1 (R
        ``power.prop.test``, rpact, statsmodels).  ``"arcsine"``: Cohen's h
        with variance 1/n per arm (R ``pwr.2p.test``).
    continuity : bool
        Fleiss, Tytun & Ury (1980) continuity correction (pooled method).
    alpha, sided, alternative, ratio, clustering, icc, cluster_size, cluster_cv, attrition,
    co_primary
        As in :func:`means`.

    Returns
    -------
    SizeResult

    Notes
    -----
    Pooled: power = Phi((abs(p2 - p1) - z SE0) / SE1) + Phi((-abs(p2 - p1) - z SE0) / SE1),
    SE0^2 = pbar qbar (DE_C / n_C + DE_I / n_I), SE1^2 = p1 q1 DE_C / n_C + p2 q2 DE_I / n_I.
    The continuity correction maps n to the uncorrected n' = (n - A/4)^2 / n,
    A = 2 (r + 1) / (r abs(p2 - p1)), the inverse of Fleiss's
    n = n'/4 [1 + sqrt(1 + A/n')]^2.  Validated against R ``power.prop.test``
    (strict), ``pwr.2p.test`` and statsmodels.

    References
    ----------
    Fleiss JL, Tytun A, Ury HK (1980). Biometrics 36:343-346.
    Cohen J (1988). Statistical Power Analysis for the Behavioral Sciences.

    Examples
    --------
    >>> r = proportions(p1=0.65, p2=0.45, power=0.8)
    >>> r.n_analysed_per_arm["control"], round(r.n_exact, 2)
    (96, 95.94)
    """
    # A binary, count or event outcome's variance is fixed by its mean, so the peer-worker
    # ICC is a share of the intervention arm's total variance.
    c = _common(alpha, sided, alternative, ratio, clustering, icc, cluster_size, cluster_cv,
                attrition, co_primary, control_variance="total")
    v.choice("method", method, PROPORTION_METHODS)
    if continuity and method != "pooled":
        raise InputError("continuity (Fleiss's correction) applies to method 'pooled' only",
                         names=("continuity", "method"))
    if p1 is None:
        raise InputError("p1 (the control-arm rate) is required", names=("p1",))
    p1 = v.in_range("p1", p1, 0.0, 1.0)
    p2_given = p2
    p2 = _intervention_rate(p1, p2, rr, odds_ratio, rd)
    solved = v.exactly_one_missing(n=n, power=power, p2=p2)
    solved = "effect" if solved == "p2" else solved
    if power is not None:
        power = v.in_range("power", power, 0.0, 1.0)
    if n is not None:
        n = v.as_array("n", n)
    if p2 is not None:
        _check_direction(c, p2 - p1, "the rate difference p2 - p1")
        if solved == "n" and np.any(p2 == p1):
            raise InputError("p2 must differ from p1 to solve for n", names=("p1", "p2"))
    lo = _admissible_n(c, n, 0)
    # Direction of a detectable effect: below the control rate unless told otherwise.
    down = c.alternative != "greater"
    sign = -1.0 if down else 1.0

    def rates(p, mag):
        q2 = p.p1 + p.sign * mag
        return p.p1, np.clip(q2, 1e-12, 1 - 1e-12)

    def power_at(p, mag, n_c, n_i):
        r1, r2 = rates(p, mag)
        if continuity:
            a = 2.0 * (p.ratio + 1.0) / (p.ratio * mag)
            n_c = np.where(n_c > a / 4.0, (n_c - a / 4.0) ** 2 / n_c, 1e-300)
            n_i = p.ratio * n_c
        if method == "arcsine":
            eff = np.abs(2.0 * np.arcsin(np.sqrt(r2)) - 2.0 * np.arcsin(np.sqrt(r1)))
            se0 = se1 = np.sqrt(p.de_c / n_c + p.de_i / n_i)
        else:
            eff = mag
            w = n_i / (n_c + n_i)
            pbar = (1.0 - w) * r1 + w * r2
            se0 = np.sqrt(pbar * (1.0 - pbar) * (p.de_c / n_c + p.de_i / n_i))
            se1 = np.sqrt(r1 * (1 - r1) * p.de_c / n_c + r2 * (1 - r2) * p.de_i / n_i)
        df = _df(p, n_c, n_i, r1 * (1 - r1) * p.de_c, r2 * (1 - r2) * p.de_i, 0, normal=True)
        return _power_z(eff, se0, se1, df, p.alpha, p.sided)

    def guess(mag):
        r2 = p1 + sign * mag if p2 is None else p2
        var_c, var_i = p1 * (1 - p1), r2 * (1 - r2)
        if method == "arcsine":
            h = np.abs(2.0 * np.arcsin(np.sqrt(r2)) - 2.0 * np.arcsin(np.sqrt(p1)))
            return _normal_guess(c, power, h, 1.0, 1.0)
        return _normal_guess(c, power, mag, var_c, var_i)

    magnitude = None if p2 is None else np.abs(p2 - p1)
    if p2 is not None:
        sign = np.where(p2 < p1, -1.0, 1.0)
    effect_hi = np.where(np.asarray(sign) < 0, p1, 1.0 - p1) * (1.0 - 1e-9)
    shape, n_c, mag, achieved = _two_arm(
        c=c, solved=solved, n=n, power=power, magnitude=magnitude, lo=lo, power_at=power_at,
        guess=guess, effect_hi=effect_hi, effect_name="difference in rates",
        extra={"p1": p1, "sign": sign},
    )
    q2 = p1 + sign * mag
    effect = {
        "p_control": p1,
        "p_intervention": q2,
        "risk_difference": q2 - p1,
        "risk_ratio": q2 / p1,
        "odds_ratio": (q2 / (1 - q2)) / (p1 / (1 - p1)),
    }
    notes = ()
    if solved == "effect":
        notes += (f"Detectable intervention rate searched {'below' if down else 'above'} the "
                  "control rate.",)
    if method == "pooled":
        name = "two proportions, normal test (pooled variance under H0, unpooled under H1)"
        ref = "R power.prop.test; rpact; statsmodels"
    else:
        name = "two proportions, arcsine transformation (Cohen's h)"
        ref = "Cohen 1988; R pwr.2p.test"
    if continuity:
        name += ", Fleiss continuity correction"
        ref += "; Fleiss, Tytun & Ury 1980"
    if c.clustering != "none":
        notes += ("Critical values from t with the design's df (few clusters or peer workers).",)
    return _finish(
        design="proportions", solved=solved, c=c, n_c_exact=n_c, power_at=achieved, shape=shape,
        effect=effect, method=name, reference=ref + _CLUSTER_REFS[c.clustering],
        inputs=_echo(p1=p1, p2=p2_given, rr=rr, odds_ratio=odds_ratio,
                     rd=rd, n=n, power=power, alpha=alpha, sided=sided,
                     alternative=alternative, ratio=ratio, method=method,
                     continuity=continuity, clustering=clustering, icc=icc,
                     cluster_size=cluster_size, cluster_cv=cluster_cv, attrition=attrition,
                     co_primary=co_primary),
        notes=notes,
    )


# --------------------------------------------------------------------------------------------
# Rates (counts per unit of exposure: bed days, contacts, crises)


def rates(*, rate=None, rate2=None, rr=None, n=None, power=None, dispersion=0.0, exposure=1.0,
          method="alt", alpha=0.05, sided="two", alternative=None, ratio=1.0,
          clustering="none", icc=None, cluster_size=None, cluster_cv=None, attrition=0.0,
          co_primary=1) -> SizeResult:
    """Sample size or power for a rate ratio: Poisson, or negative binomial with ``dispersion``.

    Parameters
    ----------
    rate : float or array
        Control-arm event rate per unit of exposure (e.g. bed days per month).
    rate2, rr : float or array, optional
        The intervention arm's rate, or the rate ratio intervention / control.
        Leave both unset to solve for the detectable rate ratio.
    n, power
        Analysed control-arm size and power; exactly one of n, power and the
        effect is unset.
    dispersion : float
        Negative binomial dispersion k (variance mu + k mu^2); 0 is Poisson.
    exposure : float
        Exposure per participant, in the units of ``rate`` (e.g. 12 months).
    method : {"alt", "ftotal"}
        Variance of the log rate ratio under the null: that of the alternative
        (``"alt"``, Wald), or with the pooled rate (``"ftotal"``), as
        statsmodels ``power_negbin_ratio_2indep``.

    Notes
    -----
    Test of log(rate ratio) (Zhu & Lakkis 2014; Signorini 1991) with
    Var = (1/(t rate_C) + k) / n_C + (1/(t rate_I) + k) / n_I, times the
    design effect in each arm; power = Phi((abs(log RR) - z SE0) / SE1) + the other
    tail.

    References
    ----------
    Zhu H, Lakkis H (2014). Statistics in Medicine 33:376-387.

    Examples
    --------
    >>> r = rates(rate=2.0, rr=0.8, dispersion=0.5, power=0.8)
    >>> r.n_analysed_per_arm["control"]
    335
    """
    # A binary, count or event outcome's variance is fixed by its mean, so the peer-worker
    # ICC is a share of the intervention arm's total variance.
    c = _common(alpha, sided, alternative, ratio, clustering, icc, cluster_size, cluster_cv,
                attrition, co_primary, control_variance="total")
    v.choice("method", method, RATE_METHODS)
    if rate is None:
        raise InputError("rate (the control-arm event rate) is required", names=("rate",))
    rate = v.positive("rate", rate)
    dispersion = v.in_range("dispersion", dispersion, 0.0, np.inf, low_open=False)
    exposure = v.positive("exposure", exposure)
    if rate2 is not None and rr is not None:
        raise InputError("give the intervention rate one way only; got rate2 and rr",
                         names=("rate2", "rr"))
    rate2_given = rate2
    if rr is not None:
        rate2 = rate * v.positive("rr", rr)
    elif rate2 is not None:
        rate2 = v.positive("rate2", rate2)
    solved = v.exactly_one_missing(n=n, power=power, rate2=rate2)
    solved = "effect" if solved == "rate2" else solved
    if power is not None:
        power = v.in_range("power", power, 0.0, 1.0)
    if n is not None:
        n = v.as_array("n", n)
    if rate2 is not None:
        _check_direction(c, np.log(rate2 / rate), "the log rate ratio")
        if solved == "n" and np.any(rate2 == rate):
            raise InputError("the rate ratio must differ from 1 to solve for n", names=("rr",))
    lo = _admissible_n(c, n, 0)
    down = c.alternative != "greater"
    sign = -1.0 if down else 1.0

    def unit_var(r_, t_, k_):
        return 1.0 / (t_ * r_) + k_

    def power_at(p, mag, n_c, n_i):
        r1 = p.rate
        r2 = p.rate * np.exp(p.sign * mag)
        v1, v2 = unit_var(r1, p.t, p.k), unit_var(r2, p.t, p.k)
        se1 = np.sqrt(v1 * p.de_c / n_c + v2 * p.de_i / n_i)
        if method == "ftotal":
            pooled = (n_c * r1 + n_i * r2) / (n_c + n_i)
            se0 = np.sqrt(unit_var(pooled, p.t, p.k) * (p.de_c / n_c + p.de_i / n_i))
        else:
            se0 = se1
        df = _df(p, n_c, n_i, v1 * p.de_c, v2 * p.de_i, 0, normal=True)
        return _power_z(mag, se0, se1, df, p.alpha, p.sided)

    def guess(mag):
        r2 = rate * np.exp(sign * mag)
        return _normal_guess(c, power, mag, unit_var(rate, exposure, dispersion),
                             unit_var(r2, exposure, dispersion))

    magnitude = None if rate2 is None else np.abs(np.log(rate2 / rate))
    if rate2 is not None:
        sign = np.where(rate2 < rate, -1.0, 1.0)
    shape, n_c, mag, achieved = _two_arm(
        c=c, solved=solved, n=n, power=power, magnitude=magnitude, lo=lo, power_at=power_at,
        guess=guess, effect_hi=np.full(np.shape(rate), 20.0), effect_name="log rate ratio",
        extra={"rate": rate, "sign": sign, "k": dispersion, "t": exposure},
    )
    r2 = rate * np.exp(sign * mag)
    effect = {"rate_control": rate, "rate_intervention": r2, "rate_ratio": r2 / rate}
    notes = ()
    if solved == "effect":
        notes += (f"Detectable rate ratio searched {'below' if down else 'above'} 1.",)
    model = "Poisson" if np.all(dispersion == 0) else "negative binomial"
    name = (f"rate ratio, {model} (Wald test of the log rate ratio, "
            f"{'variance under H1' if method == 'alt' else 'pooled-rate variance under H0'})")
    return _finish(
        design="rates", solved=solved, c=c, n_c_exact=n_c, power_at=achieved, shape=shape,
        effect=effect, method=name,
        reference="Zhu & Lakkis 2014; statsmodels power_negbin_ratio_2indep"
        + _CLUSTER_REFS[c.clustering],
        inputs=_echo(rate=rate, rate2=rate2_given, rr=rr, n=n,
                     power=power, dispersion=dispersion, exposure=exposure, method=method,
                     alpha=alpha, sided=sided, alternative=alternative, ratio=ratio,
                     clustering=clustering, icc=icc, cluster_size=cluster_size,
                     cluster_cv=cluster_cv, attrition=attrition, co_primary=co_primary),
        notes=notes,
    )


# --------------------------------------------------------------------------------------------
# Time to event


def event_probability(hazard, accrual, follow_up, dropout_hazard=0.0):
    """P(event observed) with uniform accrual over ``accrual`` months, then ``follow_up``.

    Exponential survival with rate ``hazard`` h and, optionally, exponential dropout
    with rate ``dropout_hazard`` g competing with it (as rpact): with t = h + g,
    h / t [1 - (exp(-t F) - exp(-t (A + F))) / (t A)]; h / t [1 - exp(-t F)] when A = 0.
    """
    h = np.asarray(hazard, dtype=float)
    g = np.asarray(dropout_hazard, dtype=float)
    t = h + g
    a = np.asarray(accrual, dtype=float)
    f = np.asarray(follow_up, dtype=float)
    safe_a = np.where(a > 0, a, 1.0)
    spread = (np.exp(-t * f) - np.exp(-t * (safe_a + f))) / (t * safe_a)
    return h / t * np.where(a > 0, 1.0 - spread, 1.0 - np.exp(-t * f))


def survival(*, hr=None, n=None, power=None, alpha=0.05, sided="two", alternative=None,
             ratio=1.0, method="schoenfeld", event_prob=None, control_median=None, accrual=None,
             follow_up=None, dropout_rate=None, dropout_time=None, clustering="none",
             icc=None, cluster_size=None, cluster_cv=None, attrition=0.0,
             co_primary=1) -> SizeResult:
    """Time to event: log-rank / Cox test of a hazard ratio.

    Parameters
    ----------
    hr : float or array, optional
        Hazard ratio, intervention : control.
    n : float or array, optional
        Total events (the information of the test).  Participants follow from
        the probability of an event.
    power : float or array, optional
        Exactly one of ``hr``, ``n`` (events), ``power`` is unset.
    method : {"schoenfeld", "freedman"}
        Events formula.
    event_prob : float, optional
        Probability that a participant has an event during the trial.
    control_median, accrual, follow_up : float, optional
        Instead of ``event_prob``: control-arm median time to event, accrual
        period and follow-up after accrual closes (months); uniform accrual and
        exponential survival, as rpact assumes.
    dropout_rate, dropout_time : float, optional
        rpact's exponential dropout: the share lost by ``dropout_time`` months
        (both arms), a hazard -log(1 - rate) / time competing with the event.
        Participants lost this way still count their events before dropout;
        needs control_median, accrual and follow_up, and replaces ``attrition``.
    attrition : float
        The other convention: a share of participants contributes no events at
        all, so participants = events / P(event) / (1 - attrition), applied
        after the events calculation (conservative beside rpact's dropout).
    alpha, sided, alternative, ratio, clustering, icc, cluster_size, cluster_cv, co_primary
        As in :func:`means`.

    Returns
    -------
    SizeResult
        ``events`` holds the events needed; ``n_per_arm`` the participants.

    Notes
    -----
    Schoenfeld (1983): Var(log HR) = 1/d_C + 1/d_I = (1 + r)^2 / (r d).
    Freedman (1982): power = Phi(sqrt(d r) abs(1 - HR) / (1 + r HR) - z).
    Clustering inflates each arm's variance by its design effect.
    Validated against rpact ``getSampleSizeSurvival`` and the tables in the
    methods documentation.

    References
    ----------
    Schoenfeld D (1983). Biometrics 39:499-503.
    Freedman LS (1982). Stat Med 1:121-129.

    Examples
    --------
    >>> r = survival(hr=0.7, power=0.8)
    >>> r.events
    247
    """
    q = _survival_question(
        hr=hr, n=n, power=power, alpha=alpha, sided=sided, alternative=alternative, ratio=ratio,
        method=method, event_prob=event_prob, control_median=control_median, accrual=accrual,
        follow_up=follow_up, dropout_rate=dropout_rate, dropout_time=dropout_time,
        clustering=clustering, icc=icc, cluster_size=cluster_size, cluster_cv=cluster_cv,
        attrition=attrition, co_primary=co_primary)
    return _survival_result(q, *_survival_events(q))


# --------------------------------------------------------------------------------------------
# survival(): validate into a frozen question, compute, assemble the result


@dataclass(frozen=True)
class _SurvivalQuestion:
    """One validated question to :func:`survival` (arrays where a grid was given)."""

    c: _Common
    solved: str
    method: str
    hr: object
    n: object
    power: object
    event_prob: object
    control_median: object
    accrual: object
    follow_up: object
    dropout_rate: object
    dropout_time: object
    dropout_hazard: object
    echo: dict

    @property
    def by_median(self) -> bool:
        """The event probability comes from the control median, accrual and follow-up."""
        return self.control_median is not None

    @property
    def down(self) -> bool:
        """The detectable effect is searched below 1 (unless the alternative is 'greater')."""
        return self.c.alternative != "greater"


def _survival_question(*, hr, n, power, alpha, sided, alternative, ratio, method, event_prob,
                       control_median, accrual, follow_up, dropout_rate, dropout_time,
                       clustering, icc, cluster_size, cluster_cv, attrition,
                       co_primary) -> _SurvivalQuestion:
    """Check every input of :func:`survival` once, in a fixed order; raise InputError."""
    # A binary, count or event outcome's variance is fixed by its mean, so the peer-worker
    # ICC is a share of the intervention arm's total variance.
    c = _common(alpha, sided, alternative, ratio, clustering, icc, cluster_size, cluster_cv,
                attrition, co_primary, control_variance="total")
    v.choice("method", method, SURVIVAL_METHODS)
    solved = v.exactly_one_missing(n=n, power=power, hr=hr)
    solved = "effect" if solved == "hr" else solved
    if hr is not None:
        hr = v.positive("hr", hr)
        _check_direction(c, np.log(hr), "log(hr)")
        if solved == "n" and np.any(hr == 1):
            raise InputError("hr must differ from 1 to solve for the number of events",
                             names=("hr",))
    if power is not None:
        power = v.in_range("power", power, 0.0, 1.0)
    if n is not None:
        n = v.positive("n", n)
    by_median = [x is not None for x in (control_median, accrual, follow_up)]
    if event_prob is not None and any(by_median):
        raise InputError("give event_prob or control_median, accrual and follow_up, not both",
                         names=("event_prob", "control_median", "accrual", "follow_up"))
    if any(by_median) and not all(by_median):
        raise InputError("control_median, accrual and follow_up go together; give all three",
                         names=("control_median", "accrual", "follow_up"))
    if event_prob is not None:
        event_prob = v.in_range("event_prob", event_prob, 0.0, 1.0, high_open=False)
    if all(by_median):
        control_median = v.positive("control_median", control_median)
        accrual = v.in_range("accrual", accrual, 0.0, np.inf, low_open=False)
        follow_up = v.positive("follow_up", follow_up)
    dropout_hazard = 0.0
    if dropout_rate is not None or dropout_time is not None:
        if dropout_rate is None or dropout_time is None:
            raise InputError("dropout_rate and dropout_time go together (rpact's exponential "
                             "dropout); give both",
                             names=("dropout_rate", "dropout_time"))
        if not all(by_median):
            raise InputError("exponential dropout needs control_median, accrual and follow_up "
                             "(the event probability is computed with dropout competing)",
                             names=("control_median", "accrual", "follow_up"))
        if np.any(c.attrition > 0):
            raise InputError("give attrition or dropout_rate, not both: they are two "
                             "conventions for the same loss",
                             names=("attrition", "dropout_rate"))
        dropout_rate = v.in_range("dropout_rate", dropout_rate, 0.0, 1.0)
        dropout_time = v.positive("dropout_time", dropout_time)
        dropout_hazard = -np.log(1.0 - dropout_rate) / dropout_time
    echo = _echo(hr=hr, n=n, power=power, alpha=alpha, sided=sided, alternative=alternative,
                 ratio=ratio, method=method, event_prob=event_prob,
                 control_median=control_median, accrual=accrual, follow_up=follow_up,
                 dropout_rate=dropout_rate, dropout_time=dropout_time,
                 clustering=clustering, icc=icc, cluster_size=cluster_size,
                 cluster_cv=cluster_cv, attrition=attrition, co_primary=co_primary)
    return _SurvivalQuestion(c, solved, method, hr, n, power, event_prob, control_median,
                             accrual, follow_up, dropout_rate, dropout_time, dropout_hazard,
                             echo)


def _log_rank_power(method: str, down: bool, p, mag, d_c, d_i):
    """Power of the log-rank test with ``d_c``, ``d_i`` events expected per arm."""
    inflated = p.de_c / d_c + p.de_i / d_i
    if method == "schoenfeld":
        eff, se = mag, np.sqrt(inflated)
    else:
        theta = np.exp(-mag) if down else np.exp(mag)
        theta = np.where(p.fixed_dir != 0, np.exp(p.fixed_dir * mag), theta)
        r = p.ratio
        d = d_c + d_i
        eff = np.abs(1.0 - theta) / (1.0 + r * theta)
        se = np.sqrt(1.0 / (d * r) * inflated / (1.0 / d_c + 1.0 / d_i))
    df = _df(p, d_c, d_i, p.de_c, p.de_i, 0, normal=True)
    return _power_z(eff, se, se, df, p.alpha, p.sided)


def _survival_events(q: _SurvivalQuestion):
    """Solve for events, power or the hazard ratio: the shape, control-arm events, the hazard
    ratio and the power achieved (at the events rounded up when they were solved)."""
    c = q.c
    magnitude = None if q.hr is None else np.abs(np.log(q.hr))
    fixed_dir = 0.0 if q.hr is None else np.sign(np.log(q.hr))
    # Broadcast over the inputs of the event probability too, so that a grid over them
    # (e.g. power down one axis, control median along another) shapes the result.
    event_inputs = (q.event_prob, q.control_median, q.accrual, q.follow_up, q.dropout_rate,
                    q.dropout_time)
    fixed_dir = fixed_dir + np.zeros(np.broadcast_shapes(
        *(np.shape(x) for x in event_inputs if x is not None)))
    # The engine works with control-arm "size"; for survival that is control events d/(1+r).
    shape, d_c, mag, achieved = _two_arm(
        c=c, solved=q.solved, n=None if q.n is None else q.n / (1.0 + c.ratio), power=q.power,
        magnitude=magnitude, lo=_min_n(c, 0),
        power_at=functools.partial(_log_rank_power, q.method, q.down),
        guess=lambda mag_: _normal_guess(c, q.power, mag_, 1.0, 1.0), effect_hi=5.0,
        effect_name="log hazard ratio", extra={"fixed_dir": fixed_dir}, n_unit="events",
    )
    hr_val = q.hr if q.hr is not None else np.exp(-mag if q.down else mag)
    events_exact = d_c * (1.0 + c.ratio)
    if q.solved == "n":
        ev = _round_up(events_exact)
        achieved_power = achieved(ev / (1.0 + c.ratio), c.ratio * ev / (1.0 + c.ratio))
    else:
        achieved_power = achieved(d_c, c.ratio * d_c)
    return shape, events_exact, hr_val, achieved_power


def _event_share(q: _SurvivalQuestion, hr_val):
    """P(event during the trial), averaged over the arms; None when not given."""
    if q.event_prob is not None:
        return q.event_prob
    if not q.by_median:
        return None
    lam_c = np.log(2.0) / q.control_median
    p_c = event_probability(lam_c, q.accrual, q.follow_up, q.dropout_hazard)
    p_i = event_probability(lam_c * hr_val, q.accrual, q.follow_up, q.dropout_hazard)
    return (p_c + q.c.ratio * p_i) / (1.0 + q.c.ratio)


def _survival_result(q: _SurvivalQuestion, shape, events_exact, hr_val,
                     achieved_power) -> SizeResult:
    """Participants from events, the notes, and the result."""
    c = q.c
    prob = _event_share(q, hr_val)
    notes = ()
    if q.solved == "effect":
        notes += (f"Detectable hazard ratio searched {'below' if q.down else 'above'} 1.",)
    if prob is None:
        notes += ("No event probability given: participant numbers equal event numbers; give "
                  "event_prob, or control_median with accrual and follow_up.",)
        prob = 1.0
    else:
        notes += (f"Probability of an event during the trial: {_fmt(prob)}.",)
    if q.dropout_rate is not None:
        notes += (f"Exponential dropout (as rpact): {_fmt(q.dropout_rate)} lost by month "
                  f"{_fmt(q.dropout_time)} in each arm, competing with the event; those lost "
                  "count their events before dropout.",)
    elif np.any(c.attrition > 0):
        notes += ("Attrition is applied after the events calculation: participants = events "
                  "/ P(event) / (1 - attrition), as if those lost had no events (rpact's "
                  "exponential dropout, dropout_rate and dropout_time, is the alternative).",)
    events = _as_int(_round_up(events_exact), shape) if q.solved == "n" else _scalar_or_array(
        events_exact, shape)
    # Participants: events / P(event), split by allocation, before attrition.
    subjects_c = events_exact / prob / (1.0 + c.ratio)
    return _finish(
        design="survival", solved=q.solved, c=c, n_c_exact=subjects_c,
        power_at=lambda a, b: achieved_power, shape=shape,
        effect={"hazard_ratio": hr_val, "log_hazard_ratio": np.log(hr_val)},
        method=f"log-rank test, {q.method.capitalize()} events formula",
        reference=("Schoenfeld 1983" if q.method == "schoenfeld" else "Freedman 1982")
        + "; uniform accrual, exponential survival (as rpact)" + _CLUSTER_REFS[c.clustering],
        inputs=q.echo, notes=notes, events=events,
    )
