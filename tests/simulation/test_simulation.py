"""Simulation of the planned trial: data model, analysis, executor, CLI.

Default tests use tiny trials (scenario n) and few replicates; the runs that
check agreement with the plan's analytic power are marked slow.  The bundled
example's numbers are being changed by other work, so tests assert properties
(agreement within Monte Carlo error, identical results across workers,
resume equals an uninterrupted run), not frozen values.
"""

import dataclasses
import importlib.util
import io
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from trialplan.cli import cli
from trialplan.cli.simulate import chunk_progress
from trialplan.errors import InputError
from trialplan.model.checks import example_text, load_trial_text
from trialplan.planning import build_plan
from trialplan.simulation import analyse as an
from trialplan.simulation.dummy import dummy_dataset, to_csv
from trialplan.simulation.executor import Checkpoint, chunk_seed, connect, run_chunks
from trialplan.simulation.generate import generate
from trialplan.simulation.run import chunk_task, simulate
from trialplan.simulation.script import _function_name, analysis_script
from trialplan.simulation.spec import _marginal_rate, build_spec
from trialplan.stats import _medsim_pn

TINY = {"n": 80}


@pytest.fixture(scope="module")
def example():
    trial = load_trial_text(example_text(), "example.yaml")
    return trial, build_plan(trial)


# --------------------------------------------------------------------------------------------
# Seeding and the executor


def test_chunk_seed_is_the_spawned_child():
    for c in (0, 3, 17):
        child = np.random.SeedSequence(42).spawn(c + 1)[c]
        assert (np.random.default_rng(chunk_seed(42, c)).random(5)
                == np.random.default_rng(child).random(5)).all()


def _square(payload, chunk, seq):
    return [payload, chunk, float(np.random.default_rng(seq).random())]


_CALLS: dict = {}


def _flaky(payload, chunk, seq):
    """Fails the first attempt of every chunk; job 'bad' always fails."""
    if payload == "bad":
        raise RuntimeError("always fails")
    _CALLS[chunk] = _CALLS.get(chunk, 0) + 1
    if _CALLS[chunk] == 1:
        raise RuntimeError("transient")
    return chunk


def test_failed_chunk_retried_and_failed_job_reported_alone():
    _CALLS.clear()
    out = run_chunks(_flaky, {"good": "ok", "bad": "bad"}, {"good": 3, "bad": 2}, seed=1)
    assert out["good"].error is None and out["good"].chunks == {0: 0, 1: 1, 2: 2}
    assert out["bad"].error == "RuntimeError: always fails" and out["bad"].chunks == {}


def test_pool_equals_serial_whatever_the_order():
    serial = run_chunks(_square, {"x": 2}, {"x": 6}, seed=9, workers=1)
    pool = run_chunks(_square, {"x": 2}, {"x": 6}, seed=9, workers=2)
    assert serial["x"].chunks == pool["x"].chunks


def _dies_once(payload, chunk, seq):
    """Kills its worker process the first time chunk 1 runs (a lost worker)."""
    marker = Path(payload)
    if chunk == 1 and not marker.exists():
        marker.write_text("died")
        os._exit(1)
    return chunk


def test_lost_worker_chunks_are_rerun(tmp_path):
    out = run_chunks(_dies_once, {"x": str(tmp_path / "m")}, {"x": 4}, seed=1, workers=2)
    assert out["x"].error is None and out["x"].chunks == {0: 0, 1: 1, 2: 2, 3: 3}


def test_progress_line_when_not_a_terminal_paces_only_this_runs_chunks():
    # Two chunks come from a checkpoint; the ETA is paced on the chunks this run does.
    class Clock:
        now = 0.0

        def __call__(self):
            return self.now

    clock, stream = Clock(), io.StringIO()
    progress = chunk_progress(stream=stream, clock=clock)
    progress(2, 10)  # two chunks from a checkpoint
    for done in range(3, 11):
        clock.now += 3.0
        progress(done, 10)
    lines = stream.getvalue().splitlines()
    # 3 s a chunk for the 8 left: 24 s in all, so the run says so at once.
    assert lines[0] == "simulate (chunks): expected to take about 24 s"
    assert lines[1] == "simulate (chunks): 4/10 (40%), about 18 s left"
    assert lines[-1] == "simulate (chunks): 10/10 (100%), done"


