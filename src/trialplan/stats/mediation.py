"""Power and sample size to detect a mechanism as an indirect (mediated) effect.

Model: randomised treatment X changes a process variable M (path a), which
changes the outcome Y (path b); c' is the direct effect::

    M = a X + e_M,    Y = c' X + b M + e_Y

Two scales for the paths:

- ``"residual"`` (default): unit residual variances, Var(e_M) = Var(e_Y) = 1,
  as Fritz & MacKinnon (2007).  With a 0/1 treatment, a is the standardised
  difference in the process variable (Cohen's d on M's within-arm SD), and b
  the change in Y, in its residual SD, per within-arm SD of M.
- ``"standardized"``: standardised coefficients with total variances 1 (as R
  pwrss), the predictor X having SD sqrt(p (1 - p)) for a 0/1 treatment.

:func:`to_residual` and :func:`to_standardized` convert exactly between them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from functools import lru_cache

import numpy as np

from trialplan.choices import ANALYTIC_TESTS, B_LEVELS, CONTROL_VARIANCES, PATH_MAX
from trialplan.choices import MEDIATION_TESTS as TESTS
from trialplan.choices import SIMULATED_TESTS as SIMULATED
from trialplan.errors import InputError, UnreachableTargetError
from trialplan.stats import _dist as sp
from trialplan.stats import _medsim
from trialplan.stats import _validate as v
from trialplan.stats._solver import smallest_whole

ICC_Y_TYPES = ("conditional", "unconditional")
N_MAX = 1_000_000
# Limits checked before any work (docs/security.md): a path beyond PATH_MAX residual SDs
# (trialplan.choices), a level below ALPHA_MIN or a simulation beyond these sizes is a typing
# error, not a trial.
ALPHA_MIN = 1e-10
CLUSTER_SIZE_MAX = 10_000
MAX_REPS = 1_000_000
MAX_DRAWS = 1_000_000
MAX_BOOT = 100_000
# One simulated power evaluation may cost at most this much work, in units of about 1e-7 s on
# one core (measured: replicates x (n x (3 + bootstrap resamples) + 2 x Monte Carlo draws)),
# so about five minutes; solving for n evaluates power at several n.
SIM_WORK_MAX = 3e9
# ... and hold at most this many bytes of simulated data at once (a chunk of replicates).
SIM_MEMORY_MAX = 1_000_000_000

_METHODS = {
    "sobel": "Sobel first-order z test of ab (normal approximation)",
    "aroian": "Aroian second-order z test of ab (normal approximation)",
    "joint-fisher": "joint significance of a and b: product of Fisher-z correlation-test powers "
                    "(random X)",
    "joint-t": "joint significance of a and b: product of t-test powers (exact noncentral t for "
               "a; for b, noncentral t averaged over the mediator's sampling variability)",
    "joint-pn": "joint significance of a and b, partially nested: product of t powers with the "
                "path variances and df of Kelcey, Bai & Xie (2020)",
    "joint-pn-individual": "joint significance of a and b, partially nested: t power for a as "
                           "Kelcey, Bai & Xie (2020), b estimated within caseloads",
    "vsm": "Vittinghoff-Sen-McCulloch: test of the mediator coefficient b only",
    "joint-logistic": "joint significance of a and b: exact t power for a; logistic b by the "
                      "Vittinghoff-Sen-McCulloch approximation",
    "sim-joint": "joint significance of a and b, by simulation (OLS t tests)",
    "sim-mc": "Monte Carlo confidence interval for ab (Preacher & Selig 2012), by simulation",
    "sim-bootstrap": "percentile bootstrap confidence interval for ab, by simulation",
    "sim-bc-bootstrap": "bias-corrected bootstrap confidence interval for ab, by simulation",
}
_REFS = {
    "sobel": "Sobel 1982; MacKinnon et al. 2002",
    "aroian": "Aroian 1947; MacKinnon et al. 2002",
    "joint": "Kenny et al. 1998; MacKinnon et al. 2002; Fritz & MacKinnon 2007",
    "joint-pn": "Kelcey, Bai & Xie 2020 (PowerUpR power.med_pn21)",
    "joint-logistic": "Kenny et al. 1998; Vittinghoff, Sen & McCulloch 2009",
    "vsm": "Vittinghoff, Sen & McCulloch 2009",
    "mc": "Preacher & Selig 2012; Schoemann, Boulton & Short 2017",
    "bootstrap": "Efron & Tibshirani 1993; Fritz & MacKinnon 2007",
    "bc-bootstrap": "Efron & Tibshirani 1993; Fritz, Taylor & MacKinnon 2012",
}


# --------------------------------------------------------------------------------------------
# Scales


def _var_x(x: str, allocation: float) -> float:
    return allocation * (1.0 - allocation) if x == "binary" else 1.0


def to_residual(a, b, cprime=0.0, *, x="binary", allocation=0.5):
    """Standardised paths (total variances 1) to residual-scale paths.

    Examples
    --------
    >>> a, b, c = to_residual(0.2, 0.3, 0.1, x="continuous")
    >>> [round(t, 6) for t in to_standardized(a, b, c, x="continuous")]
    [0.2, 0.3, 0.1]
    """
    vx = _var_x(x, allocation)
    sd_x = math.sqrt(vx)
    if not abs(a) * 1.0 < 1.0:
        raise InputError(f"a standardised a path must be in (-1, 1); got {a:g}")
    var_m_resid = 1.0 - a * a  # var(M | X) with var(M) = 1
    var_y_resid = 1.0 - (cprime * cprime + b * b + 2.0 * a * b * cprime)
    if var_y_resid <= 0:
        raise InputError("standardised paths imply a non-positive residual variance of the "
                         f"outcome (1 - c'^2 - b^2 - 2abc' = {var_y_resid:.3g})")
    s_m, s_y = math.sqrt(var_m_resid), math.sqrt(var_y_resid)
    return a / (sd_x * s_m), b * s_m / s_y, cprime / (sd_x * s_y)


def to_standardized(a, b, cprime=0.0, *, x="binary", allocation=0.5):
    """Residual-scale paths to standardised paths (total variances 1)."""
    vx = _var_x(x, allocation)
    var_m = a * a * vx + 1.0
    var_y = cprime * cprime * vx + b * b * var_m + 2.0 * cprime * b * a * vx + 1.0
    sd_x, sd_m, sd_y = math.sqrt(vx), math.sqrt(var_m), math.sqrt(var_y)
    return a * sd_x / sd_m, b * sd_m / sd_y, cprime * sd_x / sd_y


# --------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True)
class MediationResult:
    """Power or sample size for one test of one indirect effect.

    Attributes
    ----------
    test : str
        The test of the indirect effect (``sobel``, ``aroian``, ``joint``,
        ``vsm``, ``mc``, ``bootstrap``, ``bc-bootstrap``).
    solved_for : str
        ``"n"``, ``"power"``, ``"a"`` or ``"b"``.
    n_total : int
        Participants analysed.
    n_per_arm : dict or None
        ``{"control": .., "intervention": ..}`` for a 0/1 treatment.
    power : float
        Power at ``n_total`` (simulated when ``reps`` is set).
    mc_se : float or None
        Monte Carlo standard error of a simulated power, sqrt(p (1 - p) / reps).
    reps, seed : int or None
        Replicates and seed of a simulation.
    a, b, cprime : float
        The paths on the residual scale (``scale`` says what the user gave).
    path_power : dict
        Power of the test of a and of b separately (analytic, at ``n_total``).
    """

    test: str
    solved_for: str
    n_total: int
    n_per_arm: dict | None
    power: float
    mc_se: float | None
    reps: int | None
    seed: int | None
    a: float
    b: float
    cprime: float
    x: str
    scale: str
    method: str
    reference: str
    inputs: dict
    notes: tuple = ()
    path_power: dict = field(default_factory=dict)
    peer_workers: int | None = None
    indirect_effect: float = 0.0

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["notes"] = list(self.notes)
        if out["peer_workers"] is None:
            del out["peer_workers"]
        return out


# --------------------------------------------------------------------------------------------
# Analytic powers


@dataclass(frozen=True)
class _Spec:
    a: float
    b: float
    cprime: float
    x: str
    allocation: float
    alpha: float
    r2_m: float
    r2_y: float
    covariates: int
    icc_m: float | None
    icc_y: float | None
    cluster_size: float | None
    b_level: str = "caseload"
    outcome: str = "continuous"
    base_rate: float | None = None
    r2_m2: float = 0.0
    r2_y2: float = 0.0
    control_variance: str = "within"
    icc_y_type: str = "conditional"
    outcome_rate: float | None = None

    @property
    def nested(self) -> bool:
        return self.cluster_size is not None

    @property
    def b_rate(self) -> float | None:
        """The outcome rate in the logistic b path's variance p (1 - p)."""
        return self.outcome_rate if self.outcome_rate is not None else self.base_rate


