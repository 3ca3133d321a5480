"""One synthetic trial dataset and its data dictionary, for a dummy-data review.

The dataset is replicate 0 of chunk 0 of the simulation with the same seed,
so ``trialplan simulate --dummy-data`` and the simulation agree on what the
data look like.  Floats are written with full precision (``repr``), so an
analysis of the CSV reproduces the in-process analysis exactly.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from trialplan.simulation.executor import chunk_seed
from trialplan.simulation.generate import generate
from trialplan.simulation.spec import SimulationSpec

DICTIONARY_COLUMNS = ("variable", "label", "type", "values", "timepoint", "missing", "source")


def dummy_dataset(spec: SimulationSpec, seed: int) -> tuple[dict, np.random.Generator]:
    """The dataset of replicate 0 of chunk 0, and the generator after it (for the analysis)."""
    rng = np.random.default_rng(chunk_seed(seed, 0))
    return generate(spec, rng), rng


def _cell(x) -> str:
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if math.isnan(x):
        return ""
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def to_csv(data: dict) -> str:
    """The dataset as CSV text (empty cells for missing values)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    cols = list(data)
    w.writerow(cols)
    for i in range(len(data["id"])):
        w.writerow([_cell(data[c][i]) for c in cols])
    return out.getvalue()


def dictionary(spec: SimulationSpec, data: dict) -> str:
    """The data dictionary (CSV): every column's meaning, values and missing share."""
    cluster = {"none": "always 0 (no clustering)",
               "partial": "peer worker 1..J in the intervention arm; 0 in the control arm",
               "cluster": "randomised cluster 1..J"}[spec.clustering]
    rows = [("id", "Participant identifier", "integer", f"1..{len(data['id'])}", "", "0", ""),
            ("arm", "Allocation", "integer", "0 = control, 1 = intervention", "randomisation",
             "0", ""),
            ("cluster", "Peer worker or cluster", "integer", cluster, "", "0", "")]
    for v in spec.variables:
        values = ("0 = no, 1 = yes" if v.type == "binary"
                  else "residual-SD units (simulated, not the instrument's scale)")
        miss = float(np.mean(np.isnan(data[v.id])))
        rows.append((v.id, v.label, v.type, values, "follow-up", f"{miss:.3f}",
                     f"simulated {v.kind} variable"))
        if v.landmark is not None:
            miss = float(np.mean(np.isnan(data[v.landmark_column])))
            rows.append((v.landmark_column, f"{v.label}: after month {v.landmark_month:g} "
                         f"among those without it by then", v.type, values,
                         "follow-up", f"{miss:.3f}", "landmark outcome (missing if the event "
                         "happened before the landmark)"))
        if v.baseline:
            rows.append((f"{v.id}_baseline", f"{v.label} at baseline", "continuous",
                         "standard normal", "baseline", "0", "simulated baseline"))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(DICTIONARY_COLUMNS)
    w.writerows([_inert(cell) for cell in row] for row in rows)
    return out.getvalue()


def _inert(cell: str) -> str:
    """A cell a spreadsheet shows as text: labels come from the trial file, and a cell that
    starts with =, +, -, @ or a tab is run as a formula (OWASP's CSV injection advice)."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell
