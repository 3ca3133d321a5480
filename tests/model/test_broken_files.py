"""A corpus of broken trial files: each exits 1 with the right line and field, never a traceback."""

import subprocess
import sys

import pytest

from trialplan.model.checks import example_text

GOOD = example_text()


def line_of(text, needle, occurrence=1):
    count = 0
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            count += 1
            if count == occurrence:
                return i
    raise AssertionError(needle)


def replace(old, new, count=1):
    assert old in GOOD, old
    return GOOD.replace(old, new, count)


# (name, text, expected line or None, text that must appear in the message)
CASES = [
    ("empty", "", None, "file is empty"),
    ("only-comments", "# nothing here\n", None, "file is empty"),
    ("top-level-list", "- a\n- b\n", 1, "expected a mapping"),
    ("top-level-scalar", "hello\n", 1, "expected a mapping"),
    ("malformed", "schema: trialplan/1\ntrial: [unclosed\n", 3, "malformed YAML"),
    ("bad-indent", "schema: trialplan/1\n trial:\n  x: 1\n", 2, "malformed YAML"),
    ("alias-bomb", "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n", 1, "aliases"),
    ("deep-nesting", "a: " + "[" * 200 + "]" * 200 + "\n", 1, "nesting deeper"),
    ("python-tag", "schema: !!python/object/apply:os.system ['true']\n", 1, "tag"),
    ("duplicate-key", "schema: trialplan/1\nschema: trialplan/1\n", 2, "twice"),
    ("two-documents", "schema: trialplan/1\n---\nschema: trialplan/1\n", 2, "more than one"),
    ("wrong-schema", replace("schema: trialplan/1", "schema: trialplan/9"),
     line_of(GOOD, "schema: trialplan/1"), "expected 'trialplan/1'"),
    ("unknown-key", replace("  acronym: PEER-DISCHARGE", "  acronim: PEER-DISCHARGE"),
     line_of(GOOD, "acronym:"), "did you mean 'acronym'"),
    ("missing-title", replace("  title: Peer support for discharge from inpatient to "
                              "community mental health care\n", ""), line_of(GOOD, "trial:"),
     "required field is missing"),
    ("wrong-type", replace("  allocation_ratio: 1", "  allocation_ratio: lots"),
     line_of(GOOD, "allocation_ratio"), "allocation_ratio"),
    ("non-finite", replace("  alpha: 0.05", "  alpha: .nan"), line_of(GOOD, "alpha: 0.05"),
     "finite"),
    ("infinite", replace("    month: 12", "    month: .inf"), line_of(GOOD, "month: 12"),
     "finite"),
    ("huge-number", replace("  attrition: 0.15", "  attrition: 1e308"),
     line_of(GOOD, "attrition: 0.15"), "attrition"),
    ("out-of-range", replace("  power: 0.9", "  power: 1.5"), line_of(GOOD, "power: 0.9"),
     "power"),
    ("unknown-measure", replace("      measure: HHI", "      measure: HHJ"),
     line_of(GOOD, "measure: HHI"), "did you mean 'HHI'"),
    ("unknown-link", replace("{from: hope, to: recovery}", "{from: hope, to: recovry}"),
     line_of(GOOD, "{from: hope, to: recovery}"), "did you mean 'recovery'"),
    ("unknown-timepoint", replace("      timepoints: [baseline, m4]\n",
                                  "      timepoints: [baseline, m6]\n"),
     line_of(GOOD, "timepoints: [baseline, m4]"), "'m6' is not in `timepoints`"),
    ("duplicate-id", replace("    - id: hope\n", "    - id: alliance\n"),
     line_of(GOOD, "- id: hope"), "duplicate id 'alliance'"),
    ("cycle", replace("    - {from: social_network, to: recovery}",
                      "    - {from: social_network, to: recovery}\n"
                      "    - {from: service_engagement, to: alliance}"),
     line_of(GOOD, "{from: alliance, to: service_engagement}"), "cycle"),
    ("mechanism-unmeasured", replace("    - {from: trust, to: alliance}\n", "")
     .replace("    - {from: trust, to: loneliness}\n", ""),
     line_of(GOOD, "- id: trust"), "no measured process variable"),
    ("no-route", replace("    - {from: social_network, to: recovery}\n", ""),
     line_of(GOOD, "- id: social_network"), "no route to an outcome"),
    ("no-primary", replace("      role: primary", "      role: secondary"),
     line_of(GOOD, "  outcomes:"), "no outcome has role 'primary'"),
    ("mechanism-to-outcome", replace("    - {from: trust, to: alliance}",
                                     "    - {from: trust, to: alliance}\n"
                                     "    - {from: trust, to: readmission}"),
     line_of(GOOD, "{from: trust, to: alliance}") + 1, "straight to outcome"),
    ("bad-path-assumption", replace("      mediator: hope", "      mediator: hop"),
     line_of(GOOD, "mediator: hope"), "did you mean 'hope'"),
    ("binary-garbage", None, None, "binary"),
    ("not-utf8", None, None, "not UTF-8"),
]


@pytest.mark.parametrize("name, text, line, message", CASES, ids=[c[0] for c in CASES])
def test_broken_file(tmp_path, name, text, line, message):
    path = tmp_path / f"{name}.yaml"
    if name == "binary-garbage":
        path.write_bytes(bytes(range(256)) * 4)
    elif name == "not-utf8":
        path.write_bytes("schema: trialplan/1\ntitle: caf\xe9\n".encode("latin-1"))
    else:
        path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "trialplan", "check", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr, proc.stderr
    if line is not None:
        assert f"{path}:{line}:" in proc.stderr, proc.stderr


