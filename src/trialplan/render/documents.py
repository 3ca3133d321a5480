"""Protocol drafts from Jinja2 templates, as Markdown, HTML and DOCX.

Templates live in the package (``trialplan/templates``); a user directory given
with ``template_dir`` is searched first.  Every template renders in Jinja2's
immutable sandbox with ``StrictUndefined``: a missing value is an error, not
a blank, and a template cannot reach Python internals or the file system
(it can include only other templates from the search path).

Safety, each in one place (see docs/security.md):

- User text is text: every string of the context is Markdown-escaped once,
  before rendering (:func:`escape_markdown`), so links, images, spans with
  attributes, raw HTML and line-start syntax typed into a trial file come out
  literally; pandoc reads the Markdown without raw HTML and runs with
  ``--sandbox``, so nothing can embed a local file or fetch a URL.  The only
  images are trialplan's own figures, passed to pandoc as data URIs.
- User templates are confined: a ``template_dir`` cannot reach files outside
  itself through symlinks, and rendering has limits on time, output size,
  loop length, string and number sizes, and recursion (:class:`_LimitedSandbox`).
- Output is deterministic: the DOCX's creation dates are fixed
  (``SOURCE_DATE_EPOCH`` when set, otherwise left out).
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import stat
import threading
import time
import zipfile
from importlib import resources
from pathlib import Path

from trialplan.errors import InputError, OutputExistsError
from trialplan.fileio import (
    check_directory,
    check_input,
    check_target,
    source_date,
    write_directory,
    write_output,
)
from trialplan.numfmt import percent as _pct
from trialplan.numfmt import sig as _num
from trialplan.planning.context import TODO

DOCUMENTS = {
    "protocol": "protocol.md.j2",
    "sap": "sap.md.j2",
    "process-evaluation": "process-evaluation.md.j2",
    "feasibility": "feasibility.md.j2",
}
FORMATS = (".md", ".html", ".docx")
_PANDOC_IN = "markdown-raw_html-raw_attribute-raw_tex"


# ---------------------------------------------------------------------------------------------
# User text is text


# Characters with a meaning anywhere in a line of pandoc Markdown (links, images, spans and
# attributes, code, emphasis, raw HTML and entities, math, citations, sub/superscript, tables).
_INLINE = frozenset("\\`*[]{}<>!|#$~^&@")
# What starts a block when first on a line: a list item, definition, heading underline or rule,
# title block; and an ordered-list number (escaped at its delimiter).
_BLOCK_START = re.compile(r"^(\s*)(?=[-+:](?:\s|$)|[-=]+\s*$|:{3,}|%)")
_ORDERED = re.compile(r"^(\s*)(\d+|[A-Za-z]|[ivxlcdmIVXLCDM]+)([.)])(?=\s|$)")
# Context keys whose strings trialplan writes itself and templates use as Markdown syntax:
# figure file names (image links), commands (code spans), the placeholder mark.
_NOT_USER_TEXT = frozenset({"figures", "command", "commands", "mechanism_commands", "todo_mark",
                            "tool"})


# trialplan's placeholder, **[TO COMPLETE: what]**, the one piece of Markdown that context
# strings may carry (the planning layer writes it where the file has no text).
_PLACEHOLDER = re.compile(r"\*\*" + re.escape(TODO) + r" ([^\]\n]*)\]\*\*")
_HELD = re.compile("\ue000(\\d+)\ue001")
# A citation of the bibliography, [@key] or [@a; @b]: kept as typed (citeproc formats it;
# the reference list has no external links), so trial-file text can cite its references;
# never when a link, image, attribute or reference definition could follow.
_CITATION = re.compile(r"\[@[A-Za-z][\w:.-]*(?:\s*;\s*@[A-Za-z][\w:.-]*)*\](?![(\[{:])")
_CITED = re.compile("\ue002(\\d+)\ue003")


def escape_markdown(text: str) -> str:
    r"""``text`` with every Markdown special character backslash-escaped: it renders as itself.

    >>> print(escape_markdown("![x](/etc/passwd) <b> [y]{onclick=f()} a_b _c_"))
    \!\[x\](/etc/passwd) \<b\> \[y\]\{onclick=f()\} a_b \_c\_
    >>> print(escape_markdown("- item\n1. item"))
    \- item
    1\. item
    >>> print(escape_markdown("**[TO COMPLETE: sponsor]** | *x*"))
    **[TO COMPLETE: sponsor]** \| \*x\*
    >>> print(escape_markdown("as shown [@gillard2015; @moore2015] [@x](y) @z"))
    as shown [@gillard2015; @moore2015] \[\@x\](y) \@z
    """
    found = []

    def hold(match):
        found.append(match.group(1))
        return f"\ue000{len(found) - 1}\ue001"

    cited = []

    def cite(match):
        cited.append(match.group(0))
        return f"\ue002{len(cited) - 1}\ue003"

    for mark in "\ue000\ue001\ue002\ue003":  # the hold marks, if typed
        text = text.replace(mark, "")
    text = _PLACEHOLDER.sub(hold, text) if "**" in text else text
    text = _CITATION.sub(cite, text) if "[@" in text else text
    out = []
    for line in text.split("\n"):
        chars = []
        for i, ch in enumerate(line):
            if ch in _INLINE:
                chars.append("\\" + ch)
            elif ch == "_" and not (0 < i < len(line) - 1 and line[i - 1].isalnum()
                                    and line[i + 1].isalnum()):
                chars.append("\\_")  # an underscore inside a word is never emphasis
            else:
                chars.append(ch)
        escaped = _BLOCK_START.sub(r"\1\\", "".join(chars), count=1)
        out.append(_ORDERED.sub(r"\1\2\\\3", escaped, count=1))
    escaped = "\n".join(out)
    if found:  # the placeholders come back as bold text, their words escaped
        escaped = _HELD.sub(lambda m: f"**{TODO} {escape_markdown(found[int(m.group(1))])}]**",
                            escaped)
    if cited:
        escaped = _CITED.sub(lambda m: cited[int(m.group(1))], escaped)
    return escaped


def _escape_tree(value, key=None):
    """The context with every user string Markdown-escaped (trialplan's own syntax kept)."""
    if key in _NOT_USER_TEXT:
        return value
    if isinstance(value, str):
        return escape_markdown(value)
    if isinstance(value, dict):
        return {k: _escape_tree(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escape_tree(v) for v in value]
    return value


_UNESCAPED_PIPE = re.compile(r"(\\*)\|")


def _cell(value) -> str:
    """One table cell: one line, and every ``|`` escaped once (context text is escaped already)."""
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return _UNESCAPED_PIPE.sub(
        lambda m: m.group(0) if len(m.group(1)) % 2 else m.group(1) + "\\|", text)


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


# ---------------------------------------------------------------------------------------------
# Templates: confined to their directory, rendered within limits

MAX_TEMPLATE_BYTES = 1_000_000
# pandoc needs minutes and gigabytes for a few megabytes of Markdown; a full protocol is
# about 25,000 characters.
MAX_OUTPUT_CHARS = 500_000
MAX_RENDER_SECONDS = 20.0
MAX_VALUE_SIZE = 1_000_000  # longest string or sequence one template operation may build
MAX_LOOP_STEPS = 5_000_000  # range() steps over a whole render
MAX_RENDER_MEMORY = 1_000_000_000  # bytes a render may add to the process
_SIZE_ARG = re.compile(r"\d{7,}")  # a width or precision of a million or more in a format


class TemplateLimitError(Exception):
    """A user template went past one of the rendering limits."""


def _template_loader(template_dir):
    """A loader for ``template_dir`` that reads only regular files inside it (no symlink out)."""
    from jinja2 import BaseLoader, TemplateNotFound
    from jinja2.loaders import split_template_path

    root = Path(template_dir)
    if not root.is_dir():
        raise InputError(f"template directory {root} does not exist")
    real_root = root.resolve()

    class ConfinedLoader(BaseLoader):
        def get_source(self, environment, template):
            path = root.joinpath(*split_template_path(template))
            if not path.exists():
                raise TemplateNotFound(template)
            real = path.resolve()
            if not real.is_relative_to(real_root):
                raise InputError(f"template {path} is a link to {real}, outside the template "
                                 f"directory {root}; copy the file into the directory instead")
            try:
                fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
                try:
                    st = os.fstat(fd)
                    if not stat.S_ISREG(st.st_mode):
                        raise InputError(f"template {path} is not a regular file")
                    if st.st_size > MAX_TEMPLATE_BYTES:
                        raise InputError(f"template {path} is {st.st_size:,} bytes; at most "
                                         f"{MAX_TEMPLATE_BYTES:,}")
                    raw = os.read(fd, MAX_TEMPLATE_BYTES + 1)
                finally:
                    os.close(fd)
                source = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"template {path} is not UTF-8 text") from None
            except OSError as exc:
                raise InputError(f"cannot read template {path}: {exc.strerror}") from None
            return source, str(path), lambda: False

    return ConfinedLoader()


def _limited_sandbox():
    """Jinja2's immutable sandbox, with caps on what one operation or loop may build."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class LimitedSandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "%", "+"})

        def call_binop(self, context, operator, left, right):
            if operator == "**":
                _check_power(left, right)
            elif operator == "*":
                for seq, times in ((left, right), (right, left)):
                    if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                        _check_size(len(seq) * times)
            elif operator == "%" and isinstance(left, str):
                _check_format(left)
            elif operator == "+" and isinstance(left, (str, list, tuple)):
                _check_size(len(left) + len(right) if hasattr(right, "__len__") else 0)
            return super().call_binop(context, operator, left, right)

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja2's signature)
            # str.format reaches here wrapped by the sandbox; the string is the bound self.
            owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
            _check_arguments((owner, *args), kwargs)
            return super().call(__context, __obj, *args, **kwargs)

    return LimitedSandbox


def _check_arguments(args, kwargs) -> None:
    """Refuse a call whose arguments ask for a huge result (a width, count or long texts)."""
    total = 0
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool):
            _check_size(abs(value))
        elif isinstance(value, str):
            _check_format(value)
            total += len(value)
        elif isinstance(value, (list, tuple)):
            total += len(value)
    _check_size(total)


def _size_checked(fn):
    """A filter that first checks its arguments (not the value filtered) with the call limits."""
    import functools

    from jinja2.utils import _PassArg

    skip = 2 if _PassArg.from_obj(fn) is not None else 1

    @functools.wraps(fn)
    def checked(*args, **kwargs):
        _check_arguments(args[skip:], kwargs)
        return fn(*args, **kwargs)

    return checked


def _check_size(n) -> None:
    if n > MAX_VALUE_SIZE:
        raise TemplateLimitError(f"a value of size {n:,} is larger than the limit of "
                                 f"{MAX_VALUE_SIZE:,}")


def _check_power(base, exponent) -> None:
    import math

    try:
        digits = abs(float(exponent)) * math.log10(max(abs(float(base)), 2.0))
    except (TypeError, ValueError, OverflowError):
        return  # not numbers: Python raises its own error
    if digits > 300:
        raise TemplateLimitError(f"{base!r} ** {exponent!r} is too large a number")


def _check_format(text: str) -> None:
    if _SIZE_ARG.search(text) and ("%" in text or "{" in text):
        raise TemplateLimitError("a format with a width or precision of a million or more")


def _budgeted_range(budget: list):
    from jinja2.sandbox import safe_range

    def limited_range(*args):
        rng = safe_range(*args)
        budget[0] -= len(rng)
        if budget[0] < 0:
            raise TemplateLimitError(f"loops over range() take more than {MAX_LOOP_STEPS:,} "
                                     "steps in total")
        return rng

    return limited_range


def environment(template_dir=None):
    """The sandboxed Jinja2 environment: user templates first, then the built-in ones."""
    from jinja2 import ChoiceLoader, PackageLoader, StrictUndefined

    loaders = []
    if template_dir is not None:
        loaders.append(_template_loader(template_dir))
    loaders.append(PackageLoader("trialplan", "templates"))
    env = _limited_sandbox()(
        loader=ChoiceLoader(loaders), undefined=StrictUndefined, autoescape=False,
        keep_trailing_newline=True, trim_blocks=False, lstrip_blocks=False,
    )
    env.filters.update(cell=_cell, num=_num, pct=_pct, fixed=_fixed, g=_g,
                       sentence=_sentence, words=_words, shell=_shell)
    env.filters = {name: _size_checked(fn) for name, fn in env.filters.items()}
    env.globals["range"] = _budgeted_range([MAX_LOOP_STEPS])
    return env


class _Deadline:
    """Raise :class:`TemplateLimitError` in the main thread after ``seconds`` (POSIX timers).

    Elsewhere (another thread, no SIGALRM) the limits on loop steps and value
    sizes still bound the work; only the wall-clock limit is skipped.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.active = (hasattr(signal, "setitimer")
                       and threading.current_thread() is threading.main_thread())

    def _expire(self, signum, frame):
        raise TemplateLimitError(f"rendering took longer than {self.seconds:g} s")

    def __enter__(self):
        if self.active:
            self.previous = signal.signal(signal.SIGALRM, self._expire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


class _MemoryCeiling:
    """Cap the address space at what is in use plus ``extra`` bytes, where the OS allows.

    A template can build large values in ways no single check sees (``~``
    concatenation in a loop); past the ceiling Python raises MemoryError,
    which is reported, instead of the machine running out of memory.
    """

    def __init__(self, extra: int):
        self.extra = extra
        self.previous = None

    def __enter__(self):
        try:
            import resource

            with open("/proc/self/statm") as fh:
                in_use = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            self.previous = resource.getrlimit(resource.RLIMIT_AS)
            hard = self.previous[1]
            ceiling = in_use + self.extra
            if hard != resource.RLIM_INFINITY:
                ceiling = min(ceiling, hard)
            if self.previous[0] == resource.RLIM_INFINITY or self.previous[0] > ceiling:
                resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
            else:
                self.previous = None
        except (ImportError, OSError, ValueError):
            self.previous = None  # no /proc or no rlimits: the other limits still apply
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, self.previous)
        return False


def _template_line(exc: BaseException, name: str = "template") -> str:
    """``file:line`` of the innermost template frame in ``exc``'s traceback (jinja2 maps them)."""
    import traceback

    where = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(".j2") or "/templates/" in frame.filename:
            where = f"{frame.filename}:{frame.lineno}"
    return where or name


def _render_limited(template, context: dict) -> str:
    """Render in chunks, checking the output size and the time as it grows."""
    started = time.monotonic()
    parts, size = [], 0
    with _Deadline(MAX_RENDER_SECONDS), _MemoryCeiling(MAX_RENDER_MEMORY):
        for chunk in template.generate(**context):
            parts.append(chunk)
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateLimitError(f"the document is longer than {MAX_OUTPUT_CHARS:,} "
                                         "characters (a full protocol is about 25,000): "
                                         "shorten the template or the trial file's text")
            if time.monotonic() - started > MAX_RENDER_SECONDS:
                raise TemplateLimitError(f"rendering took longer than {MAX_RENDER_SECONDS:g} s")
    return "".join(parts)


def render_markdown(document: str, context: dict, *, template_dir=None) -> str:
    """Render one document to Markdown text; template problems become clear errors.

    Errors in a template (syntax, sandbox, missing value, runtime errors such
    as division by zero, recursion, a limit exceeded) raise :class:`InputError`
    naming the template file and line.
    """
    from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError

    if document not in DOCUMENTS:
        raise InputError(f"document must be one of {', '.join(DOCUMENTS)}; got {document!r}")
    name = DOCUMENTS[document]
    env = environment(template_dir)
    try:
        template = env.get_template(name)
        text = _render_limited(template, _escape_tree(context))
    except InputError:
        raise
    except TemplateSyntaxError as exc:
        raise InputError(f"template {exc.filename or exc.name}:{exc.lineno}: {exc.message}"
                         ) from None
    except SecurityError as exc:
        raise InputError(f"template {_template_line(exc, name)}: not allowed in a template: {exc}"
                         ) from None
    except UndefinedError as exc:
        raise InputError(f"template {_template_line(exc, name)}: {exc.message} (the context has no "
                         "such value; see docs/templates.md)") from None
    except TemplateNotFound as exc:
        raise InputError(f"template not found: {exc.name}") from None
    except TemplateLimitError as exc:
        raise InputError(f"template {_template_line(exc, name)}: over a limit: {exc}") from None
    except RecursionError as exc:
        raise InputError(f"template {_template_line(exc, name)}: recursion too deep (a macro or "
                         "include that calls itself without end?)") from None
    except MemoryError as exc:
        raise InputError(f"template {_template_line(exc, name)}: ran out of memory (over "
                         f"{MAX_RENDER_MEMORY:,} bytes)") from None
    except Exception as exc:  # any runtime error in a user's template, e.g. 1 / 0
        raise InputError(f"template {_template_line(exc, name)}: {type(exc).__name__}: {exc}"
                         ) from None
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
    existing = [str(directory / p.name) for p in files if (directory / p.name).exists()]
    if existing and not force:
        raise OutputExistsError(f"{', '.join(existing)} already exist; use --force to overwrite")
    if not directory.exists() and directory.parent != directory:
        directory.parent.mkdir(parents=True, exist_ok=True)
    return write_directory(directory, {p.name: p.read_bytes() for p in files}, force=force)


# ---------------------------------------------------------------------------------------------
# pandoc: sandboxed, figures as data URIs, fixed dates


_FIGURE_NAME = re.compile(r"figures/[\w.-]+\.png")


def _figure_files(figures: dict, workdir: Path) -> list[str]:
    """Write the figures into ``workdir`` for the filter to hand to pandoc.

    pandoc runs with ``--sandbox`` and fetches no image itself: the bundled
    filter reads ``figures/NAME.png`` from this folder into pandoc's media bag
    (``trialplan-figure-dir``).  Reading the files there is faster than passing
    the figures inline as data URIs, and keeps base64 out of the DOCX.
    """
    if not figures:
        return []
    for name, data in figures.items():
        if not _FIGURE_NAME.fullmatch(name) or ".." in name:
            raise ValueError(f"figure names are figures/NAME.png; got {name!r}")
        target = workdir / name
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(data)
    return ["--metadata", f"trialplan-figure-dir={workdir}"]


# A house style is a few hundred kilobytes; a citation style tens.  pandoc reads each whole
# (and unpacks the reference document), so larger files are refused before it runs.
MAX_REFERENCE_DOC_BYTES = 50_000_000
MAX_REFERENCE_DOC_UNPACKED = 200_000_000
MAX_CSL_BYTES = 2_000_000


def _reference_doc(reference_doc) -> Path:
    ref = check_input(reference_doc, what="reference document",
                      max_bytes=MAX_REFERENCE_DOC_BYTES)
    try:
        with zipfile.ZipFile(ref) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        raise InputError(f"reference document {ref} is not a .docx file (not a ZIP archive)"
                         ) from None
    if unpacked > MAX_REFERENCE_DOC_UNPACKED:
        raise InputError(f"reference document {ref} unpacks to {unpacked:,} bytes; a house "
                         f"style is far smaller (at most {MAX_REFERENCE_DOC_UNPACKED:,})")
    return ref


def check_style_files(reference_doc=None, csl=None) -> None:
    """Refuse a reference document or citation style pandoc could not read safely."""
    if reference_doc is not None:
        _reference_doc(reference_doc)
    if csl is not None:
        check_input(csl, what="citation style", max_bytes=MAX_CSL_BYTES)


def fix_docx_dates(data: bytes, epoch: int | None) -> bytes:
    """The DOCX with its creation and modification dates set to ``epoch``, or removed.

    pandoc in its sandbox cannot read the clock and writes 1970-01-01; a date
    that is not the real one is worse than none, so without
    ``SOURCE_DATE_EPOCH`` the dates are left out.  Every ZIP entry keeps its
    order and compression and gets the same fixed time stamp, so the same
    input gives the same bytes.
    """
    import datetime as dt

    stamp = (1980, 1, 1, 0, 0, 0)
    if epoch is not None:
        when = dt.datetime.fromtimestamp(epoch, dt.UTC)
        stamp = when.timetuple()[:6]
        iso = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "docProps/core.xml":
                text = body.decode("utf-8")
                pattern = r"<dcterms:(created|modified)\b[^>]*>[^<]*</dcterms:\1>"
                if epoch is None:
                    text = re.sub(pattern, "", text)
                else:
                    text = re.sub(pattern, lambda m: m.group(0).split(">")[0] + f">{iso}"
                                  f"</dcterms:{m.group(1)}>", text)
                body = text.encode("utf-8")
            fixed = zipfile.ZipInfo(info.filename, date_time=stamp)
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            out.writestr(fixed, body)
    return buf.getvalue()


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
        csl = check_input(csl, what="citation style", max_bytes=MAX_CSL_BYTES)
    args = ["--resource-path", str(workdir), "--shift-heading-level-by=-1",
            "--lua-filter", str(files["trialplan.lua"]), "--citeproc",
            "--bibliography", str(files["references.json"]),
            "--csl", str(csl or files["vancouver.csl"]),
            "--metadata", "link-citations=true", "--metadata", "link-bibliography=false"]
    if references:
        # As document metadata, not a CSL JSON bibliography: citeproc reads a bibliography's
        # strings as rich text (<b>, <i>, <sup>, small caps), while metadata strings are
        # Markdown, escaped here like every other piece of trial-file text.
        extra = workdir / "trial-references.json"
        items = [{k: v if k in ("id", "type") else _escape_tree(v) for k, v in item.items()}
                 for item in references]
        extra.write_text(json.dumps({"references": items}, ensure_ascii=False))
        args += ["--metadata-file", str(extra)]
    if fmt == "html":
        # The stylesheet goes in as a <style> block: in its sandbox pandoc would leave a
        # --css file as a link to a file that no longer exists.
        page = "" if paper in (None, "a4") else f"@page {{ size: {paper}; }}\n"
        style = workdir / "style.html"
        style.write_text(f"<style>\n{files['trialplan.css'].read_text()}{page}</style>\n")
        args += ["--standalone", "--embed-resources", "--toc", "--toc-depth=3",
                 "--metadata", "toc-title=Contents", "--metadata", f"pagetitle={title}",
                 "--include-in-header", str(style)]
    if fmt == "docx":
        ref = _reference_doc(reference_doc) if reference_doc else files["reference.docx"]
        args += ["--toc", "--toc-depth=2", "--metadata", "toc-title=Contents",
                 "--reference-doc", str(ref)]
    return args


def _pandoc_binary() -> str:
    """The pandoc that pypandoc-binary ships (a core dependency), else one on the PATH.

    pandoc is run directly, once per document: pypandoc's ``convert_text`` ran it
    up to eight more times to find it and list its formats.
    """
    import importlib.util
    import shutil

    spec = importlib.util.find_spec("pypandoc")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "files" / "pandoc"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    found = shutil.which("pandoc")
    if found is None:
        raise InputError("HTML and DOCX output need pandoc (pypandoc-binary); install "
                         "trialplan with its dependencies")
    return found


def _pandoc(markdown: str, fmt: str, *, title: str, reference_doc=None, paper=None, csl=None,
            references=None, figures=None) -> bytes:
    import logging
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="trialplan-") as workdir:
        args = ["--sandbox", *_pandoc_args(fmt, Path(workdir), title=title,
                                           reference_doc=reference_doc, paper=paper, csl=csl,
                                           references=references),
                *_figure_files(figures or {}, Path(workdir))]
        out = Path(workdir) / f"out.{fmt}"
        command = [_pandoc_binary(), f"--from={_PANDOC_IN}",
                   f"--to={'html5' if fmt == 'html' else fmt}", f"--output={out}", *args]
        try:
            run = subprocess.run(command, input=markdown.encode("utf-8"), capture_output=True)
        except OSError as exc:
            raise InputError(f"pandoc could not write the {fmt.upper()} file: {exc}") from None
        messages = run.stderr.decode("utf-8", errors="replace").strip()
        if run.returncode != 0:
            raise InputError(f"pandoc could not write the {fmt.upper()} file: {messages}")
        for line in messages.splitlines():  # pandoc's warnings, as pypandoc passed them on
            logging.getLogger("trialplan.render").warning(line)
        data = out.read_bytes()
    if fmt == "docx":
        data = fix_docx_dates(_finish_docx(data, paper), source_date())
    return data


