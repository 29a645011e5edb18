"""Tests for sparsenb.frontend: K, H_K, S_K, P_K, colour, the front end and its gradients."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsenb import checks
from sparsenb.basis import WaveletTransform, wavelet_basis
from sparsenb.frontend import (
    GRADIENTS,
    H_K,
    P_K,
    S_K,
    SparsifyingFrontEnd,
    _CPU_CHUNK,
    energy_captured,
    rgb_to_ycbcr,
    sparsity_level,
    ycbcr_to_rgb,
)

N = 784
TOL64 = 1e-12


def rand(*shape, seed=0, dtype=torch.float64):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def n_nonzero(c: torch.Tensor, tol: float = 1e-9) -> torch.Tensor:
    return (c.abs() > tol).sum(dim=-1)


@pytest.fixture(scope="module")
def digits(mnist_test):
    """Eight MNIST test images in float64, (8, 1, 28, 28)."""
    x, _ = mnist_test
    return x[:8].double().clone()


@pytest.fixture(scope="module")
def rgb():
    """Four smooth-ish random RGB images in [0, 1], float64 (4, 3, 28, 28)."""
    x = rand(4, 3, 7, 7, seed=11)
    return torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)


# --------------------------------------------------------------------------
# sparsity level
# --------------------------------------------------------------------------
@pytest.mark.parametrize("rho,K", [(0.02, 15), (0.03, 23), (0.035, 27), (1.0, 784), (1, 784), (0.5, 392), (3 / 784, 3), (0.0013, 1)])
def test_sparsity_level_floor(rho, K):
    assert sparsity_level(rho, N) == K
    assert sparsity_level(rho, N) == math.floor(rho * N)


@pytest.mark.parametrize("rho,K", [(0.02, 15), (0.03, 23), (0.035, 27)])
def test_frontend_K_from_rho(rho, K):
    fe = SparsifyingFrontEnd(rho)
    assert fe.K == (K,)
    assert fe.rho == (rho,)


@pytest.mark.parametrize("rho", [0, 0.0, -0.1, 1.5, 1.0000001, float("nan"), float("inf"), -float("inf")])
def test_sparsity_level_rho_out_of_range(rho):
    with pytest.raises((ValueError, TypeError), match="rho"):
        sparsity_level(rho, N)
    with pytest.raises((ValueError, TypeError), match="rho"):
        SparsifyingFrontEnd(rho)


@pytest.mark.parametrize("rho", ["0.1", None, True, torch.tensor(0.1)])
def test_sparsity_level_rho_not_a_number(rho):
    with pytest.raises(TypeError, match="rho"):
        sparsity_level(rho, N)


@pytest.mark.parametrize("rho", [0.001, 1e-9, 1 / 784 - 1e-6])
def test_sparsity_level_K_zero_raises(rho):
    with pytest.raises(ValueError, match="rho") as info:
        sparsity_level(rho, N)
    assert "K" in str(info.value)
    with pytest.raises(ValueError, match="rho"):
        SparsifyingFrontEnd(rho)


# --------------------------------------------------------------------------
# functional operators
# --------------------------------------------------------------------------
@pytest.mark.parametrize("K", [1, 15, 100, 784])
def test_H_K_keeps_K_largest_magnitudes(K):
    c = randn(5, 2, N, seed=K)
    h = H_K(c, K)
    assert h.shape == c.shape and h.dtype == c.dtype
    assert torch.equal(n_nonzero(h, 0.0), torch.full((5, 2), K))
    kept = h != 0
    assert torch.equal(h[kept], c[kept])  # kept values unchanged
    # every kept magnitude >= every dropped magnitude
    a = c.abs()
    smallest_kept = torch.where(kept, a, torch.inf).amin(-1)
    largest_dropped = torch.where(kept, -torch.inf, a).amax(-1)
    assert torch.all(smallest_kept >= largest_dropped)
    # same set as a sort
    top = a.argsort(dim=-1, descending=True)[..., :K]
    ref = torch.zeros_like(kept).scatter_(-1, top, True)
    assert torch.equal(kept, ref)


def test_H_K_simple_example_with_signs():
    c = torch.tensor([0.1, -5.0, 3.0, -0.2, 4.0, 0.0], dtype=torch.float64)
    assert torch.equal(H_K(c, 2), torch.tensor([0, -5.0, 0, 0, 4.0, 0], dtype=torch.float64))
    assert torch.equal(H_K(c, 3), torch.tensor([0, -5.0, 3.0, 0, 4.0, 0], dtype=torch.float64))


@pytest.mark.parametrize("K", [0, -1, 785])
def test_H_K_bad_K(K):
    with pytest.raises(ValueError, match="K"):
        H_K(randn(2, N), K)


def test_H_K_per_channel_K():
    c = randn(4, 3, N, seed=5)
    Ks = (27, 7, 15)
    h = H_K(c, Ks)
    for ch, K in enumerate(Ks):
        assert torch.equal(h[:, ch], H_K(c[:, ch], K))
    with pytest.raises(ValueError, match="K"):
        H_K(c, (27, 7))


def test_S_K_boolean_mask_with_K_trues(digits):
    T = WaveletTransform("coif1", (28, 28), 1)
    m = S_K(digits, 27, T)
    assert m.dtype == torch.bool and m.shape == (8, 1, N)
    assert torch.equal(m.sum(-1), torch.full((8, 1), 27))
    c = T.analysis(digits)
    assert torch.equal(m, H_K(c, 27) != 0)


@pytest.mark.parametrize("wavelet,level", [("coif1", 1), ("db5", 2), ("sym9", 1), ("haar", 2)])
def test_P_K_matches_dense_reference(wavelet, level, digits):
    """P_K(e, x) = sum_{k in S_K(x)} psi_k psi_k^T e, computed with the dense basis."""
    T = WaveletTransform(wavelet, (28, 28), level)
    psi = wavelet_basis(wavelet, (28, 28), level)
    K = 27
    e = randn(8, 1, 28, 28, seed=3)
    # saturated strokes make exactly tied coefficients (e.g. Haar); break ties so the support is unique
    digits = 0.98 * digits + 0.01 * rand(8, 1, 28, 28, seed=4)
    c_x = digits.flatten(-2) @ psi.T
    top = c_x.abs().topk(K, dim=-1).indices
    mask = torch.zeros_like(c_x, dtype=torch.bool).scatter_(-1, top, True)
    ref = ((e.flatten(-2) @ psi.T) * mask) @ psi
    assert torch.allclose(P_K(e, digits, K, T).flatten(-2), ref, atol=TOL64)
    # the front end with clip=False outputs Psi^T H_K(Psi x) = P_K(x, x)
    fe = SparsifyingFrontEnd(K / N + 1e-9, wavelet=wavelet, level=level, clip=False)
    assert fe.K == (K,)
    ref_x = ((c_x * mask) @ psi).unflatten(-1, (28, 28))
    assert torch.allclose(fe(digits), ref_x, atol=TOL64)


def test_P_K_idempotent_and_linear(digits):
    T = WaveletTransform("coif1", (28, 28), 1)
    K = 23
    e1, e2 = randn(8, 1, 28, 28, seed=1), randn(8, 1, 28, 28, seed=2)
    p1 = P_K(e1, digits, K, T)
    assert torch.allclose(P_K(p1, digits, K, T), p1, atol=TOL64)
    a, b = 0.7, -2.5
    assert torch.allclose(P_K(a * e1 + b * e2, digits, K, T), a * p1 + b * P_K(e2, digits, K, T), atol=TOL64)
    # orthogonal projection: symmetric, <P e1, e2> = <e1, P e2>
    lhs = (p1 * e2).sum((-2, -1))
    rhs = (e1 * P_K(e2, digits, K, T)).sum((-2, -1))
    assert torch.allclose(lhs, rhs, atol=1e-10)


def test_K_sparse_signal_is_fixed_point():
    """x = Psi^T c with exactly K nonzero coefficients is unchanged by P_K(x, x) and by H_K."""
    T = WaveletTransform("db5", (28, 28), 2)
    K = 23
    g = torch.Generator().manual_seed(7)
    c = torch.zeros(6, 1, N, dtype=torch.float64)
    for i in range(6):
        idx = torch.randperm(N, generator=g)[:K]
        c[i, 0, idx] = torch.randn(K, generator=g, dtype=torch.float64).sign() * (1 + torch.rand(K, generator=g))
    x = T.synthesis(c)
    assert torch.equal(H_K(c, K), c)
    assert torch.allclose(P_K(x, x, K, T), x, atol=TOL64)
    assert torch.equal(S_K(x, K, T), c != 0)
    fe = SparsifyingFrontEnd(K / N + 1e-9, wavelet="db5", level=2, clip=False)
    assert fe.K == (K,)
    assert torch.allclose(fe.project(x, x), x, atol=TOL64)
    assert torch.equal(fe.support(x), c != 0)
    # positive scaling keeps the support: still a fixed point
    assert torch.allclose(fe.project(0.3 * x, 0.3 * x), 0.3 * x, atol=TOL64)


# --------------------------------------------------------------------------
# the front end: projection properties (clip=False)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("wavelet,level,rho", [("coif1", 1, 0.035), ("db5", 2, 0.02), ("sym9", 1, 0.03)])
def test_frontend_output_is_K_sparse_projection(wavelet, level, rho, digits):
    fe = SparsifyingFrontEnd(rho, wavelet=wavelet, level=level, clip=False)
    K = fe.K[0]
    y = fe(digits)
    T = fe.transform
    assert torch.equal(n_nonzero(T.analysis(y)), torch.full((8, 1), K))
    assert torch.equal(T.analysis(y).abs() > 1e-9, fe.support(digits))
    assert torch.allclose(y, fe.project(digits, digits), atol=TOL64)
    assert torch.allclose(y, P_K(digits, digits, K, T), atol=TOL64)
    # idempotent: P_K(y, y) = y (y may leave [0, 1], so use the functional forms)
    assert torch.equal(fe.support(y), fe.support(digits))
    assert torch.allclose(fe.project(y, y), y, atol=TOL64)
    assert torch.allclose(P_K(y, y, K, T), y, atol=TOL64)


def test_frontend_idempotent_literally():
    """f(f(x)) == f(x) for images whose sparse approximation stays inside [0, 1]."""
    x = 0.5 + 0.1 * (2 * rand(5, 1, 28, 28, seed=4) - 1)
    # K = 235 > 196 approximation coefficients: all of the (large) approximation band is kept
    fe = SparsifyingFrontEnd(0.3, wavelet="coif1", level=1, clip=False)
    y = fe(x)
    assert bool(((y >= 0) & (y <= 1)).all()), "precondition: f(x) inside [0, 1]"
    assert torch.allclose(fe(y), y, atol=TOL64)
    assert torch.equal(n_nonzero(fe.transform.analysis(y)), torch.full((5, 1), fe.K[0]))
    # and with clipping on (nothing to clip here) the same holds
    fe_c = SparsifyingFrontEnd(0.3, wavelet="coif1", level=1, clip=True)
    assert torch.allclose(fe_c(fe_c(x)), fe_c(x), atol=TOL64)


def test_frontend_project_linear_in_e(digits):
    fe = SparsifyingFrontEnd(0.035, clip=False)
    e1, e2 = randn(8, 1, 28, 28, seed=21), randn(8, 1, 28, 28, seed=22)
    for a, b in [(1.0, 1.0), (0.3, -1.7), (-2.0, 0.0)]:
        assert torch.allclose(
            fe.project(a * e1 + b * e2, digits), a * fe.project(e1, digits) + b * fe.project(e2, digits), atol=TOL64
        )


def test_frontend_clip_true_clips_to_unit_box(digits):
    fe = SparsifyingFrontEnd(0.035, clip=True)
    fe_raw = SparsifyingFrontEnd(0.035, clip=False)
    y, y_raw = fe(digits), fe_raw(digits)
    assert bool(((y >= 0) & (y <= 1)).all())
    assert bool(((y_raw < 0) | (y_raw > 1)).any()), "precondition: the raw projection leaves the box"
    assert torch.equal(y, y_raw.clamp(0, 1))


def test_frontend_rho_one_is_identity(digits):
    for clip in (True, False):
        fe = SparsifyingFrontEnd(1.0, wavelet="sym9", level=2, clip=clip)
        assert torch.allclose(fe(digits), digits, atol=TOL64)


# --------------------------------------------------------------------------
# per-channel rho
# --------------------------------------------------------------------------
@pytest.mark.parametrize("color", ["rgb", "ycbcr"])
def test_per_channel_rho(color, rgb):
    rho = (0.035, 0.01, 0.02)
    fe = SparsifyingFrontEnd(rho, channels=3, color=color, clip=False)
    assert fe.K == (27, 7, 15)
    assert fe.rho == rho
    m = fe.support(rgb)
    assert m.dtype == torch.bool and m.shape == (4, 3, N)
    assert torch.equal(m.sum(-1), torch.tensor([[27, 7, 15]] * 4))
    # each channel's support is that channel's own top-K
    c = fe.coefficients(rgb)
    for ch, K in enumerate(fe.K):
        assert torch.equal(m[:, ch], H_K(c[:, ch], K) != 0)
    # the output is K_c-sparse per channel in the working colour space
    y = fe(rgb)
    cy = fe.transform.analysis(rgb_to_ycbcr(y) if color == "ycbcr" else y)
    assert torch.equal(n_nonzero(cy), torch.tensor([[27, 7, 15]] * 4))
    assert torch.equal(cy.abs() > 1e-9, m)


def test_per_channel_rho_list_and_equal_values(rgb):
    fe = SparsifyingFrontEnd([0.02, 0.02, 0.02], channels=3, clip=False)
    fe1 = SparsifyingFrontEnd(0.02, channels=3, clip=False)
    assert fe.K == fe1.K == (15, 15, 15)
    assert torch.equal(fe(rgb), fe1(rgb))


# --------------------------------------------------------------------------
# gradients
# --------------------------------------------------------------------------
def _grad(fe, x, g):
    xr = x.clone().requires_grad_(True)
    y = fe(xr)
    (gx,) = torch.autograd.grad(y, xr, g)
    return y.detach(), gx


@pytest.fixture(scope="module")
def upstream():
    return randn(8, 1, 28, 28, seed=99)


def test_gradient_bpda_is_identity(digits, upstream):
    for clip in (True, False):
        fe = SparsifyingFrontEnd(0.035, gradient="bpda", clip=clip)
        y, gx = _grad(fe, digits, upstream)
        assert torch.equal(gx, upstream)
        assert torch.equal(y, fe(digits))


@pytest.mark.parametrize("wavelet,level", [("coif1", 1), ("db5", 2)])
def test_gradient_projection_is_P_K(wavelet, level, digits, upstream):
    fe = SparsifyingFrontEnd(0.035, wavelet=wavelet, level=level, gradient="projection", clip=False)
    _, gx = _grad(fe, digits, upstream)
    assert torch.allclose(gx, fe.project(upstream, digits), atol=TOL64)
    assert torch.allclose(gx, P_K(upstream, digits, fe.K[0], fe.transform), atol=TOL64)


def test_gradient_projection_with_clip_masks_clipped_pixels(digits, upstream):
    fe = SparsifyingFrontEnd(0.035, gradient="projection", clip=True)
    raw = SparsifyingFrontEnd(0.035, clip=False)(digits)
    inside = ((raw > 0) & (raw < 1)).double()
    _, gx = _grad(fe, digits, upstream)
    assert torch.allclose(gx, fe.project(upstream * inside, digits), atol=TOL64)


def test_gradient_iterated_zero_steps_equals_projection(digits, upstream):
    for clip in (False, True):
        fe_p = SparsifyingFrontEnd(0.035, gradient="projection", clip=clip)
        fe_i = SparsifyingFrontEnd(0.035, gradient="iterated", refine_steps=0, clip=clip)
        _, gp = _grad(fe_p, digits, upstream)
        _, gi = _grad(fe_i, digits, upstream)
        assert torch.allclose(gi, gp, atol=TOL64)


@pytest.mark.parametrize("steps,delta", [(1, 0.01), (5, 0.05)])
def test_gradient_iterated_follows_docstring_loop(steps, delta, digits, upstream):
    fe = SparsifyingFrontEnd(0.035, gradient="iterated", refine_steps=steps, refine_step=delta, clip=False)
    _, gi = _grad(fe, digits, upstream)
    xj = digits.clone()
    for _ in range(steps):
        xj = (xj + delta * torch.sign(fe.project(upstream, xj))).clamp(0, 1)
    expected = fe.project(upstream, xj)
    assert torch.allclose(gi, expected, atol=TOL64)
    # the refinement actually matters here (otherwise this test could not tell the modes apart)
    assert not torch.allclose(gi, fe.project(upstream, digits), atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("clip", [True, False])
def test_gradient_iterated_keeps_one_graph_and_the_same_bits(digits, upstream, clip, dtype):
    """The coefficients of x are computed once for every projection: bit for bit what recomputing them gives."""
    fe = SparsifyingFrontEnd(0.035, gradient="iterated", refine_steps=4, refine_step=0.05, clip=clip)
    x, g = digits.to(dtype), upstream.to(dtype)

    def vjp(mask):  # the projection at x on the support mask, its output recomputed from x each time
        with torch.enable_grad():
            xr = x.clone().requires_grad_(True)
            (v,) = torch.autograd.grad(fe._output(xr, mask), xr, g)
        return v

    xj = x
    for _ in range(fe.refine_steps):
        xj = (xj + fe.refine_step * torch.sign(vjp(fe._pyramid_support(xj)))).clamp(0.0, 1.0)
    assert torch.equal(fe.iterated_gradient(x, g), vjp(fe._pyramid_support(xj)))


def test_forward_values_identical_across_gradient_modes(digits):
    for clip in (True, False):
        ref = SparsifyingFrontEnd(0.035, clip=clip)(digits)
        for mode in GRADIENTS:
            fe = SparsifyingFrontEnd(0.035, gradient=mode, clip=clip, refine_steps=3)
            y_nograd = fe(digits)
            y_grad = fe(digits.clone().requires_grad_(True))
            assert y_grad.requires_grad
            assert torch.equal(y_nograd, ref), mode
            assert torch.allclose(y_grad.detach(), ref, rtol=0, atol=TOL64), mode


def test_gradient_ycbcr_is_exact_vjp(rgb):
    """With colour the projection gradient is the adjoint of the fixed-support map (not P_K itself)."""
    fe = SparsifyingFrontEnd((0.035, 0.01, 0.01), channels=3, color="ycbcr", gradient="projection", clip=False)
    g, e = randn(4, 3, 28, 28, seed=1), randn(4, 3, 28, 28, seed=2)
    _, gx = _grad(fe, rgb, g)
    # output(x + t e) - output(x) = t L e with L e = fe.project(e, x) while the support is fixed,
    # so the VJP satisfies <gx, e> = <g, L e>
    assert torch.allclose((gx * e).sum(), (g * fe.project(e, rgb)).sum(), atol=1e-10)


# --------------------------------------------------------------------------
# batches, dtypes, devices, no mutation
# --------------------------------------------------------------------------
@pytest.mark.parametrize("B", [1, 3])
def test_batch_matches_one_at_a_time(B, mnist_test):
    x = mnist_test[0][100 : 100 + B]
    fe = SparsifyingFrontEnd(0.035, clip=True)
    y = fe(x)
    assert y.shape == x.shape
    for i in range(B):
        assert torch.allclose(y[i : i + 1], fe(x[i : i + 1]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("clip", [True, False])
def test_large_batch_cpu_chunking_matches_one_at_a_time(clip, mnist_test):
    B = _CPU_CHUNK + 76
    x = mnist_test[0][:B]
    fe = SparsifyingFrontEnd(0.035, wavelet="coif1", clip=clip)
    y = fe(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    # the autograd path does not chunk: same values
    y_grad = fe(x.clone().requires_grad_(True)).detach()
    assert torch.allclose(y, y_grad, rtol=0, atol=1e-6)
    one = torch.cat([fe(x[i : i + 1]) for i in range(B)])
    assert torch.allclose(y, one, rtol=0, atol=1e-6)
    # supports, not just values, agree per image
    sup = fe.support(x)
    assert torch.equal(sup.sum(-1), torch.full((B, 1), 27))


def _reference_output(fe, x):
    """The front end written with torch.topk and nothing else (one level, RGB)."""
    c = fe.transform.analysis_pyramid(x)
    flat = c.flatten(-2)
    idx = torch.topk(flat.abs(), fe.K[0], dim=-1, sorted=False).indices
    mask = torch.zeros_like(flat, dtype=torch.bool).scatter_(-1, idx, True).view_as(c)
    y = fe.transform.synthesis_pyramid(c * mask)
    return y.clamp(0.0, 1.0) if fe.clip else y


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("wavelet,rho,clip", [("coif1", 0.035, True), ("haar", 0.01, True), ("db5", 0.2, False)])
def test_cpu_paths_equal_torch_topk_bit_for_bit(dtype, wavelet, rho, clip, mnist_test):
    """The NumPy selection, its buffers and blocks give torch.topk's front end exactly, ties included."""
    x = mnist_test[0][: _CPU_CHUNK + 40].to(dtype).clone()
    x[:30] = (x[:30] * 2).round() / 2  # quantised digits: ties among the coefficients
    x[30:40] = 0.0
    x[30:40, :, 4:8, 4:8] = 1.0  # a square on black: many equal magnitudes at the K-th place
    fe = SparsifyingFrontEnd(rho, wavelet, clip=clip, gradient="projection")
    with torch.no_grad():
        expected = _reference_output(fe, x)
        assert torch.equal(fe(x), expected)  # the buffered no-grad path
        assert torch.equal(fe(x[:7]), expected[:7])
    assert torch.equal(fe(x.clone().requires_grad_(True)).detach(), expected)  # the autograd path
    assert torch.equal(fe.support(x).sum(-1), torch.full((len(x), 1), fe.K[0]))


