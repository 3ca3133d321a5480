"""Closed-form designs: reference values beside their source, round trips, properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialplan.errors import InputError, UnreachableTargetError
from trialplan.stats import frison_pocock_multiplier, means, proportions, rates, survival

# ---- reference values ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "d, power, alpha, expected",
    [
        (0.5, 0.8, 0.05, 63.76561),  # R: pwr.t.test(d=.5, power=.8) -> 63.76561
        (0.2, 0.8, 0.05, 393.4057),  # R: pwr.t.test(d=.2, power=.8) -> 393.4057
        (0.8, 0.8, 0.05, 25.52458),  # R: pwr.t.test(d=.8, power=.8) -> 25.52458
        (0.5, 0.9, 0.05, 85.03128),  # R: pwr.t.test(d=.5, power=.9) -> 85.03128
        (0.5, 0.95, 0.05, 104.9279),  # R: pwr.t.test(d=.5, power=.95) -> 104.9279
        (0.5, 0.8, 0.025, 77.31038),  # R: pwr.t.test(d=.5, power=.8, sig.level=.025) -> 77.31038
        (0.5, 0.8, 0.05 / 3, 85.19947),  # R: pwr.t.test(..., sig.level=.05/3) -> 85.19947
    ],
)
def test_means_n_matches_r_pwr(d, power, alpha, expected):
    assert means(d=d, power=power, alpha=alpha).n_exact == pytest.approx(expected, rel=1e-6)


def test_means_one_sided_matches_r_pwr():
    # R: pwr.t.test(d=.5, power=.8, alternative="greater") -> 50.1508
    r = means(d=0.5, power=0.8, sided="one", alternative="greater")
    assert r.n_exact == pytest.approx(50.1508, rel=1e-5)


def test_means_unequal_allocation_matches_statsmodels():
    # statsmodels: TTestIndPower().solve_power(0.5, power=.8, ratio=2) -> nobs1 47.742
    assert means(d=0.5, power=0.8, ratio=2).n_exact == pytest.approx(47.742, rel=1e-4)


def test_means_power_and_detectable_effect_match_r():
    # R: pwr.t2n.test(d=.6, n1=90, n2=60, alternative="greater") -> 0.9737262
    r = means(d=0.6, n=60, ratio=1.5, sided="one", alternative="greater")
    assert r.power == pytest.approx(0.9737262, abs=1e-6)
    # R: power.t.test(n=20, delta=.5, strict=TRUE)$power -> 0.3379390289
    assert means(d=0.5, n=20).power == pytest.approx(0.3379390289, abs=1e-9)
    # R: pwr.t.test(n=50, power=.9)$d -> 0.654752
    assert means(n=50, power=0.9).effect["d"] == pytest.approx(0.654752, rel=1e-6)


def test_gpower_convention_64_per_arm():
    # G*Power: d=.5 -> 64 per arm, actual power 0.8014596 (reference/methods.md 3.1)
    r = means(d=0.5, power=0.8)
    assert r.n_analysed_per_arm == {"control": 64, "intervention": 64}
    assert r.power == pytest.approx(0.8014596, abs=1e-7)


@pytest.mark.parametrize(
    "p1, p2, expected",
    [
        (0.65, 0.45, 95.94229),  # R: power.prop.test(p1=.65, p2=.45, power=.8, strict=TRUE)
        (0.5, 0.4, 387.33766),  # R: power.prop.test(p1=.5, p2=.4, power=.8, strict=TRUE)
        (0.3, 0.2, 293.15066),  # R: power.prop.test(p1=.3, p2=.2, power=.8, strict=TRUE)
    ],
)
def test_proportions_pooled_matches_power_prop_test(p1, p2, expected):
    assert proportions(p1=p1, p2=p2, power=0.8).n_exact == pytest.approx(expected, rel=1e-6)


def test_proportions_detectable_rate_matches_power_prop_test():
    # R: power.prop.test(p1=.38, n=300, power=.8, strict=TRUE, tol=1e-12)$p2 -> 0.493228566504
    r = proportions(p1=0.38, n=300, power=0.8, alternative="greater")
    assert r.effect["p_intervention"] == pytest.approx(0.493228566504, abs=1e-9)


def test_proportions_arcsine_matches_pwr():
    # R: pwr.2p.test(h=ES.h(.65,.45), power=.8)$n -> 95.76939 (reference/methods.md 3.2)
    assert proportions(p1=0.45, p2=0.65, power=0.8, method="arcsine").n_exact == pytest.approx(
        95.76939, rel=1e-6)


def test_fleiss_continuity_correction_formula():
    # Fleiss, Tytun & Ury 1980: n_cc = n/4 (1 + sqrt(1 + 4/(n |delta|))) ^ 2 at 1:1
    n = 95.94229216
    expected = n / 4 * (1 + np.sqrt(1 + 4 / (n * 0.2))) ** 2
    r = proportions(p1=0.65, p2=0.45, power=0.8, continuity=True)
    assert r.n_exact == pytest.approx(expected, rel=1e-6)


def test_core_readmission_anchor():
    # reference/peer-support.md 7.1: 38% -> 29% needs 431 (80%) and 576 (90%) per arm
    assert proportions(p1=0.38, p2=0.29, power=0.8).n_analysed_per_arm["control"] == 431
    assert proportions(p1=0.38, p2=0.29, power=0.9).n_analysed_per_arm["control"] == 576


@pytest.mark.parametrize(
    "hr, schoenfeld, freedman",
    # reference/methods.md 3.5 table (formula values, rounded up)
    [(0.5, 66, 71), (0.6, 121, 126), (0.7, 247, 253), (0.75, 380, 385), (0.8, 631, 636)],
)
def test_survival_events_table(hr, schoenfeld, freedman):
    assert survival(hr=hr, power=0.8).events == schoenfeld
    assert survival(hr=hr, power=0.8, method="freedman").events == freedman


def test_survival_subjects_match_rpact():
    # R: rpact::getSampleSizeSurvival(hazardRatio=.7, alpha=.025, sided=1, beta=.2,
    #    lambda2=log(2)/12, accrualTime=c(0,12), followUpTime=12)
    #    -> maxNumberOfEvents 246.787104547, maxNumberOfSubjects 428.596212091
    r = survival(hr=0.7, power=0.8, alpha=0.025, sided="one", alternative="less",
                 control_median=12, accrual=12, follow_up=12)
    assert r.n_exact * 2 == pytest.approx(428.596212091, rel=1e-6)
    assert r.events == 247


def test_unequal_allocation_schoenfeld():
    # Schoenfeld events scale by (1 + r)^2 / (4 r) under unequal allocation (methods.md 3.5)
    base = survival(hr=0.7, power=0.8)
    two = survival(hr=0.7, power=0.8, ratio=2)
    ratio_exact = two.n_exact * 3 / (base.n_exact * 2)
    assert ratio_exact == pytest.approx(9 / 8, rel=1e-6)


# ---- adjustments --------------------------------------------------------------------------

def test_attrition_divides_not_multiplies():
    # 128 analysed / (1 - 0.2) = 160 recruited (methods.md 3.4), not 153.6
    r = means(d=0.5, power=0.8, attrition=0.2)
    assert r.n_total == 160


def test_design_effects():
    # Eldridge 2006: m=20, CV=.65, ICC=.05 -> 2.3725 (methods.md 4.1)
    r = means(d=0.3, power=0.8, clustering="cluster", icc=0.05, cluster_size=20, cluster_cv=0.65)
    assert r.design_effect["control"] == pytest.approx(2.3725)
    r = means(d=0.3, power=0.8, clustering="partial", icc=0.05, cluster_size=10,
              control_variance="total")
    assert r.design_effect == {"control": 1.0, "intervention": pytest.approx(1.45)}
    # within-caseload convention: 1 + m ICC / (1 - ICC) = 1 + 0.5 / 0.95
    r = means(d=0.3, power=0.8, clustering="partial", icc=0.05, cluster_size=10)
    assert r.design_effect["intervention"] == pytest.approx(1.0 + 0.5 / 0.95)


def test_partial_nesting_close_to_normal_formula():
    # Normal approximation (methods.md 4.3): d=.3, m=10, ICC=.05 -> 213.66 per arm.
    # The t reference with Satterthwaite df can only need more, and not much more here.
    r = means(d=0.3, power=0.8, clustering="partial", icc=0.05, cluster_size=10,
              control_variance="total")
    assert 213.66 < r.n_exact < 213.66 * 1.05
    assert r.peer_workers == int(np.ceil(r.n_analysed_per_arm["intervention"] / 10))


def test_cluster_randomised_uses_whole_clusters():
    r = means(d=0.3, power=0.8, clustering="cluster", icc=0.05, cluster_size=20)
    k = r.clusters_per_arm["control"]
    assert r.n_analysed_per_arm["control"] == k * 20
    # the normal approximation gives 17.1 clusters per arm; t on 2k - 2 df needs more
    assert k >= 18


def test_frison_pocock_multipliers():
    # methods.md 3.3 (formula values)
    assert frison_pocock_multiplier(0.5, 1, 1) == pytest.approx(0.75)
    assert frison_pocock_multiplier(0.5, 1, 3) == pytest.approx(0.416667, rel=1e-5)
    assert frison_pocock_multiplier(0.6, 2, 2) == pytest.approx(0.35)


def test_co_primary_bonferroni():
    r = means(d=0.5, power=0.8, co_primary=2)
    assert r.alpha == pytest.approx(0.025)
    assert r.n_exact == pytest.approx(77.31038, rel=1e-6)  # R: pwr.t.test(sig.level=.025)


# ---- round trips ----------------------------------------------------------------------------

CASES = [
    (means, {"d": 0.35}, "d"),
    (means, {"d": 0.35, "baseline_corr": 0.6}, "d"),
    (means, {"d": 0.35, "clustering": "partial", "icc": 0.04, "cluster_size": 9}, "d"),
    (means, {"d": 0.35, "clustering": "cluster", "icc": 0.04, "cluster_size": 9}, "d"),
    (proportions, {"p1": 0.38, "p2": 0.29}, "p2"),
    (proportions, {"p1": 0.38, "p2": 0.29, "method": "arcsine"}, "p2"),
    (proportions, {"p1": 0.38, "p2": 0.29, "continuity": True}, "p2"),
    (proportions, {"p1": 0.38, "p2": 0.29, "clustering": "partial", "icc": 0.03,
                   "cluster_size": 9}, "p2"),
    (survival, {"hr": 0.75}, "hr"),
    (survival, {"hr": 0.75, "method": "freedman"}, "hr"),
    (rates, {"rate": 1.5, "rr": 0.8}, "rr"),
    (rates, {"rate": 1.5, "rr": 0.8, "dispersion": 0.8, "exposure": 12}, "rr"),
    (rates, {"rate": 1.5, "rr": 0.8, "dispersion": 0.8, "method": "ftotal"}, "rr"),
    (rates, {"rate": 0.5, "rr": 0.7, "dispersion": 0.5, "clustering": "partial", "icc": 0.03,
             "cluster_size": 9}, "rr"),
]


def _effect_value(result, key):
    return {"d": result.effect.get("d"), "p2": result.effect.get("p_intervention"),
            "hr": result.effect.get("hazard_ratio"), "rr": result.effect.get("rate_ratio")}[key]


@pytest.mark.parametrize("fn, kwargs, effect_key", CASES)
def test_round_trip_every_unknown(fn, kwargs, effect_key):
    power = 0.83
    solved_n = fn(**kwargs, power=power)
    # survival's n is total events; with no event probability participants = events
    n = solved_n.n_exact * 2 if fn is survival else solved_n.n_exact
    back = fn(**kwargs, n=n)
    assert back.power == pytest.approx(power, abs=1e-9)
    without = {k: v for k, v in kwargs.items() if k != effect_key}
    again = fn(**without, n=n, power=power)
    assert _effect_value(again, effect_key) == pytest.approx(kwargs[effect_key], rel=1e-6)


# ---- properties -----------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(d=st.floats(0.1, 1.5), power=st.floats(0.5, 0.97), ratio=st.sampled_from([1.0, 1.5, 2.0]))
def test_rounded_n_reaches_target_and_one_less_does_not(d, power, ratio):
    r = means(d=d, power=power)
    n = r.n_analysed_per_arm["control"]
    assert r.power >= power - 1e-9
    assert means(d=d, n=n - 1).power < power + 1e-9


@settings(max_examples=40, deadline=None)
@given(p1=st.floats(0.1, 0.9), n=st.floats(20, 2000))
def test_power_rises_with_n_and_effect(p1, n):
    small = proportions(p1=p1, rd=0.02 if p1 < 0.5 else -0.02, n=n).power
    bigger_n = proportions(p1=p1, rd=0.02 if p1 < 0.5 else -0.02, n=n * 1.5).power
    bigger_eff = proportions(p1=p1, rd=0.05 if p1 < 0.5 else -0.05, n=n).power
    assert bigger_n > small and bigger_eff > small


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_power_equals_alpha_at_zero_effect(alpha):
    assert means(d=0.0, n=80, alpha=alpha).power == pytest.approx(alpha, abs=1e-10)
    assert proportions(p1=0.3, p2=0.3, n=80, alpha=alpha).power == pytest.approx(alpha, abs=1e-10)
    assert survival(hr=1.0, n=80, alpha=alpha).power == pytest.approx(alpha, abs=1e-10)


def test_grid_is_one_vectorised_call_matching_scalar_calls():
    d = np.array([0.2, 0.5])[:, None]
    power = np.array([0.8, 0.9])
    grid = means(d=d, power=power)
    assert grid.shape == (2, 2)
    for i, dd in enumerate([0.2, 0.5]):
        for j, pp in enumerate([0.8, 0.9]):
            assert grid.n_exact[i, j] == pytest.approx(means(d=dd, power=pp).n_exact, rel=1e-9)
    cells = grid.cells()
    assert len(cells) == 4 and cells[3].inputs["d"] == 0.5


# ---- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"d": 0.5, "power": 1.2}, "power must be in (0, 1); got 1.2"),
        ({"d": 0.5, "power": 0.8, "alpha": 0}, "alpha must be in (0, 1)"),
        ({"d": 0.5, "power": 0.8, "clustering": "partial", "icc": 1.0, "cluster_size": 5},
         "icc must be in [0, 1)"),
        ({"d": 0.5, "power": 0.8, "attrition": 1.0}, "attrition must be in [0, 1)"),
        ({"d": 0.0, "power": 0.8}, "d must be non-zero"),
        ({"d": 0.5, "power": 0.8, "n": 30}, "n, power and d were all given"),
        ({"d": 0.5}, "n and power were both left out"),
        ({"d": -0.5, "power": 0.8, "sided": "one", "alternative": "greater"}, "other way"),
        ({"d": 0.5, "power": 0.8, "sided": "one"}, "needs its direction"),
        ({"d": float("nan"), "power": 0.8}, "d must be finite"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, message):
    with pytest.raises(InputError) as info:
        means(**kwargs)
    assert message in str(info.value)


def test_proportion_out_of_range():
    with pytest.raises(InputError, match=r"p1 must be in \(0, 1\)"):
        proportions(p1=1.2, p2=0.3, power=0.8)


def test_unreachable_target_says_how_far_power_gets():
    with pytest.raises(UnreachableTargetError, match="still"):
        means(d=1e-5, power=0.8)
    with pytest.raises(UnreachableTargetError, match="tops out"):
        proportions(p1=0.5, n=10, power=0.999999, alternative="greater")


def test_grid_records_equal_per_cell_results():
    grid = proportions(p1=np.array([0.3, 0.4]).reshape(-1, 1), rd=np.array([-0.1, -0.05]),
                       power=0.9, clustering="partial", icc=0.03, cluster_size=9,
                       attrition=np.array([0.1, 0.2]).reshape(-1, 1, 1))
    assert grid.shape == (2, 2, 2)
    assert grid.records() == [c.to_dict() for c in grid.cells()]
    solved_d = means(n=np.array([50, 80]), power=0.8)
    assert solved_d.records() == [c.to_dict() for c in solved_d.cells()]


# ---- rates --------------------------------------------------------------------------------

@pytest.mark.parametrize("n, dispersion, method, expected", [
    # statsmodels.stats.rates.power_negbin_ratio_2indep(2.0, 1.6, n, exposure=1,
    #     dispersion=k, method_var=m).power
    (300, 0.5, "alt", 0.7553375116879302),
    (150, 0.0, "alt", 0.7312785664373291),
    (200, 0.3, "ftotal", 0.6738934276229351),
])
def test_rates_power_matches_statsmodels(n, dispersion, method, expected):
    r = rates(rate=2.0, rr=0.8, dispersion=dispersion, n=n, method=method)
    assert r.power == pytest.approx(expected, abs=1e-12)


def test_rates_unequal_allocation_and_exposure_match_statsmodels():
    # statsmodels: power_negbin_ratio_2indep(0.5, 0.35, 120, nobs_ratio=1.5, exposure=12,
    #     dispersion=0.8, method_var="ftotal").power -> 0.8567612856724776
    r = rates(rate=0.5, rate2=0.35, n=120, ratio=1.5, exposure=12, dispersion=0.8,
              method="ftotal")
    assert r.power == pytest.approx(0.8567612856724776, abs=1e-12)


def test_rates_round_trip_and_grid():
    solved = rates(rate=1.5, rr=0.8, dispersion=0.8, exposure=12, power=0.9)
    again = rates(rate=1.5, dispersion=0.8, exposure=12, n=solved.n_exact, power=0.9)
    assert again.effect["rate_ratio"] == pytest.approx(0.8, rel=1e-8)
    grid = rates(rate=1.5, rr=np.array([0.7, 0.8])[:, None], dispersion=np.array([0.0, 0.8]),
                 power=0.9)
    cells = [rates(rate=1.5, rr=a, dispersion=k, power=0.9).n_total
             for a in (0.7, 0.8) for k in (0.0, 0.8)]
    assert grid.n_total.ravel().tolist() == cells
    with pytest.raises(InputError, match="differ from 1"):
        rates(rate=1.5, rr=1.0, power=0.9)


def test_solver_returns_its_last_evaluation_so_no_power_is_computed_twice():
    from trialplan.stats._solver import solve_increasing

    seen = []

    def fn(x, cells):
        seen.extend(zip(cells.tolist(), np.asarray(x).tolist(), strict=True))
        return 1.0 - np.exp(-x / np.array([10.0, 50.0, 200.0])[cells])

    def unreachable(mask, best):
        raise AssertionError("reachable")

    x, fx = solve_increasing(fn, np.array([0.3, 0.6, 0.9]), 1e-6, 1e4, unreachable=unreachable,
                             values=True)
    assert len(seen) == len(set(seen))  # no cell evaluated twice at one point
    np.testing.assert_array_equal(fx, fn(x, np.arange(3)))
    # A detectable effect reports power from the solver's own evaluation: the target, to
    # the solver's tolerance.  R: f <- function(d) pwr::pwr.t.test(n=50, d=d)$power - 0.8;
    # uniroot(f, c(0.1, 2), tol=1e-13)$root -> 0.565882243755
    r = means(n=50, power=0.8)
    assert r.power == pytest.approx(0.8, abs=1e-9)
    assert r.effect["d"] == pytest.approx(0.565882243755, abs=1e-10)


def test_survival_grid_over_the_event_probability_inputs_broadcasts():
    # power down one axis, the control median along another: each cell as if alone
    grid = survival(hr=0.7, power=np.array([0.8, 0.9])[:, None],
                    control_median=np.array([6.0, 12.0]), accrual=12, follow_up=6)
    cells = [[survival(hr=0.7, power=p, control_median=m, accrual=12, follow_up=6).n_total
              for m in (6.0, 12.0)] for p in (0.8, 0.9)]
    assert grid.n_total.tolist() == cells
