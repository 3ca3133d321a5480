"""Figures of a sample-size plan: power curves, sensitivity, recruitment, progression criteria.

Every figure is written as SVG and PNG with fixed metadata, so the same plan
gives byte-identical files.  Nothing is written until every figure has been
drawn, and existing files are refused unless ``force`` is set.
"""

from __future__ import annotations

import io
import math
import textwrap

import numpy as np

from trialplan.errors import InputError, UnreachableTargetError
from trialplan.fileio import write_directory
from trialplan.render.plots import pyplot

# Assumption names in words, for axes and tables ("ICC", not "icc").
PARAMETER_WORDS = {"icc": "ICC", "attrition": "attrition", "control_rate": "control-arm rate",
                   "intervention_rate": "intervention-arm rate", "d": "standardised effect (d)",
                   "hazard_ratio": "hazard ratio", "rate_ratio": "rate ratio",
                   "cluster_size": "cluster size",
                   "power": "power", "alpha": "significance level"}
ARM_COLOURS = {"intervention": "#fdebd0", "control": "#d6e4f0"}


def parameter_words(name: str) -> str:
    """An assumption's name as words for a reader (unknown names: underscores to spaces)."""
    return PARAMETER_WORDS.get(name, str(name).replace("_", " "))


FORMATS = ("svg", "png")
"""The formats every figure can be saved in."""


def _save(fig, formats=FORMATS) -> dict:
    out = {}
    for fmt in formats:
        buf = io.BytesIO()
        meta = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(buf, format=fmt, metadata=meta, dpi=150, bbox_inches="tight")
        out[fmt] = buf.getvalue()
    return out


def _primary_curve(plt, trial, plan):
    from trialplan.planning.calls import _function
    from trialplan.planning.plan import _primary_call

    call = _primary_call(trial)
    fn = _function(call.function)
    args = call.kwargs
    res = plan["primary"]["result"]
    centre = float(res["n_analysed_per_arm"]["control"])
    ns = np.linspace(max(4.0, centre * 0.2), centre * 2.0, 120)
    kw = {k: v for k, v in args.items() if k not in ("power",)}
    try:
        curve = fn(**kw, n=ns).power
    except InputError:
        # Part of the range is below the design's smallest n (a small cluster trial has
        # few clusters per arm): draw only the admissible part.
        ns, curve = _admissible_points(fn, kw, ns)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(ns, curve, color="#1f4e79", lw=2)
    ax.axhline(plan["assumptions"]["power"], color="#b03a2e", ls="--", lw=1,
               label=f"target power {plan['assumptions']['power']:g}")
    _primary_axes(ax, plan, centre, f"planned: {centre:,.0f} analysed per arm",
                  "participants analysed per arm (control)", "power")
    return fig


