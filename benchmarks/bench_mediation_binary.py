"""Binary outcome (logistic b path): speed of the mc and bootstrap tests, side by side
with the straightforward statsmodels Logit loop, in one run.

n = 600 (1:1), a = b = 0.3, control-arm outcome rate 0.38, R = 1000 replicates.
1. Monte Carlo CI (5,000 draws): target under 10 s.
2. Percentile bootstrap, B = 1000: target under 120 s.
3. The statsmodels loop (OLS for M, Logit for Y) timed on a slice and extrapolated:
   target ratio at least 50x for both.

Run:  python benchmarks/bench_mediation_binary.py
"""

from __future__ import annotations

import time

import numpy as np


def statsmodels_loop(n, a, b, rate, reps, boot=None, seed=1, draws=5000):
    import statsmodels.api as sm

    from trialplan.stats import _medsim_multi as mm

    b0 = mm.calibrate_intercept(mm.MultiSpec((a,), (b,), 0.0, "binary", "binary", rate))
    rng = np.random.default_rng(seed)
    for _ in range(reps):
        x = np.repeat([0.0, 1.0], n // 2)
        m = a * x + rng.standard_normal(n)
        y = (rng.random(n) < 1 / (1 + np.exp(-(b0 + b * m)))).astype(float)
        if boot is None:
            fa = sm.OLS(m, sm.add_constant(x)).fit()
            fb = sm.Logit(y, sm.add_constant(np.column_stack([x, m]))).fit(disp=0)
            prod = ((fa.params[1] + fa.bse[1] * rng.standard_normal(draws))
                    * (fb.params[2] + fb.bse[2] * rng.standard_normal(draws)))
            np.quantile(prod, [0.025, 0.975])
            continue
        for _ in range(boot):
            i = rng.integers(0, n, n)
            fa = sm.OLS(m[i], sm.add_constant(x[i])).fit()
            sm.Logit(y[i], sm.add_constant(np.column_stack([x[i], m[i]]))).fit(disp=0)


def main():
    from trialplan.stats import mediation

    kw = dict(a=0.3, b=0.3, n=600, outcome="binary", base_rate=0.38, reps=1000, seed=1)
    # Warm up both sides (imports, first calls) so that only the work is timed.
    mediation(**{**kw, "reps": 20}, test="mc")
    statsmodels_loop(600, 0.3, 0.3, 0.38, reps=2)
    t = time.perf_counter()
    r = mediation(test="mc", draws=5000, **kw)
    mc = time.perf_counter() - t
    t = time.perf_counter()
    statsmodels_loop(600, 0.3, 0.3, 0.38, reps=100)
    sm_mc = (time.perf_counter() - t) * 10
    print(f"1. mc, n=600, R=1000: trialplan {mc:.1f} s (power {r.power:.3f}, MC SE "
          f"{r.mc_se:.3f}; target < 10 s); statsmodels loop {sm_mc:.0f} s (timed on 100 "
          f"replicates); ratio {sm_mc / mc:.0f}x (target >= 50x)")
    t = time.perf_counter()
    r = mediation(test="bootstrap", boot=1000, **kw)
    bt = time.perf_counter() - t
    t = time.perf_counter()
    statsmodels_loop(600, 0.3, 0.3, 0.38, reps=1, boot=200)
    per = (time.perf_counter() - t) / 200
    sm_bt = per * 1000 * 1000
    print(f"2. percentile bootstrap, n=600, R=1000, B=1000: trialplan {bt:.1f} s (power "
          f"{r.power:.3f}; target < 120 s); statsmodels loop {per * 1e3:.2f} ms per resample "
          f"-> {sm_bt:,.0f} s (timed on 200 resamples); ratio {sm_bt / bt:.0f}x "
          "(target >= 50x)")
    print("   failed fits:", [note for note in r.notes if "failed" in note])


if __name__ == "__main__":
    main()
