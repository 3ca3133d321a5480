"""Speed and memory of the mediation engine, side by side with the obvious loop, in one run.

1. Percentile-bootstrap power at n = 200 (0/1 treatment, a = b = 0.3),
   R = 1000 replicates x B = 1000 resamples, against the straightforward
   statsmodels loop (two OLS fits per resample), timed on a slice of
   replicates and extrapolated.  Target: at least 150x.
2. Solving n for 80% power by percentile bootstrap at a = b = 0.39,
   continuous X, R = B = 1000.  Target: under 30 s.
3. Peak memory (max RSS of a fresh process) for (1) and for R = 1000 x
   B = 5000 at n = 1000.  Target: under 1 GB whatever R and B.

Run:  python benchmarks/bench_mediation.py
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np


def statsmodels_loop(n, a, b, reps, boot, seed=1):
    import statsmodels.api as sm

    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        x = np.repeat([0.0, 1.0], n // 2)
        m = a * x + rng.standard_normal(n)
        y = b * m + rng.standard_normal(n)
        ab = np.empty(boot)
        for j in range(boot):
            i = rng.integers(0, n, n)
            fa = sm.OLS(m[i], sm.add_constant(x[i])).fit()
            fb = sm.OLS(y[i], sm.add_constant(np.column_stack([x[i], m[i]]))).fit()
            ab[j] = fa.params[1] * fb.params[2]
        lo, hi = np.quantile(ab, [0.025, 0.975])
        hits += (lo > 0) or (hi < 0)
    return hits / reps


def peak_rss_mb(code: str) -> float:
    # VmHWM is this process's own peak (ru_maxrss would include the parent's, inherited
    # across fork and exec).
    probe = (f"{code}\n"
             "print([int(l.split()[1]) for l in open('/proc/self/status')"
             " if l.startswith('VmHWM')][0] / 1024)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[-1])


def main():
    from trialplan.stats import mediation

    print("1. percentile bootstrap power, n = 200, R = 1000, B = 1000")
    # Warm up both sides (imports, first calls) so that only the work is timed.
    mediation(a=0.3, b=0.3, n=200, test="bootstrap", reps=10, boot=50, seed=1)
    statsmodels_loop(200, 0.3, 0.3, 1, 5)
    t = time.perf_counter()
    r = mediation(a=0.3, b=0.3, n=200, test="bootstrap", reps=1000, boot=1000, seed=1)
    ours = time.perf_counter() - t
    print(f"   trialplan: {ours:.1f} s (power {r.power:.3f}, MC SE {r.mc_se:.3f})")
    slice_reps, slice_boot = 2, 250
    t = time.perf_counter()
    statsmodels_loop(200, 0.3, 0.3, slice_reps, slice_boot)
    per_fit_pair = (time.perf_counter() - t) / (slice_reps * slice_boot)
    loop = per_fit_pair * 1000 * 1000
    print(f"   statsmodels loop: {per_fit_pair * 1e3:.2f} ms per resample -> {loop:,.0f} s for "
          f"1000 x 1000 (timed on {slice_reps} x {slice_boot}, extrapolated)")
    print(f"   ratio: {loop / ours:,.0f}x (target >= 150x)")

    print("2. solve n for 80% power, percentile bootstrap, a = b = 0.39, X ~ N(0, 1), "
          "R = B = 1000")
    t = time.perf_counter()
    r = mediation(a=0.39, b=0.39, power=0.8, x="continuous", test="bootstrap", reps=1000,
                  boot=1000, seed=2007)
    print(f"   n = {r.n_total} (Fritz & MacKinnon 2007 Table 3: 78), power {r.power:.3f}, "
          f"{time.perf_counter() - t:.1f} s (target < 30 s)")

    print("3. peak memory (max RSS of a fresh process)")
    base = peak_rss_mb("import trialplan.stats")
    one = peak_rss_mb("from trialplan.stats import mediation\n"
                      "mediation(a=0.3, b=0.3, n=200, test='bootstrap', reps=1000, boot=1000)")
    big = peak_rss_mb("from trialplan.stats import mediation\n"
                      "mediation(a=0.1, b=0.1, n=1000, test='bootstrap', reps=200, boot=5000)")
    print(f"   import only: {base:.0f} MB; n=200 R=1000 B=1000: {one:.0f} MB; "
          f"n=1000 R=200 B=5000: {big:.0f} MB (target < 1024 MB)")


if __name__ == "__main__":
    main()
