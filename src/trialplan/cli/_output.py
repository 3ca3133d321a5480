"""Formatting of results for the terminal, and safe writing of output files."""

from __future__ import annotations

import json
import math
import re

import click
import numpy as np

from trialplan.fileio import write_output  # noqa: F401  (re-exported for commands)
from trialplan.numfmt import sig as _num

# Significant digits of computed numbers in JSON output: enough for any planning use, and
# free of binary noise (0.29, not 0.29000000000000004).  Inputs are echoed as given.
JSON_DIGITS = 12
_AS_GIVEN = frozenset({"inputs", "arguments"})


def tidy(value, digits: int = JSON_DIGITS):
    """``value`` with every computed float rounded to ``digits`` significant digits.

    Values under an ``inputs`` or ``arguments`` key are what the user gave (or the
    exact call that was made) and are left as they are.
    """
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: v if k in _AS_GIVEN else tidy(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [tidy(v, digits) for v in value]
    return value


def json_text(data) -> str:
    """The JSON document every command prints or writes (``--json``, ``-o plan.json``)."""
    return json.dumps(tidy(data), indent=2, sort_keys=False, allow_nan=False) + "\n"


def emit_json(data) -> None:
    click.echo(json_text(data), nl=False)


_EFFECT_LABELS = {
    "d": "standardised difference d",
    "p_control": "control rate",
    "p_intervention": "intervention rate",
    "risk_difference": "risk difference",
    "risk_ratio": "risk ratio",
    "odds_ratio": "odds ratio",
    "hazard_ratio": "hazard ratio",
    "log_hazard_ratio": "log hazard ratio",
    "rate_control": "control rate",
    "rate_intervention": "intervention rate",
    "rate_ratio": "rate ratio",
}


# Design inputs echoed under "assumptions", with the words and units a reader expects.
_DESIGN_INPUTS = (
    ("baseline_corr", "baseline-outcome correlation"),
    ("baselines", "baseline measurements"),
    ("follow_ups", "follow-up measurements (analysed as their mean)"),
    ("follow_up_corr", "correlation between repeated measurements"),
    ("cluster_autocorr", "cluster autocorrelation (baseline and follow-up cluster means)"),
    ("individual_autocorr", "individual autocorrelation (cohort design)"),
    ("method", "method"),
    ("continuity", "Fleiss continuity correction"),
    ("event_prob", "probability of an event during the trial"),
    ("control_median", "control-arm median time to event (months)"),
    ("accrual", "accrual period, uniform (months)"),
    ("follow_up", "follow-up after accrual closes (months)"),
    ("dispersion", "negative binomial dispersion k (0: Poisson)"),
    ("exposure", "exposure per participant (units of the rate)"),
)
# The effect keys a user gives when the detectable effect is solved for.
_GIVEN_WHEN_EFFECT_SOLVED = {"p_control", "rate_control"}


def describe_size(r, given=None) -> str:
    """A readable account of a :class:`trialplan.stats.SizeResult`: every input it used echoed.

    ``given`` holds inputs the command line converted before the call (``--diff`` and
    ``--sd`` become d), echoed as the user gave them, by label.
    """
    inp = r.inputs
    lines = [f"{r.design}: {r.method}", f"solved for: {r.solved_for}", ""]
    lines.append("assumptions")
    for label, value in (given or {}).items():
        lines.append(f"  {label} {_num(value)}")
    sided = "two-sided" if inp["sided"] == "two" else f"one-sided ({inp['alternative']})"
    alpha_line = f"  alpha {_num(inp['alpha'])} {sided}"
    if inp.get("co_primary", 1) > 1:
        alpha_line += f", {inp['co_primary']} co-primary outcomes: {_num(r.alpha)} per test"
    lines.append(alpha_line)
    if r.solved_for != "power":
        lines.append(f"  target power {_num(inp['power'])}")
    if inp.get("n") is not None:
        what = "total events" if r.design == "survival" else (
            "participants analysed per arm" if inp.get("ratio", 1) == 1 else
            "participants analysed in the control arm")
        lines.append(f"  {what} {_num(inp['n'])}")
    solved_effect = []
    for key, value in r.effect.items():
        if r.solved_for == "effect" and key not in _GIVEN_WHEN_EFFECT_SOLVED:
            solved_effect.append(f"  {_EFFECT_LABELS.get(key, key)} {_num(value)}")
        else:
            lines.append(f"  {_EFFECT_LABELS.get(key, key)} {_num(value)}")
    if inp.get("ratio", 1) != 1:
        lines.append(f"  allocation intervention:control {_num(inp['ratio'])}:1")
    for key, label in _DESIGN_INPUTS:
        value = inp.get(key)
        if value is None or (key in ("baselines", "follow_ups") and
                             inp.get("baseline_corr") is None and value == 1):
            continue
        if isinstance(value, bool):
            if value:
                lines.append(f"  {label}")
            continue
        lines.append(f"  {label} {value if isinstance(value, str) else _num(value)}")
    if inp.get("dropout_rate") is not None:
        lines.append(f"  exponential dropout (as rpact): {_num(inp['dropout_rate'])} lost by "
                     f"month {_num(inp['dropout_time'])} in each arm")
    if inp["clustering"] != "none":
        what = "cluster randomised" if inp["clustering"] == "cluster" else (
            "partially nested (peer workers in the intervention arm)")
        cv = f", CV of size {_num(inp['cluster_cv'])}" if inp.get("cluster_cv") else ""
        analysed = inp["cluster_size"] * (1.0 - (inp.get("attrition") or 0.0))
        lines.append(f"  {what}: ICC {_num(inp['icc'])}, cluster size "
                     f"{_num(inp['cluster_size'])} allocated ({_num(analysed)} analysed){cv}")
        if inp.get("control_variance"):
            lines.append(f"  control arm variance: {inp['control_variance']} (partial nesting "
                         "convention)")
        lines.append(f"  design effect: control {_num(r.design_effect['control'])}, "
                     f"intervention {_num(r.design_effect['intervention'])}")
    lines.append(f"  attrition {_num(inp.get('attrition') or 0)}")
    events_only = r.design == "survival" and inp.get("event_prob") is None and inp.get(
        "control_median") is None
    lines.append("")
    lines.append("result")
    if solved_effect:
        lines.append("  detectable effect")
        lines.extend("  " + line for line in solved_effect)
    if r.events is not None:
        lines.append(f"  events {_num(r.events)}")
    if events_only:
        lines.append("  participants: not computed. These numbers are EVENTS, not participants: "
                     "give --event-prob, or --control-median with --accrual and --follow-up, "
                     "to turn events into participants")
    else:
        a = r.n_analysed_per_arm
        lines.append(f"  analysed per arm: control {_num(a['control'])}, "
                     f"intervention {_num(a['intervention'])}")
        p = r.n_per_arm
        lines.append(f"  recruit per arm: control {_num(p['control'])}, "
                     f"intervention {_num(p['intervention'])}")
        lines.append(f"  total to recruit: {_num(r.n_total)}")
    if r.clusters_per_arm:
        lines.append(f"  clusters per arm: control {_num(r.clusters_per_arm['control'])}, "
                     f"intervention {_num(r.clusters_per_arm['intervention'])}")
    if r.peer_workers is not None:
        lines.append(f"  peer workers (intervention arm): {_num(r.peer_workers)}")
    label = "achieved power" if r.solved_for == "n" else "power"
    lines.append(f"  {label}: {r.power:.4f}")
    if r.n_exact is not None and not events_only:
        lines.append(f"  unrounded solution (analysed, control arm): {r.n_exact:.4f}")
    if r.notes:
        lines.append("")
        lines.append("notes")
        lines.extend(f"  - {n}" for n in r.notes)
    lines.append("")
    lines.append(f"reference: {r.reference}")
    return "\n".join(lines)


_ROW_FIELDS = ("n_per_arm", "n_analysed_per_arm", "n_total", "power", "effect", "alpha",
               "design_effect", "events", "clusters_per_arm", "peer_workers", "n_exact")
_HEADER_FIELDS = ("design", "solved_for", "method", "reference")


def _leaves(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif value is not None:
        yield path, value


def _json_column(values, size: int, *, as_given: bool) -> tuple[list, str]:
    """One block's values of a leaf, and the format spec that writes each as JSON.

    Ints as ints, inputs as given (shortest round-trip repr), computed floats to
    JSON_DIGITS significant digits; the formatting itself happens in the row
    template's single ``str.format`` call.  Non-finite values become null.
    """
    arr = np.broadcast_to(np.asarray(values), (size,))
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64).tolist(), ""
    arr = arr.astype(float)
    spec = "!r" if as_given else f":.{JSON_DIGITS}g"
    if np.isfinite(arr).all():
        return arr.tolist(), spec
    text = "{" + spec.replace(":", "0:").replace("!", "0!") + "}"
    return [text.format(v) if math.isfinite(v) else "null" for v in arr.tolist()], ""


def _template(paths, specs) -> str:
    """A ``str.format`` template writing one compact JSON object, a slot per leaf path."""
    tree: dict = {}
    for i, path in enumerate(paths):
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = f"@@{i}@@"
    text = json.dumps(tree).replace("{", "{{").replace("}", "}}")
    return re.sub(r'"@@(\d+)@@"', lambda m: "{" + m.group(1) + specs[int(m.group(1))] + "}",
                  text)


# Per-cell answers that are the same in every cell unless one of these inputs varies:
# they are written once in the grid's header instead.
_CONSTANT_UNLESS = {"alpha": {"alpha"}, "design_effect": {"icc", "cluster_size", "cluster_cv"}}


def grid_json(chunks, varying):
    """A grid as streamed JSON: constants once under ``grid``, then one compact row per cell.

    ``chunks`` yields :class:`~trialplan.stats.SizeResult` objects for consecutive
    blocks of cells (1-d).  A row holds the varying inputs (as given) and the
    per-cell answer; what every cell shares (design, method, reference, notes,
    the inputs that do not vary, and answers that depend on none of the varying
    inputs) is written once, before the rows.  Memory stays that of one block,
    whatever the size of the grid.
    """
    from trialplan.stats.result import _plain

    fields = [f for f in _ROW_FIELDS
              if f not in _CONSTANT_UNLESS or _CONSTANT_UNLESS[f] & set(varying)]
    started = False
    for r in chunks:
        size = r.shape[0]
        leaves = [(("inputs", k), r.inputs[k], True) for k in varying]
        leaves += [((f, *p), v, False) for f in fields for p, v in _leaves(getattr(r, f))]
        if not started:
            header = {f: getattr(r, f) for f in _HEADER_FIELDS}
            header["varying"] = list(varying)
            header["inputs"] = _plain({k: v for k, v in r.inputs.items() if k not in varying})
            for f in _ROW_FIELDS:
                if f not in fields:
                    header[f] = tidy(_plain(_first(getattr(r, f))))
            header["notes"] = list(r.notes)
            yield '{"grid": ' + json.dumps(header, allow_nan=False) + ', "rows": [\n'
        columns = [_json_column(v, size, as_given=given) for _, v, given in leaves]
        template = _template([path for path, _, _ in leaves], [spec for _, spec in columns])
        rows = zip(*(values for values, _ in columns), strict=True)
        yield (",\n" if started else "") + ",\n".join(template.format(*row) for row in rows)
        started = True
    yield "\n]}\n" if started else '{"grid": null, "rows": []}\n'


def _first(value):
    if isinstance(value, dict):
        return {k: _first(v) for k, v in value.items()}
    arr = np.asarray(value)
    return arr.ravel()[0].item() if arr.ndim else value


def grid_table(chunks, varying):
    """A grid as a streamed text table: the varying inputs, then the answer, a line per cell."""
    achieved = "achieved_power" if "power" in varying else "power"
    widths = None
    for r in chunks:
        size = r.shape[0]
        head = [*varying, achieved, "n_control", "n_intervention", "n_total"]
        cols = [[_num(v) for v in np.broadcast_to(r.inputs[k], (size,)).tolist()]
                for k in varying]
        cols.append([f"{p:.4f}" for p in np.broadcast_to(r.power, (size,)).tolist()])
        for value in (r.n_per_arm["control"], r.n_per_arm["intervention"], r.n_total):
            cols.append([_num(int(v)) for v in np.broadcast_to(value, (size,)).tolist()])
        if r.solved_for == "effect":
            head += list(r.effect)
            cols += [[_num(v) for v in np.broadcast_to(val, (size,)).tolist()]
                     for val in r.effect.values()]
        if widths is None:
            widths = [max(len(h), *(len(x) for x in col)) for h, col in zip(head, cols,
                                                                            strict=True)]
            fmt = "  ".join(f"{{:>{w}}}" for w in widths)
            yield fmt.format(*head) + "\n"
        yield "".join(fmt.format(*row) + "\n" for row in zip(*cols, strict=True))
