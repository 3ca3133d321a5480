"""Every command the plan quotes reproduces its number through the real CLI.

The Call specification derives both the Python call and the command line; these
tests run the quoted commands with click's CliRunner (the real commands) for the
three protocols/ examples and variants with a non-default alpha, 2:1
allocation, and each design (individual, partially nested, cluster-randomised).
"""

import json
import shlex
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from trialplan.cli import cli
from trialplan.errors import InputError
from trialplan.model.checks import load_trial_text
from trialplan.planning import build_plan
from trialplan.planning.calls import FUNCTIONS, Call, defaults, flag, number

ROOT = Path(__file__).resolve().parents[2] / "protocols"
FILES = sorted(ROOT.glob("*/trial.yaml"))


def _variants():
    for path in FILES:
        text = path.read_text()
        name = path.parent.name
        yield name, text
        yield f"{name}-alpha", text.replace("alpha: 0.05", "alpha: 0.025")
        yield f"{name}-2to1", text.replace("allocation_ratio: 1", "allocation_ratio: 2")
    # individually randomised, unclustered, with the discharge example's mechanisms
    discharge = (ROOT / "peer-discharge" / "trial.yaml").read_text()
    plain = discharge.replace("kind: partial", "kind: none")
    yield "discharge-unclustered", plain.replace("allocation_ratio: 1", "allocation_ratio: 2")
    yield "discharge-covariates", discharge.replace(
        "      a: 0.3\n      b: 0.3\n",
        "      a: 0.3\n      b: 0.3\n      r2_m: 0.2\n      r2_y: 0.3\n      r2_m2: 0.1\n"
        "      r2_y2: 0.05\n      icc_m: 0.05\n      icc_y: 0.02\n")
    yield "discharge-mc", plain.replace("mediation_test: joint", "mediation_test: mc")
    wards = (ROOT / "cluster-wards" / "trial.yaml").read_text()
    yield "cluster-221", wards.replace(
        "{id: social_network, label: Social network, measure: LSNS-6, timepoints: [baseline, m6]}",
        "{id: social_network, label: Team recovery climate, measure: LSNS-6,\n"
        "       timepoints: [baseline, m6], level: cluster}").replace(
        "  paths:\n", "  paths:\n    - {mechanism: engagement, mediator: social_network, "
        "outcome: wellbeing, a: 0.5, b: 0.3, icc_y: 0.08, r2_y: 0.3, r2_y2: 0.2,\n"
        "       r2_m2: 0.1, source: assumed}\n").replace("allocation_ratio: 1",
                                                          "allocation_ratio: 2")
    pilot = (ROOT / "feasibility-pilot" / "trial.yaml").read_text()
    yield "pilot-survival", pilot.replace("type: binary, role: primary",
                                          "type: time-to-event, role: primary").replace(
        "    control_rate: 0.3\n    intervention_rate: 0.2\n",
        "    hazard_ratio: 0.7\n    event_prob: 0.3\n").replace("alpha: 0.05", "alpha: 0.04")


VARIANTS = [pytest.param(name, text, id=name,
                         marks=[pytest.mark.slow] if name.endswith("-mc") else [])
            for name, text in _variants()]


def _printed(x: float) -> float:
    """A computed number as the CLI's JSON prints it (12 significant digits)."""
    return float(f"{x:.12g}")


def _cli_json(command: str) -> dict:
    args = shlex.split(command)
    assert args[0] == "trialplan"
    r = CliRunner().invoke(cli, args[1:] + ["--json"])
    assert r.exit_code == 0, (command, r.output)
    return json.loads(r.stdout)


@pytest.mark.parametrize("name, text", VARIANTS)
def test_every_quoted_command_reproduces_its_number(name, text):
    plan = build_plan(load_trial_text(text, f"{name}.yaml"))
    primary = plan["primary"]
    got = _cli_json(primary["command"])
    assert got["n_total"] == primary["result"]["n_total"]
    assert got["power"] == _printed(primary["result"]["power"])
    assert "--power" in primary["command"]
    alpha = plan["assumptions"]["alpha"]
    assert (f"--alpha {number(alpha)}" in primary["command"]) == (alpha != 0.05)
    computed = [m for m in plan["mechanisms"] if m["status"] == "computed"]
    if name == "pilot-survival":
        assert "time-to-event" in plan["mechanisms"][0]["reason"]
    else:
        assert computed, "each variant has at least one mechanism with power"
    for m in computed:
        assert ("--n " in m["command"]) or ("--clusters " in m["command"])
        at_n = _cli_json(m["command"])
        assert at_n["power"] == _printed(m["power_at_planned_n"])
        needed = _cli_json(m["command_needed"])
        assert needed["n_total"] == m["n_needed_analysed"]
        if m["function"] == "cluster_mediation":
            assert needed["clusters"] == m["clusters_needed"]
    for g in plan["parallel_mechanisms"]:
        if g["status"] != "computed":
            continue
        got = _cli_json(g["command"])
        assert got["total_indirect"]["power"] == _printed(g["total_indirect"]["power"])
        assert got["all"]["power"] == _printed(g["power_all"])
        assert [e["power"] for e in got["effects"]] == [_printed(e["power"])
                                                       for e in g["effects"]]
    for m in computed:
        assert (f"--alpha {number(alpha)}" in m["command"]) == (alpha != 0.05)


