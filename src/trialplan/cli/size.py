"""``trialplan size``: closed-form sample size or power for the primary outcome.

Every numeric option takes one value, a comma list (``0.01,0.03``) or an
inclusive range ``start:stop:step``; several values make a grid, answered in
one vectorised call and printed as a table (JSON: a list of objects).
"""

from __future__ import annotations

import math

import click

from trialplan.choices import (
    ALTERNATIVES,
    CLUSTERINGS,
    CONTROL_VARIANCES,
    PROPORTION_METHODS,
    RATE_METHODS,
    SIDES,
    SURVIVAL_METHODS,
)
from trialplan.cli._output import emit_json

MAX_CELLS = 1_000_000


class NumberList(click.ParamType):
    """One number, a comma list, or an inclusive range start:stop:step."""

    name = "number[,number...]|start:stop:step"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        text = str(value).strip()
        try:
            if ":" in text:
                parts = [float(p) for p in text.split(":")]
                if len(parts) != 3:
                    raise ValueError
                start, stop, step = parts
                if step <= 0 or stop < start:
                    self.fail(f"range {text!r} needs start <= stop and a positive step", param,
                              ctx)
                # Counted in floating point before anything is built: an infinite or
                # astronomically long range is refused, not allocated.
                span = (stop - start) / step
                if not math.isfinite(span) or span + 1 > MAX_CELLS:
                    shown = f"{span + 1:,.0f}" if math.isfinite(span) else "infinitely many"
                    self.fail(f"range {text!r} has {shown} values; at most {MAX_CELLS:,}",
                              param, ctx)
                count = int(math.floor(span + 1e-9)) + 1
                values = tuple(round(start + i * step, 12) for i in range(count))
            else:
                if text.count(",") >= MAX_CELLS:
                    self.fail(f"more than {MAX_CELLS:,} values", param, ctx)
                values = tuple(float(p) for p in text.split(","))
        except ValueError:
            self.fail(f"{text!r} is not a number, a comma list or start:stop:step", param, ctx)
        bad = [v for v in values if not math.isfinite(v)]
        if bad:
            self.fail(f"{text!r} contains a non-finite value", param, ctx)
        return values


NUM = NumberList()


class OneValue(click.ParamType):
    """An option that takes a single value: a comma list or range is refused, saying why."""

    def __init__(self, inner: click.ParamType):
        self.inner = inner
        self.name = inner.name

    def convert(self, value, param, ctx):
        if isinstance(value, str) and ("," in value or ":" in value):
            self.fail(f"{value!r}: this option takes one value; grids (comma lists and "
                      f"start:stop:step) are for the numeric assumptions", param, ctx)
        return self.inner.convert(value, param, ctx)

    def get_metavar(self, param, ctx=None):
        return self.inner.get_metavar(param, ctx)

    def shell_complete(self, ctx, param, incomplete):
        return self.inner.shell_complete(ctx, param, incomplete)


def one(kind) -> OneValue:
    """``kind`` (a click type) as an option that refuses lists and ranges with a message."""
    return OneValue(click.types.convert_type(kind))