def _primary_axes(ax, plan, planned, planned_label, xlabel, ylabel):
    """The planned size, labels, title and legend shared by both primary-outcome figures."""
    ax.axvline(planned, color="#555555", ls=":", lw=1, label=planned_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.set_title(f"Primary outcome: {plan['primary']['label']}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def _admissible_points(fn, kw, ns):
    """The points of ``ns`` at which ``fn`` accepts n, and the power at each."""
    kept, powers = [], []
    for n_ in ns:
        try:
            powers.append(float(fn(**kw, n=float(n_)).power))
        except (InputError, UnreachableTargetError):
            continue
        kept.append(n_)
    return np.asarray(kept), np.asarray(powers)


def _mechanism_curves(plt, plan):
    from trialplan.stats import mediation
    from trialplan.stats.mediation import power_over

    computed = [m for m in plan["mechanisms"] if m.get("status") == "computed"]
    if not computed:
        return None
    if computed[0]["function"] == "cluster_mediation":
        return _cluster_mechanism_curves(plt, plan, computed)
    planned = computed[0]["planned_n"]
    top = max(max(m["n_needed_analysed"] for m in computed), planned) * 1.3
    ns = np.unique(np.linspace(20, top, 60).astype(int))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = ["#1f4e79", "#b9770e", "#1e8449", "#7d3c98", "#922b21", "#566573"]
    for colour, m in zip(colours, computed, strict=False):
        # The plan's own call, drawn with the analytic joint test at every n at once (nan,
        # not drawn, below the design's minimum n).
        kw = {**m["arguments"], "test": "joint", "simulate": False}
        powers = power_over(mediation(**kw, n=m["planned_n"]), n=ns)
        ax.plot(ns, powers, color=colour, lw=2,
                label=f"{m['mediator_label']} \u2192 {m['outcome_label']}")
    _mechanism_axes(ax, plan, planned, f"planned n = {planned:,}",
                    "total participants analysed", "Mechanisms: joint significance (analytic)")
    return fig


def _cluster_mechanism_curves(plt, plan, computed):
    """Cluster-randomised trials: each mechanism's power against the clusters randomised."""
    from trialplan.stats.cluster_mediation import cluster_mediation

    planned = computed[0]["planned_clusters"]
    top = max(max(m["clusters_needed"] for m in computed), planned) * 1.3
    js = np.unique(np.linspace(6, max(top, 12), 60).astype(int))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = ["#1f4e79", "#b9770e", "#1e8449", "#7d3c98", "#922b21", "#566573"]
    for colour, m in zip(colours, computed, strict=False):
        kw = {**m["arguments"], "test": "joint"}
        kw.pop("power", None)
        powers = [cluster_mediation(**kw, clusters=int(j)).power for j in js]
        ax.plot(js, powers, color=colour, lw=2,
                label=f"{m['mediator_label']} \u2192 {m['outcome_label']} "
                      f"({m['design']} design)")
    _mechanism_axes(ax, plan, planned, f"planned: {planned} clusters", "clusters randomised",
                    "Mechanisms: multilevel joint significance (analytic)")
    return fig


def _mechanism_axes(ax, plan, planned, planned_label, xlabel, title):
    """The target, the planned size, labels and legend shared by both mechanism figures."""
    ax.axhline(plan["assumptions"]["mediation_power"], color="#b03a2e", ls="--", lw=1,
               label=f"target {plan['assumptions']['mediation_power']:g}")
    ax.axvline(planned, color="#555555", ls=":", lw=1, label=planned_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("power to detect the indirect effect")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    # Below the axes: long variable labels would hide the curves inside them.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, frameon=False)


def _heatmap(plt, plan):
    two = plan["sensitivity"]["two_way"]
    if not two:
        return None
    data = np.array([[np.nan if v is None else v for v in row] for row in two["n_to_recruit"]],
                    dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    im = ax.imshow(data, cmap="YlOrRd", aspect="auto", origin="lower")
    ax.set_xticks(range(len(two["column_values"])), [f"{v:g}" for v in two["column_values"]])
    ax.set_yticks(range(len(two["row_values"])), [f"{v:g}" for v in two["row_values"]])
    ax.set_xlabel(parameter_words(two["columns"]))
    ax.set_ylabel(parameter_words(two["rows"]))
    top = np.nanmax(data) if np.isfinite(data).any() else 0
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            v = data[i, j]
            ax.text(j, i, "-" if math.isnan(v) else f"{v:,.0f}", ha="center", va="center",
                    fontsize=8, color="white" if v > 0.6 * top else "black")
    fig.colorbar(im, ax=ax, label="participants to recruit")
    ax.set_title("Sensitivity of the sample size (primary outcome)", fontsize=9)
    return fig


def _recruitment(plt, trial, plan):
    rec = plan["recruitment"]
    if rec is None:
        return None
    from trialplan.planning.plan import recruitment_curve

    horizon = max(rec["months_to_target"] * 1.15, 1.0)
    t = np.linspace(0, horizon, 200)
    cum = recruitment_curve(trial.model.assumptions.recruitment, t)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(t, cum, color="#1f4e79", lw=2, label="projected randomised")
    ax.axhline(rec["target"], color="#b03a2e", ls="--", lw=1,
               label=f"target {rec['target']:,}")
    ax.axvline(rec["months_to_target"], color="#555555", ls=":", lw=1,
               label=f"{rec['months_to_target']:.1f} months")
    fe = plan.get("feasibility")
    if fe and fe.get("pilot_months"):
        ax.axvline(fe["pilot_months"], color="#1e8449", ls="-.", lw=1,
                   label=f"internal pilot ends ({fe['pilot_n']} randomised)")
    ax.set_xlabel("months from the first site opening")
    ax.set_ylabel("participants randomised")
    ax.set_title(f"Recruitment: {rec['sites']} sites, {rec['randomised_per_site_month']:.3g} "
                 "randomised per site-month at full speed", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def _progression(plt, plan):
    """P(green), P(amber), P(red) against the true value, one panel per criterion."""
    fe = plan.get("feasibility")
    crits = [c for c in (fe or {}).get("criteria", []) if c.get("oc")]
    if not crits:
        return None
    cols = min(len(crits), 2)
    rows = math.ceil(len(crits) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.05 * cols, 2.6 * rows), squeeze=False)
    colours = {"green": "#1e8449", "amber": "#d68910", "red": "#b03a2e"}
    for ax, c in zip(axes.ravel(), crits, strict=False):
        x = c["oc"]["true"]
        for k, colour in colours.items():
            ax.plot(x, c["oc"][k], color=colour, lw=1.8, label=f"P({k})")
        for v, style, name in ((c["green"], "--", "green threshold"),
                               (c["amber"], ":", "amber threshold")):
            ax.axvline(v, color="#555555", ls=style, lw=0.8, label=name)
        if c.get("expected") is not None and c["kind"] != "recruitment":
            ax.axvline(c["expected"], color="#1f4e79", ls="-.", lw=0.8,
                       label="value the sample size assumes")
        scale = "true rate / projected" if c["kind"] == "recruitment" else f"true {c['kind']}"
        ax.set_xlabel(scale, fontsize=8)
        ax.set_ylabel("probability", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(f"{c['id']} (n = {c['denominator']})", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(crits):]:
        ax.set_visible(False)
    handles = {}
    for ax in axes.ravel()[:len(crits)]:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=3, fontsize=7,
               frameon=False)
    return fig


def _assurance(plt, plan):
    """Power at the point values and assurance over the priors, against the number recruited."""
    asr = plan.get("assurance") or {}
    curve = asr.get("curve")
    if not curve:
        return None
    n = [c["n_to_recruit"] for c in curve]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(n, [c["power"] for c in curve], color="#1f4e79", lw=2, marker="o", ms=3,
            label="power at the point values")
    ax.plot(n, [c["assurance"] for c in curve], color="#b03a2e", lw=2, marker="o", ms=3,
            label="assurance (expected power over the priors)")
    ceiling = asr["primary"]["prob_effect_favourable"]
    ax.axhline(ceiling, color="#b03a2e", ls=":", lw=1,
               label=f"P(effect favours the intervention) = {ceiling:.2f}")
    planned = plan["final"]["n_to_recruit"]
    _primary_axes(ax, plan, planned, f"planned: {planned:,} recruited",
                  "participants recruited", "power, assurance")
    return fig


def _box(ax, x, y, w, h, text, fc="white", bold=False):
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, fc=fc, ec="#1f1f1f", lw=0.8,
                                boxstyle="round,pad=0,rounding_size=0.04"))
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5, linespacing=1.25,
            weight="bold" if bold else "normal")


def _arrow(ax, start, end):
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "color": "#4d4d4d",
                                                      "lw": 0.9, "shrinkA": 0, "shrinkB": 0})


