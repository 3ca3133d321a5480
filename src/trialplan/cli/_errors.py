"""Input errors in the words of the command line: flags, not Python argument names."""

from __future__ import annotations

import re
from contextlib import contextmanager

import click

from trialplan.errors import InputError


def _flag(param: click.Option) -> str:
    longs = [o for o in param.opts if o.startswith("--")]
    return longs[0] if longs else param.opts[0]


@contextmanager
def flag_names(aliases: dict | None = None):
    """Re-raise an :class:`InputError` with the current command's flags for its argument names.

    ``aliases`` maps a Python name to a flag where the command passes an option
    under another name (``trialplan size survival`` gives ``n`` as ``--events``).
    """
    try:
        yield
    except InputError as exc:
        ctx = click.get_current_context(silent=True)
        if not exc.names or ctx is None:
            raise
        flags = {p.name: _flag(p) for p in ctx.command.params if isinstance(p, click.Option)}
        flags.update(aliases or {})
        message = str(exc)
        for name in sorted(set(exc.names), key=len, reverse=True):
            if name in flags:
                message = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flags[name], message)
        raise InputError(message, names=exc.names) from None
