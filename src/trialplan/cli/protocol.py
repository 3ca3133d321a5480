"""``trialplan protocol``, ``trialplan templates`` and ``trialplan checklist``."""

from __future__ import annotations

import json

import click

DOCS = ["protocol", "sap", "process-evaluation", "feasibility"]


@click.command("protocol")
@click.argument("trial_file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output file: .md, .html or .docx (the format follows the extension).")
@click.option("--document", type=click.Choice(DOCS), default="protocol", show_default=True,
              help="Which document to draft.")
@click.option("--template-dir", type=click.Path(file_okay=False),
              help="Your templates, searched before the built-in ones.")
@click.option("--reference-doc", type=click.Path(dir_okay=False),
              help="A .docx whose styles the DOCX output uses (house style).")
@click.option("--paper", type=click.Choice(["a4", "letter"]),
              help="Page size of the DOCX and of the printed HTML [default: a4, or the "
                   "--reference-doc's own].")
@click.option("--csl", type=click.Path(dir_okay=False),
              help="A CSL citation style file for the reference list (default: Vancouver).")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
def protocol_cmd(trial_file, output, document, template_dir, reference_doc, paper, csl, force):
    """Draft the protocol (SPIRIT 2025), SAP, process evaluation or feasibility protocol.

    \b
    Examples:
      trialplan protocol trial.yaml -o protocol.docx
      trialplan protocol trial.yaml -o sap.md --document sap
    """
    from trialplan.cli._errors import flag_names
    from trialplan.model.checks import load_trial
    from trialplan.render.drafts import write_draft

    trial = load_trial(trial_file)
    with flag_names():
        written = write_draft(trial, output, document=document, template_dir=template_dir,
                              reference_doc=reference_doc, force=force, paper=paper, csl=csl)
    for path in written:
        click.echo(f"wrote {path}", err=True)


@click.group("templates")
def templates_cmd():
    """Work with the document templates."""


@templates_cmd.command("export")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def export_cmd(directory, force):
    """Copy the built-in templates into DIRECTORY to customise them."""
    from trialplan.render.documents import export_templates

    for path in export_templates(directory, force=force):
        click.echo(f"wrote {path}", err=True)


@click.command("checklist")
@click.argument("trial_file", type=click.Path(dir_okay=False))
@click.option("--guideline", type=click.Choice(["spirit-2025", "tidier"]),
              default="spirit-2025", show_default=True,
              help="SPIRIT 2025 (the protocol) or TIDieR (the intervention).")
@click.option("--template-dir", type=click.Path(file_okay=False),
              help="Check the protocol rendered with your templates.")
@click.option("--json", "as_json", is_flag=True, help="Print the checklist as JSON.")
def checklist_cmd(trial_file, guideline, template_dir, as_json):
    """For every guideline item: filled, partly filled or to complete, and where."""
    from trialplan.model.checks import load_trial
    from trialplan.render.drafts import STATUSES, checklist

    items = checklist(load_trial(trial_file), guideline, template_dir=template_dir)
    counts = {status: sum(1 for i in items if i["status"] == status) for status in STATUSES}
    if as_json:
        click.echo(json.dumps({"guideline": guideline, "items": items,
                               "filled": counts["filled"],
                               "partly_filled": counts["partly filled"],
                               "to_complete": counts["to complete"]}, indent=2))
        return
    width = max(len(i["item"]) for i in items)
    for i in items:
        click.echo(f"{i['item']:>{width}}  {i['status']:<13}  {i['title']}  ({i['where']})")
        if i["missing"]:
            click.echo(f"{'':>{width}}  {'':<13}  missing: {'; '.join(i['missing'])}")
    click.echo(f"{counts['filled']} filled, {counts['partly filled']} partly filled, "
               f"{counts['to complete']} to complete, of {len(items)} items")


__all__ = ["checklist_cmd", "protocol_cmd", "templates_cmd"]
