"""sparsenb.cache: the cache folder, atomic writes, and the docstring-blind code fingerprint.

The fingerprint tests edit a temporary copy of the package: ``cache``
finds a module's file beside its own ``__file__``, so pointing that at the
copy makes ``code_fingerprint`` read the copy (the real sources are never
touched). The keys follow what the code *imports*, read from the source:
see :mod:`sparsenb.cache`.
"""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import torch

import sparsenb
from sparsenb import cache
from sparsenb.lab import store
from sparsenb.lab import store


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
        lambda p: reword_docstring(p / "models" / "cnn.py", "NielsenCNN"),
        lambda p: add_comment(p / "training.py", "fit"),
        lambda p: add_comment(p / "models" / "cnn.py", "NielsenCNN"),
    ],
    ids=["module docstring", "function docstring", "class docstring", "other module", "comments", "comments elsewhere"],
)
def test_comment_and_docstring_edits_keep_the_fingerprint(package, edit):
    before = cache.code_fingerprint("training", "models.cnn")
    text = {p: p.read_text() for p in (package / "training.py", package / "models" / "cnn.py")}
    edit(package)
    assert any(p.read_text() != t for p, t in text.items())  # the edit happened
    assert cache.code_fingerprint("training", "models.cnn") == before


@pytest.mark.parametrize(
    "edit",
    [
        lambda p: change_default(p / "training.py", "TrainConfig", "lr", "0.015"),
        lambda p: scale_return(p / "training.py", "_loss"),
        lambda p: change_default(p / "models" / "cnn.py", "CNNConfig", "dropout", "0.25"),
        lambda p: add_function(p / "models" / "cnn.py"),
        lambda p: scale_return(p / "frontend.py", "defended"),  # imported by training.py: part of its fingerprint
    ],
    ids=["a default", "an expression", "a model default", "a new function", "an imported module"],
)
def test_code_edits_change_the_fingerprint(package, edit):
    before = cache.code_fingerprint("training", "models.cnn")
    edit(package)
    assert cache.code_fingerprint("training", "models.cnn") != before


def test_imports_resolve_to_the_file_that_defines_the_name(package):
    """``from .models import CNNConfig`` depends on models/cnn.py, not on every model the package re-exports."""
    assert {"lab.store", "models.linear", "training", "frontend"} <= set(cache.imported_modules("lab.store"))
    assert "models.resnet" not in cache.imported_modules("chapters.mnist_multiclass")
    assert "models.cnn" in cache.imported_modules("chapters.mnist_multiclass")
    assert "attacks.cw" not in cache.imported_modules("attacks.gradient")


def test_a_new_model_family_in_its_own_file_rekeys_nothing_that_does_not_use_it(package):
    """A model class added (and re-exported) beside the CIFAR ResNet leaves the MNIST results' keys; one added
    to the CNN's file changes them."""
    from sparsenb.attacks import pgd
    from sparsenb.frontend import SparsifyingFrontEnd
    from sparsenb.lab import grid
    from sparsenb.models import NielsenCNN

    def mnist_cell():  # the code key of a PGD cell on the defended CNN, as the grid computes it
        return cache.code_of(grid.run, pgd, NielsenCNN(), SparsifyingFrontEnd(0.035))

    before = mnist_cell()
    resnet = package / "models" / "resnet.py"
    resnet.write_text(resnet.read_text() + "\n\nclass WideResNet(CifarResNet):\n    STAGES = (32, 64, 128)\n")
    init = package / "models" / "__init__.py"
    init.write_text(init.read_text().replace("from .resnet import CifarResNet, ResNetConfig", "from .resnet import CifarResNet, ResNetConfig, WideResNet"))
    assert mnist_cell() == before
    cnn = package / "models" / "cnn.py"
    cnn.write_text(cnn.read_text() + "\n\nclass SmallCNN(NielsenCNN):\n    pass\n")
    assert mnist_cell() != before


