"""Safe YAML loading that remembers where every value came from.

The trial file is parsed with PyYAML's safe event parser (no object
construction, no tags executed).  Before any value is built the event stream is
checked against hostile input: anchors and aliases are refused (a trial file
never needs them, and they make "billion laughs" bombs), nesting deeper than
:data:`MAX_DEPTH`, more than :data:`MAX_EVENTS` values and files over
:data:`MAX_BYTES` are refused.  Values are built iteratively from the events,
and each one's line is recorded under its path, e.g.
``("change_model", "mechanisms", 0, "id") -> 12``, so every later error can
name the line.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import yaml

MAX_BYTES = 2_000_000
MAX_DEPTH = 30
MAX_EVENTS = 200_000
# Longer numbers are no planning value (and Python refuses ints of over 4,300 digits with
# advice about sys.set_int_max_str_digits).
MAX_NUMBER_CHARS = 100

# libyaml's parser when PyYAML was built with it (the same events, several times faster).
_PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Control characters (other than tab and line breaks) typed as escapes in quoted strings.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Bidirectional embeddings, overrides and isolates: they make text display in another order
# than it reads (a label, a command or a reference that looks like something it is not).
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# The plain-scalar types built as Python values; any other type YAML 1.1 resolves stays text.
_CONSTRUCTED = frozenset(f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "str"))
_NUMBERS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("int", "float"))


@dataclass(frozen=True)
class Problem:
    """One problem in an input file: where, which field, what was expected and found."""

    file: str
    line: int | None
    field: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "field": self.field,
                "message": self.message, "severity": self.severity}


def field_name(path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class Located:
    """Parsed data plus the line of every path in it."""

    def __init__(self, data, lines: dict, name: str):
        self.data = data
        self.lines = lines
        self.name = name
        self.sha256: str | None = None  # of the UTF-8 text, set by load()

    def line(self, path) -> int | None:
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def problem(self, path, message, severity="error") -> Problem:
        return Problem(self.name, self.line(path), field_name(path), message, severity)


def _scalar(event: yaml.ScalarEvent):
    """Resolve a plain scalar as YAML 1.1 safe types (int, float, bool, null, str)."""
    value = event.value
    bad = _CONTROL.search(value)
    if bad:
        raise ValueError(f"control character U+{ord(bad.group()):04X} is not allowed in a trial "
                         "file (it could rewrite the terminal or break the documents)")
    bad = _BIDI.search(value)
    if bad:
        raise ValueError(f"bidirectional control character U+{ord(bad.group()):04X} is not "
                         "allowed in a trial file (it makes text display in another order than "
                         "it reads); write right-to-left text without it")
    if event.style or event.tag == "tag:yaml.org,2002:str":  # quoted or block ("" is plain)
        return value
    if event.tag not in (None, "!"):
        raise ValueError(f"tag {event.tag!r} is not allowed")
    resolver = yaml.resolver.Resolver()
    tag = resolver.resolve(yaml.ScalarNode, value, (True, False))
    if tag == "tag:yaml.org,2002:merge":
        raise ValueError("YAML merge keys (<<) are not allowed in a trial file; write the "
                         "values out")
    if tag not in _CONSTRUCTED:
        return value  # dates, '=' (the YAML 1.1 value key) and the like stay text, as written
    if tag in _NUMBERS and len(value) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number written with {len(value):,} characters; at most "
                         f"{MAX_NUMBER_CHARS} are read")
    node = yaml.ScalarNode(tag, value)
    out = yaml.SafeLoader.yaml_constructors[tag](yaml.SafeLoader(""), node)
    if isinstance(out, float) and not math.isfinite(out):
        return out  # reported later with the field's line
    return out


def load(text: str | bytes, name: str = "<input>") -> Located:
    """Parse YAML text into plain data with line numbers; raise ``TrialFileError`` if unsafe."""
    from trialplan.errors import TrialFileError

    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise TrialFileError([Problem(name, None, "", f"file is over {MAX_BYTES:,} "
                                          "bytes; a trial file is far smaller")])
        if b"\x00" in text:
            raise TrialFileError([Problem(name, None, "", "file is binary, not YAML text")])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TrialFileError([Problem(name, None, "", f"file is not UTF-8 text ({exc.reason} "
                                          f"at byte {exc.start})")]) from None
    if len(text) > MAX_BYTES:
        raise TrialFileError([Problem(name, None, "", f"file is over {MAX_BYTES:,} characters")])
    lines: dict = {}
    stack: list = []  # frames: [container, path, pending_key]
    root = None
    depth = 0
    count = 0
    try:
        for event in yaml.parse(text, Loader=_PARSER):
            count += 1
            line = event.start_mark.line + 1 if event.start_mark else None
            if count > MAX_EVENTS:
                raise TrialFileError([Problem(name, line, "", f"more than {MAX_EVENTS:,} values; "
                                              "a trial file is far smaller")])
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise TrialFileError([Problem(name, line, "", "YAML anchors and aliases (& and *) "
                                              "are not allowed in a trial file; write values out")])
            if isinstance(event, (yaml.StreamStartEvent, yaml.StreamEndEvent,
                                  yaml.DocumentEndEvent)):
                continue
            if isinstance(event, yaml.DocumentStartEvent):
                if root is not None:
                    raise TrialFileError([Problem(name, line, "", "more than one YAML document; "
                                                  "a trial file has one")])
                continue
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                container, path, _ = stack.pop()
                depth -= 1
                _attach(stack, container, path, lines, name)
                if not stack:
                    root = container
                continue
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if event.tag not in (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"):
                    raise TrialFileError([Problem(name, line, "", f"tag {event.tag!r} is not "
                                                  "allowed in a trial file")])
                if stack and isinstance(stack[-1][0], dict) and stack[-1][2] is None:
                    raise TrialFileError([Problem(name, line, field_name(stack[-1][1]),
                                                  "a key must be a name, not a list or "
                                                  "mapping (YAML's '?' complex keys)")])
                depth += 1
                if depth > MAX_DEPTH:
                    raise TrialFileError([Problem(name, line, "", f"nesting deeper than "
                                                  f"{MAX_DEPTH} levels")])
                path = _child_path(stack)
                lines.setdefault(path, line)
                stack.append([{} if isinstance(event, yaml.MappingStartEvent) else [], path,
                              None])
                continue
            if isinstance(event, yaml.ScalarEvent):
                try:
                    value = _scalar(event)
                except (ValueError, yaml.constructor.ConstructorError) as exc:
                    where = field_name(p for p in _child_path(stack) if p is not None)
                    raise TrialFileError([Problem(name, line, where, str(exc))]) from None
                if not stack:
                    root = value
                    lines[()] = line
                    continue
                frame = stack[-1]
                if isinstance(frame[0], dict) and frame[2] is None:
                    key = value if isinstance(value, str) else str(value)
                    if key in frame[0]:
                        raise TrialFileError([Problem(name, line, field_name((*frame[1], key)),
                                                      "key appears twice in the same mapping")])
                    frame[2] = key
                    lines[(*frame[1], key)] = line
                    continue
                path = _child_path(stack)
                lines[path] = line
                _attach(stack, value, path, lines, name)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        what = getattr(exc, "problem", None) or str(exc)
        raise TrialFileError([Problem(name, line, "", f"malformed YAML: {what}")]) from None
    except RecursionError:
        raise TrialFileError([Problem(name, None, "", "nesting too deep")]) from None
    located = Located(root, lines, name)
    located.sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return located


def _child_path(stack) -> tuple:
    if not stack:
        return ()
    container, path, key = stack[-1]
    if isinstance(container, dict):
        return (*path, key)
    return (*path, len(container))


def _attach(stack, value, path, lines, name) -> None:
    if not stack:
        return
    frame = stack[-1]
    if isinstance(frame[0], dict):
        frame[0][frame[2]] = value
        frame[2] = None
    else:
        frame[0].append(value)


def load_file(path) -> Located:
    """Read and parse a trial file; problems name the file.

    Only regular files are read, and never more than :data:`MAX_BYTES` + 1
    bytes: a device (``/dev/zero``), a FIFO (opened without blocking) or a
    ``/proc`` file that claims size 0 cannot hang the reader or fill memory.
    """
    from trialplan.errors import TrialFileError

    path = Path(path)

    def fail(message):
        return TrialFileError([Problem(str(path), None, "", message)])

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise fail("no such file") from None
    except IsADirectoryError:
        raise fail("is a directory, not a file") from None
    except OSError as exc:
        raise fail(f"cannot open: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise fail("is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise fail("is not a regular file (a device, FIFO or socket); save the trial file "
                       "as a file and give its path")
        if st.st_size > MAX_BYTES:
            raise fail(f"file is {st.st_size:,} bytes; at most {MAX_BYTES:,} are read")
        chunks, total = [], 0
        while total <= MAX_BYTES:
            chunk = os.read(fd, min(1 << 20, MAX_BYTES + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        raw = b"".join(chunks)
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return load(raw, str(path))
