"""Tests for sparsenb.theory: closed forms, brute force and Monte Carlo with tolerances that cannot pass by accident."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import pywt
import scipy.fft
import scipy.special
import scipy.stats
import torch
from torch import nn

from sparsenb import theory as T
from sparsenb.chapters import section as chapter_section
from sparsenb.lab import stats
from sparsenb.basis import DenseTransform, WaveletTransform, dct_basis, gamma, l1_norms, pixel_basis, wavelet_basis
from sparsenb.checks import ArgumentError
from sparsenb.frontend import P_K, S_K, support_overlap


def dense_1d(transform) -> np.ndarray:
    """Rows psi_k of a 1-D transform, by analysing the identity."""
    return transform.analysis(np.eye(transform.N)).numpy().T


# ---------------------------------------------------------------------------
# weight models
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dist", sorted(T.WEIGHT_MODELS))
def test_weight_models_moments_zero_median_and_cdf(dist):
    model = T.weight_model(dist)
    w = T.sample_weights(dist, 400_000, 0)
    n = len(w)
    # E|w| = mu within 5 standard errors, and 5 SE is far below the gap to any other model's mu
    se = np.std(np.abs(w)) / math.sqrt(n)
    assert abs(np.mean(np.abs(w)) - model.mu) < 5 * se
    others = [m.mu for m in T.WEIGHT_MODELS.values() if m.name != dist]
    assert all(abs(model.mu - o) > 20 * se for o in others)
    assert abs(np.mean(w**2) - model.sigma2) < 5 * np.std(w**2) / math.sqrt(n)
    assert abs(np.mean(w)) < 5 / math.sqrt(n) and abs(np.mean(w > 0) - 0.5) < 5 * 0.5 / math.sqrt(n)
    kurt = scipy.stats.kurtosis(w)  # excess
    assert abs(kurt - model.excess_kurtosis) < 0.1
    # the CDF matches the empirical CDF, the cf the empirical cf
    xs = np.linspace(-3, 3, 13)
    assert np.max(np.abs(model.cdf(xs) - (w[:, None] <= xs).mean(0))) < 5e-3
    ts = np.array([0.3, 1.0, 2.0, 4.0])
    assert np.max(np.abs(model.cf(ts) - np.cos(np.outer(w[:100_000], ts)).mean(0))) < 1.5e-2
    # the envelope bounds |cf|
    tt = np.linspace(0, 200, 20001)
    cf = np.abs(model.cf(tt))
    ok = cf > 1e-250  # below that, log(cf) underflows
    assert ok.sum() > 100
    assert np.all(np.log(cf[ok]) <= model.log_cf_envelope(tt[ok]) + 1e-12)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="dist"):
        T.weight_model("cauchy")
    with pytest.raises(TypeError, match="seed"):
        T.make_rng(-1)
    with pytest.raises(ValueError, match="level"):
        T.Wavelet1D("coif1", 24, 4)
    with pytest.raises(ValueError, match="wavelet"):
        T.Wavelet1D("bior2.2", 16, 1)
    with pytest.raises(ValueError, match="N"):
        T.DCT1D(1)
    with pytest.raises(ValueError, match="spec"):
        T.transform_1d("coif1:deep", 16)
    t = T.DCT1D(16)
    with pytest.raises(ValueError, match="K"):
        T.delta_w(torch.zeros(16), torch.ones(16), 17, t)
    with pytest.raises(ValueError, match="eps"):
        T.delta_0(torch.ones(3), eps=-1.0)
    with pytest.raises(ValueError, match="x"):
        t.analysis(np.zeros(15))
    with pytest.raises(ValueError, match="delta"):
        T.chebyshev_bound(10, 0.0)
    with pytest.raises(ValueError, match="kind"):
        T.prop1_perturbation("worst", torch.zeros(1, 16), 2, t, 0.1)
    with pytest.raises(ValueError, match="bias"):
        T.random_two_layer(16, 4, bias="zero")
    with pytest.raises(TypeError, match="net"):
        T.equivalent_linear(nn.Sequential(nn.Linear(4, 2, dtype=torch.float64), nn.Tanh()), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="^t "):
        T.fgsm_direction(T.relu_mlp([4, 3, 2]), torch.zeros(2, 4), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="^t "):
        T.fgsm_direction(T.relu_mlp([4, 3, 2]), torch.zeros(2, 4), [0, 1])  # labels are an int64 tensor
    with pytest.raises(ValueError, match="^eps "):
        T.worst_pair_perturbation(torch.zeros(1, 2, 4), torch.zeros(1, 2), torch.tensor([0]), float("inf"))
    with pytest.raises(ValueError, match="^n_draws "):
        T.linear_sweep(["dct"], [(16, 2)], n_draws=1.5)
    # every check raises the package's one exception type, naming the argument
    for bad in (lambda: T.weight_model("cauchy"), lambda: T.delta_0(torch.ones(3), eps=-1.0), lambda: T.make_rng(-1)):
        with pytest.raises(ArgumentError):
            bad()


def test_make_rng_is_keyed_and_reproducible():
    a = T.make_rng(3, "x", 16).random(4)
    assert np.array_equal(a, T.make_rng(3, "x", 16).random(4))
    assert not np.array_equal(a, T.make_rng(3, "x", 32).random(4))
    assert not np.array_equal(a, T.make_rng(4, "x", 16).random(4))


# ---------------------------------------------------------------------------
# 1-D transforms and basis norms
# ---------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Level value")  # pywt.wavedec, called directly below
@pytest.mark.parametrize("spec", ["haar:1", "coif1:1", "db5:2", "coif1:full", "dct"])
def test_1d_transforms_are_orthonormal_and_match_their_references(spec):
    t = T.transform_1d(spec, 64)
    psi = dense_1d(t)
    np.testing.assert_allclose(psi @ psi.T, np.eye(64), atol=1e-12)
    x = np.random.default_rng(0).standard_normal((3, 64))
    c = t.analysis(x).numpy()
    if spec == "dct":
        ref = scipy.fft.dct(x, norm="ortho", axis=-1)
    else:
        ref = np.concatenate(pywt.wavedec(x, t.wavelet, mode="periodization", level=t.level, axis=-1), -1)
    np.testing.assert_allclose(c, ref, atol=1e-12)
    np.testing.assert_allclose(t.synthesis(c).numpy(), x, atol=1e-12)
    np.testing.assert_allclose(psi @ x.T, c.T, atol=1e-12)


@pytest.mark.parametrize("spec", ["haar:1", "coif1:1", "db5:3", "coif1:full", "dct"])
def test_psi_norms_and_exact_maxima(spec):
    t = T.transform_1d(spec, 128)
    psi = dense_1d(t)
    l1, linf = T.psi_norms(t, batch=7)  # a batch size that does not divide N
    np.testing.assert_allclose(l1.numpy(), np.abs(psi).sum(1), atol=1e-12)
    np.testing.assert_allclose(linf.numpy(), np.abs(psi).max(1), atol=1e-12)
    # representative indices attain the maxima over all k
    m1, minf = T.max_psi_norms(t)
    assert m1 == pytest.approx(np.abs(psi).sum(1).max(), abs=1e-12)
    assert minf == pytest.approx(np.abs(psi).max(1).max(), abs=1e-12)
    if spec == "dct":
        assert m1 == pytest.approx(math.sqrt(128), rel=1e-12)  # Cauchy-Schwarz, attained at k = 0
        k = np.arange(128)
        closed = np.array(
            [np.sqrt((1 if kk == 0 else 2) / 128) * np.abs(np.cos(np.pi * (2 * np.arange(128) + 1) * kk / 256)).sum() for kk in k]
        )
        np.testing.assert_allclose(l1.numpy(), closed, atol=1e-12)
    else:  # periodization: every band's functions are shifts of one another
        starts = t.band_starts() + [128]
        for a, b in zip(starts[:-1], starts[1:]):
            assert np.ptp(l1.numpy()[a:b]) < 1e-12


def test_psi_norms_for_images_match_the_dense_bases():
    t = WaveletTransform("coif1", (8, 8), 1)
    l1, _ = T.psi_norms(t)
    np.testing.assert_allclose(l1.numpy(), l1_norms(wavelet_basis("coif1", (8, 8), 1)).numpy(), atol=1e-12)
    d = DenseTransform(dct_basis((8, 8)), (8, 8))
    np.testing.assert_allclose(T.psi_norms(d)[0].numpy(), l1_norms(dct_basis((8, 8))).numpy(), atol=1e-12)


@pytest.mark.parametrize("spec", ["coif1:1", "dct"])
def test_sparse_signal_has_the_drawn_support(spec):
    t = T.transform_1d(spec, 256)
    x, support = T.sparse_signal(t, 12, 5)
    c = t.analysis(x).numpy()
    assert np.count_nonzero(np.abs(c) > 1e-9) == 12
    assert np.array_equal(np.flatnonzero(S_K(x, 12, t).numpy()), support)


# ---------------------------------------------------------------------------
# Sec. IV: closed forms and brute force
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dist", ["gaussian", "laplace", "uniform"])
@pytest.mark.parametrize("spec", ["haar:1", "dct"])
def test_z_k_mean_and_variance_lemma4(spec, dist):
    N, K, n = 64, 8, 60_000
    t = T.transform_1d(spec, N)
    x, support = T.sparse_signal(t, K, 1)
    mom = T.z_k_moments(t, support, dist)
    model = T.weight_model(dist)
    w = torch.from_numpy(model.sample((n, N), T.make_rng(2, spec, dist)))
    z = T.z_k(w, x, K, t).numpy()
    # exact moments: E[Z_K] = K mu; var <= K(sigma^2 + mu^2), strictly for these supports
    assert mom.mean == pytest.approx(K * model.mu)
    assert mom.var <= mom.var_bound and mom.var_bound == pytest.approx(K * (1 + model.mu**2))
    assert mom.var < 0.999 * mom.var_bound
    # Monte Carlo mean within 4 SE of K mu, with 4 SE below 2% of K mu (so a wrong mean,
    # e.g. K sigma or K mu^2, would fail)
    se = np.std(z) / math.sqrt(n)
    assert 4 * se < 0.02 * K * model.mu
    assert abs(z.mean() - K * model.mu) < 4 * se
    # Monte Carlo variance matches the exact formula within 5 SE of the sample variance
    se_var = np.std((z - z.mean()) ** 2) / math.sqrt(n)
    assert abs(z.var() - mom.var) < 5 * se_var
    assert 5 * se_var < 0.06 * mom.var


def test_z_k_moments_brute_force_small_support():
    # the variance formula against a direct evaluation of the sums in the proof
    t = T.DCT1D(8)
    psi = dense_1d(t)
    S = [1, 4, 6]
    mom = T.z_k_moments(t, S, "laplace")
    mu = T.weight_model("laplace").mu
    var = sum(1 + mu**2 - 2 * mu**2 * np.sum(psi[i] ** 4) for i in S)
    var += sum(-2 * mu**2 * np.sum(psi[i] ** 2 * psi[j] ** 2) for i in S for j in S if i != j)
    assert mom.var == pytest.approx(var, rel=1e-12)


def test_chebyshev_bound_formula():
    mu = T.weight_model("gaussian").mu
    np.testing.assert_allclose(T.chebyshev_bound([10, 100], 0.5), 1 - (1 + mu**2) / (np.array([10, 100]) * 0.25))
    assert T.chebyshev_bound(1, 0.1) == 0.0  # vacuous, clipped


def _transforms_16():
    return {
        "coif1 1-D": (T.Wavelet1D("coif1", 16, 1), (16,)),
        "haar full 1-D": (T.Wavelet1D("haar", 16, "full"), (16,)),
        "dct 1-D": (T.DCT1D(16), (16,)),
        "haar 4x4": (WaveletTransform("haar", (4, 4), 1), (4, 4)),
        "dct 4x4": (DenseTransform(dct_basis((4, 4)), (4, 4)), (4, 4)),
    }


@pytest.mark.parametrize("name", list(_transforms_16()))
def test_white_box_distortion_is_the_max_over_all_sign_vectors(name):
    t, shape = _transforms_16()[name]
    rng = np.random.default_rng(7)
    signs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=16)), dtype=torch.float64)  # all 2^16
    eps = 0.3
    for draw in range(3):
        w = torch.from_numpy(rng.standard_normal(shape))
        x = torch.from_numpy(rng.random(shape))
        K = 3 + 2 * draw
        p = P_K(w, x, K, t).reshape(16)
        brute = (eps * signs @ p).abs().max()
        dw = T.delta_w(w[None], x, K, t, eps)[0]
        assert float(dw) == pytest.approx(float(brute), rel=1e-12)
        # the white box perturbation attains it and is admissible
        e = T.white_box_perturbation(w, x, K, t, eps)
        assert float(e.abs().max()) <= eps
        assert float((e.reshape(16) @ p).abs()) == pytest.approx(float(brute), rel=1e-12)
        # and Eq. (3): w^T P_K(e, x) = e^T P_K(w, x)
        assert float(w.reshape(16) @ P_K(e, x, K, t).reshape(16)) == pytest.approx(float(e.reshape(16) @ p), rel=1e-10)


@pytest.mark.parametrize("name", list(_transforms_16()))
def test_lemma1_bound_holds_on_every_draw_and_linear_distortions_agree(name):
    t, shape = _transforms_16()[name]
    rng = np.random.default_rng(11)
    w = torch.from_numpy(rng.standard_normal((500, *shape)))
    x = torch.from_numpy(rng.random(shape))
    for K in (1, 4, 16):
        out = T.linear_distortions(w, x, K, t, eps=0.2)
        assert bool((out["lemma1_bound"] >= out["delta_w"] * (1 - 1e-12)).all())
        # the single-quantity functions agree with the batched one
        torch.testing.assert_close(out["delta_w"], T.delta_w(w, x, K, t, 0.2), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(out["delta_sw"], T.delta_sw(w, x, K, t, 0.2), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(out["lemma1_bound"], T.lemma1_bound(w, x, K, t, 0.2), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(out["delta_0"], T.delta_0(w, 0.2, t), rtol=1e-12, atol=1e-12)
    # K = N: P_K is the identity, so Delta_W = Delta_SW = Delta_0
    out = T.linear_distortions(w, x, 16, t, eps=0.2)
    torch.testing.assert_close(out["delta_w"], out["delta_0"], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out["delta_sw"], out["delta_0"], rtol=1e-10, atol=1e-10)


def test_lemma1_bound_is_exact_for_non_overlapping_supports():
    # pixel basis: P_K(w, x) keeps K entries of w, so Delta_W = bound = eps * sum |w_k|
    t = DenseTransform(pixel_basis((4, 4)), (4, 4))
    w = torch.from_numpy(np.random.default_rng(0).standard_normal((50, 4, 4)))
    x = torch.from_numpy(np.random.default_rng(1).random((4, 4)))
    out = T.linear_distortions(w, x, 5, t, eps=0.5)
    torch.testing.assert_close(out["lemma1_bound"], out["delta_w"], rtol=1e-12, atol=1e-12)


def test_prop2_paths_are_running_means():
    df = T.prop2_paths(["uniform"], [4, 16, 64], n_paths=3, eps=0.5, seed=0)
    assert set(df.N) == {4, 16, 64} and len(df) == 9
    # paths are nested: N * value is increasing along each path
    for _, p in df.groupby("path"):
        s = (p.sort_values("N").N * p.sort_values("N").delta_0_over_N).to_numpy()
        assert np.all(np.diff(s) > 0)
    assert df.eps_mu.iloc[0] == pytest.approx(0.5 * math.sqrt(3) / 2)


def test_linear_sweep_is_reproducible_and_consistent():
    a = T.linear_sweep(["coif1:1", "dct"], [(64, 4), (128, 8)], "laplace", n_draws=40, eps=0.1, seed=3)
    b = T.linear_sweep(["coif1:1", "dct"], [(64, 4), (128, 8)], "laplace", n_draws=40, eps=0.1, seed=3)
    assert a.draws.equals(b.draws) and a.cases.equals(b.cases)
    assert len(a.draws) == 2 * 2 * 40 and len(a.cases) == 4
    d = a.draws
    assert (d.lemma1_bound >= d.delta_w * (1 - 1e-12)).all()
    np.testing.assert_allclose(d.delta_sw, 0.1 * d.z_k.abs())
    # common random numbers: same Delta_0 for both bases at a given (N, K)
    assert np.array_equal(d[d.basis == "dct"].delta_0.to_numpy(), d[d.basis == "coif1:1"].delta_0.to_numpy())
    assert (a.cases.z_var <= a.cases.z_var_bound).all()


def test_image_white_box_on_mnist(mnist_test):
    x = mnist_test[0][:20].double()
    transforms = {"coif1": WaveletTransform("coif1", (28, 28), 1), "dct": DenseTransform(dct_basis((28, 28)), (28, 28))}
    df = T.image_white_box(x, transforms, [10, 27], eps=0.1, seed=0)
    assert len(df) == 2 * 2 * 20
    assert (df.lemma1_bound >= df.delta_w * (1 - 1e-12)).all()
    # the white box is the strongest attack through the front end
    assert (df.delta_w >= df.delta_sw * (1 - 1e-12)).all()
    # localized basis: a wavelet's white box distortion is well below the DCT's
    m = df.groupby("basis").delta_w.mean()
    assert m["coif1"] < 0.5 * m["dct"]


# ---------------------------------------------------------------------------
# Lemmas 2 and 3: exact KS distances
# ---------------------------------------------------------------------------
def test_ks_to_normal_against_closed_forms():
    xs = np.linspace(-8, 8, 800_001)
    phi = scipy.special.ndtr(xs)
    # one term: the law itself
    for dist in ("uniform", "laplace"):
        direct = np.abs(T.weight_model(dist).cdf(xs) - phi).max()
        assert T.ks_to_normal([2.5], dist) == pytest.approx(direct, abs=1e-6)
    # two uniform terms (Haar): a triangular law on [-sqrt 6, sqrt 6]
    c = math.sqrt(6)
    tri = np.where(xs < 0, (xs + c) ** 2 / (2 * c * c), 1 - (c - xs) ** 2 / (2 * c * c))
    tri = np.where(xs < -c, 0.0, np.where(xs > c, 1.0, tri))
    assert T.ks_to_normal([1.0, -1.0], "uniform") == pytest.approx(np.abs(tri - phi).max(), abs=2e-6)
    assert T.ks_to_normal(np.ones(20), "gaussian") == 0.0


def test_ks_to_normal_against_monte_carlo_and_edgeworth():
    _, psi = T.lemma2_vector("fixed", 64, "coif1", 1)
    exact = T.ks_to_normal(psi, "laplace")
    s = T.standardized_projections(psi, "laplace", 300_000, 0)
    mc = scipy.stats.kstest(s, "norm").statistic
    assert abs(mc - exact) < 3.0 / math.sqrt(300_000)  # the MC noise of a KS statistic is ~0.9/sqrt(n)
    assert exact > 0.01  # not vacuous: a localized function stays far from Gaussian
    # many equal terms: the Edgeworth term is accurate, and shrinks like 1/N
    k64, k1024 = T.ks_to_normal(np.ones(64), "laplace"), T.ks_to_normal(np.ones(1024), "laplace")
    assert k64 == pytest.approx(T.edgeworth_ks(np.ones(64), "laplace"), rel=0.05)
    assert k64 / k1024 == pytest.approx(16, rel=0.1)


def test_lemma2_localized_functions_do_not_converge_and_spread_ones_do():
    df = T.lemma2_sweep([16, 256, 4096], ["laplace"])
    ks = df.pivot(index="N", columns="case", values="ks")
    fixed = [c for c in ks.columns if "finest" in c][0]
    assert np.ptp(ks[fixed]) < 1e-9  # the same few taps for every N
    for c in ks.columns:
        if c != fixed:
            assert ks[c].iloc[-1] < ks[c].iloc[0] / 100


def test_normalized_digits(mnist_test):
    x = T.normalized_digits(mnist_test[0][:5], 16)
    assert x.shape == (5, 256) and x.dtype == torch.float64
    torch.testing.assert_close(x.norm(dim=1), torch.ones(5, dtype=torch.float64))
    assert bool((x >= 0).all())


# ---------------------------------------------------------------------------
# Prop. 1
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape,wavelet", [((8, 8), "haar"), ((16, 16), "coif1")])
def test_prop1_condition_guarantees_the_support_for_sparse_images(shape, wavelet):
    """Exactly K-sparse images (the model of Sec. III-A): lambda/eps > gamma keeps the support."""
    t = WaveletTransform(wavelet, shape, 1)
    g = gamma(wavelet_basis(wavelet, shape, 1))
    K = 6
    rng = np.random.default_rng(0)
    met = 0
    for i in range(30):
        x, _ = T.sparse_signal(t, K, rng)
        lam = float(T.smallest_kept(x, K, t))
        assert float(T.coefficient_gap(x, K, t)) == pytest.approx(lam, abs=1e-9)
        eps = lam / g * (0.999 if i % 2 == 0 else 1.5)  # half the draws meet the condition, barely
        cond = bool(T.snr_condition(x, K, t, eps, g))
        assert cond == (i % 2 == 0)
        met += cond
        for _ in range(20):  # random e in the eps box, random signs and the adversarial kinds
            e = torch.from_numpy(eps * rng.uniform(-1, 1, shape))
            es = torch.from_numpy(eps * rng.choice([-1.0, 1.0], shape))
            for pert in (e, es):
                if cond:
                    assert int(support_overlap(x[None, None], (x + pert)[None, None], K, t)[0]) == K
        for kind in T.PROP1_KINDS:
            e = T.prop1_perturbation(kind, x[None], K, t, eps, seed=i)
            assert float(e.abs().max()) == pytest.approx(eps)
            if cond:
                assert int(support_overlap(x[None, None], x[None, None] + e[:, None], K, t)[0]) == K
    assert met == 15


def test_support_overlap_counts_the_shared_support():
    rng = np.random.default_rng(4)
    # 1-D signals (B, N): brute force with sets of indices
    t = T.transform_1d("coif1:1", 64)
    x = torch.from_numpy(rng.standard_normal((5, 64)))
    x_adv = x + 0.3 * torch.from_numpy(rng.standard_normal((5, 64)))
    got = support_overlap(x, x_adv, 10, t)
    for i in range(5):
        top = lambda v: set(np.argsort(-np.abs(t.analysis(v[None]).numpy()[0]))[:10])  # noqa: E731
        assert int(got[i]) == len(top(x[i]) & top(x_adv[i]))
    assert 0 < int(got.min()) and int(got.max()) <= 10 and int(got.min()) < 10  # moved for some, not all gone
    assert support_overlap(x, x, 10, t).tolist() == [10] * 5
    # images with one K per channel: the channels' overlaps add up
    w = WaveletTransform("haar", (8, 8), 1)
    xi = torch.from_numpy(rng.random((3, 2, 8, 8)))
    xa = xi + 0.2 * torch.from_numpy(rng.standard_normal((3, 2, 8, 8)))  # need not stay in [0, 1]
    both = support_overlap(xi, xa, (5, 9), w)
    per = [support_overlap(xi[:, c : c + 1], xa[:, c : c + 1], k, w) for c, k in enumerate((5, 9))]
    assert torch.equal(both, per[0] + per[1])
    assert support_overlap(xi, xi, (5, 9), w).tolist() == [14] * 3
    # bad arguments name themselves
    with pytest.raises(ArgumentError, match="^x_adv "):
        support_overlap(x, x_adv[:2], 10, t)
    with pytest.raises(ArgumentError, match="^K"):
        support_overlap(x, x_adv, 65, t)
    with pytest.raises(ArgumentError, match=r"^K"):
        support_overlap(xi, xa, (5, 9, 2), w)
    with pytest.raises(ArgumentError, match="^x "):
        support_overlap(x[:, :32], x_adv[:, :32], 4, t)
    with pytest.raises(ArgumentError, match="^x_adv "):
        support_overlap(xi, xa * float("nan"), 5, w)


def test_prop1_gap_condition_holds_on_real_images_and_the_papers_can_fail(mnist_test):
    x = mnist_test[0][:200].double()
    t = {"haar": WaveletTransform("haar", (28, 28), 1)}
    g = {"haar": gamma(wavelet_basis("haar", (28, 28), 1))}
    df = T.prop1_sweep(x, t, g, 27, [0.002, 0.02], seed=0)
    assert df.gap_violated.sum() == 0  # a theorem
    assert (df.gap_condition <= df.condition).all()  # the gap condition is the stronger one
    # MNIST digits are only approximately sparse: the paper's condition is met but the support moves
    assert df.violated.sum() > 0
    s = T.prop1_summary(df, 27)
    assert len(s) == 2 * 3 and (s.unmoved_share >= s.gap_condition_share - 1e-12).all()


# ---------------------------------------------------------------------------
# Sec. V: networks
# ---------------------------------------------------------------------------
def test_equivalent_linear_matches_autograd_and_the_two_layer_formula():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((12, 20)))
    net = T.relu_mlp([20, 16, 8, 5], seed=1)
    W, b = T.equivalent_linear(net, x)
    torch.testing.assert_close(W, T.logits_jacobian(net, x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.einsum("bln,bn->bl", W, x) - b, net(x).detach(), rtol=1e-12, atol=1e-12)
    two = T.random_two_layer(20, 32, "laplace", bias="unit", seed=2)
    w_eq, b_eq = T.two_layer_w_eq(two, x)  # sum_i s_i w0[i] w_i, sum_i s_i w0[i] b_i
    W2, b2 = T.equivalent_linear(two, x)
    torch.testing.assert_close(W2[:, 0], w_eq, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(b2[:, 0], b_eq, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sizes", [[30, 40, 1], [30, 24, 24, 3]])
def test_eq5_split_sums_exactly(sizes):
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.random((40, 30)))
    net = T.relu_mlp(sizes, seed=4)
    for eps in (1e-3, 0.1, 1.0):
        e = torch.from_numpy(eps * rng.choice([-1.0, 1.0], (40, 30)))
        out = T.eq5_split(net, x, e)
        assert float(out["residual"].abs().max()) < 1e-10
        torch.testing.assert_close(out["delta"], out["linear"] + out["switching"], rtol=0, atol=1e-10)
    # big perturbations flip switches and the switching term is then not negligible
    assert float(out["flipped"].mean()) > 0.05 and float(out["switching"].abs().max()) > 1e-3
    # with no flips the switching term vanishes identically
    out = T.eq5_split(net, x, torch.zeros_like(x))
    assert float(out["switching"].abs().max()) == 0.0 and float(out["flipped"].max()) == 0.0


def test_eq5_sweep_rows():
    x = torch.from_numpy(np.random.default_rng(0).random((10, 30)))
    df = T.eq5_sweep(T.relu_mlp([30, 20, 1], seed=0), x, [0.01, 0.1])
    assert len(df) == 2 * 2 * 10 and df.residual.abs().max() < 1e-10


def test_multiclass_fgsm_direction_matches_the_locally_linear_expression():
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.random((25, 12)))
    net = T.relu_mlp([12, 10, 10, 4], seed=6, logit_scale=5.0)
    t = torch.from_numpy(rng.integers(0, 4, 25))
    auto = T.fgsm_direction(net, x, t)
    W, _ = T.equivalent_linear(net, x)
    logits = net(x).detach()
    formula, g = T.fgsm_direction_from_w_eq(W, logits, t, return_gradient=True)
    assert torch.equal(auto, formula)
    # the expression, term by term: w^t (p_t - 1) + sum_{k != t} w^k p_k
    p = torch.softmax(logits, 1)
    for i in range(25):
        ti = int(t[i])
        manual = W[i, ti] * (p[i, ti] - 1) + sum(W[i, k] * p[i, k] for k in range(4) if k != ti)
        torch.testing.assert_close(g[i], manual, rtol=1e-12, atol=1e-14)
    # and the gradient itself, through autograd
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(net(xr), t, reduction="sum"), xr)
    torch.testing.assert_close(grad, g, rtol=1e-12, atol=1e-14)


def test_worst_pair_perturbation_is_first_order_optimal():
    x = torch.from_numpy(np.random.default_rng(8).random((30, 16)))
    net = T.relu_mlp([16, 12, 5], seed=9, logit_scale=4.0)
    df = T.fgsm_comparison(net, x, 0.05)
    assert (df.sign_agreement == 1.0).all() and df.grad_rel_err.max() < 1e-12
    assert (df.gain_ll >= df.gain_fgsm - 1e-12).all()


def test_switch_statistics_nesting_and_thm3_assumption2():
    rng = np.random.default_rng(1)
    N, M, delta = 256, 64, 0.01
    x = torch.from_numpy(rng.random((20, N)))
    x = x / x.norm(dim=1, keepdim=True)
    for bias in ("scaled", "unit"):
        net = T.random_two_layer(N, M, "gaussian", bias, delta, 0.002, seed=0)
        W, b, _ = T.two_layer_parts(net)
        if bias == "scaled":  # Assumption 2 with equality
            torch.testing.assert_close(b.abs() / W.abs().sum(1), torch.full((M,), delta + 0.002, dtype=torch.float64))
        e = torch.from_numpy(delta * rng.choice([-1.0, 1.0], (20, N)))
        s = T.switch_statistics(net, x, e, delta)
        assert bool((s["flipped"] <= s["outside_S"]).all() and (s["outside_S"] <= s["worst_case"]).all())
    # the worst case is attained: e = -delta sgn(w_i) sgn(z_i) flips neuron i whenever |z_i| < delta ||w_i||_1
    net = T.random_two_layer(N, M, "gaussian", "unit", delta, 0.002, seed=1)
    W, b, _ = T.two_layer_parts(net)
    z = x[0] @ W.T - b
    i = int(torch.argmin(z.abs() - delta * W.abs().sum(1)))
    assert float(z[i].abs()) < delta * float(W[i].abs().sum())
    e = -delta * torch.sign(W[i]) * torch.sign(z[i])
    assert bool(((x[0] + e) @ W[i] - b[i] > 0) != (z[i] > 0))


def test_thm3_prediction_and_sweep(mnist_test):
    p = T.thm3_prediction([64, 4096], 0.01, 0.002, "scaled")
    assert p[0] > 0.2 and p[1] < 1e-6
    assert T.thm3_prediction([16384], 0.01, 0.002, "unit")[0] > 0.999
    df = T.thm3_sweep(mnist_test[0][:10], [8, 32], 32, n_networks=1, seed=0)
    assert len(df) == 2 * 2 * 2 * 10
    assert (df.flipped <= df.outside_S).all() and (df.outside_S <= df.worst_case).all()
    scaled = df[df.bias == "scaled"].groupby("N").worst_case.mean()
    assert scaled[1024] < scaled[64]


# ---------------------------------------------------------------------------
# fits and summaries
# ---------------------------------------------------------------------------
def test_fit_power_law_recovers_known_slopes():
    x = np.array([16, 64, 256, 1024, 4096])
    fit = stats.fit_power_law(x, 3 * x**0.7)
    assert fit.slope == pytest.approx(0.7) and fit.low == pytest.approx(0.7) and fit.high == pytest.approx(0.7)
    assert np.allclose(fit.predict(x), 3 * x**0.7)
    rng = np.random.default_rng(0)
    draws = [2 * xx**-0.5 * (1 + 0.3 * rng.standard_normal(400)) for xx in x]
    fit = stats.fit_power_law(x, draws, n_boot=500, seed=1)
    assert fit.low < -0.5 < fit.high and fit.high - fit.low < 0.1
    rms = stats.fit_power_law(x, [1 + rng.standard_normal(2000) / np.sqrt(xx) for xx in x], statistic=stats.rms_deviation(1.0), n_boot=300)
    assert rms.low < -0.5 < rms.high
    with pytest.raises(ValueError, match="positive"):
        stats.fit_power_law(x, -x)


def test_summarize_and_power_law_fits():
    import pandas as pd

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"g": np.repeat(["a", "b"], 2000), "N": np.tile(np.repeat([10, 100], 1000), 2)})
    df["v"] = df.N ** np.where(df.g == "a", 1.0, 0.5) * (1 + 0.1 * rng.standard_normal(len(df)))
    s = stats.summarize(df, ["g", "N"], "v")
    assert len(s) == 4 and (s.ci_low < s["mean"]).all() and (s["mean"] < s.ci_high).all()
    assert (s.q_low < s.ci_low).all()
    fits = stats.power_law_fits(df, "N", "v", by="g", n_boot=200).set_index("g")
    assert fits.slope["a"] == pytest.approx(1.0, abs=0.02) and fits.slope["b"] == pytest.approx(0.5, abs=0.02)


# ---------------------------------------------------------------------------
# the chapters' sections and figures (tiny settings)
# ---------------------------------------------------------------------------
def test_section_numbers_are_glue_ready():
    from sparsenb.chapters import theory_linear as CL

    nums = chapter_section.numbers(a=np.float64(0.5), n=np.int64(3), **{"slope_coif1:1": "0.50 [0.40, 0.60]"})
    assert nums == {"a": 0.5, "n": 3, "slope_coif1_1": "0.50 [0.40, 0.60]"} and type(nums["n"]) is int
    assert all(type(v) in (int, float, str) for v in nums.values())  # numpy scalars would not format in {glue:text}
    assert chapter_section.powers_of_two([2, 5]) == [4, 8, 16, 32]


def _glue_roles(chapter: str) -> set[str]:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "book" / f"{chapter}.md").read_text()
    return set(re.findall(r"\{glue:text\}`(\w+)", text)) | set(re.findall(r"```\{glue:figure\} (\w+)", text))


def _figure_names(chapter: str) -> set[str]:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "book" / f"{chapter}.md").read_text()
    return set(re.findall(r'figure\(\w+\.figure, "(\w+)"\)', text))


def test_theory_linear_sections_give_every_number_its_prose_quotes(mnist_test):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sparsenb import data
    from sparsenb.chapters import theory_linear as CL

    bases = ["haar:1", "coif1:1", "db5:1", "dct"]
    prop2 = CL.prop2(["gaussian", "uniform", "laplace"], 6, 20, 0.1, 0)
    assert prop2.numbers["prop2_N_max"] == 64.0
    assert prop2.numbers["prop2_limit_gaussian"] == pytest.approx(0.1 * math.sqrt(2 / math.pi))
    thm1 = CL.thm1(bases, ["coif1:1", "dct"], [6, 8], 0.05, "gaussian", 20, 0.1, 0.25, 0)
    assert thm1.numbers["thm1_N_min"] == 64.0 and thm1.numbers["thm1_K_max"] == 12.0  # floor(0.05 * 256)
    norms = CL.psi_norm_growth(["haar:1", "coif1:1", "db5:1", "coif1:full", "dct"], [4, 7])
    assert norms.numbers["norm_slope_dct"] == pytest.approx(0.5, abs=1e-9)  # ||psi_0||_1 = sqrt(N), exactly
    thm2 = CL.thm2(bases, 4, [6, 8], 8, [2, 4, 8], "gaussian", 20, 0.1, 0, rho_sweep=thm1, norms=norms)
    lemma1 = CL.lemma1(thm2)
    assert lemma1.numbers["lemma1_violations"] == 0.0
    x = data.subset(*mnist_test, 6, seed=0)[0].double()
    img = CL.images(x, ["haar", "coif1", "db5", "sym9"], [5, 15], "gaussian", 0.1, 0)
    assert img.numbers["img_K_ref"] == 27.0
    lemma2 = CL.lemma2([3, 6], 50, 0)
    produced = {"eps", "rho", "cheb_delta"}  # glued by the chapter's first cell
    for section in (prop2, thm1, norms, thm2, lemma1, img, lemma2):
        assert all(type(v) in (int, float, str) for v in section.numbers.values())
        produced |= set(section.numbers)
    produced |= _figure_names("theory_linear")
    assert _glue_roles("theory_linear") <= produced, sorted(_glue_roles("theory_linear") - produced)
    for section, n_axes in [(prop2, 2), (thm1, 4), (norms, 2), (thm2, 3), (img, 1), (lemma2, 4)]:
        fig = section.figure  # each section draws its own figure
        assert len(fig.axes) == n_axes and all(ax.has_data() for ax in fig.axes)
        assert not plt.fignum_exists(fig.number)  # closed in pyplot: shown only where the page places it
    assert not hasattr(lemma1, "figure")


def test_theory_networks_sections_give_every_number_its_prose_quotes(mnist_test):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sparsenb import data
    from sparsenb.chapters import theory_networks as CN

    x = data.subset(*mnist_test, 12, seed=0)[0].double()
    prop1 = CN.prop1(x, ["haar", "coif1", "db5", "sym9"], 0.035, [0.01], 0.1, 0)
    assert prop1.numbers["p1_K"] == 27.0 and prop1.numbers["p1_gap_violations"] == 0.0  # a theorem
    hist = CN.overlap_hist(x, prop1, 0.02, 0.1, 0)
    assert hist.numbers["hist_K"] == 15.0
    lemma3 = CN.lemma3(x[:3], [4, 8], 50, 0)
    thm3 = CN.thm3(x, [16, 32], 64, 0.01, 0.002, 1, 1024, 0)
    eq5 = CN.eq5(x, [64, 64], [0.1, 0.3], 0)
    assert eq5.numbers["e5_residual"] < 1e-10 and eq5.numbers["e5_net"] == "784 – 64 – 64 – 1"
    fgsm = CN.fgsm(x[:5], [8], 0.02, 20.0, 0)
    assert fgsm.numbers["fgsm_rel_err_max"] < 1e-10
    produced = set()
    for section in (prop1, hist, lemma3, thm3, eq5, fgsm):
        assert all(type(v) in (int, float, str) for v in section.numbers.values())
        produced |= set(section.numbers)
    produced |= _figure_names("theory_networks")
    assert _glue_roles("theory_networks") <= produced, sorted(_glue_roles("theory_networks") - produced)
    for section, n_axes in [(prop1, 3), (hist, 1), (lemma3, 3), (thm3, 2), (eq5, 2), (fgsm, 2)]:
        assert len(section.figure.axes) == n_axes
        assert not plt.fignum_exists(section.figure.number)
