"""Static checks that every chapter only narrates: its module computes, its page reads and argues. Nothing is executed.

Each chapter named in ``_toc.yml`` (the MyST notebooks, read with jupytext) must

1. **define nothing**: no ``def``/``async def``/``class`` anywhere in a code
   cell, and no ``lambda`` bound to a name (``f = lambda ...``). An inline
   ``lambda`` passed as an argument (a sort key) is an expression, not a
   definition, and is allowed.
2. **compute in its chapter module**: every code cell but the parameters is
   one to three simple statements (no loops, conditions, comprehensions,
   lambdas or definitions), formatted with ``ruff format`` (line length 100;
   ``sparsenb-book format`` does it); the page imports its module
   ``sparsenb/chapters/<stem>.py`` (a summary page of the build may use
   ``sparsenb/book/<stem>.py``), which is formatted too.
3. **take its parameters from one place**: its ``parameters`` cell assigns
   literals only, one per name, ``profile = "laptop"`` among them: the cell
   *is* the ``laptop`` profile. ``book/profiles.toml`` holds only what
   ``smoke`` and ``full`` change; every override names a parameter of the
   chapter and keeps its type (:func:`sparsenb.book.layout.chapter_parameters`
   raises otherwise).
4. **not type the paper's numbers**: no ``value`` of
   ``paper_numbers.csv`` (as written there) with a decimal point and at least
   two decimals appears in a Markdown cell; those come through
   ``{glue:text}`` roles fed by :func:`sparsenb.book.page.paper`. A match must
   stand alone as a number (``98.97`` does not match inside ``198.975``).
   Every such value of the CSV is a percentage; the ones below 1 (``0.25``,
   ``0.92``) read like an :math:`\\epsilon` or a :math:`\\rho` in prose, so
   they match only when followed by a percent sign (``%`` or ``\\%``).
   Text inside inline code (backticks) and the targets of roles is ignored.
5. **label and cross-reference**: it defines at least one label (an
   equation label ``$$ (name)``, a target ``(name)=``, a ``:name:`` or
   ``:label:`` option) and uses at least one cross-reference
   (``{eq}``, ``{ref}``, ``{numref}``); every reference resolves to a label
   defined somewhere in the book. A chapter that displays equations
   (``$$`` blocks) labels at least one of them and refers to one with
   ``{eq}``, the way QuantEcon's lectures do. The MNIST chapters display no
   equations (tables and figures only), which is why the equation rule is
   tied to display math rather than imposed on every chapter. In the theory
   chapters every heading that names a result (Theorem, Lemma,
   Proposition, Corollary) carries a ``(label)=`` target so other pages can
   cite it with ``{ref}``.
   Every figure (``{glue:figure}`` or ``{figure}``) has a ``:name:``, its
   stable anchor (the page's URL fragment and the name of its downloadable
   files), and a caption: the book numbers figures per chapter, and a
   teacher cites a figure by its anchor.
6. **glue through one helper**: no chapter imports ``myst_nb`` itself;
   values and figures go through :mod:`sparsenb.book.page`.
7. **read like a book**: a code cell that imports hides its code
   (``hide-input``, or ``remove-input``/``remove-cell``/``hide-cell``), and a
   cell that states a conclusion with :func:`sparsenb.book.page.claim`
   removes its input, so the reader meets the sentence, which the build
   checked.

The test ids name the chapter (``test_no_definitions[frontend]``).
"""
from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

import jupytext
import pandas as pd
import pytest

from sparsenb.book.layout import PROFILES, SUMMARY_PAGES, Book, chapter_parameters, default_parameters
from sparsenb.cache import PROJECT_ROOT
from sparsenb.lab.paper import FILENAME, reference_dir

BOOK = Book(PROJECT_ROOT)
CHAPTERS = BOOK.chapters()
THEORY = {"theory_linear", "theory_networks"}
RESULT_WORDS = ("Theorem", "Lemma", "Proposition", "Corollary")


