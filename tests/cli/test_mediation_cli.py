"""`trialplan mediation` as a user runs it: JSON contract, exit codes, plots."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from trialplan.cli import cli

JSON_KEYS = {"test", "solved_for", "n_total", "n_per_arm", "power", "mc_se", "reps", "seed",
             "a", "b", "cprime", "x", "scale", "method", "reference", "inputs", "notes"}


def run(*args):
    return CliRunner().invoke(cli, ["mediation", *args])


def test_json_contract_analytic():
    r = run("--a", "0.39", "--b", "0.39", "--power", "0.8", "--x", "continuous", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert JSON_KEYS <= set(data)
    assert data["n_total"] == 74  # Fritz & MacKinnon (2007) Table 3, joint significance, MM
    assert data["mc_se"] is None and data["reps"] is None
    assert data["inputs"]["a"] == 0.39 and data["inputs"]["test"] == "joint"


def test_json_contract_simulated_reports_mc_se_reps_seed():
    r = run("--a", "0.3", "--b", "0.3", "--n", "300", "--test", "mc", "--reps", "200",
            "--draws", "500", "--seed", "12", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["reps"] == 200 and data["seed"] == 12
    assert data["mc_se"] == pytest.approx((data["power"] * (1 - data["power"]) / 200) ** 0.5)
    assert data["n_per_arm"] == {"control": 150, "intervention": 150}


def test_readable_output_names_the_test_and_paths():
    r = run("--a", "0.3", "--b", "0.3", "--power", "0.8")
    assert r.exit_code == 0, r.output
    assert "joint significance" in r.output
    assert "per arm: control 176, intervention 176" in r.output


def test_smallest_detectable_a_from_the_command_line():
    r = run("--b", "0.3", "--n", "400", "--power", "0.8", "--json")
    data = json.loads(r.output)
    assert data["solved_for"] == "a"
    assert data["power"] == pytest.approx(0.8, abs=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--a", "nan", "--b", "0.3", "--n", "100"], "a must be finite"),
    (["--a", "0.3", "--b", "0.3", "--power", "1.5"], "power must be in (0, 1)"),
    (["--a", "0.3", "--b", "0.3", "--n", "100", "--test", "bootstrap", "--reps", "0"],
     "reps must be at least 1"),
    (["--a", "0.3", "--b", "0.3", "--n", "100", "--test", "bootstrap", "--boot", "0"],
     "boot must be at least 1"),
    (["--a", "0.3", "--b", "0.3", "--n", "100", "--icc-m", "1", "--icc-y", "0.1",
      "--cluster-size", "5"], "--icc-m must be in [0, 1)"),
    (["--a", "0.3", "--b", "0.3", "--n", "100", "--icc-m", "0.1", "--icc-y", "0.1",
      "--cluster-size", "0"], "--cluster-size must be at least 1"),
    (["--b", "0.05", "--n", "30", "--power", "0.9", "--scale", "standardized"],
     "power tops out at"),
])
def test_bad_input_exits_1_with_a_message(args, message):
    proc = subprocess.run([sys.executable, "-m", "trialplan", "mediation", *args],
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_plot_writes_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "med.svg"
    r = run("--a", "0.3", "--b", "0.3", "--power", "0.8", "--plot", str(out), "--compare")
    assert r.exit_code == 0, r.output
    first = out.read_bytes()
    assert first.startswith(b"<?xml")
    again = subprocess.run([sys.executable, "-m", "trialplan", "mediation", "--a", "0.3",
                            "--b", "0.3", "--power", "0.8", "--plot", str(out)],
                           capture_output=True, text=True)
    assert again.returncode == 1 and "--force" in again.stderr
    assert out.read_bytes() == first


def test_compare_without_plot_prints_every_analytic_test_answering_the_same_question():
    from trialplan.stats import mediation

    r = CliRunner().invoke(cli, ["mediation", "--a", "0.3", "--b", "0.3", "--n", "400",
                                 "--compare", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["test"]: row for row in json.loads(r.output)["comparison"]}
    assert set(rows) == {"joint", "sobel", "aroian", "vsm"}
    for test, row in rows.items():
        assert row["n_total"] == 400
        assert row["power"] == pytest.approx(mediation(a=0.3, b=0.3, n=400, test=test).power,
                                             rel=1e-11)
    # Sobel is the conservative one (Fritz & MacKinnon 2007): less power than joint.
    assert rows["sobel"]["power"] < rows["joint"]["power"]
    text = CliRunner().invoke(cli, ["mediation", "--a", "0.3", "--b", "0.3", "--power", "0.8",
                                    "--compare"]).output
    assert "comparison of analytic tests" in text and "aroian" in text
