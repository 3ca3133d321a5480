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
from trialplan.numfmt import count as _n
from trialplan.numfmt import percent as _pct
from trialplan.planning.analysis import analysis_specs, cace_spec, mentions_time, short_label
from trialplan.planning.mediation_text import mediation_paragraphs
from trialplan.planning.uncertainty_context import uncertainty_context
from trialplan.stats import teerenstra_correlation

TODO = "[TO COMPLETE:"
FIGURE_KEYS = ("change_model", "primary_power", "mechanism_power", "recruitment",
               "participant_flow", "timeline", "progression", "assurance")

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


SENSITIVITY_LABELS = {
    "icc": "Intraclass correlation", "attrition": "Loss to follow-up",
    "control_rate": "Control-arm event rate", "intervention_rate": "Intervention-arm event rate",
    "d": "Standardised difference", "hazard_ratio": "Hazard ratio", "rate_ratio": "Rate ratio",
    "cluster_size": "Cluster size (caseload)",
}


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
            "process": [{"id": p.id, "arms": p.arms,
                         "label": p.label + (" (intervention arm only)"
                                             if p.arms == "intervention" else ""),
                         "instrument": _instrument(trial, p.measure),
                         "timepoints": [labels[t] for t in p.timepoints],
                         "when": when_phrase(trial, p.timepoints)} for p in process],
            "outcomes": [{"id": o.id, "label": o.label, "role": o.role,
                          "direction": _direction(trial, o)} for o in outcomes],
            "paths": paths,
        })
    sources = sorted({m.source for m in trial.change_model.mechanisms if m.source})
    return {"mechanisms": mechanisms, "sources": sources}


def when_phrase(trial, ids) -> str:
    """Time points in words: '4 and 12 months after discharge', 'baseline and 6 months'."""
    labels = _timepoint_labels(trial)
    parts = [short_label(labels[t]) for t in ids]
    heads, tails = [], set()
    for part in parts:
        head, _, tail = part.partition(" ")
        if not head.replace(".", "", 1).isdigit() or not tail:
            return _join(parts)
        heads.append(head)
        tails.add(tail)
    if len(tails) == 1 and len(parts) > 1:
        return f"{_join(heads)} {tails.pop()}"
    return _join(parts)


def _follow_ups(trial, var) -> list:
    months = trial.timepoint_months()
    return sorted((t for t in var.timepoints if months[t] > 0), key=lambda t: months[t]) or \
        list(var.timepoints)


def _direction(trial, var) -> str:
    """'reduce' for outcomes where more is worse (readmission), otherwise 'improve'."""
    m = trial.measures.get(var.measure) or {}
    return "reduce" if m.get("direction") == "higher is worse" else "improve"


def _strategy_default(strategy: str) -> str:
    return {
        "treatment policy": "the outcome is recorded and analysed whatever happens after the "
                            "event, as randomised",
        "composite": "the event is part of the variable: it counts as an unfavourable outcome",
        "while on treatment": "the outcome is taken only up to the event",
        "hypothetical": "outcomes after the event are treated as missing and imputed under the "
                        "hypothetical scenario that it did not occur",
        "principal stratum": "the effect is estimated in the stratum defined by the event, by the "
                             "complier average causal effect analysis",
    }[strategy]


def _estimands(trial, specs) -> list[dict]:
    out = []
    for s in specs:
        e = s.estimand
        events = [{"event": ev.event, "strategy": ev.strategy,
                   "handling": _cap(ev.handling or _strategy_default(ev.strategy)).rstrip(".")
                   + "."}
                  for ev in e.intercurrent_events]
        out.append({"outcome": s.label, "outcome_id": s.outcome_id, "role": s.role,
                    "population": e.population, "treatment": e.treatment,
                    "variable": e.variable, "timepoint": e.timepoint_label,
                    "summary": _cap(e.summary), "events": events, "from_file": e.from_file})
    return out


