"""A binary outcome analysed from a landmark (the example's engagement mechanism).

The plan analyses engagement -> readmission among those not readmitted by the
mediator's month 4; the simulation draws readmission as an event before the
landmark or an event after it (the part the mechanism acts on) and must keep
what the primary sample size assumes: each arm's rate over the whole window
and the outcome's ICC.
"""

import math

import numpy as np
import pytest

from trialplan.model.checks import example_text, load_trial_text
from trialplan.planning import build_plan
from trialplan.simulation import analyse as an
from trialplan.simulation.generate import generate
from trialplan.simulation.spec import build_spec


@pytest.fixture(scope="module")
def example():
    trial = load_trial_text(example_text(), "example.yaml")
    return trial, build_plan(trial)


def _landmark_entry(plan):
    return next(m for m in plan["mechanisms"] if m.get("landmark"))


def test_risk_before_the_landmark_is_the_plans(example):
    # The plan derives each arm's risk before month 4 (planning.plan._landmark); the
    # simulation carries it to any scenario through one share of the window: at the
    # planned rates both must agree.
    trial, plan = example
    spec = build_spec(trial, plan)
    lm = _landmark_entry(plan)["landmark"]
    v = spec.variable("readmission")
    assert v.landmark_month == lm["from_month"]
    assert v.landmark == pytest.approx((lm["event_before"]["control"],
                                        lm["event_before"]["intervention"]), rel=1e-12)
    m = next(m for m in spec.mechanisms if m.mediator == "service_engagement")
    assert m.outcome_column == "readmission_landmark" and m.a_requires == (m.outcome_column,)
    assert not any(k.startswith("engagement/") for k, _ in spec.not_simulated)


def test_whole_window_rates_and_landmark_split(example):
    trial, plan = example
    spec = build_spec(trial, plan, {"n": 120_000, "attrition": 0})
    data = generate(spec, np.random.default_rng(11))
    v = spec.variable("readmission")
    y, late, arm = data["readmission"], data["readmission_landmark"], data["arm"]
    for a_ in (0, 1):
        in_arm = arm == a_
        p, q = v.rates[a_], v.landmark[a_]
        n = in_arm.sum()
        assert abs(y[in_arm].mean() - p) < 4 * math.sqrt(p * (1 - p) / n)
        before = np.isnan(late[in_arm])
        assert abs(before.mean() - q) < 4 * math.sqrt(q * (1 - q) / n)
        assert (y[in_arm][before] == 1).all()  # an event before the landmark is an event
        after = 1 - (1 - p) / (1 - q)
        at_risk = late[in_arm][~before]
        assert abs(at_risk.mean() - after) < 4 * math.sqrt(after * (1 - after) / at_risk.size)


def _icc(y, cl):
    labels, inv = np.unique(cl, return_inverse=True)
    k = np.bincount(inv)
    means = np.bincount(inv, weights=y) / k
    msb = np.sum(k * (means - y.mean()) ** 2) / (len(labels) - 1)
    msw = np.sum((y - means[inv]) ** 2) / (y.size - len(labels))
    return (msb - msw) / (msb + (k.mean() - 1) * msw)


def test_the_outcome_keeps_its_icc_over_the_whole_window(example):
    # The peer-worker effect acts after the landmark only; its ICC there is raised so the
    # ICC of readmission over the window stays the planned one.  Without that correction
    # it would be about 0.063 here (icc (1 - q)^2 a (1 - a) / (p (1 - p))); the ANOVA
    # estimator's SE with 2,000 caseloads of 30 is about 0.004.
    trial, plan = example
    spec = build_spec(trial, plan, {"n": 120_000, "attrition": 0, "icc": 0.1,
                                    "cluster_size": 30})
    data = generate(spec, np.random.default_rng(4))
    t = data["arm"] == 1
    assert abs(_icc(data["readmission"][t], data["cluster"][t]) - 0.1) < 0.015


def test_b_path_is_estimated_without_bias_on_the_landmark_outcome(example):
    # One large dataset: the within-caseload logistic b among those at risk at month 4
    # recovers the planned b (incidental-parameter bias shrinks with caseloads of 30).
    trial, plan = example
    spec = build_spec(trial, plan, {"n": 3_000, "attrition": 0, "cluster_size": 30})
    m = next(m for m in spec.mechanisms if m.mediator == "service_engagement")
    data = generate(spec, np.random.default_rng(8))
    est = an.path_b(m, spec, data)
    assert abs(est.estimate - m.truth_b) < 4 * est.se
    a = an.path_a(m, spec, data)
    assert abs(a.estimate - m.truth_a) < 4 * a.se


def test_null_scenario_keeps_the_landmark_with_no_effect(example):
    trial, plan = example
    spec = build_spec(trial, plan, {"n": 400}, null=True)
    v = spec.variable("readmission")
    assert v.landmark[0] == pytest.approx(v.landmark[1])
    m = next(m for m in spec.mechanisms if m.mediator == "service_engagement")
    assert m.truth_b == 0.0
