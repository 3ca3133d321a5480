"""One specification per outcome: its estimand (ICH E9(R1)) and the analysis that targets it.

:func:`analysis_specs` reads a validated trial file and its plan and returns an
:class:`AnalysisSpec` for every outcome.  The protocol and SAP prose
(:mod:`trialplan.planning.context`) is written from these objects, and the
simulation and analysis-code generators are meant to read the same fields, so
that what the documents promise and what the code does cannot drift apart.

The choice of model follows the outcome type and the clustering:

=============  =====================================  ===================================
outcome        partially nested (peer workers)        cluster randomised
=============  =====================================  ===================================
binary         random-intercept logistic model,       logistic GEE, exchangeable working
               caseloads and control participants as  correlation, Mancl-DeRouen
               clusters (of one) sharing one random-  bias-corrected sandwich variance
               intercept distribution, likelihood-
               ratio test (Roberts, Batistatou &
               Roberts 2016); GEE with bias-corrected
               sandwich as sensitivity
continuous     heteroscedastic partially nested       linear mixed model, random
               mixed model, Kenward-Roger df          intercept for cluster, Kenward-Roger
               (Candlish et al. 2018)                 df; cluster-level analysis when
                                                      clusters are few
count          negative binomial regression, variance  negative binomial mixed model
               robust to clustering by peer worker
time-to-event  Cox model, robust variance clustered   Cox model, robust variance
               by peer worker; frailty as             clustered by cluster; frailty as
               sensitivity                            sensitivity
=============  =====================================  ===================================

Marginal summaries of non-collapsible measures (odds ratios, hazard ratios)
are obtained by standardisation over the covariates (and, for random-effects
models, over the random-effect distribution), never read off a conditional
coefficient.
"""

from __future__ import annotations

from dataclasses import dataclass

from trialplan.model.checks import measured_at_baseline
from trialplan.model.schema import STRATEGIES

OUTCOME_TYPES = ("binary", "continuous", "count", "time-to-event")
CLUSTERING_KINDS = ("none", "partial", "cluster")
# Planning rule (ours, not a published threshold): below this many clusters per arm a
# mixed model's variance components are poorly estimated, so the primary analysis of a
# cluster-randomised trial is done on cluster-level summaries (Hayes & Moulton 2017).
FEW_CLUSTERS_PER_ARM = 10

_SUMMARY = {
    "binary": "marginal risk difference, with the marginal odds ratio",
    "continuous": "difference in mean {measure} score between arms",
    "count": "rate ratio, with the difference in mean counts",
    "time-to-event": "hazard ratio, with the marginal difference in the proportion with the "
                     "event by {time}",
}


@dataclass(frozen=True)
class IntercurrentEventSpec:
    """One intercurrent event and the strategy the estimand uses for it."""

    event: str
    strategy: str
    handling: str | None


@dataclass(frozen=True)
class EstimandSpec:
    """The five attributes of an estimand (ICH E9(R1)), resolved from the file and defaults.

    ``from_file`` is False when the trial file gives no estimand for the
    outcome: the attributes are then defaults and the intercurrent events are
    still to be written.
    """

    outcome_id: str
    population: str
    treatment: str
    variable: str
    timepoint_id: str
    timepoint_label: str
    month: float
    intercurrent_events: tuple[IntercurrentEventSpec, ...]
    summary: str
    from_file: bool


@dataclass(frozen=True)
class CaceSpec:
    """The complier average causal effect: compliance definition and IV estimator."""

    compliance: str | None
    compliance_source: str | None
    estimator: str
    clustering: str
    software: str


