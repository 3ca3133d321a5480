"""Peak memory of the partially nested simulation's caseload means, against a dense indicator.

The caseload means were once computed as (reps x n) @ (n x J) with an n x J
indicator matrix: quadratic in n.  They are now group sums after one sort:
linear in n.  Prints the peak traced allocation of each at several n
(tracemalloc; 10 replicates, caseload 10) and their ratio.

    python benchmarks/bench_medsim_pn_memory.py
"""

from __future__ import annotations

import tracemalloc

import numpy as np

from trialplan.stats._medsim_pn import _caseloads, _group_sums


def _peak(fn, *args) -> float:
    tracemalloc.start()
    fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def _dense(x, labels, j):
    n = x.shape[1]
    g = np.zeros((n, j))
    g[np.arange(n), labels] = 1.0
    return x @ g


def main() -> None:
    reps, m = 10, 10.0
    print(f"{'n':>8} {'group sums MiB':>15} {'dense MiB':>10} {'ratio':>7}")
    for n in (1_000, 10_000, 30_000):
        labels, j = _caseloads(n, m)
        x = np.random.default_rng(0).normal(size=(reps, n))
        sizes = np.bincount(labels, minlength=j).astype(float)

        ours = _peak(_group_sums, x, labels, sizes)
        theirs = _peak(_dense, x, labels, j)
        print(f"{n:>8,} {ours:>15.2f} {theirs:>10.2f} {theirs / ours:>7.0f}x")


if __name__ == "__main__":
    main()
