"""The new design flags from the command line: the same numbers as the Python calls, and
refusals that name what is missing."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from trialplan.cli import cli
from trialplan.stats import means, mediation, survival


def run(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("args, message", [
    (["--follow-ups", "3"], "need --follow-up-corr"),
    (["--baselines", "1"], "--baseline-corr is not given"),
    (["--baselines", "-1", "--baseline-corr", "0.5"], "--baselines must be a whole number"),
    (["--clustering", "cluster", "--icc", "0.05", "--cluster-size", "20",
      "--baseline-corr", "0.5"], "--cluster-autocorr"),
])
def test_size_means_refuses_and_names_the_missing_value(args, message):
    proc = subprocess.run([sys.executable, "-m", "trialplan", "size", "means", "--d", "0.3",
                           "--power", "0.8", *args], capture_output=True, text=True)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_size_means_flags_match_the_python_call():
    r = run("size", "means", "--d", "0.3", "--power", "0.8", "--baseline-corr", "0.5",
            "--follow-ups", "2", "--follow-up-corr", "0.6", "--clustering", "partial",
            "--icc", "0.05", "--cluster-size", "10", "--control-variance", "total",
            "--attrition", "0.2", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    py = means(d=0.3, power=0.8, baseline_corr=0.5, follow_ups=2, follow_up_corr=0.6,
               clustering="partial", icc=0.05, cluster_size=10, control_variance="total",
               attrition=0.2)
    assert data["n_total"] == py.n_total
    assert data["peer_workers"] == py.peer_workers
    assert any("control_variance 'total'" in n for n in data["notes"])


def test_size_means_cluster_baseline_flags():
    r = run("size", "means", "--d", "0.3", "--power", "0.8", "--clustering", "cluster",
            "--icc", "0.05", "--cluster-size", "20", "--cluster-autocorr", "0.7",
            "--individual-autocorr", "0.5", "--json")
    assert r.exit_code == 0, r.output
    py = means(d=0.3, power=0.8, clustering="cluster", icc=0.05, cluster_size=20,
               cluster_autocorr=0.7, individual_autocorr=0.5)
    assert json.loads(r.output)["clusters_per_arm"] == py.clusters_per_arm


def test_size_survival_dropout_flags():
    r = run("size", "survival", "--hr", "0.7", "--power", "0.8", "--control-median", "12",
            "--accrual", "12", "--follow-up", "12", "--dropout-rate", "0.1",
            "--dropout-time", "12", "--json")
    assert r.exit_code == 0, r.output
    py = survival(hr=0.7, power=0.8, control_median=12, accrual=12, follow_up=12,
                  dropout_rate=0.1, dropout_time=12)
    assert json.loads(r.output)["n_total"] == py.n_total


def test_mediation_partial_nesting_flags():
    r = run("mediation", "--a", "0.3", "--b", "0.3", "--n", "400", "--icc-m", "0.1",
            "--icc-y", "0.1", "--cluster-size", "8", "--control-variance", "total",
            "--icc-y-type", "unconditional", "--r2-m", "0.3", "--r2-m2", "0.1", "--json")
    assert r.exit_code == 0, r.output
    py = mediation(a=0.3, b=0.3, n=400, icc_m=0.1, icc_y=0.1, cluster_size=8,
                   control_variance="total", icc_y_type="unconditional", r2_m=0.3, r2_m2=0.1)
    assert json.loads(r.output)["power"] == pytest.approx(py.power, rel=1e-9)
