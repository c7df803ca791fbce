"""The jail: what walls a sandboxed program runs within, and how bubblewrap is asked for them.

An unprivileged account (never root; when the worker itself is not root, that same account, see
test_identity.py), bubblewrap namespaces with a read-only /usr and no /etc, /proc, project tree
or sockets, no nested user namespaces, an empty environment (also for bubblewrap's own pid 1),
and the runner with its seccomp allowlist, shipped as one in-memory archive. Its own file so
that "how is a program jailed" reads in one place; starting and ending a jailed process is
spawn.py, reading what it answers is collect.py.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

from playground.lib.accounts import ensure_system_user
from playground.sandbox.limits import Limits
from playground.sandbox.setting import read_setting

log = logging.getLogger(__name__)

SANDBOX_USER = "playground-sandbox"
INSIDE = Path(__file__).resolve().parent / "inside"
# bubblewrap's own pid 1 keeps the environment it was started with: give it nothing worth reading.
BWRAP_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
RUNNER_ENV = {"PYTHONHASHSEED": "0", "PYTHONUTF8": "1", "LC_ALL": "C.UTF-8", "PATH": "/usr/bin"}


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be set up on this machine; the message says what is missing."""


class SandboxRefused(SandboxUnavailable):
    """This process may not start a sandbox (``forbid``): untrusted code runs only on the
    sandbox queue's workers. A caller that gets this sends the work there instead."""


_FORBIDDEN: list[str] = []  # why this process may not start a sandbox, once ``forbid`` is called


def forbid(why: str) -> None:
    """From now on this process (and the children it forks) refuses to start a sandbox: the web
    process and every worker kind but the sandbox queue's call it as they start."""
    _FORBIDDEN[:] = [why]


def forbidden() -> str | None:
    """Why this process may not start a sandbox, or None when it may."""
    return _FORBIDDEN[0] if _FORBIDDEN else None


def check_allowed() -> None:
    """Raise SandboxRefused in a process that may not start a sandbox."""
    if _FORBIDDEN:
        raise SandboxRefused(f"This process may not run a sandbox ({_FORBIDDEN[0]}).")


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


def open_runner() -> int:
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


def bootstrap(path: str) -> list[str]:
    """Interpreter arguments that import the runner from ``path`` (the archive, or in
    unsafe-local mode the project's own directory) and start it."""
    code = f"import sys; sys.path[:0] = [{path!r}]; import runner; runner.main()"
    return ["-s", "-S", "-B", "-P", "-c", code]


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
            [bwrap, "--help"], capture_output=True, text=True, timeout=10, env=BWRAP_ENV
        ).stdout.split()
        if "--disable-userns" not in known:
            return ()
        probe = subprocess.run(  # noqa: S603 - fixed argv
            [bwrap, "--unshare-all", *_DISABLE_USERNS, *_system_binds(), _python(), "-S", "-c", ""],
            capture_output=True, text=True, timeout=10, env=BWRAP_ENV, **user_kwargs(),
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


def bwrap_argv(limits: Limits, info_fd: int, runner_fd: int) -> list[str]:
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
    for key, value in RUNNER_ENV.items():
        argv += ["--setenv", key, value]
    argv += ["--info-fd", str(info_fd), _python(), *bootstrap(_RUNNER_ARCHIVE)]
    return argv


def user_kwargs() -> dict[str, Any]:
    account = _sandbox_account()
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
