"""Figures of a sample-size plan: power curves, sensitivity heatmap, recruitment projection.

Every figure is written as SVG and PNG with fixed metadata, so the same plan
gives byte-identical files.  Nothing is written until every figure has been
drawn, and existing files are refused unless ``force`` is set.
"""

from __future__ import annotations

import io
import math

import numpy as np

from trialplan.errors import InputError, UnreachableTargetError
from trialplan.fileio import write_directory


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "trialplan"
    return plt


def _save(fig) -> dict:
    out = {}
    for fmt in ("svg", "png"):
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
    ax.axvline(centre, color="#555555", ls=":", lw=1,
               label=f"planned: {centre:,.0f} analysed per arm")
    ax.set_xlabel("participants analysed per arm (control)")
    ax.set_ylabel("power")
    ax.set_ylim(0, 1)
    ax.set_title(f"Primary outcome: {plan['primary']['label']}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


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
        # The plan's own call, drawn with the analytic joint test.
        kw = {**m["arguments"], "test": "joint", "simulate": False}
        powers = []
        for n_ in ns:
            try:
                powers.append(mediation(**kw, n=int(n_)).power)
            except InputError:  # below the design's minimum n
                powers.append(np.nan)
        ax.plot(ns, powers, color=colour, lw=2,
                label=f"{m['mechanism']}: {m['mediator']} -> {m['outcome']}")
    ax.axhline(plan["assumptions"]["mediation_power"], color="#b03a2e", ls="--", lw=1,
               label=f"target {plan['assumptions']['mediation_power']:g}")
    ax.axvline(planned, color="#555555", ls=":", lw=1, label=f"planned n = {planned:,}")
    ax.set_xlabel("total participants analysed")
    ax.set_ylabel("power to detect the indirect effect")
    ax.set_ylim(0, 1)
    ax.set_title("Mechanisms: joint significance (analytic)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
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
                label=f"{m['mechanism']}: {m['mediator']} -> {m['outcome']} ({m['design']})")
    ax.axhline(plan["assumptions"]["mediation_power"], color="#b03a2e", ls="--", lw=1,
               label=f"target {plan['assumptions']['mediation_power']:g}")
    ax.axvline(planned, color="#555555", ls=":", lw=1, label=f"planned: {planned} clusters")
    ax.set_xlabel("clusters randomised")
    ax.set_ylabel("power to detect the indirect effect")
    ax.set_ylim(0, 1)
    ax.set_title("Mechanisms: multilevel joint significance (analytic)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    return fig


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
    ax.set_xlabel(two["columns"].replace("_", " "))
    ax.set_ylabel(two["rows"].replace("_", " "))
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


_FIGURE_NAMES = ("primary-power", "mechanism-power", "sensitivity", "recruitment")


def draw_plan_figures(trial, plan: dict) -> dict:
    """Every figure of the plan as ``{name: {"svg": bytes, "png": bytes}}``."""
    plt = _matplotlib()
    draws = (lambda: _primary_curve(plt, trial, plan), lambda: _mechanism_curves(plt, plan),
             lambda: _heatmap(plt, plan), lambda: _recruitment(plt, trial, plan))
    out = {}
    for name, draw in zip(_FIGURE_NAMES, draws, strict=True):
        fig = draw()
        if fig is None:
            continue
        out[name] = _save(fig)
        plt.close(fig)
    return out


def figure_names() -> list[str]:
    """The file names :func:`write_plan_figures` may write (to check the folder first)."""
    return [f"{name}.{fmt}" for name in _FIGURE_NAMES for fmt in ("svg", "png")]



def write_plan_figures(trial, plan: dict, directory, *, force: bool = False) -> list[str]:
    """Draw every figure of the plan and write them into ``directory`` (svg and png).

    Nothing is written unless every figure was drawn; a new folder appears only
    complete (see :func:`trialplan.fileio.write_directory`).
    """
    rendered = {f"{name}.{fmt}": data
                for name, formats in draw_plan_figures(trial, plan).items()
                for fmt, data in formats.items()}
    return write_directory(directory, rendered, force=force)
