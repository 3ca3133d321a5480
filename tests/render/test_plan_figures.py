"""The plan's figures: CONSORT flow and timeline carry the plan's numbers; words, not ids."""

from pathlib import Path

import pytest

from trialplan.model.checks import load_trial
from trialplan.planning import build_plan
from trialplan.render import plan_figures

ROOT = Path(__file__).resolve().parents[2]
TRIALS = sorted((ROOT / "protocols").glob("*/trial.yaml"))


@pytest.fixture(scope="module", params=TRIALS, ids=lambda p: p.parent.name)
def case(request):
    trial = load_trial(request.param)
    return trial, build_plan(trial)


def _texts(fig):
    out = []
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts]
        out += [t.get_text() for t in ax.get_yticklabels() + ax.get_xticklabels()]
        out += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()]
        legend = ax.get_legend()
        if legend is not None:
            out += [t.get_text() for t in legend.get_texts()]
    return out


def test_participant_flow_shows_the_plans_numbers(case):
    trial, plan = case
    plt = plan_figures.pyplot()
    fig = plan_figures._consort(plt, trial, plan)
    if plan["recruitment"] is None:  # no recruitment model: no flow to draw
        assert fig is None
        return
    text = " ".join(_texts(fig))
    plt.close(fig)
    flow = plan["recruitment"]["flow"]
    assert flow["screened"] == flow["eligible"] + flow["not_eligible"]
    for value in (flow["screened"], flow["randomised"], flow["not_eligible"], flow["declined"],
                  *flow["allocated"].values(), *flow["lost_to_follow_up"].values(),
                  *flow["analysed"].values()):
        assert f"{value:,}" in text
    assert f"n = {flow['not_eligible'] + flow['declined']:,}" in text
    assert trial.model.trial.comparator.lower() in text


def test_timeline_has_every_phase_and_recruitment_ends_at_the_target(case):
    trial, plan = case
    plt = plan_figures.pyplot()
    fig = plan_figures._timeline(plt, trial, plan)
    if plan["recruitment"] is None:
        assert fig is None
        return
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    bars = [p for p in fig.axes[0].patches if p.get_height() == pytest.approx(0.6)]
    plt.close(fig)
    rec = plan["recruitment"]
    setup = trial.model.assumptions.recruitment.setup_months
    assert labels[0] == "Set-up" and labels[-2:] == ["Analysis", "Reporting"]
    assert any(lbl.startswith("Follow-up") for lbl in labels)
    if plan.get("feasibility") and plan["feasibility"].get("pilot_months"):
        assert any(lbl.startswith("Internal pilot") for lbl in labels)
    recruit = [b for b, lbl in zip(bars, labels, strict=True) if lbl.startswith("Recruitment")]
    assert recruit
    if rec["sites"] <= 12:
        assert len(recruit) == rec["sites"]
    else:  # one bar for the sites opening, ending by the time the target is reached
        opens = [b for b, lbl in zip(bars, labels, strict=True) if lbl.startswith("Sites open")]
        assert opens[0].get_x() + opens[0].get_width() <= setup + rec["months_to_target"]
    for bar in recruit:
        assert bar.get_x() + bar.get_width() == pytest.approx(setup + rec["months_to_target"])
    # phases follow one another
    ends = {lbl: b.get_x() + b.get_width() for b, lbl in zip(bars, labels, strict=True)}
    starts = {lbl: b.get_x() for b, lbl in zip(bars, labels, strict=True)}
    assert starts["Reporting"] == pytest.approx(ends["Analysis"])


def test_figures_use_words_not_ids(case):
    trial, plan = case
    plt = plan_figures.pyplot()
    ids = {v.id for v in trial.model.change_model.process_variables} | \
        {o.id for o in trial.model.change_model.outcomes} | \
        {m.id for m in trial.model.change_model.mechanisms}
    for draw in (lambda: plan_figures._mechanism_curves(plt, plan),
                 lambda: plan_figures._heatmap(plt, plan)):
        fig = draw()
        if fig is None:
            continue
        words = " ".join(_texts(fig)).replace("(", " ").replace(")", " ").replace(":", " ")
        plt.close(fig)
        assert not ({w for w in words.split() if "_" in w} & ids)
        assert "icc" not in words.split()
    assert plan_figures.parameter_words("icc") == "ICC"


def test_only_the_figures_asked_for_are_drawn(case):
    trial, plan = case
    drawn = plan_figures.draw_plan_figures(trial, plan, names=("primary-power",))
    assert list(drawn) == ["primary-power"]
    with pytest.raises(Exception, match="unknown figure"):
        plan_figures.draw_plan_figures(trial, plan, names=("pie-chart",))


def test_figures_fit_a4_text_width_without_shrinking():
    """At most 6.3 in (16 cm) wide at their own resolution, so a document places
    them at natural size and 8-pt labels print at 8 pt."""
    import io

    from PIL import Image

    from trialplan.render import diagram

    trial = load_trial(ROOT / "protocols" / "peer-discharge" / "trial.yaml")  # every figure
    plan = build_plan(trial)
    drawn = {name: f["png"] for name, f in plan_figures.draw_plan_figures(trial, plan).items()}
    drawn["change-model"] = diagram.figure(trial, "png")
    for name, png in drawn.items():
        image = Image.open(io.BytesIO(png))
        width_in = image.size[0] / image.info["dpi"][0]
        assert width_in <= 6.3 + 0.01, (name, width_in)
