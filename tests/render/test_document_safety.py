"""Documents from hostile trial files and templates: no local file, no live script, limits.

The trial file tests/data/hostile/markup.yaml puts images of local files, javascript:
links, attribute spans with event handlers, raw HTML, template syntax, a YAML metadata
block and a fenced div into user text.  The HTML and DOCX are inspected as a browser
and Word would read them.
"""

import os
import re
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from trialplan.errors import InputError
from trialplan.model.checks import example_text, load_trial, load_trial_text
from trialplan.render.documents import (
    escape_markdown,
    fix_docx_dates,
    render_markdown,
    write_document,
)
from trialplan.render.drafts import csl_references, markdown_for

HOSTILE = Path(__file__).parents[1] / "data" / "hostile"


def run(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "trialplan", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**os.environ, **(env or {})})


class _Live(HTMLParser):
    """Every element that could run code or load a resource, as a browser reads the HTML."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "object", "embed", "link", "base", "meta"):
            if not (tag == "meta" and dict(attrs).keys() <= {"charset", "name", "content"}):
                self.found.append((tag, attrs))
        for key, value in attrs:
            if key.startswith("on"):
                self.found.append((tag, key, value))
            if key in ("href", "src", "data", "action", "formaction") and value and not (
                    value.startswith("#") or value.startswith("data:image/png;base64,")):
                self.found.append((tag, key, value[:80]))


@pytest.fixture(scope="module")
def hostile_outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    trial = load_trial(HOSTILE / "markup.yaml")
    text, figures = markdown_for(trial, "protocol")
    for suffix in ("html", "docx", "md"):
        write_document(text, figures, out / f"p.{suffix}", title=trial.model.trial.title,
                       references=csl_references(trial))
    (out / "figure-count").write_text(str(len(figures)))
    return out


def _own_figures(out) -> int:
    """How many figures trialplan drew for the document: the only images allowed in it."""
    count = int((out / "figure-count").read_text())
    assert count >= 4
    return count


def test_html_from_hostile_user_text_has_nothing_live(hostile_outputs):
    html = (hostile_outputs / "p.html").read_text()
    parser = _Live()
    parser.feed(html)
    assert parser.found == []
    # trialplan's own figures only
    assert html.count("data:image/png;base64,") == _own_figures(hostile_outputs)
    assert "root:x:0" not in html  # /etc/passwd was not read
    # The user's text is shown as typed, markup characters included.
    for literal in ("![x](/etc/passwd)", "[y](javascript:alert(1))", "{{ 7*7 }}",
                    "[z]{onclick=alert(2)}"):
        assert literal in html, literal
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in html
    # The trial file's references are text too: a CSL JSON bibliography's rich text (bold,
    # italics, superscript, small caps) came out formatted.
    refs = html[html.index('id="ref-hostile2024"'):]
    for literal in ("&lt;b&gt;7&lt;/b&gt;", "&lt;i&gt;Homo&lt;/i&gt;", "&lt;sup&gt;2&lt;/sup&gt;",
                    "[t](javascript:alert(5))", "&lt;span"):
        assert literal in refs, literal


def test_docx_from_hostile_user_text_has_no_link_or_foreign_image(hostile_outputs):
    with zipfile.ZipFile(hostile_outputs / "p.docx") as z:
        names = z.namelist()
        rels = z.read("word/_rels/document.xml.rels").decode()
        body = z.read("word/document.xml").decode()
    media = [n for n in names if n.startswith("word/media/")]
    assert len(media) == _own_figures(hostile_outputs)
    assert 'TargetMode="External"' not in rels
    # only internal anchors (citations to the reference list), never an external target
    assert all("w:anchor=" in h for h in re.findall(r"<w:hyperlink\b[^>]*>", body))
    assert "root:x:0" not in body
    assert "![x](/etc/passwd)" in body and "{{ 7*7 }}" in body
    assert "&lt;b&gt;7&lt;/b&gt;" in body  # a reference's volume, as typed
    custom = zipfile.ZipFile(hostile_outputs / "p.docx").read("docProps/custom.xml").decode()
    assert 'name="references"' not in custom


def test_markdown_keeps_user_text_inert(hostile_outputs):
    md = (hostile_outputs / "p.md").read_text()
    assert "<script>" not in md and "\\<script\\>" in md
    assert "](/etc/passwd)" not in md.replace("\\](/etc/passwd)", "")
    assert "\n---\ncss:" not in md


@pytest.mark.parametrize("text", [
    "![x](/etc/passwd)", "[x](javascript:alert(1))", "[x]{onclick=alert(1)}",
    "<b onmouseover=alert(1)>hi</b>", "{{ 7*7 }}", "---\ntitle: x\n---", "::: {.x}\nhi\n:::",
    "1. one\n- two\n> three\n# four", "`code` *em* _em_ $x$ @cite ^sup^ ~sub~ a|b",
    "&lt;script&gt; &amp; \\* back\\slash", "[r]: javascript:alert(1)\n\n[r]",
])
def test_escaped_text_renders_as_itself(text):
    """pandoc reads the escaped text back as exactly the original characters."""
    import pypandoc

    plain = pypandoc.convert_text(escape_markdown(text), "plain", format="markdown-smart",
                                  extra_args=["--sandbox", "--wrap=none"])
    assert " ".join(plain.split()) == " ".join(text.split())


def test_table_cells_escape_pipes_once():
    from trialplan.render.documents import _cell

    assert _cell(escape_markdown("a | b\nc")) == "a \\| b c"
    assert _cell("x|y") == "x\\|y"


def test_docx_and_html_are_byte_identical_and_honour_source_date_epoch(tmp_path, monkeypatch):
    trial = load_trial_text(example_text(), "t.yaml")
    text, figures = markdown_for(trial, "protocol")
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    for name in ("a", "b"):
        for suffix in ("docx", "html"):
            write_document(text, figures, tmp_path / f"{name}.{suffix}", title="T")
    for suffix in ("docx", "html"):
        assert (tmp_path / f"a.{suffix}").read_bytes() == (tmp_path / f"b.{suffix}").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.docx") as z:
        assert "dcterms:created" not in z.read("docProps/core.xml").decode()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764115200")
    write_document(text, figures, tmp_path / "c.docx", title="T")
    with zipfile.ZipFile(tmp_path / "c.docx") as z:
        core = z.read("docProps/core.xml").decode()
        assert all(i.date_time == (2025, 11, 26, 0, 0, 0) for i in z.infolist())
    assert re.findall(r"<dcterms:created[^>]*>([^<]*)<", core) == ["2025-11-26T00:00:00Z"]
    # A malformed value is refused before anything else runs (numpy fails on it at import).
    bad = run("size", "means", "--d", "0.3", "--power", "0.8",
              env={"SOURCE_DATE_EPOCH": "yesterday"})
    assert bad.returncode == 1 and "SOURCE_DATE_EPOCH must be whole seconds" in bad.stderr
    # Set but blank is unset: numpy's f2py (imported by plan) failed on int("").
    blank = run("plan", HOSTILE.parent / "hostile" / "small_cluster.yaml",
                env={"SOURCE_DATE_EPOCH": " "})
    assert blank.returncode == 0 and "internal error" not in blank.stderr, blank.stderr


def test_fix_docx_dates_keeps_every_part(tmp_path):
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("docProps/core.xml", '<cp:x><dcterms:created xsi:type="W3CDTF">1970-01-01'
                                        'T00:00:00Z</dcterms:created></cp:x>')
        z.writestr("word/document.xml", "<w/>")
    out = zipfile.ZipFile(io.BytesIO(fix_docx_dates(buf.getvalue(), None)))
    assert out.namelist() == ["docProps/core.xml", "word/document.xml"]
    assert out.read("docProps/core.xml") == b"<cp:x></cp:x>"


# ---------------------------------------------------------------------------------------------
# Templates: sandbox limits, errors with file and line, symlinks


@pytest.fixture(scope="module")
def trial():
    return load_trial_text(example_text(), "trial.yaml")


@pytest.fixture(scope="module")
def context(trial):
    from trialplan.planning import build_plan
    from trialplan.planning.context import build_context

    return build_context(trial, build_plan(trial))


BOMBS = [
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "loops over range() take more than"),
    ('{{ "x" * 10**9 }}', "larger than the limit"),
    ('{{ "x" * 100000 * 100000 }}', "larger than the limit"),
    ("{{ 10 ** 10 ** 10 ** 10 }}", "too large a number"),
    ('{{ "%0999999999d" % 1 }}', "a width or precision"),
    ('{{ "{:>999999999}".format(1) }}', "a width or precision"),
    ('{{ "x"|center(999999999) }}', "larger than the limit"),
    ("{{ lipsum(n=1000000000) }}", "larger than the limit"),
    ('{% set ns = namespace(s="xxxxxxxxxx") %}{% for i in range(40) %}'
     "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}", "ran out of memory"),
    ('{% for i in range(99999) %}{{ "y" * 999999 }}{% endfor %}', "longer than 500,000"),
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "recursion too deep"),
    ('{% include "protocol.md.j2" %}', "recursion too deep"),
    ("line one\n{{ 1 / 0 }}", "protocol.md.j2:2: ZeroDivisionError"),
    ("{{ trial.__class__.__mro__ }}", "not allowed"),
]


@pytest.mark.parametrize("body, message", BOMBS, ids=[b[1] for b in BOMBS])
def test_template_bombs_are_stopped_with_file_and_line(tmp_path, context, body, message):
    (tmp_path / "protocol.md.j2").write_text(body)
    with pytest.raises(InputError, match=re.escape(message)) as exc:
        render_markdown("protocol", context, template_dir=tmp_path)
    assert "template " in str(exc.value)


def test_a_template_error_writes_no_file(tmp_path):
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "protocol.md.j2").write_text("ok\n{{ 1 / 0 }}\n")
    (tmp_path / "t.yaml").write_text(example_text())
    proc = run("protocol", "t.yaml", "-o", "p.docx", "--template-dir", "tpl", cwd=tmp_path)
    assert proc.returncode == 1 and "protocol.md.j2:2: ZeroDivisionError" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.yaml", "tpl"]


def test_template_dir_cannot_reach_outside_through_symlinks(tmp_path, context):
    outside = tmp_path / "secret.txt"
    outside.write_text("TOP SECRET")
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "x.j2").symlink_to(outside)
    (tpl / "protocol.md.j2").write_text('{% include "x.j2" %}')
    with pytest.raises(InputError, match="outside the template directory"):
        render_markdown("protocol", context, template_dir=tpl)
    (tpl / "protocol.md.j2").unlink()
    (tpl / "protocol.md.j2").symlink_to(outside)
    with pytest.raises(InputError, match="outside the template directory"):
        render_markdown("protocol", context, template_dir=tpl)
    (tpl / "protocol.md.j2").unlink()
    os.mkfifo(tpl / "protocol.md.j2")
    with pytest.raises(InputError, match="not a regular file"):
        render_markdown("protocol", context, template_dir=tpl)
    # A link that stays inside the directory is fine.
    (tpl / "protocol.md.j2").unlink()
    (tpl / "real.j2").write_text("inside {{ 6 * 7 }}")
    (tpl / "protocol.md.j2").symlink_to(tpl / "real.j2")
    assert render_markdown("protocol", context, template_dir=tpl) == "inside 42\n"


def test_the_shipped_documents_render_within_the_limits():
    trial = load_trial(HOSTILE / "markup.yaml")
    for document in ("protocol", "sap", "process-evaluation", "feasibility"):
        text, _ = markdown_for(trial, document, with_figures=False)
        # as Markdown text, or inside the title page's quoted metadata
        assert "{{ 7*7 }}" not in text and ("\\{\\{ 7\\*7 \\}\\}" in text
                                            or "\\\\{\\\\{ 7\\\\*7 \\\\}\\\\}" in text)


def test_diagram_text_formats_quote_user_labels_safely():
    from trialplan.render.diagram import dot, mermaid

    text = example_text().replace(
        "      label: Hope\n",
        '      label: "Hope\\\\\\" ,URL=\\"javascript:alert(1)\\" <img src=x onerror=alert(2)>"\n')
    trial = load_trial_text(text, "t.yaml")
    graph = dot(trial)
    line = next(x for x in graph.splitlines() if x.startswith('  "hope"'))
    # The label is one DOT string: every quote inside it is escaped, so it cannot end early.
    label = re.match(r'  "hope" \[label="((?:[^"\\]|\\.)*)", fillcolor="#[0-9a-f]+"\];$', line)
    assert label, line
    flow = mermaid(trial)
    assert "<img" not in flow and "#lt;img src=x onerror=alert(2)#gt;" in flow


def test_style_files_pandoc_would_choke_on_are_refused_before_any_work(tmp_path):
    from trialplan.render.drafts import write_draft

    trial = load_trial_text(example_text())
    fifo = tmp_path / "style.csl"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.csl"
    huge.write_bytes(b" " * 2_000_001)
    # A 300 MB styles.xml in 0.3 MB: pandoc unpacked it into 0.9 GB of memory.
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/styles.xml", b"<" + b" " * 300_000_000 + b"/>")
    for kwargs, message in (({"csl": fifo}, "citation style .* is a FIFO"),  # was "missing"
                            ({"csl": "/dev/zero"}, "is a device, not a file"),
                            ({"csl": huge}, "2,000,001 bytes; at most 2,000,000"),
                            ({"reference_doc": bomb}, "unpacks to 300,000,003 bytes"),
                            ({"reference_doc": "/dev/zero"}, "is a device, not a file")):
        with pytest.raises(InputError, match=message):
            write_draft(trial, tmp_path / "p.docx", **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.docx", "huge.csl", "style.csl"]