def _finish_docx(data: bytes, paper: str | None = None) -> bytes:
    """What pandoc's DOCX writer cannot do from a reference document alone.

    - the footer's running title (the ``footer`` metadata field) is filled in, and
      pandoc's own settings are dropped from the custom document properties;
    - landscape sections made by the filter get the same footer as the rest;
    - every section gets the chosen paper size (else the reference document's),
      turned for landscape sections, and the reference document's margins;
    - table grids fit the page or landscape section, and rows do not split;
    - the table of contents lists the section headings with PAGEREF page
      numbers (computed by LibreOffice from the layout, refreshed by Word on
      opening, as ``updateFields`` asks), and is followed by a page break.
    """
    src = zipfile.ZipFile(io.BytesIO(data))
    parts = {info.filename: src.read(info.filename) for info in src.infolist()}
    footer = ""
    custom = parts.get("docProps/custom.xml", b"").decode()
    found = re.search(r'name="footer"><vt:lpwstr>(.*?)</vt:lpwstr>', custom, re.S)
    if found:
        footer = found.group(1)
    if custom:  # pandoc stores its own settings (and temporary paths) there: not the document's
        parts["docProps/custom.xml"] = re.sub(
            r'<property [^>]*name="(?:bibliography|references|csl|link-citations|'
            r'link-bibliography|toc-title|abstract-title)">.*?</property>', "", custom,
            flags=re.S).encode()
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
    doc = _fill_toc(doc, width - sides)
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


