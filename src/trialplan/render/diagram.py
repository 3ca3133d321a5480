"""The change model as a picture (mermaid, dot, svg, png) and as a measurement matrix."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass

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
    if kind == "process" and getattr(item, "arms", "both") == "intervention":
        extra = ", intervention arm only"
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


# Figure geometry, in inches: drawn at A4 text width (16 cm) so that 8-pt labels
# print at 8 pt when the figure is placed at full width.
FIGURE_WIDTH = 6.3
FONT_PT = 8
_KIND_NAMES = {"mechanism": "Mechanism", "process": "Process variable",
               "outcome": "Outcome"}


@dataclass(frozen=True)
class Layout:
    """Where the change model's boxes and edges go (inches; y grows downwards).

    ``boxes`` maps a node id to ``(x0, y0, x1, y1)``; ``edges`` holds
    ``(source, target, points)`` polylines from the source box's right side
    to the target box's left side; ``columns`` the heading and centre x of
    each column (``(title, x, y, horizontal alignment)``).
    """

    boxes: dict
    labels: dict
    kinds: dict
    edges: list
    columns: list
    width: float
    height: float


def _layers(kinds: dict, edges: list) -> dict:
    """Column of each node: mechanisms first, outcomes last, process variables between.

    A process variable fed by another process variable sits one column to its
    right (longest path), so every edge points rightwards.
    """
    from graphlib import TopologicalSorter

    preds_of: dict = {n: [] for n in kinds}
    for a, b in edges:
        preds_of[b].append(a)
    depth = {}
    # The depths do not depend on which topological order is walked.
    for nid in TopologicalSorter(preds_of).static_order():
        preds = [depth[p] for p in preds_of[nid] if kinds[p] == "process"]
        depth[nid] = (1 + max(preds, default=0)) if kinds[nid] == "process" else 0
    process_cols = max([d for n, d in depth.items() if kinds[n] == "process"], default=0)
    last = process_cols + 1
    return {n: (0 if kinds[n] == "mechanism" else last if kinds[n] == "outcome" else depth[n])
            for n in kinds}


def _crossings(order: list, edges: list) -> int:
    """Edge crossings between adjacent layers for the given node order."""
    pos = {n: i for layer in order for i, n in enumerate(layer)}
    total = 0
    for k in range(len(order) - 1):
        here = set(order[k])
        segs = sorted((pos[a], pos[b]) for a, b in edges if a in here)
        for i, (a1, b1) in enumerate(segs):
            for a2, b2 in segs[i + 1:]:
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total


def _order(layer_of: dict, edges: list, sweeps: int = 12) -> list:
    """Sugiyama-style ordering within layers: barycentre sweeps, the best order kept.

    Nodes start in file order; each sweep reorders a layer by the mean position
    of its neighbours in the layer before (down) or after (up) it.
    """
    n_layers = max(layer_of.values()) + 1
    order = [[n for n in layer_of if layer_of[n] == k] for k in range(n_layers)]
    preds: dict = {}
    succs: dict = {}
    for a, b in edges:
        succs.setdefault(a, []).append(b)
        preds.setdefault(b, []).append(a)
    best, best_cross = [list(x) for x in order], _crossings(order, edges)
    for sweep in range(sweeps):
        down = sweep % 2 == 0
        layers = range(1, n_layers) if down else range(n_layers - 2, -1, -1)
        for k in layers:
            ref = {n: i for i, n in enumerate(order[k - 1 if down else k + 1])}
            near = preds if down else succs

            def centre(n, ref=ref, near=near, k=k):
                pts = [ref[m] for m in near.get(n, ()) if m in ref]
                return sum(pts) / len(pts) if pts else order[k].index(n)

            order[k] = sorted(order[k], key=centre)
        cross = _crossings(order, edges)
        if cross < best_cross:
            best, best_cross = [list(x) for x in order], cross
    return best


def _column_titles(n_layers: int) -> list[str]:
    """Distinct headings: process-variable columns are numbered when there are several
    (past two, as "Stage k" under one "Process variables" heading spanning them)."""
    middle = n_layers - 2
    process = (["Process variables"] if middle == 1 else
               [f"Process variables\n(stage {k})" for k in range(1, 3)] if middle == 2 else
               [f"Stage {k}" for k in range(1, middle + 1)])
    return ["Mechanisms", *process, "Outcomes"]


def _wrap(label: str, width_in: float) -> str:
    chars = max(8, int(width_in * 72 / (FONT_PT * 0.55)))
    return textwrap.fill(label, chars, break_long_words=False, break_on_hyphens=False)


def layout(nodes: dict, edges: list) -> Layout:
    """Lay out a change model given as ``{id: (kind, label)}`` and ``[(source, target)]``.

    Layers are fixed by kind (mechanisms, process variables in order of
    dependence, outcomes); an edge spanning several layers gets a dummy node
    in each layer it passes (a waypoint with its own row), so no edge crosses
    a box that is not its end; the order within layers minimises crossings by
    barycentre sweeps (Sugiyama, Tagawa and Toda 1981).
    """
    kinds = {n: k for n, (k, _) in nodes.items()}
    layer_of = _layers(kinds, edges)
    n_layers = max(layer_of.values()) + 1
    # Long edges become chains through dummy nodes, one per intermediate layer.
    chains, flat = {}, []
    for s, t in edges:
        chain = [s]
        for k in range(layer_of[s] + 1, layer_of[t]):
            dummy = ("dummy", s, t, k)
            layer_of[dummy] = k
            chain.append(dummy)
        chain.append(t)
        chains[(s, t)] = chain
        flat += list(zip(chain, chain[1:], strict=False))
    order = _order(layer_of, flat)
    # Narrower gaps when there are many columns, so boxes stay wide enough for words.
    gap_x = 0.8 if n_layers <= 2 else 0.42 if n_layers <= 4 else 0.25
    box_w = (FIGURE_WIDTH - gap_x * (n_layers - 1)) / n_layers
    labels = {n: _wrap(lbl, box_w - 0.12) for n, (_, lbl) in nodes.items()}
    line_h = FONT_PT * 1.25 / 72
    heights = {n: (labels[n].count("\n") + 1) * line_h + 0.16 for n in nodes}
    gap_y, dummy_h = 0.14, 0.12
    titles = _column_titles(n_layers)
    title_chars = max(8, int(box_w * 72 / ((FONT_PT + 1) * 0.62)))
    # Each line of a heading wraps on its own, so "(stage 1)" is never split.
    titles = ["\n".join(textwrap.fill(line, title_chars, break_long_words=False)
                        for line in t.split("\n")) for t in titles]
    title_lines = max(t.count("\n") + 1 for t in titles)
    span = n_layers > 4  # "Process variables" above the "Stage k" columns
    top = 0.12 + (title_lines + span) * (FONT_PT + 1) * 1.3 / 72 + 0.12
    column_h = [sum(heights.get(n, dummy_h) + gap_y for n in layer) - gap_y for layer in order]
    tallest = max(column_h)
    boxes, waypoints = {}, {}
    for k, layer in enumerate(order):
        x0 = k * (box_w + gap_x)
        y = top + (tallest - column_h[k]) / 2
        for n in layer:
            h = heights.get(n, dummy_h)
            if n in nodes:
                boxes[n] = (x0, y, x0 + box_w, y + h)
            else:
                waypoints[n] = (x0, x0 + box_w, y + h / 2)
            y += h + gap_y
    # Ports: the edges leaving (entering) a box are spread down its right (left)
    # side in the order of the other end, so they fan out without crossing there.
    def other_y(node):
        if node in boxes:
            return (boxes[node][1] + boxes[node][3]) / 2
        return waypoints[node][2]

    out_port, in_port = {}, {}
    for n in nodes:
        for ports, own_edges, far in ((out_port, [e for e in edges if e[0] == n], 1),
                                      (in_port, [e for e in edges if e[1] == n], -2)):
            ends = sorted(own_edges, key=lambda e, far=far: other_y(chains[e][far]))
            x0, y0, x1, y1 = boxes[n]
            for i, e in enumerate(ends):
                ports[e] = y0 + (y1 - y0) * (i + 1) / (len(ends) + 1)
    paths = []
    for (s, t), chain in chains.items():
        pts = [(boxes[s][2], out_port[(s, t)])]
        for d in chain[1:-1]:
            left, right, y = waypoints[d]
            pts += [(left, y), (right, y)]
        pts.append((boxes[t][0], in_port[(s, t)]))
        paths.append((s, t, pts))
    below = 0.12 + span * (FONT_PT + 1) * 1.3 / 72
    headings = [(title, k * (box_w + gap_x) + box_w / 2, below if 0 < k < n_layers - 1
                 else 0.12, "center") for k, title in enumerate(titles)]
    if n_layers > 4:  # narrow outer columns: keep their headings inside the figure
        headings[0] = (titles[0], 0.0, 0.12, "left")
        headings[-1] = (titles[-1], FIGURE_WIDTH, 0.12, "right")
    if span:
        headings.append(("Process variables", FIGURE_WIDTH / 2, 0.12, "center"))
    height = top + tallest + 0.5
    return Layout(boxes, labels, kinds, paths, headings, FIGURE_WIDTH, height)


def figure(plan, fmt: str) -> bytes:
    """Draw the change model in layers (see :func:`layout`) with matplotlib."""
    nodes = {nid: (kind, _label(plan, nid)) for nid, (kind, _) in plan.nodes().items()}
    primary = {nid for nid, (kind, item) in plan.nodes().items()
               if kind == "outcome" and getattr(item, "role", "") == "primary"}
    return draw(layout(nodes, _edges(plan)), fmt, emphasise=primary)


def draw(lay: Layout, fmt: str, *, emphasise=frozenset()) -> bytes:
    """Render a :class:`Layout` to PNG or SVG bytes (fixed metadata: same bytes each run)."""
    import io

    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
    from matplotlib.path import Path as MPath

    from trialplan.render.plots import pyplot

    plt = pyplot()
    fig = plt.figure(figsize=(lay.width, lay.height))  # exactly A4 text width
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.05, lay.width + 0.05)
    ax.set_ylim(lay.height, 0)
    ax.axis("off")
    for _, _, pts in lay.edges:
        codes = [MPath.MOVETO] + [MPath.LINETO] * (len(pts) - 1)
        ax.add_patch(FancyArrowPatch(path=MPath(pts, codes), arrowstyle="-|>",
                                     mutation_scale=9, color="#4d4d4d", lw=0.9,
                                     shrinkA=0, shrinkB=0, zorder=1))
    for nid, (x0, y0, x1, y1) in lay.boxes.items():
        kind = lay.kinds[nid]
        ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0,
                                    boxstyle="round,pad=0,rounding_size=0.05",
                                    fc=COLOURS[kind], ec="#1f1f1f",
                                    lw=1.6 if nid in emphasise else 0.7, zorder=2))
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, lay.labels[nid], ha="center", va="center",
                fontsize=FONT_PT, zorder=3, linespacing=1.1)
    for title, x, y, align in lay.columns:
        ax.text(x, y, title, ha=align, va="top", fontsize=FONT_PT + 1, weight="bold",
                linespacing=1.15)
    handles = [Patch(fc=COLOURS[k], ec="#1f1f1f", lw=0.7, label=_KIND_NAMES[k])
               for k in ("mechanism", "process", "outcome")]
    if emphasise:
        handles.append(Patch(fc="white", ec="#1f1f1f", lw=1.6, label="Primary outcome"))
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0),
              ncol=len(handles), fontsize=FONT_PT, frameon=False, handlelength=1.4,
              columnspacing=1.2)
    buf = io.BytesIO()
    meta = {"Date": None} if fmt == "svg" else {"Software": None}
    fig.savefig(buf, format=fmt, metadata=meta, dpi=200)
    plt.close(fig)
    return buf.getvalue()
