"""A small Sphinx extension for the book (``_config.yml``: ``sphinx.extra_extensions``).

Jupyter Book 1.x registers sphinx-thebe's configuration script twice, so
every page declared ``const THEBE_JS_URL`` twice and the browser reported a
``SyntaxError`` on each page (the browser test in ``tests/test_browser.py``
found it). :func:`unique_scripts` drops repeated script entries from every page.
"""
from __future__ import annotations

__all__ = ["unique_scripts", "setup"]


def unique_scripts(app, pagename, templatename, context, doctree) -> None:
    """Keep the first of identical ``script_files`` entries of a page (same file or inline body, same attributes)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # an inline script is registered with filename None or "" depending on who added it
        key = (getattr(script, "filename", script) or "", tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    """Register :func:`unique_scripts` for every HTML page."""
    app.connect("html-page-context", unique_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
