"""The built book as a reader's browser shows it: every page of the smoke build opened in headless Chromium.

A page fails on a console error, a formula left as raw TeX, an image that
does not load, or a broken internal link (see :mod:`tests/browser.py`). The
first test is the control: a small hand-made site with each fault, which
the check must flag, beside a clean page it must pass. One screenshot per
page of ``_toc.yml`` is kept under ``_build/screenshots/smoke/`` (a build
artefact, not in the repository).

The tests skip only when no Chromium is installed (``.ci/run`` installs
Debian's ``chromium`` when it is missing; ``$SPARSENB_CHROMIUM`` names
another binary).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sparsenb import book as bk
from browser import check_site, find_chromium
from sparsenb.cache import PROJECT_ROOT

pytestmark = [
    pytest.mark.book,
    pytest.mark.skipif(
        find_chromium() is None,
        reason="no Chromium on this machine: apt-get install chromium (as .ci/run does), or set $SPARSENB_CHROMIUM",
    ),
]

SCREENSHOTS = PROJECT_ROOT / "_build" / "screenshots" / "smoke"

_PAGE = """<!DOCTYPE html><html><head><title>{title}</title>{head}</head><body>{body}</body></html>"""


def _mini_site(root: Path) -> Path:
    """A site with a clean page and one page per fault; MathJax is the copy bundled in a real build, if any."""
    import matplotlib.pyplot as plt
    import numpy as np

    root.mkdir(parents=True)
    plt.imsave(root / "a.png", np.eye(8))
    (root / "good.html").write_text(
        _PAGE.format(title="good", head="", body='<p id="top">Text <img src="a.png"> <a href="bad_link.html#top">x</a></p>')
    )
    (root / "redirect.html").write_text(_PAGE.format(title="redirect", head='<meta http-equiv="Refresh" content="0; url=good.html" />', body=""))
    (root / "console.html").write_text(_PAGE.format(title="console", head="<script>console.error('boom')</script>", body="<p>x</p>"))
    (root / "tex.html").write_text(_PAGE.format(title="tex", head="", body=r'<p>An $$x^2$$ and <span class="math">\(y\)</span></p>'))
    (root / "image.html").write_text(_PAGE.format(title="image", head="", body='<img src="missing.png">'))
    (root / "bad_link.html").write_text(
        _PAGE.format(title="link", head="", body='<p id="top"><a href="nowhere.html">a</a> <a href="good.html#nope">b</a></p>')
    )
    return root


def test_browser_check_flags_each_kind_of_fault(tmp_path):
    site = _mini_site(tmp_path / "site")
    reports = {r.page: r for r in check_site(site, screenshots=tmp_path / "shots", screenshot_pages=["good.html"])}
    assert set(reports) == {"good.html", "redirect.html", "console.html", "tex.html", "image.html", "bad_link.html"}
    assert reports["good.html"].ok, reports["good.html"].problems()
    assert reports["redirect.html"].ok and reports["redirect.html"].title == "good"  # checked where it leads
    assert (tmp_path / "shots" / "good.png").stat().st_size > 1000  # a real PNG of the page
    assert any("boom" in e for e in reports["console.html"].console_errors)
    assert len(reports["tex.html"].raw_tex) == 2  # the untypeset math element and the $$ in the text
    assert reports["image.html"].broken_images and reports["image.html"].console_errors  # the 404 shows in the console too
    links = reports["bad_link.html"].broken_links
    assert len(links) == 2 and any("no such file" in b for b in links) and any("no anchor #nope" in b for b in links)
    assert all(set(r.problems()) == {k} for r, k in [(reports["console.html"], "console_errors"),
                                                     (reports["tex.html"], "raw_tex"),
                                                     (reports["bad_link.html"], "broken_links")])


def test_every_page_of_the_smoke_build_renders(smoke_build):
    out, index = smoke_build
    html = index.parent
    toc_pages = [str(p.relative_to(PROJECT_ROOT).with_suffix(".html")) for p in bk.Book(PROJECT_ROOT).pages()]
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    reports = check_site(html, screenshots=SCREENSHOTS, screenshot_pages=toc_pages)
    checked = {r.page for r in reports}
    assert set(toc_pages) <= checked and "index.html" in checked
    bad = {r.page: r.problems() for r in reports if not r.ok}
    assert not bad, f"pages with problems in the browser: {bad}"
    # the bundled MathJax ran: the front end chapter's formulas are typeset, offline
    assert next(r for r in reports if r.page == "book/frontend.html").typeset > 10
    for page in toc_pages:
        assert (SCREENSHOTS / f"{Path(page).stem}.png").stat().st_size > 10_000, page
