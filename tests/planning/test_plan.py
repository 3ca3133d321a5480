"""`trialplan plan`: numbers agree with the calculators run by hand; errors; determinism."""

import json
import math
import shlex
import subprocess
import sys

import pytest
from click.testing import CliRunner

from trialplan.cli import cli
from trialplan.errors import TrialFileError
from trialplan.model.checks import example_text, load_trial_text
from trialplan.planning import build_plan, recruitment_curve


@pytest.fixture(scope="module")
def example():
    trial = load_trial_text(example_text(), "trial.yaml")
    return trial, build_plan(trial)


def _cli_json(command: str) -> dict:
    args = shlex.split(command)[1:] + ["--json"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_primary_agrees_with_trialplan_size_run_by_hand(example):
    _, plan = example
    primary = plan["primary"]
    by_hand = _cli_json(primary["command"])
    assert by_hand["n_total"] == primary["result"]["n_total"]
    assert by_hand["n_analysed_per_arm"] == primary["result"]["n_analysed_per_arm"]
    assert plan["final"]["n_to_recruit"] == by_hand["n_total"]
    assert plan["final"]["peer_workers"] == by_hand["peer_workers"]


def test_mechanisms_agree_with_trialplan_mediation_run_by_hand(example):
    _, plan = example
    computed = [m for m in plan["mechanisms"] if m["status"] == "computed"]
    assert len(computed) == 4
    for m in computed:
        at_n = _cli_json(m["command"])
        assert f"--n {m['planned_n']}" in m["command"]
        assert at_n["power"] == float(f"{m['power_at_planned_n']:.12g}")  # JSON: 12 digits
        needed = _cli_json(m["command_needed"])
        assert needed["n_total"] == m["n_needed_analysed"]
        assert m["detectable"] == (m["power_at_planned_n"] >= m["target_power"])


def test_each_mechanism_is_analysed_on_its_own_complete_cases_and_landmark(example):
    _, plan = example
    primary = plan["primary"]["result"]["n_per_arm"]
    hope = next(m for m in plan["mechanisms"] if m["mediator"] == "hope")
    # hope (m4) loses 15% and recovery (m12) 25%: 0.75 of those randomised, per arm
    assert hope["attrition"] == 0.25
    assert hope["planned_n"] == sum(int(v * 0.75 + 1e-9) for v in primary.values())
    eng = next(m for m in plan["mechanisms"] if m["mediator"] == "service_engagement")
    lm = eng["landmark"]
    assert (lm["from_month"], lm["to_month"]) == (4, 12)
    # constant hazard: 1 - S^(4/12) of the control arm readmitted by month 4, S = 1 - 83/216
    # (the centre of the example's control-rate prior)
    s12 = 1 - 83 / 216
    assert lm["event_before"]["control"] == pytest.approx(1 - s12 ** (1 / 3), rel=1e-12)
    assert lm["event_after"]["control"] == pytest.approx(1 - s12 ** (2 / 3), rel=1e-12)
    at_risk = {k: int(v * 0.85 * (1 - lm["event_before"][k]) + 1e-9) for k, v in primary.items()}
    assert eng["planned_n"] == sum(at_risk.values())
    # b variance on the overall landmark rate at the planned effect, between the arms' rates
    assert lm["event_after"]["intervention"] < eng["outcome_rate"] < lm["event_after"]["control"]
    # ab = -0.05 against a log odds ratio of log(.29/.71) - log(p/(1 - p)), p = 83/216
    lor = math.log(0.29 / 0.71) - math.log((1 - s12) / s12)
    assert eng["total_effect"] == pytest.approx(lor)
    assert eng["proportion_mediated"] == pytest.approx(-0.05 / lor)


def test_paths_contradicting_the_total_effect_are_flagged():
    trial = _variant(**{"      a: -0.25               # SES": "      a: 0.25               # SES"})
    eng = next(m for m in build_plan(trial)["mechanisms"] if m["mediator"] == "service_engagement")
    assert eng["warning"] == "sign"
    assert any("opposite in sign" in n for n in eng["notes"])
    trial = _variant(**{"      a: 0.3\n      b: 0.3\n": "      a: 1.0\n      b: 0.9\n"})
    hope = next(m for m in build_plan(trial)["mechanisms"] if m["mediator"] == "hope")
    assert hope["warning"] == "exceeds total"


def test_same_file_gives_byte_identical_json(tmp_path):
    path = tmp_path / "trial.yaml"
    path.write_text(example_text())
    outs = [subprocess.run([sys.executable, "-m", "trialplan", "plan", str(path), "--json"],
                           capture_output=True, check=True).stdout for _ in range(2)]
    assert outs[0] == outs[1]
    data = json.loads(outs[0])
    assert data["provenance"]["input_sha256"] is not None
    assert data["schema"] == "trialplan-plan/1"


def test_recruitment_projection_closed_form(example):
    trial, plan = example
    rec = plan["recruitment"]
    # 8 sites opening a month apart, 30 x 0.5 x 0.4 = 6 randomised per site-month, 3-month
    # linear ramp: once all are at full speed, R(t) = sum_k 6 (t - k - 1.5) = 48 t - 240.
    assert rec["randomised_per_site_month"] == pytest.approx(6.0)
    assert rec["months_to_target"] == pytest.approx((rec["target"] + 240) / 48, abs=0.01)
    r = trial.model.assumptions.recruitment
    assert float(recruitment_curve(r, 1.5)) == pytest.approx(6 * 1.5**2 / 6 + 6 * 0.5**2 / 6)
    flow = rec["flow"]
    assert flow["randomised"] == rec["target"] == plan["final"]["n_to_recruit"]
    assert flow["eligible"] == math.ceil(rec["target"] / 0.4)
    assert flow["screened"] == math.ceil(flow["eligible"] / 0.5)
    assert sum(flow["analysed"].values()) == plan["final"]["n_analysed"]


def test_feasibility_precision(example):
    _, plan = example
    fe = plan["feasibility"]
    assert fe["pilot_n"] == 193  # the projection at 9 months (sum over the 8 ramping sites)
    # Nobody reaches the 12-month primary time point within a 9-month pilot, so retention is
    # judged at month 4 after discharge, which comes half a month after randomisation: those
    # randomised by month 4.5, R(4.5) = 6 (3 + 2) + 6.25 + 2.25 + 0.25 = 38.75 -> 38.
    retention = next(c for c in fe["criteria"] if c["kind"] == "retention")
    assert retention["denominator"] == 38
    assert retention["half_width_at_green"] == pytest.approx(
        1.959964 * math.sqrt(0.8 * 0.2 / 38), abs=1e-4)
    assert any("judged at 4 months after discharge" in n for n in plan["notes"])


def _variant(**changes):
    text = example_text()
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new)
    return load_trial_text(text, "variant.yaml")


