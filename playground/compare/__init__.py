"""Comparing an emulated trace with the real one (pure Python, no Django).

``compare_traces`` walks the two step lists aligned by ``align`` and reports the first
divergence, agreement scores and a status for every step; ``same_repr`` compares two value reprs
by meaning; ``compare_paths`` says whether the emulated run ran the real run's lines in order
(the path verdict beside the result's). See ``playground.compare.trace`` and ``.path``.
"""

from playground.compare.align import align
from playground.compare.path import compare_paths, compare_prints
from playground.compare.reprs import same_repr
from playground.compare.trace import Comparison, compare_traces

__all__ = ["Comparison", "align", "compare_paths", "compare_prints", "compare_traces", "same_repr"]
