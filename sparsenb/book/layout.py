"""The build's protocol: where the book's sources are, its profiles, and what a build leaves where.

Everything the other parts of the build agree on lives here, so that none of
them imports another for a name:

* :class:`Book`: ``_toc.yml``, ``_config.yml`` and ``book/``; its pages and
  its executable chapters (MyST notebooks);
* the profiles (:data:`PROFILES`): ``book/profiles.toml`` holds only what
  ``smoke`` and ``full`` change; a chapter's ``parameters`` cell is its
  ``laptop`` profile (:func:`chapter_parameters`);
* the staging folder ``_build/<profile>/``: executed notebooks in ``book/``,
  beside them ``.executed/<chapter>.json`` (the stamp of a chapter's last
  successful execution: its key, seconds and parameters) and
  ``.records/<chapter>.json`` (what a chapter recorded for the scorecard);
* the environment a chapter's kernel is given (:data:`RECORDS_ENV`,
  :data:`KEY_ENV`, :data:`CHAPTER_ENV`, and :data:`sparsenb.data.DATA_ENV`).
"""
from __future__ import annotations

import ast
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import PROJECT_ROOT

__all__ = [
    "PROFILES",
    "DEFAULT_PROFILE",
    "SUMMARY_PAGES",
    "RECORDS_ENV",
    "KEY_ENV",
    "CHAPTER_ENV",
    "Book",
    "find_root",
    "is_notebook",
    "load_profiles",
    "chapter_parameters",
    "default_parameters",
    "stamp_path",
    "record_path",
    "execution_times",
    "execution_order",
]

#: The profiles, from the smallest to the paper's scale.
PROFILES = ("smoke", "laptop", "full")
#: The profile of a chapter's own parameters cell, and of a build without ``--profile``.
DEFAULT_PROFILE = "laptop"
#: Pages that summarise the others: the scorecard reads the records the other chapters wrote in the same
#: build (:mod:`sparsenb.book.scorecard`), the performance page their execution times
#: (:func:`execution_times`). Executed after every other chapter, and again whenever a record or stamp changes.
SUMMARY_PAGES = ("scorecard", "performance")
#: The environment variable naming the folder of this build's records (set by the build for each chapter).
RECORDS_ENV = "SPARSENB_RECORDS"
#: The environment variable holding the running chapter's execution key.
KEY_ENV = "SPARSENB_EXECUTION_KEY"
#: The environment variable holding the running chapter's file stem.
CHAPTER_ENV = "SPARSENB_CHAPTER"


@dataclass
class Book:
    """Where the book's sources are: ``_toc.yml``, ``_config.yml``, ``book/``."""

    root: Path = field(default_factory=lambda: find_root())

    @property
    def source(self) -> Path:
        return self.root / "book"

    @property
    def profiles_file(self) -> Path:
        return self.source / "profiles.toml"

    def pages(self) -> list[Path]:
        """All pages named in ``_toc.yml``, in order, as paths to their sources."""
        import yaml

        toc = yaml.safe_load((self.root / "_toc.yml").read_text())
        names = [toc["root"]]

        def walk(entries):
            for e in entries or []:
                if "file" in e:
                    names.append(e["file"])
                walk(e.get("sections"))
                walk(e.get("chapters"))

        walk(toc.get("chapters"))
        for part in toc.get("parts", []):
            walk(part.get("chapters"))
        return [self._resolve(n) for n in names]

    def _resolve(self, name: str) -> Path:
        for suffix in (".md", ".ipynb"):
            p = self.root / f"{name}{suffix}"
            if p.is_file():
                return p
        raise FileNotFoundError(f"_toc.yml names {name!r} but neither {name}.md nor {name}.ipynb exists")

    def chapters(self) -> list[Path]:
        """The executable pages: MyST notebooks (a ``kernelspec`` in their front matter)."""
        return [p for p in self.pages() if is_notebook(p)]

    def chapter(self, name: str) -> Path:
        for p in self.chapters():
            if name in (p.stem, str(p.relative_to(self.root)), str(p)):
                return p
        raise ValueError(f"no chapter named {name!r}; chapters: {[p.stem for p in self.chapters()]}")


def find_root(start: Path | None = None) -> Path:
    """The project folder: the nearest parent of ``start`` (default: cwd) with ``_toc.yml``."""
    start = Path(start or Path.cwd()).resolve()
    for d in (start, *start.parents):
        if (d / "_toc.yml").is_file() and (d / "book").is_dir():
            return d
    if (PROJECT_ROOT / "_toc.yml").is_file():
        return PROJECT_ROOT
    raise FileNotFoundError(f"no _toc.yml with a book/ folder in {start} or its parents")


