"""Speed and memory of `trialplan simulate` on the bundled example, side by side.

1. Per-replicate analysis (primary model + three mechanisms' a and b fits):
   trialplan's in-process analysis against the straightforward serial loop a
   user would write, fitting the same statsmodels models per replicate from
   formulas on a DataFrame (the functions of the script that
   `trialplan analysis-code` writes); and the primary analysis alone (the
   SAP's random-intercept logistic model, its likelihood-ratio test and the
   standardised marginal odds ratio, or the GEE fallback) against bare calls
   of the same fits under the same rule (``trialplan.stats.glmm``; statsmodels
   has no maximum-likelihood logistic mixed model), with a bare
   ``statsmodels.GEE(...).fit(cov_type="bias_reduced")`` for scale.  Target:
   trialplan within 1.5x of the bare fits.
2. Replicates per second with 1 and 2 local workers (process pool, one BLAS
   thread each).  Target: 2 workers >= 1.8x one worker (on an idle machine).
3. Peak memory (max RSS) of a run with 1x and 4x the replicates: flat.

Every timing is the median of REPEATS runs, interleaved.  The load average is
printed, because the machine may be shared.

Run:  python benchmarks/bench_simulate.py [--quick] [--scaling-only]
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from trialplan.model.checks import example_text, load_trial_text
from trialplan.planning import build_plan
from trialplan.simulation.analyse import analyse, primary
from trialplan.simulation.dummy import to_csv
from trialplan.simulation.generate import generate
from trialplan.simulation.run import simulate
from trialplan.simulation.script import _function_name, analysis_script
from trialplan.simulation.spec import build_spec
from trialplan.stats import glmm

QUICK = "--quick" in sys.argv
REPEATS = 5
PER_RUN = 4 if QUICK else 10  # replicates per timing run (analysis)
SCALE_REPS = 8 if QUICK else 24  # replicates per scaling run


def median_time(fn, repeats=REPEATS):
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def analysis_speed(trial, plan):
    import pandas as pd
    import statsmodels.api as sm

    spec = build_spec(trial, plan)
    rng = np.random.default_rng(1)
    datasets = [generate(spec, rng) for _ in range(PER_RUN)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "analysis.py"
        path.write_text(analysis_script(spec, title="bench", source="example"))
        mod_spec = importlib.util.spec_from_file_location("bench_analysis", path)
        script = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(script)
    frames = [pd.read_csv(__import__("io").StringIO(to_csv(d))) for d in datasets]

    def ours():
        for d in datasets:
            analyse(spec, d, np.random.default_rng(0))

    def loop():
        for f in frames:
            script.primary(f)
            for m in spec.mechanisms:
                getattr(script, _function_name(m))(f)

    def ours_primary():
        for d in datasets:
            primary(spec, d)

    def bare_glmm():  # the same SAP rule: the mixed model and its LRT, else the GEE
        for d in datasets:
            ok = ~np.isnan(d["readmission"])
            y = d["readmission"][ok]
            groups = np.where(d["cluster"][ok] > 0, d["cluster"][ok], -d["id"][ok])
            x = np.column_stack([np.ones(ok.sum()), d["arm"][ok]])
            full = glmm.fit_random_intercept_logistic(y, x, groups)
            if full.converged and not full.boundary:
                glmm.likelihood_ratio_test(y, x, groups, 1, full=full)
            else:
                sm.GEE(y, x, groups=groups, family=sm.families.Binomial(),
                       cov_struct=sm.cov_struct.Independence()).fit(cov_type="bias_reduced")

    def bare_gee():
        for d in datasets:
            ok = ~np.isnan(d["readmission"])
            groups = np.where(d["cluster"][ok] > 0, d["cluster"][ok], -d["id"][ok])
            x = np.column_stack([np.ones(ok.sum()), d["arm"][ok]])
            sm.GEE(d["readmission"][ok], x, groups=groups, family=sm.families.Binomial(),
                   cov_struct=sm.cov_struct.Independence()).fit(cov_type="bias_reduced")

    with threadpool_limits(limits=1):
        for fn in (ours, loop, ours_primary, bare_glmm, bare_gee):
            fn()  # warm-up
        times = {"trialplan full analysis": [], "statsmodels formula loop": [],
                 "trialplan primary": [], "bare glmm + LRT or GEE": [],
                 "bare statsmodels GEE": []}
        fns = dict(zip(times, (ours, loop, ours_primary, bare_glmm, bare_gee), strict=True))
        for _ in range(REPEATS):
            for k, fn in fns.items():
                times[k].append(median_time(fn, 1))
    med = {k: statistics.median(v) / PER_RUN for k, v in times.items()}
    print(f"1. analysis per replicate (median of {REPEATS} runs of {PER_RUN} replicates, "
          "one BLAS thread)")
    for k, v in med.items():
        print(f"   {k:<28} {1000 * v:8.1f} ms")
    full = med["trialplan full analysis"] / med["statsmodels formula loop"]
    prim = med["trialplan primary"] / med["bare glmm + LRT or GEE"]
    print(f"   full: trialplan / statsmodels loop   {full:.2f}x  (target <= 1.5)")
    print(f"   primary: trialplan / bare glmm       {prim:.2f}x  (target <= 1.5)")
    return med


def scaling(trial, plan):
    """Wall time, and CPU time of this process and its (finished) workers, per run."""
    def run(workers):
        before = os.times()
        start = time.perf_counter()
        simulate(trial, plan, reps=SCALE_REPS, chunk_size=2, workers=workers, null=False)
        after = os.times()
        cpu = sum(after[i] - before[i] for i in range(4))  # user, system, children's
        return time.perf_counter() - start, cpu

    runs = {1: [], 2: []}
    for _ in range(REPEATS):
        for w in runs:
            runs[w].append(run(w))
    wall = {w: statistics.median(r[0] for r in v) for w, v in runs.items()}
    cpu = {w: statistics.median(r[1] for r in v) for w, v in runs.items()}
    print(f"2. whole simulation, {SCALE_REPS} replicates (median of {REPEATS})")
    for w in runs:
        print(f"   {w} worker(s): wall {wall[w]:6.1f} s = {SCALE_REPS / wall[w]:.2f} "
              f"replicates/s; CPU {cpu[w]:6.1f} s = {cpu[w] / SCALE_REPS:.3f} s/replicate; "
              f"CPU/wall {cpu[w] / wall[w]:.2f}")
    print(f"   speed-up 2 vs 1 workers (wall): {wall[1] / wall[2]:.2f}x  (target >= 1.8; "
          "meaningful only with 2 idle cores)")
    print(f"   CPU per replicate, 2 workers / 1: {cpu[2] / cpu[1]:.2f}  (pool overhead; the "
          "idle-machine speed-up is about 2 / this)")
    return {"wall_1": wall[1], "wall_2": wall[2], "cpu_1": cpu[1], "cpu_2": cpu[2]}


_RSS = """
import resource, sys
from trialplan.model.checks import example_text, load_trial_text
from trialplan.simulation.run import simulate
t = load_trial_text(example_text(), "example.yaml")
simulate(t, reps=int(sys.argv[1]), chunk_size=5, workers=1, scenarios=[{"n": 200}])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def memory():
    out = {}
    for reps in (20, 80):
        res = subprocess.run([sys.executable, "-c", _RSS, str(reps)], capture_output=True,
                             text=True, check=True)
        out[reps] = int(res.stdout.strip().splitlines()[-1]) / 1024
    print("3. peak memory (max RSS, one process, n = 200)")
    for reps, mb in out.items():
        print(f"   {reps:4d} replicates: {mb:7.1f} MB")
    print(f"   ratio 80 / 20 replicates: {out[80] / out[20]:.3f}  (flat: about 1)")
    return out


def main():
    trial = load_trial_text(example_text(), "example.yaml")
    plan = build_plan(trial)
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    if "--scaling-only" in sys.argv:
        results = {"scaling": scaling(trial, plan)}
    else:
        results = {"analysis": analysis_speed(trial, plan), "scaling": scaling(trial, plan),
                   "memory": memory()}
    print(f"load average after: {os.getloadavg()}")
    print(json.dumps({k: {str(kk): vv for kk, vv in v.items()} for k, v in results.items()}))


if __name__ == "__main__":
    main()
