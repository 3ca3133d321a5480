"""``trialplan mediation``: power and sample size to detect a mechanism as an indirect effect."""

from __future__ import annotations

import click

from trialplan.choices import ANALYTIC_TESTS, B_LEVELS, CONTROL_VARIANCES, MEDIATION_TESTS
from trialplan.cli._errors import flag_names
from trialplan.cli._output import emit_json
from trialplan.numfmt import sig as _fmt
from trialplan.stats.cluster_mediation import DESIGNS as CLUSTER_DESIGNS
from trialplan.stats.mediation import ICC_Y_TYPES


@click.command("mediation")
@click.option("--a", "a", type=float, help="Path X -> M (process variable). Leave out with --n "
              "and --power to find the smallest detectable a.")
@click.option("--b", "b", type=float, help="Path M -> Y given X. Leave out to find the smallest "
              "detectable b.")
@click.option("--cprime", type=float, default=0.0, show_default=True,
              help="Direct effect X -> Y given M.")
@click.option("--n", type=int, help="Total participants analysed. Leave out to solve for n.")
@click.option("--power", type=float, help="Target power. Leave out to compute power.")
@click.option("--alpha", type=float, default=0.05, show_default=True, help="Two-sided alpha.")
@click.option("--test", type=click.Choice(MEDIATION_TESTS), default="joint", show_default=True,
              help="Test of the indirect effect.")
@click.option("--simulate", is_flag=True, help="Simulate the joint test instead of its "
              "analytic approximation (mc and bootstrap tests always simulate).")
@click.option("--x", "x", type=click.Choice(["binary", "continuous"]), default="binary",
              show_default=True, help="0/1 treatment, or standard-normal X (as the literature).")
@click.option("--allocation", type=float, default=0.5, show_default=True,
              help="Share allocated to the intervention (binary X).")
@click.option("--scale", type=click.Choice(["residual", "standardized", "total"]),
              default="residual", show_default=True,
              help="Paths in residual-SD units, standardised coefficients, or (with "
              "--cluster-design) PowerUpR's total-variance units.")
@click.option("--r2-m", type=float, default=0.0, show_default=True,
              help="Share of M's residual variance explained by baseline covariates (with "
              "partial nesting: of its individual-level variance).")
@click.option("--r2-y", type=float, default=0.0, show_default=True,
              help="Share of Y's residual variance explained by baseline covariates (with "
              "partial nesting: of its individual-level variance).")
@click.option("--r2-m2", type=float, default=0.0, show_default=True,
              help="Partial nesting or --cluster-design: share of M's level-2 (peer-worker or "
              "cluster) variance explained by covariates (PowerUpR r2m2_trt, r2m2); 0 for a "
              "baseline taken before allocation to a peer worker.")
@click.option("--r2-y2", type=float, default=0.0, show_default=True,
              help="Partial nesting or --cluster-design: share of Y's level-2 (peer-worker or "
              "cluster) variance explained by covariates.")
@click.option("--covariates", type=int,
              help="Number of covariates (df); default 1 with --r2-m or --r2-y.")
@click.option("--icc-m", type=float, help="ICC of M by peer worker (intervention arm).")
@click.option("--icc-y", type=float, help="ICC of Y by peer worker (intervention arm); by "
              "default conditional on M (the ICC of Y's residual given M), see --icc-y-type.")
@click.option("--icc-y-type", type=click.Choice(ICC_Y_TYPES),
              default="conditional", show_default=True,
              help="conditional: --icc-y is the ICC of Y given M; unconditional: Y's ICC before "
              "M is accounted for, M's share derived from b (PowerUpR's default).")
@click.option("--cluster-size", type=float, help="Peer-worker caseload analysed (partial "
              "nesting).")
@click.option("--control-variance", type=click.Choice(CONTROL_VARIANCES), default="within",
              show_default=True,
              help="Partial nesting: the control arm's variance is the within-caseload variance "
              "(PowerUpR) or the intervention arm's total variance; a and b are in control-arm "
              "SD units.")
@click.option("--b-level", type=click.Choice(B_LEVELS), default="caseload",
              show_default=True, help="Partial nesting: estimate b between caseloads (Kelcey et "
              "al. 2020) or within caseloads and controls.")
@click.option("--outcome", type=click.Choice(["continuous", "binary"]), default="continuous",
              show_default=True, help="Binary: logistic b path (analytic tests).")
