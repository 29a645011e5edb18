"""The chapters' heavy work ahead of the book, in one process or many (``torchrun``), into the cache."""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import checks
from ..distributed import DeadlineReached
from ..data import DATA_ENV, data_root
from .execute import ChapterError, _cell_label, environment
from .layout import CHAPTER_ENV, DEFAULT_PROFILE, RECORDS_ENV, SUMMARY_PAGES, Book, chapter_parameters, execution_order, say

__all__ = ["precompute", "Precomputed"]


@dataclass
class Precomputed:
    """What :func:`precompute` did: ``times`` (chapter to seconds, the chapters it finished), ``stopped`` (the
    chapter the deadline stopped, with the unit it did not start; None when every chapter finished) and
    ``packed`` (the files :func:`sparsenb.lab.transfer.pack` wrote, when asked to)."""

    times: dict
    stopped: str | None = None
    packed: list = field(default_factory=list)


def precompute(profile: str = DEFAULT_PROFILE, data=None, chapters=None, progress: bool = True, book: Book | None = None,
               minutes: float | None = None, export=None) -> Precomputed:
    """Run the chapters' code under ``profile`` to fill the cache (checkpoints, attack results); write no page.

    Meant for ``torchrun --nproc_per_node N -m sparsenb.book precompute
    --profile full``: every process joins the process group
    (:func:`sparsenb.distributed.init`: NCCL on GPUs, gloo on CPUs) and
    runs each chapter's code cells in turn, in this process, in an IPython
    shell with the profile's parameters, as papermill would inject them. The
    attack grids then divide their batches between the processes and the
    trainings run data-parallel (:mod:`sparsenb.distributed`); process 0
    writes the cache. The summary pages (:data:`~sparsenb.book.layout.SUMMARY_PAGES`) have no heavy
    work and are skipped; what chapters record for the scorecard goes to a
    temporary folder. Only process 0 prints. Returns ``{chapter: seconds}``.

    A later :func:`~sparsenb.book.build.build` with the same profile, data and package code finds
    every training and attack cell stored and executes only the narrative.
    With one process (no ``torchrun``) it does the same work in one process.

    ``minutes`` sets a deadline (:func:`sparsenb.distributed.before_unit`):
    no attack batch or training epoch starts that would not end within that
    many minutes of the start (each expected to take as long as the one
    before it), and the run stops there with what finished stored; a later
    run resumes. ``export`` (a folder): then pack what this run stored into
    at most 8 files of under 16 MiB there (:func:`sparsenb.lab.transfer.pack`),
    for :func:`sparsenb.lab.transfer.unpack` on another machine.
    """
    import tempfile

    import jupytext

    from .. import distributed

    book = book or Book()
    if minutes is not None:
        minutes = checks.real(minutes, "minutes", 0.0, low_open=True)
    start = time.time()
    data = data_root(data)
    sources = [s for s in execution_order(book.chapters() if chapters is None else [book.chapter(c) for c in chapters])
               if s.stem not in SUMMARY_PAGES]
    params = {s.stem: chapter_parameters(profile, s.stem, book) for s in sources}  # every bad name fails before any work
    os.environ.setdefault("MPLBACKEND", "Agg")
    distributed.init()
    talk = progress and distributed.is_writer()
    times, stopped = {}, None
    with open(os.devnull, "w") as quiet, tempfile.TemporaryDirectory(prefix="sparsenb-records-") as records:
        for i, source in enumerate(sources, 1):
            if talk:
                say(f"[{i}/{len(sources)}] {source.stem} (precompute, {distributed.world_size()} process(es)) ...")
            env = {DATA_ENV: str(data), RECORDS_ENV: records, CHAPTER_ENV: source.stem}
            if minutes is not None:
                env[distributed.DEADLINE_ENV] = repr(start + 60 * minutes)
            t0 = time.perf_counter()
            try:
                with environment(env), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(sys.stderr if talk else quiet):
                    _run_code_cells(jupytext.read(source), params[source.stem], source)
            except distributed.DeadlineReached as reached:
                stopped = f"{source.stem}: {reached}"
                if talk:
                    say(f"[{i}/{len(sources)}] stopped at the deadline in {stopped}")
                break
            times[source.stem] = time.perf_counter() - t0
            if talk:
                say(f"[{i}/{len(sources)}] {source.stem}: precomputed in {times[source.stem]:.1f} s")
    distributed.barrier()
    packed = []
    if export is not None and distributed.is_writer():
        from ..lab.transfer import pack

        packed = pack(export, since=start)
        if talk:
            say(f"packed what this run stored into {len(packed)} file(s) in {export}")
    return Precomputed(times, stopped, packed)


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
            if isinstance(error, DeadlineReached):
                raise error
            if error is not None:
                label = _cell_label(source, index, len(codes), code)
                first = next((ln.strip() for ln in code.splitlines() if ln.strip()), "")
                trace = "".join(traceback.format_exception(error))
                raise ChapterError(source.stem, f"{label} ({first[:70]})", type(error).__name__, str(error), trace, None) from error
    finally:
        os.chdir(cwd)

