"""The trial file format ``trialplan/1``: pydantic models at the file boundary.

Unknown keys are rejected (so typos fail), every model is frozen, and numbers
must be finite.  The semantic checks (references, cycles, temporal order) live
in :mod:`trialplan.model.checks`.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trialplan.choices import (
    B_LEVELS,
    CLUSTERINGS,
    CONTROL_VARIANCES,
    PATH_MAX,
    TRIAL_FILE_TESTS,
)

SCHEMA_VERSION = "trialplan/1"

# Bounds on the lists whose length sets how much the plan computes (each path is a mediation
# power calculation and a solve for n; each sensitivity value a sample size, and two lists a
# table of their product).
MAX_PATHS = 30
MAX_SENSITIVITY_VALUES = 20
MAX_CRITERIA = 20
_Values = Field(None, max_length=MAX_SENSITIVITY_VALUES)

Id = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$", max_length=64,
                          description="Identifier: a letter, then letters, digits, _ or -.")]
Text = Annotated[str, Field(max_length=20_000)]
Probability = Annotated[float, Field(gt=0, lt=1)]
VariableType = Literal["continuous", "binary", "count", "time-to-event"]
PURPOSES = ("confirmatory", "internal-pilot", "external-feasibility")
CRITERION_KINDS = ("recruitment", "retention", "adherence", "other")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              str_strip_whitespace=True)


class Trial(_Model):
    """What the trial is: title, population, setting, comparator and design."""

    title: Text
    acronym: str | None = None
    population: Text
    setting: Text
    comparator: Text
    design: Literal["parallel", "cluster"] = Field(
        "parallel", description="parallel: individually randomised; cluster: cluster randomised.")
    allocation_ratio: float = Field(1.0, ge=0.001, le=1000,
                                    description="Intervention : control (0.001 to 1000).")
    framework: Literal["superiority", "non-inferiority", "equivalence"] = "superiority"
    purpose: Literal[PURPOSES] | None = Field(
        None, description="confirmatory: a definitive trial; internal-pilot: a definitive "
        "trial whose first participants form a pilot judged by progression criteria; "
        "external-feasibility: a separate feasibility study that informs a later definitive "
        "trial (no test of effectiveness).  Default: internal-pilot when "
        "assumptions.feasibility is given, otherwise confirmatory.")
    time_zero: str = Field("randomisation", max_length=200, description="The event from which "
                           "timepoints are counted (randomisation, discharge, ...).")
    time_zero_after_randomisation_months: float = Field(
        0.0, ge=0, le=24, description="Typical months from randomisation to time zero (e.g. "
        "randomised on the ward, followed up from discharge): follow-up falls due this much "
        "later.")
    registration: str | None = None
    sponsor: str | None = None
    funder: str | None = None
    contacts: list[str] = Field(default_factory=list)
    patient_public_involvement: Text | None = None


class Intervention(_Model):
    """The intervention by the 12 TIDieR items (Hoffmann et al., BMJ 2014); all optional."""

    brief_name: Text | None = Field(None, description="TIDieR 1: brief name.")
    why: Text | None = Field(None, description="TIDieR 2: rationale, theory or goal.")
    what_materials: Text | None = Field(None, description="TIDieR 3: materials.")
    what_procedures: Text | None = Field(None, description="TIDieR 4: procedures.")
    who_provided: Text | None = Field(None, description="TIDieR 5: who provided, training.")
    how: Text | None = Field(None, description="TIDieR 6: mode of delivery.")
    where: Text | None = Field(None, description="TIDieR 7: locations.")
    when_and_how_much: Text | None = Field(None, description="TIDieR 8: schedule, dose.")
    tailoring: Text | None = Field(None, description="TIDieR 9: tailoring.")
    modifications: Text | None = Field(None, description="TIDieR 10: modifications.")
    how_well_planned: Text | None = Field(None, description="TIDieR 11: fidelity plans.")
    how_well_actual: Text | None = Field(None, description="TIDieR 12: fidelity achieved.")


class Timepoint(_Model):
    """A named assessment point, in months from randomisation."""

    id: Id
    label: str | None = None
    month: float = Field(ge=-24, le=240)


class Mechanism(_Model):
    """A change mechanism of the programme theory."""

    id: Id
    label: str
    description: Text | None = None
    source: str | None = None


class ProcessVariable(_Model):
    """A measured process outcome (candidate mediator)."""

    id: Id
    label: str
    measure: str = Field(description="Key of an instrument in `measures` or the catalogue.")
    timepoints: list[Id] = Field(min_length=1)
    type: VariableType = "continuous"
    attrition: float | None = Field(
        None, ge=0, lt=1, description="Loss to follow-up for this variable (default: "
        "assumptions.attrition); questionnaires lose more than routine records.")
    arms: Literal["both", "intervention"] = Field(
        "both", description="Arms it is measured in. 'intervention' for measures that exist "
        "only there (alliance with the peer worker, sessions attended, fidelity): they have "
        "no a path, so they are analysed as dose or engagement (CACE / instrumental "
        "variables) or as moderators, not as mediators.")
    level: Literal["individual", "cluster"] = Field(
        "individual", description="Cluster-randomised trials: measured on each participant "
        "(2-1-1 mediation) or a property of the cluster, e.g. ward climate (2-2-1).")


class Outcome(_Model):
    """A trial outcome with its role."""

    id: Id
    label: str
    measure: str
    timepoints: list[Id] = Field(min_length=1)
    type: VariableType = "continuous"
    role: Literal["primary", "secondary", "exploratory"]
    attrition: float | None = Field(
        None, ge=0, lt=1, description="Loss to follow-up for this outcome (default: "
        "assumptions.attrition); routine records lose fewer than questionnaires.")


class Link(_Model):
    """A directed link: mechanism -> process variable -> (process variable ->) outcome."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: Id = Field(alias="from")
    target: Id = Field(alias="to")


