"""Execute the book's chapters with papermill and build it with Jupyter Book.

The chapters are MyST Markdown notebooks in ``book/``. A build

1. reads the profile (``smoke``, ``laptop`` or ``full``) from
   ``book/profiles.toml``: one table of papermill parameters per chapter;
2. executes each chapter headlessly with those parameters into a staging
   folder (``_build/<profile>/`` by default) as ``.ipynb``, skipping chapters
   whose source, parameters, package code and the paper's numbers have not
   changed since their last successful execution; the summary pages
   (:data:`SUMMARY_PAGES`: the scorecard, which reads what the other
   chapters recorded, see :mod:`sparsenb.scorecard`) run after all others;
3. copies the plain pages and ``_config.yml``/``_toc.yml`` beside them and
   runs ``jupyter-book build`` with execution off, warnings as errors,
   nitpicky references and a full rebuild (``-W -n --keep-going --all``).

Any failing cell or Sphinx warning makes the command exit non-zero. The HTML
lands in ``<staging>/_build/html``; the last line printed is the path of its
``index.html``.

What the terminal shows: one line per chapter (``[2/5] theory_linear``) and
its time; while a chapter runs, what its cells write to stdout/stderr (the
progress bars of training and attack grids), indented under the cell that
writes it (``cell 9/31, line 171``), and every cell that takes longer than
``SLOW_CELL`` seconds; then Sphinx's warnings only (``jupyter-book -q``). The
kernels talk to papermill over local IPC sockets (on POSIX), so no
"unencrypted TCP" warning. A failing cell raises :class:`ChapterError`,
which names the chapter, the cell's line in its source and carries the
cell's traceback; the command line prints it once.

Command line (``sparsenb-book`` or ``python -m sparsenb.book``)::

    sparsenb-book build   [--profile laptop] [--data DIR] [--out DIR] [--force]
    sparsenb-book execute CHAPTER... [--profile laptop] [--data DIR] [--out DIR] [--force]
    sparsenb-book precompute [CHAPTER...] [--profile laptop] [--data DIR]
    sparsenb-book profiles

``precompute`` runs the chapters' heavy work (trainings, attack grids,
sweeps) into the cache without writing pages, in one process or in many
under ``torchrun`` (see :func:`precompute`); a later ``build`` finds every
result stored and executes only the narrative.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import platform
import re
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
    "SUMMARY_PAGES",
    "Book",
    "ChapterError",
    "load_profiles",
    "chapter_parameters",
    "execute_chapter",
    "build",
    "precompute",
    "provenance",
    "api_reference",
    "export_figures",
    "main",
]

PROFILES = ("smoke", "laptop", "full")
DEFAULT_PROFILE = "laptop"
#: Pages that summarise the others (they read the records the other chapters wrote in the same build, see
#: :mod:`sparsenb.scorecard`): executed after every other chapter, and again whenever a record changes.
SUMMARY_PAGES = ("scorecard",)
CELL_TIMEOUT = 4 * 3600  # seconds; the full profile runs long cells on a GPU
SLOW_CELL = 10.0  # seconds; a cell that runs longer is reported with its time


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


def _records_fingerprint(out_dir: Path) -> str:
    """A hash of the chapters' records in ``out_dir/.records`` (what a summary page reads)."""
    h = hashlib.sha256()
    folder = out_dir / ".records"
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _execution_key(source: Path, params: dict, data: Path, out_dir: Path | None = None) -> str:
    """What a chapter's execution depends on: its source, parameters, data folder, the package's code and the
    paper's numbers; a summary page also on the book's table of contents and the other chapters' records."""
    from .reference import FILENAME, reference_dir

    h = hashlib.sha256()
    h.update(source.read_bytes())
    h.update(json.dumps(params, sort_keys=True).encode())
    h.update(str(data).encode())
    h.update(_package_fingerprint().encode())
    numbers = reference_dir() / FILENAME
    h.update(numbers.read_bytes() if numbers.is_file() else b"")
    if source.stem in SUMMARY_PAGES and out_dir is not None:
        toc = find_root(source.parent) / "_toc.yml"
        h.update(toc.read_bytes() if toc.is_file() else b"")
        h.update(_records_fingerprint(out_dir).encode())
    return h.hexdigest()


