"""Where and when a mechanism path can be analysed: arms, time order, baseline, levels."""

import pytest

from trialplan.errors import TrialFileError
from trialplan.model.checks import example_text, load_trial_text

GOOD = example_text()
TRUST = ("    - mechanism: trust       # alliance (WAI-SR) exists only in the intervention arm, "
         "so\n      mediator: loneliness")


def line_of(text, needle):
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def problems(text):
    with pytest.raises(TrialFileError) as exc:
        load_trial_text(text, "t.yaml")
    return exc.value.problems


def test_the_example_is_valid_and_warns_about_no_baseline_only_where_true():
    trial = load_trial_text(GOOD, "t.yaml")
    baseline = [w for w in trial.warnings if "no baseline measurement" in w.message]
    assert baseline == []  # every mediator with a path has a baseline in the example


def test_intervention_only_mediator_is_an_error_at_its_line_saying_why_and_what_to_do():
    assert TRUST in GOOD
    text = GOOD.replace(TRUST, TRUST.replace("mediator: loneliness", "mediator: alliance"))
    [p] = problems(text)
    assert p.line == line_of(text, "      mediator: alliance")
    assert p.field == "assumptions.paths[2].mediator"
    for words in ("intervention arm only", "no a path", "not an identified indirect effect",
                  "complier", "instrumental variables", "randomisation x baseline covariates",
                  "Dunn & Bentall 2007", "Emsley, Dunn & White 2010", "moderator"):
        assert words in p.message


def test_mediator_measured_with_or_after_the_outcome_is_an_error():
    text = GOOD.replace("      mediator: hope\n      outcome: recovery\n",
                        "      mediator: hope\n      outcome: recovery\n"
                        "      mediator_timepoint: m4\n      outcome_timepoint: m4\n")
    [p] = problems(text)
    assert "not before the outcome" in p.message and "Landau, Emsley & Dunn 2018" in p.message
    assert p.field == "assumptions.paths[0].mediator"


def test_mediator_only_at_baseline_cannot_carry_an_effect():
    text = GOOD.replace("      mediator: hope\n      outcome: recovery\n",
                        "      mediator: hope\n      outcome: recovery\n"
                        "      mediator_timepoint: baseline\n")
    [p] = problems(text)
    assert "before randomisation can change it" in p.message


def test_a_named_time_point_must_be_one_the_variable_is_measured_at():
    text = GOOD.replace("      mediator: hope\n      outcome: recovery\n",
                        "      mediator: hope\n      outcome: recovery\n"
                        "      mediator_timepoint: m12\n")
    [p] = problems(text)
    assert p.field == "assumptions.paths[0].mediator_timepoint"
    assert "'hope' is not measured at 'm12'" in p.message


def test_mediator_without_baseline_is_a_warning():
    text = GOOD.replace("      measure: HHI\n      timepoints: [baseline, m4]",
                        "      measure: HHI\n      timepoints: [m4]")
    trial = load_trial_text(text, "t.yaml")
    [w] = [w for w in trial.warnings if "no baseline measurement" in w.message]
    assert w.severity == "warning" and "'hope'" in w.message
    assert w.field == "assumptions.paths[0].mediator"


def test_default_time_points_are_the_outcomes_last_and_the_mediators_last_before_it():
    trial = load_trial_text(GOOD, "t.yaml")
    paths = trial.model.assumptions.paths
    assert [trial.path_timepoints(p) for p in paths] == [("m4", "m12")] * 4


def test_cluster_fields_need_a_cluster_trial():
    # the example is partially nested: level-2 R-squared is allowed, b_within is not
    text = GOOD.replace("      a: 0.3\n      b: 0.3\n", "      a: 0.3\n      b: 0.3\n"
                        "      r2_m2: 0.2\n      b_within: 0.1\n")
    [p] = problems(text)
    assert p.field == "assumptions.paths[0].b_within"
    text = text.replace("      b_within: 0.1\n", "").replace("kind: partial", "kind: none")
    [p] = problems(text)
    assert p.field == "assumptions.paths[0].r2_m2"
    text = GOOD.replace("      measure: HHI\n", "      measure: HHI\n      level: cluster\n")
    [p] = problems(text)
    assert p.field == "change_model.process_variables[2].level"
