"""Binary outcomes and several mediators: statsmodels agreement, analytic vs simulation."""

import math
import subprocess
import sys

import numpy as np
import pytest

from trialplan.errors import InputError
from trialplan.stats import _medsim_multi as mm
from trialplan.stats import mediation, mediation_multi


def _statsmodels_binary(a, b, n, test, reps, seed, base_rate, draws=2000):
    """The straightforward loop: simulate, fit OLS for M and a statsmodels Logit for Y."""
    import statsmodels.api as sm

    spec = mm.MultiSpec((a,), (b,), 0.0, "binary", "binary", base_rate)
    b0 = mm.calibrate_intercept(spec)
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        x = np.repeat([0.0, 1.0], n // 2)
        m = a * x + rng.standard_normal(n)
        y = (rng.random(n) < 1 / (1 + np.exp(-(b0 + b * m)))).astype(float)
        fa = sm.OLS(m, sm.add_constant(x)).fit()
        fb = sm.Logit(y, sm.add_constant(np.column_stack([x, m]))).fit(disp=0)
        if test == "joint":
            hits += (fa.pvalues[1] < 0.05) and (fb.pvalues[2] < 0.05)
        else:
            prod = ((fa.params[1] + fa.bse[1] * rng.standard_normal(draws))
                    * (fb.params[2] + fb.bse[2] * rng.standard_normal(draws)))
            lo, hi = np.quantile(prod, [0.025, 0.975])
            hits += (lo > 0) or (hi < 0)
    return hits / reps


@pytest.mark.parametrize("test", ["joint", "mc"])
def test_binary_outcome_engine_agrees_with_statsmodels_logit(test):
    a, b, n, rate = 0.3, 0.3, 300, 0.38
    ref = _statsmodels_binary(a, b, n, test, reps=300, seed=3, base_rate=rate)
    ours = mediation(a=a, b=b, n=n, test=test, simulate=True, reps=3000, seed=8,
                     outcome="binary", base_rate=rate)
    se = math.sqrt(ref * (1 - ref) / 300 + ours.mc_se ** 2)
    assert abs(ours.power - ref) < 4 * se


def test_base_rate_is_the_control_arm_rate_marginal_over_the_mediator():
    spec = mm.MultiSpec((0.4,), (0.8,), 0.0, "binary", "binary", 0.3)
    z = mm._data(spec, 1, 0, 50, 4000, 1, mm.calibrate_intercept(spec))
    control_y = z[:, :4000, -1]
    assert control_y.mean() == pytest.approx(0.3, abs=3 * math.sqrt(0.21 / control_y.size))


def test_binary_analytic_joint_agrees_with_simulation():
    kw = dict(a=0.25, b=0.25, n=800, outcome="binary", base_rate=0.3)
    analytic = mediation(**kw).power
    sim = mediation(**kw, simulate=True, reps=4000, seed=2)
    assert abs(sim.power - analytic) < 4 * sim.mc_se


def test_binary_type_one_error():
    r = mediation(a=0.4, b=0.0, n=300, test="mc", reps=3000, seed=4, outcome="binary",
                  base_rate=0.3)
    assert r.power <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 3000)


def test_separation_is_counted_and_reported_not_dropped():
    spec = mm.MultiSpec((0.5,), (6.0,), 0.0, "binary", "binary", 0.5)
    out = mm.power(spec, "joint", 15, 15, reps=200, seed=1)
    assert out["failed_fits"] > 0
    r = mediation(a=0.5, b=6.0, n=30, test="joint", simulate=True, reps=200, seed=1,
                  outcome="binary", base_rate=0.5)
    assert any("failed" in note and f"{out['failed_fits']} of 200" in note for note in r.notes)


@pytest.mark.parametrize("correlation", [None, [[1, 0.5], [0.5, 1]]])
def test_parallel_analytic_agrees_with_simulation(correlation):
    meds = [("hope", 0.3, 0.3), ("efficacy", 0.3, 0.2)]
    analytic = mediation_multi(meds, n=400, correlation=correlation)
    sim = mediation_multi(meds, n=400, correlation=correlation, simulate=True, reps=4000,
                          seed=6)
    for e_an, e_sim in zip(analytic.effects, sim.effects, strict=True):
        assert abs(e_an["power"] - e_sim["power"]) < 4 * e_sim["mc_se"]
    if correlation is None:  # independent tests: the product is the conjunction
        assert abs(analytic.all["power"] - sim.all["power"]) < 4 * sim.all["mc_se"]
    assert sim.all["power"] <= min(e["power"] for e in sim.effects)
    assert sim.any["power"] >= max(e["power"] for e in sim.effects)


