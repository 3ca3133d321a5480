"""Document sentences and tables for assurance, progression criteria and feasibility.

The templates compute nothing: this module turns the plan's ``assurance`` and
``feasibility`` sections into the sentences and rows the protocol (items 19
and 28b) and the feasibility document show.
"""

from __future__ import annotations

PURPOSE_TEXT = {
    "confirmatory": "a definitive (confirmatory) trial",
    "internal-pilot": "a definitive trial with an internal pilot",
    "external-feasibility": "an external randomised feasibility study",
}

_FIELD_TEXT = {
    "assumptions.attrition": "attrition",
    "assumptions.primary.control_rate": "control-arm rate",
    "assumptions.primary.intervention_rate": "intervention-arm rate",
    "assumptions.primary.event_prob": "probability of an event",
    "assumptions.primary.difference": "difference in means",
    "assumptions.primary.d": "standardised difference",
    "assumptions.primary.sd": "SD",
    "assumptions.primary.hazard_ratio": "hazard ratio",
    "assumptions.primary.baseline_corr": "baseline correlation",
    "assumptions.clustering.icc": "ICC",
}


def field_text(name: str) -> str:
    if name in _FIELD_TEXT:
        return _FIELD_TEXT[name]
    if name.startswith("assumptions.paths["):
        index, _, field = name[len("assumptions.paths["):].partition("].")
        return f"path {field} of mechanism {int(index) + 1}"
    return name


def _pct(x) -> str:
    return f"{100 * x:.0f}%"


