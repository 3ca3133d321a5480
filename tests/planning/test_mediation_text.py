"""The mediation-analysis text says what is estimated and how, and only what is true of the file."""

from pathlib import Path

import pytest

from trialplan.model.checks import example_text, load_trial_text
from trialplan.planning import build_plan
from trialplan.planning.mediation_text import mediation_paragraphs

ROOT = Path(__file__).resolve().parents[2] / "protocols"


def _text(yaml_text):
    trial = load_trial_text(yaml_text, "t.yaml")
    return "\n\n".join(mediation_paragraphs(trial, build_plan(trial)))


@pytest.fixture(scope="module")
def example():
    return _text(example_text())


def test_estimands_model_interaction_sensitivity_and_reporting(example):
    for words in ("natural indirect effect", "natural direct effect", "Valeri and VanderWeele",
                  "odds ratios from a logistic outcome model", "risk differences",
                  "exposure-mediator interaction", "Wald test", "secondary analyses", "Holm",
                  "AGReMA", "[@lee2021]", "mediational E-values", "[@smith2019]",
                  "[@valeri2013]", "[@imai2010]"):  # cited, so in the reference list
        assert words in example, words


def test_time_points_and_landmark_are_those_of_the_file(example):
    assert "hope at 4 months after discharge for personal recovery at 12 months" in example
    assert "landmark outcome: the event between month 4 and month 12" in example


def test_partial_nesting_names_its_multilevel_specification(example):
    assert "random intercept for peer worker in the intervention arm only" in example
    assert "centred on its caseload mean" in example


def test_intervention_only_measure_is_analysed_as_engagement(example):
    for words in ("Relationship with the peer worker (WAI-SR) is measured in the intervention "
                  "arm only", "complier-average causal effect", "instrumental variables",
                  "[@dunn2007; @emsley2010]",
                  "a peer-worker-level moderator"):
        assert words in example, words


def test_parallel_mediators_of_one_mechanism(example):
    assert "parallel mediators" in example and "hope and self-efficacy" in example


def test_binary_only_file_has_no_linear_only_sensitivity_analysis():
    text = _text((ROOT / "feasibility-pilot" / "trial.yaml").read_text())
    assert "Imai" not in text and "mediational E-values" in text


def test_cluster_trial_names_the_2_1_1_specification():
    text = _text((ROOT / "cluster-wards" / "trial.yaml").read_text())
    for words in ("2-1-1", "centred on its cluster mean", "between-cluster path B",
                  "within-cluster path b1", "random intercept for cluster"):
        assert words in text, words
    assert "caseload" not in text


def test_without_paths_nothing_is_claimed_about_time_order():
    text = example_text()
    text = text[:text.index("  paths:   ")].replace("  mediation_power: 0.8\n", "")
    out = _text(text)
    assert "before the outcome" not in out and "no path assumptions" in out


def test_baseline_adjustment_names_the_outcomes_without_a_baseline(example):
    # Readmission is counted from discharge: it has no baseline value to adjust for.
    assert ("where they are measured at baseline (psychiatric readmission within 12 months "
            "of discharge is not)") in example
    cluster = _text((ROOT / "cluster-wards" / "trial.yaml").read_text())
    assert "adjusted for the baseline values of the process variable and the outcome and" \
        in cluster
