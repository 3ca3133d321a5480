"""`trialplan size` as a user runs it: exit codes, JSON contract, grids, plots."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from trialplan.cli import cli

JSON_KEYS = {"design", "solved_for", "n_per_arm", "n_analysed_per_arm", "n_total", "power",
             "effect", "alpha", "design_effect", "method", "reference", "inputs", "notes"}


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_json_contract_partial_nesting():
    r = run("size", "proportions", "--p1", "0.38", "--p2", "0.29", "--power", "0.9",
            "--attrition", "0.15", "--icc", "0.03", "--cluster-size", "9",
            "--clustering", "partial", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert JSON_KEYS <= set(data)
    # a peer worker supports everyone allocated to them: counted from the numbers recruited
    assert data["peer_workers"] == -(-data["n_per_arm"]["intervention"] // 9)
    assert data["n_total"] == data["n_per_arm"]["control"] + data["n_per_arm"]["intervention"]
    assert data["power"] >= 0.9
    assert data["inputs"]["icc"] == 0.03


def test_effect_given_as_risk_difference_matches_p2():
    a = json.loads(run("size", "proportions", "--control", "0.38", "--rd", "-0.09",
                       "--power", "0.8", "--json").output)
    b = json.loads(run("size", "proportions", "--p1", "0.38", "--p2", "0.29",
                       "--power", "0.8", "--json").output)
    assert a["n_analysed_per_arm"] == b["n_analysed_per_arm"]


def test_means_diff_and_sd():
    a = json.loads(run("size", "means", "--diff", "2", "--sd", "10", "--power", "0.8",
                       "--json").output)
    assert a["effect"]["d"] == pytest.approx(0.2)
    assert a["n_analysed_per_arm"]["control"] == 394  # R: pwr.t.test(d=.2, power=.8) 393.41


def test_grid_gives_one_row_per_cell():
    r = run("size", "means", "--d", "0.3", "--power", "0.8", "--clustering", "partial",
            "--icc", "0.01,0.03,0.05", "--cluster-size", "9", "--attrition", "0.1:0.3:0.1",
            "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    rows = data["rows"]
    assert len(rows) == 9
    assert {row["inputs"]["icc"] for row in rows} == {0.01, 0.03, 0.05}
    # Constants are written once, in the header, not in every row.
    assert data["grid"]["varying"] == ["icc", "attrition"]
    assert data["grid"]["inputs"]["d"] == 0.3 and data["grid"]["alpha"] == 0.05
    assert set(rows[0]["inputs"]) == {"icc", "attrition"} and "method" not in rows[0]
    table = run("size", "means", "--d", "0.3,0.5", "--power", "0.8")
    assert table.exit_code == 0 and len(table.output.strip().splitlines()) == 3


def test_readable_output_echoes_assumptions():
    r = run("size", "survival", "--hr", "0.7", "--power", "0.8", "--event-prob", "0.5")
    assert r.exit_code == 0
    assert "hazard ratio 0.7" in r.output and "events 247" in r.output


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["size", "means", "--d", "0.5", "--power", "1.2"], 1, "power must be in (0, 1)"),
        (["size", "means", "--d", "0.5", "--power", "0.8", "--attrition", "1"], 1,
         "attrition must be in [0, 1)"),
        (["size", "means", "--d", "0.5", "--power", "0.8", "--clustering", "partial",
          "--icc", "1.5", "--cluster-size", "8"], 1, "icc must be in [0, 1)"),
        (["size", "proportions", "--p1", "0.3", "--p2", "1.3", "--power", "0.8"], 1,
         "p2 must be in (0, 1)"),
        (["size", "means", "--d", "0.5"], 1, "--n and --power were both left out"),
        (["size", "means", "--d", "zero", "--power", "0.8"], 2, "not a number"),
        (["size", "means", "--d", "0.5", "--power", "0.8", "--sided", "three"], 2, "three"),
        (["size", "means", "--d", "1e-6", "--power", "0.8"], 1, "is still"),
    ],
)
def test_bad_input_exit_codes(args, code, message):
    proc = subprocess.run([sys.executable, "-m", "trialplan", *args], capture_output=True,
                          text=True)
    assert proc.returncode == code
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_plot_refuses_to_overwrite(tmp_path):
    target = tmp_path / "curve.svg"
    target.write_text("mine")
    r = run("size", "means", "--d", "0.5", "--power", "0.8", "--plot", str(target))
    assert r.exit_code != 0
    assert target.read_text() == "mine"
    r = run("size", "means", "--d", "0.5", "--power", "0.8", "--plot", str(target), "--force")
    assert r.exit_code == 0 and target.read_text().startswith("<?xml")
    again = target.read_bytes()
    run("size", "means", "--d", "0.5", "--power", "0.8", "--plot", str(target), "--force")
    assert target.read_bytes() == again  # deterministic figure


def test_closed_form_answer_does_not_import_heavy_modules():
    code = ("import sys; from trialplan.cli import main\n"
            "try:\n    main(['size', 'means', '--d', '0.5', '--power', '0.8'])\n"
            "except SystemExit:\n    pass\n"
            "bad = [m for m in ('statsmodels', 'scipy', 'matplotlib', 'pydantic') "
            "if m in sys.modules]\nprint('HEAVY', bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "HEAVY []" in out


def test_json_has_no_float_noise_and_echoes_inputs_as_given():
    # 0.38 - 0.09 is 0.29000000000000004 in binary floating point; JSON shows 0.29.
    out = subprocess.run([sys.executable, "-m", "trialplan", "size", "proportions",
                          "--control", "0.38", "--rd", "-0.09", "--power", "0.9", "--json"],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    assert data["effect"]["p_intervention"] == 0.29
    assert data["effect"]["risk_difference"] == -0.09
    assert "0000000" not in out and "9999999" not in out
    assert data["inputs"]["rd"] == -0.09 and data["inputs"]["p1"] == 0.38
    # Rounding keeps 12 significant digits: the achieved power is not coarsened.
    assert abs(data["power"] - 0.9000529838697985) < 1e-11


def test_streamed_grid_rows_equal_the_one_call_grid(monkeypatch):
    # Blocks of 5 cells over a 3 x 4 grid: rows must be the cells of one vectorised call,
    # in C order, whatever the blocking.
    import numpy as np

    from trialplan.cli import size as size_cli
    from trialplan.stats import proportions

    monkeypatch.setattr(size_cli, "GRID_BLOCK", 5)
    r = run("size", "proportions", "--p1", "0.3,0.35,0.4", "--rd", "-0.12:-0.06:0.02",
            "--power", "0.8", "--clustering", "partial", "--icc", "0.02", "--cluster-size", "8",
            "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["rows"]
    whole = proportions(p1=np.array([0.3, 0.35, 0.4])[:, None],
                        rd=np.array([-0.12, -0.1, -0.08, -0.06]), power=0.8,
                        clustering="partial", icc=0.02, cluster_size=8).records()
    assert len(rows) == len(whole) == 12
    for row, cell in zip(rows, whole, strict=True):
        assert row["n_per_arm"] == cell["n_per_arm"]
        assert row["peer_workers"] == cell["peer_workers"]
        assert row["power"] == pytest.approx(cell["power"], rel=1e-11)
        assert row["effect"]["odds_ratio"] == pytest.approx(cell["effect"]["odds_ratio"],
                                                            rel=1e-11)
        assert row["inputs"]["p1"] == cell["inputs"]["p1"]
