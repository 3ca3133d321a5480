"""The layers import only downward, as docs/ and the design describe.

model and stats are independent siblings; planning combines them; render
formats what planning built; only cli imports click (and is the only layer
that may import every other).  Lazy imports inside functions count too, so
the rule is checked on the syntax tree, not on what happens to be loaded.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "trialplan"

# layer -> the trialplan layers it may import (besides itself and the base modules)
ALLOWED = {
    "model": set(),
    "stats": set(),
    "planning": {"model", "stats"},
    "render": {"model", "stats", "planning"},
    "simulation": {"model", "stats", "planning"},
    "cli": {"model", "stats", "planning", "render", "simulation", "docsgen"},
    "docsgen": {"model", "stats", "planning", "render"},
    "data": set(),
    "__main__": {"cli"},
}
# Base modules every layer may import; they import nothing of trialplan but each other.
BASE = {"errors", "fileio", "choices", "numfmt", "machine", "__init__"}
CLI_ONLY = {"click", "rich"}


def _layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path):
    return _imports_from_text(path.read_text("utf-8"), str(path))


def _imports_from_text(text: str, name: str = "<probe>"):
    tree = ast.parse(text, name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            if node.module == "trialplan":
                for alias in node.names:
                    yield node.lineno, f"trialplan.{alias.name}"


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def _violations(layer: str, imports) -> list[str]:
    if layer in BASE:
        allowed = set(BASE)
    else:
        assert layer in ALLOWED, f"{layer} is not a known layer: add it to ALLOWED"
        allowed = ALLOWED[layer] | {layer}
    bad = []
    for line, name in imports:
        top = name.split(".")[0]
        if top in CLI_ONLY and layer != "cli":
            bad.append(f"line {line}: {name} (only cli imports {top})")
        if top != "trialplan" or name == "trialplan":
            continue
        target = name.split(".")[1]
        if target in BASE or target == "__version__":
            continue
        if target not in allowed:
            bad.append(f"line {line}: {name} ({layer} may not import {target})")
    return bad


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    bad = _violations(_layer(path), _imports(path))
    assert not bad, "\n".join(bad)


def test_the_check_sees_upward_and_lazy_imports():
    # A function-level import of a higher layer, and click outside cli, must be caught;
    # otherwise the rule above could pass vacuously.
    source = "import click\ndef f():\n    from trialplan.render import drafts\n"
    bad = _violations("stats", _imports_from_text(source))
    assert len(bad) == 2 and "click" in bad[0] and "render" in bad[1]
    assert _violations("render", _imports_from_text(source))[0].startswith("line 1: click")