@click.option("--base-rate", type=float, help="Binary outcome: rate in the control arm.")
@click.option("--outcome-rate", type=float, help="Binary outcome: overall rate at the planned "
              "effect, for the b path's variance (default --base-rate).")
@click.option("--cluster-design", type=click.Choice(CLUSTER_DESIGNS),
              help="Cluster-randomised trial: process variable on individuals (2-1-1) or on the "
              "cluster (2-2-1); give --clusters or --power, --cluster-size, --icc-y (and --icc-m "
              "for 2-1-1).")
@click.option("--clusters", type=int, help="With --cluster-design: clusters randomised. Leave "
              "out to solve for them.")
@click.option("--b-within", type=float, help="2-1-1: the within-cluster path b1 (default --b, "
              "which is then the between-cluster path B).")
@click.option("--reps", type=int, default=1000, show_default=True,
              help="Simulation replicates.")
@click.option("--draws", type=int, default=5000, show_default=True,
              help="Monte Carlo draws per replicate (mc test).")
@click.option("--boot", type=int, default=1000, show_default=True,
              help="Bootstrap resamples per replicate.")
@click.option("--seed", type=int, default=20261126, show_default=True, help="Simulation seed.")
@click.option("--mediator", "mediator_specs", multiple=True, metavar="NAME:A:B",
              help="Several mediators: repeat for each (2 to 4), e.g. --mediator hope:0.3:0.2.")
@click.option("--paths", "paths_file", type=click.Path(dir_okay=False),
              help="Several mediators from a spec file (correlations, a serial chain).")
@click.option("--serial", type=float, help="With two --mediator: path d from the first to the "
              "second (a chain).")
@click.option("--correlation", type=float, help="With --mediator: one residual correlation "
              "between every pair of mediators.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Write power against n (FILE.svg or FILE.png).")
@click.option("--compare", is_flag=True, help="Answer the same question with every analytic "
              "test (joint, sobel, aroian, vsm): a table, or curves with --plot.")
@click.option("--force", is_flag=True, help="Overwrite an existing --plot file.")
@click.option("--quiet", is_flag=True, help="No progress messages on stderr.")
def mediation_cmd(as_json, plot, compare, force, quiet, mediator_specs, paths_file, serial,
                  correlation, **kwargs):
    """Power or total n to detect a mechanism (X -> M -> Y) as an indirect effect.

    \b
    Examples:
      trialplan mediation --a 0.3 --b 0.3 --power 0.8
      trialplan mediation --a 0.3 --b 0.3 --n 590 --test bootstrap
      trialplan mediation --b 0.3 --n 400 --power 0.8      # smallest detectable a
    """
    from trialplan.stats.mediation import mediation

    if mediator_specs or paths_file:
        _multi(kwargs, mediator_specs, paths_file, serial, correlation, as_json, plot, quiet)
        return
    if serial is not None or correlation is not None:
        raise click.UsageError("--serial and --correlation go with --mediator")
    cluster_only = {k: kwargs.pop(k) for k in ("cluster_design", "clusters", "b_within")}
    if cluster_only["cluster_design"] is not None:
        if compare:
            raise click.UsageError("--compare is not available with --cluster-design")
        _cluster(kwargs, cluster_only, as_json, plot)
        return
    given = [k for k, val in cluster_only.items() if val not in (None, 0.0)]
    if given:
        raise click.UsageError(f"--{given[0].replace('_', '-')} goes with --cluster-design")
    if kwargs["scale"] == "total":
        raise click.UsageError("--scale total goes with --cluster-design")
    kwargs = {k: val for k, val in kwargs.items()}
    kwargs["progress"] = _progress(quiet)
    with flag_names():
        result = mediation(**kwargs)
    if compare and not plot:
        rows = _compare(mediation, kwargs)
        if as_json:
            emit_json({"result": result.to_dict(), "comparison": rows})
        else:
            click.echo(describe(result) + "\n\n" + compare_table(rows))
        return
    if plot:
        from trialplan.render.plots import mediation_curve

        tests = [result.test]
        if compare:
            tests += [t for t in ("joint", "sobel", "aroian") if t != result.test]
        args = {k: val for k, val in kwargs.items() if k != "progress"}
        mediation_curve(mediation, args, result, plot, tests=tests, force=force)
        click.echo(f"wrote {plot}", err=True)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(describe(result))


