"""The sandboxed process: read one request, lock the process down, run the program traced.

Started as ``python3 -s -S -B -P /runner/runner.py`` inside bubblewrap (or, in the explicit
unsafe-local mode, without it). Protocol: the request is one JSON object on standard input; the
answer is JSON lines on the file descriptor that was standard output: ``{"steps": [...]}``
batches, then one ``{"final": {...}}``. Everything here is untrusted by the parent: the user's
code runs in this process and can write to that descriptor too.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import contextlib

import tracer


def _import_pyseccomp() -> Any:
    """pyseccomp looks libraries up with ctypes.util.find_library, which needs /etc/ld.so.cache or
    a compiler; neither exists in the sandbox, so answer with the sonames the loader resolves."""
    import ctypes.util

    real = ctypes.util.find_library
    sonames = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}
    ctypes.util.find_library = lambda name: sonames.get(name) or real(name)
    try:
        import pyseccomp

        return pyseccomp
    except (ImportError, OSError, RuntimeError):  # only acceptable in unsafe-local mode
        return None
    finally:
        ctypes.util.find_library = real


pyseccomp = _import_pyseccomp()

_CLONE_THREAD = 0x00010000
_TIOCSTI = 0x5412
_EPERM, _ENOSYS = 1, 38


def _write(fd: int, obj: dict[str, Any]) -> None:
    data = (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode(
        "utf-8", "replace"
    )
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


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


def _load_seccomp() -> None:
    """Refuse what a traced program never needs, with EPERM so it surfaces as PermissionError."""
    sc = pyseccomp
    flt = sc.SyscallFilter(sc.ALLOW)
    deny = sc.ERRNO(_EPERM)
    for name in (
        "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
        "mount", "umount2", "unshare", "setns", "pivot_root", "chroot", "move_mount", "open_tree",
        "fsopen", "fsmount", "socket", "socketpair", "connect", "bind", "listen", "accept",
        "accept4", "sendto", "sendmsg", "recvmsg", "kill", "tkill", "io_uring_setup",
        "io_uring_enter", "io_uring_register", "bpf", "keyctl", "add_key", "request_key",
        "perf_event_open", "userfaultfd", "personality", "seccomp", "memfd_create",
        "process_madvise", "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "name_to_handle_at",
        "open_by_handle_at", "kexec_load", "init_module", "finit_module", "delete_module",
        "acct", "swapon", "swapoff", "reboot", "sethostname", "setdomainname", "mknod", "mknodat",
    ):  # fmt: skip
        try:
            flt.add_rule(deny, name)
        except Exception:  # noqa: S112 - a syscall this kernel/libseccomp does not know
            continue
    # clone: threads only (CLONE_THREAD set); clone3 hides its flags in memory, so refuse it with
    # ENOSYS and let the C library fall back to clone for threads.
    flt.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, _CLONE_THREAD, 0))
    flt.add_rule(sc.ERRNO(_ENOSYS), "clone3")
    # Signals only to this process (raise(), abort()).
    flt.add_rule(deny, "tgkill", sc.Arg(0, sc.NE, os.getpid()))
    flt.add_rule(deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, _TIOCSTI))
    flt.load()


def main() -> None:
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    out = os.dup(1)  # the protocol descriptor; fd 1 itself goes nowhere from now on
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    os.close(0)

    limits = request["limits"]
    if request.get("isolated", True):
        if pyseccomp is None:
            _write(out, {"fatal": "pyseccomp is not available inside the sandbox"})
            os._exit(3)
        _set_limits(limits)
        _load_seccomp()
    else:
        _set_limits(limits)

    def emit(steps: list[dict[str, Any]]) -> None:
        _write(out, {"steps": steps})

    def finish(final: dict[str, Any]) -> None:
        _write(out, {"final": final})
        os._exit(0)

    execution = tracer.Execution(
        request["source"],
        request.get("call") or None,
        max_steps=limits["max_steps"],
        max_stdout=limits["max_stdout"],
        emit=emit,
        finish=finish,
        stdin=request.get("stdin", ""),
    )
    signal.signal(signal.SIGXCPU, lambda signum, frame: execution.limit("time_limit"))
    sys.setrecursionlimit(limits.get("recursion", 1000))
    with contextlib.suppress(tracer.LimitReached):
        execution.run()
    os._exit(0)


if __name__ == "__main__":
    main()
