"""How numbers read in the documents and in the text output: one set of formatters.

The protocol drafts (through the Jinja2 filters ``num`` and ``pct``), the
planning layer's sentences and the command line's tables all use these, so a
number reads the same wherever it appears.  Quoted commands use
:func:`trialplan.planning.calls.number` instead, which writes the exact float so
the command reads back to the same value.
"""

from __future__ import annotations


def count(x) -> str:
    """A count with thousands separators: ``1,118``; ``-`` for none."""
    return "-" if x is None else f"{x:,}"


def percent(x) -> str:
    """A share as a percentage: whole when it is one (``90%``), else to one decimal."""
    pct = 100 * float(x)
    return f"{pct:.0f}%" if abs(pct - round(pct)) < 1e-9 else f"{pct:.1f}%"


def sig(x, digits: int = 4) -> str:
    """A number to ``digits`` significant digits, a whole number in full; ``-`` for none.

    >>> sig(0.29000000000000004), sig(1118.0), sig(0.123456), sig(None)
    ('0.29', '1,118', '0.1235', '-')
    """
    if x is None:
        return "-"
    if isinstance(x, int):
        return f"{x:,}"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:,.{digits}g}"
