"""Tests for sparsenb.basis: dense reference bases, the fast wavelet transform, gamma."""
from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pytest
import pywt
import torch

from sparsenb.basis import (
    DenseTransform,
    WaveletTransform,
    band_labels,
    check_level,
    check_wavelet,
    dct_basis,
    gamma,
    l1_norms,
    pixel_basis,
    wavelet_basis,
)

WAVELETS = ["haar", "db5", "coif1", "sym9"]
# (wavelet, shape, level): every wavelet at levels 1 and 2 on MNIST's 28x28, and sym9 on 32x32
CASES = [(w, (28, 28), lev) for w in WAVELETS for lev in (1, 2)] + [
    ("sym9", (32, 32), 1),
    ("sym9", (32, 32), 2),
    ("sym9", (32, 32), 3),  # filter (18 taps) longer than the 8-sample last level: wraps around
]
CASE_IDS = [f"{w}-{s[0]}x{s[1]}-L{lev}" for w, s, lev in CASES]


def _wavedec2_flat(x: np.ndarray, wavelet: str, level: int) -> np.ndarray:
    """pywt.wavedec2 (periodization) flattened: cA, then per level (cH, cV, cD) raveled."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "level too high" is harmless with periodization
        coeffs = pywt.wavedec2(x, wavelet, mode="periodization", level=level)
    parts = [np.ravel(coeffs[0])]
    for cH, cV, cD in coeffs[1:]:
        parts += [np.ravel(cH), np.ravel(cV), np.ravel(cD)]
    return np.concatenate(parts)


def _wavedec2_array(x: np.ndarray, wavelet: str, level: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        coeffs = pywt.wavedec2(x, wavelet, mode="periodization", level=level)
    arr, _ = pywt.coeffs_to_array(coeffs)
    return arr


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(12345)


# --------------------------------------------------------------------------
# dense reference bases
# --------------------------------------------------------------------------
@pytest.mark.parametrize("wavelet,shape,level", CASES, ids=CASE_IDS)
def test_wavelet_basis_is_orthonormal(wavelet, shape, level):
    psi = wavelet_basis(wavelet, shape, level)
    N = shape[0] * shape[1]
    assert psi.dtype == torch.float64
    assert psi.shape == (N, N)
    eye = torch.eye(N, dtype=torch.float64)
    assert torch.allclose(psi @ psi.T, eye, rtol=0, atol=1e-12)
    assert torch.allclose(psi.T @ psi, eye, rtol=0, atol=1e-12)


@pytest.mark.parametrize("wavelet,shape,level", CASES, ids=CASE_IDS)
def test_wavelet_basis_matches_pywt_wavedec2(wavelet, shape, level, rng):
    psi = wavelet_basis(wavelet, shape, level).numpy()
    for _ in range(3):
        x = rng.standard_normal(shape)
        np.testing.assert_allclose(psi @ x.ravel(), _wavedec2_flat(x, wavelet, level), rtol=0, atol=1e-12)


def test_wavelet_basis_default_is_coif1_level1_28x28():
    assert torch.equal(wavelet_basis(), wavelet_basis("coif1", (28, 28), 1))


def test_wavelet_basis_returns_fresh_copy():
    a = wavelet_basis("haar", (8, 8), 1)
    ref = a.clone()
    a.zero_()
    b = wavelet_basis("haar", (8, 8), 1)
    assert torch.equal(b, ref)


def test_wavelet_basis_rectangular_image(rng):
    psi = wavelet_basis("db5", (8, 12), 2)
    assert psi.shape == (96, 96)
    assert torch.allclose(psi @ psi.T, torch.eye(96, dtype=torch.float64), rtol=0, atol=1e-12)
    x = rng.standard_normal((8, 12))
    np.testing.assert_allclose(psi.numpy() @ x.ravel(), _wavedec2_flat(x, "db5", 2), atol=1e-12)


def test_haar_basis_known_values():
    # one-level 2-D Haar on 2x2: A = (a+b+c+d)/2, H = (a+b-c-d)/2, V = (a-b+c-d)/2, D = (a-b-c+d)/2
    psi = wavelet_basis("haar", (2, 2), 1)
    expected = 0.5 * torch.tensor(
        [[1, 1, 1, 1], [1, 1, -1, -1], [1, -1, 1, -1], [1, -1, -1, 1]], dtype=torch.float64
    )
    assert torch.allclose(psi, expected, atol=1e-15)


@pytest.mark.parametrize("shape", [(28, 28), (8, 12)])
def test_dct_basis_orthonormal_and_matches_scipy(shape, rng):
    scipy_fft = pytest.importorskip("scipy.fft")
    D = dct_basis(shape)
    N = shape[0] * shape[1]
    assert D.dtype == torch.float64 and D.shape == (N, N)
    assert torch.allclose(D @ D.T, torch.eye(N, dtype=torch.float64), rtol=0, atol=1e-12)
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(D.numpy() @ x.ravel(), scipy_fft.dctn(x, norm="ortho").ravel(), atol=1e-12)


def test_pixel_basis_is_identity():
    P = pixel_basis((28, 28))
    assert P.dtype == torch.float64
    assert torch.equal(P, torch.eye(784, dtype=torch.float64))
    assert torch.equal(l1_norms(P), torch.ones(784, dtype=torch.float64))


# --------------------------------------------------------------------------
# l1 norms and gamma (Prop. 1)
# --------------------------------------------------------------------------
def test_l1_norms_rows():
    basis = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.0, -3.0], [0.25, 0.25, 0.25]], dtype=torch.float64)
    assert torch.allclose(l1_norms(basis), torch.tensor([3.5, 3.0, 0.75], dtype=torch.float64))
    assert gamma(basis) == pytest.approx(7.0)


@pytest.mark.parametrize("wavelet,shape,level", CASES, ids=CASE_IDS)
def test_gamma_is_twice_max_l1(wavelet, shape, level):
    psi = wavelet_basis(wavelet, shape, level)
    l1 = l1_norms(psi)
    assert l1.shape == (psi.shape[0],)
    assert torch.allclose(l1, psi.abs().sum(dim=1))
    g = gamma(psi)
    assert isinstance(g, float)
    assert g == pytest.approx(2.0 * float(l1.max()), rel=1e-15)
    # orthonormal rows have unit l2 norm, so 1 <= ||psi_k||_1 <= sqrt(N)
    assert float(l1.min()) >= 1.0 - 1e-12
    assert float(l1.max()) <= psi.shape[0] ** 0.5 + 1e-9


def test_pixel_gamma_is_two():
    assert gamma(pixel_basis((28, 28))) == pytest.approx(2.0, abs=1e-15)


def test_haar_gamma_known():
    # level-1 Haar basis functions are +-1/2 on 2x2 blocks: ||psi||_1 = 2, gamma = 4
    assert gamma(wavelet_basis("haar", (28, 28), 1)) == pytest.approx(4.0, abs=1e-12)


def test_dct_l1_much_bigger_than_wavelets():
    dct_max = float(l1_norms(dct_basis((28, 28))).max())
    # the DC basis image is constant 1/28 on 784 pixels: ||psi||_1 = sqrt(N) = 28
    assert dct_max == pytest.approx(28.0, rel=1e-12)
    for w in WAVELETS:
        lev1 = float(l1_norms(wavelet_basis(w, (28, 28), 1)).max())
        lev2 = float(l1_norms(wavelet_basis(w, (28, 28), 2)).max())
        assert dct_max > 5 * lev1, (w, lev1)
        assert dct_max > 2.5 * lev2, (w, lev2)
        assert lev2 > lev1  # coarser basis functions are spread over more pixels


# --------------------------------------------------------------------------
# band labels
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,level,expected",
    [
        ((28, 28), 1, {"A1": 196, "H1": 196, "V1": 196, "D1": 196}),
        ((28, 28), 2, {"A2": 49, "H2": 49, "V2": 49, "D2": 49, "H1": 196, "V1": 196, "D1": 196}),
        ((32, 32), 3, {"A3": 16, "H3": 16, "V3": 16, "D3": 16, "H2": 64, "V2": 64, "D2": 64,
                       "H1": 256, "V1": 256, "D1": 256}),
        ((8, 12), 2, {"A2": 6, "H2": 6, "V2": 6, "D2": 6, "H1": 24, "V1": 24, "D1": 24}),
    ],
)
def test_band_labels_length_and_counts(shape, level, expected):
    labels = band_labels(shape, level)
    assert len(labels) == shape[0] * shape[1]
    assert Counter(labels) == expected
    # basis order: approximation first, then coarse-to-fine, H, V, D within a level, each band contiguous
    order = [f"A{level}"] + [f"{b}{lev}" for lev in range(level, 0, -1) for b in "HVD"]
    runs = [lab for i, lab in enumerate(labels) if i == 0 or labels[i - 1] != lab]
    assert runs == order


@pytest.mark.parametrize("wavelet,level", [("haar", 1), ("coif1", 2), ("sym9", 2)])
def test_band_labels_agree_with_basis(wavelet, level):
    """A constant image has only approximation coefficients; a horizontal-stripe image only A and H."""
    labels = np.array(band_labels((28, 28), level))
    psi = wavelet_basis(wavelet, (28, 28), level)
    c = psi @ torch.ones(784, dtype=torch.float64)
    is_a = labels == f"A{level}"
    assert torch.all(c[torch.from_numpy(~is_a)].abs() < 1e-12)
    assert torch.allclose(c[torch.from_numpy(is_a)], torch.full((int(is_a.sum()),), 2.0**level, dtype=torch.float64))
    # image constant along each row (varies only down the columns): no V or D content
    stripes = torch.from_numpy(np.repeat(np.random.default_rng(0).standard_normal((28, 1)), 28, axis=1)).flatten()
    c = psi @ stripes
    vd = np.char.startswith(labels, "V") | np.char.startswith(labels, "D")
    assert torch.all(c[torch.from_numpy(vd)].abs() < 1e-12)
    h = np.char.startswith(labels, "H")
    assert float(c[torch.from_numpy(h)].abs().max()) > 1e-3


# --------------------------------------------------------------------------
# the fast separable transform
# --------------------------------------------------------------------------
@pytest.mark.parametrize("wavelet,shape,level", CASES, ids=CASE_IDS)
def test_wavelet_transform_matches_dense_float64(wavelet, shape, level):
    psi = wavelet_basis(wavelet, shape, level)
    T = WaveletTransform(wavelet, shape, level)
    assert T.N == psi.shape[0]
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, *shape, generator=g, dtype=torch.float64)
    c = T.analysis(x)
    assert c.shape == (2, 3, T.N) and c.dtype == torch.float64
    assert torch.allclose(c, x.flatten(-2) @ psi.T, rtol=0, atol=1e-12)
    cc = torch.randn(2, 3, T.N, generator=g, dtype=torch.float64)
    xs = T.synthesis(cc)
    assert xs.shape == (2, 3, *shape) and xs.dtype == torch.float64
    assert torch.allclose(xs.flatten(-2), cc @ psi, rtol=0, atol=1e-12)
    assert torch.allclose(T.synthesis(c), x, rtol=0, atol=1e-12)
    assert torch.allclose(T.analysis(xs), cc, rtol=0, atol=1e-12)
    assert torch.allclose(T.dense(), psi, rtol=0, atol=1e-12)


@pytest.mark.parametrize("wavelet,shape,level", CASES, ids=CASE_IDS)
def test_wavelet_transform_matches_dense_float32(wavelet, shape, level):
    psi = wavelet_basis(wavelet, shape, level)
    T = WaveletTransform(wavelet, shape, level)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(4, 1, *shape, generator=g, dtype=torch.float32)
    c = T.analysis(x)
    assert c.dtype == torch.float32
    ref = (x.double().flatten(-2) @ psi.T).float()
    assert torch.allclose(c, ref, rtol=0, atol=2e-5)
    xr = T.synthesis(c)
    assert xr.dtype == torch.float32
    assert torch.allclose(xr, x, rtol=0, atol=2e-5)


def test_wavelet_transform_single_image_and_extra_leading_dims():
    T = WaveletTransform("db5", (28, 28), 2)
    psi = wavelet_basis("db5", (28, 28), 2)
    x = torch.rand(28, 28, dtype=torch.float64)
    assert torch.allclose(T.analysis(x), psi @ x.flatten(), atol=1e-12)
    x5 = torch.rand(2, 2, 2, 28, 28, dtype=torch.float64)
    assert torch.allclose(T.analysis(x5), x5.flatten(-2) @ psi.T, atol=1e-12)


def test_wavelet_transform_is_adjoint_and_differentiable():
    T = WaveletTransform("sym9", (28, 28), 2)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(3, 1, 28, 28, generator=g, dtype=torch.float64, requires_grad=True)
    c = torch.randn(3, 1, 784, generator=g, dtype=torch.float64)
    (T.analysis(x) * c).sum().backward()
    # d/dx <Psi x, c> = Psi^T c
    assert torch.allclose(x.grad, T.synthesis(c), atol=1e-12)


@pytest.mark.parametrize("wavelet,shape,level", CASES, ids=CASE_IDS)
def test_analysis_pyramid_matches_coeffs_to_array(wavelet, shape, level, rng):
    T = WaveletTransform(wavelet, shape, level)
    x = rng.standard_normal(shape)
    pyr = T.analysis_pyramid(torch.from_numpy(x))
    assert pyr.shape == shape
    np.testing.assert_allclose(pyr.numpy(), _wavedec2_array(x, wavelet, level), rtol=0, atol=1e-12)
    assert torch.allclose(T.synthesis_pyramid(pyr), torch.from_numpy(x), atol=1e-12)
    # pyramid <-> basis-order permutations are inverse to each other
    c = T.analysis(torch.from_numpy(x))
    assert torch.equal(T.from_pyramid(pyr), c)
    assert torch.equal(T.to_pyramid(c), pyr)


def test_wavelet_transform_does_not_mutate_input():
    T = WaveletTransform("coif1", (28, 28), 2)
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    x0 = x.clone()
    c = T.analysis(x)
    c0 = c.clone()
    T.synthesis(c)
    T.synthesis_pyramid(T.analysis_pyramid(x))
    assert torch.equal(x, x0) and torch.equal(c, c0)


def test_wavelet_transform_size_errors():
    T = WaveletTransform("coif1", (28, 28), 1)
    with pytest.raises(ValueError, match="x"):
        T.analysis(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="c must"):
        T.synthesis(torch.zeros(1, 1, 783))
    with pytest.raises(ValueError, match="y must"):
        T.synthesis_pyramid(torch.zeros(1, 1, 28, 27))


def test_dense_transform_dct_matches_scipy():
    scipy_fft = pytest.importorskip("scipy.fft")
    T = DenseTransform(dct_basis((28, 28)), (28, 28))
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    c = T.analysis(x)
    assert c.shape == (2, 1, 784)
    ref = scipy_fft.dctn(x.numpy(), axes=(-2, -1), norm="ortho").reshape(2, 1, 784)
    np.testing.assert_allclose(c.numpy(), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        T.synthesis(c).numpy(), scipy_fft.idctn(ref.reshape(2, 1, 28, 28), axes=(-2, -1), norm="ortho"), atol=1e-12
    )
    assert torch.allclose(T.synthesis(c), x, atol=1e-12)
    # float32 runs in float32
    c32 = T.analysis(x.float())
    assert c32.dtype == torch.float32
    assert torch.allclose(c32.double(), c, atol=1e-5)
    assert torch.equal(T.dense(), dct_basis((28, 28)))


def test_dense_transform_pixel_is_identity():
    T = DenseTransform(pixel_basis((28, 28)), (28, 28))
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    assert torch.equal(T.analysis(x), x.flatten(-2))
    assert torch.equal(T.synthesis(x.flatten(-2)), x)


def test_dense_transform_wrapping_wavelet_basis_matches_fast_transform():
    D = DenseTransform(wavelet_basis("coif1", (28, 28), 2), (28, 28))
    T = WaveletTransform("coif1", (28, 28), 2)
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    assert torch.allclose(D.analysis(x), T.analysis(x), atol=1e-12)


def test_dense_transform_errors():
    with pytest.raises(ValueError, match="basis"):
        DenseTransform(torch.eye(10, dtype=torch.float64), (28, 28))
    T = DenseTransform(pixel_basis((4, 4)), (4, 4))
    with pytest.raises(ValueError, match="x"):
        T.analysis(torch.zeros(1, 1, 5, 5))


# --------------------------------------------------------------------------
# argument errors
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["db5", "coif1", "sym9", "haar"])
def test_check_wavelet_accepts_orthogonal(name):
    assert check_wavelet(name).orthogonal


@pytest.mark.parametrize("name", ["foo", "db0", "morl", "bior2.2", "rbio1.3", ""])
@pytest.mark.parametrize("factory", ["wavelet_basis", "WaveletTransform", "check_wavelet"])
def test_bad_wavelet_raises_value_error_naming_wavelet(name, factory):
    fn = {"wavelet_basis": wavelet_basis, "WaveletTransform": WaveletTransform, "check_wavelet": check_wavelet}[factory]
    with pytest.raises(ValueError, match="wavelet") as info:
        fn(name)
    assert repr(name) in str(info.value)


def test_non_orthogonal_wavelet_message_says_so():
    with pytest.raises(ValueError, match=r"wavelet='bior2\.2' does not give an orthonormal basis"):
        wavelet_basis("bior2.2")


def test_wavelet_must_be_a_string():
    with pytest.raises(TypeError, match="wavelet"):
        wavelet_basis(pywt.Wavelet("db5"))


@pytest.mark.parametrize(
    "shape,level",
    [((28, 28), 0), ((28, 28), -1), ((28, 28), 3), ((28, 28), 5), ((32, 32), 6), ((28, 32), 3), ((32, 28), 3)],
)
@pytest.mark.parametrize("factory", ["wavelet_basis", "WaveletTransform", "band_labels", "check_level"])
def test_bad_level_raises_value_error_naming_level(shape, level, factory):
    call = {
        "wavelet_basis": lambda: wavelet_basis("coif1", shape, level),
        "WaveletTransform": lambda: WaveletTransform("coif1", shape, level),
        "band_labels": lambda: band_labels(shape, level),
        "check_level": lambda: check_level(level, shape),
    }[factory]
    with pytest.raises(ValueError, match="level"):
        call()


@pytest.mark.parametrize("level", [1.0, "1", True, None])
def test_level_must_be_an_int(level):
    with pytest.raises(TypeError, match="level"):
        wavelet_basis("haar", (28, 28), level)


def test_numpy_int_level_accepted():
    assert torch.equal(wavelet_basis("haar", (8, 8), np.int64(2)), wavelet_basis("haar", (8, 8), 2))


@pytest.mark.parametrize("shape", [(28,), (28, 28, 1), (0, 28), (28, -2)])
def test_bad_shape_raises_naming_shape(shape):
    with pytest.raises(ValueError, match="shape"):
        dct_basis(shape)
    with pytest.raises(ValueError, match="shape"):
        WaveletTransform("haar", shape, 1)


# --------------------------------------------------------------------------
# every wavelet check_wavelet accepts must give an orthonormal basis
# --------------------------------------------------------------------------
def _accepted_wavelets():
    names = []
    for name in pywt.wavelist(kind="discrete"):
        try:
            check_wavelet(name)
        except ValueError:
            continue
        names.append(name)
    return names


def test_accepted_wavelets_are_orthonormal():
    """haar, dbN, symN, coifN: orthonormal up to PyWavelets' filter precision (symN ~ 3e-11)."""
    eye = torch.eye(256, dtype=torch.float64)
    accepted = _accepted_wavelets()
    assert "dmey" not in accepted
    assert {"haar", "db1", "db38", "sym20", "coif17"} <= set(accepted)
    for w in accepted:
        psi = wavelet_basis(w, (16, 16), 1)
        err = float((psi @ psi.T - eye).abs().max())
        assert err < 1e-10, (w, err)


