"""The plan as peer-support trials are run: per-outcome attrition, caseload allocated vs
analysed and from staffing, cluster trials with few clusters, repeated follow-ups."""

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from trialplan.errors import TrialFileError
from trialplan.model.checks import example_text, load_trial_text
from trialplan.planning import attrition_for, build_plan
from trialplan.stats import means, proportions

ROOT = Path(__file__).resolve().parents[2]


def _trial(edit):
    data = yaml.safe_load(example_text())
    edit(data)
    return load_trial_text(yaml.safe_dump(data, sort_keys=False), "trial.yaml")


def _plan(edit):
    return build_plan(_trial(edit))


def _outcome(data, oid):
    return next(o for o in data["change_model"]["outcomes"] if o["id"] == oid)


def test_attrition_for_names_its_source():
    trial = load_trial_text(example_text(), "trial.yaml")
    assert attrition_for(trial, "readmission") == {
        "variable": "readmission", "rate": 0.05,
        "source": "change_model.outcomes[0].attrition"}
    hope = attrition_for(trial, "hope")
    assert hope["rate"] == 0.15 and hope["source"] == "assumptions.attrition"
    with pytest.raises(KeyError):
        attrition_for(trial, "trust")


def test_primary_uses_its_own_attrition():
    low = _plan(lambda d: None)
    high = _plan(lambda d: _outcome(d, "readmission").update(attrition=0.3))
    assert low["primary"]["attrition"]["rate"] == 0.05
    assert high["primary"]["attrition"]["rate"] == 0.3
    assert "--attrition 0.3" in high["primary"]["command"]
    # by hand: the primary's attrition, caseload 9 allocated; the control rate is the centre
    # of the example's beta(83, 133) prior
    by_hand = proportions(p1=83 / 216, p2=0.29, power=0.9, clustering="partial", icc=0.03,
                          cluster_size=9, attrition=0.3)
    assert high["final"]["n_to_recruit"] == by_hand.n_total
    assert high["final"]["peer_workers"] == math.ceil(by_hand.n_per_arm["intervention"] / 9)
    # the sensitivity range centres on the primary's rate
    assert 0.3 in high["sensitivity"]["ranges"]["attrition"]


def test_caseload_from_staffing_is_a_fixed_point():
    def edit(d):
        del d["assumptions"]["clustering"]["cluster_size"]
        d["assumptions"]["staffing"]["peer_workers_per_site"] = 4
    plan = _plan(edit)
    st = plan["staffing"]
    assert st["derived"] is True and st["peer_workers"] == 32
    m = plan["assumptions"]["clustering"]["cluster_size"]
    # the caseload used is the intervention arm's recruits over the 32 peer workers
    assert m == pytest.approx(plan["final"]["n_to_recruit_per_arm"]["intervention"] / 32,
                              abs=0.1)
    assert plan["final"]["peer_workers"] <= 32


def test_staffing_beyond_capacity_is_noted():
    def edit(d):
        d["assumptions"]["staffing"].update(peer_workers_per_site=1, max_concurrent=2)
    plan = _plan(edit)
    assert any("max_concurrent" in n for n in plan["notes"])
    assert any("implies about" in n for n in plan["notes"])


def test_continuous_primary_with_follow_ups_and_partial_nesting():
    def edit(d):
        for o in d["change_model"]["outcomes"]:
            o["role"] = "primary" if o["id"] == "recovery" else "secondary"
        d["assumptions"]["primary"] = {"d": 0.3, "baseline_corr": 0.5, "follow_ups": 2,
                                       "follow_up_corr": 0.6}
        d["assumptions"]["paths"] = d["assumptions"]["paths"][:2]
    plan = _plan(edit)
    by_hand = means(d=0.3, power=0.9, baseline_corr=0.5, follow_ups=2, follow_up_corr=0.6,
                    clustering="partial", icc=0.03, cluster_size=9, attrition=0.25)
    assert plan["primary"]["result"]["n_total"] == by_hand.n_total
    # the command states every argument that differs from the command's default
    # (control_variance "within" is the default) and reproduces the number
    assert "--follow-ups 2 --follow-up-corr 0.6" in plan["primary"]["command"]
    from trialplan.planning.calls import defaults
    from trialplan.planning.plan import _primary_call

    assert defaults("means")["control_variance"] == "within"
    assert _primary_call(_trial(edit)).kwargs["control_variance"] == "within"


