"""The whole trial's sample-size plan, from one validated trial file.

:func:`build_plan` returns plain JSON-ready data (documented in docs/plan.md):
the primary outcome's sample size, each mechanism's power and required n,
the final n and what drives it, the recruitment projection and participant
flow, the internal pilot's progression criteria with their precision, a
sensitivity analysis, and provenance.  Everything is deterministic: the same
file and seed give the same data, so ``json.dumps`` of it is byte-identical.
"""

from __future__ import annotations

import math
import platform
from dataclasses import replace
from importlib import metadata
from types import SimpleNamespace

import numpy as np

from trialplan import __version__
from trialplan.choices import ANALYTIC_TESTS, SIMULATED_TESTS
from trialplan.errors import InputError, TrialFileError, UnreachableTargetError
from trialplan.model.loader import Problem
from trialplan.planning.assurance import assurance_section
from trialplan.planning.attrition import attrition_for
from trialplan.planning.calls import Call
from trialplan.planning.feasibility import feasibility_section
from trialplan.stats import _dist as sp
from trialplan.stats.designs import FEW_CLUSTERS_PER_ARM

PLAN_SCHEMA = "trialplan-plan/1"
# The tests that can only be simulated (the joint test has a closed form as well).
_SIMULATED = tuple(t for t in SIMULATED_TESTS if t not in ANALYTIC_TESTS)


# --------------------------------------------------------------------------------------------
# Missing assumptions


def _assurance(trial, primary, mechanisms):
    """The assurance section, or a located error when the drawn values cannot be computed.

    Each distribution is checked where it is read, but a combination of draws
    can still fall outside what a calculation accepts (an ICC of exactly 1
    drawn from a beta with its mass at 0 and 1, say): the error then names the
    distributions, at the first one's line, rather than a calculator argument.
    """
    try:
        return assurance_section(trial, primary, mechanisms)
    except InputError as exc:
        if not trial.priors:
            raise
        specs = sorted(trial.priors.values(), key=lambda s: (
            trial.located.line(s.path) or 0 if trial.located is not None else 0, s.field))
        names = ", ".join(s.field for s in specs)
        raise TrialFileError([_problem(
            trial, specs[0].path, f"the assurance over the distributions given ({names}) "
            f"cannot be computed: {exc}; some drawn values are outside what the calculation "
            "accepts: narrow or truncate the distributions")]) from None


def _problem(trial, path, message) -> Problem:
    if trial.located is not None:
        return trial.located.problem(path, message)
    return Problem(trial.source, None, ".".join(str(p) for p in path), message)


def _require(trial) -> None:
    """Every number the plan needs, or one error listing all that are missing and where."""
    a = trial.model.assumptions
    problems = []
    for name, example in (("alpha", "0.05"), ("power", "0.9"), ("attrition", "0.15")):
        if getattr(a, name) is None:
            problems.append(_problem(trial, ("assumptions",), f"assumptions.{name} is missing: "
                                     f"add '{name}: {example}' under 'assumptions:'"))
    out = trial.primary_outcome()
    p = a.primary
    if p is None:
        problems.append(_problem(trial, ("assumptions",), "assumptions.primary is missing: add "
                                 "'primary:' under 'assumptions:' with the effect on "
                                 f"{out.id} ({out.type})"))
    elif out.type == "binary":
        for name in ("control_rate", "intervention_rate"):
            if getattr(p, name) is None:
                problems.append(_problem(trial, ("assumptions", "primary"),
                                         f"assumptions.primary.{name} is missing for the binary "
                                         f"primary outcome {out.id}: add it under 'primary:'"))
    elif out.type == "continuous":
        if p.d is None and (p.difference is None or p.sd is None):
            problems.append(_problem(trial, ("assumptions", "primary"),
                                     "assumptions.primary needs d, or difference and sd, for the "
                                     f"continuous primary outcome {out.id}"))
    elif out.type == "time-to-event":
        if p.hazard_ratio is None or p.event_prob is None:
            problems.append(_problem(trial, ("assumptions", "primary"),
                                     "assumptions.primary needs hazard_ratio and event_prob for "
                                     f"the time-to-event primary outcome {out.id}"))
    elif out.type == "count":
        if p.rate is None or p.rate_ratio is None:
            problems.append(_problem(trial, ("assumptions", "primary"),
                                     "assumptions.primary needs rate and rate_ratio (with "
                                     "dispersion and exposure if not Poisson over one unit) "
                                     f"for the count primary outcome {out.id}"))
    cl = a.clustering
    if cl.kind != "none":
        derivable = cl.kind == "partial" and a.staffing is not None and a.recruitment is not None
        for name in ("icc",) if derivable else ("icc", "cluster_size"):
            if getattr(cl, name) is None:
                problems.append(_problem(trial, ("assumptions", "clustering"),
                                         f"assumptions.clustering.{name} is missing for "
                                         f"clustering kind '{cl.kind}': add it under "
                                         "'clustering:'"))
    if a.paths and a.mediation_power is None:
        problems.append(_problem(trial, ("assumptions",), "assumptions.mediation_power is "
                                 "missing: add 'mediation_power: 0.8' under 'assumptions:' "
                                 "(the target power for each mechanism)"))
    if problems:
        raise TrialFileError(problems)


# --------------------------------------------------------------------------------------------
# Primary outcome


