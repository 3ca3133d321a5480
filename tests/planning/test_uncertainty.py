"""Priors in the trial file, the plan's assurance, and the pilot's progression criteria."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from trialplan.cli import cli
from trialplan.errors import TrialFileError
from trialplan.model.checks import example_text, load_trial, load_trial_text
from trialplan.planning import build_plan
from trialplan.render.drafts import markdown_for
from trialplan.stats import assurance as sa
from trialplan.stats import mediation

PILOT = Path(__file__).resolve().parents[2] / "protocols" / "feasibility-pilot" / "trial.yaml"


@pytest.fixture(scope="module")
def example():
    trial = load_trial_text(example_text(), "trial.yaml")
    return trial, build_plan(trial)


def _variant(text, **changes):
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new)
    return load_trial_text(text, "variant.yaml")


def _cli_json(command):
    args = command.split()[1:] + ["--json"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


CONTROL = ("    control_rate:             # CORE trial control arm: 83/216 readmitted within 1 "
           "year\n      {distribution: beta, events: 83, total: 216}\n")


ICC_PRIOR = ("    icc:                      # assumed: no published peer-worker ICC was found\n"
             "      {distribution: beta, mean: 0.03, sd: 0.02}\n")


def test_a_prior_is_replaced_by_its_centre(example):
    trial, plan = example
    assert trial.model.assumptions.primary.control_rate == 83 / 216
    assert trial.model.assumptions.clustering.icc == 0.03
    fixed = _variant(example_text(), **{CONTROL: f"    control_rate: {83 / 216!r}\n",
                                        ICC_PRIOR: "    icc: 0.03\n"})
    assert build_plan(fixed)["primary"] == plan["primary"]
    spec = trial.priors["assumptions.primary.control_rate"]
    assert (spec.family, dict(spec.params)) == ("beta", {"a": 83.0, "b": 133.0})


@pytest.mark.parametrize("replacement,field,message", [
    ("    control_rate: {distribution: normal, mean: 0.38, sd: 0.05}\n",
     "assumptions.primary.control_rate", "truncate it"),
    ("    control_rate: {distribution: beta, mean: 0.38, sd: 0.6}\n",
     "assumptions.primary.control_rate", "and 0 < sd <"),
    ("    control_rate: {distribution: beta, events: 83}\n",
     "assumptions.primary.control_rate", "takes {events, total}"),
    ("    control_rate: {distribution: cauchy, mean: 0.38}\n",
     "assumptions.primary.control_rate", "distribution must be one of"),
    # a fixed value written as a distribution: sd squared underflows to 0 (found by fuzzing)
    ("    control_rate: {distribution: beta, mean: 0.38, sd: 1.0e-300}\n",
     "assumptions.primary.control_rate", "too small for a distribution"),
])
def test_bad_priors_name_the_file_line_and_field(replacement, field, message):
    text = example_text()
    with pytest.raises(TrialFileError) as info:
        _variant(text, **{CONTROL: replacement})
    problems = info.value.problems
    line = text[:text.index(CONTROL)].count("\n") + 1
    hit = [p for p in problems if p.field == field]
    assert hit and message in hit[0].message and hit[0].line == line, problems
    assert hit[0].file == "variant.yaml"


def test_a_prior_where_none_is_accepted_is_refused():
    with pytest.raises(TrialFileError) as info:
        _variant(example_text(), **{"  alpha: 0.05\n":
                                    "  alpha: {distribution: uniform, lower: 0.01, upper: 0.05}\n"})
    assert any(p.field == "assumptions.alpha" and "not accepted here" in p.message
               for p in info.value.problems)


def test_plan_reports_assurance_beside_power(example):
    _, plan = example
    asr = plan["assurance"]
    pr = asr["primary"]
    assert asr["power_at_point_values"] == plan["primary"]["result"]["power"]
    assert pr["draws"] == 100_000 and pr["seed"] == 20261126 and 0 < pr["mc_se"] < 0.005
    # Uncertainty about the effect lowers the chance of success below the power at the centre,
    # and no n can take it above the prior probability that the effect favours the intervention.
    assert pr["assurance"] < asr["power_at_point_values"]
    curve = [c["assurance"] for c in asr["curve"]]
    assert curve == sorted(curve) and curve[-1] < pr["prob_effect_favourable"]
    target = asr["n_for_target"]
    assert target["assurance"] >= asr["target"] - 3 * target["mc_se"]
    assert target["n_to_recruit"] > plan["final"]["n_to_recruit"]
    mcid = asr["mcid"]
    assert mcid["power"] == pytest.approx(_cli_json(mcid["command"])["power"], rel=1e-12)
    assert mcid["power"] < asr["power_at_point_values"]


def test_mechanism_assurance_agrees_with_quadrature_within_its_mc_error():
    # Path a of the role-modelling mechanism with a normal prior; only that prior varies.
    text = example_text().replace(
        "      a: 0.3\n      b: 0.3\n",
        "      a: {distribution: normal, mean: 0.2, sd: 0.08}\n      b: 0.3\n", 1)
    text = text.replace("    draws: 100000\n", "    draws: 100000\n    mechanism_draws: 300\n")
    text = text.replace(ICC_PRIOR, "    icc: 0.03\n")
    trial = load_trial_text(text, "variant.yaml")
    plan = build_plan(trial)
    mm = next(m for m in plan["assurance"]["mechanisms"] if m["mechanism"] == "role_modelling")
    assert mm["priors"] == ["assumptions.paths[0].a"]
    kw = next(m for m in plan["mechanisms"] if m["mechanism"] == "role_modelling")
    u, w = np.polynomial.legendre.leggauss(40)
    u, w = 0.5 * (u + 1), 0.5 * w
    prior = sa.Prior.normal(0.2, 0.08)
    exact = sum(wi * mediation(**{**kw["arguments"], "a": float(ai)}, n=kw["planned_n"]).power
                for ai, wi in zip(prior.ppf(u), w, strict=True))
    assert abs(mm["assurance"] - exact) < 4 * mm["mc_se"] + 1e-9


def test_implied_power_matches_trialplan_size_at_the_threshold(example):
    _, plan = example
    rows = [r for c in plan["feasibility"]["criteria"] for r in c["implied"]
            if r.get("power") is not None]
    assert {r["threshold"] for r in rows} == {"green", "amber"} and len(rows) >= 5
    for r in rows:
        assert r["power"] == pytest.approx(_cli_json(r["command"])["power"], rel=1e-12)


def test_retention_and_adherence_denominators_count_from_time_zero(example):
    trial, plan = example
    from trialplan.planning.plan import recruitment_curve

    rec = trial.model.assumptions.recruitment
    crit = {c["id"]: c for c in plan["feasibility"]["criteria"]}
    # Randomised, then discharged half a month later, then followed up 4 months after that,
    # all within the 9-month pilot: those randomised by month 4.5.
    assert crit["retention"]["denominator"] == math.floor(float(recruitment_curve(rec, 4.5)))
    # Adherence needs 2 months after discharge: intervention arm of those randomised by 6.5.
    assert crit["adherence"]["denominator"] == math.floor(
        math.floor(float(recruitment_curve(rec, 6.5))) / 2)
    assert crit["adherence"]["clusters"]["by"] == "peer worker"
    assert "negative binomial" in crit["recruitment"]["model"]


def test_green_below_the_assumed_retention_warns_with_the_power(example):
    _, plan = example
    note = next(n for n in plan["notes"] if "retention the sample size assumes" in n)
    green = next(c for c in plan["feasibility"]["criteria"] if c["id"] == "retention")
    power = green["implied"][0]["power"]
    assert f"power {power:.3f}" in note and power < 0.9


def test_blinded_reestimation_grid(example):
    _, plan = example
    re = plan["feasibility"]["reestimation"]
    grid = {g["parameter"]: g for g in re["grids"]}
    assert set(grid) == {"control_rate", "attrition"} and "ICC is not re-estimated" in \
        re["icc_note"]
    planned = plan["final"]["n_to_recruit"]
    same = next(r for r in grid["control_rate"]["rows"] if r["observed"] == round(
        83 / 216 + 0.5 * (0.29 - 83 / 216), 4))
    assert same["n_to_recruit"] == pytest.approx(planned, abs=4)
    for g in grid.values():
        assert all(r["n_final"] >= planned for r in g["rows"])
    ns = [r["n_to_recruit"] for r in grid["attrition"]["rows"]]
    assert ns == sorted(ns)


def test_feasibility_example_reads_as_a_feasibility_study():
    trial = load_trial(PILOT)
    plan = build_plan(trial)
    fe = plan["feasibility"]
    assert fe["purpose"] == "external-feasibility"
    retention = next(c for c in fe["criteria"] if c["kind"] == "retention")
    assert retention["n_for_target_half_width"] == 62  # 1.96^2 x .8 x .2 / .1^2 = 61.46
    feas, _ = markdown_for(trial, "feasibility", plan=plan, with_figures=False)
    prot, _ = markdown_for(trial, "protocol", plan=plan, with_figures=False)
    assert "feasibility study protocol" in "\n".join(feas.splitlines()[:6])  # the title block
    assert "not powered to test effectiveness" in feas
    assert "internal pilot" not in feas.lower()
    assert "makes no test of effectiveness" in prot
    assert "This feasibility study makes no hypothesis test of effectiveness" in prot


def test_blinded_sd_reestimation_for_a_continuous_outcome_in_a_cluster_trial():
    text = (PILOT.parent.parent / "cluster-wards" / "trial.yaml").read_text()
    text = text.replace("    d: 0.25\n", "    difference: 2.5\n    sd: 10\n")
    text = text.replace("  recruitment:\n", "  feasibility:\n    pilot_months: 6\n"
                        "    blinded_reestimation: true\n    criteria:\n"
                        "      - {id: retention, kind: retention, green: 0.8, amber: 0.6}\n"
                        "  recruitment:\n", 1)
    trial = load_trial_text(text, "wards.yaml")
    plan = build_plan(trial)
    grids = {g["parameter"]: g for g in plan["feasibility"]["reestimation"]["grids"]}
    assert set(grids) == {"sd", "attrition", "icc"}
    planned = plan["final"]["n_to_recruit"]
    rows = grids["sd"]["rows"]
    # The pooled SD includes the spread of the two arm means: sqrt(10^2 + 2.5^2 / 4).
    base = next(r for r in rows if r["re_estimated"] == pytest.approx(10.0))
    assert base["observed"] == pytest.approx(math.sqrt(100 + 2.5**2 / 4), abs=1e-4)
    assert base["n_to_recruit"] == planned
    ns = [r["n_to_recruit"] for r in rows]
    assert ns == sorted(ns) and ns[0] < planned < ns[-1]
    assert all(r["n_final"] == max(r["n_to_recruit"], planned) for r in rows)
    icc = [r["n_to_recruit"] for r in grids["icc"]["rows"]]
    assert icc == sorted(icc)


def test_assurance_of_a_continuous_cluster_trial_agrees_with_quadrature():
    # A prior on d alone: one dimension, so the plan's Monte Carlo answer can be checked by
    # quadrature through the same closed form (cluster randomised, t with clusters - 2 df).
    text = (PILOT.parent.parent / "cluster-wards" / "trial.yaml").read_text()
    text = text.replace("    d: 0.25\n", "    d: {distribution: normal, estimate: 0.25, "
                        "ci: [0.05, 0.45]}\n")
    trial = load_trial_text(text, "wards.yaml")
    plan = build_plan(trial)
    pr = plan["assurance"]["primary"]
    from trialplan.planning.assurance import power_call

    n_c = plan["primary"]["result"]["n_analysed_per_arm"]["control"]
    call = power_call(trial, n_c)
    args = call.kwargs
    from trialplan.stats import means as fn

    prior = sa.Prior.normal(0.25, 0.4 / 3.919927969080108)
    u, w = np.polynomial.legendre.leggauss(200)
    u, w = 0.5 * (u + 1), 0.5 * w
    d = prior.ppf(u)
    args.pop("d")
    alpha = args.pop("alpha")
    args["n"] = np.full(d.shape, float(n_c))
    probs = sa.favourable_power(fn, {**args, "d": d}, d, "greater", alpha)
    exact = float(np.sum(w * probs))
    assert abs(pr["assurance"] - exact) < 4 * pr["mc_se"]
    assert pr["prob_effect_favourable"] == pytest.approx(st_norm_cdf(0.25 / prior.p["sd"]),
                                                         abs=0.005)


def st_norm_cdf(x):
    return 0.5 * math.erfc(-x / math.sqrt(2))


def test_a_pilot_purpose_without_criteria_names_the_field():
    text = (PILOT.parent.parent / "cluster-wards" / "trial.yaml").read_text()
    text = text.replace("  design: cluster\n", "  design: cluster\n  purpose: internal-pilot\n")
    assert "purpose: internal-pilot" in text
    with pytest.raises(TrialFileError) as info:
        build_plan(load_trial_text(text, "wards.yaml"))
    (problem,) = info.value.problems
    assert problem.field == "trial.purpose" and "assumptions.feasibility" in problem.message
    assert problem.line == text[:text.index("  purpose:")].count("\n") + 1


def test_a_pilot_too_short_to_randomise_anyone_is_refused():
    # found by fuzzing: pilot_months 1e-300 projected 0 participants and divided by them
    text = example_text()
    trial = _variant(text, **{"    pilot_months: 9": "    pilot_months: 1.0e-300"})
    with pytest.raises(TrialFileError) as info:
        build_plan(trial)
    (problem,) = info.value.problems
    assert problem.field == "assumptions.feasibility.pilot_months"
    assert "no one is projected to be randomised" in problem.message


def test_a_negligible_recruitment_cv_is_the_poisson():
    # A rate CV of 1e-300 (found by fuzzing) overflowed the negative binomial's shape; in
    # the limit it is the Poisson, which a file without recruitment_cv gets.
    text = example_text()
    anchor = "    recruitment_cv: 0.3"
    assert anchor in text
    tiny = build_plan(_variant(text, **{anchor: "    recruitment_cv: 1.0e-300"}))
    none = build_plan(_variant(text, **{anchor: "   "}))
    crit = {c["id"]: c for c in none["feasibility"]["criteria"]}["recruitment"]
    got = {c["id"]: c for c in tiny["feasibility"]["criteria"]}["recruitment"]
    assert got["oc"] == crit["oc"]


def test_mechanism_assurance_names_each_path_by_its_process_variable():
    """Two paths of one mechanism must read apart: the mechanism's label and the variable."""
    from trialplan.planning.uncertainty_context import _assurance

    paths = [{"mechanism": "role_modelling", "mediator": m, "mechanism_label":
              "Role-modelling recovery", "mediator_label": label}
             for m, label in (("hope", "Hope"), ("self_efficacy", "Self-efficacy"))]
    entries = [{"mechanism": "role_modelling", "mediator": m, "assurance": a,
                "power_at_planned_n": a, "mc_se": se, "draws": 50}
               for m, a, se in (("hope", 0.99, 0.0001), ("self_efficacy", 0.94, 0.002))]
    plan = {"mechanisms": paths, "primary": {"result": {"n_total": 930}},
            "assurance": {"priors": [], "mechanisms": entries,
                          "primary": None, "mcid": None, "curve": []}}
    text = " ".join(_assurance(plan)["sentences"])
    assert "role-modelling recovery through hope 0.99" in text
    assert "role-modelling recovery through self-efficacy 0.94" in text
    assert "Monte Carlo SE below 0.001" in text and "Monte Carlo SE 0.002" in text
    assert "_" not in text