def test_checkpoint_refuses_another_run(tmp_path):
    path = tmp_path / "c.jsonl"
    run_chunks(_square, {"x": 1}, {"x": 2}, seed=1, checkpoint=path, fingerprint="A")
    with pytest.raises(InputError, match="different run"):
        Checkpoint(path, "B")
    (tmp_path / "junk.jsonl").write_text("hello\n")
    with pytest.raises(InputError, match="not a trialplan simulation checkpoint"):
        Checkpoint(tmp_path / "junk.jsonl", "A")


def test_unreachable_scheduler_reported_within_seconds():
    pytest.importorskip("distributed")
    start = time.monotonic()
    with pytest.raises(InputError, match="cannot reach a Dask scheduler"):
        connect("tcp://127.0.0.1:9", timeout=2.0)
    assert time.monotonic() - start < 15


# --------------------------------------------------------------------------------------------
# The data-generating model


def test_binary_outcome_reproduces_planned_marginal_rates_and_icc(example):
    trial, plan = example
    spec = build_spec(trial, plan, {"n": 120_000})
    data = generate(spec, np.random.default_rng(5))
    y, arm, cl = data["readmission"], data["arm"], data["cluster"]
    ok = ~np.isnan(y)
    p_c, p_t = spec.variable("readmission").rates
    for a_, p in ((0, p_c), (1, p_t)):
        obs = y[ok & (arm == a_)]
        assert abs(obs.mean() - p) < 4 * math.sqrt(p * (1 - p) / obs.size)
    # Observed-scale ICC in the intervention arm, one-way ANOVA estimator.
    t = ok & (arm == 1)
    labels, inv = np.unique(cl[t], return_inverse=True)
    k = np.bincount(inv)
    means = np.bincount(inv, weights=y[t]) / k
    grand = y[t].mean()
    msb = np.sum(k * (means - grand) ** 2) / (len(labels) - 1)
    msw = np.sum((y[t] - means[inv]) ** 2) / (t.sum() - len(labels))
    m0 = k.mean()
    icc = (msb - msw) / (msb + (m0 - 1) * msw)
    assert abs(icc - spec.icc) < 0.012


def test_gauss_hermite_rate_matches_monte_carlo():
    z = np.random.default_rng(3).standard_normal(400_000)
    mc = float(np.mean(1 / (1 + np.exp(-(-0.4 + 0.9 * z)))))
    assert abs(_marginal_rate(-0.4, 0.9) - mc) < 4 * 0.5 / math.sqrt(z.size)


def test_attrition_is_monotone_and_at_the_planned_rate(example):
    trial, plan = example
    spec = build_spec(trial, plan, {"n": 40_000})
    data = generate(spec, np.random.default_rng(2))
    # intervention-only measures are missing by design in the control arm: look at the
    # intervention arm, where every variable is measured
    treated = data["arm"] == 1
    miss = {v.id: np.isnan(data[v.id])[treated] for v in spec.variables}
    for v in spec.variables:
        q = v.attrition
        assert abs(miss[v.id].mean() - q) < 4 * math.sqrt(q * (1 - q) / 20_000) + 1e-9
    # dropout, not item non-response: whoever misses the variable lost least often also
    # misses the others
    for v in spec.variables:
        for w in spec.variables:
            if v.attrition <= w.attrition:
                assert not (miss[v.id] & ~miss[w.id]).any()
    assert len({v.attrition for v in spec.variables}) > 1  # the example sets its own rates


