"""Render check: the drafts as LibreOffice and Chromium print them.

Each example in protocols/ is written as DOCX and HTML; LibreOffice (headless)
converts the DOCX to PDF and Chromium (headless) prints the HTML to PDF.  From
the PDFs' text (pdftotext) the test checks that no word was broken across
lines, that every table column's heading is there, and that every page is A4.
Slow: run by .ci/run, which installs libreoffice-writer-nogui, chromium and
poppler-utils.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from trialplan.model.checks import load_trial
from trialplan.render.documents import DOCUMENTS
from trialplan.render.drafts import markdown_for, write_draft

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TRIALS = sorted((ROOT / "protocols").glob("*/trial.yaml"))
TOOLS = ("soffice", "chromium", "pdftotext", "pdfinfo")
A4 = (595.3, 841.9)  # points
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-pdf-header-footer"]


def _tools_or_skip():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing and not os.environ.get("CI"):
        pytest.skip(f"render check needs {', '.join(missing)}")
    assert not missing, f"CI must install {', '.join(missing)} (see .ci/run)"


def docx_to_pdf(paths: list[Path], outdir: Path) -> None:
    profile = Path(tempfile.mkdtemp(prefix="lo-profile-"))
    try:
        subprocess.run(["soffice", f"-env:UserInstallation=file://{profile}", "--headless",
                        "--convert-to", "pdf", "--outdir", str(outdir), *map(str, paths)],
                       check=True, capture_output=True, timeout=600)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def html_to_pdf(path: Path, pdf: Path) -> None:
    profile = Path(tempfile.mkdtemp(prefix="chromium-"))
    try:
        subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                        f"--print-to-pdf={pdf}", path.resolve().as_uri()],
                       check=True, capture_output=True, timeout=300)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def page_sizes(pdf: Path) -> list[tuple[float, float]]:
    out = subprocess.run(["pdfinfo", "-f", "1", "-l", "9999", str(pdf)], check=True,
                         capture_output=True, text=True).stdout
    return [(float(w), float(h)) for w, h in
            re.findall(r"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+)", out)]


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout


def _word(token: str) -> str:
    # pandoc prints typographic apostrophes: compare words with plain ones
    return token.replace("\u2019", "'").strip(".,;:()[]*\"'\u201c\u201d")


def vocabulary(markdown: str) -> set[str]:
    """Every word of the document as text (pandoc's plain-text rendering of the Markdown)."""
    import pypandoc

    plain = pypandoc.convert_text(markdown, "plain", format="markdown",
                                  extra_args=["--wrap=none"])
    return {_word(t) for t in plain.split()} - {""}


def broken_words(text: str, words: set[str]) -> list[str]:
    """Line ends whose fragment joins the next line's first fragment into a document word
    that neither fragment is by itself (``prima`` + ``ry``).  A break after a hyphen is
    a normal line break and is not counted."""
    found = []
    lines = [line.split() for line in text.splitlines()]
    for here, after in zip(lines, lines[1:], strict=False):
        if not here or not after:
            continue
        tail, head = _word(here[-1]), _word(after[0])
        if not tail or not head or here[-1].endswith("-"):
            continue
        joined = tail + head
        if joined in words and not (tail in words and head in words):
            found.append(f"{tail}|{head}")
    return found


def table_headings(markdown: str) -> list[str]:
    """The heading cells of every pipe table in the Markdown."""
    lines = markdown.splitlines()
    heads = []
    for i, line in enumerate(lines[:-1]):
        if line.startswith("|") and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i + 1].strip()):
            heads += [c.strip() for c in line.strip().strip("|").split("|") if c.strip()]
    return heads


