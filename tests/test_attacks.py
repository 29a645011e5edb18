"""The network attacks of sparsenb.attacks (FGSM, locally linear, iterative locally
linear, I-FGSM, MI-FGSM, PGD, C&W L2) under every front-end gradient treatment.

Small float64 models on a handful of MNIST digits, so that BLAS rounding cannot
flip a sign between a batch and a single image; every test runs in well under
a second or two.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsenb import attacks, models
from sparsenb.attacks.base import _ce_grad, _image_seeds, _project
from sparsenb.attacks.gradient import _uniform_start
from sparsenb.frontend import defended
from sparsenb.frontend import SparsifyingFrontEnd

EPS = 0.1
STEP = 0.03
MODES = ["none", "bpda", "projection", "iterated"]  # "none": the classifier alone

ATTACKS = {
    "fgsm": lambda m, x, y, eps, seed=0: attacks.fgsm(m, x, y, eps),
    "locally_linear": lambda m, x, y, eps, seed=0: attacks.locally_linear(m, x, y, eps),
    "iterative_locally_linear": lambda m, x, y, eps, seed=0: attacks.iterative_locally_linear(m, x, y, eps, STEP, 3),
    "ifgsm": lambda m, x, y, eps, seed=0: attacks.ifgsm(m, x, y, eps, STEP, 3),
    "mifgsm": lambda m, x, y, eps, seed=0: attacks.mifgsm(m, x, y, eps, STEP, 3),
    "pgd": lambda m, x, y, eps, seed=0: attacks.pgd(m, x, y, eps, STEP, 3, restarts=2, seed=seed),
}


class TinyCNN(nn.Module):
    """conv 5x5x4 + ReLU + max-pool 2, then 10 logits: the CNN's ingredients, small."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 5)
        self.fc = nn.Linear(4 * 12 * 12, 10)

    def forward(self, x):
        return self.fc(F.max_pool2d(torch.relu(self.conv(x)), 2).flatten(1))


def _mlp(hidden=16, classes=10, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, classes)).double().eval()


@pytest.fixture(scope="module")
def digits(mnist_test):
    """Five test digits in float64 (saturated pixels at 0 and 1 exercise the box) and their labels."""
    x, y = mnist_test
    return x[:5].double().clone(), y[:5].clone()


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return TinyCNN().double().eval()


def _model(net, mode, **fe_kwargs):
    if mode == "none":
        return net
    fe = SparsifyingFrontEnd(0.035, "coif1", gradient=mode, refine_steps=2, **fe_kwargs)
    return defended(fe, net).eval()


def _assert_in_ball_and_box(x_adv, x, eps):
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert torch.isfinite(x_adv).all()
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert float((x_adv - x).abs().max()) <= eps + 1e-12


# --------------------------------------------------------------------------
# properties every attack has, under every gradient treatment
# --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(ATTACKS))
def test_ball_box_no_mutation_and_determinism(name, mode, cnn, digits):
    model = _model(cnn, mode)
    x, y = digits
    x0, y0 = x.clone(), y.clone()
    out = ATTACKS[name](model, x, y, EPS)
    assert torch.equal(x, x0) and torch.equal(y, y0), "the attack modified its inputs"
    _assert_in_ball_and_box(out, x, EPS)
    assert float((out - x).abs().max()) > 0.5 * EPS, "the attack did not move"
    again = ATTACKS[name](model, x, y, EPS)
    assert torch.equal(out, again), "same seed, different numbers"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(ATTACKS))
def test_eps_zero_returns_the_input(name, mode, cnn, digits):
    x, y = digits
    out = ATTACKS[name](_model(cnn, mode), x, y, 0.0)
    assert torch.equal(out, x)
    assert out.data_ptr() != x.data_ptr(), "eps = 0 must return a copy, not the input itself"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(ATTACKS))
def test_batch_equals_one_image_at_a_time(name, mode, cnn, digits):
    model = _model(cnn, mode)
    x, y = digits
    batch = ATTACKS[name](model, x, y, EPS, seed=3)
    for i in range(len(x)):
        single = ATTACKS[name](model, x[i : i + 1], y[i : i + 1], EPS, seed=3)
        assert torch.equal(batch[i : i + 1], single), f"image {i} differs between batch and single"


