"""The seccomp filter is an allowlist, refuses by name what the security review listed, and has
no way around it: neither a user namespace nor bubblewrap's own (unfiltered) init process."""

from __future__ import annotations

import ast
import errno
import os
import platform
import subprocess

import pytest

from playground import sandbox
from playground.sandbox import Limits, jail

# System call numbers differ between architectures; the ones from 403 up are shared.
_NUMBERS = {
    "x86_64": {
        "splice": 275, "tee": 276, "vmsplice": 278, "sendfile": 40, "copy_file_range": 326,
        "rt_sigqueueinfo": 129, "kcmp": 312, "ioprio_get": 252,
    },
    "aarch64": {
        "splice": 76, "tee": 77, "vmsplice": 75, "sendfile": 71, "copy_file_range": 285,
        "rt_sigqueueinfo": 138, "kcmp": 272, "ioprio_get": 31,
    },
}  # fmt: skip
_SHARED = {"fsconfig": 431, "fspick": 433, "mount_setattr": 442, "open_tree": 428}
NUMBERS = {**_NUMBERS.get(platform.machine(), {}), **_SHARED}


def _errnos(calls: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, int]]:
    """Make each system call (by number, with harmless arguments) in the sandbox; its result
    and errno, as the program saw them."""
    source = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.syscall.restype = ctypes.c_long\n"
        "found = {}\n"
        f"for name, (number, *args) in {calls!r}.items():\n"
        "    ctypes.set_errno(0)\n"
        "    found[name] = (libc.syscall(number, *args), ctypes.get_errno())\n"
        "print(repr(found))\n"
    )
    trace = sandbox.run(source)
    assert trace["status"] == "ok", trace["error"]
    return ast.literal_eval(trace["stdout"])  # type: ignore[no-any-return]


@pytest.mark.skipif(platform.machine() not in _NUMBERS, reason="numbers for x86_64/aarch64")
def test_the_calls_the_review_named_are_refused_with_eperm() -> None:
    # Pipe splicing (Dirty Pipe and its kind), the new mount API, signals to other processes.
    names = ["splice", "vmsplice", "tee", "sendfile", "copy_file_range", "fsconfig", "fspick",
             "mount_setattr", "open_tree", "rt_sigqueueinfo", "kcmp"]  # fmt: skip
    found = _errnos({name: (NUMBERS[name], -1, 0, -1, 0, 0, 0) for name in names})
    assert found == dict.fromkeys(names, (-1, errno.EPERM))


@pytest.mark.skipif(platform.machine() not in _NUMBERS, reason="numbers for x86_64/aarch64")
def test_a_call_outside_the_allowlist_fails_as_if_the_kernel_lacked_it() -> None:
    # ioprio_get(IOPRIO_WHO_PROCESS, 0): harmless, and allowed by a denylist; and a number no
    # kernel has yet, standing for whatever later kernels add.
    found = _errnos({"ioprio_get": (NUMBERS["ioprio_get"], 1, 0), "future": (1000,)})
    assert found == {"ioprio_get": (-1, errno.ENOSYS), "future": (-1, errno.ENOSYS)}


def test_bubblewraps_unfiltered_init_is_out_of_reach() -> None:
    """bubblewrap's pid 1 runs without the filter: were /proc mounted, a program could open
    /proc/1/mem for writing (same user) and run its own code there, free of seccomp."""
    trace = sandbox.run(
        "import os\n"
        "for path in ('/proc/1/mem', '/proc/self/mem', '/dev/fd/0'):\n"
        "    try:\n"
        "        os.open(path, os.O_RDWR)\n"
        "        print(path, 'opened')\n"
        "    except OSError as exc:\n"
        "        print(path, type(exc).__name__)\n"
    )
    assert trace["stdout"].splitlines() == [
        "/proc/1/mem FileNotFoundError",
        "/proc/self/mem FileNotFoundError",
        "/dev/fd/0 FileNotFoundError",
    ]


def test_bubblewrap_alone_refuses_a_nested_user_namespace() -> None:
    """Without the runner (so without seccomp), a program in this bubblewrap cannot create a
    user namespace: the second wall, for a day the filter has a hole."""
    code = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.unshare(0x10000000), ctypes.get_errno())\n"  # CLONE_NEWUSER
    )
    info_r, info_w = os.pipe()
    runner_fd = jail.open_runner()
    try:
        argv = jail.bwrap_argv(Limits(), info_w, runner_fd)
        python = jail._python()
        argv = [*argv[: argv.index(python)], python, "-S", "-c", code]
        done = subprocess.run(
            argv, pass_fds=(info_w, runner_fd), capture_output=True, text=True,
            env=jail.BWRAP_ENV, timeout=30, check=False, **jail.user_kwargs(),
        )  # fmt: skip
    finally:
        for fd in (info_r, info_w, runner_fd):
            os.close(fd)
    assert done.returncode == 0, done.stderr
    result, err = done.stdout.split()
    assert result == "-1", done.stdout
    assert int(err) in {errno.ENOSPC, errno.EPERM}, done.stdout
