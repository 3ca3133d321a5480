"""Mediation power: published values, an independent statsmodels simulation, and properties."""

import math

import numpy as np
import pytest

from trialplan.errors import InputError, UnreachableTargetError
from trialplan.stats import _medsim, mediation, to_residual, to_standardized

PATHS = {"S": 0.14, "H": 0.26, "M": 0.39, "L": 0.59}

# Fritz & MacKinnon (2007, Psychological Science 18:233-239), Table 3, joint significance
# column: N for .80 power, X ~ N(0, 1), unit residual variances, alpha .05 two-sided.
# Column code (a, b).  Transcription: ../shared/reference/methods.md section 2.5.
FM_JS = {"SS": 530, "SH": 402, "SM": 403, "SL": 403, "HS": 407, "HH": 159, "HM": 124,
         "HL": 120, "MS": 405, "MH": 125, "MM": 74, "ML": 58, "LS": 405, "LH": 122,
         "LM": 59, "LL": 36}
FM_PB = {"SS": 558, "MM": 78, "LL": 36}  # same table, percentile bootstrap column


@pytest.mark.parametrize("cell", sorted(FM_JS))
def test_analytic_joint_matches_fritz_mackinnon_table3(cell):
    r = mediation(a=PATHS[cell[0]], b=PATHS[cell[1]], power=0.8, x="continuous")
    assert abs(r.n_total - FM_JS[cell]) <= 0.02 * FM_JS[cell]
    assert r.power >= 0.8
    below = mediation(a=PATHS[cell[0]], b=PATHS[cell[1]], n=r.n_total - 1, x="continuous")
    assert below.power < 0.8


@pytest.mark.parametrize("cell, expected", [("SS", 801), ("HH", 233), ("MM", 104), ("LL", 46)])
def test_sobel_closed_form(cell, expected):
    # n = (z_.975 + z_.80)^2 (a^2 + b^2) / (a^2 b^2) with Var(X) = 1 and unit residual
    # variances; reference/methods.md sections 2.2 and 2.6 (MM: 103.2 -> 104; pwrss
    # power.z.mediation gives 104 with sd.mediator = sqrt(1 + a^2),
    # sd.outcome = sqrt(b^2 (1 + a^2) + 1)).
    a = b = PATHS[cell[0]]
    r = mediation(a=a, b=b, power=0.8, x="continuous", test="sobel")
    assert r.n_total == expected


def test_sobel_on_the_standardized_scale_gives_the_same_n():
    # The pwrss parameterisation of the same model (total variances 1) must give 104.
    a_s, b_s, _ = to_standardized(0.39, 0.39, 0.0, x="continuous")
    assert a_s == pytest.approx(0.39 / math.sqrt(1 + 0.39**2))
    assert b_s == pytest.approx(0.39 * math.sqrt(1 + 0.39**2) /
                                math.sqrt(0.39**2 * (1 + 0.39**2) + 1))
    r = mediation(a=a_s, b=b_s, power=0.8, x="continuous", test="sobel", scale="standardized")
    assert r.n_total == 104
    assert r.a == pytest.approx(0.39) and r.b == pytest.approx(0.39)


@pytest.mark.parametrize("x", ["binary", "continuous"])
@pytest.mark.parametrize("paths", [(0.3, 0.2, 0.1), (-0.5, 0.4, 0.0), (0.1, -0.6, -0.2)])
def test_scale_conversion_round_trips(x, paths):
    back = to_standardized(*to_residual(*paths, x=x, allocation=0.4), x=x, allocation=0.4)
    np.testing.assert_allclose(back, paths, atol=1e-12)


def test_vsm_matches_powermediation_example():
    # powerMediation::ss.VSMc(power=.8, b2=0.1, sigma.m=1, sigma.e=1, corr.xm=0.3) -> 862.5,
    # i.e. n = 863 (Vittinghoff, Sen & McCulloch 2009, section 3; reference/methods.md 2.7).
    # On the residual scale b is per residual SD of M: 0.1 * sqrt(1 - 0.3^2).
    b = 0.1 * math.sqrt(1 - 0.09)
    assert mediation(a=0.5, b=b, power=0.8, test="vsm", x="continuous").n_total == 863
    # with a 0/1 treatment n is solved per arm, so 1:1 gives 432 + 432
    assert mediation(a=0.5, b=b, power=0.8, test="vsm").n_per_arm == {"control": 432,
                                                                        "intervention": 432}


