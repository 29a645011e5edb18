r"""Where caches live, writing files atomically, and the fingerprints that key what is stored.

The cache folder is ``$SPARSENB_CACHE`` if set, else ``.cache/`` at the top of
a source checkout (git-ignored), else ``~/.cache/sparsenb``.

**One rule keys everything the book stores** (attack results, any stored
computation, checkpoints, executed chapters): the code that computed it is
the syntax trees of the ``sparsenb`` modules its function *transitively
imports*, docstrings and comments excluded (:func:`code_fingerprint`,
:func:`code_of`). The imports are read from the source, not executed:

* ``from .models import CNNConfig`` depends on the file that *defines*
  ``CNNConfig`` (``models/cnn.py``), not on the package that re-exports it,
  so a new model family in its own file re-keys nothing that does not use it;
* ``from . import attacks`` (a package) depends on the package's
  ``__init__.py`` and, through it, on whatever that imports;
* imports inside functions count like any other.

Editing a docstring or a comment changes no key; editing code changes the key
of every result whose function reaches that code; moving a file changes the
keys of what imports it, with nothing to edit by hand.
:func:`data_fingerprint` and :func:`model_fingerprint` key data and weights.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

__all__ = [
    "CACHE_ENV",
    "cache_dir",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "code_fingerprint",
    "code_of",
    "imported_modules",
    "imported_libraries",
    "modules_of",
    "data_fingerprint",
    "model_fingerprint",
]

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


# --------------------------------------------------------------------------
# fingerprints of code
# --------------------------------------------------------------------------
PACKAGE = "sparsenb"


def code_fingerprint(*modules: str) -> str:
    """A short hash of what these ``sparsenb`` modules and every module they import *do*.

    ``modules`` are names relative to the package (``"attacks.gradient"``,
    ``"lab.grid"``; a package such as ``"theory"`` means its ``__init__.py``).
    Their transitive imports inside ``sparsenb`` (:func:`imported_modules`)
    are parsed and each syntax tree hashed without docstrings, comments or
    line positions, with the module's name: a change to the code changes the
    hash, an edit of a comment or docstring does not.
    """
    if not modules:
        raise ValueError("modules: name at least one sparsenb module")
    for module in modules:
        _module_path(module)  # every name must be a module: a typo must not key an empty closure
    h = hashlib.sha256()
    for module in imported_modules(*modules):
        path = _module_path(module)
        stat = path.stat()
        h.update(module.encode() + b"\0")
        h.update(_source_digest(path, stat.st_mtime_ns, stat.st_size).encode())
    return h.hexdigest()[:16]


def code_of(*objects) -> str:
    """:func:`code_fingerprint` of the ``sparsenb`` modules that define ``objects`` (:func:`modules_of`).

    The key of a result computed by a function from some arguments is
    ``code_of(fn, *args)``: the function's module and what it imports, and
    the modules of the models, configs and attacks passed to it. Objects
    defined outside ``sparsenb`` contribute nothing (the hash of no module).
    """
    modules = modules_of(*objects)
    if not modules:
        return hashlib.sha256(b"").hexdigest()[:16]
    return code_fingerprint(*modules)


def modules_of(*objects) -> tuple[str, ...]:
    """The ``sparsenb`` modules (relative names) that define ``objects``, found recursively.

    A function or class: its module. A ``torch.nn.Module``: the class of each
    of its submodules. A dataclass: its class and its fields. Lists, tuples
    and dict values: their items. Any other object: its class. An object
    whose ``code_modules()`` method names modules (e.g. an attack resolved
    from a registry) adds those.
    """
    import dataclasses
    import inspect

    found: set[str] = set()

    def visit(obj, depth: int = 0) -> None:
        if depth > 8 or obj is None or isinstance(obj, (str, bytes, int, float, bool, Path)):
            return
        hook = getattr(obj, "code_modules", None)
        if callable(hook) and not isinstance(obj, type):
            found.update(hook())
        if isinstance(obj, (list, tuple, set, frozenset)):
            for v in obj:
                visit(v, depth + 1)
        elif isinstance(obj, dict):
            for v in obj.values():
                visit(v, depth + 1)
        elif isinstance(obj, functools.partial):
            for v in (obj.func, *obj.args, *obj.keywords.values()):
                visit(v, depth + 1)
        elif isinstance(obj, type) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
            _add(found, getattr(obj, "__module__", None))
        elif inspect.ismethod(obj):
            _add(found, obj.__func__.__module__)
            visit(obj.__self__, depth + 1)
        else:  # an instance: its class, a model's layers, a dataclass's fields
            _add(found, type(obj).__module__)
            if _is_torch_module(obj):
                for m in obj.modules():
                    _add(found, type(m).__module__)
                    for attr in vars(m).values():  # plain attributes such as a front end's transform
                        if not _is_torch_module(attr) and not isinstance(attr, (dict, list, tuple)):
                            _add(found, type(attr).__module__)
            if dataclasses.is_dataclass(obj):
                for f in dataclasses.fields(obj):
                    visit(getattr(obj, f.name), depth + 1)

    for obj in objects:
        visit(obj)
    return tuple(sorted(found))


def _is_torch_module(obj) -> bool:
    try:
        from torch import nn
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, nn.Module)


def _add(found: set, module: str | None) -> None:
    if module == PACKAGE:
        found.add("__init__")
    elif isinstance(module, str) and module.startswith(PACKAGE + "."):
        found.add(module[len(PACKAGE) + 1 :])


def imported_modules(*modules: str) -> tuple[str, ...]:
    """``modules`` and every ``sparsenb`` module they import, transitively, as sorted relative names.

    An import of a name resolves to the module that defines it (following
    re-exports); an import of a module or package to that module (a
    package's ``__init__.py``). Only the source is read.
    """
    for module in modules:
        _module_path(module)
    return _closure(tuple(sorted(set(modules))), _package_state(_package_root()))


def _package_state(root: Path) -> tuple:
    """Every source file of the package with its modification time and size (what a closure depends on)."""
    return tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*.py")))


@functools.lru_cache(maxsize=256)
def _closure(modules: tuple[str, ...], state: tuple) -> tuple[str, ...]:
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        _module_path(module)
        seen.add(module)
        todo.extend(_direct_imports(module))
    return tuple(sorted(seen))


def _package_root() -> Path:
    return Path(__file__).resolve().parent


def _module_path(module: str) -> Path:
    """The source file of a module (relative name): ``a/b.py``, or ``a/b/__init__.py`` for a package."""
    if not isinstance(module, str) or not module or module.startswith(".") or module.endswith("."):
        raise ValueError(f"modules: expected names of sparsenb modules such as 'frontend', got {module!r}")
    root = _package_root()
    if module == "__init__":
        return root / "__init__.py"
    base = root.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    raise ValueError(f"modules: sparsenb has no module {module!r}")


def _is_module(module: str) -> bool:
    try:
        _module_path(module)
        return True
    except ValueError:
        return False


def _is_package(module: str) -> bool:
    return module == "__init__" or _module_path(module).name == "__init__.py"


@functools.lru_cache(maxsize=1024)
def _parsed(path: Path, mtime_ns: int, size: int) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _tree(module: str) -> ast.Module:
    path = _module_path(module)
    stat = path.stat()
    return _parsed(path, stat.st_mtime_ns, stat.st_size)


def _direct_imports(module: str) -> list[str]:
    """The modules ``module``'s import statements (anywhere in it) reach, names resolved to their definitions."""
    path = _module_path(module)
    stat = path.stat()
    out = []
    for source, name in _raw_imports(module, path, stat.st_mtime_ns, stat.st_size):
        out.append(source if name is None else _resolve(source, name))
    return [m for m in out if m is not None]


def imported_libraries(module: str) -> frozenset[str]:
    """The top-level names of the packages outside ``sparsenb`` that ``module`` imports (anywhere in it)."""
    path = _module_path(module)
    stat = path.stat()
    return _libraries_of(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1024)
def _libraries_of(path: Path, mtime_ns: int, size: int) -> frozenset[str]:
    names = set()
    for node in ast.walk(_parsed(path, mtime_ns, size)):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return frozenset(names - {PACKAGE})


@functools.lru_cache(maxsize=1024)
def _raw_imports(module: str, path: Path, mtime_ns: int, size: int) -> tuple[tuple[str, str | None], ...]:
    """``module``'s imports of ``sparsenb`` as written: ``(module, None)`` for ``import sparsenb.x``,
    ``(source, name)`` for ``from source import name`` (relative names; ``""`` is the package)."""
    package = "" if module == "__init__" else (module if path.name == "__init__.py" else module.rpartition(".")[0])
    out = []
    for node in ast.walk(_parsed(path, mtime_ns, size)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE:
                    out.append(("__init__", None))
                elif alias.name.startswith(PACKAGE + "."):
                    out.append((alias.name[len(PACKAGE) + 1 :], None))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts):
                    continue
                base = parts[: len(parts) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module == PACKAGE:
                source = ""
            elif node.module and node.module.startswith(PACKAGE + "."):
                source = node.module[len(PACKAGE) + 1 :]
            else:
                continue
            out.extend((source, alias.name) for alias in node.names)
    return tuple(out)


def _resolve(source: str, name: str, depth: int = 0) -> str | None:
    """The module that defines ``name`` as imported ``from source`` (relative names; ``""`` is the package)."""
    sub = f"{source}.{name}" if source else name
    if name != "*" and _is_module(sub):
        return sub
    module = source or "__init__"
    if not _is_module(module):
        return None
    if name == "*" or depth > 10:
        return module
    for node in _tree(module).body:  # a top-level re-export: follow it to the definition
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            original = next(a.name for a in node.names if (a.asname or a.name) == name)
            package = "" if module == "__init__" else (module if _is_package(module) else module.rpartition(".")[0])
            if node.level:
                parts = package.split(".") if package else []
                base = parts[: len(parts) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
                target = node.module[len(PACKAGE) + 1 :] if node.module != PACKAGE else ""
            else:
                return module  # bound from another library: the module itself holds the choice
            return _resolve(target, original, depth + 1) or module
    return module


@functools.lru_cache(maxsize=1024)
def _source_digest(path: Path, mtime_ns: int, size: int) -> str:
    """The SHA-256 of ``_normalised_source`` (what a fingerprint hashes for one module)."""
    return hashlib.sha256(_normalised_source(path, mtime_ns, size).encode()).hexdigest()


@functools.lru_cache(maxsize=1024)
def _normalised_source(path: Path, mtime_ns: int, size: int) -> str:
    """The module's syntax tree without docstrings, comments and positions, as text."""
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


# --------------------------------------------------------------------------
# fingerprints of data and weights
# --------------------------------------------------------------------------
def data_fingerprint(*tensors) -> str:
    """A short hash of tensors' dtypes, shapes and values (part of checkpoint and result keys)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def model_fingerprint(model) -> str:
    """A short hash of a model's weights and buffers (in float32, so any dtype or device agrees)."""
    return data_fingerprint(*[t.float() for t in model.state_dict().values()])
