"""What this machine offers the work: the cores this process may run on."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may use (its CPU affinity where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
