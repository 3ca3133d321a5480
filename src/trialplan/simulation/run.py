"""Simulate the planned trial: operating characteristics beside the plan's analytic numbers.

:func:`simulate` builds one :class:`~trialplan.simulation.spec.SimulationSpec`
per scenario (and its null twin), runs chunks of replicates through
:func:`~trialplan.simulation.executor.run_chunks`, and reports per estimand the
empirical power (or type I error), bias, confidence-interval coverage and the
mean model SE against the empirical SE, each with its Monte Carlo SE, beside
the analytic power the plan's formulas give for the same scenario.  A
simulated rate more than :data:`FLAG_MC_SE` Monte Carlo SEs from the analytic
one is flagged, with the diagnostics that suggest why.

Each chunk returns sufficient statistics only (counts and sums), so memory
does not grow with the number of replicates, and the sums are combined in
chunk order, so the result is the same for any worker count.
"""

from __future__ import annotations

import hashlib
import json
import math
import time

import numpy as np

from trialplan import __version__
from trialplan.errors import InputError, TrialplanError, UnreachableTargetError
from trialplan.machine import usable_cores
from trialplan.simulation.analyse import analyse, estimand_names
from trialplan.simulation.executor import chunk_seed, connect, run_chunks
from trialplan.simulation.generate import generate
from trialplan.simulation.spec import MAX_SCENARIOS, build_spec, check_scenario

SIMULATION_SCHEMA = "trialplan-simulation/1"
#: Replicates per scenario (as ``trialplan mediation --reps``).
MAX_REPS = 1_000_000
#: Chunks of one run (scenarios, their null twins, and chunks of each): the run keeps a list
#: of them and each is a task for the pool or the cluster.
MAX_CHUNKS = 200_000
#: Local worker processes (each is started at once, a copy of this one).
MAX_WORKERS = 256
#: Participants times (clusters + 1) of one simulated trial: the analyses with a fixed effect
#: per caseload build a design matrix of this many numbers (8 bytes each: 400 MB).
MAX_DESIGN_CELLS = 50_000_000
CHUNK_SIZE = 25
FLAG_MC_SE = 3.0
# Per-chunk statistics of each estimand, in this order.
_STATS = ("replicates", "converged", "rejected", "covered", "sum_dev", "sum_dev2", "sum_se",
          "fallback")


def truths(spec) -> list[float]:
    """The true value of each estimand, in :func:`estimand_names` order."""
    out = [spec.primary.truth]
    for m in spec.mechanisms:
        out += [m.truth_a * m.truth_b, m.truth_a, m.truth_b]
    return out


def chunk_task(payload, chunk: int, seed_sequence) -> list[list]:
    """Replicates ``chunk * size ...`` of one scenario: per-estimand counts and sums."""
    spec, reps, size = payload
    count = min(size, reps - chunk * size)
    rng = np.random.default_rng(seed_sequence)
    true = truths(spec)
    acc = [[0, 0, 0, 0, 0.0, 0.0, 0.0, 0] for _ in true]
    for _ in range(count):
        data = generate(spec, rng)
        for row, est, t in zip(acc, analyse(spec, data, rng), true, strict=True):
            row[0] += 1
            row[2] += int(est.reject)
            row[7] += int(est.fallback)
            if est.converged:
                dev = est.estimate - t
                row[1] += 1
                row[3] += int(est.lower <= t <= est.upper)
                row[4] += dev
                row[5] += dev * dev
                row[6] += est.se
    return acc


def _combine(chunks: dict) -> list[list]:
    total = None
    for c in sorted(chunks):
        if total is None:
            total = [list(row) for row in chunks[c]]
            continue
        for row, add in zip(total, chunks[c], strict=True):
            for i, v in enumerate(add):
                row[i] += v
    return total


def _complete_share(spec, m) -> tuple[float, float]:
    """Expected share of each arm (control, intervention) with both the process variable
    and the outcome (dropout is monotone, so the variable lost more often decides), among
    those at risk at the landmark when the mechanism is analysed from one."""
    out = spec.variable(m.outcome)
    kept = 1.0 - max(spec.variable(m.mediator).attrition, out.attrition)
    if m.landmark_column is None:
        return kept, kept
    return kept * (1.0 - out.landmark[0]), kept * (1.0 - out.landmark[1])


