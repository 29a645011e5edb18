"""sparsenb.lab.stats and the Wilson interval: paired comparisons of two models, checked against independent
implementations (SciPy's binomial test and Wilson interval, and Newcombe's method 10 written out as in the
biostatUZH R package's confIntPairedProportion)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from sparsenb.checks import ArgumentError
from sparsenb.evaluation import wilson_interval
from sparsenb.lab.stats import (
    discordance_to_resolve,
    images_to_resolve,
    mcnemar,
    paired_comparison,
    paired_difference,
)


def _outcomes(r: int, s: int, t: int, u: int):
    """Per-image outcomes of two models from a 2x2 table: both right, only a, only b, neither."""
    a = np.r_[np.ones(r + s, int), np.zeros(t + u, int)]
    b = np.r_[np.ones(r, int), np.zeros(s, int), np.ones(t, int), np.zeros(u, int)]
    return a, b


def _newcombe_reference(table, z=1.96):
    """Newcombe (1998) method 10, transcribed from biostatUZH::confIntPairedProportion (R), in proportions."""
    (r, s), (t, u) = table
    n = r + s + t + u

    def wilson(x):  # the Wilson score interval, written from its closed form
        p = x / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return centre - half, centre + half

    p1, p2 = (r + s) / n, (r + t) / n
    (l1, u1), (l2, u2) = wilson(r + s), wilson(r + t)
    phi = 0.0
    if max(r + s, t + u, r + t, s + u) > 0:
        A = (r + s) * (t + u) * (r + t) * (s + u)
        B = r * u - s * t
        C = B - n / 2 if B > n / 2 else (B if B < 0 else 0)
        phi = C / math.sqrt(A) if A > 0 else 0.0
    D = p1 - p2
    lo = D - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    hi = D + math.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    return D, lo, hi


@pytest.mark.parametrize(
    "k, n", [(0, 10), (1, 10), (5, 10), (10, 10), (37, 200), (663, 1000), (9999, 10000)]
)
def test_wilson_interval_is_scipys(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-4)


@pytest.mark.parametrize(
    "table",
    [
        ((14, 5), (0, 22)),  # Altman et al. (2000), Statistics with confidence, Table 6.2
        ((40, 1), (2, 57)),  # B > n/2: the correction subtracts n/2
        ((10, 12), (15, 3)),  # B < 0: kept as it is
        ((5, 5), (5, 5)),  # 0 <= B <= n/2: phi is 0
        ((0, 7), (3, 0)),  # no concordant pair
        ((30, 0), (0, 20)),  # no discordant pair
    ],
)
def test_paired_difference_is_newcombes_method_10(table):
    d, lo, hi = paired_difference(*_outcomes(*table[0], *table[1]))
    D, L, H = _newcombe_reference(table)
    assert (d, lo, hi) == pytest.approx((100 * D, 100 * max(L, -1), 100 * min(H, 1)), abs=1e-3)


def test_paired_difference_on_random_tables():
    rng = np.random.default_rng(3)
    for _ in range(200):
        table = rng.integers(0, 60, size=(2, 2))
        if table.sum() == 0:
            continue
        d, lo, hi = paired_difference(*_outcomes(*table[0], *table[1]))
        D, L, H = _newcombe_reference(table.tolist())
        assert (d, lo, hi) == pytest.approx((100 * D, 100 * max(L, -1), 100 * min(H, 1)), abs=1e-9)


def test_the_continuity_correction_widens_the_interval_of_correlated_outcomes():
    """With B > n/2 the corrected phi is smaller, so the interval is wider than with the raw phi."""
    a, b = _outcomes(40, 1, 2, 57)
    d, lo, hi = paired_difference(a, b)
    r, s, t, u = 40, 1, 2, 57
    n = 100
    raw_phi = (r * u - s * t) / math.sqrt((r + s) * (t + u) * (r + t) * (s + u))
    p1, p2 = (r + s) / n, (r + t) / n
    (l1, u1), (l2, u2) = wilson_interval(r + s, n), wilson_interval(r + t, n)
    raw_lo = (
        p1 - p2 - math.sqrt((p1 - l1) ** 2 - 2 * raw_phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    )
    assert lo < 100 * raw_lo


def test_paired_difference_is_antisymmetric_and_its_interval_holds_the_difference():
    rng = np.random.default_rng(0)
    a = rng.random(1000) < 0.67
    b = a.copy()
    flip = rng.random(1000) < 0.1
    b[flip] = ~b[flip]
    d, lo, hi = paired_difference(a, b)
    assert d == pytest.approx(100 * (a.mean() - b.mean()))
    assert lo < d < hi
    assert paired_difference(b, a) == pytest.approx((-d, -hi, -lo))
    # close to the Wald interval of the paired difference at this size
    n10, n01 = int((a & ~b).sum()), int((~a & b).sum())
    se = np.sqrt((n10 + n01) / 1000 - ((n10 - n01) / 1000) ** 2) / np.sqrt(1000)
    assert (hi - lo) / 2 == pytest.approx(100 * 1.96 * se, rel=0.1)


def test_paired_difference_of_identical_outcomes_is_zero_and_tighter_than_unpaired():
    a = np.r_[np.ones(300, int), np.zeros(200, int)]
    d, lo, hi = paired_difference(a, a)
    assert (
        d == 0 and lo <= 0 <= hi and hi - lo < 2.0
    )  # unpaired, two Wilson intervals of 60% on 500 would span about 12 points


def test_paired_difference_rejects_bad_outcomes():
    with pytest.raises(ArgumentError, match="b"):
        paired_difference(np.ones(5, int), np.ones(4, int))
    with pytest.raises(ArgumentError, match="a"):
        paired_difference(np.array([0, 2]), np.array([0, 1]))
    with pytest.raises(ArgumentError, match="a"):
        paired_difference("ab", np.array([0, 1]))


def test_images_to_resolve_grows_with_discordance_and_shrinks_with_the_difference():
    assert images_to_resolve(0.39, 0.1) == int(np.ceil(1.96**2 * 0.1 / 0.0039**2))
    assert images_to_resolve(0.39, 0.2) > images_to_resolve(0.39, 0.1) > images_to_resolve(1.0, 0.1)
    assert images_to_resolve(-0.39, 0.1) == images_to_resolve(0.39, 0.1)  # the sign does not matter
    assert images_to_resolve(0.39, 0.1, power=0.8) > images_to_resolve(0.39, 0.1)
    with pytest.raises(ArgumentError, match="difference"):
        images_to_resolve(0, 0.1)
    with pytest.raises(ArgumentError, match="power"):
        images_to_resolve(0.4, 0.1, power=1.0)
    with pytest.raises(ArgumentError, match="discordant"):
        images_to_resolve(0.4, 1.5)


@pytest.mark.parametrize(
    "table", [((14, 5), (0, 22)), ((10, 12), (15, 3)), ((5, 0), (0, 5)), ((1, 30), (18, 2))]
)
def test_mcnemar_is_the_exact_binomial_test_on_the_discordant_images(table):
    (r, s), (t, u) = table
    got_s, got_t, p = mcnemar(*_outcomes(r, s, t, u))
    assert (got_s, got_t) == (s, t)
    expected = 1.0 if s + t == 0 else binomtest(s, s + t, 0.5).pvalue
    assert p == pytest.approx(expected, rel=1e-9)


def test_paired_comparison_reports_mcnemar_beside_the_interval():
    a, b = _outcomes(14, 5, 0, 22)
    frame = paired_comparison({"x": (a, b)}, 5.0)
    assert frame.loc["x", "McNemar p"] == pytest.approx(binomtest(5, 5, 0.5).pvalue)
    assert frame.loc["x", "difference"] == pytest.approx(100 * 5 / 41)


def test_paired_comparison_tabulates_each_pair_and_discordance_inverts_images_to_resolve():
    a = np.r_[np.ones(60, int), np.zeros(40, int)]
    b = np.r_[np.ones(50, int), np.zeros(50, int)]
    frame = paired_comparison({"x": (a, b), "same": (a, a)}, 0.39)
    assert list(frame.index) == ["x", "same"] and frame.loc["x", "images"] == 100
    assert frame.loc["x", "difference"] == pytest.approx(10.0) and frame.loc[
        "x", "discordant %"
    ] == pytest.approx(10.0)
    assert (frame.loc["x", "lo"], frame.loc["x", "hi"]) == pytest.approx(
        paired_difference(a, b)[1:]
    )
    assert frame.loc["x", "images to resolve"] == images_to_resolve(0.39, 0.1)
    r = discordance_to_resolve(0.39, 10000)
    assert images_to_resolve(0.39, r) == pytest.approx(10000, rel=1e-3)
    with pytest.raises(ArgumentError, match="pairs"):
        paired_comparison({}, 0.39)
    with pytest.raises(ArgumentError, match="pairs"):
        paired_comparison({"x": a}, 0.39)


# ---------------------------------------------------------------------------
# verdicts: like for like, one-sided where the attack was reduced, none where the training was
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, reduced, expected",
    [
        (50.0, None, "agrees"),
        (70.0, None, "ours lower"),
        (30.0, None, "ours higher"),
        (50.0, "attack", "reduced setting"),
        (30.0, "attack", "reduced setting"),  # a weaker attack leaves more standing: no news
        (70.0, "attack", "ours lower"),  # even the weaker attack leaves less than the paper's
        (70.0, "training", "reduced setting"),
        (30.0, "training", "reduced setting"),
    ],
)
def test_verdict_is_one_sided_for_a_weaker_attack_and_silent_for_less_training(value, reduced, expected):
    from sparsenb.lab.paper import verdict

    assert verdict(value, 50.0, 45.0, 55.0, reduced) == expected


def test_verdict_rejects_an_unknown_reduction():
    from sparsenb.lab.paper import verdict

    with pytest.raises(ValueError, match="reduced"):
        verdict(50.0, 50.0, 45.0, 55.0, "data")


def test_widened_interval_adds_two_draws_of_the_spread_to_each_side():
    from sparsenb.lab.paper import widened

    assert widened(60.0, 55.0, 64.0, 0.0) == (55.0, 64.0)
    lo, hi = widened(60.0, 55.0, 64.0, 2.0)
    extra = 2 * (1.96 * 2.0) ** 2
    assert lo == pytest.approx(60.0 - np.sqrt(25.0 + extra)) and hi == pytest.approx(60.0 + np.sqrt(16.0 + extra))
    assert lo < 55.0 and hi > 64.0
    assert widened(99.0, 97.0, 99.8, 5.0)[1] == 100.0 and widened(1.0, 0.2, 3.0, 5.0)[0] == 0.0