def _primary_call(trial, overrides=None) -> Call:
    """The primary outcome's size calculation (its Python call and command line are one).

    The primary outcome's own attrition (default assumptions.attrition) is used.
    ``overrides`` replaces assumptions for the sensitivity analysis, by the trial
    file's names (control_rate, intervention_rate, d, hazard_ratio, rate_ratio, icc,
    cluster_size, attrition).
    """
    overrides = overrides or {}
    m = trial.model
    a = m.assumptions
    p = a.primary
    out = trial.primary_outcome()
    cl = a.clustering
    if out.type == "binary":
        fn = "proportions"
        p1 = overrides.get("control_rate", p.control_rate)
        # A different control rate keeps the relative effect (risk ratio) unless the
        # intervention rate is varied too.
        p2 = overrides.get("intervention_rate", p.intervention_rate if "control_rate" not in
                           overrides else p1 * p.intervention_rate / p.control_rate)
        effect = dict(p1=p1, p2=p2)
    elif out.type == "continuous":
        fn = "means"
        d = p.d if p.d is not None else p.difference / p.sd
        effect = dict(d=overrides.get("d", d), baseline_corr=p.baseline_corr,
                      baselines=p.baselines, follow_ups=p.follow_ups,
                      follow_up_corr=p.follow_up_corr)
        if cl.kind == "partial":
            effect["control_variance"] = cl.control_variance
        if cl.kind == "cluster" and cl.cluster_autocorr is not None:
            effect.update(cluster_autocorr=cl.cluster_autocorr,
                          individual_autocorr=cl.individual_autocorr)
    elif out.type == "count":
        fn = "rates"
        effect = dict(rate=p.rate, rr=overrides.get("rate_ratio", p.rate_ratio),
                      dispersion=p.dispersion, exposure=p.exposure)
    else:
        fn = "survival"
        effect = dict(hr=overrides.get("hazard_ratio", p.hazard_ratio), event_prob=p.event_prob)
    attrition = attrition_for(trial, out.id)["rate"]
    kwargs = dict(**effect, power=a.power, alpha=a.alpha, ratio=m.trial.allocation_ratio,
                  attrition=overrides.get("attrition", attrition), co_primary=p.co_primary)
    if cl.kind != "none":
        kwargs.update(clustering=cl.kind, icc=overrides.get("icc", cl.icc),
                      cluster_size=overrides.get("cluster_size", cl.cluster_size))
        if cl.kind == "cluster":
            kwargs["cluster_cv"] = overrides.get("cluster_cv", cl.cluster_cv)
    return Call.of(fn, **kwargs)


def _primary(trial) -> dict:
    call = _primary_call(trial)
    try:
        result = call.run()
    except (InputError, UnreachableTargetError) as exc:
        raise TrialFileError([_problem(trial, ("assumptions", "primary"),
                                       f"the primary sample size cannot be computed: {exc}")]
                             ) from None
    out = trial.primary_outcome()
    return {"outcome": out.id, "label": out.label, "type": out.type,
            "timepoints": list(out.timepoints), "attrition": attrition_for(trial, out.id),
            "command": call.command(), "result": result.to_dict()}


def _clusters(trial, final: dict, res: dict) -> dict:
    """Peer workers, or clusters per arm, counted from the participants allocated.

    A peer worker supports everyone allocated to them, and a cluster recruits its
    participants whether or not they are followed up; so both are counted from the
    numbers recruited, and the design effect uses the numbers analysed per cluster.
    """
    cl = trial.model.assumptions.clustering
    if cl.kind == "none":
        return {}
    att = res["inputs"]["attrition"]
    out = {"cluster_size_allocated": cl.cluster_size,
           "cluster_size_analysed": cl.cluster_size * (1.0 - att),
           "cluster_cv": cl.cluster_cv or 0.0, "attrition_used": att,
           "design_effect": res["design_effect"]}
    recruit = final["n_to_recruit_per_arm"]
    if cl.kind == "partial":
        out["peer_workers"] = math.ceil(recruit["intervention"] / cl.cluster_size - 1e-9)
    else:
        out["clusters_per_arm"] = {arm: math.ceil(k / cl.cluster_size - 1e-9)
                                   for arm, k in recruit.items()}
        out["clusters"] = sum(out["clusters_per_arm"].values())
        out["few_clusters"] = min(out["clusters_per_arm"].values()) < FEW_CLUSTERS_PER_ARM
        out["few_clusters_threshold"] = FEW_CLUSTERS_PER_ARM
    return out


# --------------------------------------------------------------------------------------------
# Staffing: the caseload implied by peer workers per site


def _staffing(trial, final: dict) -> dict | None:
    """The peer-worker caseloads implied by the staffing, beside the caseload assumed.

    Cumulative caseload: participants allocated per peer worker over the trial
    (intervention participants recruited / peer workers) -- the cluster size of
    partial nesting.  Concurrent caseload: participants a peer worker supports at
    once when recruitment runs at full speed (Little's law: arrivals per peer
    worker per month x months of support).
    """
    a = trial.model.assumptions
    st, rec, cl = a.staffing, a.recruitment, a.clustering
    if st is None or rec is None or cl.kind != "partial":
        return None
    ratio = trial.model.trial.allocation_ratio
    share = ratio / (1.0 + ratio)
    workers = rec.sites * st.peer_workers_per_site
    rate = rec.screened_per_site_month * rec.eligible * rec.consent
    concurrent = rate * share * st.support_months / st.peer_workers_per_site
    cumulative = final["n_to_recruit_per_arm"]["intervention"] / workers
    notes = []
    if st.max_concurrent is not None and concurrent > st.max_concurrent:
        notes.append(f"at full recruitment speed each peer worker would support about "
                     f"{concurrent:.1f} participants at once, more than max_concurrent "
                     f"{st.max_concurrent:g}: add peer workers or slow recruitment")
    return {"sites": rec.sites, "peer_workers_per_site": st.peer_workers_per_site,
            "peer_workers": workers, "support_months": st.support_months,
            "concurrent_caseload": round(concurrent, 2),
            "cumulative_caseload": round(cumulative, 2),
            "caseload_used": cl.cluster_size, "derived": None, "notes": notes}


def _derive_caseload(trial):
    """A trial whose caseload is derived from staffing, when the file leaves it out.

    The caseload (participants allocated per peer worker) is the intervention arm's
    recruits shared among sites x peer workers per site; the recruits depend on the
    caseload through the design effect, so the two are iterated to a fixed point
    (rounded to 0.1).
    """
    a = trial.model.assumptions
    cl, st, rec = a.clustering, a.staffing, a.recruitment
    if cl.kind != "partial" or cl.cluster_size is not None or st is None or rec is None:
        return trial, None
    workers = rec.sites * st.peer_workers_per_site
    m = 1.0
    for _ in range(100):
        try:
            n_i = _primary_call(_with_caseload(trial, m)).run().n_per_arm["intervention"]
        except (InputError, UnreachableTargetError) as exc:
            raise TrialFileError([_problem(trial, ("assumptions", "staffing"),
                                           f"the caseload cannot be derived from staffing: "
                                           f"{exc}")]) from None
        new = max(1.0, math.ceil(n_i / workers * 10.0 - 1e-9) / 10.0)
        if new == m:
            return _with_caseload(trial, m), m
        if new > 1e4:
            break
        m = new
    raise TrialFileError([_problem(trial, ("assumptions", "staffing"),
                                   f"{workers:g} peer workers cannot cover the intervention "
                                   "arm: the caseload and the sample size grow together "
                                   "without settling; add peer workers per site or sites, "
                                   "or give clustering.cluster_size")])


