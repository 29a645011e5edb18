"""The adaptive attack (sparsenb.attacks.adaptive): the soft top-K surrogate, its front end, and the attack's
conventions and strength. Tiny float64 models on a handful of MNIST test digits."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsenb import attacks, models
from sparsenb.frontend import defended
from sparsenb.attacks import adaptive
from sparsenb.checks import ArgumentError
from sparsenb.frontend import H_K, SparsifyingFrontEnd
from sparsenb.attacks.adaptive import THRESHOLDS

EPS = 0.15


def _mlp(classes=10, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, classes)).double().eval()


def _fe(gradient="bpda"):
    return SparsifyingFrontEnd(0.035, "coif1", gradient=gradient, refine_steps=2)


@pytest.fixture(scope="module")
def digits(mnist_test):
    x, y = mnist_test
    return x[:6].double().clone(), y[:6].clone()




def _accuracy(model, x, y):
    with torch.no_grad():
        return float((attacks.two_class_logits(model(x)).argmax(1) == y).double().mean())


# --------------------------------------------------------------------------
# the surrogate
# --------------------------------------------------------------------------
def test_soft_top_k_tends_to_H_K_and_keeps_half_at_the_threshold():
    torch.manual_seed(0)
    c = torch.randn(3, 2, 50, dtype=torch.float64)
    assert torch.allclose(adaptive.soft_top_k(c, 7, 1e-6), H_K(c, 7), atol=1e-9)
    # per-channel K
    assert torch.allclose(adaptive.soft_top_k(c, (5, 9), 1e-6), H_K(c, (5, 9)), atol=1e-9)
    soft = adaptive.soft_top_k(c, 7, 0.5)
    kept = soft.abs() / c.abs()
    top = c.abs().topk(8, dim=-1).values
    # the K largest keep more than half, the others less
    order = c.abs().argsort(dim=-1, descending=True)
    assert bool((kept.gather(-1, order[..., :7]) > 0.5).all()) and bool((kept.gather(-1, order[..., 7:]) < 0.5).all())
    assert top.shape[-1] == 8
    with pytest.raises(ArgumentError, match="^temperature "):
        adaptive.soft_top_k(c, 7, 0.0)


def test_soft_top_k_has_a_gradient_off_the_support():
    torch.manual_seed(1)
    c = torch.randn(1, 1, 40, dtype=torch.float64, requires_grad=True)
    (g_soft,) = torch.autograd.grad(adaptive.soft_top_k(c, 5, 0.2).sum(), c)
    (g_hard,) = torch.autograd.grad(H_K(c, 5).sum(), c)
    off = g_hard == 0
    assert off.sum() == 35
    assert bool((g_soft[off].abs() > 0).all())


def test_the_threshold_changes_the_gradient_not_the_value():
    torch.manual_seed(2)
    c = torch.randn(2, 3, 30, dtype=torch.float64)
    assert torch.equal(adaptive.soft_top_k(c, 6, 0.3, "competing"), adaptive.soft_top_k(c, 6, 0.3, "fixed"))
    with pytest.raises(ArgumentError, match="^threshold "):
        adaptive.soft_top_k(c, 6, 0.3, "detached")


def _jacobian(c, K, t, threshold):
    return torch.autograd.functional.jacobian(lambda v: adaptive.soft_top_k(v, K, t, threshold), c)


def test_the_competing_threshold_follows_a_uniform_rise_of_every_magnitude():
    """Raising every |c_k| by d moves the competing threshold by d: the weights stay, each output moves by its weight."""
    torch.manual_seed(3)
    c = torch.randn(1, 1, 25, dtype=torch.float64)
    t = 0.4
    weight = adaptive.soft_top_k(c, 5, t) / c
    direction = c.sign().flatten()  # d|c_k| = 1 for every k
    for threshold, follows in (("competing", True), ("fixed", False)):
        J = _jacobian(c, 5, t, threshold).reshape(25, 25)
        moved = J @ direction
        assert torch.allclose(moved, direction * weight.flatten(), atol=1e-12) is follows


def test_pushing_a_coefficient_in_pushes_the_kth_out_only_with_the_competing_threshold():
    torch.manual_seed(4)
    c = torch.randn(1, 1, 40, dtype=torch.float64)
    K = 8
    order = c.abs().flatten().argsort(descending=True)
    kth, outside = int(order[K - 1]), int(order[K])  # the K-th in, the first out
    for threshold in THRESHOLDS:
        J = _jacobian(c, K, 0.2, threshold).reshape(40, 40)
        # d |output_kth| / d |c_outside|
        effect = float(J[kth, outside] * c.flatten()[kth].sign() * c.flatten()[outside].sign())
        if threshold == "competing":
            assert effect < -1e-3
        else:
            assert effect == 0.0


def test_soft_front_end_is_exact_forward_and_surrogate_backward(digits):
    x, _ = digits
    fe = _fe()
    soft = adaptive.SoftTopK(fe, temperature=0.3, steps=10)
    xr = x.clone().requires_grad_(True)
    out = soft(xr)
    with torch.no_grad():
        assert torch.equal(out.detach(), fe(x))
    v = torch.randn_like(x)
    (g,) = torch.autograd.grad((out * v).sum(), xr)
    xs = x.clone().requires_grad_(True)
    (g_ref,) = torch.autograd.grad((soft.surrogate(xs, 0.3) * v).sum(), xs)
    assert torch.allclose(g, g_ref)


def test_the_temperature_is_annealed_geometrically_per_differentiated_call(digits):
    x, _ = digits
    soft = adaptive.SoftTopK(_fe(), temperature=(1.0, 0.01), steps=2)
    seen = []
    for _ in range(4):
        seen.append(soft.current_temperature())
        soft(x.clone().requires_grad_(True))
    with torch.no_grad():
        soft(x)  # a prediction does not advance the schedule
    assert seen == pytest.approx([1.0, 0.1, 0.01, 0.01])
    soft.reset()
    assert soft.current_temperature() == 1.0


def test_the_surrogate_sees_what_the_projection_gradient_cannot(digits):
    """A classifier that reads one basis function outside x's support: the projection gradient is 0, the surrogate's is not."""
    x, _ = digits
    x = x[:1]
    fe = SparsifyingFrontEnd(0.035, "coif1", gradient="projection", clip=False)  # the clip's 0/1 slope would mix bases
    support = fe.support(x)[0, 0]
    c = fe.coefficients(x)[0, 0].abs()
    c[support] = -1
    k = int(c.argmax())  # the largest coefficient outside the support
    e = torch.zeros(1, 1, fe.transform.N, dtype=torch.float64)
    e[0, 0, k] = 1.0
    psi_k = fe.transform.synthesis(e)  # (1, 1, 28, 28)

    class Reads(nn.Module):
        def forward(self, z):
            return torch.stack([(z * psi_k).flatten(1).sum(1), torch.zeros(len(z), dtype=z.dtype)], 1)

    def grad(model):
        xr = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model(xr)[:, 0].sum(), xr)
        return g

    assert float(grad(defended(fe, Reads())).abs().max()) < 1e-12
    assert float(grad(nn.Sequential(adaptive.SoftTopK(fe, 0.2), Reads())).abs().max()) > 1e-3


# --------------------------------------------------------------------------
# the attack: conventions
# --------------------------------------------------------------------------
def _attack(model, x, y, eps=EPS, **kw):
    return adaptive.adaptive_attack(model, x, y, eps, **{"steps": 4, "restarts": 3, **kw})


@pytest.mark.parametrize("with_frontend", [True, False])
def test_conventions(with_frontend, digits):
    x, y = digits
    net = _mlp(seed=2)
    model = defended(_fe(), net).eval() if with_frontend else net
    x0, state = x.clone(), torch.get_rng_state()
    out = _attack(model, x, y)
    assert out.dtype == x.dtype and float(out.min()) >= 0 and float(out.max()) <= 1
    assert float((out - x).abs().max()) <= EPS + 1e-12
    assert torch.equal(x, x0) and torch.equal(torch.get_rng_state(), state)
    assert all(p.grad is None and p.requires_grad for p in net.parameters())
    assert torch.equal(_attack(model, x, y), out)
    alone = torch.cat([_attack(model, x[i : i + 1], y[i : i + 1]) for i in range(len(x))])
    assert torch.equal(alone, out)
    zero = _attack(model, x, y, eps=0.0)
    assert torch.equal(zero, x) and zero is not x


def test_binary_model_and_bad_arguments(digits):
    x, _ = digits
    y = torch.tensor([0, 1, 1, 0, 1, 0])

    class OneLogit(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _mlp(classes=1, seed=3)

        def forward(self, z):
            return self.net(z).squeeze(-1)

    out = _attack(defended(_fe(), OneLogit()).eval(), x, y, eps=0.3)
    assert float((out - x).abs().max()) <= 0.3 + 1e-12
    for kw, name in [({"starts": ("gaussian",)}, "starts"), ({"losses": ()}, "losses"), ({"final_temperature": 0}, "temperature"), ({"losses": "margin,hinge"}, "losses"),
                     ({"restarts": 0}, "restarts"), ({"steps": 0}, "steps")]:
        with pytest.raises(ArgumentError, match=f"^{name}"):
            _attack(_mlp(), x, torch.tensor([7, 2, 1, 0, 4, 1]), **kw)


# --------------------------------------------------------------------------
# the attack: strength
# --------------------------------------------------------------------------
def test_at_least_as_strong_as_bpda_pgd_with_the_same_budget(centroids, mnist_test):
    """On a defended centroid classifier: 2 runs of 10 steps vs PGD's 2 restarts of 10 steps through BPDA."""
    x, y = mnist_test
    x, y = x[:40].double(), y[:40]
    model = defended(_fe("bpda"), centroids).eval()
    eps = 0.15
    pgd = _accuracy(model, attacks.pgd(model, x, y, eps, eps / 4, 10, restarts=2), y)
    ours = _accuracy(model, adaptive.adaptive_attack(model, x, y, eps, steps=10, restarts=2), y)
    clean = _accuracy(model, x, y)
    assert pgd < clean  # the budget does something
    assert ours <= pgd
