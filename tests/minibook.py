"""Small books for the build tests: a home page and MyST chapters, each with a ``parameters`` cell.

Not a test module: ``test_book`` and ``test_scorecard`` import it (pytest puts ``tests/`` on the path).
"""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from sparsenb import book as bk
from sparsenb.cache import PROJECT_ROOT

HEADER = textwrap.dedent(
    """\
    ---
    kernelspec:
      display_name: Python 3
      language: python
      name: python3
    jupytext:
      text_representation:
        extension: .md
        format_name: myst
    ---

    # {title}

    ```{{code-cell}} ipython3
    :tags: [parameters]

    profile = "laptop"
    ```

    """
)


def code_cell(source: str) -> str:
    """A MyST code cell holding ``source``."""
    return f"```{{code-cell}} ipython3\n{source}\n```\n"


def write_book(root: Path, chapters: dict[str, str], page_body: str = "# Home\n") -> bk.Book:
    """A book in ``root``: the project's ``_config.yml``, a home page and ``chapters`` (``{stem: body}``, in order).

    Each chapter gets the MyST header and a ``parameters`` cell before its body, and an empty table in every profile.
    """
    (root / "book").mkdir(parents=True)
    (root / "_config.yml").write_text((PROJECT_ROOT / "_config.yml").read_text())
    shutil.copy(PROJECT_ROOT / "book" / "references.bib", root / "book")  # the project's config names it
    toc = "".join(f"  - file: book/{stem}\n" for stem in chapters)
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: book/home\nchapters:\n{toc}")
    (root / "book" / "home.md").write_text(page_body)
    for stem, body in chapters.items():
        (root / "book" / f"{stem}.md").write_text(HEADER.format(title=stem.capitalize()) + body)
    (root / "book" / "profiles.toml").write_text(
        "".join(f'[{p}]\ndescription = "{p}"\n' + "".join(f"[{p}.{stem}]\n" for stem in chapters) for p in bk.PROFILES)
    )
    return bk.Book(root)


def grid_chapter(training: str = "steps=8") -> str:
    """A chapter body that trains a small CNN (``TrainConfig(lr=0.05, batch_size=32, <training>)``) and runs one PGD cell on it."""
    return code_cell(
        "import torch\n"
        "from sparsenb import data, models\n"
        "from sparsenb.book import page\n"
        "from sparsenb.lab.grid import Attack, Grid, Victim, run\n"
        "from sparsenb.frontend import SparsifyingFrontEnd\n"
        "from sparsenb.lab.store import trained\n"
        "from sparsenb.training import TrainConfig\n"
        "device = page.setup()\n"
        "x, y = data.load_mnist('test')\n"
        f"cnn = trained(models.CNNConfig(), x[:256], y[:256], TrainConfig(lr=0.05, batch_size=32, {training}))\n"
        "out = run(Grid({'fe': Victim(cnn, SparsifyingFrontEnd(0.035, 'coif1'))}, {'PGD': Attack('pgd', step=0.1, steps=3)}, eps=[0.2]),\n"
        "          x[-30:], y[-30:], batch_size=7, progress=False)\n"
        "page.glue(acc=out.accuracy('fe', 'PGD', 'bpda')[0])\n"
    )