def test_cpu_path_colour_images_equal_torch_topk():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 3, 16, 16, generator=g)
    x[:10] = (x[:10] * 2).round() / 2
    fe = SparsifyingFrontEnd(0.05, "coif1", image_size=(16, 16), channels=3)
    with torch.no_grad():
        assert torch.equal(fe(x), _reference_output(fe, x))


def test_large_batch_with_no_grad_context(mnist_test):
    x = mnist_test[0][: _CPU_CHUNK + 3].double()
    fe = SparsifyingFrontEnd(0.02, wavelet="db5", level=2, clip=False)
    with torch.no_grad():
        y = fe(x)
    assert torch.allclose(y[-3:], fe(x[-3:]), atol=TOL64)
    assert torch.allclose(y[:2], fe(x[:2]), atol=TOL64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mode", GRADIENTS)
def test_dtype_shape_device_preserved_and_input_not_mutated(dtype, mode, digits):
    x = digits.to(dtype)
    x0 = x.clone()
    fe = SparsifyingFrontEnd(0.035, gradient=mode, refine_steps=2)
    y = fe(x)
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert torch.equal(x, x0)
    xr = x.clone().requires_grad_(True)
    y = fe(xr)
    assert y.shape == x.shape and y.dtype == dtype
    y.backward(torch.ones_like(y))
    assert xr.grad.dtype == dtype and xr.grad.shape == x.shape
    assert torch.equal(xr.detach(), x0)


def test_float32_close_to_float64(digits):
    fe = SparsifyingFrontEnd(0.035, clip=True)
    y64 = fe(digits)
    y32 = fe(digits.float())
    assert y32.dtype == torch.float32
    assert torch.allclose(y32.double(), y64, atol=1e-5)


def test_input_not_mutated_ycbcr_and_noncontiguous(rgb):
    x = rgb.transpose(-1, -2)  # non-contiguous view
    x0 = x.clone()
    fe = SparsifyingFrontEnd((0.035, 0.01, 0.01), channels=3, color="ycbcr")
    y = fe(x)
    assert torch.equal(x, x0)
    assert torch.allclose(y, fe(x.contiguous()), atol=TOL64)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(digits):
    fe = SparsifyingFrontEnd(0.035, clip=False)
    xc = digits.cuda()
    y = fe(xc)
    assert y.device == xc.device and y.dtype == xc.dtype
    assert torch.allclose(y.cpu(), fe(digits), atol=1e-10)
    fe_i = SparsifyingFrontEnd(0.035, gradient="iterated", refine_steps=2, clip=False)
    g = randn(8, 1, 28, 28, seed=5)
    _, gc = _grad(fe_i, xc, g.cuda())
    _, gcpu = _grad(fe_i, digits, g)
    assert gc.device == xc.device
    assert torch.allclose(gc.cpu(), gcpu, atol=1e-10)


# --------------------------------------------------------------------------
# colour
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
@pytest.mark.parametrize("offset", [True, False])
def test_ycbcr_round_trip(dtype, tol, offset, rgb):
    x = rgb.to(dtype)
    z = rgb_to_ycbcr(x, offset)
    assert z.dtype == dtype and z.shape == x.shape
    assert torch.allclose(ycbcr_to_rgb(z, offset), x, atol=tol)
    assert torch.allclose(rgb_to_ycbcr(ycbcr_to_rgb(z, offset), offset), z, atol=tol)


def test_ycbcr_known_values_and_range():
    # the 8 corners of the RGB cube map into [0, 1]^3 (full-range BT.601)
    corners = torch.tensor(
        [[r, g, b] for r in (0.0, 1.0) for g in (0.0, 1.0) for b in (0.0, 1.0)], dtype=torch.float64
    ).T.reshape(1, 3, 2, 4)
    z = rgb_to_ycbcr(corners)
    assert bool(((z >= -1e-6) & (z <= 1 + 1e-6)).all())
    white = torch.ones(1, 3, 1, 1, dtype=torch.float64)
    assert torch.allclose(rgb_to_ycbcr(white).flatten(), torch.tensor([1.0, 0.5, 0.5], dtype=torch.float64), atol=1e-6)
    assert torch.allclose(rgb_to_ycbcr(0 * white).flatten(), torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64))
    red = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).reshape(1, 3, 1, 1)
    assert torch.allclose(rgb_to_ycbcr(red).flatten(), torch.tensor([0.299, 0.331264, 1.0], dtype=torch.float64))
    # offset=False is the linear part only
    assert torch.allclose(rgb_to_ycbcr(white, offset=False).flatten(), torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ycbcr_rho_one_clip_returns_input(dtype, rgb):
    x = rgb.to(dtype)
    fe = SparsifyingFrontEnd(1.0, channels=3, color="ycbcr", clip=True)
    y = fe(x)
    assert y.dtype == dtype
    assert torch.allclose(y, x, atol=1e-6)


def test_ycbcr_sparsifies_in_ycbcr_not_rgb(rgb):
    rho = (0.035, 0.01, 0.01)
    fe_y = SparsifyingFrontEnd(rho, channels=3, color="ycbcr", clip=False)
    fe_rgb = SparsifyingFrontEnd(rho, channels=3, color="rgb", clip=False)
    z = rgb_to_ycbcr(rgb)
    ref = ycbcr_to_rgb(fe_rgb.transform.synthesis(H_K(fe_rgb.transform.analysis(z), fe_y.K)))
    assert torch.allclose(fe_y(rgb), ref, atol=TOL64)
    assert not torch.allclose(fe_y(rgb), fe_rgb(rgb), atol=1e-4)


# --------------------------------------------------------------------------
# argument errors
# --------------------------------------------------------------------------
def _bad_inputs():
    ok = torch.rand(2, 1, 28, 28)
    nan = ok.clone()
    nan[0, 0, 3, 3] = float("nan")
    inf = ok.clone()
    inf[1, 0, 0, 0] = float("inf")
    return {
        "nan": (nan, ValueError),
        "inf": (inf, ValueError),
        "above_one": (ok + 0.5, ValueError),
        "negative": (ok - 0.5, ValueError),
        "int_dtype": ((ok * 255).to(torch.uint8), TypeError),
        "int64": (torch.zeros(2, 1, 28, 28, dtype=torch.int64), TypeError),
        "ndim3": (ok[:, 0], ValueError),
        "ndim5": (ok[None], ValueError),
        "channels": (torch.rand(2, 3, 28, 28), ValueError),
        "size": (torch.rand(2, 1, 32, 32), ValueError),
        "numpy": (ok.numpy(), TypeError),
    }


@pytest.mark.parametrize("case", list(_bad_inputs()))
def test_bad_input_raises_one_clear_error_naming_x(case):
    x, exc = _bad_inputs()[case]
    fe = SparsifyingFrontEnd(0.035)
    with pytest.raises(exc, match=r"^x\b") as info:
        fe(x)
    if case in ("nan", "inf"):
        assert "NaN" in str(info.value)
    if case in ("above_one", "negative"):
        assert "[0, 1]" in str(info.value)


def test_bad_input_with_requires_grad_also_checked():
    fe = SparsifyingFrontEnd(0.035, gradient="projection")
    x = (torch.rand(1, 1, 28, 28) + 1).requires_grad_(True)
    with pytest.raises(ValueError, match=r"^x\b"):
        fe(x)


def test_check_images_custom_name_and_box():
    e = torch.randn(2, 1, 28, 28)
    with pytest.raises(ValueError, match="^delta"):
        checks.images(e, name="delta")
    assert checks.images(e, name="delta", box=False) is e
    bad = e.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="^delta contains NaN"):
        checks.images(bad, name="delta", box=False)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(rho=0.035, gradient="foo"), "gradient"),
        (dict(rho=0.035, color="ycbcr"), "color"),
        (dict(rho=0.035, color="ycbcr", channels=2), "color"),
        (dict(rho=0.035, color="hsv", channels=3), "color"),
        (dict(rho=(0.035, 0.01), channels=3), "rho"),
        (dict(rho=(0.035, 0.01, 0.01, 0.01), channels=3), "rho"),
        (dict(rho=(0.035, 0.01)), "rho"),
        (dict(rho=(0.035, 0.0001, 0.01), channels=3), "rho"),
        (dict(rho=0.035, channels=0), "channels"),
        (dict(rho=0.035, refine_steps=-1), "refine_steps"),
        (dict(rho=0.035, refine_step=0.0), "refine_step"),
        (dict(rho=0.035, wavelet="bior2.2"), "wavelet"),
        (dict(rho=0.035, level=3), "level"),
    ],
)
def test_bad_constructor_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SparsifyingFrontEnd(**kwargs)