def _objectives(trial, plan, change_model, specs=None) -> dict:
    cm = trial.change_model
    primary = trial.primary_outcome()
    comp = trial.model.trial.comparator.rstrip(".").lower()
    name = (trial.model.intervention.brief_name or "the intervention").lower()
    by_id = {s.outcome_id: s for s in specs or ()}

    def aim(o) -> str:
        spec = by_id.get(o.id)
        text = o.label[:1].lower() + o.label[1:]
        if spec and not (o.type == "binary" and mentions_time(o.label)):
            text += f" at {short_label(spec.timepoint_label)}"
        return text

    primary_text = (f"To estimate the effect of {name}, offered in addition to {comp}, compared "
                    f"with {comp} alone, on {aim(primary)}.")
    secondary = []
    for o in cm.outcomes:
        if o.role != "secondary":
            continue
        follow = _follow_ups(trial, o)
        spec = by_id.get(o.id)
        text = aim(o)
        if spec and len(follow) > 1:
            others = [t for t in follow if t != spec.timepoint_id]
            text += f" (also analysed at {when_phrase(trial, others)})"
        secondary.append(text)
    hypotheses = []
    nodes = trial.nodes()
    for mech in change_model["mechanisms"]:
        if not mech["process"] or not mech["outcomes"]:
            continue
        changed = [p for p in mech["process"] if p["arms"] == "both"]
        only = [p for p in mech["process"] if p["arms"] == "intervention"]
        verbs: dict = {}
        for o in mech["outcomes"]:
            verbs.setdefault(_direction(trial, nodes[o["id"]][1]), []).append(
                o["label"][:1].lower() + o["label"][1:])
        effects = _join(f"{v} {_join(labels)}" for v, labels in sorted(verbs.items()))
        text = f"{mech['label']}: "
        if changed:
            # "Improve" where higher scores are better; otherwise the label may name either
            # pole (loneliness, or engagement scored by the SES where higher is worse), so
            # the neutral "change".
            moved: dict = {}
            for p in changed:
                m = trial.measures.get(nodes[p["id"]][1].measure) or {}
                verb = "improve" if m.get("direction") == "higher is better" else "change"
                moved.setdefault(verb, []).append(p["label"].lower())
            text += (f"the intervention is expected to "
                     f"{_join(f'{v} {_join(ls)}' for v, ls in sorted(moved.items()))}, and "
                     f"through {'them' if len(changed) > 1 else 'it'} to {effects}")
        if only:
            names = _join(p["label"].lower() for p in only)
            text += ("; " if changed else "") + (
                f"{names} {'are' if len(only) > 1 else 'is'} examined as engagement with the "
                f"intervention, not as {'mediators' if len(only) > 1 else 'a mediator'}")
        hypotheses.append(text + ".")
    return {"primary": primary_text, "secondary": secondary, "mechanisms": hypotheses,
            "harms": "To describe adverse events and serious adverse events, including "
                     "self-harm and suicide, in both arms, and harms of peer support to "
                     "participants and to peer workers.",
            "primary_outcome": aim(primary)[:1].upper() + aim(primary)[1:],
            "secondary_outcomes": [t[:1].upper() + t[1:] for t in secondary]}


_METRIC = {
    "binary": ("whether the event occurs (yes/no)", "proportion with the event in each arm"),
    "continuous": ("score", "mean in each arm"),
    "time-to-event": ("time to the event", "Kaplan-Meier estimate by arm"),
    "count": ("number of events per participant", "rate per person-year in each arm"),
}


