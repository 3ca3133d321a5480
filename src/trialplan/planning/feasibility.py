"""The pilot's progression criteria: denominators, precision, operating characteristics.

:func:`feasibility_section` returns, for an internal pilot or an external
feasibility study, each traffic-light criterion with

- its denominator: recruitment is judged on the number randomised against the
  projection; retention on participants whose follow-up falls due within the
  pilot (counted from the trial's time zero); adherence on intervention-arm
  participants who have had time to meet the adherence definition;
- the precision at the green threshold (Wilson interval; design effect when the
  share is clustered by peer worker or site; for recruitment
  z sqrt(green / projected) on the ratio scale, with between-site
  over-dispersion when given);
- P(green), P(amber), P(red) as functions of the true value (exact binomial,
  beta-binomial, Poisson or negative binomial; Lewis et al. 2021);
- the main trial's power and duration implied at each threshold, with the
  ``trialplan size`` command that reproduces the power;

and, when asked, the blinded re-estimation grid of the nuisance parameters
(Wittes & Brittain 1990; Friede & Kieser 2006).
"""

from __future__ import annotations

import math

import numpy as np

from trialplan.errors import TrialFileError
from trialplan.planning.assurance import power_at, primary_attrition
from trialplan.stats import _dist as sp
from trialplan.stats import progression as pg

_GRID_POINTS = 61  # true values at which the operating characteristics are tabulated


def purpose(trial) -> str:
    """The trial's purpose, as stated or implied (internal pilot when criteria are given)."""
    stated = trial.model.trial.purpose
    if stated is not None:
        return stated
    return "internal-pilot" if trial.model.assumptions.feasibility is not None else "confirmatory"


def _primary_attrition(trial) -> float:
    return primary_attrition(trial)["rate"]


def _reached(rec, months: float) -> int:
    from trialplan.planning.plan import recruitment_curve

    if months <= 0:
        return 0
    return int(math.floor(float(recruitment_curve(rec, months)) + 1e-9))


def _retention_denominator(trial, fe, pilot_n, notes, cid):
    """Pilot participants whose follow-up falls due before the pilot ends.

    A participant randomised at time s reaches a follow-up at month f (from time
    zero, which comes ``lag`` months after randomisation) only if
    s + lag + f <= pilot_months.  Retention is judged at the primary time point
    when anyone reaches it within the pilot, otherwise at the latest follow-up
    that some do reach (and a note says so).
    """
    months = trial.timepoint_months()
    primary = trial.primary_outcome()
    primary_month = max(months[t] for t in primary.timepoints)
    rec = trial.model.assumptions.recruitment
    zero = trial.model.trial.time_zero
    lag = trial.model.trial.time_zero_after_randomisation_months
    if fe.pilot_months is None or rec is None:
        return pilot_n, "pilot participants followed up at the primary timepoint"
    labels = {tp.id: (tp.label or tp.id) for tp in trial.model.timepoints}
    follow_ups = sorted({m_ for m_ in months.values() if m_ > 0}, reverse=True)
    for month in [primary_month] + [m_ for m_ in follow_ups if m_ < primary_month]:
        reached = _reached(rec, fe.pilot_months - month - lag)
        if reached >= 2:
            if month != primary_month:
                name = next(labels[t] for t, m_ in months.items() if m_ == month)
                notes.append(f"progression criterion {cid}: no pilot participant reaches the "
                             f"primary time point (month {primary_month:g} from {zero}) within "
                             f"the {fe.pilot_months:g}-month pilot; retention is judged at "
                             f"{name} (month {month:g}), on {reached} participants")
            return reached, (f"pilot participants due for follow-up at month {month:g} after "
                             f"{zero} before the pilot ends")
    notes.append(f"progression criterion {cid}: no pilot participant reaches any follow-up "
                 f"within the {fe.pilot_months:g}-month pilot; retention cannot be judged "
                 "until later")
    return 0, "no follow-up falls due within the pilot"


