"""Adding a chapter takes three files (see sparsenb/chapters/__init__.py): the page, its module, a profile table.

The toy chapter in ``tests/toy_chapter/`` (``toy.md`` and its module ``toy.py``) is added to a copy of the
package and to a small book, with a ``[smoke.toy]`` table that changes one parameter; the book builds, the
page shows what the module computes under the profile's parameters, and the chapter passes the rules every
chapter of the book passes.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

import sparsenb
from sparsenb import book as bk
from sparsenb import cache
from sparsenb.cache import PROJECT_ROOT

from test_chapters import cell_problems, _unformatted  # noqa: E402

TOY = Path(__file__).resolve().parent / "toy_chapter"


@pytest.fixture
def toy_book(tmp_path, monkeypatch):
    """A copy of the package with the toy chapter's module, and a book of one page: ``(book, package)``."""
    package = tmp_path / "pkg" / "sparsenb"
    shutil.copytree(Path(sparsenb.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(TOY / "toy.py", package / "chapters" / "toy.py")
    monkeypatch.setenv("PYTHONPATH", str(package.parent))  # the kernel imports the copy
    monkeypatch.setattr(cache, "__file__", str(package / "cache.py"))  # the keys read the copy
    root = tmp_path / "book"
    (root / "book").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "_config.yml", root / "_config.yml")
    shutil.copy(PROJECT_ROOT / "book" / "references.bib", root / "book")
    shutil.copy(TOY / "toy.md", root / "book" / "toy.md")
    (root / "book" / "home.md").write_text("# Home\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/home\nchapters:\n  - file: book/toy\n")
    (root / "book" / "profiles.toml").write_text(
        '[smoke]\ndescription = "CI"\n\n[smoke.toy]\nn_images = 12\n\n'
        '[laptop]\ndescription = "default"\n\n[full]\ndescription = "paper"\n'
    )
    return bk.Book(root), package


def test_a_new_chapter_builds_from_its_three_files(toy_book, tmp_path, mnist_root):
    book, package = toy_book
    assert bk.chapter_parameters("smoke", "toy", book) == {"profile": "smoke", "n_images": 12, "rhos": [0.02, 0.035]}
    assert "chapters.toy" in cache.imported_modules(*bk.execute.chapter_modules(book.chapter("toy")))
    index = bk.build("smoke", data=mnist_root, out=tmp_path / "out", progress=False, book=book)
    html = (index.parent / "book" / "toy.html").read_text()
    assert "More coefficients keep more energy." in html  # the claim held and shows as a sentence
    nb = nbformat.read(tmp_path / "out" / "book" / "toy.ipynb", as_version=4)
    glued = {o["metadata"]["scrapbook"]["name"]: o["data"] for c in nb.cells if c.cell_type == "code"
             for o in c.get("outputs", []) if "scrapbook" in o.get("metadata", {})}
    assert glued["n_images"]["application/papermill.record/text/plain"] == "12"  # the smoke override
    code = "from sparsenb.chapters import toy; print(repr(toy.kept(12, [0.02, 0.035]).numbers['best']))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)  # as the kernel
    assert done.returncode == 0, done.stderr
    assert float(glued["best"]["application/papermill.record/text/plain"]) == pytest.approx(float(done.stdout))


def test_the_toy_chapter_follows_the_books_rules(toy_book):
    book, package = toy_book
    nb = jupytext.read(book.chapter("toy"))
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", []):
            assert cell_problems(cell.source) == [], cell.source
            assert _unformatted(cell.source.rstrip("\n") + "\n") == "", cell.source
    floors = {m.split(".")[0] for m in cache.imported_modules("chapters.toy")}
    assert not floors & {"book"}, floors  # a chapter module never imports the book's tooling