def _consort(plt, trial, plan):
    """Expected participant flow in the CONSORT layout, with the plan's numbers."""
    rec = plan["recruitment"]
    if rec is None:
        return None
    flow = rec["flow"]
    arms = {"intervention": trial.model.intervention.brief_name or "Intervention",
            "control": trial.model.trial.comparator}

    def n(x):
        return f"n = {x:,}"

    # 6.1 in wide plus the saved margins: placed at A4 text width without shrinking
    fig = plt.figure(figsize=(6.1, 5.6 * 0.85))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 6.3)
    ax.set_ylim(5.6, 0)
    ax.axis("off")
    mid, w_main = 2.6, 2.6
    for y, title in ((0.2, "Enrolment"), (2.4, "Allocation"), (3.48, "Follow-up"),
                     (4.48, "Analysis")):
        ax.text(0.05, y, title, fontsize=9, weight="bold", color="#1f3a5f", va="center")
    _box(ax, mid, 0.65, w_main, 0.5, f"Assessed for eligibility\n({n(flow['screened'])})")
    _box(ax, 5.0, 1.35, 2.4, 0.75,
         f"Excluded ({n(flow['not_eligible'] + flow['declined'])})\n"
         f"Not eligible: {flow['not_eligible']:,}\nDeclined: {flow['declined']:,}")
    _box(ax, mid, 2.0, w_main, 0.5, f"Randomised\n({n(flow['randomised'])})", bold=True)
    _arrow(ax, (mid, 0.9), (mid, 1.75))
    _arrow(ax, (mid, 1.35), (3.8, 1.35))
    for x, arm in ((1.45, "intervention"), (4.75, "control")):
        label = textwrap.fill(f"Allocated to {arms[arm].lower()}", 30, break_long_words=False)
        _box(ax, x, 2.95, 2.75, 0.6, f"{label}\n({n(flow['allocated'][arm])})",
             fc=ARM_COLOURS[arm])
        _box(ax, x, 3.95, 2.75, 0.45, f"Lost to follow-up\n({n(flow['lost_to_follow_up'][arm])})")
        _box(ax, x, 4.95, 2.75, 0.45, f"Analysed\n({n(flow['analysed'][arm])})", bold=True)
        _arrow(ax, (x, 3.25), (x, 3.72))
        _arrow(ax, (x, 4.17), (x, 4.72))
    ax.plot([1.45, 4.75], [2.45, 2.45], color="#4d4d4d", lw=0.9)
    ax.plot([mid, mid], [2.25, 2.45], color="#4d4d4d", lw=0.9)
    _arrow(ax, (1.45, 2.45), (1.45, 2.65))
    _arrow(ax, (4.75, 2.45), (4.75, 2.65))
    ax.text(3.15, 5.45, "Expected numbers from the recruitment and attrition assumptions of "
            "the plan.", ha="center", fontsize=8, color="#555555", style="italic")
    return fig