def _outcomes_table(trial, specs=None) -> list[dict]:
    by_id = {s.outcome_id: s for s in specs or ()}
    rows = []
    for o in trial.change_model.outcomes:
        inst = _instrument(trial, o.measure)
        metric, agg = _METRIC[o.type]
        spec = by_id.get(o.id)
        if spec is not None:
            if spec.baseline_adjusted:
                metric += ", adjusted for its baseline value"
            agg = f"{agg}; {_lc(spec.summary_measure)}"
        rows.append({"variable": o.label, "role": o.role, "type": o.type,
                     "instrument": inst, "metric": metric, "aggregation": agg,
                     "timepoints": [short_label(_timepoint_labels(trial)[t])
                                    for t in o.timepoints],
                     "estimand_time": short_label(spec.timepoint_label) if spec else None})
    for p in trial.change_model.process_variables:
        inst = _instrument(trial, p.measure)
        only = p.arms == "intervention"
        rows.append({"variable": p.label,
                     "role": "process (intervention arm only)" if only else "process (mediator)",
                     "type": p.type, "instrument": inst, "metric": "score",
                     "aggregation": ("mean in the intervention arm; dose or engagement "
                                     "(complier-average causal effect) and moderator analyses"
                                     if only else
                                     "mean in each arm; difference between arms (path a)"),
                     "timepoints": [short_label(_timepoint_labels(trial)[t])
                                    for t in p.timepoints],
                     "estimand_time": None})
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
    elif out_type == "count":
        pa = a.primary
        spread = (f"a negative binomial distribution with dispersion {_g(pa.dispersion)}"
                  if pa.dispersion else "a Poisson distribution")
        parts.append(
            f"The sample size is calculated for the primary outcome, {p['label'].lower()}. We "
            f"assume {_g(pa.rate)} events per unit of exposure in the control arm"
            f"{_cite(src, 'rate')}, {_g(pa.exposure)} units of exposure per participant and "
            f"{spread}, to detect a rate ratio of {_g(pa.rate_ratio)}"
            f"{_cite(src, 'rate_ratio')}.")
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
            mech.append(f"The power to detect the mechanism {m['mechanism_label'].lower()} "
                        f"(through {m['mediator_label'].lower()} to "
                        f"{m['outcome_label'].lower()}) was not calculated: {m['reason']}.")
            continue
        clusters = m.get("planned_clusters")
        need = (f"{_n(m['clusters_needed'])} clusters would be needed" if clusters else
                f"{_n(m['n_needed_analysed'])} analysed would be needed")
        verdict = ("so the trial can expect to detect it" if m["detectable"] else
                   f"below the {_pct(m['target_power'])} target: the trial cannot expect to "
                   f"detect it ({need})")
        unequal = " (harmonic mean) analysed" if plan["final"].get("cluster_cv") else ""
        at = (f"{_n(clusters)} clusters of {m['arguments']['cluster_size']:.3g}{unequal} "
              f"({m['design']} multilevel mediation)" if clusters else
              f"{_n(m['planned_n'])} participants analysed")
        where = (f" ({m['outcome_label'].lower()} from month {_g(m['landmark']['from_month'])} "
                 f"to month {_g(m['landmark']['to_month'])} among those without the event by "
                 f"month {_g(m['landmark']['from_month'])}, with {_pct(m['attrition'])} lost; "
                 f"the b path's variance uses the overall event rate of "
                 f"{m['outcome_rate']:.3f} at the planned effect [@hsieh1998])"
                 if m.get("landmark") else
                 f" (complete cases on both, {_pct(m['attrition'])} lost)")
        share = ""
        if m.get("proportion_mediated") is not None:
            share = (f" The paths imply an indirect effect of {m['indirect_effect']:.3g}, "
                     f"{_pct(m['proportion_mediated'])} of the total effect assumed for this "
                     "outcome.")
        mech.append(
            f"For the mechanism {m['mechanism_label'].lower()}, the indirect effect of the "
            f"intervention on {m['outcome_label'].lower()} through "
            f"{m['mediator_label'].lower()} (paths a = {_g(m['a'])}, b = {_g(m['b'])}; "
            f"{m['source'] or 'source to be given'}) would be detected by the {m['test']} test "
            f"with probability {m['power_at_planned_n']:.3f} with {at}{where}, {verdict}."
            f"{share}")
    for g in plan.get("parallel_mechanisms", []):
        if g["status"] != "computed":
            continue
        t = g["total_indirect"]
        mech.append(
            f"Analysed together as parallel mediators (residual correlation "
            f"{_g(g['correlation'])} assumed), {_join(x.lower() for x in g['mediator_labels'])} "
            f"carry a total indirect effect of {t['estimate']:.3g} of the mechanism "
            f"{g['mechanism_label'].lower()} on {g['outcome_label'].lower()}, which would be "
            f"detected with probability {t['power']:.3f} with {_n(g['planned_n'])} participants "
            f"analysed; the probability of detecting every specific indirect effect is "
            f"{g['power_all']:.3f}"
            + (", allowing for the clustering by peer worker of each path." if "cluster_size"
               in g.get("arguments", {}) else "."))
    nested = [m for m in plan["mechanisms"] if m.get("status") == "computed"
              and m.get("design") == "partially nested"]
    if nested:
        within = nested[0]["arguments"]["control_variance"] == "within"
        mech.append(
            "Under the partially nested design the paths a and b are in standard deviations "
            "of the control arm, whose variance is taken to be "
            + ("the within-caseload variance, so that peer workers add variance in the "
               "intervention arm (the convention of PowerUpR)" if within else
               "the intervention arm's total variance")
            + "; each path has its own intraclass correlations by peer worker, the outcome's "
            "being that of its residual given the process variable.")
    plain = [m["mediator_label"].lower() for m in plan["mechanisms"]
             if m.get("status") == "computed"
             and not (m["covariate_r2"]["r2_m"] or m["covariate_r2"]["r2_y"])]
    if plain:
        mech.append(
            "These powers assume that adjustment for baseline values explains none of the "
            "variance of the process variable and the outcome (for the mechanism"
            f"{'s' if len(set(plain)) > 1 else ''} through {_join(dict.fromkeys(plain))}), "
            "so they are conservative where baseline values "
            "predict the follow-up values.")
    if any(m.get("status") == "computed" for m in plan["mechanisms"]):
        mech.append(
            "The powers are those of the indirect effect without an exposure-mediator "
            "interaction; the analysis estimates that interaction so that the natural effects "
            "allow for it, and an interaction in the data can move the power either way.")
    return {"paragraph": " ".join(parts), "mechanisms": mech, "command": p["command"],
            "mechanism_commands": [m["command"] for m in plan["mechanisms"]
                                   if m.get("status") == "computed"]
            + [g["command"] for g in plan.get("parallel_mechanisms", [])
               if g["status"] == "computed"],
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
            + " [@frison1992].")
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
            "[@eldridge2006].")
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
                + f", multiplies the design effect by 1 - r^2 = {1 - rr * rr:.3g} "
                "[@teerenstra2012].")
        if final["few_clusters"]:
            out.append(
                f"With fewer than {final['few_clusters_threshold']} clusters per arm, critical "
                "values come from the t distribution on the number of clusters minus 2 degrees "
                "of freedom, and the analysis uses a small-sample correction [@leyrat2018].")
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
           "mixed models and GEE inflate the type I error with so few clusters "
           "[@leyrat2018]." if few else
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
            f"{rec['site_opening_interval_months']:g} "
            f"month{'' if rec['site_opening_interval_months'] == 1 else 's'} apart, so the last "
            "opens at month "
            f"{pc['last_opening_month']:g} and recruitment ends after about "
            f"{rec['months_to_target']:.1f} months.")
    return {"analysis": analysis, "randomisation": randomisation, "recruitment": recruitment,
            "allocation_before_recruitment": cl.allocation_before_recruitment,
            "clusters_per_arm": k, "few": few}