class ChangeModel(_Model):
    """Mechanisms, the process variables they act on, the outcomes, and the links."""

    mechanisms: list[Mechanism] = Field(min_length=1)
    process_variables: list[ProcessVariable] = Field(default_factory=list)
    outcomes: list[Outcome] = Field(min_length=1)
    links: list[Link] = Field(default_factory=list)


class Measure(_Model):
    """A user-defined instrument (otherwise variables use the bundled catalogue by key)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              populate_by_name=True)

    key: Id
    name: str
    abbreviation: str | None = None
    measured_construct: str | None = Field(None, alias="construct")
    items: int | None = Field(None, ge=0, le=1000)
    score_min: float | None = None
    score_max: float | None = None
    direction: Literal["higher is better", "higher is worse", "not applicable"] | None = None
    sd: float | None = Field(None, gt=0)
    mcid: float | None = Field(None, gt=0)
    minutes: float | None = Field(None, ge=0, le=600)
    licence: str | None = None
    reference: str | None = None


class Clustering(_Model):
    """Clustering of outcomes: by cluster (cluster randomised) or by peer worker (partial)."""

    kind: Literal[CLUSTERINGS] = "none"
    icc: float | None = Field(None, ge=0, lt=1)
    cluster_size: float | None = Field(
        None, ge=1, description="Mean participants allocated per cluster, or per peer worker "
        "(the caseload); the design effect uses cluster_size x (1 - attrition) analysed. "
        "Leave out with partial nesting and assumptions.staffing to derive it.")
    cluster_cv: float | None = Field(None, ge=0, description="Coefficient of variation of "
                                     "cluster size (Eldridge, Ashby & Kerry 2006).")
    control_variance: Literal[CONTROL_VARIANCES] = Field(
        "within", description="Partial nesting: the control arm's variance is the within-"
        "caseload variance (peer workers add variance; PowerUpR, Kelcey et al.) or the "
        "intervention arm's total variance. Effects are on the control arm's SD.")
    cluster_autocorr: float | None = Field(
        None, gt=-1, le=1, description="Cluster trials with a baseline: correlation of a "
        "cluster's baseline and follow-up means (Teerenstra et al. 2012).")
    individual_autocorr: float | None = Field(
        None, gt=-1, le=1, description="Cluster trials, cohort design: a participant's "
        "baseline-follow-up correlation (leave out for a cross-sectional design).")
    allocation_before_recruitment: bool = Field(
        True, description="Cluster trials: clusters are allocated before their participants "
        "are identified and recruited (the SPIRIT schedule and text then show allocation "
        "first, with safeguards against identification and recruitment bias).")


class Staffing(_Model):
    """Peer-worker staffing, from which the caseload (participants allocated per peer worker)
    is derived or checked."""

    peer_workers_per_site: float = Field(gt=0, le=1000, description="Peer workers (whole-"
                                         "time equivalents) delivering the intervention at "
                                         "each site.")
    support_months: float = Field(gt=0, le=120, description="Months each participant is "
                                  "supported.")
    max_concurrent: float | None = Field(None, gt=0, description="Most participants a peer "
                                         "worker can support at once (checked against the "
                                         "concurrent caseload).")


class PrimaryAssumptions(_Model):
    """The effect the trial is powered for, on the primary outcome's scale."""

    control_rate: Probability | None = Field(None, description="Binary outcome: control rate.")
    intervention_rate: Probability | None = None
    difference: float | None = Field(None, description="Continuous: difference in means.")
    sd: float | None = Field(None, gt=0)
    d: float | None = Field(None, description="Continuous: standardised difference.")
    hazard_ratio: float | None = Field(None, gt=0)
    event_prob: Probability | None = None
    rate: float | None = Field(None, gt=0, description="Count outcome: the control arm's event "
                               "rate per unit of exposure (e.g. crises per month).")
    rate_ratio: float | None = Field(None, gt=0, description="Count outcome: rate ratio, "
                                     "intervention / control.")
    dispersion: float = Field(0.0, ge=0, description="Count outcome: negative binomial "
                              "dispersion k (variance mu + k mu^2); 0 is Poisson.")
    exposure: float = Field(1.0, gt=0, description="Count outcome: exposure per participant, "
                            "in the units of rate (e.g. 12 for a monthly rate over a year).")
    baseline_corr: float | None = Field(None, gt=-1, lt=1)
    baselines: int | None = Field(None, ge=0, le=20, description="Baseline measurements "
                                  "(default 1 with baseline_corr, else 0).")
    follow_ups: int = Field(1, ge=1, le=50, description="Follow-up measurements analysed as "
                            "their mean (Frison & Pocock 1992).")
    follow_up_corr: float | None = Field(None, gt=-1, lt=1, description="Correlation between "
                                         "repeated measurements; required with several "
                                         "follow-ups or baselines.")
    co_primary: int = Field(1, ge=1, le=20)
    mcid: float | None = Field(
        None, description="Minimal clinically important difference on the effect's scale "
        "(rate difference, mean difference, hazard ratio or rate ratio); the plan gives the "
        "power at it.")