class ChapterError(RuntimeError):
    """A cell of a chapter failed.

    ``str()`` names the chapter, the failing cell (its line in the chapter's
    source and its first line of code), the error and the cell's traceback
    (once, without terminal colours), and the notebook kept for inspection.
    """

    def __init__(self, chapter: str, where: str, ename: str, evalue: str, traceback: str, notebook: Path | None):
        self.chapter, self.where, self.ename, self.evalue = chapter, where, ename, evalue
        self.traceback, self.notebook = traceback, notebook
        kept = f"\nthe executed part is kept in {notebook}" if notebook else ""
        super().__init__(f"chapter {chapter} failed in {where}:\n{traceback.rstrip()}{kept}")


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _source_line(source: Path, code: str) -> int | None:
    """The line of ``source`` where the code cell whose source is ``code`` starts (1-based), if found."""
    text = source.read_text()
    at = text.find(code.strip()) if code.strip() else -1
    return None if at < 0 else text.count("\n", 0, at) + 1


def _cell_label(source: Path, index: int, n_cells: int, code: str) -> str:
    """``cell 9/31, line 171 of book/ch.md`` for the ``index``-th cell of the executed notebook."""
    line = _source_line(source, code) if source.suffix == ".md" else None
    name = f"{source.parent.name}/{source.name}"
    where = f"line {line} of {name}" if line else name
    return f"cell {index + 1}/{n_cells}, {where}"


class _CellOutput:
    """The terminal side of a chapter's execution (papermill's ``stdout_file``/``stderr_file``).

    Writes what the cells stream, indented under a header naming the cell
    (shown before its first output), and reports cells slower than
    ``SLOW_CELL`` seconds. Carriage returns (progress bars redrawing their
    line) are kept, so bars update in place on a terminal.
    """

    INDENT = "      "

    def __init__(self, source: Path, n_cells: int, stream=None, show_output: bool = True):
        self.source, self.n_cells = source, n_cells
        self.stream = stream or sys.stderr
        self.show_output = show_output
        self.index, self.code, self.t0 = None, "", 0.0
        self.header_shown, self.line_start, self.dirty = False, True, False

    # papermill's client calls these two around every cell (see _SparsenbClient)
    def cell_start(self, index: int, code: str) -> None:
        self.index, self.code, self.t0 = index, code, time.perf_counter()
        self.header_shown = False

    def cell_end(self) -> None:
        seconds = time.perf_counter() - self.t0
        self._end_line()
        if seconds >= SLOW_CELL:
            self._write(f"    {self._label()} took {seconds:.0f} s\n")

    def _label(self) -> str:
        return _cell_label(self.source, self.index or 0, self.n_cells, self.code)

    def _end_line(self) -> None:
        if self.dirty:
            self._write("\n")
            self.dirty = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    # the file interface papermill writes the cells' streams to
    def write(self, text: str) -> int:
        if not self.show_output or not text:
            return len(text)
        if not self.header_shown:
            first = next((ln.strip() for ln in self.code.splitlines() if ln.strip()), "")
            self._write(f"    {self._label()}: {first[:70]}\n")
            self.header_shown, self.line_start = True, True
        for piece in re.split(r"(\r\n|\r|\n)", text):
            if piece in ("\r\n", "\n"):
                self._write("\n")
                self.line_start, self.dirty = True, False
            elif piece == "\r":
                self._write("\r")
                self.line_start, self.dirty = True, True  # a bar's line: end it before the next header
            elif piece:
                self._write((self.INDENT if self.line_start else "") + piece)
                self.line_start, self.dirty = False, True
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


_ENGINE_REGISTERED: list[str] = []