def _with_caseload(trial, m: float):
    a = trial.model.assumptions
    cl = a.clustering.model_copy(update={"cluster_size": m})
    model = trial.model.model_copy(
        update={"assumptions": a.model_copy(update={"clustering": cl})})
    return replace(trial, model=model)


# --------------------------------------------------------------------------------------------
# Mechanisms


def _cumulative(p: float, share: float) -> float:
    """Risk by a fraction ``share`` of a window whose risk is p, under a constant hazard."""
    return 1.0 - (1.0 - p) ** share


def _landmark(path, rates: dict, m_month: float, y_month: float, y_start: float) -> dict:
    """The landmark outcome: events after the mediator's time point among those event-free then.

    ``rates`` are each arm's risk over the whole window (y_start, y_month].  The
    control arm's risk before the landmark is ``event_before_mediator`` when
    given, else 1 - (1 - p)^(share of the window elapsed) under a constant
    hazard; the intervention arm keeps the ratio of cumulative hazards.
    """
    share = (m_month - y_start) / (y_month - y_start)
    pc, pt = rates["control"], rates["intervention"]
    if path.event_before_mediator is not None:
        qc = path.event_before_mediator
        ratio = math.log1p(-pt) / math.log1p(-pc)
        qt = 1.0 - (1.0 - qc) ** ratio
        how = "event_before_mediator as given"
    else:
        qc, qt = _cumulative(pc, share), _cumulative(pt, share)
        how = "derived under a constant hazard"
    before = {"control": qc, "intervention": qt}
    after = {arm: 1.0 - (1.0 - rates[arm]) / (1.0 - before[arm]) for arm in rates}
    return {"before": before, "after": after, "how": how}


def _total_effect(trial, path, node) -> tuple[float | None, str | None]:
    """The total effect on the outcome on the b path's scale, and where it comes from."""
    if path.total is not None:
        return path.total, "given in the path"
    p = trial.model.assumptions.primary
    if p is None or trial.primary_outcome().id != path.outcome:
        return None, None
    if node.type == "binary" and p.control_rate and p.intervention_rate:
        lor = math.log(p.intervention_rate / (1 - p.intervention_rate)) - math.log(
            p.control_rate / (1 - p.control_rate))
        return lor, "log odds ratio of the primary assumptions"
    if node.type == "continuous":
        d = p.d if p.d is not None else (p.difference / p.sd if p.difference is not None
                                         and p.sd else None)
        if d is None:
            return None, None
        # d is in SDs of the outcome within an arm, which is sqrt(1 + b^2) residual SDs.
        return d * math.sqrt(1.0 + path.b ** 2), "primary d, in residual SDs of the outcome"
    return None, None


def _mechanisms(trial, recruited: dict) -> list[dict]:
    """Each path's power at the planned numbers and the numbers it would need.

    ``recruited`` is the number randomised per arm.  Each mechanism is analysed
    on the complete cases of its own mediator and outcome.
    """
    m = trial.model
    a = m.assumptions
    nodes = trial.nodes()
    months = trial.timepoint_months()
    ratio = m.trial.allocation_ratio
    allocation = ratio / (1.0 + ratio)
    out = []
    for i, path in enumerate(a.paths):
        try:
            entry = _mechanism(trial, i, path, nodes, months, recruited, allocation)
        except (InputError, UnreachableTargetError) as exc:
            entry = _entry(trial, path, nodes)
            entry.update(status="not computed", test=None, reason=str(exc))
        out.append(entry)
    _check_totals(out)
    return out


def _entry(trial, path, nodes) -> dict:
    node = nodes[path.outcome][1]
    mediator = nodes[path.mediator][1]
    m_tp, y_tp = trial.path_timepoints(path)
    return {"mechanism": path.mechanism, "mechanism_label": nodes[path.mechanism][1].label,
            "mediator": path.mediator, "mediator_label": mediator.label,
            "outcome": path.outcome, "outcome_label": node.label, "outcome_type": node.type,
            "mediator_timepoint": m_tp, "outcome_timepoint": y_tp,
            "a": path.a, "b": path.b, "cprime": path.cprime, "source": path.source,
            "base_rate": None, "notes": []}