def test_binary_x_a_path_is_the_two_sample_t_test():
    # With X the 0/1 treatment, power of the a path is pwr.t.test power for d = a:
    # R: pwr::pwr.t.test(n = 64, d = 0.5)$power = 0.8014596
    r = mediation(a=0.5, b=0.3, n=128)
    assert r.path_power["a"] == pytest.approx(0.8014596, abs=1e-6)


def test_monotone_in_n_and_zero_effect_gives_no_indirect_power():
    powers = [mediation(a=0.3, b=0.25, n=n).power for n in range(40, 400, 20)]
    assert all(p1 < p2 for p1, p2 in zip(powers, powers[1:], strict=False))
    with pytest.raises(InputError, match="non-zero"):
        mediation(a=0.0, b=0.3, power=0.8)


def test_smallest_detectable_a_is_on_the_lower_branch():
    # Standardised scale: a larger a leaves less variance in M, so power in a rises
    # then falls (WebPower's wp.mediation returns the upper root).
    r = mediation(b=0.5, n=100, power=0.8, scale="standardized", x="continuous")
    a_s = r.inputs["a"] if r.inputs["a"] is not None else None
    assert a_s is None
    found = to_standardized(r.a, r.b, r.cprime, x="continuous")[0]
    at = mediation(a=found, b=0.5, n=100, scale="standardized", x="continuous").power
    assert at == pytest.approx(0.8, abs=1e-6)
    below = mediation(a=found * 0.98, b=0.5, n=100, scale="standardized", x="continuous").power
    assert below < 0.8
    assert "larger root" in " ".join(r.notes)
    # the residual-scale version is monotone: the root reproduces the target too
    r2 = mediation(b=0.3, n=400, power=0.8)
    assert mediation(a=r2.a, b=0.3, n=400).power == pytest.approx(0.8, abs=1e-6)


def test_unreachable_detectable_path_says_how_far_power_gets():
    with pytest.raises(UnreachableTargetError, match="tops out at"):
        mediation(b=0.1, n=30, power=0.9, scale="standardized")


def test_covariates_raise_power_of_a_and_cost_b():
    plain = mediation(a=0.3, b=0.3, n=300)
    adj = mediation(a=0.3, b=0.3, n=300, r2_m=0.4)
    assert adj.path_power["a"] > plain.path_power["a"]
    assert adj.path_power["b"] < plain.path_power["b"]


def test_partial_nesting_costs_power_and_counts_peer_workers():
    plain = mediation(a=0.4, b=0.4, n=400)
    pn = mediation(a=0.4, b=0.4, n=400, icc_m=0.05, icc_y=0.05, cluster_size=10)
    more = mediation(a=0.4, b=0.4, n=400, icc_m=0.15, icc_y=0.15, cluster_size=10)
    assert pn.peer_workers == 20
    assert plain.power > pn.power > more.power
    # b estimated within caseloads sits between the unclustered and the between-caseload b
    kw = dict(a=0.4, b=0.15, n=400)
    plain_b = mediation(**kw).path_power["b"]
    within = mediation(**kw, icc_m=0.05, icc_y=0.05, cluster_size=10, b_level="individual")
    between = mediation(**kw, icc_m=0.05, icc_y=0.05, cluster_size=10)
    assert plain_b > within.path_power["b"] > between.path_power["b"]
    assert within.path_power["a"] == pytest.approx(between.path_power["a"])
    solved = mediation(a=0.4, b=0.4, power=0.8, icc_m=0.05, icc_y=0.05, cluster_size=10)
    assert solved.power >= 0.8
    assert solved.peer_workers == math.ceil(solved.n_per_arm["intervention"] / 10)


@pytest.mark.parametrize("kwargs, message", [
    (dict(a=float("nan"), b=0.3, n=100), "a must be finite"),
    (dict(a=0.3, b=0.3, power=1.2), r"power must be in \(0, 1\)"),
    (dict(a=0.3, b=0.3, n=100, test="bootstrap", reps=0), "reps must be at least 1"),
    (dict(a=0.3, b=0.3, n=100, test="bootstrap", boot=0), "boot must be at least 1"),
    (dict(a=0.3, b=0.3, n=100, icc_m=1.0, icc_y=0.1, cluster_size=5), r"icc_m must be in \[0, 1\)"),
    (dict(a=0.3, b=0.3, n=100, icc_m=0.1, icc_y=0.1, cluster_size=0.5),
     "cluster_size must be at least 1"),
    (dict(a=0.3, b=0.3), "leave out exactly one"),
    (dict(a=0.3, b=0.3, n=100, test="sobel", simulate=True), "analytic only"),
])
def test_bad_input(kwargs, message):
    with pytest.raises(InputError, match=message):
        mediation(**kwargs)


# ------------------------------------------------------------------------------------------
# Simulation engine