def test_allocation_two_to_one_is_quoted_so_it_reads_back_exactly():
    text = (ROOT / "peer-discharge" / "trial.yaml").read_text().replace(
        "allocation_ratio: 1", "allocation_ratio: 2")
    plan = build_plan(load_trial_text(text, "t.yaml"))
    m = plan["mechanisms"][0]
    assert "--allocation 0.6666666666666666" in m["command"]
    assert float("0.6666666666666666") == 2 / 3
    assert "--ratio 2" in plan["primary"]["command"]


def test_cluster_example_reports_mechanism_power():
    plan = build_plan(load_trial_text((ROOT / "cluster-wards" / "trial.yaml").read_text(),
                                      "c.yaml"))
    m = plan["mechanisms"][0]
    assert m["status"] == "computed" and m["design"] == "2-1-1"
    assert "--cluster-design 2-1-1" in m["command"]
    clusters = plan["final"]["clusters"]
    assert f"--clusters {clusters}" in m["command"]
    # a = b = 0.3 on the residual scale are 0.29668090586048923 and 0.2902930394663639 in
    # total-variance units (1:1 allocation).
    # 19 clusters per arm recruit 40 each; with 20% lost, 32 are analysed per cluster on
    # average, and with CV 0.4 the harmonic mean PowerUpR's n stands for is 32 x 0.84.
    # R: power.med211(esa=0.29668090586048923, esB=0.2902930394663639,
    #    esb1=0.2902930394663639, escp=0, rhom2=.05, rho2=.05, r22=0, r21=0, r2m2=0, r2m1=0,
    #    n=26.88, J=38, p=.5)  -> aB joint 0.337, a 0.942, B 0.358
    #    (with the mean, n=32: aB joint 0.335, a 0.959, B 0.349)
    assert clusters == 38 and "--cluster-size 26.88" in m["command"]
    assert round(m["power_at_planned_n"], 3) == 0.337
    assert round(m["path_power"]["a"], 3) == 0.942 and round(m["path_power"]["b"], 3) == 0.358


def test_harmonic_cluster_size_is_that_of_gamma_sizes():
    """1 / E[1 / n] for gamma sizes with the mean and CV, by numerical integration."""
    from scipy import integrate, stats

    from trialplan.planning.plan import _harmonic_cluster_size

    for mean, cv in ((32, 0.4), (10, 0.7), (8, 0.1)):
        shape = 1 / cv**2
        dist = stats.gamma(shape, scale=mean / shape)
        inv = integrate.quad(lambda x, d=dist: d.pdf(x) / x, 0, np.inf)[0]
        notes: list = []
        assert _harmonic_cluster_size(mean, cv, notes) == pytest.approx(1 / inv, rel=1e-6)
        assert "harmonic mean" in notes[0]
    with pytest.raises(InputError, match="not defined"):
        _harmonic_cluster_size(32, 1.2, [])


_UNSET = getattr(click.core, "UNSET", object())  # click >= 8.2: an option without a default


def _option(command: click.Command, opt: str):
    return next(p for p in command.params if opt in getattr(p, "opts", ()))


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_command_line_defaults_are_the_functions_defaults(function):
    """A Call leaves out arguments equal to the function's default, so the CLI must agree."""
    words = FUNCTIONS[function].words.split()[1:]
    command = cli
    ctx = click.Context(cli)
    for w in words:
        command = command.get_command(ctx, w)
    skip = {"progress", "n", "power", "clusters"}
    for key, default in defaults(function).items():
        if key in skip or (function == "survival" and key == "n"):
            continue
        try:
            param = _option(command, flag(function, key))
        except StopIteration:
            pytest.fail(f"{function}: no option {flag(function, key)} for keyword {key}")
        value = param.default
        if value is _UNSET:
            value = None
        if isinstance(value, str) and isinstance(param.type, click.ParamType) and \
                not isinstance(default, str):
            value = param.type.convert(value, param, ctx)
        if isinstance(value, tuple):
            value = value[0] if len(value) == 1 else value
        if default is None:
            assert value in (None, False), (function, key, value)
        elif isinstance(default, bool):
            assert bool(value) is default, (function, key)
        elif isinstance(default, int | float):
            assert float(value) == float(default), (function, key, value, default)
        else:
            assert value == default, (function, key, value, default)