def _timeline(plt, trial, plan):
    """Trial timeline (Gantt): set-up, pilot, recruitment by site, follow-up, analysis, report."""
    rec = plan["recruitment"]
    if rec is None:
        return None
    assumed = trial.model.assumptions.recruitment
    given = assumed.model_fields_set
    setup = assumed.setup_months
    last_visit = max(tp.month for tp in trial.model.timepoints)
    end_recruit = setup + rec["months_to_target"]
    end_follow = end_recruit + last_visit
    end_analysis = end_follow + assumed.analysis_months
    end_report = end_analysis + assumed.reporting_months
    bars = [("Set-up", 0.0, setup, "#c9c9c9", "setup_months" not in given)]
    fe = plan.get("feasibility")
    if fe and fe.get("pilot_months"):
        bars.append((f"Internal pilot ({fe['pilot_n']:,} randomised)", setup,
                     setup + fe["pilot_months"], "#a9cce3", False))
    sites = rec["sites"]
    gap = assumed.site_opening_interval_months
    # Sites due to open after the target is reached are not needed.
    opening = [setup + i * gap for i in range(sites) if setup + i * gap < end_recruit]
    if len(opening) <= 12:
        for i, start in enumerate(opening):
            bars.append((f"Recruitment, site {i + 1}", start, end_recruit, "#f5cba7", False))
    else:
        bars.append((f"Sites open ({len(opening)} of {sites})" if len(opening) < sites
                     else f"Sites open ({sites})", setup, opening[-1], "#fad7a0", False))
        bars.append(("Recruitment", setup, end_recruit, "#f5cba7", False))
    bars += [(f"Follow-up (to month {last_visit:g} after randomisation)", setup, end_follow,
              "#d5f5e3", False),
             ("Analysis", end_follow, end_analysis, "#d2b4de", "analysis_months" not in given),
             ("Reporting", end_analysis, end_report, "#aeb6bf", "reporting_months" not in given)]
    height = 1.0 + 0.26 * len(bars)
    fig, ax = plt.subplots(figsize=(6.1, height))
    for row, (_, start, end, colour, default) in enumerate(bars):
        ax.barh(row, end - start, left=start, height=0.6, color=colour, edgecolor="#4d4d4d",
                lw=0.6, hatch="//" if default else None)
    ax.set_yticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    ax.set_ylim(len(bars) - 0.4, -1.3)
    ax.set_xlabel("Months from the start of set-up", fontsize=8.5)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlim(0, end_report * 1.02)
    ax.axvline(end_recruit, color="#b03a2e", ls="--", lw=0.9)
    ax.text(end_recruit, -0.85, f"target of {rec['target']:,} reached ", color="#b03a2e",
            fontsize=8, va="center", ha="right")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    if any(b[4] for b in bars):  # said under the axis, where it cannot cover a bar
        ax.set_xlabel("Months from the start of set-up (hatched: length assumed)",
                      fontsize=8.5)
    fig.tight_layout()
    return fig