def _arms(spec: _Spec, n_total):
    if spec.x == "binary":
        return (1.0 - spec.allocation) * n_total, spec.allocation * n_total
    return n_total / 2.0, n_total / 2.0


def _plain(x):
    """A float for a single value, the array otherwise: the results hold plain numbers."""
    return float(x) if np.ndim(x) == 0 else np.asarray(x, dtype=float)


def _se_paths(spec: _Spec, n_c, n_t):
    """Large-sample SEs of a and b (residual scale), unclustered."""
    n = n_c + n_t
    if spec.x == "binary":
        var_a = (1.0 - spec.r2_m) * (1.0 / n_c + 1.0 / n_t)
    else:
        var_a = (1.0 - spec.r2_m) / n
    var_b = (1.0 - spec.r2_y) / (n * (1.0 - spec.r2_m))
    return _plain(np.sqrt(var_a)), _plain(np.sqrt(var_b))


def _z_power(lam, alpha):
    z = float(sp.ndtri(1.0 - alpha / 2.0))
    return _plain(sp.ndtr(lam - z) + sp.ndtr(-lam - z))


@lru_cache(maxsize=4096)
def _t_crit(df: float, alpha: float) -> float:
    return float(sp.stdtrit(df, 1.0 - alpha / 2.0))


def _t_crits(df, alpha):
    """Two-sided t critical values: cached for one df, elementwise for an array of them."""
    if np.ndim(df) == 0:
        return _t_crit(float(df), alpha)
    return sp.stdtrit(np.asarray(df, dtype=float), 1.0 - alpha / 2.0)


def _t_power(ncp, df, alpha):
    return np.asarray(sp.nct_abs_sf(df, ncp, _t_crits(df, alpha)), dtype=float)


_atanh = np.vectorize(math.atanh, otypes=[float])


def _r_power(n, rho, alpha):
    """Two-sided power of the test of a correlation, Fisher z (as R pwr.r.test)."""
    # math.atanh for arrays too: numpy's arctanh can differ from it in the last digit.
    atanh = math.atanh if np.ndim(rho) == 0 and np.ndim(n) == 0 else _atanh
    rho = np.abs(rho)
    ttt = _t_crits(n - 2.0, alpha)
    rc = np.sqrt(ttt * ttt / (ttt * ttt + n - 2.0))
    zr = atanh(rho) + rho / (2.0 * (n - 1.0))
    zrc = atanh(rc)
    s = np.sqrt(n - 3.0)
    return _plain(sp.ndtr((zr - zrc) * s) + sp.ndtr((-zr - zrc) * s))


# Gauss-Legendre nodes on (0, 1) for averaging over the mediator's sums of squares.
_GL_U, _GL_W = np.polynomial.legendre.leggauss(48)
_GL_U = 0.5 * (_GL_U + 1.0)
_GL_W = 0.5 * _GL_W


def _b_power_random_m(spec: _Spec, n, df_ss=None):
    """Power of the t test of b when M is random: E over SS(M | X) ~ chi2 of the fixed-M power.

    Conditional on M, the t statistic of b is noncentral t with df n - 3 - k and
    ncp b sqrt(SS_M (1 - r2_m) / (1 - r2_y)), SS_M / Var(M | X, W) ~ chi2(n - 2 - k).
    Arrays of b or df give one power each (the nodes run along a last axis).
    """
    from scipy.special import chdtri

    k = spec.covariates
    if df_ss is None:
        df_ss = n - 2.0 - k
    df_ss = np.asarray(df_ss, dtype=float)[..., None]
    ss = chdtri(df_ss, 1.0 - _GL_U)
    b = np.asarray(spec.b, dtype=float)[..., None]
    ncp = np.abs(b) * np.sqrt(ss * (1.0 - spec.r2_m) / (1.0 - spec.r2_y))
    df_t = df_ss - 1.0
    return _plain(np.sum(_GL_W * _t_power(ncp, df_t if df_t.size > 1 else float(df_t.flat[0]),
                                          spec.alpha), axis=-1))


def _pn_paths(spec: _Spec, n_c, n_t):
    """Partially nested path SEs and df, Kelcey, Bai & Xie (2020) / PowerUpR med_pn21.

    Their variances are standardised on the intervention arm's total variance
    (peer-worker share icc).  trialplan's paths are in control-arm SD units:
    the within-caseload SD (``control_variance="within"``, as PowerUpR, so a
    and b are converted before the ncp is formed) or the intervention arm's
    total SD (``"total"``).  Covariates explain r2_m / r2_y of the level-1
    (individual) variance and r2_m2 / r2_y2 of the level-2 (peer-worker)
    variance, as PowerUpR's r2m1_trt / r2m2_trt: a baseline measured before
    allocation to a peer worker explains level-1 variance only, so r2_m2 and
    r2_y2 default to 0.  With ``icc_y_type="unconditional"`` icc_y is the
    outcome's ICC before the mediator is accounted for, and the mediator's
    share of each level's variance is derived from b (PowerUpR's r2y1_trt,
    r2y2_trt from esb1 = esB); with ``"conditional"`` icc_y is the ICC of the
    outcome's residual given the mediator.  The ICCs and paths may be arrays.
    """
    m, rho_m, rho_y = spec.cluster_size, spec.icc_m, spec.icc_y
    g = spec.covariates
    j = n_t / m
    df = j - g - 1.0
    within = spec.control_variance == "within"
    tau_m = rho_m * (1.0 - spec.r2_m2)
    sig_m = (1.0 - rho_m) * (1.0 - spec.r2_m)
    # Where a df is below 1 there is no test (analytic_power reports power 0 there); the
    # floor of 1 only keeps the division defined (caseload 1 leaves df_b = n_c - 2 - g).
    var_a_t = (tau_m + sig_m / m) / np.maximum(df, 1.0)
    control_m = sig_m if within else 1.0 - (1.0 - rho_m) * spec.r2_m
    var_a_c = control_m / np.maximum(n_c - g - 1.0, 1.0)
    es_a = spec.a * np.sqrt(1.0 - rho_m) if within else spec.a
    se_a = np.sqrt(var_a_t + var_a_c)
    if spec.b_level == "individual" or spec.outcome == "binary":
        # b estimated within caseloads and in the control arm (caseload fixed effects),
        # n - J - 2 - g residual df.  Under "total" a within-caseload participant carries
        # (1 - icc_m) / (1 - icc_y) of a control participant's information about b.
        weight = 1.0 if within else (1.0 - rho_m) / (1.0 - rho_y)
        df_b = n_c + (n_t - j) * weight - 2.0 - g
        var_b = (1.0 - spec.r2_y) / (np.maximum(df_b, 1.0) * (1.0 - spec.r2_m))
        return es_a, se_a, spec.b, np.sqrt(var_b), df, df_b
    es_b = spec.b * np.sqrt(1.0 - rho_y) / np.sqrt(1.0 - rho_m) if within else spec.b
    r2y1, r2y2 = spec.r2_y, spec.r2_y2
    if spec.icc_y_type == "unconditional":
        r2y1 = r2y1 + (1.0 - rho_m) * es_b**2 * (1.0 - spec.r2_m) / (1.0 - rho_y)
        r2y2 = r2y2 + (rho_m + (1.0 - rho_m) / m) * es_b**2 * (1.0 - spec.r2_m2) / rho_y
        if np.any(r2y1 >= 1.0) or np.any(r2y2 >= 1.0):
            raise InputError(
                f"with an unconditional icc_y of {v._show(rho_y)} the mediator would explain "
                "all of the outcome's variance at one level (b too large for this ICC); use a "
                "larger icc_y or icc_y_type 'conditional'",
                names=("icc_y", "icc_y_type"))
    var_b = (rho_y * (1.0 - r2y2) + (1.0 - rho_y) * (1.0 - r2y1) / m) / (
        np.maximum(df, 1.0) * (tau_m + sig_m / m))
    return es_a, se_a, es_b, np.sqrt(var_b), df, df