def _fill_toc(doc: str, text_width: int) -> str:
    """Replace pandoc's TOC field by entries whose page numbers are PAGEREF fields.

    Each first- or second-level heading gets a hidden ``_Toc`` bookmark, and
    its entry in the contents is a link to it with a PAGEREF field after a
    dotted tab at the right margin.  LibreOffice computes a PAGEREF field from
    the layout, so the contents show page numbers as soon as the file is
    opened or converted (a TOC field shows only what was stored in it, and
    pandoc stores nothing); Word refreshes the fields on opening, as
    ``updateFields`` asks.
    """
    # pandoc writes the field with nothing stored between "separate" and "end".
    toc = re.search(r'<w:p><w:r><w:fldChar w:fldCharType="begin"[^>]*/><w:instrText[^>]*>TOC '
                    r'[^<]*</w:instrText><w:fldChar w:fldCharType="separate" */><w:fldChar '
                    r'w:fldCharType="end" */></w:r></w:p>', doc)
    if toc is None:
        return doc
    entries = []

    def mark(match):
        number = len(entries) + 1
        name = f"_Toc_trialplan_{number}"
        words = "".join(re.findall(r"<w:t[^>]*>([^<]*)</w:t>", match.group(3)))
        entries.append((match.group(2), words, name))
        # Bookmark ids only need to be unique; pandoc numbers its own from 0.
        mark_id = 900000 + number
        return (f'{match.group(1)}<w:bookmarkStart w:id="{mark_id}" w:name="{name}"/>'
                f'{match.group(3)}<w:bookmarkEnd w:id="{mark_id}"/></w:p>')

    rest = re.sub(r'(<w:p><w:pPr><w:pStyle w:val="Heading([12])" */>.*?</w:pPr>)(.*?)</w:p>',
                  mark, doc[toc.end():], flags=re.S)
    if not entries:
        return doc
    tabs = f'<w:tabs><w:tab w:val="right" w:leader="dot" w:pos="{text_width}"/></w:tabs>'
    field = ('<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText '
             'xml:space="preserve"> PAGEREF {name} \\h </w:instrText></w:r><w:r><w:fldChar '
             'w:fldCharType="separate"/></w:r><w:r><w:t></w:t></w:r><w:r><w:fldChar '
             'w:fldCharType="end"/></w:r>')
    lines = "".join(
        f'<w:p><w:pPr><w:pStyle w:val="toc{level}"/>{tabs}</w:pPr><w:hyperlink w:anchor="{name}">'
        f'<w:r><w:t xml:space="preserve">{words}</w:t></w:r><w:r><w:tab/></w:r>'
        f'{field.format(name=name)}</w:hyperlink></w:p>' for level, words, name in entries)
    after = re.match(r"\s*</w:sdtContent></w:sdt>", rest)
    if after is None:
        return doc
    return (doc[:toc.start()] + lines + after.group(0)
            + '<w:p><w:r><w:br w:type="page"/></w:r></w:p>' + rest[after.end():])


