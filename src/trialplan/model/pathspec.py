"""The small spec file for several mediators: ``trialplan mediation --paths FILE.yaml``.

Example::

    mediators:
      - {name: hope, a: 0.3, b: 0.2}
      - {name: self_efficacy, a: 0.25, b: 0.15}
    correlations:                       # residual correlations, by pair (default 0)
      - {between: [hope, self_efficacy], r: 0.3}
    serial: {from: hope, to: self_efficacy, d: 0.3}   # optional: a two-mediator chain
    cprime: 0.0
    outcome: {type: binary, base_rate: 0.38}          # optional (default continuous)

Read with the same safe, located loader as the trial file; every problem is
reported with its file, line and field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trialplan.errors import TrialFileError
from trialplan.model.loader import load_file

Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$", max_length=64)]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Mediator(_M):
    name: Name
    a: float
    b: float


class Correlation(_M):
    between: list[Name] = Field(min_length=2, max_length=2)
    r: float = Field(gt=-1, lt=1)


class Serial(_M):
    from_: Name = Field(alias="from")
    to: Name
    d: float


class Outcome(_M):
    type: Literal["continuous", "binary"] = "continuous"
    base_rate: float | None = Field(None, gt=0, lt=1)


class PathSpec(_M):
    mediators: list[Mediator] = Field(min_length=1, max_length=4)
    correlations: list[Correlation] = Field(default_factory=list)
    serial: Serial | None = None
    cprime: float = 0.0
    outcome: Outcome = Outcome()


def load_paths(path) -> dict:
    """Keyword arguments for :func:`trialplan.stats.mediation_multi` from a spec file."""
    located = load_file(path)
    if not isinstance(located.data, dict):
        raise TrialFileError([located.problem((), "expected a mapping with 'mediators:'")])
    try:
        spec = PathSpec.model_validate(located.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if p != "from_") or ()
            problems.append(located.problem(loc, err["msg"]))
        raise TrialFileError(problems) from None
    names = [m.name for m in spec.mediators]
    problems = []
    if len(set(names)) != len(names):
        problems.append(located.problem(("mediators",), "mediator names must be distinct"))
    k = len(names)
    corr = [[1.0 if i == j else 0.0 for j in range(k)] for i in range(k)]
    for i, c in enumerate(spec.correlations):
        unknown = [nm for nm in c.between if nm not in names]
        if unknown or c.between[0] == c.between[1]:
            problems.append(located.problem(("correlations", i, "between"),
                                            f"expected two different mediators from "
                                            f"{', '.join(names)}; got {', '.join(c.between)}"))
            continue
        p, q = names.index(c.between[0]), names.index(c.between[1])
        corr[p][q] = corr[q][p] = c.r
    serial = None
    if spec.serial is not None:
        s = spec.serial
        if k != 2 or [s.from_, s.to] != names:
            problems.append(located.problem(("serial",), "a chain needs exactly two mediators, "
                                            "listed in the order of the chain (from, then to)"))
        serial = s.d
    if spec.outcome.type == "binary" and spec.outcome.base_rate is None:
        problems.append(located.problem(("outcome",), "a binary outcome needs base_rate"))
    if problems:
        raise TrialFileError(problems)
    return {"mediators": [(m.name, m.a, m.b) for m in spec.mediators], "correlation": corr,
            "serial": serial, "cprime": spec.cprime, "outcome": spec.outcome.type,
            "base_rate": spec.outcome.base_rate}