def _engine_name() -> str:
    """Register (once) and name the papermill engine that reports every cell to a ``_CellOutput``."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    name = "sparsenb"
    if _ENGINE_REGISTERED:
        return name

    class _SparsenbClient(PapermillNotebookClient):
        def execute_cell(self, cell, cell_index, *args, **kwargs):
            report = self.stderr_file if isinstance(self.stderr_file, _CellOutput) else None
            if report and cell.cell_type == "code":
                report.cell_start(cell_index, cell.source)
            try:
                return super().execute_cell(cell, cell_index, *args, **kwargs)
            finally:
                if report and cell.cell_type == "code":
                    report.cell_end()

    class _SparsenbEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None, stderr_file=None,
                                     start_timeout=60, execution_timeout=None, **kwargs):
            kwargs.pop("input_path", None)
            kwargs.pop("timeout", None)
            kwargs.pop("startup_timeout", None)
            client = _SparsenbClient(
                nb_man, timeout=execution_timeout, startup_timeout=start_timeout, kernel_name=kernel_name,
                log=logging.getLogger("papermill"), log_output=log_output, stdout_file=stdout_file,
                stderr_file=stderr_file, **kwargs,
            )
            return client.execute()

    papermill_engines.register(name, _SparsenbEngine)
    _ENGINE_REGISTERED.append(name)
    return name


def _kernel_config(folder: Path):
    """Kernel connections over IPC sockets in ``folder`` (POSIX), else papermill's default (TCP)."""
    from traitlets.config import Config

    if os.name != "posix":
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": str(folder / "kernel")}})


def execute_chapter(source: Path, out_dir: Path, params: dict, data: Path, force: bool = False, progress: bool = True):
    """Execute one MyST chapter with papermill into ``out_dir/<stem>.ipynb``.

    Returns ``(path, seconds)``, with ``seconds = None`` when the chapter was
    already executed with the same source, parameters, data folder and
    package code. The notebook is written to a temporary name and renamed on
    success; on failure the partial notebook is kept as
    ``<stem>.failed.ipynb`` for inspection and :class:`ChapterError` is
    raised. With ``progress``, the cells' output streams to stderr as they
    run (see ``_CellOutput``).
    """
    import tempfile

    import jupytext
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{source.stem}.ipynb"
    stamp = out_dir / ".executed" / f"{source.stem}.json"
    key = _execution_key(source, params, data, out_dir)
    if not force and target.is_file() and stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
        return target, None

    partial = out_dir / f".{source.stem}.partial.ipynb"
    failed = out_dir / f"{source.stem}.failed.ipynb"
    failed.unlink(missing_ok=True)
    nb = jupytext.read(source)
    n_cells = len(nb.cells) + 1  # papermill adds the injected-parameters cell
    report = _CellOutput(source, n_cells, show_output=progress)
    from . import scorecard

    # until this execution succeeds, the chapter has no record and no stamp: a failed run leaves neither
    record = out_dir / ".records" / f"{source.stem}.json"
    record.unlink(missing_ok=True)
    stamp.unlink(missing_ok=True)
    env = {DATA_ENV: str(data), scorecard.RECORDS_ENV: str(out_dir / ".records"), scorecard.KEY_ENV: key,
           scorecard.CHAPTER_ENV: source.stem}
    t0 = time.perf_counter()
    try:
        with _environment(env), tempfile.TemporaryDirectory(prefix="sparsenb-kernel-") as sockets:  # the kernel inherits env
            papermill.execute_notebook(
                nb,
                str(partial),
                parameters=params,
                cwd=str(source.parent),
                kernel_name="python3",
                engine_name=_engine_name(),
                progress_bar=False,
                stdout_file=report,
                stderr_file=report,
                config=_kernel_config(Path(sockets)),
                execution_timeout=CELL_TIMEOUT,
            )
    except papermill.PapermillExecutionError as err:
        record.unlink(missing_ok=True)  # what the failed run recorded is not a result
        if partial.exists():
            os.replace(partial, failed)
        label = _cell_label(source, err.cell_index, n_cells, err.source)
        first = next((ln.strip() for ln in err.source.splitlines() if ln.strip()), "")
        traceback = _ANSI.sub("", "\n".join(err.traceback))
        raise ChapterError(
            source.stem, f"{label} ({first[:70]})", err.ename, err.evalue, traceback, failed if failed.exists() else None
        ) from None
    except BaseException:
        record.unlink(missing_ok=True)
        if partial.exists():
            os.replace(partial, failed)
        raise
    finally:
        report.flush()
    seconds = time.perf_counter() - t0
    _show_injected_parameters_only(partial)
    export_figures(partial, source.stem)
    os.replace(partial, target)
    atomic_write_json(stamp, {"key": key, "seconds": round(seconds, 2), "parameters": params})
    return target, seconds