def test_moving_a_file_needs_no_key_edited_by_hand(package):
    """Moving C&W to another file changes the keys of what imports it, and nothing else; no name to update."""
    before = {m: cache.code_fingerprint(m) for m in ("attacks.gradient", "attacks.linear", "attacks")}
    (package / "attacks" / "cw.py").rename(package / "attacks" / "carlini_wagner.py")
    init = package / "attacks" / "__init__.py"
    init.write_text(init.read_text().replace("from .cw import", "from .carlini_wagner import"))
    assert cache.code_fingerprint("attacks.gradient") == before["attacks.gradient"]
    assert cache.code_fingerprint("attacks.linear") == before["attacks.linear"]
    assert cache.code_fingerprint("attacks") != before["attacks"]
    assert "attacks.carlini_wagner" in cache.imported_modules("attacks")


def test_a_package_is_its_init_and_what_it_imports(package):
    before = cache.code_fingerprint("theory")
    path = package / "theory" / "prop1.py"
    path.write_text(path.read_text() + "\n# a trailing comment\n")
    assert cache.code_fingerprint("theory") == before
    path.write_text(path.read_text() + "\n_EXTRA = 1\n")
    assert cache.code_fingerprint("theory") != before
    assert cache.code_fingerprint("theory.linear") != cache.code_fingerprint("theory")  # one module of it


@pytest.mark.parametrize("bad", [(), ("no_such_module",), ("",), (".training",), (3,)])
def test_fingerprint_needs_sparsenb_module_names(bad):
    with pytest.raises(ValueError, match="modules"):
        cache.code_fingerprint(*bad)


def test_code_of_follows_functions_models_and_configs():
    from torch import nn

    from sparsenb import evaluation, models
    from sparsenb.frontend import SparsifyingFrontEnd, defended

    assert cache.modules_of(evaluation.predict) == ("evaluation",)
    assert set(cache.modules_of(defended(SparsifyingFrontEnd(0.02), models.NielsenCNN()))) == {"frontend", "models.cnn", "basis"}
    assert cache.modules_of(models.CNNConfig(), [nn.Linear(2, 2)], {"a": 1.0}) == ("models.cnn",)
    assert cache.modules_of(len, "text", 3) == ()
    assert cache.code_of(len) == cache.code_of() != cache.code_of(evaluation.predict)


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
    """End to end: store.trained() and store.stored() reuse their files after a docstring edit, not after an
    edit of code they import; an edit of code they do not import recomputes nothing."""
    import numpy as np

    from sparsenb import evaluation, models, training

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 1, 28, 28, generator=g), torch.randint(0, 2, (16,), generator=g)
    correct = np.array([1, 0, 1, 1])
    config = training.TrainConfig(batch_size=8)
    calls = {"fit": 0, "fn": 0}
    real_fit, real_format = training.fit, evaluation.format_accuracy

    def fit(*args, **kwargs):
        calls["fit"] += 1
        return real_fit(*args, **kwargs)

    def format_accuracy(*args, **kwargs):
        calls["fn"] += 1
        return real_format(*args, **kwargs)

    format_accuracy.__module__, format_accuracy.__qualname__ = real_format.__module__, real_format.__qualname__
    monkeypatch.setattr(training, "fit", fit)

    def both():
        store.trained(models.TwoLayerConfig(hidden=2), x, y, config)
        store.stored(format_accuracy, correct)
        return dict(calls)

    assert both() == {"fit": 1, "fn": 1}
    assert both() == {"fit": 1, "fn": 1}
    reword_docstring(package / "models" / "linear.py", "TwoLayerNet")
    add_comment(package / "attacks" / "base.py", "two_class_logits")
    assert both() == {"fit": 1, "fn": 1}
    scale_return(package / "training.py", "_loss")  # training code: retrain; results keep
    assert both() == {"fit": 2, "fn": 1}
    scale_return(package / "attacks" / "base.py", "two_class_logits")  # imported by evaluation: recompute
    assert both() == {"fit": 2, "fn": 2}
    scale_return(package / "attacks" / "cw.py", "carlini_wagner_l2")  # imported by neither: nothing
    assert both() == {"fit": 2, "fn": 2}
    scale_return(package / "frontend.py", "defended")  # imported by both
    assert both() == {"fit": 3, "fn": 3}
