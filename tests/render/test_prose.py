"""Every generated document of the ready-made examples reads as written by a person."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "protocols"
DOCUMENTS = sorted(ROOT.glob("*/*.md"))

# Each artefact: a pattern and why it is wrong.
ARTEFACTS = [
    (r"\b\d+\.0 (people|participants|months?|weeks?|sites?)\b", "a whole number written as x.0"),
    (r"\b\d+(\.\d+)? \w+\(s\)", "a '(s)' plural instead of agreement"),
    (r"(?<!\.)\.\.(?!\.)", "a doubled full stop"),
    (r"detected with power|is detected by", "power stated as if the effect were detected"),
    (r"\b(\d+ months? [a-z ]+?) \(\1\)", "a duplicated time phrase"),
    (r"\(\w[\w-]*, [A-Z][a-z]+ \(", "a time label with its own parenthesis inside a list"),
    (r"to be named in the SAP", "software left unnamed"),
    (r"\bmonths?\(s\)|\bmonth\(s\)", "month(s)"),
    (r"-> ", "an arrow instead of words"),
    (r"\b(changes?|improves?|improve) (psychiatric )?readmission", "a direction-blind verb"),
    (r"\b(a|an) (a|an|the)\b", "a doubled article"),
]


def _prose(text: str) -> str:
    """The text a reader reads: no code spans, no figure paths."""
    text = re.sub(r"`[^`]*`", "", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def test_all_three_examples_are_scanned():
    assert {p.parent.name for p in DOCUMENTS} >= {"peer-discharge", "cluster-wards",
                                                   "feasibility-pilot"}
    assert len(DOCUMENTS) >= 11


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_prose_artefacts(path):
    text = _prose(path.read_text())
    found = []
    for pattern, why in ARTEFACTS:
        for m in re.finditer(pattern, text):
            found.append(f"{why}: ...{text[max(0, m.start() - 40):m.end() + 20]!r}...")
    # Underscores belong to ids and field names, never to prose.
    for m in re.finditer(r"\w*_\w*", text):
        found.append(f"an id or field name in prose: {m.group(0)!r}")
    assert not found, "\n".join(found)


def test_the_scan_catches_each_artefact():
    samples = ["about 30.0 people", "1.0 month(s) apart", "training..", "is detected with power "
               "0.9", "within 12 months of discharge (12 months of discharge)",
               "(HHI, Baseline (before randomisation), month 4)", "to be named in the SAP",
               "hope -> recovery", "which in turn improve readmission", "a an example"]
    for sample in samples:
        assert any(re.search(p, sample) for p, _ in ARTEFACTS), sample


def _caption_problems(text: str) -> list[str]:
    """Tables without a caption, figures without an id, and ids the text never refers to."""
    problems = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            caption = next((x for x in lines[j:j + 3] if x.strip()), "")
            if not re.match(r": .+\{ #tbl:[\w-]+ \}", caption):
                problems.append(f"a table without a numbered caption: {lines[i][:60]!r}")
            i = j
        else:
            i += 1
    for line in lines:
        if line.startswith("![") and not re.search(r"\{ ?#fig:[\w-]+ ?\}", line):
            problems.append(f"a figure without an id (so without a number): {line[:60]!r}")
    ids = set(re.findall(r"#((?:tbl|fig):[\w-]+)", text))
    cited = set(re.findall(r"@((?:tbl|fig):[\w-]+)", text))
    problems += [f"{x} is never referred to in the text" for x in sorted(ids - cited)]
    return problems


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_table_and_figure_is_numbered_and_referred_to(path):
    problems = _caption_problems(path.read_text())
    assert not problems, "\n".join(problems)


def test_the_caption_scan_catches_each_problem():
    assert _caption_problems("| a |\n|---|\n| 1 |\n\nText.")
    assert _caption_problems("![A figure.](f.png)")
    assert _caption_problems("![A figure.](f.png){ #fig:f }")
    assert not _caption_problems("@fig:f and @tbl:t.\n\n![A figure.](f.png){ #fig:f }\n\n"
                                 "| a |\n|---|\n| 1 |\n\n: A table. { #tbl:t }")


def _bibliography_keys() -> set[str]:
    import json

    import yaml

    bundled = Path(__file__).resolve().parents[2] / "src/trialplan/data/references.json"
    keys = {e["id"] for e in json.loads(bundled.read_text())}
    for trial in ROOT.glob("*/trial.yaml"):
        keys |= {r["id"] for r in (yaml.safe_load(trial.read_text()).get("references") or [])}
    return keys


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_citation_is_in_the_reference_list(path):
    """A cited work is in the bibliography, and no reference list is written by hand."""
    text = path.read_text()
    cited = {k for group in re.findall(r"\[(@[^\]]+)\]", text)
             for k in re.findall(r"@([A-Za-z][\w.-]*)", group)} - {"tbl", "fig"}
    assert cited <= _bibliography_keys(), sorted(cited - _bibliography_keys())
    after = text.split("::: { #refs }", 1)[-1] if "::: { #refs }" in text else ""
    assert not re.search(r"^- ", after, re.M), "a hand-written list after the reference list"