def analytic_power(spec: _Spec, test: str, n_c: float, n_t: float) -> tuple[float, dict]:
    """Power of an analytic test and the separate path powers, at arm sizes n_c, n_t.

    The paths, ICCs and rates of ``spec`` may be arrays of one shape (and so
    may n_c, n_t): the powers are then arrays, each element what the scalar
    call gives for its values (see :func:`power_over`).
    """
    n = n_c + n_t
    k = spec.covariates
    if spec.nested:
        es_a, se_a, es_b, se_b, df, df_b = _pn_paths(spec, n_c, n_t)
        usable = (df >= 1) & (df_b >= 1) & (n_c - k - 1.0 >= 1)
        if not np.any(usable):
            return 0.0, {"a": 0.0, "b": 0.0}
        if not np.all(usable):
            # Too few peer workers for some elements: compute the rest, report 0 for these.
            df, df_b = np.where(usable, df, 1.0), np.where(usable, df_b, 1.0)
        pa = _plain(_t_power(es_a / se_a, df, spec.alpha))
        if spec.outcome == "binary":
            # Logistic b within caseloads and the control arm (caseload fixed effects):
            # the VSM approximation with n - J - 2 observations' worth of information.
            p = spec.b_rate
            se_b = 1.0 / np.sqrt(df_b * (1.0 - spec.r2_m) * p * (1.0 - p))
            pb = _z_power(np.abs(es_b) / se_b, spec.alpha)
        elif spec.b_level == "individual":
            # M is random: average over its within-caseload sum of squares, as unclustered.
            pb = _b_power_random_m(spec, n, df_ss=df_b + 1.0)
        else:
            pb = _plain(_t_power(es_b / se_b, df_b, spec.alpha))
        if not np.all(usable):
            pa, pb = np.where(usable, pa, 0.0), np.where(usable, pb, 0.0)
        a_, b_ = es_a, es_b
    else:
        se_a, se_b = _se_paths(spec, n_c, n_t)
        a_, b_ = spec.a, spec.b
        if spec.outcome == "binary":
            # Logistic b path: Vittinghoff, Sen & McCulloch (2009) approximation,
            # SE_b^2 = 1 / (n Var(M | X) p (1 - p)), p the outcome rate.
            p = spec.b_rate
            se_b = _plain(1.0 / np.sqrt(n * (1.0 - spec.r2_m) * p * (1.0 - p)))
            pa = (_r_power(n - k, spec.a / np.sqrt(spec.a**2 + 1.0 - spec.r2_m), spec.alpha)
                  if spec.x == "continuous"
                  else _plain(_t_power(spec.a / se_a, n - 2.0 - k, spec.alpha)))
            pb = _z_power(np.abs(spec.b) / se_b, spec.alpha)
        elif spec.x == "continuous":
            rho_a = spec.a / np.sqrt(spec.a**2 + (1.0 - spec.r2_m))
            rho_b = spec.b * np.sqrt(1.0 - spec.r2_m) / np.sqrt(
                spec.b**2 * (1.0 - spec.r2_m) + (1.0 - spec.r2_y))
            pa = _r_power(n - k, rho_a, spec.alpha)
            pb = _r_power(n - 1.0 - k, rho_b, spec.alpha)
        else:
            pa = _plain(_t_power(spec.a / se_a, n - 2.0 - k, spec.alpha))
            pb = _b_power_random_m(spec, n)
    paths = {"a": pa, "b": pb}
    if test == "joint":
        power = pa * pb
    elif test == "vsm":
        power = pb if spec.nested else _z_power(np.abs(spec.b) / se_b, spec.alpha)
    else:
        var = a_**2 * se_b**2 + b_**2 * se_a**2
        if test == "aroian":
            var += se_a**2 * se_b**2
        power = _z_power(np.abs(a_ * b_) / np.sqrt(var), spec.alpha)
    if spec.nested and not np.all(usable):
        power = np.where(usable, power, 0.0)  # as a single value with too few peer workers
    return power, paths


# --------------------------------------------------------------------------------------------
# The public function


class _Progress:
    """Relays simulation progress to the caller's ``progress(done, total, label)``.

    The numeric layer never draws anything: the command line passes a callback
    that draws a bar (or periodic lines) on stderr, and a Python caller may pass
    its own or none.
    """

    def __init__(self, total: int, label: str, progress):
        self.total, self.label = total, label
        self.progress = progress if callable(progress) else None

    def __call__(self, done: int):
        if self.progress is not None:
            self.progress(done, self.total, self.label)

    def close(self):
        if self.progress is not None and hasattr(self.progress, "close"):
            self.progress.close()