def _mechanism(trial, i, path, nodes, months, recruited, allocation) -> dict:
    m = trial.model
    a = m.assumptions
    cl = a.clustering
    node = nodes[path.outcome][1]
    mediator = nodes[path.mediator][1]
    entry = _entry(trial, path, nodes)
    notes = entry["notes"]
    m_month, y_month = months[entry["mediator_timepoint"]], months[entry["outcome_timepoint"]]
    att = max(attrition_for(trial, mediator.id)["rate"], attrition_for(trial, node.id)["rate"])
    entry["attrition"] = att
    notes.append(f"analysed on complete cases of {path.mediator} ({entry['mediator_timepoint']}) "
                 f"and {path.outcome} ({entry['outcome_timepoint']}): {att:.0%} lost, the larger "
                 "of the two variables' attrition (those lost on one are assumed lost on both)")
    keep = {arm: 1.0 - att for arm in recruited}
    entry["covariate_r2"] = {"r2_m": path.r2_m, "r2_y": path.r2_y, "r2_m2": path.r2_m2,
                             "r2_y2": path.r2_y2}
    if path.r2_m == 0 and path.r2_y == 0:
        notes.append("no variance of the process variable or the outcome is assumed explained "
                     "by the baseline covariates (r2_m = r2_y = 0), though the mediation models "
                     "adjust for their baseline values: conservative; give r2_m and r2_y in "
                     "the path (e.g. the squared baseline-follow-up correlation) to count it")
    total, total_from = _total_effect(trial, path, node)
    kw = dict(a=path.a, b=path.b, cprime=path.cprime)
    if node.type == "binary":
        rates, base = _binary_rates(trial, i, path, total, allocation, notes)
        entry["base_rate"] = base
        starts = [months[t] for t in node.timepoints if months[t] < y_month]
        y_start = max(min(starts), 0.0) if starts else 0.0
        if m_month > y_start:
            if path.event_before_mediator is not None and \
                    path.event_before_mediator >= rates["control"]:
                raise TrialFileError([_problem(
                    trial, ("assumptions", "paths", i, "event_before_mediator"),
                    f"event_before_mediator ({path.event_before_mediator:g}) must be below the "
                    f"control-arm rate over the whole window ({rates['control']:g})")])
            lm = _landmark(path, rates, m_month, y_month, y_start)
            keep = {arm: keep[arm] * (1.0 - lm["before"][arm]) for arm in keep}
            rates = lm["after"]
            entry["landmark"] = {"from_month": m_month, "to_month": y_month,
                                 "event_before": lm["before"], "event_after": lm["after"],
                                 "how": lm["how"]}
            notes.append(f"landmark outcome: {node.label.lower()} between month {m_month:g} "
                         f"and month {y_month:g} among those without the event by month "
                         f"{m_month:g} (control arm: {lm['before']['control']:.3f} had it "
                         f"before, {lm['how']}; {lm['after']['control']:.3f} after)")
        overall = (1 - allocation) * rates["control"] * keep["control"] + \
            allocation * rates["intervention"] * keep["intervention"]
        overall /= (1 - allocation) * keep["control"] + allocation * keep["intervention"]
        kw.update(outcome="binary", base_rate=_clean(rates["control"]),
                  outcome_rate=_clean(overall))
        entry["outcome_rate"] = kw["outcome_rate"]
        notes.append(f"b path variance from the overall outcome rate {overall:.4f} at the "
                     "planned effect (Hsieh, Bloch & Larsen 1998), not the control rate")
    elif node.type != "continuous":
        raise InputError(f"{path.outcome} is {node.type}; mechanism power is computed for "
                         "continuous and binary outcomes")
    analysed = {arm: int(math.floor(recruited[arm] * keep[arm] + 1e-9)) for arm in recruited}
    if cl.kind == "cluster":
        calls, planned = _cluster_calls(trial, path, mediator, node, kw, att, allocation, notes,
                                        recruited)
        entry["design"] = calls[0].kwargs["design"]
    else:
        calls, planned = _individual_calls(trial, path, kw, analysed, allocation, notes,
                                           keep["intervention"])
        entry["design"] = "partially nested" if cl.kind == "partial" else "individual"
    at_n, needed = (c.run() for c in calls)
    test = calls[0].kwargs.get("test", "joint")
    entry.update(status="computed", test=test, method=at_n.method, reference=at_n.reference,
                 power_at_planned_n=at_n.power, mc_se=getattr(at_n, "mc_se", None),
                 target_power=a.mediation_power,
                 detectable=at_n.power >= a.mediation_power, path_power=at_n.path_power,
                 command=calls[0].command(), command_needed=calls[1].command(),
                 function=calls[0].function,
                 arguments={k: v for k, v in calls[0].kwargs.items() if k not in ("n", "clusters")},
                 indirect_effect=path.a * path.b, total_effect=total,
                 total_effect_from=total_from,
                 proportion_mediated=(path.a * path.b / total) if total else None)
    if cl.kind == "cluster":
        entry.update(planned_clusters=planned, planned_n=at_n.n_total,
                     clusters_needed=needed.clusters, n_needed_analysed=needed.n_total,
                     n_needed_to_recruit=math.ceil(needed.n_total / (1.0 - att) - 1e-9),
                     n_needed_per_arm=None, n_needed_to_recruit_per_arm=None)
    else:
        scale = {arm: keep[arm] for arm in keep}
        recruit = {arm: math.ceil(v / scale[arm] - 1e-9) for arm, v in needed.n_per_arm.items()}
        entry.update(planned_n=planned, n_needed_analysed=needed.n_total,
                     n_needed_per_arm=needed.n_per_arm, n_needed_to_recruit=sum(recruit.values()),
                     n_needed_to_recruit_per_arm=recruit,
                     peer_workers_needed=needed.to_dict().get("peer_workers"))
    notes += list(at_n.notes)
    return entry


def _clean(x: float) -> float:
    """A derived rate to 12 significant digits, so the command line stays readable."""
    return float(f"{x:.12g}")


def _binary_rates(trial, i, path, total, allocation, notes) -> tuple[dict, float]:
    a = trial.model.assumptions
    base = path.base_rate
    primary = trial.primary_outcome()
    if primary.id == path.outcome and a.primary is not None and a.primary.control_rate:
        if base is None:
            base = a.primary.control_rate
            notes.append(f"outcome rate {base:g}: the primary control_rate")
        if base == a.primary.control_rate and a.primary.intervention_rate:
            return {"control": base, "intervention": a.primary.intervention_rate}, base
    if base is None:
        raise TrialFileError([_problem(trial, ("assumptions", "paths", i),
                                       f"assumptions.paths[{i}].base_rate is missing: "
                                       f"{path.outcome} is binary; add its control-arm "
                                       "rate as 'base_rate:' in this path")])
    if total is None:
        notes.append("no total effect given for this outcome: the intervention arm's rate is "
                      "taken as the control rate")
        return {"control": base, "intervention": base}, base
    odds = base / (1 - base) * math.exp(total)
    return {"control": base, "intervention": odds / (1 + odds)}, base


def _individual_calls(trial, path, kw, analysed, allocation, notes, keep_intervention):
    a = trial.model.assumptions
    cl = a.clustering
    test = a.mediation_test
    kw = dict(kw, alpha=a.alpha, allocation=allocation, r2_m=path.r2_m, r2_y=path.r2_y)
    if cl.kind == "partial":
        icc_m = path.icc_m if path.icc_m is not None else cl.icc
        icc_y = path.icc_y if path.icc_y is not None else cl.icc
        b_level = "individual" if kw.get("outcome") == "binary" else a.mediation_b_level
        # The caseload analysed for this mechanism: those allocated to a peer worker who
        # are in its analysis, so that the number of peer workers is the planned one.
        kw.update(icc_m=icc_m, icc_y=icc_y,
                  cluster_size=_clean(cl.cluster_size * keep_intervention), b_level=b_level,
                  control_variance=cl.control_variance, r2_m2=path.r2_m2, r2_y2=path.r2_y2)
        notes.append(f"peer-worker ICC {icc_m:g} for the process variable and {icc_y:g} for "
                     "the outcome" + ("; the logistic b path is estimated within caseloads "
                                      "and the control arm" if kw.get("outcome") == "binary"
                                      else ""))
        if test in _SIMULATED:
            notes.append(f"the {test} test is not available with partial nesting; analytic "
                         "joint significance used")
            test = "joint"
    kw["test"] = test
    if test in _SIMULATED:
        kw["seed"] = a.seed
    planned = analysed["control"] + analysed["intervention"]
    return (Call.of("mediation", **kw, n=planned),
            Call.of("mediation", **kw, power=a.mediation_power)), planned


