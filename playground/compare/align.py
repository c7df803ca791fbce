"""Aligning a real and an emulated step list by where each step is: its ``(line, event)``.

The common prefix and suffix are matched first; what is left in between is diffed with Myers'
O((N+M)·D) algorithm (a shortest edit script), so a model that skips or adds a few steps anywhere
in a 10,000-step trace costs milliseconds. Between two runs of matching steps, the deleted real
steps and the inserted emulated steps are paired one to one, in order (a "replace"), and the
surplus on the longer side is left unpaired. When the two middles differ in more than
``MAX_EDITS`` places the traces have little in common: the middles are then paired index by
index, and the surplus is left unpaired.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

Pair = tuple[int | None, int | None]

MAX_EDITS = 1000


def step_key(step: Any) -> tuple[int, str]:
    """Where a step is: ``(line, event)``, the event defaulting to ``"line"`` and a line that is
    not an int counting as -1."""
    if not isinstance(step, dict):
        return (-1, "line")
    line, event = step.get("line"), step.get("event")
    return (line if type(line) is int else -1, "line" if event is None else str(event))


def _intern(keys: list[Hashable], table: dict[Hashable, int]) -> list[int]:
    return [table.setdefault(key, len(table)) for key in keys]


def _myers(a: Sequence[int], b: Sequence[int], max_edits: int) -> list[tuple[str, int, int]] | None:
    """A shortest edit script from ``a`` to ``b`` as ("=", i, j), ("-", i, -1), ("+", -1, j)
    operations in order, or None when it needs more than ``max_edits`` edits."""
    n, m = len(a), len(b)
    limit = min(n + m, max_edits)
    offset = limit + 1
    v = [0] * (2 * limit + 3)
    history: list[list[int]] = []
    found = -1
    for d in range(limit + 1):
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[offset + k - 1] < v[offset + k + 1]):
                x = v[offset + k + 1]
            else:
                x = v[offset + k - 1] + 1
            y = x - k
            while x < n and y < m and a[x] == b[y]:
                x += 1
                y += 1
            v[offset + k] = x
            if x >= n and y >= m:
                found = d
                break
        history.append(v[offset - d - 1 : offset + d + 2])
        if found >= 0:
            break
    if found < 0:
        return None

    ops: list[tuple[str, int, int]] = []
    x, y = n, m
    for d in range(found, 0, -1):
        prev = history[d - 1]  # v[offset - d .. offset + d] after round d - 1, index k + d
        k = x - y
        if k == -d or (k != d and prev[k - 1 + d] < prev[k + 1 + d]):
            prev_k = k + 1
            prev_x = prev[prev_k + d]
            start_x, start_y = prev_x, prev_x - prev_k + 1
            edit = ("+", -1, start_y - 1)
        else:
            prev_k = k - 1
            prev_x = prev[prev_k + d]
            start_x, start_y = prev_x + 1, prev_x - prev_k
            edit = ("-", start_x - 1, -1)
        while x > start_x:
            x -= 1
            y -= 1
            ops.append(("=", x, y))
        ops.append(edit)
        x, y = prev_x, prev_x - prev_k
    while x > 0:
        x -= 1
        y -= 1
        ops.append(("=", x, y))
    ops.reverse()
    return ops


def _pair_runs(ops: list[tuple[str, int, int]], base_a: int, base_b: int) -> list[Pair]:
    """Turn an edit script into pairs: runs of deletions and insertions become replaces."""
    pairs: list[Pair] = []
    dels: list[int] = []
    ins: list[int] = []

    def flush() -> None:
        common = min(len(dels), len(ins))
        pairs.extend(zip(dels[:common], ins[:common], strict=True))
        pairs.extend((i, None) for i in dels[common:])
        pairs.extend((None, j) for j in ins[common:])
        dels.clear()
        ins.clear()

    for op, i, j in ops:
        if op == "=":
            flush()
            pairs.append((base_a + i, base_b + j))
        elif op == "-":
            dels.append(base_a + i)
        else:
            ins.append(base_b + j)
    flush()
    return pairs


def align_keys(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[Pair]:
    """Align two key sequences: matching keys paired, replaced runs paired one to one."""
    table: dict[Hashable, int] = {}
    ka, kb = _intern(list(a), table), _intern(list(b), table)
    n, m = len(ka), len(kb)
    head = 0
    while head < n and head < m and ka[head] == kb[head]:
        head += 1
    tail = 0
    while tail < n - head and tail < m - head and ka[n - 1 - tail] == kb[m - 1 - tail]:
        tail += 1
    pairs: list[Pair] = [(i, i) for i in range(head)]
    mid_a, mid_b = ka[head : n - tail], kb[head : m - tail]
    ops = _myers(mid_a, mid_b, MAX_EDITS)
    if ops is None:
        ops = [("-", i, -1) for i in range(len(mid_a))] + [("+", -1, j) for j in range(len(mid_b))]
    pairs.extend(_pair_runs(ops, head, head))
    pairs.extend((n - tail + t, m - tail + t) for t in range(tail))
    return pairs


def align(real_steps: Sequence[Any], emulated_steps: Sequence[Any]) -> list[Pair]:
    """Pair positions of the two step lists by ``(line, event)``; an unpaired step is
    ``(i, None)`` (the model skipped it) or ``(None, j)`` (the model added it)."""
    return align_keys([step_key(s) for s in real_steps], [step_key(s) for s in emulated_steps])
