"""The sandboxed process: read one request, lock the process down, run the program traced.

Started inside bubblewrap (or, in the explicit unsafe-local mode, without it) as ``python3 -s -S
-B -P -c "import sys; sys.path[:0] = ['/runner/runner.zip']; import runner; runner.main()"``.

Start-up is on every run's critical path, so this imports only built-in or small modules
(``_json`` rather than ``json``, ``_signal`` rather than ``signal``, no ``typing``) and the
seccomp filter arrives compiled (``seccomp.bpf``, built by the parent with libseccomp).

Protocol. A request is seven length-prefixed fields (``<len>:<bytes>``): source, call, stdin,
limits as ``key=value;...``, ``1``/``0`` for isolation, the rule (a name from semantics.py, the
program rewritten under it before it is compiled; empty for Python's own semantics), and the mode
(``one``, ``coc``, ``batch``).

- Mode ``one``: run that program here. Answer: JSON lines on the descriptor that was standard
  output: ``{"fatal": why}`` if the process cannot be locked down, else ``{"started": true}``
  just before the program runs, ``{"steps": [...]}`` batches (flushed at 200 steps or about
  64,000 characters), then one ``{"final": {...}}``. The user's code runs in this process too,
  so the parent trusts none of it (and none of what follows "started").
- Mode ``coc`` (Chain of Code, see coc_runtime.py): as ``one``, but a line the program cannot
  run pauses it: after the pending steps, one line ``{"lm": {"line", "end", "func", "locals",
  "error", "kind", "targets", "step"}}`` asks the parent, and the runner blocks for the reply, two
  length-prefixed fields on the request pipe (kept open, moved off descriptor 0 so the program
  reads nothing there, as in mode ``one``): ``ok`` and the ``repr`` of the dict to apply, or
  ``error``/``stop`` and the reason the model's answer is not used (``stop``: ask no more).
- Mode ``batch`` (one owner's batch, e.g. ``manage.py trace --jsonl``): this process becomes a
  zygote that never runs user code. It reads further requests (six fields each: no mode) and
  forks a fresh child per program, which locks itself down and writes its lines to a pipe of
  its own (it cannot reach the parent's channel); the zygote enforces the wall clock, relays the
  child's output as one frame ``<len>:<lines>`` followed by ``{"done": {...}}``, and empties
  /tmp. The interpreter and imports are paid once per batch instead of once per program.
"""

from __future__ import annotations

import _json
import _signal
import os
import resource
import sys

import tracer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_PR_SET_NO_NEW_PRIVS = 38
# The program stops itself at its wall-clock limit (_Stopper); a kill from outside waits this
# much longer (spawn.KILL_GRACE_S, the same for a single run).
KILL_GRACE_S = 0.5
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


def _default(obj: object) -> object:
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


# json.dumps(ensure_ascii=True, separators=(",", ":")) without importing json (and re, enum...).
_encode = _json.make_encoder(
    None, _default, _json.encode_basestring_ascii, None, ":", ",", False, False, True
)


