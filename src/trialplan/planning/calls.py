"""One description of each calculation, from which its Python call and its command line come.

A :class:`Call` is the name of a :mod:`trialplan.stats` function and its
keyword arguments.  :meth:`Call.run` calls the function; :meth:`Call.command`
prints the ``trialplan`` command that computes the same thing.  Flags are the
keyword names with dashes (``cluster_size`` -> ``--cluster-size``), except
for the few listed in :data:`FUNCTIONS`; numbers are written as Python's
shortest round-trip representation, so the command line reads back exactly the
number the plan used; arguments equal to the function's default are left out
(the command-line defaults are the functions' defaults, checked by a test).
A new keyword argument therefore needs only a command-line option of the same
name.
"""

from __future__ import annotations

import importlib
import inspect
import shlex
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Command:
    """How a stats function is reached from the command line."""

    module: str
    function: str
    words: str
    flags: tuple = ()  # (keyword, flag) pairs that do not follow the dash rule
    formats: tuple = ()  # (keyword, function value -> command-line text) for non-scalars


def _mediator_flags(mediators) -> str:
    return " ".join(f"--mediator {name}:{number(a)}:{number(b)}" for name, a, b in mediators)


def _correlation_flag(corr) -> str:
    """A residual correlation matrix as the one --correlation value it must be."""
    k = len(corr)
    off = {float(corr[i][j]) for i in range(k) for j in range(k) if i != j}
    if len(off) != 1 or any(float(corr[i][i]) != 1.0 for i in range(k)):
        raise ValueError("the command line takes one correlation for every pair of mediators")
    (value,) = off
    return "" if value == 0 else f"--correlation {number(value)}"


FUNCTIONS = {
    "means": Command("trialplan.stats.designs", "means", "trialplan size means"),
    "proportions": Command("trialplan.stats.designs", "proportions",
                           "trialplan size proportions", flags=(("odds_ratio", "--or"),)),
    "rates": Command("trialplan.stats.designs", "rates", "trialplan size rates"),
    "survival": Command("trialplan.stats.designs", "survival", "trialplan size survival",
                        flags=(("n", "--events"),)),
    "mediation": Command("trialplan.stats.mediation", "mediation", "trialplan mediation"),
    "mediation_multi": Command("trialplan.stats.multimed", "mediation_multi",
                               "trialplan mediation",
                               formats=(("mediators", _mediator_flags),
                                        ("correlation", _correlation_flag))),
    "cluster_mediation": Command("trialplan.stats.cluster_mediation", "cluster_mediation",
                                 "trialplan mediation",
                                 flags=(("design", "--cluster-design"), ("r2_m1", "--r2-m"),
                                        ("r2_y1", "--r2-y"))),
}


@cache
def _function(name: str):
    spec = FUNCTIONS[name]
    return getattr(importlib.import_module(spec.module), spec.function)


@cache
def defaults(name: str) -> dict:
    """The keyword defaults of a registered function (what a command may leave out)."""
    sig = inspect.signature(_function(name))
    return {k: p.default for k, p in sig.parameters.items()
            if p.default is not inspect.Parameter.empty}


def flag(name: str, keyword: str) -> str:
    """The command-line flag of a keyword argument of a registered function."""
    return dict(FUNCTIONS[name].flags).get(keyword, "--" + keyword.replace("_", "-"))


def number(value) -> str:
    """A number as the shortest text that reads back to exactly the same float.

    >>> number(2 / 3), number(0.05), number(9.0), number(590)
    ('0.6666666666666666', '0.05', '9', '590')
    """
    if isinstance(value, bool):
        raise TypeError("booleans are flags, not numbers")
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if value.is_integer() and abs(value) < 2 ** 53:
        return str(int(value))
    return repr(value)


@dataclass(frozen=True)
class Call:
    """A calculation: a registered stats function and its keyword arguments.

    Examples
    --------
    >>> c = Call.of("mediation", a=0.3, b=0.3, power=0.8, allocation=2 / 3, alpha=0.05)
    >>> c.command()
    'trialplan mediation --a 0.3 --b 0.3 --power 0.8 --allocation 0.6666666666666666'
    >>> c.run().n_total > 0
    True
    """

    function: str
    arguments: tuple  # (keyword, value) pairs, in the order given

    @classmethod
    def of(cls, function: str, **kwargs) -> Call:
        if function not in FUNCTIONS:
            raise KeyError(f"no calculation named {function!r}")
        return cls(function, tuple(kwargs.items()))

    @property
    def kwargs(self) -> dict:
        return dict(self.arguments)

    def replace(self, **changes) -> Call:
        """The same call with some arguments changed (None removes one)."""
        kw = self.kwargs
        kw.update(changes)
        return Call.of(self.function, **{k: v for k, v in kw.items() if v is not None})

    def run(self):
        """Call the function."""
        return _function(self.function)(**self.kwargs)

    def command(self) -> str:
        """The ``trialplan`` command line computing the same result."""
        spec = FUNCTIONS[self.function]
        default = defaults(self.function)
        parts = [spec.words]
        formats = dict(spec.formats)
        for key, value in self.arguments:
            if key in formats:
                text = formats[key](value)
                if text:
                    parts.append(text)
                continue
            if value is None or (key in default and _same(value, default[key])):
                continue
            opt = flag(self.function, key)
            if isinstance(value, bool):
                if value:
                    parts.append(opt)
                continue
            text = number(value) if isinstance(value, int | float) else shlex.quote(str(value))
            parts.append(f"{opt} {text}")
        return " ".join(parts)

    def to_dict(self) -> dict:
        return {"function": self.function, "arguments": self.kwargs,
                "command": self.command()}


def _same(value, default) -> bool:
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default
    if isinstance(value, int | float) and isinstance(default, int | float):
        return float(value) == float(default)
    return value == default