class PathAssumption(_Model):
    """Effects along one mechanism path: treatment -> mediator (a) and mediator -> outcome (b)."""

    mechanism: Id
    mediator: Id
    outcome: Id
    a: float = Field(ge=-PATH_MAX, le=PATH_MAX,
                     description="Path a, in residual-SD units of the mediator.")
    b: float = Field(ge=-PATH_MAX, le=PATH_MAX,
                     description="Path b, in residual-SD units of the outcome.")
    cprime: float = Field(0.0, ge=-PATH_MAX, le=PATH_MAX)
    base_rate: Probability | None = Field(
        None, description="Binary outcome: its rate in the control arm (default: the primary "
        "control_rate when the outcome is the primary outcome).")
    total: float | None = Field(
        None, ge=-PATH_MAX, le=PATH_MAX,
        description="Total effect of the intervention on this outcome, on the b path's "
        "scale (continuous: in residual SDs of the outcome; binary: log odds ratio); default "
        "from assumptions.primary for the primary outcome. Used to report the proportion "
        "mediated and to check the paths against it.")
    mediator_timepoint: Id | None = Field(
        None, description="Time point at which the mediator is analysed (default: its last "
        "time point before the outcome's).")
    outcome_timepoint: Id | None = Field(
        None, description="Time point at which the outcome is analysed (default: its last).")
    event_before_mediator: Probability | None = Field(
        None, description="Binary outcome accumulated over a window (e.g. readmission within "
        "12 months): share of the control arm with the event before the mediator's time "
        "point. The mechanism is analysed on the landmark outcome after that time point; "
        "default: derived from base_rate under a constant hazard.")
    icc_m: float | None = Field(None, ge=0, lt=1, description="Clustered designs: ICC of the "
                                "process variable (default assumptions.clustering.icc).")
    icc_y: float | None = Field(None, ge=0, lt=1, description="Clustered designs: ICC of the "
                                "outcome (default assumptions.clustering.icc).")
    r2_m: float = Field(0.0, ge=0, lt=1, description="Share of the process variable's "
                        "(level-1) residual variance explained by baseline covariates.")
    r2_y: float = Field(0.0, ge=0, lt=1, description="Share of the outcome's (level-1) "
                        "residual variance explained by baseline covariates.")
    r2_m2: float = Field(0.0, ge=0, lt=1, description="Clustered designs: share of the "
                         "process variable's between-cluster (or between-peer-worker) variance "
                         "explained by covariates.")
    r2_y2: float = Field(0.0, ge=0, lt=1, description="Clustered designs: share of the "
                         "outcome's between-cluster (or between-peer-worker) variance explained "
                         "by covariates.")
    b_within: float | None = Field(
        None, description="Cluster-randomised, individual-level process variable (2-1-1): "
        "the within-cluster path b1; b is then the between-cluster path B (default: b).")
    source: str | None = None


