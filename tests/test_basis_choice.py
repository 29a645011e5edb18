"""The front end in other bases, and the basis comparison (sparsenb.chapters.certified)."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from sparsenb import basis, frontend
from sparsenb.chapters import certified as bc
from sparsenb.lab.audit import SMOKE
from sparsenb.basis import wavelet_basis
from sparsenb.checks import ArgumentError
from sparsenb.frontend import SparsifyingFrontEnd

pytestmark = pytest.mark.usefixtures("one_thread")


def _orthonormal(psi, tol=1e-10):
    eye = torch.eye(len(psi), dtype=torch.float64)
    return float((psi @ psi.T - eye).abs().max()) < tol


@pytest.fixture(scope="module")
def digits(mnist_test):
    x, y = mnist_test
    keep = (y == 3) | (y == 7)
    return x[keep][:400], (y[keep][:400] == 7).long()


def test_block_dct_is_orthonormal_and_blockwise():
    psi = basis.block_dct_basis((28, 28), 8)
    assert psi.shape == (784, 784) and _orthonormal(psi)
    blocks = torch.arange(28) // 8  # blocks of 8, 8, 8 and 4 pixels
    block_of = (blocks[:, None] * 4 + blocks[None, :]).flatten()
    for row in psi[::37]:
        assert len(block_of[row.abs() > 1e-12].unique()) == 1  # every basis image lives in one block


def test_block_dct_of_one_block_is_the_dct():
    from sparsenb.basis import dct_basis

    assert torch.allclose(basis.block_dct_basis((8, 8), 8), dct_basis((8, 8)), atol=1e-12)


def test_pca_basis_is_orthonormal_and_sorted_by_energy(digits):
    x, _ = digits
    psi = basis.pca_basis(x)
    assert _orthonormal(psi, 1e-8)
    energy = ((x.flatten(1).double() @ psi.T) ** 2).mean(0)
    assert bool((energy[:-1] >= energy[1:] - 1e-9).all())
    assert torch.equal(basis.pca_basis(x), psi)  # deterministic, signs included
    with pytest.raises(ArgumentError, match="x"):
        basis.pca_basis(x[:1])


def test_dense_front_end_matches_the_wavelet_front_end(digits):
    x, _ = digits
    x = x[:50]
    wave = SparsifyingFrontEnd(0.02, "coif1", gradient="projection")
    dense = frontend.DenseFrontEnd(0.02, wavelet_basis("coif1"), "coif1-dense", gradient="projection")
    assert dense.K == wave.K
    assert torch.allclose(dense(x.double()), wave(x.double()), atol=1e-10)
    g = torch.randn_like(x.double())
    grads = []
    for fe in (wave, dense):
        xr = x.double().clone().requires_grad_(True)
        with torch.enable_grad():
            (fe(xr) * g).sum().backward()
        grads.append(xr.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-10)


def test_settings_key_the_basis(digits):
    x, _ = digits
    a = frontend.frontend_for("pca", 0.02, x[:200])
    b = frontend.frontend_for("pca", 0.02, x[200:])
    assert a.settings()["wavelet"] == "pca" and a.settings()["basis"] != b.settings()["basis"]
    assert frontend.frontend_for("dct", 0.02).settings() == frontend.frontend_for("dct", 0.02).settings()


def test_frontend_for_specs():
    fe = frontend.frontend_for("db2:2", 0.05)
    assert type(fe) is SparsifyingFrontEnd and fe.level == 2 and fe.wavelet == "db2"
    assert isinstance(frontend.frontend_for("blockdct8", 0.05), frontend.DenseFrontEnd)
    assert frontend.frontend_for("pixel", 0.05)(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)
    with pytest.raises(ArgumentError, match="x_train"):
        frontend.frontend_for("pca", 0.02)
    with pytest.raises(ArgumentError, match="level"):
        frontend.frontend_for("coif1:3", 0.02)
    with pytest.raises(ArgumentError, match="spec"):
        frontend.frontend_for("coif1:x", 0.02)
    assert bc.basis_specs(["haar"], [1, 2], ["dct"]) == ["haar:1", "haar:2", "dct"]


def test_pixel_front_end_keeps_the_brightest_pixels():
    x = torch.rand(3, 1, 28, 28)
    out = frontend.frontend_for("pixel", 0.02)(x)
    K = 15
    kept = out.flatten(1) > 0
    assert bool((kept.sum(1) == K).all())
    top = x.flatten(1).topk(K, dim=1).indices
    assert bool(kept.gather(1, top).all())


def test_audit_budget_overrides():
    b = bc.audit_budget("smoke", gradients=["bpda"], pgd_steps=7)
    assert b.gradients == ("bpda",) and b.pgd_steps == 7 and b.square_queries == SMOKE.square_queries


def test_pareto_and_best_per_basis():
    frame = pd.DataFrame({"model": ["m"] * 4 + ["n"], "spec": ["a", "a", "b", "c", "a"], "rho": [0.1, 0.2, 0.1, 0.1, 0.1],
                          "clean": [90, 95, 89, 80, 50], "worst": [50, 40, 45, 60, 10]})
    assert bc.pareto(frame).tolist() == [True, True, False, True, True]  # (89, 45) is beaten by (90, 50)
    best = bc.best_per_basis(frame)
    assert best[best.model == "m"].spec.tolist() == ["c", "a", "b"]
    assert float(best[(best.model == "m") & (best.spec == "a")].rho.iloc[0]) == 0.1


def test_sweep_runs_and_reports(digits, monkeypatch, tmp_path):
    monkeypatch.setenv("SPARSENB_CACHE", str(tmp_path))
    x, y = digits
    frame = bc.sweep(["svm", "two-layer"], ["haar:1", "pca"], [0.05], x[:300], y[:300], x[300:], y[300:], 0.1,
                     bc.audit_budget("smoke", gradients=["bpda"]), 8, nn_steps=20, attacks=["white box", "PGD"])
    assert len(frame) == 4 and set(frame.spec) == {"haar:1", "pca"}
    assert (frame.n_audit == 8).all() and (frame.n_clean == 100).all()
    assert frame.worst.between(0, 100).all() and frame.clean.between(50, 100).all()
    assert frame.gamma[frame.spec == "haar:1"].iloc[0] == pytest.approx(4.0)  # 2-D Haar: four entries of 1/2
    assert ((frame.energy > 0) & (frame.energy <= 1)).all()
    v = bc.verdict(frame, "haar:1")
    assert set(v.model) == {"svm", "two-layer"}
