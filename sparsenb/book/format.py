"""``ruff format`` for the code cells of the book's MyST chapters (``sparsenb-book format``).

A chapter's code is formatted like the package's (line length 100, the
project's ``[tool.ruff]`` settings): each ``{code-cell}`` body of
``book/<stem>.md`` is passed through ``ruff format`` and written back in
place; the cell's options (``:tags:``) and the Markdown around it are left as
they are. The ``parameters`` cell is left alone: it is a list of settings,
one per line with its comment, which ``ruff`` would wrap.
``tests/test_chapters.py`` checks that every other cell is formatted.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["format_chapter", "CELL"]

#: A code cell of a MyST notebook: the fence line, its options, then the code up to the closing fence.
CELL = re.compile(r"^(?P<open>```\{code-cell\}[^\n]*\n)(?P<options>(?::[^\n]*\n)*)(?P<blank>\n?)(?P<code>.*?)^```[ \t]*$", re.S | re.M)


def _ruff() -> str:
    exe = Path(sys.executable).parent / "ruff"
    found = str(exe) if exe.exists() else shutil.which("ruff")
    if not found:
        raise FileNotFoundError("ruff is not installed (pip install -e '.[test]')")
    return found


def format_code(code: str, root: Path) -> str:
    """``code`` as ``ruff format`` writes it with the settings of the project at ``root``."""
    done = subprocess.run([_ruff(), "format", "--stdin-filename", "cell.py", "-"], input=code, text=True,
                          capture_output=True, cwd=root, check=False)
    if done.returncode:
        raise ValueError(f"ruff cannot format this cell:\n{code}\n{done.stderr}")
    return done.stdout


def format_chapter(path: str | Path, root: str | Path | None = None) -> bool:
    """Format every code cell of the chapter at ``path`` in place; return whether anything changed."""
    path = Path(path)
    root = Path(root) if root else path.resolve().parent.parent
    text = path.read_text()

    def one(m: re.Match) -> str:
        code = m["code"]
        if "parameters" in m["options"]:  # the settings, one per line with its comment: not wrapped
            return m.group(0)
        formatted = format_code(code, root) if code.strip() else code
        return f"{m['open']}{m['options']}{m['blank']}{formatted}```"

    new = CELL.sub(one, text)
    if new != text:
        path.write_text(new)
    return new != text