class Recruitment(_Model):
    """How participants arrive: sites, screening rate, eligibility, consent, start-up."""

    sites: int = Field(ge=1, le=10_000)
    screened_per_site_month: float = Field(gt=0, le=1_000_000, description="People screened "
                                           "per site per month once a site is at full speed.")
    eligible: Probability = Field(description="Share of those screened who are eligible.")
    consent: Probability = Field(description="Share of eligible people who consent and are "
                                 "randomised.")
    ramp_up_months: float = Field(0.0, ge=0, le=60, description="Months for a new site to "
                                  "reach full speed (linear ramp).")
    site_opening_interval_months: float = Field(0.0, ge=0, le=60, description="Months between "
                                                "successive sites opening (0: all open at once).")
    setup_months: float = Field(6.0, ge=0, le=60, description="Months of set-up before the "
                                "first site opens (trial timeline figure).")
    analysis_months: float = Field(6.0, ge=0, le=60, description="Months from the last "
                                   "follow-up to the final analysis (trial timeline figure).")
    reporting_months: float = Field(6.0, ge=0, le=60, description="Months from the final "
                                    "analysis to the report (trial timeline figure).")


class Criterion(_Model):
    """A progression criterion for a pilot, traffic-light style."""

    id: Id
    kind: Literal[CRITERION_KINDS]
    label: str | None = None
    green: Probability = Field(description="Proceed at or above this share.")
    amber: Probability = Field(description="Proceed with changes at or above this share; "
                               "below it is red.")
    n: int | None = Field(None, ge=1, description="Participants the share is measured on "
                          "(required for kind 'other'; otherwise derived from the pilot).")
    months_to_assess: float | None = Field(
        None, ge=0, le=60, description="Adherence: months from time zero a participant needs "
        "to reach the adherence definition (only those with this much time by the pilot's end "
        "count).")
    expected: Probability | None = Field(
        None, description="The value the main trial's sample size assumes (retention: 1 - "
        "attrition by default; adherence: the adherence behind the assumed effect, which is "
        "diluted in proportion below it).")
    icc: float | None = Field(None, ge=0, lt=1, description="Between peer-worker (adherence) "
                              "or between-site (retention) ICC of the share; the count is then "
                              "beta-binomial within each cluster.")

    @model_validator(mode="after")
    def _ordered(self):
        if not self.amber < self.green:
            raise ValueError(f"amber ({self.amber:g}) must be below green ({self.green:g})")
        if self.kind == "other" and self.n is None:
            raise ValueError("a criterion of kind 'other' needs n, the number it is measured on")
        return self


