"""Where caches live, and writing files atomically.

The cache folder is ``$SPARSENB_CACHE`` if set, else ``.cache/`` at the top of
a source checkout (git-ignored), else ``~/.cache/sparsenb``.
"""
from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path

__all__ = ["CACHE_ENV", "cache_dir", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "code_fingerprint"]

CACHE_ENV = "SPARSENB_CACHE"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """The cache folder: ``$SPARSENB_CACHE``, else ``.cache/`` in a source checkout, else ``~/.cache/sparsenb``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT / ".cache"
    return Path.home() / ".cache" / "sparsenb"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and a rename.

    A reader never sees a half-written file, and an interrupted run leaves the
    old file (or none) in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def code_fingerprint(*modules: str) -> str:
    """A short hash of what the code of these ``sparsenb`` modules *does*.

    Each module (a name such as ``"attacks"`` or ``"theory.linear"``) is
    parsed and its syntax tree hashed without docstrings, comments or line
    positions: a change to the code changes the hash, an edit of a comment or
    docstring does not. Checkpoints and stored results carry it in their
    keys, so new code recomputes and never reuses stale numbers.
    """
    import hashlib

    if not modules:
        raise ValueError("modules: name at least one sparsenb module")
    h = hashlib.sha256()
    for module in sorted(set(modules)):
        for path in _module_paths(module):
            stat = path.stat()
            h.update(_normalised_source(path, stat.st_mtime_ns, stat.st_size).encode())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=256)
def _normalised_source(path: Path, mtime_ns: int, size: int) -> str:
    """The module's syntax tree without docstrings, comments and positions, as text."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _module_paths(module: str) -> list[Path]:
    """The source files of a module: one file, or every file of a subpackage."""
    if not isinstance(module, str) or not module or module.startswith("."):
        raise ValueError(f"modules: expected names of sparsenb modules such as 'attacks', got {module!r}")
    base = Path(__file__).parent.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return [base.with_suffix(".py")]
    if (base / "__init__.py").is_file():
        return sorted(base.rglob("*.py"))
    raise ValueError(f"modules: sparsenb has no module {module!r}")
