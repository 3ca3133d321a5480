"""Document layout: the pandoc filter, citations, the DOCX finishing pass, paper sizes."""

import io
import re
import zipfile
from importlib import resources
from pathlib import Path

import pypandoc
import pytest

from trialplan.errors import InputError
from trialplan.model.checks import example_text, load_trial_text
from trialplan.render import documents
from trialplan.render.drafts import csl_references, markdown_for, write_draft

FILTER = str(resources.files("trialplan").joinpath("data", "trialplan.lua"))


def _filtered(markdown: str, to: str = "plain") -> str:
    return pypandoc.convert_text(markdown, to, format="markdown",
                                 extra_args=["--lua-filter", FILTER, "--wrap=none"])


TWO_TABLES = """\
See @tbl:b, then @fig:c and @tbl:a.

| A | B |
|---|---|
| 1 | 2 |

: First. { #tbl:a }

| C | D |
|---|---|
| 3 | 4 |

: Second. { #tbl:b }

![Picture.](nothing.png){ #fig:c }
"""


def test_tables_and_figures_are_numbered_in_order_and_referred_to():
    text = _filtered(TWO_TABLES, "markdown")
    assert "See Table 2, then Figure 1 and Table 1." in text
    assert "**Table 1.** First." in text and "**Table 2.** Second." in text
    assert "**Figure 1.** Picture." in text
    assert "@tbl" not in text and "@fig" not in text


def test_column_widths_give_the_longest_word_room_and_share_the_rest():
    md = ("| Short | Text |\n|---|---|\n| a | " + " ".join(["word"] * 60) + " |\n"
          "| Internationalisation | b |\n")
    native = _filtered(md, "native")
    widths = [float(w) for w in re.findall(r"ColWidth ([\d.e-]+)", native)]
    assert len(widths) == 2 and sum(widths) == pytest.approx(1.0)
    # 'Internationalisation' (20 letters at 9 pt) needs more than 15% of 453 pt
    assert widths[0] * 453 > 20 * 0.5 * 9
    assert widths[1] > widths[0]  # the long text takes what is left


def test_a_table_too_wide_for_the_page_goes_landscape_in_docx(tmp_path):
    heads = [f"Heading{i}longword" for i in range(9)]
    md = ("| " + " | ".join(heads) + " |\n|" + "---|" * 9 + "\n| "
          + " | ".join("x" for _ in heads) + " |\n\n: Wide. { #tbl:w }\n\nAfter.\n")
    data = documents._pandoc(md, "docx", title="t")
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml").decode()
    sections = re.findall(r"<w:sectPr>.*?</w:sectPr>", xml, re.S)
    assert any('w:orient="landscape"' in s for s in sections)
    # every section carries the footer, and the landscape table's grid spans its width
    assert all("footerReference" in s for s in sections)
    grid = [int(w) for w in re.findall(r'<w:gridCol w:w="(\d+)"', xml)]
    assert sum(grid) == pytest.approx(16838 - 2 * 1417, abs=9)
    assert "<w:cantSplit/>" in xml
    assert 'w:val="TableSmall"' in xml  # cells in the 8-pt table style


def _png(colour: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1, 1), facecolor=colour)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def test_figures_reach_docx_and_html_from_files_not_inline(tmp_path):
    figures = {"figures/a.png": _png("red"), "figures/b.png": _png("blue")}
    md = ("![First.](figures/a.png){#fig:a}\n\n![Second.](figures/b.png){#fig:b}\n\n"
          "![Not ours.](figures/c.png)\n")
    data = documents._pandoc(md, "docx", title="t", figures=figures)
    docx = zipfile.ZipFile(io.BytesIO(data))
    media = sorted(docx.read(n) for n in docx.namelist() if n.startswith("word/media/"))
    assert media == sorted(figures.values())  # each figure once; figures/c.png does not exist
    xml = docx.read("word/document.xml").decode()
    assert "base64" not in xml and 'descr="figures/a.png"' in xml
    assert "figure-dir" not in docx.read("docProps/custom.xml").decode()
    html = documents._pandoc(md, "html", title="t", figures=figures).decode()
    assert html.count('src="data:image/png;base64,') == 2
    with pytest.raises(ValueError, match="figures/NAME.png"):
        documents._pandoc(md, "docx", title="t", figures={"figures/../x.png": b""})


