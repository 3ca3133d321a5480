"""The plain context the document templates format: every number comes from here.

:func:`build_context` combines a validated trial file and its plan into
dicts, lists and strings.  Templates never compute: prose that depends on the
design (the sample-size paragraph, the statistical methods) is written here,
each number taken from the plan, and each paragraph says which command
reproduces it.  Where the trial file has nothing for a protocol item the value
is ``None`` and the template writes a marked placeholder.
"""

from __future__ import annotations

from trialplan import __version__
from trialplan.stats import teerenstra_correlation

TODO = "[TO COMPLETE:"
FIGURE_KEYS = ("change_model", "primary_power", "mechanism_power", "recruitment")

# SPIRIT 2025 items (Chan et al. 2025), ids and short titles; see reference/standards.md.
SPIRIT_2025 = [
    ("1a", "Title"), ("1b", "Structured summary"), ("2", "Protocol version"),
    ("3a", "Roles and responsibilities: contributors"), ("3b", "Sponsor contact"),
    ("3c", "Role of sponsor and funders"), ("3d", "Committees and oversight"),
    ("4", "Trial registration"), ("5", "Protocol and statistical analysis plan access"),
    ("6", "Sharing of data, code and materials"), ("7a", "Funding"),
    ("7b", "Conflicts of interest"), ("8", "Dissemination"),
    ("9a", "Background and rationale"), ("9b", "Choice of comparator"), ("10", "Objectives"),
    ("11", "Patient and public involvement"), ("12", "Trial design"),
    ("13", "Settings and locations"), ("14a", "Eligibility criteria for participants"),
    ("14b", "Eligibility of sites and of those who deliver the intervention"),
    ("15a", "Intervention and comparator"), ("15b", "Criteria for stopping or modifying the "
                                                    "intervention"),
    ("15c", "Adherence"), ("15d", "Concomitant care"), ("16", "Outcomes"), ("17", "Harms"),
    ("18", "Participant timeline"), ("19", "Sample size"), ("20", "Recruitment"),
    ("21a", "Sequence generation"), ("21b", "Type of randomisation"),
    ("22", "Allocation concealment"), ("23", "Implementation of allocation"),
    ("24a", "Who is blinded"), ("24b", "How blinding is achieved"), ("24c", "Unblinding"),
    ("25a", "Data collection"), ("25b", "Retention"), ("26", "Data management"),
    ("27a", "Statistical methods"), ("27b", "Analysis populations"), ("27c", "Missing data"),
    ("27d", "Additional analyses"), ("28a", "Data monitoring committee"),
    ("28b", "Interim analyses and stopping rules"), ("29", "Monitoring of trial conduct"),
    ("30", "Research ethics approval"), ("31", "Protocol amendments"),
    ("32a", "Consent"), ("32b", "Consent for ancillary studies"), ("33", "Confidentiality"),
    ("34", "Ancillary and post-trial care"),
]

TIDIER = [
    ("1", "Brief name", "brief_name"), ("2", "Why", "why"),
    ("3", "What: materials", "what_materials"), ("4", "What: procedures", "what_procedures"),
    ("5", "Who provided", "who_provided"), ("6", "How", "how"), ("7", "Where", "where"),
    ("8", "When and how much", "when_and_how_much"), ("9", "Tailoring", "tailoring"),
    ("10", "Modifications", "modifications"), ("11", "How well (planned)", "how_well_planned"),
    ("12", "How well (actual)", "how_well_actual"),
]


def _n(x) -> str:
    return f"{x:,}"


def _pct(x) -> str:
    return f"{100 * x:.0f}%" if abs(100 * x - round(100 * x)) < 1e-9 else f"{100 * x:.1f}%"


def _g(x) -> str:
    return f"{x:g}"


def _join(items) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _source(sources: dict, *keys) -> str | None:
    found = [sources[k] for k in keys if k in sources]
    return "; ".join(found) if found else None


def _graph(trial):
    nodes = trial.nodes()
    children: dict = {}
    for lk in trial.change_model.links:
        children.setdefault(lk.source, []).append(lk.target)
    return nodes, children


def _reach(children, start):
    seen, todo = [], list(children.get(start, ()))
    while todo:
        node = todo.pop(0)
        if node not in seen:
            seen.append(node)
            todo += children.get(node, [])
    return seen


