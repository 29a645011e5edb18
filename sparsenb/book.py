"""Execute the book's chapters with papermill and build it with Jupyter Book.

The chapters are MyST Markdown notebooks in ``book/``. A build

1. reads the profile (``smoke``, ``laptop`` or ``full``) from
   ``book/profiles.toml``: one table of papermill parameters per chapter;
2. executes each chapter headlessly with those parameters into a staging
   folder (``_build/<profile>/`` by default) as ``.ipynb``, skipping chapters
   whose source, parameters and package code have not changed since their
   last successful execution;
3. copies the plain pages and ``_config.yml``/``_toc.yml`` beside them and
   runs ``jupyter-book build`` with execution off, warnings as errors,
   nitpicky references and a full rebuild (``-W -n --keep-going --all``).

Any failing cell or Sphinx warning makes the command exit non-zero. The HTML
lands in ``<staging>/_build/html``; the last line printed is the path of its
``index.html``.

Command line (``sparsenb-book`` or ``python -m sparsenb.book``)::

    sparsenb-book build   [--profile laptop] [--data DIR] [--out DIR] [--force]
    sparsenb-book execute CHAPTER... [--profile laptop] [--data DIR] [--out DIR] [--force]
    sparsenb-book profiles
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .cache import PROJECT_ROOT, atomic_write_json
from .data import DATA_ENV, data_root

__all__ = [
    "PROFILES",
    "Book",
    "load_profiles",
    "chapter_parameters",
    "execute_chapter",
    "build",
    "provenance",
    "main",
]

PROFILES = ("smoke", "laptop", "full")
DEFAULT_PROFILE = "laptop"
CELL_TIMEOUT = 4 * 3600  # seconds; the full profile runs long cells on a GPU


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


# --------------------------------------------------------------------------
# profiles
# --------------------------------------------------------------------------
def load_profiles(book: Book | None = None) -> dict:
    """The profile file as a dict ``{profile: {"description": str, chapter: {param: value}}}``."""
    book = book or Book()
    with open(book.profiles_file, "rb") as f:
        profiles = tomllib.load(f)
    missing = [p for p in PROFILES if p not in profiles]
    if missing:
        raise ValueError(f"{book.profiles_file} lacks the profile(s) {missing}")
    return profiles


def chapter_parameters(profile: str, chapter: str, book: Book | None = None) -> dict:
    """The papermill parameters of ``chapter`` (its file stem) under ``profile``."""
    profiles = load_profiles(book)
    if profile not in profiles:
        raise ValueError(f"profile must be one of {sorted(profiles)}, got {profile!r}")
    params = dict(profiles[profile].get(chapter, {}))
    params["profile"] = profile
    return params


# --------------------------------------------------------------------------
# execution
# --------------------------------------------------------------------------
def _package_fingerprint() -> str:
    h = hashlib.sha256()
    for p in sorted((PROJECT_ROOT / "sparsenb").rglob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _execution_key(source: Path, params: dict, data: Path) -> str:
    h = hashlib.sha256()
    h.update(source.read_bytes())
    h.update(json.dumps(params, sort_keys=True).encode())
    h.update(str(data).encode())
    h.update(_package_fingerprint().encode())
    return h.hexdigest()


def execute_chapter(source: Path, out_dir: Path, params: dict, data: Path, force: bool = False, progress: bool = True):
    """Execute one MyST chapter with papermill into ``out_dir/<stem>.ipynb``.

    Returns ``(path, seconds)``, with ``seconds = None`` when the chapter was
    already executed with the same source, parameters, data folder and
    package code. The notebook is written to a temporary name and renamed on
    success; on failure the partial notebook is kept as
    ``<stem>.failed.ipynb`` for inspection and the papermill error is raised.
    """
    import jupytext
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{source.stem}.ipynb"
    stamp = out_dir / ".executed" / f"{source.stem}.json"
    key = _execution_key(source, params, data)
    if not force and target.is_file() and stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
        return target, None

    partial = out_dir / f".{source.stem}.partial.ipynb"
    failed = out_dir / f"{source.stem}.failed.ipynb"
    failed.unlink(missing_ok=True)
    env_before = os.environ.get(DATA_ENV)
    os.environ[DATA_ENV] = str(data)  # the kernel inherits it
    t0 = time.perf_counter()
    try:
        papermill.execute_notebook(
            jupytext.read(source),
            str(partial),
            parameters=params,
            cwd=str(source.parent),
            kernel_name="python3",
            progress_bar={"desc": source.stem, "leave": False} if progress else False,
            execution_timeout=CELL_TIMEOUT,
        )
    except BaseException:
        if partial.exists():
            os.replace(partial, failed)
        raise
    finally:
        if env_before is None:
            os.environ.pop(DATA_ENV, None)
        else:
            os.environ[DATA_ENV] = env_before
    seconds = time.perf_counter() - t0
    _show_injected_parameters_only(partial)
    os.replace(partial, target)
    atomic_write_json(stamp, {"key": key, "seconds": round(seconds, 2), "parameters": params})
    return target, seconds


def _show_injected_parameters_only(path: Path) -> None:
    """Hide the chapter's default ``parameters`` cell; the injected one shows what ran."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    if any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells):
        for cell in nb.cells:
            tags = cell.metadata.setdefault("tags", [])
            if "parameters" in tags and "remove-cell" not in tags:
                tags.append("remove-cell")
    nbformat.write(nb, path)


