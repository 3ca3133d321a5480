"""One frozen specification of a simulated trial: how data arise and how each estimand is analysed.

:func:`build_spec` reads a validated trial file and its plan
(:func:`trialplan.planning.build_plan`) once, applies a scenario's changes
(ICC, caseload, effect, attrition, n), and returns a :class:`SimulationSpec`
that the generator, the analysis, the dummy data and the generated analysis
script all read.  Nothing downstream looks at the trial file again.

The analysis of each estimand is decided here, in one place
(:func:`_primary_analysis`, :func:`_mechanism_analysis`).  The primary
analysis is the statistical analysis plan's own: its model code is read from
:func:`trialplan.planning.analysis.analysis_specs`, the specification the
protocol and SAP are written from, so the documents and the simulation cannot
name different models; :data:`FITTED_AS` names the fitter of each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from trialplan.errors import InputError
from trialplan.model.checks import measured_at_baseline
from trialplan.planning.analysis import analysis_specs

MISSING = ("mcar", "mar")
SCENARIO_KEYS = ("icc", "cluster_size", "effect", "attrition", "n")
PRIMARY_MODELS = ("ols", "logit", "glmm", "gee-exchangeable", "lmm-heteroscedastic",
                  "lmm-cluster", "cluster-level")
#: For each SAP model code (:data:`trialplan.planning.analysis.MODELS`) of a continuous or
#: binary primary outcome, the simulation's fitter of that model (one of
#: :data:`PRIMARY_MODELS`); every one is fitted as the SAP plans it.
FITTED_AS = {"linear": "ols", "logistic": "logit", "glmm-logistic": "glmm",
             "gee-logistic": "gee-exchangeable", "lmm-heteroscedastic": "lmm-heteroscedastic",
             "lmm-cluster": "lmm-cluster", "cluster-level": "cluster-level"}
A_MODELS = ("ols", "caseload-summary")
B_MODELS = ("ols", "logit", "within-ols", "within-logit")
MEDIATION_TESTS = ("joint", "sobel", "aroian", "mc")
SIMULATED_TYPES = ("continuous", "binary")

#: Under ``missing="mar"``: correlation of the latent dropout propensity with the baseline score.
MAR_CORR = 0.5

# Gauss-Hermite (probabilists') nodes and weights for expectations over normals.
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(40)
_GH_W = _GH_W / _GH_W.sum()


@dataclass(frozen=True)
class Variable:
    """One simulated variable and the model it is drawn from.

    Continuous: ``Y = effect X + sum(b M) + tau_cluster + e``, e with SD 1 (the
    residual-SD units of the plan's paths).  Binary: ``P(Y = 1)`` = logistic of
    ``intercept + effect X + sum(b M) + tau_cluster``.
    """

    id: str
    label: str
    kind: str  # "process" or "outcome"
    type: str  # one of SIMULATED_TYPES
    attrition: float
    baseline: bool
    baseline_corr: float  # loading of the unit-variance residual e on the baseline score
    tau: float  # SD of the peer-worker or cluster effect on the linear predictor
    effect: float  # allocation effect not through the modelled mediators (a, or c')
    intercept: float = 0.0
    parents: tuple = ()  # ((mediator id, b), ...)
    rates: tuple | None = None  # binary: marginal (control, intervention) rates
    arms: str = "both"  # "intervention": measured there only (missing in the control arm)
    # Binary outcome over a window analysed from a landmark: each arm's risk of the event
    # before the landmark (control, intervention), and the landmark's month.
    landmark: tuple | None = None
    landmark_month: float | None = None
    # Cluster trials with a baseline: correlation of the baseline's cluster effect with the
    # variable's whole cluster effect (Teerenstra's cluster autocorrelation); the baseline
    # then has a cluster effect with the variable's ICC.  None: the baseline is unclustered.
    baseline_cluster_corr: float | None = None

    @property
    def landmark_column(self) -> str:
        """The column of the outcome after the landmark (missing for those with it before)."""
        return f"{self.id}_landmark"


@dataclass(frozen=True)
class PrimaryAnalysis:
    """The planned analysis of the primary outcome."""

    outcome: str
    type: str
    model: str  # one of PRIMARY_MODELS: what is fitted
    covariates: tuple
    estimand: str
    truth: float
    alpha: float
    description: str
    planned: str = ""  # the SAP's model code (planning.analysis.MODELS)


@dataclass(frozen=True)
class MechanismAnalysis:
    """The planned test of one mechanism's indirect effect a x b."""

    mechanism: str
    mediator: str
    outcome: str
    outcome_type: str
    a_model: str  # one of A_MODELS
    b_model: str  # one of B_MODELS
    a_covariates: tuple
    b_covariates: tuple
    test: str  # one of MEDIATION_TESTS
    truth_a: float
    truth_b: float
    alpha: float
    description: str
    index: int = 0  # position in the plan's mechanisms
    # A mechanism analysed from a landmark: the outcome's column after the landmark.
    landmark_column: str | None = None

    @property
    def outcome_column(self) -> str:
        """The data column path b models."""
        return self.landmark_column or self.outcome

    @property
    def a_requires(self) -> tuple:
        """Further columns that must be observed for path a: both paths are estimated on
        complete cases of the process variable and the outcome (after the landmark, among
        those at risk then), as the plan's mechanism power and the SAP assume."""
        return (self.outcome_column,)

    @property
    def key(self) -> str:
        """Unique per path: a mechanism may act through several process variables."""
        return f"{self.mechanism}/{self.mediator}"


@dataclass(frozen=True)
class SimulationSpec:
    """Everything one scenario's replicates need: design, variables, analyses."""

    label: str
    scenario: dict
    n_control: int
    n_intervention: int
    clustering: str
    icc: float
    cluster_size: float | None
    missing: str
    variables: tuple
    primary: PrimaryAnalysis
    mechanisms: tuple
    clusters_control: int = 0
    clusters_intervention: int = 0
    not_simulated: tuple = ()  # ((mechanism, reason), ...)
    notes: tuple = field(default=(), compare=False)

    def variable(self, vid: str) -> Variable:
        return next(v for v in self.variables if v.id == vid)


# --------------------------------------------------------------------------------------------
# Binary outcomes: intercepts, effects and random-effect SDs that reproduce the planned rates


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _marginal_rate(mu: float, sd: float) -> float:
    """E[expit(mu + sd Z)], Z standard normal."""
    return float(np.sum(_GH_W * _expit(mu + sd * _GH_X)))


def _solve_mu(rate: float, sd: float) -> float:
    lo, hi = -30.0, 30.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if _marginal_rate(mid, sd) < rate:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _observed_icc(mu: float, sd_within: float, sd_between: float) -> float:
    """Share of a 0/1 outcome's variance between clusters, on the 0/1 scale."""
    g = _expit(mu + sd_between * _GH_X[:, None] + sd_within * _GH_X[None, :]) @ _GH_W
    p = float(np.sum(_GH_W * g))
    return float(np.sum(_GH_W * (g - p) ** 2)) / (p * (1.0 - p))


def _solve_tau_binary(icc: float, mu: float, sd_within: float, carried: float) -> float:
    """Own random-effect SD giving an observed-scale ICC of ``icc`` (with ``carried`` variance
    already between clusters through the mediators)."""
    if icc <= 0:
        return 0.0
    if _observed_icc(mu, sd_within, math.sqrt(carried)) >= icc:
        return 0.0
    lo, hi = 0.0, 10.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if _observed_icc(mu, sd_within, math.sqrt(carried + mid * mid)) < icc:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _binary_outcome(var: Variable, rates, icc, clustering, mediators) -> Variable:
    """Intercept, direct effect and random-effect SD reproducing the planned marginal rates.

    The rates are marginal (population-averaged over mediators and peer
    workers), as the sample-size formula for two proportions reads them; the
    ICC is on the 0/1 scale, as the design effect 1 + (m - 1) icc reads it.
    """
    p_c, p_t = rates
    within = sum(b * b for _, b in var.parents)
    carried = sum(b * b * mediators[m].tau ** 2 for m, b in var.parents)
    shift = sum(b * mediators[m].effect for m, b in var.parents)
    tau = 0.0
    for _ in range(6):  # the ICC and the intercepts depend on each other: iterate to a fixed point
        between_t = carried + tau * tau if clustering != "none" else 0.0
        between_c = between_t if clustering == "cluster" else 0.0
        mu_c = _solve_mu(p_c, math.sqrt(within + between_c))
        mu_t = _solve_mu(p_t, math.sqrt(within + between_t))
        if clustering == "none":
            break
        tau = _solve_tau_binary(icc, mu_t, math.sqrt(within), carried)
    return replace(var, intercept=mu_c, effect=mu_t - mu_c - shift, tau=tau, rates=(p_c, p_t))


def _landmark_of(plan: dict, outcome: str) -> tuple[tuple | None, str | None]:
    """``(share, month)`` of the landmark the plan analyses ``outcome``'s mechanisms from,
    or ``(None, why not)`` when they do not share one.

    The plan's risk before the landmark is ``1 - (1 - p)^share`` of the whole window's
    risk p in both arms, whether the file gave ``event_before_mediator`` (the arms then
    keep the ratio of cumulative hazards) or it was derived under a constant hazard, so
    ``share`` carries the plan's rule to any scenario's rates.
    """
    entries = [e for e in plan["mechanisms"]
               if e.get("outcome") == outcome and e.get("status") == "computed"]
    marks = [e.get("landmark") for e in entries]
    if not any(marks):
        return None, None
    months = {m["from_month"] if m else None for m in marks}
    if len(months) > 1:
        return None, (f"the mechanisms of {outcome} are analysed from different landmarks "
                      "(or some from none); one landmark per outcome is simulated")
    m = marks[0]
    q, after = m["event_before"]["control"], m["event_after"]["control"]
    whole = 1.0 - (1.0 - q) * (1.0 - after)
    return (math.log1p(-q) / math.log1p(-whole), float(m["from_month"])), None


def _landmark_outcome(var: Variable, rates, landmark, icc, clustering, mediators) -> Variable:
    """A binary outcome over a window whose mechanisms act after a landmark.

    Y is 1 when the event happens before the landmark (probability q per arm, from the
    plan's rule) or after it; the part after the landmark follows the logistic model of
    the class docs, solved so that each arm's risk over the whole window is its planned
    rate p: the risk after the landmark among those at risk is 1 - (1 - p) / (1 - q).
    The cluster effect acts after the landmark only, so its ICC there is raised to keep
    the ICC of Y, which the primary sample size assumes, at ``icc``:
    Var(P(Y | cluster)) = (1 - q)^2 Var(P(after | cluster)).
    """
    share, month = landmark
    before = tuple(1.0 - (1.0 - p) ** share for p in rates)
    after = tuple(1.0 - (1.0 - p) / (1.0 - q) for p, q in zip(rates, before, strict=True))
    p_t, q_t, a_t = rates[1], before[1], after[1]
    icc_after = icc * p_t * (1.0 - p_t) / ((1.0 - q_t) ** 2 * a_t * (1.0 - a_t))
    if icc_after >= 0.9:
        raise InputError(f"an ICC of {icc:g} for the whole window cannot be reproduced when "
                         f"{q_t:.0%} of the intervention arm have the event before month "
                         f"{month:g}")
    var = _binary_outcome(var, after, icc_after, clustering, mediators)
    return replace(var, rates=tuple(rates), landmark=before, landmark_month=month)


def _continuous_tau(icc: float, parents, mediators) -> float:
    """Own random-effect SD so that the variable's ICC (given allocation) is ``icc``."""
    if icc <= 0:
        return 0.0
    within = 1.0 + sum(b * b for _, b in parents)
    carried = sum(b * b * mediators[m].tau ** 2 for m, b in parents)
    own = icc * within / (1.0 - icc) - carried
    return math.sqrt(max(own, 0.0))


# --------------------------------------------------------------------------------------------
# The specification


#: Scenarios one run simulates (each with its null twin): every one is a full simulation.
MAX_SCENARIOS = 100
#: Participants one simulated trial may have (scenario ``n``).
MAX_N = 1_000_000
#: Participants per peer worker or cluster (scenario ``cluster_size``): the calculators' limit.
MAX_CLUSTER_SIZE = 10_000


def check_scenario(scenario: dict) -> dict:
    """``scenario`` checked value by value (each finite and in range); raise InputError if not.

    Whether the values work together with the trial file (an effect that keeps
    a rate inside (0, 1), say) is decided when the specification is built.
    """
    unknown = sorted(set(scenario) - set(SCENARIO_KEYS))
    if unknown:
        raise InputError(f"unknown scenario setting {', '.join(unknown)}; expected one of "
                         f"{', '.join(SCENARIO_KEYS)}")
    out = dict(scenario)
    for key, value in out.items():
        if (not isinstance(value, (int, float)) or isinstance(value, bool)
                or not math.isfinite(value)):
            raise InputError(f"{key} must be a finite number; got {value!r}")
    if "icc" in out and not 0 <= out["icc"] < 1:
        raise InputError(f"icc must be in [0, 1); got {out['icc']:g}")
    if "cluster_size" in out and not 1 <= out["cluster_size"] <= MAX_CLUSTER_SIZE:
        raise InputError(f"cluster_size must be in [1, {MAX_CLUSTER_SIZE:,}]; got "
                         f"{out['cluster_size']:g}")
    if "attrition" in out and not 0 <= out["attrition"] < 1:
        raise InputError(f"attrition must be in [0, 1); got {out['attrition']:g}")
    if "n" in out and not (8 <= out["n"] <= MAX_N and out["n"] == int(out["n"])):
        raise InputError(f"n (participants recruited) must be a whole number in [8, "
                         f"{MAX_N:,}]; got {out['n']:g}")
    return out


def _label(scenario: dict, null: bool) -> str:
    parts = [f"{k}={scenario[k]:g}" for k in SCENARIO_KEYS if k in scenario]
    if null:
        parts.append("null")
    return ", ".join(parts) or "as planned"


@dataclass(frozen=True)
class _Scenario:
    """What one scenario fixes for every variable it builds."""

    trial: object
    values: dict
    null: bool
    effect: float  # multiplier of the primary effect and the a paths
    icc: float
    clustering: str
    baseline_corr: float

    def attrition(self, v) -> float:
        if "attrition" in self.values:
            return float(self.values["attrition"])
        default = self.trial.model.assumptions.attrition or 0.0
        return float(v.attrition if v.attrition is not None else default)

    def baseline(self, v) -> bool:
        return v.type == "continuous" and measured_at_baseline(v, self.trial.timepoint_months())


def _process_variables(sc: _Scenario, paths, notes: list) -> dict:
    """The continuous process variables, each with its a path (0 where no path names it)."""
    a_of: dict[str, float] = {}
    for p in paths:
        if p.mediator in a_of and a_of[p.mediator] != p.a:
            notes.append(f"paths give {p.mediator} two a paths ({a_of[p.mediator]:g} and "
                         f"{p.a:g}); the first is simulated")
        a_of.setdefault(p.mediator, p.a)
    tau = math.sqrt(sc.icc / (1.0 - sc.icc)) if sc.clustering != "none" else 0.0
    out: dict[str, Variable] = {}
    for v in sc.trial.change_model.process_variables:
        if v.type != "continuous":
            notes.append(f"process variable {v.id} is {v.type}: not simulated")
            continue
        out[v.id] = Variable(v.id, v.label, "process", "continuous", sc.attrition(v),
                             sc.baseline(v), sc.baseline_corr, tau,
                             sc.effect * a_of.get(v.id, 0.0),
                             arms=getattr(v, "arms", "both"))
    for p in paths:
        if p.mediator not in out:
            raise InputError(f"path {p.mechanism}: the process variable {p.mediator} must be "
                             "continuous to be simulated")
    return out


def _outcome_variable(sc: _Scenario, o, paths, mediators: dict, notes: list,
                      landmark: tuple | None = None) -> Variable:
    """An outcome with its b paths, direct effect and cluster effect (see the class docs).

    ``landmark`` is ``(share, month)`` for the primary outcome when its mechanisms are
    analysed from a landmark (see :func:`_landmark_of`).
    """
    primary = sc.trial.primary_outcome()
    p_assume = sc.trial.model.assumptions.primary
    own = [x for x in paths if x.outcome == o.id]
    parents = tuple((x.mediator, 0.0 if sc.null else x.b) for x in own)
    cprime = 0.0 if (sc.null or not own) else own[0].cprime
    if len({x.cprime for x in own}) > 1:
        notes.append(f"paths to {o.id} give different cprime; the first ({cprime:g}) is "
                     "simulated")
    corr = sc.baseline_corr
    cluster_corr = None
    cl = sc.trial.model.assumptions.clustering
    if o.id == primary.id and p_assume.baseline_corr is not None:
        corr = p_assume.baseline_corr
    if o.id == primary.id and sc.clustering == "cluster" and cl.cluster_autocorr is not None:
        # Teerenstra et al. (2012): the cluster and the individual autocorrelation (0 in a
        # cross-sectional design), as the plan's design effect reads them.
        corr, cluster_corr = cl.individual_autocorr or 0.0, cl.cluster_autocorr
    var = Variable(o.id, o.label, "outcome", o.type, sc.attrition(o), sc.baseline(o), corr,
                   0.0, cprime, parents=parents, baseline_cluster_corr=cluster_corr)
    k = sc.effect
    if o.type == "continuous":
        var = replace(var, tau=_continuous_tau(sc.icc, parents, mediators)
                      if sc.clustering != "none" else 0.0)
        shift = sum(b * mediators[mm].effect for mm, b in parents)
        # Within-cluster (and control-arm, under partial nesting) variance of the outcome in
        # residual-SD units: the mediators' residuals pass through b.
        within = 1.0 + sum(b * b for _, b in parents)
        if var.baseline and corr:
            # The baseline correlates ``corr`` with the outcome's whole within-cluster
            # deviation, so the residual e (variance 1) loads corr * sqrt(within) on it.
            loading = corr * math.sqrt(within)
            if abs(loading) >= 1:
                raise InputError(f"a baseline correlation of {corr:g} for {o.id} cannot be "
                                 f"simulated with its paths b (the residual would need a "
                                 f"loading of {loading:.3g})")
            var = replace(var, baseline_corr=loading)
        if o.id == primary.id:
            d = p_assume.d if p_assume.d is not None else p_assume.difference / p_assume.sd
            # d is on the control arm's SD: the within-caseload SD under partial nesting
            # (control_variance within), the total SD (between clusters too) in a cluster
            # trial, as the plan's formula reads it.
            sd = math.sqrt(within / (1.0 - sc.icc) if sc.clustering == "cluster" else within)
            total = 0.0 if sc.null else k * d * sd
            var = replace(var, effect=total - shift)
        elif not sc.null and any(x.total is not None for x in own):
            # The paths' total effect (residual SDs of the outcome) fixes the direct effect.
            total = next(x.total for x in own if x.total is not None)
            var = replace(var, effect=k * total - shift)
        return var
    if o.id == primary.id:
        p_c = p_assume.control_rate
        p_t = p_c if sc.null else p_c + k * (p_assume.intervention_rate - p_c)
        if not 0 < p_t < 1:
            raise InputError(f"effect {k:g} puts the intervention rate at {p_t:.3g}, "
                             "outside (0, 1)")
        if landmark is not None:
            return _landmark_outcome(var, (p_c, p_t), landmark, sc.icc, sc.clustering,
                                     mediators)
        return _binary_outcome(var, (p_c, p_t), sc.icc, sc.clustering, mediators)
    base = next((x.base_rate for x in own if x.base_rate is not None), None)
    if base is None:
        notes.append(f"binary outcome {o.id} has no base_rate in its paths: simulated at rate "
                     "0.5 in the control arm")
        base = 0.5
    return _binary_with_direct(var, base, sc.icc, sc.clustering, mediators)


def build_spec(trial, plan: dict, scenario: dict | None = None, *, null: bool = False,
               missing: str = "mcar", baseline_corr: float = 0.0) -> SimulationSpec:
    """The simulation specification of one scenario.

    Parameters
    ----------
    trial : trialplan.model.checks.TrialPlan
        A validated trial file.
    plan : dict
        Its plan, from :func:`trialplan.planning.build_plan` (for n and the
        mechanisms' tests).
    scenario : dict, optional
        Changes to the planned values: ``icc``, ``cluster_size`` (caseload),
        ``effect`` (a multiplier of the primary effect and of every path a),
        ``attrition`` (for every variable) and ``n`` (participants recruited).
    null : bool
        The null scenario: no primary effect and every path b zero (the a
        paths stay), for type I error of the primary analysis and of each
        mechanism's test.
    missing : {"mcar", "mar"}
        Loss to follow-up completely at random, or at random given the
        baseline measures.
    baseline_corr : float
        Correlation of each continuous variable measured at baseline with its
        follow-up value, where the trial file gives none.

    Raises
    ------
    InputError
        A scenario the simulation cannot represent (the message says why).
    """
    scenario = check_scenario(scenario or {})
    if missing not in MISSING:
        raise InputError(f"missing must be one of {', '.join(MISSING)}; got {missing!r}")
    if not -1 < baseline_corr < 1:
        raise InputError(f"baseline_corr must be in (-1, 1); got {baseline_corr:g}")
    m = trial.model
    a = m.assumptions
    cl = a.clustering
    notes: list[str] = []
    k = float(scenario.get("effect", 1.0))
    clustering = cl.kind
    icc = float(scenario.get("icc", cl.icc or 0.0)) if clustering != "none" else 0.0
    size = None
    if clustering != "none":
        # A caseload left out of the file is derived from staffing by the plan.
        planned = cl.cluster_size or plan["final"].get("cluster_size_allocated")
        size = float(scenario.get("cluster_size", planned))
        if clustering == "partial" and cl.control_variance != "within":
            notes.append(f"control_variance '{cl.control_variance}' is not simulated: the "
                         "control arm is drawn with the within-caseload variance")
    if cl.cluster_cv:
        notes.append("cluster_cv is not simulated: clusters differ in size by at most one, "
                     "and the analytic power is the formula's for clusters of equal size")
    recruit = plan["final"]["n_to_recruit_per_arm"]
    n_c, n_t = int(recruit["control"]), int(recruit["intervention"])
    if "n" in scenario:
        share = m.trial.allocation_ratio / (1.0 + m.trial.allocation_ratio)
        n_t = int(round(scenario["n"] * share))
        n_c = int(scenario["n"]) - n_t
    primary = trial.primary_outcome()
    if primary.type not in SIMULATED_TYPES:
        raise InputError(f"the primary outcome {primary.id} is {primary.type}; the simulation "
                         "covers continuous and binary primary outcomes")
    sc = _Scenario(trial, scenario, null, k, icc, clustering, baseline_corr)
    paths = list(a.paths)
    mediators = _process_variables(sc, paths, notes)
    if (a.primary.baselines or 0) > 1 or a.primary.follow_ups > 1:
        notes.append("several baselines or follow-ups are not simulated: one baseline and one "
                     "follow-up of the primary outcome are")
    variables = list(mediators.values())
    for o in trial.change_model.outcomes:
        if o.type not in SIMULATED_TYPES:
            notes.append(f"outcome {o.id} is {o.type}: not simulated")
            continue
        lm = None
        if o.id == primary.id and o.type == "binary":
            lm, why = _landmark_of(plan, o.id)
            if why:
                notes.append(why)
        variables.append(_outcome_variable(sc, o, paths, mediators, notes, lm))
    spec_vars = tuple(variables)
    by_id = {v.id: v for v in spec_vars}
    alpha = float(plan["primary"]["result"].get("alpha", a.alpha))
    pv = by_id[primary.id]
    planned = next(s for s in analysis_specs(trial, plan) if s.outcome_id == primary.id)
    primary_analysis = _primary_analysis(
        pv, planned, alpha, pv.effect + sum(b * by_id[mm].effect for mm, b in pv.parents))
    mechanisms, skipped = [], []
    for i, entry in enumerate(plan["mechanisms"]):
        analysis, reason = _mechanism_analysis(entry, by_id, clustering, a, null)
        if analysis is None:
            skipped.append((f"{entry['mechanism']}/{entry['mediator']}", reason))
        else:
            mechanisms.append(replace(analysis, index=i))
    # The caseload (cluster size) counts participants allocated, as the plan counts peer
    # workers and clusters: ceil(n recruited / caseload) of them.
    def n_clusters(n_arm):
        return max(2, math.ceil(n_arm / size - 1e-9)) if size else 0

    smallest = min(n_t, n_c) if clustering == "cluster" else n_t
    if size is not None and size > smallest / 2:
        raise InputError(f"a caseload (cluster size) of {size:g} leaves fewer than two peer "
                         f"workers or clusters for the {smallest:,} participants of an arm")

    return SimulationSpec(
        label=_label(scenario, null), scenario=dict(scenario, null=null), n_control=n_c,
        n_intervention=n_t, clustering=clustering, icc=icc, cluster_size=size, missing=missing,
        variables=spec_vars, primary=primary_analysis, mechanisms=tuple(mechanisms),
        clusters_control=n_clusters(n_c) if clustering == "cluster" else 0,
        clusters_intervention=n_clusters(n_t) if clustering != "none" else 0,
        not_simulated=tuple(skipped), notes=tuple(notes))


def _binary_with_direct(var: Variable, base: float, icc, clustering, mediators) -> Variable:
    """A binary outcome given its control rate and a conditional direct effect c'."""
    within = sum(b * b for _, b in var.parents)
    carried = sum(b * b * mediators[m].tau ** 2 for m, b in var.parents)
    between_c = carried if clustering == "cluster" else 0.0
    mu_c = _solve_mu(base, math.sqrt(within + between_c))
    tau = (_solve_tau_binary(icc, mu_c, math.sqrt(within), carried)
           if clustering != "none" else 0.0)
    if clustering == "cluster":
        mu_c = _solve_mu(base, math.sqrt(within + carried + tau * tau))
    return replace(var, intercept=mu_c, tau=tau)


def _baseline_col(v: Variable) -> tuple:
    return (f"{v.id}_baseline",) if v.baseline else ()


_GLMM_TEXT = (
    "random-intercept logistic model fitted by maximum likelihood (adaptive Gauss-Hermite "
    "quadrature), peer workers' caseloads and each control participant (a cluster of one) "
    "sharing one random-intercept distribution{adjust}; likelihood-ratio test of allocation; "
    "marginal log odds ratio by standardisation over the covariates and the random intercept, "
    "with a delta-method interval (the SAP's bootstrap interval is not simulated); if the "
    "model does not converge or estimates a zero random-intercept variance, the SAP's "
    "fallback, a logistic GEE with independence working correlation and the Mancl-DeRouen "
    "bias-reduced sandwich (normal reference), is the analysis (the replicates that used it "
    "are counted)")
_GEE_EXCHANGEABLE_TEXT = (
    "logistic GEE, exchangeable working correlation, clustered by cluster{adjust}, with the "
    "Mancl-DeRouen bias-reduced sandwich variance; marginal log odds ratio by standardisation "
    "over the covariates, t test on (clusters - 2) df")


def _primary_analysis(v: Variable, planned, alpha: float, total: float) -> PrimaryAnalysis:
    """The primary outcome's model: the SAP's (``planned``, an AnalysisSpec) as fitted here."""
    covariates = _baseline_col(v)
    adjust = f", adjusted for {covariates[0]}" if covariates else ""
    model = FITTED_AS[planned.model]
    if v.type == "continuous":
        estimand = "difference in means"
        kr = "; t test on Kenward-Roger degrees of freedom"
        desc = {"ols": "linear regression (ANCOVA) on allocation" + adjust,
                "lmm-heteroscedastic": "heteroscedastic partially nested linear mixed model "
                                       "(REML): a random intercept for peer worker in the "
                                       "intervention arm only and a residual variance for "
                                       "each arm" + adjust + kr,
                "lmm-cluster": "linear mixed model (REML) with a random intercept for cluster"
                               + adjust + kr,
                "cluster-level": "two-stage cluster-level analysis: a linear regression of the "
                                 "outcome on "
                                 + (covariates[0] if covariates else "an intercept")
                                 + " without allocation, then a t test of the cluster means of "
                                 "its residuals on (clusters - 2) degrees of freedom"}[model]
        truth = total
    else:
        estimand = "marginal log odds ratio"
        truth = math.log(v.rates[1] / (1 - v.rates[1])) - math.log(v.rates[0] / (1 - v.rates[0]))
        desc = {"logit": "logistic regression on allocation" + adjust,
                "glmm": _GLMM_TEXT.format(adjust=adjust),
                "gee-exchangeable": _GEE_EXCHANGEABLE_TEXT.format(adjust=adjust)}[model]
    return PrimaryAnalysis(v.id, v.type, model, covariates, estimand, truth, alpha, desc,
                           planned.model)


def _mechanism_analysis(entry: dict, by_id: dict, clustering: str, a, null: bool):
    """A mechanism's planned test, or (None, why it is not simulated)."""
    if entry.get("status") != "computed":
        return None, entry.get("reason", "not computed in the plan")
    if clustering == "cluster":
        return None, "mechanism power for cluster-randomised trials is not simulated"
    test = entry["test"]
    landmark = entry.get("landmark")
    if landmark and by_id[entry["outcome"]].landmark_month != landmark["from_month"]:
        return None, ("the outcome is analysed from a landmark (those without the event by "
                      f"month {landmark['from_month']:g}), which is simulated for the primary "
                      "outcome only, when all its mechanisms share one landmark")
    if test not in MEDIATION_TESTS:
        return None, f"the {test} test is not simulated (joint, sobel, aroian and mc are)"
    med, out = by_id[entry["mediator"]], by_id[entry["outcome"]]
    b_level = entry.get("arguments", {}).get("b_level", a.mediation_b_level)
    if clustering == "partial" and b_level != "individual":
        return None, ("b estimated between peer workers' caseloads (b_level caseload) is not "
                      "simulated; b_level individual is")
    others = tuple(mm for mm, _ in out.parents if mm != med.id)
    b_cov = others + _baseline_col(med) + _baseline_col(out)
    if clustering == "partial":
        a_model = "caseload-summary"
        b_model = "within-logit" if out.type == "binary" else "within-ols"
        desc = ("a: mean of peer workers' caseload means against the control mean, Welch t "
                "(a cluster-level summary); b: "
                + ("logistic" if out.type == "binary" else "linear")
                + " regression within caseloads and the control arm (caseload fixed effects)")
    else:
        a_model = "ols"
        b_model = "logit" if out.type == "binary" else "ols"
        desc = ("a: linear regression of the process variable on allocation; b: "
                + ("logistic" if out.type == "binary" else "linear")
                + " regression of the outcome on the process variable and allocation")
    if b_cov:
        desc += f"; b adjusted for {', '.join(b_cov)}"
    column = out.landmark_column if landmark else None
    if landmark:
        desc += (f"; both paths among those without {out.label.lower()} by month "
                 f"{landmark['from_month']:g} (the landmark outcome {column})")
    desc += f"; {test} test of a x b"
    return MechanismAnalysis(
        entry["mechanism"], med.id, out.id, out.type, a_model, b_model, _baseline_col(med),
        b_cov, test, med.effect, 0.0 if null else entry["b"],
        float(entry.get("arguments", {}).get("alpha", a.alpha)), desc,
        landmark_column=column), None
