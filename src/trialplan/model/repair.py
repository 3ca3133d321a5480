"""Set aside the values that fail the schema, so the reference checks can still run.

A trial file with a range error (``attrition: 1.5``) and a misspelt id
(``from: hoppe``) should show both problems in one run of ``trialplan check``.
Pydantic stops at the first: a file that fails the schema builds no model,
and the reference checks (:func:`trialplan.model.checks._semantic`) need one.

:func:`set_aside` therefore removes each failing value from a copy of the
parsed tree and validates again, until the copy validates:

- a failing value in a mapping is removed, so an optional field falls back to
  its default;
- when removing it leaves a required field missing, the mapping that holds it
  is removed in turn;
- an item of a list is removed from the list;
- a ``trial`` section missing a required field is kept unchecked (the reference
  checks read only its ``design``, which has a default).

The reference checks then run on the model built from what remains.  Their
findings are reported in the original file's positions (list indices are
mapped back), and a finding is dropped when it concerns a value that was set
aside (its field is on the same branch as one set aside, or it names the id of
a list item set aside, or it is about the change model's shape when one of its
nodes was set aside, or it is a reference into a list that lost an item whose id
could not be read): that problem is already reported by the schema, and its
consequences would only repeat it.  On 1,500 randomly mutated copies of the
example (the fuzz test's mutations) no problem reported before is lost, and
the problems added are independent ones (duplicate ids, time order, unknown
measures) that the old check showed only on the next run.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from trialplan.model.loader import Located, Problem, field_name

# Each round sets aside at least one more value; a file needs a handful at most, and a
# bound keeps a pathological file from looping.
MAX_ROUNDS = 25
# The lists whose items others refer to by id (or key).
_NAMED_LISTS = (("timepoints",), ("measures",), ("change_model", "mechanisms"),
                ("change_model", "process_variables"), ("change_model", "outcomes"))
# Findings about the change model's shape (a node with no route, no primary outcome, a
# cycle), which a node or link set aside may cause.
_GRAPH_FINDING = re.compile(r"^change_model\.(mechanisms|process_variables|outcomes)"
                            r"(\[\d+\])?$")


@dataclass(frozen=True)
class SetAside:
    """A tree that validates, with the way back to the original file's positions.

    ``model`` is the validated model; ``kept`` maps each list's original path to
    the original indices of the items it still holds; ``removed`` lists the
    original paths set aside; ``removed_ids`` the ids (and measure keys) of list items
    set aside; ``unnamed`` the sections (``timepoints``, ``measures``, ``change_model``)
    that lost an item whose id could not be read, or a whole list, so that any reference
    into them may be to what was lost.
    """

    model: object
    kept: dict
    removed: tuple
    removed_ids: frozenset
    unnamed: frozenset = frozenset()

    def original(self, path) -> tuple:
        """The original file's path of ``path`` in the model built from the pruned tree."""
        out: list = []
        for part in path:
            if isinstance(part, int):
                kept = self.kept.get(tuple(out))
                part = kept[part] if kept is not None and part < len(kept) else part
            out.append(part)
        return tuple(out)

    def concerns_removed(self, field: str, message: str) -> bool:
        """True if a reference finding follows from a value set aside."""
        for path in self.removed:
            name = field_name(path)
            if not field or not name:
                continue
            if _same_branch(field, name):
                return True
        if self.graph_incomplete and _GRAPH_FINDING.match(field):
            return True
        return any(f"{i!r}" in message for i in self.removed_ids)

    @property
    def graph_incomplete(self) -> bool:
        """A node or link of the change model was set aside."""
        return any(p[0] == "change_model" and len(p) <= 3 for p in self.removed)


def _same_branch(a: str, b: str) -> bool:
    short, long = sorted((a, b), key=len)
    return long == short or long.startswith(short + ".") or long.startswith(short + "[")


def _get(tree, path):
    node = tree
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            raise LookupError(path)
    return node