def _instrument(trial, key) -> dict:
    m = trial.measures.get(key, {}) or {}
    return {"key": key, "name": m.get("name") or key, "abbreviation": m.get("abbreviation"),
            "reliability": m.get("reliability"), "reference": m.get("reference"),
            "licence": m.get("licence"), "sd": m.get("sd"), "items": m.get("items")}


def _timepoint_labels(trial) -> dict:
    return {tp.id: (tp.label or tp.id) for tp in trial.model.timepoints}


def _change_model(trial, plan) -> dict:
    nodes, children = _graph(trial)
    labels = _timepoint_labels(trial)
    mechanisms = []
    power = {(m["mechanism"], m["mediator"], m["outcome"]): m for m in plan["mechanisms"]}
    for mech in trial.change_model.mechanisms:
        reached = _reach(children, mech.id)
        process = [nodes[r][1] for r in reached if nodes[r][0] == "process"]
        outcomes = [nodes[r][1] for r in reached if nodes[r][0] == "outcome"]
        paths = [m for (mid, _, _), m in power.items() if mid == mech.id]
        mechanisms.append({
            "id": mech.id, "label": mech.label, "source": mech.source,
            "description": mech.description,
            "process": [{"id": p.id, "label": p.label,
                         "instrument": _instrument(trial, p.measure),
                         "timepoints": [labels[t] for t in p.timepoints]} for p in process],
            "outcomes": [{"id": o.id, "label": o.label, "role": o.role} for o in outcomes],
            "paths": paths,
        })
    sources = sorted({m.source for m in trial.change_model.mechanisms if m.source})
    return {"mechanisms": mechanisms, "sources": sources}


def _objectives(trial, plan, change_model) -> dict:
    cm = trial.change_model
    labels = _timepoint_labels(trial)
    primary = trial.primary_outcome()
    comp = trial.model.trial.comparator.rstrip(".").lower()
    name = trial.model.intervention.brief_name or "the intervention"
    when = _join(labels[t] for t in primary.timepoints)
    primary_text = (f"To estimate the effect of {name.lower()} compared with {comp} on "
                    f"{primary.label.lower()} ({when}).")
    secondary = [f"{o.label} ({_join(labels[t] for t in o.timepoints)})"
                 for o in cm.outcomes if o.role == "secondary"]
    hypotheses = []
    for mech in change_model["mechanisms"]:
        if not mech["process"] or not mech["outcomes"]:
            continue
        hypotheses.append(
            f"{mech['label']}: the intervention changes "
            f"{_join(p['label'].lower() for p in mech['process'])}, which in turn improve "
            f"{_join(o['label'].lower() for o in mech['outcomes'])}.")
    return {"primary": primary_text, "secondary": secondary, "mechanisms": hypotheses,
            "harms": "To describe adverse events and serious adverse events in both arms."}


def _outcomes_table(trial) -> list[dict]:
    labels = _timepoint_labels(trial)
    rows = []
    for o in trial.change_model.outcomes:
        inst = _instrument(trial, o.measure)
        metric, agg = {
            "binary": ("event by the time point (yes/no)", "proportion; odds ratio and risk "
                       "difference between arms"),
            "continuous": ("score at the time point, adjusted for baseline", "mean; difference "
                           "in means between arms"),
            "time-to-event": ("time from randomisation to the event", "hazard ratio; "
                              "Kaplan-Meier estimates"),
            "count": ("number of events by the time point", "rate; rate ratio between arms"),
        }[o.type]
        rows.append({"variable": o.label, "role": o.role, "type": o.type,
                     "instrument": inst, "metric": metric, "aggregation": agg,
                     "timepoints": [labels[t] for t in o.timepoints]})
    for p in trial.change_model.process_variables:
        inst = _instrument(trial, p.measure)
        rows.append({"variable": p.label, "role": "process (mediator)", "type": p.type,
                     "instrument": inst, "metric": "score at the time point",
                     "aggregation": "mean; difference between arms (path a)",
                     "timepoints": [labels[t] for t in p.timepoints]})
    return rows


