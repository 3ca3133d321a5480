"""The plan's assurance section: power averaged over the priors the trial file gives.

:func:`assurance_section` returns, beside the power at the point values, the
assurance of the primary outcome (O'Hagan, Stevens & Campbell, Pharm Stat
2005), the expected power curve against n, the n for a target assurance, the
power at the minimal clinically important difference, and each mechanism's
assurance.  The numbers come from :mod:`trialplan.stats.assurance` and the
closed forms; the primary's draws go through one vectorised call.

:func:`power_call` is the primary outcome's power at a given analysed n, with
the ``trialplan size`` command that reproduces it (used here and by the
progression criteria's implied power).
"""

from __future__ import annotations

import math

import numpy as np

from trialplan.errors import InputError, UnreachableTargetError
from trialplan.planning.calls import Call
from trialplan.stats import assurance as sa

ATTRITION = "assumptions.attrition"
ICC = "assumptions.clustering.icc"
_P = "assumptions.primary."
_CURVE_DRAWS = 20_000  # draws per point of the expected power curve and the n search
_MECHANISM_BATCH = 50
_MECHANISM_SE = 0.005  # stop drawing for a mechanism once its Monte Carlo SE is this small
_CURVE_FACTORS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)


def effect_direction(trial) -> str:
    """'greater' or 'less': the direction of the assumed effect (intervention vs control)."""
    p = trial.model.assumptions.primary
    out_type = trial.primary_outcome().type
    if out_type == "binary":
        signed = p.intervention_rate - p.control_rate
    elif out_type == "continuous":
        signed = p.d if p.d is not None else p.difference
    elif out_type == "count":
        signed = math.log(p.rate_ratio)
    else:
        signed = math.log(p.hazard_ratio)
    return "greater" if signed > 0 else "less"


def power_call(trial, n_control: float, overrides=None):
    """The primary's power at ``n_control`` analysed in the control arm.

    Returns the :class:`~trialplan.planning.calls.Call` of the size function
    with ``n`` given and ``power`` left out: its ``run()`` gives the power and
    its ``command()`` the ``trialplan size`` command that prints the same.
    ``overrides`` are as for the sample size (control_rate, intervention_rate,
    d, hazard_ratio, icc, cluster_size, attrition).
    """
    from trialplan.planning.plan import _primary_call

    call = _primary_call(trial, overrides)
    return call.replace(power=None, n=_design_n(trial, call.kwargs, n_control))


def _design_n(trial, kwargs, n_control):
    """The ``n`` of the size function for ``n_control`` analysed in the control arm.

    ``means`` and ``proportions`` take the control arm's n; ``survival`` takes the
    total number of events, participants analysed x P(event).
    """
    if "hr" not in kwargs:
        # A derived n (pilot n x retention, ...) to 12 significant digits, so the quoted
        # command reads 265.506, not 265.50600000000003.
        return n_control if isinstance(n_control, np.ndarray) else float(f"{n_control:.12g}")
    ratio = trial.model.trial.allocation_ratio
    return np.asarray(n_control) * (1.0 + ratio) * np.asarray(kwargs["event_prob"]) if (
        isinstance(n_control, np.ndarray) or isinstance(kwargs["event_prob"], np.ndarray)
    ) else float(f"{float(n_control) * (1.0 + ratio) * float(kwargs['event_prob']):.12g}")


def power_at(trial, n_control: float, overrides=None) -> dict:
    """Power at an analysed control-arm n, with its command (or the reason it has none)."""
    call = power_call(trial, n_control, overrides)
    try:
        power = float(call.run().power)
    except (InputError, UnreachableTargetError) as exc:
        return {"power": None, "command": call.command(), "error": str(exc)}
    return {"power": power, "command": call.command()}


def _prior_rows(trial) -> list[dict]:
    rows = []
    for name, spec in sorted(trial.priors.items()):
        prior = sa.Prior(spec.family, spec.params)
        lo, hi = prior.interval(0.95)
        rows.append({"field": name, "distribution": prior.describe(), "given": dict(spec.given),
                     "centre": spec.centre, "mean": prior.mean, "interval_95": [lo, hi]})
    return rows


def primary_attrition(trial) -> dict:
    """The primary outcome's loss to follow-up and where it comes from (attrition_for)."""
    from trialplan.planning.attrition import attrition_for

    return attrition_for(trial, trial.primary_outcome().id)


