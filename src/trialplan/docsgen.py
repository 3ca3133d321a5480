"""Pages and figures the documentation build generates (so they cannot drift).

``generate(directory)`` writes ``trial-file-reference.md`` (every field of the
trial file, from the JSON Schema) and the figures of the bundled example: the
change model, the plan's power curves, sensitivity heatmap and recruitment
projection.
"""

from __future__ import annotations

from pathlib import Path


def _type_of(prop: dict, defs: dict) -> str:
    if "$ref" in prop:
        return f"[{prop['$ref'].split('/')[-1]}](#{prop['$ref'].split('/')[-1].lower()})"
    if "anyOf" in prop:
        parts = [_type_of(p, defs) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(parts) + (" or null" if any(p.get("type") == "null"
                                                       for p in prop["anyOf"]) else "")
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    t = prop.get("type", "any")
    if t == "array":
        return f"list of {_type_of(prop.get('items', {}), defs)}"
    if t == "object":
        extra = prop.get("additionalProperties")
        return f"mapping to {_type_of(extra, defs)}" if isinstance(extra, dict) else "mapping"
    bounds = []
    for key, sym in (("exclusiveMinimum", ">"), ("minimum", ">="), ("exclusiveMaximum", "<"),
                     ("maximum", "<=")):
        if key in prop:
            bounds.append(f"{sym} {prop[key]}")
    return t + (f" ({', '.join(bounds)})" if bounds else "")


def trial_file_reference() -> str:
    from trialplan.model.schema import json_schema

    schema = json_schema()
    defs = schema.get("$defs", {})
    lines = ["# Trial file reference (generated)", "",
             "Every field of `schema: trialplan/1`, generated from the JSON Schema when the "
             "documentation is built (`trialplan schema` prints the schema itself). Unknown "
             "fields are errors.", ""]

    def table(title, model):
        lines.extend([f"## {title}", ""])
        if model.get("description"):
            lines.extend([" ".join(model["description"].split()), ""])
        required = set(model.get("required", []))
        lines.extend(["| field | type | required | default | description |",
                      "|---|---|---|---|---|"])
        for name, prop in model.get("properties", {}).items():
            default = prop.get("default", "")
            default = f"`{default}`" if default not in ("", None, [], {}) else ""
            desc = " ".join(str(prop.get("description", "")).split()).replace("|", "\\|")
            lines.append(f"| `{name}` | {_type_of(prop, defs).replace('|', '/')} | "
                         f"{'yes' if name in required else ''} | {default} | {desc} |")
        lines.append("")

    table("TrialFile", schema)
    for name in sorted(defs):
        table(name, defs[name])
    return "\n".join(lines) + "\n"


def generate(directory) -> None:
    from trialplan.model.checks import example_text, load_trial_text
    from trialplan.planning import build_plan
    from trialplan.render import diagram
    from trialplan.render.plan_figures import draw_plan_figures

    directory = Path(directory)
    (directory / "figures").mkdir(parents=True, exist_ok=True)
    _write(directory / "trial-file-reference.md", trial_file_reference().encode())
    trial = load_trial_text(example_text(), "trial.yaml")
    plan = build_plan(trial)
    _write(directory / "figures" / "change-model.png", diagram.figure(trial, "png"))
    for name, formats in draw_plan_figures(trial, plan).items():
        _write(directory / "figures" / f"{name}.png", formats["png"])


def _write(path: Path, data: bytes) -> None:
    # Rewrite only when changed, so Sphinx does not rebuild pages for nothing.
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
