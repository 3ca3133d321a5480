"""The command-line surface as a newcomer meets it: help for every option, consistent names."""

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from trialplan.cli import cli


def _commands(group=cli, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
            if command.params:
                yield (*prefix, name), command
        else:
            yield (*prefix, name), command


COMMANDS = list(_commands())


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=lambda c: " ".join(c)
                         if isinstance(c, tuple) else "")
def test_every_option_has_help_text(path, command):
    missing = [p.opts[0] for p in command.params
               if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert not missing, f"trialplan {' '.join(path)}: no help text for {', '.join(missing)}"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=lambda c: " ".join(c)
                         if isinstance(c, tuple) else "")
def test_a_trial_file_argument_is_called_trial_file(path, command):
    for p in command.params:
        if isinstance(p, click.Argument) and p.name in ("plan", "file", "path_"):
            pytest.fail(f"trialplan {' '.join(path)}: argument {p.name.upper()} should be "
                        "TRIAL_FILE")


def test_model_infers_the_format_from_the_extension_or_refuses_a_mismatch(tmp_path):
    from trialplan.model.checks import example_text

    trial = tmp_path / "trial.yaml"
    trial.write_text(example_text())
    runner = CliRunner()
    out = tmp_path / "model.json"
    r = runner.invoke(cli, ["model", str(trial), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text().lstrip().startswith("{")
    r = runner.invoke(cli, ["model", str(trial), "--format", "svg", "-o",
                            str(tmp_path / "model.png")])
    assert r.exit_code == 2 and "does not match" in r.output
    r = runner.invoke(cli, ["model", str(trial), "-o", str(tmp_path / "model.xyz")])
    assert r.exit_code == 2 and "cannot tell the format" in r.output
    assert not (tmp_path / "model.xyz").exists()


def test_proportions_takes_intervention_beside_control():
    runner = CliRunner()
    a = runner.invoke(cli, ["size", "proportions", "--control", "0.38", "--intervention",
                            "0.29", "--power", "0.9", "--json"])
    b = runner.invoke(cli, ["size", "proportions", "--p1", "0.38", "--p2", "0.29", "--power",
                            "0.9", "--json"])
    assert a.exit_code == 0 and a.output == b.output


def test_size_echoes_every_input_and_labels_only_solved_values_as_solved():
    runner = CliRunner()
    out = runner.invoke(cli, ["size", "rates", "--rate", "2", "--rr", "0.8", "--dispersion",
                              "0.5", "--exposure", "12", "--power", "0.8"]).output
    assumptions = out.split("\nresult")[0]
    assert "dispersion k (0: Poisson) 0.5" in assumptions
    assert "exposure per participant (units of the rate) 12" in assumptions
    out = runner.invoke(cli, ["size", "proportions", "--p1", "0.3", "--n", "200", "--power",
                              "0.8"]).output
    assumptions, result = out.split("\nresult")
    assert "control rate 0.3" in assumptions and "intervention rate" not in assumptions
    assert "detectable effect" in result and "intervention rate 0.1806" in result
    assert "(solved)" not in out


def test_survival_without_event_information_says_the_numbers_are_events():
    out = CliRunner().invoke(cli, ["size", "survival", "--hr", "0.7", "--power", "0.8"]).output
    assert "events 247" in out  # Schoenfeld: 4 (1.96 + 0.84)^2 / log(0.7)^2 = 246.8
    assert "These numbers are EVENTS, not participants" in out
    assert "total to recruit" not in out


@pytest.mark.parametrize(("args", "message"), [
    (["size", "means", "--d", "0.5", "--power", "0.8", "--clustering", "partial", "--icc",
      "0.05", "--cluster-size", "0.5"], "--cluster-size must be at least 1"),
    (["size", "survival", "--hr", "0.7"], "leave out exactly one of --events, --power and --hr"),
    (["size", "proportions", "--p1", "0.3", "--or", "-2", "--power", "0.8"], "--or must be in"),
    (["mediation", "--a", "0.3", "--b", "0.3", "--power", "0.8", "--r2-m", "1.5"],
     "--r2-m must be in [0, 1)"),
])
def test_command_line_errors_name_flags_not_python_names(args, message):
    proc = subprocess.run([sys.executable, "-m", "trialplan", *args], capture_output=True,
                          text=True)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert "_" not in proc.stderr.split("error: ", 1)[1].split(";")[0]


@pytest.mark.parametrize(("args", "message"), [
    (["size", "means", "--d", "0.3", "--power", "0.9", "--clustering", "partial", "--icc",
      "0.03"], "--clustering 'partial' needs both --icc and --cluster-size"),
    (["size", "means", "--d", "0.3", "--power", "0.9", "--cluster-size", "9"],
     "--cluster-size was given but --clustering is 'none'"),
    (["size", "means", "--d", "0.3", "--power", "0.9", "--n", "100"],
     "--n, --power and --d were all given"),
    (["size", "means", "--d", "0.3", "--power", "0.9", "--sided", "one"],
     "--alternative must be 'greater' or 'less'"),
    (["size", "proportions", "--p1", "0.4", "--p2", "0.3", "--rr", "0.7", "--power", "0.9"],
     "got --p2 and --rr"),
    (["size", "proportions", "--p1", "0.4", "--p2", "0.3", "--power", "0.9", "--continuity",
      "--method", "arcsine"], "--continuity (Fleiss's correction) applies to --method 'pooled'"),
    (["size", "survival", "--hr", "0.7", "--power", "0.9", "--control-median", "12"],
     "--control-median, --accrual and --follow-up go together"),
    (["mediation", "--a", "0.3", "--b", "0.3", "--power", "0.8", "--icc-m", "0.05"],
     "partial nesting needs all of --icc-m, --icc-y and --cluster-size"),
    (["mediation", "--a", "0.3", "--b", "0.3", "--power", "0.8", "--base-rate", "0.3"],
     "--base-rate and --outcome-rate apply only when --outcome is 'binary'"),
    (["mediation", "--a", "0.3", "--b", "0.3", "--power", "0.8", "--outcome", "binary"],
     "a binary outcome needs --base-rate"),
])
def test_more_command_line_errors_name_their_flags(args, message):
    result = CliRunner().invoke(cli, args)
    # the entry point prints InputError as "error: <message>" on stderr and exits 1
    assert message in str(result.exception), result.exception


def test_a_document_with_an_unknown_extension_names_the_output_flag(tmp_path):
    from trialplan.model.checks import example_text

    (tmp_path / "trial.yaml").write_text(example_text())
    result = CliRunner().invoke(cli, ["protocol", str(tmp_path / "trial.yaml"), "-o",
                                      str(tmp_path / "x.pdf")])
    assert "--output must end in .md, .html, .docx; got 'x.pdf'" in str(result.exception)


def test_size_echoes_dropout_repeated_measures_and_a_difference_with_its_sd():
    runner = CliRunner()
    out = runner.invoke(cli, ["size", "survival", "--hr", "0.7", "--power", "0.8",
                              "--control-median", "12", "--accrual", "24", "--follow-up", "12",
                              "--dropout-rate", "0.1", "--dropout-time", "12"]).output
    assert "exponential dropout (as rpact): 0.1 lost by month 12 in each arm" in out
    out = runner.invoke(cli, ["size", "means", "--diff", "3", "--sd", "10", "--power", "0.9",
                              "--follow-ups", "2", "--follow-up-corr", "0.5"]).output
    head = out.split("result")[0]
    for line in ("difference in means 3", "outcome SD 10", "standardised difference d 0.3",
                 "correlation between repeated measurements 0.5"):
        assert line in head, out


@pytest.mark.parametrize("args", [["size", "means", "--d", "0.3", "--power", "0.9"],
                                  ["mediation", "--a", "0.3", "--b", "0.3", "--n", "400"]])
def test_a_plot_written_is_announced(tmp_path, args):
    path = tmp_path / "curve.svg"
    proc = subprocess.run([sys.executable, "-m", "trialplan", *args, "--plot", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and path.exists()
    assert f"wrote {path}" in proc.stderr