def _primary_priors(trial) -> dict:
    """The priors that act on the primary outcome's power.

    A prior on attrition acts where the primary outcome's loss to follow-up
    comes from (its own ``attrition``, else assumptions.attrition), and one on
    the ICC only in a clustered design.
    """
    attrition = primary_attrition(trial)["source"]
    clustered = trial.model.assumptions.clustering.kind != "none"
    return {k: sa.Prior(s.family, s.params) for k, s in trial.priors.items()
            if k == attrition or (k == ICC and clustered) or k.startswith(_P)}


def _success(trial, drawn: dict, size: int, n_recruit_control: float, direction: str,
             n_analysed_control: float | None = None):
    """P(significant in favour of the intervention) for each draw, at a recruited control n.

    Without a prior on attrition the analysed n is ``n_analysed_control`` when
    given (the plan's rounded analysed n), else the recruited n less attrition.
    """
    from trialplan.planning.plan import _primary_call

    a = trial.model.assumptions
    p = a.primary
    call = _primary_call(trial)
    args = {k: v for k, v in call.kwargs.items() if k != "power"}
    alpha = args.pop("alpha", 0.05)

    def fn(**kw):
        return Call.of(call.function, **kw).run()

    source = primary_attrition(trial)
    if source["source"] in drawn or n_analysed_control is None:
        attrition = drawn.get(source["source"], source["rate"])
        analysed = n_recruit_control * (1.0 - np.asarray(attrition))
        args["attrition"] = attrition  # the design effect uses the caseload analysed
    else:
        analysed = float(n_analysed_control)
    args["n"] = np.broadcast_to(analysed, (size,))
    if ICC in drawn:
        args["icc"] = drawn[ICC]
    out_type = trial.primary_outcome().type
    if out_type == "binary":
        p1 = np.asarray(drawn.get(_P + "control_rate", p.control_rate), dtype=float)
        if _P + "intervention_rate" in drawn:
            p2 = drawn[_P + "intervention_rate"]
        else:
            # As in the sensitivity analysis, a varying control rate keeps the risk ratio.
            p2 = np.clip(p1 * p.intervention_rate / p.control_rate, 1e-9, 1 - 1e-9)
        p1, p2 = np.broadcast_to(p1, (size,)), np.broadcast_to(p2, (size,))
        args.update(p1=p1, p2=p2)
        effect = p2 - p1
    elif out_type == "continuous":
        if _P + "d" in drawn or p.d is not None:
            d = drawn.get(_P + "d", p.d)
        else:
            d = (np.asarray(drawn.get(_P + "difference", p.difference))
                 / np.asarray(drawn.get(_P + "sd", p.sd)))
        effect = np.broadcast_to(np.asarray(d, dtype=float), (size,))
        args["d"] = effect
        if _P + "baseline_corr" in drawn:
            args["baseline_corr"] = drawn[_P + "baseline_corr"]
    elif out_type == "count":
        rr = np.broadcast_to(np.asarray(drawn.get(_P + "rate_ratio", p.rate_ratio),
                                        dtype=float), (size,))
        args["rr"] = rr
        if _P + "rate" in drawn:
            args["rate"] = drawn[_P + "rate"]
        effect = np.log(rr)
    else:
        hr = np.broadcast_to(np.asarray(drawn.get(_P + "hazard_ratio", p.hazard_ratio),
                                        dtype=float), (size,))
        args.update(hr=hr, event_prob=drawn.get(_P + "event_prob", p.event_prob))
        effect = np.log(hr)
    args["n"] = _design_n(trial, args, args["n"])
    args = {k: (np.broadcast_to(v, (size,)) if isinstance(v, np.ndarray) else v)
            for k, v in args.items()}
    return sa.favourable_power(fn, args, effect, direction, alpha), effect


def _truncate(drawn: dict, size: int) -> dict:
    return {k: v[:size] for k, v in drawn.items()}


