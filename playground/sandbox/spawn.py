"""Starting one jailed sandbox process, and ending it: reaping and killing what bubblewrap leaves.

Shared by the one-shot runs (process.py, through the warm pool) and the batch sandbox
(batch.py); its own file because each of them starts, discards and kills sandboxes the same way,
and the jail's walls (jail.py) are another subject than a process's life.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache

from playground.sandbox.jail import (
    BWRAP_ENV,
    INSIDE,
    RUNNER_ENV,
    SandboxUnavailable,
    bootstrap,
    bwrap_argv,
    check_allowed,
    mode,
    open_runner,
    user_kwargs,
)
from playground.sandbox.limits import Limits

MAX_STDERR = 16 * 1024
# The runner stops a program at its wall-clock limit itself (keeping its steps); the parent kills
# it this much later if it did not (the zygote of a batch too: runner.KILL_GRACE_S).
KILL_GRACE_S = 0.5


_PR_SET_CHILD_SUBREAPER = 36


@cache
def _become_subreaper() -> None:
    """bubblewrap's outer process can exit before reaping the sandbox's pid 1; as a subreaper this
    process adopts such orphans and reaps them at once (the host's init may take its time, and
    unreaped zombies count against the sandbox account's process limit)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap_adopted(pidfd: int | None) -> None:
    """Reap the sandbox's pid 1 if bubblewrap left it to us as an orphan, then close its pidfd.
    The pidfd names that very process, so a recycled pid can never make us reap (or wait for)
    another thread's child."""
    if pidfd is None:
        return
    try:
        deadline = time.monotonic() + 0.5
        while True:
            try:
                if os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG) is not None:
                    return
            except ChildProcessError:  # not ours: bubblewrap reaped it itself
                return
            if time.monotonic() > deadline:
                return
            time.sleep(0.002)
    finally:
        os.close(pidfd)


def _open_child(info_r: int, timeout: float = 5.0) -> int | None:
    """A pidfd for the sandbox's pid 1, from bubblewrap's --info-fd JSON (written as soon as the
    namespaces exist, while pid 1 is certainly alive: it waits for our request). bubblewrap may
    write the JSON in several pieces; read until it parses (closing early would SIGPIPE it)."""
    deadline = time.monotonic() + timeout
    data = b""
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([info_r], [], [], remaining)
        if not ready:
            return None
        chunk = os.read(info_r, 4096)
        if not chunk:
            return None
        data += chunk
        try:
            child_pid = int(json.loads(data)["child-pid"])
        except (ValueError, KeyError, TypeError):
            continue
        try:
            return os.pidfd_open(child_pid)
        except OSError:
            return None
    return None


@dataclass
class Started:
    """A sandbox process started ahead of time, blocked on reading its one request."""

    proc: subprocess.Popen[bytes]
    pidfd: int | None
    info_r: int  # kept open until the run ends: bubblewrap must never write into a closed pipe
    sandboxed: bool
    tmp_mb: int


def start(limits: Limits) -> Started:
    check_allowed()  # every sandbox starts here: a process that may not start one never does
    sandboxed = mode() == "bwrap"
    info_r, info_w = os.pipe()
    runner_fd = None
    try:
        if sandboxed:
            runner_fd = open_runner()
            argv = bwrap_argv(limits, info_w, runner_fd)
            # Only now: the first bwrap_argv runs jail's one-off probe of bubblewrap, whose own
            # pid 1 this process would adopt as a subreaper and never reap (nothing waits for
            # it by pidfd); left to init, it is reaped there.
            _become_subreaper()
            env = dict(BWRAP_ENV)
            fds: tuple[int, ...] = (info_w, runner_fd)
        else:  # the worker's own user runs it: its own copy of the code will do
            argv = [sys.executable, *bootstrap(str(INSIDE))]
            env = dict(RUNNER_ENV)
            fds = (info_w,)
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, pass_fds=fds, start_new_session=True,
            **(user_kwargs() if sandboxed else {}),
        )  # fmt: skip
    except OSError as exc:  # e.g. bwrap not executable by the sandbox account
        os.close(info_r)
        raise SandboxUnavailable(f"Could not start the sandbox: {exc}") from None
    except BaseException:
        os.close(info_r)
        raise
    finally:
        os.close(info_w)
        if runner_fd is not None:
            os.close(runner_fd)
    pidfd = _open_child(info_r) if sandboxed else None
    return Started(proc, pidfd, info_r, sandboxed, limits.tmp_mb)


def discard(started: Started) -> None:
    """Close an unused sandbox: EOF on its request ends it; then reap it."""
    with contextlib.suppress(OSError):
        started.proc.stdin.close()  # type: ignore[union-attr]
    try:
        started.proc.wait(2)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(started.proc.pid, signal.SIGKILL)
        started.proc.wait()
    for stream in (started.proc.stdout, started.proc.stderr):
        if stream is not None:
            stream.close()
    reap_adopted(started.pidfd)
    os.close(started.info_r)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill bubblewrap (our child, not yet reaped, so its pid cannot have been recycled); its
    --die-with-parent kills the sandbox's pid 1, and with it everything in the namespace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
