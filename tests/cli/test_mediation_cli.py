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


def test_cluster_design_on_the_command_line():
    from click.testing import CliRunner

    from trialplan.cli import cli

    run = CliRunner().invoke
    # R: power.med221(esa=0.6596, esb=0.1891, escp=.1, rho2=.15, r22=.52, r21=.40, r2m2=.50,
    #    n=100, J=40, p=.5) -> joint 0.810, sobel 0.654
    base = ["mediation", "--cluster-design", "2-2-1", "--a", "0.6596", "--b", "0.1891",
            "--cprime", "0.1", "--icc-y", "0.15", "--r2-y2", "0.52", "--r2-y", "0.4",
            "--r2-m2", "0.5", "--cluster-size", "100", "--scale", "total"]
    r = run(cli, base + ["--clusters", "40", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert round(out["power"], 3) == 0.81 and out["df"] == {"a": 36, "b": 36}
    r = run(cli, base + ["--clusters", "40", "--test", "sobel", "--json"])
    assert round(json.loads(r.output)["power"], 3) == 0.654
    r = run(cli, base + ["--power", "0.8", "--json"])
    assert json.loads(r.output)["clusters"] == 40  # 39 gives less than 0.8
    r = run(cli, base + ["--clusters", "39", "--json"])
    assert json.loads(r.output)["power"] < 0.8
    # errors name the flags
    r = run(cli, ["mediation", "--cluster-design", "2-1-1", "--a", "0.3", "--b", "0.3",
                  "--icc-y", "0.05", "--cluster-size", "20", "--clusters", "40"])
    assert r.exit_code == 1 and "--icc-m" in str(r.exception)  # main() prints it as error:
    r = run(cli, base + ["--n", "40"])
    assert r.exit_code == 2 and "--clusters" in r.output
    r = run(cli, ["mediation", "--a", "0.3", "--b", "0.3", "--n", "100", "--clusters", "4"])
    assert r.exit_code == 2 and "--cluster-design" in r.output
