"""The certificate for a linear classifier behind the front end (sparsenb.certify): sound, and not vacuous.

Soundness is tested against the worst case found by brute force on small
1-D problems: every corner of the threat box (2^16 of them at N = 16),
random points inside it and on its faces, and, at N = 8, the exact worst
case of a mixed-integer program (the map is piecewise linear and
discontinuous, so its extremes need not be at corners). On MNIST 3 vs 7
no certified image is fooled by the book's linear-classifier attacks, PGD
through every gradient treatment, or random points of the threat set.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from sparsenb import attacks, certify
from sparsenb.checks import ArgumentError
from sparsenb.evaluation import predict
from sparsenb.frontend import SparsifyingFrontEnd
from sparsenb.frontend import defended
from sparsenb.training import sparsify_dataset, train_linear_svm

pytestmark = pytest.mark.usefixtures("one_thread")

TOL = 1e-9  # the certificate's own pad (1e-4) is the real margin; this only absorbs float64 rounding


def _problems(N, K, bases, seeds=(0,)):
    out = []
    for basis, seed in itertools.product(bases, seeds):
        x, w, b, psi = certify.toy_problem(N, basis, K, seed)
        out.append((f"{basis}/{seed}", x, w, b, psi))
    return out


def test_clip_relaxation_bounds_the_clip():
    g = torch.Generator().manual_seed(0)
    zl = torch.rand(50_000, generator=g, dtype=torch.float64) * 4 - 2
    zu = zl + torch.rand(50_000, generator=g, dtype=torch.float64) * 3
    lines = certify.clip_relaxation(zl, zu)
    z = zl + (zu - zl) * torch.rand(20, 50_000, generator=g, dtype=torch.float64)
    z = torch.cat([z, zl[None], zu[None], torch.zeros(1, 50_000, dtype=torch.float64).clamp(zl, zu)])
    c = z.clamp(0, 1)
    for t in (torch.zeros_like(zl), torch.ones_like(zl), torch.rand(50_000, generator=g, dtype=torch.float64)):
        (al, bl), (ah, bh) = lines.lower(t), lines.upper(t)
        assert float((al * z + bl - c).max()) <= 1e-12
        assert float((c - ah * z - bh).max()) <= 1e-12
    inside = (zl >= 0) & (zu <= 1)  # exact there, for every t
    (al, bl), (ah, bh) = lines.lower(torch.rand_like(zl)), lines.upper(torch.rand_like(zl))
    assert torch.equal(al[inside], torch.ones_like(al[inside])) and torch.equal(bh[inside], torch.zeros_like(bh[inside]))


@pytest.mark.parametrize("clip", [True, False])
def test_sound_on_every_corner_and_sampled_points_n16(clip):
    problems = _problems(16, 3, ["haar:1", "db2:2", "coif1:1", "dct", "random"])
    table = certify.soundness_check(problems, [0.01, 0.1, 0.3], 3, clip_options=(clip,), exact=False, samples=2000)
    assert len(table) == 5 * 3 * 3
    worst = table.loc[table.violation.idxmax()]
    assert table.violation.max() <= TOL, f"certificate below the brute-force worst case:\n{worst}"
    # not vacuous everywhere: the tight certificate is finite, and the smallest eps has no uncertain coefficient somewhere
    assert np.isfinite(table[table.method == "tight"][["lower", "upper"]].to_numpy()).all()


def test_sound_against_the_exact_worst_case_n8():
    problems = _problems(8, 2, ["haar:1", "random"])
    table = certify.soundness_check(problems, [0.05, 0.2], 2, exact=True, samples=1000)
    assert table.violation.max() <= TOL, table.sort_values("violation").tail()


def test_exact_worst_case_is_attained_and_beats_the_corners():
    x, w, b, psi = certify.toy_problem(8, "random", 2, seed=3)
    for clip, box in itertools.product((True, False), (True, False)):
        lo, hi, x_lo, x_hi = certify.exact_extremes(x, w, b, 0.2, psi, 2, clip, box, points=True)
        vlo, vhi = certify.vertex_extremes(x, w, b, 0.2, psi, 2, clip, box)
        assert lo <= vlo + 1e-6 and hi >= vhi - 1e-6
        # the MILP's points lie in the threat set and attain its values for one tie-breaking of the top-K
        for point, value in ((x_lo, lo), (x_hi, hi)):
            assert float((point - x).abs().max()) <= 0.2 + 1e-7
            if box:
                assert float(point.min()) >= -1e-7 and float(point.max()) <= 1 + 1e-7
            c = point @ psi.T
            kth = float(c.abs().sort(descending=True).values[1])
            values = []
            for S in itertools.combinations(range(8), 2):  # every support the top-2 can pick, up to ties
                if min(float(c[list(S)].abs().min()) - kth, 0.0) > -1e-6 and all(
                    float(c[j].abs()) <= kth + 1e-6 for j in range(8) if j not in S
                ):
                    z = c[list(S)] @ psi[list(S)]
                    values.append(float((z.clamp(0, 1) if clip else z) @ w + b))
            assert min(abs(v - value) for v in values) < 1e-5


def test_tighter_methods_are_tighter_without_the_clip():
    problems = _problems(16, 3, ["haar:1", "coif1:1", "random"], seeds=(0, 1, 2))
    for name, x, w, b, psi in problems:
        for eps in (0.01, 0.05, 0.2):
            bounds = {m: certify.logit_bounds(x[None], w, b, eps, psi, 3, False, m) for m in certify.METHODS}
            lower = [float(bounds[m].lower[0]) for m in ("prop1", "interval", "tight")]
            upper = [float(bounds[m].upper[0]) for m in ("prop1", "interval", "tight")]
            assert all(a <= b + 1e-12 for a, b in zip(lower, lower[1:])), (name, eps, lower)
            assert all(a >= b - 1e-12 for a, b in zip(upper, upper[1:])), (name, eps, upper)


@pytest.mark.parametrize("clip", [True, False])
def test_zero_budget_gives_the_output_itself(clip):
    for name, x, w, b, psi in _problems(16, 3, ["coif1:1", "dct"]):
        f = float(certify.defended_logit(x[None], w, b, psi, 3, clip)[0])
        bounds = certify.logit_bounds(x[None], w, b, 0.0, psi, 3, clip, "tight")
        slack = 1e-3 * float(w.abs().sum())  # the pad only
        assert float(bounds.lower[0]) <= f <= float(bounds.upper[0])
        assert f - float(bounds.lower[0]) < slack and float(bounds.upper[0]) - f < slack


def test_support_classification_counts():
    x, w, b, psi = certify.toy_problem(16, "haar:1", 3, seed=0)
    small = certify.logit_bounds(x[None], w, b, 1e-3, psi, 3, True, "tight")
    large = certify.logit_bounds(x[None], w, b, 0.5, psi, 3, True, "tight")
    for bounds in (small, large):
        assert int(bounds.n_sure[0]) <= 3 and int(bounds.n_sure[0] + bounds.n_uncertain[0]) >= 3
    assert int(small.n_uncertain[0]) <= int(large.n_uncertain[0])


# --------------------------------------------------------------------------
# MNIST 3 vs 7
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def svm_37(mnist_test):
    x, y = mnist_test
    keep = (y == 3) | (y == 7)
    x, y = x[keep][:700], (y[keep][:700] == 7).long()
    fe = SparsifyingFrontEnd(0.02, "coif1")
    svm = train_linear_svm(sparsify_dataset(x[:500], fe), y[:500])
    return defended(fe, svm).eval(), x[500:], y[500:]


def test_no_attack_fools_a_certified_mnist_image(svm_37):
    model, x, y = svm_37
    fe, clf = model[0], model[1]
    eps = 0.02
    cert = certify.certify(model, x, y, eps, "tight")
    assert cert.certified.sum() >= 0.5 * len(x), "the certificate should not be vacuous at eps = 0.02"
    adversarial = [
        attacks.semi_white_box(clf.w, x, y, eps),
        attacks.white_box(clf.w, x, y, eps, fe),
        attacks.iterated_white_box(clf.w, x, y, eps, fe, step=0.005, steps=8),
    ]
    for gradient in ("bpda", "projection"):
        fe.gradient = gradient
        adversarial.append(attacks.pgd(model, x, y, eps, step=0.005, steps=10, restarts=1, seed=0))
    fe.gradient = "bpda"
    g = torch.Generator().manual_seed(0)
    for _ in range(3):  # random corners of the threat set, in the box
        adversarial.append((x + eps * torch.sign(torch.rand(x.shape, generator=g) - 0.5)).clamp(0, 1))
    certified = torch.from_numpy(cert.certified)
    for x_adv in adversarial:
        fooled = predict(model, x_adv) != y
        assert not bool((fooled & certified).any()), "a certified image was fooled"


def test_certified_margin_bounds_the_real_margin(svm_37):
    model, x, y = svm_37
    eps = 0.01
    cert = certify.certify(model, x, y, eps, "interval")
    sign = torch.where(y.bool(), 1.0, -1.0)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        x_adv = (x + eps * (2 * torch.rand(x.shape, generator=g) - 1)).clamp(0, 1)
        with torch.no_grad():
            margin = (sign * model(x_adv)).double().numpy()
        assert (margin >= cert.margin - 1e-6).all()


def test_certificates_from_the_three_methods(svm_37):
    model, x, y = svm_37
    acc = {m: certify.certify(model, x[:100], y[:100], 0.01, m).certified.mean() for m in certify.METHODS}
    assert acc["prop1"] <= acc["interval"] + 1e-12 and acc["interval"] <= acc["tight"] + 0.02


def test_arguments_are_checked(svm_37):
    model, x, y = svm_37
    with pytest.raises(ArgumentError, match="method"):
        certify.certify(model, x[:2], y[:2], 0.01, "exact")
    with pytest.raises(ArgumentError, match="model"):
        certify.certify(model[1], x[:2], y[:2], 0.01)
    with pytest.raises(ArgumentError, match="eps"):
        certify.certify(model, x[:2], y[:2], 1.5)
    x1, w, b, psi = certify.toy_problem(16, "haar:1", 3)
    with pytest.raises(ArgumentError, match="x"):
        certify.logit_bounds(x1, w, b, 0.1, psi, 3)
    with pytest.raises(ArgumentError, match="K"):
        certify.logit_bounds(x1[None], w, b, 0.1, psi, 17)


# --------------------------------------------------------------------------
# the exact answer by MILP, on small problems and on MNIST
# --------------------------------------------------------------------------
@pytest.mark.parametrize("clip", [True, False])
def test_exact_margin_brackets_the_exact_worst_case_of_small_problems(clip):
    broken = 0
    for name, x, w, b, psi in _problems(8, 3, ["haar:1", "random"], seeds=(0, 1, 2)):
        for eps in (0.05, 0.2):
            fmin, fmax = certify.exact_extremes(x, w, b, eps, psi, 3, clip=clip, box=True)
            for y, worst in ((1, fmin), (0, -fmax)):
                out = certify.exact_margin(x, y, w, b, eps, psi, 3, clip=clip, time_limit=20, pad=0.0)
                # the solver's bound lies below the worst margin (ties let the program pick either support, so
                # the worst may be a limit), the real margin of its point above it
                assert out["lower"] <= worst + 1e-7 and out["upper"] >= worst - 1e-7, name
                if worst > 1e-3:
                    assert out["status"] == "robust", (name, eps, y, worst)
                elif worst < -1e-3:
                    assert out["status"] != "robust", (name, eps, y, worst)
                broken += out["status"] == "broken"
                if out["status"] == "broken":
                    margin = (1 if y else -1) * float(certify.defended_logit(out["x_adv"][None], w, b, psi, 3, clip)[0])
                    assert margin < 0 and float((out["x_adv"] - x).abs().max()) <= eps + 1e-9
    assert broken >= 4  # the program's adversarial points are real ones


def test_exact_robustness_on_mnist_sits_between_certificate_and_attacks(svm_37):
    model, x, y = svm_37
    x, y, eps = x[:12], y[:12], 0.1
    cert = certify.certify(model, x, y, eps, "tight")
    fe, clf = model[0], model[1]
    x_adv = attacks.iterated_white_box(clf.w, x, y, eps, fe, step=0.01, steps=20)
    survived = (predict(model, x_adv) == y).numpy()
    out = certify.exact_robustness(model, x, y, eps, time_limit=10, only=survived)
    status = np.array(out["status"])
    assert (status[~survived] == "skipped").all() and not (status[survived] == "skipped").any()
    assert set(status) <= {"robust", "broken", "undecided", "skipped"}
    # certified images are exactly robust or undecided, never broken; and their certified margin lies
    # below the margin of every point the solver found
    assert not (cert.certified & (status == "broken")).any()
    upper = np.array([np.inf if u is None else u for u in out["upper"]])
    assert (cert.margin[survived] <= upper[survived] + 1e-9).all()
    assert (status == "robust").sum() >= cert.certified.sum()  # exact is at least as strong as the bound
    with pytest.raises(ArgumentError, match="only"):
        certify.exact_robustness(model, x, y, eps, only=[True])
