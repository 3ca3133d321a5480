"""Protocol drafts: DOCX structure, HTML escaping, safe writing, the template sandbox."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trialplan.errors import InputError
from trialplan.model.checks import example_text, load_trial, load_trial_text
from trialplan.planning.context import SPIRIT_2025
from trialplan.render.documents import export_templates
from trialplan.render.drafts import STATUSES, checklist, judge, markdown_for, write_draft


@pytest.fixture(scope="module")
def trial():
    return load_trial_text(example_text(), "trial.yaml")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "trialplan", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_docx_has_a_heading_for_every_spirit_item_tables_and_figures(tmp_path):
    docx = pytest.importorskip("docx")
    (tmp_path / "trial.yaml").write_text(example_text())
    proc = run("protocol", "trial.yaml", "-o", "protocol.docx", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = docx.Document(tmp_path / "protocol.docx")
    headings = [p.text for p in doc.paragraphs if p.style.name.startswith("Heading")]
    for item, title in SPIRIT_2025:
        assert f"{item}. {title}" in headings, item
    # WHO data set, TIDieR, outcomes, schedule, sensitivity, progression criteria
    assert len(doc.tables) >= 6
    # change model, two power curves, recruitment, participant flow, timeline, progression
    # criteria's operating characteristics and the assurance curve
    assert len(doc.inline_shapes) == 8


def test_html_escapes_markup_from_the_trial_file(tmp_path):
    text = example_text().replace(
        "title: Peer support for discharge from inpatient to community mental health care",
        'title: "Peer <script>alert(1)</script> support <b>bold</b>"').replace(
        "  comparator: Care as usual", "  comparator: Care <img src=x onerror=alert(2)>")
    text = text.replace("  blinded: >-\n", "  blinded: >-\n    <iframe src=evil></iframe>\n")
    (tmp_path / "trial.yaml").write_text(text)
    proc = run("protocol", "trial.yaml", "-o", "p.html", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = (tmp_path / "p.html").read_text()
    for bad in ("<script>alert", "<b>bold", "<img src=x", "<iframe"):
        assert bad not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert out.count("data:image/png;base64,") == 8  # figures embedded: standalone file
    assert 'src="figures/' not in out
    md = run("protocol", "trial.yaml", "-o", "p.md", cwd=tmp_path)
    assert md.returncode == 0
    assert "<script>" not in (tmp_path / "p.md").read_text()


def test_existing_output_is_refused_and_left_unchanged(tmp_path):
    (tmp_path / "trial.yaml").write_text(example_text())
    target = tmp_path / "protocol.md"
    target.write_text("my edits\n")
    proc = run("protocol", "trial.yaml", "-o", "protocol.md", cwd=tmp_path)
    assert proc.returncode == 1 and "--force" in proc.stderr
    assert target.read_text() == "my edits\n"


def test_a_failed_render_leaves_no_file(tmp_path, trial):
    user = tmp_path / "tpl"
    user.mkdir()
    (user / "protocol.md.j2").write_text("# {{ trial.title }}\n{{ no_such_value }}\n")
    out = tmp_path / "protocol.docx"
    with pytest.raises(InputError, match="no_such_value"):
        write_draft(trial, out, template_dir=user)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [user]


@pytest.mark.parametrize("body, message", [
    ("{{ ''.__class__.__mro__ }}", "not allowed in a template"),
    ("{{ trial.__class__ }}", "not allowed in a template"),
    ("{% include '/etc/passwd' %}", "template not found"),
    ("{% include '../../../../etc/passwd' %}", "template not found"),
    ("{{ cycler.__init__.__globals__ }}", "not allowed in a template"),
])
def test_user_templates_cannot_reach_python_or_files(tmp_path, trial, body, message):
    user = tmp_path / "tpl"
    user.mkdir()
    (user / "protocol.md.j2").write_text(body + "\n")
    with pytest.raises(InputError, match=message):
        markdown_for(trial, "protocol", template_dir=user, with_figures=False)


def test_user_template_dir_is_searched_first(tmp_path, trial):
    user = tmp_path / "tpl"
    export_templates(user)
    names = sorted(p.name for p in user.iterdir())
    assert "protocol.md.j2" in names and "_macros.md.j2" in names
    with pytest.raises(Exception, match="--force"):
        export_templates(user)
    custom = (user / "sap.md.j2").read_text().replace(
        "statistical analysis plan", "SAP (house style)", 1)
    (user / "sap.md.j2").write_text(custom)
    text, _ = markdown_for(trial, "sap", template_dir=user, with_figures=False)
    assert 'subtitle: "PEER-DISCHARGE: SAP (house style)"' in text.splitlines()[:4]


def test_markdown_is_deterministic_and_every_number_comes_from_the_plan(trial):
    one, _ = markdown_for(trial, "protocol", with_figures=False)
    two, _ = markdown_for(trial, "protocol", with_figures=False)
    assert one == two
    assert "1,240" in one  # participants to recruit, from the plan
    assert "trialplan size proportions --p1 0.38425925925925924 --p2 0.29 --power 0.9" in one


@pytest.mark.parametrize("document", ["sap", "process-evaluation", "feasibility"])
def test_companion_documents_render(trial, document):
    text, _ = markdown_for(trial, document, with_figures=False)
    assert text.startswith('---\ntitle: "Peer support for discharge')
    if document == "feasibility":
        assert "Progression criteria" in text and "at least 80%" in text
    if document == "process-evaluation":
        assert "Mechanisms of impact" in text and "Context" in text


def test_checklist_finds_every_item_and_counts(tmp_path, trial):
    items = checklist(trial)
    assert [i["item"] for i in items] == [i for i, _ in SPIRIT_2025]
    assert all(i["status"] in STATUSES for i in items)
    by_id = {i["item"]: i for i in items}
    assert by_id["19"]["status"] == "filled"  # the sample size is always written
    assert by_id["30"]["status"] == "to complete"  # no ethics text in the example
    assert by_id["30"]["where"] == "protocol, section '30. Research ethics approval'"
    # Content, not headings: 9b names the comparator but not why it was chosen.
    assert by_id["9b"]["status"] == "partly filled"
    assert by_id["9b"]["missing"] == ["why this comparator was chosen"]
    assert by_id["10"]["status"] == "filled"  # the example defines both estimands
    (tmp_path / "trial.yaml").write_text(example_text())
    proc = run("checklist", "trial.yaml", "--json", cwd=tmp_path)
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert data["filled"] + data["partly_filled"] + data["to_complete"] == len(SPIRIT_2025)
    plain = run("checklist", "trial.yaml", cwd=tmp_path)
    assert plain.stdout.strip().splitlines()[-1] == (
        f"{data['filled']} filled, {data['partly_filled']} partly filled, "
        f"{data['to_complete']} to complete, of {len(SPIRIT_2025)} items")
    tidier = run("checklist", "trial.yaml", "--guideline", "tidier", cwd=tmp_path)
    assert tidier.returncode == 0 and "of 12 items" in tidier.stdout


def test_templates_export_command(tmp_path):
    proc = run("templates", "export", str(tmp_path / "mine"))
    assert proc.returncode == 0
    assert (Path(tmp_path / "mine") / "protocol.md.j2").exists()


@pytest.mark.parametrize("body, status, missing", [
    ("Text the trial file gave.", "filled", []),
    ("**[TO COMPLETE: sponsor name]**", "to complete", ["sponsor name"]),
    ("| a | **[TO COMPLETE: x]** |\n|---|---|", "to complete", ["x"]),
    ("The comparator is care as usual. **[TO COMPLETE: why]**", "partly filled", ["why"]),
    ("", "to complete", []),
])
def test_judge_reads_content_not_headings(body, status, missing):
    assert judge(body) == (status, missing)


def test_checklist_marks_a_missing_estimand_as_partly_filled():
    trial = load_trial(Path(__file__).resolve().parents[2] / "protocols" / "feasibility-pilot"
                       / "trial.yaml")
    by_id = {i["item"]: i for i in checklist(trial)}
    assert by_id["10"]["status"] == "partly filled"
    assert any("intercurrent events" in m for m in by_id["10"]["missing"])
    assert by_id["27a"]["status"] == "partly filled"
    tidier = {i["item"]: i for i in checklist(trial, "tidier")}
    # TIDieR 10 and 12 are plans for recording, not facts that cannot exist yet.
    assert tidier["10"]["status"] == "filled" and tidier["12"]["status"] == "filled"
    assert tidier["3"]["status"] == "to complete"  # no materials in this file


def test_documents_carry_estimands_harms_and_the_gamble_items(trial):
    protocol, _ = markdown_for(trial, "protocol", with_figures=False)
    item10 = protocol.split("### 10. Objectives")[1].split("### 11.")[0]
    assert "| Intercurrent event | Strategy |" in item10
    assert "| Death before readmission | composite |" in item10
    item27a = protocol.split("### 27a.")[1].split("### 27b.")[0]
    assert "standardisation" in item27a and "likelihood-ratio test" in item27a
    assert "at least one serious adverse event" in item27a  # SPIRIT 2025 27a: harms
    assert "heteroscedastic" not in item27a.split("(primary outcome)")[1].split(
        "(secondary outcome)")[0]
    assert protocol.count("| 1 | Primary registry") == 1 and "| 24 | IPD sharing" in protocol
    sap, _ = markdown_for(trial, "sap", with_figures=False)
    for heading in ("### Estimands", "### Covariates", "### Assumption checks and alternatives",
                    "### Complier average causal effect", "### Missing data",
                    "### Subgroup analyses", "### Harms", "### Statistical software"):
        assert heading in sap, heading
    assert "Visit windows: Questionnaires completed within 6 weeks" in sap
    assert "No subgroup analyses are pre-specified" in sap
    assert "to be named" not in sap and "jomo" in sap  # imputation respects clustering
    process, _ = markdown_for(trial, "process-evaluation", with_figures=False)
    for phrase in ("Leadership, choice and control", "met a peer worker at least once",
                   "instrumental variables", "sampled purposively", "before the trial outcomes "
                   "are known", "Contamination is recorded", "for peer workers"):
        assert phrase in process, phrase


@pytest.mark.parametrize("guideline", ["spirit-2025", "tidier"])
def test_checklist_points_at_headings_of_the_protocol(trial, guideline):
    # Each item names the section of the drafted protocol that carries it: that heading
    # must exist, word for word, in the document the user opens.
    import re

    text, _ = markdown_for(trial, "protocol", with_figures=False)
    headings = {re.sub(r"^#+\s*", "", line).strip() for line in text.splitlines()
                if line.startswith("#")}
    items = checklist(trial, guideline)
    assert items
    for item in items:
        section = re.fullmatch(r"protocol, section '([^']+)'(, .*)?", item["where"])
        assert section, item
        assert section.group(1) in headings, item


def test_a_count_primary_outcome_is_written_up_by_its_rate_ratio():
    import yaml

    data = yaml.safe_load(example_text())
    out = next(o for o in data["change_model"]["outcomes"] if o["id"] == "readmission")
    out.update(type="count", label="Psychiatric admissions within 12 months of discharge")
    data["assumptions"]["primary"] = {"rate": 0.05, "rate_ratio": 0.7, "dispersion": 0.8,
                                      "exposure": 12}
    data["assumptions"].pop("sensitivity")
    trial = load_trial_text(yaml.safe_dump(data, sort_keys=False), "count.yaml")
    text, _ = markdown_for(trial, "protocol", with_figures=False)
    assert ("We assume 0.05 events per unit of exposure in the control arm") in text
    assert ("12 units of exposure per participant and a negative binomial distribution with "
            "dispersion 0.8, to detect a rate ratio of 0.7") in text
    assert "| Rate ratio | 0.7 |" in text  # the sensitivity table names the parameter