def test_dmey_rejected():
    """PyWavelets calls 'dmey' orthogonal, but its FIR approximation is not (|Psi Psi^T - I| ~ 5e-3)."""
    with pytest.raises(ValueError, match="wavelet"):
        check_wavelet("dmey")
    with pytest.raises(ValueError, match="wavelet"):
        wavelet_basis("dmey", (28, 28), 1)


# --------------------------------------------------------------------------
# bad input, as a new user would try it: one ArgumentError naming the argument
# --------------------------------------------------------------------------
from sparsenb.checks import ArgumentError  # noqa: E402

_T = WaveletTransform("haar", (8, 8), 1)
_D = DenseTransform(pixel_basis((4, 4)), (4, 4))
_X = torch.rand(2, 1, 8, 8, dtype=torch.float64)
BAD_SHAPES = [(28.5, 28), (28.0, 28), "28", None, (28,), (0, 28), 28.0, (True, 28), np.array([8, 8])]
BAD = (
    [(lambda v=v: wavelet_basis("haar", v, 1), "shape") for v in BAD_SHAPES]
    + [(lambda v=v: dct_basis(v), "shape") for v in BAD_SHAPES]
    + [(lambda v=v: pixel_basis(v), "shape") for v in BAD_SHAPES]
    + [(lambda v=v: band_labels(v, 1), "shape") for v in BAD_SHAPES]
    + [(lambda v=v: WaveletTransform("haar", v, 1), "shape") for v in BAD_SHAPES]
    + [(lambda v=v: DenseTransform(torch.eye(64, dtype=torch.float64), v), "shape") for v in BAD_SHAPES]
    + [(lambda v=v: check_level(v, (8, 8)), "level") for v in (0, 1.5, True, None, "1", 4)]
    + [(lambda v=v: check_wavelet(v), "wavelet") for v in (None, 3, "bior2.2", "dmey", "")]
    + [(lambda v=v: l1_norms(v), "basis") for v in (None, np.eye(3), torch.eye(3, dtype=torch.int64), torch.ones(2, 3), torch.full((2, 2), np.nan))]
    + [(lambda v=v: gamma(v), "basis") for v in (None, torch.ones(3), torch.zeros(0, 0))]
    + [(lambda v=v: DenseTransform(v, (2, 2)), "basis") for v in (None, torch.ones(4, 4, dtype=torch.float64), torch.eye(4, dtype=torch.int64), torch.eye(3))]
    + [(lambda v=v: _T.analysis(v), "x") for v in (None, _X.numpy(), _X.long(), torch.rand(2, 1, 8, 9), torch.rand(8))]
    + [(lambda v=v: _T.analysis_pyramid(v), "x") for v in (None, torch.rand(8, 7))]
    + [(lambda v=v: _T.synthesis_pyramid(v), "y") for v in (None, torch.rand(8, 7))]
    + [(lambda v=v: _T.from_pyramid(v), "y") for v in (None, torch.rand(8, 7))]
    + [(lambda v=v: _T.synthesis(v), "c") for v in (None, torch.rand(2, 63), torch.ones(64, dtype=torch.int64), torch.tensor(1.0))]
    + [(lambda v=v: _T.to_pyramid(v), "c") for v in (None, torch.rand(2, 63))]
    + [(lambda v=v: _D.analysis(v), "x") for v in (None, torch.rand(1, 5, 5))]
    + [(lambda v=v: _D.synthesis(v), "c") for v in (None, torch.rand(1, 15))]
)


@pytest.mark.parametrize("case", range(len(BAD)))
def test_bad_input_raises_one_argument_error_naming_it(case):
    call, argument = BAD[case]
    with pytest.raises(ArgumentError) as info:
        call()
    err = info.value
    assert isinstance(err, TypeError) and isinstance(err, ValueError)
    assert err.argument.split("[")[0] == argument, str(err)
    assert str(err).startswith(err.argument + " "), str(err)


def test_shapes_as_lists_sizes_and_numpy_ints_are_accepted():
    assert WaveletTransform("haar", [8, 8], 1).shape == (8, 8)
    assert WaveletTransform("haar", 8, np.int64(1)).shape == (8, 8)
    assert torch.equal(dct_basis((np.int64(4), 4)), dct_basis((4, 4)))
    assert band_labels(torch.Size([4, 4]), 1)[0] == "A1"


def test_dense_transform_accepts_float32_bases():
    D = DenseTransform(dct_basis((4, 4)).float(), (4, 4))
    x = torch.rand(3, 1, 4, 4)
    assert torch.allclose(D.synthesis(D.analysis(x)), x, atol=1e-5)