def _cluster_calls(trial, path, mediator, node, kw, att, allocation, notes, recruited):
    a = trial.model.assumptions
    cl = a.clustering
    if node.type != "continuous":
        raise InputError("mechanism power for a binary outcome in a cluster-randomised trial is "
                         "not available (2-1-1 and 2-2-1 power is for continuous outcomes)")
    # Clusters are counted from those recruited (as the primary's), each analysing the
    # participants it recruits who are in this mechanism's complete cases.
    clusters = sum(math.ceil(k / cl.cluster_size - 1e-9) for k in recruited.values())
    size = cl.cluster_size * (1.0 - att)
    if cl.cluster_cv:
        size = _harmonic_cluster_size(size, cl.cluster_cv, notes)
    design = "2-2-1" if mediator.level == "cluster" else "2-1-1"
    test = a.mediation_test if a.mediation_test in ("joint", "sobel") else "joint"
    if test != a.mediation_test:
        notes.append(f"the {a.mediation_test} test is not available for cluster-randomised "
                     "mechanisms; analytic joint significance used")
    icc_y = path.icc_y if path.icc_y is not None else cl.icc
    args = dict(design=design, a=kw["a"], b=kw["b"], cprime=kw["cprime"],
                cluster_size=_clean(size), icc_y=icc_y, r2_y1=path.r2_y, r2_y2=path.r2_y2,
                r2_m2=path.r2_m2, allocation=allocation, alpha=a.alpha, test=test)
    if design == "2-1-1":
        icc_m = path.icc_m if path.icc_m is not None else cl.icc
        args.update(icc_m=icc_m, b_within=path.b_within, r2_m1=path.r2_m)
        notes.append(f"2-1-1 design: cluster ICC {icc_m:g} for the process variable and "
                     f"{icc_y:g} for the outcome; b is the between-cluster path B"
                     + (f", b1 = {path.b_within:g} within clusters" if path.b_within is not None
                        else " (the within-cluster path b1 assumed equal)"))
    return (Call.of("cluster_mediation", **args, clusters=clusters),
            Call.of("cluster_mediation", **args, power=a.mediation_power)), clusters


def _harmonic_cluster_size(mean: float, cv: float, notes: list) -> float:
    """The harmonic mean of cluster sizes with this mean and CV, PowerUpR's n for 2-1-1/2-2-1.

    A cluster mean's variance is tau + sigma^2 / n_j, so unequal clusters act
    as equal ones of the harmonic mean size 1 / E[1 / n_j].  For gamma-
    distributed sizes (shape 1 / CV^2) that is mean x (1 - CV^2) exactly; a
    negative binomial count with the same mean and CV gives a little less
    (26.6 against 26.9 for mean 32, CV 0.4), the second-order Taylor
    approximation mean / (1 + CV^2) more (27.6).
    """
    if cv >= 1.0:
        raise InputError(f"with a CV of cluster size of {cv:g} (1 or more) the harmonic mean "
                         "cluster size is not defined for gamma-distributed sizes, so "
                         "mechanism power is not computed; give the cluster sizes' CV below 1")
    harmonic = mean * (1.0 - cv * cv)
    notes.append(f"clusters of unequal size (CV {cv:g}): the harmonic mean cluster size "
                 f"{harmonic:.4g} analysed is used for the mean {mean:.4g} (PowerUpR's n; "
                 "gamma-distributed sizes, mean x (1 - CV^2))")
    return harmonic


def _parallel(trial, mechanisms: list[dict]) -> list[dict]:
    """Process variables of one mechanism on one outcome, analysed together (parallel mediators).

    Reports each specific indirect effect, all of them, and the mechanism's total
    indirect effect, with the residual correlation assumptions.mediator_correlation.
    """
    a = trial.model.assumptions
    cl = a.clustering
    groups: dict = {}
    for m in mechanisms:
        if m.get("status") == "computed":
            groups.setdefault((m["mechanism"], m["outcome"]), []).append(m)
    out = []
    for (mech, outcome), group in groups.items():
        if len(group) < 2:
            continue
        k = len(group)
        r = a.mediator_correlation
        entry = {"mechanism": mech, "mechanism_label": group[0]["mechanism_label"],
                 "outcome": outcome, "outcome_label": group[0]["outcome_label"],
                 "mediators": [g["mediator"] for g in group],
                 "mediator_labels": [g["mediator_label"] for g in group],
                 "correlation": r, "notes": []}
        if group[0]["outcome_type"] != "continuous" or cl.kind == "cluster" or k > 4:
            entry.update(status="not computed",
                         reason="several mediators are sized for a continuous outcome, 2 to 4 "
                                "mediators, in individually randomised or partially nested "
                                "trials")
            out.append(entry)
            continue
        test = a.mediation_test if a.mediation_test in ("joint", "mc", "bootstrap") else "joint"
        if cl.kind == "partial" and test != "joint":
            test = "joint"
        kw = dict(mediators=[(g["mediator"], g["a"], g["b"]) for g in group],
                  correlation=[[1.0 if i == j else r for j in range(k)] for i in range(k)],
                  alpha=a.alpha, allocation=group[0]["arguments"]["allocation"], test=test)
        if test != "joint":
            kw["seed"] = a.seed
        smallest = min(group, key=lambda g: g["planned_n"])
        n = smallest["planned_n"]
        if cl.kind == "partial":
            kw.update(_nesting_of(group, smallest, entry["notes"]))
        call = Call.of("mediation_multi", **kw, n=n)
        res = call.run()
        entry.update(status="computed", test=test, planned_n=n, command=call.command(),
                     arguments={k: v for k, v in kw.items() if k != "mediators"},
                     effects=[{"mediator": g["mediator"], "power": e["power"]}
                              for g, e in zip(group, res.effects, strict=True)],
                     power_all=res.all["power"], total_indirect=res.total_indirect,
                     notes=entry["notes"] + list(res.notes))
        out.append(entry)
    return out


