"""One call from a trial file to a written document: plan, figures, context, template, file."""

from __future__ import annotations

import os
import pickle
import re
import threading

from trialplan.machine import usable_cores
from trialplan.planning import build_plan
from trialplan.planning.context import SPIRIT_2025, TODO, build_context
from trialplan.render import documents

_FIGURES = {"change_model": "figures/change-model.png",
            "primary_power": "figures/primary-power.png",
            "mechanism_power": "figures/mechanism-power.png",
            "recruitment": "figures/recruitment.png",
            "participant_flow": "figures/participant-flow.png",
            "timeline": "figures/timeline.png",
            "progression": "figures/progression.png",
            "assurance": "figures/assurance.png"}


def figure_refs(plan) -> dict:
    """The figures a document can show for this plan: context key -> relative file name."""
    refs = {"change_model": _FIGURES["change_model"],
            "primary_power": _FIGURES["primary_power"]}
    if any(m.get("status") == "computed" for m in plan["mechanisms"]):
        refs["mechanism_power"] = _FIGURES["mechanism_power"]
    if plan["recruitment"]:
        for key in ("recruitment", "participant_flow", "timeline"):
            refs[key] = _FIGURES[key]
    if any(c.get("oc") for c in (plan.get("feasibility") or {}).get("criteria", [])):
        refs["progression"] = _FIGURES["progression"]
    if (plan.get("assurance") or {}).get("curve"):
        refs["assurance"] = _FIGURES["assurance"]
    return refs


def _draw(trial, plan, wanted) -> dict:
    """PNG bytes of the figures named in ``wanted`` (relative file names), and no others."""
    from trialplan.render import diagram
    from trialplan.render.plan_figures import draw_plan_figures

    stems = {name: name.rsplit("/", 1)[-1].removesuffix(".png") for name in wanted}
    data = {}
    if _FIGURES["change_model"] in wanted:
        data[_FIGURES["change_model"]] = diagram.figure(trial, "png")
    plan_stems = [stem for name, stem in stems.items() if name != _FIGURES["change_model"]]
    drawn = draw_plan_figures(trial, plan, names=plan_stems, formats=("png",))
    for name, stem in stems.items():
        if stem in drawn:
            data[name] = drawn[stem]["png"]
    return data


# Relative drawing times of the figures (measured on the bundled example; others 1): the
# two processes get about equal shares of the work, not just of the figure count.
_DRAW_COST = {_FIGURES["progression"]: 2.7, _FIGURES["mechanism_power"]: 1.3,
              _FIGURES["timeline"]: 1.25, _FIGURES["change_model"]: 1.2,
              _FIGURES["assurance"]: 1.1, _FIGURES["participant_flow"]: 0.9,
              _FIGURES["primary_power"]: 0.9}


def _halves(wanted: list) -> tuple[list, list]:
    """Split the figures into two lists of about equal drawing time.

    Every split of the (at most eight) figures is tried; the first with the
    smallest larger share wins, so the split is always the same.
    """
    cost = [_DRAW_COST.get(name, 1.0) for name in wanted]
    total = sum(cost)
    best = min(range(1 << len(wanted)), key=lambda mask: max(
        load := sum(c for i, c in enumerate(cost) if mask >> i & 1), total - load))
    first = [name for i, name in enumerate(wanted) if best >> i & 1]
    return first, [name for name in wanted if name not in first]


def _may_fork() -> bool:
    """Whether figures may be drawn in forked processes here.

    Only a single-threaded process forks: a lock another thread holds at the
    fork (in a notebook kernel, say) would stay locked in the child forever.
    """
    return hasattr(os, "fork") and usable_cores() >= 2 and threading.active_count() == 1