def test_single_mediator_through_the_multi_engine_matches_the_single_engine():
    one = mediation_multi([("hope", 0.3, 0.25)], n=300)
    assert one.effects[0]["power"] == pytest.approx(mediation(a=0.3, b=0.25, n=300).power,
                                                    rel=1e-9)


def test_serial_chain_analytic_agrees_with_simulation():
    meds = [("engagement", 0.3, 0.2), ("network", 0.2, 0.3)]
    analytic = mediation_multi(meds, serial=0.3, n=500)
    sim = mediation_multi(meds, serial=0.3, n=500, simulate=True, reps=4000, seed=9)
    assert [e["name"] for e in sim.effects] == ["engagement", "network",
                                                "engagement -> network"]
    for e_an, e_sim in zip(analytic.effects, sim.effects, strict=True):
        assert abs(e_an["power"] - e_sim["power"]) < 4 * e_sim["mc_se"]
    assert analytic.all["power"] is None  # shared paths: needs simulation


def test_solving_n_for_the_conjunction_and_each_effect():
    r = mediation_multi([("hope", 0.3, 0.3), ("efficacy", 0.3, 0.2)], power=0.8)
    assert r.all["power"] >= 0.8
    assert r.all["n_needed"] == r.n_total >= max(e["n_needed"] for e in r.effects)
    below = mediation_multi([("hope", 0.3, 0.3), ("efficacy", 0.3, 0.2)], n=r.n_total - 2)
    assert below.all["power"] < 0.8


@pytest.mark.parametrize("kwargs, message", [
    (dict(mediators=[("a", 0.3, 0.3)] * 2, n=100), "distinct"),
    (dict(mediators=[("m1", 0.3, 0.3), ("m2", 0.3, 0.3)], n=100,
          correlation=[[1, 1.2], [1.2, 1]]), r"\(-1, 1\)"),
    (dict(mediators=[("m1", 0.3, 0.3), ("m2", 0.3, 0.3), ("m3", 0.3, 0.3)], n=100,
          serial=0.3), "exactly two"),
    (dict(mediators=[("m1", 0.3, 0.3)] + [(f"m{i}", 0.1, 0.1) for i in range(2, 6)],
          n=100), "1 to 4"),
    (dict(mediators=[("m1", 0.3, 0.3), ("m2", 0.3, 0.3)], n=100, outcome="binary"),
     "base_rate"),
])
def test_bad_multi_input(kwargs, message):
    with pytest.raises(InputError, match=message):
        mediation_multi(**kwargs)


def _run(*args):
    return subprocess.run([sys.executable, "-m", "trialplan", "mediation", *args],
                          capture_output=True, text=True)


def test_paths_file_errors_name_file_line_and_field(tmp_path):
    spec = tmp_path / "paths.yaml"
    spec.write_text("mediators:\n  - {name: hope, a: 0.3, b: 0.2}\n"
                    "  - {name: efficacy, a: 0.2, b: 0.2}\n"
                    "correlations:\n  - {between: [hope, mood], r: 0.3}\n"
                    "outcome: {type: binary}\n")
    proc = _run("--paths", str(spec), "--n", "300")
    assert proc.returncode == 1
    assert f"{spec}:5: correlations[0].between:" in proc.stderr
    assert f"{spec}:6: outcome: a binary outcome needs base_rate" in proc.stderr
    spec.write_text("mediators:\n  - {name: hope, a: 0.3, b: .nan}\n")
    proc = _run("--paths", str(spec), "--n", "300")
    assert proc.returncode == 1 and f"{spec}:2" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_mediators_and_json(tmp_path):
    proc = _run("--mediator", "hope:0.3:0.3", "--mediator", "efficacy:0.3:0.2",
                "--correlation", "0.3", "--n", "400", "--json")
    assert proc.returncode == 0, proc.stderr
    import json

    data = json.loads(proc.stdout)
    assert [e["name"] for e in data["effects"]] == ["hope", "efficacy"]
    assert data["correlation"][0][1] == 0.3 and "all" in data and "any" in data
    bad = _run("--mediator", "hope:0.3", "--n", "400")
    assert bad.returncode == 2 and "NAME:A:B" in bad.stderr
    mixed = _run("--mediator", "hope:0.3:0.3", "--a", "0.3", "--n", "400")
    assert mixed.returncode == 2


