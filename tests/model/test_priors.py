"""The file format of priors: each form's canonical parameters and centre."""

import math

import pytest

from trialplan.model.loader import Problem
from trialplan.model.priors import extract_priors
from trialplan.stats.assurance import Prior


def _one(field_path, mapping):
    data = {"assumptions": {}}
    parent = data["assumptions"]
    for part in field_path[1:-1]:
        parent = parent.setdefault(part, {})
    parent[field_path[-1]] = mapping
    problems = []
    out, priors, problems = extract_priors(
        data, lambda path, msg: Problem("t.yaml", 1, ".".join(map(str, path)), msg))
    return out, priors, problems


@pytest.mark.parametrize("path,mapping,family,params,centre", [
    (("assumptions", "primary", "d"), {"distribution": "normal", "estimate": 0.3,
                                        "ci": [0.1, 0.5]},
     "normal", {"mean": 0.3, "sd": 0.4 / 3.919927969080108, "lower": -math.inf,
                "upper": math.inf}, 0.3),
    # A CI symmetric on the log scale around the estimate: 0.8 x/÷ 4/3.
    (("assumptions", "primary", "hazard_ratio"), {"distribution": "lognormal", "estimate": 0.8,
                                                   "ci": [0.6, 0.8 * 0.8 / 0.6]},
     "lognormal", {"mu": math.log(0.8),
                   "sigma": math.log(0.8 * 0.8 / 0.36) / 3.919927969080108}, 0.8),
    (("assumptions", "primary", "sd"), {"distribution": "gamma", "mean": 10, "sd": 2},
     "gamma", {"shape": 25.0, "scale": 0.4}, 10.0),
    (("assumptions", "primary", "control_rate"), {"distribution": "beta", "events": 83,
                                                   "total": 216},
     "beta", {"a": 83.0, "b": 133.0}, 83 / 216),
    (("assumptions", "attrition"), {"distribution": "uniform", "lower": 0.1, "upper": 0.25},
     "uniform", {"lower": 0.1, "upper": 0.25}, 0.175),
])
def test_each_form_gives_canonical_parameters_and_its_centre(path, mapping, family, params,
                                                              centre):
    out, priors, problems = _one(path, mapping)
    assert not problems
    spec = priors[".".join(path)]
    assert spec.family == family and spec.centre == pytest.approx(centre, rel=1e-12)
    assert dict(spec.params) == pytest.approx(params, rel=1e-12)
    node = out
    for part in path:
        node = node[part]
    assert node == spec.centre
    prior = Prior(spec.family, spec.params)  # stats accepts what the model hands it
    if family in ("normal", "lognormal"):
        lo, hi = prior.interval(0.95)
        assert (lo, hi) == pytest.approx(tuple(mapping["ci"]), rel=1e-9)
    else:
        assert prior.mean == pytest.approx(centre, rel=1e-12)


def test_beta_from_mean_and_sd_has_that_mean_and_sd():
    _, priors, _ = _one(("assumptions", "clustering", "icc"),
                        {"distribution": "beta", "mean": 0.03, "sd": 0.02})
    p = dict(priors["assumptions.clustering.icc"].params)
    a, b = p["a"], p["b"]
    assert a / (a + b) == pytest.approx(0.03)
    assert math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))) == pytest.approx(0.02)


def test_a_truncated_normal_on_a_probability_is_accepted_and_an_open_one_is_not():
    _, priors, problems = _one(("assumptions", "primary", "control_rate"),
                               {"distribution": "normal", "mean": 0.38, "sd": 0.05,
                                "lower": 0.01, "upper": 0.99})
    assert not problems and priors
    _, priors, problems = _one(("assumptions", "primary", "control_rate"),
                               {"distribution": "normal", "mean": 0.38, "sd": 0.05})
    assert not priors and "truncate it" in problems[0].message