@dataclass(frozen=True)
class AnalysisSpec:
    """How one outcome's estimand is estimated: everything the text and the code need.

    Attributes
    ----------
    outcome_id, label, role, outcome_type
        The outcome, from the change model.
    timepoint_id, timepoint_label
        The time point the estimand refers to.
    follow_ups
        Ids of every post-baseline time point of the outcome, in time order.
    repeated
        True when the outcome has more than one follow-up: the model then uses
        all of them (time by arm interaction) and the estimand's contrast is read
        at ``timepoint_id``.
    baseline_adjusted
        True when the outcome is also measured at baseline (its baseline value is
        a covariate).
    model
        Code of the model family (one of :data:`MODELS`).
    model_text
        The model in words, for the documents.
    clustering
        ``none``, ``partial`` or ``cluster``.
    clustering_handling
        How the clustering enters the model, in words.
    covariates
        Stratification factors, then the baseline value, then other covariates.
    summary_measure
        The population-level summary of the estimand.
    marginal_method
        How the marginal summary is obtained from the fitted model, or None when
        the model's coefficient is itself the marginal summary.
    small_sample
        The small-sample correction or test.
    sensitivity
        Alternative analyses, each in words.
    assumption_checks
        What is checked and the pre-specified alternative if it fails.
    software
        The software and routines used.
    estimand
        The estimand this analysis targets.
    """

    outcome_id: str
    label: str
    role: str
    outcome_type: str
    timepoint_id: str
    timepoint_label: str
    follow_ups: tuple[str, ...]
    repeated: bool
    baseline_adjusted: bool
    model: str
    model_text: str
    clustering: str
    clustering_handling: str
    covariates: tuple[str, ...]
    summary_measure: str
    marginal_method: str | None
    small_sample: str
    sensitivity: tuple[str, ...]
    assumption_checks: str
    software: str
    estimand: EstimandSpec


MODELS = ("logistic", "glmm-logistic", "gee-logistic", "linear", "lmm-heteroscedastic",
          "lmm-cluster", "cluster-level", "negative-binomial", "glmm-negative-binomial",
          "cox", "cox-robust")


def _timepoints(trial):
    return {tp.id: tp for tp in trial.model.timepoints}


def _estimand(trial, outcome, instrument: str) -> EstimandSpec:
    tps = _timepoints(trial)
    given = next((e for e in trial.model.estimands if e.outcome == outcome.id), None)
    follow = [t for t in outcome.timepoints if tps[t].month > 0] or list(outcome.timepoints)
    tp_id = (given.timepoint if given and given.timepoint else
             max(follow, key=lambda t: tps[t].month))
    tp = tps[tp_id]
    when = (tp.label or f"month {tp.month:g}")
    t = trial.model.trial
    name = trial.model.intervention.brief_name or "the intervention"
    treatment = (f"{name} offered in addition to {t.comparator.lower()}, versus "
                 f"{t.comparator.lower()} alone")
    summary = _SUMMARY[outcome.type].format(measure=instrument, time=when.lower())
    named = instrument.lower() in outcome.label.lower()
    variable = outcome.label if named else f"{outcome.label} ({instrument})"
    if not (outcome.type == "binary" and mentions_time(outcome.label)):
        variable += f" at {short_label(when)}"
    events = tuple(IntercurrentEventSpec(e.event, e.strategy, e.handling)
                   for e in (given.intercurrent_events if given else ()))
    return EstimandSpec(
        outcome_id=outcome.id,
        population=(given.population if given and given.population else t.population),
        treatment=(given.treatment if given and given.treatment else treatment),
        variable=(given.variable if given and given.variable else variable),
        timepoint_id=tp_id, timepoint_label=when, month=tp.month,
        intercurrent_events=events,
        summary=(given.summary if given and given.summary else summary),
        from_file=given is not None)


def short_label(label: str) -> str:
    text = label.split(" (")[0].strip()
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def mentions_time(label: str) -> bool:
    """True when an outcome label already carries its time window ('within 12 months')."""
    low = label.lower()
    return any(w in low for w in (" within ", " by ", "month", "year", "week"))


def _covariates(trial, baseline: bool) -> tuple[str, ...]:
    an = trial.model.analysis
    out = list(an.stratification_factors)
    if baseline:
        out.append("the baseline value of the outcome")
    out += [c for c in an.covariates if c not in out]
    return tuple(out)


def _clusters_per_arm(plan) -> float | None:
    per_arm = plan["primary"]["result"].get("clusters_per_arm")
    if isinstance(per_arm, dict):
        return min(per_arm.values())
    return per_arm


