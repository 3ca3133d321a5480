"""One estimand and analysis specification per outcome, right for its design and type."""

from pathlib import Path

import pytest

from trialplan.errors import TrialFileError
from trialplan.model.checks import example_text, load_trial, load_trial_text
from trialplan.planning import build_plan
from trialplan.planning.analysis import (
    FEW_CLUSTERS_PER_ARM,
    MODELS,
    STRATEGIES,
    analysis_specs,
    cace_spec,
)

PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"


@pytest.fixture(scope="module")
def example():
    trial = load_trial_text(example_text(), "trial.yaml")
    return trial, build_plan(trial)


def _with(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


def test_partially_nested_binary_is_not_the_continuous_heteroscedastic_model(example):
    trial, plan = example
    primary, recovery = analysis_specs(trial, plan)
    assert primary.outcome_id == "readmission" and primary.role == "primary"
    assert primary.model == "glmm-logistic"
    assert "heteroscedastic" not in primary.model_text
    # Roberts et al. 2016: a random effect in the clustered arm only (random coefficient) is
    # not consistent under the null; caseloads and control singletons share one intercept.
    assert "cluster of one" in primary.clustering_handling
    assert "intervention arm only is not used" in primary.clustering_handling
    assert "likelihood-ratio" in primary.small_sample
    assert "standardisation" in primary.marginal_method  # a conditional OR is not marginal
    assert any("Mancl-DeRouen" in s for s in primary.sensitivity)
    assert primary.covariates == ("site",)
    assert recovery.model == "lmm-heteroscedastic"
    assert recovery.small_sample == "Kenward-Roger degrees of freedom"
    assert "arm-specific residual variances" in recovery.clustering_handling
    assert recovery.marginal_method is None  # a mean difference is collapsible


def test_estimands_come_from_the_file_with_their_strategies(example):
    trial, plan = example
    primary, recovery = analysis_specs(trial, plan)
    assert primary.estimand.from_file and recovery.estimand.from_file
    strategies = [e.strategy for e in primary.estimand.intercurrent_events]
    assert set(strategies) <= set(STRATEGIES)
    assert strategies.count("composite") == 2  # death; not discharged in the window
    assert recovery.timepoint_id == "m12" and recovery.repeated
    assert recovery.follow_ups == ("m4", "m12") and recovery.baseline_adjusted
    assert "the baseline value of the outcome" in recovery.covariates


def test_every_spec_names_a_known_model_and_software():
    for path in sorted(PROTOCOLS.glob("*/trial.yaml")):
        trial = load_trial(path)
        for spec in analysis_specs(trial, build_plan(trial)):
            assert spec.model in MODELS
            assert spec.software and "to be named" not in spec.software


@pytest.mark.parametrize("kind, clustering, model", [
    ("count", "partial", "negative-binomial"),
    ("count", "none", "negative-binomial"),
    ("time-to-event", "partial", "cox-robust"),
    ("time-to-event", "none", "cox"),
    ("binary", "none", "logistic"),
    ("continuous", "none", "linear"),
])
def test_outcome_types_get_their_model(kind, clustering, model):
    text = _with(example_text(), "      type: continuous\n      role: secondary",
                 f"      type: {kind}\n      role: secondary")
    if clustering == "none":
        text = _with(text, "    kind: partial ", "    kind: none ")
        text = _with(text, "  mediation_b_level: individual", "  mediation_b_level: caseload")
    trial = load_trial_text(text, "trial.yaml")
    no_clusters = {"primary": {"result": {}}}  # only the cluster count is read from the plan
    spec = {s.outcome_id: s for s in analysis_specs(trial, no_clusters)}["recovery"]
    assert spec.model == model
    if kind == "time-to-event":
        assert "Schoenfeld" in spec.assumption_checks
        assert not spec.baseline_adjusted  # a time to event has no baseline value
    if kind == "count" and clustering == "partial":
        # a random intercept in one arm only would make the model's ratio non-marginal
        assert "robust" in spec.clustering_handling and "random" not in spec.clustering_handling


def test_cluster_trials_use_a_cluster_level_analysis_when_clusters_are_few():
    trial = load_trial(PROTOCOLS / "cluster-wards" / "trial.yaml")
    plan = build_plan(trial)
    assert min(plan["primary"]["result"]["clusters_per_arm"].values()) >= FEW_CLUSTERS_PER_ARM
    assert analysis_specs(trial, plan)[0].model == "lmm-cluster"
    few = {**plan, "primary": {**plan["primary"], "result": {
        **plan["primary"]["result"],
        "clusters_per_arm": {"control": FEW_CLUSTERS_PER_ARM - 1, "intervention": 12}}}}
    spec = analysis_specs(trial, few)[0]
    assert spec.model == "cluster-level"
    assert "Kenward-Roger" in spec.sensitivity[0]


def test_cace_compliance_defaults_to_the_pilots_adherence_criterion():
    trial = load_trial(PROTOCOLS / "feasibility-pilot" / "trial.yaml")
    cace = cace_spec(trial, build_plan(trial))
    assert cace.compliance == "attended at least 4 peer support meetings"
    assert cace.compliance_source == "the pilot's adherence criterion"
    assert "peer worker" in cace.clustering
    assert "instrument" in cace.estimator


@pytest.mark.parametrize("old, new, message", [
    ("  - outcome: recovery\n", "  - outcome: recovry\n", "'recovry' is not one of the outcomes"),
    ("    timepoint: m12\n", "    timepoint: baseline_x\n", "is not a time point of outcome"),
    ("  - outcome: recovery\n", "  - outcome: readmission\n", "already has an estimand"),
])
def test_bad_estimands_are_reported_with_their_line(old, new, message):
    with pytest.raises(TrialFileError) as info:
        load_trial_text(_with(example_text(), old, new), "trial.yaml")
    text = str(info.value)
    assert message in text and "trial.yaml:" in text and "estimands" in text


def test_a_primary_outcome_without_an_estimand_is_warned_about(example):
    trial, _ = example
    assert not any("has no estimand" in w.message for w in trial.warnings)
    pilot = load_trial(PROTOCOLS / "feasibility-pilot" / "trial.yaml")
    assert any("'readmission' has no estimand" in w.message for w in pilot.warnings)
