"""Executing one chapter: papermill runs its MyST notebook headlessly, with the profile's parameters, into the staging folder.

:func:`execute_chapter` skips a chapter whose execution key is unchanged
since its last successful execution (:func:`execution_key`: its source, its
parameters, the data folder, the paper's numbers, and the code of the
``sparsenb`` modules its cells import, by the one rule of
:func:`sparsenb.cache.code_of`, so a docstring edit re-executes nothing).

What the terminal shows: while a chapter runs, what its cells write to
stdout/stderr (the progress bars of training and attack grids), indented
under the cell that writes it (``cell 9/31, line 171``), and every cell that
takes longer than ``SLOW_CELL`` seconds. The kernels talk to papermill over
local IPC sockets (on POSIX), so no "unencrypted TCP" warning. A failing
cell raises :class:`ChapterError`, which names the chapter, the cell's line
in its source and carries the cell's traceback.

After a successful run, :func:`export_figures` offers every glued figure
for download under its anchor's name.
"""
from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
from pathlib import Path

from ..cache import atomic_write_json, code_fingerprint
from ..data import DATA_ENV
from ..lab.bundle import CARDS_ENV
from ..lab.store import RESULTS_ENV, USED_ENV
from ..lab.paper import FILENAME, reference_dir
from .layout import CHAPTER_ENV, KEY_ENV, RECORDS_ENV, SUMMARY_PAGES, find_root, record_path, stamp_path

__all__ = ["ChapterError", "execute_chapter", "execution_key", "chapter_modules", "export_figures", "CELL_TIMEOUT", "SLOW_CELL"]

CELL_TIMEOUT = 4 * 3600  # seconds; the full profile runs long cells on a GPU
SLOW_CELL = 10.0  # seconds; a cell that runs longer is reported with its time


# --------------------------------------------------------------------------
# the execution key
# --------------------------------------------------------------------------
def chapter_modules(source: Path) -> tuple[str, ...]:
    """The ``sparsenb`` modules a chapter's code cells import (relative names, as :func:`sparsenb.cache.code_fingerprint` takes)."""
    import jupytext

    from ..cache import _resolve

    found = set()
    for cell in jupytext.read(source).cells:
        if cell.cell_type != "code":
            continue
        code = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in cell.source.splitlines())
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name.removeprefix("sparsenb.") for a in node.names if a.name.startswith("sparsenb."))
                found.update("__init__" for a in node.names if a.name == "sparsenb")
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                if node.module == "sparsenb" or node.module.startswith("sparsenb."):
                    source_module = node.module.removeprefix("sparsenb").removeprefix(".")
                    found.update(m for m in (_resolve(source_module, a.name) for a in node.names) if m)
    return tuple(sorted(found))


def _summarised_fingerprint(out_dir: Path) -> str:
    """A hash of what a summary page reads: the other chapters' records and stamps in ``out_dir`` (summary pages' own
    left out, so that one summary page's execution does not make the others run again)."""
    h = hashlib.sha256()
    for folder in (out_dir / ".records", out_dir / ".executed"):
        for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            if p.stem not in SUMMARY_PAGES:
                h.update(f"{folder.name}/{p.name}".encode())
                h.update(p.read_bytes())
    return h.hexdigest()


def execution_key(source: Path, params: dict, data: Path, out_dir: Path | None = None) -> str:
    """What a chapter's execution depends on.

    Its source, parameters, data folder and the paper's numbers; the code of
    the ``sparsenb`` modules its cells import and of this module, which
    writes the executed notebook (by the one rule of
    :func:`sparsenb.cache.code_fingerprint`: syntax trees of what they
    transitively import, docstrings and comments excluded); a summary page
    also the book's table of contents and the other chapters' records and
    stamps.
    """
    h = hashlib.sha256()
    h.update(source.read_bytes())
    h.update(json.dumps(params, sort_keys=True).encode())
    h.update(str(data).encode())
    h.update(code_fingerprint(*chapter_modules(source), "book.execute").encode())
    numbers = reference_dir() / FILENAME
    h.update(numbers.read_bytes() if numbers.is_file() else b"")
    bundle = os.environ.get(RESULTS_ENV, "").strip()
    if bundle:  # pages built from a results bundle are other pages
        manifest = Path(bundle) / "MANIFEST.json"
        h.update(str(Path(bundle).resolve()).encode() + (manifest.read_bytes() if manifest.is_file() else b""))
    if source.stem in SUMMARY_PAGES and out_dir is not None:
        toc = find_root(source.parent) / "_toc.yml"
        h.update(toc.read_bytes() if toc.is_file() else b"")
        h.update(_summarised_fingerprint(out_dir).encode())
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
    stamp = stamp_path(out_dir, source.stem)
    key = execution_key(source, params, data, out_dir)
    if not force and target.is_file() and stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
        return target, None

    partial = out_dir / f".{source.stem}.partial.ipynb"
    failed = out_dir / f"{source.stem}.failed.ipynb"
    failed.unlink(missing_ok=True)
    nb = jupytext.read(source)
    n_cells = len(nb.cells) + 1  # papermill adds the injected-parameters cell
    report = _CellOutput(source, n_cells, show_output=progress)

    # until this execution succeeds, the chapter has no record and no stamp: a failed run leaves neither
    record = record_path(out_dir, source.stem)
    record.unlink(missing_ok=True)
    stamp.unlink(missing_ok=True)
    used = out_dir / ".used" / f"{source.stem}.txt"  # the store entries this execution reads or writes (for a bundle)
    used.unlink(missing_ok=True)
    cards = out_dir.parent / "cards" / source.stem  # this execution writes the chapter's cards anew
    shutil.rmtree(cards, ignore_errors=True)
    env = {DATA_ENV: str(data), RECORDS_ENV: str(record.parent), KEY_ENV: key, CHAPTER_ENV: source.stem,
           USED_ENV: str(used), CARDS_ENV: str(cards)}
    t0 = time.perf_counter()
    try:
        with environment(env), tempfile.TemporaryDirectory(prefix="sparsenb-kernel-") as sockets:  # the kernel inherits env
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
def environment(env: dict):
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
    SVG exists when the chapter glued through :func:`sparsenb.book.page.figure`.
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