def _filtered(tree, removed: set, path=()):
    """A copy of ``tree`` without the list items in ``removed``, and each list's kept indices."""
    kept: dict = {}

    def walk(node, where):
        if isinstance(node, dict):
            return {k: walk(v, (*where, k)) for k, v in node.items()}
        if isinstance(node, list):
            keep = [i for i in range(len(node)) if (*where, i) not in removed]
            kept[where] = keep
            return [walk(node[i], (*where, i)) for i in keep]
        return node

    return walk(tree, path), kept


def _unchecked_trial(section: dict):
    from trialplan.model.schema import Trial

    fields = {k: v for k, v in section.items() if k in Trial.model_fields}
    return Trial.model_construct(**fields)


def set_aside(data: dict, validate, first_error) -> SetAside | None:
    """Remove failing values from a copy of ``data`` until ``validate`` accepts it.

    Parameters
    ----------
    data : dict
        The parsed trial file (not modified).
    validate : callable
        Builds the model from a tree; raises pydantic's ``ValidationError``.
    first_error : pydantic.ValidationError
        The error the original tree raised.

    Returns
    -------
    SetAside or None
        None when nothing short of the whole file would have to go (a top-level
        required section or the schema version fails).
    """
    from pydantic import ValidationError

    tree = copy.deepcopy(data)
    removed: set = set()  # original paths of list items set aside
    gone: list = []  # original paths set aside, in order
    ids: set = set()
    unnamed: set = set()
    kept: dict = {}
    exc = first_error
    for _ in range(MAX_ROUNDS):
        progress = False
        this_round: set = set()
        mapper = SetAside(None, kept, (), frozenset())
        for err in exc.errors():
            loc = mapper.original(p for p in err["loc"]
                                  if not (isinstance(p, str) and p.startswith("function-")))
            target = loc
            try:
                _get(tree, target)
                present = target not in removed
            except LookupError:
                present = False
            if not present or err["type"] == "missing":
                target = loc[:-1]  # a required field: its holder goes
            if any(target[:k] in this_round for k in range(len(target) + 1)):
                continue  # already set aside with its holder in this round
            while target and target in gone:
                target = target[:-1]  # set aside in an earlier round, but required
            if target == ("trial",) and isinstance(tree.get("trial"), dict):
                # The reference checks read only trial.design, which has a default: a trial
                # section with a missing title need not hide them.
                tree["trial"] = _unchecked_trial(tree["trial"])
                gone.append(target)
                this_round.add(target)
                progress = True
                continue
            if not target:
                return None
            try:
                parent = _get(tree, target[:-1])
            except LookupError:
                continue
            if isinstance(parent, dict):
                if target[-1] in parent:
                    if any(lst[:len(target)] == target for lst in _NAMED_LISTS):
                        unnamed.add(target[0])  # a whole list of named items, or its section
                    del parent[target[-1]]
                    gone.append(target)
                    this_round.add(target)
                    progress = True
            elif isinstance(parent, list):
                item = parent[target[-1]]
                name = item.get("id", item.get("key")) if isinstance(item, dict) else None
                if isinstance(name, str):
                    ids.add(name)
                elif target[:-1] in _NAMED_LISTS:
                    unnamed.add(target[0])
                removed.add(target)
                gone.append(target)
                this_round.add(target)
                progress = True
        if not progress:
            return None
        pruned, kept = _filtered(tree, removed)
        try:
            model = validate(pruned)
        except ValidationError as again:
            exc = again
            continue
        return SetAside(model, kept, tuple(gone), frozenset(ids), frozenset(unnamed))
    return None


class RemappedLocated(Located):
    """The original file's lines, addressed by paths in the model built from a pruned tree."""

    def __init__(self, located: Located, aside: SetAside):
        super().__init__(located.data, located.lines, located.name)
        self.sha256 = located.sha256
        self._aside = aside

    def line(self, path) -> int | None:
        return super().line(self._aside.original(path))

    def problem(self, path, message, severity="error"):
        path = self._aside.original(path)
        return Problem(self.name, Located.line(self, path), field_name(path), message, severity)
