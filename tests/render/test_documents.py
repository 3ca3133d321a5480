"""Protocol drafts: DOCX structure, HTML escaping, safe writing, the template sandbox."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trialplan.errors import InputError
from trialplan.model.checks import example_text, load_trial_text
from trialplan.planning.context import SPIRIT_2025
from trialplan.render.documents import export_templates
from trialplan.render.drafts import checklist, markdown_for, write_draft


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
    assert len(doc.inline_shapes) == 4  # change model, two power curves, recruitment


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
    assert out.count("data:image/png;base64,") == 4  # figures embedded: standalone file
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
    assert text.splitlines()[0].endswith("SAP (house style)")


def test_markdown_is_deterministic_and_every_number_comes_from_the_plan(trial):
    one, _ = markdown_for(trial, "protocol", with_figures=False)
    two, _ = markdown_for(trial, "protocol", with_figures=False)
    assert one == two
    assert "1,354" in one  # participants to recruit, from the plan
    assert "trialplan size proportions --p1 0.38 --p2 0.29 --power 0.9" in one


@pytest.mark.parametrize("document", ["sap", "process-evaluation", "feasibility"])
def test_companion_documents_render(trial, document):
    text, _ = markdown_for(trial, document, with_figures=False)
    assert text.startswith("# Peer support for discharge")
    if document == "feasibility":
        assert "Progression criteria" in text and "at least 80%" in text
    if document == "process-evaluation":
        assert "Mechanisms of impact" in text and "Context" in text


def test_checklist_finds_every_item_and_counts(tmp_path, trial):
    items = checklist(trial)
    assert [i["item"] for i in items] == [i for i, _ in SPIRIT_2025]
    assert all(i["status"] in ("filled", "to complete") for i in items)
    by_id = {i["item"]: i for i in items}
    assert by_id["19"]["status"] == "filled"  # the sample size is always written
    assert by_id["30"]["status"] == "to complete"  # no ethics text in the example
    (tmp_path / "trial.yaml").write_text(example_text())
    proc = run("checklist", "trial.yaml", "--json", cwd=tmp_path)
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert data["filled"] + data["to_complete"] == len(SPIRIT_2025)
    plain = run("checklist", "trial.yaml", cwd=tmp_path)
    assert plain.stdout.strip().splitlines()[-1] == (
        f"{data['filled']} filled, {data['to_complete']} to complete, of {len(SPIRIT_2025)} "
        "items")
    tidier = run("checklist", "trial.yaml", "--guideline", "tidier", cwd=tmp_path)
    assert tidier.returncode == 0 and "of 12 items" in tidier.stdout


def test_templates_export_command(tmp_path):
    proc = run("templates", "export", str(tmp_path / "mine"))
    assert proc.returncode == 0
    assert (Path(tmp_path / "mine") / "protocol.md.j2").exists()