def test_pgd_seed_changes_the_start(cnn, digits):
    x, y = digits
    a = attacks.pgd(cnn, x, y, EPS, STEP, 1, restarts=1, seed=0)
    b = attacks.pgd(cnn, x, y, EPS, STEP, 1, restarts=1, seed=1)
    assert not torch.equal(a, b)
    # the start does not depend on where an image sits in the batch
    perm = torch.tensor([4, 2, 0, 3, 1])
    c = attacks.pgd(cnn, x[perm], y[perm], EPS, STEP, 1, restarts=1, seed=0)
    assert torch.equal(c, a[perm])


def test_pgd_steps_zero_is_the_uniform_start(digits):
    x, y = digits
    out = attacks.pgd(_mlp(), x, y, EPS, STEP, 0, restarts=1, seed=0)
    _assert_in_ball_and_box(out, x, EPS)
    inside = (x > EPS) & (x < 1 - EPS)  # pixels the box cannot clip
    assert float((out - x)[inside].abs().mean()) == pytest.approx(EPS / 2, rel=0.1)


# --------------------------------------------------------------------------
# attack-specific properties
# --------------------------------------------------------------------------
def test_more_pgd_restarts_never_raise_accuracy(digits, mnist_test):
    x_all, _ = mnist_test
    x = x_all[:24].double()
    model = _mlp(hidden=64, seed=2)
    with torch.no_grad():
        y = model(x).argmax(1)  # clean accuracy 100% by construction
    fooled, outputs = [], []
    for R in range(1, 6):
        out = attacks.pgd(model, x, y, 0.05, 0.005, 1, restarts=R, seed=0)  # short runs: the start matters
        with torch.no_grad():
            fooled.append(model(out).argmax(1) != y)
        outputs.append(out)
    for R in range(1, 5):
        assert bool((fooled[R - 1] <= fooled[R]).all()), f"an image fooled with {R} restarts survives {R + 1}"
        # an image fooled in the first R restarts gets the same example with more restarts
        assert torch.equal(outputs[R - 1][fooled[R - 1]], outputs[R][fooled[R - 1]])
    accs = [1 - float(f.double().mean()) for f in fooled]
    assert accs == sorted(accs, reverse=True)
    assert accs[-1] < accs[0], f"the test needs restarts that matter, got accuracies {accs}"


def _manual_pgd(model, x, y, eps, step, steps, restarts, seed):
    """PGD one restart at a time, every image through every restart, written out (the reference)."""
    seeds = _image_seeds(x, seed)
    best, fooled = x.clone(), torch.zeros(len(x), dtype=torch.bool)
    for r in range(restarts):
        x_adv = _uniform_start(x, eps, seeds, r)
        for _ in range(steps):
            x_adv = _project(x_adv + step * torch.sign(_ce_grad(model, x_adv, y)), x, eps)
        with torch.no_grad():
            now = model(x_adv).argmax(1) != y
        best[~fooled] = x_adv[~fooled]  # an image keeps its first fooling restart
        fooled |= now
    return best


class _Rows(nn.Module):
    """Counts the rows the wrapped model is evaluated on."""

    def __init__(self, net):
        super().__init__()
        self.net, self.rows = net, 0

    def forward(self, x):
        self.rows += len(x)
        return self.net(x)


@pytest.mark.parametrize("max_batch", [None, 1, 7, 24, 60, 1000])
def test_pgd_skipping_and_stacking_change_no_outcome(max_batch, mnist_test):
    x_all, _ = mnist_test
    x = x_all[:24].double()
    model = _mlp(hidden=64, seed=2)
    with torch.no_grad():
        y = model(x).argmax(1)
    expected = _manual_pgd(model, x, y, 0.05, 0.005, 1, 6, 0)
    counted = _Rows(model)
    out = attacks.pgd(counted, x, y, 0.05, 0.005, 1, restarts=6, seed=0, max_batch=max_batch)
    assert torch.equal(out, expected)
    probe = _Rows(model)
    attacks.pgd(probe, x, y, 0.0, 0.005, 1)  # eps = 0 does no work beyond checking the model's output shape
    nominal = 6 * 24 * (1 + 1) + probe.rows  # restarts x images x (steps + the fooled check), and the check
    with torch.no_grad():
        fooled_first = model(attacks.pgd(model, x, y, 0.05, 0.005, 1, restarts=1, seed=0)).argmax(1) != y
    assert 0 < int(fooled_first.sum()) < 24, "the test needs images fooled in the first restart and some not"
    if max_batch in (None, 1, 7, 24):  # no stacking beyond the batch: the fooled ones are skipped from restart 2 on
        assert counted.rows < nominal
    if max_batch == 1:  # one restart at a time: exactly the standing images' work
        assert counted.rows < nominal - 5 * 2 * int(fooled_first.sum()) + 1
    if max_batch == 1000:  # every restart stacked into one pass: nominal work, same answer
        assert counted.rows == nominal