def _adherence_denominator(trial, fe, pilot_n, c, notes):
    ratio = trial.model.trial.allocation_ratio
    share = ratio / (1.0 + ratio)
    rec = trial.model.assumptions.recruitment
    if c.months_to_assess is None or fe.pilot_months is None or rec is None:
        if c.months_to_assess is None and fe.pilot_months is not None:
            notes.append(f"progression criterion {c.id}: months_to_assess not given, so every "
                         "intervention-arm pilot participant is counted, including those "
                         "randomised too late to meet the adherence definition")
        return (max(1, int(math.floor(pilot_n * share))),
                "intervention-arm pilot participants adhering")
    lag = trial.model.trial.time_zero_after_randomisation_months
    reached = _reached(rec, fe.pilot_months - c.months_to_assess - lag)
    return (int(math.floor(reached * share)),
            f"intervention-arm participants with {c.months_to_assess:g} months from "
            f"{trial.model.trial.time_zero} before the pilot ends, adhering")


def _clusters(trial, c, denom) -> tuple[list[int] | None, str | None]:
    if c.icc is None or denom < 1:
        return None, None
    a = trial.model.assumptions
    if c.kind == "adherence" and a.clustering.kind != "none":
        return pg.cluster_sizes(denom, a.clustering.cluster_size), "peer worker"
    sites = a.recruitment.sites if a.recruitment is not None else 1
    return pg.cluster_sizes(denom, denom / sites), "site"


def _months(trial, target, scale=1.0):
    from trialplan.planning.plan import _months_to

    rec = trial.model.assumptions.recruitment
    if rec is None:
        return None
    scaled = rec.model_copy(update={"screened_per_site_month":
                                    rec.screened_per_site_month * scale})
    months = _months_to(scaled, target)
    return None if math.isinf(months) else round(months, 2)


def _diluted(trial, factor) -> dict:
    """Overrides that scale the assumed effect by ``factor`` (non-adherers gain nothing)."""
    p = trial.model.assumptions.primary
    out_type = trial.primary_outcome().type
    if out_type == "binary":
        return {"intervention_rate": p.control_rate + (p.intervention_rate - p.control_rate)
                * factor}
    if out_type == "continuous":
        d = p.d if p.d is not None else p.difference / p.sd
        return {"d": d * factor}
    if out_type == "count":
        return {"rate_ratio": math.exp(math.log(p.rate_ratio) * factor)}
    return {"hazard_ratio": math.exp(math.log(p.hazard_ratio) * factor)}


def _implied(trial, c, final, expected, notes) -> list[dict]:
    """The main trial's power and duration if the true value sat at each threshold."""
    from trialplan.planning.plan import _n_for, recruitment_curve

    a = trial.model.assumptions
    ratio = trial.model.trial.allocation_ratio
    target = final["n_to_recruit"]
    planned_months = _months(trial, target)
    attrition = _primary_attrition(trial)
    rows = []
    for level in ("green", "amber"):
        value = getattr(c, level)
        row = {"threshold": level, "value": value}
        if c.kind == "recruitment":
            if purpose(trial) == "external-feasibility":
                continue  # the definitive trial's sites and rates are not in this file
            months = _months(trial, target, value)
            row.update(months_to_target=months, planned_months=planned_months)
            if planned_months is not None:
                scaled = a.recruitment.model_copy(update={
                    "screened_per_site_month": a.recruitment.screened_per_site_month * value})
                by_then = float(recruitment_curve(scaled, planned_months))
                row["n_by_planned_end"] = int(math.floor(by_then + 1e-9))
                row.update(power_at(trial, by_then / (1.0 + ratio) * (1.0 - attrition)))
        elif c.kind == "retention":
            n_c = final["n_to_recruit_per_arm"]["control"] * value
            row.update(power_at(trial, n_c, {"attrition": round(1.0 - value, 12)}))
            needed, err = _n_for(trial, {"attrition": round(1.0 - value, 12)})
            row.update(n_to_recruit_for_target_power=needed,
                       months_to_target=_months(trial, needed) if needed else None)
            if err:
                row["error"] = err
        elif c.kind == "adherence" and expected is not None:
            factor = min(value / expected, 1.0)
            overrides = _diluted(trial, factor)
            row.update(power_at(trial, final["n_analysed_per_arm"]["control"], overrides))
            row["effect_factor"] = factor
            n, err = _n_for(trial, overrides)
            row.update(n_to_recruit_for_target_power=n,
                       months_to_target=_months(trial, n) if n else None)
            if err:
                row["error"] = err
        else:
            continue
        rows.append(row)
    if c.kind in ("retention", "adherence") and expected is not None and c.green < expected:
        green = rows[0] if rows else {}
        if green.get("power") is not None:
            notes.append(
                f"progression criterion {c.id}: the green threshold ({c.green:g}) is below the "
                f"{c.kind} the sample size assumes ({expected:g}); a trial that only just "
                f"passes green would have power {green['power']:.3f}, not {a.power:g} "
                f"(check: {green['command']})")
    return rows


