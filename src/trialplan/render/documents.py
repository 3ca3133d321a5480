"""Protocol drafts from Jinja2 templates, as Markdown, HTML and DOCX.

Templates live in the package (``trialplan/templates``); a user directory given
with ``template_dir`` is searched first.  Every template renders in Jinja2's
immutable sandbox with ``StrictUndefined``: a missing value is an error, not
a blank, and a template cannot reach Python internals or the file system
(it can include only other templates from the search path).

User-supplied text is made safe once, before rendering: ``<`` becomes an
entity in every string of the context (so no text from the trial file can
open an HTML tag, even in a Markdown viewer that allows raw HTML), and pandoc
reads the Markdown without raw HTML, so markup typed into a trial file is
shown as text in every format.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from trialplan.errors import InputError, OutputExistsError
from trialplan.fileio import write_output

DOCUMENTS = {
    "protocol": "protocol.md.j2",
    "sap": "sap.md.j2",
    "process-evaluation": "process-evaluation.md.j2",
    "feasibility": "feasibility.md.j2",
}
FORMATS = (".md", ".html", ".docx")
_PANDOC_IN = "markdown-raw_html-raw_attribute-raw_tex"


def _escape_tree(value):
    """Every string with ``<`` as an entity: no text from the trial file can open a tag."""
    if isinstance(value, str):
        return value.replace("<", "&lt;")
    if isinstance(value, dict):
        return {k: _escape_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escape_tree(v) for v in value]
    return value


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def _num(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4g}"
    return f"{int(value):,}"


def _pct(value) -> str:
    pct = 100 * float(value)
    return f"{pct:.0f}%" if abs(pct - round(pct)) < 1e-9 else f"{pct:.1f}%"


def _fixed(value, digits=2) -> str:
    return f"{float(value):.{digits}f}"


def _shell(command, width=76) -> str:
    """A command wrapped at spaces before its options, shell-continued with `` \\``.

    Each line stays within ``width`` characters where the options allow, so a
    quoted command fits a printed page in a monospaced font and still runs
    when pasted into a shell.

    >>> print(_shell("trialplan size means --d 0.3 --power 0.9 --alpha 0.05", width=30))
    trialplan size means --d 0.3 \\
        --power 0.9 --alpha 0.05
    """
    import re

    parts = re.split(r" (?=--)", " ".join(str(command).split()))
    lines = [parts[0]]
    for part in parts[1:]:
        if len(lines[-1]) + 1 + len(part) + 2 <= width:
            lines[-1] += " " + part
        else:
            lines.append("    " + part)
    return " \\\n".join(lines)


def _g(value, digits=3) -> str:
    """A number as a person writes it: 30 not 30.0, 6.5 not 6.50, at most ``digits`` decimals."""
    text = f"{float(value):,.{digits}f}".rstrip("0").rstrip(".")
    return text


_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _words(value) -> str:
    """A count as prose writes it: words below ten, figures from ten."""
    n = int(value)
    return _WORDS[n] if 0 <= n < len(_WORDS) else f"{n:,}"


def _sentence(value) -> str:
    """Text ending in exactly one full stop (file text may or may not end with one)."""
    text = str(value).rstrip()
    if text.endswith("]**"):  # a placeholder reads as its own sentence
        return text
    return text.rstrip(".") + "." if not text.endswith(("?", "!")) else text


def environment(template_dir=None):
    """The sandboxed Jinja2 environment: user templates first, then the built-in ones."""
    from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    loaders = []
    if template_dir is not None:
        path = Path(template_dir)
        if not path.is_dir():
            raise InputError(f"template directory {path} does not exist")
        loaders.append(FileSystemLoader(str(path)))
    loaders.append(PackageLoader("trialplan", "templates"))
    env = ImmutableSandboxedEnvironment(
        loader=ChoiceLoader(loaders), undefined=StrictUndefined, autoescape=False,
        keep_trailing_newline=True, trim_blocks=False, lstrip_blocks=False,
    )
    env.filters.update(cell=_cell, num=_num, pct=_pct, fixed=_fixed, g=_g,
                       sentence=_sentence, words=_words, shell=_shell)
    return env


def render_markdown(document: str, context: dict, *, template_dir=None) -> str:
    """Render one document to Markdown text; template problems become clear errors."""
    from jinja2 import TemplateError, TemplateNotFound, TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError

    if document not in DOCUMENTS:
        raise InputError(f"document must be one of {', '.join(DOCUMENTS)}; got {document!r}")
    name = DOCUMENTS[document]
    env = environment(template_dir)
    try:
        template = env.get_template(name)
        text = template.render(**_escape_tree(context))
    except TemplateSyntaxError as exc:
        raise InputError(f"template {exc.filename or exc.name}:{exc.lineno}: {exc.message}"
                         ) from None
    except SecurityError as exc:
        raise InputError(f"template {name}: not allowed in a template: {exc}") from None
    except UndefinedError as exc:
        raise InputError(f"template {name}: {exc.message} (the context has no such value; "
                         "see docs/templates.md)") from None
    except TemplateNotFound as exc:
        raise InputError(f"template not found: {exc.name}") from None
    except TemplateError as exc:
        raise InputError(f"template {name}: {exc}") from None
    # Tidy: at most one blank line in a row, one newline at the end.
    lines, blank = [], 0
    for line in text.splitlines():
        blank = blank + 1 if not line.strip() else 0
        if blank <= 1:
            lines.append(line.rstrip())
    return "\n".join(lines).strip() + "\n"


def export_templates(directory, *, force: bool = False) -> list[str]:
    """Copy the built-in templates into ``directory`` for customising."""
    directory = Path(directory)
    files = sorted(p for p in resources.files("trialplan").joinpath("templates").iterdir()
                   if p.name.endswith(".j2"))
    targets = [directory / p.name for p in files]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise OutputExistsError(f"{', '.join(existing)} already exist; use --force to overwrite")
    directory.mkdir(parents=True, exist_ok=True)
    for src, dst in zip(files, targets, strict=True):
        write_output(dst, src.read_bytes(), force=True)
    return [str(t) for t in targets]


PAPERS = {"a4": (11906, 16838), "letter": (12240, 15840)}  # page size in twips
"""Paper sizes for DOCX and printed HTML; A4 is the default."""
_DATA_FILES = ("reference.docx", "vancouver.csl", "references.json", "trialplan.lua",
               "trialplan.css")
# A section's properties (Word may add rsid attributes to the tag).
_SECTION = r"<w:sectPr(?: [^>]*)?>((?:(?!</w:sectPr>).)*)</w:sectPr>"


def _data_file(name: str, workdir: Path) -> Path:
    """Copy a bundled data file into ``workdir`` (pandoc is given files by path)."""
    target = workdir / name
    target.write_bytes(resources.files("trialplan").joinpath("data", name).read_bytes())
    return target


def _pandoc_args(fmt: str, workdir: Path, *, title: str, reference_doc=None, paper=None,
                 csl=None, references=None) -> list[str]:
    """Pandoc's command line for one output format.

    Every file pandoc reads (reference document, citation style, bibliography,
    filter, stylesheet) is named here, so the call works in pandoc's sandbox.
    The filter numbers tables and figures and sets column widths; citeproc
    formats ``[@key]`` citations against the bundled bibliography plus the
    trial file's own references, in Vancouver style unless ``csl`` names
    another CSL file.
    """
    if paper is not None and paper not in PAPERS:
        raise InputError(f"paper must be one of {', '.join(PAPERS)}; got {paper!r}")
    files = {name: _data_file(name, workdir) for name in _DATA_FILES}
    if csl is not None:
        csl = Path(csl)
        if not csl.is_file():
            raise InputError(f"citation style {csl} does not exist")
    args = ["--resource-path", str(workdir), "--shift-heading-level-by=-1",
            "--lua-filter", str(files["trialplan.lua"]), "--citeproc",
            "--bibliography", str(files["references.json"]),
            "--csl", str(csl or files["vancouver.csl"]),
            "--metadata", "link-citations=true"]
    if references:
        extra = workdir / "trial-references.json"
        extra.write_text(json.dumps(list(references), ensure_ascii=False))
        args += ["--bibliography", str(extra)]
    if fmt == "html":
        args += ["--standalone", "--embed-resources", "--toc", "--toc-depth=3",
                 "--metadata", "toc-title=Contents", "--metadata", f"pagetitle={title}",
                 "--css", str(files["trialplan.css"])]
        if paper not in (None, "a4"):
            page = workdir / "paper.html"
            page.write_text(f"<style>@page {{ size: {paper}; }}</style>\n")
            args += ["--include-in-header", str(page)]
    if fmt == "docx":
        ref = files["reference.docx"]
        if reference_doc:
            ref = Path(reference_doc)
            if not ref.is_file():
                raise InputError(f"reference document {ref} does not exist")
        args += ["--toc", "--toc-depth=2", "--metadata", "toc-title=Contents",
                 "--reference-doc", str(ref)]
    return args


def _pandoc(markdown: str, fmt: str, workdir: Path, *, title: str, reference_doc=None,
            paper=None, csl=None, references=None) -> bytes:
    try:
        import pypandoc
    except ImportError:  # pragma: no cover - a core dependency
        raise InputError("HTML and DOCX output need pypandoc-binary; install trialplan with "
                         "its dependencies") from None
    out = workdir / f"out.{fmt}"
    args = _pandoc_args(fmt, workdir, title=title, reference_doc=reference_doc, paper=paper,
                        csl=csl, references=references)
    try:
        pypandoc.convert_text(markdown, "html5" if fmt == "html" else fmt,
                              format=_PANDOC_IN, outputfile=str(out), extra_args=args)
    except (RuntimeError, OSError) as exc:
        raise InputError(f"pandoc could not write the {fmt.upper()} file: {exc}") from None
    data = out.read_bytes()
    return _finish_docx(data, paper) if fmt == "docx" else data


def _finish_docx(data: bytes, paper: str | None = None) -> bytes:
    """What pandoc's DOCX writer cannot do from a reference document alone.

    - the footer's running title (the ``footer`` metadata field) is filled in;
    - landscape sections made by the filter get the same footer as the rest;
    - every section gets the chosen paper size (else the reference document's),
      turned for landscape sections, and the reference document's margins;
    - table grids fit the page or landscape section, and rows do not split;
    - the table of contents holds the section headings already (Word refreshes
      it with page numbers when the file is opened, as ``updateFields`` asks;
      LibreOffice shows it as stored), and is followed by a page break.
    """
    import io
    import re
    import zipfile
    src = zipfile.ZipFile(io.BytesIO(data))
    parts = {info.filename: src.read(info.filename) for info in src.infolist()}
    footer = ""
    custom = parts.get("docProps/custom.xml", b"").decode()
    found = re.search(r'name="footer"><vt:lpwstr>(.*?)</vt:lpwstr>', custom, re.S)
    if found:
        footer = found.group(1)
    for name in [n for n in parts if re.fullmatch(r"word/footer\d*\.xml", n)]:
        parts[name] = parts[name].replace(b"TRIALPLAN-FOOTER", footer.encode())
    doc = parts["word/document.xml"].decode()
    found = [m.group(0) for m in re.finditer(_SECTION + r"\s*</w:body>", doc, re.S)]
    body = found[-1] if found else ""
    refs = "".join(re.findall(r"<w:(?:header|footer)Reference [^>]*/>", body))
    # The page: the chosen paper, else the reference document's own (A4 when it has none).
    size = re.search(r"<w:pgSz [^>]*>", body)
    size = size and [re.search(rf'w:{k}="(\d+)"', size.group(0)) for k in ("w", "h")]
    width, height = (PAPERS[paper] if paper else
                     sorted(int(m.group(1)) for m in size) if size and all(size)
                     else PAPERS["a4"])
    margins = re.search(r"<w:pgMar [^>]*/>", body)
    margins = margins.group(0) if margins else (
        '<w:pgMar w:top="1417" w:right="1417" w:bottom="1417" w:left="1417" w:header="709" '
        'w:footer="709" w:gutter="0"/>')
    sides = sum(int(x) for x in re.findall(r'w:(?:left|right)="(\d+)"', margins)) or 2834

    def section(match):
        inner = match.group(1)
        landscape = 'w:orient="landscape"' in inner
        geometry = (f'<w:pgSz w:w="{height}" w:h="{width}" w:orient="landscape"/>' if landscape
                    else f'<w:pgSz w:w="{width}" w:h="{height}"/>') + margins
        inner = re.sub(r"<w:pg(?:Sz|Mar) [^>]*/>", "", inner)
        if "Reference " not in inner:
            inner = refs + inner
        # Schema order: page size and margins come before these elements.
        later = re.search(r"<w:(?:pgNumType|cols|formProt|vAlign|noEndnote|titlePg|"
                          r"textDirection|bidi|rtlGutter|docGrid|printerSettings)\b", inner)
        at = later.start() if later else len(inner)
        return f"<w:sectPr>{inner[:at]}{geometry}{inner[at:]}</w:sectPr>"

    doc = re.sub(_SECTION, section, doc, flags=re.S)
    doc = _fit_tables(doc, width, height, sides)
    # A table row never splits across pages (the header row repeats instead).
    doc = re.sub(r"<w:tr>(?!<w:trPr>)", "<w:tr><w:trPr></w:trPr>", doc)
    doc = doc.replace("<w:trPr>", "<w:trPr><w:cantSplit/>")
    doc = _fill_toc(doc)
    parts["word/document.xml"] = doc.encode()
    # Word refreshes the fields (contents with page numbers, footer) on opening.
    settings = parts.get("word/settings.xml", b"").decode()
    if settings and "updateFields" not in settings:
        anchor = re.search(r"<w:(?:hdrShapeDefaults|footnotePr|endnotePr|compat|docVars|rsids|"
                           r"mathPr|attachedSchema|themeFontLang|clrSchemeMapping)\b", settings)
        at = anchor.start() if anchor else settings.rindex("</w:settings>")
        parts["word/settings.xml"] = (settings[:at] + '<w:updateFields w:val="true"/>'
                                      + settings[at:]).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, parts[info.filename])
    return out.getvalue()


def _fit_tables(doc: str, width: int, height: int, sides: int) -> str:
    """Scale each table's column grid to the text width of the section it is in.

    Pandoc writes column widths for a 5.5-inch text block; the filter's widths
    are fractions of the real one, so the grid is rescaled to the page (and to
    the wider text block of a landscape section) here.
    """
    import re

    sections = [(m.start(), 'w:orient="landscape"' in m.group(0))
                for m in re.finditer(_SECTION, doc, re.S)]

    def grid(match):
        landscape = next((land for pos, land in sections if pos > match.start()), False)
        text_width = (height if landscape else width) - sides
        cols = [int(w) for w in re.findall(r'<w:gridCol w:w="(\d+)" */>', match.group(0))]
        if not cols:
            return match.group(0)
        total = sum(cols) or 1
        scaled = [round(c * text_width / total) for c in cols]
        scaled[-1] += text_width - sum(scaled)  # rounding: the grid spans the text exactly
        return "<w:tblGrid>" + "".join(f'<w:gridCol w:w="{c}"/>' for c in scaled) + "</w:tblGrid>"

    return re.sub(r"<w:tblGrid>.*?</w:tblGrid>", grid, doc, flags=re.S)


def _fill_toc(doc: str) -> str:
    """Write the first two heading levels into the TOC field's shown result."""
    import re

    toc = re.search(r'(<w:fldChar w:fldCharType="separate" */>)(<w:fldChar w:fldCharType="end"'
                    r" */></w:r></w:p></w:sdtContent></w:sdt>)", doc)
    if toc is None:
        return doc
    entries = []
    for level, text in re.findall(r'<w:p><w:pPr><w:pStyle w:val="Heading([12])" */>.*?</w:pPr>'
                                  r"(.*?)</w:p>", doc[toc.end():], re.S):
        words = "".join(re.findall(r"<w:t[^>]*>([^<]*)</w:t>", text))
        entries.append(f'<w:p><w:pPr><w:pStyle w:val="toc{level}"/></w:pPr><w:r><w:t '
                       f'xml:space="preserve">{words}</w:t></w:r></w:p>')
    if not entries:
        return doc
    # The field opened in the paragraph before; its result is the entries, and it
    # closes in a paragraph of its own.
    result = ("</w:r></w:p>" + "".join(entries) + '<w:p><w:r><w:fldChar w:fldCharType="end"/>'
              '</w:r></w:p></w:sdtContent></w:sdt><w:p><w:r><w:br w:type="page"/></w:r></w:p>')
    return doc[:toc.start()] + toc.group(1) + result + doc[toc.end():]


def localise_figure_links(markdown: str, stem: str) -> str:
    """Point ``](figures/x.png)`` links at ``<stem>-figures/x.png`` beside a Markdown file."""
    return markdown.replace("](figures/", f"]({stem}-figures/")


def write_document(markdown: str, figures: dict, output, *, title: str, force: bool = False,
                   reference_doc=None, paper: str | None = None, csl=None,
                   references=None) -> list[str]:
    """Write the document in the format of ``output``'s extension, atomically.

    ``figures`` maps a relative file name used in the Markdown to PNG bytes.
    Markdown output writes them into ``<stem>-figures/`` beside the document;
    HTML embeds them; DOCX includes them.  ``paper`` is ``"a4"`` or
    ``"letter"`` (None: A4, or a house style's own page size); ``csl`` a
    citation style file instead of Vancouver;
    ``references`` CSL JSON items cited in the text besides the bundled ones.
    Nothing is written unless the whole document was produced, and no file is
    replaced without ``force``.
    """
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"output must end in {', '.join(FORMATS)}; got {output.name!r}")
    if output.exists() and not force:
        raise OutputExistsError(f"{output} exists; use --force to overwrite it")
    if not (output.parent if str(output.parent) else Path(".")).is_dir():
        raise OutputExistsError(f"cannot write {output}: directory {output.parent} does not "
                                "exist")
    written = []
    if suffix == ".md":
        fig_dir = output.with_name(f"{output.stem}-figures")
        targets = {fig_dir / Path(name).name: data for name, data in figures.items()}
        clash = [str(t) for t in targets if t.exists()]
        if clash and not force:
            raise OutputExistsError(f"{', '.join(clash)} already exist; use --force")
        text = localise_figure_links(markdown, output.stem)
        if targets:
            fig_dir.mkdir(exist_ok=True)
            for path, data in targets.items():
                write_output(path, data, force=True)
                written.append(str(path))
        write_output(output, text, force=True)
        return [str(output), *written]
    workdir = Path(tempfile.mkdtemp(prefix="trialplan-"))
    try:
        for name, data in figures.items():
            (workdir / name).parent.mkdir(parents=True, exist_ok=True)
            (workdir / name).write_bytes(data)
        data = _pandoc(markdown, suffix[1:], workdir, title=title, reference_doc=reference_doc,
                       paper=paper, csl=csl, references=references)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_output(output, data, force=True)
    return [str(output), *written]
