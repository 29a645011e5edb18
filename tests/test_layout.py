"""The package's floors: imports point down only, and no module imports itself back through others.

Every module of ``sparsenb`` sits on one floor, by the folder it lives in:

=========  ===========================================================================
ground     ``checks``, ``cache``, ``distributed`` (and the package's ``__init__``)
library    ``data``, ``basis``, ``frontend``, ``models/``, ``evaluation``, ``training``,
           ``attacks/``, ``certify/``, ``theory/``
lab        ``lab/``: grids, the result store, the audit, statistics, the paper's numbers
chapters   ``chapters/``: one module per page of the book
book       ``book/``: executing and building the book
=========  ===========================================================================

A module may import its own floor and the floors below it; ``chapters`` and
``book`` both stand on ``lab`` and never import each other. The imports are
read from the source (anywhere in a module, functions included), with this
file's own parser, not the package's.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sparsenb

PACKAGE = Path(sparsenb.__file__).resolve().parent
GROUND = {"checks", "cache", "distributed", "__init__"}
LIBRARY = {"data", "basis", "frontend", "models", "evaluation", "training", "attacks", "certify", "theory"}
BELOW = {
    "ground": {"ground"},
    "library": {"ground", "library"},
    "lab": {"ground", "library", "lab"},
    "chapters": {"ground", "library", "lab", "chapters"},
    "book": {"ground", "library", "lab", "book"},
}


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name relative to the package (``"lab.grid"``, ``"__init__"``)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if "__pycache__" in parts:
            continue
        name = ".".join(parts[:-1]) if parts[-1] == "__init__" and len(parts) > 1 else ".".join(parts)
        out[name] = path
    return out


MODULES = modules()


def floor(module: str) -> str:
    top = module.split(".")[0]
    if top in GROUND:
        return "ground"
    if top in LIBRARY:
        return "library"
    if top in ("lab", "chapters", "book"):
        return top
    raise AssertionError(f"sparsenb/{module.replace('.', '/')} is on no floor: put it in a floor's folder or list it here")


def imports(module: str) -> set[str]:
    """The package modules that ``module`` imports: ``from a.b import c`` is ``a.b.c`` if that is a module, else ``a.b``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    if module == "__init__":
        package = ""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.removeprefix("sparsenb.") for a in node.names if a.name.startswith("sparsenb.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            elif node.module and (node.module == "sparsenb" or node.module.startswith("sparsenb.")):
                base = node.module.removeprefix("sparsenb").removeprefix(".")
            else:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}" if base else alias.name
                found.add(sub if sub in MODULES else base or "__init__")
    found.discard(module)
    return {m for m in found if m in MODULES}


def test_every_module_is_on_a_floor():
    assert {floor(m) for m in MODULES} == set(BELOW)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    up = sorted(m for m in imports(module) if floor(m) not in BELOW[floor(module)])
    assert not up, f"sparsenb.{module} ({floor(module)}) imports {[f'sparsenb.{m} ({floor(m)})' for m in up]}"


def test_no_circle():
    graph = {m: imports(m) for m in MODULES}
    # a package's __init__ may re-export its own submodules, which import their siblings: not a circle through code
    for m in graph:
        if MODULES[m].name == "__init__.py":
            graph[m] = {d for d in graph[m] if not d.startswith(f"{m}.") or m == "__init__"}
    state, stack, circles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                circles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_the_parser_sees_what_python_imports():
    """The parser finds relative, absolute and function-level imports (checked on modules known to use each)."""
    assert {"lab.grid", "lab.store"} <= imports("lab.audit") | imports("lab.grid")
    assert "frontend" in imports("attacks.base")
    assert "attacks.registry" in imports("training")  # imported inside a method
    assert floor("lab.audit") == "lab" and floor("book.page") == "book" and floor("attacks.base") == "library"
