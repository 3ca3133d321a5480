"""init / check / model / measures / schema as a new user runs them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from trialplan.cli import cli
from trialplan.model.schema import json_schema

ROOT = Path(__file__).resolve().parents[2]


def test_init_check_model_round(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    original = Path("trial.yaml").read_text()
    again = runner.invoke(cli, ["init"])
    assert again.exit_code == 1 and Path("trial.yaml").read_text() == original
    assert runner.invoke(cli, ["init", "--force"]).exit_code == 0
    checked = runner.invoke(cli, ["check", "trial.yaml", "--json"])
    assert checked.exit_code == 0
    report = json.loads(checked.output)
    assert report["valid"] and report["errors"] == []
    assert any("respondent burden" in w["message"] for w in report["warnings"])
    svg = runner.invoke(cli, ["model", "trial.yaml", "--format", "svg", "-o", "model.svg"])
    assert svg.exit_code == 0
    text = Path("model.svg").read_text()
    for label in ("Hope (HHI)", "Mechanisms", "Outcomes"):
        assert label.split(" ")[0] in text
    first = Path("model.svg").read_bytes()
    runner.invoke(cli, ["model", "trial.yaml", "--format", "svg", "-o", "model.svg", "--force"])
    assert Path("model.svg").read_bytes() == first


def test_measurement_matrix_covers_every_mechanism(tmp_path):
    path = tmp_path / "trial.yaml"
    CliRunner().invoke(cli, ["init", str(path)])
    out = CliRunner().invoke(cli, ["model", str(path), "--format", "json"]).output
    data = json.loads(out)
    mechanisms = {r["mechanism"] for r in data["matrix"]}
    assert mechanisms == {"trust", "role_modelling", "engagement"}
    assert any(r["variable"] == "readmission" and r["role"] == "primary" for r in data["matrix"])
    mermaid = CliRunner().invoke(cli, ["model", str(path), "--format", "mermaid"]).output
    assert mermaid.startswith("flowchart LR") and "hope --> recovery" in mermaid


def test_measures_list_and_show():
    runner = CliRunner()
    listing = json.loads(runner.invoke(cli, ["measures", "--json"]).output)
    qpr = next(m for m in listing if m["key"] == "QPR")
    assert qpr["items"] == 15 and qpr["score_max"] == 60  # reference/measures.md
    shown = runner.invoke(cli, ["measures", "show", "hhi"])
    assert shown.exit_code == 0 and "sd           unknown" in shown.output
    missing = runner.invoke(cli, ["measures", "show", "QRP"])
    assert missing.exit_code != 0


def test_committed_schema_is_current():
    committed = json.loads((ROOT / "docs" / "trial-file.schema.json").read_text())
    assert committed == json_schema(), "run: trialplan schema > docs/trial-file.schema.json"


@pytest.mark.parametrize("name", ["peer-discharge", "cluster-wards", "feasibility-pilot"])
def test_committed_schema_accepts_the_examples_as_an_editor_would(name):
    # The examples give assumptions as distributions (priors): an editor validating
    # against the committed schema must accept them, and refuse one where a number
    # cannot be uncertain.
    import jsonschema
    import yaml

    schema = json.loads((ROOT / "docs" / "trial-file.schema.json").read_text())
    data = yaml.safe_load((ROOT / "protocols" / name / "trial.yaml").read_text())
    jsonschema.validate(data, schema)
    data["assumptions"]["clustering"]["icc"] = {"distribution": "beta", "mean": 0.05,
                                                "sd": 0.02}
    jsonschema.validate(data, schema)
    data["trial"]["allocation_ratio"] = {"distribution": "uniform", "lower": 1, "upper": 2}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_version_and_help():
    out = subprocess.run([sys.executable, "-m", "trialplan", "--version"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "trialplan" in out.stdout
    helptext = subprocess.run([sys.executable, "-m", "trialplan", "--help"],
                              capture_output=True, text=True).stdout
    for command in ("init", "check", "model", "measures", "schema", "size"):
        assert command in helptext
