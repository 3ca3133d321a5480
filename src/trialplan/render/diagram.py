"""The change model as a picture (mermaid, dot, svg, png) and as a measurement matrix."""

from __future__ import annotations

import json
import textwrap

COLUMNS = {"mechanism": 0, "process": 1, "outcome": 2}
COLOURS = {"mechanism": "#d6e4f0", "process": "#fdebd0", "outcome": "#d5f5e3"}


def _edges(plan):
    return [(lk.source, lk.target) for lk in plan.change_model.links]


def _label(plan, node_id) -> str:
    kind, item = plan.nodes()[node_id]
    if kind == "mechanism":
        return item.label
    m = plan.measures.get(item.measure, {})
    instrument = m.get("abbreviation") or item.measure
    extra = f", {item.role}" if kind == "outcome" else ""
    return f"{item.label} ({instrument}{extra})"


def _mermaid_text(text: str) -> str:
    """User text as a quoted Mermaid label: no quote, tag or line break can end or style it."""
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return " ".join(text.split())


def _dot_text(text: str) -> str:
    """User text as a quoted DOT string: a backslash cannot escape the closing quote."""
    return " ".join(text.replace("\\", "\\\\").replace('"', '\\"').split())


def mermaid(plan) -> str:
    lines = ["flowchart LR"]
    for kind, title in (("mechanism", "Mechanisms"), ("process", "Process variables"),
                        ("outcome", "Outcomes")):
        lines.append(f'  subgraph {kind}s["{title}"]')
        for node_id, (k, _) in plan.nodes().items():
            if k == kind:
                text = _mermaid_text(_label(plan, node_id))
                lines.append(f'    {node_id}["{text}"]')
        lines.append("  end")
    lines += [f"  {s} --> {t}" for s, t in _edges(plan)]
    return "\n".join(lines) + "\n"


def dot(plan) -> str:
    lines = ["digraph change_model {", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled"];']
    for node_id, (kind, _) in plan.nodes().items():
        text = _dot_text(_label(plan, node_id))
        lines.append(f'  "{node_id}" [label="{text}", fillcolor="{COLOURS[kind]}"];')
    lines += [f'  "{s}" -> "{t}";' for s, t in _edges(plan)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def matrix(plan) -> list[dict]:
    """Measurement matrix: one row per mechanism and variable it leads to."""
    months = plan.timepoint_months()
    nodes = plan.nodes()
    children: dict = {}
    for s, t in _edges(plan):
        children.setdefault(s, []).append(t)
    rows = []
    for mech in plan.change_model.mechanisms:
        seen, todo = [], list(children.get(mech.id, ()))
        while todo:
            n = todo.pop(0)
            if n in seen:
                continue
            seen.append(n)
            todo += children.get(n, [])
        for n in seen:
            kind, item = nodes[n]
            m = plan.measures.get(item.measure, {})
            rows.append({
                "mechanism": mech.id,
                "variable": item.id,
                "kind": "process variable" if kind == "process" else "outcome",
                "instrument": m.get("abbreviation") or item.measure,
                "timepoints": [f"{t} (month {months[t]:g})" for t in item.timepoints],
                "role": getattr(item, "role", None) or (
                    "intervention arm only" if getattr(item, "arms", "both") == "intervention"
                    else "mediator"),
                "type": item.type,
            })
    return rows


def table(plan) -> str:
    rows = matrix(plan)
    head = ["mechanism", "variable", "kind", "instrument", "timepoints", "role"]
    body = [[r[h] if h != "timepoints" else ", ".join(t.split(" ")[0] for t in r[h])
             for h in head] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*["-" * w for w in widths])]
                     + [fmt.format(*b) for b in body]) + "\n"


def as_json(plan) -> str:
    nodes = [{"id": nid, "kind": kind, "label": _label(plan, nid)}
             for nid, (kind, _) in plan.nodes().items()]
    data = {"nodes": nodes, "links": [{"from": s, "to": t} for s, t in _edges(plan)],
            "matrix": matrix(plan)}
    return json.dumps(data, indent=2) + "\n"


def figure(plan, fmt: str) -> bytes:
    """Draw the model in three columns (networkx for layering, matplotlib to draw)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx
    from matplotlib.patches import FancyBboxPatch

    matplotlib.rcParams["svg.hashsalt"] = "trialplan"
    g = nx.DiGraph()
    nodes = plan.nodes()
    for nid, (kind, _) in nodes.items():
        g.add_node(nid, layer=COLUMNS[kind])
    g.add_edges_from(_edges(plan))
    # Process variables that feed other process variables sit in an earlier sub-column.
    depth = {}
    for nid in nx.topological_sort(g):
        kind = nodes[nid][0]
        base = COLUMNS[kind] * 2
        preds = [depth[p] for p in g.predecessors(nid) if nodes[p][0] == "process"]
        depth[nid] = max([base] + [p + 1 for p in preds]) if kind == "process" else base
    cols = sorted(set(depth.values()))
    col_x = {c: i for i, c in enumerate(cols)}
    for nid in g.nodes:
        g.nodes[nid]["layer"] = col_x[depth[nid]]
    by_col: dict = {}
    for nid in nodes:
        by_col.setdefault(g.nodes[nid]["layer"], []).append(nid)
    box_w, box_h, gap_x, gap_y = 3.2, 0.9, 1.3, 0.35
    pos = {}
    tallest = max(len(v) for v in by_col.values())
    for c, ids in by_col.items():
        offset = (tallest - len(ids)) * (box_h + gap_y) / 2
        for r, nid in enumerate(ids):
            pos[nid] = (c * (box_w + gap_x), -(offset + r * (box_h + gap_y)))
    width = len(by_col) * (box_w + gap_x)
    height = tallest * (box_h + gap_y) + 0.8
    fig, ax = plt.subplots(figsize=(max(8, width * 0.95), max(3, height * 0.95)))
    for s, t in g.edges:
        (x1, y1), (x2, y2) = pos[s], pos[t]
        ax.annotate("", xy=(x2, y2 + box_h / 2), xytext=(x1 + box_w, y1 + box_h / 2),
                    arrowprops={"arrowstyle": "-|>", "color": "#555555", "lw": 1.1,
                                "shrinkA": 2, "shrinkB": 2})
    for nid, (x, y) in pos.items():
        kind = nodes[nid][0]
        ax.add_patch(FancyBboxPatch((x, y), box_w, box_h, boxstyle="round,pad=0.05",
                                    fc=COLOURS[kind], ec="#333333", lw=0.8))
        ax.text(x + box_w / 2, y + box_h / 2, textwrap.fill(_label(plan, nid), 30),
                ha="center", va="center", fontsize=8)
    titles = {0: "Mechanisms"}
    titles[max(by_col)] = "Outcomes"
    for c in by_col:
        titles.setdefault(c, "Process variables")
    for c, title in titles.items():
        ax.text(c * (box_w + gap_x) + box_w / 2, box_h + 0.35, title, ha="center",
                fontsize=10, weight="bold")
    ax.set_xlim(-0.3, width - gap_x + 0.3)
    ax.set_ylim(-(tallest * (box_h + gap_y)), box_h + 0.8)
    ax.axis("off")
    buf = io.BytesIO()
    meta = {"Date": None} if fmt == "svg" else {"Software": None}
    fig.savefig(buf, format=fmt, metadata=meta, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