# --------------------------------------------------------------------------
# property test
# --------------------------------------------------------------------------
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**31 - 1),
    rho=st.floats(min_value=1.001 / 784, max_value=1.0, allow_nan=False),
    wavelet=st.sampled_from(["haar", "db5", "coif1", "sym9"]),
    level=st.sampled_from([1, 2]),
    batch=st.integers(1, 3),
)
def test_property_projection_idempotent_and_K_sparse(seed, rho, wavelet, level, batch):
    x = rand(batch, 1, 28, 28, seed=seed)
    fe = SparsifyingFrontEnd(rho, wavelet=wavelet, level=level, clip=False)
    K = fe.K[0]
    assert K == math.floor(rho * 784 + 1e-9)  # sparsity_level's rule: rho written as k/N keeps k
    y = fe(x)
    c = fe.transform.analysis(y)
    assert torch.equal(n_nonzero(c), torch.full((batch, 1), K))
    assert torch.allclose(fe.project(y, y), y, atol=TOL64)
    assert torch.allclose(fe.project(y, x), y, atol=TOL64)
    # the residual is orthogonal to the output (orthogonal projection)
    assert torch.allclose(((x - y) * y).sum((-2, -1)), torch.zeros(batch, 1, dtype=torch.float64), atol=1e-10)