def _covariates_text(trial, baseline: bool, where_measured: bool = False) -> str:
    an = trial.model.analysis
    parts = []
    if an.stratification_factors:
        n = len(an.stratification_factors)
        parts.append(f"{_join(an.stratification_factors)} (the stratification "
                     f"factor{'s' if n > 1 else ''} of the randomisation)")
    else:
        parts.append("the stratification factors of the randomisation "
                     + _todo("list them in the analysis section of the trial file"))
    if baseline:
        parts.append("the baseline value of the outcome"
                     + (" where it is measured" if where_measured else ""))
    parts += [c for c in an.covariates if c not in an.stratification_factors]
    return _join(parts)


_CONDITIONAL = {
    "binary": "an odds ratio from an adjusted or random-effects logistic model is conditional "
              "(on the covariates and, in a mixed model, on the cluster), not marginal, so",
    "time-to-event": "an adjusted hazard ratio is conditional on the covariates, so",
}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lc(text: str) -> str:
    """Lower-case the first letter unless the first word is an acronym (QPR-15, ICC)."""
    first = text.split(" ", 1)[0]
    return text if first[1:2].isupper() or first[1:2].isdigit() else text[:1].lower() + text[1:]


def _analysis_items(trial, spec, alpha) -> list[dict]:
    """The analysis of one estimand as labelled statements (rendered as a list)."""
    e = spec.estimand
    items = [("Estimand", f"the {_lc(spec.summary_measure)}, as defined in this outcome's "
              "estimand"),
             ("Model", spec.model_text),
             ("Clustering and time", spec.clustering_handling),
             ("Covariates", _covariates_text(trial, spec.baseline_adjusted))]
    if spec.marginal_method:
        lead = _CONDITIONAL.get(spec.outcome_type)
        items.append(("Marginal summary", f"{lead} {spec.marginal_method}" if lead else
                      spec.marginal_method))
    elif spec.outcome_type == "continuous":
        items.append(("Marginal summary", "a difference in means is collapsible, so the "
                      "adjusted coefficient estimates the marginal difference"))
    items.append(("Inference", f"{spec.small_sample}; {100 * (1 - alpha):.0f}% confidence "
                  "interval and two-sided p value"))
    if e.intercurrent_events:
        items.append(("Intercurrent events", "; ".join(
            f"{_lc(ev.event.rstrip('.'))}: {ev.strategy}" for ev in e.intercurrent_events)))
    else:
        items.append(("Intercurrent events", _todo(
            "intercurrent events and their strategies: add an estimand for this outcome to the "
            "trial file")))
    items.append(("Sensitivity analyses", _join(spec.sensitivity)))
    items.append(("Assumption checks", spec.assumption_checks))
    items.append(("Software", spec.software))
    return [{"label": k, "text": _cap(v).rstrip(".") + ("" if v.endswith("]**") else ".")}
            for k, v in items]


