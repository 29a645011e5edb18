"""One module per page of the book: ``sparsenb/chapters/<stem>.py`` computes what ``book/<stem>.md`` shows.

A chapter module has one function per section of its page. Each returns a
:class:`~sparsenb.chapters.section.Section`: the section's tables and figure
as attributes and ``numbers``, the few values its prose argues from, keyed by
their glue names. Sections return numbers, tables and figures, never
sentences: the prose stays in the page, and a conclusion that rests on the
numbers goes through :func:`sparsenb.book.page.claim`. Heavy work goes
through :mod:`sparsenb.lab`, so it is keyed, stored and resumable.

**Adding a chapter** takes three files:

1. ``book/<stem>.md``, a MyST notebook: a ``parameters`` cell (its values are
   the ``laptop`` profile), a hidden cell importing
   ``from sparsenb.chapters import <stem> as chapter`` and what it needs of
   :mod:`sparsenb.book.page`, then prose and cells of one to three
   statements (``s = chapter.section(...)``, ``glue(**s.numbers)``,
   ``s.table``), and the page's line in ``_toc.yml``;
2. ``sparsenb/chapters/<stem>.py``, the sections;
3. in ``book/profiles.toml``, a ``[smoke.<stem>]`` table with what the CI
   profile changes (and ``[full.<stem>]`` for the paper's scale), if anything.

``sparsenb-book format <stem>`` formats the page's code; ``tests/test_chapters.py``
checks the rules and ``tests/test_new_chapter.py`` adds a toy chapter this way.
Shared pieces: :mod:`~sparsenb.chapters.section` and :mod:`~sparsenb.chapters.figures`.
"""