def _schedule(trial) -> dict:
    """The SPIRIT schedule: enrolment, allocation and the post-allocation time points."""
    tps = sorted(trial.model.timepoints, key=lambda t: t.month)
    before = [t for t in tps if t.month <= 0]
    after = [t for t in tps if t.month > 0]
    def short(t):
        return "Baseline" if t.month == 0 else f"Month {t.month:g}"

    cl = trial.model.assumptions.clustering
    start = "allocation"
    if cl.kind == "cluster" and cl.allocation_before_recruitment:
        # Clusters are allocated first; participants are identified, consented and measured
        # at baseline afterwards (CONSORT extension for cluster trials).
        columns = ["Cluster allocation", "Enrolment"] + [short(t) for t in before] + [
            short(t) for t in after]
        ids = ["allocation", "enrolment"] + [t.id for t in before] + [t.id for t in after]
        allocation_row = {"group": "Allocation", "label": "Allocation of clusters",
                          "marks": ["allocation"]}
        start = "enrolment"
    else:
        columns = ["Enrolment"] + [short(t) for t in before] + ["Allocation"] + [
            short(t) for t in after]
        ids = ["enrolment"] + [t.id for t in before] + ["allocation"] + [t.id for t in after]
        allocation_row = {"group": "Enrolment", "label": "Allocation", "marks": ["allocation"]}
    rows = [
        {"group": "Enrolment", "label": "Eligibility screen", "marks": ["enrolment"]},
        {"group": "Enrolment", "label": "Informed consent", "marks": ["enrolment"]},
        allocation_row,
        {"group": "Intervention", "label": trial.model.intervention.brief_name or
         "Intervention", "marks": [start] + [t.id for t in after
                                             if t.month <= _intervention_end(trial)]},
        {"group": "Intervention", "label": trial.model.trial.comparator,
         "marks": [start] + [t.id for t in after]},
    ]
    if start == "enrolment":
        rows.insert(0, rows.pop(2))
    cm = trial.change_model
    for kind, items in (("Outcomes", cm.outcomes), ("Process variables", cm.process_variables)):
        for item in items:
            inst = _instrument(trial, item.measure)
            rows.append({"group": kind, "label": f"{item.label} "
                         f"({inst['abbreviation'] or inst['key']})",
                         "marks": list(item.timepoints)})
    table = [{"group": r["group"], "label": r["label"],
              "cells": ["X" if c in r["marks"] else "" for c in ids]} for r in rows]
    return {"columns": columns, "rows": table}


def _intervention_end(trial) -> float:
    """Months of delivery after allocation, read from the file's intervention text if given."""
    import re

    text = trial.model.intervention.when_and_how_much or ""
    match = re.search(r"(\d+(?:\.\d+)?)\s*months?", text)
    return float(match.group(1)) if match else 0.0


def _sample_size(trial, plan) -> dict:
    a = trial.model.assumptions
    src = a.sources
    p = plan["primary"]
    r = p["result"]
    eff = r["effect"]
    parts = []
    out_type = p["type"]
    if out_type == "binary":
        parts.append(
            f"The sample size is calculated for the primary outcome, {p['label'].lower()}. We "
            f"assume it occurs in {_pct(eff['p_control'])} of the control arm"
            f"{_cite(src, 'control_rate')} and in {_pct(eff['p_intervention'])} of the "
            f"intervention arm{_cite(src, 'intervention_rate')}: a risk difference of "
            f"{eff['risk_difference']:+.3g} (risk ratio {eff['risk_ratio']:.3g}, odds ratio "
            f"{eff['odds_ratio']:.3g}).")
    elif out_type == "continuous":
        parts.append(
            f"The sample size is calculated for the primary outcome, {p['label'].lower()}, to "
            f"detect a standardised difference of {eff['d']:.3g}{_cite(src, 'd', 'sd')}.")
    else:
        parts.append(
            f"The sample size is calculated for the primary outcome, {p['label'].lower()}, to "
            f"detect a hazard ratio of {eff['hazard_ratio']:.3g}{_cite(src, 'hazard_ratio')}.")
    parts.append(
        f"With {_pct(a.power)} power and a two-sided significance level of {_g(a.alpha)}, "
        f"{_n(r['n_analysed_per_arm']['control'])} participants need to be analysed in the "
        f"control arm and {_n(r['n_analysed_per_arm']['intervention'])} in the intervention "
        f"arm (method: {r['method']}).")
    parts += _design_sentences(trial, plan)
    if r["power"]:
        parts.append(f"The power achieved at these numbers is {r['power']:.3f}.")
    final = plan["final"]
    if final["driven_by"] != "primary":
        parts.append(f"Because the trial is also powered for the mechanism {final['driven_by']}, "
                     f"the target is raised to {_n(final['n_to_recruit'])} participants.")
    mech = []
    for m in plan["mechanisms"]:
        if m.get("status") != "computed":
            mech.append(f"The mechanism {m['mechanism']} ({m['mediator']} -> {m['outcome']}) "
                        f"was not assessed: {m['reason']}.")
            continue
        verdict = ("so the trial can expect to detect it" if m["detectable"] else
                   f"below the {_pct(m['target_power'])} target: the trial cannot expect to "
                   f"detect it ({_n(m['n_needed_analysed'])} analysed would be needed)")
        mech.append(
            f"For the mechanism {m['mechanism_label'].lower()}, the indirect effect of the "
            f"intervention on {m['outcome_label'].lower()} through "
            f"{m['mediator_label'].lower()} (paths a = {_g(m['a'])}, b = {_g(m['b'])}; "
            f"{m['source'] or 'source to be given'}) is detected by the {m['test']} test with "
            f"power {m['power_at_planned_n']:.3f} at {_n(m['planned_n'])} analysed, {verdict}.")
    return {"paragraph": " ".join(parts), "mechanisms": mech, "command": p["command"],
            "mechanism_commands": [m["command"] for m in plan["mechanisms"]
                                   if m.get("status") == "computed"],
            "sensitivity": plan["sensitivity"]}