# --------------------------------------------------------------------------
# reading chapters
# --------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _notebook(path: Path):
    return jupytext.read(path)


def _cells(path: Path, kind: str):
    return [c for c in _notebook(path).cells if c.cell_type == kind]


def _code(cell) -> str:
    """The cell's source with IPython magics (``%``, ``!``) blanked, line numbers kept."""
    lines = cell.source.splitlines()
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def _parse(cell) -> ast.Module:
    return ast.parse(_code(cell))


def _where(cell) -> str:
    first = next((line for line in cell.source.splitlines() if line.strip()), "")
    return f"cell starting {first[:60]!r}"


def chapter_params():
    return pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])


# --------------------------------------------------------------------------
# 1. no definitions
# --------------------------------------------------------------------------
def definitions(tree: ast.Module) -> list[str]:
    """Names defined by ``def``/``class`` anywhere, or lambdas bound to a name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.append(f"{type(node).__name__} {node.name} (line {node.lineno})")
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and isinstance(node.value, ast.Lambda):
            found.append(f"lambda bound to a name (line {node.lineno})")
    return found


@chapter_params()
def test_no_definitions(path):
    problems = [f"{_where(c)}: {d}" for c in _cells(path, "code") for d in definitions(_parse(c))]
    assert not problems, f"{path.name} defines functions or classes (move them into sparsenb):\n" + "\n".join(problems)


# --------------------------------------------------------------------------
# 3. parameters from one place
# --------------------------------------------------------------------------
@chapter_params()
def test_parameters_are_literals_and_the_laptop_profile(path):
    """The parameters cell assigns one literal per name, ``profile = "laptop"`` among them; every profile's
    overrides name parameters of the chapter with values of their type (``chapter_parameters`` checks it)."""
    params = default_parameters(path)
    assert params.get("profile") == "laptop", f"{path.name}: the parameters cell must set profile = 'laptop'"
    for profile in PROFILES:
        assert set(chapter_parameters(profile, path.stem, BOOK)) == set(params)


# --------------------------------------------------------------------------
# 4. paper numbers are glued, not typed
# --------------------------------------------------------------------------
@lru_cache(maxsize=None)
def paper_values() -> tuple[str, ...]:
    path = reference_dir() / FILENAME
    if not path.is_file():
        pytest.skip(f"no {path}")
    written = pd.read_csv(path, dtype=str, keep_default_na=False)["value"].str.strip()
    return tuple(sorted({v for v in written if re.fullmatch(r"\d+\.\d{2,}", v)}))


def _prose(markdown: str) -> str:
    """Markdown without inline code and role targets (``{glue:text}`name:.2f```)."""
    return re.sub(r"`[^`\n]*`", " ", markdown)


def typed_paper_numbers(markdown: str) -> list[str]:
    text = _prose(markdown)
    found = []
    for value in paper_values():
        percent = r"\s*\\?%" if float(value) < 1 else ""
        if re.search(rf"(?<![\d.]){re.escape(value)}(?!\d|\.\d){percent}", text):
            found.append(value)
    return found


def test_typed_paper_number_rule():
    if "61.04" not in paper_values():
        pytest.skip("the reference CSV no longer holds 61.04")
    assert typed_paper_numbers("accuracy falls to 61.04% under PGD") == ["61.04"]
    assert typed_paper_numbers("versus {glue:text}`paper_pgd:.2f`%") == []
    assert typed_paper_numbers("a ratio of 161.045") == []
    assert typed_paper_numbers("at $\\epsilon = 0.25$") == []
    assert "0.25" in typed_paper_numbers("only 0.25% survive")


@chapter_params()
def test_paper_numbers_are_glued(path):
    hits = {}
    for cell in _cells(path, "markdown"):
        for value in typed_paper_numbers(cell.source):
            hits.setdefault(value, _where(cell))
    assert not hits, (
        f"{path.name} types the paper's numbers into prose (glue them with sparsenb.book.page.paper): "
        + "; ".join(f"{v} in {w}" for v, w in hits.items())
    )


# --------------------------------------------------------------------------
# 5. labels and cross-references
# --------------------------------------------------------------------------
_LABEL_PATTERNS = (
    # equation: `$$ (label)` closing a block, or `$$ x = 1 $$ (label)` on one line, indented in lists too
    re.compile(r"^[ \t]*(?:\$\$.*)?\$\$[ \t]*\(([\w:.-]+)\)[ \t]*$", re.M),
    re.compile(r"^[ \t]*\(([\w:.-]+)\)=[ \t]*$", re.M),  # target before a heading or block
    re.compile(r"^[ \t]*:(?:name|label):[ \t]*([\w:.-]+)[ \t]*$", re.M),  # directive option
)
_REF = re.compile(r"\{(eq|ref|numref)\}`([^`]+)`")


def labels(markdown: str) -> set[str]:
    return {m for pattern in _LABEL_PATTERNS for m in pattern.findall(markdown)}


def references(markdown: str) -> list[tuple[str, str]]:
    """``(role, target)`` for every cross-reference; ``{numref}`Fig. %s <name>``` gives ``name``."""
    out = []
    for role, body in _REF.findall(markdown):
        explicit = re.search(r"<([^<>]+)>\s*$", body)
        out.append((role, (explicit.group(1) if explicit else body).strip()))
    return out


def _page_text(path: Path) -> str:
    return path.read_text()


@lru_cache(maxsize=None)
def book_labels() -> frozenset[str]:
    return frozenset(set().union(*(labels(_page_text(p)) for p in BOOK.pages())))


def test_label_rules():
    text = "$$\nx = 1\n$$ (eq-x)\n\n(thm-1)=\n## Theorem 1\n\n:name: fig-a\nsee {eq}`eq-x`, {numref}`Figure %s <fig-a>`"
    assert labels(text) == {"eq-x", "thm-1", "fig-a"}
    assert labels("- item\n\n  $$\n  y = 2\n  $$ (eq-y)\n\n$$ z = 3 $$ (eq-z)\n") == {"eq-y", "eq-z"}
    assert labels("$$\nx = (a)\n$$\n") == set()
    assert references(text) == [("eq", "eq-x"), ("numref", "fig-a")]


@chapter_params()
def test_labels_and_cross_references(path):
    markdown = "\n\n".join(c.source for c in _cells(path, "markdown"))
    own, refs = labels(markdown), references(markdown)
    assert own, f"{path.name} defines no label (equation label, (target)=, :name: or :label:)"
    assert refs, f"{path.name} uses no cross-reference ({{eq}}, {{ref}} or {{numref}})"
    dangling = sorted({t for _, t in refs} - book_labels())
    assert not dangling, f"{path.name} refers to labels defined nowhere in the book: {dangling}"


@chapter_params()
def test_displayed_equations_are_labelled_and_cited(path):
    markdown = "\n\n".join(c.source for c in _cells(path, "markdown"))
    if not re.search(r"^[ \t]*\$\$", markdown, re.M):
        pytest.skip(f"{path.name} displays no equation")
    equations = set(_LABEL_PATTERNS[0].findall(markdown))
    cited = {t for role, t in references(markdown) if role == "eq"}
    assert equations, f"{path.name} displays equations but labels none (close a block with `$$ (eq-name)`)"
    assert cited, f"{path.name} labels equations but never cites one with {{eq}}"


@chapter_params()
def test_theory_results_are_labelled(path):
    if path.stem not in THEORY:
        pytest.skip("not a theory chapter")
    lines = "\n\n".join(c.source for c in _cells(path, "markdown")).splitlines()
    unlabelled = []
    for i, line in enumerate(lines):
        if re.match(r"^#+\s", line) and any(w in line for w in RESULT_WORDS):
            before = [l for l in lines[:i] if l.strip()]
            if not (before and re.fullmatch(r"\([\w:.-]+\)=\s*", before[-1])):
                unlabelled.append(line.strip())
    assert not unlabelled, f"{path.name}: headings naming a result without a (label)= target: {unlabelled}"


_FIGURE_BLOCK = re.compile(r"^(`{3,}|:{3,})\{(?:glue:figure|figure)\}[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)


def figures_without_anchor_or_caption(markdown: str) -> list[str]:
    """The first line of every figure directive that lacks a ``:name:`` or a caption."""
    bad = []
    for m in _FIGURE_BLOCK.finditer(markdown):
        body = m.group(2).splitlines()
        named = any(re.match(r":name:\s*\S+", line) for line in body)
        captioned = any(line.strip() and not line.startswith(":") for line in body)
        if not (named and captioned):
            bad.append(m.group(0).splitlines()[0])
    return bad


def test_figure_rule():
    good = "```{glue:figure} fig_a\n:name: fig-a\n\nA caption.\n```\n"
    assert figures_without_anchor_or_caption(good) == []
    assert figures_without_anchor_or_caption("```{glue:figure} fig_a\n\nA caption.\n```\n") == ["```{glue:figure} fig_a"]
    assert figures_without_anchor_or_caption(":::{figure} a.png\n:name: fig-b\n:::\n") == [":::{figure} a.png"]


@chapter_params()
def test_figures_have_anchors_and_captions(path):
    bad = figures_without_anchor_or_caption(_page_text(path))
    assert not bad, f"{path.name}: figures without a :name: (stable anchor) or a caption: {bad}"


# --------------------------------------------------------------------------
# 6. one glue helper
# --------------------------------------------------------------------------
@chapter_params()
def test_glue_goes_through_sparsenb_page(path):
    direct = []
    for cell in _cells(path, "code"):
        for node in ast.walk(_parse(cell)):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "myst_nb" for a in node.names):
                direct.append(_where(cell))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "myst_nb":
                direct.append(_where(cell))
    assert not direct, f"{path.name} imports myst_nb directly (use sparsenb.book.page.glue/figure): {direct}"


# --------------------------------------------------------------------------
# 7. imports collapsed, claims shown as sentences
# --------------------------------------------------------------------------
HIDDEN_TAGS = {"hide-input", "remove-input", "remove-cell", "hide-cell"}


def imports(tree: ast.Module) -> bool:
    return any(isinstance(node, (ast.Import, ast.ImportFrom)) for node in ast.walk(tree))


def claims(tree: ast.Module) -> bool:
    calls = (n.func for n in ast.walk(tree) if isinstance(n, ast.Call))
    return any((f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")) == "claim" for f in calls)


def test_imports_and_claims_rules():
    assert imports(ast.parse("import numpy as np")) and not imports(ast.parse("page.figure(f(x), 'fig_a')"))
    assert claims(ast.parse("claim(a > b, 'A.')")) and claims(ast.parse("page.claim(a, 'A.')"))
    assert not claims(ast.parse("glue(a=1)"))


@chapter_params()
def test_import_code_is_collapsed(path):
    shown = [_where(c) for c in _cells(path, "code") if imports(_parse(c)) and not HIDDEN_TAGS & set(c.metadata.get("tags", []))]
    assert not shown, f"{path.name}: cells that import show their code (tag them hide-input): {shown}"


@chapter_params()
def test_claims_show_only_their_sentence(path):
    shown = [_where(c) for c in _cells(path, "code") if claims(_parse(c)) and "remove-input" not in c.metadata.get("tags", [])]
    assert not shown, f"{path.name}: cells that state a claim show their code (tag them remove-input): {shown}"


# --------------------------------------------------------------------------
# 8. chapters as sections: short cells, formatted code (rule 2 of the docstring)
# --------------------------------------------------------------------------
MAX_STATEMENTS = 3
MAX_LINE = 100


def cell_problems(source: str) -> list[str]:
    """Why a code cell is not one to three simple statements (an empty list when it is)."""
    tree = ast.parse(source)
    problems = []
    if len(tree.body) > MAX_STATEMENTS:
        problems.append(f"{len(tree.body)} statements (at most {MAX_STATEMENTS})")
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.While, ast.If, ast.With, ast.Try, ast.FunctionDef, ast.ClassDef)):
            problems.append(f"a {type(node).__name__.lower()} block (line {node.lineno}): move it into the chapter module")
        elif isinstance(node, (ast.ListComp, ast.DictComp, ast.SetComp, ast.GeneratorExp, ast.Lambda)):
            problems.append(f"a {type(node).__name__} (line {node.lineno}): move it into the chapter module")
    return problems


def test_cell_rule():
    assert cell_problems("s = chapter.f(a, b)\nglue(**s.numbers)\ns.table") == []
    assert cell_problems("claim(\n    s.numbers['a'] > 0,\n    'A sentence.',\n)") == []
    assert cell_problems("a = 1\nb = 2\nc = 3\nd = 4") == ["4 statements (at most 3)"]
    assert cell_problems("for k in x:\n    f(k)") and cell_problems("t = {k: 1 for k in x}")


@chapter_params()
def test_cells_are_one_to_three_statements(path):
    cells = [c for c in _cells(path, "code") if "parameters" not in c.metadata.get("tags", [])]
    bad = [f"{_where(c)}: {'; '.join(problems)}" for c in cells if (problems := cell_problems(_code(c)))]
    assert not bad, f"{path.name} has cells that compute (put it in sparsenb/chapters/{path.stem}.py):\n" + "\n".join(bad)


def _ruff() -> str:
    import shutil
    import sys

    exe = Path(sys.executable).parent / "ruff"
    found = str(exe) if exe.exists() else shutil.which("ruff")
    if not found:
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    return found


def _unformatted(code: str) -> str:
    """ruff format's diff for ``code`` (empty when it is formatted as the project's settings say)."""
    import subprocess

    done = subprocess.run([_ruff(), "format", "--diff", "--stdin-filename", "cell.py", "-"], input=code, text=True,
                          capture_output=True, cwd=PROJECT_ROOT)
    return done.stdout if done.returncode else ""


@chapter_params()
def test_code_cells_are_formatted(path):
    bad = []
    for cell in _cells(path, "code"):
        if "parameters" in cell.metadata.get("tags", []):
            continue  # one setting per line with its comment (sparsenb-book format leaves it alone)
        code = cell.source.rstrip("\n") + "\n"
        if (diff := _unformatted(code)) or any(len(line) > MAX_LINE for line in code.splitlines()):
            bad.append(f"{_where(cell)}:\n{diff or f'a line over {MAX_LINE} characters'}")
    assert not bad, f"{path.name}: code cells not formatted with ruff format (line length {MAX_LINE}):\n" + "\n".join(bad)


def test_chapter_modules_are_formatted():
    import subprocess

    done = subprocess.run([_ruff(), "format", "--check", "sparsenb/chapters"], capture_output=True, text=True,
                          cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


@chapter_params()
def test_every_page_has_its_chapter_module(path):
    """A page's module is sparsenb/chapters/<stem>.py; a summary page of the build may be sparsenb/book/<stem>.py
    instead (the scorecard reads the build's records, which only the book's tooling may)."""
    floors = ("chapters", "book") if path.stem in SUMMARY_PAGES else ("chapters",)
    modules = [f for f in floors if (PROJECT_ROOT / "sparsenb" / f / f"{path.stem}.py").is_file()]
    assert modules, f"{path.name} has no module sparsenb/chapters/{path.stem}.py"
    imported = {n.module for c in _cells(path, "code") for n in ast.walk(_parse(c)) if isinstance(n, ast.ImportFrom)}
    names = {f"{n.module}.{a.name}" for c in _cells(path, "code") for n in ast.walk(_parse(c))
             if isinstance(n, ast.ImportFrom) for a in n.names}
    assert any(f"sparsenb.{f}.{path.stem}" in names | imported for f in modules), f"{path.name} does not import its module"