class Feasibility(_Model):
    """An internal pilot with pre-specified progression criteria."""

    pilot_months: float | None = Field(None, gt=0, le=60, description="Length of the internal "
                                       "pilot (months from the first site opening).")
    pilot_n: int | None = Field(None, ge=2, le=5_000, description="Participants randomised in "
                                "the pilot; at most 5,000 (the pilot's exact decision "
                                "probabilities are computed over every possible count) "
                                "(instead of pilot_months).")
    confidence: Probability = 0.95
    recruitment_cv: float | None = Field(
        None, ge=0, le=5, description="Between-site coefficient of variation of the "
        "recruitment rate: site counts are then negative binomial (gamma-mixed Poisson).")
    target_half_width: float | None = Field(
        None, ge=0.001, lt=0.5, description="External feasibility study: the "
        "confidence-interval half-width wanted for each share (e.g. 0.1 for retention to +-10 "
        "points; at least 0.001); the plan gives the n that reaches it.")
    blinded_reestimation: bool = Field(
        False, description="Internal pilot: re-estimate the nuisance parameters (control "
        "rate or SD, attrition) blind to allocation and recompute the sample size.")
    max_n_to_recruit: int | None = Field(
        None, ge=2, le=1_000_000, description="Blinded re-estimation: the most participants "
        "the re-estimated sample size may ask for (what the trial can recruit and is funded "
        "for); at least the planned sample size.")
    criteria: list[Criterion] = Field(min_length=1, max_length=MAX_CRITERIA)

    @model_validator(mode="after")
    def _one_size(self):
        if (self.pilot_months is None) == (self.pilot_n is None):
            raise ValueError("give exactly one of pilot_months and pilot_n")
        return self


class Sensitivity(_Model):
    """Values to try for the uncertain assumptions (defaults around the base case)."""

    icc: list[Annotated[float, Field(ge=0, lt=1)]] | None = _Values
    attrition: list[Annotated[float, Field(ge=0, lt=1)]] | None = _Values
    control_rate: list[Probability] | None = _Values
    intervention_rate: list[Probability] | None = _Values
    d: list[float] | None = _Values
    hazard_ratio: list[Annotated[float, Field(gt=0)]] | None = _Values
    rate_ratio: list[Annotated[float, Field(gt=0)]] | None = _Values
    cluster_size: list[Annotated[float, Field(ge=1)]] | None = _Values


class AssuranceSettings(_Model):
    """How the assurance (expected power over the priors) is computed."""

    draws: int = Field(100_000, ge=1000, le=10_000_000, description="Monte Carlo draws for "
                       "the primary outcome.")
    mechanism_draws: int = Field(2000, ge=50, le=100_000, description="At most this many "
                                 "draws for each mechanism (each calls the mediation power "
                                 "function); drawing stops once the Monte Carlo SE is 0.005.")
    target: Probability | None = Field(None, description="Report the n that gives this "
                                       "assurance.")