def _cite(sources, *keys) -> str:
    s = _source(sources, *keys)
    return f" ({s})" if s else f" {TODO} source of this assumption]"


def _design_sentences(trial, plan) -> list[str]:
    """Clustering, baseline adjustment, attrition and staffing, as the size used them."""
    a = trial.model.assumptions
    src = a.sources
    p = plan["primary"]
    r = p["result"]
    inputs = r["inputs"]
    final = plan["final"]
    cl = a.clustering
    att = p["attrition"]
    out = []
    if inputs.get("cluster_autocorr") is None and (inputs.get("baselines") or
                                                   inputs.get("follow_ups", 1) > 1):
        out.append(
            "The analysis uses "
            + (f"the baseline measure (correlation with the outcome "
               f"{_g(inputs['baseline_corr'])}{_cite(src, 'baseline_corr')})"
               if inputs.get("baseline_corr") is not None else "no baseline measure")
            + (f" and the mean of {inputs['follow_ups']} follow-ups (correlation between "
               f"repeated measurements {_g(inputs['follow_up_corr'])})"
               if inputs.get("follow_ups", 1) > 1 else "")
            + " (Frison and Pocock 1992).")
    if cl.kind == "partial":
        staff = plan.get("staffing")
        derived = (f", derived from the staffing of {_g(staff['peer_workers'])} peer workers "
                   f"({staff['sites']} sites with {_g(staff['peer_workers_per_site'])} each)"
                   if staff and staff["derived"] else _cite(src, "cluster_size"))
        out.append(
            f"Each peer worker is allocated about {_g(cl.cluster_size)} participants{derived}, "
            f"of whom about {final['cluster_size_analysed']:.3g} are expected to be analysed "
            f"(loss to follow-up {_pct(att['rate'])}); outcomes in the intervention arm may "
            f"cluster by peer worker, with an assumed intraclass correlation of {_g(cl.icc)}"
            f"{_cite(src, 'icc')}. On the caseload analysed this inflates the intervention "
            f"arm's variance by a design effect of {r['design_effect']['intervention']:.3g} "
            "(partially nested design, Satterthwaite degrees of freedom).")
        if p["type"] == "continuous":
            out.append(
                "The control arm's variance is taken to be "
                + ("the within-caseload variance, so that peer workers add variance in the "
                   "intervention arm (the convention of PowerUpR; design effect "
                   "1 + m ICC / (1 - ICC) relative to the control arm)"
                   if cl.control_variance == "within" else
                   "the intervention arm's total variance (design effect 1 + (m - 1) ICC)")
                + "; the standardised difference is on the control arm's standard deviation."
                + (" A baseline measure taken before participants meet their peer worker "
                   "cannot explain variation between peer workers, so it reduces only the "
                   "individual-level variance in each arm." if inputs.get("baselines") else ""))
        if staff and not staff["derived"]:
            out.append(
                f"With {staff['sites']} sites and {_g(staff['peer_workers_per_site'])} peer "
                f"workers at each, the projected recruitment allocates about "
                f"{staff['cumulative_caseload']:.1f} participants to each peer worker over the "
                "trial.")
        if staff:
            out.append(
                f"Each participant is supported for {_g(staff['support_months'])} months, so a "
                f"peer worker supports about {staff['concurrent_caseload']:.1f} participants at "
                "once when recruitment is at full speed.")
    elif cl.kind == "cluster":
        k = final["clusters_per_arm"]
        cv = final["cluster_cv"]
        out.append(
            f"Clusters are randomised: {k['control']} control and {k['intervention']} "
            f"intervention clusters, each recruiting about {_g(cl.cluster_size)} participants"
            f"{_cite(src, 'cluster_size')}, of whom about {final['cluster_size_analysed']:.3g} "
            f"are expected to be analysed (loss to follow-up {_pct(att['rate'])}). With an "
            f"intraclass correlation of {_g(cl.icc)}{_cite(src, 'icc')} and a coefficient of "
            f"variation of cluster size of {_g(cv)}{_cite(src, 'cluster_cv')}, the design effect "
            f"on the number analysed per cluster is {r['design_effect']['control']:.3g} "
            "(Eldridge, Ashby and Kerry 2006).")
        if cl.cluster_autocorr is not None:
            cohort = cl.individual_autocorr is not None
            m_a = final["cluster_size_analysed"]
            rr = float(teerenstra_correlation(m_a, cl.icc, cl.cluster_autocorr,
                                              cl.individual_autocorr or 0.0))
            design = "cohort" if cohort else "cross-sectional"
            out.append(
                f"Adjusting for the baseline measure in this {design} "
                f"design, with a cluster autocorrelation of {_g(cl.cluster_autocorr)}"
                f"{_cite(src, 'cluster_autocorr')}"
                + (f" and an individual autocorrelation of {_g(cl.individual_autocorr)}"
                   if cohort else "")
                + f", multiplies the design effect by 1 - r^2 = {1 - rr * rr:.3g} (Teerenstra et "
                "al. 2012).")
        if final["few_clusters"]:
            out.append(
                f"With fewer than {final['few_clusters_threshold']} clusters per arm, critical "
                "values come from the t distribution on the number of clusters minus 2 degrees "
                "of freedom, and the analysis uses a small-sample correction (Leyrat et al. "
                "2018).")
    if att["rate"]:
        if att["source"] == "assumptions.attrition":
            given = _source(src, "attrition")
            where = (f"(the trial-wide rate; {given})" if given
                     else f"(the trial-wide rate){_cite(src, 'attrition')}")
        else:
            where = "(the primary outcome's own rate)"
        out.append(
            f"Allowing for {_pct(att['rate'])} loss to follow-up in the primary outcome {where}, "
            f"we will recruit {_n(r['n_total'])} participants ({_n(r['n_per_arm']['control'])} "
            f"control, {_n(r['n_per_arm']['intervention'])} intervention).")
    if final.get("peer_workers"):
        out.append(f"The intervention arm needs {final['peer_workers']} peer workers "
                   "(intervention participants allocated divided by the caseload, rounded up).")
    return out