@pytest.fixture(scope="module")
def trial():
    text = example_text() + """
references:
  - id: enrich2022
    authors: [Gillard S, Bremner S, Patel A, et al.]
    title: A parallel, two-group, individually randomised controlled trial
    journal: Lancet Psychiatry
    year: 2022
    volume: "9"
    issue: "2"
    pages: 125-136
    doi: 10.1016/S2215-0366(21)00398-9
"""
    text = text.replace("  comparator: Care as usual",
                        "  comparator: Care as usual, as in ENRICH [@enrich2022]")
    return load_trial_text(text, "trial.yaml")


def _write(trial, path, **options):
    """Like write_draft, without drawing the figures (faster; pandoc notes them missing)."""
    text, _ = markdown_for(trial, "protocol", with_figures=False)
    documents.write_document(text, {}, path, title="t", references=csl_references(trial),
                             **options)


def test_trial_file_references_are_cited_and_listed_with_the_bundled_ones(trial, tmp_path):
    items = csl_references(trial)
    assert items[0]["author"][0] == {"family": "Gillard", "given": "S"}
    assert items[0]["author"][-1] == {"literal": "et al."}
    _write(trial, tmp_path / "p.html")
    html = (tmp_path / "p.html").read_text()
    refs = html[html.index('id="refs"'):]
    assert "Lancet Psychiatry" in refs and "Gillard S" in refs
    assert "Hoffmann" in refs  # bundled: the TIDieR citation of the template
    assert "[@" not in html and "@tbl:" not in html


def test_docx_footer_toc_and_paper(trial, tmp_path):
    _write(trial, tmp_path / "a4.docx")
    _write(trial, tmp_path / "letter.docx", paper="letter")
    a4 = zipfile.ZipFile(tmp_path / "a4.docx")
    body = a4.read("word/document.xml").decode()
    footer = "".join(a4.read(n).decode() for n in a4.namelist()
                     if re.fullmatch(r"word/footer\d*\.xml", n))
    assert "PEER-DISCHARGE trial protocol, version" in footer
    assert "TRIALPLAN-FOOTER" not in footer and " PAGE " in footer
    assert '<w:pgSz w:w="11906" w:h="16838"/>' in body
    toc = body[body.index(">Contents<"):body.index("</w:sdt>")]
    settings = a4.read("word/settings.xml").decode()
    assert settings.index('<w:updateFields w:val="true"/>') < settings.index("<w:rsids>")
    assert "Administrative information" in toc and "19. Sample size" in toc
    # Each entry's page number is a PAGEREF field to a bookmark in its heading.
    names = re.findall(r"PAGEREF (_Toc_trialplan_\d+) ", toc)
    assert len(names) >= 40 and len(set(names)) == len(names)
    for name in names:
        assert f'w:name="{name}"' in body[body.index("</w:sdt>"):]
    assert "TOC \\o" not in body
    letter = zipfile.ZipFile(tmp_path / "letter.docx").read("word/document.xml").decode()
    assert '<w:pgSz w:w="12240" w:h="15840"/>' in letter
    assert "11906" not in letter


def test_bad_paper_and_missing_csl_are_input_errors(trial, tmp_path):
    with pytest.raises(InputError, match="paper must be one of a4, letter"):
        write_draft(trial, tmp_path / "p.docx", paper="a3")
    with pytest.raises(InputError, match="citation style"):
        write_draft(trial, tmp_path / "p.docx", csl=tmp_path / "missing.csl")
    assert not (tmp_path / "p.docx").exists()


