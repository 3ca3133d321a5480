"""The scripts in examples/ run, and print what docs/examples.md says they print."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXPECT = {
    "size_partial_nesting.py": ["576 analysed per arm", "636 analysed per arm",
                                "84 peer workers"],
    "mechanism_power_curves.py": ["role_modelling", "1288"],
    "sensitivity_sweep.py": ["1,496"],
    "build_trial_and_protocol.py": ["wrote protocol.md"],
}


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECT)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_example_runs(tmp_path, name):
    proc = subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for text in EXPECT[name]:
        assert text in proc.stdout