def mediation(
    a=None,
    b=None,
    cprime=0.0,
    *,
    n=None,
    power=None,
    alpha=0.05,
    test="joint",
    simulate=False,
    x="binary",
    allocation=0.5,
    scale="residual",
    r2_m=0.0,
    r2_y=0.0,
    covariates=None,
    icc_m=None,
    icc_y=None,
    cluster_size=None,
    b_level="caseload",
    outcome="continuous",
    base_rate=None,
    r2_m2=0.0,
    r2_y2=0.0,
    control_variance="within",
    icc_y_type="conditional",
    outcome_rate=None,
    reps=1000,
    draws=5000,
    boot=1000,
    seed=20261126,
    progress=None,
) -> MediationResult:
    """Power, total sample size or smallest detectable path for a test of ab.

    Leave exactly one of ``n``, ``power``, ``a`` and ``b`` unset.

    Parameters
    ----------
    a, b, cprime : float
        Paths X -> M, M -> Y (given X) and X -> Y (given M), on ``scale``.
    n : int
        Total participants analysed.
    power : float
        Target power, in (0, 1).
    alpha : float
        Two-sided significance level.
    test : str
        ``joint`` (default), ``sobel``, ``aroian``, ``vsm`` (analytic), or
        ``mc``, ``bootstrap``, ``bc-bootstrap`` (simulation).  With
        ``simulate=True`` the joint test is simulated too.
    x : {"binary", "continuous"}
        A 0/1 treatment allocated with proportion ``allocation`` to the
        intervention, or a standard-normal X (to compare with the literature).
    scale : {"residual", "standardized"}
        How a, b and c' are given; results report residual-scale paths.
    r2_m, r2_y : float
        Share of M's variance given X, and of Y's given X and M, explained by
        baseline covariates (``covariates`` of them, default 1 when either is
        positive; each costs one df).
    icc_m, icc_y, cluster_size : float
        Partial nesting by peer worker in the intervention arm (analytic joint,
        sobel, aroian and vsm); ``cluster_size`` is the caseload analysed.
        Under partial nesting ``r2_m`` and ``r2_y`` are level-1 (individual)
        R-squared values.
    r2_m2, r2_y2 : float
        Partial nesting: share of the peer-worker (level-2) variance of M and
        Y explained by covariates (PowerUpR r2m2_trt, r2y2z_trt); 0 for a
        baseline measured before allocation to a peer worker.
    control_variance : {"within", "total"}
        Partial nesting: the control arm's variance is the within-caseload
        variance (default, as PowerUpR and Kelcey et al.) or the intervention
        arm's total variance; a and b are in control-arm SD units.
    icc_y_type : {"conditional", "unconditional"}
        Partial nesting: ``icc_y`` is the ICC of the outcome's residual given
        the mediator (default), or the outcome's ICC before the mediator is
        accounted for (PowerUpR's rho_trt, from which it derives the
        mediator's share of each level's variance).
    outcome : {"continuous", "binary"}
        A binary outcome has a logistic b path (b on the log-odds scale per
        residual SD of M), with the control-arm outcome rate ``base_rate``.
    outcome_rate : float, optional
        Binary outcome: the rate in the b path's variance p (1 - p), which
        should be the overall rate of both arms at the planned effect
        (Hsieh, Bloch & Larsen 1998); default ``base_rate``.
    b_level : {"caseload", "individual"}
        Under partial nesting, how b is estimated: ``"caseload"`` from the
        variation between peer workers' caseload means, with df J - g - 1
        (Kelcey, Bai & Xie 2020; PowerUpR power.med_pn21), or
        ``"individual"``: within caseloads and in the control arm, with df
        n - J - 2 - g (for a process variable that acts person by person).
    reps, draws, boot, seed : int
        Simulation replicates, Monte Carlo draws per replicate, bootstrap
        resamples per replicate, and the seed.
    progress : callable, optional
        ``progress(done, total, label)``, called as replicates finish in a
        simulation (the command line draws a bar from it; nothing is drawn here).

    Returns
    -------
    MediationResult

    Notes
    -----
    Analytic joint significance multiplies the powers of the two path tests,
    which are asymptotically independent.  With a random normal X (the design
    of Fritz & MacKinnon 2007) each is the Fisher-z power of a correlation test
    (R ``pwr.r.test``) for rho_a = a / sqrt(1 + a^2) with n and the partial
    rho_b = b / sqrt(1 + b^2) with n - 1.  With a randomised 0/1 treatment,
    the a path is an exact two-sample t test and the b path's noncentral-t
    power is averaged over the chi-square distribution of the mediator's sum of
    squares (48-point Gauss-Legendre on the probability scale), because M is
    random even when X is fixed.  Sobel and Aroian use SE(ab)^2 = a^2 SE_b^2 +
    b^2 SE_a^2 (+ SE_a^2 SE_b^2); VSM tests b alone (Vittinghoff, Sen &
    McCulloch 2009).  Simulated tests are described in
    :mod:`trialplan.stats._medsim`.

    Examples
    --------
    >>> r = mediation(a=0.39, b=0.39, power=0.8, x="continuous")
    >>> r.n_total      # Fritz & MacKinnon (2007) Table 3, joint significance: 74
    74
    >>> # Sobel: lambda = ab sqrt(n) / sqrt(a^2 + b^2) = 2.372; power = Phi(2.372 - 1.96)
    >>> round(mediation(a=0.39, b=0.39, n=74, x="continuous", test="sobel").power, 3)
    0.66
    """
    sp.use_scipy()  # the b path needs scipy.special.chdtri anyway (see _dist)
    question = _validate(
        a=a, b=b, cprime=cprime, n=n, power=power, alpha=alpha, test=test, simulate=simulate,
        x=x, allocation=allocation, scale=scale, r2_m=r2_m, r2_y=r2_y, covariates=covariates,
        icc_m=icc_m, icc_y=icc_y, cluster_size=cluster_size, b_level=b_level, outcome=outcome,
        base_rate=base_rate, r2_m2=r2_m2, r2_y2=r2_y2, control_variance=control_variance,
        icc_y_type=icc_y_type, outcome_rate=outcome_rate, reps=reps, draws=draws, boot=boot,
        seed=seed)
    return _assemble(question, _solve(question, progress))


# --------------------------------------------------------------------------------------------
# mediation(): validate into a frozen question, compute, assemble the result


@dataclass(frozen=True)
class _Question:
    """One validated question to :func:`mediation`: every input checked, the unknown named.

    ``a`` and ``b`` are on the given ``scale`` (the one left unknown is None);
    :meth:`spec` turns a pair of them into the residual-scale :class:`_Spec`
    the power functions take.
    """

    solved: str
    a: float | None
    b: float | None
    cprime: float
    n: int | None
    power: float | None
    alpha: float
    test: str
    sim: bool
    x: str
    allocation: float
    scale: str
    r2_m: float
    r2_y: float
    covariates: int
    icc_m: float | None
    icc_y: float | None
    cluster_size: float | None
    b_level: str
    outcome: str
    base_rate: float | None
    r2_m2: float
    r2_y2: float
    control_variance: str
    icc_y_type: str
    outcome_rate: float | None
    reps: int
    draws: int
    boot: int
    seed: int

    def inputs(self) -> dict:
        """The inputs as the result echoes them (None where they do not apply)."""
        nested = self.cluster_size is not None
        sim = self.sim
        return dict(a=self.a, b=self.b, cprime=self.cprime, n=self.n, power=self.power,
                    alpha=self.alpha, test=self.test, simulate=sim, x=self.x,
                    allocation=self.allocation if self.x == "binary" else None,
                    scale=self.scale, r2_m=self.r2_m, r2_y=self.r2_y,
                    covariates=self.covariates, icc_m=self.icc_m, icc_y=self.icc_y,
                    cluster_size=self.cluster_size,
                    b_level=self.b_level if nested else None,
                    r2_m2=self.r2_m2 if nested else None,
                    r2_y2=self.r2_y2 if nested else None,
                    control_variance=self.control_variance if nested else None,
                    icc_y_type=self.icc_y_type if nested else None,
                    outcome=self.outcome, base_rate=self.base_rate,
                    outcome_rate=self.outcome_rate,
                    reps=self.reps if sim else None,
                    draws=self.draws if sim and self.test == "mc" else None,
                    boot=self.boot if sim and "bootstrap" in self.test else None,
                    seed=self.seed if sim else None)

    def spec(self, a: float, b: float) -> _Spec:
        """The residual-scale specification of paths ``a`` and ``b`` (on ``scale``)."""
        if self.scale == "residual":
            ra, rb, rc = a, b, self.cprime
        else:
            ra, rb, rc = to_residual(a, b, self.cprime, x=self.x, allocation=self.allocation)
        return _Spec(ra, rb, rc, self.x, self.allocation, self.alpha, self.r2_m, self.r2_y,
                     self.covariates, self.icc_m, self.icc_y, self.cluster_size, self.b_level,
                     self.outcome, self.base_rate, self.r2_m2, self.r2_y2,
                     self.control_variance, self.icc_y_type, self.outcome_rate)

    def arms(self, n_total: int) -> tuple[int, int]:
        """Arms for a given total (power and detectable-path questions)."""
        if self.x == "binary":
            n_t = int(round(self.allocation * n_total))
            return n_total - n_t, n_t
        return n_total - n_total // 2, n_total // 2

    def arms_of_unit(self, u: int) -> tuple[int, int]:
        """Arms when n is solved: u controls and as many intervention participants as the
        allocation needs (so 1:1 gives equal arms); u is the total for continuous X."""
        if self.x == "binary":
            return u, math.ceil(u * self.allocation / (1.0 - self.allocation) - 1e-9)
        return u - u // 2, u // 2