def _statsmodels_power(a, b, n, test, reps, seed, draws=2000, x="binary"):
    """The straightforward loop: simulate, fit two statsmodels OLS models, test."""
    import statsmodels.api as sm

    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        xx = np.repeat([0.0, 1.0], n // 2) if x == "binary" else rng.standard_normal(n)
        m = a * xx + rng.standard_normal(n)
        y = b * m + rng.standard_normal(n)
        fit_m = sm.OLS(m, sm.add_constant(xx)).fit()
        fit_y = sm.OLS(y, sm.add_constant(np.column_stack([xx, m]))).fit()
        a_hat, se_a, p_a = fit_m.params[1], fit_m.bse[1], fit_m.pvalues[1]
        b_hat, se_b, p_b = fit_y.params[2], fit_y.bse[2], fit_y.pvalues[2]
        if test == "joint":
            hits += (p_a < 0.05) and (p_b < 0.05)
        else:
            prod = ((a_hat + se_a * rng.standard_normal(draws))
                    * (b_hat + se_b * rng.standard_normal(draws)))
            lo, hi = np.quantile(prod, [0.025, 0.975])
            hits += (lo > 0) or (hi < 0)
    return hits / reps


@pytest.mark.parametrize("test", ["joint", "mc"])
def test_engine_agrees_with_a_statsmodels_simulation(test):
    a, b, n = 0.35, 0.25, 160
    ref = _statsmodels_power(a, b, n, test, reps=400, seed=7)
    ours = mediation(a=a, b=b, n=n, test=test, simulate=True, reps=4000, seed=11)
    se = math.sqrt(ref * (1 - ref) / 400 + ours.mc_se**2)
    assert abs(ours.power - ref) < 4 * se


@pytest.mark.parametrize("kwargs", [
    dict(a=0.39, b=0.39, n=210), dict(a=0.5, b=0.2, n=200, r2_m=0.3, r2_y=0.4),
    dict(a=0.3, b=0.15, n=400, allocation=0.6), dict(a=0.26, b=0.26, n=159, x="continuous"),
])
def test_analytic_joint_agrees_with_simulated_joint(kwargs):
    analytic = mediation(**kwargs).power
    sim = mediation(**kwargs, simulate=True, reps=6000, seed=5)
    assert abs(sim.power - analytic) < 4 * sim.mc_se


@pytest.mark.parametrize("test, a, b", [
    ("joint", 0.0, 0.4), ("joint", 0.4, 0.0), ("mc", 0.4, 0.0), ("mc", 0.0, 0.4),
    ("bootstrap", 0.4, 0.0), ("bootstrap", 0.0, 0.4),
])
def test_type_one_error_at_or_below_alpha(test, a, b):
    reps = 600 if test == "bootstrap" else 4000
    r = mediation(a=a, b=b, n=120, test=test, simulate=True, reps=reps, boot=400, seed=3)
    assert r.power <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)


def test_simulated_power_is_reproducible_and_seeded():
    one = mediation(a=0.3, b=0.3, n=200, test="mc", reps=300, seed=9)
    two = mediation(a=0.3, b=0.3, n=200, test="mc", reps=300, seed=9)
    assert one.to_dict() == two.to_dict()
    assert one.seed == 9 and one.reps == 300
    assert one.mc_se == pytest.approx(math.sqrt(one.power * (1 - one.power) / 300))


def test_common_random_numbers_make_simulated_power_monotone_in_n():
    spec = _medsim.SimSpec(0.3, 0.3, 0.0, "binary")
    powers = [_medsim.power(spec, "joint", n, n, reps=2000, seed=1)[0] for n in range(60, 200, 10)]
    assert all(p1 <= p2 for p1, p2 in zip(powers, powers[1:], strict=False))


def test_solved_simulated_n_reaches_target_and_one_unit_less_does_not():
    r = mediation(a=0.35, b=0.35, power=0.8, test="mc", reps=800, draws=1000, seed=4)
    assert r.power >= 0.8
    n_c = r.n_per_arm["control"] - 1
    below = mediation(a=0.35, b=0.35, n=2 * n_c, test="mc", reps=800, draws=1000, seed=4)
    assert below.power < 0.8


