"""The mediation-analysis text of the protocol, SAP and process evaluation.

Built from the trial file and the plan so that it says what is actually
estimated, on which data and how: natural indirect and direct effects
(Valeri & VanderWeele 2013) on the scale of each outcome, the exposure-mediator
interaction, the time points and landmark outcomes used, the multilevel
specification of clustered designs, parallel mediators of one mechanism, a
sensitivity analysis that exists for the model, how process measures that
exist only in the intervention arm are analysed, multiplicity and reporting.
"""

from __future__ import annotations

from trialplan.model.checks import measured_at_baseline

_INTERVAL = {
    "joint": "the joint significance test of the two paths, with a Monte Carlo confidence "
             "interval for the indirect effect [@preacher2012]",
    "sobel": "the Sobel test", "aroian": "the Aroian test",
    "vsm": "the test of the mediator coefficient",
    "mc": "a Monte Carlo confidence interval [@preacher2012]",
    "bootstrap": "a percentile bootstrap confidence interval",
    "bc-bootstrap": "a bias-corrected bootstrap confidence interval",
}


def _join(items) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def mediation_paragraphs(trial, plan, todo: str = "[TO COMPLETE:") -> list[str]:
    """The mediation analysis, as paragraphs of plain text (``todo`` marks missing text)."""
    a = trial.model.assumptions
    cl = a.clustering
    labels = {tp.id: (tp.label or tp.id) for tp in trial.model.timepoints}
    mechs = list(plan["mechanisms"])
    out = []
    n_mech = len({m["mechanism"] for m in mechs})
    if mechs:
        out.append(
            "Mechanism analyses are secondary analyses: they explain how the intervention "
            "works and do not change the conclusion of the primary analysis. "
            + ("The mechanism with a pre-specified path is estimated with its 95% confidence "
               "interval. " if n_mech == 1 else
               f"Each of the {n_mech} mechanisms with a pre-specified path is estimated with "
               "its 95% confidence interval; p values are not adjusted for the number of "
               "mechanisms, and the pattern across mechanisms is interpreted as a whole, with "
               "Holm-adjusted p values reported alongside to show which conclusions survive "
               "the multiplicity. ")
            + "Reporting follows the AGReMA guideline for mediation analyses [@lee2021].")
        out.append(_estimands(trial, mechs, labels))
        out.append(_models(trial, mechs, cl, a.mediation_test, a.mediation_b_level))
        parallel = _parallel(trial, mechs)
        if parallel:
            out.append(parallel)
        out.append(_sensitivity(mechs))
    else:
        out.append("Mechanism analyses are secondary analyses. The trial file gives no path "
                   "assumptions (assumptions.paths), so no mediation analysis is specified "
                   f"yet. {todo} the mechanisms to be tested as indirect effects, their process "
                   "variables and time points]")
    intervention_only = [pv for pv in trial.change_model.process_variables
                         if pv.arms == "intervention"]
    if intervention_only:
        one = len(intervention_only) == 1
        this = "This process measure is" if one else "These process measures are"
        it = "it is" if one else "they are"
        moderator = "a peer-worker-level moderator" if one else "peer-worker-level moderators"
        names = _join(f"{pv.label.lower()} ({_abbreviation(trial, pv.measure)})"
                      for pv in intervention_only)
        out.append(
            f"{names[0].upper() + names[1:]} {'is' if len(intervention_only) == 1 else 'are'} "
            "measured in the intervention arm only, so randomisation cannot act on "
            f"{'it' if len(intervention_only) == 1 else 'them'} in both arms: there is no "
            "treatment-to-mediator (a) path and a product of paths would not be an identified "
            f"indirect effect. {this} analysed as dose or "
            "engagement instead: the effect of the intervention among participants who engage is "
            "estimated as a complier-average causal effect by instrumental variables, with "
            "randomisation and its interactions with baseline covariates as instruments "
            "[@dunn2007; @emsley2010], and in the process evaluation "
            f"{it} examined as {moderator} "
            "of the effect on the outcomes.")
    return out


def _abbreviation(trial, key) -> str:
    return (trial.measures.get(key) or {}).get("abbreviation") or key