def complete_cases(spec, m) -> int:
    """Expected participants in a mechanism's analysis (see :func:`_complete_share`)."""
    share_c, share_t = _complete_share(spec, m)
    return round(spec.n_control * share_c + spec.n_intervention * share_t)


def _analytic(trial, plan, spec) -> list[float | None]:
    """The plan's formulas evaluated at the scenario (None where they give nothing)."""
    from trialplan.planning.plan import _primary_call, _with_caseload
    from trialplan.stats import mediation

    scen = spec.scenario
    null = scen.get("null", False)
    k = scen.get("effect", 1.0)
    p = trial.model.assumptions.primary
    out: list[float | None] = []
    pv = spec.variable(spec.primary.outcome)
    if null:
        out.append(spec.primary.alpha)
    else:
        over = {key: scen[key] for key in ("icc", "attrition") if key in scen}
        if spec.cluster_size is not None:
            over["cluster_size"] = spec.cluster_size
        if spec.clustering == "cluster":
            over["cluster_cv"] = None  # clusters are simulated of equal size (within one)
        if spec.primary.type == "binary":
            over["intervention_rate"] = p.control_rate + k * (p.intervention_rate
                                                              - p.control_rate)
        else:
            over["d"] = k * (p.d if p.d is not None else p.difference / p.sd)
        base = trial
        if spec.clustering != "none" and trial.model.assumptions.clustering.cluster_size is None:
            base = _with_caseload(trial, spec.cluster_size)  # derived from staffing
        call = _primary_call(base, over).replace(
            power=None, n=round(spec.n_control * (1.0 - pv.attrition)))
        try:
            out.append(float(call.run().power))
        except (InputError, UnreachableTargetError):
            out.append(None)
    for m in spec.mechanisms:
        kw = dict(plan["mechanisms"][m.index]["arguments"])
        kw["a"] = m.truth_a
        kw["b"] = m.truth_b
        if "icc_m" in kw:
            # The formula's caseload is the number analysed per peer worker, as the plan's.
            kw.update(icc_m=spec.icc, icc_y=spec.icc,
                      cluster_size=spec.cluster_size * _complete_share(spec, m)[1])
        n = complete_cases(spec, m)
        try:
            r = mediation(**kw, n=n)
            values = [float(r.power), float(r.path_power["a"]), float(r.path_power["b"])]
        except (InputError, UnreachableTargetError):
            values = [None, None, None]
        if null:
            values[2] = m.alpha
        out += values
    return out


def _hints(row: dict, alpha: float) -> list[str]:
    """What in the diagnostics may explain a flagged difference."""
    hints = []
    if row["non_converged"]:
        hints.append(f"{row['non_converged']} fits did not converge (counted as not rejecting)")
    if row.get("fallback"):
        hints.append(f"the SAP's fallback analysis was used in {row['fallback']} replicates")
    if row["bias_mc_se"] and abs(row["bias"]) > FLAG_MC_SE * row["bias_mc_se"]:
        hints.append(f"the estimate is biased by {row['bias']:.3g}")
    if row["empirical_se"] and row["mean_se"]:
        ratio = row["mean_se"] / row["empirical_se"]
        if abs(ratio - 1.0) > 0.1:
            hints.append(f"the model SE is {ratio:.2f} x the empirical SE")
    cov = row["coverage"]
    if cov is not None and row["coverage_mc_se"] and (
            cov < 1 - alpha - FLAG_MC_SE * row["coverage_mc_se"]):
        hints.append(f"the interval covers the truth in {cov:.3f} of replicates")
    return hints