_CLUSTER_IGNORED = {"n": None, "simulate": False, "x": "binary", "covariates": None,
                    "b_level": "caseload", "outcome": "continuous", "base_rate": None,
                    "outcome_rate": None, "reps": 1000, "draws": 5000, "boot": 1000,
                    "seed": 20261126, "icc_y_type": "conditional", "control_variance": "within"}


def _cluster(kwargs, extra, as_json, plot):
    from trialplan.stats.cluster_mediation import TESTS as CLUSTER_TESTS
    from trialplan.stats.cluster_mediation import cluster_mediation

    for key, default in _CLUSTER_IGNORED.items():
        if kwargs[key] != default:
            hint = "use --clusters" if key == "n" else "it does not apply"
            raise click.UsageError(f"--{key.replace('_', '-')} does not go with "
                                   f"--cluster-design ({hint})")
    if plot:
        raise click.UsageError("--plot is not available with --cluster-design")
    if kwargs["test"] not in CLUSTER_TESTS:
        raise click.UsageError(f"with --cluster-design the test is {' or '.join(CLUSTER_TESTS)}")
    if kwargs["scale"] == "standardized":
        raise click.UsageError("with --cluster-design give paths as --scale residual or total")
    if kwargs["cluster_size"] is None or kwargs["icc_y"] is None:
        raise click.UsageError("--cluster-design needs --cluster-size and --icc-y")
    with flag_names({"r2_m1": "--r2-m", "r2_y1": "--r2-y", "design": "--cluster-design"}):
        result = _run_cluster(cluster_mediation, kwargs, extra)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(describe_cluster(result))


def _run_cluster(cluster_mediation, kwargs, extra):
    return cluster_mediation(
        extra["cluster_design"], kwargs["a"], kwargs["b"], b_within=extra["b_within"],
        cprime=kwargs["cprime"], clusters=extra["clusters"], power=kwargs["power"],
        cluster_size=kwargs["cluster_size"], icc_y=kwargs["icc_y"], icc_m=kwargs["icc_m"],
        r2_m1=kwargs["r2_m"], r2_m2=kwargs["r2_m2"], r2_y1=kwargs["r2_y"], r2_y2=kwargs["r2_y2"],
        allocation=kwargs["allocation"], alpha=kwargs["alpha"], test=kwargs["test"],
        scale=kwargs["scale"])


def describe_cluster(r) -> str:
    inp = r.inputs
    lines = [f"mediation: {r.method}", f"solved for: {r.solved_for}", "", "assumptions"]
    paths = f"a {_fmt(r.a)}, b {_fmt(r.b)}"
    if r.b_within is not None:
        paths = f"a {_fmt(r.a)}, B (between clusters) {_fmt(r.b)}, b1 (within) " \
                f"{_fmt(r.b_within)}"
    lines.append(f"  paths (total-variance units): {paths}, c' {_fmt(r.cprime)}; indirect "
                 f"effect {_fmt(r.indirect_effect)}")
    icc = f"ICC of Y {inp['icc_y']:g}"
    if inp["icc_m"] is not None:
        icc = f"ICC of M {inp['icc_m']:g}, " + icc
    lines.append(f"  clusters of {r.cluster_size:g}; {icc}; {inp['allocation']:g} of clusters "
                 "to the intervention")
    lines.append(f"  alpha {inp['alpha']:g} two-sided")
    if r.solved_for != "power":
        lines.append(f"  target power {inp['power']:g}")
    lines += ["", "result", f"  clusters: {r.clusters:,} ({_fmt(r.n_total)} participants)",
              f"  power ({r.test}): {r.power:.4f}",
              "  power of the separate path tests: "
              + ", ".join(f"{k} {v:.4f} (df {_fmt(r.df[k])})" for k, v in r.path_power.items())]
    if r.notes:
        lines += ["", "notes"] + [f"  - {n}" for n in r.notes]
    lines += ["", f"reference: {r.reference}"]
    return "\n".join(lines)



def _progress(quiet):
    from trialplan.cli._progress import Progress

    return Progress(quiet=quiet)


