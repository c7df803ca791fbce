"""Answer the probes (issue 20): what an item asks (its seed and the count of each kind), from
which ``keys.questions`` makes its questions out of the answer key's real run exactly as the
probe method makes a model's (``emulation/probes.generate``: the same trace, seed and counts give
the same questions).

A question is known by what it asks (its kind, line, k-th time, variable, length), not by its
wording or its position, so a model's probe run is compared on the questions it shares with the
item (the same seed and counts share all of them)."""

from __future__ import annotations

from typing import Any

from playground.classroom.models import Item
from playground.emulation import probes

SEED_MAX = 2**31 - 1
_WHERE = ("kind", "line", "k", "variable", "length")


def config_of(item: Item) -> tuple[probes.Config, int]:
    """The item's question counts and seed (probes.DEFAULT and 0 where it names none: what a
    probe run asks)."""
    raw = item.probe_config if isinstance(item.probe_config, dict) else {}
    counts = {kind: raw[kind] for kind in probes.KINDS if type(raw.get(kind)) is int}
    seed = raw.get("seed")
    config = probes.Config(**counts) if counts else probes.DEFAULT
    return config, seed if type(seed) is int and 0 <= seed <= SEED_MAX else 0


def identity(mark: dict[str, Any]) -> tuple[Any, ...]:
    """What a question asks, whatever its wording or position."""
    return tuple(mark.get(name) for name in _WHERE)