def test_bc_bootstrap_is_more_liberal_than_percentile():
    kw = dict(a=0.39, b=0.14, n=100, reps=600, boot=500, seed=2, x="continuous")
    pb = mediation(test="bootstrap", **kw).power
    bc = mediation(test="bc-bootstrap", **kw).power
    assert bc >= pb


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["SS", "MM", "LL"])
@pytest.mark.parametrize("test", ["joint", "bootstrap"])
def test_simulation_matches_fritz_mackinnon_table3(cell, test):
    expected = (FM_JS if test == "joint" else FM_PB)[cell]
    r = mediation(a=PATHS[cell[0]], b=PATHS[cell[1]], power=0.8, x="continuous", test=test,
                  simulate=True, reps=1000, boot=1000, seed=2007)
    tolerance = 0.10 if test == "bootstrap" and expected < 60 else 0.05
    assert abs(r.n_total - expected) <= tolerance * expected


# ------------------------------------------------------------------------------------------
# Simulation with peer-worker clustering in the intervention arm

PN = dict(icc_m=0.1, icc_y=0.1, cluster_size=10, b_level="individual")


def _statsmodels_nested_joint(a, b, n_c, n_t, m, icc, reps, seed):
    """The same analysis written plainly: Welch t on caseload means for a, and OLS with
    caseload fixed effects (statsmodels) for b."""
    import statsmodels.api as sm
    from scipy import stats

    rng = np.random.default_rng(seed)
    j = -(-n_t // m)
    labels = np.arange(n_t) % j
    tau = math.sqrt(icc / (1 - icc))
    hits = 0
    for _ in range(reps):
        u, v = rng.normal(0, tau, j), rng.normal(0, tau, j)
        m_c = rng.standard_normal(n_c)
        y_c = b * m_c + rng.standard_normal(n_c)
        m_t = a + u[labels] + rng.standard_normal(n_t)
        y_t = b * m_t + v[labels] + rng.standard_normal(n_t)
        means = np.array([m_t[labels == k].mean() for k in range(j)])
        p_a = stats.ttest_ind(means, m_c, equal_var=False).pvalue
        dummies = np.zeros((n_c + n_t, j + 1))
        dummies[:n_c, 0] = 1.0
        dummies[n_c + np.arange(n_t), 1 + labels] = 1.0
        design = np.column_stack([np.concatenate([m_c, m_t]), dummies])
        fit = sm.OLS(np.concatenate([y_c, y_t]), design).fit()
        hits += (p_a < 0.05) and (fit.pvalues[0] < 0.05)
    return hits / reps


def test_nested_engine_agrees_with_a_plain_statsmodels_analysis():
    ref = _statsmodels_nested_joint(0.35, 0.2, 150, 150, 10, 0.1, reps=300, seed=4)
    ours = mediation(a=0.35, b=0.2, n=300, simulate=True, reps=4000, seed=9, **PN)
    se = math.sqrt(ref * (1 - ref) / 300 + ours.mc_se ** 2)
    assert abs(ours.power - ref) < 4 * se


@pytest.mark.parametrize("test", ["joint", "mc"])
def test_nested_type_one_error(test):
    r = mediation(a=0.0, b=0.4, n=300, test=test, simulate=True, reps=4000, seed=2, **PN)
    assert r.power <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 4000)


@pytest.mark.parametrize("kw", [dict(a=0.3, b=0.3, n=580), dict(a=0.3, b=0.15, n=500),
                                dict(a=0.4, b=0.2, n=300)])
def test_analytic_partial_nesting_is_not_optimistic(kw):
    pn = dict(icc_m=0.05, icc_y=0.05, cluster_size=9, b_level="individual")
    analytic = mediation(**kw, **pn).power
    sim = mediation(**kw, **pn, simulate=True, reps=4000, seed=3)
    assert sim.power > analytic - 4 * sim.mc_se
    assert sim.power - analytic < 0.04


def test_nested_simulation_limits_are_explained():
    with pytest.raises(InputError, match="joint and mc"):
        mediation(a=0.3, b=0.3, n=300, test="bootstrap", **PN)
    with pytest.raises(InputError, match="individual"):
        mediation(a=0.3, b=0.3, n=300, simulate=True, icc_m=0.1, icc_y=0.1, cluster_size=10)


_DESIGNS = {
    "binary x, continuous outcome": {},
    "continuous x": {"x": "continuous"},
    "binary outcome": {"outcome": "binary", "base_rate": 0.3},
    "covariates": {"r2_m": 0.2, "r2_y": 0.1},
    "nested, b by caseload": {"icc_m": 0.05, "icc_y": 0.04, "cluster_size": 8},
    "nested, b individual, total variance": {"icc_m": 0.05, "icc_y": 0.04, "cluster_size": 8,
                                             "b_level": "individual",
                                             "control_variance": "total"},
    "nested, unconditional icc_y": {"icc_m": 0.05, "icc_y": 0.04, "cluster_size": 8,
                                    "icc_y_type": "unconditional"},
    "nested, binary outcome": {"icc_m": 0.05, "icc_y": 0.04, "cluster_size": 8,
                               "b_level": "individual", "outcome": "binary", "base_rate": 0.3},
}


