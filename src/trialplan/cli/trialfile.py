"""Commands on the trial file: init, check, model, measures, schema."""

from __future__ import annotations

import json

import click

from trialplan.cli._output import emit_json
from trialplan.fileio import write_output


@click.command("init")
@click.argument("path", default="trial.yaml", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_cmd(path, force):
    """Write the worked peer-support trial file to PATH (default ./trial.yaml)."""
    from trialplan.model.checks import example_text

    write_output(path, example_text(), force=force)
    click.echo(f"wrote {path}: edit it, then run `trialplan check {path}`", err=True)


@click.command("check")
@click.argument("trial_file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check_cmd(trial_file, as_json):
    """Validate TRIAL_FILE: every error at once, with file:line and field.

    Exit 1 on any error; warnings (missing assumptions, unknown SDs, licences,
    respondent burden) go to stderr and leave exit 0.
    """
    from trialplan.errors import TrialFileError
    from trialplan.model.checks import load_trial

    try:
        result = load_trial(trial_file)
    except TrialFileError as exc:
        if as_json:
            emit_json({"file": trial_file, "valid": False,
                       "errors": [p.to_dict() for p in exc.problems], "warnings": []})
        else:
            for p in exc.problems:
                click.echo(f"error: {p}", err=True)
            click.echo(f"{trial_file}: {len(exc.problems)} error(s)", err=True)
        raise SystemExit(1) from None
    if as_json:
        emit_json({"file": trial_file, "valid": True, "errors": [],
                   "warnings": [w.to_dict() for w in result.warnings]})
    else:
        for w in result.warnings:
            click.echo(f"warning: {w}", err=True)
        cm = result.change_model
        click.echo(f"{trial_file}: valid ({len(cm.mechanisms)} mechanisms, "
                   f"{len(cm.process_variables)} process variables, {len(cm.outcomes)} "
                   f"outcomes, {len(cm.links)} links; {len(result.warnings)} warning(s))")


_FORMATS = {".svg": "svg", ".png": "png", ".json": "json", ".dot": "dot", ".gv": "dot",
            ".mmd": "mermaid", ".mermaid": "mermaid", ".txt": "table"}


@click.command("model")
@click.argument("trial_file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "mermaid", "dot", "svg", "png",
                                                    "json"]),
              help="Output format; default: from the -o file's extension (.svg, .png, .json, "
              ".dot, .mmd, .txt), else table.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to FILE instead of stdout (svg and png need it).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def model_cmd(trial_file, fmt, output, force):
    """Show the change model of TRIAL_FILE as a picture or as the measurement matrix."""
    from pathlib import Path

    from trialplan.model.checks import load_trial
    from trialplan.render import diagram

    implied = _FORMATS.get(Path(output).suffix.lower()) if output else None
    if fmt is None:
        if output and implied is None:
            raise click.UsageError(f"cannot tell the format from {Path(output).name!r}: give "
                                   "--format, or end -o in .svg, .png, .json, .dot, .mmd or "
                                   ".txt")
        fmt = implied or "table"
    elif implied is not None and implied != fmt:
        raise click.UsageError(f"--format {fmt} does not match the extension of "
                               f"{Path(output).name!r} ({implied})")
    result = load_trial(trial_file)
    if fmt in ("svg", "png"):
        if not output:
            raise click.UsageError(f"--format {fmt} needs -o FILE")
        data = diagram.figure(result, fmt)
    else:
        data = {"table": diagram.table, "mermaid": diagram.mermaid, "dot": diagram.dot,
                "json": diagram.as_json}[fmt](result)
    if output:
        write_output(output, data, force=force)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(data, nl=False)


_SHOW = ("name", "abbreviation", "construct", "items", "score_min", "score_max", "direction",
         "sd", "sd_source", "mcid", "reliability", "licence", "reference")


@click.group("measures", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def measures_cmd(ctx, as_json):
    """List the bundled instruments (unknown values are shown as unknown)."""
    if ctx.invoked_subcommand:
        return
    from trialplan.model.checks import catalogue

    cat = catalogue()
    if as_json:
        emit_json(list(cat.values()))
        return
    width = max(len(k) for k in cat)
    for key, m in cat.items():
        sd = "unknown" if m.get("sd") is None else f"{m['sd']:g}"
        click.echo(f"{key:<{width}}  {m['name']}  (items {m.get('items') or 'unknown'}, "
                   f"SD {sd})")


@measures_cmd.command("show")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def measures_show(key, as_json):
    """Show one instrument by KEY (case-insensitive)."""
    import difflib

    from trialplan.errors import InputError
    from trialplan.model.checks import catalogue

    cat = catalogue()
    match = {k.lower(): k for k in cat}.get(key.lower())
    if match is None:
        close = difflib.get_close_matches(key.upper(), list(cat), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InputError(f"no instrument {key!r} in the catalogue{hint}")
    m = cat[match]
    if as_json:
        emit_json(m)
        return
    click.echo(match)
    for field in _SHOW:
        if field in m:
            value = m[field]
            click.echo(f"  {field:<12} {'unknown' if value is None else value}")


@click.command("schema")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def schema_cmd(output, force):
    """Print the JSON Schema of the trial file (for editor completion)."""
    from trialplan.model.schema import json_schema

    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if output:
        write_output(output, text, force=force)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
