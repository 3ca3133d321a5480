"""One call from a trial file to a written document: plan, figures, context, template, file."""

from __future__ import annotations

from pathlib import Path

from trialplan.planning import build_plan
from trialplan.planning.context import SPIRIT_2025, TIDIER, TODO, build_context
from trialplan.render import documents

_FIGURES = {"change_model": "figures/change-model.png",
            "primary_power": "figures/primary-power.png",
            "mechanism_power": "figures/mechanism-power.png",
            "recruitment": "figures/recruitment.png",
            "participant_flow": "figures/participant-flow.png",
            "timeline": "figures/timeline.png"}


def figure_refs(plan) -> dict:
    """The figures a document can show for this plan: context key -> relative file name."""
    refs = {"change_model": _FIGURES["change_model"],
            "primary_power": _FIGURES["primary_power"]}
    if any(m.get("status") == "computed" for m in plan["mechanisms"]):
        refs["mechanism_power"] = _FIGURES["mechanism_power"]
    if plan["recruitment"]:
        for key in ("recruitment", "participant_flow", "timeline"):
            refs[key] = _FIGURES[key]
    return refs


def _figures(trial, plan, wanted) -> dict:
    """PNG bytes of the figures named in ``wanted`` (relative file names), and no others."""
    from trialplan.render import diagram
    from trialplan.render.plan_figures import draw_plan_figures

    stems = {name: name.rsplit("/", 1)[-1].removesuffix(".png") for name in wanted}
    data = {}
    if _FIGURES["change_model"] in wanted:
        data[_FIGURES["change_model"]] = diagram.figure(trial, "png")
    plan_stems = [stem for name, stem in stems.items() if name != _FIGURES["change_model"]]
    drawn = draw_plan_figures(trial, plan, names=plan_stems)
    for name, stem in stems.items():
        if stem in drawn:
            data[name] = drawn[stem]["png"]
    return data


def markdown_for(trial, document: str = "protocol", *, template_dir=None, plan=None,
                 with_figures: bool = True) -> tuple[str, dict]:
    """The document's Markdown and its figures (``{relative name: png bytes}``).

    With ``with_figures=False`` the figures are referenced but not drawn (the
    Markdown is the same; the returned figure dict is empty).
    """
    plan = plan if plan is not None else build_plan(trial)
    refs = figure_refs(plan)
    context = build_context(trial, plan, figures=refs)
    text = documents.render_markdown(document, context, template_dir=template_dir)
    if not with_figures:
        return text, {}
    wanted = [name for name in refs.values() if f"]({name})" in text]
    return text, _figures(trial, plan, wanted)


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

    suffix = Path(output).suffix.lower()
    if suffix not in documents.FORMATS:
        raise InputError(f"output must end in {', '.join(documents.FORMATS)}; got "
                         f"{Path(output).name!r}")
    if paper is not None and paper not in documents.PAPERS:  # before drawing figures
        raise InputError(f"paper must be one of {', '.join(documents.PAPERS)}; got {paper!r}")
    text, figures = markdown_for(trial, document, template_dir=template_dir)
    title = trial.model.trial.acronym or trial.model.trial.title
    return documents.write_document(text, figures, output, title=title, force=force,
                                    reference_doc=reference_doc, paper=paper, csl=csl,
                                    references=csl_references(trial))


def checklist(trial, guideline: str = "spirit-2025", *, template_dir=None) -> list[dict]:
    """Each item of the guideline: filled or to complete, and where in the document."""
    if guideline == "tidier":
        out = []
        for number, name, field in TIDIER:
            value = getattr(trial.model.intervention, field)
            out.append({"item": number, "title": name, "status": "filled" if value else
                        "to complete", "where": f"intervention.{field} (protocol item 15a)"})
        return out
    text, _ = markdown_for(trial, "protocol", template_dir=template_dir, with_figures=False)
    lines = text.splitlines()
    starts = {}
    for i, line in enumerate(lines):
        if line.startswith("### "):
            key = line[4:].split(".", 1)[0].strip()
            starts[key] = i
    order = sorted(starts.values())
    out = []
    for item, title in SPIRIT_2025:
        if item not in starts:
            out.append({"item": item, "title": title, "status": "missing",
                        "where": "no heading in the document"})
            continue
        start = starts[item]
        later = [s for s in order if s > start]
        end = later[0] if later else len(lines)
        body = "\n".join(lines[start + 1:end])
        # The next section heading ("## ...") also ends an item.
        body = body.split("\n## ")[0]
        status = "to complete" if TODO in body or not body.strip() else "filled"
        out.append({"item": item, "title": title, "status": status,
                    "where": f"line {start + 1}: {lines[start][4:]}"})
    return out