def _mcid(trial, primary: dict) -> dict | None:
    p = trial.model.assumptions.primary
    out = trial.primary_outcome()
    mcid = p.mcid
    source = "assumptions.primary.mcid"
    if mcid is None and out.type == "continuous":
        measure = trial.measures.get(out.measure) or {}
        mcid = measure.get("mcid")
        source = f"the {out.measure} catalogue entry"
    if mcid is None:
        return None
    direction = effect_direction(trial)
    sign = 1.0 if direction == "greater" else -1.0
    n_c = primary["result"]["n_analysed_per_arm"]["control"]
    if out.type == "binary":
        p2 = p.control_rate + sign * mcid
        if not 0 < p2 < 1:
            return {"value": mcid, "scale": "rate difference", "source": source,
                    "power": None, "error": f"control rate {p.control_rate:g} plus the MCID "
                                            "leaves (0, 1)"}
        overrides, scale, assumed = ({"intervention_rate": p2}, "rate difference",
                                     abs(p.intervention_rate - p.control_rate))
    elif out.type == "continuous":
        sd = p.sd if p.sd is not None else (trial.measures.get(out.measure) or {}).get("sd")
        if sd is None:
            return {"value": mcid, "scale": "mean difference", "source": source,
                    "power": None, "error": "needs the outcome's SD (assumptions.primary.sd)"}
        overrides, scale = {"d": sign * mcid / sd}, "mean difference"
        assumed = abs(p.difference) if p.difference is not None else abs(p.d) * sd
    elif out.type == "count":
        overrides, scale, assumed = {"rate_ratio": mcid}, "rate ratio", p.rate_ratio
    else:
        overrides, scale, assumed = {"hazard_ratio": mcid}, "hazard ratio", p.hazard_ratio
    ratio_scale = out.type in ("time-to-event", "count")
    at = power_at(trial, n_c, overrides)
    return {"value": mcid, "scale": scale, "source": source, "assumed_effect": assumed,
            "assumed_exceeds_mcid": (abs(math.log(assumed)) > abs(math.log(mcid)) if ratio_scale
                                     else assumed > mcid),
            **at}


def _mechanism_assurance(trial, mechanisms: list[dict]) -> list[dict]:
    """Each computed mechanism's power averaged over the priors of its own call's inputs."""
    a = trial.model.assumptions
    settings = a.assurance
    out = []
    for mm in mechanisms:
        if mm.get("status") != "computed":
            continue
        i = next(k for k, p in enumerate(a.paths)
                 if p.mechanism == mm["mechanism"] and p.mediator == mm["mediator"])
        path = f"assumptions.paths[{i}]."
        kw = dict(mm["arguments"])
        mapping = {path + "a": ("a",), path + "b": ("b",), path + "cprime": ("cprime",),
                   path + "base_rate": ("base_rate",)}
        if "icc_m" in kw:
            mapping[ICC] = ("icc_m", "icc_y")
        notes = []
        if kw.get("outcome") == "binary" and _P + "control_rate" in trial.priors:
            if kw.get("base_rate") == a.primary.control_rate:
                mapping[_P + "control_rate"] = ("base_rate",)
            else:
                notes.append("the control-rate prior is not carried into this mechanism's "
                             "outcome rate, which is derived from it")
        names = [k for k in mapping if k in trial.priors]
        if any(k == ATTRITION or k.endswith(".attrition") for k in trial.priors):
            notes.append("the attrition prior is not carried into the mechanisms, each "
                         "analysed on its own variables' complete cases")
        entry = {"mechanism": mm["mechanism"], "mediator": mm.get("mediator"),
                 "power_at_planned_n": mm["power_at_planned_n"], "priors": names,
                 "notes": notes}
        if not names:
            entry.update(assurance=None, reason="no assumption of this mechanism has a prior")
            out.append(entry)
            continue
        priors = {k: sa.Prior(trial.priors[k].family, trial.priors[k].params)
                  for k in entry["priors"]}
        drawn = sa.draw_priors(priors, settings.mechanism_draws, a.seed)
        size = ({"clusters": mm["planned_clusters"]} if mm.get("planned_clusters")
                else {"n": mm["planned_n"]})
        batch = _mechanism_batches(mm.get("function", "mediation"), kw, size,
                                   {arg: drawn[name] for name in names for arg in mapping[name]})
        powers = np.empty(0)
        failed = 0
        for start in range(0, settings.mechanism_draws, _MECHANISM_BATCH):
            chunk = batch(start, start + _MECHANISM_BATCH)
            unusable = np.isnan(chunk)
            failed += int(np.sum(unusable))
            # A draw the mediation test cannot use counts as a failure.
            powers = np.concatenate([powers, np.where(unusable, 0.0, chunk)])
            # Stop once the Monte Carlo error is small (checked after each whole batch, so
            # the result depends only on the seed).
            if powers.size % _MECHANISM_BATCH == 0 and (
                    np.std(powers, ddof=1) / math.sqrt(powers.size) <= _MECHANISM_SE):
                break
        res = sa.expectation(powers, len(powers), a.seed)
        entry.update(res.to_dict())
        if failed:
            entry["reason"] = (f"{failed} of {settings.mechanism_draws} draws gave inputs the "
                               "mediation test cannot use; counted as failures")
        out.append(entry)
    return out