class Assumptions(_Model):
    """The numbers later calculations need."""

    alpha: Probability | None = None
    power: Probability | None = None
    attrition: float | None = Field(None, ge=0, lt=1)
    primary: PrimaryAssumptions | None = None
    clustering: Clustering = Clustering()
    paths: list[PathAssumption] = Field(default_factory=list, max_length=MAX_PATHS)
    mediation_power: Probability | None = Field(
        None, description="Target power for each mechanism's indirect effect.")
    mechanisms_drive_n: bool = Field(
        False, description="If true, the sample size must also power every mechanism.")
    mediation_test: Literal[TRIAL_FILE_TESTS] = Field(
        "joint", description="Test of each mechanism's indirect effect.")
    mediator_correlation: float = Field(
        0.0, gt=-1, lt=1, description="Residual correlation between the process variables of "
        "one mechanism, analysed together as parallel mediators.")
    mediation_b_level: Literal[B_LEVELS] = Field(
        "caseload", description="Partial nesting: estimate b between peer workers' caseloads "
        "(Kelcey et al. 2020) or within caseloads and the control arm.")
    seed: int = Field(20261126, ge=0, description="Seed for simulated mediation tests.")
    recruitment: Recruitment | None = None
    staffing: Staffing | None = None
    feasibility: Feasibility | None = None
    assurance: AssuranceSettings = AssuranceSettings()
    sources: dict[Id, Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=dict, description="Where each assumption comes from, by field name "
        "(control_rate, intervention_rate, d, sd, icc, cluster_size, attrition, recruitment, "
        "...); protocol drafts cite them.")
    sensitivity: Sensitivity | None = None


STRATEGIES = ("treatment policy", "composite", "while on treatment", "hypothetical",
              "principal stratum")
Strategy = Literal[STRATEGIES]


class IntercurrentEvent(_Model):
    """An event after randomisation that changes or ends the outcome's meaning (ICH E9(R1))."""

    event: Text = Field(description="What happens, e.g. 'death before readmission'.")
    strategy: Strategy = Field(description="How the estimand deals with it (ICH E9(R1)).")
    handling: Text | None = Field(None, description="What the strategy means here and how the "
                                  "analysis carries it out.")


class Estimand(_Model):
    """The treatment effect an outcome's analysis targets (ICH E9(R1)); one per outcome."""

    outcome: Id = Field(description="Id of an outcome in change_model.outcomes.")
    timepoint: Id | None = Field(None, description="Time point of the estimand (default: the "
                                 "outcome's last time point).")
    population: Text | None = Field(None, description="Default: the trial population.")
    treatment: Text | None = Field(None, description="The treatment conditions compared "
                                   "(default: intervention plus usual care versus comparator).")
    variable: Text | None = Field(None, description="The variable (default: the outcome, its "
                                  "instrument and time point).")
    intercurrent_events: list[IntercurrentEvent] = Field(default_factory=list)
    summary: Text | None = Field(None, description="Population-level summary (default from the "
                                 "outcome type, e.g. marginal risk difference and odds ratio).")


class Analysis(_Model):
    """Choices for the statistical analysis that the rest of the file cannot supply."""

    stratification_factors: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, description="Stratification or minimisation factors of the "
        "randomisation; every analysis adjusts for them.")
    covariates: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, description="Further baseline covariates adjusted for (the "
        "outcome's baseline value is added when it is measured).")
    subgroups: list[Text] = Field(default_factory=list, description="Pre-specified subgroup "
                                  "analyses; empty means none.")
    compliance: Text | None = Field(None, description="Definition of compliance for the complier "
                                    "average causal effect (default: the pilot's adherence "
                                    "criterion).")
    visit_windows: Text | None = Field(None, description="Windows around each follow-up within "
                                       "which a measurement counts for that time point.")
    software: Text | None = Field(None, description="Statistical software, replacing the "
                                  "default named for each model.")


