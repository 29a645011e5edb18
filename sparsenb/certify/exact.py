r"""The exact worst case of a linear classifier behind the front end, for testing the certificate.

:func:`defended_logit` writes the defended model out with a dense basis;
over the threat box of a signal, :func:`vertex_extremes` enumerates the
corners, :func:`sampled_extremes` samples inside it, and
:func:`exact_extremes` solves a mixed-integer linear program (scipy's HiGHS)
that encodes the top-K selection and the clip, for small problems
(:math:`N \le 16`); :func:`exact_margin` solves the same program for one
real image (:math:`N = 784`), with binaries only where the certificate
leaves a choice, and :func:`exact_robustness` runs it over images of a
defended linear classifier (robust, broken or undecided per image). :func:`soundness_check` holds every certificate of
:mod:`sparsenb.certify.bounds` against them on :func:`toy_problem`\ s.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from .. import checks
from .bounds import METHODS, PAD, _threat_box, logit_bounds

__all__ = ["defended_logit", "vertex_extremes", "sampled_extremes", "exact_extremes", "exact_margin",
           "exact_robustness", "toy_problem", "soundness_check"]


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


def exact_margin(
    x: torch.Tensor,
    y: int,
    w: torch.Tensor,
    b: float,
    eps: float,
    basis: torch.Tensor,
    K: int,
    clip: bool = True,
    time_limit: float = 20.0,
    pad: float = PAD,
) -> dict:
    r"""The exact worst signed margin of one image over the :math:`\epsilon`-ball cut by :math:`[0, 1]^N`, by MILP.

    The same model as :func:`exact_extremes` (the top-:math:`K` selection and
    the clip encoded exactly), written for real images (:math:`N = 784`):
    sparse constraints, and binaries only where the certificate
    (:mod:`sparsenb.certify.bounds`, the ``"tight"`` ranges) leaves a choice.
    A surely kept coefficient needs no binary (it is kept wherever
    :math:`x'` goes), a surely dropped one is left out; only the uncertain
    ones get a 0/1 kept variable (and a sign variable where their range
    straddles 0), with big-M constants from their exact ranges. A pixel
    whose range before the clip lies in one regime of the clip is that
    regime; where the clip is convex (or concave) in the direction the
    objective pushes, its convex (concave) envelope is exact; only the
    other pixels get 0/1 regime variables.

    Minimises :math:`s f(x')` with :math:`s = \pm 1` for label ``y`` = 1 / 0.
    Returns a dict: ``status`` ``"robust"`` (the solver's lower bound on
    the margin is positive: no :math:`x'` changes the label), ``"broken"``
    (it found an :math:`x'` whose float64 margin, recomputed with
    :func:`defended_logit`, is negative; ``x_adv`` holds it) or
    ``"undecided"`` (neither within ``time_limit`` seconds); ``lower`` (the
    solver's bound on the worst margin), ``upper`` (the margin of the best
    point found, recomputed), ``binaries`` and ``seconds``.
    """
    import time

    import scipy.sparse as sp
    from scipy.optimize import Bounds as LPBounds
    from scipy.optimize import LinearConstraint, milp

    from .bounds import _classify, _pixel_ranges

    t0 = time.perf_counter()
    dt = torch.float64
    xv = x.detach().to(dt).reshape(1, -1)
    N = xv.shape[1]
    psi_t = basis.detach().to(dt)
    sign = 1.0 if int(y) == 1 else -1.0
    m, r = _threat_box(xv, float(eps), True)
    cm, cr = m @ psi_t.T, r @ psi_t.abs().T
    sure, unc = _classify(cm, cr, K, pad)
    n_free = K - sure.sum(-1)
    zl, zu = _pixel_ranges(psi_t, m, r, cm, cr, sure, unc, n_free, "cardinality", pad)
    zl, zu = (zl[0] - pad).numpy(), (zu[0] + pad).numpy()
    psi = sp.csr_matrix(np.where(np.abs(psi_t.numpy()) > 0, psi_t.numpy(), 0.0))
    lo_c, hi_c = (cm - cr - pad)[0].numpy(), (cm + cr + pad)[0].numpy()
    S = np.flatnonzero(sure[0].numpy())
    U = np.flatnonzero(unc[0].numpy())
    v = sign * w.detach().to(dt).reshape(-1).numpy()
    lo_x, hi_x = (m - r)[0].numpy(), (m + r)[0].numpy()

    # variable layout
    layout, n_var = {}, 0

    def block(name, size):
        nonlocal n_var
        layout[name] = (n_var, size)
        n_var += size

    for name, size in (("x", N), ("c", len(S)), ("sigma", len(U)), ("s", len(U)), ("y", len(U)),
                       ("tau", 1 if len(U) else 0), ("z", N), ("phi", N if clip else 0),
                       ("a", N if clip else 0), ("g", N if clip else 0), ("bb", N if clip else 0)):
        block(name, size)
    col = lambda name, i=0: layout[name][0] + i  # noqa: E731
    lb, ub = np.full(n_var, -np.inf), np.full(n_var, np.inf)
    integrality = np.zeros(n_var)
    rows, cols, vals, lows, highs = [], [], [], [], []

    def add(entries, low, high):
        i = len(lows)
        for j, val in entries:
            rows.append(i)
            cols.append(j)
            vals.append(val)
        lows.append(low)
        highs.append(high)

    lb[col("x"):col("x") + N], ub[col("x"):col("x") + N] = lo_x, hi_x
    psi_rows = [psi.getrow(k) for k in range(N)]

    def coefficient(k):  # c_k(x') = psi_k^T x' as (column, value) pairs
        row = psi_rows[k]
        return [(col("x", int(i)), float(val)) for i, val in zip(row.indices, row.data)]

    for j, k in enumerate(S):  # surely kept: c_k, a linear function of x'
        add([(col("c", j), 1.0)] + [(i, -val) for i, val in coefficient(k)], 0.0, 0.0)
        lb[col("c", j)], ub[col("c", j)] = lo_c[k], hi_c[k]
    if len(U):
        tau_max = float(np.maximum(np.abs(lo_c[U]), np.abs(hi_c[U])).max())
        lb[col("tau")], ub[col("tau")] = 0.0, tau_max
        add([(col("sigma", j), 1.0) for j in range(len(U))], float(n_free[0]), float(n_free[0]))
    for j, k in enumerate(U):
        ck = coefficient(k)
        neg = [(i, -val) for i, val in ck]
        L, H = float(lo_c[k]), float(hi_c[k])
        M = max(abs(L), abs(H)) + tau_max
        sg, sk, yk, t = col("sigma", j), col("s", j), col("y", j), col("tau")
        integrality[sg] = 1
        lb[sg], ub[sg] = 0.0, 1.0
        lb[yk], ub[yk] = min(0.0, L), max(0.0, H)
        # y_k = sigma_k c_k
        add([(yk, 1.0), (sg, -H)], -np.inf, 0.0)
        add([(yk, 1.0), (sg, -L)], 0.0, np.inf)
        add([(yk, 1.0)] + neg + [(sg, -L)], -np.inf, -L)  # y <= c - L(1 - sigma)
        add([(yk, 1.0)] + neg + [(sg, -H)], -H, np.inf)  # y >= c - H(1 - sigma)
        # dropped: |c_k| <= tau
        add(ck + [(t, -1.0), (sg, -M)], -np.inf, 0.0)
        add(neg + [(t, -1.0), (sg, -M)], -np.inf, 0.0)
        # kept: |c_k| >= tau
        if L >= 0:
            add(ck + [(t, -1.0), (sg, -M)], -M, np.inf)
            lb[sk], ub[sk] = 0.0, 0.0
        elif H <= 0:
            add(neg + [(t, -1.0), (sg, -M)], -M, np.inf)
            lb[sk], ub[sk] = 0.0, 0.0
        else:  # the sign of a kept coefficient: s = 0 positive, s = 1 negative
            integrality[sk] = 1
            lb[sk], ub[sk] = 0.0, 1.0
            add(ck + [(t, -1.0), (sg, -M), (sk, M)], -M, np.inf)
            add(neg + [(t, -1.0), (sg, -M), (sk, -M)], -2 * M, np.inf)
    # z = Psi^T (kept coefficients)
    psi_cols = sp.csc_matrix(psi)
    where_S = {int(k): j for j, k in enumerate(S)}
    where_U = {int(k): j for j, k in enumerate(U)}
    for i in range(N):
        column = psi_cols.getcol(i)
        entries = [(col("z", i), 1.0)]
        for k, val in zip(column.indices, column.data):
            if int(k) in where_S:
                entries.append((col("c", where_S[int(k)]), -float(val)))
            elif int(k) in where_U:
                entries.append((col("y", where_U[int(k)]), -float(val)))
        add(entries, 0.0, 0.0)
        lb[col("z", i)], ub[col("z", i)] = zl[i], zu[i]
    cost = np.zeros(n_var)
    if not clip:
        cost[col("z"):col("z") + N] = v
    else:
        for i in range(N):
            z, p, a, g, bb = col("z", i), col("phi", i), col("a", i), col("g", i), col("bb", i)
            lo_z, hi_z = float(zl[i]), float(zu[i])
            lb[[a, g, bb]], ub[[a, g, bb]] = 0.0, 0.0
            lb[p], ub[p] = 0.0, 1.0
            cost[p] = v[i]
            if hi_z <= 0.0:
                ub[p] = 0.0
            elif lo_z >= 1.0:
                lb[p] = 1.0
            elif lo_z >= 0.0 and hi_z <= 1.0:
                add([(p, 1.0), (z, -1.0)], 0.0, 0.0)
            elif hi_z <= 1.0:  # straddles 0: phi = max(0, z), convex
                add([(p, 1.0), (z, -1.0)], 0.0, np.inf)
                if v[i] < 0:  # pushed up: exact only with the regime (a = 1: z >= 0)
                    integrality[a], ub[a] = 1, 1.0
                    add([(p, 1.0), (z, -1.0), (a, -lo_z)], -np.inf, -lo_z)  # phi <= z - zl (1 - a)
                    add([(p, 1.0), (a, -hi_z)], -np.inf, 0.0)  # phi <= zu a
            elif lo_z >= 0.0:  # straddles 1: phi = min(1, z), concave
                add([(p, 1.0), (z, -1.0)], -np.inf, 0.0)
                if v[i] > 0:  # pushed down: exact only with the regime (a = 1: z >= 1)
                    integrality[a], ub[a] = 1, 1.0
                    add([(p, 1.0), (z, -1.0), (a, hi_z - 1.0)], 0.0, np.inf)  # phi >= z - (zu - 1) a
                    add([(p, 1.0), (a, -(1.0 - lo_z))], lo_z, np.inf)  # phi >= 1 - (1 - zl)(1 - a)
            else:  # straddles both: g = max(0, z) (regime a), phi = min(1, g) (regime bb)
                integrality[[a, bb]] = 1
                ub[[a, bb]] = 1.0
                lb[g], ub[g] = 0.0, hi_z
                add([(g, 1.0), (z, -1.0)], 0.0, np.inf)
                add([(g, 1.0), (z, -1.0), (a, -lo_z)], -np.inf, -lo_z)
                add([(g, 1.0), (a, -hi_z)], -np.inf, 0.0)
                add([(p, 1.0), (g, -1.0)], -np.inf, 0.0)
                add([(p, 1.0), (g, -1.0), (bb, hi_z - 1.0)], 0.0, np.inf)
                add([(p, 1.0), (bb, -1.0)], 0.0, np.inf)
    A = sp.csr_matrix((vals, (rows, cols)), shape=(len(lows), n_var))
    res = milp(cost, constraints=LinearConstraint(A, lows, highs), integrality=integrality,
               bounds=LPBounds(lb, ub), options={"time_limit": float(time_limit)})
    offset = sign * float(b)
    lower = getattr(res, "mip_dual_bound", None)
    lower = -np.inf if lower is None or not np.isfinite(lower) else float(lower) + offset
    out = {"status": "undecided", "lower": lower, "upper": np.inf, "x_adv": None,
           "binaries": int(integrality.sum()), "seconds": time.perf_counter() - t0}
    if res.x is not None:
        point = np.clip(res.x[col("x"):col("x") + N], lo_x, hi_x)
        # At the optimum the kept and dropped coefficients may tie at the threshold, where the real top-K can
        # pick another support; nudge the point towards the support the program chose (kept coefficients away
        # from zero, dropped ones towards it) and keep the point with the lowest real margin.
        c_point = psi_t.numpy() @ point
        chosen = np.zeros(N)
        chosen[S] = 1.0
        if len(U):
            chosen[U] = np.round(res.x[col("sigma"):col("sigma") + len(U)])
        direction = psi_t.numpy().T @ (np.sign(c_point) * (2 * chosen - 1))
        candidates = [torch.from_numpy(np.clip(point + d * np.sign(direction), lo_x, hi_x))
                      for d in (1e-6, 1e-5, 1e-4, 1e-3)]
        margins = [sign * float(defended_logit(p[None], w, b, basis, K, clip)[0]) for p in candidates]
        best = int(np.argmin(margins))
        x_adv, margin = candidates[best], margins[best]
        out["upper"], out["x_adv"] = margin, x_adv
        if res.status == 0:
            out["lower"] = min(out["lower"], float(res.fun) + offset) if np.isfinite(out["lower"]) else float(res.fun) + offset
        if margin < 0:
            out["status"] = "broken"
    if out["status"] != "broken" and out["lower"] > 0:
        out["status"] = "robust"
    return out


def exact_robustness(model, x: torch.Tensor, y: torch.Tensor, eps: float, time_limit: float = 10.0, only=None) -> dict:
    r"""Per image, :func:`exact_margin` of ``nn.Sequential(frontend, LinearClassifier)``: robust, broken or undecided.

    ``only`` (0/1 or bool per image; default all) picks the images to solve;
    the others are ``"skipped"``. A point the MILP calls adversarial counts
    as ``"broken"`` only if the model itself (float32, as attacked
    everywhere in the book) misclassifies it and it lies in the
    :math:`\epsilon`-ball and :math:`[0, 1]`; otherwise the image is
    ``"undecided"``. ``"robust"`` needs the solver's lower bound on the
    margin above :func:`~sparsenb.certify.bounds.float32_guard`, as a
    certificate does. Returns lists per image: ``status``, ``lower``,
    ``upper`` (the margin of the best point found, float64), ``seconds``,
    ``binaries``.
    """
    from ..attacks.base import check_adversarial
    from ..evaluation import predict
    from .bounds import float32_guard, linear_frontend

    frontend, w, b = linear_frontend(model)
    x = frontend.check(x)
    y = checks.labels(y, "y", n=len(x), classes=2)
    eps = checks.real(eps, "eps", 0.0, 1.0)
    time_limit = checks.real(time_limit, "time_limit", 0.0, low_open=True)
    chosen = np.ones(len(x), bool) if only is None else np.asarray(only).astype(bool)
    if chosen.shape != (len(x),):
        raise checks.ArgumentError("only", f"must hold one flag per image ({len(x)}), got shape {chosen.shape}")
    psi = frontend.transform.dense().to(torch.float64)
    K = frontend.K[0]
    guard = float(float32_guard(w.double(), b))
    out = {k: [] for k in ("status", "lower", "upper", "seconds", "binaries")}
    device = next(model.parameters()).device
    for i in range(len(x)):
        if not chosen[i]:
            for k, v in (("status", "skipped"), ("lower", None), ("upper", None), ("seconds", 0.0), ("binaries", 0)):
                out[k].append(v)
            continue
        res = exact_margin(x[i].flatten().cpu(), int(y[i]), w.cpu(), b, eps, psi, K, frontend.clip, time_limit)
        status = res["status"]
        if status == "broken":
            xa = res["x_adv"].to(x.dtype).reshape(x[i].shape)[None].to(device)
            check_adversarial(xa, x[i : i + 1], eps)  # in the eps-ball and [0, 1], or raise
            with torch.no_grad():
                wrong = int(predict(model, xa)[0]) != int(y[i])
            status = "broken" if wrong else "undecided"
        elif status == "robust" and not res["lower"] > guard:
            status = "undecided"
        out["status"].append(status)
        out["lower"].append(float(res["lower"]) if np.isfinite(res["lower"]) else None)
        out["upper"].append(float(res["upper"]) if np.isfinite(res["upper"]) else None)
        out["seconds"].append(float(res["seconds"]))
        out["binaries"].append(int(res["binaries"]))
    return out
