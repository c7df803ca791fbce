"""Plots of evaluations as small dataclasses that the templates draw as inline SVG (and as a
table beside each): accuracy by program length and by real steps, where traces first diverge,
accuracy by method and model. Pure Python; geometry in whole SVG units."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from playground.benchmarks.stats import wilson_interval

# (lowest, highest) inclusive; None: no upper end. A value below the first bucket goes in it.
Buckets = tuple[tuple[int, int | None], ...]
LINE_BUCKETS: Buckets = ((1, 5), (6, 10), (11, 20), (21, None))
STEP_BUCKETS: Buckets = ((1, 10), (11, 25), (26, 50), (51, 100), (101, None))
# Step numbers as users read them (from 1): a stored divergence_step i is step i + 1.
DIVERGENCE_BUCKETS: Buckets = ((1, 5), (6, 10), (11, 20), (21, 50), (51, None))

# A colour per series (method) of a grouped chart; blind-safe (Okabe-Ito).
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442")
BAR_COLOUR = PALETTE[0]

WIDTH = 560
PLOT_TOP = 12
PLOT_HEIGHT = 170
LEFT = 46  # room for the y tick labels
RIGHT = 8
BOTTOM = 44  # room for two lines of x labels


@dataclass(frozen=True)
class Bar:
    """One bar: an accuracy (with its Wilson interval) or a count, and where it is drawn."""

    label: str
    n: int
    value: float  # accuracy in [0, 1], or a count
    passed: int | None = None  # accuracy bars: items right
    low: float | None = None
    high: float | None = None
    series: str = ""  # grouped charts: the method
    link: str = ""
    colour: str = BAR_COLOUR
    x: int = 0
    width: int = 0
    y: int = 0
    height: int = 0
    whisker_top: int | None = None
    whisker_bottom: int | None = None

    @property
    def centre(self) -> int:
        return self.x + self.width // 2

    @property
    def percent(self) -> float:
        return 100 * self.value


@dataclass(frozen=True)
class Tick:
    label: str
    y: int


@dataclass(frozen=True)
class Group:
    label: str
    centre: int


@dataclass(frozen=True)
class Chart:
    title: str
    kind: str  # "accuracy" or "count"
    bars: list[Bar]
    ticks: list[Tick]
    groups: list[Group] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (series, colour)
    width: int = WIDTH
    height: int = PLOT_TOP + PLOT_HEIGHT + BOTTOM
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = PLOT_TOP
    baseline: int = PLOT_TOP + PLOT_HEIGHT

    @property
    def label_y(self) -> int:
        return self.baseline + 16

    @property
    def second_label_y(self) -> int:
        return self.baseline + 32


def bucket_label(bucket: tuple[int, int | None]) -> str:
    low, high = bucket
    if high is None:
        return f"{low}+"
    return str(low) if low == high else f"{low}-{high}"


def bucket_bounds(buckets: Buckets) -> list[tuple[int | None, int | None]]:
    """Each bucket as (above, at most) in the order ``_bucket_of`` tries them: the first takes
    everything up to its top (values below it too), the last everything above the one before."""
    tops = [high for _, high in buckets]
    last = len(tops) - 1
    return [(tops[i - 1] if i else None, top if i < last else None) for i, top in enumerate(tops)]


def _bucket_of(value: int, buckets: Buckets) -> int:
    for index, (_, high) in enumerate(buckets):
        if high is None or value <= high:
            return index
    return len(buckets) - 1


def _y(fraction: float) -> int:
    """The SVG y of a fraction of the plot's height above the baseline."""
    return PLOT_TOP + PLOT_HEIGHT - round(PLOT_HEIGHT * min(max(fraction, 0.0), 1.0))


def _accuracy_bar(
    label: str, passed: int, n: int, *, series: str = "", link: str = "", colour: str = BAR_COLOUR
) -> Bar:
    if n == 0:
        return Bar(label, 0, 0.0, 0, series=series, link=link, colour=colour)
    low, high = wilson_interval(passed, n)
    return Bar(label, n, passed / n, passed, low, high, series=series, link=link, colour=colour)


def _place(bars: list[Bar], scale: float, slots: list[tuple[int, int]]) -> list[Bar]:
    """Each bar drawn in its (x, width) slot, its height ``value / scale`` of the plot's."""
    placed = []
    for bar, (x, width) in zip(bars, slots, strict=True):
        top = _y(bar.value / scale) if bar.n else _y(0.0)
        bar = replace(bar, x=x, width=width, y=top, height=PLOT_TOP + PLOT_HEIGHT - top)
        if bar.low is not None and bar.high is not None:
            bar = replace(bar, whisker_top=_y(bar.high), whisker_bottom=_y(bar.low))
        placed.append(bar)
    return placed


def _even_slots(count: int) -> list[tuple[int, int]]:
    step = (WIDTH - LEFT - RIGHT) / max(count, 1)
    width = max(4, round(step * 0.6))
    return [(LEFT + round(step * i + (step - width) / 2), width) for i in range(count)]


def _accuracy_ticks() -> list[Tick]:
    return [Tick(f"{p}%", _y(p / 100)) for p in (0, 25, 50, 75, 100)]