class _Child:
    """A forked process that answers one request through a pipe, then exits.

    The child first runs ``prepare`` (imports, say), then waits for the request,
    answers with ``serve(request)`` and leaves without running any cleanup.
    This process sends the request with :meth:`send` and collects the answer
    with :meth:`receive`, which is None if anything failed on either side: the
    caller then does the work itself, so an error surfaces here as it would
    without the child.  Use as a context manager: leaving it closes the pipes
    (a child still waiting reads an end of file, one still answering fails to
    write) and reaps the child whatever happened.
    """

    def __init__(self, serve, prepare=None):
        request_in, request_out = os.pipe()
        result_in, result_out = os.pipe()
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                os.close(request_out)
                os.close(result_in)
                if prepare is not None:
                    prepare()
                with os.fdopen(request_in, "rb") as inp:
                    request = pickle.load(inp)
                with os.fdopen(result_out, "wb") as out:
                    pickle.dump(serve(request), out)
                status = 0
            finally:
                os._exit(status)
        os.close(request_in)
        os.close(result_out)
        self.pid = pid
        self.request = os.fdopen(request_out, "wb")
        self.result = os.fdopen(result_in, "rb")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, request) -> None:
        try:
            pickle.dump(request, self.request)
        except (OSError, pickle.PickleError):
            pass  # the child reads a broken request and fails: receive() gives None
        finally:
            try:
                self.request.close()  # the end of the request, whatever was written
            except OSError:
                pass

    def receive(self):
        """The child's answer, or None if it failed."""
        try:
            blob = self.result.read()
        except OSError:
            blob = b""
        status = self.close()
        return pickle.loads(blob) if status == 0 and blob else None

    def close(self) -> int | None:
        """Close the pipes and reap the child; its exit status, or None if already reaped."""
        if self.pid is None:
            return None
        for f in (self.request, self.result):
            try:
                f.close()
            except OSError:
                pass
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        return status


def _prepare_drawing() -> None:
    from trialplan.render.plots import pyplot
    from trialplan.stats._dist import use_scipy

    pyplot()
    use_scipy()  # as build_plan does in the parent: the same special functions


class _Drawer:
    """A process that imports matplotlib while this one plans, then draws the figures.

    Importing matplotlib takes about as long as building the plan and the
    Markdown, and the figures depend on the plan, so a child forked before the
    plan imports matplotlib meanwhile; once the plan and the list of figures
    are sent to it, it draws them (in two processes, :func:`_figures`) and
    returns the PNGs.  This process never imports matplotlib then.  If the
    child fails for any reason, this process draws the figures itself.  Use as
    a context manager: leaving it reaps the child whatever happened.
    """

    def __init__(self, trial):
        self.trial = trial
        self.child = (_Child(lambda request: _figures(trial, *request), _prepare_drawing)
                      if _may_fork() else None)

    @property
    def pid(self):
        return self.child.pid if self.child is not None else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.child is not None:
            self.child.close()

    def draw(self, plan, wanted) -> dict:
        """PNG bytes of the figures named in ``wanted``."""
        got = None
        if self.child is not None:
            self.child.send((plan, wanted))
            got = self.child.receive()
        if got is None or list(got) != list(wanted):
            return _figures(self.trial, plan, wanted)
        return got


def _figures(trial, plan, wanted) -> dict:
    """PNG bytes of the figures named in ``wanted``: half drawn in a forked process.

    Drawing is most of a document's time and each figure is independent, so with
    two or more cores, in a process with no other thread (the command line), a
    child forked after matplotlib is imported draws about half the drawing time's
    worth of figures and sends its PNGs back.  The figures are the same bytes
    either way; if the child fails for any reason, this process draws its share.
    """
    if len(wanted) < 4 or not _may_fork():
        return _draw(trial, plan, wanted)
    from trialplan.render.plots import pyplot

    pyplot()  # imported once, before the fork, for both processes
    mine, theirs = _halves(wanted)
    with _Child(lambda names: _draw(trial, plan, names)) as child:
        child.send(theirs)
        data = _draw(trial, plan, mine)
        got = child.receive()
    data.update(got if got is not None else _draw(trial, plan, theirs))
    return {name: data[name] for name in wanted if name in data}


def markdown_for(trial, document: str = "protocol", *, template_dir=None, plan=None,
                 with_figures: bool = True) -> tuple[str, dict]:
    """The document's Markdown and its figures (``{relative name: png bytes}``).

    With ``with_figures=False`` the figures are referenced but not drawn (the
    Markdown is the same; the returned figure dict is empty).
    """
    if not with_figures:
        return _markdown(trial, document, template_dir, plan)[1], {}
    with _Drawer(trial) as drawer:
        plan, text = _markdown(trial, document, template_dir, plan)
        wanted = [name for name in figure_refs(plan).values() if f"]({name})" in text]
        return text, drawer.draw(plan, wanted)


def _markdown(trial, document, template_dir, plan) -> tuple[dict, str]:
    plan = plan if plan is not None else build_plan(trial)
    context = build_context(trial, plan, figures=figure_refs(plan))
    return plan, documents.render_markdown(document, context, template_dir=template_dir)


