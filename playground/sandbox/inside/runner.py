"""The sandboxed process: read one request, lock the process down, run the program traced.

Started inside bubblewrap (or, in the explicit unsafe-local mode, without it) as
``python3 -s -S -B -P -c "import sys; sys.path[:0] = ['/runner']; import runner; runner.main()"``.

Start-up is on every run's critical path, so this imports only built-in or small modules
(``_json`` rather than ``json``, ``_signal`` rather than ``signal``, no ``typing``) and the
seccomp filter arrives compiled (``seccomp.bpf``, built by the parent with libseccomp).

Protocol. Request on standard input: five length-prefixed fields (``<len>:<bytes>``): source,
call, stdin, limits as ``key=value;...``, and ``1``/``0`` for isolation. Answer: JSON lines on the
descriptor that was standard output: ``{"steps": [...]}`` batches, then one ``{"final": {...}}``.
Everything here is untrusted by the parent: the user's code runs in this process too.
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


def parse_request(data: bytes) -> dict[str, Any]:
    """Decode the five length-prefixed fields of a request."""
    fields: list[str] = []
    pos = 0
    for _ in range(5):
        colon = data.index(b":", pos)
        length = int(data[pos:colon])
        start = colon + 1
        fields.append(data[start : start + length].decode("utf-8", "surrogatepass"))
        pos = start + length
    source, call, stdin, limits_text, isolated = fields
    limits = {}
    for item in limits_text.split(";"):
        if item:
            key, _, value = item.partition("=")
            limits[key] = int(value)
    return {
        "source": source,
        "call": call or None,
        "stdin": stdin,
        "limits": limits,
        "isolated": isolated == "1",
    }


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


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


def _load_seccomp(path: str) -> None:
    """Install the compiled filter (no exec, fork, ptrace, sockets...; see process.py)."""
    import ctypes

    with open(path, "rb") as f:
        program = f.read()

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def main() -> None:
    request = parse_request(_read_all(0))
    out = os.dup(1)  # the protocol descriptor; fd 1 itself goes nowhere from now on
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    os.close(0)

    limits = request["limits"]
    _set_limits(limits)
    if request["isolated"]:
        try:
            _load_seccomp(os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp.bpf"))
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
    )
    _signal.signal(_signal.SIGXCPU, lambda signum, frame: execution.limit("time_limit"))
    sys.setrecursionlimit(limits.get("recursion", 1000))
    try:  # noqa: SIM105 - contextlib would cost start-up time in the sandbox
        execution.run()
    except tracer.LimitReached:
        pass
    os._exit(0)