def test_follow_ups_without_their_correlation_is_a_file_error():
    def edit(d):
        for o in d["change_model"]["outcomes"]:
            o["role"] = "primary" if o["id"] == "recovery" else "secondary"
        d["assumptions"]["primary"] = {"d": 0.3, "follow_ups": 2}
        d["assumptions"]["paths"] = d["assumptions"]["paths"][:2]
    with pytest.raises(TrialFileError, match=r"primary\.follow_ups.*need follow_up_corr"):
        _plan(edit)


def test_cluster_wards_plan_states_clusters_and_few_clusters():
    from trialplan.model.checks import load_trial

    plan = build_plan(load_trial(ROOT / "protocols" / "cluster-wards" / "trial.yaml"))
    f = plan["final"]
    by_hand = means(d=0.25, power=0.9, clustering="cluster", icc=0.05, cluster_size=40,
                    cluster_cv=0.4, attrition=0.2, cluster_autocorr=0.7,
                    individual_autocorr=0.5)
    assert f["clusters_per_arm"] == by_hand.clusters_per_arm
    assert f["cluster_size_analysed"] == pytest.approx(32)
    assert f["few_clusters"] is True
    assert any("few clusters" in n for n in plan["notes"])
    pc = plan["recruitment"]["per_cluster"]
    assert pc["clusters"] == sum(by_hand.clusters_per_arm.values())
    flow = plan["recruitment"]["flow"]
    assert flow["clusters_randomised"] == by_hand.clusters_per_arm
    assert flow["per_cluster"] == {"recruited": 40, "analysed": pytest.approx(32)}


def test_cluster_baseline_corr_points_to_autocorrelations():
    def edit(d):
        d["trial"]["design"] = "cluster"
        d["assumptions"]["clustering"] = {"kind": "cluster", "icc": 0.05, "cluster_size": 20}
        d["assumptions"]["primary"]["baseline_corr"] = 0.5
        del d["assumptions"]["staffing"]
    with pytest.raises(TrialFileError, match="cluster_autocorr"):
        _trial(edit)


def _count_primary(d, clustering=None):
    """The example with its primary outcome counted: admissions over the 12 months."""
    out = _outcome(d, "readmission")
    out.update(type="count", label="Psychiatric admissions within 12 months of discharge")
    d["assumptions"]["primary"] = {"rate": 0.05, "rate_ratio": 0.7, "dispersion": 0.8,
                                   "exposure": 12, "mcid": 0.8}
    d["assumptions"]["clustering"] = clustering or {"kind": "none"}
    d["assumptions"].pop("staffing")
    d["assumptions"].pop("sensitivity")


