"""Progress of long work on stderr: a bar on a terminal, a line every few seconds otherwise.

The numeric layers report ``(done, total, label)`` through a callback and never
write to the terminal; this is the one place that draws.  Work that will take
more than about ten seconds says so, with its estimate, once it can tell.
"""

from __future__ import annotations

import sys
import time

ANNOUNCE_OVER = 10.0  # seconds: longer runs say how long they expect to take
LINE_EVERY = 5.0  # seconds between lines when stderr is not a terminal


def duration(seconds: float) -> str:
    """A run time in the unit a reader expects: seconds, minutes or hours."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """A callback ``progress(done, total, label)`` drawing on stderr (silent when quiet)."""

    def __init__(self, *, quiet: bool = False, stream=None, clock=time.monotonic):
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._label = None
        self._start = 0.0
        self._first = 0  # work already done when the run (re)started: a resumed checkpoint
        self._last = 0.0
        self._announced = False
        self._drawn = False

    def __call__(self, done: int, total: int, label: str) -> None:
        if self.quiet:
            return
        now = self.clock()
        if label != self._label or done < self._first:
            self._finish_line()
            self._label, self._start, self._last, self._first = label, now, now, done
            self._announced = False
            return
        elapsed = now - self._start
        fresh = done - self._first  # what this run did: the pace excludes resumed work
        left = elapsed / fresh * (total - done) if fresh else float("inf")
        if not self._announced and done < total and elapsed + left > ANNOUNCE_OVER:
            self._finish_line()
            self._write(f"{label}: expected to take about {duration(elapsed + left)}\n")
            self._announced = True
        if self.tty:
            if elapsed < 1.0 and done < total:
                return
            width = 30
            fill = int(width * done / total)
            eta = f", about {duration(left)} left" if done < total else ""
            self._write(f"\r{label} [{'#' * fill}{'.' * (width - fill)}] {done:,}/{total:,}"
                        f"{eta}")
            self._drawn = True
        elif now - self._last >= LINE_EVERY or (done == total and elapsed >= LINE_EVERY):
            eta = f", about {duration(left)} left" if done < total else ", done"
            self._write(f"{label}: {done:,}/{total:,} ({100 * done / total:.0f}%){eta}\n")
            self._last = now

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _finish_line(self) -> None:
        if self._drawn:
            self._write("\n")
            self._drawn = False

    def close(self) -> None:
        self._finish_line()