def test_numbers_read_back_exactly():
    for x in (2 / 3, 0.1 + 0.2, 1e-7, 0.272899472588, 590, 9.0, -0.3):
        assert float(number(x)) == x


def test_a_changed_argument_changes_both_call_and_command():
    c = Call.of("mediation", a=0.3, b=0.3, n=200, alpha=0.025)
    d = c.replace(alpha=0.05)
    assert "--alpha 0.025" in c.command() and "--alpha" not in d.command()
    assert c.run().power < d.run().power


@pytest.mark.parametrize("trial_file", FILES, ids=lambda p: p.parent.name)
def test_commands_quoted_in_the_drafts_are_the_plans_reproduced_commands(trial_file):
    import re

    plan = build_plan(load_trial_text(trial_file.read_text(), "t.yaml"))
    known = {plan["primary"]["command"]}
    for m in plan["mechanisms"]:
        known |= {m.get("command"), m.get("command_needed")}
    known |= {g.get("command") for g in plan["parallel_mechanisms"]}
    # the power at the MCID and at each progression threshold (reproduced in
    # tests/planning/test_uncertainty.py)
    mcid = (plan.get("assurance") or {}).get("mcid") or {}
    known |= {mcid.get("command")}
    for c in (plan.get("feasibility") or {}).get("criteria", []):
        known |= {r.get("command") for r in c.get("implied", [])}
    quoted = set()
    for draft in trial_file.parent.glob("*.md"):
        # inline, or one per line in a code block, wrapped with shell continuation lines
        text = re.sub(r" \\\n\s+", " ", draft.read_text())
        blocks = re.findall(r"^```\n(.*?)^```", text, re.M | re.S)
        lines = [line for b in blocks for line in b.splitlines() if line.startswith("trialplan ")]
        quoted |= {c for c in re.findall(r"`(trialplan [^`]*)`", text) + lines if " --" in c}
    assert quoted, "the drafts quote their calculations"
    assert quoted <= known
    for command in quoted - {plan["primary"]["command"]}:
        m = next((m for m in plan["mechanisms"] if m.get("command") == command), None)
        if m is not None:
            assert _cli_json(command)["power"] == _printed(m["power_at_planned_n"])


def test_the_plan_text_output_quotes_the_same_commands():
    path = ROOT / "peer-discharge" / "trial.yaml"
    r = CliRunner().invoke(cli, ["plan", str(path)])
    assert r.exit_code == 0, r.output
    plan = build_plan(load_trial_text(path.read_text(), "t.yaml"))
    quoted = [line.split("same as: ", 1)[1] for line in r.output.splitlines()
              if "same as: " in line]
    expected = [plan["primary"]["command"]] + [m["command"] for m in plan["mechanisms"]
                                               if m["status"] == "computed"]
    expected += [g["command"] for g in plan["parallel_mechanisms"] if g["status"] == "computed"]
    assert quoted == expected


def test_cluster_level_process_variable_is_sized_as_2_2_1():
    text = next(v.values[1] for v in VARIANTS if v.id == "cluster-221")
    plan = build_plan(load_trial_text(text, "t.yaml"))
    m = next(m for m in plan["mechanisms"] if m["mediator"] == "social_network")
    assert m["status"] == "computed" and m["design"] == "2-2-1"
    for flag_ in ("--cluster-design 2-2-1", "--icc-y 0.08", "--r2-y 0.3", "--r2-y2 0.2",
                  "--r2-m2 0.1", "--allocation 0.6666666666666666"):
        assert flag_ in m["command"]
    assert "--icc-m" not in m["command"]


def test_per_path_icc_and_level_r2_reach_the_command():
    text = next(v.values[1] for v in VARIANTS if v.id == "discharge-covariates")
    plan = build_plan(load_trial_text(text, "t.yaml"))
    hope = next(m for m in plan["mechanisms"] if m["mediator"] == "hope")
    for flag_ in ("--r2-m 0.2", "--r2-y 0.3", "--r2-m2 0.1", "--r2-y2 0.05", "--icc-m 0.05",
                  "--icc-y 0.02"):
        assert flag_ in hope["command"]
    other = next(m for m in plan["mechanisms"] if m["mediator"] == "loneliness")
    assert "--icc-m 0.03" in other["command"] and "--r2-m" not in other["command"]
