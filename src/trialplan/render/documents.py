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
                       sentence=_sentence, words=_words)
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


def _pandoc(markdown: str, fmt: str, workdir: Path, *, title: str, reference_doc=None) -> bytes:
    try:
        import pypandoc
    except ImportError:  # pragma: no cover - a core dependency
        raise InputError("HTML and DOCX output need pypandoc-binary; install trialplan with "
                         "its dependencies") from None
    out = workdir / f"out.{fmt}"
    args = ["--resource-path", str(workdir)]
    if fmt == "html":
        args += ["--standalone", "--embed-resources", "--toc", "--metadata",
                 f"pagetitle={title}"]
    if fmt == "docx":
        args += ["--toc"]
        if reference_doc:
            ref = Path(reference_doc)
            if not ref.is_file():
                raise InputError(f"reference document {ref} does not exist")
            args += ["--reference-doc", str(ref)]
    try:
        pypandoc.convert_text(markdown, "html5" if fmt == "html" else fmt,
                              format=_PANDOC_IN, outputfile=str(out), extra_args=args)
    except (RuntimeError, OSError) as exc:
        raise InputError(f"pandoc could not write the {fmt.upper()} file: {exc}") from None
    return out.read_bytes()


def localise_figure_links(markdown: str, stem: str) -> str:
    """Point ``](figures/x.png)`` links at ``<stem>-figures/x.png`` beside a Markdown file."""
    return markdown.replace("](figures/", f"]({stem}-figures/")


def write_document(markdown: str, figures: dict, output, *, title: str, force: bool = False,
                   reference_doc=None) -> list[str]:
    """Write the document in the format of ``output``'s extension, atomically.

    ``figures`` maps a relative file name used in the Markdown to PNG bytes.
    Markdown output writes them into ``<stem>-figures/`` beside the document;
    HTML embeds them; DOCX includes them.  Nothing is written unless the whole
    document was produced, and no file is replaced without ``force``.
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
        data = _pandoc(markdown, suffix[1:], workdir, title=title, reference_doc=reference_doc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_output(output, data, force=True)
    return [str(output), *written]
