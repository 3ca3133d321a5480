"""Figure of a simulation: simulated power and type I error beside the plan's analytic values."""

from __future__ import annotations

from trialplan.fileio import write_output
from trialplan.render.plots import _figure_bytes, _suffix, pyplot

#: Scenarios drawn in one figure (the JSON has them all).
MAX_PANELS = 8


def simulation_figure(result: dict, path, *, force: bool = False) -> None:
    """One panel per scenario: each estimand's simulated rate with its 95% Monte Carlo
    interval (dots) and the analytic value (open diamonds); flagged rows in red."""
    suffix = _suffix(path)
    plt = pyplot()
    scenarios = [s for s in result["scenarios"] if s.get("estimands")][:MAX_PANELS]
    if not scenarios:
        scenarios = [{"label": "no scenario could be simulated", "estimands": []}]
    rows = max(len(s["estimands"]) for s in scenarios) or 1
    fig, axes = plt.subplots(len(scenarios), 1, squeeze=False,
                             figsize=(7.0, 0.6 + 0.28 * rows * len(scenarios) + 0.6))
    for ax, scen in zip(axes[:, 0], scenarios, strict=True):
        est = scen["estimands"]
        for i, row in enumerate(est):
            y = len(est) - 1 - i
            colour = "#b03a2e" if row.get("differs") else "#1f4e79"
            half = 1.96 * row["rate_mc_se"]
            ax.errorbar(row["rate"], y, xerr=half, fmt="o", ms=4, color=colour, capsize=2)
            if row["analytic"] is not None:
                ax.plot(row["analytic"], y, marker="D", mfc="none", mec="#333333", ms=6, ls="")
        ax.set_yticks(range(len(est)))
        ax.set_yticklabels([f"{r['estimand']} ({r['kind']})" for r in reversed(est)],
                           fontsize=7)
        ax.set_xlim(-0.02, 1.02)
        ax.axvline(0.05, color="#999999", lw=0.6, ls=":")
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(scen["label"], fontsize=8)
    axes[-1, 0].set_xlabel("rejection rate (dots: simulated, 95% MC interval; diamonds: "
                           "analytic; red: differs by > 3 MC SE)", fontsize=8)
    fig.tight_layout()
    data = _figure_bytes(fig, suffix)
    plt.close(fig)
    write_output(path, data, force=force)