@contextlib.contextmanager
def _environment(env: dict):
    """Set the environment variables ``env`` while inside, then restore what was there (or remove them)."""
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _show_injected_parameters_only(path: Path) -> None:
    """Remove the chapter's default ``parameters`` cell; the injected one, which shows what ran, is collapsed
    (``hide-input``: the page opens with its narrative, and a reader can still open the cell)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    if any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells):
        for cell in nb.cells:
            tags = cell.metadata.setdefault("tags", [])
            if "parameters" in tags and "remove-cell" not in tags:
                tags.append("remove-cell")
            if "injected-parameters" in tags and "hide-input" not in tags:
                tags.append("hide-input")
    nbformat.write(nb, path)


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


_GLUE_PREFIX = "application/papermill.record/"
_GLUE_FIGURE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{glue:figure\}\s+(?P<key>\S+)\s*$")
FIGURE_FORMATS = ("png", "svg")


def export_figures(path: Path, chapter: str | None = None) -> dict[str, list[Path]]:
    """Offer every figure that a page shows for download, under its anchor's name.

    For each ``{glue:figure}`` in the executed notebook ``path``, writes the
    glued image as ``figures/<chapter>/<anchor>.png`` and ``.svg`` beside
    the notebook (``chapter`` defaults to the notebook's stem; the anchor is the directive's ``:name:``, else its key)
    and appends ``{download}`` links to them to the figure's caption, so a
    teacher can take the figure from the page under a stable file name. The
    SVG exists when the chapter glued through :func:`sparsenb.page.figure`.
    Returns ``{anchor: [files]}``. Rewrites the notebook in place.
    """
    import base64

    import nbformat

    nb = nbformat.read(path, as_version=4)
    images: dict[str, dict[str, bytes]] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            record, data = out.get("metadata", {}).get("scrapbook", {}), out.get("data", {})
            prefix = record.get("mime_prefix", "")
            if record.get("name") and prefix + "image/png" in data:
                found = {"png": base64.b64decode(data[prefix + "image/png"])}
                if prefix + "image/svg+xml" in data:
                    found["svg"] = data[prefix + "image/svg+xml"].encode()
                images[record["name"]] = found
    chapter = chapter or path.stem
    folder = path.parent / "figures" / chapter
    if folder.exists():
        shutil.rmtree(folder)
    written: dict[str, list[Path]] = {}
    for cell in nb.cells:
        if cell.cell_type != "markdown" or "{glue:figure}" not in cell.source:
            continue
        lines, out, i = cell.source.splitlines(), [], 0
        while i < len(lines):
            match = _GLUE_FIGURE.match(lines[i])
            end = next((k for k in range(i + 1, len(lines)) if match and lines[k].strip() == match["fence"]), None)
            if end is None or match["key"] not in images:
                out.append(lines[i])
                i += 1
                continue
            block = lines[i:end]
            anchor = next((ln.split(":name:", 1)[1].strip() for ln in block if ln.startswith(":name:")), match["key"])
            links = []
            for ext in FIGURE_FORMATS:
                if ext in images[match["key"]]:
                    target = folder / f"{anchor}.{ext}"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(images[match["key"]][ext])
                    written.setdefault(anchor, []).append(target)
                    links.append(f"{{download}}`{ext.upper()} <figures/{chapter}/{anchor}.{ext}>`")
            if not any(ln.startswith("Download this figure:") for ln in block):  # once, if exported again
                block += ["", "Download this figure: " + " · ".join(links)]
            out += [*block, lines[end]]
            i = end + 1
        cell.source = "\n".join(out)
    nbformat.write(nb, path)
    return written


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


def _execution_order(chapters: list[Path]) -> list[Path]:
    """``chapters`` in their order, the summary pages (:data:`SUMMARY_PAGES`) moved last: they read the others."""
    return sorted(chapters, key=lambda c: c.stem in SUMMARY_PAGES)  # stable: the rest keep their order


def _say(text: str) -> None:
    """A progress line of the build, on stderr (stdout ends with the path of ``index.html``)."""
    print(text, file=sys.stderr, flush=True)


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
    as they run; see :func:`execute_chapter`), then builds the HTML with
    Sphinx's status output off (its warnings still show and fail the build).
    Raises :class:`ChapterError` for a failing cell and
    ``subprocess.CalledProcessError`` for a failing Sphinx build.
    """
    book = book or Book()
    staging = Path(out) if out else book.root / "_build" / profile
    staging = staging.resolve()
    data = data_root(data)
    chapters = _execution_order(book.chapters())
    _say(f"sparsenb-book: profile {profile}, {len(chapters)} chapters, data {data}, staging {staging}")
    for i, source in enumerate(chapters, 1):
        if progress:
            _say(f"[{i}/{len(chapters)}] {source.stem} ...")
        params = chapter_parameters(profile, source.stem, book)
        _, seconds = execute_chapter(source, staging / "book", params, data, force=force, progress=progress)
        _say(f"[{i}/{len(chapters)}] {source.stem}: " + ("up to date" if seconds is None else f"executed in {seconds:.1f} s"))
    _stage_static(book, staging)
    html = staging / "_build" / "html"
    if html.parent.exists():
        shutil.rmtree(html.parent)  # a full rebuild: no stale page can hide a warning
    cmd = [*_jupyter_book(), "build", str(staging), "-W", "-n", "--keep-going", "--all", "-q"]
    _say("HTML: jupyter-book (warnings are errors) ...")
    t0 = time.perf_counter()
    # -q: Sphinx prints its warnings (stderr) only; Jupyter Book's banners (stdout) only matter when it fails
    done = subprocess.run(cmd, cwd=staging, capture_output=True, text=True)
    warnings = done.stderr if sys.stderr.isatty() else _ANSI.sub("", done.stderr)
    sys.stderr.write(warnings)
    if done.returncode:
        sys.stderr.write(done.stdout)
        raise subprocess.CalledProcessError(done.returncode, cmd, done.stdout, done.stderr)
    _say(f"HTML: built in {time.perf_counter() - t0:.1f} s")
    return html / "index.html"