def _oc_table(oc_fn, c, expected) -> list[dict]:
    points = {}
    for name, value in ((("assumed", expected),) if expected is not None else ()) + (
            ("green", c.green), ("midway", 0.5 * (c.green + c.amber)), ("amber", c.amber),
            ("below amber", max(c.amber - (c.green - c.amber), 0.01))):
        key = round(value, 10)
        points[key] = (f"{points[key][0]}, {name}", value) if key in points else (name, value)
    rows = []
    for name, value in points.values():
        oc = oc_fn(np.array([value]))
        rows.append({"true": value, "at": name, **{k: float(oc[k][0]) for k in pg.DECISIONS}})
    return rows


def _criterion(trial, fe, c, pilot_n, site_projection, z, final, notes) -> dict:
    expected = c.expected
    sizes = None
    if c.kind == "recruitment":
        denom = int(round(sum(site_projection)))
        what = "participants randomised as a share of the projection"
        expected = 1.0 if expected is None else expected
        half = pg.recruitment_half_width(site_projection, c.green, z, fe.recruitment_cv)
        ci = (max(0.0, c.green - half), c.green + half)
        grid = np.linspace(0.0, 1.5, _GRID_POINTS)

        def oc_fn(true):
            return pg.recruitment_oc(site_projection, c.green, c.amber, true,
                                     fe.recruitment_cv)
        model = ("Poisson count" if not fe.recruitment_cv else
                 f"negative binomial count at each site (rate CV {fe.recruitment_cv:g})")
        cluster = None
    else:
        if c.kind == "retention":
            denom, what = _retention_denominator(trial, fe, pilot_n, notes, c.id)
            if expected is None:
                expected = 1.0 - _primary_attrition(trial)
        elif c.kind == "adherence":
            denom, what = _adherence_denominator(trial, fe, pilot_n, c, notes)
        else:
            denom, what = c.n, c.label or c.id
        sizes, cluster = _clusters(trial, c, denom)
        grid = np.linspace(0.0, 1.0, _GRID_POINTS)
        if denom < 1:
            return {"id": c.id, "kind": c.kind, "label": c.label or what, "green": c.green,
                    "amber": c.amber, "red_below": c.amber, "denominator": 0,
                    "measured_on": what, "expected": expected, "half_width_at_green": None,
                    "interval_at_green": None, "separates_green_from_red": False,
                    "oc": None, "oc_table": [], "implied": [], "model": None,
                    "design_effect": None, "clusters": None}
        de = pg.design_effect(sizes, c.icc) if sizes else 1.0
        half = z * math.sqrt(c.green * (1 - c.green) * de / denom)
        ci = pg.wilson(c.green, denom / de, z)
        if sizes:
            def oc_fn(true):
                return pg.clustered_oc(sizes, c.green, c.amber, true, c.icc)
            model = (f"beta-binomial within each {cluster} (ICC {c.icc:g}, {len(sizes)} "
                     f"{cluster}s)")
        else:
            def oc_fn(true):
                return pg.binomial_oc(denom, c.green, c.amber, true)
            model = "binomial"
    oc = oc_fn(grid)
    entry = {
        "id": c.id, "kind": c.kind, "label": c.label or what, "green": c.green,
        "amber": c.amber, "red_below": c.amber, "denominator": denom, "measured_on": what,
        "expected": expected, "half_width_at_green": half, "interval_at_green": [ci[0], ci[1]],
        "separates_green_from_red": half < (c.green - c.amber), "model": model,
        "design_effect": (pg.design_effect(sizes, c.icc) if sizes else None),
        "clusters": ({"by": cluster, "count": len(sizes), "icc": c.icc} if sizes else None),
        "oc": {"true": [round(float(g), 6) for g in grid],
               **{k: [float(v) for v in oc[k]] for k in pg.DECISIONS}},
        "oc_table": _oc_table(oc_fn, c, expected if c.kind != "recruitment" else 1.0),
        "implied": _implied(trial, c, final, expected, notes),
    }
    if fe.target_half_width is not None and c.kind != "recruitment":
        entry["n_for_target_half_width"] = pg.n_for_half_width(
            c.green, fe.target_half_width, z, entry["design_effect"] or 1.0)
    if half >= c.green - c.amber:
        notes.append(f"progression criterion {c.id}: with {denom} in the pilot the "
                     f"{fe.confidence:.0%} interval at the green threshold (+/- {half:.3f}) is "
                     f"wider than the amber band ({c.amber:g} to {c.green:g}): a pilot result "
                     "at the green threshold could not rule out red")
    return entry