def localise_figure_links(markdown: str, stem: str) -> str:
    """Point ``](figures/x.png)`` links at ``<stem>-figures/x.png`` beside a Markdown file."""
    return markdown.replace("](figures/", f"]({stem}-figures/")


def check_document_target(output, *, force: bool = False) -> Path:
    """Refuse an output path for a document before any work (see :func:`write_document`)."""
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"output must end in {', '.join(FORMATS)}; got {output.name!r}",
                         names=("output",))
    check_target(output, force=force)
    if suffix == ".md":
        fig_dir = output.with_name(f"{output.stem}-figures")
        if fig_dir.exists() and not fig_dir.is_dir():
            check_directory(fig_dir, [], force=force)
    return output


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
    output = check_document_target(output, force=force)
    check_style_files(reference_doc, csl)
    if output.suffix.lower() == ".md":
        fig_dir = output.with_name(f"{output.stem}-figures")
        files = {Path(name).name: data for name, data in figures.items()}
        check_directory(fig_dir, files, force=force)
        text = localise_figure_links(markdown, output.stem)
        written = write_directory(fig_dir, files, force=force) if files else []
        write_output(output, text, force=force)
        return [str(output), *written]
    data = _pandoc(markdown, output.suffix.lower()[1:], title=title,
                   reference_doc=reference_doc, paper=paper, csl=csl, references=references,
                   figures=figures)
    write_output(output, data, force=force)
    return [str(output)]