def test_the_checks_themselves_catch_what_they_look_for():
    words = {"primary", "Reliability", "follow-up", "and"}
    assert broken_words("the prima\nry outcome", words) == ["prima|ry"]
    assert broken_words("Reliabilit\ny and", words) == ["Reliabilit|y"]
    assert broken_words("follow-\nup", words) == []
    assert broken_words("primary\noutcome and", words) == []
    md = "| A | Bee cell |\n|---|---|\n| 1 | 2 |\n"
    assert table_headings(md) == ["A", "Bee cell"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    _tools_or_skip()
    out = tmp_path_factory.mktemp("render")
    cases = []
    docx_files = []
    for trial_file in TRIALS:
        trial = load_trial(trial_file)
        for document in DOCUMENTS:
            if document == "feasibility" and not trial.model.assumptions.feasibility:
                continue
            stem = f"{trial_file.parent.name}-{document}"
            markdown, _ = markdown_for(trial, document, with_figures=False)
            write_draft(trial, out / f"{stem}.docx", document=document, force=True)
            write_draft(trial, out / f"{stem}.html", document=document, force=True)
            html_to_pdf(out / f"{stem}.html", out / f"{stem}-html.pdf")
            docx_files.append(out / f"{stem}.docx")
            cases.append((stem, markdown))
    docx_to_pdf(docx_files, out)
    return out, cases


def _pdfs(out, stem):
    return {"LibreOffice (DOCX)": out / f"{stem}.pdf", "Chromium (HTML)": out / f"{stem}-html.pdf"}


def test_every_page_is_a4(rendered):
    out, cases = rendered
    for stem, _ in cases:
        for renderer, pdf in _pdfs(out, stem).items():
            sizes = page_sizes(pdf)
            assert sizes, (stem, renderer)
            for w, h in sizes:
                portrait = sorted((w, h))
                assert portrait == pytest.approx(list(A4), abs=1.5), (stem, renderer, w, h)


def test_no_word_is_broken_across_lines(rendered):
    out, cases = rendered
    problems = {}
    for stem, markdown in cases:
        words = vocabulary(markdown)
        for renderer, pdf in _pdfs(out, stem).items():
            found = broken_words(pdf_text(pdf), words)
            if found:
                problems[f"{stem} {renderer}"] = found
    assert problems == {}


def test_every_table_column_is_printed(rendered):
    out, cases = rendered
    missing = {}
    for stem, markdown in cases:
        heads = table_headings(markdown)
        assert heads, stem
        for renderer, pdf in _pdfs(out, stem).items():
            # Word by word: a renderer may interleave the lines of neighbouring cells.
            printed = {_word(t) for t in pdf_text(pdf).split()}
            gone = [h for h in heads if not {_word(t) for t in h.split()} <= printed]
            if gone:
                missing[f"{stem} {renderer}"] = gone
    assert missing == {}


def test_docx_has_page_numbers_and_references(rendered):
    out, cases = rendered
    for stem, markdown in cases:
        text = pdf_text(out / f"{stem}.pdf")
        pages = len(page_sizes(out / f"{stem}.pdf"))
        assert f"Page {pages} of {pages}" in text, stem
        assert "References" in text and "[@" not in text, stem
        assert re.search(r"Table 1\.", text) or "|" not in markdown, stem


def scroll_width(html: Path, width: int = 1280) -> tuple[int, int]:
    """(scrollWidth, clientWidth) of the page in a ``width``-pixel Chromium window."""
    probe = html.with_name(html.stem + "-probe.html")
    probe.write_text(html.read_text().replace(
        "</body>", "<script>document.body.setAttribute('data-scroll', "
        "document.documentElement.scrollWidth + 'x' + document.documentElement.clientWidth);"
        "</script></body>"))
    profile = Path(tempfile.mkdtemp(prefix="chromium-"))
    try:
        dom = subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                              f"--window-size={width},900", "--dump-dom", probe.as_uri()],
                             check=True, capture_output=True, text=True, timeout=300).stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    scroll, client = re.search(r'data-scroll="(\d+)x(\d+)"', dom).groups()
    return int(scroll), int(client)


def test_html_needs_no_horizontal_scrolling_at_1280_px(rendered):
    out, cases = rendered
    for stem, _ in cases:
        scroll, client = scroll_width(out / f"{stem}.html")
        assert scroll <= client, (stem, scroll, client)


def test_docx_contents_give_page_numbers(rendered):
    """LibreOffice prints each contents entry with the page its heading falls on."""
    out, cases = rendered
    for stem, _ in cases:
        text = pdf_text(out / f"{stem}.pdf")
        pages = len(page_sizes(out / f"{stem}.pdf"))
        contents = text[text.index("Contents"):]
        found = re.search(r"References\s*\.{3,}\s*(\d+)", contents)
        assert found, stem
        # The reference list ends the document: its entry points at one of the last pages.
        assert pages - 2 <= int(found.group(1)) <= pages, (stem, found.group(1), pages)
        assert "Error: Reference source not found" not in text, stem