# --------------------------------------------------------------------------
# the heavy work ahead of the book, in one process or many (torchrun)
# --------------------------------------------------------------------------
def precompute(profile: str = DEFAULT_PROFILE, data=None, chapters=None, progress: bool = True, book: Book | None = None) -> dict:
    """Run the chapters' code under ``profile`` to fill the cache (checkpoints, attack results); write no page.

    Meant for ``torchrun --nproc_per_node N -m sparsenb.book precompute
    --profile full``: every process joins the process group
    (:func:`sparsenb.distributed.init`: NCCL on GPUs, gloo on CPUs) and
    runs each chapter's code cells in turn, in this process, in an IPython
    shell with the profile's parameters, as papermill would inject them. The
    attack grids then divide their batches between the processes and the
    trainings run data-parallel (:mod:`sparsenb.distributed`); process 0
    writes the cache. The summary pages (:data:`SUMMARY_PAGES`) have no heavy
    work and are skipped; what chapters record for the scorecard goes to a
    temporary folder. Only process 0 prints. Returns ``{chapter: seconds}``.

    A later :func:`build` with the same profile, data and package code finds
    every training and attack cell stored and executes only the narrative.
    With one process (no ``torchrun``) it does the same work in one process.
    """
    import tempfile

    import jupytext

    from . import distributed, scorecard

    book = book or Book()
    data = data_root(data)
    sources = [s for s in _execution_order(book.chapters() if chapters is None else [book.chapter(c) for c in chapters])
               if s.stem not in SUMMARY_PAGES]
    params = {s.stem: chapter_parameters(profile, s.stem, book) for s in sources}  # every bad name fails before any work
    os.environ.setdefault("MPLBACKEND", "Agg")
    distributed.init()
    talk = progress and distributed.is_writer()
    times = {}
    with open(os.devnull, "w") as quiet, tempfile.TemporaryDirectory(prefix="sparsenb-records-") as records:
        for i, source in enumerate(sources, 1):
            if talk:
                _say(f"[{i}/{len(sources)}] {source.stem} (precompute, {distributed.world_size()} process(es)) ...")
            env = {DATA_ENV: str(data), scorecard.RECORDS_ENV: records, scorecard.CHAPTER_ENV: source.stem}
            t0 = time.perf_counter()
            with _environment(env), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(sys.stderr if talk else quiet):
                _run_code_cells(jupytext.read(source), params[source.stem], source)
            times[source.stem] = time.perf_counter() - t0
            if talk:
                _say(f"[{i}/{len(sources)}] {source.stem}: precomputed in {times[source.stem]:.1f} s")
    distributed.barrier()
    return times