def _cace_paragraph(trial, cace) -> str:
    name = (trial.model.intervention.brief_name or "the intervention").lower()
    if cace.compliance:
        how = f"compliance is defined as: {cace.compliance.rstrip('.')}"
        if cace.compliance_source:
            how += f" ({cace.compliance_source})"
    else:
        how = "compliance is defined as " + _todo(
            "compliance definition, the same as the pilot's adherence criterion")
    return (
        "A supplementary estimand addresses non-adherence with the principal stratum "
        f"strategy: the complier average causal effect (CACE), the effect of {name} among "
        f"participants who would comply with it if offered it; {how}. It is estimated by "
        f"{cace.estimator}; {cace.clustering} are used. The estimator assumes that allocation "
        "affects the outcome only through the peer support received (exclusion restriction) and "
        "that no one would comply only if allocated to control (monotonicity); peer support "
        "received in the control arm is recorded so that the estimator allows for it. "
        f"Software: {cace.software}.")


def _harms_analysis(trial) -> str:
    return (
        "Harms are analysed in all randomised participants, by arm as allocated: the number "
        "and percentage of participants with at least one adverse event and with at least one "
        "serious adverse event, overall and by type of event; the number of events and the "
        "event rate per 100 person-years of follow-up. Self-harm, suicide attempts and deaths "
        "(with deaths by suicide shown separately) are each summarised by the number of "
        "participants and events in each arm, and every serious adverse event and death is "
        "listed with its timing and its judged relation to the intervention. No formal "
        "statistical test of harms is planned; differences are described with confidence "
        "intervals only. Harms of peer support to peer workers are reported in the process "
        "evaluation.")


