r"""A sound certificate for a linear classifier behind the sparsifying front end.

The defended model is :math:`f(x) = w^T \mathrm{clip}_{[0,1]}\big(\Psi^T
\mathcal{H}_K(\Psi x)\big) + b` (class 1 when :math:`f > 0`), attacked by
:math:`x' = x + e` with :math:`\|e\|_\infty \le \epsilon`. A certificate is
a lower bound on the signed margin :math:`s\,f(x')` (:math:`s = +1` for
class 1, :math:`-1` for class 0) that holds for *every* :math:`x'` in the
threat set :math:`T`; an image is certified when that bound is positive, so
no attack, known or not, can change its label.

The bound is computed in five steps (the chapter ``book/certified.md``
proves each):

1. **Coefficient ranges.** :math:`T` is a box :math:`[l, u]` with centre
   :math:`m` and radius :math:`r`: the :math:`\epsilon`-ball
   (:math:`m = x`, :math:`r = \epsilon`), or its intersection with the
   image box :math:`[0, 1]^N` (``box=True``, the threat model of every
   attack in the book). Over :math:`T`, :math:`c_k(x') = \psi_k^T x'` ranges
   exactly over :math:`\psi_k^Tm \pm |\psi_k|^Tr`, which is
   :math:`c_k(x) \pm \epsilon\|\psi_k\|_1` without the box.
2. **Reachable supports.** From the magnitude intervals :math:`[a_k, b_k]`:
   :math:`k` is *surely kept* when fewer than :math:`K` other coefficients
   can reach :math:`a_k` (:math:`\#\{j \ne k: b_j \ge a_k\} < K`), *surely
   dropped* when at least :math:`K` others surely exceed :math:`b_k`
   (:math:`\#\{j: a_j > b_k\} \ge K`), *uncertain* otherwise. Every support
   the front end can pick on :math:`T` contains the surely kept ones, lies
   within the surely kept and uncertain ones, and has exactly :math:`K`
   elements. Ties count against the certificate.
3. **Output ranges** (only with the clip). Each pixel
   :math:`z_i = \sum_{k \in S} \psi_{k,i} c_k(x')` of the front end's output
   before the clip gets an interval :math:`[z^-_i, z^+_i]` by step 4 applied
   to the direction :math:`e_i`.
4. **The clip, relaxed.** On :math:`[z^-_i, z^+_i]` the clip lies between
   two lines, :math:`\alpha^-_i z + \beta^-_i \le \mathrm{clip}(z) \le
   \alpha^+_i z + \beta^+_i` (exact where the interval does not straddle 0
   or 1); choosing per pixel the line that bounds :math:`w_i\,\mathrm{clip}`
   from the right side turns :math:`f` into a linear function
   :math:`\tilde w^T z + \tilde b \le f` (or :math:`\ge f`).
5. **Linear bound through the top-K.** :math:`\tilde w^T z = \sum_{k\in S}
   v_k c_k(x')` with :math:`v = \Psi\tilde w`. The surely kept part is one
   linear function of :math:`x'`, :math:`p^Tx'` with :math:`p =
   \sum_{k\ \mathrm{sure}} v_k\psi_k`, minimised exactly over the box:
   :math:`p^Tm - |p|^Tr`. Each uncertain :math:`k` adds at least
   :math:`\ell_k = v_k\psi_k^Tm - |v_k||\psi_k|^Tr` if it is kept, and exactly
   :math:`K - \#\mathrm{sure}` of them are kept: the sum of the
   :math:`K - \#\mathrm{sure}` smallest :math:`\ell_k` (``supports="cardinality"``),
   or of all negative ones (``supports="interval"``).

Three named settings (:data:`METHODS`) are compared on the page:

* ``"prop1"``: the paper's Prop. 1 used as a certificate: the support must be
  provably fixed under the uniform radius :math:`\epsilon\gamma/2`,
  :math:`\gamma = 2\max_k\|\psi_k\|_1` (the gap condition); then the output
  moves by at most :math:`\epsilon\|\mathcal{P}_K(\tilde w, x)\|_1`.
* ``"interval"``: per-coefficient radii :math:`\epsilon\|\psi_k\|_1`,
  interval reasoning over the uncertain coefficients.
* ``"tight"``: the ranges exact over the :math:`\epsilon`-ball cut by the
  image box, and the cardinality of the support.

All three are sound; each is at least as tight as the one before it
(the tests check both on small problems against the exact worst case).
Everything is computed in float64 with the dense basis; intervals are
widened by ``pad`` and the margin by a guard (:func:`float32_guard`) so the
certificate also covers the model's own float32 arithmetic.

The exact worst case, against which the bounds are tested, is
:mod:`sparsenb.certify.exact`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import checks
from ..evaluation import accuracy_interval

__all__ = [
    "METHODS",
    "Method",
    "Bounds",
    "logit_bounds",
    "ClipLines",
    "clip_relaxation",
    "float32_guard",
    "linear_frontend",
    "Certificate",
    "certify",
]

PAD = 1e-4  # widening of coefficient and pixel intervals: covers the front end's float32 rounding


@dataclass(frozen=True)
class Method:
    """How the certificate reasons: see the module docstring.

    ``radius``: ``"uniform"`` (:math:`\\epsilon\\gamma/2` for every
    coefficient, as in Prop. 1) or ``"exact"`` (the exact range of each
    coefficient over the threat set); ``box``: cut the
    :math:`\\epsilon`-ball by :math:`[0, 1]^N`; ``supports``: ``"fixed"``
    (certify only if no coefficient is uncertain), ``"interval"`` or
    ``"cardinality"``; ``slope_steps``: steps of projected Adam on the
    clip relaxation's free slopes (:class:`ClipLines`; 0 keeps the CROWN
    heuristic).
    """

    radius: str
    box: bool
    supports: str
    slope_steps: int = 0

    def __post_init__(self):
        checks.choice(self.radius, "radius", ("uniform", "exact"))
        checks.flag(self.box, "box")
        checks.choice(self.supports, "supports", ("fixed", "interval", "cardinality"))
        checks.integer(self.slope_steps, "slope_steps", 0)


#: The certificates compared on the page, loosest first.
METHODS = {
    "prop1": Method("uniform", False, "fixed"),
    "interval": Method("exact", False, "interval"),
    "tight": Method("exact", True, "cardinality", slope_steps=10),
}


def _method(method) -> Method:
    if isinstance(method, Method):
        return method
    return METHODS[checks.choice(method, "method", tuple(METHODS))]


# --------------------------------------------------------------------------
# the bound
# --------------------------------------------------------------------------
@dataclass
class Bounds:
    """Per signal: bounds ``lower <= f(x') <= upper`` over the threat set, and the support's classification."""

    lower: torch.Tensor
    upper: torch.Tensor
    sure: torch.Tensor  # (B, N) bool: surely kept coefficients
    uncertain: torch.Tensor  # (B, N) bool
    eps: float
    method: Method

    @property
    def n_sure(self) -> torch.Tensor:
        return self.sure.sum(-1)

    @property
    def n_uncertain(self) -> torch.Tensor:
        return self.uncertain.sum(-1)

    def margin(self, y: torch.Tensor) -> torch.Tensor:
        """Lower bound on the signed margin: ``lower`` for class 1, ``-upper`` for class 0."""
        return torch.where(y.to(torch.bool), self.lower, -self.upper)


def _threat_box(x: torch.Tensor, eps: float, box: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and radius of the threat set: the eps-ball, cut by [0, 1] if ``box``."""
    if not box:
        return x, torch.full_like(x, eps)
    lo, hi = (x - eps).clamp(0.0, 1.0), (x + eps).clamp(0.0, 1.0)
    return (lo + hi) / 2, (hi - lo) / 2


def _classify(cm: torch.Tensor, cr: torch.Tensor, K: int, pad: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Surely kept and uncertain coefficients from the ranges ``cm +- cr`` (step 2)."""
    lo, hi = cm - cr, cm + cr
    a = torch.where((lo <= 0) & (hi >= 0), torch.zeros_like(cm), torch.minimum(lo.abs(), hi.abs()))
    b = torch.maximum(lo.abs(), hi.abs()) + pad
    a = (a - pad).clamp_min(0.0)
    N = cm.shape[-1]
    # others with b_j >= a_k (k itself always counts: b_k >= a_k)
    reach = N - torch.searchsorted(b.sort(-1).values.contiguous(), a.contiguous(), side="left") - 1
    # coefficients with a_j > b_k (never k itself)
    beat = N - torch.searchsorted(a.sort(-1).values.contiguous(), b.contiguous(), side="right")
    sure = reach <= K - 1
    dropped = beat >= K
    return sure, ~sure & ~dropped


def _smallest_sum(values: torch.Tensor, mask: torch.Tensor, n: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum of the ``n`` smallest ``values`` where ``mask`` along ``dim`` (``n`` broadcast over the other dims).

    Needs at least ``n`` masked entries (the callers guarantee it).
    """
    kmax = int(n.max()) if n.numel() else 0
    if kmax == 0:
        return torch.zeros_like(values.sum(dim))
    v = torch.where(mask, values, torch.full_like(values, math.inf))
    v = (-(-v).topk(kmax, dim=dim, sorted=True).values).clamp_max(torch.finfo(v.dtype).max)
    c = torch.cat([torch.zeros_like(v.narrow(dim, 0, 1)), v.cumsum(dim)], dim)
    return c.gather(dim, n.unsqueeze(dim)).squeeze(dim)


def _uncertain_sum(values, mask, n_free, supports: str, dim: int) -> torch.Tensor:
    """Worst (smallest) total that the kept uncertain coefficients can add (step 5)."""
    if supports == "cardinality":
        return _smallest_sum(values, mask, n_free, dim)
    total = torch.where(mask, values.clamp_max(0.0), torch.zeros_like(values)).sum(dim)
    if supports == "fixed":  # any uncertain coefficient: not certifiable
        total = torch.where(mask.any(dim), torch.full_like(total, -math.inf), total)
    return total


def _linear_lower(wt, bt, psi, m, r, cm, cr, sure, unc, n_free, supports: str, pad: float) -> torch.Tensor:
    """Step 5: min of ``bt + wt^T P_S x'`` over the threat box and the reachable supports S."""
    v = wt @ psi.T  # (B, N): v_k = psi_k^T wt
    p = (v * sure) @ psi  # sum over surely kept of v_k psi_k
    lin = (p * m).sum(-1) - (p.abs() * r).sum(-1)
    ell = v * cm - v.abs() * (cr + pad)
    return bt + lin + _uncertain_sum(ell, unc, n_free, supports, -1) - (v.abs() * sure).sum(-1) * pad


def _pixel_ranges(psi, m, r, cm, cr, sure, unc, n_free, supports: str, pad: float):
    """Step 3: ``[z-, z+]`` for every pixel of the front end's output before the clip."""
    B, N = m.shape
    k_sure = int(sure.sum(-1).max())
    idx = sure.to(torch.int8).sort(dim=-1, descending=True, stable=True).indices[:, :k_sure]  # sure rows first
    valid = sure.gather(-1, idx)
    G = psi[idx] * valid[..., None]  # (B, k_sure, N)
    # P m and a bound on |P| r for the projection P = G^T G on the surely kept functions: |P| <= |G|^T |G|
    # entrywise (exact |P| r costs N^2 per image and certified the same images on MNIST to 0.4 points)
    centre = (G.transpose(1, 2) @ (G @ m[..., None])).squeeze(-1)
    Ga = G.abs()
    spread = (Ga.transpose(1, 2) @ (Ga @ r[..., None] + pad)).squeeze(-1)
    zl, zu = centre - spread, centre + spread
    if bool(unc.any()):
        k_unc = int(unc.sum(-1).max())
        idx = unc.to(torch.int8).sort(dim=-1, descending=True, stable=True).indices[:, :k_unc]
        valid = unc.gather(-1, idx)[..., None].expand(B, k_unc, N)
        rows = psi[idx]  # (B, k_unc, N): psi_{k,i}
        c_m, c_r = cm.gather(-1, idx)[..., None], cr.gather(-1, idx)[..., None] + pad
        low = rows * c_m - rows.abs() * c_r  # min of psi_{k,i} c_k over the box
        high = rows * c_m + rows.abs() * c_r
        n = n_free[:, None].expand(B, N)
        zl = zl + _uncertain_sum(low, valid, n, supports, 1)
        zu = zu - _uncertain_sum(-high, valid, n, supports, 1)
    return zl, zu


@dataclass
class ClipLines:
    r"""Families of lines below and above :math:`\mathrm{clip}_{[0,1]}` on pixel intervals :math:`[z^-, z^+]`.

    With a slope parameter :math:`t \in [0, 1]` per pixel, the lower line is
    :math:`a^-(t) z + b^-` and the upper line :math:`a^+(t) z + b^+(t)`,
    where :math:`a^\pm(t) = a^\pm_0 + t\,s^\pm` and :math:`b^+(t) = b^+_0 - t\,s^+`:

    * interval below 0, above 1 or inside :math:`[0, 1]`: the clip itself
      (0, 1 or :math:`z`), no freedom;
    * straddling 0 only: above, the chord (the lowest valid line); below,
      :math:`t z` (every :math:`t \in [0,1]` is valid);
    * straddling 1 only: below, the chord; above, :math:`1 + t(z - 1)`;
    * straddling both: below :math:`t z / z^+`, above :math:`1 + t(z-1)/(1-z^-)`.

    Every :math:`t` gives valid lines, so :math:`t` can be optimised for each
    image without losing soundness.
    """

    a_lo: torch.Tensor
    s_lo: torch.Tensor
    b_lo: torch.Tensor
    a_hi: torch.Tensor
    s_hi: torch.Tensor
    b_hi: torch.Tensor

    def lower(self, t):
        return self.a_lo + t * self.s_lo, self.b_lo

    def upper(self, t):
        return self.a_hi + t * self.s_hi, self.b_hi - t * self.s_hi


def clip_relaxation(zl: torch.Tensor, zu: torch.Tensor) -> ClipLines:
    r"""The :class:`ClipLines` of :math:`\mathrm{clip}_{[0,1]}` on :math:`[z^-, z^+]` (elementwise)."""
    zl, zu = torch.minimum(zl, zu), torch.maximum(zl, zu)
    zeros = torch.zeros_like(zl)
    a_lo, s_lo, b_lo = zeros.clone(), zeros.clone(), zeros.clone()
    a_hi, s_hi, b_hi = zeros.clone(), zeros.clone(), zeros + 1.0
    below, above, inside = zu <= 0, zl >= 1, (zl >= 0) & (zu <= 1)
    b_lo[above] = 1.0
    b_hi[below] = 0.0
    a_lo[inside], a_hi[inside], b_hi[inside] = 1.0, 1.0, 0.0
    width = (zu - zl).clamp_min(1e-300)
    s0 = (zl < 0) & (zu > 0) & (zu <= 1)  # relu-like: chord above, t z below
    a_hi[s0], b_hi[s0] = (zu / width)[s0], (-zl * zu / width)[s0]
    s_lo[s0] = 1.0
    s1 = (zl >= 0) & (zl < 1) & (zu > 1)  # min(1, z): chord below, 1 + t (z - 1) above
    chord = (1 - zl) / width
    a_lo[s1], b_lo[s1] = chord[s1], (zl * (1 - chord))[s1]
    s_hi[s1] = 1.0
    s2 = (zl < 0) & (zu > 1)  # both kinks
    s_lo[s2] = (1 / zu)[s2]
    s_hi[s2] = (1 / (1 - zl))[s2]
    return ClipLines(a_lo, s_lo, b_lo, a_hi, s_hi, b_hi)


def _initial_slopes(zl: torch.Tensor, zu: torch.Tensor) -> torch.Tensor:
    """The CROWN heuristic: the free line follows the longer piece of the clip the interval covers."""
    straddles_one = (zl >= 0) & (zl < 1) & (zu > 1)
    return torch.where(straddles_one, 1 - zl >= zu - 1, zu >= -zl).to(zl.dtype)


def _optimise_slopes(bound, t0: torch.Tensor, steps: int, maximise: bool, lr: float = 0.2) -> torch.Tensor:
    """The best of ``bound(t)`` per signal over ``steps`` projected Adam steps on ``t`` in [0, 1] (every ``t`` is sound).

    The bound is concave in ``t`` for the lower bound (convex for the upper):
    a minimum of functions linear in ``t``; Adam follows its supergradient.
    """
    best = bound(t0).detach()
    if steps == 0:
        return best
    sign = 1.0 if maximise else -1.0
    t = t0.clone()
    m1, m2 = torch.zeros_like(t), torch.zeros_like(t)
    for step in range(1, steps + 1):  # Adam (beta 0.9, 0.999) on -sign * bound, projected on [0, 1]
        with torch.enable_grad():
            tv = t.detach().requires_grad_(True)
            value = bound(tv)
            finite = torch.isfinite(value)
            (g,) = torch.autograd.grad((sign * value[finite]).sum(), tv, allow_unused=True)
        best = torch.maximum(best, value.detach()) if maximise else torch.minimum(best, value.detach())
        g = torch.zeros_like(t) if g is None else g
        m1 = 0.9 * m1 + 0.1 * g
        m2 = 0.999 * m2 + 0.001 * g * g
        t = (t + lr * (m1 / (1 - 0.9**step)) / ((m2 / (1 - 0.999**step)).sqrt() + 1e-12)).clamp(0.0, 1.0)
    value = bound(t).detach()
    return torch.maximum(best, value) if maximise else torch.minimum(best, value)


def float32_guard(w: torch.Tensor, b, pad: float = PAD) -> torch.Tensor:
    r"""What the margin must exceed to cover float32 rounding: ``pad * (2 ||w||_1 + |b|)`` per classifier."""
    w = w.reshape(w.shape[0], -1) if w.dim() > 1 else w[None]
    return pad * (2 * w.abs().sum(-1) + torch.as_tensor(b, dtype=w.dtype).abs())


def logit_bounds(
    x: torch.Tensor,
    w: torch.Tensor,
    b: float,
    eps: float,
    basis: torch.Tensor,
    K: int,
    clip: bool = True,
    method="tight",
    pad: float = PAD,
) -> Bounds:
    r"""Bounds on :math:`f(x') = w^T\mathrm{clip}(\Psi^T\mathcal{H}_K(\Psi x')) + b` over the threat set of every ``x``.

    ``x`` is ``(B, N)`` (flattened signals), ``w`` ``(N,)``, ``basis`` the
    dense :math:`\Psi` ``(N, N)`` with rows :math:`\psi_k`; ``clip=False``
    drops the clip (the exact projection). ``method`` is a name of
    :data:`METHODS` or a :class:`Method`. Everything is computed in float64.
    """
    method = _method(method)
    checks.tensor(x, "x", floating=True)
    checks.tensor(basis, "basis", floating=True)
    if basis.dim() != 2 or basis.shape[0] != basis.shape[1]:
        raise checks.ArgumentError("basis", f"must be a square matrix (N, N), got shape {tuple(basis.shape)}")
    N = basis.shape[0]
    if x.dim() != 2 or x.shape[1] != N:
        raise checks.ArgumentError("x", f"must be flattened signals (B, {N}), got shape {tuple(x.shape)}")
    checks.tensor(w, "w", floating=True)
    if w.numel() != N:
        raise checks.ArgumentError("w", f"must hold {N} weights, got shape {tuple(w.shape)}")
    eps = checks.real(eps, "eps", 0.0, 1.0)
    K = checks.integer(K, "K", 1, N)
    clip = checks.flag(clip, "clip")
    pad = checks.real(pad, "pad", 0.0)
    dt = torch.float64
    x = x.detach().to(dt)
    psi = basis.detach().to(x.device, dt)
    w, b = w.detach().to(x.device, dt, copy=True).reshape(N), float(b)
    m, r = _threat_box(x, eps, method.box)
    cm = m @ psi.T
    if method.radius == "uniform":
        cr = torch.full_like(cm, eps * float(psi.abs().sum(1).max()))
    else:
        cr = r @ psi.abs().T
    sure, unc = _classify(cm, cr, K, pad)
    n_free = K - sure.sum(-1)
    if bool((unc.sum(-1) < n_free).any()):  # cannot happen (see the proof); a guard against a bug
        raise AssertionError("fewer uncertain coefficients than free slots in the support")
    common = (psi, m, r, cm, cr, sure, unc, n_free, method.supports, pad)
    B = len(x)
    if clip:
        zl, zu = _pixel_ranges(*common)
        zl, zu = zl - pad, zu + pad
        lines = clip_relaxation(zl, zu)
        pos = w >= 0
        t0 = _initial_slopes(zl, zu)

        def relaxed(t, sense):
            # sense +1 (lower bound of f): w_i >= 0 takes the line below the clip, w_i < 0 the line above
            (al, bl_), (ah, bh) = lines.lower(t), lines.upper(t)
            a, c = (torch.where(pos, al, ah), torch.where(pos, bl_, bh)) if sense > 0 else \
                (torch.where(pos, ah, al), torch.where(pos, bh, bl_))
            wt, bt = w * a, b + (w * c).sum(-1)
            return _linear_lower(wt, bt, *common) if sense > 0 else -_linear_lower(-wt, -bt, *common)

        lower = _optimise_slopes(lambda t: relaxed(t, 1), t0, method.slope_steps, maximise=True)
        upper = _optimise_slopes(lambda t: relaxed(t, -1), t0, method.slope_steps, maximise=False)
    else:
        wt, bt = w.expand(B, N), torch.full((B,), b, dtype=dt, device=x.device)
        lower = _linear_lower(wt, bt, *common)
        upper = -_linear_lower(-wt, -bt, *common)
    return Bounds(lower, upper, sure, unc, eps, method)


# --------------------------------------------------------------------------
# MNIST models: nn.Sequential(front end, LinearClassifier)
# --------------------------------------------------------------------------
def linear_frontend(model: nn.Module):
    """``(frontend, w, b)`` of a defended linear classifier ``nn.Sequential(frontend, LinearClassifier)``.

    The front end must have one channel and no colour conversion; its dense
    basis is ``frontend.transform.dense()``.
    """
    from ..frontend import SparsifyingFrontEnd, split_defended
    from ..models import LinearClassifier

    if not isinstance(model, nn.Module):
        raise checks.fail("model", "nn.Sequential(frontend, LinearClassifier)", model)
    frontend, classifier = split_defended(model)
    if not isinstance(frontend, SparsifyingFrontEnd) or not isinstance(classifier, LinearClassifier):
        raise checks.fail("model", "nn.Sequential(SparsifyingFrontEnd, LinearClassifier)", model)
    if frontend.channels != 1 or frontend.color != "rgb":
        raise checks.ArgumentError("model", "must have a one-channel front end without colour conversion")
    return frontend, classifier.w.detach().reshape(-1), float(classifier.b.detach())


@dataclass
class Certificate:
    """Per image: the certified margin, the verdict, and how many coefficients were sure and uncertain."""

    margin: np.ndarray  # lower bound on the signed margin, minus the float32 guard
    certified: np.ndarray  # bool
    n_sure: np.ndarray
    n_uncertain: np.ndarray
    eps: float
    method: str

    @property
    def n(self) -> int:
        return len(self.certified)

    def accuracy(self) -> tuple[float, float, float]:
        """Certified accuracy (%) with its 95% Wilson interval."""
        return accuracy_interval(self.certified.astype(np.int64))


def certify(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, method: str = "tight",
            batch_size: int = 64, pad: float = PAD) -> Certificate:
    r"""Certify each image of ``x`` (labels ``y``) for ``nn.Sequential(frontend, LinearClassifier)`` at :math:`\epsilon`.

    An image is certified when the lower bound on its signed margin over
    the threat set exceeds :func:`float32_guard`: every :math:`x'` with
    :math:`\|x' - x\|_\infty \le \epsilon` (in :math:`[0, 1]` for
    ``"tight"``) is then classified as ``y``. The front end's ``clip``
    setting is honoured (the relaxation of step 4).
    """
    frontend, w, b = linear_frontend(model)
    x = frontend.check(x)
    y = checks.labels(y, "y", n=len(x), classes=2)
    checks.integer(batch_size, "batch_size", 1)
    name = checks.choice(method, "method", tuple(METHODS))
    psi = frontend.transform.dense()
    K = frontend.K[0]
    guard = float(float32_guard(w.double(), b, pad))
    margins, sure, unc = [], [], []
    for xb, yb in zip(x.flatten(1).split(batch_size), y.split(batch_size)):
        bounds = logit_bounds(xb, w, b, eps, psi, K, frontend.clip, name, pad)
        margins.append(bounds.margin(yb.to(xb.device)).cpu() - guard)
        sure.append(bounds.n_sure.cpu())
        unc.append(bounds.n_uncertain.cpu())
    margin = torch.cat(margins).numpy() if margins else np.zeros(0)
    return Certificate(margin, margin > 0, torch.cat(sure).numpy() if sure else np.zeros(0, int),
                       torch.cat(unc).numpy() if unc else np.zeros(0, int), float(eps), name)
