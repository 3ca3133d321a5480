"""Formatting of results for the terminal, and safe writing of output files."""

from __future__ import annotations

import json

import click

from trialplan.fileio import write_output  # noqa: F401  (re-exported for commands)

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


def emit_json_rows(rows) -> None:
    """A JSON list with one compact object per line: valid JSON, greppable, and fast."""
    encode = json.JSONEncoder(allow_nan=False).encode
    body = ",\n".join(encode(tidy(row)) for row in rows)
    click.echo(f"[\n{body}\n]" if rows else "[]")


def _num(x, digits=4) -> str:
    if x is None:
        return "-"
    if isinstance(x, int):
        return f"{x:,}"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:.{digits}g}"


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


def describe_size(r) -> str:
    """A readable account of a :class:`trialplan.stats.SizeResult`, assumptions echoed."""
    inp = r.inputs
    lines = [f"{r.design}: {r.method}", f"solved for: {r.solved_for}", ""]
    lines.append("assumptions")
    sided = "two-sided" if inp["sided"] == "two" else f"one-sided ({inp['alternative']})"
    alpha_line = f"  alpha {_num(inp['alpha'])} {sided}"
    if inp.get("co_primary", 1) > 1:
        alpha_line += f", {inp['co_primary']} co-primary outcomes: {_num(r.alpha)} per test"
    lines.append(alpha_line)
    if r.solved_for != "power":
        lines.append(f"  target power {_num(inp['power'])}")
    for key, value in r.effect.items():
        mark = "  (solved)" if r.solved_for == "effect" else ""
        lines.append(f"  {_EFFECT_LABELS.get(key, key)} {_num(value)}{mark}")
    if inp.get("ratio", 1) != 1:
        lines.append(f"  allocation intervention:control {_num(inp['ratio'])}:1")
    if inp.get("baseline_corr") is not None:
        lines.append(f"  baseline-outcome correlation {_num(inp['baseline_corr'])}")
    if inp["clustering"] != "none":
        what = "cluster randomised" if inp["clustering"] == "cluster" else (
            "partially nested (peer workers in the intervention arm)")
        cv = f", CV of size {_num(inp['cluster_cv'])}" if inp.get("cluster_cv") else ""
        lines.append(f"  {what}: ICC {_num(inp['icc'])}, cluster size "
                     f"{_num(inp['cluster_size'])}{cv}")
        lines.append(f"  design effect: control {_num(r.design_effect['control'])}, "
                     f"intervention {_num(r.design_effect['intervention'])}")
    if inp.get("attrition"):
        lines.append(f"  attrition {_num(inp['attrition'])}")
    lines.append("")
    lines.append("result")
    if r.events is not None:
        lines.append(f"  events {_num(r.events)}")
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
    if r.n_exact is not None:
        lines.append(f"  unrounded solution: {r.n_exact:.4f}")
    if r.notes:
        lines.append("")
        lines.append("notes")
        lines.extend(f"  - {n}" for n in r.notes)
    lines.append("")
    lines.append(f"reference: {r.reference}")
    return "\n".join(lines)


def grid_table(rows, varying) -> str:
    """One line per grid cell (``SizeResult.records()``): the varying inputs, then the answer."""
    achieved = "achieved_power" if "power" in varying else "power"
    head = [*varying, achieved, "n_control", "n_intervention", "n_total"]
    solved_effect = bool(rows) and rows[0]["solved_for"] == "effect"
    effect_keys = list(rows[0]["effect"]) if solved_effect else []
    head += effect_keys
    body = []
    for r in rows:
        vals = [_num(r["inputs"][k]) for k in varying]
        vals += [f"{r['power']:.4f}", _num(r["n_per_arm"]["control"]),
                 _num(r["n_per_arm"]["intervention"]), _num(r["n_total"])]
        vals += [_num(r["effect"][k]) for k in effect_keys]
        body.append(vals)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join([fmt.format(*head)] + [fmt.format(*b) for b in body])
