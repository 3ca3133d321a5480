"""Build the default DOCX house style, ``src/trialplan/data/reference.docx``.

Pandoc takes page size, margins, footers and paragraph/table styles for its
DOCX output from a *reference document*.  This script starts from pandoc's
own reference document (so every style pandoc uses exists) and sets a design
for a trials unit: A4 with 2.5 cm margins, Arial (Liberation Sans in
LibreOffice) throughout, numbered-caption styles, compact table text with a
ruled header, a title page, and a footer carrying the document's running
title (filled in per document by ``trialplan.render.documents``) and
"Page N of M".

Run from the project root (needs the test extras, for python-docx):

    python tools/make_reference_docx.py

The output is deterministic; ``tests/render/test_reference_docx.py`` checks
that the committed file is what this script makes.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import docx
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.shared import Cm, Pt, RGBColor

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "trialplan" / "data" / "reference.docx"
FONT = "Arial"
MONO = "Courier New"
ACCENT = RGBColor(0x1F, 0x3A, 0x5F)
GREY = RGBColor(0x55, 0x55, 0x55)
# The footer's running title: a DOCPROPERTY field, so Word keeps it current;
# its shown text is replaced per document (LibreOffice shows the stored text).
FOOTER_PROPERTY = "footer"
FOOTER_MARK = "TRIALPLAN-FOOTER"


def _pandoc_reference() -> bytes:
    import pypandoc

    out = subprocess.run([pypandoc.get_pandoc_path(), "--print-default-data-file",
                          "reference.docx"], check=True, capture_output=True)
    return out.stdout


def _style(doc, name, kind=WD_STYLE_TYPE.PARAGRAPH):
    try:
        return doc.styles[name]
    except KeyError:
        return doc.styles.add_style(name, kind)


def _font(style, size=None, bold=None, italic=None, colour=None, name=FONT):
    font = style.font
    font.name = name
    rpr = style.element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    for attr in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        fonts.set(qn(attr), name)
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:cstheme", "w:eastAsiaTheme"):
        fonts.attrib.pop(qn(attr), None)
    if size is not None:
        font.size = Pt(size)
    if bold is not None:
        font.bold = bold
    if italic is not None:
        font.italic = italic
    if colour is not None:
        font.color.rgb = colour


def _spacing(style, before=None, after=None, line=None, keep_next=None, page_break=None,
             align=None):
    fmt = style.paragraph_format
    if before is not None:
        fmt.space_before = Pt(before)
    if after is not None:
        fmt.space_after = Pt(after)
    if line is not None:
        fmt.line_spacing = line
    if keep_next is not None:
        fmt.keep_with_next = keep_next
    if page_break is not None:
        fmt.page_break_before = page_break
    if align is not None:
        fmt.alignment = align


def _page(doc):
    section = doc.sections[0]
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Cm(2.5))
    section.header_distance = section.footer_distance = Cm(1.25)
    footer = section.footer
    footer.is_linked_to_previous = False
    para = footer.paragraphs[0]
    para.style = doc.styles["Footer"]
    para._p.append(parse_xml(
        f'<w:fldSimple {nsdecls("w")} w:instr=" DOCPROPERTY {FOOTER_PROPERTY} \\* MERGEFORMAT ">'
        f"<w:r><w:t>{FOOTER_MARK}</w:t></w:r></w:fldSimple>"))
    para._p.append(parse_xml(f'<w:r {nsdecls("w")}><w:tab/><w:t xml:space="preserve">Page '
                             "</w:t></w:r>"))
    para._p.append(parse_xml(f'<w:fldSimple {nsdecls("w")} w:instr=" PAGE "><w:r><w:t>1</w:t>'
                             "</w:r></w:fldSimple>"))
    para._p.append(parse_xml(f'<w:r {nsdecls("w")}><w:t xml:space="preserve"> of </w:t></w:r>'))
    para._p.append(parse_xml(f'<w:fldSimple {nsdecls("w")} w:instr=" NUMPAGES "><w:r><w:t>1'
                             "</w:t></w:r></w:fldSimple>"))


def _table_style(doc):
    style = doc.styles["Table"]
    tbl_pr = style.element.find(qn("w:tblPr"))
    if tbl_pr is not None:
        style.element.remove(tbl_pr)
    # Thin rules above and below, hairlines between rows; the header row is shaded.
    style.element.append(parse_xml(
        f"<w:tblPr {nsdecls('w')}><w:tblBorders>"
        '<w:top w:val="single" w:sz="8" w:space="0" w:color="1F3A5F"/>'
        '<w:bottom w:val="single" w:sz="8" w:space="0" w:color="1F3A5F"/>'
        '<w:insideH w:val="single" w:sz="2" w:space="0" w:color="BFBFBF"/>'
        "</w:tblBorders><w:tblCellMar>"
        '<w:top w:w="29" w:type="dxa"/><w:left w:w="85" w:type="dxa"/>'
        '<w:bottom w:w="29" w:type="dxa"/><w:right w:w="85" w:type="dxa"/>'
        "</w:tblCellMar></w:tblPr>"))
    for old in style.element.findall(qn("w:tblStylePr")):
        style.element.remove(old)
    style.element.append(parse_xml(
        f'<w:tblStylePr {nsdecls("w")} w:type="firstRow"><w:rPr><w:b/></w:rPr>'
        '<w:tblPr/><w:trPr><w:tblHeader/></w:trPr><w:tcPr><w:shd w:val="clear" '
        'w:color="auto" w:fill="E3EAF2"/></w:tcPr></w:tblStylePr>'))


def _styles(doc):
    _font(doc.styles["Normal"], 10.5)
    _spacing(doc.styles["Normal"], after=0)
    # A little space before as well, so text after a table does not touch it.
    for name in ("Body Text", "First Paragraph"):
        _spacing(doc.styles[name], before=3, after=6, line=1.15)
    _spacing(doc.styles["Compact"], before=0, after=2)
    # Table cells (the filter applies these): 9 pt, or 8 pt for wide tables.
    cell = _style(doc, "Table Text")
    cell.base_style = doc.styles["Compact"]
    _font(cell, 9)
    _spacing(cell, before=0, after=0, line=1.0)
    small = _style(doc, "Table Small")
    small.base_style = cell
    _font(small, 8)
    lead = _style(doc, "Table Lead-in")
    lead.base_style = doc.styles["Body Text"]
    _spacing(lead, keep_next=True)
    for level, size, before in ((1, 15, 18), (2, 12.5, 14), (3, 11, 10)):
        style = doc.styles[f"Heading {level}"]
        _font(style, size, bold=True, colour=ACCENT)
        _spacing(style, before=before, after=4, keep_next=True)
    title = doc.styles["Title"]
    _font(title, 24, bold=True, colour=ACCENT)
    _spacing(title, before=120, after=18, align=WD_ALIGN_PARAGRAPH.LEFT)
    title_ppr = title.element.get_or_add_pPr()
    for border in title_ppr.findall(qn("w:pBdr")):
        title_ppr.remove(border)
    _font(doc.styles["Subtitle"], 15, colour=ACCENT)
    _spacing(doc.styles["Subtitle"], before=0, after=24, align=WD_ALIGN_PARAGRAPH.LEFT)
    for name in ("Author", "Date"):
        _font(doc.styles[name], 12, colour=GREY)
        _spacing(doc.styles[name], before=0, after=6, align=WD_ALIGN_PARAGRAPH.LEFT)
    _font(doc.styles["Abstract"], 10.5)
    _spacing(doc.styles["Abstract"], before=36, after=6, align=WD_ALIGN_PARAGRAPH.LEFT)
    _font(doc.styles["Abstract Title"], 11, bold=True, colour=ACCENT)
    _spacing(doc.styles["Abstract Title"], before=48, after=6, align=WD_ALIGN_PARAGRAPH.LEFT)
    for name in ("Caption", "Table Caption", "Image Caption"):
        # python-docx would translate "Caption" to Word's built-in "caption"
        style = next(st for st in doc.styles if st.name == name)
        _font(style, 9.5, italic=False, colour=ACCENT)
    _spacing(doc.styles["Table Caption"], before=10, after=4, keep_next=True)
    _spacing(doc.styles["Image Caption"], before=4, after=12)
    _spacing(doc.styles["Captioned Figure"], keep_next=True)
    _spacing(doc.styles["Figure"], keep_next=True)
    _font(doc.styles["Bibliography"], 9.5)
    _spacing(doc.styles["Bibliography"], after=4)
    doc.styles["Bibliography"].paragraph_format.left_indent = Cm(0.8)
    doc.styles["Bibliography"].paragraph_format.first_line_indent = Cm(-0.8)
    toc = doc.styles["TOC Heading"]
    _font(toc, 15, bold=True, colour=ACCENT)
    _spacing(toc, before=0, after=12, page_break=True)
    for level in (1, 2):
        style = _style(doc, f"toc {level}")
        style.base_style = doc.styles["Normal"]
        _font(style, 10.5 if level == 1 else 9.5, bold=level == 1)
        _spacing(style, before=6 if level == 1 else 0, after=2)
        style.paragraph_format.left_indent = Cm(0.6 * (level - 1))
    code = _style(doc, "Source Code")
    _font(code, 8.5, name=MONO)
    _spacing(code, before=2, after=2, line=1.0)
    ppr = code.element.get_or_add_pPr()
    ppr.append(parse_xml(f'<w:shd {nsdecls("w")} w:val="clear" w:color="auto" '
                         'w:fill="F2F2F2"/>'))
    _font(doc.styles["Verbatim Char"], 9, name=MONO)
    footer = _style(doc, "Footer")
    footer.base_style = doc.styles["Normal"]
    _font(footer, 8.5, colour=GREY)
    fppr = footer.element.get_or_add_pPr()
    fppr.append(parse_xml(f'<w:pBdr {nsdecls("w")}><w:top w:val="single" w:sz="4" '
                          'w:space="4" w:color="BFBFBF"/></w:pBdr>'))
    fppr.append(parse_xml(f'<w:tabs {nsdecls("w")}><w:tab w:val="right" w:pos="9070"/>'
                          "</w:tabs>"))
    _table_style(doc)


def build() -> bytes:
    """The reference document's bytes: same every run (fixed zip dates, no core dates)."""
    doc = docx.Document(io.BytesIO(_pandoc_reference()))
    _styles(doc)
    _page(doc)
    props = doc.core_properties
    props.title, props.author, props.last_modified_by = "trialplan house style", "", ""
    props.revision = 1
    buf = io.BytesIO()
    doc.save(buf)
    # Rewrite the zip with fixed dates so the committed file is reproducible.
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in sorted(src.infolist(), key=lambda i: i.filename):
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = _strip_dates(data)
            dst.writestr(zipfile.ZipInfo(info.filename, (1980, 1, 1, 0, 0, 0)), data,
                         zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _strip_dates(xml: bytes) -> bytes:
    import re

    return re.sub(rb"<dcterms:(created|modified)[^>]*>[^<]*</dcterms:\1>", b"", xml)


def main() -> int:
    TARGET.write_bytes(build())
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