def test_sparsity_level_rho_written_as_k_over_N():
    """floor(rho N) must not lose one to rounding when rho = k/N exactly (27/784*784 = 26.999...)."""
    assert all(sparsity_level(k / 784, 784) == k for k in range(1, 785))


# --------------------------------------------------------------------------
# bad input, as a new user would try it: one ArgumentError naming the argument
# --------------------------------------------------------------------------
def _names_argument(call, argument):
    with pytest.raises(checks.ArgumentError) as info:
        call()
    err = info.value
    assert isinstance(err, TypeError) and isinstance(err, ValueError)
    assert err.argument.split("[")[0] == argument, str(err)
    assert str(err).startswith(err.argument + " "), str(err)


BAD_CONSTRUCTOR = (
    [(dict(rho=v), "rho") for v in (True, "0.035", None, (True,), ("0.1",), [None], 0, 1.5, math.nan, math.inf, torch.tensor(0.035))]
    + [(dict(rho=(0.035, True, 0.01), channels=3), "rho"), (dict(rho=(0.035, "0.01", 0.01), channels=3), "rho")]
    + [(dict(rho=0.035, channels=3, color="ycbcr", image_size=(28, 28)), None)]  # valid: a control
    + [(dict(rho=0.035, wavelet=v), "wavelet") for v in (None, 3, "bior2.2", "foo", "")]
    + [(dict(rho=0.035, level=v), "level") for v in (0, 1.5, True, "1", None, 5)]
    + [(dict(rho=0.035, image_size=v), "image_size") for v in ((28.5, 28), (28.0, 28), "28", None, (28,), (0, 28), 28.0)]
    + [(dict(rho=0.035, image_size=(27, 28)), "level")]
    + [(dict(rho=0.035, channels=v), "channels") for v in (0, -1, 1.5, True, None, "1")]
    + [(dict(rho=0.035, gradient=v), "gradient") for v in ("BPDA", None, 1, "exact")]
    + [(dict(rho=0.035, clip=v), "clip") for v in (1, 0, "yes", None, object(), "False")]
    + [(dict(rho=0.035, color=v), "color") for v in ("RGB", None, "hsv", 3)]
    + [(dict(rho=0.035, refine_steps=v), "refine_steps") for v in (-1, 1.5, True, None, "20")]
    + [(dict(rho=0.035, refine_step=v), "refine_step") for v in (0, 0.0, -0.01, math.inf, math.nan, True, 2.0, None, "0.01")]
)


