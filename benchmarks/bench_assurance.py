"""Assurance of the bundled example: one vectorised call against the obvious loop.

The bundled example gives the control rate, the intervention rate and the
peer-worker ICC as distributions.  Its primary assurance averages, over
100,000 draws, the probability that the two-sided test is significant in
favour of the intervention.

1. Vectorised: the plan's own computation (``trialplan.planning.assurance``):
   the closed-form power of :func:`trialplan.stats.proportions` called once on
   the arrays of draws.  Target: well under a second.
2. The straightforward loop: the same scalar function called once per draw
   (timed on a slice of draws and extrapolated to 100,000).
3. Both give the same per-draw probabilities (checked on the slice).

Each timing is the median of 5 runs.  The BLAS thread count is printed
(threadpoolctl; ``pip install threadpoolctl``); the closed forms use no BLAS.

Run:  python benchmarks/bench_assurance.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from trialplan.model.checks import example_text, load_trial_text
from trialplan.planning import build_plan
from trialplan.planning.assurance import _primary_priors, _success, effect_direction
from trialplan.stats import assurance as sa
from trialplan.stats import proportions

SLICE = 500
RUNS = 5


def blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    info = threadpool_info()
    return ", ".join(f"{i['internal_api']} {i['num_threads']} thread(s)" for i in info) or "none"


def loop(trial, drawn, n_control, alpha, count):
    """One scalar call per draw: what a user without array support would write.

    Every argument but the drawn ones is the plan's own (attrition, caseload, control
    variance, ...), as the vectorised call has them.
    """
    from trialplan.planning.plan import _primary_call

    base = {k: v for k, v in _primary_call(trial).kwargs.items()
            if k not in ("power", "alpha", "sided", "alternative")}
    out = np.empty(count)
    for j in range(count):
        p1 = float(drawn["assumptions.primary.control_rate"][j])
        p2 = float(drawn["assumptions.primary.intervention_rate"][j])
        icc = float(drawn["assumptions.clustering.icc"][j])
        kw = dict(base, p1=p1, p2=p2, n=n_control, icc=icc)
        if p2 < p1:
            out[j] = proportions(**kw, alpha=alpha / 2, sided="one", alternative="less").power
        else:
            two = proportions(**kw, alpha=alpha).power
            own = proportions(**kw, alpha=alpha / 2, sided="one", alternative="greater").power
            out[j] = max(two - own, 0.0)
    return out


def main() -> None:
    trial = load_trial_text(example_text(), "example_trial.yaml")
    plan = build_plan(trial)
    a = trial.model.assumptions
    draws, seed = a.assurance.draws, a.seed
    n_control = plan["primary"]["result"]["n_analysed_per_arm"]["control"]
    n_recruit = plan["primary"]["result"]["n_per_arm"]["control"]
    direction = effect_direction(trial)
    print(f"BLAS: {blas_threads()}")
    print(f"bundled example: {draws:,} draws over {', '.join(_primary_priors(trial))}")

    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        drawn = sa.draw_priors(_primary_priors(trial), draws, seed)
        probs, _ = _success(trial, drawn, draws, n_recruit, direction, n_control)
        times.append(time.perf_counter() - start)
    vector = statistics.median(times)
    print(f"1. vectorised: assurance {probs.mean():.4f}; median {vector:.3f} s "
          f"(runs {', '.join(f'{t:.3f}' for t in times)})")

    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        looped = loop(trial, drawn, n_control, a.alpha, SLICE)
        times.append(time.perf_counter() - start)
    per_draw = statistics.median(times) / SLICE
    print(f"2. loop: {per_draw * 1e3:.3f} ms per draw -> {per_draw * draws:.1f} s for "
          f"{draws:,} draws (median of {RUNS} runs on {SLICE} draws)")
    diff = float(np.max(np.abs(looped - probs[:SLICE])))
    print(f"3. largest difference per draw on the slice: {diff:.2e}")
    print(f"ratio: {per_draw * draws / vector:.0f}x")


if __name__ == "__main__":
    main()