def _design_summary(plan) -> str:
    """One sentence on clusters or peer workers, for every document (CONSORT cluster items)."""
    f = plan["final"]
    de = f.get("design_effect")
    if "clusters_per_arm" in f:
        k = f["clusters_per_arm"]
        return (f"Cluster randomised: {k['control']} control and {k['intervention']} "
                f"intervention clusters, each recruiting {_g(f['cluster_size_allocated'])} "
                f"participants of whom about {f['cluster_size_analysed']:.3g} are expected to be "
                f"analysed; coefficient of variation of cluster size {_g(f['cluster_cv'])}; "
                f"design effect {de['control']:.3g}.")
    if "peer_workers" in f:
        return (f"Partially nested: {f['peer_workers']} peer workers, each allocated about "
                f"{_g(f['cluster_size_allocated'])} participants (about "
                f"{f['cluster_size_analysed']:.3g} analysed); design effect "
                f"{de['intervention']:.3g} in the intervention arm.")
    return ""


def _cluster_design(trial, plan) -> dict | None:
    """What a cluster-randomised trial's documents add: analysis, randomisation, recruitment.

    Cluster randomised trials with few clusters need small-sample analysis and often
    restricted randomisation (Leyrat et al. 2018); participants recruited after their
    cluster is allocated risk identification and recruitment bias (CONSORT extension for
    cluster trials, Campbell et al. 2012).
    """
    cl = trial.model.assumptions.clustering
    final = plan["final"]
    if cl.kind != "cluster":
        return None
    k = final["clusters_per_arm"]
    few = final["few_clusters"]
    analysis = (
        f"The analysis accounts for clustering by {k['control'] + k['intervention']} randomised "
        "clusters. "
        + ("With fewer than " f"{final['few_clusters_threshold']} clusters per arm, the mixed "
           "model uses a small-sample correction (Kenward-Roger degrees of freedom, or "
           "Satterthwaite), or a variance-weighted cluster-level analysis is used; uncorrected "
           "mixed models and GEE inflate the type I error with so few clusters (Leyrat et al. "
           "2018)." if few else
           "Degrees of freedom are based on the number of clusters (between-within)."))
    randomisation = (
        "Clusters are randomised as a whole"
        + (". With few clusters, simple randomisation can leave the arms imbalanced in cluster "
           "size and baseline characteristics, so restricted randomisation (covariate-constrained "
           "randomisation or minimisation on cluster size and region) will be used, with the "
           "constraints and the number of acceptable allocations reported." if few else ".")
    )
    rec = plan.get("recruitment") or {}
    pc = rec.get("per_cluster")
    recruitment = None
    if pc:
        recruitment = (
            f"Each of the {pc['clusters']} clusters recruits {_g(pc['per_cluster_target'])} "
            f"participants at its own rate from its opening, taking about "
            f"{pc['months_to_fill_one']:.1f} months; clusters open "
            f"{rec['site_opening_interval_months']:g} month(s) apart, so the last opens at month "
            f"{pc['last_opening_month']:g} and recruitment ends after about "
            f"{rec['months_to_target']:.1f} months.")
    return {"analysis": analysis, "randomisation": randomisation, "recruitment": recruitment,
            "allocation_before_recruitment": cl.allocation_before_recruitment,
            "clusters_per_arm": k, "few": few}