def _nesting_of(group: list[dict], smallest: dict, notes: list) -> dict:
    """The peer-worker clustering of mediators analysed together: the paths' own.

    The caseload is that of the mechanism analysed on the fewest (its complete
    cases); where the paths' ICCs differ the largest is used, which is
    conservative for every path.
    """
    args = [g["arguments"] for g in group]
    out = {"icc_m": max(x["icc_m"] for x in args), "icc_y": max(x["icc_y"] for x in args),
           "cluster_size": smallest["arguments"]["cluster_size"],
           "control_variance": args[0]["control_variance"],
           "b_level": args[0].get("b_level", "caseload")}
    for key in ("icc_m", "icc_y"):
        if len({x[key] for x in args}) > 1:
            notes.append(f"the paths' {key} differ; analysed together with the largest, "
                         f"{out[key]:g}")
    return out


def _check_totals(entries: list[dict]) -> None:
    """Warn when the paths imply more than the total effect, or the opposite sign."""
    by_outcome: dict = {}
    for e in entries:
        if e.get("status") == "computed" and e.get("total_effect") is not None:
            by_outcome.setdefault(e["outcome"], []).append(e)
    for outcome, group in by_outcome.items():
        for e in group:
            total, ab = e["total_effect"], e["indirect_effect"]
            if total == 0 or ab == 0:
                continue
            if (ab > 0) != (total > 0):
                e["notes"].append(f"the paths imply an indirect effect of {ab:.3g}, opposite in "
                                  f"sign to the total effect assumed for {outcome} "
                                  f"({total:.3g}): check the signs of a and b (direction of "
                                  "each scale)")
                e["warning"] = "sign"
            elif abs(ab) > abs(total):
                e["notes"].append(f"the paths imply an indirect effect of {ab:.3g}, more than "
                                  f"the total effect assumed for {outcome} ({total:.3g})")
                e["warning"] = "exceeds total"
        same = [e for e in group if e.get("warning") is None]
        joint = sum(e["indirect_effect"] for e in same)
        total = group[0]["total_effect"]
        if len(same) > 1 and total and abs(joint) > abs(total) and (joint > 0) == (total > 0):
            for e in same:
                e["notes"].append(f"together the mechanisms on {outcome} imply {joint:.3g}, "
                                  f"more than its total effect ({total:.3g})")


# --------------------------------------------------------------------------------------------
# Recruitment


def site_recruitment(rec, months, sites=None, cap=None) -> np.ndarray:
    """Participants randomised at each site by each time in ``months`` (sites x times).

    Site k opens at k x site_opening_interval_months and ramps linearly to
    full speed (screened x eligible x consent per month) over ramp_up_months.
    ``sites`` overrides the number of sites (a cluster trial's clusters) and
    ``cap`` stops each site at that many participants (a cluster's size).
    """
    t = np.atleast_1d(np.asarray(months, dtype=float))
    rate = rec.screened_per_site_month * rec.eligible * rec.consent
    r = rec.ramp_up_months
    count = rec.sites if sites is None else sites
    opening = np.arange(count)[:, None] * rec.site_opening_interval_months
    s = np.maximum(t[None, :] - opening, 0.0)
    if r > 0:
        site = rate * np.where(s <= r, s * s / (2.0 * r), s - r / 2.0)
    else:
        site = rate * s
    return site if cap is None else np.minimum(site, cap)


def recruitment_curve(rec, months, sites=None, cap=None) -> np.ndarray:
    """Cumulative participants randomised by each time in ``months`` (all sites)."""
    total = site_recruitment(rec, months, sites, cap).sum(axis=0)
    return total.reshape(np.shape(months)) if np.ndim(months) == 0 else total


# A recruitment projection longer than this is not a plan: the rates are wrong.
MAX_RECRUITMENT_MONTHS = 600


def _months_to(rec, target: float, sites=None, cap=None) -> float:
    """Months until ``target`` are randomised; inf beyond :data:`MAX_RECRUITMENT_MONTHS`."""
    if recruitment_curve(rec, MAX_RECRUITMENT_MONTHS, sites, cap) < target:
        return math.inf
    lo, hi = 0.0, 1.0
    while recruitment_curve(rec, hi, sites, cap) < target:
        hi *= 2.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if recruitment_curve(rec, mid, sites, cap) >= target:
            hi = mid
        else:
            lo = mid
    return hi


def _cluster_recruitment(rec, final: dict, notes: list) -> dict:
    """Recruitment cluster by cluster: each recruits its size at its rate from its opening.

    Returns the months to fill every cluster and, for comparison with the
    assumed CV of cluster size, the spread of sizes if recruitment instead
    closed everywhere on the date the total is reached.
    """
    k = final["clusters"]
    m = final["cluster_size_allocated"]
    one = SimpleNamespace(screened_per_site_month=rec.screened_per_site_month,
                          eligible=rec.eligible, consent=rec.consent,
                          ramp_up_months=rec.ramp_up_months, site_opening_interval_months=0.0,
                          sites=1)
    fill = _months_to(one, m)
    target = final["n_to_recruit"]
    close = _months_to(rec, target, k)
    opens = np.arange(k) * rec.site_opening_interval_months
    sizes = np.array([float(recruitment_curve(one, close - o)) for o in opens])
    cv = float(sizes.std() / sizes.mean()) if sizes.mean() > 0 else 0.0
    assumed = final["cluster_cv"]
    if rec.sites != k:
        notes.append(f"recruitment.sites is {rec.sites} but the design randomises {k} clusters; "
                     "the recruitment projection uses the clusters")
    if cv > assumed + 0.05:
        notes.append(f"if recruitment closed in every cluster on the date the total is reached "
                     f"(month {close:.1f}), cluster sizes would range from {sizes.min():.0f} to "
                     f"{sizes.max():.0f} (CV {cv:.2f}), more than the assumed CV {assumed:g}: "
                     f"keep each cluster open until it recruits {m:g} (month "
                     f"{(k - 1) * rec.site_opening_interval_months + fill:.1f}), or raise "
                     "clustering.cluster_cv")
    return {"clusters": k, "per_cluster_target": m, "months_to_fill_one": round(fill, 2),
            "last_opening_month": round((k - 1) * rec.site_opening_interval_months, 2),
            "common_close_month": round(close, 2),
            "common_close_sizes": [round(float(sizes.min()), 1), round(float(sizes.max()), 1)],
            "common_close_cv": round(cv, 3), "assumed_cv": assumed}