def test_pgd_max_batch_must_be_a_positive_integer(digits):
    x, y = digits
    for bad in (0, -3, 1.5, True, "4"):
        with pytest.raises(ValueError, match="max_batch"):
            attacks.pgd(_mlp(), x, y, EPS, STEP, 1, restarts=2, max_batch=bad)


def _manual_mifgsm(model, x, y, eps, step, steps, norm):
    """MI-FGSM written out, with the gradient normalised per image, over the batch, or not at all."""
    x_adv, g = x.clone(), torch.zeros_like(x)
    for _ in range(steps):
        xr = x_adv.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(xr), y, reduction="sum"), xr)
        if norm == "image":
            grad = grad / grad.abs().flatten(1).sum(1).reshape(-1, 1, 1, 1)
        elif norm == "batch":
            grad = grad / grad.abs().sum()
        g = g + grad
        x_adv = torch.minimum(torch.maximum(x_adv + step * g.sign(), x - eps), x + eps).clamp(0, 1)
    return x_adv


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(scale)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved_tensors
        return grad * scale, None


class _GradScaler(nn.Module):
    """Identity forward; the backward pass multiplies image 0's gradient by a power
    of two that changes from one call to the next (exact in floating point)."""

    def __init__(self, exponents=(0, 20, -15, 8, -30, 12)):
        super().__init__()
        self.exponents, self.calls = exponents, 0

    def forward(self, x):
        if not x.requires_grad:
            return x
        scale = torch.ones(len(x), 1, 1, 1, dtype=x.dtype)
        scale[0] = 2.0 ** self.exponents[self.calls % len(self.exponents)]
        self.calls += 1
        return _ScaleGrad.apply(x, scale)


def test_mifgsm_normalises_the_gradient_per_image(digits):
    x, y = digits
    net = _mlp(hidden=32, seed=2)
    args = (0.2, 0.02, 6)
    ours = attacks.mifgsm(net, x, y, *args)
    assert torch.equal(ours, _manual_mifgsm(net, x, y, *args, norm="image"))
    # rescaling image 0's gradient differently at every step changes nothing, for any image
    scaled = attacks.mifgsm(nn.Sequential(_GradScaler(), net), x, y, *args)
    assert torch.equal(scaled, ours)
    # ... whereas without normalisation, or with one norm for the whole batch, it would
    assert not torch.equal(
        _manual_mifgsm(nn.Sequential(_GradScaler(), net), x, y, *args, norm="none")[:1],
        _manual_mifgsm(net, x, y, *args, norm="none")[:1],
    )
    assert not torch.equal(
        _manual_mifgsm(nn.Sequential(_GradScaler(), net), x, y, *args, norm="batch")[1:],
        _manual_mifgsm(net, x, y, *args, norm="batch")[1:],
    )


def test_mifgsm_with_zero_decay_is_ifgsm(digits):
    x, y = digits
    net = _mlp(seed=3)
    assert torch.equal(attacks.mifgsm(net, x, y, 0.1, 0.02, 4, decay=0.0), attacks.ifgsm(net, x, y, 0.1, 0.02, 4))


def test_ifgsm_callback_sees_the_shorter_runs(cnn, digits):
    x, y = digits
    model = _model(cnn, "bpda")
    seen = {}
    final = attacks.ifgsm(model, x, y, EPS, STEP, 5, callback=lambda k, xa: seen.__setitem__(k, xa.clone()))
    assert sorted(seen) == [1, 2, 3, 4, 5]
    assert torch.equal(seen[5], final)
    assert torch.equal(seen[2], attacks.ifgsm(model, x, y, EPS, STEP, 2))
    with pytest.raises(TypeError, match="callback"):
        attacks.ifgsm(model, x, y, EPS, STEP, 2, callback=3)


