r"""Which basis to sparsify in: the front end in any orthonormal basis, and the sweep that compares them.

The paper sparsifies in one level of a Daubechies/Coiflet wavelet and asks
in its conclusion for better and learned bases. This module puts the front
end in any orthonormal basis and runs one experiment per
(model, basis, :math:`\rho`): train the model behind that front end (or
read it from the checkpoint store), measure its clean accuracy and its
audited worst-case accuracy (:func:`sparsenb.audit.worst_case`), and set
beside them the two quantities the theory says should matter:
:math:`\gamma = 2\max_k\|\psi_k\|_1` (Prop. 1; small is good) and the
energy the :math:`K` kept coefficients capture (large is good).

Bases, written as short specs (:func:`frontend_for`):

* ``"haar:1"``, ``"db2:2"``, ``"coif1:3"``, ...: an orthogonal PyWavelets
  wavelet at 1 to 3 levels (periodized), the book's own front end
  (:class:`~sparsenb.frontend.SparsifyingFrontEnd`), so its checkpoints and
  results are shared with the other chapters;
* ``"dct"``: the 2-D DCT-II of the whole image;
* ``"blockdct8"``: the 8x8 block DCT of JPEG; 28 is not a multiple of 8, so
  the blocks along each side are 8, 8, 8 and 4 pixels wide (each block its
  own orthonormal DCT: the whole is orthonormal);
* ``"pixel"``: the standard basis (keeping the K brightest pixels);
* ``"pca"``: an orthonormal basis learned from the training images: the
  eigenvectors of their uncentred second-moment matrix :math:`E[xx^T]`,
  by decreasing eigenvalue (the front end has no mean to subtract, so the
  uncentred moment is the one whose leading K eigenvectors capture the most
  energy of :math:`x` itself).

The dense bases go through :class:`DenseFrontEnd`, the same front end with a
matrix transform; its ``settings()`` carry a fingerprint of the matrix, so
checkpoints and stored results are keyed by the basis itself.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import checks, data
from .basis import DenseTransform, _dct_matrix, dct_basis, gamma, pixel_basis
from .evaluation import accuracy_interval, predict
from .frontend import SparsifyingFrontEnd, energy_captured
from .training import data_fingerprint

__all__ = [
    "DENSE_BASES",
    "block_dct_basis",
    "pca_basis",
    "DenseFrontEnd",
    "dense_basis",
    "frontend_for",
    "basis_specs",
    "MODELS",
    "audit_budget",
    "sweep",
    "pareto",
    "best_per_basis",
    "rank_agreement",
    "verdict",
    "pareto_figure",
]

DENSE_BASES = ("dct", "blockdct8", "pixel", "pca")


# --------------------------------------------------------------------------
# bases
# --------------------------------------------------------------------------
def _block_dct_1d(n: int, block: int) -> np.ndarray:
    """Block-diagonal 1-D DCT of length ``n``: blocks of ``block``, the last one shorter if ``block`` does not divide ``n``."""
    out = np.zeros((n, n))
    for s in range(0, n, block):
        e = min(s + block, n)
        out[s:e, s:e] = _dct_matrix(e - s)
    return out


def block_dct_basis(shape=(28, 28), block: int = 8) -> torch.Tensor:
    """The orthonormal block DCT of an image (rows are basis images), JPEG's transform for ``block = 8``.

    Separable: the Kronecker product of two block-diagonal 1-D DCTs, so each
    basis image lives in one block. Rows are ordered by block-frequency
    pair as the Kronecker product gives them (the order does not matter to
    the front end, which keeps the largest coefficients wherever they are).
    """
    H, W = checks.size2d(shape, "shape")
    block = checks.integer(block, "block", 1)
    return torch.from_numpy(np.kron(_block_dct_1d(H, block), _block_dct_1d(W, block)))


def pca_basis(x: torch.Tensor) -> torch.Tensor:
    r"""An orthonormal basis learned from images ``x`` ``(B, 1, H, W)``: eigenvectors of :math:`\frac1B\sum x x^T`.

    Rows by decreasing eigenvalue; each row's sign is fixed so that its
    largest-magnitude entry is positive (deterministic across machines).
    """
    checks.images(x, "x", channels=1)
    if len(x) < 2:
        raise checks.ArgumentError("x", "must hold at least two images to learn a basis from")
    X = x.flatten(1).double()
    vals, vecs = torch.linalg.eigh(X.T @ X / len(X))
    psi = vecs.flip(-1).T.contiguous()  # rows: eigenvectors, largest eigenvalue first
    idx = psi.abs().argmax(1)
    sign = torch.sign(psi[torch.arange(len(psi)), idx])
    return psi * sign[:, None]


class _PyramidDense(DenseTransform):
    """A dense transform with the front end's pyramid interface (coefficients laid out as an ``H x W`` plane)."""

    def analysis_pyramid(self, x: torch.Tensor) -> torch.Tensor:
        return self.analysis(x).unflatten(-1, self.shape)

    def synthesis_pyramid(self, y: torch.Tensor) -> torch.Tensor:
        return self.synthesis(y.flatten(-2))


