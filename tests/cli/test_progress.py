"""Progress on stderr: periodic lines off a terminal, an estimate for long runs, --quiet."""

import io

from trialplan.cli._progress import Progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _run(progress, clock, steps, seconds_per_step, total=10, label="simulating mc"):
    progress(0, total, label)
    for done in range(1, steps + 1):
        clock.now += seconds_per_step
        progress(done, total, label)


def test_a_long_run_off_a_terminal_announces_itself_and_prints_periodic_lines():
    clock, out = Clock(), io.StringIO()
    _run(Progress(stream=out, clock=clock), clock, steps=10, seconds_per_step=3.0)
    lines = out.getvalue().splitlines()
    # After the first step (3 s for 1 of 10) the run projects to 30 s: said once, at once.
    assert lines[0] == "simulating mc: expected to take about 30 s"
    assert lines[1] == "simulating mc: 2/10 (20%), about 24 s left"  # first line after 5 s
    assert lines[-1] == "simulating mc: 10/10 (100%), done"
    # A line at most every 5 seconds, not one per step.
    assert 5 <= len(lines) <= 8


def test_a_short_run_prints_nothing_and_quiet_prints_nothing():
    clock, out = Clock(), io.StringIO()
    _run(Progress(stream=out, clock=clock), clock, steps=10, seconds_per_step=0.1)
    assert out.getvalue() == ""
    clock, out = Clock(), io.StringIO()
    _run(Progress(stream=out, clock=clock, quiet=True), clock, steps=10, seconds_per_step=3.0)
    assert out.getvalue() == ""


def test_mediation_quiet_flag_silences_progress():
    from click.testing import CliRunner

    from trialplan.cli import cli

    r = CliRunner().invoke(cli, ["mediation", "--a", "0.3", "--b", "0.3", "--n", "200",
                                 "--test", "mc", "--reps", "50", "--draws", "200", "--quiet"])
    assert r.exit_code == 0 and "simulating" not in r.output
