"""Power curves (matplotlib, imported only when a figure is asked for)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from trialplan.errors import InputError
from trialplan.fileio import write_output


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


def power_curve(fn, kwargs: dict, result, path, *, force: bool = False) -> None:
    """Draw power against n for one design scenario; mark the target and the answer."""
    suffix = _suffix(path)
    if Path(path).exists() and not force:
        write_output(path, b"", force=False)  # raises the standard "exists" error
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "trialplan"
    survival = result.design == "survival"
    if survival:
        centre = float(result.events)
        label = "total events"
    else:
        centre = float(result.n_analysed_per_arm["control"])
        label = "participants analysed per arm (control)"
    ns = np.linspace(max(centre * 0.2, 4.0), centre * 2.0, 120)
    args = {k: val for k, val in kwargs.items() if k not in ("n", "power")}
    effect_key = {"means": "d", "proportions": "p2", "survival": "hr"}[result.design]
    if args.get(effect_key) is None:
        effect = result.effect
        args[effect_key] = {"d": effect.get("d"), "p2": effect.get("p_intervention"),
                            "hr": effect.get("hazard_ratio")}[effect_key]
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
