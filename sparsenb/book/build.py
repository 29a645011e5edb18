"""Building the book: every chapter executed (:mod:`sparsenb.book.execute`), then the HTML with Jupyter Book.

:func:`build`

1. executes each chapter of ``_toc.yml`` with the profile's parameters into
   the staging folder (``_build/<profile>/`` by default), skipping chapters
   whose execution key is unchanged; the summary pages (the scorecard, which
   reads what the other chapters recorded) run after all others;
2. copies the plain pages and ``_config.yml``/``_toc.yml`` beside them (a
   page holding :data:`API_MARKER` gets the module reference of
   :func:`api_reference`) and runs ``jupyter-book build`` with execution
   off, warnings as errors, nitpicky references and a full rebuild
   (``-W -n --keep-going --all``).

Any failing cell or Sphinx warning makes it fail. The HTML lands in
``<staging>/_build/html``; the last line printed is the path of its
``index.html``.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..data import data_root
from .execute import execute_chapter
from .layout import DEFAULT_PROFILE, Book, chapter_parameters, execution_order, say

__all__ = ["build", "api_reference", "API_MARKER"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


#: The line of a plain page that the module reference replaces.
API_MARKER = "% sparsenb-book: module reference"


def api_reference(package: str = "sparsenb") -> str:
    """MyST for the API page: one section per public module of ``package`` (autodoc of its members, in RST).

    The modules are found by walking the installed package (names with a
    leading underscore are private and left out), so the page lists every
    module without anyone keeping a list. Each section has the target
    ``api-<module path with dashes>``.
    """
    import importlib
    import pkgutil

    root = importlib.import_module(package)
    names = [package] + sorted(
        m.name
        for m in pkgutil.walk_packages(root.__path__, package + ".")
        if not any(part.startswith("_") for part in m.name.split("."))
    )
    sections = []
    for name in names:
        label = "api-" + name.replace(".", "-").replace("_", "-")
        # a package's own section has its docstring only: its members are documented in their modules
        members = "" if hasattr(importlib.import_module(name), "__path__") else "   :members:\n"
        # eval-rst: autodoc's output (the docstrings) is reStructuredText, not MyST
        sections.append(f"({label})=\n### `{name}`\n\n```{{eval-rst}}\n.. automodule:: {name}\n{members}```\n")
    return "\n".join(sections)



def _stage_static(book: Book, staging: Path) -> None:
    """Copy the YAML files, the plain pages and any assets into the staging folder.

    A plain page with the line :data:`API_MARKER` gets the module reference
    of :func:`api_reference` in its place.
    """
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(book.root / name, staging / name)
    chapters = set(book.chapters())
    for src in book.source.rglob("*"):
        if src.is_dir() or src in chapters or src.suffix == ".ipynb" or src.name == "profiles.toml":
            continue
        if any(part.startswith((".", "_")) for part in src.relative_to(book.source).parts):
            continue
        dst = staging / src.relative_to(book.root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
        if src.suffix == ".md" and API_MARKER in (text := src.read_text()).splitlines():
            dst.write_text(text.replace(API_MARKER, api_reference()))



def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    return [str(exe)] if exe.exists() else ["jupyter-book"]



def build(
    profile: str = DEFAULT_PROFILE,
    data=None,
    out=None,
    force: bool = False,
    progress: bool = True,
    book: Book | None = None,
) -> Path:
    """Execute every chapter under ``profile`` and build the HTML; return ``index.html``.

    Prints one line per chapter (and, with ``progress``, the cells' output
    as they run; see :func:`~sparsenb.book.execute.execute_chapter`), then builds the HTML with
    Sphinx's status output off (its warnings still show and fail the build).
    Raises :class:`~sparsenb.book.execute.ChapterError` for a failing cell and
    ``subprocess.CalledProcessError`` for a failing Sphinx build.
    """
    book = book or Book()
    staging = Path(out) if out else book.root / "_build" / profile
    staging = staging.resolve()
    data = data_root(data)
    chapters = execution_order(book.chapters())
    say(f"sparsenb-book: profile {profile}, {len(chapters)} chapters, data {data}, staging {staging}")
    for i, source in enumerate(chapters, 1):
        if progress:
            say(f"[{i}/{len(chapters)}] {source.stem} ...")
        params = chapter_parameters(profile, source.stem, book)
        _, seconds = execute_chapter(source, staging / "book", params, data, force=force, progress=progress)
        say(f"[{i}/{len(chapters)}] {source.stem}: " + ("up to date" if seconds is None else f"executed in {seconds:.1f} s"))
    _stage_static(book, staging)
    html = staging / "_build" / "html"
    if html.parent.exists():
        shutil.rmtree(html.parent)  # a full rebuild: no stale page can hide a warning
    cmd = [*_jupyter_book(), "build", str(staging), "-W", "-n", "--keep-going", "--all", "-q"]
    say("HTML: jupyter-book (warnings are errors) ...")
    t0 = time.perf_counter()
    # -q: Sphinx prints its warnings (stderr) only; Jupyter Book's banners (stdout) only matter when it fails
    done = subprocess.run(cmd, cwd=staging, capture_output=True, text=True)
    warnings = done.stderr if sys.stderr.isatty() else _ANSI.sub("", done.stderr)
    sys.stderr.write(warnings)
    if done.returncode:
        sys.stderr.write(done.stdout)
        raise subprocess.CalledProcessError(done.returncode, cmd, done.stdout, done.stderr)
    say(f"HTML: built in {time.perf_counter() - t0:.1f} s")
    return html / "index.html"

