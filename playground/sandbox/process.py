"""Start the runner in bubblewrap as an unprivileged user, feed it one program, collect its trace.

Layers, all of them or nothing (fail closed): an unprivileged account (never root; when the
worker itself is not root, that same account, see test_identity.py), bubblewrap namespaces with a
read-only /usr and no /etc, /proc, project tree or sockets, no nested user namespaces, an empty
environment (also for bubblewrap's own pid 1), rlimits and a seccomp allowlist set by the runner
before user code, and here a wall-clock kill, a cap on what is read back and validation of every
byte of it.

Chain of Code runs (``lmulator``, see coc.py) keep the request pipe open: the runner pauses on a
line Python cannot run and asks; the model is called here and its checked answer written back.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import logging
import os
import pwd
import select
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from playground.lib.accounts import ensure_system_user
from playground.sandbox import protocol
from playground.sandbox.coc import LMRequest, LMSession, Lmulator, encode_reply
from playground.sandbox.limits import Limits
from playground.sandbox.schema import (
    MAX_RESULT,
    TraceInvalid,
    clean_error,
    clean_step,
    make_trace,
    one_line,
    storable,
    stored_size,
)
from playground.sandbox.setting import read_setting

log = logging.getLogger(__name__)

SANDBOX_USER = "playground-sandbox"
INSIDE = Path(__file__).resolve().parent / "inside"
_MAX_PROTOCOL_BYTES = 48 * 1024 * 1024
_MAX_STDERR = 16 * 1024
# The runner stops a program at its wall-clock limit itself (keeping its steps); the parent kills
# it this much later if it did not (the zygote of a batch too: runner.KILL_GRACE_S).
KILL_GRACE_S = 0.5
# bubblewrap's own pid 1 keeps the environment it was started with: give it nothing worth reading.
_BWRAP_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
_RUNNER_ENV = {"PYTHONHASHSEED": "0", "PYTHONUTF8": "1", "LC_ALL": "C.UTF-8", "PATH": "/usr/bin"}


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be set up on this machine; the message says what is missing."""


def mode() -> str:
    """``bwrap`` (the default) or ``unsafe-local`` (no isolation: a single-user machine only), as
    setting.py reads PLAYGROUND_SANDBOX. A refused setting raises SandboxUnavailable with a
    message for users; why it is refused goes to the operator's log only."""
    setting = read_setting()
    if setting.refusal is not None:
        if setting.refusal not in _logged_refusals:  # once per process, not on every run
            _logged_refusals.add(setting.refusal)
            log.error("no program will run: %s", setting.refusal)
        raise SandboxUnavailable(_REFUSED)
    return setting.mode


_REFUSED = "this server's sandbox setting is refused (its operator's log says why)."
_logged_refusals: set[str] = set()


@cache
def _python() -> str:
    """An interpreter the sandbox user can reach under /usr (pyenv's lives in root's home)."""
    configured = os.environ.get("PLAYGROUND_SANDBOX_PYTHON")
    for candidate in (configured, "/usr/bin/python3", "/usr/local/bin/python3"):
        if (
            candidate
            and Path(candidate).is_file()
            and str(Path(candidate).resolve()).startswith("/usr/")
        ):
            return candidate
    raise SandboxUnavailable(
        "No Python interpreter under /usr for the sandbox: install Debian's python3 "
        "(apt-get install python3) or set PLAYGROUND_SANDBOX_PYTHON."
    )


@cache
def _sandbox_account() -> pwd.struct_passwd | None:
    """The unprivileged account that runs sandboxes when the worker is root (created once)."""
    if os.geteuid() != 0:
        return None
    return ensure_system_user(SANDBOX_USER)