class ProtocolText(_Model):
    """Free text for protocol items the rest of the file cannot supply.

    Every field is optional: a protocol item with nothing to draw on is
    written as a marked placeholder saying what it needs.
    """

    version: str | None = Field(None, description="Protocol version identifier (item 2).")
    version_date: str | None = Field(None, description="Protocol version date (item 2).")
    committees: Text | None = Field(None, description="Item 3d: committees and oversight.")
    sponsor_role: Text | None = Field(None, description="Item 3c: role of sponsor and funders.")
    protocol_access: Text | None = Field(None, description="Item 5: where the protocol and SAP "
                                         "can be accessed.")
    data_sharing: Text | None = Field(None, description="Item 6: data, code and materials.")
    conflicts: Text | None = Field(None, description="Item 7b: conflicts of interest.")
    dissemination: Text | None = Field(None, description="Item 8: communicating results.")
    background: Text | None = Field(None, description="Item 9a: background, benefits, harms.")
    comparator_rationale: Text | None = Field(None, description="Item 9b: choice of "
                                              "comparator.")
    ppi_aim: Text | None = Field(None, description="GRIPP2-SF 1: aim of PPI.")
    ppi_methods: Text | None = Field(None, description="GRIPP2-SF 2: methods of PPI.")
    inclusion: list[Text] = Field(default_factory=list, description="Item 14a: inclusion "
                                  "criteria.")
    exclusion: list[Text] = Field(default_factory=list, description="Item 14a: exclusion "
                                  "criteria.")
    site_eligibility: Text | None = Field(None, description="Item 14b: eligibility of sites.")
    deliverer_eligibility: Text | None = Field(None, description="Item 14b: who may deliver "
                                               "the intervention (peer worker criteria).")
    deliverer_training: Text | None = Field(None, description="Item 14b: training.")
    deliverer_supervision: Text | None = Field(None, description="Item 14b: supervision.")
    comparator_detail: Text | None = Field(None, description="Item 15a: the comparator.")
    stopping_intervention: Text | None = Field(None, description="Item 15b: criteria for "
                                               "stopping or modifying the intervention.")
    adherence: Text | None = Field(None, description="Item 15c: adherence strategies.")
    concomitant_care: Text | None = Field(None, description="Item 15d: concomitant care.")
    harms: Text | None = Field(None, description="Item 17: how harms are defined and "
                               "assessed.")
    recruitment_strategies: Text | None = Field(None, description="Item 20.")
    cluster_recruitment: Text | None = Field(None, description="Cluster trials: who "
                                             "identifies and recruits participants in each "
                                             "cluster, whether they know its allocation, and "
                                             "how recruitment bias is limited.")
    sequence_generation: Text | None = Field(None, description="Item 21a.")
    randomisation_type: Text | None = Field(None, description="Item 21b: type, "
                                            "stratification.")
    concealment: Text | None = Field(None, description="Item 22.")
    allocation_access: Text | None = Field(None, description="Item 23.")
    blinded: Text | None = Field(None, description="Item 24a: who is blinded.")
    blinding_how: Text | None = Field(None, description="Item 24b.")
    unblinding: Text | None = Field(None, description="Item 24c.")
    data_collection: Text | None = Field(None, description="Item 25a: data collection.")
    retention: Text | None = Field(None, description="Item 25b: retention.")
    data_management: Text | None = Field(None, description="Item 26.")
    dmc: Text | None = Field(None, description="Item 28a: data monitoring committee.")
    interim: Text | None = Field(None, description="Item 28b: interim analyses.")
    monitoring: Text | None = Field(None, description="Item 29: monitoring trial conduct.")
    ethics: Text | None = Field(None, description="Item 30: ethics approval.")
    amendments: Text | None = Field(None, description="Item 31: protocol modifications.")
    consent: Text | None = Field(None, description="Item 32a: who obtains consent, and how.")
    ancillary_consent: Text | None = Field(None, description="Item 32b.")
    confidentiality: Text | None = Field(None, description="Item 33.")
    post_trial_care: Text | None = Field(None, description="Item 34: ancillary and "
                                         "post-trial care, compensation.")
    context: Text | None = Field(None, description="Process evaluation: context of delivery.")
    fidelity_source: Text | None = Field(None, description="Process evaluation: where fidelity "
                                         "data come from (default: a proposal).")
    fidelity_timing: Text | None = Field(None, description="Process evaluation: when fidelity "
                                         "is assessed (default: a proposal).")


