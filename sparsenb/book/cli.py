"""The command line: ``sparsenb-book`` (or ``python -m sparsenb.book``)::

    sparsenb-book build   [--profile laptop] [--data DIR] [--out DIR] [--force]
    sparsenb-book execute CHAPTER... [--profile laptop] [--data DIR] [--out DIR] [--force]
    sparsenb-book precompute [CHAPTER...] [--profile laptop] [--data DIR] [--minutes M] [--export DIR]
    sparsenb-book export DIR
    sparsenb-book import FILE...
    sparsenb-book bundle DIR [--profile laptop] [--out DIR]
    sparsenb-book verify DIR
    sparsenb-book profiles
    sparsenb-book format [CHAPTER...]

``precompute`` runs the chapters' heavy work (trainings, attack grids,
sweeps) into the cache without writing pages, in one process or in many
under ``torchrun``; a later ``build`` finds every result stored and executes
only the narrative. With ``--minutes`` it starts no attack batch or
training epoch that would not end in time and stops there (a later run
resumes); with ``--export`` it packs what it stored into at most 8 files of
under 16 MiB, which ``import`` merges into another machine's cache
(``export`` packs the whole store the same way).

``bundle`` writes the last build's results bundle (:mod:`sparsenb.lab.bundle`:
a card per audited network, its per-image outcomes and adversarial
examples, and the stored work the pages rest on); ``verify`` checks a
bundle's examples; ``--results BUNDLE`` builds (or executes) the pages from
a bundle computed at another commit where this cache lacks the results,
and every page says so at the top.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from ..data import DATA_ENV, data_root
from .build import build
from .execute import ChapterError, execute_chapter
from .layout import DEFAULT_PROFILE, PROFILES, Book, chapter_parameters, execution_order, load_profiles
from .precompute import precompute

__all__ = ["main"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="sparsenb-book", description="Execute and build the sparsenb book.")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES, help="parameter profile (default: %(default)s)")
    common.add_argument("--data", default=None, help=f"data folder (default: ${DATA_ENV}, else .cache/data)")
    common.add_argument("--out", default=None, help="staging folder (default: _build/<profile>)")
    common.add_argument("--force", action="store_true", help="re-execute chapters even if up to date")
    common.add_argument("--no-progress", action="store_true", help="no progress bars")
    common.add_argument("--results", default=None, metavar="BUNDLE",
                        help="read stored results from this results bundle (sparsenb-book bundle) where the cache lacks them")
    sub.add_parser("build", parents=[common], help="execute all chapters and build the HTML")
    ex = sub.add_parser("execute", parents=[common], help="execute some chapters only (no HTML)")
    ex.add_argument("chapters", nargs="+", help="chapter names (file stems), e.g. frontend")
    pre = sub.add_parser("precompute", parents=[common], help="run the chapters' heavy work into the cache (no pages); "
                         "under torchrun --nproc_per_node N, in N processes")
    pre.add_argument("chapters", nargs="*", help="chapter names (default: all but the summary pages)")
    pre.add_argument("--minutes", type=float, default=None,
                     help="deadline: start no attack batch or training epoch that would end later than this many minutes")
    pre.add_argument("--export", default=None, metavar="DIR",
                     help="pack what this run stored into at most 8 files of under 16 MiB in DIR (for 'import' elsewhere)")
    exp = sub.add_parser("export", help="pack the whole result store into at most 8 files of under 16 MiB")
    exp.add_argument("folder", help="where the packed files go")
    imp = sub.add_parser("import", help="merge packed store files (from 'export' or 'precompute --export') into the cache")
    imp.add_argument("files", nargs="+", help="the packed files (sparsenb-store-<i>of<n>.tar.gz)")
    bun = sub.add_parser("bundle", help="write the last build's results bundle: cards, per-image outcomes, examples, stored work")
    bun.add_argument("folder", help="the bundle's folder (must not exist)")
    bun.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES, help="the build's profile (default: %(default)s)")
    bun.add_argument("--out", default=None, help="the build's staging folder (default: _build/<profile>)")
    ver = sub.add_parser("verify", help="check a results bundle's adversarial examples (ball, box, misclassified)")
    ver.add_argument("folder", help="the bundle's folder")
    fmt = sub.add_parser("format", help="ruff format the code cells of chapters (default: all)")
    fmt.add_argument("chapters", nargs="*", help="chapter names (file stems)")
    sub.add_parser("profiles", help="list the profiles: each chapter's parameters (laptop) and what smoke and full change")
    args = p.parse_args(argv)

    book = Book()
    if args.command == "format":
        from .format import format_chapter

        for source in [book.chapter(c) for c in args.chapters] or book.chapters():
            if format_chapter(source, book.root):
                print(f"formatted {source.relative_to(book.root)}")
        return 0
    if args.command in ("export", "import"):
        from .. import checks
        from ..lab.transfer import pack, unpack

        try:
            if args.command == "export":
                packed = pack(args.folder)
                print(f"packed the store into {len(packed)} file(s): " + ", ".join(str(p) for p in packed))
            else:
                counts = unpack(args.files)
                print("merged: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
        except checks.ArgumentError as err:
            print(f"sparsenb-book: {err}", file=sys.stderr)
            return 1
        return 0
    if args.command in ("bundle", "verify"):
        from .. import checks
        from ..lab import bundle

        try:
            if args.command == "bundle":
                staging = Path(args.out) if args.out else book.root / "_build" / args.profile
                info = bundle.write_bundle(args.folder, bundle.used_logs_of(staging), staging / "cards", args.profile)
                print(f"wrote {args.folder}: {info['cards']} cards, {info['entries']} stored entries "
                      f"(commit {str(info['commit'])[:12]}, profile {args.profile})")
            else:
                checked = bundle.verify(args.folder)
                print(f"{sum(checked.values())} adversarial examples of {len(checked)} cards check out "
                      "(in the eps-ball and [0, 1], misclassified)")
        except (checks.ArgumentError, bundle.CardCheckError) as err:
            print(f"sparsenb-book: {err}", file=sys.stderr)
            return 1
        return 0
    if getattr(args, "results", None):
        err = _use_results(args.results)
        if err:
            print(f"sparsenb-book: {err}", file=sys.stderr)
            return 1
    if args.command == "profiles":
        profiles = load_profiles(book)
        for name in PROFILES:
            what = "each chapter's parameters cell" if name == DEFAULT_PROFILE else f"what it changes from {DEFAULT_PROFILE}"
            print(f"[{name}] {profiles[name].get('description', '')} ({what})")
            for source in book.chapters():
                params = chapter_parameters(name, source.stem, book)
                if name != DEFAULT_PROFILE:
                    params = {k: v for k, v in params.items() if k in profiles[name].get(source.stem, {})}
                params.pop("profile", None)
                print(f"  {source.stem}: {params}")
        return 0
    try:
        if args.command == "precompute":
            done = precompute(args.profile, args.data, args.chapters or None, not args.no_progress, book,
                              args.minutes, args.export)
            from .. import distributed

            if distributed.is_writer():
                times = done.times
                print(f"precomputed {len(times)} chapters in {sum(times.values()):.1f} s "
                      f"with {distributed.world_size()} process(es); "
                      + (f"stopped at the deadline in {done.stopped}; run it again to go on"
                         if done.stopped else f"now: sparsenb-book build --profile {args.profile}"))
                if done.packed:
                    print("packed: " + ", ".join(str(p) for p in done.packed))
                if done.stopped:
                    return 3
        elif args.command == "build":
            index = build(args.profile, args.data, args.out, args.force, not args.no_progress, book)
            print(index)
        else:
            staging = Path(args.out) if args.out else book.root / "_build" / args.profile
            for source in execution_order([book.chapter(name) for name in args.chapters]):
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


def _use_results(folder: str) -> str | None:
    """Read stored results from the bundle ``folder`` (and take its device and precision as this run's key); an error or None."""
    import json
    import os

    from .. import distributed
    from ..lab.store import RESULTS_ENV

    manifest = Path(folder) / "MANIFEST.json"
    if not manifest.is_file() or not (Path(folder) / "index.json").is_file():
        return f"--results: {folder} is not a results bundle (no MANIFEST.json and index.json)"
    os.environ[RESULTS_ENV] = str(Path(folder).resolve())
    compute = json.loads(manifest.read_text()).get("compute")
    if compute and not os.environ.get(distributed.COMPUTE_ENV, "").strip():
        os.environ[distributed.COMPUTE_ENV] = compute  # its entries are keyed by where they were computed
    return None


if __name__ == "__main__":
    sys.exit(main())