def _statistics(trial, plan, specs=None) -> dict:
    a = trial.model.assumptions
    an = trial.model.analysis
    cl = a.clustering
    alpha = a.alpha or 0.05
    specs = specs if specs is not None else analysis_specs(trial, plan)
    analyses = [{"outcome": s.label, "role": s.role, "parts": _analysis_items(trial, s, alpha),
                 "software": s.software} for s in specs]
    mediation = "\n\n".join(mediation_paragraphs(trial, plan, TODO))
    unit = {"partial": "peer worker", "cluster": "cluster"}.get(cl.kind)
    clustered_mi = (
        f" Imputation is done separately in each arm, so that the arms may differ in variance "
        f"and clustering, with {unit} as a random effect in the imputation model"
        f"{' of the intervention arm' if cl.kind == 'partial' else ''} (multilevel "
        "imputation, R package jomo)." if unit else "")
    missing = (
        "Outcomes are analysed under a missing-at-random assumption given the covariates of "
        "the analysis model. Where only outcomes are missing, the likelihood-based models use "
        "every observed value. Where covariates or several outcomes are missing, multiple "
        "imputation by chained equations is used, with allocation, every variable of the "
        "analysis model and baseline predictors of missingness in the imputation model, at "
        "least as many imputations as the percentage of incomplete cases, and Rubin's rules "
        f"to combine the results.{clustered_mi} Sensitivity analyses explore departures from "
        "missing at random by delta-based (pattern-mixture) imputation, shifting the imputed "
        "outcomes in each arm in turn by clinically plausible amounts. Events that define a "
        "composite or while-on-treatment strategy (such as death) are part of the estimand, "
        "not missing data.")
    cace = cace_spec(trial, plan)
    populations = (
        "The main estimands use the treatment policy strategy for adherence, so the analysis "
        "follows the intention-to-treat principle: every randomised participant is analysed "
        "in the arm to which they were allocated, whether or not they met a peer worker.")
    multiplicity = (
        (f"There are {a.primary.co_primary} co-primary outcomes, each tested at a two-sided "
         f"level of {_g(alpha / a.primary.co_primary)} (Bonferroni)."
         if a.primary and a.primary.co_primary > 1 else
         f"There is one primary outcome, tested at a two-sided level of {_g(alpha)}.")
        + " Secondary outcomes and the mechanism (mediation) analyses are not adjusted for "
        "multiplicity: they are reported as estimates with confidence intervals, interpreted "
        "as supporting the primary result, with the number of comparisons stated.")
    if an.subgroups:
        subgroups = (
            f"Pre-specified subgroup analyses: {_join(an.subgroups)}. Each is an "
            "arm-by-subgroup interaction in the primary analysis model, reported with its "
            "confidence interval and interpreted with caution, since the trial is not powered "
            "for interactions.")
    else:
        subgroups = ("No subgroup analyses are pre-specified; any subgroup analysis reported "
                     "will be labelled exploratory.")
    additional = [f"{s.label}: {_join(s.sensitivity)}." for s in specs]
    additional.append("Missing data: delta-based sensitivity analyses, as under item 27c.")
    additional.append(subgroups)
    if cl.kind != "none":
        additional.append(f"The intraclass correlation by {unit} will be reported with its "
                          "confidence interval for each outcome, to inform future trials.")
    visit_windows = an.visit_windows
    software = [f"Sample size: trialplan {__version__}."]
    by_software: dict = {}
    for s in specs:
        by_software.setdefault(s.software, []).append(s.label)
    for name, labels in by_software.items():
        software.append(f"{_cap(_join([labels[0]] + [x[:1].lower() + x[1:] for x in labels[1:]]))}"
                        f": {name}.")
    software.append(f"Complier average causal effect: {cace.software}.")
    software.append("The versions of the software and packages used are recorded in the "
                    "statistical report.")
    covariates = (
        f"Every analysis adjusts for {_covariates_text(trial, True, where_measured=True)}. "
        "Covariates are fixed before unblinding; continuous covariates enter linearly unless "
        "a pre-specified transformation is given.")
    adherence = None
    if cace.compliance:
        adherence = ("Adherence is summarised by arm as the number of contacts with a peer "
                     "worker and the share of the intervention arm who met the compliance "
                     f"definition ({cace.compliance.rstrip('.')}).")
    return {"analyses": analyses, "adherence": adherence,
            "mediation": mediation, "missing": missing,
            "populations": populations, "cace": _cace_paragraph(trial, cace),
            "additional": additional, "multiplicity": multiplicity, "subgroups": subgroups,
            "visit_windows": visit_windows, "harms": _harms_analysis(trial),
            "covariates": covariates, "software": software,
            "assumption_checks": [f"{s.label}: {s.assumption_checks}." for s in specs]}


# WHO Trial Registration Data Set, version 1.3.1: its 24 items, in order.
WHO_TRDS = (
    "Primary registry and trial identifying number", "Date of registration in primary registry",
    "Secondary identifying numbers", "Source(s) of monetary or material support",
    "Primary sponsor", "Secondary sponsor(s)", "Contact for public queries",
    "Contact for scientific queries", "Public title", "Scientific title",
    "Countries of recruitment", "Health condition(s) or problem(s) studied", "Intervention(s)",
    "Key inclusion and exclusion criteria", "Study type", "Date of first enrolment",
    "Sample size", "Recruitment status", "Primary outcome(s)", "Key secondary outcomes",
    "Ethics review", "Completion date", "Summary results", "IPD sharing statement",
)


def _todo(need: str) -> str:
    return f"**{TODO} {need}]**"


def _who(trial, plan, objectives, title_sentence) -> list[dict]:
    m = trial.model
    t, p = m.trial, m.protocol
    contacts = "; ".join(t.contacts) or None
    criteria = []
    if p.inclusion:
        criteria.append("Inclusion: " + "; ".join(c.rstrip(".") for c in p.inclusion) + ".")
    if p.exclusion:
        criteria.append("Exclusion: " + "; ".join(c.rstrip(".") for c in p.exclusion) + ".")
    name = m.intervention.brief_name
    entries = [
        t.registration or _todo("registry name and number"),
        _todo("date of registration"),
        _todo("sponsor's protocol number, funder's reference and other identifiers, or none"),
        t.funder or _todo("funder"), t.sponsor or _todo("sponsor"),
        _todo("secondary sponsors, or none"),
        contacts or _todo("contact for public queries"),
        contacts or _todo("contact for scientific queries"),
        t.title, title_sentence, t.setting, t.population,
        (f"{name}; comparator: {t.comparator.lower()}" if name else
         _todo("intervention")),
        " ".join(criteria) or _todo("inclusion and exclusion criteria"),
        (f"Interventional; {m_design(t)}; allocation {_ratio(t)}; {t.framework}; masking: "
         + (p.blinded.split(".")[0].lower() if p.blinded else _todo("who is masked"))),
        _todo("anticipated date of first enrolment"),
        f"{plan['final']['n_to_recruit']:,} participants",
        "Pending (not yet recruiting)",
        objectives["primary_outcome"],
        "; ".join(objectives["secondary_outcomes"]) or "None",
        p.ethics or _todo("ethics committee, approval status and date"),
        _todo("anticipated completion date"),
        "None yet (to be added when the trial is complete)",
        p.data_sharing or _todo("plan for sharing individual participant data"),
    ]
    return [{"number": i + 1, "item": item, "entry": entry}
            for i, (item, entry) in enumerate(zip(WHO_TRDS, entries, strict=True))]