def _model(kind: str, cl: str, repeated: bool, few_clusters: bool) -> dict:
    """Model family, clustering, marginal method, small-sample handling, checks, software."""
    unit = "peer worker" if cl == "partial" else "cluster"
    singletons = ("each control participant forms a cluster of one with no random effect, "
                  "since the control arm is not clustered")
    rm = ("; all follow-ups enter one model with a random intercept for participant and a "
          "time-by-arm interaction, and the contrast is read at the estimand's time point"
          if repeated else "")
    if kind == "binary":
        if cl == "partial":
            return dict(
                model="glmm-logistic",
                model_text="a random-intercept logistic regression model fitted by adaptive "
                           "Gauss-Hermite quadrature",
                clustering_handling="a random intercept for each cluster, the clusters being "
                                    "peer workers' caseloads in the intervention arm and each "
                                    "control participant as a cluster of one, all sharing one "
                                    "random-intercept distribution. A random effect in the "
                                    "intervention arm only is not used: with a logit link it "
                                    "would make the treatment coefficient non-zero when the "
                                    "marginal effect is null, and Roberts, Batistatou and "
                                    "Roberts [@roberts2016] found the random-coefficient model "
                                    "inconsistent with other methods under a null effect and do "
                                    f"not recommend it for this design{rm}",
                marginal_method="the marginal risk in each arm is obtained by standardisation: "
                                "predicted probabilities are averaged over the trial sample's "
                                "covariates and integrated over the estimated random-intercept "
                                "distribution; the risk difference and marginal "
                                "odds ratio are formed from these two risks, with confidence "
                                "intervals from a bootstrap that resamples peer-worker "
                                "caseloads and control participants within arm",
                small_sample="the treatment effect is tested by a likelihood-ratio test; among "
                             "the analyses compared for partially nested binary outcomes by "
                             "Roberts, Batistatou and Roberts [@roberts2016], logistic models "
                             "performed better than methods based on proportions, and the "
                             "likelihood-ratio test performed best in the scenarios they "
                             "considered",
                sensitivity=("a logistic generalised estimating equations (GEE) analysis with "
                             "an independence working correlation, peer-worker clusters (control "
                             "participants as clusters of one) and the Mancl-DeRouen "
                             "bias-corrected sandwich variance [@mancl2001], with the marginal "
                             "risk "
                             "difference and odds ratio standardised over the covariates in "
                             "the same way",),
                assumption_checks="if the mixed model fails to converge or estimates a zero "
                                  "random-intercept variance, the GEE analysis becomes the "
                                  "primary analysis",
                software="R: lme4 (glmer) for the mixed model, glmtoolbox (glmgee, "
                         "bias-corrected variance) for the GEE analysis")
        if cl == "cluster":
            return dict(
                model="gee-logistic",
                model_text="a logistic generalised estimating equations (GEE) model with an "
                           "exchangeable working correlation",
                clustering_handling=f"clusters are the randomised units{rm}",
                marginal_method="the marginal risk in each arm is obtained by standardisation "
                                "over the covariates (g-computation); the risk difference and "
                                "odds ratio are formed from them, with delta-method "
                                "confidence intervals",
                small_sample="the Mancl-DeRouen bias-corrected sandwich variance "
                             "[@mancl2001], with t-based inference on (number of clusters "
                             "minus 2) degrees of freedom",
                sensitivity=("a random-intercept logistic model with a likelihood-ratio "
                             "test",),
                assumption_checks="if the GEE fails to converge, a cluster-level analysis of "
                                  "covariate-adjusted cluster proportions is used",
                software="R: glmtoolbox (glmgee, bias-corrected variance)")
        return dict(
            model="logistic", model_text="a logistic regression model",
            clustering_handling="participants are independent",
            marginal_method="the marginal risk in each arm is obtained by standardisation over "
                            "the covariates (g-computation); the risk difference and marginal "
                            "odds ratio are formed from them, with delta-method confidence "
                            "intervals",
            small_sample="Wald test",
            sensitivity=("an unadjusted comparison of proportions",),
            assumption_checks="if the model separates (too few events in a stratum), sparse "
                              "stratification levels are merged before unblinding",
            software="R: stats (glm), marginaleffects (standardisation)")
    if kind == "continuous":
        if cl == "partial":
            return dict(
                model="lmm-heteroscedastic",
                model_text="the heteroscedastic partially nested linear mixed model, fitted by "
                           "restricted maximum likelihood [@candlish2018; @baldwin2011]",
                clustering_handling="a random intercept for peer worker in the intervention "
                                    f"arm only and arm-specific residual variances; "
                                    f"{singletons}{rm}",
                marginal_method=None,
                small_sample="Kenward-Roger degrees of freedom",
                sensitivity=("the same model with Satterthwaite degrees of freedom",
                             "a linear regression ignoring the clustering, to show its "
                             "influence"),
                assumption_checks="residuals and predicted random effects are inspected by arm "
                                  "for skewness and outliers; if residuals are markedly "
                                  "non-normal, confidence intervals come from a bootstrap that "
                                  "resamples caseloads and control participants within arm",
                software="Stata: mixed, fitted by restricted maximum likelihood with "
                         "arm-specific residual variances and Kenward-Roger degrees of freedom")
        if cl == "cluster" and few_clusters:
            return dict(
                model="cluster-level",
                model_text="a two-stage cluster-level analysis: a linear regression of the "
                           "outcome on the covariates without the arm, then a t-test of the "
                           "cluster means of its residuals [@hayes2017]",
                clustering_handling="each cluster contributes one summary, since few clusters "
                                    "are randomised",
                marginal_method=None,
                small_sample="the t distribution on (number of clusters minus 2) degrees of "
                             "freedom",
                sensitivity=("a linear mixed model with a random intercept for cluster and "
                             "Kenward-Roger degrees of freedom",),
                assumption_checks="cluster residual means are inspected for outliers; a "
                                  "permutation test of the cluster means is the alternative",
                software="R: stats (lm, t.test)")
        if cl == "cluster":
            return dict(
                model="lmm-cluster",
                model_text="a linear mixed model fitted by restricted maximum likelihood",
                clustering_handling=f"a random intercept for cluster{rm}",
                marginal_method=None,
                small_sample="Kenward-Roger degrees of freedom",
                sensitivity=("a two-stage cluster-level analysis [@hayes2017]",),
                assumption_checks="residuals and predicted cluster effects are inspected for "
                                  "skewness and outliers; if markedly non-normal, the "
                                  "cluster-level analysis becomes primary",
                software="R: lme4 (lmer) with lmerTest (Kenward-Roger degrees of freedom)")
        return dict(
            model="linear",
            model_text="a linear regression model (analysis of covariance)",
            clustering_handling=f"participants are independent{rm}",
            marginal_method=None,
            small_sample="t-based inference",
            sensitivity=("an analysis with heteroscedasticity-consistent standard errors",),
            assumption_checks="residuals are inspected for skewness and unequal variance by "
                              "arm; if either is marked, heteroscedasticity-consistent standard "
                              "errors are used",
            software="R: stats (lm)" if not repeated else "R: lme4 (lmer) with lmerTest")
    if kind == "count":
        offset = " with the log of each participant's time at risk as an offset"
        if cl == "partial":
            # A random intercept in one arm only would multiply that arm's marginal mean by
            # exp(variance / 2): the model's ratio would not be the marginal one.  A robust
            # variance keeps the marginal rate ratio and allows for the clustering.
            return dict(
                model="negative-binomial",
                model_text="a negative binomial regression model" + offset,
                clustering_handling="a robust (sandwich) variance clustered by peer worker, each "
                                    "control participant forming a cluster of one",
                marginal_method="a rate ratio from a log-link model without random effects is "
                                "collapsible, so the adjusted ratio is the marginal one",
                small_sample="the cluster-robust variance with its G/(G - 1) small-sample "
                             "adjustment (G clusters)",
                sensitivity=("a zero-inflated negative binomial model if there are more zeros "
                             "than the negative binomial predicts",
                             "a negative binomial mixed model with a random intercept for each "
                             "cluster (control participants as clusters of one)"),
                assumption_checks="overdispersion and excess zeros are checked against the "
                                  "fitted distribution; the zero-inflated model is the "
                                  "pre-specified alternative",
                software="R: MASS (glm.nb) with sandwich (vcovCL)")
        clustered = cl != "none"
        marginal = (
            "a rate ratio from a log-link model is collapsible (a random intercept shared by "
            "both arms shifts their means by the same factor), so the model's ratio is the "
            "marginal one" if clustered else
            "a rate ratio from a log-link model is collapsible, so the adjusted ratio is the "
            "marginal one")
        return dict(
            model="glmm-negative-binomial" if clustered else "negative-binomial",
            model_text=("a negative binomial mixed model" if clustered else
                        "a negative binomial regression model") + offset,
            clustering_handling=(f"a random intercept for {unit}"
                                 if clustered else "participants are independent"),
            marginal_method=marginal,
            small_sample="likelihood-ratio test" if clustered else "Wald test",
            sensitivity=("a zero-inflated negative binomial model if there are more zeros "
                         "than the negative binomial predicts",),
            assumption_checks="overdispersion and excess zeros are checked against the fitted "
                              "distribution; the zero-inflated model is the pre-specified "
                              "alternative",
            software="R: glmmTMB (nbinom2)" if clustered else "R: MASS (glm.nb)")
    clustered = cl != "none"
    return dict(
        model="cox-robust" if clustered else "cox",
        model_text="a Cox proportional hazards model",
        clustering_handling=(f"a robust (sandwich) variance clustered by {unit}"
                             + ("; each control participant forms a cluster of one, since the "
                                "control arm is not clustered" if cl == "partial" else "")
                             if clustered else "participants are independent"),
        marginal_method="the marginal difference in the proportion with the event by the "
                        "time point is obtained from covariate-standardised survival curves",
        small_sample="robust score test" if clustered else "Wald test",
        sensitivity=(f"a shared gamma frailty for {unit}"
                     + (", control participants as clusters of one sharing its distribution"
                        if cl == "partial" else ""),) if clustered else (
            "an unadjusted log-rank test",),
        assumption_checks="proportional hazards are checked with scaled Schoenfeld residuals; "
                          "if they fail, the difference in restricted mean survival time to "
                          "the time point is the primary summary",
        software="R: survival (coxph)")


