"""sparsenb.cache: the cache folder, atomic writes, and the docstring-blind code fingerprint.

The fingerprint tests edit a temporary copy of the package: ``cache``
finds a module's file beside its own ``__file__``, so pointing that at the
copy makes ``code_fingerprint`` read the copy (the real sources are never
touched).
"""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import torch

import sparsenb
from sparsenb import cache


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def package(tmp_path, monkeypatch) -> Path:
    """A copy of the sparsenb sources that code_fingerprint reads instead of the real ones."""
    src = Path(sparsenb.__file__).parent
    dst = tmp_path / "sparsenb"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "__file__", str(dst / "cache.py"))
    return dst


def _node(tree, name):
    """The module (name None) or the class/function called ``name``."""
    if name is None:
        return tree
    return next(n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == name)


def _insert(path: Path, line: int, col: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[line - 1] = lines[line - 1][:col] + text + lines[line - 1][col:]
    path.write_text("".join(lines))


def reword_docstring(path: Path, name=None) -> None:
    """Put words at the start of the docstring of the module or of ``name``."""
    doc = _node(ast.parse(path.read_text()), name).body[0].value
    line = path.read_text().splitlines()[doc.lineno - 1]
    col = doc.col_offset + len(line[doc.col_offset :]) - len(line[doc.col_offset :].lstrip("rRbBuU"))
    _insert(path, doc.lineno, col + 3, "Reworded. ")


def add_comment(path: Path, name: str) -> None:
    """A comment at the end of the first line of ``name``'s body, and a comment line with blank lines before it."""
    node = _node(ast.parse(path.read_text()), name)
    first = node.body[1] if isinstance(node.body[0], ast.Expr) else node.body[0]
    _insert(path, first.end_lineno, len(path.read_text().splitlines()[first.end_lineno - 1]), "  # a new comment")
    _insert(path, node.lineno, 0, "\n\n# a comment line that moves everything below\n\n")


def change_default(path: Path, cls: str, field: str, value: str) -> None:
    node = next(n for n in _node(ast.parse(path.read_text()), cls).body if isinstance(n, ast.AnnAssign) and n.target.id == field)
    lines = path.read_text().splitlines(keepends=True)
    v = node.value
    lines[v.lineno - 1] = lines[v.lineno - 1][: v.col_offset] + value + lines[v.lineno - 1][v.end_col_offset :]
    path.write_text("".join(lines))


def scale_return(path: Path, name: str) -> None:
    """``return e`` becomes ``return e * 1.0`` in ``name`` (the same value, different code)."""
    ret = next(n for n in ast.walk(_node(ast.parse(path.read_text()), name)) if isinstance(n, ast.Return))
    _insert(path, ret.end_lineno, ret.end_col_offset, " * 1.0")


def add_function(path: Path) -> None:
    path.write_text(path.read_text() + "\n\ndef _unused():\n    return 1\n")


@pytest.mark.parametrize(
    "edit",
    [
        lambda p: reword_docstring(p / "training.py"),
        lambda p: reword_docstring(p / "training.py", "fit"),
        lambda p: reword_docstring(p / "training.py", "TrainConfig"),
        lambda p: reword_docstring(p / "models.py", "NielsenCNN"),
        lambda p: add_comment(p / "training.py", "fit"),
        lambda p: add_comment(p / "models.py", "NielsenCNN"),
    ],
    ids=["module docstring", "function docstring", "class docstring", "other module", "comments", "comments elsewhere"],
)
def test_comment_and_docstring_edits_keep_the_fingerprint(package, edit):
    before = cache.code_fingerprint("training", "models")
    text = {p: p.read_text() for p in (package / "training.py", package / "models.py")}
    edit(package)
    assert any(p.read_text() != t for p, t in text.items())  # the edit happened
    assert cache.code_fingerprint("training", "models") == before


@pytest.mark.parametrize(
    "edit",
    [
        lambda p: change_default(p / "training.py", "TrainConfig", "lr", "0.015"),
        lambda p: scale_return(p / "training.py", "_loss"),
        lambda p: change_default(p / "models.py", "CNNConfig", "dropout", "0.25"),
        lambda p: add_function(p / "models.py"),
    ],
    ids=["a default", "an expression", "a model default", "a new function"],
)
def test_code_edits_change_the_fingerprint(package, edit):
    before = cache.code_fingerprint("training", "models")
    edit(package)
    assert cache.code_fingerprint("training", "models") != before


def test_a_subpackage_is_every_file_in_it(package):
    before = cache.code_fingerprint("theory")
    files = sorted((package / "theory").glob("*.py"))
    assert len(files) > 1
    path = files[-1]
    path.write_text(path.read_text() + "\n# a trailing comment\n")
    assert cache.code_fingerprint("theory") == before
    path.write_text(path.read_text() + "\n_EXTRA = 1\n")
    assert cache.code_fingerprint("theory") != before
    assert cache.code_fingerprint("theory.linear") != before  # one module of it


@pytest.mark.parametrize("bad", [(), ("no_such_module",), ("",), (".training",), (3,)])
def test_fingerprint_needs_sparsenb_module_names(bad):
    with pytest.raises(ValueError, match="modules"):
        cache.code_fingerprint(*bad)


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "c"))
    assert cache.cache_dir() == (tmp_path / "c").resolve()
    assert not (tmp_path / "c").exists()  # naming the folder creates nothing
    monkeypatch.delenv(cache.CACHE_ENV)
    assert cache.cache_dir() == cache.PROJECT_ROOT / ".cache"


