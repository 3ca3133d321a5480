"""The change-model figure: layered layout, no edge through a box, legible labels."""

from pathlib import Path

import numpy as np
import pytest

from trialplan.model.checks import load_trial
from trialplan.render import diagram

PROTOCOLS = sorted((Path(__file__).resolve().parents[2] / "protocols").glob("*/trial.yaml"))
EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "trialplan" / "data" / \
    "example_trial.yaml"


def _segment_hits_box(p, q, box, eps=1e-6):
    """Does segment p-q pass through the inside of box (x0, y0, x1, y1)? (Liang-Barsky)"""
    x0, y0, x1, y1 = box[0] + eps, box[1] + eps, box[2] - eps, box[3] - eps
    t0, t1 = 0.0, 1.0
    dx, dy = q[0] - p[0], q[1] - p[1]
    for d, lo, hi, start in ((dx, x0, x1, p[0]), (dy, y0, y1, p[1])):
        if abs(d) < 1e-12:
            if start <= lo or start >= hi:
                return False
            continue
        a, b = (lo - start) / d, (hi - start) / d
        t0, t1 = max(t0, min(a, b)), min(t1, max(a, b))
        if t0 >= t1:
            return False
    return True


def _violations(lay):
    bad = []
    for s, t, pts in lay.edges:
        for p, q in zip(pts, pts[1:], strict=False):
            for nid, box in lay.boxes.items():
                if nid not in (s, t) and _segment_hits_box(p, q, box):
                    bad.append((s, t, nid))
        # the edge starts on its source's right side and ends on its target's left side
        assert pts[0][0] == pytest.approx(lay.boxes[s][2])
        assert pts[-1][0] == pytest.approx(lay.boxes[t][0])
    return bad


def test_the_hit_test_itself_finds_a_crossing_and_a_miss():
    box = (1.0, 1.0, 2.0, 2.0)
    assert _segment_hits_box((0.0, 1.5), (3.0, 1.5), box)
    assert _segment_hits_box((0.0, 0.0), (3.0, 3.0), box)
    assert not _segment_hits_box((0.0, 0.5), (3.0, 0.5), box)
    assert not _segment_hits_box((0.0, 0.0), (0.9, 3.0), box)
    assert not _segment_hits_box((2.0, 1.5), (3.0, 1.5), box)  # leaves from its side


@pytest.mark.parametrize("trial_file", [EXAMPLE, *PROTOCOLS], ids=lambda p: p.parent.name)
def test_no_edge_crosses_a_box_that_is_not_its_end_in_the_examples(trial_file):
    plan = load_trial(trial_file)
    nodes = {nid: (kind, diagram._label(plan, nid)) for nid, (kind, _) in plan.nodes().items()}
    lay = diagram.layout(nodes, diagram._edges(plan))
    assert _violations(lay) == []
    assert len(lay.edges) == len(plan.change_model.links)
    titles = [t for t, *_ in lay.columns]
    assert len(set(titles)) == len(titles)  # distinct column headings
    assert lay.width <= 6.3 + 1e-9  # A4 text width: 8-pt labels print at 8 pt
    assert 0.25 <= lay.height / lay.width <= 1.4
    # labels are words, not ids
    for nid, label in lay.labels.items():
        assert label.replace("\n", " ") != nid


def _random_model(rng):
    n_mech, n_proc, n_out = rng.integers(1, 5), rng.integers(1, 9), rng.integers(1, 4)
    mech = [f"m{i}" for i in range(n_mech)]
    proc = [f"p{i}" for i in range(n_proc)]
    out = [f"o{i}" for i in range(n_out)]
    nodes = {**{m: ("mechanism", f"Mechanism {m} with a fairly long label") for m in mech},
             **{p: ("process", f"Process {p}") for p in proc},
             **{o: ("outcome", f"Outcome {o} (primary)") for o in out}}
    edges = set()
    for m in mech:
        pool = proc + out
        for target in rng.choice(pool, size=min(len(pool), rng.integers(1, 4)), replace=False):
            edges.add((m, str(target)))
    for i, p in enumerate(proc):
        later = proc[i + 1:] + out  # process -> later process keeps the graph acyclic
        for target in rng.choice(later, size=min(len(later), rng.integers(1, 4)),
                                 replace=False):
            edges.add((p, str(target)))
    return nodes, sorted(edges)


def test_no_edge_crosses_a_box_on_generated_models():
    rng = np.random.default_rng(20261126)
    for _ in range(60):
        nodes, edges = _random_model(rng)
        lay = diagram.layout(nodes, edges)
        assert _violations(lay) == [], (nodes, edges)
        assert set(lay.boxes) == set(nodes)


def test_barycentre_ordering_removes_an_avoidable_crossing():
    nodes = {"a": ("mechanism", "A"), "b": ("mechanism", "B"),
             "x": ("outcome", "X"), "y": ("outcome", "Y")}
    edges = [("a", "y"), ("b", "x")]
    order = diagram._order({"a": 0, "b": 0, "x": 1, "y": 1}, edges)
    assert diagram._crossings(order, edges) == 0
    assert diagram._crossings([["a", "b"], ["x", "y"]], edges) == 1
    lay = diagram.layout(nodes, edges)
    ys = {n: lay.boxes[n][1] for n in nodes}
    assert (ys["a"] < ys["b"]) == (ys["y"] < ys["x"])


def test_figure_is_deterministic_png():
    plan = load_trial(EXAMPLE)
    one, two = diagram.figure(plan, "png"), diagram.figure(plan, "png")
    assert one == two and one[:8] == b"\x89PNG\r\n\x1a\n"