def _validate(*, a, b, cprime, n, power, alpha, test, simulate, x, allocation, scale, r2_m,
              r2_y, covariates, icc_m, icc_y, cluster_size, b_level, outcome, base_rate, r2_m2,
              r2_y2, control_variance, icc_y_type, outcome_rate, reps, draws, boot,
              seed) -> _Question:
    """Check every input of :func:`mediation` once, in a fixed order; raise InputError."""
    test = v.choice("test", test, TESTS)
    x = v.choice("x", x, ("binary", "continuous"))
    scale = v.choice("scale", scale, ("residual", "standardized"))
    solved = v.exactly_one_missing(n=n, power=power, a=a, b=b)
    sim = simulate or test in ("mc", "bootstrap", "bc-bootstrap")
    if sim and test not in SIMULATED:
        raise InputError(f"the {test} test is analytic only; simulate joint, mc, bootstrap or "
                         "bc-bootstrap")
    alpha = float(v.in_range("alpha", alpha, 0.0, 1.0))
    if alpha < ALPHA_MIN:
        raise InputError(f"alpha must be at least {ALPHA_MIN:g}; got {alpha:g}", names=("alpha",))
    allocation = float(v.in_range("allocation", allocation, 0.0, 1.0))
    r2_m = float(v.in_range("r2_m", r2_m, 0.0, 1.0, low_open=False))
    r2_y = float(v.in_range("r2_y", r2_y, 0.0, 1.0, low_open=False))
    if covariates is None:
        covariates = 1 if (r2_m > 0 or r2_y > 0 or r2_m2 > 0 or r2_y2 > 0) else 0
    covariates = int(v.at_least("covariates", covariates, 0))
    cprime = float(v.in_range("cprime", cprime, -PATH_MAX, PATH_MAX, low_open=False,
                              high_open=False))
    if a is not None:
        a = float(v.in_range("a", a, -PATH_MAX, PATH_MAX, low_open=False, high_open=False))
    if b is not None:
        b = float(v.in_range("b", b, -PATH_MAX, PATH_MAX, low_open=False, high_open=False))
    if power is not None:
        power = float(v.in_range("power", power, 0.0, 1.0))
    if n is not None:
        n_val = float(v.as_array("n", n))
        if n_val != int(n_val):
            raise InputError(f"n must be a whole number; got {n_val:g}", names=("n",))
        n = int(n_val)
        if n > N_MAX:
            raise InputError(f"n must be at most {N_MAX:,}; got {n:,}", names=("n",))
    b_level = v.choice("b_level", b_level, B_LEVELS)
    outcome = v.choice("outcome", outcome, ("continuous", "binary"))
    control_variance = v.choice("control_variance", control_variance, CONTROL_VARIANCES)
    icc_y_type = v.choice("icc_y_type", icc_y_type, ICC_Y_TYPES)
    r2_m2 = float(v.in_range("r2_m2", r2_m2, 0.0, 1.0, low_open=False))
    r2_y2 = float(v.in_range("r2_y2", r2_y2, 0.0, 1.0, low_open=False))
    nested_args = (icc_m, icc_y, cluster_size)
    if cluster_size is None and (r2_m2 > 0 or r2_y2 > 0):
        raise InputError("r2_m2 and r2_y2 (peer-worker level) apply under partial nesting; "
                         "give icc_m, icc_y and cluster_size, or leave them out",
                names=("r2_m2", "r2_y2", "icc_m", "icc_y", "cluster_size"))
    if any(t is not None for t in nested_args):
        if any(t is None for t in nested_args):
            raise InputError("partial nesting needs all of icc_m, icc_y and cluster_size",
                             names=("icc_m", "icc_y", "cluster_size"))
        if x != "binary":
            raise InputError("partial nesting needs a 0/1 treatment (x 'binary')", names=("x",))
        if sim and test not in ("joint", "mc"):
            raise InputError("with partial nesting the simulated tests are joint and mc; "
                             "the bootstrap would need resampling of peer workers")
        if sim and (r2_m > 0 or r2_y > 0 or outcome == "binary"):
            raise InputError("simulation with partial nesting covers a continuous outcome "
                             "without covariates; use the analytic test")
        if sim and b_level != "individual":
            raise InputError("simulation with partial nesting estimates b within caseloads: "
                             "use b_level 'individual'", names=("b_level",))
        if sim and (r2_m2 > 0 or r2_y2 > 0 or control_variance != "within"
                    or icc_y_type != "conditional"):
            raise InputError("simulation with partial nesting uses control_variance 'within', "
                             "icc_y_type 'conditional' and no covariates; use the analytic "
                             "test",
                names=("control_variance", "icc_y_type"))
        icc_m = float(v.in_range("icc_m", icc_m, 0.0, 1.0, low_open=False))
        icc_y = float(v.in_range("icc_y", icc_y, 0.0, 1.0, low_open=False))
        cluster_size = float(v.at_least("cluster_size", cluster_size, 1.0))
        if cluster_size > CLUSTER_SIZE_MAX:
            raise InputError(f"cluster_size (a peer worker's caseload) must be at most "
                             f"{CLUSTER_SIZE_MAX:,}; got {cluster_size:g}",
                             names=("cluster_size",))
        if icc_y_type == "unconditional" and icc_y == 0 and b_level == "caseload":
            raise InputError("icc_y_type 'unconditional' needs icc_y > 0 (the mediator's share "
                             "of the peer-worker variance is relative to it)",
                names=("icc_y_type", "icc_y"))
    if outcome == "binary":
        if base_rate is None:
            raise InputError("a binary outcome needs base_rate, the outcome rate in the control "
                             "arm", names=("base_rate",))
        base_rate = float(v.in_range("base_rate", base_rate, 0.0, 1.0))
        if sim and test == "bc-bootstrap":
            raise InputError("the bc-bootstrap test is not available for a binary outcome; use "
                             "joint, mc or bootstrap")
        if sim and (r2_m > 0 or r2_y > 0):
            raise InputError("covariates (r2_m, r2_y) are not simulated for a binary outcome; "
                             "use an analytic test or leave them out", names=("r2_m", "r2_y"))
        if cluster_size is not None and b_level != "individual":
            raise InputError("with a binary outcome under partial nesting, b is estimated "
                             "within caseloads: use b_level 'individual'", names=("b_level",))
        if outcome_rate is not None:
            outcome_rate = float(v.in_range("outcome_rate", outcome_rate, 0.0, 1.0))
    elif base_rate is not None or outcome_rate is not None:
        raise InputError("base_rate and outcome_rate apply only when outcome is 'binary'",
                         names=("base_rate", "outcome_rate", "outcome"))
    if sim:
        reps = _count("reps", reps, 1, MAX_REPS)
        boot = _count("boot", boot, 1, MAX_BOOT)
        draws = _count("draws", draws, 1, MAX_DRAWS)
        seed = _count("seed", seed, 0, 2**63 - 1)


    return _Question(solved, a, b, cprime, n, power, alpha, test, sim, x, allocation, scale,
                     r2_m, r2_y, covariates, icc_m, icc_y, cluster_size, b_level, outcome,
                     base_rate, r2_m2, r2_y2, control_variance, icc_y_type, outcome_rate, reps,
                     draws, boot, seed)