def _covariate_gains(spec) -> list[str | None]:
    """Per estimand: the baseline covariates its planned model adjusts for that carry
    information the plan's mechanism formula does not count (it takes r2_m = r2_y = 0)."""
    def gain(var_id, covariates):
        v = spec.variable(var_id)
        if v.baseline and v.baseline_corr and f"{var_id}_baseline" in covariates:
            return (f"the planned model adjusts for {var_id}_baseline, which the plan's "
                    "formula does not count (r2 = 0), so the analysis has more power than "
                    "planned")
        return None

    out: list[str | None] = [None]
    for m in spec.mechanisms:
        a = gain(m.mediator, m.a_covariates)
        b = gain(m.outcome, m.b_covariates)
        out += [a or b, a, b]
    return out


def _rows(spec, stats, analytic, null: bool) -> list[dict]:
    names = estimand_names(spec)
    gains = _covariate_gains(spec)
    alphas = [spec.primary.alpha] + [m.alpha for m in spec.mechanisms for _ in range(3)]
    rows = []
    fallbacks = [spec.primary.model == "glmm"] + [False] * (len(names) - 1)
    for name, st, truth, ref, alpha, gain, has_fallback in zip(
            names, stats, truths(spec), analytic, alphas, gains, fallbacks, strict=True):
        reps, conv, rej, cov, s1, s2, sse, fallback = st
        rate = rej / reps
        mc = math.sqrt(rate * (1.0 - rate) / reps)
        mean_dev = s1 / conv if conv else None
        var = (s2 - conv * mean_dev**2) / (conv - 1) if conv > 1 else None
        emp_se = math.sqrt(max(var, 0.0)) if var is not None else None
        kind = "type I error" if (null and truth == 0.0) else "power"
        row = {"estimand": name, "kind": kind, "truth": truth, "replicates": reps,
               "non_converged": reps - conv, "rate": rate, "rate_mc_se": mc,
               "analytic": ref, "bias": mean_dev,
               "bias_mc_se": emp_se / math.sqrt(conv) if emp_se is not None else None,
               "coverage": cov / conv if conv else None,
               "coverage_mc_se": (math.sqrt((cov / conv) * (1 - cov / conv) / conv)
                                  if conv else None),
               "mean_se": sse / conv if conv else None, "empirical_se": emp_se,
               # Replicates analysed by the SAP's fallback (the primary analysis of a binary
               # outcome under partial nesting); None where the analysis has no fallback.
               "fallback": fallback if has_fallback else None}
        if ref is None:
            row.update(differs=None, z=None, hints=[])
        else:
            # The MC SE under the analytic value: is the simulation consistent with it?
            se0 = max(math.sqrt(ref * (1.0 - ref) / reps), 1.0 / reps)
            row["z"] = (rate - ref) / se0
            row["differs"] = abs(row["z"]) > FLAG_MC_SE
            row["hints"] = _hints(row, alpha) if row["differs"] else []
            if row["differs"] and row["z"] > 0 and gain:
                row["hints"].append(gain)
        rows.append(row)
    return rows


def _design(spec) -> dict:
    out = {"n_control": spec.n_control, "n_intervention": spec.n_intervention,
           "clustering": spec.clustering, "missing": spec.missing}
    if spec.clustering != "none":
        out.update(icc=spec.icc, cluster_size=spec.cluster_size,
                   clusters_intervention=spec.clusters_intervention,
                   clusters_control=spec.clusters_control)
    return out