def _manual_locally_linear(model, x, y, eps):
    """Sec. V-E written out with the full Jacobian: the worst of the L-1 pairs (i, t)."""
    out = []
    for xi, t in zip(x, y.tolist()):
        J = torch.autograd.functional.jacobian(lambda v: model(v[None])[0], xi)  # (L, C, H, W)
        best, best_margin = None, -math.inf
        for i in range(J.shape[0]):
            if i == t:
                continue
            cand = torch.minimum(torch.maximum(xi + eps * torch.sign(J[i] - J[t]), xi - eps), xi + eps).clamp(0, 1)
            with torch.no_grad():
                z = model(cand[None])[0]
            if float(z[i] - z[t]) > best_margin:
                best, best_margin = cand, float(z[i] - z[t])
        out.append(best)
    return torch.stack(out)


def test_locally_linear_is_the_worst_pair(cnn, digits):
    x, y = digits
    assert torch.equal(attacks.locally_linear(cnn, x, y, EPS), _manual_locally_linear(cnn, x, y, EPS))
    # one step of the iterative attack with step = eps is the one-shot attack
    assert torch.equal(attacks.iterative_locally_linear(cnn, x, y, EPS, EPS, 1), attacks.locally_linear(cnn, x, y, EPS))


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.3])
def test_locally_linear_on_a_linear_model_is_the_white_box_attack(digits, eps):
    x, _ = digits
    y = torch.tensor([0, 1, 1, 0, 1])
    torch.manual_seed(4)
    lin = models.LinearClassifier().double()
    fe = SparsifyingFrontEnd(0.035, "coif1", gradient="projection", clip=False)
    ours = attacks.locally_linear(defended(fe, lin).eval(), x, y, eps)
    assert torch.equal(ours, attacks.white_box(lin.w.detach(), x, y, eps, fe))
    # without the front end: the semi-white box attack
    assert torch.equal(attacks.locally_linear(lin, x, y, eps), attacks.semi_white_box(lin.w.detach(), x, y, eps))


def test_locally_linear_is_fgsm_for_a_binary_network(digits):
    """Sec. V-D: for binary classification with cross-entropy, FGSM is the locally linear attack."""
    x, _ = digits
    y = torch.tensor([1, 0, 1, 1, 0])
    torch.manual_seed(5)
    net = models.TwoLayerNet(hidden=10).double().eval()
    assert torch.equal(attacks.locally_linear(net, x, y, EPS), attacks.fgsm(net, x, y, EPS))


def test_attacks_accept_int32_labels(cnn, digits):
    x, y = digits
    assert torch.equal(attacks.ifgsm(cnn, x, y.int(), EPS, STEP, 2), attacks.ifgsm(cnn, x, y, EPS, STEP, 2))


# --------------------------------------------------------------------------
# Carlini-Wagner L2 (no eps-ball: the box only)
# --------------------------------------------------------------------------
CW = dict(binary_search_steps=2, max_iterations=30, learning_rate=0.05)


@pytest.mark.parametrize("mode", MODES)
def test_carlini_wagner_box_mutation_and_batch(mode, digits):
    x, y = digits
    model = _model(_mlp(seed=6), mode)
    x0, y0 = x.clone(), y.clone()
    out = attacks.carlini_wagner_l2(model, x, y, **CW)
    assert torch.equal(x, x0) and torch.equal(y, y0)
    assert float(out.min()) >= 0 and float(out.max()) <= 1 and torch.isfinite(out).all()
    changed = (out != x).flatten(1).any(1)
    with torch.no_grad():
        pred = model(out).argmax(1)
    assert bool((pred[changed] != y[changed]).all()), "C&W returned a changed image that is not adversarial"
    assert changed.any(), "the test needs at least one adversarial example"
    for i in range(len(x)):  # each image is optimised (and stops early) as if alone
        single = attacks.carlini_wagner_l2(model, x[i : i + 1], y[i : i + 1], **CW)
        assert torch.equal(out[i : i + 1], single), f"image {i}"


