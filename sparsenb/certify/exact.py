r"""The exact worst case of a linear classifier behind the front end, for testing the certificate.

:func:`defended_logit` writes the defended model out with a dense basis;
over the threat box of a signal, :func:`vertex_extremes` enumerates the
corners, :func:`sampled_extremes` samples inside it, and
:func:`exact_extremes` solves a mixed-integer linear program (scipy's HiGHS)
that encodes the top-K selection and the clip, for small problems
(:math:`N \le 16`). :func:`soundness_check` holds every certificate of
:mod:`sparsenb.certify.bounds` against them on :func:`toy_problem`\ s.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from .. import checks
from .bounds import METHODS, _threat_box, logit_bounds

__all__ = ["defended_logit", "vertex_extremes", "sampled_extremes", "exact_extremes", "toy_problem", "soundness_check"]


def defended_logit(x: torch.Tensor, w: torch.Tensor, b: float, basis: torch.Tensor, K: int, clip: bool = True) -> torch.Tensor:
    r""":math:`f(x)` for signals ``x`` ``(B, N)`` in float64 (the front end written out with a dense :math:`\Psi`)."""
    psi = basis.to(torch.float64)
    c = x.to(torch.float64) @ psi.T
    idx = c.abs().topk(K, dim=-1).indices
    kept = torch.zeros_like(c).scatter_(-1, idx, 1.0) * c
    z = kept @ psi
    if clip:
        z = z.clamp(0.0, 1.0)
    return z @ w.to(torch.float64).reshape(-1) + b


def vertex_extremes(x, w, b, eps, basis, K, clip=True, box=True, chunk: int = 8192) -> tuple[float, float]:
    """Min and max of :func:`defended_logit` over the :math:`2^N` corners of the threat box of one signal ``x`` ``(N,)``."""
    x = x.to(torch.float64).reshape(-1)
    N = len(x)
    if N > 20:
        raise checks.ArgumentError("x", f"has N={N}: 2^N corners are too many to enumerate (N <= 20)")
    m, r = _threat_box(x[None], eps, box)
    lo, hi = math.inf, -math.inf
    codes = torch.arange(2**N)
    bits = 2 ** torch.arange(N)
    for part in codes.split(chunk):
        signs = ((part[:, None] & bits) > 0).to(torch.float64) * 2 - 1
        f = defended_logit(m + signs * r, w, b, basis, K, clip)
        lo, hi = min(lo, float(f.min())), max(hi, float(f.max()))
    return lo, hi


def sampled_extremes(x, w, b, eps, basis, K, clip=True, box=True, n: int = 20000, seed: int = 0) -> tuple[float, float]:
    """Min and max of :func:`defended_logit` over ``n`` points of the threat box: uniform inside, and on random faces.

    Half the points are uniform in the box; the other half have a random
    subset of coordinates at a corner and the rest uniform (faces and edges,
    where piecewise-linear extremes also live).
    """
    x = x.to(torch.float64).reshape(-1)
    g = torch.Generator().manual_seed(checks.seed(seed))
    m, r = _threat_box(x[None], eps, box)
    u = torch.rand(n, len(x), generator=g, dtype=torch.float64) * 2 - 1
    corner = torch.sign(torch.rand(n, len(x), generator=g, dtype=torch.float64) - 0.5)
    on_face = (torch.rand(n, len(x), generator=g, dtype=torch.float64) < 0.5) & (torch.arange(n)[:, None] >= n // 2)
    u = torch.where(on_face, corner, u)
    f = defended_logit(m + u * r, w, b, basis, K, clip)
    return float(f.min()), float(f.max())


def exact_extremes(x, w, b, eps, basis, K, clip=True, box=True, time_limit: float = 60.0, points: bool = False):
    r"""The exact min and max of :math:`f` over the threat set of one signal, by mixed-integer linear programming.

    Variables: the input :math:`x'` in the threat box; a 0/1 :math:`\sigma_k`
    per coefficient (kept), :math:`\sum\sigma_k = K`; a threshold
    :math:`\tau` with :math:`|c_k| \le \tau` for dropped and :math:`|c_k| \ge
    \tau` for kept coefficients (a 0/1 sign choice each); the kept values
    :math:`y_k = \sigma_k c_k`; the output :math:`z = \Psi^Ty` and, with the
    clip, :math:`\phi = \mathrm{clip}(z)` through two 0/1 regime variables per
    pixel. Big-M constants come from :math:`|c_k| \le \|\psi_k\|_1` on
    :math:`[0, 1]^N` (and :math:`\epsilon`-ball bounds without the box).
    Ties let either coefficient be kept, a superset of what ``topk`` does, so
    the result bounds the true extremes from outside (it equals them away
    from ties). Solved with HiGHS (``scipy.optimize.milp``); raises if a
    solve does not finish optimal within ``time_limit`` seconds. With
    ``points`` it also returns the minimiser and maximiser found.
    """
    from scipy.optimize import Bounds as LPBounds
    from scipy.optimize import LinearConstraint, milp

    psi = basis.to(torch.float64).numpy()
    xv = x.to(torch.float64).reshape(-1).numpy()
    wv = w.to(torch.float64).reshape(-1).numpy()
    N = len(xv)
    m, r = (t[0].numpy() for t in _threat_box(torch.from_numpy(xv)[None], eps, box))
    lo, hi = m - r, m + r
    Mc = float((np.abs(psi) @ np.maximum(np.abs(lo), np.abs(hi))).max()) + 1.0  # |c_k| <= Mc, tau <= Mc
    Mk = 2 * Mc + 1.0  # |c_k - tau| <= Mk
    Mz = float(np.abs(psi).sum(0).max() * Mc) + 2.0  # |z_i| <= Mz
    names = ["x", "tau", "sigma", "s", "y", "z"] + (["phi", "alo", "ahi"] if clip else [])
    sizes = {"x": N, "tau": 1, "sigma": N, "s": N, "y": N, "z": N, "phi": N, "alo": N, "ahi": N}
    start, n_var = {}, 0
    for nm in names:
        start[nm], n_var = n_var, n_var + sizes[nm]
    rows, lbs, ubs = [], [], []
    inf = np.inf

    def add(coeffs: dict, low: float, high: float):
        row = np.zeros(n_var)
        for j, v in coeffs.items():
            row[j] += v
        rows.append(row)
        lbs.append(low)
        ubs.append(high)

    add({start["sigma"] + k: 1.0 for k in range(N)}, K, K)
    t = start["tau"]
    for k in range(N):
        ck = {start["x"] + i: psi[k, i] for i in range(N)}
        neg = {j: -v for j, v in ck.items()}
        sg, sk, yk = start["sigma"] + k, start["s"] + k, start["y"] + k
        add({**ck, t: -1.0, sg: -Mk}, -inf, 0.0)  # dropped (sigma = 0): c_k <= tau
        add({**neg, t: -1.0, sg: -Mk}, -inf, 0.0)  # and -c_k <= tau
        add({**ck, t: -1.0, sg: -Mk, sk: Mk}, -Mk, inf)  # kept, s = 0: c_k >= tau
        add({**neg, t: -1.0, sg: -Mk, sk: -Mk}, -2 * Mk, inf)  # kept, s = 1: -c_k >= tau
        add({yk: 1.0, sg: -Mc}, -inf, 0.0)  # y_k = sigma_k c_k
        add({yk: 1.0, sg: Mc}, 0.0, inf)
        add({yk: 1.0, **neg, sg: Mk}, -inf, Mk)
        add({yk: 1.0, **neg, sg: -Mk}, -Mk, inf)
    for i in range(N):
        z = start["z"] + i
        add({z: 1.0, **{start["y"] + k: -psi[k, i] for k in range(N)}}, 0.0, 0.0)
        if clip:  # phi = clip(z): regime alo (z <= 0, phi = 0), ahi (z >= 1, phi = 1), or neither (phi = z)
            p, al, ah = start["phi"] + i, start["alo"] + i, start["ahi"] + i
            add({al: 1.0, ah: 1.0}, -inf, 1.0)
            add({z: 1.0, al: Mz}, -inf, Mz)  # alo: z <= 0
            add({p: 1.0, al: 1.0}, -inf, 1.0)  # alo: phi = 0
            add({z: 1.0, ah: -Mz}, 1.0 - Mz, inf)  # ahi: z >= 1
            add({p: 1.0, ah: -1.0}, 0.0, inf)  # ahi: phi = 1
            add({z: 1.0, al: Mz}, 0.0, inf)  # neither: z >= 0
            add({z: 1.0, ah: -Mz}, -inf, 1.0)  # neither: z <= 1
            add({p: 1.0, z: -1.0, al: -Mz, ah: -Mz}, -inf, 0.0)  # neither: phi = z
            add({p: 1.0, z: -1.0, al: Mz, ah: Mz}, 0.0, inf)
    A = np.array(rows)
    lb, ub = np.full(n_var, -inf), np.full(n_var, inf)
    lb[start["x"] : start["x"] + N], ub[start["x"] : start["x"] + N] = lo, hi
    lb[t], ub[t] = 0.0, Mc
    integrality = np.zeros(n_var)
    for nm in ("sigma", "s") + (("alo", "ahi") if clip else ()):
        lb[start[nm] : start[nm] + N], ub[start[nm] : start[nm] + N] = 0.0, 1.0
        integrality[start[nm] : start[nm] + N] = 1
    if clip:
        lb[start["phi"] : start["phi"] + N], ub[start["phi"] : start["phi"] + N] = 0.0, 1.0
    out = start["phi"] if clip else start["z"]
    results, argext = [], []
    for sign in (1.0, -1.0):
        cost = np.zeros(n_var)
        cost[out : out + N] = sign * wv
        res = milp(cost, constraints=LinearConstraint(A, lbs, ubs), integrality=integrality,
                   bounds=LPBounds(lb, ub), options={"time_limit": time_limit, "mip_rel_gap": 0.0})
        if res.status != 0:
            raise RuntimeError(f"MILP did not finish optimal: {res.message}")
        # the solver's bound on the optimum (within its tolerances), not just the incumbent
        results.append(sign * float(res.fun) + float(b))
        argext.append(torch.from_numpy(res.x[start["x"] : start["x"] + N].copy()))
    if points:
        return results[0], results[1], argext[0], argext[1]
    return results[0], results[1]


def toy_problem(N: int = 16, basis: str = "haar:1", K: int = 3, seed: int = 0):
    r"""A random small problem: a signal in :math:`[0, 1]^N` that is roughly sparse in ``basis``, weights and a bias.

    ``basis`` is ``"name:level"`` for a periodized wavelet, ``"dct"`` or
    ``"random"`` (a random orthonormal basis). The signal is the magnitude of
    a sum of ``K`` basis functions, scaled to peak 1, plus small noise, clipped to
    :math:`[0, 1]`; ``w`` is Gaussian and ``b``
    centres the clean logit at a small margin, so that attacks matter.
    Returns ``(x, w, b, Psi)`` as float64 tensors and a float.
    """
    from ..theory.bases1d import basis_functions, transform_1d

    N = checks.integer(N, "N", 2, 64)
    rng = np.random.default_rng(checks.seed(seed))
    if basis == "random":
        q, _ = np.linalg.qr(rng.standard_normal((N, N)))
        psi = torch.from_numpy(q.T.copy())
    else:
        psi = basis_functions(transform_1d(basis, N), np.arange(N))
    c = np.zeros(N)
    c[rng.choice(N, K, replace=False)] = rng.uniform(0.5, 1.5, K) * rng.choice([-1.0, 1.0], K)
    s = np.abs(c @ psi.numpy())  # K-sparse, made non-negative like an image (zero background stays zero)
    x = torch.from_numpy(np.clip(s / s.max() + 0.03 * rng.standard_normal(N), 0.0, 1.0))
    w = torch.from_numpy(rng.standard_normal(N))
    f0 = float(defended_logit(x[None], w, 0.0, psi, K)[0])
    b = -f0 + float(rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.5))
    return x, w, b, psi


def soundness_check(problems, epsilons, K: int, clip_options=(True, False), exact: bool = True,
                    samples: int = 4000, seed: int = 0):
    r"""Every certificate against the brute-force worst case on small problems: one row per (problem, eps, clip, method).

    ``problems`` is a list of ``(name, x, w, b, Psi)``. Per case the
    extremes of :math:`f` over the threat set come from the corners
    (:func:`vertex_extremes`), random points (:func:`sampled_extremes`) and,
    with ``exact``, the MILP (:func:`exact_extremes`); the threat set is the
    :math:`\epsilon`-ball cut by the box for ``"tight"`` and the whole ball
    for the other methods, as each certifies. Columns: ``lower``/``upper``
    (the certificate), ``min``/``max`` (the worst seen), ``violation`` (how
    far the certificate misses the worst case, positive when unsound; the
    guard allowance is not used here) and ``slack`` (bound minus worst case,
    summed over both sides).
    """
    import pandas as pd

    rows = []
    for (name, x, w, b, psi), eps, clip in itertools.product(problems, epsilons, clip_options):
        extremes = {}
        for box in (True, False):
            found = [vertex_extremes(x, w, b, eps, psi, K, clip, box),
                     sampled_extremes(x, w, b, eps, psi, K, clip, box, samples, seed)]
            if exact:
                found.append(exact_extremes(x, w, b, eps, psi, K, clip, box))
            extremes[box] = (min(f[0] for f in found), max(f[1] for f in found))
        for method, spec in METHODS.items():
            bounds = logit_bounds(x.reshape(1, -1), w, b, eps, psi, K, clip, method)
            lo, hi = float(bounds.lower[0]), float(bounds.upper[0])
            fmin, fmax = extremes[spec.box]
            rows.append({"problem": name, "eps": eps, "clip": clip, "method": method, "lower": lo, "upper": hi,
                         "min": fmin, "max": fmax, "violation": max(lo - fmin, fmax - hi),
                         "slack": (fmin - lo) + (hi - fmax), "uncertain": int(bounds.n_uncertain[0])})
    return pd.DataFrame(rows)