def test_pilot_size_half_width_matches_statsmodels_sizing():
    # statsmodels samplesize_confint_proportion(0.5, 0.1) = 96.0365: 97 in the pilot gives a
    # 95% half-width at most 0.10 for a share of 0.5, 96 does not.
    for n, ok in ((97, True), (96, False)):
        trial = _variant(**{"    pilot_months: 9\n": f"    pilot_n: {n}\n",
                            "        green: 0.8\n        amber: 0.6\n":
                            "        green: 0.5\n        amber: 0.3\n"})
        fe = build_plan(trial)["feasibility"]
        retention = next(c for c in fe["criteria"] if c["kind"] == "retention")
        assert (retention["half_width_at_green"] <= 0.1) is ok


def test_mechanisms_can_drive_the_final_n():
    trial = _variant(**{"mechanisms_drive_n: false": "mechanisms_drive_n: true",
                        "      a: -0.3  ": "      a: -0.12 "})
    plan = build_plan(trial)
    final = plan["final"]
    assert final["driven_by"] == "trust"
    trust = next(m for m in plan["mechanisms"] if m["mechanism"] == "trust")
    assert final["n_to_recruit"] == trust["n_needed_to_recruit"] > plan["primary"]["result"][
        "n_total"]
    # trust is analysed on loneliness (15% lost) and recovery (25%) of those recruited
    assert trust["planned_n"] == sum(int(v * 0.75 + 1e-9)
                                     for v in final["n_to_recruit_per_arm"].values())
    assert trust["power_at_planned_n"] >= 0.8
    assert any("mechanisms_drive_n" in n for n in plan["notes"])


def test_sensitivity_is_consistent_with_the_base_case(example):
    _, plan = example
    base = plan["primary"]["result"]["n_total"]
    rows = plan["sensitivity"]["one_way"]
    for name, value in (("icc", 0.03), ("attrition", 0.05), ("control_rate", 0.3843)):
        row = next(r for r in rows if r["parameter"] == name and r["value"] == value)
        assert row["n_to_recruit"] == base
    icc = [r["n_to_recruit"] for r in rows if r["parameter"] == "icc"]
    assert icc == sorted(icc)
    attrition = [r["n_to_recruit"] for r in rows if r["parameter"] == "attrition"]
    assert attrition == sorted(attrition)
    two = plan["sensitivity"]["two_way"]
    assert two["rows"] == "icc" and two["columns"] == "intervention_rate"
    i, j = two["row_values"].index(0.03), two["column_values"].index(0.29)
    assert two["n_to_recruit"][i][j] == base


def test_missing_assumptions_name_the_field_and_line(tmp_path):
    text = example_text().replace("  power: 0.9\n", "").replace(
        "    control_rate:             # CORE trial control arm: 83/216 readmitted within 1 "
        "year\n      {distribution: beta, events: 83, total: 216}\n", "")
    path = tmp_path / "trial.yaml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "trialplan", "plan", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "assumptions.power is missing" in proc.stderr
    assert "assumptions.primary.control_rate is missing" in proc.stderr
    assert f"{path}:" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(TrialFileError) as info:
        build_plan(load_trial_text(text, "trial.yaml"))
    lines = [p.line for p in info.value.problems]
    assert all(isinstance(n, int) for n in lines)