def test_carlini_wagner_without_iterations_returns_the_input(digits):
    x, y = digits
    assert torch.equal(attacks.carlini_wagner_l2(_mlp(), x, y, max_iterations=0), x)


# --------------------------------------------------------------------------
# run-time checks and argument errors
# --------------------------------------------------------------------------
def test_check_adversarial(digits):
    x, _ = digits
    ok = (x + 0.1).clamp(0, 1)
    assert attacks.check_adversarial(ok, x, 0.1) is ok
    attacks.check_adversarial(torch.minimum(x + 0.1, torch.ones_like(x)), x, 0.1)  # the edge of the ball is in
    with pytest.raises(attacks.AttackCheckError, match="eps-ball"):
        attacks.check_adversarial((x + 0.11).clamp(0, 1), x, 0.1)
    with pytest.raises(attacks.AttackCheckError, match=r"\[0, 1\] box"):
        attacks.check_adversarial(x + 1e-3, x, 0.1)
    with pytest.raises(attacks.AttackCheckError, match=r"\[0, 1\] box"):
        attacks.check_adversarial(x - 1e-3, x, None)  # box-only check, as for C&W
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(attacks.AttackCheckError, match="NaN"):
        attacks.check_adversarial(bad, x, 0.1)
    with pytest.raises(attacks.AttackCheckError, match="shape"):
        attacks.check_adversarial(x[:2], x, 0.1)


def _call(name, model, x, y, **override):
    kw = {"eps": EPS}
    if name in ("iterative_locally_linear", "ifgsm", "mifgsm", "pgd"):
        kw.update(step=STEP, steps=2)
    kw.update(override)
    return getattr(attacks, name)(model, x, y, **kw)


NETWORK_ATTACKS = list(ATTACKS)
ITERATIVE = ["iterative_locally_linear", "ifgsm", "mifgsm", "pgd"]


@pytest.mark.parametrize(
    "name, override, error, match",
    [(n, {"eps": -0.1}, ValueError, "eps") for n in NETWORK_ATTACKS]
    + [(n, {"eps": 1.5}, ValueError, "eps") for n in NETWORK_ATTACKS]
    + [(n, {"eps": "0.1"}, TypeError, "eps") for n in NETWORK_ATTACKS]
    + [(n, {"eps": float("nan")}, TypeError, "eps") for n in NETWORK_ATTACKS]
    + [(n, {"step": 0.0}, ValueError, "step") for n in ITERATIVE]
    + [(n, {"step": -0.01}, ValueError, "step") for n in ITERATIVE]
    + [(n, {"steps": -1}, ValueError, "steps") for n in ITERATIVE]
    + [(n, {"steps": 2.5}, ValueError, "steps") for n in ITERATIVE]
    + [
        ("pgd", {"restarts": 0}, ValueError, "restarts"),
        ("pgd", {"restarts": 1.5}, ValueError, "restarts"),
        ("mifgsm", {"decay": -1.0}, ValueError, "decay"),
        ("mifgsm", {"decay": float("nan")}, ValueError, "decay"),
    ],
)
def test_bad_arguments_name_themselves(name, override, error, match, digits):
    x, y = digits
    with pytest.raises(error, match=match):
        _call(name, _mlp(), x, y, **override)


@pytest.mark.parametrize("name", NETWORK_ATTACKS + ["carlini_wagner_l2"])
def test_bad_images_and_labels_name_themselves(name, digits):
    x, y = digits
    net = _mlp()

    def call(xx, yy):
        if name == "carlini_wagner_l2":
            return attacks.carlini_wagner_l2(net, xx, yy, max_iterations=1)
        return _call(name, net, xx, yy)

    with pytest.raises(TypeError, match="x must be"):
        call((x * 255).to(torch.uint8), y)
    with pytest.raises(ValueError, match="x must lie in"):
        call(x * 2, y)
    with pytest.raises(ValueError, match="x must have shape"):
        call(x[:, 0], y)
    with pytest.raises(ValueError, match="y must be"):
        call(x, y[:2])
    with pytest.raises(ValueError, match="y must be"):
        call(x, y.double())