FIGURE_NAMES = ("primary-power", "mechanism-power", "sensitivity", "recruitment",
                "participant-flow", "timeline", "progression", "assurance")
"""The plan's figures, by file stem."""


def draw_plan_figures(trial, plan: dict, names=FIGURE_NAMES, formats=FORMATS) -> dict:
    """The plan's figures as ``{name: {"svg": bytes, "png": bytes}}``.

    ``names`` limits the drawing to those figures and ``formats`` the files
    saved of each (a document draws only the figures it shows, as PNG: saving
    an SVG as well costs as much again); a figure the plan has nothing for is
    left out.
    """
    plt = pyplot()
    figures = {
        "primary-power": lambda: _primary_curve(plt, trial, plan),
        "mechanism-power": lambda: _mechanism_curves(plt, plan),
        "sensitivity": lambda: _heatmap(plt, plan),
        "recruitment": lambda: _recruitment(plt, trial, plan),
        "participant-flow": lambda: _consort(plt, trial, plan),
        "timeline": lambda: _timeline(plt, trial, plan),
        "progression": lambda: _progression(plt, plan),
        "assurance": lambda: _assurance(plt, plan),
    }
    unknown = sorted(set(names) - set(figures))
    if set(formats) - set(FORMATS):
        raise InputError(f"figure formats are {', '.join(FORMATS)}; got {', '.join(formats)}")
    if unknown:
        raise InputError(f"unknown figure(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(FIGURE_NAMES)}")
    out = {}
    for name in names:
        draw = figures[name]
        fig = draw()
        if fig is None:
            continue
        out[name] = _save(fig, formats)
        plt.close(fig)
    return out


def figure_names() -> list[str]:
    """The file names :func:`write_plan_figures` may write (to check the folder first)."""
    return [f"{name}.{fmt}" for name in FIGURE_NAMES for fmt in FORMATS]



def write_plan_figures(trial, plan: dict, directory, *, force: bool = False) -> list[str]:
    """Draw every figure of the plan and write them into ``directory`` (svg and png).

    Nothing is written unless every figure was drawn; a new folder appears only
    complete (see :func:`trialplan.fileio.write_directory`).
    """
    rendered = {f"{name}.{fmt}": data
                for name, formats in draw_plan_figures(trial, plan).items()
                for fmt, data in formats.items()}
    return write_directory(directory, rendered, force=force)