class Reference(_Model):
    """A work the trial file's text cites as ``[@id]``; formatted with the bundled ones."""

    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_:.-]*$", description="Citation key: cite "
                    "it as [@id] in any text of the trial file.")
    authors: list[str] = Field(default_factory=list, description="'Family Initials', in "
                               "order, e.g. 'Gillard S'; end with 'et al.' if shortened.")
    title: str | None = None
    journal: str | None = None
    year: int | None = Field(None, ge=1000, le=3000)
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    doi: str | None = None
    url: str | None = None


class TrialFile(_Model):
    """A planned trial: ``schema: trialplan/1``."""

    schema_: Literal["trialplan/1"] = Field(alias="schema")
    trial: Trial
    intervention: Intervention = Intervention()
    timepoints: list[Timepoint] = Field(min_length=1)
    change_model: ChangeModel
    measures: list[Measure] = Field(default_factory=list)
    assumptions: Assumptions = Assumptions()
    protocol: ProtocolText = ProtocolText()
    estimands: list[Estimand] = Field(default_factory=list, description="ICH E9(R1) estimands, "
                                      "at most one per outcome.")
    analysis: Analysis = Analysis()
    references: list[Reference] = Field(default_factory=list, description="Works cited in "
                                        "the trial file's text, besides the bundled ones.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              allow_inf_nan=False)

    @field_validator("timepoints")
    @classmethod
    def _finite_months(cls, value):
        for tp in value:
            if not math.isfinite(tp.month):
                raise ValueError("month must be finite")
        return value


def json_schema() -> dict:
    """The JSON Schema of the trial file (for editors' completion and validation).

    The fields that may hold a distribution (:data:`trialplan.model.priors.FIELDS`)
    accept a ``Distribution`` mapping beside their number, as the loader does.
    """
    from trialplan.model.priors import FIELDS, FORMS

    schema = TrialFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "trialplan trial file (schema trialplan/1)"
    schema["$defs"]["Distribution"] = _distribution_schema(FORMS)
    for path in FIELDS:
        node = _schema_node(schema, path)
        options = node.pop("anyOf", None) or [
            {k: node.pop(k) for k in list(node) if k not in ("title", "description", "default")}]
        node["anyOf"] = [*options, {"$ref": "#/$defs/Distribution"}]
    return schema


def _distribution_schema(forms: dict) -> dict:
    names = sorted({name for sets in forms.values() for form in sets for name in form})
    props = {name: ({"type": "array", "items": {"type": "number"}, "minItems": 2,
                     "maxItems": 2} if name == "ci" else {"type": "number"})
             for name in names}
    return {"type": "object", "title": "Distribution",
            "description": "An uncertain assumption: the plan uses the distribution's centre "
                           "and draws from it for assurance (docs: uncertainty).",
            "properties": {"distribution": {"enum": sorted(forms)}, **props},
            "required": ["distribution"], "additionalProperties": False}


def _schema_node(schema: dict, path: tuple) -> dict:
    """The property schema at a trial-file path ("*" is any item of a list)."""
    def resolve(node):
        while True:
            if "$ref" in node:
                node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
            elif "anyOf" in node and any("$ref" in o or o.get("type") == "array"
                                         for o in node["anyOf"]):
                node = next(o for o in node["anyOf"] if "$ref" in o or o.get("type") == "array")
            else:
                return node

    node = schema
    for key in path[:-1]:
        node = resolve(node["items"] if key == "*" else node["properties"][key])
    return node["properties"][path[-1]] if path[-1] != "*" else node["items"]