def test_reestimated_attrition_is_centred_on_the_primary_outcomes_own_rate(example):
    """The example's primary outcome sets 5% loss (the trial-wide rate is 15%): the grid
    must contain the planned value, where the re-estimated size equals the planned one."""
    _, plan = example
    rows = next(g for g in plan["feasibility"]["reestimation"]["grids"]
                if g["parameter"] == "attrition")["rows"]
    at_plan = next(r for r in rows if r["observed"] == 0.05)
    assert at_plan["n_to_recruit"] == plan["final"]["n_to_recruit"]


def _with_cap(cap: str):
    text = example_text().replace("    blinded_reestimation: true",
                                  f"    blinded_reestimation: true\n    max_n_to_recruit: {cap}")
    return load_trial_text(text, "capped.yaml")


def test_a_cap_bounds_the_reestimated_size_and_is_written_into_the_rule():
    plan = build_plan(_with_cap("1300"))
    re = plan["feasibility"]["reestimation"]
    rows = [r for g in re["grids"] for r in g["rows"] if r["n_to_recruit"]]
    assert any(r["n_to_recruit"] > 1300 for r in rows)  # the cap matters in this grid
    for r in rows:
        assert r["n_final"] == min(max(r["n_to_recruit"], 1240), 1300)
    assert "up to at most 1,300 participants" in re["rule"]
    text, _ = markdown_for(_with_cap("1300"), "protocol", plan=plan, with_figures=False)
    assert "Final (never below planned, at most 1,300)" in text
    assert "the most participants the trial can recruit" not in text