def test_atomic_writes(tmp_path):
    path = tmp_path / "deep" / "er" / "f.json"
    cache.atomic_write_json(path, {"b": 1, "a": [1.5, None]})
    assert path.read_text() == '{\n "a": [\n  1.5,\n  null\n ],\n "b": 1\n}\n'
    with pytest.raises(TypeError):
        cache.atomic_write_bytes(path, "not bytes")  # fails while writing
    assert path.read_text().startswith('{\n "a"')  # the old file is intact
    assert [p.name for p in path.parent.iterdir()] == ["f.json"]  # and no temporary file is left
    cache.atomic_write_text(path, "é")
    assert path.read_bytes() == "é".encode()


def test_checkpoints_and_stored_results_follow_code_not_comments(package, tmp_path, monkeypatch):
    """End to end: trained() and experiments.stored() reuse their files after a docstring edit, not after a code edit."""
    from sparsenb import experiments, models, training

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 1, 28, 28, generator=g), torch.randint(0, 2, (16,), generator=g)
    config = training.TrainConfig(batch_size=8)
    calls = {"fit": 0, "fn": 0}
    real_fit = training.fit

    def fit(*args, **kwargs):
        calls["fit"] += 1
        return real_fit(*args, **kwargs)

    def mean(t):
        calls["fn"] += 1
        return float(t.mean())

    monkeypatch.setattr(training, "fit", fit)

    def both():
        training.trained(models.TwoLayerConfig(hidden=2), x, y, config)
        experiments.stored(mean, x)
        return dict(calls)

    assert both() == {"fit": 1, "fn": 1}
    assert both() == {"fit": 1, "fn": 1}
    reword_docstring(package / "models.py", "TwoLayerNet")
    add_comment(package / "attacks.py", "fgsm")
    assert both() == {"fit": 1, "fn": 1}
    scale_return(package / "training.py", "_loss")  # training code: retrain; results keep
    assert both() == {"fit": 2, "fn": 1}
    scale_return(package / "attacks.py", "two_class_logits")  # attack code: results recompute
    assert both() == {"fit": 2, "fn": 2}
    scale_return(package / "models.py", "defended")  # both
    assert both() == {"fit": 3, "fn": 3}