def _mechanism_batches(function: str, kw: dict, size: dict, drawn: dict):
    """``batch(start, stop)``: the mechanism's power for draws start to stop (nan: unusable).

    An analytic mediation test is evaluated on a batch of draws at once
    (:func:`trialplan.stats.mediation.power_over`, the same formulas on
    arrays); anything else (cluster-randomised mechanisms, simulated tests) is
    called once per draw.
    """
    from trialplan.choices import ANALYTIC_TESTS
    from trialplan.stats.mediation import power_over

    if function == "mediation" and kw.get("test", "joint") in ANALYTIC_TESTS and not kw.get(
            "simulate") and kw.get("scale", "residual") == "residual":
        try:
            centre = Call.of(function, **kw, **size).run()
        except (InputError, UnreachableTargetError):
            centre = None
        if centre is not None:
            return lambda start, stop: power_over(
                centre, **{arg: x[start:stop] for arg, x in drawn.items()})

    def one_by_one(start, stop):
        out = []
        for j in range(start, min(stop, len(next(iter(drawn.values()))))):
            call = {**kw, **{arg: float(x[j]) for arg, x in drawn.items()}}
            try:
                out.append(Call.of(function, **call, **size).run().power)
            except (InputError, UnreachableTargetError):
                out.append(np.nan)
        return np.asarray(out, dtype=float)

    return one_by_one


def assurance_section(trial, primary: dict, mechanisms: list[dict]) -> dict | None:
    """Assurance of the primary outcome and the mechanisms, or None without priors or MCID."""
    a = trial.model.assumptions
    settings = a.assurance
    mcid = _mcid(trial, primary)
    priors = _primary_priors(trial)
    if not trial.priors and mcid is None:
        return None
    res = primary["result"]
    out = {"priors": _prior_rows(trial), "power_at_point_values": res["power"], "mcid": mcid,
           "primary": None, "curve": [], "n_for_target": None,
           "target": settings.target, "mechanisms": [], "notes": []}
    if priors:
        draws, seed = settings.draws, a.seed
        direction = effect_direction(trial)
        drawn = sa.draw_priors(priors, draws, seed)
        ratio = trial.model.trial.allocation_ratio
        n_c = res["n_per_arm"]["control"]
        probs, effect = _success(trial, drawn, draws, n_c, direction,
                                 res["n_analysed_per_arm"]["control"])
        favourable = float(np.mean(effect > 0 if direction == "greater" else effect < 0))
        out["primary"] = {**sa.expectation(probs, draws, seed).to_dict(),
                          "direction": direction, "prob_effect_favourable": favourable,
                          "n_to_recruit": res["n_total"],
                          "priors": sorted(priors)}
        small = _truncate(drawn, _CURVE_DRAWS)
        size = min(_CURVE_DRAWS, draws)

        known: dict[int, float] = {}  # n to recruit -> assurance on the curve's draws

        def assured(n_total):
            if n_total not in known:
                n_control = n_total / (1.0 + ratio)
                try:
                    known[n_total] = float(np.mean(
                        _success(trial, small, size, n_control, direction)[0]))
                except InputError:
                    known[n_total] = 0.0  # too few to analyse (e.g. under two clusters)
            return known[n_total]

        for f in _CURVE_FACTORS:
            n_total = max(4, int(round(res["n_total"] * f)))
            n_c_analysed = n_total / (1.0 + ratio) * (1.0 - primary_attrition(trial)["rate"])
            at = power_at(trial, n_c_analysed)
            out["curve"].append({"n_to_recruit": n_total, "assurance": assured(n_total),
                                 "power": at["power"]})
        if settings.target is not None:
            try:
                n_needed = sa.n_for_assurance(assured, settings.target, lo=4,
                                              hi=int(res["n_total"] * 50),
                                              ceiling=favourable, known=known)
            except UnreachableTargetError as exc:
                out["n_for_target"] = {"n_to_recruit": None, "reason": str(exc)}
            else:
                n_c = n_needed / (1.0 + ratio)
                full = _success(trial, drawn, draws, n_c, direction)[0]
                out["n_for_target"] = {"n_to_recruit": n_needed,
                                       **sa.expectation(full, draws, seed).to_dict()}
        out["notes"].append(
            "assurance counts a trial as a success when the two-sided test at alpha is "
            "significant in favour of the intervention; it cannot exceed the prior probability "
            f"that the true effect favours the intervention ({favourable:.3f})")
        if len(drawn) and _CURVE_DRAWS < draws:
            out["notes"].append(f"the curve and the n search use the first {_CURVE_DRAWS:,} "
                                "draws (the same draws at every n)")
    out["mechanisms"] = _mechanism_assurance(trial, mechanisms)
    return out