def _statistics(trial, plan) -> dict:
    a = trial.model.assumptions
    cl = a.clustering
    primary = trial.primary_outcome()

    def model_for(kind, clustered):
        family = {"binary": "logistic", "continuous": "linear",
                  "time-to-event": "Cox proportional hazards", "count": "negative binomial"}[kind]
        if clustered == "partial":
            if kind == "time-to-event":
                return ("a Cox proportional hazards model with a shared frailty for peer worker "
                        "in the intervention arm only")
            residual = (", and arm-specific residual variances" if kind == "continuous" else "")
            return (f"a {family} mixed model for the partially nested design: a random "
                    "intercept for peer worker in the intervention arm only, each control "
                    f"participant forming a singleton cluster without a random effect{residual} "
                    "(the heteroscedastic partially nested model, which controls type I error "
                    "best; Candlish et al. 2018; Baldwin et al. 2011)")
        if clustered == "cluster":
            return f"a {family} mixed model with a random intercept for cluster"
        return f"{'a' if family[0] not in 'aeiou' else 'an'} {family} regression model"

    metric = {"binary": "odds ratio (and the risk difference by marginal standardisation)",
              "continuous": "adjusted difference in means",
              "time-to-event": "hazard ratio", "count": "rate ratio"}[primary.type]
    primary_text = (
        f"The primary outcome, {primary.label.lower()}, will be compared between arms with "
        f"{model_for(primary.type, cl.kind)}, adjusted for the baseline value where measured "
        f"and for any stratification factors. The effect will be reported as the {metric}, "
        f"with a {100 * (1 - (a.alpha or 0.05)):.0f}% confidence interval and a two-sided p "
        "value.")
    secondary = []
    for o in trial.change_model.outcomes:
        if o.role == "primary":
            continue
        secondary.append(f"{o.label}: {model_for(o.type, cl.kind)}, adjusted for baseline.")
    test = a.mediation_test
    interval = {"joint": "the joint significance test of the two paths, with a Monte Carlo "
                         "confidence interval for the product",
                "sobel": "the Sobel test", "aroian": "the Aroian test",
                "vsm": "the test of the mediator coefficient",
                "mc": "a Monte Carlo confidence interval (Preacher and Selig 2012)",
                "bootstrap": "a percentile bootstrap confidence interval",
                "bc-bootstrap": "a bias-corrected bootstrap confidence interval"}[test]
    mediation = (
        "Each mechanism in the programme theory will be tested as an indirect effect. The "
        "process variable is regressed on allocation (path a) and the outcome on the process "
        "variable and allocation (path b), both adjusted for baseline values"
        + (" and with the peer-worker random effects of the primary analysis"
           if cl.kind == "partial" else "")
        + f"; the indirect effect ab is tested by {interval}. Process variables are measured "
        "before the outcomes they are hypothesised to change. Because the process variable is "
        "not randomised, the mediator-outcome relation may be confounded: baseline values of "
        "both will be adjusted for, and a sensitivity analysis will report how strong "
        "unmeasured mediator-outcome confounding would need to be to remove the indirect "
        "effect (correlation of the residuals; Imai, Keele and Tingley 2010).")
    missing = (
        "The primary analysis will use all observed outcomes under a missing-at-random "
        "assumption (likelihood-based mixed models, or multiple imputation by chained equations "
        "including allocation, baseline values and predictors of missingness). Sensitivity "
        "analyses will explore departures from missing at random with delta-based "
        "(pattern-mixture) imputation.")
    populations = (
        "The primary analysis follows the intention-to-treat principle: participants are "
        "analysed in the arm to which they were randomised. A complier average causal effect "
        "analysis will estimate the effect among participants who engage with peer support.")
    additional = [
        "Sensitivity of the primary result to the intraclass correlation model and to "
        "missing data, as above." if cl.kind != "none" else
        "Sensitivity of the primary result to missing data, as above.",
        "Pre-specified subgroup analyses, if any, with tests of interaction.",
    ]
    return {"primary": primary_text, "secondary": secondary, "mediation": mediation,
            "missing": missing, "populations": populations, "additional": additional,
            "software": f"trialplan {__version__} for the sample size; analyses in a "
                        "validated statistical package (to be named in the SAP)."}


