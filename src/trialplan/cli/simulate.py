"""``trialplan simulate`` and ``trialplan analysis-code``: the planned trial, simulated."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import click


def chunk_progress(quiet: bool = False, stream=None, clock=None):
    """The executor's ``progress(done, total)`` in chunks, drawn by the CLI's one progress bar."""
    from trialplan.cli._progress import Progress

    bar = Progress(quiet=quiet, stream=stream, **({"clock": clock} if clock else {}))
    return lambda done, total: bar(done, total, "simulate (chunks)")


def parse_scenarios(text: str | None) -> list[dict]:
    """``"icc=0.01,0.03 cluster_size=6,12 effect=1,0.8"`` -> the grid of every combination.

    Each key at most once, each value a finite number, and the grid no larger
    than :data:`~trialplan.simulation.spec.MAX_SCENARIOS` cells (counted before
    it is built).
    """
    import math

    from trialplan.simulation.spec import MAX_SCENARIOS, SCENARIO_KEYS

    if not text:
        return [{}]

    def bad(message):
        return click.BadParameter(message, param_hint="'--scenarios'")

    axes = []
    for part in text.replace(";", " ").split():
        key, sep, values = part.partition("=")
        if not sep or not values:
            raise bad(f"expected KEY=V1,V2,...; got {part!r}")
        if key not in SCENARIO_KEYS:
            raise bad(f"unknown setting {key!r}; expected one of {', '.join(SCENARIO_KEYS)}")
        if any(key == k for k, _ in (axis[0] for axis in axes)):
            raise bad(f"{key} is given twice; list all its values once: {key}=V1,V2,...")
        try:
            nums = [float(v) for v in values.split(",") if v]
        except ValueError:
            raise bad(f"{key}: values must be numbers; got {values!r}") from None
        if not nums or not all(math.isfinite(v) for v in nums):
            raise bad(f"{key}: values must be finite numbers; got {values!r}")
        axes.append([(key, v) for v in nums])
    cells = math.prod(len(axis) for axis in axes)
    if cells > MAX_SCENARIOS:
        raise bad(f"the grid has {cells:,} scenarios, more than the limit of {MAX_SCENARIOS}; "
                  "each is a full simulation")
    return [dict(combo) for combo in itertools.product(*axes)]


def _wrapped(text: str) -> list[str]:
    """A long description as indented lines of at most 100 characters."""
    return textwrap.wrap(text, 100, initial_indent="  ", subsequent_indent="    ",
                         break_on_hyphens=False, break_long_words=False)


def _num(x, fmt=".3f") -> str:
    return "-" if x is None else format(x, fmt)


def summary(result: dict) -> str:
    """The simulation as text tables, one per scenario, with the flags explained."""
    s = result["settings"]
    title = result["trial"]["acronym"] or result["trial"]["title"]
    lines = [f"Simulation of the planned trial: {title}",
             f"{s['reps']} replicates per scenario, seed {s['seed']}, chunks of "
             f"{s['chunk_size']}, attrition {s['missing'].upper()}", ""]
    for scen in result["scenarios"]:
        lines.append(f"SCENARIO  {scen['label']}")
        if "design" in scen:
            d = scen["design"]
            line = (f"  n recruited: control {d['n_control']:,}, intervention "
                    f"{d['n_intervention']:,}")
            if d["clustering"] != "none":
                line += (f"; {d['clusters_intervention']} peer workers/clusters (ICC "
                         f"{d['icc']:g}, caseload {d['cluster_size']:g})")
            lines.append(line)
            for key, text in scen["analyses"].items():
                lines += _wrapped(f"{key}: {text}")
        if scen.get("error"):
            lines.append(f"  NOT SIMULATED: {scen['error']}")
        if scen.get("estimands"):
            w = max(34, *(len(r["estimand"]) for r in scen["estimands"]))
            lines.append(f"  {'estimand':{w}s} {'':12s} {'simulated':>15s} {'analytic':>8s} "
                         f"{'bias':>15s} {'coverage':>15s} {'SE/empSE':>8s} {'noconv':>6s}")
            for r in scen["estimands"]:
                sim = f"{r['rate']:.3f} ({r['rate_mc_se']:.3f})"
                bias = (f"{r['bias']:+.3f} ({r['bias_mc_se']:.3f})"
                        if r["bias"] is not None and r["bias_mc_se"] is not None else "-")
                cov = (f"{r['coverage']:.3f} ({r['coverage_mc_se']:.3f})"
                       if r["coverage"] is not None else "-")
                ratio = (f"{r['mean_se'] / r['empirical_se']:.2f}"
                         if r["mean_se"] and r["empirical_se"] else "-")
                mark = "  <- differs" if r.get("differs") else ""
                lines.append(f"  {r['estimand']:{w}s} {r['kind']:12s} {sim:>15s} "
                             f"{_num(r['analytic']):>8s} {bias:>15s} {cov:>15s} {ratio:>8s} "
                             f"{r['non_converged']:>6d}{mark}")
        for r in scen.get("estimands", []):
            if r.get("fallback") is not None:
                lines += _wrapped(f"{r['estimand']} ({r['kind']}): the SAP's fallback (GEE, the "
                                  "mixed model not converging or estimating a zero "
                                  f"random-intercept variance) was the analysis in "
                                  f"{r['fallback']} of {r['replicates']} replicates")
        for item in scen.get("not_simulated", []):
            lines += _wrapped(f"{item['mechanism']}: not simulated ({item['reason']})")
        for note in scen.get("notes", []):
            lines += _wrapped(f"note: {note}")
        lines.append("")
    if result["flags"]:
        lines.append("DIFFERENCES FROM THE ANALYTIC PLAN (more than 3 Monte Carlo SE)")
        for f in result["flags"]:
            why = "; ".join(f["hints"]) or ("no fitting problem found: the analytic "
                                            "approximation and the planned analysis differ")
            lines += _wrapped(f"{f['scenario']} / {f['estimand']} ({f['kind']}): simulated "
                              f"{f['simulated']:.3f}, analytic {f['analytic']:.3f} "
                              f"(z = {f['z']:+.1f}): {why}")
    else:
        lines.append("Every simulated power and type I error agrees with the analytic value "
                     "within 3 Monte Carlo SE.")
    lines.append("")
    lines += textwrap.wrap("simulated: rejection rate (MC SE); bias and coverage over "
                           "converged fits (MC SE); SE/empSE: mean model SE over the SD of the "
                           "estimates; noconv: fits that failed or did not converge, counted "
                           "as not rejecting.", 100)
    return "\n".join(lines)


@click.command("simulate")
@click.argument("trial_file", type=click.Path(dir_okay=False))
@click.option("--reps", type=click.IntRange(min=2), default=1000, show_default=True,
              help="Replicates per scenario (and per null scenario).")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed (default: assumptions.seed of the trial file).")
@click.option("--scenarios", metavar="GRID",
              help="Grid of scenarios, e.g. 'icc=0.01,0.05 cluster_size=6,12 effect=0.8,1' "
                   "(keys: icc, cluster_size, effect, attrition, n).")
@click.option("--no-null", is_flag=True, help="Skip the null scenarios (type I error).")
@click.option("--missing", type=click.Choice(["mcar", "mar"]), default="mcar",
              show_default=True, help="Loss to follow-up completely at random, or at random "
                                      "given baseline.")
@click.option("--baseline-corr", type=click.FloatRange(-0.99, 0.99), default=0.0,
              show_default=True,
              help="Baseline-follow-up correlation where the trial file gives none.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: all cores).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run on a Dask distributed cluster (e.g. tcp://host:8786).")
@click.option("--checkpoint", type=click.Path(dir_okay=False),
              help="Append finished chunks here; rerun with it to resume.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=25, show_default=True,
              help="Replicates per chunk (part of the seeding).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the results as JSON to this file.")
@click.option("--figure", type=click.Path(dir_okay=False),
              help="Draw simulated against analytic rates (.svg or .png).")
@click.option("--dummy-data", type=click.Path(dir_okay=False),
              help="Write one synthetic dataset (CSV) and its data dictionary, and stop.")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@click.option("--quiet", is_flag=True, help="No progress messages on stderr.")
def simulate_cmd(trial_file, reps, seed, scenarios, no_null, missing, baseline_corr, workers,
                 scheduler, checkpoint, chunk_size, as_json, output, figure, dummy_data, force,
                 quiet):
    """Simulate the planned trial and its planned analysis from TRIAL_FILE.

    Data are drawn from the trial file's assumptions (arms, peer-worker ICC,
    paths a and b, the primary effect, attrition) and analysed as the SAP
    plans; each estimand's power, type I error, bias and coverage are shown
    beside the plan's analytic power, with differences over 3 Monte Carlo SE
    flagged.

    \b
    Examples:
      trialplan simulate trial.yaml
      trialplan simulate trial.yaml --reps 2000 --figure sim.png -o sim.json
      trialplan simulate trial.yaml --scenarios 'icc=0.01,0.05 cluster_size=6,12'
      trialplan simulate trial.yaml --scheduler tcp://10.0.0.5:8786 --checkpoint run.jsonl
      trialplan simulate trial.yaml --dummy-data dummy.csv
    """
    from trialplan.cli._errors import flag_names
    from trialplan.cli._output import json_text
    from trialplan.cli._progress import duration
    from trialplan.errors import InputError
    from trialplan.fileio import check_target, write_output
    from trialplan.model.checks import load_trial
    from trialplan.planning import build_plan
    from trialplan.simulation.executor import Checkpoint

    grid = parse_scenarios(scenarios)
    # Every file is checked before the work: a run can take hours.
    if dummy_data:
        target = Path(dummy_data)
        dict_path = target.with_name(target.stem + ".dictionary.csv")
        for path in (target, dict_path):
            check_target(path, force=force)
    if output:
        check_target(output, force=force)
    if figure:
        from trialplan.render.plots import check_figure_target

        check_figure_target(figure, force=force)
    if checkpoint:
        Checkpoint.check(checkpoint)
    trial = load_trial(trial_file)
    plan = build_plan(trial)
    if dummy_data:
        from trialplan.simulation import dummy
        from trialplan.simulation.spec import build_spec

        spec = build_spec(trial, plan, grid[0], missing=missing, baseline_corr=baseline_corr)
        data, _ = dummy.dummy_dataset(spec, trial.model.assumptions.seed if seed is None
                                      else seed)
        write_output(target, dummy.to_csv(data), force=force)
        write_output(dict_path, dummy.dictionary(spec, data), force=force)
        click.echo(f"wrote {target} ({len(data['id'])} participants) and {dict_path}", err=True)
        return
    from trialplan.simulation.run import simulate

    def estimate(seconds, replicates):
        where = (f"the Dask cluster at {scheduler}" if scheduler
                 else f"{workers or 'all'} local worker(s)")
        click.echo(f"simulate: {replicates:,} replicates on {where}; estimated run time "
                   f"{duration(seconds)}", err=True)

    try:
        with flag_names():
            result = simulate(trial, plan, reps=reps, seed=seed, scenarios=grid,
                              null=not no_null, missing=missing, baseline_corr=baseline_corr,
                              workers=workers, scheduler=scheduler, checkpoint=checkpoint,
                              chunk_size=chunk_size, progress=chunk_progress(quiet),
                              on_estimate=estimate)
    except KeyboardInterrupt:
        if checkpoint and Path(checkpoint).exists():
            done = max(0, len(Path(checkpoint).read_bytes().splitlines()) - 1)
            hint = (f"{done} finished chunk(s) are in {checkpoint}; run the same command to "
                    "resume")
        else:
            hint = "no chunk was kept (use --checkpoint FILE to keep finished chunks)"
        click.echo(f"\ninterrupted: {hint}", err=True)
        raise click.Abort() from None
    if not any(scen.get("estimands") for scen in result["scenarios"]):
        raise InputError("no scenario could be simulated: " + "; ".join(
            f"{scen['label']}: {scen.get('error', 'nothing to simulate')}"
            for scen in result["scenarios"]))
    text = json_text(result)
    if output:
        write_output(output, text, force=force)
        click.echo(f"wrote {output}", err=True)
    if figure:
        from trialplan.render.simulation_figure import simulation_figure

        simulation_figure(result, figure, force=force)
        click.echo(f"wrote {figure}", err=True)
    if as_json:
        click.echo(text, nl=False)
    else:
        click.echo(summary(result))


@click.command("analysis-code")
@click.argument("trial_file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="The script to write (e.g. analysis.py).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def analysis_code_cmd(trial_file, output, force):
    """Write the SAP's analysis of TRIAL_FILE as a standalone statsmodels script.

    The script reads a dataset with the columns of `simulate --dummy-data`
    and prints each estimate as JSON.

    \b
    Example:
      trialplan analysis-code trial.yaml -o analysis.py
      trialplan simulate trial.yaml --dummy-data dummy.csv && python analysis.py dummy.csv
    """
    from trialplan.fileio import check_target, write_output
    from trialplan.model.checks import load_trial
    from trialplan.planning import build_plan
    from trialplan.simulation.script import analysis_script
    from trialplan.simulation.spec import build_spec

    check_target(output, force=force)  # before any work
    trial = load_trial(trial_file)
    spec = build_spec(trial, build_plan(trial))
    text = analysis_script(spec, title=trial.model.trial.acronym or trial.model.trial.title,
                           source=Path(trial_file).name, name=Path(output).name)
    write_output(output, text, force=force)
    click.echo(f"wrote {output}", err=True)


__all__ = ["simulate_cmd", "analysis_code_cmd", "parse_scenarios", "summary"]