def _run_code_cells(nb, params: dict, source: Path) -> None:
    """Run a notebook's code cells in a fresh IPython namespace, ``params`` injected after the ``parameters`` cell."""
    import traceback

    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    injected = "\n".join(f"{k} = {v!r}" for k, v in params.items())
    cells = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    codes = [c.source for c in cells]
    codes.insert(tagged[0] + 1 if tagged else 0, injected)
    cwd = os.getcwd()
    os.chdir(source.parent)
    try:
        for index, code in enumerate(codes):
            result = shell.run_cell(code, store_history=False, silent=True)
            error = result.error_before_exec or result.error_in_exec
            if error is not None:
                label = _cell_label(source, index, len(codes), code)
                first = next((ln.strip() for ln in code.splitlines() if ln.strip()), "")
                trace = "".join(traceback.format_exception(error))
                raise ChapterError(source.stem, f"{label} ({first[:70]})", type(error).__name__, str(error), trace, None) from error
    finally:
        os.chdir(cwd)


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
    pre = sub.add_parser("precompute", parents=[common], help="run the chapters' heavy work into the cache (no pages); "
                         "under torchrun --nproc_per_node N, in N processes")
    pre.add_argument("chapters", nargs="*", help="chapter names (default: all but the summary pages)")
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
        if args.command == "precompute":
            times = precompute(args.profile, args.data, args.chapters or None, not args.no_progress, book)
            from . import distributed

            if distributed.is_writer():
                print(f"precomputed {len(times)} chapters in {sum(times.values()):.1f} s "
                      f"with {distributed.world_size()} process(es); now: sparsenb-book build --profile {args.profile}")
        elif args.command == "build":
            index = build(args.profile, args.data, args.out, args.force, not args.no_progress, book)
            print(index)
        else:
            staging = Path(args.out) if args.out else book.root / "_build" / args.profile
            for source in _execution_order([book.chapter(name) for name in args.chapters]):
                params = chapter_parameters(args.profile, source.stem, book)
                path, seconds = execute_chapter(
                    source, staging.resolve() / "book", params, data_root(args.data), args.force, not args.no_progress
                )
                print(f"{path} ({'up to date' if seconds is None else f'{seconds:.1f} s'})")
    except ChapterError as err:  # the chapter, the cell and its traceback, once
        print(f"sparsenb-book: {err}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as err:
        print(f"sparsenb-book: the HTML build failed (exit {err.returncode}); see the Sphinx output above", file=sys.stderr)
        return 1
    except Exception as err:  # papermill errors, missing data, bad profile
        print(f"sparsenb-book: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
