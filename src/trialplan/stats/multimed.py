"""Several mechanisms at once: parallel mediators (2 to 4) and a two-mediator chain.

Each mediator M_j has its own a_j (X -> M_j) and b_j (M_j -> Y given X and the
other mediators); their residuals may be correlated.  In a chain, M_1 also
changes M_2 (path d), which adds the serial indirect effect a_1 d b_2.  The
outcome is continuous, or binary with a logistic b path (see
:mod:`trialplan.stats._medsim_multi`).

Power is reported for every specific indirect effect, for all of them (the
conjunction: every effect detected in the same trial) and for at least one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from trialplan.choices import B_LEVELS, CONTROL_VARIANCES
from trialplan.errors import InputError
from trialplan.stats import _medsim_multi
from trialplan.stats import _validate as v
from trialplan.stats.mediation import (
    ALPHA_MIN,
    MAX_BOOT,
    MAX_DRAWS,
    MAX_REPS,
    N_MAX,
    PATH_MAX,
    _b_power_random_m,
    _check_simulation_size,
    _count,
    _min_n,
    _pn_paths,
    _Progress,
    _r_power,
    _solve_n,
    _Spec,
    _t_power,
    _z_power,
    analytic_power,
)

TESTS = ("joint", "mc", "bootstrap")
_REFS = {
    "joint": "Kenny et al. 1998; MacKinnon et al. 2002; Schoemann, Boulton & Short 2017",
    "mc": "Preacher & Selig 2012; Schoemann, Boulton & Short 2017",
    "bootstrap": "Efron & Tibshirani 1993; Preacher & Hayes 2008",
}


@dataclass(frozen=True)
class MultiMediationResult:
    """Power (or n) for each indirect effect, for all of them, and for at least one."""

    test: str
    solved_for: str
    n_total: int
    n_per_arm: dict | None
    effects: list
    all: dict
    any: dict
    reps: int | None
    seed: int | None
    mediators: list
    cprime: float
    serial: float | None
    correlation: list
    x: str
    outcome: str
    base_rate: float | None
    method: str
    reference: str
    inputs: dict
    notes: tuple = ()
    failed_fits: int | None = None
    failed_resamples: int | None = None
    extra: dict = field(default_factory=dict)
    total_indirect: dict | None = None

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out["notes"] = list(self.notes)
        return out


def total_indirect(a, b, corr, n_c, n_t, alpha, *, x="binary", outcome="continuous",
                   base_rate=None) -> dict:
    """The mechanism's total indirect effect sum(a_j b_j) and the power of its z test.

    Delta method, with the a and b estimates asymptotically independent:
    Var = b' Var(a) b + a' Var(b) a, where Var(a) = R (1/n_c + 1/n_t) for a
    0/1 treatment (R / n for a standard-normal X) and Var(b) = R^-1 / n (the
    mediators' residual correlation R; unit residual variances), divided by
    p (1 - p) for a logistic b path with outcome rate p.  With one mediator
    this is the Sobel test of :func:`trialplan.stats.mediation`.
    """
    r = np.asarray(corr, dtype=float)
    n = n_c + n_t
    var_a = r * ((1.0 / n_c + 1.0 / n_t) if x == "binary" else 1.0 / n)
    var_b = np.linalg.inv(r) / n
    if outcome == "binary":
        var_b = var_b / (base_rate * (1.0 - base_rate))
    return _summed(a, b, var_a, var_b, alpha)


def _summed(a, b, var_a, var_b, alpha) -> dict:
    """The z test of sum(a_j b_j) given the covariance matrices of the a and b estimates."""
    a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    estimate = float(a_ @ b_)
    se = math.sqrt(float(b_ @ var_a @ b_ + a_ @ var_b @ a_))
    power = _z_power(abs(estimate) / se, alpha) if se > 0 else float(alpha)
    return {"estimate": estimate, "se": se, "power": power,
            "method": "z test of the summed indirect effects, delta-method SE (Sobel-type)"}


@dataclass(frozen=True)
class Nesting:
    """Partial nesting of the intervention arm by peer worker (the single-mediator model's)."""

    icc_m: float
    icc_y: float
    cluster_size: float
    control_variance: str
    b_level: str


def _pn_spec(q, nest: Nesting, j: int, var_j: float, covariates: int) -> _Spec:
    """Mediator j as one partially nested mediator: b_j scaled by its SD given the others.

    The information about b_j in the outcome model is that of a mediator with
    variance Var(M_j | X, other mediators) = var_j, so b_j sqrt(var_j) on a
    unit-variance mediator has the same test; the other mediators are
    covariates of the outcome model (they cost its degrees of freedom).
    """
    return _Spec(q.a[j], q.b[j] * math.sqrt(var_j), q.cprime, "binary", q.allocation, q.alpha,
                 0.0, 0.0, covariates, nest.icc_m, nest.icc_y, nest.cluster_size,
                 b_level=nest.b_level, outcome=q.outcome, base_rate=q.base_rate,
                 control_variance=nest.control_variance)


def _analytic_pn(q, n_c, n_t) -> dict:
    """Joint significance of each specific effect under partial nesting, and the total.

    Each a_j is the single-mediator partially nested a path (Kelcey, Bai & Xie
    2020; the mediators' own models); each b_j is the single-mediator b path
    (within caseloads and the control arm, or between caseloads, as
    ``b_level``) for a mediator with the variance it has given the other
    mediators, with k - 1 more covariates.  Unclustered (ICCs 0) this is the
    product of path powers of :func:`_analytic`.  The total indirect effect's
    delta-method SE takes each path's partially nested SE, with the a
    estimates correlated as the mediators' residuals (R) and the b estimates
    as R^-1.
    """
    nest = q.nesting
    k = len(q.a)
    corr = np.array(q.corr)
    prec = np.linalg.inv(corr)
    within = nest.control_variance == "within"
    pa, pb, se_a, se_b = [], [], [], []
    for j in range(k):
        var_j = 1.0 / prec[j, j]
        one = _pn_spec(q, nest, j, var_j, 0)
        pa.append(float(analytic_power(one, "joint", n_c, n_t)[1]["a"]))
        spec_b = _pn_spec(q, nest, j, var_j, k - 1)
        pb.append(float(analytic_power(spec_b, "joint", n_c, n_t)[1]["b"]))
        s_a = _pn_paths(one, n_c, n_t)[1]
        _, _, _, s_b, _, df_b = _pn_paths(spec_b, n_c, n_t)
        # back to the paths' own units (control-arm SDs), per unit-variance mediator j
        se_a.append(s_a / math.sqrt(1.0 - nest.icc_m) if within else s_a)
        if q.outcome == "binary":
            p = q.base_rate
            s_b = 1.0 / math.sqrt(max(df_b, 1.0) * p * (1.0 - p))
        elif nest.b_level == "caseload" and within:
            s_b = s_b * math.sqrt(1.0 - nest.icc_m) / math.sqrt(1.0 - nest.icc_y)
        se_b.append(s_b / math.sqrt(var_j))
    effects = [x * y for x, y in zip(pa, pb, strict=True)]
    d_a, d_b = np.diag(se_a), np.diag(se_b)
    scale = np.sqrt(np.diag(prec))
    total = _summed(q.a, q.b, d_a @ corr @ d_a,
                    d_b @ (prec / np.outer(scale, scale)) @ d_b, q.alpha)
    total["method"] += ", partially nested paths"
    return {"power": effects, "all": float(np.prod(effects)),
            "any": float(1.0 - np.prod([1.0 - e for e in effects])),
            "paths": {"a": pa, "b": pb}, "total": total}


def _check_corr(corr, k):
    if corr is None:
        return np.eye(k)
    arr = np.asarray(corr, dtype=float)
    if arr.shape != (k, k):
        raise InputError(f"the residual correlation matrix must be {k} x {k}; got shape "
                         f"{arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError("residual correlations must be finite")
    if not np.allclose(arr, arr.T) or not np.allclose(np.diag(arr), 1.0):
        raise InputError("the residual correlation matrix must be symmetric with 1 on the "
                         "diagonal")
    if np.any(np.abs(arr[~np.eye(k, dtype=bool)]) >= 1):
        raise InputError("residual correlations must be in (-1, 1)")
    if np.linalg.eigvalsh(arr).min() <= 1e-10:
        raise InputError("the residual correlations are not a valid correlation matrix "
                         "(not positive definite)")
    return arr


def _analytic(spec: _medsim_multi.MultiSpec, n_c, n_t, alpha) -> dict:
    """Product-of-path-powers approximation for every effect (joint significance)."""
    n = n_c + n_t
    k = spec.k
    vx = (n_c * n_t) / (n * n) if spec.x == "binary" else 1.0
    cov = _medsim_multi.mediator_cov_control(spec)
    prec = np.linalg.inv(cov)

    def a_power(j):
        a = spec.a[j]
        if spec.serial is not None and j == 1:
            # X's coefficient in M2 ~ X + M1: X partialled for M1 loses a share of its variance.
            share = spec.a[0] ** 2 * vx / (spec.a[0] ** 2 * vx + 1.0)
            ncp = abs(a) * math.sqrt(n * vx * (1.0 - share))
            return float(_t_power(ncp, n - 3.0, alpha))
        if spec.x == "continuous":
            return _r_power(n, a / math.sqrt(a * a + 1.0), alpha)
        se = math.sqrt(1.0 / n_c + 1.0 / n_t)
        return float(_t_power(abs(a) / se, n - 2.0, alpha))

    def b_power(j):
        var_j = 1.0 / prec[j, j]  # Var(M_j | X, other mediators)
        if spec.outcome == "binary":
            p = spec.base_rate
            return _z_power(abs(spec.b[j]) * math.sqrt(n * var_j * p * (1.0 - p)), alpha)
        one = _Spec(0.0, spec.b[j] * math.sqrt(var_j), 0.0, spec.x, 0.5, alpha, 0.0, 0.0, 0,
                    None, None, None)
        return _b_power_random_m(one, n, df_ss=n - 1.0 - k)

    def d_power():
        one = _Spec(0.0, spec.serial, 0.0, spec.x, 0.5, alpha, 0.0, 0.0, 0, None, None, None)
        return _b_power_random_m(one, n, df_ss=n - 2.0)

    pa = [a_power(j) for j in range(k)]
    pb = [b_power(j) for j in range(k)]
    effects = [pa[j] * pb[j] for j in range(k)]
    if spec.serial is not None:
        effects.append(pa[0] * d_power() * pb[1])
        conj = None  # the chain shares paths with the specific effects
        anyp = None
    else:
        conj = float(np.prod(effects))
        anyp = float(1.0 - np.prod([1.0 - e for e in effects]))
    return {"power": effects, "all": conj, "any": anyp, "paths": {"a": pa, "b": pb}}


def _path(name, value) -> float:
    return float(v.in_range(name, value, -PATH_MAX, PATH_MAX, low_open=False, high_open=False))


def mediation_multi(
    mediators,
    *,
    cprime=0.0,
    correlation=None,
    serial=None,
    n=None,
    power=None,
    alpha=0.05,
    test="joint",
    simulate=False,
    x="binary",
    allocation=0.5,
    outcome="continuous",
    base_rate=None,
    reps=1000,
    draws=5000,
    boot=1000,
    seed=20261126,
    icc_m=None,
    icc_y=None,
    cluster_size=None,
    control_variance="within",
    b_level="caseload",
    progress=None,
) -> MultiMediationResult:
    """Power, or total n, for several mediators (parallel, or a two-mediator chain).

    Parameters
    ----------
    mediators : list of (name, a, b)
        2 to 4 mediators, paths on the residual scale.
    correlation : k x k array, optional
        Residual correlation among the mediators (identity by default).
    serial : float, optional
        Path d from the first mediator to the second: a chain X -> M1 -> M2 -> Y
        (exactly two mediators), adding the serial indirect effect a1 d b2.
    n, power
        Leave exactly one unset.  Solving for n gives the smallest total n
        reaching ``power`` for the conjunction (all effects) and, separately,
        for each effect.
    test : {"joint", "mc", "bootstrap"}
        Analytic joint significance (product of path powers) unless
        ``simulate``; mc and bootstrap always simulate.
    outcome, base_rate
        ``"binary"`` gives a logistic b path, with the control-arm outcome rate.
    icc_m, icc_y, cluster_size, control_variance, b_level
        Partial nesting (peer workers in the intervention arm only), as in
        :func:`trialplan.stats.mediation.mediation`: the mediators' and the
        outcome's peer-worker ICCs, the caseload analysed, the control arm's
        variance convention and the level of b.  Analytic joint significance
        only (0/1 treatment, no serial chain).

    Examples
    --------
    >>> r = mediation_multi([("hope", 0.3, 0.3), ("efficacy", 0.3, 0.2)], n=400)
    >>> [round(e["power"], 3) for e in r.effects], round(r.all["power"], 3)
    ([0.849, 0.83], 0.704)
    """
    question = _validate(mediators, cprime=cprime, correlation=correlation, serial=serial,
                         n=n, power=power, alpha=alpha, test=test, simulate=simulate, x=x,
                         allocation=allocation, outcome=outcome, base_rate=base_rate,
                         reps=reps, draws=draws, boot=boot, seed=seed, icc_m=icc_m,
                         icc_y=icc_y, cluster_size=cluster_size,
                         control_variance=control_variance, b_level=b_level)
    arms, out, needed = _solve(question, progress)
    return _assemble(question, arms, out, needed)


# --------------------------------------------------------------------------------------------
# mediation_multi(): validate into a frozen question, compute, assemble the result


@dataclass(frozen=True)
class _Question:
    """One validated question to :func:`mediation_multi`: every input checked."""

    solved: str
    names: tuple
    a: tuple
    b: tuple
    cprime: float
    corr: tuple  # k x k, as nested tuples
    serial: float | None
    n: int | None
    power: float | None
    alpha: float
    test: str
    sim: bool
    x: str
    allocation: float
    outcome: str
    base_rate: float | None
    reps: int
    draws: int
    boot: int
    seed: int
    nesting: Nesting | None = None

    def analytic(self, arms) -> dict:
        """Every effect's analytic power at ``arms`` (partially nested when it is)."""
        if self.nesting is not None:
            return _analytic_pn(self, *arms)
        return _analytic(self.spec, *arms, self.alpha)

    @property
    def spec(self) -> _medsim_multi.MultiSpec:
        return _medsim_multi.MultiSpec(self.a, self.b, self.cprime, self.x, self.outcome,
                                       self.base_rate, self.corr, self.serial, self.alpha)

    def effect_names(self) -> list[tuple[str, str]]:
        """Each effect's name and path, in the order of the spec's effects."""
        names, out = self.names, []
        for name, _ in self.spec.effects():
            if name == "M1->M2":
                out.append((f"{names[0]} -> {names[1]}", f"X -> {names[0]} -> {names[1]} -> Y"))
            else:
                j = int(name[1:]) - 1
                out.append((names[j], f"X -> {names[j]} -> Y"))
        return out

    def arms_of_unit(self, u: int) -> tuple[int, int]:
        """Arms when n is solved: u controls (u in all for a continuous X)."""
        if self.x == "binary":
            return u, math.ceil(u * self.allocation / (1.0 - self.allocation) - 1e-9)
        return u - u // 2, u // 2

    def arms_of_total(self, nt: int) -> tuple[int, int]:
        if self.x == "binary":
            n_t = int(round(self.allocation * nt))
            return nt - n_t, n_t
        return nt - nt // 2, nt // 2

    def se(self, p):
        """Monte Carlo SE of a simulated power (None for an analytic one)."""
        return math.sqrt(p * (1.0 - p) / self.reps) if self.sim and p is not None else None


def _validate(mediators, *, cprime, correlation, serial, n, power, alpha, test, simulate, x,
              allocation, outcome, base_rate, reps, draws, boot, seed, icc_m, icc_y,
              cluster_size, control_variance, b_level) -> _Question:
    """Check every input of :func:`mediation_multi` once, in a fixed order."""
    test = v.choice("test", test, TESTS)
    x = v.choice("x", x, ("binary", "continuous"))
    outcome = v.choice("outcome", outcome, ("continuous", "binary"))
    mediators = [tuple(m) for m in mediators]
    k = len(mediators)
    if not 1 <= k <= 4:
        raise InputError(f"give 1 to 4 mediators; got {k}")
    names = [str(m[0]) for m in mediators]
    if len(set(names)) != k:
        raise InputError(f"mediator names must be distinct; got {', '.join(names)}")
    a = tuple(_path(f"a of {nm}", m[1]) for nm, m in zip(names, mediators, strict=True))
    b = tuple(_path(f"b of {nm}", m[2]) for nm, m in zip(names, mediators, strict=True))
    cprime = _path("cprime", cprime)
    corr = _check_corr(correlation, k)
    if serial is not None:
        serial = _path("serial", serial)
        if k != 2:
            raise InputError(f"a serial chain needs exactly two mediators; got {k}")
        if not np.allclose(corr, np.eye(2)):
            raise InputError("give either a serial path or a residual correlation, not both: "
                             "in a chain the path d carries the mediators' association")
    solved = v.exactly_one_missing(n=n, power=power)
    alpha = float(v.in_range("alpha", alpha, ALPHA_MIN, 1.0, low_open=False))
    allocation = float(v.in_range("allocation", allocation, 0.0, 1.0))
    if x == "binary" and 2 / min(allocation, 1 - allocation) > N_MAX:
        raise InputError(f"allocation {allocation:g} needs more than {N_MAX:,} participants "
                         "for two in the smaller arm")
    if power is not None:
        power = float(v.in_range("power", power, 0.0, 1.0))
    if n is not None:
        n = int(v.in_range("n", n, 6 + k, N_MAX, low_open=False, high_open=False))
    if outcome == "binary":
        if base_rate is None:
            raise InputError("a binary outcome needs base_rate, the outcome rate in the control "
                             "arm", names=("base_rate",))
        base_rate = float(v.in_range("base_rate", base_rate, 0.0, 1.0))
    sim = simulate or test != "joint"
    if sim:
        reps = _count("reps", reps, 1, MAX_REPS)
        boot = _count("boot", boot, 1, MAX_BOOT)
        draws = _count("draws", draws, 1, MAX_DRAWS)
        seed = _count("seed", seed, 0, 2**63 - 1)
    nesting = _validate_nesting(icc_m, icc_y, cluster_size, control_variance, b_level,
                                sim=sim, serial=serial, x=x)
    if nesting is not None and outcome == "binary" and nesting.b_level != "individual":
        raise InputError("with a binary outcome under partial nesting, b is estimated within "
                         "caseloads: use b_level 'individual'", names=("b_level",))
    return _Question(solved, tuple(names), a, b, cprime, tuple(map(tuple, corr.tolist())),
                     serial, n, power, alpha, test, sim, x, allocation, outcome, base_rate,
                     reps, draws, boot, seed, nesting)


def _validate_nesting(icc_m, icc_y, cluster_size, control_variance, b_level, *, sim, serial,
                      x) -> Nesting | None:
    """Partial nesting's inputs, all three of icc_m, icc_y and cluster_size or none."""
    control_variance = v.choice("control_variance", control_variance, CONTROL_VARIANCES)
    b_level = v.choice("b_level", b_level, B_LEVELS)
    given = {"icc_m": icc_m, "icc_y": icc_y, "cluster_size": cluster_size}
    if all(val is None for val in given.values()):
        return None
    missing = [k for k, val in given.items() if val is None]
    if missing:
        raise InputError("partial nesting needs icc_m, icc_y and cluster_size together; "
                         f"{' and '.join(missing)} not given", names=tuple(given))
    if sim or serial is not None or x != "binary":
        raise InputError("several partially nested mediators are sized by the analytic joint "
                         "test, in parallel, with a 0/1 treatment: leave out --simulate, "
                         "--serial and --x continuous, and use --test joint")
    icc_m = float(v.in_range("icc_m", icc_m, 0.0, 1.0, low_open=False))
    icc_y = float(v.in_range("icc_y", icc_y, 0.0, 1.0, low_open=False))
    cluster_size = float(v.in_range("cluster_size", cluster_size, 1.0, N_MAX, low_open=False))
    return Nesting(icc_m, icc_y, cluster_size, control_variance, b_level)


def _evaluate(q: _Question, spec, arms, prog, cache: dict) -> dict:
    """Power of every effect at ``arms`` (simulated or analytic), once per arms."""
    if arms not in cache:
        if q.sim:
            _check_simulation_size(q.test, sum(arms), q.reps, q.draws, q.boot)
            cache[arms] = _medsim_multi.power(spec, q.test, *arms, reps=q.reps, seed=q.seed,
                                              draws=q.draws, boot=q.boot, progress=prog)
        else:
            cache[arms] = q.analytic(arms)
    return cache[arms]


def _summary(out: dict, target) -> float | None:
    """The power of all effects together (``"all"``) or of effect number ``target``."""
    return out["all"] if target == "all" else out["power"][target]


def _solve(q: _Question, progress) -> tuple[tuple, dict, dict]:
    """The arms (given or solved), every effect's power there, and each target's n."""
    spec = q.spec
    k = len(q.names)
    prog = _Progress(q.reps, f"simulating {q.test}", progress) if q.sim else None
    cache: dict = {}
    min_u = 3 + k if q.x == "continuous" else max(2, math.ceil((4 + k) / 2))
    if q.nesting is not None:
        # enough peer workers for every path's df (k - 1 mediators are covariates of b's)
        total = _min_n(q.x, q.allocation, k - 1, q.nesting.cluster_size)
        min_u = max(min_u, math.ceil(total * (1.0 - q.allocation)))
    needed: dict = {}
    try:
        if q.solved == "n":
            if any(val == 0 for val in q.a + q.b):
                raise InputError("every a and b must be non-zero to solve for n")
            targets = ["all"] if spec.serial is None or q.sim else []
            targets += list(range(len(q.effect_names())))
            for target in targets:
                def p_of(u, target=target):
                    val = _summary(_evaluate(q, spec, q.arms_of_unit(u), prog, cache), target)
                    return -1.0 if val is None else val

                def bracket(u, target=target):
                    val = _summary(q.analytic(q.arms_of_unit(u)), target)
                    return -1.0 if val is None else val

                needed[target] = _solve_n(p_of, q.power, min_u, q.sim, bracket)
            main = "all" if "all" in needed else max(needed, key=lambda t: needed[t])
            arms = q.arms_of_unit(needed[main])
        else:
            arms = q.arms_of_total(q.n)
        out = _evaluate(q, spec, arms, prog, cache)
    finally:
        if prog is not None:
            prog.close()
    return arms, out, needed


def _notes(q: _Question, out: dict) -> list[str]:
    notes = []
    if not q.sim:
        if q.nesting is not None:
            notes.append("analytic power for all effects and for at least one treats the "
                         "effects' tests as independent")
        elif q.serial is None:
            notes.append("analytic power for all effects and for at least one treats the "
                         "effects' tests as independent; simulate (--simulate or --test mc) "
                         "when the mediators share much of their variance")
        else:
            notes.append("in a chain the effects share paths, so power for all of them and "
                         "for at least one needs simulation (--simulate)")
    if q.nesting is not None:
        nest = q.nesting
        between = nest.b_level == "caseload" and q.outcome == "continuous"
        where = "between caseloads" if between else "within caseloads and the control arm"
        notes.append(f"partially nested: peer-worker ICC {nest.icc_m:g} for the mediators and "
                     f"{nest.icc_y:g} for the outcome, caseload {nest.cluster_size:g} analysed, "
                     f"b estimated {where}; each b path is that of a mediator with the "
                     "variance left given the others (Kelcey, Bai & Xie 2020 for each path)")
    if q.outcome == "binary":
        notes.append(f"binary outcome: b paths on the log-odds scale per residual SD, outcome "
                     f"rate {q.base_rate:g} in the control arm")
    if q.sim:
        notes.append(f"simulated power has Monte Carlo SE up to {q.se(0.5):.4f} with {q.reps} "
                     "replicates")
        if q.outcome == "binary":
            notes.append(f"logistic fits that failed at the reported n: {out['failed_fits']} of "
                         f"{q.reps} replicates (counted as non-rejections); "
                         f"{out['failed_resamples']} bootstrap resamples (left out of their "
                         "replicate's interval)")
    return notes


def _assemble(q: _Question, arms, out: dict, needed: dict) -> MultiMediationResult:
    """The result: each effect's power (and n needed), all and any, method, notes, inputs."""
    sim = q.sim
    effects = []
    for i, (name, path) in enumerate(q.effect_names()):
        entry = {"name": name, "path": path, "power": out["power"][i],
                 "mc_se": q.se(out["power"][i])}
        if i in needed:
            entry["n_needed"] = sum(q.arms_of_unit(needed[i]))
        effects.append(entry)
    conj = {"power": out["all"], "mc_se": q.se(out["all"])}
    if "all" in needed:
        conj["n_needed"] = sum(q.arms_of_unit(needed["all"]))
    anyp = {"power": out["any"], "mc_se": q.se(out["any"])}
    if sim:
        method = {"joint": "joint significance of every path, by simulation",
                  "mc": "Monte Carlo confidence interval for each product, by simulation",
                  "bootstrap": "percentile bootstrap interval for each product, by simulation"
                  }[q.test]
    else:
        method = ("joint significance: product of the path powers for each effect "
                  "(asymptotically independent tests)"
                  + ("; partially nested paths" if q.nesting is not None else ""))
    corr = [list(row) for row in q.corr]
    inputs = dict(mediators=[{"name": nm, "a": aa, "b": bb} for nm, aa, bb in
                             zip(q.names, q.a, q.b, strict=True)],
                  cprime=q.cprime, correlation=corr, serial=q.serial, n=q.n, power=q.power,
                  alpha=q.alpha, test=q.test, simulate=sim, x=q.x,
                  allocation=q.allocation if q.x == "binary" else None, outcome=q.outcome,
                  base_rate=q.base_rate, reps=q.reps if sim else None,
                  draws=q.draws if sim and q.test == "mc" else None,
                  boot=q.boot if sim and q.test == "bootstrap" else None,
                  seed=q.seed if sim else None)
    if q.nesting is not None:
        inputs.update({f.name: getattr(q.nesting, f.name) for f in fields(q.nesting)})
    total = out.get("total")
    if q.serial is None and total is None:
        total = total_indirect(q.a, q.b, np.array(q.corr), *arms, q.alpha, x=q.x,
                               outcome=q.outcome, base_rate=q.base_rate)
    return MultiMediationResult(
        total_indirect=total,
        test=q.test, solved_for=q.solved, n_total=sum(arms),
        n_per_arm={"control": arms[0], "intervention": arms[1]} if q.x == "binary" else None,
        effects=effects, all=conj, any=anyp, reps=q.reps if sim else None,
        seed=q.seed if sim else None, mediators=inputs["mediators"], cprime=q.cprime,
        serial=q.serial, correlation=corr, x=q.x, outcome=q.outcome, base_rate=q.base_rate,
        method=method, reference=_REFS[q.test], inputs=inputs, notes=tuple(_notes(q, out)),
        failed_fits=out.get("failed_fits") if sim else None,
        failed_resamples=out.get("failed_resamples") if sim else None,
    )