def fingerprint(trial, settings: dict) -> str:
    """Identifies a run for its checkpoint: the trial file's text and every setting."""
    blob = json.dumps({"trial": trial.text_hash, "version": __version__, **settings},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def seconds_per_replicate(spec, seed: int) -> float:
    """Time one replicate in this process (a warm-up first), for the run-time estimate."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(chunk_seed(seed, 10**6))
    with threadpool_limits(limits=1):
        analyse(spec, generate(spec, rng), rng)
        start = time.perf_counter()
        analyse(spec, generate(spec, rng), rng)
    return time.perf_counter() - start


def _check_size(reps, chunk_size, workers, scenarios, null) -> None:
    """Refuse a run too large to hold or start, before any work (each limit says why)."""
    if not 2 <= reps <= MAX_REPS:
        raise InputError(f"reps must be in [2, {MAX_REPS:,}]; got {reps:,}", names=("reps",))
    if chunk_size < 1:
        raise InputError(f"chunk_size must be at least 1; got {chunk_size}",
                         names=("chunk_size",))
    if not 1 <= workers <= MAX_WORKERS:
        raise InputError(f"workers must be in [1, {MAX_WORKERS}]; got {workers:,} (each is a "
                         "process started at once)", names=("workers",))
    if len(scenarios) > MAX_SCENARIOS:
        raise InputError(f"the grid of scenarios has {len(scenarios):,} cells, more than the "
                         f"limit of {MAX_SCENARIOS}; each is a full simulation",
                         names=("scenarios",))
    for scen in scenarios:
        try:
            check_scenario(scen)
        except InputError as exc:
            raise InputError(f"scenario {scen}: {exc}", names=("scenarios",)) from None
    chunks = math.ceil(reps / chunk_size) * len(scenarios) * (2 if null else 1)
    if chunks > MAX_CHUNKS:
        raise InputError(f"the run would have {chunks:,} chunks, more than the limit of "
                         f"{MAX_CHUNKS:,}; raise chunk_size", names=("chunk_size",))


def _simulable(spec):
    """``spec`` if its analyses fit in memory; else an InputError saying why."""
    n = spec.n_control + spec.n_intervention
    cells = n * (spec.clusters_control + spec.clusters_intervention + 1)
    if cells > MAX_DESIGN_CELLS:
        raise InputError(f"{n:,} participants in {cells // n - 1:,} clusters is too large a "
                         f"trial to simulate: its analyses would build design matrices of "
                         f"{cells:,} numbers (the limit is {MAX_DESIGN_CELLS:,})")
    return spec


def simulate(trial, plan: dict | None = None, *, reps: int = 1000, seed: int | None = None,
             scenarios: list[dict] | None = None, null: bool = True, missing: str = "mcar",
             baseline_corr: float = 0.0, workers: int | None = None,
             scheduler: str | None = None, checkpoint=None, chunk_size: int = CHUNK_SIZE,
             progress=None, on_estimate=None) -> dict:
    """Simulate the trial file's planned trial and analysis; JSON-ready results.

    Parameters
    ----------
    trial : trialplan.model.checks.TrialPlan
        A validated trial file.
    plan : dict, optional
        Its plan (built when not given).
    reps : int
        Replicates per scenario (and per null scenario).
    seed : int, optional
        Default: the trial file's ``assumptions.seed``.
    scenarios : list of dict, optional
        Changes to the plan (see :func:`~trialplan.simulation.spec.build_spec`);
        default: the plan as it is.
    null : bool
        Also simulate each scenario's null twin, for type I error.
    missing, baseline_corr
        As :func:`~trialplan.simulation.spec.build_spec`.
    workers : int, optional
        Local processes (default: every core available).
    scheduler : str, optional
        A Dask scheduler address instead of the local pool.
    checkpoint : path, optional
        Chunks finished are appended here; a rerun resumes from it.
    chunk_size : int
        Replicates per chunk (part of the seeding: keep it to reproduce a run).
    progress : callable, optional
        ``progress(done, total)`` in chunks.
    on_estimate : callable, optional
        ``on_estimate(seconds, replicates)`` with the expected run time, before the run.

    Returns
    -------
    dict
        ``schema``, ``settings``, ``scenarios`` (each with its design, analyses,
        estimands and any error), ``flags`` and ``provenance``; identical for
        the same inputs and seed whatever ``workers`` or ``scheduler``.
    """
    from trialplan.planning import build_plan

    scenarios = scenarios or [{}]
    workers = usable_cores() if workers is None else int(workers)
    _check_size(reps, chunk_size, workers, scenarios, null)
    plan = plan if plan is not None else build_plan(trial)
    seed = trial.model.assumptions.seed if seed is None else int(seed)
    parallel = workers
    if scheduler:
        # Fail fast on an unreachable scheduler, and learn its size for the estimate.
        client = connect(scheduler)
        parallel = max(1, sum(client.nthreads().values()))
        client.close()
    specs, reports = {}, []
    for i, scen in enumerate(scenarios):
        entry = {"scenario": dict(scen)}
        try:
            entry["spec"] = _simulable(build_spec(trial, plan, scen, missing=missing,
                                                  baseline_corr=baseline_corr))
            specs[f"{i}"] = entry["spec"]
            if null:
                specs[f"{i}-null"] = build_spec(trial, plan, scen, null=True, missing=missing,
                                                baseline_corr=baseline_corr)
        except TrialplanError as exc:
            entry["error"] = str(exc)
        reports.append(entry)
    n_chunks = math.ceil(reps / chunk_size)
    if specs and on_estimate is not None:
        first = next(iter(specs.values()))
        per = seconds_per_replicate(first, seed)
        on_estimate(per * reps * len(specs) / parallel, reps * len(specs))
    settings = {"reps": reps, "seed": seed, "chunk_size": chunk_size, "missing": missing,
                "baseline_corr": baseline_corr, "null": null, "scenarios": scenarios}
    outcomes = run_chunks(chunk_task, {k: (s, reps, chunk_size) for k, s in specs.items()},
                          {k: n_chunks for k in specs}, seed=seed, workers=workers,
                          scheduler=scheduler, checkpoint=checkpoint,
                          fingerprint=fingerprint(trial, settings), progress=progress)
    out_scen, flags = [], []
    for i, entry in enumerate(reports):
        spec = entry.get("spec")
        rec = {"label": spec.label if spec else ", ".join(
            f"{k}={v:g}" for k, v in entry["scenario"].items()), "scenario": entry["scenario"]}
        if spec is None:
            rec["error"] = entry["error"]
            out_scen.append(rec)
            continue
        rec["design"] = _design(spec)
        rec["analyses"] = {"primary": spec.primary.description,
                           **{m.key: m.description for m in spec.mechanisms}}
        rec["not_simulated"] = [{"mechanism": mm, "reason": why}
                                for mm, why in spec.not_simulated]
        rec["notes"] = list(spec.notes)
        for m in spec.mechanisms:
            n_cc = complete_cases(spec, m)
            planned = plan["mechanisms"][m.index].get("planned_n")
            if not entry["scenario"] and planned not in (None, n_cc):
                rec["notes"].append(
                    f"{m.key}: analytic power here is at the {n_cc:,} expected to have both "
                    f"{m.mediator} and {m.outcome} (their attrition); the plan gives it at "
                    f"{planned:,}")
        rows = []
        errors = []
        for key, is_null in ((f"{i}", False), (f"{i}-null", True)):
            if key not in specs:
                continue
            res = outcomes[key]
            if res.error is not None:
                errors.append(f"{'null scenario' if is_null else 'scenario'}: {res.error}")
                continue
            stats = _combine(res.chunks)
            new = _rows(specs[key], stats, _analytic(trial, plan, specs[key]), is_null)
            # A null scenario's path a rows repeat the scenario's (a is unchanged and the
            # random numbers are common): keep only its type I error rows.
            rows += [r for r in new if not is_null or r["kind"] == "type I error"]
        rec["estimands"] = rows
        if errors:
            rec["error"] = "; ".join(errors)
        for row in rows:
            if row.get("differs"):
                flags.append({"scenario": rec["label"], "estimand": row["estimand"],
                              "kind": row["kind"], "simulated": row["rate"],
                              "analytic": row["analytic"], "z": row["z"],
                              "hints": row["hints"]})
        out_scen.append(rec)
    from trialplan.planning.plan import _versions

    return {"schema": SIMULATION_SCHEMA,
            "trial": {"title": trial.model.trial.title, "acronym": trial.model.trial.acronym,
                      "file": trial.source},
            "settings": settings, "scenarios": out_scen, "flags": flags,
            "provenance": {"versions": _versions(), "input_sha256": trial.text_hash,
                           "seeding": "numpy SeedSequence(seed).spawn by chunk index",
                           "flag_rule": f"|simulated - analytic| > {FLAG_MC_SE:g} MC SE "
                                        "(binomial SE at the analytic value)"}}