def test_another_citation_style_changes_the_citations(trial, tmp_path):
    csl = Path(str(resources.files("trialplan").joinpath("data", "vancouver.csl")))
    brackets = tmp_path / "brackets.csl"
    # the same style with bracketed citation numbers
    brackets.write_text(csl.read_text().replace('prefix="(" suffix=")"',
                                                'prefix="[" suffix="]"'))
    _write(trial, tmp_path / "v.html")
    _write(trial, tmp_path / "b.html", csl=brackets)
    def text(name):
        return re.sub(r"<[^>]+>", "", (tmp_path / name).read_text())

    assert "TIDieR checklist (" in text("v.html")
    assert "TIDieR checklist [" in text("b.html")


def _house_style(tmp_path) -> Path:
    """The bundled style turned into US Letter with 1-inch margins, saved as Word would."""
    src = zipfile.ZipFile(io.BytesIO(
        resources.files("trialplan").joinpath("data", "reference.docx").read_bytes()))
    out = tmp_path / "house.docx"
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "word/document.xml":
                text = data.decode()
                text = re.sub(r"<w:pgSz [^>]*/>", '<w:pgSz w:w="12240" w:h="15840"/>', text)
                text = re.sub(r'w:(left|right|top|bottom)="1417"', r'w:\1="1440"', text)
                text = text.replace("<w:sectPr>", '<w:sectPr w:rsidR="00AB12CD">')  # as Word
                data = text.encode()
            dst.writestr(info, data)
    return out


def test_a_house_style_keeps_its_page_unless_paper_is_given(trial, tmp_path):
    house = _house_style(tmp_path)
    _write(trial, tmp_path / "own.docx", reference_doc=house)
    _write(trial, tmp_path / "a4.docx", reference_doc=house, paper="a4")
    own = zipfile.ZipFile(tmp_path / "own.docx").read("word/document.xml").decode()
    a4 = zipfile.ZipFile(tmp_path / "a4.docx").read("word/document.xml").decode()
    assert '<w:pgSz w:w="12240" w:h="15840"/>' in own and "11906" not in own
    assert '<w:pgSz w:w="11906" w:h="16838"/>' in a4
    # its margins are kept, and tables span its text width (8.5 in - 2 in)
    assert 'w:left="1440"' in own
    grids = re.findall(r"<w:tblGrid>(.*?)</w:tblGrid>", own)
    widths = {sum(int(w) for w in re.findall(r'w:w="(\d+)"', g)) for g in grids}
    assert widths == {12240 - 2 * 1440}


@pytest.mark.parametrize("draft", sorted(Path(__file__).resolve().parents[2].glob(
    "protocols/*/*.md")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_caption_follows_its_table_and_every_reference_has_a_target(draft):
    lines = draft.read_text().splitlines()
    previous = ""
    for number, line in enumerate(lines, 1):
        if line.startswith(": "):  # a table caption: pandoc attaches it only right after
            assert previous.startswith("|"), f"{draft.name}:{number}: caption not after a table"
        if line.strip():
            previous = line
    text = "\n".join(lines)
    targets = set(re.findall(r"\{ #((?:tbl|fig):[\w-]+) \}", text))
    for ref in set(re.findall(r"@((?:tbl|fig):[\w-]+)", text)):
        assert ref in targets, f"{draft.name}: @{ref} refers to nothing"


def test_pandoc_runs_once_per_document(monkeypatch):
    import subprocess

    started = []
    popen = subprocess.Popen.__init__

    def counted(self, args, *rest, **kwargs):
        started.append(args)
        popen(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", counted)
    documents._pandoc("# Title\n\nText [@nosuchref].\n", "docx", title="t")
    documents._pandoc("# Title\n\nText.\n", "html", title="t")
    assert len(started) == 2 and all("pandoc" in Path(a[0]).name for a in started)