def analysis_specs(trial, plan) -> tuple[AnalysisSpec, ...]:
    """The estimand and analysis of every outcome, primary first.

    Parameters
    ----------
    trial : trialplan.model.checks.TrialPlan
        The validated trial file.
    plan : dict
        Its plan (:func:`trialplan.planning.build_plan`), read for the number of
        clusters.

    Returns
    -------
    tuple of AnalysisSpec
    """
    tps = _timepoints(trial)
    months = trial.timepoint_months()
    cl = trial.model.assumptions.clustering.kind
    per_arm = _clusters_per_arm(plan)
    few = cl == "cluster" and per_arm is not None and per_arm < FEW_CLUSTERS_PER_ARM
    software = trial.model.analysis.software
    order = {"primary": 0, "secondary": 1, "exploratory": 2}
    specs = []
    for o in sorted(trial.change_model.outcomes, key=lambda o: order[o.role]):
        inst = (trial.measures.get(o.measure) or {})
        name = inst.get("abbreviation") or inst.get("name") or o.measure
        est = _estimand(trial, o, name)
        follow = tuple(sorted((t for t in o.timepoints if tps[t].month > 0),
                              key=lambda t: tps[t].month))
        repeated = len(follow) > 1 and o.type == "continuous"
        # A time to event has no baseline value; other outcomes adjust for theirs.
        baseline = o.type != "time-to-event" and measured_at_baseline(o, months)
        m = _model(o.type, cl, repeated, few)
        specs.append(AnalysisSpec(
            outcome_id=o.id, label=o.label, role=o.role, outcome_type=o.type,
            timepoint_id=est.timepoint_id, timepoint_label=est.timepoint_label,
            follow_ups=follow, repeated=repeated, baseline_adjusted=baseline,
            covariates=_covariates(trial, baseline), summary_measure=est.summary,
            model=m["model"], model_text=m["model_text"], clustering=cl,
            clustering_handling=m["clustering_handling"],
            marginal_method=m["marginal_method"], small_sample=m["small_sample"],
            sensitivity=tuple(m["sensitivity"]), assumption_checks=m["assumption_checks"],
            software=software or m["software"], estimand=est))
    return tuple(specs)


