"""The ready-made trial files in protocols/ and their committed drafts stay current."""

from pathlib import Path

import pytest

from trialplan.model.checks import load_trial
from trialplan.planning import build_plan
from trialplan.render.documents import DOCUMENTS, localise_figure_links
from trialplan.render.drafts import markdown_for

ROOT = Path(__file__).resolve().parents[2] / "protocols"
TRIALS = sorted(ROOT.glob("*/trial.yaml"))


def test_there_are_at_least_three_designs():
    names = {t.parent.name for t in TRIALS}
    assert {"peer-discharge", "cluster-wards", "feasibility-pilot"} <= names
    designs = {load_trial(t).model.assumptions.clustering.kind for t in TRIALS}
    assert {"partial", "cluster"} <= designs


@pytest.mark.parametrize("trial_file", TRIALS, ids=lambda p: p.parent.name)
def test_committed_drafts_match_a_fresh_render(trial_file):
    trial = load_trial(trial_file)
    plan = build_plan(trial)
    for document in DOCUMENTS:
        text, _ = markdown_for(trial, document, plan=plan, with_figures=False)
        committed = trial_file.parent / f"{document}.md"
        assert committed.exists(), f"run: python protocols/regenerate.py ({committed})"
        fresh = localise_figure_links(text, document)
        assert committed.read_text() == fresh, "run: python protocols/regenerate.py"
        for link in [line for line in fresh.splitlines() if line.startswith("![")]:
            figure = link.split("](", 1)[1].split(")", 1)[0]
            assert (trial_file.parent / figure).exists(), figure


def test_every_cluster_trial_document_states_the_cluster_design():
    """CONSORT for cluster trials: clusters per arm, recruited and analysed per cluster, the CV
    of cluster size and the design effect, in each of the four drafts."""
    plan = build_plan(load_trial(ROOT / "cluster-wards" / "trial.yaml"))
    f = plan["final"]
    k = f["clusters_per_arm"]
    for doc in DOCUMENTS:
        text = (ROOT / "cluster-wards" / f"{doc}.md").read_text()
        assert f"{k['control']} control and {k['intervention']} intervention clusters" in text, doc
        assert "recruiting 40 participants" in text or "recruiting about 40" in text, doc
        assert "about 32 are expected to be analysed" in text, doc
        assert "of cluster size 0.4" in text or "of cluster size of 0.4" in text, doc
        assert f"design effect {f['design_effect']['control']:.3g}" in text or \
            f"design effect on the number analysed per cluster is " \
            f"{f['design_effect']['control']:.3g}" in text, doc