def csl_references(trial) -> list[dict]:
    """The trial file's own references as CSL JSON items (for pandoc's citeproc)."""
    items = []
    for ref in trial.model.references:
        authors = []
        for name in ref.authors:
            family, _, given = name.strip().rpartition(" ")
            if name.strip().lower() == "et al." or not family:
                authors.append({"literal": name.strip()})
            else:
                authors.append({"family": family, "given": given})
        item = {"id": ref.id, "type": "article-journal", "author": authors,
                "title": ref.title, "container-title": ref.journal,
                "issued": {"date-parts": [[ref.year]]} if ref.year else None,
                "volume": ref.volume, "issue": ref.issue, "page": ref.pages, "DOI": ref.doi,
                "URL": ref.url}
        items.append({k: v for k, v in item.items() if v})
    return items


def write_draft(trial, output, *, document="protocol", template_dir=None, reference_doc=None,
                force=False, paper=None, csl=None) -> list[str]:
    """Render ``document`` for ``trial`` and write it in the format of ``output``.

    ``paper`` (``"a4"`` or ``"letter"``) sets the DOCX page and the printed
    HTML page (None: A4, or the page of the ``reference_doc`` house style);
    ``csl`` a citation style file in place of the bundled Vancouver.
    """
    from trialplan.errors import InputError

    documents.check_document_target(output, force=force)  # before any work
    documents.check_style_files(reference_doc, csl)
    if paper is not None and paper not in documents.PAPERS:
        raise InputError(f"paper must be one of {', '.join(documents.PAPERS)}; got {paper!r}")
    text, figures = markdown_for(trial, document, template_dir=template_dir)
    title = trial.model.trial.acronym or trial.model.trial.title
    return documents.write_document(text, figures, output, title=title, force=force,
                                    reference_doc=reference_doc, paper=paper, csl=csl,
                                    references=csl_references(trial))


STATUSES = ("filled", "partly filled", "to complete")
_PLACEHOLDER = re.compile(r"\*{0,2}\[" + re.escape(TODO[1:]) + r"\s*([^\]]*)\]\*{0,2}")


def judge(body: str) -> tuple[str, list[str]]:
    """Judge an item's text: its status and what is still missing.

    An item is *filled* when it has no placeholder, *to complete* when nothing
    but placeholders (and table scaffolding) is left once they are removed, and
    *partly filled* otherwise; the missing parts are the placeholders' requests.
    """
    missing = [m.strip() for m in _PLACEHOLDER.findall(body)]
    rest = _PLACEHOLDER.sub("", body)
    words = re.findall(r"[A-Za-z]{3,}", rest)
    if not missing:
        return ("filled" if words else "to complete"), []
    return ("partly filled" if words else "to complete"), missing


def _sections(text: str) -> dict:
    """Each ``### id. title`` item of the rendered protocol: its heading and body."""
    out: dict = {}
    current = None
    for line in text.splitlines():
        if line.startswith("### "):
            heading = line[4:].strip()
            current = heading.split(".", 1)[0].strip()
            out[current] = {"heading": heading, "lines": []}
        elif line.startswith("## "):
            current = None
        elif current is not None:
            out[current]["lines"].append(line)
    return out


def checklist(trial, guideline: str = "spirit-2025", *, template_dir=None) -> list[dict]:
    """Each item of the guideline judged on the drafted content, and where it is.

    Returns
    -------
    list of dict
        ``item``, ``title``, ``status`` (one of :data:`STATUSES`), ``missing``
        (what the placeholders still ask for) and ``where`` (the heading of the
        protocol section that holds the item).
    """
    if guideline == "tidier":
        plan = build_plan(trial)
        context = build_context(trial, plan)
        out = []
        for row in context["intervention"]["tidier"]:
            status, missing = judge(row["value"] or f"{TODO} {row['name'].lower()}]")
            out.append({"item": row["number"], "title": row["name"], "status": status,
                        "missing": missing,
                        "where": f"protocol, section '15a. Intervention and comparator', "
                                 f"TIDieR table row {row['number']}"})
        return out
    text, _ = markdown_for(trial, "protocol", template_dir=template_dir, with_figures=False)
    sections = _sections(text)
    out = []
    for item, title in SPIRIT_2025:
        section = sections.get(item)
        if section is None:
            out.append({"item": item, "title": title, "status": "to complete",
                        "missing": ["the whole item: the protocol has no section for it"],
                        "where": "no section in the protocol"})
            continue
        status, missing = judge("\n".join(section["lines"]))
        out.append({"item": item, "title": title, "status": status, "missing": missing,
                    "where": f"protocol, section '{section['heading']}'"})
    return out