class DenseFrontEnd(SparsifyingFrontEnd):
    r"""The sparsifying front end in any orthonormal basis ``basis`` (rows :math:`\psi_k`), named ``name``.

    Everything else (top-K per image, clip, gradient treatments) is
    :class:`~sparsenb.frontend.SparsifyingFrontEnd`'s. One channel.
    ``settings()`` holds the name and a fingerprint of the matrix.
    """

    def __init__(self, rho, basis: torch.Tensor, name: str, image_size=(28, 28), **kwargs):
        super().__init__(rho, "haar", 1, image_size, channels=1, **kwargs)
        if not isinstance(name, str) or not name:
            raise checks.fail("name", "a non-empty string naming the basis", name)
        self.transform = _PyramidDense(basis, self.image_size)
        self.basis_name = name
        self.basis_fingerprint = data_fingerprint(basis.detach().double().cpu())

    @property
    def wavelet(self) -> str:
        return self.basis_name

    @property
    def level(self) -> int:
        return 0

    def settings(self) -> dict:
        return {**super().settings(), "basis": self.basis_fingerprint}


def dense_basis(spec: str, x_train: torch.Tensor | None = None) -> torch.Tensor:
    """The matrix of a dense basis spec (``"dct"``, ``"blockdct8"``, ``"pixel"``, ``"pca"`` learned from ``x_train``)."""
    checks.choice(spec, "spec", DENSE_BASES)
    if spec == "pca":
        if x_train is None:
            raise checks.ArgumentError("x_train", "must hold the training images to learn the 'pca' basis from")
        return pca_basis(x_train)
    return {"dct": dct_basis, "blockdct8": block_dct_basis, "pixel": pixel_basis}[spec]((28, 28))


def frontend_for(spec: str, rho: float, x_train: torch.Tensor | None = None, basis: torch.Tensor | None = None,
                 **kwargs) -> SparsifyingFrontEnd:
    r"""The front end for a basis spec (see the module docstring); ``"pca"`` learns from ``x_train``.

    A dense spec's matrix may be passed as ``basis`` (computed once for many :math:`\rho`).
    """
    if not isinstance(spec, str) or not spec:
        raise checks.fail("spec", "a basis spec such as 'coif1:1', 'dct', 'blockdct8', 'pixel' or 'pca'", spec)
    if spec in DENSE_BASES:
        return DenseFrontEnd(rho, dense_basis(spec, x_train) if basis is None else basis, spec, **kwargs)
    name, _, level = spec.partition(":")
    try:
        level = int(level or 1)
    except ValueError:
        raise checks.ArgumentError("spec", f"={spec!r}: the level after ':' must be an int") from None
    return SparsifyingFrontEnd(rho, name, level, **kwargs)


def basis_specs(wavelets: Sequence[str], levels: Sequence[int], dense: Sequence[str] = DENSE_BASES) -> list[str]:
    """Every ``wavelet:level`` and then the dense bases, as specs."""
    for d in dense:
        checks.choice(d, "dense", DENSE_BASES)
    return [f"{w}:{lev}" for w in wavelets for lev in levels] + list(dense)


# --------------------------------------------------------------------------
# the sweep
# --------------------------------------------------------------------------
MODELS = ("svm", "two-layer", "cnn")


def audit_budget(name: str, **overrides):
    """:data:`sparsenb.audit.BUDGETS` ``[name]`` with fields replaced (lists become tuples, as TOML gives them)."""
    from .audit import BUDGETS

    base = BUDGETS[checks.choice(name, "name", tuple(BUDGETS))]
    fields = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise checks.ArgumentError("overrides", f"names no field of Budget: {unknown}")
    return dataclasses.replace(base, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})


@dataclass(frozen=True)
class _Setting:
    model: str
    spec: str
    rho: float


def _train(model: str, fe, x_train, y_train, seed: int, svm_max_iter: int, nn_steps: int, cnn_epochs: int, device):
    from .models import CNNConfig, TwoLayerConfig
    from .training import CNN_TRAINING, TWO_LAYER_TRAINING, SVMConfig, trained, trained_svm

    if model == "svm":
        return trained_svm(x_train, y_train, SVMConfig(max_iter=svm_max_iter, seed=seed), frontend=fe).to(device)
    if model == "two-layer":
        recipe = dataclasses.replace(TWO_LAYER_TRAINING, steps=nn_steps, seed=seed)
        return trained(TwoLayerConfig(), x_train, y_train, recipe, frontend=fe, device=device).to(device)
    recipe = dataclasses.replace(CNN_TRAINING, epochs=cnn_epochs, seed=seed)
    return trained(CNNConfig(classes=2), x_train, y_train, recipe, frontend=fe, device=device).to(device)