def _site_projection(trial, fe, pilot_n) -> list[float]:
    from trialplan.planning.plan import site_recruitment

    rec = trial.model.assumptions.recruitment
    if fe.pilot_months is not None and rec is not None:
        per_site = site_recruitment(rec, fe.pilot_months)[:, 0]
        # Scale to the whole-number pilot projection so the two agree exactly.
        return [float(s) * pilot_n / float(per_site.sum()) for s in per_site if s > 0]
    sites = rec.sites if rec is not None else 1
    return [pilot_n / sites] * sites


def feasibility_section(trial, final: dict) -> tuple[dict | None, list[str]]:
    """The pilot's criteria with their precision and operating characteristics."""
    from trialplan.planning.plan import _problem, recruitment_curve

    a = trial.model.assumptions
    fe = a.feasibility
    notes: list[str] = []
    if fe is None:
        stated = trial.model.trial.purpose
        if stated in ("internal-pilot", "external-feasibility"):
            raise TrialFileError([_problem(trial, ("trial", "purpose"),
                                           f"purpose '{stated}' needs assumptions.feasibility "
                                           "(pilot_n or pilot_months, and progression "
                                           "criteria)")])
        return None, notes
    if fe.pilot_n is not None:
        pilot_n = fe.pilot_n
        how = "given as pilot_n"
    else:
        rec = a.recruitment
        if rec is None:
            raise TrialFileError([_problem(trial, ("assumptions", "feasibility", "pilot_months"),
                                           "pilot_months needs assumptions.recruitment to "
                                           "project how many are randomised in the pilot; add "
                                           "'recruitment:' or give pilot_n instead")])
        pilot_n = int(math.floor(float(recruitment_curve(rec, fe.pilot_months)) + 1e-9))
        how = f"projected randomised in the first {fe.pilot_months:g} months"
        if pilot_n < 1:
            raise TrialFileError([_problem(trial, ("assumptions", "feasibility", "pilot_months"),
                                           f"no one is projected to be randomised in the "
                                           f"first {fe.pilot_months:g} months: lengthen the "
                                           "pilot or give pilot_n")])
    z = float(sp.ndtri(0.5 + fe.confidence / 2.0))
    if purpose(trial) == "internal-pilot" and pilot_n > final["n_to_recruit"]:
        field = "pilot_n" if fe.pilot_n is not None else "pilot_months"
        raise TrialFileError([_problem(trial, ("assumptions", "feasibility", field),
                                       f"the internal pilot ({pilot_n:,} randomised, {how}) is "
                                       f"larger than the whole trial ({final['n_to_recruit']:,} "
                                       "to recruit): shorten or shrink the pilot")])
    if purpose(trial) == "external-feasibility" and pilot_n > final["n_to_recruit"]:
        notes.append(f"the feasibility study ({pilot_n:,} randomised) is larger than the "
                     f"definitive trial it prepares ({final['n_to_recruit']:,} to recruit): "
                     "check the definitive trial's assumptions (effect, power) or the "
                     "feasibility study's size")
    projection = _site_projection(trial, fe, pilot_n)
    criteria = [_criterion(trial, fe, c, pilot_n, projection, z, final, notes)
                for c in fe.criteria]
    months_to_pilot_n = None
    if a.recruitment is not None:
        from trialplan.planning.plan import _months_to

        months = _months_to(a.recruitment, pilot_n)
        months_to_pilot_n = None if math.isinf(months) else round(months, 2)
    out = {"purpose": purpose(trial), "pilot_n": pilot_n, "pilot_n_from": how,
           "months_to_pilot_n": months_to_pilot_n,
           "pilot_months": fe.pilot_months, "confidence": fe.confidence,
           "time_zero": trial.model.trial.time_zero,
           "time_zero_after_randomisation_months":
               trial.model.trial.time_zero_after_randomisation_months,
           "target_half_width": fe.target_half_width, "criteria": criteria,
           "reestimation": (_reestimation(trial, final, pilot_n) if fe.blinded_reestimation
                            else None)}
    return out, notes