def _sim_power(q: _Question, spec: _Spec, arms, prog) -> tuple[float, dict]:
    """Simulated power at ``arms``, and the failed fits and resamples (binary outcome)."""
    n_c, n_t = arms
    failures = {"fits": 0, "resamples": 0}
    if min(n_c, n_t) < 2 and q.x == "binary":
        return 0.0, failures
    _check_simulation_size(q.test, n_c + n_t, q.reps, q.draws, q.boot)
    if spec.nested:
        from trialplan.stats import _medsim_pn

        pspec = _medsim_pn.NestedSpec(spec.a, spec.b, spec.cprime, q.icc_m, q.icc_y,
                                      q.cluster_size, q.alpha)
        p, _ = _medsim_pn.power(pspec, q.test, n_c, n_t, reps=q.reps, seed=q.seed,
                                draws=q.draws, progress=prog)
        return p, failures
    if q.outcome == "binary":
        from trialplan.stats import _medsim_multi

        mspec = _medsim_multi.MultiSpec((spec.a,), (spec.b,), spec.cprime, q.x, "binary",
                                        q.base_rate, None, None, q.alpha)
        out = _medsim_multi.power(mspec, q.test, n_c, n_t, reps=q.reps, seed=q.seed,
                                  draws=q.draws, boot=q.boot, progress=prog)
        return out["power"][0], {"fits": out["failed_fits"],
                                 "resamples": out["failed_resamples"]}
    simspec = _medsim.SimSpec(spec.a, spec.b, spec.cprime, q.x, q.r2_m, q.r2_y, q.alpha)
    p, _ = _medsim.power(simspec, q.test, n_c, n_t, reps=q.reps, seed=q.seed, draws=q.draws,
                         boot=q.boot, progress=prog)
    return p, failures


def _power_and_failures(q: _Question, spec: _Spec, arms, prog) -> tuple[float, dict]:
    """The test's power at ``arms`` and the simulation's failed fits (none if analytic)."""
    if q.sim:
        return _sim_power(q, spec, arms, prog)
    return analytic_power(spec, q.test, *arms)[0], {"fits": 0, "resamples": 0}


def _power(q: _Question, spec: _Spec, arms, prog, analytic_test: str | None = None) -> float:
    """Power at ``arms``: simulated for a simulated test, unless an analytic test is named."""
    if q.sim and analytic_test is None:
        return _sim_power(q, spec, arms, prog)[0]
    return analytic_power(spec, analytic_test or q.test, *arms)[0]


@dataclass(frozen=True)
class _Answer:
    """What :func:`_solve` found: the paths (on the given scale), arms, power and notes."""

    a: float
    b: float
    spec: _Spec
    arms: tuple
    power: float
    failures: dict
    notes: tuple


def _solve(q: _Question, progress) -> _Answer:
    """Solve for the unknown (power, n, a or b) and evaluate the power at the answer."""
    min_n = _min_n(q.x, q.allocation, q.covariates, q.cluster_size)
    if min_n > N_MAX:
        raise InputError(f"this design needs at least {min_n:,} participants (allocation "
                         f"{q.allocation:g}, {q.covariates} covariates"
                         + (f", caseload {q.cluster_size:g}" if q.cluster_size else "")
                         + f"), more than the limit of {N_MAX:,}")
    prog = _Progress(q.reps, f"simulating {q.test}", progress) if q.sim else None
    a, b, notes = q.a, q.b, []
    try:
        if q.solved == "power":
            if q.n < min_n:
                raise InputError(f"n must be at least {min_n} for this design; got {q.n}",
                                 names=("n",))
            spec, arms = q.spec(a, b), q.arms(q.n)
        elif q.solved == "n":
            spec = q.spec(a, b)
            _check_nonzero(spec)
            min_u = 2 if q.x == "binary" else min_n
            while q.x == "binary" and sum(q.arms_of_unit(min_u)) < min_n:
                min_u += 1
            evaluated: dict = {}  # unit -> (power, failures) of each evaluation

            def power_of(u):
                evaluated[u] = _power_and_failures(q, spec, q.arms_of_unit(u), prog)
                return evaluated[u][0]

            unit = _solve_n(power_of, q.power, min_u, q.sim,
                            lambda u: _power(q, spec, q.arms_of_unit(u), prog, "joint"))
            arms = q.arms_of_unit(unit)
        else:
            if q.sim:
                raise InputError("the smallest detectable path is found with analytic tests; "
                                 "drop simulate, or choose test joint, sobel, aroian or vsm",
                                 names=("simulate", "test"))
            if q.n < min_n:
                raise InputError(f"n must be at least {min_n} for this design; got {q.n}",
                                 names=("n",))
            other = b if q.solved == "a" else a
            if other == 0:
                raise InputError(f"{'b' if q.solved == 'a' else 'a'} must be non-zero to find "
                                 f"the smallest detectable {q.solved}")
            found, branch_note = _solve_path(
                q.solved, other, q.n, q.power, q.scale, q.x, q.allocation, q.spec,
                lambda spec_, n_total: _power(q, spec_, q.arms(n_total), prog))
            a, b = (found, other) if q.solved == "a" else (other, found)
            notes.append(branch_note)
            spec, arms = q.spec(a, b), q.arms(q.n)
        # A solved n's power is the solver's own evaluation at it (a simulation is not
        # run again); otherwise the power at the answer is computed here.
        pw, failures = (evaluated[unit] if q.solved == "n"
                        else _power_and_failures(q, spec, arms, prog))
    finally:
        if prog is not None:
            prog.close()
    return _Answer(a, b, spec, arms, pw, failures, tuple(notes))


def _assemble(q: _Question, ans: _Answer) -> MediationResult:
    """The result: the answer checked against its promises, with method, reference and notes."""
    spec, pw, sim, test = ans.spec, ans.power, q.sim, q.test
    n_c, n_t = ans.arms
    n_total = n_c + n_t
    _check_promises(spec, q.solved, pw, q.power, n_total, sim)
    paths = analytic_power(spec, "joint", n_c, n_t)[1]
    mc_se = math.sqrt(pw * (1.0 - pw) / q.reps) if sim else None
    key = f"sim-{test}" if sim else (
        ("joint-pn" if q.b_level == "caseload" else "joint-pn-individual")
        if test == "joint" and spec.nested else
        ("joint-fisher" if q.x == "continuous" else "joint-t") if test == "joint" else test)
    ref_key = "joint-pn" if spec.nested and test == "joint" else test
    if q.outcome == "binary" and test == "joint" and not sim:
        key = ref_key = "joint-logistic"
    notes = list(ans.notes)
    notes += _notes(spec, test, sim, q.scale, ans.a, ans.b, q.cprime, q.x, q.allocation,
                    q.reps, pw)
    if sim and q.outcome == "binary":
        notes.append(f"logistic fits that failed (no convergence or separation) at the "
                     f"reported n: {ans.failures['fits']} of {q.reps} replicates (counted as "
                     f"non-rejections); {ans.failures['resamples']} bootstrap resamples (left "
                     "out of their replicate's interval)")
    if sim and q.solved == "n":
        notes.append(_n_uncertainty(spec, n_total, n_c, n_t, pw, q.reps))
    return MediationResult(
        test=test, solved_for=q.solved, n_total=int(n_total),
        n_per_arm={"control": n_c, "intervention": n_t} if q.x == "binary" else None,
        power=float(pw), mc_se=mc_se, reps=q.reps if sim else None,
        seed=q.seed if sim else None, a=spec.a, b=spec.b, cprime=spec.cprime, x=q.x,
        scale=q.scale, method=_METHODS[key], reference=_REFS[ref_key], inputs=q.inputs(),
        notes=tuple(notes), path_power=paths,
        peer_workers=math.ceil(n_t / q.cluster_size - 1e-9) if spec.nested else None,
        indirect_effect=spec.a * spec.b,
    )