def m_design(t) -> str:
    return {"parallel": "individually randomised, parallel-group",
            "cluster": "cluster-randomised, parallel-group"}[t.design]


def _ratio(t) -> str:
    return f"{_g(t.allocation_ratio)}:1" if t.allocation_ratio != 1 else "1:1"


TIDIER_PLANS = {
    "modifications": (
        "No modifications are planned. Any change made during the trial (to the manual, "
        "training, supervision, schedule or who delivers the intervention) will be recorded in "
        "a modification log with its date, reason and the sites affected, and reported with the "
        "results."),
    "how_well_actual": (
        "To be recorded during the trial and reported with the results: fidelity scores for "
        "each peer worker, contacts delivered to each participant (from contact logs) and the "
        "share of the intervention arm who met the compliance definition (see the process "
        "evaluation plan)."),
}

# Domains of the principles-based fidelity index (Gillard et al., Soc Psychiatry Psychiatr
# Epidemiol 2021) and the Gillard 2015 mechanism each bears on most directly: our proposal,
# matched to the trial's mechanisms by words in their labels.
FIDELITY_DOMAINS = (
    ("Building trusting relationships based on shared lived experience", ("trust", "relation")),
    ("Reciprocity and mutuality", ("trust", "relation")),
    ("Leadership, choice and control", ("role",)),
    ("Building strengths and making connections to community", ("role", "engag", "communit")),
)