def _reestimation_timing(trial, pilot_n, n_to_recruit) -> dict | None:
    """When the pilot's participants have their primary outcome, to re-estimate from.

    The pooled event rate, SD and loss to follow-up of the primary outcome can
    only be estimated from participants who have reached its time point: the
    first ``pilot_n`` randomised reach it ``lag + primary month`` after they are
    randomised, which may be well after the pilot's progression decision, or
    after recruitment has finished (when a re-estimate can no longer change the
    sample size).
    """
    from trialplan.planning.plan import _months_to

    a = trial.model.assumptions
    rec, fe = a.recruitment, a.feasibility
    if rec is None or fe.pilot_months is None:
        return None
    months = trial.timepoint_months()
    primary_month = max(months[t] for t in trial.primary_outcome().timepoints)
    lag = trial.model.trial.time_zero_after_randomisation_months
    due = _months_to(rec, pilot_n) + lag + primary_month
    complete = _months_to(rec, n_to_recruit)
    return {"month": round(due, 1), "pilot_months": fe.pilot_months,
            "at_pilot_end": _reached(rec, fe.pilot_months - primary_month - lag),
            "primary_month": primary_month,
            "recruitment_complete_month": None if math.isinf(complete) else round(complete, 1)}


def _reestimation(trial, final, pilot_n) -> dict:
    """Sample size over a grid of blindly re-estimated nuisance parameters.

    Binary primary: the pooled (blinded) event rate pbar is observed; the
    control rate is recovered assuming the planned difference delta,
    p_C = pbar - w delta with w the intervention share (Friede & Kieser 2006
    use this for binary outcomes).  Continuous: the one-sample (lumped)
    variance of the pooled data, less the part due to the assumed difference,
    w (1 - w) delta^2, estimates the SD (Kieser & Friede 2003; Wittes &
    Brittain 1990 propose re-estimating the SD at an internal pilot).
    Attrition: the pooled loss to follow-up, around the primary outcome's
    planned rate.  The sample size is recomputed with each re-estimate, never
    reduced below the planned size and never raised above
    ``max_n_to_recruit`` when the file gives it.
    """
    from trialplan.planning.plan import _n_for, _problem

    a = trial.model.assumptions
    p = a.primary
    out_type = trial.primary_outcome().type
    ratio = trial.model.trial.allocation_ratio
    w = ratio / (1.0 + ratio)
    planned = final["n_to_recruit"]
    cap = a.feasibility.max_n_to_recruit
    if cap is not None and cap < planned:
        raise TrialFileError([_problem(trial, ("assumptions", "feasibility", "max_n_to_recruit"),
                                       f"max_n_to_recruit ({cap:,}) is below the planned sample "
                                       f"size ({planned:,} to recruit): the re-estimation could "
                                       "only lower it, which the rule does not allow")])

    def final_n(n):
        """Never below the planned size; never above the cap."""
        return None if not n else min(max(n, planned), cap) if cap else max(n, planned)

    grids = []
    if out_type == "binary":
        delta = p.intervention_rate - p.control_rate
        pooled = p.control_rate + w * delta
        rows = []
        for k in (-0.10, -0.05, 0.0, 0.05, 0.10):
            pbar = round(pooled + k, 4)
            p1 = pbar - w * delta
            if not (0 < p1 < 1 and 0 < p1 + delta < 1):
                continue
            n, err = _n_for(trial, {"control_rate": p1, "intervention_rate": p1 + delta})
            rows.append({"observed": pbar, "re_estimated": round(p1, 4), "n_to_recruit": n,
                         "n_final": final_n(n), "error": err})
        grids.append({"parameter": "control_rate", "observed_as": "pooled event rate, blind "
                      "to allocation", "rows": rows})
    elif out_type == "continuous" and p.sd is not None and p.difference is not None:
        rows = []
        lumped0 = math.sqrt(p.sd**2 + w * (1 - w) * p.difference**2)
        for k in (0.8, 0.9, 1.0, 1.1, 1.2, 1.3):
            lumped = lumped0 * k
            sd = math.sqrt(max(lumped**2 - w * (1 - w) * p.difference**2, 1e-12))
            n, err = _n_for(trial, {"d": p.difference / sd})
            rows.append({"observed": round(lumped, 4), "re_estimated": round(sd, 4),
                         "n_to_recruit": n, "n_final": final_n(n),
                         "error": err})
        grids.append({"parameter": "sd", "observed_as": "one-sample SD of the pooled outcome, "
                      "less the part due to the assumed difference", "rows": rows})
    base = primary_attrition(trial)["rate"]
    rows = []
    for k in (-0.05, 0.0, 0.05, 0.10, 0.15):
        value = round(base + k, 4)
        if not 0 <= value < 0.9:
            continue
        n, err = _n_for(trial, {"attrition": value})
        rows.append({"observed": value, "re_estimated": value, "n_to_recruit": n,
                     "n_final": final_n(n), "error": err})
    grids.append({"parameter": "attrition", "observed_as": "pooled loss to follow-up",
                  "rows": rows})
    icc_note = None
    if a.clustering.kind == "partial":
        icc_note = ("the peer-worker ICC is not re-estimated: with only the intervention arm "
                    "clustered, estimating it reveals allocation; it stays at the planned value")
    elif a.clustering.kind == "cluster":
        rows = []
        for v in sorted({round(a.clustering.icc * f, 4) for f in (0.5, 1.0, 1.5, 2.0)}):
            if v >= 1:
                continue
            n, err = _n_for(trial, {"icc": v})
            rows.append({"observed": v, "re_estimated": v, "n_to_recruit": n,
                         "n_final": final_n(n), "error": err})
        grids.append({"parameter": "icc", "observed_as": "ICC of the pooled outcome, blind to "
                      "allocation (both arms clustered)", "rows": rows})
    limit = (f", up to at most {cap:,} participants" if cap else "")
    timing = _reestimation_timing(trial, pilot_n, planned)
    if timing is None:
        when = "at the end of the internal pilot"
    else:
        when = (f"once the first {pilot_n:,} participants randomised have reached the primary "
                f"time point (month {timing['primary_month']:g} after "
                f"{trial.model.trial.time_zero}), expected about month {timing['month']:g} from "
                "the first site opening,")
    rule = (f"{when} the nuisance parameters are re-estimated from their pooled data without "
            "unblinding; the sample size is recomputed with the planned effect, alpha and "
            f"power, and increased if larger{limit} (never decreased); the effect is not "
            "re-estimated")
    warning = None
    if timing is not None and timing["month"] > timing["pilot_months"]:
        have = timing["at_pilot_end"]
        who = ("no pilot participant" if have == 0 else
               f"only {have:,} pilot participant{'' if have == 1 else 's'}")
        warning = (f"the primary outcome falls due after the internal pilot's progression "
                   f"decision (month {timing['pilot_months']:g}): {who} will have it by then, "
                   "so the re-estimation comes after the progression decision")
        done = timing["recruitment_complete_month"]
        if done is not None and timing["month"] >= done:
            warning += (f"; by month {timing['month']:g} recruitment of the planned "
                        f"{planned:,} would be complete (about month {done:g}), so a larger "
                        "re-estimate could no longer be acted on: re-estimate from an earlier "
                        "measure of the outcome, or drop the re-estimation")
    return {"planned_n_to_recruit": planned, "max_n_to_recruit": cap, "grids": grids,
            "icc_note": icc_note, "timing": timing, "timing_warning": warning, "rule": rule,
            "type1": _reestimation_type1(trial, final, pilot_n, cap)}


