"""AutoAttack and its components (sparsenb.attacks.autoattack): the conventions of sparsenb.attacks
(ball and box, eps = 0, no mutation, no .grad left, seeded, the caller's random state
untouched, batch invariance where claimed, binary and three-class models, NaN gradients)
and that they are strong where they must be (a centroid classifier at a large eps).

Tiny float64 models on a handful of MNIST test digits; budgets of a few steps.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsenb import attacks, models
from sparsenb.frontend import defended
from sparsenb.attacks import autoattack as aa
from sparsenb.checks import ArgumentError, GradientError
from sparsenb.frontend import SparsifyingFrontEnd

EPS = 0.15

RUN = {
    "apgd_ce": lambda m, x, y, eps=EPS, seed=0: aa.apgd_ce(m, x, y, eps, steps=5, restarts=2, seed=seed),
    "apgd_t": lambda m, x, y, eps=EPS, seed=0: aa.apgd_t(m, x, y, eps, steps=4, targets=2, seed=seed),
    "fab_t": lambda m, x, y, eps=EPS, seed=0: aa.fab_t(m, x, y, eps, steps=4, targets=2, seed=seed),
    "square": lambda m, x, y, eps=EPS, seed=0: aa.square(m, x, y, eps, queries=40, seed=seed),
    "autoattack": lambda m, x, y, eps=EPS, seed=0: aa.autoattack(m, x, y, eps, steps=3, targets=2, queries=30, seed=seed),
}
GRADIENT_BASED = ["apgd_ce", "apgd_t", "fab_t"]
BATCH_INVARIANT = ["apgd_ce", "apgd_t", "fab_t"]  # fab_t with restarts=1


def _mlp(classes=10, seed=0, hidden=16):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, classes)).double().eval()


class _OneLogit(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x).squeeze(-1)


def _defended(net, gradient):
    fe = SparsifyingFrontEnd(0.035, "coif1", gradient=gradient, refine_steps=2)
    return defended(fe, net).eval()


@pytest.fixture(scope="module")
def digits(mnist_test):
    x, y = mnist_test
    return x[:6].double().clone(), y[:6].clone()




def _in_ball_and_box(x_adv, x, eps):
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    assert float((x_adv - x).abs().max()) <= eps + 1e-12


def _correct(model, x, y):
    with torch.no_grad():
        return attacks.two_class_logits(model(x)).argmax(1) == y


# --------------------------------------------------------------------------
# conventions
# --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["none", "bpda", "projection"])
@pytest.mark.parametrize("name", list(RUN))
def test_ball_box_no_mutation_no_grad_and_determinism(name, mode, digits):
    x, y = digits
    net = _mlp(seed=1)
    model = net if mode == "none" else _defended(net, mode)
    x0, y0 = x.clone(), y.clone()
    state = torch.get_rng_state()
    out = RUN[name](model, x, y)
    _in_ball_and_box(out, x, EPS)
    assert torch.equal(x, x0) and torch.equal(y, y0)
    assert all(p.grad is None for p in net.parameters()), "the attack left .grad on the model's parameters"
    assert all(p.requires_grad for p in net.parameters()), "the parameters were left frozen"
    assert torch.equal(torch.get_rng_state(), state), "the caller's random state changed"
    assert torch.equal(RUN[name](model, x, y), out)


@pytest.mark.parametrize("name", list(RUN))
def test_eps_zero_returns_a_copy_and_empty_batches(name, digits):
    x, y = digits
    net = _mlp()
    out = RUN[name](net, x, y, eps=0.0)
    assert torch.equal(out, x) and out is not x
    empty = RUN[name](net, x[:0], y[:0])
    assert empty.shape == x[:0].shape


@pytest.mark.parametrize("name", BATCH_INVARIANT)
def test_batch_equals_one_image_at_a_time(name, digits):
    x, y = digits
    model = _defended(_mlp(seed=2), "bpda")
    batch = RUN[name](model, x, y)
    alone = torch.cat([RUN[name](model, x[i : i + 1], y[i : i + 1]) for i in range(len(x))])
    assert torch.equal(batch, alone)


def test_seed_changes_random_starts(digits):
    x, y = digits
    net = _mlp(seed=3)
    # with steps=1 the APGD iterate depends on its random start
    a = aa.apgd_ce(net, x, y, EPS, steps=1, seed=0)
    b = aa.apgd_ce(net, x, y, EPS, steps=1, seed=1)
    c = aa.square(net, x, y, EPS, queries=5, seed=0)
    d = aa.square(net, x, y, EPS, queries=5, seed=1)
    assert not torch.equal(a, b) and not torch.equal(c, d)


def test_gradient_attacks_follow_the_front_ends_gradient_setting(centroids, mnist_test):
    x, y = mnist_test
    x, y = x[:8].double(), y[:8]
    outs = [aa.apgd_ce(_defended(centroids, g), x, y, EPS, steps=3) for g in ("bpda", "projection", "iterated")]
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2]) and not torch.equal(outs[1], outs[2])


@pytest.mark.parametrize("name", list(RUN))
def test_binary_models(name, digits):
    x, _ = digits
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    model = _OneLogit(_mlp(classes=1, seed=5))
    out = RUN[name](model, x, y)
    _in_ball_and_box(out, x, EPS)
    with pytest.raises(ArgumentError, match="^y "):
        RUN[name](model, x, torch.tensor([0, 1, 2, 0, 0, 0]))


def test_apgd_t_with_fewer_than_four_classes_is_apgd_on_the_cross_entropy(digits):
    x, _ = digits
    binary = _OneLogit(_mlp(classes=1, seed=6))
    yb = torch.tensor([0, 1, 0, 1, 1, 0])
    # one target (the other class), one restart: one APGD-CE run
    assert torch.equal(aa.apgd_t(binary, x, yb, 0.3, steps=4, targets=9), aa.apgd_ce(binary, x, yb, 0.3, steps=4))
    three = _mlp(classes=3, seed=7)
    y3 = torch.tensor([0, 1, 2, 0, 1, 2])
    # two targets x two restarts: four runs
    assert torch.equal(
        aa.apgd_t(three, x, y3, 0.3, steps=4, targets=5, restarts=2), aa.apgd_ce(three, x, y3, 0.3, steps=4, restarts=4)
    )


def test_nan_gradient_raises(digits):
    x, y = digits

    class NaNGradient(nn.Module):
        def forward(self, x):
            return x + 0 * torch.sqrt(x - x)

    broken = nn.Sequential(NaNGradient(), _mlp()).eval()
    for name in GRADIENT_BASED:
        with pytest.raises(GradientError, match="^model "):
            RUN[name](broken, x, y)
        assert torch.equal(RUN[name](broken, x, y, eps=0.0), x)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda m, x, y: aa.apgd_ce(m, x, y, 1.5), "eps"),
        (lambda m, x, y: aa.apgd_ce(m, x, y, 0.1, steps=0), "steps"),
        (lambda m, x, y: aa.apgd_t(m, x, y, 0.1, targets=0), "targets"),
        (lambda m, x, y: aa.fab_t(m, x, y, 0.1, restarts=0), "restarts"),
        (lambda m, x, y: aa.square(m, x, y, 0.1, queries=0), "queries"),
        (lambda m, x, y: aa.square(m, x, y, 0.1, p_init=0.0), "p_init"),
        (lambda m, x, y: aa.autoattack(m, x * 2, y, 0.1), "x"),
        (lambda m, x, y: aa.autoattack(m, x, y + 10, 0.1), "y"),
        (lambda m, x, y: aa.square(m, x, y, 0.1, seed=-1), "seed"),
    ],
)
def test_bad_arguments_name_themselves(call, argument, digits):
    x, y = digits
    with pytest.raises(ArgumentError, match=f"^{argument} "):
        call(_mlp(), x, y)


# --------------------------------------------------------------------------
# strength
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["apgd_ce", "apgd_t", "fab_t", "square"])
def test_each_component_breaks_a_centroid_classifier_at_a_large_eps(name, centroids, mnist_test):
    x, y = mnist_test
    x, y = x[:20].double(), y[:20]
    clean = _correct(centroids, x, y)
    assert clean.sum() >= 14
    budgets = {"apgd_ce": dict(steps=10), "apgd_t": dict(steps=10, targets=3), "fab_t": dict(steps=10, targets=3),
               "square": dict(queries=300, rescale_schedule=True)}
    out = getattr(aa, name)(centroids, x, y, 0.3, **budgets[name])
    assert int(_correct(centroids, out, y).sum()) == 0


def test_autoattack_fools_every_image_its_batch_invariant_components_fool(centroids, mnist_test):
    x, y = mnist_test
    x, y = x[:16].double(), y[:16]
    eps = 0.08
    kw = dict(steps=5, targets=2)
    parts = [aa.apgd_ce(centroids, x, y, eps, 5), aa.apgd_t(centroids, x, y, eps, **kw), aa.fab_t(centroids, x, y, eps, **kw)]
    fooled_by_a_part = torch.stack([~_correct(centroids, p, y) for p in parts]).any(0)
    out = aa.autoattack(centroids, x, y, eps, queries=20, **kw)
    fooled = ~_correct(centroids, out, y)
    assert fooled_by_a_part.any() and not fooled_by_a_part.all()
    assert bool((fooled | ~fooled_by_a_part).all())
    # and an image is returned unchanged unless fooled
    assert torch.equal(out[~fooled], x[~fooled])


def test_square_is_flagged_as_depending_on_its_batch(digits):
    """Square draws one square per iteration for the whole batch: the flag says so (the others are per image)."""
    assert aa.square.batch_invariant is False and aa.autoattack.batch_invariant is False
    assert getattr(aa.apgd_ce, "batch_invariant", True)
