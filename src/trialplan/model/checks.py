"""Load a trial file and check that its change model is complete and testable.

:func:`load_trial` returns a :class:`TrialPlan` (the validated file, the
catalogue entries it uses, and warnings) or raises
:class:`~trialplan.errors.TrialFileError` listing every problem at once, each
with file, line, field, what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import lru_cache
from importlib import resources

from trialplan.errors import TrialFileError
from trialplan.model.loader import Located, Problem, load, load_file
from trialplan.model.priors import extract_priors

SECONDS_PER_ITEM = 15  # burden estimate when an instrument's minutes are unknown
# Fields of assumptions.primary that only one type of primary outcome uses.
_PRIMARY_FIELD_TYPE = {
    "control_rate": "binary", "intervention_rate": "binary",
    "d": "continuous", "difference": "continuous", "sd": "continuous",
    "hazard_ratio": "time-to-event", "event_prob": "time-to-event",
    "rate": "count", "rate_ratio": "count", "dispersion": "count", "exposure": "count",
}


@lru_cache(maxsize=1)
def catalogue() -> dict:
    """The bundled instruments, by key."""
    text = resources.files("trialplan.data").joinpath("measures.yaml").read_text("utf-8")
    return {m["key"]: m for m in load(text, "measures.yaml").data}


@dataclass(frozen=True)
class TrialPlan:
    """A validated trial file with the instruments it uses and the warnings found."""

    model: object  # trialplan.model.schema.TrialFile
    measures: dict
    warnings: tuple
    source: str
    located: object = dc_field(default=None, repr=False, compare=False)
    text_hash: str | None = None
    priors: dict = dc_field(default_factory=dict, compare=False)
    """Field name -> :class:`~trialplan.model.priors.PriorSpec`, for assumptions given as
    distributions (the model holds each one's centre)."""

    @property
    def change_model(self):
        return self.model.change_model

    def timepoint_months(self) -> dict:
        return {tp.id: tp.month for tp in self.model.timepoints}

    def nodes(self) -> dict:
        cm = self.change_model
        out = {}
        for kind, items in (("mechanism", cm.mechanisms), ("process", cm.process_variables),
                            ("outcome", cm.outcomes)):
            for item in items:
                out[item.id] = (kind, item)
        return out

    def primary_outcome(self):
        return next(o for o in self.change_model.outcomes if o.role == "primary")

    def path_timepoints(self, path) -> tuple[str, str]:
        """The mediator's and the outcome's analysed time points for a path assumption."""
        nodes = self.nodes()
        return path_timepoints(path, nodes[path.mediator][1], nodes[path.outcome][1],
                               self.timepoint_months())


def measured_at_baseline(variable, months: dict) -> bool:
    """Whether ``variable`` is measured at time zero or before: a baseline value to adjust for.

    ``months`` maps time-point ids to months (:meth:`Trial.timepoint_months`).
    """
    return any(months.get(t, 1) <= 0 for t in variable.timepoints)


def path_timepoints(path, mediator, outcome, months) -> tuple[str, str]:
    """Analysed time points of a path: as given, else the outcome's last time point and the
    mediator's last time point after randomisation and before it (its last one if none is)."""
    out_tp = path.outcome_timepoint or max(outcome.timepoints, key=lambda t: months.get(t, 0))
    if path.mediator_timepoint:
        return path.mediator_timepoint, out_tp
    end = months.get(out_tp, 0)
    before = [t for t in mediator.timepoints if 0 < months.get(t, 0) < end]
    pool = before or list(mediator.timepoints)
    return max(pool, key=lambda t: months.get(t, 0)), out_tp


# "Did you mean" compares a word with every option (difflib, quadratic in length); a file of
# thousands of misspelt ids against thousands of ids would take minutes.  Each check of a file
# gets this many comparisons; once they are spent, problems are reported without the hint.
SUGGEST_BUDGET = 20_000
_suggest_left = [SUGGEST_BUDGET]


def _reset_suggestions() -> None:
    _suggest_left[0] = SUGGEST_BUDGET


def _suggest(word, options) -> str:
    options = list(options)
    word = str(word)
    if len(options) > _suggest_left[0] or len(word) > 200:
        return ""
    _suggest_left[0] -= len(options)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _pydantic_problems(exc, located: Located) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        kind = err["type"]
        found = err.get("input")
        if kind == "extra_forbidden":
            parent = located.data
            for part in loc[:-1]:
                try:
                    parent = parent[part]
                except (KeyError, IndexError, TypeError):
                    parent = None
                    break
            message = f"unknown field {loc[-1]!r}"
            if isinstance(parent, dict):
                message += _suggest(loc[-1], _allowed_fields(loc[:-1]))
        elif kind == "missing":
            message = "required field is missing"
        else:
            shown = repr(found)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            message = f"{err['msg'].rstrip('.')}; got {shown}"
        problems.append(located.problem(loc, message))
    return problems


def _allowed_fields(path) -> list[str]:
    from trialplan.model import schema

    model = schema.TrialFile
    for part in path:
        if isinstance(part, int):
            continue
        field = next((f for name, f in model.model_fields.items()
                      if (f.alias or name) == part), None)
        if field is None:
            return []
        ann = field.annotation
        inner = getattr(ann, "__args__", None)
        candidates = [ann, *(inner or [])]
        nxt = next((c for c in candidates if isinstance(c, type)
                    and issubclass(c, schema._Model | schema.TrialFile)), None)
        if nxt is None:
            for c in candidates:
                for a in getattr(c, "__args__", ()) or ():
                    if isinstance(a, type) and issubclass(a, schema._Model):
                        nxt = a
        if nxt is None:
            return []
        model = nxt
    return [f.alias or name for name, f in model.model_fields.items()]


def _non_finite(data, path=()):
    if isinstance(data, float) and not math.isfinite(data):
        yield path
    elif isinstance(data, dict):
        for k, val in data.items():
            yield from _non_finite(val, (*path, k))
    elif isinstance(data, list):
        for i, val in enumerate(data):
            yield from _non_finite(val, (*path, i))


def check_located(located: Located) -> TrialPlan:
    """Validate parsed data; raise TrialFileError with every problem found."""
    _reset_suggestions()
    from pydantic import ValidationError

    from trialplan.model.schema import SCHEMA_VERSION, TrialFile

    data = located.data
    if data is None:
        raise TrialFileError([located.problem((), "file is empty; expected a trial file "
                                              f"starting with 'schema: {SCHEMA_VERSION}'")])
    if not isinstance(data, dict):
        raise TrialFileError([located.problem((), "expected a mapping of fields (schema, trial, "
                                              f"...) at the top level; got a "
                                              f"{type(data).__name__}")])
    problems = [located.problem(p, "number must be finite; got a non-finite value")
                for p in _non_finite(data)]
    if "schema" in data and data["schema"] != SCHEMA_VERSION:
        problems.append(located.problem(("schema",), f"expected {SCHEMA_VERSION!r}; got "
                                        f"{data['schema']!r}"))
    data, priors, prior_problems = extract_priors(data, located.problem)
    problems += prior_problems
    try:
        model = TrialFile.model_validate(data)
    except ValidationError as exc:
        seen = {(p.line, p.field) for p in problems}  # non-finite and prior problems
        problems += [p for p in _pydantic_problems(exc, located) if (p.line, p.field) not in seen]
        problems += _references_despite(data, exc, located)
        raise TrialFileError(_sorted_unique(problems)) from None
    if problems:
        raise TrialFileError(_sorted_unique(problems))
    return dataclasses.replace(_semantic(model, located), priors=priors)


def _references_despite(data, exc, located: Located) -> list[Problem]:
    """The reference checks' errors in a file that fails the schema, so one run lists both.

    The failing values are set aside (:mod:`trialplan.model.repair`); findings that only
    follow from a value set aside are left out, as the schema error already reports it.
    """
    from trialplan.model.repair import RemappedLocated, set_aside
    from trialplan.model.schema import TrialFile

    aside = set_aside(data, TrialFile.model_validate, exc)
    if aside is None:
        return []
    try:
        _semantic(aside.model, RemappedLocated(located, aside))
    except TrialFileError as found:
        lost = tuple(phrase for section in aside.unnamed for phrase in _LOOKUPS.get(section, ()))
        return [p for p in found.problems if not aside.concerns_removed(p.field, p.message)
                and not any(phrase in p.message for phrase in lost)]
    return []


# How the reference checks word a failed lookup into each section: when a section lost an
# item whose id could not be read, a reference into it may be to that item, so these
# findings are left out until the schema errors are fixed.
_LOOKUPS = {
    "timepoints": ("is not in `timepoints`", "is not measured at", "time point"),
    "measures": ("unknown measure",),
    "change_model": ("unknown id", "is not one of the", "has no route", "has no measured",
                     "no outcome has role"),
}


def _sorted_unique(problems) -> list[Problem]:
    """Problems in file order (file-level ones first), each reported once."""
    return sorted(dict.fromkeys(problems), key=lambda p: (p.line or 0, p.field))


def _semantic(model, located: Located) -> TrialPlan:
    errors: list[Problem] = []
    warnings: list[Problem] = []
    cm = model.change_model
    P = located.problem

    # Timepoints
    months = {}
    for i, tp in enumerate(model.timepoints):
        if tp.id in months:
            errors.append(P(("timepoints", i, "id"), f"duplicate timepoint id {tp.id!r}"))
        months[tp.id] = tp.month

    # Ids, unique across the change model
    kinds = {}
    for section in ("mechanisms", "process_variables", "outcomes"):
        for i, item in enumerate(getattr(cm, section)):
            if item.id in kinds:
                errors.append(P(("change_model", section, i, "id"),
                                f"duplicate id {item.id!r} (already used for a "
                                f"{kinds[item.id][0]})"))
                continue
            kinds[item.id] = (section, item)

    # Measures
    user_measures = {}
    for i, m in enumerate(model.measures):
        if m.key in user_measures:
            errors.append(P(("measures", i, "key"), f"duplicate measure key {m.key!r}"))
        user_measures[m.key] = m.model_dump(by_alias=True)
    known = {**catalogue(), **user_measures}
    used = {}
    for section in ("process_variables", "outcomes"):
        for i, var in enumerate(getattr(cm, section)):
            if var.measure not in known:
                errors.append(P(("change_model", section, i, "measure"),
                                f"unknown measure {var.measure!r}: expected a key from "
                                f"`trialplan measures` or from `measures`"
                                f"{_suggest(var.measure, known)}"))
            else:
                used[var.measure] = known[var.measure]
            for j, t in enumerate(var.timepoints):
                if t not in months:
                    errors.append(P(("change_model", section, i, "timepoints", j),
                                    f"timepoint {t!r} is not in `timepoints`"
                                    f"{_suggest(t, months)}"))

    # Links: only those that run the right way (accepted) are checked further
    edges = []
    accepted = []
    for i, link in enumerate(cm.links):
        ok = True
        for end, attr in (("from", link.source), ("to", link.target)):
            if attr not in kinds:
                errors.append(P(("change_model", "links", i, end),
                                f"unknown id {attr!r}{_suggest(attr, kinds)}"))
                ok = False
        if not ok:
            continue
        s_kind, t_kind = kinds[link.source][0], kinds[link.target][0]
        if s_kind == "outcomes":
            errors.append(P(("change_model", "links", i, "from"),
                            f"{link.source!r} is an outcome; links run from mechanisms to "
                            "process variables to outcomes"))
        elif t_kind == "mechanisms":
            errors.append(P(("change_model", "links", i, "to"),
                            f"{link.target!r} is a mechanism; a mechanism can only start a "
                            "link"))
        elif s_kind == "mechanisms" and t_kind == "outcomes":
            errors.append(P(("change_model", "links", i),
                            f"mechanism {link.source!r} links straight to outcome "
                            f"{link.target!r}; add the measured process variable it acts "
                            "through"))
        else:
            if (link.source, link.target) in edges:
                errors.append(P(("change_model", "links", i), "duplicate link"))
            edges.append((link.source, link.target))
            accepted.append((i, link))

    # Cycles (among process variables)
    children: dict = {}
    for s, t in edges:
        children.setdefault(s, []).append(t)
    cycle = _find_cycle(children)
    if cycle:
        first = next(i for i, lk in enumerate(cm.links)
                     if (lk.source, lk.target) == (cycle[0], cycle[1]))
        errors.append(P(("change_model", "links", first),
                        "the links form a cycle: " + " -> ".join(cycle)))

    # Completeness and testability
    for i, mech in enumerate(cm.mechanisms):
        targets = [t for t in children.get(mech.id, ())
                   if kinds.get(t, ("",))[0] == "process_variables"]
        if not targets:
            errors.append(P(("change_model", "mechanisms", i),
                            f"mechanism {mech.id!r} has no measured process variable: add a "
                            "link from it to a process variable"))
    outcome_ids = {o.id for o in cm.outcomes}
    if not cycle:
        for i, pv in enumerate(cm.process_variables):
            if not _reaches(pv.id, children, outcome_ids):
                errors.append(P(("change_model", "process_variables", i),
                                f"process variable {pv.id!r} has no route to an outcome"))
    primaries = [i for i, o in enumerate(cm.outcomes) if o.role == "primary"]
    if not primaries:
        errors.append(P(("change_model", "outcomes"), "no outcome has role 'primary'"))

    # Temporal precedence: a mediator must be measured no later than what it explains.
    for i, link in accepted:
        if kinds[link.source][0] != "process_variables":
            continue
        src, dst = kinds[link.source][1], kinds[link.target][1]
        src_m = [months[t] for t in src.timepoints if t in months]
        dst_m = [months[t] for t in dst.timepoints if t in months]
        if src_m and dst_m:
            if min(src_m) > max(dst_m):
                errors.append(P(("change_model", "links", i),
                                f"{src.id!r} is first measured at month {min(src_m):g}, after "
                                f"the last measurement of {dst.id!r} (month {max(dst_m):g}) "
                                "that it should explain"))
            elif min(src_m) >= max(dst_m):
                warnings.append(P(("change_model", "links", i),
                                  f"{src.id!r} is measured no earlier than {dst.id!r}; a "
                                  "mediator measured before the outcome gives a stronger test",
                                  "warning"))

    # Assumption paths
    a = model.assumptions
    for i, path in enumerate(a.paths):
        for field, value, want in (("mechanism", path.mechanism, "mechanisms"),
                                   ("mediator", path.mediator, "process_variables"),
                                   ("outcome", path.outcome, "outcomes")):
            if kinds.get(value, ("",))[0] != want:
                names = [k for k, v in kinds.items() if v[0] == want]
                errors.append(P(("assumptions", "paths", i, field),
                                f"{value!r} is not one of the {want.replace('_', ' ')}"
                                f"{_suggest(value, names)}"))
    if not errors:
        _path_problems(model, kinds, months, P, errors, warnings)
    cl = a.clustering
    from_staffing = cl.kind == "partial" and a.staffing is not None and a.recruitment is not None
    if cl.kind != "none" and (cl.icc is None or (cl.cluster_size is None and not from_staffing)):
        errors.append(P(("assumptions", "clustering"),
                        f"clustering '{cl.kind}' needs icc and cluster_size (with partial "
                        "nesting the caseload can instead come from assumptions.staffing and "
                        "assumptions.recruitment)"))
    if cl.kind != "cluster" and (cl.cluster_autocorr is not None
                                 or cl.individual_autocorr is not None):
        errors.append(P(("assumptions", "clustering", "cluster_autocorr"),
                        "cluster_autocorr and individual_autocorr apply to cluster-randomised "
                        f"trials (kind 'cluster'); this file's kind is '{cl.kind}': use "
                        "assumptions.primary.baseline_corr"))
    pa = a.primary
    if pa is not None and (pa.follow_ups > 1 or (pa.baselines or 0) > 1) \
            and pa.follow_up_corr is None:
        errors.append(P(("assumptions", "primary", "follow_ups"),
                        f"follow_ups {pa.follow_ups} and baselines {pa.baselines or 0} need "
                        "follow_up_corr, the correlation between repeated measurements (it is "
                        "not assumed to be zero): add 'follow_up_corr:' under 'primary:'"))
    if pa is not None and pa.baselines and pa.baseline_corr is None:
        errors.append(P(("assumptions", "primary", "baselines"),
                        f"baselines is {pa.baselines} but baseline_corr is not given: add "
                        "'baseline_corr:' under 'primary:', or set baselines to 0"))
    if cl.kind == "cluster" and a.primary is not None and a.primary.baseline_corr is not None:
        errors.append(P(("assumptions", "primary", "baseline_corr"),
                        "in a cluster-randomised trial baseline adjustment uses "
                        "clustering.cluster_autocorr (and individual_autocorr for a cohort "
                        "design; Teerenstra et al. 2012), not primary.baseline_corr"))
    if model.trial.design == "cluster" and a.clustering.kind == "partial":
        errors.append(P(("assumptions", "clustering", "kind"),
                        "a cluster-randomised trial is clustered in both arms: use kind 'cluster'"))

    # Estimands: one per outcome, at one of its time points
    outcomes_by_id = {o.id: o for o in cm.outcomes}
    seen_estimands: set = set()
    for i, est in enumerate(model.estimands):
        outcome = outcomes_by_id.get(est.outcome)
        if outcome is None:
            errors.append(P(("estimands", i, "outcome"),
                            f"{est.outcome!r} is not one of the outcomes"
                            f"{_suggest(est.outcome, outcomes_by_id)}"))
            continue
        if est.outcome in seen_estimands:
            errors.append(P(("estimands", i, "outcome"),
                            f"outcome {est.outcome!r} already has an estimand"))
        seen_estimands.add(est.outcome)
        if est.timepoint is not None and est.timepoint not in outcome.timepoints:
            errors.append(P(("estimands", i, "timepoint"),
                            f"{est.timepoint!r} is not a time point of outcome {est.outcome!r} "
                            f"({', '.join(outcome.timepoints)})"))

    if primaries and cm.outcomes[primaries[0]].id not in seen_estimands:
        warnings.append(P(("change_model", "outcomes", primaries[0]),
                          f"the primary outcome {cm.outcomes[primaries[0]].id!r} has no estimand: "
                          "add one under `estimands` (ICH E9(R1)) to say how intercurrent "
                          "events such as death or non-adherence are handled", "warning"))

    if errors:
        raise TrialFileError(_sorted_unique(errors))
    warnings += _warnings(model, located, used, months, primaries)
    return TrialPlan(model=model, measures=used, warnings=tuple(warnings), source=located.name,
                     located=located, text_hash=getattr(located, 'sha256', None))


def _path_problems(model, kinds, months, P, errors, warnings) -> None:
    """Where and when each mechanism path can be analysed (arms, time order, levels)."""
    cluster_trial = model.trial.design == "cluster"
    for i, pv in enumerate(model.change_model.process_variables):
        if pv.level == "cluster" and not cluster_trial:
            errors.append(P(("change_model", "process_variables", i, "level"),
                            f"{pv.id!r} is a cluster-level process variable, which needs a "
                            "cluster-randomised trial (trial.design: cluster)"))
    for i, path in enumerate(model.assumptions.paths):
        med, out = kinds[path.mediator][1], kinds[path.outcome][1]
        where = ("assumptions", "paths", i)
        if med.arms == "intervention":
            errors.append(P((*where, "mediator"),
                            f"{med.id!r} is measured in the intervention arm only (arms: "
                            "intervention), so randomisation cannot act on it in both arms: "
                            "there is no a path and a x b is not an identified indirect effect. "
                            "Remove this path and analyse it as dose or engagement (complier-"
                            "average causal effect or instrumental variables, with "
                            "randomisation and randomisation x baseline covariates as "
                            "instruments; Dunn & Bentall 2007; Emsley, Dunn & White 2010) or "
                            "as a peer-worker-level moderator in the process evaluation; or "
                            "test the mechanism through a process variable measured in both "
                            "arms"))
            continue
        clustered = model.assumptions.clustering.kind != "none"
        for field in ("r2_m2", "r2_y2"):
            if getattr(path, field) and not clustered:
                errors.append(P((*where, field), f"{field} (level-2 R-squared) applies to "
                                "clustered designs (assumptions.clustering.kind cluster or "
                                "partial)"))
        if path.b_within is not None and not cluster_trial:
            errors.append(P((*where, "b_within"), "b_within applies to cluster-randomised "
                            "trials (trial.design: cluster)"))
        if path.b_within is not None and med.level == "cluster":
            errors.append(P((*where, "b_within"), f"{med.id!r} is a cluster-level process "
                            "variable (2-2-1): it has no within-cluster path"))
        for field, var, given in (("mediator_timepoint", med, path.mediator_timepoint),
                                  ("outcome_timepoint", out, path.outcome_timepoint)):
            if given is not None and given not in var.timepoints:
                errors.append(P((*where, field), f"{var.id!r} is not measured at {given!r}; "
                                f"its time points are {', '.join(var.timepoints)}"))
        if any(g is not None and g not in v.timepoints for g, v in
               ((path.mediator_timepoint, med), (path.outcome_timepoint, out))):
            continue
        m_tp, y_tp = path_timepoints(path, med, out, months)
        m_month, y_month = months[m_tp], months[y_tp]
        if m_month <= 0:
            errors.append(P((*where, "mediator"),
                            f"{med.id!r} is analysed at {m_tp!r} (month {m_month:g}), before "
                            "randomisation can change it: measure it after randomisation and "
                            "before the outcome, and name that time point in "
                            "mediator_timepoint"))
        elif m_month >= y_month:
            errors.append(P((*where, "mediator"),
                            f"{med.id!r} is analysed at {m_tp!r} (month {m_month:g}), not "
                            f"before the outcome {out.id!r} at {y_tp!r} (month {y_month:g}): a "
                            "mediator must be measured before the outcome it explains (Landau, "
                            "Emsley & Dunn 2018); measure it earlier or analyse a later "
                            "outcome"))
        if not measured_at_baseline(med, months):
            warnings.append(P((*where, "mediator"),
                              f"{med.id!r} has no baseline measurement: the mediator-outcome "
                              "path cannot be adjusted for its baseline value, which leaves "
                              "more room for confounding (Landau, Emsley & Dunn 2018); add a "
                              "baseline time point", "warning"))


def _warnings(model, located, used, months, primaries) -> list[Problem]:
    out = []
    P = located.problem
    a = model.assumptions
    for field in ("alpha", "power", "attrition"):
        if getattr(a, field) is None:
            out.append(P(("assumptions",), f"assumptions.{field} is missing; sample-size "
                         "calculations will need it", "warning"))
    primary = model.change_model.outcomes[primaries[0]]
    p = a.primary
    need = {"binary": ("control_rate", "intervention_rate"), "continuous": ("d",),
            "time-to-event": ("hazard_ratio",), "count": ("rate", "rate_ratio")}[primary.type]
    if p is None:
        out.append(P(("assumptions",), "assumptions.primary is missing: the effect on the "
                     f"primary outcome ({', '.join(need)}) is needed for the "
                     "sample size", "warning"))
    elif primary.type == "continuous" and p.d is None and (p.difference is None or p.sd is None):
        out.append(P(("assumptions", "primary"), "give d, or difference and sd, for the "
                     "continuous primary outcome", "warning"))
    elif primary.type != "continuous":
        for field in need:
            if getattr(p, field) is None:
                out.append(P(("assumptions", "primary"), f"assumptions.primary.{field} is "
                             f"missing for the {primary.type} primary outcome", "warning"))
    if p is not None:
        for field in sorted(p.model_fields_set):
            owner = _PRIMARY_FIELD_TYPE.get(field)
            if owner is not None and owner != primary.type:
                out.append(P(("assumptions", "primary", field), f"{field} applies to a {owner} "
                             f"primary outcome; the {primary.type} primary outcome "
                             f"{primary.id!r} does not use it", "warning"))
    cm = model.change_model
    burden: dict = {t: [0, 0.0, False] for t in months}
    for section in ("process_variables", "outcomes"):
        for i, var in enumerate(getattr(cm, section)):
            m = used.get(var.measure)
            if m is None:
                continue
            if var.type == "continuous" and m.get("sd") is None:
                out.append(P(("change_model", section, i, "measure"),
                             f"{var.measure}: typical SD unknown; give sd in assumptions or "
                             "define the measure", "warning"))
            if m.get("licence"):
                out.append(P(("change_model", section, i, "measure"),
                             f"{var.measure} licence: {m['licence']}", "warning"))
            for t in var.timepoints:
                items = m.get("items") or 0
                burden[t][0] += items
                if m.get("minutes") is not None:
                    burden[t][1] += m["minutes"]
                else:
                    burden[t][1] += items * SECONDS_PER_ITEM / 60.0
                    burden[t][2] = True
    for t, (items, minutes, estimated) in burden.items():
        if items:
            how = "estimated at 15 s per item" if estimated else "from the instruments"
            out.append(Problem(located.name, None, f"timepoints.{t}",
                               f"respondent burden: {items} items, about {minutes:.0f} minutes "
                               f"({how})", "warning"))
    return out


def _find_cycle(children) -> list | None:
    colour: dict = {}
    for start in list(children):
        if colour.get(start):
            continue
        stack = [(start, iter(children.get(start, ())))]
        path = [start]
        colour[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
                continue
            if colour.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if not colour.get(nxt):
                colour[nxt] = 1
                stack.append((nxt, iter(children.get(nxt, ()))))
                path.append(nxt)
    return None


def _reaches(start, children, targets) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for nxt in children.get(node, ()):
            if nxt in targets:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def load_trial(path) -> TrialPlan:
    """Read, parse and check a trial file."""
    return check_located(load_file(path))


def load_trial_text(text: str, name: str = "<trial>") -> TrialPlan:
    return check_located(load(text, name))


def example_text() -> str:
    """The bundled, commented peer-support example trial file."""
    return resources.files("trialplan.data").joinpath("example_trial.yaml").read_text("utf-8")