def sweep(
    models: Sequence[str],
    specs: Sequence[str],
    rhos: Sequence[float],
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    eps: float,
    budget,
    audit_images: int,
    seed: int = 0,
    svm_max_iter: int = 10_000,
    nn_steps: int = 20_000,
    cnn_epochs: int = 2,
    attacks: Sequence[str] | None = None,
    device=None,
    progress: bool = False,
) -> pd.DataFrame:
    r"""One row per (model, basis, :math:`\rho`): clean and audited worst-case accuracy, :math:`\gamma`, energy captured.

    Each model is trained behind each front end on ``(x_train, y_train)``
    (checkpoints keyed by the basis; the two-layer net and the CNN with the
    book's recipes, ``nn_steps`` Adam steps and ``cnn_epochs`` epochs);
    clean accuracy is measured on all of ``(x_test, y_test)``, the audited
    worst case (:func:`sparsenb.audit.worst_case` with ``budget``) at
    ``eps`` on a seeded subset of ``audit_images`` of them
    (:func:`sparsenb.audit.subset`), over the audit's attacks named in
    ``attacks`` (None: all of :func:`sparsenb.audit.audit_attacks`; the
    linear-classifier attacks only where the model is the SVM). The CNN is
    :class:`~sparsenb.models.NielsenCNN` with two logits. Columns: ``model, spec, basis, level, rho, K, clean,
    clean_lo, clean_hi, worst, worst_lo, worst_hi, gamma, energy,
    n_clean, n_audit``; accuracies in percent with 95% Wilson intervals,
    ``energy`` the mean share over the test images.
    """
    from tqdm.auto import tqdm

    from .audit import Budget, audit_attacks, subset, worst_case
    from .models import defended

    for i, m in enumerate(models):
        checks.choice(m, f"models[{i}]", MODELS)
    if not isinstance(budget, Budget):
        raise checks.fail("budget", "a sparsenb.audit.Budget", budget)
    eps = checks.real(eps, "eps", 0.0, 1.0, low_open=True)
    device = torch.device(device or "cpu")
    idx = subset(len(x_test), checks.integer(audit_images, "audit_images", 1), seed)
    xa, ya = x_test[idx].to(device), y_test[idx].to(device)
    settings = [_Setting(m, s, r) for m in models for s in specs for r in rhos]
    every = {**audit_attacks(budget, linear=True), **audit_attacks(budget)}
    unknown = sorted(set(attacks or ()) - set(every))
    if unknown:
        raise checks.ArgumentError("attacks", f"names no attack of the audit: {unknown}; have {sorted(every)}")
    dense = {spec: dense_basis(spec, x_train) for spec in dict.fromkeys(specs) if spec in DENSE_BASES}
    gammas, energy, rows = {}, {}, []
    for s in tqdm(settings, desc="bases", disable=not progress, leave=False, mininterval=5):
        fe = frontend_for(s.spec, s.rho, basis=dense.get(s.spec))
        if s.spec not in gammas:
            gammas[s.spec] = gamma(fe.transform.dense())
        if (s.spec, s.rho) not in energy:
            energy[s.spec, s.rho] = float(energy_captured(x_test.double(), fe.transform, [fe.K[0]]).mean())
        classifier = _train(s.model, fe, x_train, y_train, seed, svm_max_iter, nn_steps, cnn_epochs, device)
        model = defended(fe.to(device), classifier).eval()
        clean = (predict(model, x_test.to(device)) == y_test.to(device)).int().cpu().numpy()
        chosen = audit_attacks(budget, linear=s.model == "svm")
        if attacks is not None:
            chosen = {n: a for n, a in chosen.items() if n in attacks}
        wc = worst_case(model, xa, ya, eps, budget, attacks=chosen, batch_size=len(xa))
        name, _, level = s.spec.partition(":")
        rows.append({
            "model": s.model, "spec": s.spec, "basis": name, "level": int(level) if level else None, "rho": s.rho,
            "K": fe.K[0], **dict(zip(("clean", "clean_lo", "clean_hi"), accuracy_interval(clean))),
            **dict(zip(("worst", "worst_lo", "worst_hi"), wc.accuracy())),
            "gamma": gammas[s.spec], "energy": energy[s.spec, s.rho], "n_clean": len(clean), "n_audit": wc.n,
        })
    return pd.DataFrame(rows)