def _compare(mediation, kwargs) -> list[dict]:
    """The same question (n, power or detectable path) answered by each analytic test."""
    from trialplan.errors import TrialplanError

    rows = []
    for test in ANALYTIC_TESTS:
        args = {**kwargs, "test": test, "simulate": False, "progress": None}
        try:
            r = mediation(**args)
        except TrialplanError as exc:
            rows.append({"test": test, "error": str(exc)})
            continue
        rows.append({"test": test, "n_total": r.n_total, "power": r.power,
                     "a": r.a, "b": r.b, "method": r.method})
    return rows


def compare_table(rows) -> str:
    lines = ["comparison of analytic tests (same question)",
             f"  {'test':<8} {'n_total':>8} {'power':>7}  {'a':>7} {'b':>7}"]
    for row in rows:
        if "error" in row:
            lines.append(f"  {row['test']:<8} {row['error']}")
            continue
        lines.append(f"  {row['test']:<8} {row['n_total']:>8,} {row['power']:>7.4f}  "
                     f"{row['a']:>7.4g} {row['b']:>7.4g}")
    return "\n".join(lines)


def _parse_mediator(text):
    parts = text.split(":")
    if len(parts) != 3:
        raise click.BadParameter(f"expected NAME:A:B; got {text!r}", param_hint="--mediator")
    try:
        return parts[0], float(parts[1]), float(parts[2])
    except ValueError:
        raise click.BadParameter(f"A and B must be numbers; got {text!r}",
                                 param_hint="--mediator") from None


_SINGLE_ONLY = ("a", "b", "scale", "r2_m", "r2_y", "r2_m2", "r2_y2", "covariates",
                "outcome_rate", "cluster_design", "clusters", "b_within", "icc_y_type")
# partial nesting applies to several mediators as to one
_NESTING = ("icc_m", "icc_y", "cluster_size", "control_variance", "b_level")


def _multi(kwargs, specs, paths_file, serial, correlation, as_json, plot, quiet):
    from trialplan.stats.multimed import mediation_multi

    if specs and paths_file:
        raise click.UsageError("give --mediator options or --paths, not both")
    used = [k for k in _SINGLE_ONLY if kwargs.get(k) not in (None, 0.0, "residual",
                                                             "caseload", "conditional",
                                                             "within")]
    if used:
        raise click.UsageError(f"--{used[0].replace('_', '-')} applies to one mediator; with "
                               "several, give each mediator's paths in --mediator or --paths")
    if plot:
        raise click.UsageError("--plot draws one mediator; leave it out with several")
    if paths_file:
        from trialplan.model.pathspec import load_paths

        args = load_paths(paths_file)
        if kwargs.get("outcome") == "binary" or kwargs.get("base_rate") is not None:
            args["outcome"] = kwargs.get("outcome", args["outcome"])
            args["base_rate"] = kwargs.get("base_rate") or args["base_rate"]
    else:
        meds = [_parse_mediator(t) for t in specs]
        k = len(meds)
        corr = None
        if correlation is not None:
            corr = [[1.0 if i == j else correlation for j in range(k)] for i in range(k)]
        args = dict(mediators=meds, correlation=corr, serial=serial, cprime=kwargs["cprime"],
                    outcome=kwargs["outcome"], base_rate=kwargs["base_rate"])
    if kwargs["test"] not in ("joint", "mc", "bootstrap"):
        raise click.UsageError("with several mediators the test is joint, mc or bootstrap")
    with flag_names():
        result = mediation_multi(
            **args, n=kwargs["n"], power=kwargs["power"], alpha=kwargs["alpha"],
            test=kwargs["test"], simulate=kwargs["simulate"], x=kwargs["x"],
            allocation=kwargs["allocation"], reps=kwargs["reps"], draws=kwargs["draws"],
            boot=kwargs["boot"], seed=kwargs["seed"], progress=_progress(quiet),
            **{k: kwargs[k] for k in _NESTING})
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(describe_multi(result))