# The seccomp filter (built with libseccomp here, loaded by the runner as compiled BPF before user
# code) is an allowlist: the system calls CPython and its threads need to run a program, use its own
# files in /tmp and print. Any other one fails with ENOSYS, as on an older kernel (the C library
# falls back where it can), so that whatever later kernels add is refused too.
_ALLOWED_SYSCALLS = (
    # files and descriptors
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
    "pwritev2", "open", "openat", "openat2", "creat", "close", "close_range", "lseek", "dup",
    "dup2", "dup3", "pipe", "pipe2", "fcntl", "flock", "fsync", "fdatasync", "truncate",
    "ftruncate", "fallocate", "fadvise64", "stat", "fstat", "lstat", "newfstatat", "statx",
    "statfs", "fstatfs", "access", "faccessat", "faccessat2", "getdents", "getdents64", "getcwd",
    "chdir", "fchdir", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "link",
    "linkat", "unlink", "unlinkat", "symlink", "symlinkat", "readlink", "readlinkat", "chmod",
    "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat", "umask", "utime", "utimes",
    "utimensat", "futimesat", "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr",
    "flistxattr",
    # waiting on descriptors and time
    "select", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "timerfd_create",
    "timerfd_settime", "timerfd_gettime", "signalfd", "signalfd4", "inotify_init",
    "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "nanosleep", "clock_nanosleep",
    "clock_gettime", "clock_getres", "gettimeofday", "time", "times", "getitimer", "setitimer",
    "alarm", "pause",
    # memory
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
    # signals (to itself: kill and tgkill to others are refused below)
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigsuspend",
    "rt_sigtimedwait", "sigaltstack", "restart_syscall",
    # threads and the process itself
    "futex", "futex_waitv", "set_robust_list", "get_robust_list", "set_tid_address", "rseq",
    "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam",
    "sched_getscheduler", "sched_get_priority_max", "sched_get_priority_min", "getpriority",
    "setpriority", "exit", "exit_group", "wait4", "waitid", "arch_prctl", "prctl", "capget",
    "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getgroups",
    "getresuid", "getresgid", "getpgrp", "getpgid", "getsid", "setsid", "setpgid", "getrlimit",
    "setrlimit", "prlimit64", "getrusage", "sysinfo", "uname", "getcpu", "getrandom",
)  # fmt: skip
# Refused by name with EPERM (a PermissionError in the program): what a hostile program reaches
# for. Processes, exec, sockets, namespaces and mounts, tracing and other processes' memory, and
# kernel interfaces with a record of privilege escalations (pipe splicing, io_uring, bpf, keys,
# userfaultfd, the new mount API...). Listed although the allowlist leaves them out already, so
# that the refusal does not hang on the list above staying as it is.
_DENIED_SYSCALLS = (
    "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
    "mount", "umount2", "unshare", "setns", "pivot_root", "chroot", "move_mount", "open_tree",
    "fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr", "socket", "socketpair", "connect",
    "bind", "listen", "accept", "accept4", "sendto", "sendmsg", "recvmsg", "kill", "tkill",
    "rt_sigqueueinfo", "rt_tgsigqueueinfo", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "bpf", "keyctl", "add_key", "request_key", "perf_event_open",
    "userfaultfd", "personality", "seccomp", "memfd_create", "memfd_secret", "process_madvise",
    "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "name_to_handle_at", "open_by_handle_at",
    "splice", "vmsplice", "tee", "sendfile", "copy_file_range", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "acct", "swapon", "swapoff", "reboot",
    "sethostname", "setdomainname", "mknod", "mknodat", "quotactl", "quotactl_fd", "modify_ldt",
    "iopl", "ioperm", "kcmp", "syslog", "lookup_dcookie", "uselib", "vhangup",
)  # fmt: skip
# ioctl: only the requests CPython itself makes (isatty, the terminal size, close-on-exec,
# bytes available, non-blocking); TIOCSTI (push input into a terminal) is refused by name.
_ALLOWED_IOCTLS = (0x5401, 0x5413, 0x5450, 0x5451, 0x541B, 0x5421)
_CLONE_THREAD = 0x00010000
_TIOCSTI = 0x5412
_ENOSYS = 38
_EPERM = 1
_RUNNER_PID = 2  # bubblewrap's init is pid 1 of the sandbox's pid namespace; the runner is pid 2


def seccomp_program() -> bytes:
    """The filter as BPF bytes (what seccomp_export_bpf writes)."""
    try:
        import pyseccomp as sc
    except (ImportError, OSError, RuntimeError) as exc:
        raise SandboxUnavailable(
            f"libseccomp is not usable here ({exc}): apt-get install libseccomp2"
        ) from None
    flt = sc.SyscallFilter(sc.ERRNO(_ENOSYS))
    deny = sc.ERRNO(_EPERM)
    for names, action in ((_ALLOWED_SYSCALLS, sc.ALLOW), (_DENIED_SYSCALLS, deny)):
        for name in names:
            with contextlib.suppress(Exception):  # a syscall this kernel or libseccomp lacks
                flt.add_rule(action, name)
    # clone: threads only (the flags are in a register). clone3 hides its flags in memory, so it
    # gets the default ENOSYS, and the C library falls back to clone for threads.
    flt.add_rule(sc.ALLOW, "clone", sc.Arg(0, sc.MASKED_EQ, _CLONE_THREAD, _CLONE_THREAD))
    flt.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, _CLONE_THREAD, 0))
    flt.add_rule(sc.ALLOW, "tgkill", sc.Arg(0, sc.EQ, _RUNNER_PID))  # raise()/abort() on itself
    flt.add_rule(deny, "tgkill", sc.Arg(0, sc.NE, _RUNNER_PID))
    # The kernel reads the request as 32 bits: compare only those, whatever the upper half holds.
    for request in _ALLOWED_IOCTLS:
        flt.add_rule(sc.ALLOW, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
    flt.add_rule(deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, _TIOCSTI))
    with tempfile.TemporaryFile() as f:
        flt.export_bpf(f)
        f.seek(0)
        return f.read()