def cace_spec(trial, plan) -> CaceSpec:
    """The complier average causal effect analysis of the primary outcome."""
    an = trial.model.analysis
    compliance, source = an.compliance, None
    fe = trial.model.assumptions.feasibility
    if compliance is None and fe is not None:
        crit = next((c for c in fe.criteria if c.kind == "adherence" and c.label), None)
        if crit is not None:
            compliance, source = crit.label, "the pilot's adherence criterion"
    cl = trial.model.assumptions.clustering.kind
    clustering = {
        "partial": "standard errors robust to clustering by peer worker (control participants "
                   "as clusters of one)",
        "cluster": "standard errors robust to clustering by randomised cluster",
        "none": "heteroscedasticity-robust standard errors"}[cl]
    return CaceSpec(
        compliance=compliance, compliance_source=source,
        estimator="instrumental-variable estimation by two-stage least squares, with random "
                  "allocation as the instrument for compliance and the same covariates as the "
                  "primary analysis"
                  + {"binary": "; the effect is a risk difference",
                     "count": "; the effect is a difference in mean counts",
                     "time-to-event": "; the effect is a difference in the proportion with the "
                                      "event by the estimand's time point",
                     "continuous": ""}[trial.primary_outcome().type],
        clustering=clustering,
        software=an.software or "R: ivreg, with sandwich (vcovCL) for the clustered variance")


__all__ = ["AnalysisSpec", "CaceSpec", "EstimandSpec", "IntercurrentEventSpec", "MODELS",
           "OUTCOME_TYPES", "CLUSTERING_KINDS", "STRATEGIES", "analysis_specs", "cace_spec"]
