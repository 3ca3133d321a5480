"""Every console example in docs/*.md is run, and the output it shows must appear."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _examples():
    out = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text()
        for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
            lines = block.splitlines()
            i = 0
            while i < len(lines):
                if not lines[i].startswith("$ "):
                    i += 1
                    continue
                command = lines[i][2:]
                while command.endswith("\\"):
                    i += 1
                    command = command[:-1] + " " + lines[i].strip()
                i += 1
                shown = []
                while i < len(lines) and not lines[i].startswith("$ "):
                    if lines[i].strip() and lines[i].strip() != "...":
                        shown.append(lines[i].strip())
                    i += 1
                out.append(pytest.param(command, shown, id=f"{page.stem}: {command[:50]}"))
    return out


EXAMPLES = _examples()


def test_the_docs_have_console_examples():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("command, shown", EXAMPLES)
def test_console_example_output(tmp_path, command, shown):
    args = shlex.split(command)
    assert args[0] == "trialplan"
    if "trial.yaml" in args:
        subprocess.run([sys.executable, "-m", "trialplan", "init"], cwd=tmp_path,
                       capture_output=True, check=True)
    proc = subprocess.run([sys.executable, "-m", "trialplan", *args[1:]], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    actual = [line.strip() for line in proc.stdout.splitlines()]
    pos = 0
    for line in shown:
        assert line in actual[pos:], f"{line!r} not in the output of {command!r}"
        pos = actual.index(line, pos) + 1