def _process_evaluation(trial, plan, change_model, cace) -> dict:
    m = trial.model
    cl = m.assumptions.clustering.kind
    unit = "peer worker" if cl != "cluster" else "cluster"
    name = (m.intervention.brief_name or "the intervention").lower()
    domains = []
    for domain, words in FIDELITY_DOMAINS:
        mechs = [mech for mech in change_model["mechanisms"]
                 if any(w in (mech["id"] + " " + mech["label"]).lower() for w in words)]
        domains.append({
            "domain": domain,
            "mechanisms": "; ".join(mech["label"] for mech in mechs) or
            "no mechanism of this change model",
            "process": _join(sorted({v["label"].lower() for mech in mechs
                                     for v in mech["process"]})) or "none"})
    months = trial.timepoint_months()
    asked = sorted({t for v in trial.change_model.process_variables for t in v.timepoints},
                   key=lambda t: months[t])
    fidelity = m.intervention.how_well_planned
    return {
        "compliance": cace.compliance.rstrip(".") if cace.compliance else None,
        "fidelity_sentence": (None if not fidelity else fidelity if
                              fidelity.lower().startswith("fidelity") else
                              f"Fidelity: {fidelity}"),
        "questionnaire_times": when_phrase(trial, asked) if asked else "none",
        "fidelity_measure": m.intervention.how_well_planned or _todo("fidelity measure"),
        "fidelity_source": m.protocol.fidelity_source or (
            "Interviews with each peer worker, their supervisor and a sample of the "
            "participants they support, rated on the fidelity index by two raters "
            "independently, as in the index's development"),
        "fidelity_timing": m.protocol.fidelity_timing or (
            "Twice for each peer worker: about three months after they start supporting trial "
            "participants, and again near the end of delivery"),
        "domains": domains,
        "fidelity_moderator": (
            f"Each peer worker's mean fidelity score is a {unit.replace(' ', '-')}-level "
            "moderator: an "
            "exploratory analysis adds the centred score and its interaction with allocation to "
            "the primary analysis model, asking whether outcomes in the intervention arm vary "
            "with the fidelity of the peer support received. Fidelity is not randomised, so "
            "this analysis is observational and reported as such."),
        "reach": (
            "Reach is the share of the intervention arm who met a peer worker at least once "
            "(from contact logs), and how those reached differ from those not reached in "
            "baseline characteristics (age, gender, ethnicity, diagnosis, previous admissions "
            "and baseline scores), described without significance tests. Recruitment and the "
            "representativeness of those randomised are reported in the CONSORT flow diagram."),
        "dose": (
            "Dose is taken from the peer workers' contact logs: the number, length and mode of "
            "contacts with each participant. The relation between "
            "dose and outcome is estimated by instrumental variables with randomisation as the "
            "instrument, as for the complier average causal effect, "
            "assuming an effect proportional to the number of contacts; a per-protocol "
            "comparison of those who received more support with those who received less is not "
            "used, since dose received depends on prognosis."),
        "adaptations": (
            (m.intervention.tailoring + "; " if m.intervention.tailoring else "")
            + "modifications are recorded in the modification log (TIDieR 10)"),
        "context": m.protocol.context or (
            "Context is measured at each site with a structured site profile completed at the "
            "start and end of delivery (ward and team culture and readiness for peer workers, "
            "discharge pathways and community services, supervision arrangements, clarity of "
            "the peer worker role, staffing and turnover), and explored in interviews with staff "
            "and managers."),
        "usual_care": (
            "Usual care is described at each site from the site profile and from participants' "
            "service use. Contamination is recorded: control participants are asked at each "
            "follow-up whether they received peer support, and peer workers record any contact "
            "with control participants; staff exposure to peer workers on shared wards is noted "
            "in the site profile."),
        "harms": (
            "Unexpected pathways and harms of peer support are looked for in both directions: "
            "for participants (for example dependence on the peer worker, distress when support "
            "ends, disclosure that unsettles, blurred boundaries) and for peer workers (for "
            "example distress, re-experiencing their own difficulties, role strain or burnout). "
            "They are recorded in supervision records and adverse event reports and explored in "
            "interviews."),
        "sampling": (
            "Interviewees are sampled purposively for variation: participants across sites, "
            "peer workers and dose received (including people who never met or stopped seeing "
            "their peer worker), and across gender, ethnicity and diagnosis; every peer worker "
            "and their supervisor; and staff and managers at each site. The number of interviews "
            "is guided by the information the sample holds for the questions, reviewed as "
            "analysis proceeds."),
        "independence": (
            "The process evaluation is carried out by researchers who do not deliver, supervise "
            "or manage the intervention, including service user researchers; researchers "
            "collecting outcome data stay blind to allocation and do not conduct process "
            "interviews."),
        "integration": (
            "Quantitative process data (fidelity, dose, reach) and qualitative findings are "
            "analysed separately first, then brought together mechanism by mechanism in a joint "
            "display. Qualitative findings generate hypotheses about why effects vary, which are "
            "tested where possible on the quantitative data (for example the fidelity "
            "moderator analysis)."),
        "timing": (
            "We commit to analysing the process data, and writing up the qualitative analysis, "
            "before the trial outcomes are known (before the database is locked and allocation "
            "is revealed to the analysts), so that the outcomes do not shape how the process is "
            "interpreted."),
        "name": name,
    }


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
    tidier = [{"number": n, "name": name,
               "value": getattr(m.intervention, field) or TIDIER_PLANS.get(field)}
              for n, name, field in TIDIER]
    specs = analysis_specs(trial, plan)
    objectives = _objectives(trial, plan, change_model, specs)
    comparing = (f"{t.title}: {'an' if design[0] in 'aeiou' else 'a'} {design} comparing "
                 f"{(m.intervention.brief_name or 'the intervention').lower()} with "
                 f"{t.comparator.lower()} in {t.population[:1].lower()}{t.population[1:]}")
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
        "objectives": objectives,
        "estimands": _estimands(trial, specs),
        "who": _who(trial, plan, objectives, comparing),
        "process": _process_evaluation(trial, plan, change_model, cace_spec(trial, plan)),
        "sensitivity_labels": SENSITIVITY_LABELS,
        "outcomes_table": _outcomes_table(trial, specs),
        "schedule": _schedule(trial),
        "sample_size": _sample_size(trial, plan),
        "statistics": _statistics(trial, plan, specs),
        "uncertainty": uncertainty_context(trial, plan),
        "cluster_design": _cluster_design(trial, plan),
        "design_summary": _design_summary(plan),
        "plan": plan,
        "figures": {k: (figures or {}).get(k) for k in FIGURE_KEYS},
        "spirit": [{"id": i, "title": title} for i, title in SPIRIT_2025],
    }