# The runner reaches the sandbox as one zip that bubblewrap copies from a descriptor into the
# sandbox's own read-only tmpfs: no copy of it lies on disk for anyone to replace between uses.
_RUNNER_ARCHIVE = "/runner/runner.zip"


@cache
def runner_archive() -> bytes:
    """The runner's modules, their bytecode compiled by the sandbox's own interpreter (so that
    start-up skips compiling) and the compiled seccomp filter, as an uncompressed zip. Built in
    memory once per process; every sandbox gets these very bytes."""
    files = {path.name: path.read_bytes() for path in sorted(INSIDE.glob("*.py"))}
    with tempfile.TemporaryDirectory(prefix="playground-runner-") as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        # -b: runner.pyc beside runner.py, where zipimport looks; unchecked-hash: valid whatever
        # the files' times in the archive; -d: tracebacks name the files as the sandbox sees them.
        with contextlib.suppress(SandboxUnavailable, OSError, subprocess.SubprocessError):
            subprocess.run(  # noqa: S603
                [_python(), "-s", "-S", "-m", "compileall", "-q", "-b", "-d", "/runner",
                 "--invalidation-mode", "unchecked-hash", tmp],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            for name in list(files):
                pyc = Path(tmp) / (name + "c")
                if pyc.is_file():
                    files[name + "c"] = pyc.read_bytes()
    files["seccomp.bpf"] = seccomp_program()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            # A fixed time: the same runner gives the same bytes.
            archive.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def _runner_fd() -> int:
    """A new descriptor holding the runner archive, for one bubblewrap to copy from (the caller
    closes it). An anonymous memory file: nothing on disk, nothing another process can open."""
    fd = os.memfd_create("playground-runner", os.MFD_CLOEXEC)
    try:
        data = memoryview(runner_archive())
        while data:
            data = data[os.write(fd, data) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _bootstrap(path: str) -> list[str]:
    """Interpreter arguments that import the runner from ``path`` (the archive, or in
    unsafe-local mode the project's own directory) and start it."""
    code = f"import sys; sys.path[:0] = [{path!r}]; import runner; runner.main()"
    return ["-s", "-S", "-B", "-P", "-c", code]


def encode_request(
    source: str,
    call: str | None,
    stdin: str,
    limits: Limits,
    isolated: bool,
    mode: str | None = "one",
) -> bytes:
    """A request for the runner: length-prefixed fields (see inside/runner.py). The programs of
    a batch after its header go without the mode field (``mode=None``)."""
    limits_text = ";".join(f"{k}={v}" for k, v in limits.for_runner().items())
    fields = [source, call or "", stdin, limits_text, "1" if isolated else "0"]
    if mode is not None:
        fields.append(mode)
    out = bytearray()
    for field in fields:
        data = field.encode("utf-8", "surrogatepass")
        out += f"{len(data)}:".encode() + data
    return bytes(out)


def _system_binds() -> list[str]:
    """/usr read-only, and /bin, /lib... as on the host: merged /usr (Debian 12) makes them
    symlinks into /usr, which are mirrored."""
    argv = ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / top
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), f"/{top}"]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), f"/{top}"]
    return argv


_DISABLE_USERNS = ["--unshare-user", "--disable-userns"]


