"""The statistics of an evaluation: Wilson intervals, mean intervals, the exact McNemar test,
the interval of a paired difference. (Neither scipy nor statsmodels is installed: the checks are
against hand computations and published values.)"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from playground.benchmarks.stats import mcnemar, mean_ci, paired_difference, wilson_interval

Z = 1.959964


def _wilson_by_formula(k: int, n: int) -> tuple[float, float]:
    """(p + z²/2n ∓ z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), written out once more."""
    p = k / n
    low = (p + Z**2 / (2 * n) - Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))) / (1 + Z**2 / n)
    high = (p + Z**2 / (2 * n) + Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))) / (
        1 + Z**2 / n
    )
    return low, high


@pytest.mark.parametrize(
    ("passed", "n", "expected"),
    [
        # Published values (e.g. Newcombe 1998, table I; any Wilson calculator), 4 decimals.
        (0, 10, (0.0, 0.2775)),
        (5, 10, (0.2366, 0.7634)),
        (10, 10, (0.7225, 1.0)),
        (81, 263, (0.2553, 0.3662)),
        (1, 29, (0.0061, 0.1718)),
    ],
)
def test_wilson_interval_matches_known_values(
    passed: int, n: int, expected: tuple[float, float]
) -> None:
    low, high = wilson_interval(passed, n)
    assert low == pytest.approx(expected[0], abs=5e-5)
    assert high == pytest.approx(expected[1], abs=5e-5)


def test_wilson_interval_matches_the_formula_and_stays_in_range() -> None:
    for n in range(1, 40):
        for k in range(n + 1):
            low, high = wilson_interval(k, n)
            assert (low, high) == pytest.approx(_wilson_by_formula(k, n), abs=1e-12)
            assert 0.0 <= low <= k / n <= high <= 1.0
    assert wilson_interval(0, 7)[0] == 0.0
    assert wilson_interval(7, 7)[1] == 1.0


def test_wilson_interval_with_no_items_knows_nothing() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(("passed", "n", "z"), [(-1, 10, Z), (11, 10, Z), (0, -1, Z), (1, 2, 0.0)])
def test_wilson_interval_rejects_bad_inputs(passed: int, n: int, z: float) -> None:
    with pytest.raises(ValueError, match="passed <= n"):
        wilson_interval(passed, n, z)


def test_mean_ci_is_the_normal_interval_with_the_sample_standard_error() -> None:
    values = [0.0, 0.25, 0.5, 0.75, 1.0, 0.5]
    mean, low, high = mean_ci(values)
    sd = math.sqrt(sum((v - 0.5) ** 2 for v in values) / 5)  # 0.3535...
    assert mean == pytest.approx(0.5)
    assert low == pytest.approx(0.5 - Z * sd / math.sqrt(6))
    assert high == pytest.approx(0.5 + Z * sd / math.sqrt(6))


def test_mean_ci_is_clipped_to_the_unit_interval() -> None:
    mean, low, high = mean_ci([1.0, 1.0, 1.0, 0.0])
    assert mean == 0.75
    assert low == pytest.approx(0.75 - Z * 0.5 / 2)
    assert high == 1.0
    assert mean_ci([0.0, 0.0, 0.1])[1] == 0.0
    assert mean_ci([0.4, 0.4, 0.4]) == pytest.approx((0.4, 0.4, 0.4))


def test_mean_ci_with_too_few_values_knows_nothing_of_the_spread() -> None:
    assert mean_ci([]) == (0.0, 0.0, 1.0)
    assert mean_ci([0.3]) == (0.3, 0.0, 1.0)


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, math.inf])
def test_mean_ci_rejects_values_outside_the_unit_interval(bad: float) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mean_ci([0.5, bad])


def _mcnemar_by_hand(b01: int, b10: int) -> float:
    """Two-sided exact p: the probability under Binomial(b01 + b10, 1/2) of a split at least
    as uneven as the one seen, summed over both tails."""
    n = b01 + b10
    seen = abs(b01 - b10)
    return float(
        min(
            Fraction(1),
            sum(
                (Fraction(math.comb(n, i), 2**n) for i in range(n + 1) if abs(2 * i - n) >= seen),
                Fraction(0),
            ),
        )
    )


def test_mcnemar_counts_the_discordant_items_and_gives_the_exact_p() -> None:
    a = [True] * 5 + [True, False] * 3 + [False] * 2
    b = [False] * 5 + [True, False] * 3 + [False] * 2
    result = mcnemar(a, b)
    assert result == {
        "n": 13,
        "b01": 0,
        "b10": 5,
        "both_right": 3,
        "both_wrong": 5,
        "p": 0.0625,  # 2 / 2**5
    }
    assert mcnemar(b, a)["b01"] == 5
    assert mcnemar(b, a)["p"] == 0.0625


@pytest.mark.parametrize(
    ("b01", "b10", "p"),
    [(0, 5, 0.0625), (1, 5, 0.21875), (3, 3, 1.0), (0, 1, 1.0), (0, 0, 1.0), (2, 10, None)],
)
def test_mcnemar_p_matches_a_hand_computation(b01: int, b10: int, p: float | None) -> None:
    a = [False] * b01 + [True] * b10 + [True, False]
    b = [True] * b01 + [False] * b10 + [True, False]
    result = mcnemar(a, b)
    assert (result["b01"], result["b10"]) == (b01, b10)
    assert result["p"] == pytest.approx(_mcnemar_by_hand(b01, b10), rel=1e-15)
    if p is not None:
        assert result["p"] == p


def test_mcnemar_on_many_items_stays_exact() -> None:
    a = [True] * 600 + [False] * 400
    b = [False] * 600 + [True] * 400
    assert mcnemar(a, b)["p"] == pytest.approx(_mcnemar_by_hand(400, 600), rel=1e-9)
    assert 0.0 < mcnemar(a, b)["p"] < 1e-9


def test_mcnemar_needs_the_same_items() -> None:
    with pytest.raises(ValueError, match="same items"):
        mcnemar([True, False], [True])


def test_mcnemar_on_newcombes_first_example() -> None:
    # Newcombe (1998), paired example (a): 36 right both ways, 12 right only first, 2 only
    # second, none wrong both ways. By hand: 2 * (C(14,0) + C(14,1) + C(14,2)) / 2**14.
    a = [True] * 36 + [True] * 12 + [False] * 2
    b = [True] * 36 + [False] * 12 + [True] * 2
    result = mcnemar(a, b)
    assert (result["b10"], result["b01"], result["both_wrong"]) == (12, 2, 0)
    assert result["p"] == 2 * (1 + 14 + 91) / 2**14  # 0.01294


def test_paired_difference_matches_newcombes_method_10() -> None:
    # Newcombe (1998), Statistics in Medicine 17:2635-2650, table II, example (a), method 10:
    # p1 - p2 = 0.2 with 95% interval 0.0569 to 0.3404. Ours is b minus a: the same, negated.
    difference, low, high = paired_difference(36, 12, 2, 0)
    assert difference == pytest.approx(-0.2)
    assert low == pytest.approx(-0.3404, abs=5e-5)
    assert high == pytest.approx(-0.0569, abs=5e-5)
    # Exchanging the two sides negates the difference and mirrors the interval.
    assert paired_difference(36, 2, 12, 0) == pytest.approx((0.2, 0.0569, 0.3404), abs=5e-5)


def test_paired_difference_always_holds_its_estimate_within_bounds() -> None:
    for both in range(4):
        for only_a in range(4):
            for only_b in range(4):
                for neither in range(4):
                    if both + only_a + only_b + neither == 0:
                        continue
                    d, low, high = paired_difference(both, only_a, only_b, neither)
                    n = both + only_a + only_b + neither
                    assert d == pytest.approx((only_b - only_a) / n)
                    assert -1.0 <= low <= d + 1e-12
                    assert d - 1e-12 <= high <= 1.0
    # No discordant pair: no difference, yet not a certainty (the interval is not empty: the
    # corrected phi), and an interval that narrows as n grows.
    wide = paired_difference(5, 0, 0, 5)
    narrow = paired_difference(500, 0, 0, 500)
    assert wide[0] == narrow[0] == 0.0
    assert wide[1] < narrow[1] < 0.0 < narrow[2] < wide[2]


def test_paired_difference_with_no_pairs_knows_nothing() -> None:
    assert paired_difference(0, 0, 0, 0) == (0.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="counts >= 0"):
        paired_difference(1, -1, 0, 0)