@pytest.mark.parametrize("kwargs, argument", BAD_CONSTRUCTOR)
def test_constructor_bad_input_names_the_argument(kwargs, argument):
    if argument is None:
        assert SparsifyingFrontEnd(**kwargs).K == (27, 27, 27)
        return
    _names_argument(lambda: SparsifyingFrontEnd(**kwargs), argument)


def test_constructor_normalises_numpy_and_list_arguments():
    import numpy as np

    fe = SparsifyingFrontEnd(np.float64(0.035), level=np.int64(1), image_size=[28, 28], channels=np.int64(1), clip=np.bool_(True))
    assert fe.K == (27,) and fe.image_size == (28, 28) and fe.clip is True and type(fe.rho[0]) is float


T = WaveletTransform("coif1", (28, 28), 1)
X = rand(2, 1, 28, 28, seed=3)
C = randn(2, 1, 784, seed=4)
BAD_FUNCTIONS = (
    [(lambda v=v: sparsity_level(v, N), "rho") for v in (True, "0.1", None, 0.0, 2.0, math.nan)]
    + [(lambda v=v: sparsity_level(0.1, v), "N") for v in (0, 1.5, True, None, "784")]
    + [(lambda v=v: H_K(v, 3), "c") for v in (None, C.numpy(), C.long(), torch.tensor(1.0), torch.zeros(2, 0), C / 0)]
    + [(lambda v=v: H_K(C, v), "K") for v in (0, 785, 1.5, True, None, "3", (3, 3), [1.5])]
    + [(lambda v=v: S_K(X, 3, v), "transform") for v in (None, "coif1", torch.eye(784))]
    + [(lambda v=v: S_K(v, 3, T), "x") for v in (None, X.numpy(), X.long(), rand(2, 1, 32, 32), rand(28), X / 0)]
    + [(lambda v=v: S_K(X, v, T), "K") for v in (0, 785, 2.0, True, None, (3, 4))]
    + [(lambda v=v: P_K(v, X, 3, T), "e") for v in (None, X[:1], X.long(), rand(2, 1, 28, 27), X * math.inf)]
    + [(lambda v=v: P_K(X, v, 3, T), "x") for v in (None, X[0, 0, 0])]
    + [(lambda v=v: energy_captured(X, T, v), "Ks") for v in ([0], [785], [1.5], "15", 15, [], [True], None)]
    + [(lambda v=v: energy_captured(v, T, [1]), "x") for v in (rand(2, 3, 28, 28), None, X.long())]
    + [(lambda v=v: energy_captured(X, v, [1]), "transform") for v in (None, "coif1")]
    + [(lambda v=v: rgb_to_ycbcr(v), "x") for v in (X, None, rand(3, 28, 28), rand(2, 3, 4, 4).long())]
    + [(lambda v=v: ycbcr_to_rgb(v), "z") for v in (X, None)]
    + [(lambda v=v: rgb_to_ycbcr(rand(1, 3, 2, 2), offset=v), "offset") for v in (1, "yes", None)]
)


