"""The warm pool: sandboxes started ahead of time, each for exactly one program.

Its own file because it is the one piece of the sandbox with state shared across runs (a
long-lived starter thread and its queue); process.py takes from it, nothing else does.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque

from playground.sandbox.jail import SandboxUnavailable, mode
from playground.sandbox.limits import Limits
from playground.sandbox.spawn import Started, discard, start

log = logging.getLogger(__name__)


class _WarmPool:
    """A few sandboxes started in advance so a run does not wait for bubblewrap and the
    interpreter to start. Each process runs exactly one program and is never reused: a program
    cannot leave anything behind for the next one (or the next user).

    One long-lived thread starts them: bubblewrap's --die-with-parent ties each sandbox to the
    thread that started it (PR_SET_PDEATHSIG), so a short-lived starter thread would take its
    sandboxes down with it; this one ends only with the process, and so do they."""

    def __init__(self) -> None:
        self.idle: deque[Started] = deque()
        self.wanted = threading.Condition()
        self.thread: threading.Thread | None = None
        # A drain empties the pool until the next refill asks again; a sandbox the starter was
        # starting meanwhile is discarded, not filed (it would outlive the drain).
        self.drains = 0
        self.paused = False

    def size(self) -> int:
        raw = os.environ.get("PLAYGROUND_SANDBOX_POOL", "1")
        return max(0, min(int(raw) if raw.isdigit() else 1, 8))

    def take(self, limits: Limits) -> Started | None:
        with self.wanted:
            while self.idle:
                started = self.idle.popleft()
                usable = started.tmp_mb == limits.tmp_mb and started.sandboxed == (
                    mode() == "bwrap"
                )
                if usable and started.proc.poll() is None:
                    return started
                discard(started)
        return None

    def refill(self) -> None:
        """Ask the starter thread to top the pool up (never delays the caller)."""
        if self.size() == 0:
            return
        with self.wanted:
            self.paused = False
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._starter, name="sandbox-pool", daemon=True
                )
                self.thread.start()
                atexit.register(self.drain)
            self.wanted.notify()

    def _starter(self) -> None:
        while True:
            with self.wanted:
                while self.paused or len(self.idle) >= self.size():
                    self.wanted.wait()
                drains = self.drains
            try:
                started = start(Limits())
            except (OSError, SandboxUnavailable) as exc:
                log.warning("could not pre-start a sandbox: %s", exc)
                time.sleep(5)
                continue
            with self.wanted:
                if drains == self.drains:
                    self.idle.append(started)
                    continue
            discard(started)  # the pool was drained while it started

    def drain(self) -> None:
        """Discard every idle sandbox, and any the starter is starting now; the pool stays empty
        until the next ``refill``."""
        with self.wanted:
            self.drains += 1
            self.paused = True
            while self.idle:
                discard(self.idle.popleft())


pool = _WarmPool()