def _estimands(trial, mechs, labels) -> str:
    parts = ["For each mechanism the estimands are the natural indirect effect (the effect of "
             "allocation on the outcome through the change it causes in the process variable) "
             "and the natural direct effect (the effect through all other routes), defined by "
             "counterfactuals and estimated by the regression-based approach of Valeri and "
             "VanderWeele [@valeri2013]."]
    kinds = {m["outcome_type"] for m in mechs}
    if "continuous" in kinds:
        parts.append("For continuous outcomes they are differences in means; without an "
                     "exposure-mediator interaction the natural indirect effect is the "
                     "product of the two paths.")
    if "binary" in kinds:
        parts.append("For binary outcomes they are odds ratios from a logistic outcome model "
                     "(the product-of-coefficients approximation holds only when the outcome "
                     "is rare), with the risk differences obtained by standardisation over "
                     "the covariates.")
    timing = []
    for m in mechs:
        if m.get("mediator_timepoint") is None:
            continue
        text = (f"{m['mediator_label'].lower()} at {labels[m['mediator_timepoint']].lower()} "
                f"for {m['outcome_label'].lower()} at {labels[m['outcome_timepoint']].lower()}")
        timing.append(text)
    if timing:
        parts.append("Each process variable is analysed at a time point before the outcome "
                     "it is hypothesised to change: " + "; ".join(dict.fromkeys(timing)) + ".")
    for m in mechs:
        lm = m.get("landmark")
        if lm:
            parts.append(
                f"Because {m['outcome_label'].lower()} accumulates over time, the mechanism "
                f"through {m['mediator_label'].lower()} is analysed on a landmark outcome: "
                f"the event between month {lm['from_month']:g} and month {lm['to_month']:g} "
                f"among participants without it by month {lm['from_month']:g}, so that the "
                "process variable is measured before the outcome it explains [@landau2018].")
    return " ".join(parts)


def _models(trial, mechs, cl, test, b_level) -> str:
    parts = ["The process variable is regressed on allocation (path a) and the outcome on "
             "allocation, the process variable and their interaction (path b and the "
             "exposure-mediator interaction), both models adjusted for "
             + _baseline_adjustment(trial, mechs) + " and for the stratification factors. The "
             "interaction is tested by the Wald test of its coefficient and kept in the model "
             "either way, so that the natural effects allow for it. The indirect effect is "
             f"tested by {_INTERVAL[test]}."]
    designs = {m.get("design") for m in mechs}
    if cl.kind == "partial":
        within = b_level == "individual" or "binary" in {m["outcome_type"] for m in mechs}
        parts.append("Both models include a random intercept for peer worker in the "
                     "intervention arm only (the partially nested design [@kelcey2020]); " + (
                         "the process variable is centred on its caseload mean, so that b is "
                         "estimated within caseloads and in the control arm, with the caseload "
                         "means entered as a separate predictor." if within else
                         "b is estimated from the variation between peer workers' caseloads."))
    if "2-1-1" in designs:
        parts.append("Clusters are randomised and the process variable is measured on each "
                     "participant (a 2-1-1 multilevel mediation model): the process variable "
                     "is centred on its cluster mean, and the cluster mean enters the outcome "
                     "model as a cluster-level predictor, giving a within-cluster path b1 and "
                     "a between-cluster path B; the indirect effect of the cluster-level "
                     "treatment runs through the cluster means (a x B), each model having a "
                     "random intercept for cluster [@zhang2009; @kelcey2017].")
    if "2-2-1" in designs:
        parts.append("A process variable that is a property of the cluster is regressed on "
                     "allocation at the cluster level, and the outcome on it in a model with "
                     "a random intercept for cluster (2-2-1 mediation [@kelcey2019]).")
    return " ".join(parts)


def _baseline_adjustment(trial, mechs) -> str:
    """Which baseline values the mediation models adjust for: only those measured."""
    months = trial.timepoint_months()
    nodes = trial.nodes()
    labels = {}
    for m in mechs:
        for key in ("mediator", "outcome"):
            labels[m[key]] = m[f"{key}_label"].lower()
    without = [labels[i] for i in labels if not measured_at_baseline(nodes[i][1], months)]
    if not without:
        return "the baseline values of the process variable and the outcome"
    return ("the baseline values of the process variable and the outcome where they are "
            f"measured at baseline ({_join(without)} "
            f"{'is' if len(without) == 1 else 'are'} not)")


def _parallel(trial, mechs) -> str | None:
    groups: dict = {}
    for m in mechs:
        groups.setdefault((m["mechanism"], m["outcome"]), []).append(m)
    texts = []
    for group in groups.values():
        if len(group) < 2:
            continue
        names = _join(g["mediator_label"].lower() for g in group)
        texts.append(f"{names} ({group[0]['mechanism_label'].lower()}) on "
                     f"{group[0]['outcome_label'].lower()}")
    if not texts:
        return None
    return ("Process variables of the same mechanism are analysed together as parallel "
            "mediators in one outcome model, reporting each specific indirect effect and the "
            "mechanism's total indirect effect, with the residual correlation of the process "
            f"variables estimated from the data: {'; '.join(texts)}.")


def _sensitivity(mechs) -> str:
    kinds = {m["outcome_type"] for m in mechs}
    parts = ["The process variable is not randomised, so the mediator-outcome relation may be "
             "confounded even after adjustment for baseline values."]
    if "continuous" in kinds:
        parts.append("For continuous outcomes a sensitivity analysis reports how large the "
                     "correlation between the residuals of the two models would need to be "
                     "to remove the indirect effect [@imai2010].")
    if "binary" in kinds:
        parts.append("For binary outcomes, where that analysis (built for linear models) does "
                     "not apply, mediational E-values report how strongly an unmeasured "
                     "confounder would need to be associated with both the process variable "
                     "and the outcome to explain away the natural indirect effect "
                     "[@smith2019].")
    return " ".join(parts)
