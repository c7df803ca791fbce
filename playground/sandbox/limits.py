"""Resource limits of one sandboxed run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """Defaults are the product's: 2 s CPU, 5 s wall, 256 MB, 10,000 steps, 64 KB of output."""

    cpu_s: int = 2
    wall_s: float = 5.0
    memory_mb: int = 256
    max_steps: int = 10_000
    max_stdout: int = 64_000
    max_source: int = 100_000
    max_stdin: int = 64_000
    file_mb: int = 8
    tmp_mb: int = 16
    nproc: int = 256
    recursion: int = 1000
    # Past max_steps, stop recording but let the program finish (e.g. a puzzle's sat(answer)
    # check, where the verdict matters more than a trace of every step) instead of stopping it.
    keep_running: bool = False
    # The parent keeps steps until the stored trace would pass this size (characters of its JSON);
    # the rest are counted, not kept (stats.capped). Never sent to the runner.
    max_trace_bytes: int = 5_000_000
    # Chain of Code: the most model calls and seconds of model time one run may use (parent side
    # only; lower for anonymous runs, playground/runs/limits.py).
    lm_calls: int = 64
    lm_seconds: float = 600.0

    def lowered(self, **caps: Any) -> Limits:
        """These limits with each given value applied only where it is lower (never raised)."""
        values = {k: min(v, getattr(self, k)) for k, v in caps.items() if v is not None}
        return dataclasses.replace(self, **values)

    def for_runner(self) -> dict[str, int]:
        return {
            "cpu_s": self.cpu_s,
            "memory_mb": self.memory_mb,
            "max_steps": self.max_steps,
            "max_stdout": self.max_stdout,
            "file_mb": self.file_mb,
            "nproc": self.nproc,
            "recursion": self.recursion,
            "wall_ms": int(self.wall_s * 1000),
            "keep_running": int(self.keep_running),
        }
