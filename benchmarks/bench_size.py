"""Speed of `trialplan size`, side by side with the obvious alternatives, in one run.

1. Cold start: `trialplan size means --d 0.5 --power 0.8`, against a Python
   one-liner that imports statsmodels' TTestIndPower and solves the same
   problem, and against `Rscript -e 'pwr::pwr.t.test(d=0.5, power=0.8)'` when R
   with pwr is installed.  Median of repeated runs, interleaved.
2. A 10,000-cell grid from the command line (proportions and means), against
   a statsmodels loop over the same cells (timed on a slice, extrapolated).
3. A 1,000,000-cell grid streamed as JSON (wall time and peak memory, median
   of 5), against the same grid computed in one call and written from
   ``SizeResult.records()`` (the obvious all-in-memory way).

Run:  python benchmarks/bench_size.py
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).with_name("trialplan")
TP = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "trialplan"]
SM = [sys.executable, "-c",
      "from statsmodels.stats.power import TTestIndPower; "
      "print(TTestIndPower().solve_power(0.5, alpha=0.05, power=0.8))"]
R = ["Rscript", "-e", "pwr::pwr.t.test(d=0.5, power=0.8)"]


def wall(cmd) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def cold_start(repeats=15):
    cmds = {"trialplan": TP + ["size", "means", "--d", "0.5", "--power", "0.8"],
            "statsmodels one-liner": SM}
    have_r = shutil.which("Rscript") and subprocess.run(
        ["Rscript", "-e", "library(pwr)"], capture_output=True).returncode == 0
    if have_r:
        cmds["Rscript pwr"] = R
    for cmd in cmds.values():
        wall(cmd)  # warm the file cache
    times = {k: [] for k in cmds}
    for _ in range(repeats):
        for k, cmd in cmds.items():
            times[k].append(wall(cmd))
    med = {k: statistics.median(v) for k, v in times.items()}
    print("cold start, median of", repeats, "runs:")
    for k, v in med.items():
        print(f"  {k:<24} {v:.3f} s")
    print(f"  statsmodels / trialplan  {med['statsmodels one-liner'] / med['trialplan']:.2f}x")
    if have_r:
        print(f"  trialplan / Rscript      {med['trialplan'] / med['Rscript pwr']:.2f}x "
              "(target: within 2x)")
    else:
        print("  Rscript with pwr not installed: R comparison skipped")


def grid():
    prop = TP + ["size", "proportions", "--p1", "0.2:0.6:0.004", "--rd", "-0.15:-0.05:0.001",
                 "--power", "0.9", "--json"]
    means = TP + ["size", "means", "--d", "0.1:1.09:0.01", "--power", "0.5:0.995:0.005",
                  "--json"]
    for name, cmd in (("proportions 101 x 101", prop), ("means 100 x 100", means)):
        t = wall(cmd)
        print(f"10,000-cell grid, {name}: {t:.2f} s (command line, JSON out; target < 1 s)")
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    t = time.perf_counter()
    cells = 200
    for i in range(cells):
        h = proportion_effectsize(0.2 + 0.002 * i, 0.1 + 0.002 * i)
        NormalIndPower().solve_power(h, alpha=0.05, power=0.9)
    per = (time.perf_counter() - t) / cells
    print(f"statsmodels NormalIndPower loop: {per * 1e4:.1f} s per 10,000 cells "
          f"(extrapolated from {cells})")


MILLION = ["proportions", "--p1", "0.2:0.4997:0.0003", "--p2", "0.1:0.18991:0.00009",
           "--power", "0.8", "--json"]
IN_MEMORY = [sys.executable, "-c", """
import json, sys
import numpy as np
from trialplan.stats import proportions
r = proportions(p1=np.round(np.arange(1000) * 0.0003 + 0.2, 12)[:, None],
                p2=np.round(np.arange(1000) * 0.00009 + 0.1, 12), power=0.8)
rows = r.records()
sys.stdout.write("[\\n" + ",\\n".join(map(json.dumps, rows)) + "\\n]\\n")
"""]


def _run_measured(cmd) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = wall(cmd)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return t, max(peak, before) / 1024


def million(repeats=5):
    cmds = {"trialplan size (streamed)": TP + ["size", *MILLION], "one call + records()": IN_MEMORY}
    times = {k: [] for k in cmds}
    peaks = {k: 0.0 for k in cmds}
    # Peak memory of children is a running maximum: measure the lighter command first.
    for k, cmd in cmds.items():
        for _ in range(repeats):
            t, peak = _run_measured(cmd)
            times[k].append(t)
            peaks[k] = peak
    try:
        import threadpoolctl

        blas = threadpoolctl.threadpool_info()
        threads = ", ".join(f"{i['internal_api']} {i['num_threads']}" for i in blas) or "none"
    except ImportError:
        threads = "threadpoolctl not installed"
    print(f"1,000,000-cell proportions grid to JSON, median of {repeats} (BLAS threads: "
          f"{threads}; load {open('/proc/loadavg').read().split()[0]}):")
    for k in cmds:
        print(f"  {k:<28} {statistics.median(times[k]):6.2f} s   peak {peaks[k]:7.0f} MiB")
    a, b = cmds
    print(f"  time ratio {statistics.median(times[b]) / statistics.median(times[a]):.1f}x, "
          f"memory ratio {peaks[b] / peaks[a]:.1f}x (targets: streamed < 10 s and < 1 GB)")


if __name__ == "__main__":
    cold_start()
    grid()
    million()