@pytest.mark.parametrize("test", ["joint", "sobel", "aroian", "vsm"])
@pytest.mark.parametrize("design", list(_DESIGNS))
def test_power_over_arrays_is_mediation_element_by_element(design, test):
    from trialplan.stats.mediation import power_over

    kw = {"a": 0.3, "b": 0.25, "test": test, **_DESIGNS[design]}
    centre = mediation(**kw, n=300)
    rng = np.random.default_rng(7)
    varied = {"a": rng.normal(0.3, 0.2, 12), "b": rng.normal(0.25, 0.2, 12)}
    varied["a"][3] = 25.0  # beyond the paths mediation() accepts
    if "icc_m" in kw:
        varied["icc_m"] = varied["icc_y"] = rng.beta(2, 20, 12)
        varied["icc_y"][5] = 0.999  # too much of the outcome at the peer-worker level
    if kw.get("outcome") == "binary":
        varied["base_rate"] = rng.uniform(0.05, 0.6, 12)
    got = power_over(centre, **varied)
    for j in range(12):
        one = {**kw, **{k: float(x[j]) for k, x in varied.items()}}
        try:
            expected = mediation(**one, n=300).power
        except (InputError, UnreachableTargetError):
            assert math.isnan(got[j])
        else:
            assert got[j] == expected  # the same formulas: the same float
    assert math.isnan(got[3])
    with pytest.raises(ValueError, match="cannot vary"):
        power_over(centre, alpha=np.array([0.05]))


@pytest.mark.parametrize("design", ["binary x, continuous outcome", "continuous x",
                                    "nested, b individual, total variance",
                                    "nested, binary outcome"])
def test_power_over_n_is_the_power_curve(design):
    from trialplan.stats.mediation import power_over

    kw = {"a": 0.3, "b": 0.25, **_DESIGNS[design]}
    ns = np.array([3, 20, 41, 97, 250.5, 1001, 2_000_000])
    got = power_over(mediation(**kw, n=300), n=ns)
    for n_, p in zip(ns, got, strict=True):
        try:
            expected = mediation(**kw, n=float(n_)).power
        except InputError:  # below the design's minimum, not whole, or too many
            assert math.isnan(p)
        else:
            assert p == expected
    assert np.isnan(got[[0, 4, 6]]).all()
    assert np.all(np.diff(got[np.isfinite(got)]) > 0)


def test_simulated_n_does_not_simulate_the_answer_twice(monkeypatch):
    runs = []
    power = _medsim.power

    def counted(spec, test, n_c, n_t, **kw):
        runs.append((n_c, n_t))
        return power(spec, test, n_c, n_t, **kw)

    monkeypatch.setattr(_medsim, "power", counted)
    r = mediation(a=0.4, b=0.4, power=0.8, test="mc", reps=100, draws=200)
    assert len(runs) == len(set(runs))
    assert (r.n_per_arm["control"], r.n_per_arm["intervention"]) in runs


def test_simulations_run_with_one_blas_thread(monkeypatch):
    from threadpoolctl import threadpool_info

    from trialplan.stats import _medsim_multi

    seen = []

    def recording(fn):
        def inner(*args, **kwargs):
            seen.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
            return fn(*args, **kwargs)
        return inner

    monkeypatch.setattr(_medsim, "_moments", recording(_medsim._moments))
    monkeypatch.setattr(_medsim_multi, "_moments", recording(_medsim_multi._moments))
    mediation(a=0.3, b=0.3, n=100, test="bootstrap", reps=60, boot=50)
    mediation(a=0.3, b=0.3, n=100, test="mc", outcome="binary", base_rate=0.3, reps=60)
    assert seen and set(seen) == {1}


@pytest.mark.parametrize("test", ["joint", "sobel", "aroian", "vsm"])
def test_too_few_peer_workers_give_zero_power_in_arrays_as_alone(test):
    from trialplan.stats.mediation import _Spec, analytic_power

    spec = _Spec(0.4, 0.3, 0.0, "binary", 0.5, 0.05, 0.0, 0.0, 0, 0.05, 0.05, 10.0)
    n_t = np.array([15.0, 200.0])  # 1.5 peer workers (df 0.5), then 20
    powers = analytic_power(spec, test, n_t, n_t)[0]
    assert analytic_power(spec, test, 15.0, 15.0)[0] == 0.0 == powers[0]
    assert powers[1] == analytic_power(spec, test, 200.0, 200.0)[0] > 0.05