@pytest.mark.parametrize(
    "override, match",
    [
        ({"confidence": -1.0}, "confidence"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"initial_const": -0.5}, "initial_const"),
        ({"initial_const": float("inf")}, "initial_const"),
        ({"binary_search_steps": -1}, "binary_search_steps"),
        ({"max_iterations": 1.5}, "max_iterations"),
    ],
)
def test_carlini_wagner_bad_arguments(override, match, digits):
    x, y = digits
    with pytest.raises(ValueError, match=match):
        attacks.carlini_wagner_l2(_mlp(), x, y, **override)


@pytest.mark.parametrize("name", ITERATIVE)
def test_numpy_scalars_are_accepted_like_python_numbers(name, digits):
    """Parameters read from arrays or profile files (numpy scalars) act as floats and ints."""
    x, y = digits
    net = _mlp()
    expected = _call(name, net, x, y, seed=0) if name == "pgd" else _call(name, net, x, y)
    kw = {"eps": np.float32(EPS), "step": np.float64(STEP), "steps": np.int64(2)}
    if name == "pgd":
        kw.update(seed=0, restarts=np.int64(1))
    got = _call(name, net, x, y, **kw)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------
# bad input, as a new user would try it: one ArgumentError naming the argument
# --------------------------------------------------------------------------
from sparsenb.checks import ArgumentError, GradientError  # noqa: E402

LINEAR = ["semi_white_box", "white_box", "iterated_white_box"]
EVERY = NETWORK_ATTACKS + ["carlini_wagner_l2"] + LINEAR


def _fe():
    return SparsifyingFrontEnd(0.035, "coif1")


def _attack(name, model, x, y, /, **override):
    """Call attack ``name`` with small valid arguments, ``override`` replacing any of them."""
    if name == "carlini_wagner_l2":
        kw = dict(model=model, x=x, y=y, binary_search_steps=1, max_iterations=3)
    elif name in LINEAR:
        kw = dict(w=torch.linspace(-1, 1, 784, dtype=torch.float64).reshape(1, 28, 28), x=x, y=y, eps=EPS)
        if name != "semi_white_box":
            kw["frontend"] = _fe()
        if name == "iterated_white_box":
            kw.update(step=STEP, steps=2)
    else:
        kw = dict(model=model, x=x, y=y, eps=EPS)
        if name in ITERATIVE:
            kw.update(step=STEP, steps=2)
    kw.update(override)
    return getattr(attacks, name)(**kw)


def _binary_labels(y):
    return (y % 2).to(y.dtype)


def _bad_argument(name, override, argument, digits):
    x, y = digits
    if name in LINEAR:
        y = _binary_labels(y)
    with pytest.raises(ArgumentError) as info:
        _attack(name, _mlp(), x, y, **override)
    err = info.value
    assert isinstance(err, TypeError) and isinstance(err, ValueError)
    assert err.argument == argument, str(err)
    assert str(err).startswith(argument + " "), str(err)