@cache
def _userns_options(bwrap: str) -> tuple[str, ...]:
    """bubblewrap's --disable-userns (0.8.0 on) where it works: a second wall besides seccomp,
    no user namespace inside the sandbox (where namespaces would hand a program capabilities
    over them, the way most namespace exploits start). It writes the sandbox's
    /proc/sys/user/max_user_namespaces, which a container may mount read-only; there the
    sandbox runs without it (seccomp alone refuses user namespaces) and the log says so."""
    try:
        known = subprocess.run(  # noqa: S603 - fixed argv
            [bwrap, "--help"], capture_output=True, text=True, timeout=10, env=_BWRAP_ENV
        ).stdout.split()
        if "--disable-userns" not in known:
            return ()
        probe = subprocess.run(  # noqa: S603 - fixed argv
            [bwrap, "--unshare-all", *_DISABLE_USERNS, *_system_binds(), _python(), "-S", "-c", ""],
            capture_output=True, text=True, timeout=10, env=_BWRAP_ENV, **_user_kwargs(),
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return tuple(_DISABLE_USERNS)  # let the real start fail, with its own message
    if probe.returncode != 0 and "max_user_namespaces" in probe.stderr:
        log.warning(
            "bubblewrap --disable-userns is unusable here (%s): sandboxes run without it; "
            "seccomp still refuses user namespaces (a writable /proc/sys allows it)",
            probe.stderr.strip()[:200],
        )
        return ()
    return tuple(_DISABLE_USERNS)


def _bwrap_argv(limits: Limits, info_fd: int, runner_fd: int) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        # Users read this message: it names the fix, never a way around the sandbox.
        raise SandboxUnavailable(
            "bubblewrap is not installed: apt-get install bubblewrap (make test does this as root)."
        )
    argv = [
        bwrap, "--unshare-all", *_userns_options(bwrap), "--die-with-parent", "--new-session",
        "--cap-drop", "ALL", "--hostname", "sandbox", *_system_binds(),
        "--ro-bind-data", str(runner_fd), _RUNNER_ARCHIVE,
        "--dev", "/dev",
        "--size", str(limits.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp",  # noqa: S108 - inside
        "--remount-ro", "/dev", "--remount-ro", "/",
        "--chdir", "/tmp", "--clearenv",  # noqa: S108
    ]  # fmt: skip
    for key, value in _RUNNER_ENV.items():
        argv += ["--setenv", key, value]
    argv += ["--info-fd", str(info_fd), _python(), *_bootstrap(_RUNNER_ARCHIVE)]
    return argv


_PR_SET_CHILD_SUBREAPER = 36


@cache
def _become_subreaper() -> None:
    """bubblewrap's outer process can exit before reaping the sandbox's pid 1; as a subreaper this
    process adopts such orphans and reaps them at once (the host's init may take its time, and
    unreaped zombies count against the sandbox account's process limit)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _reap_adopted(pidfd: int | None) -> None:
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


def _user_kwargs() -> dict[str, Any]:
    account = _sandbox_account()
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


class _Collector:
    """Parses the runner's JSON lines as they arrive, validating each step (and, in coc mode,
    each request for the model, queued in ``lm_pending`` with the step it pauses on). Nothing the
    program writes on the protocol descriptor can make it raise: a line it refuses sets
    ``problem`` (and ``reason``, our own words, never the program's)."""

    def __init__(self, limits: Limits, lm: LMSession | None = None) -> None:
        self.limits = limits
        self.lm = lm
        self.lm_pending: deque[tuple[LMRequest, int]] = deque()
        # A final record holds the whole output, each character escaped to at most 6 bytes.
        self.lines = protocol.LineBuffer(max(protocol.MAX_LINE_BYTES, 8 * limits.max_stdout))
        self.total = 0
        self.steps: list[dict[str, Any]] = []  # the steps kept: up to limits.max_trace_bytes
        self.count = 0  # every valid step received, kept or not
        self.kept_size = 0
        self.final: dict[str, Any] | None = None
        self.problem: str | None = None
        self.reason = ""
        self.started = False  # the runner is about to run user code (nothing before is forged)
        self.fatal: str | None = None

    def feed(self, data: bytes | memoryview) -> None:
        if self.problem is not None:
            return
        self.total += len(data)
        if self.total > _MAX_PROTOCOL_BYTES:
            self.problem = "output_limit"
            return
        lines = self.lines
        for start, end in lines.feed(data):
            if end > start and self.problem is None and self.final is None:
                self._line(lines.data, start, end)
        lines.consume()
        if lines.too_long and self.problem is None:
            self._refuse(f"a line longer than {lines.max_line:,} bytes")

    def _refuse(self, reason: str) -> None:
        log.warning("sandbox answered an invalid message: %s", reason)
        self.problem, self.reason = "invalid", reason

    def _line(self, buffer: bytearray, start: int, end: int) -> None:
        try:
            message = protocol.load(buffer, start, end, self.lines.budget)
            if type(message) is not dict or len(message) != 1:
                raise TraceInvalid("not an object with one key")
            if "steps" in message:
                self._steps(message["steps"])
            elif "final" in message:
                if type(message["final"]) is not dict:
                    raise TraceInvalid("final is not an object")
                self.final = message["final"]
            elif "started" in message:
                self.started = True
            elif "fatal" in message:
                if self.started:  # only the runner, before user code, reports a setup failure
                    raise TraceInvalid("a setup failure reported after the program started")
                self.fatal = one_line(str(message["fatal"]))[:500]
            elif "lm" in message and self.lm is not None:
                self.lm_pending.append(self.lm.request(message["lm"], self.steps, self.count))
            else:
                raise TraceInvalid("unknown message")
        except TraceInvalid as exc:
            self._refuse(str(exc))
        except RecursionError:
            self._refuse("nested too deeply")
        except Exception as exc:  # TypeError, MemoryError, an int of 5,000 digits: all invalid
            self._refuse(f"not a well-formed message ({type(exc).__name__})")

    def _steps(self, batch: Any) -> None:
        if type(batch) is not list:
            raise TraceInvalid("steps is not a list")
        limits = self.limits
        for raw in batch:
            if self.count >= limits.max_steps:
                raise TraceInvalid("more steps than the limit")
            step = clean_step(raw, self.count, max_stdout=limits.max_stdout)
            self.count += 1
            if len(self.steps) == self.count - 1:  # nothing dropped yet
                size = stored_size(step)
                if self.kept_size + size <= limits.max_trace_bytes:
                    self.kept_size += size
                    self.steps.append(step)


_RUNNER_STATUSES = frozenset(
    {"ok", "exception", "step_limit", "time_limit", "memory_limit", "output_limit"}
)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "message": message, "line": None}


def _from_final(
    final: dict[str, Any],
    collector: _Collector,
    limits: Limits,
    wall_ms: float,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    status, result, stdout = final.get("status"), final.get("result"), final.get("stdout", "")
    if type(status) is not str or status not in _RUNNER_STATUSES:
        raise TraceInvalid("bad status")
    if result is not None and type(result) is not str:
        raise TraceInvalid("bad result")
    if type(stdout) is not str:
        raise TraceInvalid("bad stdout")
    error = clean_error(final.get("error"))
    if status == "memory_limit" and error is not None and not error["message"]:
        # CPython's MemoryError has no message: "MemoryError: (line 1)" says nothing.
        error["message"] = f"out of memory; a run may use {limits.memory_mb} MB"
    return make_trace(
        status=status,
        steps=collector.steps,
        stdout=storable(stdout[: limits.max_stdout]),
        result=storable(result[:MAX_RESULT]) if result is not None else None,
        error=error,
        wall_ms=wall_ms,
        truncated=final.get("truncated") is True,
        total_steps=collector.count,
        **(meta or {}),
    )


def _signal_name(returncode: int) -> str:
    """The signal that ended the process ("" if it exited); bwrap reports it as 128 + n."""
    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if not number:
        return ""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _assemble(
    collector: _Collector,
    *,
    timed_out: bool,
    returncode: int,
    cpu_s: float,
    stderr: bytes,
    limits: Limits,
    wall_ms: float,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The trace from what the runner sent and how its process ended (``meta``: make_trace's
    source, method and lm_calls for a coc run). Raises only SandboxUnavailable (the runner
    reported, before any user code, that it could not set the sandbox up)."""
    try:
        return _assemble_unchecked(
            collector, timed_out=timed_out, returncode=returncode, cpu_s=cpu_s, stderr=stderr,
            limits=limits, wall_ms=wall_ms, meta=meta,
        )  # fmt: skip
    except SandboxUnavailable:
        raise
    except Exception:  # a bug here must not leave the run unfinished: the program "crashed"
        log.exception("could not assemble a trace")
        return make_trace(
            status="crash",
            steps=collector.steps,
            error=_error("TraceInvalid", "The sandbox's answer could not be read."),
            wall_ms=wall_ms,
            total_steps=collector.count,
            **(meta or {}),
        )


def _assemble_unchecked(
    collector: _Collector,
    *,
    timed_out: bool,
    returncode: int,
    cpu_s: float,
    stderr: bytes,
    limits: Limits,
    wall_ms: float,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    steps = collector.steps
    meta = meta or {}

    def trace(status: str, error: dict[str, Any] | None, stdout: str = "") -> dict[str, Any]:
        return make_trace(
            status=status, steps=steps, stdout=stdout, error=error, wall_ms=wall_ms,
            total_steps=collector.count, **meta,
        )  # fmt: skip

    if collector.problem == "output_limit":
        return trace("output_limit", _error("OutputLimit", "The trace is larger than the limit."))
    invalid = "The program wrote something that is not a trace on the tracer's channel"
    if collector.problem == "invalid":
        return trace("crash", _error("TraceInvalid", f"{invalid}: {collector.reason}."))
    if collector.final is not None:
        try:
            return _from_final(collector.final, collector, limits, wall_ms, meta)
        except TraceInvalid as exc:
            message = f"{invalid}: a malformed final record ({exc})."
            return trace("crash", _error("TraceInvalid", message))
    stdout = "".join(step.get("stdout", "") for step in steps)[: limits.max_stdout]
    if timed_out:
        message = f"The program ran for {limits.wall_s:g} s of wall-clock time."
        return trace("time_limit", _error("TimeLimit", message), stdout)
    signame = _signal_name(returncode)
    # RLIMIT_CPU: SIGXCPU at the soft limit (the runner reports it itself), SIGKILL at the hard
    # one (a program that ignores SIGXCPU). Our own wall-clock kill is `timed_out` above.
    if cpu_s >= limits.cpu_s - 0.05 or signame in ("SIGKILL", "SIGXCPU"):
        message = f"The program used {limits.cpu_s} s of CPU time."
        return trace("time_limit", _error("TimeLimit", message), stdout)
    if collector.fatal and not collector.started:
        raise SandboxUnavailable(f"The sandbox could not start the program: {collector.fatal}")
    if signame:
        message = f"The program was killed by {signame}."
    else:
        message = f"The program exited with code {returncode}."
    detail = stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
    if detail:
        message += " " + " | ".join(detail)[:500]
    return trace("crash", _error("Crash", storable(message)), stdout)


def _check_bwrap_failure(returncode: int, stderr: bytes, collector: _Collector) -> None:
    """bubblewrap itself failed (no user namespaces...): that is a setup problem, not a crash.
    Once the runner said it starts the program, stderr is the program's: never a setup failure."""
    text = stderr.decode("utf-8", "replace")
    if collector.total == 0 and returncode == 1 and text.startswith("bwrap:"):
        detail = one_line(text)[:300]
        raise SandboxUnavailable(f"bubblewrap could not create the sandbox: {detail}")


@dataclass
class _Started:
    """A sandbox process started ahead of time, blocked on reading its one request."""

    proc: subprocess.Popen[bytes]
    pidfd: int | None
    info_r: int  # kept open until the run ends: bubblewrap must never write into a closed pipe
    sandboxed: bool
    tmp_mb: int


def _start(limits: Limits) -> _Started:
    sandboxed = mode() == "bwrap"
    info_r, info_w = os.pipe()
    runner_fd = None
    try:
        if sandboxed:
            _become_subreaper()
            runner_fd = _runner_fd()
            argv = _bwrap_argv(limits, info_w, runner_fd)
            env = dict(_BWRAP_ENV)
            fds: tuple[int, ...] = (info_w, runner_fd)
        else:  # the worker's own user runs it: its own copy of the code will do
            argv = [sys.executable, *_bootstrap(str(INSIDE))]
            env = dict(_RUNNER_ENV)
            fds = (info_w,)
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, pass_fds=fds, start_new_session=True,
            **(_user_kwargs() if sandboxed else {}),
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
    return _Started(proc, pidfd, info_r, sandboxed, limits.tmp_mb)


class _WarmPool:
    """A few sandboxes started in advance so a run does not wait for bubblewrap and the
    interpreter to start. Each process runs exactly one program and is never reused: a program
    cannot leave anything behind for the next one (or the next user).

    One long-lived thread starts them: bubblewrap's --die-with-parent ties each sandbox to the
    thread that started it (PR_SET_PDEATHSIG), so a short-lived starter thread would take its
    sandboxes down with it; this one ends only with the process, and so do they."""

    def __init__(self) -> None:
        self.idle: deque[_Started] = deque()
        self.wanted = threading.Condition()
        self.thread: threading.Thread | None = None

    def size(self) -> int:
        raw = os.environ.get("PLAYGROUND_SANDBOX_POOL", "1")
        return max(0, min(int(raw) if raw.isdigit() else 1, 8))

    def take(self, limits: Limits) -> _Started | None:
        with self.wanted:
            while self.idle:
                started = self.idle.popleft()
                usable = started.tmp_mb == limits.tmp_mb and started.sandboxed == (
                    mode() == "bwrap"
                )
                if usable and started.proc.poll() is None:
                    return started
                _discard(started)
        return None

    def refill(self) -> None:
        """Ask the starter thread to top the pool up (never delays the caller)."""
        if self.size() == 0:
            return
        with self.wanted:
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
                while len(self.idle) >= self.size():
                    self.wanted.wait()
            try:
                started = _start(Limits())
            except (OSError, SandboxUnavailable) as exc:
                log.warning("could not pre-start a sandbox: %s", exc)
                time.sleep(5)
                continue
            with self.wanted:
                self.idle.append(started)

    def drain(self) -> None:
        with self.wanted:
            while self.idle:
                _discard(self.idle.popleft())


def _discard(started: _Started) -> None:
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
    _reap_adopted(started.pidfd)
    os.close(started.info_r)


pool = _WarmPool()


def run_isolated(
    source: str,
    call: str | None,
    stdin: str,
    limits: Limits,
    lmulator: Lmulator | None = None,
) -> dict[str, Any]:
    """Run one program in a sandbox process of its own and return its validated trace; with
    ``lmulator``, in Chain of Code mode."""
    lm = (
        LMSession(lmulator, source, max_calls=limits.lm_calls, max_seconds=limits.lm_seconds)
        if lmulator is not None
        else None
    )
    started = pool.take(limits) or _start(limits)
    request = encode_request(
        source, call, stdin, limits, started.sandboxed, mode="one" if lm is None else "coc"
    )
    t0 = time.perf_counter()
    try:
        return _supervise(started.proc, request, limits, t0, lm)
    finally:
        _reap_adopted(started.pidfd)
        os.close(started.info_r)
        # Start the next sandbox only now: started earlier, it competes for the CPU with this run.
        pool.refill()


def _supervise(
    proc: subprocess.Popen[bytes],
    request: bytes,
    limits: Limits,
    t0: float,
    lm: LMSession | None = None,
) -> dict[str, Any]:
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    collector = _Collector(limits, lm)
    stderr = b""
    try:
        proc.stdin.write(request)
        if lm is None:
            proc.stdin.close()
        else:  # coc: the model's answers go back on this pipe, without ever blocking us
            proc.stdin.flush()
            os.set_blocking(proc.stdin.fileno(), False)
    except BrokenPipeError:
        pass
    # The runner stops the program at the limit itself and reports its steps; the kill is the
    # backstop for a program that keeps it from doing so.
    deadline = t0 + limits.wall_s + KILL_GRACE_S
    timed_out = False
    outbox = b""  # replies for the runner not yet written
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    open_streams = 2
    try:
        while open_streams:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=remaining):
                if key.data == "in":
                    try:
                        outbox = outbox[os.write(key.fd, outbox) :]
                    except BlockingIOError:
                        pass
                    except OSError:  # the runner is gone or closed its end
                        outbox = b""
                    if not outbox:
                        sel.unregister(key.fileobj)
                    continue
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                elif key.data == "out":
                    collector.feed(data)
                    if collector.problem is not None:
                        timed_out = False
                        open_streams = 0
                        break
                    if lm is not None and collector.lm_pending:
                        waited, replies = _ask_model(lm, collector)
                        # The model's time is not the program's: the wall clock waits for it.
                        # The program can forge requests (it can write on the protocol
                        # descriptor): that asks the model about its own code, and buys it at
                        # most Limits.lm_calls calls and lm_seconds of wall clock; its CPU
                        # limit is per process and never waits.
                        deadline += waited
                        if not outbox and not proc.stdin.closed:
                            sel.register(proc.stdin, selectors.EVENT_WRITE, "in")
                        outbox += replies
                elif len(stderr) < _MAX_STDERR:
                    stderr += data[: _MAX_STDERR - len(stderr)]
    except BaseException:  # e.g. the lmulator was interrupted: never leave the sandbox behind
        _kill(proc)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        raise
    finally:
        sel.close()
        if lm is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
    if timed_out or collector.problem is not None:
        _kill(proc)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    proc.stderr.close()
    wall_ms = (time.perf_counter() - t0) * 1000
    if not timed_out and collector.final is None:
        _check_bwrap_failure(proc.returncode, stderr, collector)
    return _assemble(
        collector, timed_out=timed_out, returncode=proc.returncode,
        cpu_s=usage.ru_utime + usage.ru_stime, stderr=stderr, limits=limits, wall_ms=wall_ms,
        meta=lm.meta() if lm is not None else None,
    )  # fmt: skip


def _ask_model(lm: LMSession, collector: _Collector) -> tuple[float, bytes]:
    """Answer the runner's pending requests: seconds spent, and the replies to write back. A
    request the program forged is answered like any other (it can only ask about itself)."""
    t0 = time.perf_counter()
    replies = bytearray()
    while collector.lm_pending:
        request, step = collector.lm_pending.popleft()
        status, text = lm.answer(request)
        if status == "ok" and 0 <= step < len(collector.steps):  # a dropped step stays dropped
            collector.steps[step]["by"] = "lm"
        replies += encode_reply(status, text)
    return time.perf_counter() - t0, bytes(replies)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill bubblewrap (our child, not yet reaped, so its pid cannot have been recycled); its
    --die-with-parent kills the sandbox's pid 1, and with it everything in the namespace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


class BatchSandbox:
    """One sandbox that runs many programs of ONE owner (a batch from the command line or an
    evaluation), each in a fresh process forked from a pre-imported zygote inside the sandbox.
    The zygote never runs user code and empties /tmp between programs; programs of different
    owners must never share one (use ``run_isolated`` for those)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.started: _Started | None = None
        self.buffer = bytearray()

    def _ensure(self) -> _Started:
        if self.started is not None and self.started.proc.poll() is None:
            return self.started
        self.close()
        started = _start(self.limits)
        if started.sandboxed and started.pidfd is None:  # bubblewrap never created the sandbox
            assert started.proc.stderr is not None
            try:
                started.proc.wait(5)
                detail = started.proc.stderr.read(_MAX_STDERR).decode("utf-8", "replace").strip()
            finally:
                _discard(started)
            raise SandboxUnavailable(f"bubblewrap could not create the sandbox: {detail[:300]}")
        header = encode_request("", None, "", self.limits, started.sandboxed, mode="batch")
        assert started.proc.stdin is not None
        started.proc.stdin.write(header)
        started.proc.stdin.flush()
        self.started, self.buffer = started, bytearray()
        return started

    def _read(self, fd: int, deadline: float) -> bool:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return False
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return False
        self.buffer += chunk  # a bytearray grows in place: linear in what arrives
        return True

    def run(self, source: str, call: str | None = None, stdin: str = "") -> dict[str, Any]:
        """Run one program of the batch; the trace is validated exactly as for a single run."""
        started = self._ensure()
        assert started.proc.stdin is not None
        assert started.proc.stdout is not None
        fd = started.proc.stdout.fileno()
        t0 = time.perf_counter()
        # The zygote enforces the wall clock; this is the backstop if the zygote itself hangs.
        deadline = t0 + self.limits.wall_s + KILL_GRACE_S + 3
        try:
            started.proc.stdin.write(
                encode_request(source, call, stdin, self.limits, started.sandboxed, None)
            )
            started.proc.stdin.flush()
            while (colon := self.buffer.find(b":")) < 0:
                if len(self.buffer) > 20 or not self._read(fd, deadline):
                    raise TimeoutError
            size = int(self.buffer[:colon])
            del self.buffer[: colon + 1]
            searched = size  # the done line follows the frame: search only what is new
            while len(self.buffer) < size or self.buffer.find(b"\n", searched) < 0:
                searched = max(size, len(self.buffer))
                if not self._read(fd, deadline):
                    raise TimeoutError
        except (TimeoutError, ValueError, OSError):
            self._kill()
            return make_trace(
                status="time_limit",
                steps=[],
                wall_ms=(time.perf_counter() - t0) * 1000,
                error=_error("TimeLimit", "The sandbox stopped answering."),
            )
        newline = self.buffer.find(b"\n", size)
        done_line = bytes(self.buffer[size:newline])
        collector = _Collector(self.limits)
        with memoryview(self.buffer) as view:
            for offset in range(0, size, 1 << 16):  # as a single run reads it: the same bounds
                with view[offset : min(size, offset + (1 << 16))] as chunk:
                    collector.feed(chunk)
        del self.buffer[: newline + 1]
        try:
            done = json.loads(done_line)["done"]
            returncode, timed_out = int(done["exit"]), bool(done["timed_out"])
            cpu_s = int(done["cpu_ms"]) / 1000
            if done.get("too_big"):
                collector.problem = collector.problem or "output_limit"
        except (ValueError, KeyError, TypeError):
            self._kill()
            return make_trace(
                status="crash",
                steps=collector.steps,
                error=_error("TraceInvalid", "The batch sandbox answered nonsense."),
            )
        return _assemble(
            collector, timed_out=timed_out, returncode=returncode, cpu_s=cpu_s, stderr=b"",
            limits=self.limits, wall_ms=(time.perf_counter() - t0) * 1000,
        )  # fmt: skip

    def _kill(self) -> None:
        if self.started is not None:
            _kill(self.started.proc)
            self.close()

    def close(self) -> None:
        """End the zygote (EOF on its requests) and reap everything."""
        if self.started is not None:
            _discard(self.started)
            self.started = None