def test_intervention_only_measure_missing_in_control(example):
    trial, plan = example
    spec = build_spec(trial, plan, TINY)
    only = [v for v in spec.variables if v.arms == "intervention"]
    assert only  # the example's alliance with the peer worker
    data = generate(spec, np.random.default_rng(3))
    for v in only:
        assert np.isnan(data[v.id][data["arm"] == 0]).all()
        assert not np.isnan(data[v.id][data["arm"] == 1]).all()


def test_null_scenario_has_no_effects(example):
    trial, plan = example
    spec = build_spec(trial, plan, null=True)
    assert spec.primary.truth == 0.0
    assert all(m.truth_b == 0.0 and m.truth_a != 0.0 for m in spec.mechanisms)


def test_impossible_scenario_is_an_input_error(example):
    trial, plan = example
    with pytest.raises(InputError, match="outside"):
        build_spec(trial, plan, {"effect": 20})
    with pytest.raises(InputError, match="icc"):
        build_spec(trial, plan, {"icc": 1.5})


# --------------------------------------------------------------------------------------------
# The analysis


def test_caseload_summary_a_matches_the_mediation_engine(example):
    """Path a with no baseline adjustment equals trialplan.stats._medsim_pn's estimator."""
    trial, plan = example
    spec = build_spec(trial, plan, {"n": 300, "attrition": 0.0})
    data = generate(spec, np.random.default_rng(11))
    # the estimator without baseline adjustment, on the first mechanism's process variable
    m = dataclasses.replace(spec.mechanisms[0], a_covariates=())
    est = an.path_a(m, spec, data)
    arm = data["arm"] == 1
    labels = data["cluster"][arm] - 1
    j = int(labels.max()) + 1
    y_dummy = np.zeros((1, arm.sum()))
    med = data[m.mediator]
    a, se_a, df_a, *_ = _medsim_pn.estimates(med[~arm][None, :], np.zeros((1, (~arm).sum())),
                                             med[arm][None, :], y_dummy, labels, j)
    assert est.estimate == pytest.approx(float(a[0]), rel=1e-12)
    assert est.se == pytest.approx(float(se_a[0]), rel=1e-12)
    assert est.df == pytest.approx(float(df_a[0]), rel=1e-12)


def test_failed_fit_counted_not_dropped(example):
    trial, plan = example
    spec = build_spec(trial, plan, TINY)
    data = generate(spec, np.random.default_rng(1))
    data["readmission"] = np.zeros_like(data["readmission"])  # no events: nothing to fit
    res = an.analyse(spec, data, np.random.default_rng(0))
    assert not res[0].converged and not res[0].reject
    assert all(e.converged for e in res[1:])  # the mechanisms on recovery still fit


def test_chunk_counts_every_replicate(example):
    trial, plan = example
    spec = build_spec(trial, plan, TINY)
    stats = chunk_task((spec, 7, 5), 1, chunk_seed(3, 1))  # the last, short chunk
    assert all(row[0] == 2 and row[1] <= 2 for row in stats)