# The inputs :func:`power_over` varies, with the range mediation() accepts for each:
# (low, high, low_open, high_open).
_VARIED = {"a": (-PATH_MAX, PATH_MAX, False, False), "b": (-PATH_MAX, PATH_MAX, False, False),
           "cprime": (-PATH_MAX, PATH_MAX, False, False), "icc_m": (0.0, 1.0, False, True),
           "icc_y": (0.0, 1.0, False, True), "base_rate": (0.0, 1.0, True, True)}


def power_over(result: MediationResult, **varied) -> np.ndarray:
    """The power of ``result``'s analytic test at its n, with some inputs varied elementwise.

    Parameters
    ----------
    result : MediationResult
        An analytic power (``n`` given, residual scale) from :func:`mediation`.
    **varied : array
        New values of any of a, b, cprime, icc_m, icc_y (partial nesting),
        base_rate (binary outcome) and n (participants analysed, whole
        numbers), arrays of one shape: for instance draws from their priors,
        or the n of a power curve.

    Returns
    -------
    numpy.ndarray
        One power per element: what :func:`mediation` gives with that
        element's values (the same formulas, evaluated on the arrays at once),
        and nan where :func:`mediation` would refuse the values or report no
        power.
    """
    inp = result.inputs
    if inp["simulate"] or inp["test"] not in ANALYTIC_TESTS or inp["scale"] != "residual" or (
            result.solved_for != "power"):
        raise ValueError("power_over takes an analytic power result on the residual scale")
    unknown = set(varied) - set(_VARIED) - {"n"}
    if unknown or (not inp["cluster_size"] and {"icc_m", "icc_y"} & set(varied)) or (
            inp["outcome"] != "binary" and "base_rate" in varied):
        raise ValueError(f"power_over cannot vary {', '.join(sorted(varied))} here")
    arrays = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in varied.values()))
    arrays = dict(zip(varied, arrays, strict=True))
    shape = next(iter(arrays.values())).shape if arrays else ()
    n = arrays.pop("n", None)
    ok = np.ones(shape, dtype=bool)
    for name, x in arrays.items():
        low, high, low_open, high_open = _VARIED[name]
        with np.errstate(invalid="ignore"):
            ok &= np.isfinite(x) & ((x > low) if low_open else (x >= low)) & (
                (x < high) if high_open else (x <= high))
    values = {"a": result.a, "b": result.b, "cprime": result.cprime, "icc_m": inp["icc_m"],
              "icc_y": inp["icc_y"], "base_rate": inp["base_rate"]}
    values.update({k: np.where(ok, x, values[k] if values[k] is not None else 0.5)
                   for k, x in arrays.items()})
    if inp["icc_y_type"] == "unconditional" and inp["b_level"] == "caseload":
        ok &= np.asarray(values["icc_y"]) != 0  # refused by mediation()
    spec = _Spec(values["a"], values["b"], values["cprime"], inp["x"],
                 inp["allocation"] if inp["allocation"] is not None else 0.5, inp["alpha"],
                 inp["r2_m"], inp["r2_y"], inp["covariates"], values["icc_m"], values["icc_y"],
                 inp["cluster_size"], inp["b_level"] or "caseload", inp["outcome"],
                 values["base_rate"], inp["r2_m2"] or 0.0, inp["r2_y2"] or 0.0,
                 inp["control_variance"] or "within", inp["icc_y_type"] or "conditional",
                 inp["outcome_rate"])
    if n is not None:
        # As mediation() checks n and splits it between the arms.
        low = _min_n(inp["x"], inp["allocation"] or 0.5, inp["covariates"], inp["cluster_size"])
        ok &= (n == np.round(n)) & (n >= low) & (n <= N_MAX)
        n = np.where(ok, n, low)
        if inp["x"] == "binary":
            n_t = np.round(inp["allocation"] * n)  # half to even, as round()
            n_c = n - n_t
        else:
            n_c, n_t = n - n // 2, n // 2
    else:
        n = result.n_total
        n_c, n_t = ((result.n_per_arm["control"], result.n_per_arm["intervention"])
                    if result.n_per_arm else (n - n // 2, n // 2))
    try:
        with np.errstate(invalid="ignore", divide="ignore"):
            power = np.broadcast_to(analytic_power(spec, inp["test"], n_c, n_t)[0], shape)
    except InputError:
        # Some element is refused inside the formulas (an unconditional ICC too small for
        # b): find which, one element at a time.
        def at(value, i):
            return np.asarray(value)[i] if np.ndim(value) else value

        power = np.full(shape, np.nan)
        for i in zip(*np.nonzero(ok), strict=True):
            one = _Spec(*(at(getattr(spec, fld.name), i) for fld in fields(_Spec)))
            try:
                power[i] = analytic_power(one, inp["test"], at(n_c, i), at(n_t, i))[0]
            except InputError:
                ok[i] = False
    ab = np.asarray(values["a"]) * np.asarray(values["b"])
    ok &= np.isfinite(power) & (power >= 0.0) & (power <= 1.0) & np.isfinite(ab)
    return np.where(ok, power, np.nan)


def _count(name: str, value, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high`` (a simulation size or seed)."""
    value = v.at_least(name, value, low)
    if value > high:
        raise InputError(f"{name} must be at most {high:,}; got {float(value):g}",
                         names=(name,))
    return int(value)


def _check_simulation_size(test, n_total, reps, draws, boot) -> None:
    """Refuse a simulated power evaluation too large for time or memory, before it starts."""
    per_rep = n_total * (3 + (boot if "bootstrap" in test else 0)) + (
        2 * draws if test == "mc" else 0)
    work = reps * per_rep
    if work > SIM_WORK_MAX:
        raise InputError(f"this simulation would take about {work:.2g} operations (n "
                         f"{n_total:,} x {reps:,} replicates"
                         + (f" x {boot:,} resamples" if "bootstrap" in test else "")
                         + f"); the limit is {SIM_WORK_MAX:.0e}: lower reps"
                         + (" or boot" if "bootstrap" in test else "")
                         + " or use an analytic test", names=("reps", "boot"))
    memory = _medsim.CHUNK * 8 * (8 * n_total + (draws if test == "mc" else 0))
    if memory > SIM_MEMORY_MAX:
        raise InputError(f"this simulation would hold about {memory / 1e9:.1f} GB at once; the "
                         f"limit is {SIM_MEMORY_MAX / 1e9:g} GB: lower n or draws, or use an "
                         "analytic test", names=("n", "draws"))


def _check_promises(spec, solved, pw, target, n_total, sim) -> None:
    """The last check before a result is returned: finite numbers in range, target reached."""
    if not (math.isfinite(pw) and 0.0 <= pw <= 1.0 and math.isfinite(spec.a * spec.b)):
        raise UnreachableTargetError("the power cannot be computed for these inputs (values at "
                                     "the edge of their range); nothing is reported")
    if not 0 < n_total <= N_MAX:
        raise UnreachableTargetError(f"this needs {n_total:,} participants in all, more than "
                                     f"the limit of {N_MAX:,}")
    if solved == "n" and pw < target - 1e-9:
        what = "simulated" if sim else "computed"
        raise UnreachableTargetError(f"the n found reaches a {what} power of {pw:.4f}, below "
                                     f"the target {target:g}; nothing is reported")


def _n_uncertainty(spec, n_total, n_c, n_t, pw, reps):
    """How far a simulated n could move with other random numbers: 2 MC SE over the slope."""
    se = math.sqrt(max(pw * (1.0 - pw), 1e-12) / reps)
    step = max(2.0, 0.02 * n_total)
    scale = (n_total + step) / n_total
    up = analytic_power(spec, "joint", n_c * scale, n_t * scale)[0]
    down = analytic_power(spec, "joint", n_c / scale, n_t / scale)[0]
    slope = (up - down) / (n_total * (scale - 1.0 / scale))
    if slope <= 0:
        return "simulated n: its Monte Carlo uncertainty could not be gauged"
    half = 2.0 * se / slope
    return (f"simulated n: with {reps:,} replicates (power MC SE {se:.4f}) another seed could "
            f"move n by about +/-{half:.0f} (2 MC SE over the power slope); raise --reps to "
            "narrow this")


def _min_n(x, allocation, covariates, cluster_size):
    base = 5 + covariates
    if cluster_size is not None:
        # Kelcey et al.'s df is J - g - 1: at least two peer workers beyond the covariates.
        need_t = (covariates + 2) * cluster_size
        return max(base, math.ceil(need_t / allocation) + 2)
    if x == "binary":
        return max(base, math.ceil(2 / min(allocation, 1 - allocation)))
    return base


def _check_nonzero(spec):
    if spec.a == 0 or spec.b == 0:
        raise InputError("a and b must both be non-zero to solve for n (with a = 0 or b = 0 "
                         "there is no indirect effect to detect)")


def _solve_n(power_of, target, lo, simulated, analytic_joint):
    """Smallest total n with power >= target.

    Analytic tests: bisection on integers after doubling, on the exact power
    function.  Simulated tests: bracket from the analytic joint test's n, then
    bisection on integers; common random numbers make simulated power a smooth,
    monotone function of n, so the answer is the first n where it crosses.
    """
    start = lo
    if simulated:
        start = max(lo, _solve_n(analytic_joint, target, lo, False, None))
    cache: dict[int, float] = {}

    def p(nn):
        if nn not in cache:
            cache[nn] = power_of(nn)
        return cache[nn]

    if p(start) >= target:
        hi = start
        lo_ = lo
        if simulated:
            step = max(1, start // 20)
            lo_ = start
            while lo_ > lo:
                lo_ = max(lo, lo_ - step)
                if p(lo_) < target:
                    break
                hi = lo_
                step *= 2
            else:
                return hi
        if p(lo_) >= target:
            return lo_
    else:
        lo_ = start
        step = max(1, start // 20) if simulated else max(1, start)
        hi = start
        while True:
            hi = min(N_MAX, lo_ + step)
            if p(hi) >= target:
                break
            if hi >= N_MAX:
                raise UnreachableTargetError(
                    f"power at n = {N_MAX:,} is still {p(hi):.3g}; no sample size reaches "
                    f"{target:g}")
            lo_ = hi
            step *= 2
    # invariant: p(lo_) < target <= p(hi)
    return smallest_whole(lambda n: p(n) >= target, lo_, hi)


def _solve_path(which, other, n, target, scale, x, allocation, make_spec, power_at):
    """Smallest |path| reaching the target power, on the lower branch.

    Power need not rise monotonically in a path: on the standardised scale a
    larger a leaves less residual variance in M, which weakens the test of b
    (WebPower's wp.mediation returns the upper of two roots).  The path is
    scanned upward on a grid, and the first crossing is refined by bisection.
    """
    upper = 0.999 if scale == "standardized" else 20.0
    grid = np.concatenate([np.linspace(1e-3, min(upper, 2.0), 200),
                           np.linspace(2.0, upper, 37)[1:] if upper > 2 else []])

    def pw(val):
        a_, b_ = (val, other) if which == "a" else (other, val)
        try:
            spec = make_spec(a_, b_)
        except InputError:
            return float("nan")
        return power_at(spec, n)

    values = np.array([pw(g) for g in grid])
    ok = np.flatnonzero(values >= target)
    if ok.size == 0:
        best = np.nanmax(values)
        raise UnreachableTargetError(
            f"power tops out at {best:.3g} for any {which} at n = {n}; increase n or lower the "
            "target power")
    i = ok[0]
    lo_, hi = (grid[i - 1] if i > 0 else 0.0), grid[i]
    for _ in range(48):
        mid = 0.5 * (lo_ + hi)
        if pw(mid) >= target:
            hi = mid
        else:
            lo_ = mid
    peak = int(np.nanargmax(values))
    falls = np.nanmax(values) - values[-1] > 1e-3 and values[peak] >= target
    note = (f"smallest detectable {which} found on the lower branch (power first reaches the "
            "target here")
    note += "; power falls again at larger values, so a larger root also exists)" if falls \
        else ")"
    return hi, note


def _notes(spec, test, sim, scale, a, b, cprime, x, allocation, reps, pw):
    notes = []
    if scale == "standardized":
        notes.append(f"standardised paths a={a:g}, b={b:g}, c'={cprime:g} were converted to the "
                     f"residual scale: a={spec.a:.4g}, b={spec.b:.4g}, c'={spec.cprime:.4g}")
    if x == "binary":
        notes.append(f"X is the 0/1 treatment allocated {allocation:g} to the intervention; a is "
                     "the standardised difference in the process variable")
    if test == "vsm":
        notes.append("the VSM test ignores uncertainty in a; it overstates power unless the "
                     "treatment moves the process variable strongly")
    if test == "sobel":
        notes.append("the Sobel test is conservative: its normal approximation needs 10-25% more "
                     "participants than joint significance or a bootstrap (Fritz & MacKinnon "
                     "2007)")
    if test == "bc-bootstrap":
        notes.append("the bias-corrected bootstrap has inflated type I error when n is small and "
                     "one path is large (Fritz, Taylor & MacKinnon 2012); prefer the percentile "
                     "bootstrap or joint significance for planning")
    if spec.nested:
        notes.append("partial nesting: the control arm's variance is "
                     + ("the within-caseload variance (peer workers add variance; PowerUpR)"
                        if spec.control_variance == "within"
                        else "the intervention arm's total variance")
                     + f" (control_variance '{spec.control_variance}'); icc_y is "
                     + ("the ICC of the outcome given the process variable"
                        if spec.icc_y_type == "conditional"
                        else "the outcome's unconditional ICC (the process variable's share "
                             "derived from b, as PowerUpR)")
                     + f"; covariates explain level-1 R2 {spec.r2_m:g} / {spec.r2_y:g} and "
                     f"peer-worker level R2 {spec.r2_m2:g} / {spec.r2_y2:g} (process variable "
                     "/ outcome)")
    if spec.nested and spec.b_level == "caseload":
        notes.append("partial nesting: a and b variances and df J - g - 1 (J peer workers) as "
                     "Kelcey, Bai & Xie (2020); b is estimated from variation between peer "
                     "workers' caseloads, which is conservative when the process variable acts "
                     "person by person (then use b_level individual)")
    elif spec.nested:
        notes.append("partial nesting: a as Kelcey, Bai & Xie (2020) (df J - g - 1); b "
                     "estimated within caseloads and in the control arm (df n - J - 2 - g), "
                     "assuming the process variable's effect is the same within caseloads and "
                     "in the control arm")
    if sim:
        se = math.sqrt(pw * (1 - pw) / reps)
        notes.append(f"simulated power has Monte Carlo SE {se:.4f} with {reps} replicates")
    if spec.outcome == "binary":
        notes.append(f"binary outcome: b is on the log-odds scale per residual SD of the process "
                     f"variable, tested by the Vittinghoff-Sen-McCulloch logistic approximation "
                     f"with outcome rate {spec.b_rate:g}; the indirect effect ab is a product "
                     "on the log-odds scale")
    if (spec.r2_m > 0 or spec.r2_y > 0) and not spec.nested:
        notes.append(f"baseline covariates explain {spec.r2_m:g} of the process variable's and "
                     f"{spec.r2_y:g} of the outcome's residual variance ({spec.covariates} df)")
    return notes
