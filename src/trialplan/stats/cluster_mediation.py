"""Mechanism power in cluster-randomised trials: 2-1-1 and 2-2-1 mediation.

Treatment T is randomised to clusters (level 2).  In the **2-1-1** design the
process variable M and the outcome Y are measured on individuals (level 1);
M's cluster mean carries the indirect effect to Y's cluster mean, so the
mediator-outcome path has a within-cluster part b1 and a between-cluster part
B (the analysis model centres M on its cluster mean and enters the cluster
mean as a level-2 predictor), and the indirect effect is a x B.  In the
**2-2-1** design M is a property of the cluster (e.g. a ward's climate or its
staff's practice) and the indirect effect is a x b.

Variances and degrees of freedom are those of Kelcey, Dong, Spybrook & Cox
(2017) and Kelcey, Spybrook & Dong (2019), as implemented in R PowerUpR 1.1.0
(``power.med211``, ``power.med221``; ``R/cra2.R``), which this module
reproduces to its printed precision.  Effects are on PowerUpR's scale: the
unconditional (total) variances of M and Y are 1 and T is coded 0/1, so a is
the treatment effect in SDs of M, and b, b1 and B are in SDs of Y per SD of M.
:func:`from_residual` converts trialplan's residual-scale paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from trialplan.errors import InputError, UnreachableTargetError
from trialplan.stats import _dist as sp
from trialplan.stats import _validate as v
from trialplan.stats._solver import smallest_whole
from trialplan.stats.mediation import (
    ALPHA_MIN,
    CLUSTER_SIZE_MAX,
    N_MAX,
    PATH_MAX,
    _check_promises,
)

DESIGNS = ("2-1-1", "2-2-1")
TESTS = ("joint", "sobel")
CLUSTERS_MAX = 100_000
_REFERENCE = {"2-1-1": "Kelcey, Dong, Spybrook & Cox 2017 (PowerUpR power.med211)",
              "2-2-1": "Kelcey, Spybrook & Dong 2019 (PowerUpR power.med221)"}


@dataclass(frozen=True)
class ClusterMediationResult:
    """Power or number of clusters for the indirect effect in a cluster-randomised trial.

    Attributes
    ----------
    design : str
        ``"2-1-1"`` or ``"2-2-1"``.
    clusters : int
        Clusters randomised (J); ``clusters_per_arm`` splits them by ``allocation``.
    power : float
        Power of ``test`` for the indirect effect (a x B in 2-1-1, a x b in 2-2-1).
    path_power, df, se : dict
        Per path (``a``, ``b``; and ``b_within`` in 2-1-1): power of its t test,
        its degrees of freedom and standardised standard error.
    """

    design: str
    test: str
    solved_for: str
    clusters: int
    clusters_per_arm: dict
    cluster_size: float
    n_total: float
    power: float
    path_power: dict
    df: dict
    se: dict
    a: float
    b: float
    b_within: float | None
    cprime: float
    indirect_effect: float
    method: str
    reference: str
    inputs: dict
    notes: tuple = ()

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["notes"] = list(self.notes)
        return out


@dataclass(frozen=True)
class _Spec:
    design: str
    a: float
    b: float
    b_within: float
    cprime: float
    icc_m: float
    icc_y: float
    r2_m1: float
    r2_m2: float
    r2_y1: float
    r2_y2: float
    p: float
    n: float
    alpha: float


def _infeasible(what: str, value: float) -> InputError:
    return InputError(f"the design is not feasible: the {what} is {value:.3g} (not positive); "
                      "the paths, ICCs and R-squared values contradict each other (a path "
                      "explains more of a variance than there is)")


def _paths(s: _Spec, j: float) -> dict:
    """Standard errors and df of each path at j clusters (PowerUpR R/cra2.R)."""
    pq = s.p * (1.0 - s.p)
    if s.design == "2-2-1":
        var_m = 1.0 - (s.r2_m2 + pq * s.a ** 2)
        if var_m <= 0:
            raise _infeasible("residual variance of the cluster-level process variable", var_m)
        var_a = var_m / (pq * j)
        num = (s.icc_y * (1.0 - (s.r2_y2 + pq * (s.a * s.b + s.cprime) ** 2 / s.icc_y
                                 + (s.b ** 2 / s.icc_y) * var_m))
               + (1.0 - s.icc_y) * (1.0 - s.r2_y1) / s.n)
        var_b = num / (j * var_m)
        if var_b <= 0:
            raise _infeasible("sampling variance of b", var_b)
        return {"a": (math.sqrt(var_a), j - 4.0), "b": (math.sqrt(var_b), j - 4.0)}
    # 2-1-1
    t2m = s.icc_m * (1.0 - s.r2_m2 - pq * s.a ** 2 / s.icc_m)
    s2m = (1.0 - s.icc_m) * (1.0 - s.r2_m1)
    var_a = (t2m + s2m / s.n) / (j * pq)
    if t2m <= 0 or var_a <= 0:
        raise _infeasible("residual between-cluster variance of the process variable", t2m)
    s2y = (1.0 - s.icc_y) * (1.0 - s.r2_y1 - ((1.0 - s.icc_m) / (1.0 - s.icc_y))
                             * s.b_within ** 2 * (1.0 - s.r2_m1))
    if s2y <= 0:
        raise _infeasible("residual within-cluster variance of the outcome", s2y)
    var_b1 = s2y / ((j * s.n - j) * s2m)
    t2y = (s.icc_y * (1.0 - s.r2_y2) - pq * (s.a * s.b + s.cprime) ** 2
           - ((1.0 / pq) * s.b ** 2 * s.icc_m * (1.0 - s.r2_m2)
              + (1.0 / pq) * s.b ** 2 * s2m / s.n - s.a ** 2 * s.b ** 2) / (1.0 / pq))
    var_b = (t2y + s2y / s.n) / (j * (t2m + s2m / s.n))
    if var_b <= 0:
        raise _infeasible("sampling variance of B", var_b)
    return {"a": (math.sqrt(var_a), j - 4.0), "b_within": (math.sqrt(var_b1), j * s.n - 3.0),
            "b": (math.sqrt(var_b), j - 5.0)}


def _t_power(es: float, se: float, df: float, alpha: float) -> float:
    """Two-sided power of a t test with noncentrality es / se (PowerUpR .power.fun)."""
    crit = float(sp.stdtrit(df, 1.0 - alpha / 2.0))
    return float(sp.nct_abs_sf(df, es / se, crit))


def _z_power(es: float, se: float, alpha: float) -> float:
    z = float(sp.ndtri(1.0 - alpha / 2.0))
    lam = abs(es) / se
    return float(sp.ndtr(lam - z) + sp.ndtr(-lam - z))


def _power(s: _Spec, test: str, j: float) -> tuple[float, dict, dict, dict]:
    paths = _paths(s, j)
    if min(df for _, df in paths.values()) < 1:
        raise InputError(f"{j:g} clusters leave no degrees of freedom for the {s.design} "
                         f"design; it needs at least {_min_clusters(s.design)}")
    es = {"a": s.a, "b": s.b, "b_within": s.b_within}
    pw = {k: _t_power(es[k], se, df, s.alpha) for k, (se, df) in paths.items()}
    se_a, se_b = paths["a"][0], paths["b"][0]
    if test == "joint":
        power = pw["a"] * pw["b"]
    else:
        # PowerUpR .power.sobel: the Sobel SE, with df 1e8 (a normal test).
        power = _z_power(s.a * s.b, math.sqrt(s.a ** 2 * se_b ** 2 + s.b ** 2 * se_a ** 2),
                         s.alpha)
    return (power, pw, {k: df for k, (_, df) in paths.items()},
            {k: se for k, (se, _) in paths.items()})


def _min_clusters(design: str) -> int:
    return 6 if design == "2-1-1" else 5


def from_residual(a: float, b: float, cprime: float = 0.0, *, allocation: float = 0.5):
    """Residual-scale paths (trialplan's trial file) on PowerUpR's total-variance scale.

    With a 0/1 treatment allocated with proportion p and unit residual
    variances, Var(M) = 1 + p(1-p) a^2 and Var(Y) = 1 + b^2 Var(M) + p(1-p)
    (c'^2 + 2 a b c'); PowerUpR's paths are a / SD(M), b SD(M) / SD(Y) and
    c' / SD(Y).

    Examples
    --------
    >>> [round(t, 4) for t in from_residual(0.3, 0.3)]
    [0.2967, 0.2903, 0.0]
    """
    sd_m, sd_y = _total_sds(a, b, cprime, allocation)
    return a / sd_m, b * sd_m / sd_y, cprime / sd_y


def _total_sds(a, b, cprime, allocation):
    pq = allocation * (1.0 - allocation)
    var_m = 1.0 + pq * a * a
    var_y = 1.0 + b * b * var_m + pq * (cprime * cprime + 2.0 * a * b * cprime)
    return math.sqrt(var_m), math.sqrt(var_y)


def cluster_mediation(
    design,
    a,
    b,
    *,
    b_within=None,
    cprime=0.0,
    clusters=None,
    power=None,
    cluster_size,
    icc_y,
    icc_m=None,
    r2_m1=0.0,
    r2_m2=0.0,
    r2_y1=0.0,
    r2_y2=0.0,
    allocation=0.5,
    alpha=0.05,
    test="joint",
    scale="residual",
) -> ClusterMediationResult:
    """Power, or the clusters needed, for a mechanism in a cluster-randomised trial.

    Leave exactly one of ``clusters`` and ``power`` unset.

    Parameters
    ----------
    design : {"2-1-1", "2-2-1"}
        Process variable measured on individuals (2-1-1) or on the cluster (2-2-1).
    a : float
        Treatment -> process variable.
    b : float
        Process variable -> outcome: between clusters (B) in 2-1-1; the
        cluster-level mediator's path in 2-2-1.
    b_within : float, optional
        2-1-1 only: the within-cluster path b1 (default ``b``: no contextual
        effect).
    cprime : float
        Direct effect of treatment on the outcome.
    clusters : int
        Clusters randomised (J).
    power : float
        Target power (solve for the clusters).
    cluster_size : float
        Individuals analysed per cluster (n; the harmonic mean when sizes vary).
    icc_y, icc_m : float
        Share of the outcome's and (2-1-1) the process variable's variance
        between clusters.
    r2_m1, r2_m2, r2_y1, r2_y2 : float
        Shares of the process variable's and outcome's level-1 and level-2
        variance explained by covariates (``r2_m1`` only in 2-1-1).
    allocation : float
        Share of clusters randomised to the intervention (p).
    alpha : float
        Two-sided significance level.
    test : {"joint", "sobel"}
        Joint significance of a and b (B), or the Sobel test.
    scale : {"residual", "total"}
        ``"residual"`` (default): trialplan's residual-SD scale (as the trial
        file and :func:`trialplan.stats.mediation`), converted with
        :func:`from_residual`.  ``"total"``: PowerUpR's scale (unconditional
        variances 1).

    Returns
    -------
    ClusterMediationResult

    Notes
    -----
    2-1-1 (Kelcey et al. 2017): Var(a) = (tau_M + sigma_M / n) / (J p (1-p))
    with df J - 4; Var(b1) = sigma_Y / ((Jn - J) sigma_M) with df Jn - 3;
    Var(B) = (tau_Y + sigma_Y / n) / (J (tau_M + sigma_M / n)) with df J - 5,
    tau and sigma the conditional between- and within-cluster variances.
    2-2-1 (Kelcey et al. 2019): Var(a) = (1 - R2_m2 - p(1-p) a^2) / (p(1-p) J)
    and Var(b) from the level-2 and level-1 residual variances of Y, both with
    df J - 4.  Path powers are two-sided noncentral t; joint significance is
    their product; the Sobel test is a z test of ab.  The number of clusters
    is the smallest whole J reaching the target (bisection after doubling;
    power rises with J).

    References
    ----------
    Kelcey B, Dong N, Spybrook J, Cox K (2017). Statistical power for causally
    defined indirect effects in group-randomized trials with individual-level
    mediators. J Educ Behav Stat 42(5):499-530.
    Kelcey B, Spybrook J, Dong N (2019). Sample size planning for cluster-
    randomized interventions probing multilevel mediation. Prev Sci 20:407-418.

    Examples
    --------
    >>> r = cluster_mediation("2-2-1", a=0.6596, b=0.1891, cprime=0.1, icc_y=0.15,
    ...                       r2_y2=0.52, r2_y1=0.40, r2_m2=0.50, cluster_size=100,
    ...                       clusters=40, scale="total")
    >>> round(r.power, 2)   # R PowerUpR power.med221 Rd example: joint 0.81
    0.81
    """
    q = _validate(design, a, b, b_within=b_within, cprime=cprime, clusters=clusters,
                  power=power, cluster_size=cluster_size, icc_y=icc_y, icc_m=icc_m, r2_m1=r2_m1,
                  r2_m2=r2_m2, r2_y1=r2_y1, r2_y2=r2_y2, allocation=allocation, alpha=alpha,
                  test=test, scale=scale)
    j = q.clusters if q.solved == "power" else _solve_clusters(
        lambda jj: _power(q.spec, q.test, jj)[0], q.power, _min_clusters(q.design))
    return _assemble(q, j)


# --------------------------------------------------------------------------------------------
# cluster_mediation(): validate into a frozen question, compute, assemble the result


@dataclass(frozen=True)
class _Question:
    """One validated question to :func:`cluster_mediation`; ``spec`` is in total-variance
    units, ``given`` the paths as given and ``inputs`` the echo of every input."""

    design: str
    test: str
    scale: str
    solved: str
    clusters: int | None
    power: float | None
    spec: _Spec
    given: dict
    inputs: dict


def _validate(design, a, b, *, b_within, cprime, clusters, power, cluster_size, icc_y, icc_m,
              r2_m1, r2_m2, r2_y1, r2_y2, allocation, alpha, test, scale) -> _Question:
    """Check every input of :func:`cluster_mediation` once, in a fixed order."""
    design = v.choice("design", design, DESIGNS)
    test = v.choice("test", test, TESTS)
    scale = v.choice("scale", scale, ("total", "residual"))
    solved = v.exactly_one_missing(clusters=clusters, power=power)
    alpha = float(v.in_range("alpha", alpha, ALPHA_MIN, 1.0, low_open=False))
    allocation = float(v.in_range("allocation", allocation, 0.0, 1.0))
    a = _path("a", a)
    b = _path("b", b)
    cprime = _path("cprime", cprime)
    cluster_size = float(v.at_least("cluster_size", cluster_size, 1.0))
    if cluster_size > CLUSTER_SIZE_MAX:
        raise InputError(f"cluster_size must be at most {CLUSTER_SIZE_MAX:,}; got "
                         f"{cluster_size:g}", names=("cluster_size",))
    icc_y = float(v.in_range("icc_y", icc_y, 0.0, 1.0))
    r2 = {name: float(v.in_range(name, val, 0.0, 1.0, low_open=False))
          for name, val in (("r2_m1", r2_m1), ("r2_m2", r2_m2), ("r2_y1", r2_y1),
                            ("r2_y2", r2_y2))}
    if design == "2-1-1":
        if icc_m is None:
            raise InputError("the 2-1-1 design needs icc_m, the process variable's ICC",
                             names=("icc_m",))
        icc_m = float(v.in_range("icc_m", icc_m, 0.0, 1.0))
        if cluster_size < 2:
            raise InputError("the 2-1-1 design needs at least 2 individuals per cluster to "
                             f"estimate the within-cluster path; got cluster_size {cluster_size:g}",
                             names=("cluster_size",))
        b_within = b if b_within is None else _path("b_within", b_within)
    else:
        if icc_m is not None or b_within is not None:
            raise InputError("icc_m and b_within apply to the 2-1-1 design (an individual-level "
                             "process variable); the 2-2-1 mediator is a cluster property",
                             names=("icc_m", "b_within"))
        if r2["r2_m1"]:
            raise InputError("r2_m1 applies to the 2-1-1 design; a cluster-level process "
                             "variable has no level-1 variance", names=("r2_m1",))
    given = dict(a=a, b=b, b_within=b_within, cprime=cprime)
    if scale == "residual":
        sd_m, sd_y = _total_sds(a, b, cprime, allocation)
        a, b, cprime = a / sd_m, b * sd_m / sd_y, cprime / sd_y
        if b_within is not None:
            b_within = b_within * sd_m / sd_y
    if power is not None:
        power = float(v.in_range("power", power, 0.0, 1.0))
    spec = _Spec(design, a, b, b_within if b_within is not None else 0.0, cprime,
                 icc_m if icc_m is not None else 0.0, icc_y, r2["r2_m1"], r2["r2_m2"],
                 r2["r2_y1"], r2["r2_y2"], allocation, cluster_size, alpha)
    low = _min_clusters(design)
    if solved == "power":
        j = float(v.as_array("clusters", clusters))
        if j != int(j) or j < low:
            raise InputError(f"clusters must be a whole number of at least {low} for the "
                             f"{design} design; got {j:g}", names=("clusters",))
        j = int(j)
        if j * cluster_size > N_MAX:
            raise InputError(f"clusters must be at most {int(N_MAX // cluster_size):,} when "
                             f"each has {cluster_size:g} participants ({N_MAX:,} in all); got "
                             f"{j:,}", names=("clusters",))
    else:
        if a == 0 or b == 0:
            raise InputError("a and b must both be non-zero to solve for the clusters",
                             names=("a", "b"))
        j = None
    inputs = dict(design=design, clusters=clusters, power=power, cluster_size=cluster_size,
                  icc_m=icc_m, icc_y=icc_y, **r2, allocation=allocation, alpha=alpha,
                  test=test, scale=scale, **given)
    return _Question(design, test, scale, solved, j, power, spec, given, inputs)


def _assemble(q: _Question, j: int) -> ClusterMediationResult:
    """Power and paths at ``j`` clusters, checked against the promises, with notes."""
    spec, design = q.spec, q.design
    pw, path_power, df, se = _power(spec, q.test, j)
    _check_promises(spec, "n" if q.solved == "clusters" else "power", pw, q.power,
                    math.ceil(j * spec.n), False)
    per_arm = {"intervention": j * spec.p, "control": j * (1.0 - spec.p)}
    notes = []
    if q.scale == "residual":
        notes.append(f"residual-scale paths a={q.given['a']:g}, b={q.given['b']:g}, "
                     f"c'={q.given['cprime']:g} were converted to total-variance units: "
                     f"a={spec.a:.4g}, b={spec.b:.4g}, c'={spec.cprime:.4g}")
    if any(not float(x).is_integer() for x in per_arm.values()):
        notes.append(f"{j} clusters cannot be split exactly {spec.p:g} to the "
                     "intervention; the power assumes the proportion p as PowerUpR does")
    if design == "2-1-1":
        notes.append("2-1-1: the process variable is centred on its cluster mean; the "
                     "indirect effect a x B runs through the cluster means (B the "
                     "between-cluster path), b1 the within-cluster path")
    method = {"joint": "joint significance of a and b: product of noncentral t powers",
              "sobel": "Sobel z test of ab"}[q.test]
    return ClusterMediationResult(
        design=design, test=q.test,
        solved_for="clusters" if q.solved == "clusters" else "power",
        clusters=int(j), clusters_per_arm=per_arm, cluster_size=spec.n,
        n_total=j * spec.n, power=pw, path_power=path_power, df=df, se=se,
        a=spec.a, b=spec.b, b_within=spec.b_within if design == "2-1-1" else None,
        cprime=spec.cprime, indirect_effect=spec.a * spec.b,
        method=f"{design} multilevel mediation, {method}", reference=_REFERENCE[design],
        inputs=q.inputs, notes=tuple(notes))


def _path(name, value) -> float:
    return float(v.in_range(name, value, -PATH_MAX, PATH_MAX, low_open=False, high_open=False))


def _solve_clusters(power_of, target: float, low: int) -> int:
    """Smallest whole J >= low with power_of(J) >= target (power rises with J)."""
    if power_of(low) >= target:
        return low
    lo, hi = low, low
    while True:
        hi = min(CLUSTERS_MAX, hi * 2)
        if power_of(hi) >= target:
            break
        if hi >= CLUSTERS_MAX:
            raise UnreachableTargetError(
                f"power at {CLUSTERS_MAX:,} clusters is still {power_of(hi):.3g}; no number of "
                f"clusters reaches {target:g} (a larger cluster size does not help once the "
                "between-cluster variance dominates)")
        lo = hi
    return smallest_whole(lambda j: power_of(j) >= target, lo, hi)