def _stage_static(book: Book, staging: Path) -> None:
    """Copy the YAML files, the plain pages and any assets into the staging folder."""
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

    Raises ``papermill.PapermillExecutionError`` for a failing cell and
    ``subprocess.CalledProcessError`` for a failing Sphinx build.
    """
    from tqdm.auto import tqdm

    book = book or Book()
    staging = Path(out) if out else book.root / "_build" / profile
    staging = staging.resolve()
    data = data_root(data)
    chapters = book.chapters()
    executed = {}
    bar = tqdm(chapters, desc=f"chapters ({profile})", unit="chapter", disable=not progress)
    for source in bar:
        bar.set_postfix_str(source.stem)
        params = chapter_parameters(profile, source.stem, book)
        _, seconds = execute_chapter(source, staging / "book", params, data, force=force, progress=progress)
        executed[source.stem] = seconds
    for stem, seconds in executed.items():
        print(f"  {stem:24s} " + ("up to date" if seconds is None else f"executed in {seconds:.1f} s"))
    _stage_static(book, staging)
    html = staging / "_build" / "html"
    if html.parent.exists():
        shutil.rmtree(html.parent)  # a full rebuild: no stale page can hide a warning
    cmd = [*_jupyter_book(), "build", str(staging), "-W", "-n", "--keep-going", "--all"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=staging)
    print(f"  HTML built in {time.perf_counter() - t0:.1f} s")
    return html / "index.html"


# --------------------------------------------------------------------------
# shown at the top of every chapter
# --------------------------------------------------------------------------
def provenance(profile: str, **details):
    """A short Markdown note of how the page was produced (profile, versions, device)."""
    import torch
    from IPython.display import Markdown

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    items = {
        "profile": f"`{profile}`",
        "executed": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        **{k: f"`{v}`" for k, v in details.items()},
    }
    return Markdown(
        "```{admonition} How this page was produced\n:class: note\n"
        + "; ".join(f"**{k}**: {v}" for k, v in items.items())
        + ".\n```"
    )


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="sparsenb-book", description="Execute and build the sparsenb book.")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES, help="parameter profile (default: %(default)s)")
    common.add_argument("--data", default=None, help=f"data folder (default: ${DATA_ENV}, else .cache/data)")
    common.add_argument("--out", default=None, help="staging folder (default: _build/<profile>)")
    common.add_argument("--force", action="store_true", help="re-execute chapters even if up to date")
    common.add_argument("--no-progress", action="store_true", help="no progress bars")
    sub.add_parser("build", parents=[common], help="execute all chapters and build the HTML")
    ex = sub.add_parser("execute", parents=[common], help="execute some chapters only (no HTML)")
    ex.add_argument("chapters", nargs="+", help="chapter names (file stems), e.g. frontend")
    sub.add_parser("profiles", help="list the profiles and their parameters")
    args = p.parse_args(argv)

    book = Book()
    if args.command == "profiles":
        for name, prof in load_profiles(book).items():
            print(f"[{name}] {prof.get('description', '')}")
            for chapter, params in prof.items():
                if isinstance(params, dict):
                    print(f"  {chapter}: {params}")
        return 0
    try:
        if args.command == "build":
            index = build(args.profile, args.data, args.out, args.force, not args.no_progress, book)
            print(index)
        else:
            staging = Path(args.out) if args.out else book.root / "_build" / args.profile
            for name in args.chapters:
                source = book.chapter(name)
                params = chapter_parameters(args.profile, source.stem, book)
                path, seconds = execute_chapter(
                    source, staging.resolve() / "book", params, data_root(args.data), args.force, not args.no_progress
                )
                print(f"{path} ({'up to date' if seconds is None else f'{seconds:.1f} s'})")
    except subprocess.CalledProcessError as err:
        print(f"sparsenb-book: the HTML build failed (exit {err.returncode}); see the Sphinx output above", file=sys.stderr)
        return 1
    except Exception as err:  # papermill errors, missing data, bad profile
        print(f"sparsenb-book: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
