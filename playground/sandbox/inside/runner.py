"""The sandboxed process: read one request, lock the process down, run the program traced.

Started inside bubblewrap (or, in the explicit unsafe-local mode, without it) as ``python3 -s -S
-B -P -c "import sys; sys.path[:0] = ['/runner/runner.zip']; import runner; runner.main()"``.

Start-up is on every run's critical path, so this imports only built-in or small modules
(``_json`` rather than ``json``, ``_signal`` rather than ``signal``, no ``typing``) and the
seccomp filter arrives compiled (``seccomp.bpf``, built by the parent with libseccomp).

Protocol. A request is six length-prefixed fields (``<len>:<bytes>``): source, call, stdin,
limits as ``key=value;...``, ``1``/``0`` for isolation, and the mode (``one``, ``coc``, ``batch``).

- Mode ``one``: run that program here. Answer: JSON lines on the descriptor that was standard
  output: ``{"fatal": why}`` if the process cannot be locked down, else ``{"started": true}``
  just before the program runs, ``{"steps": [...]}`` batches (flushed at 200 steps or about
  64,000 characters), then one ``{"final": {...}}``. The user's code runs in this process too,
  so the parent trusts none of it (and none of what follows "started").
- Mode ``coc`` (Chain of Code, see coc.py): as ``one``, but a line the program cannot run pauses
  it: after the pending steps, one line ``{"lm": {"line", "end", "func", "locals", "error",
  "kind", "targets", "step"}}`` asks the parent, and the runner blocks for the reply, two
  length-prefixed fields on the request pipe (kept open, moved off descriptor 0 so the program
  reads nothing there, as in mode ``one``): ``ok`` and the ``repr`` of the dict to apply, or
  ``error``/``stop`` and the reason the model's answer is not used (``stop``: ask no more).
- Mode ``batch`` (one owner's batch, e.g. ``manage.py trace --jsonl``): this process becomes a
  zygote that never runs user code. It reads further requests (five fields each) and forks a
  fresh child per program, which locks itself down and writes its lines to a pipe of its own
  (it cannot reach the parent's channel); the zygote enforces the wall clock, relays the
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
            "mode": fields[5] if count > 5 else "one",
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
        """Install the filter here (no exec, fork, ptrace, sockets...; see process.py)."""
        prctl = self.libc.prctl
        if prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(self.ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, self.ctypes.byref(self.fprog), 0, 0) != 0:
            raise OSError(self.ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def _channel(out: int, replies: int) -> Callable[[dict[str, Any]], tuple[str, str]]:
    """coc mode's question to the parent: a request line out, a two-field reply in."""
    reader = Reader(replies)

    def ask(request: dict[str, Any]) -> tuple[str, str]:
        try:
            _write(out, {"lm": request})
            return reader.field(), reader.field()
        except (OSError, EOFError, ValueError):  # the program may have closed or read the pipe
            return "stop", "the sandbox lost its channel to the model"

    return ask


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

    execution = tracer.Execution(
        request["source"],
        request["call"],
        max_steps=limits["max_steps"],
        max_stdout=limits["max_stdout"],
        emit=emit,
        finish=finish,
        stdin=request["stdin"],
        ask=_channel(out, replies) if replies is not None else None,
    )
    execution.tracer.keep_running = bool(limits.get("keep_running"))
    _signal.signal(_signal.SIGXCPU, lambda signum, frame: execution.limit("time_limit"))
    sys.setrecursionlimit(limits.get("recursion", 1000))
    # From here on the program may write on ``out`` too: the parent believes a "fatal" (a setup
    # failure) only before this line, and counts one after it as the program's crash.
    _write(out, {"started": True})
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
    """Read the child's lines until it exits or the wall clock runs out (then kill it)."""
    import select
    import time

    deadline = time.monotonic() + wall_s
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
            request = reader.request(5)
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
    request = reader.request(6)
    out = os.dup(1)  # the protocol descriptor; fd 1 itself goes nowhere from now on
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    if request["mode"] == "batch":
        _zygote(reader, request, out)
    replies = os.dup(0) if request["mode"] == "coc" else None
    os.close(0)
    _run_one(request, out, replies=replies)
