"""The validation layer sparsenb.checks: every check accepts what it should, and
rejects the rest with one ArgumentError (a TypeError and a ValueError) whose
message starts with the argument's name."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsenb import checks
from sparsenb.checks import ArgumentError, GradientError


def _raises(call, name):
    """``call()`` raises ArgumentError for ``name``: both bases, message starting with the name."""
    with pytest.raises(ArgumentError) as info:
        call()
    err = info.value
    assert isinstance(err, TypeError) and isinstance(err, ValueError)
    assert err.argument == name
    assert str(err).startswith(name + " "), str(err)
    return str(err)


def test_argument_error_is_both_bases_and_names_the_argument():
    err = ArgumentError("eps", "must be positive")
    assert isinstance(err, TypeError) and isinstance(err, ValueError)
    assert str(err) == "eps must be positive" and err.argument == "eps"
    assert str(ArgumentError("level", "=3 is too deep")) == "level=3 is too deep"
    err = checks.fail("n", "an int", 1.5)
    assert str(err) == "n must be an int, got 1.5"
    assert "(bool)" in str(checks.fail("n", "an int", True))
    assert "shape (2, 3)" in str(checks.fail("x", "a number", torch.zeros(2, 3)))
    assert "numpy array" in str(checks.fail("x", "a number", np.zeros(2)))
    assert len(str(checks.fail("x", "short", "a" * 500))) < 120


# --------------------------------------------------------------------------
# scalars
# --------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0, 0.5, 1, np.float32(0.25), np.int64(1), np.float64(1.0)])
def test_real_accepts_numbers_in_bounds(value):
    out = checks.real(value, "eps", 0, 1)
    assert type(out) is float and out == float(value)


@pytest.mark.parametrize(
    "value", [True, False, np.bool_(True), "0.5", None, [0.5], torch.tensor(0.5), np.array(0.5), math.nan, math.inf, -math.inf, 10**400, 1 + 0j]
)
def test_real_rejects_non_numbers_and_non_finite(value):
    msg = _raises(lambda: checks.real(value, "eps"), "eps")
    assert "finite number" in msg


@pytest.mark.parametrize(
    "value, kwargs",
    [(-0.1, dict(low=0)), (1.5, dict(high=1)), (0.0, dict(low=0, low_open=True)), (1.0, dict(high=1, high_open=True))],
)
def test_real_bounds(value, kwargs):
    msg = _raises(lambda: checks.real(value, "step", **kwargs), "step")
    assert (">" in msg) or ("<" in msg)


def test_real_bounds_text():
    assert "must be a finite number > 0 and <= 1, got 2" in _raises(lambda: checks.real(2, "s", 0, 1, low_open=True), "s")


@pytest.mark.parametrize("value", [0, 3, np.int64(7), np.int32(2)])
def test_integer_accepts_ints(value):
    out = checks.integer(value, "steps", 0)
    assert type(out) is int and out == int(value)


@pytest.mark.parametrize("value", [True, np.bool_(False), 1.5, 2.0, "3", None, torch.tensor(3), np.float64(2.0)])
def test_integer_rejects_non_ints(value):
    assert "an int" in _raises(lambda: checks.integer(value, "steps"), "steps")


def test_integer_bounds():
    _raises(lambda: checks.integer(-1, "steps", 0), "steps")
    _raises(lambda: checks.integer(11, "digit", 0, 10), "digit")
    assert checks.integer(10, "digit", 0, 10) == 10


@pytest.mark.parametrize("value", [0, 1, 2**63 - 1, np.int64(5)])
def test_seed_accepts(value):
    assert checks.seed(value) == int(value)


@pytest.mark.parametrize("value", [1.5, None, -1, 2**63, True, "0"])
def test_seed_rejects(value):
    assert "2**63" in _raises(lambda: checks.seed(value), "seed")
    _raises(lambda: checks.seed(value, "my_seed"), "my_seed")


def test_flag():
    assert checks.flag(True, "clip") is True and checks.flag(np.bool_(False), "clip") is False
    for bad in (1, 0, "yes", None, 1.0, torch.tensor(True)):
        _raises(lambda: checks.flag(bad, "clip"), "clip")


def test_choice():
    assert checks.choice("bpda", "gradient", ("bpda", "projection")) == "bpda"
    assert checks.choice(torch.float64, "dtype", (torch.float32, torch.float64)) is torch.float64
    assert checks.choice(np.str_("test"), "split", ("train", "test")) == "test"
    _raises(lambda: checks.choice(True, "n", (1, 2)), "n")
    for bad in ("BPDA", None, 1, ["bpda"], "float64"):
        msg = _raises(lambda: checks.choice(bad, "gradient", ("bpda", "projection")), "gradient")
        assert "one of" in msg
    # a value whose == fails is no option either
    _raises(lambda: checks.choice(torch.zeros(2), "gradient", ("bpda",)), "gradient")


def test_size2d():
    assert checks.size2d((28, 32), "image_size") == (28, 32)
    assert checks.size2d([8, 8], "image_size") == (8, 8)
    assert checks.size2d(16, "image_size") == (16, 16)
    assert checks.size2d(torch.Size([4, 6]), "image_size") == (4, 6)
    assert checks.size2d((np.int64(4), 6), "image_size") == (4, 6)
    for bad in ((28.5, 28), (28.0, 28), (28,), (28, 28, 1), (0, 28), (28, -1), "28", None, 28.0, (True, 28), np.array([28, 28])):
        with pytest.raises(ArgumentError, match=r"^image_size(\[\d\])? must be") as info:
            checks.size2d(bad, "image_size")
        assert info.value.argument.startswith("image_size")
    _raises(lambda: checks.size2d((28, 28.5), "image_size"), "image_size[1]")


def test_per_channel():
    check = lambda v, n: checks.real(v, n, 0, 1, low_open=True)  # noqa: E731
    assert checks.per_channel(0.5, "rho", 3, check) == (0.5, 0.5, 0.5)
    assert checks.per_channel([0.1, 0.2, 0.3], "rho", 3, check) == (0.1, 0.2, 0.3)
    _raises(lambda: checks.per_channel((0.1, 0.2), "rho", 3, check), "rho")
    _raises(lambda: checks.per_channel(True, "rho", 1, check), "rho")
    _raises(lambda: checks.per_channel("0.1", "rho", 1, check), "rho")
    _raises(lambda: checks.per_channel((0.1, True, 0.3), "rho", 3, check), "rho[1]")
    _raises(lambda: checks.per_channel((0.1, 0.2, "x"), "rho", 3, check), "rho[2]")
    _raises(lambda: checks.per_channel(np.array([0.1, 0.2, 0.3]), "rho", 3, check), "rho")


def test_function():
    assert checks.function(len, "callback") is len
    assert checks.function(None, "callback", optional=True) is None
    _raises(lambda: checks.function(None, "callback"), "callback")
    _raises(lambda: checks.function(3, "callback", optional=True), "callback")


def test_path():
    assert checks.path("data", "root") == "data"
    assert checks.path(Path("data"), "root") == Path("data")
    assert checks.path(None, "root", optional=True) is None
    for bad in (3, b"data", "", "  ", ["data"], None):
        _raises(lambda: checks.path(bad, "root"), "root")


# --------------------------------------------------------------------------
# tensors
# --------------------------------------------------------------------------
def test_tensor():
    x = torch.zeros(3, 2)
    assert checks.tensor(x, "x") is x and checks.tensor(x, "x", n=3, floating=True) is x
    _raises(lambda: checks.tensor(np.zeros(3), "x"), "x")
    _raises(lambda: checks.tensor(x.long(), "x", floating=True), "x")
    _raises(lambda: checks.tensor(x, "x", n=2), "x")
    _raises(lambda: checks.tensor(torch.tensor(1.0), "x", n=1), "x")


def test_finite():
    x = torch.tensor([1.0, -2.0])
    assert checks.finite(x, "c") is x
    assert checks.finite(torch.zeros(0), "c") is not None
    for bad in (torch.tensor([math.nan]), torch.tensor([1.0, -math.inf]), torch.tensor([math.nan]).requires_grad_(True)):
        assert "NaN" in _raises(lambda: checks.finite(bad, "c"), "c")


def test_images_accepts_batches_and_returns_the_same_tensor():
    for dtype in (torch.float32, torch.float64):
        x = torch.rand(2, 3, 4, 5, dtype=dtype)
        assert checks.images(x) is x
    empty = torch.zeros(0, 1, 28, 28)
    assert checks.images(empty, channels=1, size=(28, 28)) is empty
    e = torch.randn(2, 1, 4, 4)
    assert checks.images(e, "e", box=False) is e
    assert checks.images(e + 5, "e", scan=False) is not None  # O(1) checks only


@pytest.mark.parametrize(
    "x, kwargs, words",
    [
        (np.zeros((1, 1, 2, 2)), {}, "torch.Tensor"),
        ([[0.0]], {}, "torch.Tensor"),
        (torch.zeros(1, 1, 2, 2, dtype=torch.uint8), {}, "float32 or float64"),
        (torch.zeros(1, 1, 2, 2, dtype=torch.float16), {}, "float32 or float64"),
        (torch.zeros(1, 1, 2, 2, dtype=torch.bool), {}, "float32 or float64"),
        (torch.zeros(1, 2, 2), {}, "(B, C, H, W)"),
        (torch.zeros(1, 1, 1, 2, 2), {}, "(B, C, H, W)"),
        (torch.zeros(1, 0, 2, 2), {}, "(B, C, H, W)"),
        (torch.zeros(2, 1, 0, 4), {}, "(B, C, H, W)"),
        (torch.zeros(1, 3, 2, 2), dict(channels=1), "channel"),
        (torch.zeros(1, 1, 2, 3), dict(size=(2, 2)), "size"),
        (torch.full((1, 1, 2, 2), math.nan), {}, "NaN"),
        (torch.full((1, 1, 2, 2), math.inf), dict(box=False), "NaN"),
        (torch.full((1, 1, 2, 2), 1.5), {}, "[0, 1]"),
        (torch.full((1, 1, 2, 2), -0.5), {}, "[0, 1]"),
    ],
)
def test_images_rejects(x, kwargs, words):
    assert words in _raises(lambda: checks.images(x, "x", **kwargs), "x")


def test_images_requires_grad_no_warning(recwarn):
    x = (torch.rand(1, 1, 2, 2) + 2).requires_grad_(True)
    _raises(lambda: checks.images(x, "x"), "x")
    assert not [w for w in recwarn if "requires_grad" in str(w.message)]


def test_labels():
    y = torch.tensor([0, 9, 3])
    assert checks.labels(y, n=3, classes=10) is y
    assert checks.labels(y.int(), classes=10) is not None
    assert checks.labels(torch.zeros(0, dtype=torch.int64), n=0, classes=2) is not None
    assert "int64" in _raises(lambda: checks.labels(y.double()), "y")
    _raises(lambda: checks.labels(y.bool()), "y")
    _raises(lambda: checks.labels(y.numpy()), "y")
    _raises(lambda: checks.labels([0, 1]), "y")
    assert "shape (2,)" in _raises(lambda: checks.labels(y, n=2), "y")
    _raises(lambda: checks.labels(y[None]), "y")
    _raises(lambda: checks.labels(torch.tensor(1)), "y")
    assert "[0, 9]" in _raises(lambda: checks.labels(torch.tensor([0, 10]), classes=10), "y")
    assert "[-100, 1]" in _raises(lambda: checks.labels(torch.tensor([-100, 1]), classes=10), "y")
    assert "[0, 1]" in _raises(lambda: checks.labels(torch.tensor([5, 9]), "labels", classes=2), "labels")
    _raises(lambda: checks.labels(y, device="meta"), "y")


def test_finite_gradient():
    g = torch.ones(2, 3)
    assert checks.finite_gradient(g) is g
    assert checks.finite_gradient(torch.tensor(True)) is not None
    for bad in (torch.tensor([1.0, math.nan]), torch.tensor([math.inf]), torch.tensor(False)):
        with pytest.raises(GradientError) as info:
            checks.finite_gradient(bad)
        err = info.value
        assert isinstance(err, ArgumentError) and isinstance(err, FloatingPointError)
        assert isinstance(err, ValueError) and isinstance(err, TypeError)
        assert str(err).startswith("model ") and "NaN" in str(err)
    with pytest.raises(GradientError, match="^classifier "):
        checks.finite_gradient(torch.tensor([math.nan]), "classifier")


def test_every_public_check_is_tested():
    tested = {
        "ArgumentError", "GradientError", "fail", "real", "integer", "seed", "flag", "choice", "size2d",
        "per_channel", "function", "path", "tensor", "finite", "images", "labels", "finite_gradient", "trusted",
    }  # fmt: skip
    assert set(checks.__all__) <= tested, set(checks.__all__) - tested


def test_trusted_skips_only_the_value_scan_and_only_inside():
    bad = torch.full((1, 1, 2, 2), 2.0)
    with pytest.raises(ArgumentError, match=r"\[0, 1\]"):
        checks.images(bad)
    with checks.trusted():
        assert checks.images(bad) is bad  # inside: no scan (the caller vouches for the values)
        with pytest.raises(ArgumentError, match="dtype"):
            checks.images(bad.long())  # types, dtypes and shapes are still checked
    with pytest.raises(ArgumentError, match=r"\[0, 1\]"):
        checks.images(bad)  # and the scan is back after the block
    with pytest.raises(RuntimeError), checks.trusted():
        raise RuntimeError("an error inside")
    with pytest.raises(ArgumentError):
        checks.images(bad)  # ... even when the block ended with an error