@pytest.mark.parametrize("case", range(len(BAD_FUNCTIONS)))
def test_functions_bad_input_names_the_argument(case):
    call, argument = BAD_FUNCTIONS[case]
    _names_argument(call, argument)


def test_methods_bad_input_names_the_argument():
    fe = SparsifyingFrontEnd(0.035, gradient="iterated", refine_steps=1)
    _names_argument(lambda: fe(None), "x")
    _names_argument(lambda: fe(X.numpy()), "x")
    _names_argument(lambda: fe.support(rand(2, 3, 28, 28)), "x")
    _names_argument(lambda: fe.coefficients(X.long()), "x")
    _names_argument(lambda: fe.project(X[:1], X), "e")
    _names_argument(lambda: fe.project(None, X), "e")
    _names_argument(lambda: fe.project(X, rand(2, 1, 32, 32)), "e")
    _names_argument(lambda: fe.iterated_gradient(X, X[:1]), "grad")
    _names_argument(lambda: fe.check(X + 2, "delta"), "delta")
    assert fe.check(X + 2, "delta", box=False) is not None


@pytest.mark.parametrize("mode", GRADIENTS)
def test_empty_batch(mode):
    fe = SparsifyingFrontEnd(0.035, gradient=mode, refine_steps=1)
    x = torch.zeros(0, 1, 28, 28, dtype=torch.float64)
    assert fe(x).shape == x.shape and fe(x).dtype == x.dtype
    assert fe.support(x).shape == (0, 1, 784)
    xr = x.clone().requires_grad_(True)
    fe(xr).sum().backward()
    assert xr.grad.shape == x.shape