def describe_multi(r) -> str:
    lines = [f"mediation, several mediators: {r.method}", f"solved for: {r.solved_for}", "",
             "assumptions"]
    for m in r.mediators:
        lines.append(f"  {m['name']}: a {_fmt(m['a'])}, b {_fmt(m['b'])}")
    if r.serial is not None:
        lines.append(f"  chain: {r.mediators[0]['name']} -> {r.mediators[1]['name']}, "
                     f"d {_fmt(r.serial)}")
    off = [(i, j, r.correlation[i][j]) for i in range(len(r.correlation))
           for j in range(i + 1, len(r.correlation)) if r.correlation[i][j]]
    for i, j, val in off:
        lines.append(f"  residual correlation {r.mediators[i]['name']}-"
                     f"{r.mediators[j]['name']}: {_fmt(val)}")
    lines.append(f"  outcome: {r.outcome}" + (f", control-arm rate {_fmt(r.base_rate)}"
                                              if r.base_rate is not None else ""))
    if r.inputs.get("cluster_size") is not None:
        i = r.inputs
        lines.append(f"  partially nested: ICC {_fmt(i['icc_m'])} (mediators), "
                     f"{_fmt(i['icc_y'])} (outcome), caseload {_fmt(i['cluster_size'])} "
                     f"analysed; control-arm variance {i['control_variance']}; b estimated "
                     + ("within caseloads and the control arm" if i["b_level"] == "individual"
                        else "between caseloads"))
    lines += ["", "result", f"  total analysed: {r.n_total:,}"]
    if r.n_per_arm:
        lines.append(f"  per arm: control {r.n_per_arm['control']:,}, intervention "
                     f"{r.n_per_arm['intervention']:,}")

    def line(label, d):
        if d["power"] is None:
            return f"  {label}: needs simulation"
        out = f"  {label}: power {d['power']:.4f}"
        if d.get("mc_se") is not None:
            out += f" (MC SE {d['mc_se']:.4f})"
        if d.get("n_needed") is not None:
            out += f"; n for the target {d['n_needed']:,}"
        return out

    for e in r.effects:
        lines.append(line(e["path"], e))
    lines.append(line("all of them", r.all))
    if r.total_indirect is not None:
        t = r.total_indirect
        lines.append(f"  total indirect effect {_fmt(t['estimate'])} (SE {_fmt(t['se'])}): "
                     f"power {t['power']:.4f}")
    lines.append(line("at least one", r.any))
    if r.reps:
        lines.append(f"  {r.reps:,} replicates, seed {r.seed}")
    if r.notes:
        lines += ["", "notes"] + [f"  - {n}" for n in r.notes]
    lines += ["", f"reference: {r.reference}"]
    return "\n".join(lines)


def describe(r) -> str:
    inp = r.inputs
    lines = [f"mediation: {r.method}", f"solved for: {r.solved_for}", "", "assumptions"]
    given = "residual-SD units" if r.scale == "residual" else "standardised, converted"
    lines.append(f"  paths (residual scale; given as {given}): a {_fmt(r.a)}, b {_fmt(r.b)}, "
                 f"c' {_fmt(r.cprime)}; indirect effect ab {_fmt(r.indirect_effect)}")
    if r.x == "binary":
        lines.append(f"  X: 0/1 treatment, {inp['allocation']:g} allocated to the intervention")
    else:
        lines.append("  X: standard normal")
    lines.append(f"  alpha {inp['alpha']:g} two-sided")
    if r.solved_for != "power":
        lines.append(f"  target power {inp['power']:g}")
    if inp.get("cluster_size"):
        lines.append(f"  partially nested: caseload {inp['cluster_size']:g}, ICC of M "
                     f"{inp['icc_m']:g}, ICC of Y {inp['icc_y']:g}")
    lines += ["", "result"]
    lines.append(f"  total analysed: {r.n_total:,}")
    if r.n_per_arm:
        lines.append(f"  per arm: control {r.n_per_arm['control']:,}, intervention "
                     f"{r.n_per_arm['intervention']:,}")
    if r.peer_workers is not None:
        lines.append(f"  peer workers (intervention arm): {r.peer_workers}")
    label = "achieved power" if r.solved_for == "n" else "power"
    pw = f"  {label} ({r.test}): {r.power:.4f}"
    if r.mc_se is not None:
        pw += f"  (Monte Carlo SE {r.mc_se:.4f}; {r.reps:,} replicates, seed {r.seed})"
    lines.append(pw)
    lines.append(f"  power of the separate path tests: a {r.path_power['a']:.4f}, "
                 f"b {r.path_power['b']:.4f}")
    if r.notes:
        lines += ["", "notes"] + [f"  - {n}" for n in r.notes]
    lines += ["", f"reference: {r.reference}"]
    return "\n".join(lines)


__all__ = ["mediation_cmd"]