def _write(fd: int, obj: dict[str, Any]) -> None:
    data = ("".join(_encode(obj, 0)) + "\n").encode("ascii")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Reader:
    """Length-prefixed fields from a descriptor, read exactly (nothing of the next request is
    read ahead, so a forked child holds no other program in its memory)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def _exactly(self, n: int) -> bytes:
        chunks: list[bytes] = []
        while n:
            chunk = os.read(self.fd, min(n, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def field(self) -> str:
        digits = b""
        while True:
            c = os.read(self.fd, 1)
            if not c:
                raise EOFError
            if c == b":":
                break
            digits += c
        return self._exactly(int(digits)).decode("utf-8", "surrogatepass")

    def request(self, count: int) -> dict[str, Any]:
        fields = [self.field() for _ in range(count)]
        limits = {}
        for item in fields[3].split(";"):
            if item:
                key, _, value = item.partition("=")
                limits[key] = int(value)
        return {
            "source": fields[0],
            "call": fields[1] or None,
            "stdin": fields[2],
            "limits": limits,
            "isolated": fields[4] == "1",
            "rule": fields[5] or None,
            "mode": fields[6] if count > 6 else "one",
        }


def _set_limits(limits: dict[str, int]) -> None:
    mb = 1024 * 1024
    cpu = limits["cpu_s"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_mb"] * mb, limits["memory_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_mb"] * mb, limits["file_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
    # Processes are refused by seccomp; this caps threads too (they count as processes).
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["nproc"], limits["nproc"]))


class Seccomp:
    """The compiled filter, read and wrapped once (a batch's zygote prepares it for every child)."""

    def __init__(self) -> None:
        import ctypes

        # Beside this module, in the archive the parent handed over (its loader reads it there).
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp.bpf")
        program = __loader__.get_data(path)  # type: ignore[name-defined]

        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        self.ctypes = ctypes
        self.buffer = ctypes.create_string_buffer(program, len(program))
        self.fprog = SockFprog(len(program) // 8, ctypes.cast(self.buffer, ctypes.c_void_p))
        self.libc = ctypes.CDLL(None, use_errno=True)

    def load(self) -> None:
        """Install the filter here (no exec, fork, ptrace, sockets...; see jail.py)."""
        prctl = self.libc.prctl
        if prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(self.ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, self.ctypes.byref(self.fprog), 0, 0) != 0:
            raise OSError(self.ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def _channel(out: int, replies: int) -> Callable[[dict[str, Any]], tuple[str, str]]:
    """coc mode's question to the parent: a request line out, a two-field reply in. The model's
    time is not the program's: the wall clock is paused while it answers (the parent's too)."""
    reader = Reader(replies)

    def ask(request: dict[str, Any]) -> tuple[str, str]:
        left = _signal.setitimer(_signal.ITIMER_REAL, 0)[0]
        try:
            _write(out, {"lm": request})
            return reader.field(), reader.field()
        except (OSError, EOFError, ValueError):  # the program may have closed or read the pipe
            return "stop", "the sandbox lost its channel to the model"
        finally:
            if left > 0:
                _signal.setitimer(_signal.ITIMER_REAL, left)

    return ask


# Code of the runner itself (this archive or directory): a signal that arrives while it runs
# (the tracer recording a step, a batch being written) must not stop the program there.
_HERE = os.path.dirname(os.path.abspath(__file__))


def _program_line(frame: Any) -> int | None:
    """The line of the program's innermost frame at a signal (None outside the program)."""
    while frame is not None:
        name = frame.f_code.co_filename
        if name == tracer.PROGRAM:
            return frame.f_lineno
        frame = frame.f_back
    return None


def _busy(frame: Any) -> bool:
    """Whether the runner's code (the tracer, the output capture, this module) was running
    when a signal came: a batch may be half written or a step half built."""
    while frame is not None:
        name = frame.f_code.co_filename
        if name == tracer.PROGRAM or name == "<call>":
            return False
        if name.startswith(_HERE):
            return True
        frame = frame.f_back
    return True  # no frame of the program: the runner before or after it


class _Stopper:
    """Stops the program at its time limits from inside, so that the steps recorded so far,
    the output and the line it was at reach the parent (a kill from outside would lose the
    batch not yet written). SIGALRM: the wall clock; SIGXCPU: the CPU-time soft limit. When
    the signal comes while the runner's own code runs, it tries again 5 ms later; the parent's
    kill, a moment after the wall-clock limit, remains the backstop."""

    def __init__(self, execution: tracer.Execution, limits: dict[str, int]) -> None:
        self.execution = execution
        self.wall_s = limits.get("wall_ms", 0) / 1000
        self.cpu_s = limits["cpu_s"]
        self.why: str | None = None

    def arm(self) -> None:
        _signal.signal(_signal.SIGXCPU, self.on_signal)
        _signal.signal(_signal.SIGALRM, self.on_signal)
        if self.wall_s > 0:
            _signal.setitimer(_signal.ITIMER_REAL, self.wall_s)

    def on_signal(self, signum: int, frame: Any) -> None:
        if signum == _signal.SIGXCPU:
            self.why = f"The program used {self.cpu_s} s of CPU time."
        elif self.why is None:
            self.why = f"The program ran for {self.wall_s:g} s of wall-clock time."
        if _busy(frame):
            _signal.setitimer(_signal.ITIMER_REAL, 0.005)
            return
        error = {"type": "TimeLimit", "message": self.why, "line": _program_line(frame)}
        self.execution.limit("time_limit", error)


def _run_one(
    request: dict[str, Any], out: int, seccomp: Seccomp | None = None, replies: int | None = None
) -> None:
    """Lock this process down, run the request's program traced, write its lines; never returns."""
    limits = request["limits"]
    _set_limits(limits)
    if request["isolated"]:
        try:
            (seccomp or Seccomp()).load()
        except OSError as exc:
            _write(out, {"fatal": f"could not load the seccomp filter: {exc}"})
            os._exit(3)

    def emit(steps: list[dict[str, Any]]) -> None:
        _write(out, {"steps": steps})

    def finish(final: dict[str, Any]) -> None:
        _write(out, {"final": final})
        os._exit(0)

    coc = None
    if replies is not None:  # coc mode: its runtime (ast, symtable) is imported only here
        import coc_runtime  # type: ignore[import-not-found]

        # Under a rule, the session composes the rule's rewrite with its own (coc_runtime.py).
        coc = coc_runtime.Session(request["source"], _channel(out, replies), request["rule"])
    execution = tracer.Execution(
        request["source"],
        request["call"],
        max_steps=limits["max_steps"],
        max_stdout=limits["max_stdout"],
        emit=emit,
        finish=finish,
        stdin=request["stdin"],
        coc=coc,
        rule=request["rule"],
    )
    execution.tracer.keep_running = bool(limits.get("keep_running"))
    sys.setrecursionlimit(limits.get("recursion", 1000))
    # From here on the program may write on ``out`` too: the parent believes a "fatal" (a setup
    # failure) only before this line, and counts one after it as the program's crash.
    _write(out, {"started": True})
    _Stopper(execution, limits).arm()
    try:  # noqa: SIM105 - contextlib would cost start-up time in the sandbox
        execution.run()
    except tracer.LimitReached:
        pass
    os._exit(0)


def _empty_tmp(path: str = "/tmp") -> None:  # noqa: S108 - the sandbox's own tmpfs
    """Remove what a program left in the sandbox's /tmp before the next one runs."""
    for entry in os.scandir(path):
        try:
            if entry.is_dir(follow_symlinks=False):
                _empty_tmp(entry.path)
                os.rmdir(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _relay_child(pid: int, r: int, wall_s: float, cap: int) -> tuple[bytes, bool, bool]:
    """Read the child's lines until it exits or the wall clock runs out (then kill it: a moment
    after the limit, so that the child stops itself first and reports its steps)."""
    import select
    import time

    deadline = time.monotonic() + wall_s + KILL_GRACE_S
    chunks: list[bytes] = []
    size = 0
    timed_out = too_big = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 and not timed_out:
            timed_out = True
            os.kill(pid, 9)
        ready, _, _ = select.select([r], [], [], max(remaining, 0.05) if not timed_out else 1.0)
        if not ready:
            continue
        chunk = os.read(r, 1 << 16)
        if not chunk:
            return b"".join(chunks), timed_out, too_big
        size += len(chunk)
        if size > cap:
            if not too_big:
                too_big = True
                os.kill(pid, 9)
            continue
        chunks.append(chunk)


def _zygote(reader: Reader, header: dict[str, Any], out: int) -> None:
    limits = header["limits"]
    wall_s = limits.get("wall_ms", 5000) / 1000
    cap = limits.get("max_protocol", 48 << 20)
    seccomp = Seccomp() if header["isolated"] else None
    while True:
        try:
            request = reader.request(6)
        except EOFError:
            os._exit(0)
        request["limits"] = limits
        request["isolated"] = header["isolated"]
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: no access to the parent's channel, nor to further requests
            try:
                os.close(r)
                os.close(out)
                os.close(0)
                _run_one(request, w, seccomp)
            finally:
                os._exit(70)
        os.close(w)
        data, timed_out, too_big = _relay_child(pid, r, wall_s, cap)
        os.close(r)
        _, status, usage = os.wait4(pid, 0)
        done = {
            "exit": os.waitstatus_to_exitcode(status),
            "timed_out": timed_out,
            "too_big": too_big,
            "cpu_ms": int((usage.ru_utime + usage.ru_stime) * 1000),
        }
        frame = str(len(data)).encode() + b":" + data
        view = memoryview(frame)
        while view:
            view = view[os.write(out, view) :]
        _write(out, {"done": done})
        _empty_tmp()


def main() -> None:
    reader = Reader(0)
    request = reader.request(7)
    out = os.dup(1)  # the protocol descriptor; fd 1 itself goes nowhere from now on
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    if request["mode"] == "batch":
        _zygote(reader, request, out)
    replies = os.dup(0) if request["mode"] == "coc" else None
    os.close(0)
    _run_one(request, out, replies=replies)