def _recruitment(trial, final: dict, notes: list) -> dict | None:
    rec = trial.model.assumptions.recruitment
    if rec is None:
        return None
    target = final["n_to_recruit"]
    sites, cap = None, None
    if "clusters" in final:
        sites, cap = final["clusters"], final["cluster_size_allocated"]
    months = _months_to(rec, target, sites, cap)
    rate = rec.screened_per_site_month * rec.eligible * rec.consent
    if not math.isfinite(months):
        reached = float(recruitment_curve(rec, MAX_RECRUITMENT_MONTHS, sites, cap))
        raise TrialFileError([_problem(trial, ("assumptions", "recruitment"),
                                       f"at {rate:.3g} randomised per site-month the target "
                                       f"of {target:,} is never reached: only {reached:,.0f} "
                                       f"would be randomised in {MAX_RECRUITMENT_MONTHS // 12} "
                                       "years; "
                                       "check sites, screened_per_site_month, eligible and "
                                       "consent")])
    per_cluster = _cluster_recruitment(rec, final, notes) if "clusters" in final else None
    whole = math.ceil(months - 1e-9)
    grid = list(range(0, whole + 1))
    cumulative = recruitment_curve(rec, grid, sites, cap)
    per_arm_recruit = final["n_to_recruit_per_arm"]
    per_arm_analysed = final["n_analysed_per_arm"]
    eligible = math.ceil(target / rec.consent - 1e-9)
    screened = math.ceil(eligible / rec.eligible - 1e-9)
    flow = {
        "screened": screened,
        "eligible": eligible,
        "not_eligible": screened - eligible,
        "declined": eligible - target,
        "consented": target,
        "randomised": target,
        "allocated": dict(per_arm_recruit),
        "lost_to_follow_up": {k: per_arm_recruit[k] - per_arm_analysed[k]
                              for k in per_arm_recruit},
        "analysed": dict(per_arm_analysed),
    }
    if per_cluster is not None:
        flow["clusters_randomised"] = dict(final["clusters_per_arm"])
        flow["per_cluster"] = {"recruited": final["cluster_size_allocated"],
                               "analysed": final["cluster_size_analysed"]}
    return {
        "per_cluster": per_cluster,
        "sites": rec.sites if sites is None else sites,
        "screened_per_site_month": rec.screened_per_site_month,
        "eligible": rec.eligible, "consent": rec.consent,
        "ramp_up_months": rec.ramp_up_months,
        "site_opening_interval_months": rec.site_opening_interval_months,
        "randomised_per_site_month": rate,
        "target": target, "months_to_target": round(months, 2),
        "whole_months": whole,
        "projection": [{"month": g, "randomised": round(float(c), 1)}
                       for g, c in zip(grid, cumulative, strict=True)],
        "flow": flow,
    }


# --------------------------------------------------------------------------------------------
# Sensitivity


def _round_list(values):
    return sorted({round(float(v), 4) for v in values})


def _sensitivity_ranges(trial) -> tuple[dict, list[str]]:
    a = trial.model.assumptions
    spec = a.sensitivity
    p = a.primary
    out_type = trial.primary_outcome().type
    ranges: dict = {}
    defaulted = []

    def pick(name, default):
        given = getattr(spec, name, None) if spec is not None else None
        if given:
            ranges[name] = _round_list(given)
        elif default:
            ranges[name] = _round_list(default)
            defaulted.append(name)

    cl = a.clustering
    if cl.kind != "none":
        pick("icc", [v for v in (0.0, cl.icc / 2, cl.icc, cl.icc * 1.5, cl.icc * 2) if v < 1])
        pick("cluster_size", [max(1.0, v) for v in (cl.cluster_size * 0.5, cl.cluster_size,
                                                    cl.cluster_size * 1.5)])
    base_att = attrition_for(trial, trial.primary_outcome().id)["rate"]
    pick("attrition", [v for v in (base_att - 0.05, base_att, base_att + 0.05, base_att + 0.1)
                       if 0 <= v < 0.9])
    if out_type == "binary":
        rd = p.intervention_rate - p.control_rate
        rr = p.intervention_rate / p.control_rate
        pick("control_rate", [v for v in (p.control_rate - 0.05, p.control_rate,
                                          p.control_rate + 0.05) if 0 < v < 1
                              and 0 < v * rr < 1])
        pick("intervention_rate", [p.control_rate + rd * k for k in (0.75, 1.0, 1.25)
                                   if 0 < p.control_rate + rd * k < 1])
    elif out_type == "continuous":
        d = p.d if p.d is not None else p.difference / p.sd
        pick("d", [d * k for k in (0.75, 1.0, 1.25)])
    elif out_type == "count":
        pick("rate_ratio", [math.exp(math.log(p.rate_ratio) * k) for k in (0.75, 1.0, 1.25)])
    else:
        pick("hazard_ratio", [math.exp(math.log(p.hazard_ratio) * k) for k in (0.75, 1.0, 1.25)])
    notes = []
    if "control_rate" in ranges and out_type == "binary":
        notes.append("sensitivity to the control rate keeps the risk ratio "
                     f"{p.intervention_rate / p.control_rate:.4g} fixed")
    if defaulted:
        notes.append("sensitivity ranges not given in the file were set around the base case: "
                     + "; ".join(f"{k} {ranges[k]}" for k in defaulted)
                     + " (give assumptions.sensitivity to choose them)")
    return ranges, notes


def _n_for(trial, overrides) -> tuple[int | None, str | None]:
    try:
        r = _primary_call(trial, overrides).run()
    except (InputError, UnreachableTargetError) as exc:
        return None, str(exc)
    return int(r.n_total), None