def build_context(trial, plan: dict, *, figures: dict | None = None) -> dict:
    """Everything the templates may use, as plain data (see docs/templates.md)."""
    m = trial.model
    t = m.trial
    change_model = _change_model(trial, plan)
    design = {"parallel": "individually randomised, parallel-group trial",
              "cluster": "cluster-randomised, parallel-group trial"}[t.design]
    design_note = None
    if m.assumptions.clustering.kind == "partial":
        design_note = ("Peer workers deliver the intervention, so participants in the "
                       "intervention arm are clustered by peer worker (a partially nested "
                       "design); the control arm is not clustered.")
    ratio = f"{_g(t.allocation_ratio)}:1" if t.allocation_ratio != 1 else "1:1"
    protocol = m.protocol.model_dump()
    tidier = [{"number": n, "name": name, "value": getattr(m.intervention, field)}
              for n, name, field in TIDIER]
    return {
        "todo_mark": TODO,
        "tool": {"name": "trialplan", "version": __version__},
        "trial": {"title": t.title, "acronym": t.acronym, "population": t.population,
                  "setting": t.setting, "comparator": t.comparator, "design": design,
                  "design_note": design_note,
                  "design_article": "an" if design[0] in "aeiou" else "a",
                  "framework": t.framework, "allocation_ratio": ratio,
                  "registration": t.registration, "sponsor": t.sponsor, "funder": t.funder,
                  "contacts": list(t.contacts), "ppi": t.patient_public_involvement},
        "protocol": protocol,
        "intervention": {"brief_name": m.intervention.brief_name, "tidier": tidier},
        "change_model": change_model,
        "objectives": _objectives(trial, plan, change_model),
        "outcomes_table": _outcomes_table(trial),
        "schedule": _schedule(trial),
        "sample_size": _sample_size(trial, plan),
        "statistics": _statistics(trial, plan),
        "cluster_design": _cluster_design(trial, plan),
        "design_summary": _design_summary(plan),
        "plan": plan,
        "figures": {k: (figures or {}).get(k) for k in FIGURE_KEYS},
        "spirit": [{"id": i, "title": title} for i, title in SPIRIT_2025],
    }