BAD_EVERYWHERE = [
    ({"x": (255 * torch.rand(2, 1, 28, 28)).to(torch.uint8)}, "x"),
    ({"x": np.zeros((5, 1, 28, 28))}, "x"),
    ({"x": None}, "x"),
    ({"x": torch.full((5, 1, 28, 28), math.nan, dtype=torch.float64)}, "x"),
    ({"x": torch.rand(5, 28, 28, dtype=torch.float64)}, "x"),
    ({"y": torch.zeros(3, dtype=torch.int64)}, "y"),
    ({"y": torch.zeros(5)}, "y"),
    ({"y": [0, 1, 0, 1, 0]}, "y"),
    ({"y": None}, "y"),
    ({"y": torch.zeros(5, 1, dtype=torch.int64)}, "y"),
    ({"y": torch.full((5,), -100)}, "y"),
    ({"y": torch.tensor([0, 1, 10, 1, 0])}, "y"),
    ({"y": torch.zeros(5, dtype=torch.int64, device="meta")}, "y"),
]
BAD_EPS = [
    ({"eps": v}, "eps") for v in (-0.1, 1.5, "0.1", None, True, math.nan, math.inf, torch.tensor(0.1), [0.1])
]
BAD_ITERATIVE = (
    [({"step": v}, "step") for v in (0.0, -0.01, math.inf, math.nan, 2.0, True, "0.01", None)]
    + [({"steps": v}, "steps") for v in (-1, 2.5, 2.0, True, "2", None, math.inf)]
)
BAD_NETWORK = [({"model": v}, "model") for v in (None, 3, "cnn")] + [
    ({"model": lambda x: (x.flatten(1)[:, :10],)}, "model"),  # a tuple, not logits
    ({"model": lambda x: x.flatten(1)[:1, :10].expand(2, 10)}, "model"),  # wrong batch size
    ({"model": lambda x: torch.zeros(len(x), 10, dtype=torch.int64)}, "model"),  # not floating
    ({"model": lambda x: x}, "model"),  # images, not logits
]
BAD_LINEAR = [
    ({"w": None}, "w"),
    ({"w": np.ones((1, 28, 28))}, "w"),
    ({"w": torch.ones(1, 27, 28, dtype=torch.float64)}, "w"),
    ({"w": torch.ones(1, 28, 28, dtype=torch.int64)}, "w"),
    ({"w": torch.full((1, 28, 28), math.nan)}, "w"),
    ({"y": torch.tensor([0, 1, 2, 1, 0])}, "y"),  # linear attacks take 0/1 labels only
    ({"y": torch.tensor([5, 9, 5, 9, 5])}, "y"),
]
BAD_PER_ATTACK = [
    ("pgd", {"seed": v}, "seed") for v in (1.5, None, -1, "0", True, 2**63)
] + [("pgd", {"restarts": v}, "restarts") for v in (0, 1.5, True, None)] + [
    ("mifgsm", {"decay": v}, "decay") for v in (-1.0, math.nan, math.inf, True, None)
] + [("ifgsm", {"callback": v}, "callback") for v in (3, "print")] + [
    ("carlini_wagner_l2", {"confidence": v}, "confidence") for v in (-1.0, math.inf, True, None)
] + [("carlini_wagner_l2", {"learning_rate": v}, "learning_rate") for v in (0.0, -1.0, math.nan, "0.1")] + [
    ("carlini_wagner_l2", {"initial_const": v}, "initial_const") for v in (0.0, math.inf, None)
] + [("carlini_wagner_l2", {"binary_search_steps": v}, "binary_search_steps") for v in (-1, 1.5, True)] + [
    ("carlini_wagner_l2", {"max_iterations": v}, "max_iterations") for v in (-1, 1.5, math.inf)
] + [("carlini_wagner_l2", {"abort_early": v}, "abort_early") for v in (1, "yes", None)] + [
    (n, {"frontend": v}, "frontend") for n in ("white_box", "iterated_white_box") for v in (None, "coif1", nn.Identity())
] + [
    (n, {"x": torch.rand(5, 3, 28, 28, dtype=torch.float64)}, "x") for n in ("white_box", "iterated_white_box")
]


@pytest.mark.parametrize(
    "name, override, argument",
    [(n, o, a) for n in EVERY for o, a in BAD_EVERYWHERE]
    + [(n, o, a) for n in NETWORK_ATTACKS + LINEAR for o, a in BAD_EPS]
    + [(n, o, a) for n in ITERATIVE + ["iterated_white_box"] for o, a in BAD_ITERATIVE]
    + [(n, o, a) for n in NETWORK_ATTACKS + ["carlini_wagner_l2"] for o, a in BAD_NETWORK]
    + [(n, o, a) for n in LINEAR for o, a in BAD_LINEAR]
    + BAD_PER_ATTACK,
)
def test_bad_input_raises_one_argument_error_naming_it(name, override, argument, digits):
    _bad_argument(name, override, argument, digits)


@pytest.mark.parametrize("name", NETWORK_ATTACKS + ["carlini_wagner_l2"])
@pytest.mark.parametrize("labels", [[5, 9, 5, 9, 5], [0, 1, 2, 1, 0], [-1, 0, 1, 0, 1]])
def test_binary_models_take_labels_0_and_1_only(name, labels, digits):
    x, _ = digits
    torch.manual_seed(5)
    net = models.TwoLayerNet(hidden=10).double().eval()
    with pytest.raises(ArgumentError, match=r"^y must hold class labels in \[0, 1\]"):
        _attack(name, net, x, torch.tensor(labels))
    _attack(name, net, x, torch.tensor([0, 1, 1, 0, 1]))  # 0/1 labels are fine


