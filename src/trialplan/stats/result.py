"""Frozen result objects shared by the closed-form designs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np


def _plain(value: Any) -> Any:
    """Numpy scalars and arrays to plain Python numbers and lists (JSON-ready)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _plain(value.item())
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        if math.isfinite(v) and v == int(v) and abs(v) < 2**53:
            return int(v) if isinstance(value, np.integer) else v
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _take(value: Any, index: tuple, shape: tuple) -> Any:
    if isinstance(value, dict):
        return {k: _take(v, index, shape) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return np.broadcast_to(value, shape)[index].item()
    return value


def _column(value: Any, shape: tuple, size: int) -> list:
    """``value`` split into ``size`` plain per-cell values (dicts recursively)."""
    if isinstance(value, dict):
        keys = list(value)
        cols = [_column(value[k], shape, size) for k in keys]
        return [dict(zip(keys, vals, strict=True)) for vals in zip(*cols, strict=True)]
    if isinstance(value, np.ndarray) and value.ndim > 0:
        flat = np.broadcast_to(value, shape).ravel()
        out = flat.tolist()
        if flat.dtype.kind == "f" and not np.isfinite(flat).all():
            out = [v if math.isfinite(v) else None for v in out]
        return out
    plain = _plain(value)
    if isinstance(plain, (dict, list)):
        return [_plain(value) for _ in range(size)]
    return [plain] * size


@dataclass(frozen=True)
class SizeResult:
    """Answer of a two-arm design: every input echoed, the solved quantity, method and notes.

    Numeric fields are Python numbers when every input was a scalar, and numpy
    arrays of the broadcast shape when any input was an array (as numpy's own
    functions behave).  :meth:`cells` splits an array result into scalar ones.

    Attributes
    ----------
    design : str
        ``"means"``, ``"proportions"``, ``"survival"`` or ``"rates"``.
    solved_for : str
        ``"n"``, ``"power"`` or ``"effect"``.
    n_per_arm : dict
        Participants to recruit, ``{"control": .., "intervention": ..}``
        (analysed numbers inflated for attrition, rounded up once).
    n_analysed_per_arm : dict
        Participants analysed per arm (whole numbers).
    n_total : int or array
        Participants to recruit in both arms.
    power : float or array
        Power achieved at the analysed numbers (after rounding when n was solved).
    effect : dict
        The effect on the scales that describe it (e.g. ``d``; or ``p_control``,
        ``p_intervention``, ``risk_difference``, ``risk_ratio``, ``odds_ratio``;
        or ``hazard_ratio``).
    alpha : float or array
        Significance level per test (after any co-primary correction, see inputs).
    design_effect : dict
        Variance inflation per arm from clustering.
    events : float, int, array or None
        Events needed (survival designs).
    clusters_per_arm, peer_workers : dict, int or None
        Clusters per arm (cluster randomisation) or peer workers needed
        (partial nesting).
    n_exact : float or array
        The unrounded analysed control-arm size (or events) the solver found;
        ``None`` unless n was solved.
    method, reference : str
        What was computed, and where the formula comes from.
    inputs : dict
        Every input, echoed.
    notes : tuple of str
        What the answer assumes and anything the user should know.
    """

    design: str
    solved_for: str
    n_per_arm: dict
    n_analysed_per_arm: dict
    n_total: Any
    power: Any
    effect: dict
    alpha: Any
    design_effect: dict
    method: str
    reference: str
    inputs: dict
    notes: tuple = ()
    events: Any = None
    clusters_per_arm: Any = None
    peer_workers: Any = None
    n_exact: Any = None
    shape: tuple = field(default=(), repr=False)

    def to_dict(self) -> dict:
        """The result as JSON-ready plain data (the documented ``--json`` keys)."""
        out = {}
        for f in fields(self):
            if f.name == "shape":
                continue
            value = getattr(self, f.name)
            if f.name in ("clusters_per_arm", "peer_workers", "events") and value is None:
                continue
            out[f.name] = _plain(value)
        out["notes"] = list(self.notes)
        return out

    def records(self) -> list[dict]:
        """One JSON-ready dict per grid cell, in C order (``to_dict`` of each cell).

        Built a column at a time, so a 10,000-cell grid costs a few numpy
        conversions rather than 10,000 result objects.
        """
        if not self.shape:
            return [self.to_dict()]
        size = math.prod(self.shape)
        names = [f.name for f in fields(self) if f.name != "shape"
                 and not (f.name in ("clusters_per_arm", "peer_workers", "events")
                          and getattr(self, f.name) is None)]
        columns = [_column(getattr(self, name), self.shape, size) if name != "notes"
                   else [list(self.notes) for _ in range(size)] for name in names]
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]

    def cells(self) -> list[SizeResult]:
        """One scalar result per grid cell, in C order."""
        if not self.shape:
            return [self]
        out = []
        for index in np.ndindex(*self.shape):
            changes = {
                f.name: _take(getattr(self, f.name), index, self.shape)
                for f in fields(self)
                if f.name not in ("design", "solved_for", "method", "reference", "notes", "shape")
            }
            out.append(replace(self, shape=(), **changes))
        return out
