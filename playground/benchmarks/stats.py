"""The statistics reported with an evaluation's scores (pure Python; scipy is not a dependency).

Every interval is a two-sided 95% interval by default (z = 1.959964, the normal quantile).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

Z95 = 1.959964


def wilson_interval(passed: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of the proportion ``passed / n``; with no items, (0.0, 1.0): nothing
    is known. Unlike the normal approximation, it stays inside [0, 1] and is not empty at 0 or n."""
    if n < 0 or not 0 <= passed <= max(n, 0) or not z > 0:
        raise ValueError(f"need 0 <= passed <= n and z > 0 (passed={passed}, n={n}, z={z})")
    if n == 0:
        return (0.0, 1.0)
    p = passed / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # At 0 and n the bound is exactly 0 or 1; rounding would leave 1e-17 off it.
    low = 0.0 if passed == 0 else max(0.0, centre - half)
    high = 1.0 if passed == n else min(1.0, centre + half)
    return (low, high)


def mean_ci(values: Sequence[float], z: float = Z95) -> tuple[float, float, float]:
    """Mean of per-item scores in [0, 1] (e.g. pass@k) and ``mean ± z * s / sqrt(n)`` (normal
    approximation, sample standard deviation s), clipped to [0, 1]. Fewer than two values give
    the interval (0.0, 1.0); for 0/1 scores ``wilson_interval`` is the better choice."""
    n = len(values)
    for v in values:
        if not 0.0 <= v <= 1.0:  # also rejects nan
            raise ValueError(f"every value must be in [0, 1], not {v!r}")
    if n == 0:
        return (0.0, 0.0, 1.0)
    mean = math.fsum(values) / n
    if n == 1:
        return (mean, 0.0, 1.0)
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = z * math.sqrt(variance / n)
    return (mean, max(0.0, mean - half), min(1.0, mean + half))


def mcnemar(a: Sequence[bool], b: Sequence[bool]) -> dict[str, Any]:
    """Exact McNemar test of two evaluations scored on the same items, in the same order:
    ``b01`` items only b got right, ``b10`` only a; ``p`` is the exact two-sided binomial
    p-value of the discordant pairs (1.0 when there are none): with d = b01 + b10 and
    k = min(b01, b10), p = min(1, 2 * sum_{i<=k} C(d, i) / 2^d) (McNemar 1947; the exact
    form, e.g. Fagerland, Lydersen and Laake 2013, BMC Med Res Methodol 13:91, eq. 2)."""
    if len(a) != len(b):
        raise ValueError(f"the evaluations have {len(a)} and {len(b)} items; pair the same items")
    b01 = sum(1 for x, y in zip(a, b, strict=True) if not x and y)
    b10 = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    both = sum(1 for x, y in zip(a, b, strict=True) if x and y)
    discordant = b01 + b10
    # Exact: twice the smaller tail of Binomial(discordant, 1/2), in integers until the end.
    tail = sum(math.comb(discordant, i) for i in range(min(b01, b10) + 1))
    p = min(Fraction(1), Fraction(2 * tail, 2**discordant))
    return {
        "n": len(a),
        "b01": b01,
        "b10": b10,
        "both_right": both,
        "both_wrong": len(a) - both - discordant,
        "p": float(p),
    }


def paired_difference(
    both: int, only_a: int, only_b: int, neither: int, z: float = Z95
) -> tuple[float, float, float]:
    """The difference of two paired proportions, b's minus a's (``(only_b - only_a) / n``), and
    its interval by Newcombe's method 10 (Newcombe 1998, Statistics in Medicine 17:2635-2650:
    the Wilson intervals of both proportions, combined with the phi correlation of the pairs,
    whose ad - bc is corrected by n/2 as in Altman et al., Statistics with Confidence, 2000,
    p. 52). With no pairs, (0.0, -1.0, 1.0): nothing is known."""
    counts = (both, only_a, only_b, neither)
    if any(c < 0 for c in counts) or not z > 0:
        raise ValueError(f"need counts >= 0 and z > 0 (counts={counts}, z={z})")
    n = sum(counts)
    if n == 0:
        return (0.0, -1.0, 1.0)
    right_a, right_b = both + only_a, both + only_b
    p1, p2 = right_a / n, right_b / n
    l1, u1 = wilson_interval(right_a, n, z)
    l2, u2 = wilson_interval(right_b, n, z)
    # phi of the 2x2 table, 0 when a margin is empty; a positive ad - bc is lowered by n/2
    # (to 0 at most), so that no discordant pair does not make a zero-width interval.
    margins = right_a * (only_b + neither) * right_b * (only_a + neither)
    cross: float = both * neither - only_a * only_b
    if cross > 0:
        cross = max(cross - n / 2, 0)
    phi = cross / math.sqrt(margins) if margins else 0.0
    # The paper's method 10 for p1 - p2, with the roles of a and b exchanged for p2 - p1.
    below = math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2))
    above = math.sqrt(max(0.0, (u2 - p2) ** 2 - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) ** 2))
    difference = p2 - p1
    return (difference, max(-1.0, difference - below), min(1.0, difference + above))
