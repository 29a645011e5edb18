"""Executing and building the book: the chapters run with papermill, the HTML is built with Jupyter Book 1.x.

=========================================  ====================================================================
:mod:`~sparsenb.book.layout`               the build's protocol: the book's sources, profiles, staging folder
:mod:`~sparsenb.book.execute`              one chapter executed headlessly, keyed by what it depends on
:mod:`~sparsenb.book.build`                every chapter executed, then the HTML (warnings are errors)
:mod:`~sparsenb.book.precompute`           the chapters' heavy work ahead of the book (one process or torchrun)
:mod:`~sparsenb.book.cli`                  the ``sparsenb-book`` command
:mod:`~sparsenb.book.page`                 what a page calls: glue, figures, the paper's numbers, provenance
:mod:`~sparsenb.book.scorecard`            every number of the paper beside ours, from what the chapters recorded
:mod:`~sparsenb.book.sphinxext`            a small Sphinx extension the build loads
=========================================  ====================================================================

The book's tooling sits beside :mod:`sparsenb.chapters` on top of
:mod:`sparsenb.lab`: the two never import each other (a page in ``book/``
calls both, and the build reaches a chapter by its file name only).
"""
from __future__ import annotations

from .build import API_MARKER, api_reference, build
from .cli import main
from .execute import ChapterError, execute_chapter, export_figures
from .layout import PROFILES, SUMMARY_PAGES, Book, chapter_parameters, load_profiles
from .precompute import precompute

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
    "api_reference",
    "API_MARKER",
    "export_figures",
    "main",
]