@pytest.mark.slow
def test_binary_bootstrap_agrees_with_a_statsmodels_bootstrap():
    import statsmodels.api as sm

    a, b, n, rate, reps, boot = 0.3, 0.35, 300, 0.38, 60, 300
    spec = mm.MultiSpec((a,), (b,), 0.0, "binary", "binary", rate)
    b0 = mm.calibrate_intercept(spec)
    rng = np.random.default_rng(12)
    hits = 0
    for _ in range(reps):
        x = np.repeat([0.0, 1.0], n // 2)
        m = a * x + rng.standard_normal(n)
        y = (rng.random(n) < 1 / (1 + np.exp(-(b0 + b * m)))).astype(float)
        ab = []
        for _ in range(boot):
            i = rng.integers(0, n, n)
            fa = sm.OLS(m[i], sm.add_constant(x[i])).fit()
            fb = sm.Logit(y[i], sm.add_constant(np.column_stack([x[i], m[i]]))).fit(disp=0)
            ab.append(fa.params[1] * fb.params[2])
        lo, hi = np.quantile(ab, [0.025, 0.975])
        hits += (lo > 0) or (hi < 0)
    ref = hits / reps
    ours = mediation(a=a, b=b, n=n, test="bootstrap", reps=1000, boot=boot, seed=5,
                     outcome="binary", base_rate=rate)
    se = math.sqrt(ref * (1 - ref) / reps + ours.mc_se ** 2)
    assert abs(ours.power - ref) < 4 * se


@pytest.mark.parametrize("m, k", [(50, 2), (101, 3), (5000, 2)])
def test_sign_based_interval_decision_equals_numpy_quantiles(m, k):
    rng = np.random.default_rng(m + k)
    rows = 3000
    draws = [rng.standard_normal((rows, m)).astype(np.float32) for _ in range(k)]
    loc = [rng.normal(0, 0.3, rows) for _ in range(k)]
    scale = [np.abs(rng.normal(0.15, 0.05, rows)) + 0.01 for _ in range(k)]
    prod = np.prod([lo[:, None] + sc[:, None] * z for z, lo, sc in zip(draws, loc, scale,
                                                                         strict=True)], axis=0)
    q = np.quantile(prod, [0.025, 0.975], axis=1)
    expected = (q[0] > 0) | (q[1] < 0)
    assert 0.01 < expected.mean() < 0.99
    np.testing.assert_array_equal(mm.ci_excludes_zero(draws, loc, scale, 0.025, 0.975),
                                  expected)


def test_bootstrap_refits_in_float32_match_float64_fits():
    rng = np.random.default_rng(3)
    r, boot, n = 2, 200, 400
    xd = np.stack([np.column_stack([np.ones(n), np.repeat([0.0, 1.0], n // 2),
                                    rng.standard_normal(n)]) for _ in range(r)])
    y = (rng.random((r, n)) < 0.4).astype(float)
    w = rng.poisson(1.0, (r, boot, n)).astype(float)
    start, _, _ = mm.logistic_fit(xd, y)
    fast, ok, _ = mm.logistic_fit(xd, y, w, start[:, 0])
    exact, ok64, _ = mm.logistic_fit(xd, y, w, start[:, 0], with_se=True)
    assert ok.all() and ok64.all()
    np.testing.assert_allclose(fast, exact, atol=1e-5)


def test_binary_outcome_under_partial_nesting():
    kw = dict(a=0.25, b=0.2, n=1296, outcome="binary", base_rate=0.38)
    plain = mediation(**kw)
    nested = mediation(**kw, icc_m=0.03, icc_y=0.03, cluster_size=9, b_level="individual")
    assert nested.path_power["a"] < plain.path_power["a"]
    assert nested.path_power["b"] < plain.path_power["b"]
    assert nested.peer_workers == 72
    with pytest.raises(InputError, match="individual"):
        mediation(**kw, icc_m=0.03, icc_y=0.03, cluster_size=9)


def test_total_indirect_effect_reduces_to_sobel_with_one_active_mediator():
    # With the second mediator's paths at (numerically) zero and no correlation, the summed
    # indirect effect's delta-method test is the Sobel test of the first mediator.
    for outcome, rate in (("continuous", None), ("binary", 0.3)):
        r = mediation_multi([("h", 0.3, 0.3), ("z", 1e-300, 1e-300)], n=300, outcome=outcome,
                            base_rate=rate)
        single = mediation(0.3, 0.3, n=300, test="sobel", outcome=outcome, base_rate=rate)
        assert r.total_indirect["power"] == pytest.approx(single.power, rel=1e-12)


def test_total_indirect_effect_variance_by_hand():
    # k = 2, R = [[1, r], [r, 1]], 1:1 arms of 200: Var = (1/200 + 1/200) b'Rb + a'R^-1 a / 400
    a, b, rho = (0.3, 0.25), (0.3, 0.2), 0.4
    r = mediation_multi([("h", a[0], b[0]), ("s", a[1], b[1])], n=400,
                        correlation=[[1, rho], [rho, 1]])
    brb = b[0] ** 2 + b[1] ** 2 + 2 * rho * b[0] * b[1]
    arinva = (a[0] ** 2 + a[1] ** 2 - 2 * rho * a[0] * a[1]) / (1 - rho ** 2)
    se = math.sqrt(0.01 * brb + arinva / 400)
    assert r.total_indirect["se"] == pytest.approx(se, rel=1e-12)
    assert r.total_indirect["estimate"] == pytest.approx(0.3 * 0.3 + 0.25 * 0.2)


# ---- several mediators under partial nesting ------------------------------------------------

_PN = dict(icc_m=0.10, icc_y=0.05, cluster_size=10)


@pytest.mark.parametrize("b_level", ["individual", "caseload"])
@pytest.mark.parametrize("control_variance", ["within", "total"])
def test_one_nested_mediator_through_the_multi_engine_is_the_single_engine(b_level,
                                                                           control_variance):
    kw = dict(n=300, control_variance=control_variance, b_level=b_level, **_PN)
    multi = mediation_multi([("h", 0.4, 0.3)], **kw)
    single = mediation(0.4, 0.3, **kw)
    assert multi.effects[0]["power"] == pytest.approx(single.power, rel=1e-12)
    sobel = mediation(0.4, 0.3, test="sobel", **kw)
    assert multi.total_indirect["power"] == pytest.approx(sobel.power, rel=1e-9)


def _simulate_nested_parallel(a, b, rho, n_c, workers, m, icc_m, icc_y, reps, seed):
    """Each specific effect's joint-test power, simulated and analysed plainly as planned.

    Within convention: unit within-caseload variances, peer-worker variances
    icc / (1 - icc) in the intervention arm.  Each a_j: Welch t test of the
    caseload means of M_j against the controls' M_j (the heteroscedastic
    partially nested model with equal caseloads); b: OLS of Y on the mediators
    with a caseload fixed effect (the control arm one group), fitted by
    demeaning within groups, t test of each b_j.  Vectorised over replicates.
    """
    from scipy import stats

    rng = np.random.default_rng(seed)
    k = len(a)
    corr = np.full((k, k), rho) + (1 - rho) * np.eye(k)
    chol = np.linalg.cholesky(corr)
    n_i = workers * m
    tau_m, tau_y = icc_m / (1 - icc_m), icc_y / (1 - icc_y)
    med = rng.standard_normal((reps, n_c + n_i, k)) @ chol.T
    med[:, n_c:] += np.asarray(a) + np.repeat(
        rng.standard_normal((reps, workers, k)) * np.sqrt(tau_m), m, axis=1)
    y = med @ np.asarray(b) + rng.standard_normal((reps, n_c + n_i))
    y[:, n_c:] += np.repeat(rng.standard_normal((reps, workers)) * np.sqrt(tau_y), m, axis=1)

    def demean(x):
        ctrl = x[:, :n_c] - x[:, :n_c].mean(axis=1, keepdims=True)
        shape = (reps, workers, m) + x.shape[2:]
        grp = x[:, n_c:].reshape(shape)
        return np.concatenate([ctrl, (grp - grp.mean(axis=2, keepdims=True))
                               .reshape(x[:, n_c:].shape)], axis=1)

    mw, yw = demean(med), demean(y)
    xtx = np.einsum("rnj,rnl->rjl", mw, mw)
    coef = np.linalg.solve(xtx, np.einsum("rnj,rn->rj", mw, yw)[..., None])[..., 0]
    resid = yw - np.einsum("rnj,rj->rn", mw, coef)
    df = n_c + n_i - (workers + 1) - k
    se = np.sqrt(np.diagonal(np.linalg.inv(xtx), axis1=1, axis2=2)
                 * ((resid**2).sum(axis=1) / df)[:, None])
    tb = np.abs(coef / se) > stats.t.ppf(0.975, df)
    means = med[:, n_c:].reshape(reps, workers, m, k).mean(axis=2)
    ctrl = med[:, :n_c]
    v1, v0 = means.var(axis=1, ddof=1) / workers, ctrl.var(axis=1, ddof=1) / n_c
    t = (means.mean(axis=1) - ctrl.mean(axis=1)) / np.sqrt(v1 + v0)
    welch_df = (v1 + v0) ** 2 / (v1**2 / (workers - 1) + v0**2 / (n_c - 1))
    ta = 2 * stats.t.sf(np.abs(t), welch_df) < 0.05
    return (ta & tb).mean(axis=0)


def test_nested_parallel_mediators_match_a_simulation_of_the_planned_analysis():
    # 40 peer workers: PowerUpR's a-path variance divides by J - 1 (its df) where the
    # caseload means' variance divides by J, a conservative difference of 2.5% in variance
    # (about 0.01 in power here: 0.8018 simulated over 20,000 replicates against 0.7907).
    a, b, rho = (0.35, 0.3), (0.2, 0.12), 0.4
    n_c, workers, m, reps = 200, 40, 5, 4000
    nest = dict(_PN, cluster_size=m)
    meds = [("h", a[0], b[0]), ("s", a[1], b[1])]
    corr = [[1, rho], [rho, 1]]
    planned = mediation_multi(meds, n=n_c + workers * m, correlation=corr,
                              b_level="individual", **nest)
    sim = _simulate_nested_parallel(a, b, rho, n_c, workers, m, nest["icc_m"], nest["icc_y"],
                                    reps, seed=14)
    plain = mediation_multi(meds, n=n_c + workers * m, correlation=corr)
    for j in range(2):
        mc_se = math.sqrt(sim[j] * (1 - sim[j]) / reps)
        assert abs(planned.effects[j]["power"] - sim[j]) < 4 * mc_se
        # ignoring the peer workers overstates the power of the specific effect
        assert plain.effects[j]["power"] > sim[j] + 4 * mc_se


def test_nested_parallel_needs_all_three_and_the_joint_test():
    meds = [("h", 0.3, 0.3), ("s", 0.25, 0.2)]
    with pytest.raises(InputError, match="cluster_size not given"):
        mediation_multi(meds, n=400, icc_m=0.05, icc_y=0.05)
    with pytest.raises(InputError, match="analytic joint test"):
        mediation_multi(meds, n=400, test="mc", **_PN)
    with pytest.raises(InputError, match="use b_level 'individual'"):
        mediation_multi(meds, n=400, outcome="binary", base_rate=0.3, **_PN)
    # a binary outcome through the multi engine is the single engine's, mediator by mediator
    kw = dict(n=600, outcome="binary", base_rate=0.3, b_level="individual", **_PN)
    one = mediation_multi([("h", 0.4, 0.3)], **kw)
    assert one.effects[0]["power"] == pytest.approx(mediation(0.4, 0.3, **kw).power,
                                                    rel=1e-12)
    r = mediation_multi(meds, power=0.8, b_level="individual", **_PN)
    # the solved n is the smallest reaching the target for all effects together
    lower = mediation_multi(meds, n=r.n_total - 2, b_level="individual", **_PN)
    assert lower.all["power"] < 0.8 <= r.all["power"]