_TYPE1_DRAWS = 10_000  # simulated trials per event rate: Monte Carlo SE 0.0022 at alpha 0.05


def _reestimation_type1(trial, final, pilot_n, cap) -> dict | None:
    """The re-estimation rule's type I error, simulated at three pooled event rates.

    Binary primary outcome, individually randomised (with or without peer-worker
    clustering): the pooled two-proportion test with and without the
    re-estimation, on the same simulated pilots (:mod:`trialplan.stats.reestimation`).
    """
    from trialplan.planning.plan import _primary_call
    from trialplan.stats.reestimation import reestimation_type1

    a = trial.model.assumptions
    p = a.primary
    if (trial.primary_outcome().type != "binary" or a.clustering.kind == "cluster"
            or trial.model.trial.allocation_ratio != 1):
        return None
    delta = p.intervention_rate - p.control_rate
    keep = 1.0 - _primary_attrition(trial)

    def n_for(control):
        r = _primary_call(trial, {"control_rate": control,
                                  "intervention_rate": control + delta}).run()
        return np.asarray(r.n_analysed_per_arm["control"])

    partial = a.clustering.kind == "partial"
    pooled = p.control_rate + delta / 2.0
    rows = []
    for rate in (pooled - 0.05, pooled, pooled + 0.05):
        if not (0 < rate - abs(delta) and rate + abs(delta) < 1):
            continue
        res = reestimation_type1(
            rate, n_pilot=max(1, int(pilot_n * keep / 2)),
            n_planned=int(final["n_analysed_per_arm"]["control"]),
            n_max=int(cap * keep / 2) if cap else None, n_for_pooled=n_for, delta=delta,
            icc=a.clustering.icc if partial else 0.0,
            caseload=round(final["cluster_size_analysed"]) if partial else 1,
            alpha=a.alpha, draws=_TYPE1_DRAWS, seed=a.seed)
        rows.append(res.to_dict())
    return {"rows": rows, "test": "the pooled two-proportion test" + (
        " (its variance inflated by the peer-worker design effect)" if partial else "")}