def _count_ticks(top: int) -> list[Tick]:
    return [Tick(str(v), _y(v / top)) for v in range(0, top + 1, top // 5 if top >= 10 else 1)]


def _nice(count: int) -> int:
    """The least of 1, 2, 5, 10, 20, 50, ... not below ``count``."""
    if count <= 1:
        return 1
    power = 10 ** math.floor(math.log10(count))
    for step in (1, 2, 5, 10):
        if step * power >= count:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def accuracy_by(
    pairs: Iterable[tuple[int | None, bool]], buckets: Buckets, *, title: str
) -> Chart | None:
    """Accuracy of items bucketed by a number (lines, steps), each bucket with its n and Wilson
    interval; items without the number are left out. None when no item has it."""
    counts = [[0, 0] for _ in buckets]  # [passed, n]
    for value, passed in pairs:
        if value is None:
            continue
        bucket = counts[_bucket_of(value, buckets)]
        bucket[0] += int(bool(passed))
        bucket[1] += 1
    return accuracy_of_counts([(p, n) for p, n in counts], buckets, title=title)


def accuracy_of_counts(
    counts: Sequence[tuple[int, int]], buckets: Buckets, *, title: str
) -> Chart | None:
    """``accuracy_by`` from each bucket's (passed, n), counted elsewhere (in SQL)."""
    if not any(n for _, n in counts):
        return None
    bars = [
        _accuracy_bar(bucket_label(b), passed, n)
        for b, (passed, n) in zip(buckets, counts, strict=True)
    ]
    return Chart(title=title, kind="accuracy", bars=_place(bars, 1.0, _even_slots(len(bars))),
                 ticks=_accuracy_ticks())  # fmt: skip


def histogram(values: Iterable[int | None], buckets: Buckets, *, title: str) -> Chart | None:
    """How many values fall in each bucket; None when there are none."""
    counts = [0] * len(buckets)
    for value in values:
        if value is not None:
            counts[_bucket_of(value, buckets)] += 1
    return histogram_of_counts(counts, buckets, title=title)


def histogram_of_counts(counts: Sequence[int], buckets: Buckets, *, title: str) -> Chart | None:
    """``histogram`` from each bucket's count, counted elsewhere (in SQL)."""
    total = sum(counts)
    if not total:
        return None
    top = _nice(max(counts))
    bars = [
        Bar(label=bucket_label(b), n=count, value=count)
        for b, count in zip(buckets, counts, strict=True)
    ]
    return Chart(title=title, kind="count", bars=_place(bars, top, _even_slots(len(bars))),
                 ticks=_count_ticks(top))  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """One evaluation on a grouped chart: its group (the model) and series (the method)."""

    group: str
    series: str
    passed: int
    n: int
    link: str = ""


def grouped_accuracy(entries: Sequence[Entry], *, title: str) -> Chart | None:
    """Accuracy with Wilson intervals, bars grouped by model and coloured by method, in name
    order; two evaluations of the same pair get a bar each. None when there are none."""
    if not entries:
        return None
    series = sorted({e.series for e in entries})
    colours = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}
    groups: dict[str, list[Entry]] = {}
    for entry in sorted(entries, key=lambda e: (e.group, e.series)):
        groups.setdefault(entry.group, []).append(entry)
    gap = 1  # a bar's width between groups
    units = sum(len(members) for members in groups.values()) + gap * (len(groups) - 1)
    unit = (WIDTH - LEFT - RIGHT) / max(units, 3)  # one bar never fills the whole chart
    bars: list[Bar] = []
    slots: list[tuple[int, int]] = []
    placed_groups: list[Group] = []
    position = 0.0
    for name, members in groups.items():
        start = position
        for entry in members:
            bars.append(
                _accuracy_bar(f"{entry.series} · {name}", entry.passed, entry.n,
                              series=entry.series, link=entry.link, colour=colours[entry.series])
            )  # fmt: skip
            slots.append((LEFT + round(position * unit + unit * 0.1), max(4, round(unit * 0.8))))
            position += 1
        placed_groups.append(Group(name, LEFT + round((start + position) / 2 * unit)))
        position += gap
    return Chart(
        title=title,
        kind="accuracy",
        bars=_place(bars, 1.0, slots),
        ticks=_accuracy_ticks(),
        groups=placed_groups,
        legend=[(s, colours[s]) for s in series],
    )


# Steps of a stepping run (emulation/stepping.py), from 1: the first 39 are asked one by one, the
# call's last step (its return) after them whatever its index.
STEP_INDEX_BUCKETS: Buckets = ((1, 5), (6, 10), (11, 20), (21, 39), (40, None))


def bucket_sums(rows: Iterable[Sequence[int]], buckets: Buckets) -> list[tuple[int, int]]:
    """``[value, right, n]`` rows summed per bucket of their value: each bucket's (right, n)."""
    sums = [[0, 0] for _ in buckets]
    for value, right, n in rows:
        bucket = sums[_bucket_of(value, buckets)]
        bucket[0] += right
        bucket[1] += n
    return [(right, n) for right, n in sums]


def stepping_charts(figures: dict[str, object] | None) -> dict[str, Chart | None]:
    """An evaluation's stepping figures (benchmarks/summary.py) as two accuracy charts: each
    graded step right, by its index in the call and by the length of its run's trace."""
    if not figures:
        return {"step_index": None, "step_length": None}
    by_index = figures.get("by_index")
    by_length = figures.get("by_length")
    return {
        "step_index": accuracy_of_counts(
            bucket_sums(by_index if isinstance(by_index, list) else [], STEP_INDEX_BUCKETS),
            STEP_INDEX_BUCKETS, title="Steps predicted right, by step of the call",
        ),
        "step_length": accuracy_of_counts(
            bucket_sums(by_length if isinstance(by_length, list) else [], STEP_BUCKETS),
            STEP_BUCKETS, title="Steps predicted right, by the run's number of steps",
        ),
    }  # fmt: skip