def test_temporal_precedence_names_the_link(tmp_path):
    text = replace("      measure: SES\n      timepoints: [baseline, m4]",
                   "      measure: SES\n      timepoints: [m12]")
    text = text.replace("      measure: READMISSION\n      timepoints: [m12]",
                        "      measure: READMISSION\n      timepoints: [m4]")
    path = tmp_path / "t.yaml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "trialplan", "check", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"{path}:{line_of(text, '{from: service_engagement, to: readmission}')}:" in proc.stderr


def test_all_problems_listed_at_once(tmp_path):
    text = replace("      measure: HHI", "      measure: HHJ").replace(
        "{from: hope, to: recovery}", "{from: hope, to: recovry}")
    path = tmp_path / "t.yaml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "trialplan", "check", str(path)],
                          capture_output=True, text=True)
    assert "HHJ" in proc.stderr and "recovry" in proc.stderr
    # the broken link also leaves hope with no route to an outcome: three problems, one run
    assert "3 error(s)" in proc.stderr and "no route to an outcome" in proc.stderr


def test_giant_file_is_refused_quickly(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * 3_000_000 + "\n")
    proc = subprocess.run([sys.executable, "-m", "trialplan", "check", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "at most" in proc.stderr


def _problems(text):
    from trialplan.errors import TrialFileError
    from trialplan.model.checks import load_trial_text

    with pytest.raises(TrialFileError) as info:
        load_trial_text(text, "t.yaml")
    return info.value.problems


def test_schema_and_reference_errors_in_one_run(tmp_path):
    # A range error used to stop loading, hiding the misspelt id until the next run.
    text = replace("  attrition: 0.15 ", "  attrition: 1.5 ").replace(
        "{from: hope, to: recovery}", "{from: hoppe, to: recovery}")
    path = tmp_path / "t.yaml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "trialplan", "check", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    link = line_of(text, "{from: hoppe, to: recovery}")
    attrition = line_of(text, "  attrition: 1.5 ")
    assert errors == [
        f"error: {path}:{line_of(text, '- id: hope')}: change_model.process_variables[2]: "
        "process variable 'hope' has no route to an outcome",
        f"error: {path}:{link}: change_model.links[7].from: unknown id 'hoppe'; did you mean "
        "'hope'?",
        f"error: {path}:{attrition}: assumptions.attrition: Input should be less than 1; got 1.5",
    ]


def test_reference_errors_keep_their_lines_when_a_list_item_is_set_aside():
    # The first link fails the schema and is set aside; the misspelt id in the eighth
    # link is still reported at its own line and index, not shifted by one.
    text = replace("{from: trust, to: alliance}", "{from: trust}").replace(
        "{from: hope, to: recovery}", "{from: hoppe, to: recovery}")
    found = [(p.line, p.field) for p in _problems(text)]
    assert found == [(line_of(text, "{from: trust}"), "change_model.links[0].to"),
                     (line_of(text, "{from: hoppe"), "change_model.links[7].from")]


def test_consequences_of_a_value_set_aside_are_not_reported():
    # An outcome whose role is misspelt is set aside; the links to it are not then
    # reported as unknown ids, nor the outcomes as lacking a primary.
    text = replace("      role: primary", "      role: primery")
    found = [(p.field, p.message) for p in _problems(text)]
    assert found == [("change_model.outcomes[0].role", "Input should be 'primary', "
                      "'secondary' or 'exploratory'; got 'primery'")]


def test_a_trial_section_missing_a_field_does_not_hide_reference_errors():
    text = replace("  title: Peer support", "  titel: Peer support").replace(
        "      measure: HHI", "      measure: HHJ")
    fields = [p.field for p in _problems(text)]
    assert fields == ["trial.title", "trial.titel", "change_model.process_variables[2].measure"]


def test_problems_are_sorted_by_line_and_unique():
    text = replace("      measure: HHI", "      measure: HHJ").replace(
        "  power: 0.9", "  power: 1.5").replace("  acronym: PEER", "  acronim: PEER")
    problems = _problems(text)
    lines = [p.line or 0 for p in problems]
    assert lines == sorted(lines) and len(set(problems)) == len(problems) == 3


def test_an_assumption_for_another_type_of_primary_outcome_is_a_warning():
    from trialplan.model.checks import load_trial_text

    text = replace("    mcid: 0.05 ", "    rate_ratio: 0.8\n    mcid: 0.05 ")
    warnings = [w for w in load_trial_text(text, "t.yaml").warnings
                if w.field == "assumptions.primary.rate_ratio"]
    assert len(warnings) == 1 and warnings[0].line == line_of(text, "rate_ratio: 0.8")
    assert "applies to a count primary outcome" in warnings[0].message


def test_references_into_a_section_that_lost_an_unnamed_item_are_left_out():
    # The process variable 'hope' loses its id to a typo: which links and paths meant it
    # cannot be known, so no reference into the change model is reported until it is fixed;
    # a misspelt measure elsewhere still is.
    text = replace("    - id: hope\n", "    - idd: hope\n").replace(
        "      measure: GSE", "      measure: GSEE")
    found = [(p.field, p.message) for p in _problems(text)]
    assert [f for f, _ in found] == ["change_model.process_variables[2].id",
                                     "change_model.process_variables[2].idd",
                                     "change_model.process_variables[3].measure"]