def test_binary_outcome_path_needs_a_base_rate():
    trial = _variant(**{"mechanism: engagement\n      mediator: service_engagement\n"
                        "      outcome: readmission":
                        "mechanism: engagement\n      mediator: service_engagement\n"
                        "      outcome: readmission\n      base_rate: 0.3"})
    m = next(x for x in build_plan(trial)["mechanisms"] if x["mechanism"] == "engagement")
    # the window rate 0.3; the landmark (months 4-12) control rate under a constant hazard
    assert m["base_rate"] == 0.3
    landmark = float(m["command"].split("--base-rate ")[1].split()[0])
    assert landmark == pytest.approx(1 - 0.7 ** (2 / 3), rel=1e-11)


def test_figures_are_written_once_and_identical(tmp_path):
    path = tmp_path / "trial.yaml"
    path.write_text(example_text())
    figs = tmp_path / "figs"
    run = [sys.executable, "-m", "trialplan", "plan", str(path), "--figures", str(figs)]
    subprocess.run(run, capture_output=True, check=True)
    names = sorted(p.name for p in figs.iterdir())
    assert names == sorted(f"{n}.{e}" for n in ("primary-power", "mechanism-power",
                                                 "sensitivity", "recruitment",
                                                 "participant-flow", "timeline", "progression",
                                                 "assurance")
                           for e in ("svg", "png"))
    before = {p.name: p.read_bytes() for p in figs.iterdir()}
    again = subprocess.run(run, capture_output=True, text=True)
    assert again.returncode == 1 and "--force" in again.stderr
    subprocess.run(run + ["--force"], capture_output=True, check=True)
    assert {p.name: p.read_bytes() for p in figs.iterdir()} == before


def test_event_before_the_landmark_can_be_given_and_is_checked():
    path = ("mechanism: engagement\n      mediator: service_engagement\n"
            "      outcome: readmission")
    trial = _variant(**{path: path + "\n      event_before_mediator: 0.2"})
    m = next(x for x in build_plan(trial)["mechanisms"] if x["mechanism"] == "engagement")
    lm = m["landmark"]
    assert lm["event_before"]["control"] == 0.2 and lm["how"] == "event_before_mediator as given"
    # P(no event by 12) = (1 - 0.2)(1 - after): S = 0.8 (1 - after), S = 1 - 83/216
    s12 = 1 - 83 / 216
    assert lm["event_after"]["control"] == pytest.approx(1 - s12 / 0.8)
    # the intervention arm keeps the ratio of cumulative hazards log(0.71) / log(S)
    ratio = math.log(0.71) / math.log(s12)
    assert lm["event_before"]["intervention"] == pytest.approx(1 - 0.8 ** ratio)
    bad = _variant(**{path: path + "\n      event_before_mediator: 0.5"})
    with pytest.raises(TrialFileError) as exc:
        build_plan(bad)
    [p] = exc.value.problems
    assert p.field == "assumptions.paths[3].event_before_mediator" and p.line is not None


def test_mechanism_power_says_when_no_baseline_r2_is_assumed():
    from trialplan.planning.context import build_context

    text = example_text()
    plan = build_plan(load_trial_text(text, "t.yaml"))
    hope = plan["mechanisms"][0]
    assert hope["covariate_r2"] == {"r2_m": 0.0, "r2_y": 0.0, "r2_m2": 0.0, "r2_y2": 0.0}
    assert any("r2_m = r2_y = 0" in n for n in hope["notes"])
    # with R-squared given for hope's path, its power rises and the caveat leaves it
    given = text.replace("      a: 0.3\n      b: 0.3\n",
                         "      a: 0.3\n      b: 0.3\n      r2_m: 0.3\n      r2_y: 0.4\n")
    trial = load_trial_text(given, "t.yaml")
    plan2 = build_plan(trial)
    hope2 = plan2["mechanisms"][0]
    assert hope2["n_needed_analysed"] < hope["n_needed_analysed"]
    assert not any("r2_m = r2_y = 0" in n for n in hope2["notes"])
    caveat = [s for s in build_context(trial, plan2)["sample_size"]["mechanisms"]
              if s.startswith("These powers assume")]
    assert caveat and "hope" not in caveat[0] and "self-efficacy" in caveat[0]


@pytest.mark.parametrize("convention, words", [
    ("within", "the within-caseload variance"),
    ("total", "the intervention arm's total variance"),
])
def test_mechanism_text_states_the_partial_nesting_convention(convention, words, tmp_path):
    from trialplan.planning.context import build_context

    text = example_text().replace("control_variance: within", f"control_variance: {convention}")
    trial = load_trial_text(text, "t.yaml")
    plan = build_plan(trial)
    hope = plan["mechanisms"][0]
    assert hope["arguments"]["control_variance"] == convention
    sentences = build_context(trial, plan)["sample_size"]["mechanisms"]
    assert any(s.startswith("Under the partially nested design") and words in s
               for s in sentences)
    path = tmp_path / "t.yaml"
    path.write_text(text)
    out = CliRunner().invoke(cli, ["plan", str(path)])
    assert f"control-arm variance {convention}" in out.stdout