def _common_options(f):
    options = [
        click.option("--n", type=NUM, help="Participants analysed per arm (control arm when "
                     "--ratio is not 1). Leave out to solve for n."),
        click.option("--power", type=NUM, help="Target power. Leave out to compute power."),
        click.option("--alpha", type=NUM, default="0.05", show_default=True,
                     help="Significance level (before any co-primary correction)."),
        click.option("--sided", type=one(click.Choice(SIDES)), default="two",
                     show_default=True, help="Two-sided test (both tails counted, as R pwr) "
                     "or one-sided (give --alternative)."),
        click.option("--alternative", type=one(click.Choice(ALTERNATIVES)),
                     help="Direction (intervention vs control): required for one-sided tests; "
                     "the side searched for a detectable effect."),
        click.option("--ratio", type=NUM, default="1", show_default=True,
                     help="Allocation ratio intervention : control."),
        click.option("--clustering", type=one(click.Choice(CLUSTERINGS)),
                     default="none", show_default=True,
                     help="cluster: cluster randomised; partial: intervention arm clustered by "
                     "peer worker."),
        click.option("--icc", type=NUM, help="Intra-cluster correlation."),
        click.option("--cluster-size", type=NUM,
                     help="Mean participants allocated per cluster, or per peer worker (the "
                     "caseload); the design effect uses cluster size x (1 - attrition) "
                     "analysed."),
        click.option("--cluster-cv", type=NUM, help="Coefficient of variation of cluster size."),
        click.option("--attrition", type=NUM, default="0", show_default=True,
                     help="Expected loss to follow-up, in [0, 1)."),
        click.option("--co-primary", type=one(click.IntRange(1, 20)), default=1, show_default=True,
                     help="Number of co-primary outcomes (Bonferroni)."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
        click.option("--plot", type=click.Path(dir_okay=False),
                     help="Write power against n to FILE.svg or FILE.png."),
        click.option("--force", is_flag=True, help="Overwrite an existing --plot file."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.group()
def size():
    """Sample size or power for the primary outcome (closed forms).

    Leave out exactly one of --n, --power and the effect to solve for it.
    """


_GRID_KEYS = ("n", "power", "alpha", "ratio", "icc", "cluster_size", "cluster_cv", "attrition")
# Cells computed per block of a grid: big enough to keep numpy busy, small enough that a
# grid of a million cells streams in tens of megabytes.
GRID_BLOCK = 16_384


def _grid(named: dict):
    """Split options into the grid's axes (several values) and fixed values; count the cells."""
    axes = {k: val for k, val in named.items() if isinstance(val, tuple) and len(val) > 1}
    fixed = {k: val[0] if isinstance(val, tuple) else val for k, val in named.items()
             if k not in axes}
    cells = math.prod(len(val) for val in axes.values())
    if cells > MAX_CELLS:
        raise click.UsageError(f"the grid has {cells:,} cells; at most {MAX_CELLS:,}")
    return axes, fixed, cells


def _blocks(fn, axes, fixed, kwargs, cells):
    """The grid's results, a block of consecutive cells at a time (C order, first axis slowest)."""
    import numpy as np

    shape = tuple(len(val) for val in axes.values())
    values = [np.asarray(val, dtype=float) for val in axes.values()]
    for start in range(0, cells, GRID_BLOCK):
        coords = np.unravel_index(np.arange(start, min(start + GRID_BLOCK, cells)), shape)
        cell_args = {name: vals[c] for name, vals, c in zip(axes, values, coords, strict=True)}
        yield fn(**cell_args, **fixed, **kwargs)


def _run(fn, kwargs, design_keys, as_json, plot, force, aliases=None, given=None):
    from trialplan.cli._errors import flag_names

    common = {k: kwargs.pop(k) for k in list(kwargs) if k in _GRID_KEYS + design_keys}
    axes, fixed, cells = _grid(common)
    if axes:
        if plot:
            raise click.UsageError("--plot draws one scenario; give single values, not a grid")
        from trialplan.cli._output import grid_json, grid_table

        write = grid_json if as_json else grid_table
        with flag_names(aliases):
            for text in write(_blocks(fn, axes, fixed, kwargs, cells), list(axes)):
                click.echo(text, nl=False)
        return
    if plot:
        from trialplan.render.plots import check_figure_target

        check_figure_target(plot, force=force)  # before the work
    with flag_names(aliases):
        result = fn(**fixed, **kwargs)
    if plot:
        from trialplan.render.plots import power_curve

        power_curve(fn, {**fixed, **kwargs}, result, plot, force=force)
        click.echo(f"wrote {plot}", err=True)
    if as_json:
        data = result.to_dict()
        data["inputs"].update({key: value for key, (_, value) in (given or {}).items()})
        emit_json(data)
    else:
        from trialplan.cli._output import describe_size

        click.echo(describe_size(result, {label: value for label, value in
                                          (given or {}).values()}))


@size.command()
@click.option("--d", type=NUM, help="Standardised difference (Cohen's d).")
@click.option("--diff", type=NUM, help="Difference in means (with --sd).")
@click.option("--sd", type=NUM, help="Outcome standard deviation (with --diff).")
@click.option("--baseline-corr", type=NUM, help="Baseline-outcome correlation (ANCOVA).")
@click.option("--baselines", type=one(int),
              help="Baseline measurements analysed as their mean (Frison & Pocock); default 1 "
              "with --baseline-corr, 0 without (no adjustment, no df lost).")
@click.option("--follow-ups", type=one(int), default=1, show_default=True,
              help="Follow-up measurements analysed as their mean (Frison & Pocock); more than "
              "1 needs --follow-up-corr.")
@click.option("--follow-up-corr", type=NUM,
              help="Correlation between repeated measurements (follow-ups, or baselines).")
@click.option("--control-variance", type=one(click.Choice(CONTROL_VARIANCES)), default="within",
              show_default=True,
              help="Partial nesting: the control arm's variance is the within-caseload variance "
              "(peer workers add variance; PowerUpR) or the intervention arm's total variance. "
              "--d is on the control arm's SD.")
@click.option("--cluster-autocorr", type=NUM,
              help="Cluster trials with baseline: correlation of a cluster's baseline and "
              "follow-up means (Teerenstra et al. 2012).")
@click.option("--individual-autocorr", type=NUM,
              help="Cluster trials, cohort design: a participant's baseline-follow-up "
              "correlation (leave out for a cross-sectional design).")
@_common_options
def means(d, diff, sd, as_json, plot, force, **kwargs):
    """Two-sample comparison of means (t test, ANCOVA with baseline)."""
    from trialplan.stats import means as fn

    if diff is not None or sd is not None:
        if d is not None:
            raise click.UsageError("give --d, or --diff with --sd, not both")
        if diff is None or sd is None:
            raise click.UsageError("--diff and --sd go together")
        if any(s <= 0 for s in sd):
            raise click.BadParameter("must be positive", param_hint="--sd")
        d = tuple(a / b for a in diff for b in sd) if len(diff) * len(sd) > 1 else (
            diff[0] / sd[0],)
    # A single --diff and --sd are echoed as given beside the d they make.
    given = ({"diff": ("difference in means", diff[0]), "sd": ("outcome SD", sd[0])}
             if diff is not None and len(diff) * len(sd) == 1 else None)
    kwargs["d"] = d
    _run(fn, kwargs, ("d", "baseline_corr", "follow_up_corr", "cluster_autocorr",
                      "individual_autocorr"), as_json, plot, force, given=given)


@size.command()
@click.option("--p1", "--control", "p1", type=NUM, help="Control-arm rate.")
@click.option("--p2", "--intervention", "p2", type=NUM, help="Intervention-arm rate.")
@click.option("--rr", type=NUM, help="Risk ratio, intervention / control (with --control).")
@click.option("--or", "odds_ratio", type=NUM, help="Odds ratio, intervention / control.")
@click.option("--rd", type=NUM, help="Risk difference, intervention - control.")
@click.option("--method", type=one(click.Choice(PROPORTION_METHODS)), default="pooled",
              show_default=True, help="pooled: pooled variance under H0 (R power.prop.test, "
              "rpact); arcsine: Cohen's h (R pwr.2p.test).")
@click.option("--continuity", is_flag=True, help="Fleiss continuity correction.")
@_common_options
def proportions(as_json, plot, force, **kwargs):
    """Two proportions (e.g. readmission within 12 months)."""
    from trialplan.stats import proportions as fn

    if kwargs["p1"] is None:
        raise click.UsageError("give the control-arm rate with --p1 (or --control)")
    _run(fn, kwargs, ("p1", "p2", "rr", "odds_ratio", "rd"), as_json, plot, force)


@size.command()
@click.option("--rate", type=NUM, help="Control-arm event rate per unit of exposure.")
@click.option("--rate2", type=NUM, help="Intervention-arm event rate.")
@click.option("--rr", type=NUM, help="Rate ratio, intervention / control.")
@click.option("--dispersion", type=NUM, default="0", show_default=True,
              help="Negative binomial dispersion k (variance mu + k mu^2); 0 is Poisson.")
@click.option("--exposure", type=NUM, default="1", show_default=True,
              help="Exposure per participant, in the units of --rate.")
@click.option("--method", type=one(click.Choice(RATE_METHODS)), default="alt",
              show_default=True, help="Null variance: that of H1 (Wald) or the pooled rate.")
@_common_options
def rates(as_json, plot, force, **kwargs):
    """Rate ratio for counts (bed days, crises): Poisson or negative binomial."""
    from trialplan.stats import rates as fn

    if kwargs["rate"] is None:
        raise click.UsageError("give the control-arm rate with --rate")
    _run(fn, kwargs, ("rate", "rate2", "rr", "dispersion", "exposure"), as_json, plot, force)


@size.command()
@click.option("--hr", type=NUM, help="Hazard ratio, intervention / control.")
@click.option("--events", "n_events", type=NUM,
              help="Total events (instead of --n) to compute power or the detectable HR.")
@click.option("--method", type=one(click.Choice(SURVIVAL_METHODS)), default="schoenfeld",
              show_default=True, help="Events formula: Schoenfeld (1983) or Freedman (1982).")
@click.option("--event-prob", type=NUM, help="Probability of an event during the trial.")
@click.option("--control-median", type=NUM, help="Control-arm median time to event (months).")
@click.option("--accrual", type=NUM, help="Accrual period (months, uniform).")
@click.option("--follow-up", type=NUM, help="Follow-up after accrual closes (months).")
@click.option("--dropout-rate", type=NUM,
              help="rpact's exponential dropout: share lost by --dropout-time, competing with "
              "the event (instead of --attrition, which divides participants after the events "
              "calculation).")
@click.option("--dropout-time", type=NUM, help="Months by which --dropout-rate are lost.")
@_common_options
def survival(n_events, as_json, plot, force, **kwargs):
    """Time to event (log-rank), events by Schoenfeld or Freedman."""
    from trialplan.stats import survival as fn

    if kwargs["n"] is not None:
        raise click.UsageError("for survival give the total number of events with --events")
    kwargs["n"] = n_events
    _run(fn, kwargs, ("hr", "event_prob", "control_median", "accrual", "follow_up",
                      "dropout_rate", "dropout_time"), as_json, plot, force,
         aliases={"n": "--events"})


__all__ = ["size"]