def test_count_primary_is_sized_by_the_rate_ratio():
    plan = _plan(_count_primary)
    r = plan["primary"]["result"]
    # 0.05 admissions a month over 12 months, rate ratio 0.7, negative binomial k = 0.8,
    # two-sided 5%, 90% power, both tails counted; R:
    #   V <- (1/0.6 + 0.8) + (1/0.42 + 0.8); z <- qnorm(0.975)
    #   pw <- function(n) pnorm(-log(0.7)/sqrt(V/n) - z) + pnorm(log(0.7)/sqrt(V/n) - z)
    #   uniroot(function(n) pw(n) - 0.9, c(10, 2000), tol=1e-12)$root  -> 466.461987839
    assert r["n_exact"] == pytest.approx(466.461987839, rel=1e-8)
    assert r["n_analysed_per_arm"] == {"control": 467, "intervention": 467}
    # the primary's own attrition (0.05) divides the analysed n once, at the end
    assert plan["final"]["n_to_recruit"] == 2 * math.ceil(467 / 0.95)
    assert plan["primary"]["command"].startswith("trialplan size rates --rate 0.05 --rr 0.7 "
                                                 "--dispersion 0.8 --exposure 12")
    # the sensitivity analysis varies the rate ratio around the assumed one
    ratios = plan["sensitivity"]["ranges"]["rate_ratio"]
    assert 0.7 in ratios and min(ratios) < 0.7 < max(ratios)
    n_by_ratio = [row["n_to_recruit"] for row in plan["sensitivity"]["one_way"]
                  if row["parameter"] == "rate_ratio"]
    assert n_by_ratio == sorted(n_by_ratio)  # a ratio nearer 1 needs more participants


def test_count_primary_with_partial_nesting_matches_the_size_command():
    from trialplan.stats import rates

    clustering = {"kind": "partial", "icc": 0.03, "cluster_size": 9}
    plan = _plan(lambda d: _count_primary(d, clustering))
    by_hand = rates(rate=0.05, rr=0.7, dispersion=0.8, exposure=12, power=0.9,
                    clustering="partial", icc=0.03, cluster_size=9, attrition=0.05)
    assert plan["final"]["n_to_recruit"] == by_hand.n_total


def test_count_primary_without_its_rates_is_a_file_error():
    def edit(d):
        _count_primary(d)
        del d["assumptions"]["primary"]["rate_ratio"]

    with pytest.raises(TrialFileError, match="rate and rate_ratio"):
        _plan(edit)


def test_count_primary_assurance_over_a_rate_ratio_prior_agrees_with_quadrature():
    """A count primary's rate ratio given as a distribution: the plan's Monte Carlo assurance
    equals a 200-node quadrature of the favourable power over the prior, within 4 MC SE."""
    from trialplan.planning.assurance import power_call
    from trialplan.stats import assurance as sa
    from trialplan.stats import rates

    def edit(d):
        _count_primary(d)
        d["assumptions"]["primary"]["rate_ratio"] = {
            "distribution": "lognormal", "estimate": 0.7, "ci": [0.5, 0.98]}
    trial = _trial(edit)
    plan = build_plan(trial)
    pr = plan["assurance"]["primary"]
    assert pr["priors"] == ["assumptions.primary.rate_ratio"]
    n_c = plan["primary"]["result"]["n_analysed_per_arm"]["control"]
    args = dict(power_call(trial, n_c).kwargs)
    alpha = args.pop("alpha")
    args.pop("rr")
    z95 = 1.959963984540054
    prior = sa.Prior.lognormal(math.log(0.7), (math.log(0.98) - math.log(0.5)) / (2 * z95))
    u, w = np.polynomial.legendre.leggauss(200)
    rr = prior.ppf(0.5 * (u + 1))
    args["n"] = np.full(rr.shape, float(n_c))
    probs = sa.favourable_power(rates, {**args, "rr": rr}, np.log(rr), "less", alpha)
    exact = float(np.sum(0.5 * w * probs))
    assert abs(pr["assurance"] - exact) < 4 * pr["mc_se"]
    assert pr["assurance"] < plan["primary"]["result"]["power"]


def test_an_outcome_attrition_prior_acts_on_the_primary_assurance():
    def edit(d):
        _outcome(d, "readmission")["attrition"] = {"distribution": "beta", "mean": 0.05,
                                                  "sd": 0.02}
    plan = _plan(edit)
    pr = plan["assurance"]["primary"]
    assert "change_model.outcomes[0].attrition" in pr["priors"]
    assert plan["primary"]["result"]["n_total"] == 1240  # the centre, 0.05, sizes the trial