def test_without_a_cap_the_protocol_asks_for_one(example):
    trial, plan = example
    text, _ = markdown_for(trial, "protocol", plan=plan, with_figures=False)
    assert "[TO COMPLETE: the most participants the trial can recruit" in text


def test_a_cap_below_the_planned_size_is_an_error_naming_the_field():
    with pytest.raises(TrialFileError, match="max_n_to_recruit .1,000. is below the planned"):
        build_plan(_with_cap("1000"))


def test_reestimation_waits_for_the_primary_outcome_and_says_so(example):
    """A 12-month outcome cannot be re-estimated at a 9-month pilot: the rule says when the
    first pilot_n participants reach it (randomised by month 9, discharged half a month later,
    followed for 12 months: month 21.5) and that this comes after the progression decision."""
    _, plan = example
    re = plan["feasibility"]["reestimation"]
    assert re["timing"]["month"] == pytest.approx(9 + 0.5 + 12, abs=0.1)
    assert re["timing"]["at_pilot_end"] == 0
    assert "expected about month 21.5" in re["rule"]
    assert "no pilot participant will have it" in re["timing_warning"]
    assert "could no longer be acted on" not in re["timing_warning"]  # recruitment runs to ~31


def test_reestimation_after_recruitment_has_finished_is_flagged():
    text = example_text().replace("screened_per_site_month: 30", "screened_per_site_month: 90")
    plan = build_plan(load_trial_text(text, "fast.yaml"))
    re = plan["feasibility"]["reestimation"]
    assert re["timing"]["recruitment_complete_month"] < re["timing"]["month"]
    assert "could no longer be acted on" in re["timing_warning"]


def test_reestimation_type1_is_simulated_at_three_pooled_rates(example):
    trial, plan = example
    t1 = plan["feasibility"]["reestimation"]["type1"]
    pooled = 83 / 216 + 0.5 * (0.29 - 83 / 216)
    assert [round(r["rate"], 4) for r in t1["rows"]] == [round(pooled + k, 4)
                                                         for k in (-0.05, 0, 0.05)]
    for r in t1["rows"]:
        # The planned sample is at least as large as planned; alpha near 0.05 on both sides.
        assert r["mean_n_per_arm"] >= plan["final"]["n_analysed_per_arm"]["control"]
        assert abs(r["fixed_size"] - 0.05) < 0.01 and abs(r["with_reestimation"] - 0.05) < 0.01
    text, _ = markdown_for(trial, "protocol", plan=plan, with_figures=False)
    assert "Simulated with no true effect (10,000 trials at each pooled event rate" in text