def is_notebook(path: Path) -> bool:
    if path.suffix == ".ipynb":
        return True
    text = path.read_text()
    if not text.startswith("---"):
        return False
    front = text.split("---", 2)[1]
    return "kernelspec:" in front



def stamp_path(out_dir: Path, chapter: str) -> Path:
    """The stamp of ``chapter``'s last successful execution in the staging folder ``out_dir`` (``<staging>/book``)."""
    return Path(out_dir) / ".executed" / f"{chapter}.json"


def record_path(out_dir: Path, chapter: str) -> Path:
    """What ``chapter`` recorded for the scorecard in the staging folder ``out_dir`` (``<staging>/book``)."""
    return Path(out_dir) / ".records" / f"{chapter}.json"


def execution_times(folder=None, profile: str = DEFAULT_PROFILE):
    """Each chapter's last successful execution in this build's staging folder: seconds and parameters.

    ``folder`` is the staging folder's ``book/`` (default: the parent of
    :data:`RECORDS_ENV` inside a build, else ``_build/<profile>/book``).
    Returns a ``pandas.DataFrame`` indexed by chapter, with the columns
    ``seconds`` and ``profile``, in the order the stamps' files sort.
    """
    import json
    import os

    import pandas as pd

    if folder is None:
        env = os.environ.get(RECORDS_ENV)
        folder = Path(env).parent if env else PROJECT_ROOT / "_build" / profile / "book"
    rows = {}
    for path in sorted((Path(folder) / ".executed").glob("*.json")):
        try:
            stamp = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        rows[path.stem] = {"seconds": float(stamp.get("seconds", float("nan"))),
                           "profile": stamp.get("parameters", {}).get("profile", "")}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["seconds", "profile"])


def execution_order(chapters: list[Path]) -> list[Path]:
    """``chapters`` in their order, the summary pages (:data:`SUMMARY_PAGES`) moved last: they read the others."""
    return sorted(chapters, key=lambda c: c.stem in SUMMARY_PAGES)  # stable: the rest keep their order


def say(text: str) -> None:
    """A progress line of the build, on stderr (stdout ends with the path of ``index.html``)."""
    print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# profiles
# --------------------------------------------------------------------------
def load_profiles(book: Book | None = None) -> dict:
    """The profile file as a dict ``{profile: {"description": str, chapter: {param: value}}}`` (overrides only)."""
    book = book or Book()
    with open(book.profiles_file, "rb") as f:
        profiles = tomllib.load(f)
    missing = [p for p in PROFILES if p not in profiles]
    if missing:
        raise ValueError(f"{book.profiles_file} lacks the profile(s) {missing}")
    unknown = sorted(set(profiles) - set(PROFILES))
    if unknown:
        raise ValueError(f"{book.profiles_file} has unknown profile(s) {unknown}; profiles: {list(PROFILES)}")
    return profiles


def default_parameters(source: Path) -> dict:
    """A chapter's ``parameters`` cell as a dict: its ``laptop`` profile (literal assignments only, ``profile`` included).

    Raises ``ValueError`` naming the chapter when the cell is missing or
    assigns anything but one literal to one name.
    """
    import jupytext

    cells = [c for c in jupytext.read(source).cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{source.name} must have exactly one code cell tagged 'parameters', has {len(cells)}")
    out = {}
    for node in ast.parse(cells[0].source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ValueError(f"{source.name}: the parameters cell may only assign literals to names (line {node.lineno})")
        try:
            out[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            raise ValueError(f"{source.name}: parameter {node.targets[0].id} must be a literal (line {node.lineno})") from None
    return out


def chapter_parameters(profile: str, chapter: str, book: Book | None = None) -> dict:
    """The papermill parameters of ``chapter`` (its file stem) under ``profile``.

    The chapter's own ``parameters`` cell (:func:`default_parameters`, the
    ``laptop`` profile) with the profile's overrides from
    ``book/profiles.toml`` applied, and ``profile`` set. An override that
    names no parameter of the chapter, or changes a parameter's type, raises
    ``ValueError``.
    """
    book = book or Book()
    profiles = load_profiles(book)
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {list(PROFILES)}, got {profile!r}")
    params = default_parameters(book.chapter(chapter))
    overrides = profiles[profile].get(chapter, {})
    for name, value in overrides.items():
        if name not in params or name == "profile":
            raise ValueError(f"{book.profiles_file}: [{profile}.{chapter}] sets {name!r}, which is not a parameter of {chapter}")
        if type(value) is not type(params[name]):
            raise ValueError(f"{book.profiles_file}: [{profile}.{chapter}] {name} = {value!r} has another type than its default "
                             f"{params[name]!r}")
    params.update(overrides)
    params["profile"] = profile
    return params
