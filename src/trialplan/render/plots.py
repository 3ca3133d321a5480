"""Power curves (matplotlib, imported only when a figure is asked for)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from trialplan.errors import InputError
from trialplan.fileio import check_target, write_output


def pyplot():
    """matplotlib's pyplot, set up once for every trialplan figure.

    The Agg backend (no display) and a fixed SVG hash salt make the same figure
    the same bytes.  Labels carry trial-file text (arm, outcome and mechanism
    names), so text is never parsed as mathtext or handed to LaTeX: a ``$`` in a
    label is a dollar sign, not an error or a command.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update({"svg.hashsalt": "trialplan", "text.parse_math": False,
                                "text.usetex": False})
    return plt


def _figure_bytes(fig, suffix: str) -> bytes:
    buf = io.BytesIO()
    # Fixed metadata keeps the files byte-identical for the same input.
    meta = {"Date": None} if suffix == ".svg" else {"Software": None}
    fig.savefig(buf, format=suffix[1:], metadata=meta, dpi=150, bbox_inches="tight")
    return buf.getvalue()


def _suffix(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in (".svg", ".png"):
        raise InputError(f"figure file must end in .svg or .png; got {Path(path).name!r}")
    return suffix


def check_figure_target(path, *, force: bool = False) -> str:
    """Refuse a figure file that cannot be written (see :func:`~trialplan.fileio.check_target`)
    or has no figure format's extension, before the work; return the extension."""
    suffix = _suffix(path)
    check_target(path, force=force)
    return suffix


def power_curve(fn, kwargs: dict, result, path, *, force: bool = False) -> None:
    """Draw power against n for one design scenario; mark the target and the answer."""
    suffix = check_figure_target(path, force=force)
    plt = pyplot()
    survival = result.design == "survival"
    if survival:
        centre = float(result.events)
        label = "total events"
    else:
        centre = float(result.n_analysed_per_arm["control"])
        label = "participants analysed per arm (control)"
    ns = np.linspace(max(centre * 0.2, 4.0), centre * 2.0, 120)
    args = {k: val for k, val in kwargs.items() if k not in ("n", "power")}
    effect_key = {"means": "d", "proportions": "p2", "survival": "hr",
                  "rates": "rate2"}[result.design]
    if args.get(effect_key) is None:
        effect = result.effect
        args[effect_key] = {"d": effect.get("d"), "p2": effect.get("p_intervention"),
                            "hr": effect.get("hazard_ratio"),
                            "rate2": effect.get("rate_intervention")}[effect_key]
        for extra in ("rr", "odds_ratio", "rd"):
            args.pop(extra, None)
    curve = fn(**args, n=ns).power
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(ns, curve, color="#1f4e79", lw=2)
    target = result.inputs.get("power")
    if target is not None:
        ax.axhline(target, color="#b03a2e", ls="--", lw=1, label=f"target power {target:g}")
    ax.axvline(centre, color="#555555", ls=":", lw=1, label=f"{label}: {centre:,.0f}")
    ax.set_xlabel(label)
    ax.set_ylabel("power")
    ax.set_ylim(0, 1)
    ax.set_title(f"{result.design}: {result.method}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    data = _figure_bytes(fig, suffix)
    plt.close(fig)
    write_output(path, data, force=force)


# Tests of the indirect effect as a reader names them (figure legends).
TEST_WORDS = {"joint": "joint significance", "sobel": "Sobel test", "aroian": "Aroian test",
              "vsm": "test of the mediator coefficient", "mc": "Monte Carlo interval",
              "bootstrap": "percentile bootstrap", "bc-bootstrap": "bias-corrected bootstrap"}


def mediation_curve(fn, kwargs: dict, result, path, *, tests=None, force: bool = False) -> None:
    """Power of the indirect-effect test(s) against total n; target and answer marked.

    Analytic tests are drawn as lines over 60 values of n; simulated tests as
    points at 9 values of n with +/- 2 Monte Carlo SE bars.
    """
    suffix = check_figure_target(path, force=force)
    plt = pyplot()
    centre = float(result.n_total)
    tests = tests or [result.test]
    args = {k: val for k, val in kwargs.items() if k not in ("n", "power", "test")}
    args["a"], args["b"], args["cprime"], args["scale"] = (result.a, result.b, result.cprime,
                                                           "residual")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = ["#1f4e79", "#b9770e", "#1e8449", "#7d3c98", "#922b21", "#566573", "#117a65"]
    lo = max(10, int(centre * 0.25))
    for colour, test in zip(colours, tests, strict=False):
        simulated = args.get("simulate") or test in ("mc", "bootstrap", "bc-bootstrap")
        ns = np.unique(np.linspace(lo, centre * 2.0, 9 if simulated else 60).astype(int))
        powers = [fn(**{**args, "test": test}, n=int(n_)) for n_ in ns]
        y = np.array([p.power for p in powers])
        words = TEST_WORDS.get(test, test)
        name = f"{words} (simulated)" if simulated else words
        if simulated:
            err = np.array([2 * (p.mc_se or 0.0) for p in powers])
            ax.errorbar(ns, y, yerr=err, fmt="o-", color=colour, lw=1.5, ms=4, capsize=2,
                        label=name)
        else:
            ax.plot(ns, y, color=colour, lw=2, label=name)
    target = result.inputs.get("power")
    if target is not None:
        ax.axhline(target, color="#b03a2e", ls="--", lw=1, label=f"target power {target:g}")
    ax.axvline(centre, color="#555555", ls=":", lw=1, label=f"n = {centre:,.0f}")
    ax.set_xlabel("total participants analysed")
    ax.set_ylabel("power to detect the indirect effect")
    ax.set_ylim(0, 1)
    ax.set_title(f"a = {result.a:.3g}, b = {result.b:.3g} (residual scale), X {result.x}",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    data = _figure_bytes(fig, suffix)
    plt.close(fig)
    write_output(path, data, force=force)