def _months(x) -> str:
    """Months to one decimal, without a trailing .0."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _path_name(path: dict | None, entry: dict) -> str:
    """'role-modelling recovery and living well through hope': the mechanism and its variable."""
    if path is None:
        return entry["mechanism"].replace("_", " ")
    label = path["mechanism_label"][:1].lower() + path["mechanism_label"][1:]
    return f"{label} through {path['mediator_label'].lower()}"


def _se(se: float) -> str:
    """A Monte Carlo SE to three decimals, or an upper bound when it rounds to zero."""
    return f"{se:.3f}" if se >= 0.0005 else "below 0.001"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _assurance(plan) -> dict | None:
    asr = plan.get("assurance")
    if not asr:
        return None
    sentences = []
    commands = []  # reproduce the numbers above; written by the template as code
    pr = asr.get("primary")
    n = plan["primary"]["result"]["n_total"]
    if pr:
        items = [f"the {field_text(f)}" for f in pr["priors"]]
        names = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
        sentences.append(
            f"Because the assumptions are uncertain, we also report assurance: the probability "
            f"that the trial succeeds, averaged over prior distributions for {names} "
            f"[@ohagan2005]. With {n:,} participants the "
            f"assurance is {pr['assurance']:.2f} (Monte Carlo standard error "
            f"{pr['mc_se']:.3f}; {pr['draws']:,} draws, seed {pr['seed']}), against power "
            f"{asr['power_at_point_values']:.2f} at the point values. Success means that the "
            "two-sided test is significant in favour of the intervention; the priors give "
            f"probability {pr['prob_effect_favourable']:.2f} that the true effect favours the "
            "intervention, which no sample size can exceed.")
        target = asr.get("n_for_target")
        if target:
            if target.get("n_to_recruit"):
                sentences.append(f"An assurance of {asr['target']:g} needs "
                                 f"{target['n_to_recruit']:,} participants.")
            else:
                sentences.append(f"An assurance of {asr['target']:g} is not reachable: "
                                 f"{target['reason']}.")
    mcid = asr.get("mcid")
    if mcid and mcid.get("power") is not None:
        relation = ("larger than" if mcid["assumed_exceeds_mcid"] else "no larger than")
        sentences.append(
            f"The minimal clinically important difference is {mcid['value']:g} "
            f"({mcid['scale']}; {mcid['source']}); the assumed effect, "
            f"{mcid['assumed_effect']:.3g}, is {relation} it. At the MCID the trial has power "
            f"{mcid['power']:.2f}.")
        commands.append(mcid["command"])
    mech = [m for m in asr.get("mechanisms", []) if m.get("assurance") is not None]
    if mech:
        # Named by mechanism and process variable: a mechanism may have several paths.
        paths = {(m["mechanism"], m.get("mediator")): m for m in plan.get("mechanisms", [])}
        sentences.append("Assurance of each mechanism's test, over the same priors: " + "; ".join(
            f"{_path_name(paths.get((m['mechanism'], m.get('mediator'))), m)} "
            f"{m['assurance']:.2f} (power {m['power_at_planned_n']:.2f}; Monte Carlo SE "
            f"{_se(m['mc_se'])}, {m['draws']:,} draws)"
            for m in mech) + ".")
    priors = [{"assumption": field_text(r["field"]), "distribution": r["distribution"],
               "centre": f"{r['centre']:.4g}",
               "interval": f"{r['interval_95'][0]:.3g} to {r['interval_95'][1]:.3g}"}
              for r in asr["priors"]]
    return {"sentences": sentences, "priors": priors, "curve": asr.get("curve", []),
            "commands": commands}


def _implied_sentence(c) -> dict | None:
    parts, commands = [], []
    for row in c.get("implied", []):
        level = f"the {row['threshold']} threshold ({_pct(row['value'])})"
        if c["kind"] == "recruitment":
            text = f"recruiting at {level} of the projected rate"
            if row.get("months_to_target") is not None:
                text += (f" would take {_months(row['months_to_target'])} months instead of "
                         f"{_months(row['planned_months'])} to reach the target")
            if row.get("power") is not None:
                text += (f", or stopping on time would give {row['n_by_planned_end']:,} "
                         f"participants and power {row['power']:.2f}")
        elif c["kind"] == "retention":
            text = (f"retention at {level} would give power {row['power']:.2f} at the planned "
                    f"size; keeping the planned power needs "
                    f"{row['n_to_recruit_for_target_power']:,} participants")
            if row.get("months_to_target") is not None:
                text += f" ({_months(row['months_to_target'])} months of recruitment)"
        else:
            if row.get("power") is None:
                continue
            text = (f"adherence at {level} would dilute the effect to "
                    f"{row['effect_factor']:.2f} of that assumed, giving power "
                    f"{row['power']:.2f}")
        parts.append(text)
        if row.get("command"):
            commands.append(row["command"])
    if not parts:
        return None
    # Commands stay out of the prose (which is escaped as text); the template shows them as code.
    return {"text": f"For {c['id'].replace('_', ' ')}: " + "; ".join(parts) + ".",
            "commands": commands}


def _progression(plan) -> dict | None:
    fe = plan.get("feasibility")
    if not fe:
        return None
    rows = []
    for c in fe["criteria"]:
        for r in c.get("oc_table", []):
            rows.append({"criterion": c["id"], "true": f"{r['true']:.2f}", "at": r["at"],
                         "green": f"{r['green']:.3f}", "amber": f"{r['amber']:.3f}",
                         "red": f"{r['red']:.3f}"})
    implied = [s for s in (_implied_sentence(c) for c in fe["criteria"]) if s]
    models = "; ".join(f"{c['id']}: {c['model']}" for c in fe["criteria"] if c.get("model"))
    intro = ("The probability of each decision depends on the true value and on how many the "
             "pilot measures it on; it is computed from the exact distribution of the count "
             f"at the pilot's denominators ({models}) [@lewis2021].")
    re = fe.get("reestimation")
    reest = None
    if re:
        grid_rows = []
        for g in re["grids"]:
            for r in g["rows"]:
                grid_rows.append({"parameter": g["parameter"].replace("_", " "),
                                  "observed": f"{r['observed']:g}",
                                  "re_estimated": f"{r['re_estimated']:g}",
                                  "n": f"{r['n_to_recruit']:,}" if r["n_to_recruit"] else "-",
                                  "final": f"{r['n_final']:,}" if r["n_final"] else "-"})
        observed = "; ".join(f"{g['parameter'].replace('_', ' ')} from the "
                             f"{g['observed_as']}" for g in re["grids"])
        text = (f"Blinded sample-size re-estimation: {re['rule']} [@wittes1990; @friede2006]. "
                f"Re-estimated: {observed}.")
        if not re.get("max_n_to_recruit"):
            # Without a ceiling the rule is open-ended; a funder and the steering committee
            # need the most the trial can recruit (assumptions.feasibility.max_n_to_recruit).
            text += (" The largest sample size the re-estimation may set: **[TO COMPLETE: the "
                     "most participants the trial can recruit and is funded for]**.")
        t1 = re.get("type1")
        if t1 and t1["rows"]:
            sims = t1["rows"]
            text += (f" Simulated with no true effect ({sims[0]['draws']:,} trials at each pooled "
                     f"event rate, seed {sims[0]['seed']}), the two-sided type I error of "
                     f"{t1['test']} with this re-estimation is "
                     + _and([f"{r['with_reestimation']:.3f}" for r in sims])
                     + " at pooled event rates "
                     + _and([f"{r['rate']:.2f}" for r in sims])
                     + ", against " + _and([f"{r['fixed_size']:.3f}" for r in sims])
                     + f" at the planned fixed size (Monte Carlo SE {sims[0]['mc_se']:.4f}); "
                     "the simulated test stands in for the primary analysis model.")
        if re.get("timing_warning"):
            text += f" Timing: {re['timing_warning']}."
        if re.get("icc_note"):
            text += f" Note: {re['icc_note']}."
        final = ("Final (never below planned)" if not re.get("max_n_to_recruit") else
                 f"Final (never below planned, at most {re['max_n_to_recruit']:,})")
        reest = {"text": text, "rows": grid_rows, "final_heading": final}
    return {"intro": intro, "rows": rows, "implied": implied, "reestimation": reest}


def _feasibility_size(plan) -> str | None:
    fe = plan.get("feasibility")
    if not fe or fe.get("purpose") != "external-feasibility":
        return None
    parts = []
    for c in fe["criteria"]:
        if c["kind"] == "recruitment" or c.get("half_width_at_green") is None:
            continue
        parts.append(f"{c['id'].replace('_', ' ')} at {_pct(c['green'])} would be estimated "
                     f"to within +/- {c['half_width_at_green']:.3f} ({c['denominator']} "
                     "participants)")
    text = (f"This is an external feasibility study of {fe['pilot_n']:,} participants; it is "
            "not powered to test effectiveness and no hypothesis test of effectiveness will be "
            "made [@eldridge2016]. The sample size is justified by the precision of "
            f"the feasibility estimates at {fe['confidence']:.0%} confidence: "
            + "; ".join(parts) + ".")
    if fe.get("target_half_width"):
        needs = [f"{c['id'].replace('_', ' ')} {c['n_for_target_half_width']:,}"
                 for c in fe["criteria"] if c.get("n_for_target_half_width")]
        if needs:
            text += (f" A half-width of +/- {fe['target_half_width']:g} needs, at the green "
                     "threshold, " + ", ".join(needs) + " participants measured (n = z^2 "
                     "p (1 - p) / w^2 [@teare2014]).")
    text += (" Teare et al. [@teare2014] recommend at least 70 participants to estimate an "
             "SD and 60 to 100 per arm to estimate an event rate for the definitive trial.")
    return text


def _feasibility_objectives(plan) -> dict:
    fe = plan["feasibility"]
    items = []
    for c in fe["criteria"]:
        name = c["id"].replace("_", " ")
        items.append(f"To estimate {name} ({c['measured_on']}) with its {fe['confidence']:.0%} "
                     f"confidence interval, judged against progression criteria (green at "
                     f"least {_pct(c['green'])}, red below {_pct(c['amber'])}).")
    items.append("To estimate the control-arm rate or SD of the primary outcome, attrition and "
                 "the peer-worker ICC, to size the definitive trial.")
    return {"intro": "This is an external randomised feasibility study [@eldridge2016] "
                     "(SPIRIT 2025 item 10). It makes no test of effectiveness. Its "
                     "objectives are:",
            "objectives": items,
            "then": "The objectives below are those of the definitive trial this study "
                    "prepares for; here they are not tested."}


_FEASIBILITY_ANALYSIS = (
    "This feasibility study makes no hypothesis test of effectiveness. Recruitment, retention "
    "and adherence are reported as proportions with 95% confidence intervals and compared with "
    "the progression criteria (item 28b); outcomes are summarised by arm with confidence "
    "intervals only, to estimate the definitive trial's control-arm rate or SD, attrition and "
    "peer-worker ICC. The analyses described below are those planned for the definitive trial.")


def uncertainty_context(trial, plan) -> dict:
    """The ``uncertainty`` entry of the document context."""
    fe = plan.get("feasibility")
    purpose = fe["purpose"] if fe else (trial.model.trial.purpose or "confirmatory")
    external = purpose == "external-feasibility" and fe is not None
    return {"purpose": purpose, "purpose_text": PURPOSE_TEXT[purpose],
            "assurance": _assurance(plan), "progression": _progression(plan),
            "feasibility_size": _feasibility_size(plan),
            "feasibility_objectives": _feasibility_objectives(plan) if external else None,
            "feasibility_analysis": _FEASIBILITY_ANALYSIS if external else None}