def pareto(frame: pd.DataFrame, x: str = "clean", y: str = "worst") -> pd.Series:
    """True for the rows on the Pareto front of ``(x, y)`` within each model (no other row at least as good in both and better in one)."""
    front = pd.Series(False, index=frame.index)
    for _, g in frame.groupby("model"):
        a, b = g[x].to_numpy(), g[y].to_numpy()
        for i, j in zip(g.index, range(len(g))):
            dominated = ((a >= a[j]) & (b >= b[j]) & ((a > a[j]) | (b > b[j]))).any()
            front[i] = not dominated
    return front


def best_per_basis(frame: pd.DataFrame, by: str = "worst") -> pd.DataFrame:
    """Per model and basis (spec), the :math:`\\rho` with the highest ``by`` (ties: higher clean accuracy)."""
    order = frame.sort_values([by, "clean"], ascending=False)
    best = order.groupby(["model", "spec"], sort=False).head(1)
    return best.sort_values(["model", by], ascending=[True, False]).reset_index(drop=True)


def rank_agreement(frame: pd.DataFrame, by: str = "worst") -> pd.DataFrame:
    r"""Per model: Spearman correlations of ``by`` (best setting per basis) with :math:`-\gamma` and with the energy captured."""
    from scipy.stats import spearmanr

    best = best_per_basis(frame, by)
    rows = []
    for model, g in best.groupby("model", sort=False):
        ok = len(g) > 2
        rows.append({"model": model, "bases": len(g),
                     "rho(worst, -gamma)": float(spearmanr(g[by], -g["gamma"]).statistic) if ok else float("nan"),
                     "rho(worst, energy)": float(spearmanr(g[by], g["energy"]).statistic) if ok else float("nan")})
    return pd.DataFrame(rows)


def verdict(frame: pd.DataFrame, reference: str = "coif1:1") -> pd.DataFrame:
    """Per model: the best setting by worst-case accuracy beside the best of ``reference``, and whether it is clearly better.

    ``clearly better`` when the best setting's 95% interval lies above the
    reference's (disjoint intervals); ``better on both`` when it also has the
    higher clean accuracy.
    """
    rows = []
    best = best_per_basis(frame)
    for model, g in best.groupby("model", sort=False):
        top, ref = g.iloc[0], g[g.spec == reference]
        if ref.empty:
            raise checks.ArgumentError("reference", f"has no rows for model {model!r}: {reference!r}")
        ref = ref.iloc[0]
        rows.append({"model": model, "best": top.spec, "best rho": top.rho, "best worst %": top.worst,
                     "best CI": f"[{top.worst_lo:.1f}, {top.worst_hi:.1f}]", "best clean %": top.clean,
                     "reference": reference, "reference rho": ref.rho, "reference worst %": ref.worst,
                     "reference CI": f"[{ref.worst_lo:.1f}, {ref.worst_hi:.1f}]", "reference clean %": ref.clean,
                     "clearly better": bool(top.spec != reference and top.worst_lo > ref.worst_hi),
                     "better on both": bool(top.spec != reference and top.worst > ref.worst and top.clean > ref.clean)})
    return pd.DataFrame(rows)


def pareto_figure(frame: pd.DataFrame, model: str, reference: str = "coif1:1", ax=None):
    """Clean against audited worst-case accuracy for one model: a point per (basis, :math:`\\rho`), the Pareto front joined.

    Wavelets are coloured by family (marker by level), the dense bases get
    their own markers; ``reference`` (the paper's basis) is ringed.
    """
    import matplotlib.pyplot as plt

    g = frame[frame.model == model].copy()
    if g.empty:
        raise checks.ArgumentError("model", f"has no rows in the frame: {model!r}")
    g["front"] = pareto(g)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 5.5))
    colours = dict(zip(sorted(g.basis.unique()), plt.get_cmap("tab10").colors + plt.get_cmap("Dark2").colors))
    markers = {1: "o", 2: "s", 3: "^"}
    for spec, h in g.groupby("spec", sort=False):
        b, lev = h.basis.iloc[0], h.level.iloc[0]
        marker = markers.get(int(lev), "o") if pd.notna(lev) else "D"
        ax.scatter(h.clean, h.worst, color=colours[b], marker=marker, s=22 + 160 * h.rho, alpha=0.8, label=spec)
    ref = g[g.spec == reference]
    ax.scatter(ref.clean, ref.worst, s=260, facecolors="none", edgecolors="k", lw=1.2, label=f"{reference} (paper)")
    f = g[g.front].sort_values("clean")
    ax.plot(f.clean, f.worst, "k--", lw=1, label="Pareto front")
    ax.set(xlabel="clean accuracy (%)", ylabel="audited worst-case accuracy (%)", title=model)
    ax.legend(fontsize=7, ncol=2, loc="best")
    return ax