def _sensitivity(trial, ranges: dict) -> dict:
    one_way = []
    for name, values in ranges.items():
        for value in values:
            n, err = _n_for(trial, {name: value})
            row = {"parameter": name, "value": value, "n_to_recruit": n}
            if err:
                row["error"] = err
            one_way.append(row)
    effect = next((k for k in ("intervention_rate", "d", "hazard_ratio", "rate_ratio")
                   if k in ranges), None)
    other = "icc" if "icc" in ranges else "attrition"
    two_way = None
    if effect and other in ranges:
        table = []
        for rv in ranges[other]:
            row = []
            for cv in ranges[effect]:
                n, _ = _n_for(trial, {other: rv, effect: cv})
                row.append(n)
            table.append(row)
        two_way = {"rows": other, "row_values": ranges[other], "columns": effect,
                   "column_values": ranges[effect], "n_to_recruit": table}
    return {"ranges": ranges, "one_way": one_way, "two_way": two_way}


# --------------------------------------------------------------------------------------------
# The plan


def _versions() -> dict:
    out = {"trialplan": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "scipy", "statsmodels"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[pkg] = None
    return out


def build_plan(trial) -> dict:
    """The sample-size plan for a validated trial file (:class:`TrialPlan`).

    Raises
    ------
    TrialFileError
        When an assumption the plan needs is missing: each problem names the
        field and the line of the file where it belongs.
    """
    sp.use_scipy()  # many power evaluations follow: scipy's special functions (see _dist)
    _require(trial)
    trial, derived = _derive_caseload(trial)
    m = trial.model
    a = m.assumptions
    notes: list[str] = []
    primary = _primary(trial)
    res = primary["result"]
    mechanisms = _mechanisms(trial, res["n_per_arm"])

    final = {"driven_by": "primary", "n_analysed_per_arm": dict(res["n_analysed_per_arm"]),
             "n_to_recruit_per_arm": dict(res["n_per_arm"]), "n_to_recruit": res["n_total"]}
    computed = [mm for mm in mechanisms if mm.get("status") == "computed"]
    if a.mechanisms_drive_n:
        keep = 1.0 - attrition_for(trial, trial.primary_outcome().id)["rate"]
        for mm in computed:
            per_arm = mm.get("n_needed_to_recruit_per_arm")
            if per_arm is None:
                notes.append(f"mechanisms_drive_n: the mechanism {mm['mechanism']} is sized in "
                             "clusters; its clusters_needed is reported, not used for the "
                             "final n")
                continue
            if mm["n_needed_to_recruit"] > final["n_to_recruit"]:
                final = {"driven_by": mm["mechanism"],
                         "n_analysed_per_arm": {k: int(math.floor(v * keep + 1e-9))
                                                for k, v in per_arm.items()},
                         "n_to_recruit_per_arm": dict(per_arm),
                         "n_to_recruit": mm["n_needed_to_recruit"]}
        if final["driven_by"] != "primary":
            notes.append(f"mechanisms_drive_n is true: the mechanism {final['driven_by']} needs "
                         "more participants than the primary outcome and sets the final n; "
                         "every mechanism's power is given at that n")
            mechanisms = _mechanisms(trial, final["n_to_recruit_per_arm"])
            computed = [mm for mm in mechanisms if mm.get("status") == "computed"]
    final["n_analysed"] = sum(final["n_analysed_per_arm"].values())
    final.update(_clusters(trial, final, res))
    def label(mm):
        return f"{mm['mechanism']} ({mm['mediator']} -> {mm['outcome']})"

    final["mechanisms_detectable"] = [label(mm) for mm in computed if mm["detectable"]]
    final["mechanisms_not_detectable"] = [label(mm) for mm in computed if not mm["detectable"]]
    final["mechanisms_not_computed"] = [label(mm) for mm in mechanisms
                                        if mm.get("status") != "computed"]
    if final.get("few_clusters"):
        notes.append(f"few clusters: {min(final['clusters_per_arm'].values())} in an arm, under "
                     f"{FEW_CLUSTERS_PER_ARM} per arm; the sample size uses t on clusters - 2 "
                     "df and the analysis needs a small-sample correction (Leyrat et al. 2018); "
                     "consider restricted randomisation to balance the arms")
    staffing = _staffing(trial, final)
    if staffing is not None:
        staffing["derived"] = derived is not None
        notes += staffing["notes"]
        if derived is None and abs(staffing["cumulative_caseload"] - a.clustering.cluster_size) \
                > 0.2 * a.clustering.cluster_size:
            notes.append(f"the staffing ({staffing['peer_workers']:g} peer workers) implies "
                         f"about {staffing['cumulative_caseload']:.1f} participants allocated "
                         f"per peer worker, but clustering.cluster_size is "
                         f"{a.clustering.cluster_size:g}: the design effect assumes the latter")
    recruitment = _recruitment(trial, final, notes)
    if recruitment is None:
        notes.append("recruitment not planned: add assumptions.recruitment (sites, "
                     "screened_per_site_month, eligible, consent) for the projection and "
                     "participant flow")
    feasibility, fnotes = feasibility_section(trial, final)  # refuses a pilot above the trial
    notes += fnotes
    if feasibility is None:
        notes.append("no internal pilot: add assumptions.feasibility with progression criteria "
                     "(green/amber thresholds for recruitment, retention, adherence)")
    ranges, snotes = _sensitivity_ranges(trial)
    notes += snotes
    sensitivity = _sensitivity(trial, ranges)
    assurance = _assurance(trial, primary, mechanisms)
    simulated = [mm for mm in computed if mm["test"] in _SIMULATED]
    parallel = _parallel(trial, mechanisms)
    return {
        "schema": PLAN_SCHEMA,
        "trial": {"title": m.trial.title, "acronym": m.trial.acronym,
                  "file": trial.source, "allocation_ratio": m.trial.allocation_ratio},
        "assumptions": {"alpha": a.alpha, "power": a.power, "attrition": a.attrition,
                        "mediation_power": a.mediation_power,
                        "mediation_test": a.mediation_test,
                        "mediation_b_level": a.mediation_b_level,
                        "mechanisms_drive_n": a.mechanisms_drive_n,
                        "clustering": a.clustering.model_dump()},
        "primary": primary,
        "mechanisms": mechanisms,
        "parallel_mechanisms": parallel,
        "final": final,
        "staffing": staffing,
        "recruitment": recruitment,
        "feasibility": feasibility,
        "assurance": assurance,
        "sensitivity": sensitivity,
        "provenance": {"versions": _versions(), "seed": a.seed if simulated else None,
                       "input_sha256": trial.text_hash, "plan_schema": PLAN_SCHEMA},
        "notes": notes,
    }