def test_generated_script_reproduces_the_in_process_analysis(example, tmp_path):
    runner = CliRunner()
    trial_path = tmp_path / "trial.yaml"
    trial_path.write_text(example_text())
    res = runner.invoke(cli, ["simulate", str(trial_path), "--scenarios", "n=240",
                              "--dummy-data", str(tmp_path / "dummy.csv")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "dummy.dictionary.csv").read_text().startswith("variable,label")
    res = runner.invoke(cli, ["analysis-code", str(trial_path), "-o",
                              str(tmp_path / "analysis.py")])
    assert res.exit_code == 0, res.output
    out = subprocess.run([sys.executable, str(tmp_path / "analysis.py"),
                          str(tmp_path / "dummy.csv")], capture_output=True, text=True,
                         check=True)
    script = json.loads(out.stdout)
    trial, plan = example
    spec = build_spec(trial, plan, {"n": 240})
    data, rng = dummy_dataset(spec, trial.model.assumptions.seed)
    mine = an.analyse(spec, data, rng)
    names = an.estimand_names(spec)
    pairs = [(mine[0], script[f"primary: {spec.primary.outcome}"])]
    for m in spec.mechanisms:
        pairs += [(mine[names.index(f"{m.key}: path a")], script[m.key]["a"]),
                  (mine[names.index(f"{m.key}: path b")], script[m.key]["b"])]
        ind = mine[names.index(f"{m.key}: indirect a x b")]
        assert ind.estimate == pytest.approx(script[m.key]["indirect"]["estimate"],
                                             rel=1e-6)
        assert ind.reject == script[m.key]["indirect"]["significant"]
    for est, ref in pairs:
        for key in ("estimate", "se", "lower", "upper", "p"):
            assert getattr(est, key) == pytest.approx(ref[key], rel=1e-6, abs=1e-12), key


# --------------------------------------------------------------------------------------------
# Whole runs: determinism, resume, Dask


def _run(trial, plan, **kw):
    return simulate(trial, plan, reps=6, chunk_size=2, scenarios=[TINY], **kw)


def test_same_bytes_for_any_worker_count(example):
    trial, plan = example
    one = json.dumps(_run(trial, plan, workers=1))
    two = json.dumps(_run(trial, plan, workers=2))
    assert one == two


def test_resume_equals_uninterrupted_run(example, tmp_path):
    trial, plan = example
    path = tmp_path / "run.jsonl"
    whole = json.dumps(_run(trial, plan, workers=1, checkpoint=path))
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == 1 + 2 * 3  # header + (scenario, null) x 3 chunks
    # Interrupted after two chunks, killed half-way through writing the third line.
    path.write_text("".join(lines[:3]) + lines[3][:20])
    calls = []
    resumed = json.dumps(_run(trial, plan, workers=1, checkpoint=path,
                              progress=lambda d, t: calls.append(d)))
    assert resumed == whole
    assert calls[0] == 2  # the two finished chunks were not recomputed
    assert len(path.read_text().splitlines()) == 1 + 6


@pytest.mark.slow
def test_dask_local_cluster_gives_identical_numbers(example):
    distributed = pytest.importorskip("distributed")
    trial, plan = example
    local = json.dumps(_run(trial, plan, workers=2))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = json.dumps(_run(trial, plan, scheduler=cluster.scheduler_address))
    assert remote == local


# --------------------------------------------------------------------------------------------
# The command line


def test_cli_grid_reports_impossible_scenario_and_runs_the_others(tmp_path):
    trial_path = tmp_path / "trial.yaml"
    trial_path.write_text(example_text())
    res = CliRunner().invoke(cli, ["simulate", str(trial_path), "--reps", "4", "--chunk-size",
                                   "2", "--workers", "1", "--scenarios", "n=80 effect=1,20",
                                   "--json", "--figure", str(tmp_path / "sim.png")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    ok, bad = out["scenarios"]
    assert ok["estimands"] and "error" not in ok
    assert "outside (0, 1)" in bad["error"] and "estimands" not in bad
    assert (tmp_path / "sim.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_bad_scenario_syntax_exits_2(tmp_path):
    trial_path = tmp_path / "trial.yaml"
    trial_path.write_text(example_text())
    res = CliRunner().invoke(cli, ["simulate", str(trial_path), "--scenarios", "colour=1"])
    assert res.exit_code == 2 and "unknown setting 'colour'" in res.output


def test_cli_unreachable_scheduler_is_an_input_error(tmp_path):
    pytest.importorskip("distributed")
    trial_path = tmp_path / "trial.yaml"
    trial_path.write_text(example_text())
    res = CliRunner().invoke(cli, ["simulate", str(trial_path), "--reps", "2", "--scenarios",
                                   "n=80", "--scheduler", "tcp://127.0.0.1:9"])
    assert res.exit_code == 1 and isinstance(res.exception, InputError)
    assert "--scheduler tcp://127.0.0.1:9: cannot reach a Dask scheduler" in str(res.exception)


# --------------------------------------------------------------------------------------------
# Agreement with the plan (slow)


@pytest.mark.slow
def test_example_power_and_type_i_error_agree_with_the_plan(example):
    """The bundled example at its planned n: primary power and type I error within MC error."""
    trial, plan = example
    reps = 400
    out = simulate(trial, plan, reps=reps, chunk_size=25, workers=2)
    rows = {(r["estimand"], r["kind"]): r for r in out["scenarios"][0]["estimands"]}
    primary = next(r for (name, kind), r in rows.items()
                   if name.startswith("primary") and kind == "power")
    assert abs(primary["rate"] - primary["analytic"]) < 4 * math.sqrt(0.09 / reps)
    t1 = next(r for (name, kind), r in rows.items()
              if name.startswith("primary") and kind == "type I error")
    assert abs(t1["rate"] - 0.05) < 4 * math.sqrt(0.05 * 0.95 / reps)
    for r in out["scenarios"][0]["estimands"]:
        assert r["non_converged"] < 0.02 * reps
        if r["coverage"] is not None and r["estimand"].endswith(("path a", "primary")):
            assert r["coverage"] > 0.95 - 4 * math.sqrt(0.05 * 0.95 / reps)


# --------------------------------------------------------------------------------------------
# Other designs: continuous primary under partial nesting, no clustering, cluster randomised

ROOT = Path(__file__).resolve().parents[2]


def _continuous_primary_text() -> str:
    text = example_text()
    text = text.replace("      type: binary\n      role: primary",
                        "      type: binary\n      role: secondary")
    text = text.replace("      type: continuous\n      role: secondary",
                        "      type: continuous\n      role: primary")
    text = text.replace("      outcome: readmission   #",
                        "      base_rate: 0.38\n      outcome: readmission   #")
    anchor = "    control_rate:             # CORE trial control arm"
    assert anchor in text  # the example's primary block; keep this test's edit in step with it
    return text.replace(anchor, "    d: 0.3\n    baseline_corr: 0.5\n" + anchor)


VARIANTS = {
    "continuous, partial": _continuous_primary_text(),
    "binary, unclustered": example_text().replace("kind: partial ", "kind: none    "),
    "continuous, unclustered": _continuous_primary_text().replace("kind: partial ",
                                                                  "kind: none    "),
    "continuous, cluster randomised": (ROOT / "protocols" / "cluster-wards"
                                       / "trial.yaml").read_text(),
    # a larger effect needs 6 clusters per arm: the SAP's analysis is then cluster-level
    "continuous, few clusters": (ROOT / "protocols" / "cluster-wards" / "trial.yaml")
    .read_text().replace("    d: 0.25", "    d: 0.5"),
    "binary, caseload from staffing": re.sub(r"\n    cluster_size: 9[^\n]*", "",
                                             example_text()),
}


def _script_module(spec, tmp_path):
    path = tmp_path / "analysis_mod.py"
    path.write_text(analysis_script(spec, title="t", source="t.yaml"))
    mod_spec = importlib.util.spec_from_file_location(f"analysis_{id(spec)}", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_other_designs_script_agrees_and_models_fit(variant, tmp_path):
    import pandas as pd

    trial = load_trial_text(VARIANTS[variant], "variant.yaml")
    plan = build_plan(trial)
    spec = build_spec(trial, plan, {"n": 400})
    expected = {"continuous, partial": "lmm-heteroscedastic", "binary, unclustered": "logit",
                "continuous, unclustered": "ols", "continuous, cluster randomised": "lmm-cluster",
                "continuous, few clusters": "cluster-level",
                "binary, caseload from staffing": "glmm"}
    assert spec.primary.model == expected[variant]
    data, rng = dummy_dataset(spec, 7)
    mine = an.analyse(spec, data, rng)
    assert all(e.converged for e in mine)
    (tmp_path / "d.csv").write_text(to_csv(data))
    frame = pd.read_csv(tmp_path / "d.csv")
    mod = _script_module(spec, tmp_path)
    ref = mod.primary(frame)
    for key in ("estimate", "se", "lower", "upper", "p"):
        assert getattr(mine[0], key) == pytest.approx(ref[key], rel=1e-6), key
    assert mine[0].df == (pytest.approx(ref["df"], rel=1e-6) if ref["df"] is not None else None)
    names = an.estimand_names(spec)
    for m in spec.mechanisms:
        out = getattr(mod, _function_name(m))(frame)
        for path_name in ("a", "b"):
            est = mine[names.index(f"{m.key}: path {path_name}")]
            assert est.estimate == pytest.approx(out[path_name]["estimate"], rel=1e-6)
            assert est.se == pytest.approx(out[path_name]["se"], rel=1e-6)
    if variant in ("continuous, cluster randomised", "continuous, few clusters"):
        assert spec.not_simulated and not spec.mechanisms


def test_cluster_level_analysis_matches_r_t_test():
    d = np.genfromtxt(ROOT / "tests" / "stats" / "data" / "lmm_cluster.csv", delimiter=",",
                      names=True)
    data = {"arm": d["arm"].astype(int), "cluster": d["cl"].astype(int)}
    x = np.column_stack([np.ones(d.size), d["arm"], d["x"]])
    est = an._cluster_level(data, np.ones(d.size, bool), d["y"], x, 0.05)
    # R: d <- read.csv("tests/stats/data/lmm_cluster.csv")
    #    d$res <- residuals(lm(y ~ x, data = d))
    #    m <- aggregate(res ~ cl + arm, data = d, FUN = mean)
    #    t.test(res ~ arm, data = m, var.equal = TRUE)
    #    -> t = 0.22694837, df = 12, p-value = 0.8242840948, stderr 0.3997778337,
    #       means -0.04480172894 (arm 0), -0.13553065660 (arm 1),
    #       95% CI of (arm 0 - arm 1) -0.7803121455 0.9617700008
    assert est.estimate == pytest.approx(-0.13553065660 + 0.04480172894, rel=1e-8)
    assert est.se == pytest.approx(0.3997778337, rel=1e-8)
    assert est.df == 12
    assert est.p == pytest.approx(0.8242840948, rel=1e-7)
    assert (est.lower, est.upper) == pytest.approx((-0.9617700008, 0.7803121455), rel=1e-8)


def test_continuous_primary_truth_is_d_control_sds(example):
    trial = load_trial_text(VARIANTS["continuous, unclustered"], "v.yaml")
    spec = build_spec(trial, build_plan(trial), {"n": 60_000, "attrition": 0.0})
    data = generate(spec, np.random.default_rng(4))
    y, arm = data["recovery"], data["arm"]
    sd_c = y[arm == 0].std()
    d = (y[arm == 1].mean() - y[arm == 0].mean()) / sd_c
    assert abs(d - 0.3) < 4 * math.sqrt(2 / 30_000)
    sd_total = math.sqrt(1 + sum(b * b for _, b in spec.variable("recovery").parents))
    assert spec.primary.truth == pytest.approx(0.3 * sd_total)
    # the outcome (within arm) correlates with its baseline at the planned 0.5, the
    # correlation the plan's variance factor 1 - r^2 reads (not only its residual does)
    resid = y - spec.primary.truth * arm
    r = np.corrcoef(resid - resid.mean(), data["recovery_baseline"])[0, 1]
    assert abs(r - 0.5) < 0.02


def test_mar_dropout_depends_on_baseline(example):
    trial, plan = example
    mcar = generate(build_spec(trial, plan, {"n": 40_000}), np.random.default_rng(1))
    mar = generate(build_spec(trial, plan, {"n": 40_000}, missing="mar"),
                   np.random.default_rng(1))
    for data, related in ((mcar, False), (mar, True)):
        lost = np.isnan(data["hope"])
        diff = data["hope_baseline"][lost].mean() - data["hope_baseline"][~lost].mean()
        assert (abs(diff) > 0.1) == related
        assert abs(lost.mean() - 0.15) < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["continuous, partial", "continuous, cluster randomised",
                                     "continuous, few clusters"])
def test_continuous_mixed_primary_type_i_error_near_alpha(variant):
    """The SAP's continuous analyses (KR t test of the REML mixed models, or the cluster-level
    t test) hold their size on data drawn under the null."""
    trial = load_trial_text(VARIANTS[variant], "v.yaml")
    spec = build_spec(trial, build_plan(trial), null=True)
    reps = 1000
    rng = np.random.default_rng(2026)
    fits = [an.primary(spec, generate(spec, rng)) for _ in range(reps)]
    assert all(e.converged for e in fits)
    rate = sum(e.reject for e in fits) / reps
    assert abs(rate - spec.primary.alpha) < 4 * math.sqrt(0.05 * 0.95 / reps)


@pytest.mark.slow
def test_heteroscedastic_partially_nested_power_agrees_with_the_plan():
    trial = load_trial_text(VARIANTS["continuous, partial"], "v.yaml")
    plan = build_plan(trial)
    spec = build_spec(trial, plan)
    assert spec.primary.model == "lmm-heteroscedastic"
    reps = 1000
    rng = np.random.default_rng(2027)
    rate = sum(an.primary(spec, generate(spec, rng)).reject for _ in range(reps)) / reps
    assert abs(rate - plan["primary"]["result"]["power"]) < 4 * math.sqrt(0.09 / reps)


def test_cluster_trial_effect_on_total_sd_and_teerenstra_baseline():
    # protocols/cluster-wards: d 0.25 on the total SD (between and within teams, as the
    # plan's design effect reads it), baseline with cluster autocorrelation 0.7 and
    # individual autocorrelation 0.5 (Teerenstra et al. 2012), ICC 0.05.
    trial = load_trial_text(VARIANTS["continuous, cluster randomised"], "v.yaml")
    spec = build_spec(trial, build_plan(trial), {"n": 80_000, "attrition": 0.0,
                                                 "cluster_size": 40})
    data = generate(spec, np.random.default_rng(6))
    y, base, arm, cl = (data["recovery"], data["recovery_baseline"], data["arm"],
                        data["cluster"])
    sd_c = y[arm == 0].std()
    d = (y[arm == 1].mean() - y[arm == 0].mean()) / sd_c
    # 1,000 teams of 40 per arm: the SE of d is about sqrt(2 (1 + 39 x 0.05) / 40,000)
    assert abs(d - 0.25) < 4 * math.sqrt(2 * (1 + 39 * 0.05) / 40_000)
    # Cluster and participant parts by one-way decomposition within the control arm.
    c = arm == 0
    labels, inv = np.unique(cl[c], return_inverse=True)
    k = np.bincount(inv)
    ym = np.bincount(inv, weights=y[c]) / k
    bm = np.bincount(inv, weights=base[c]) / k
    for values, means in ((y[c], ym), (base[c], bm)):
        msb = np.sum(k * (means - values.mean()) ** 2) / (len(labels) - 1)
        msw = np.sum((values - means[inv]) ** 2) / (values.size - len(labels))
        assert abs((msb - msw) / (msb + (k.mean() - 1) * msw) - 0.05) < 0.012
    r_i = np.corrcoef(y[c] - ym[inv], base[c] - bm[inv])[0, 1]
    assert abs(r_i - 0.5) < 0.02
    # The correlation of a team's baseline and follow-up means is Teerenstra's
    # r = (m icc rho_c + (1 - icc) rho_i) / (1 + (m - 1) icc) = 0.636 at m = 40 (their
    # eq. for the cohort design); its SE over 1,000 teams is about (1 - r^2) / sqrt(1000).
    r = (40 * 0.05 * 0.7 + 0.95 * 0.5) / (1 + 39 * 0.05)
    assert abs(np.corrcoef(ym, bm)[0, 1] - r) < 4 * (1 - r * r) / math.sqrt(len(labels))