@pytest.mark.parametrize("name", EVERY)
def test_empty_batch_returns_an_empty_batch(name, digits):
    x, y = digits
    model = _model(_mlp(), "bpda")
    for dtype in (torch.float32, torch.float64):
        x0 = x[:0].to(dtype)
        out = _attack(name, model.to(dtype), x0, y[:0])
        assert out.shape == (0, 1, 28, 28) and out.dtype == dtype
    model.double()
    assert attacks.check_adversarial(x[:0], x[:0], EPS).shape == (0, 1, 28, 28)
    assert attacks.check_adversarial(x[:0], x[:0], None).shape == (0, 1, 28, 28)


@pytest.mark.parametrize("name", LINEAR)
def test_linear_attacks_eps_zero_and_no_mutation(name, digits):
    x, y = digits
    y = _binary_labels(y)
    x0, y0 = x.clone(), y.clone()
    assert torch.equal(_attack(name, None, x, y, eps=0.0), x)
    out = _attack(name, None, x, y)
    assert torch.equal(x, x0) and torch.equal(y, y0)
    _assert_in_ball_and_box(out, x, EPS)
    # a flattened w or one that requires grad (a model's weight) gives the same attack
    w = torch.linspace(-1, 1, 784, dtype=torch.float64)
    assert torch.equal(_attack(name, None, x, y, w=w.clone().requires_grad_(True)), out)


@pytest.mark.parametrize("mode", ["none", "projection"])
@pytest.mark.parametrize("name", NETWORK_ATTACKS + ["carlini_wagner_l2"])
def test_inputs_that_require_grad_and_no_grad_left_on_the_model(name, mode, digits):
    x, y = digits
    net = _mlp(seed=6)
    model = _model(net, mode)
    xr = x.clone().requires_grad_(True)
    expected = _attack(name, model, x, y)
    out = _attack(name, model, xr, y)
    assert torch.equal(out, expected)
    assert not out.requires_grad and out.grad_fn is None
    assert xr.grad is None and torch.equal(xr.detach(), x)
    assert all(p.grad is None for p in model.parameters()), "the attack left .grad on the model's parameters"


class _NaNGradient(nn.Module):
    """The identity with a NaN input gradient, as a model with sqrt(0) or log(0) inside has."""

    def forward(self, x):
        return x + 0 * torch.sqrt(x - x)  # forward exact; backward 0 * inf = NaN


@pytest.mark.parametrize("name", NETWORK_ATTACKS + ["carlini_wagner_l2"])
def test_nan_gradient_raises_instead_of_a_zero_step(name, digits):
    x, y = digits
    broken = nn.Sequential(_NaNGradient(), _mlp()).eval()
    with pytest.raises(GradientError, match=r"^model .*NaN") as info:
        _attack(name, broken, x, y)
    assert isinstance(info.value, FloatingPointError) and isinstance(info.value, ValueError)
    # eps = 0 takes no gradient, so nothing to complain about
    if name != "carlini_wagner_l2":
        assert torch.equal(_attack(name, broken, x, y, eps=0.0), x)


def test_check_adversarial_bad_arguments(digits):
    x, _ = digits
    with pytest.raises(ArgumentError, match="^x_adv "):
        attacks.check_adversarial(x.numpy(), x, EPS)
    with pytest.raises(ArgumentError, match="^x "):
        attacks.check_adversarial(x, None, EPS)
    for eps in (-1.0, math.nan, "0.1", True):
        with pytest.raises(ArgumentError, match="^eps "):
            attacks.check_adversarial(x, x, eps)


def test_two_class_logits_checks_its_input():
    assert two_class_logits_ok()
    for bad in (None, torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.int64), np.zeros(2)):
        with pytest.raises(ArgumentError, match="^z "):
            attacks.two_class_logits(bad)


def two_class_logits_ok():
    z = torch.tensor([0.5, -1.0])
    return torch.equal(attacks.two_class_logits(z), torch.tensor([[0.0, 0.5], [0.0, -1.0]]))
