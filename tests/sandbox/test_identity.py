"""Who the sandboxed program is, and what it can reach of the worker that started it.

A worker started as root hands each sandbox to the dedicated account ``playground-sandbox``. A
worker that cannot switch users (a non-root ``make run``, a container with every capability
dropped) runs bubblewrap as itself: then only the namespaces and the seccomp filter stand between
the program and the worker's files, secrets and processes. The second test starts the real
sandbox launcher that way, as a throwaway unprivileged account, and lets hostile programs try.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from playground.lib.accounts import ensure_system_user
from playground.sandbox import Limits, jail, spawn
from playground.sandbox.warm_pool import pool

REPO = Path(__file__).resolve().parents[2]
WORKER_ACCOUNT = "playground-test-worker"
SECRET = f"worker-secret-{uuid.uuid4().hex}"


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            children = (task / "children").read_text().split()
            found += map(int, children)
            todo += map(int, children)
    return found


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])  # the real uid
    raise AssertionError(f"no Uid line for {pid}")


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root worker can switch to another account")
def test_a_root_worker_runs_every_sandbox_process_as_the_sandbox_account() -> None:
    pool.drain()
    account = pwd.getpwnam(jail.SANDBOX_USER)
    assert account.pw_uid != 0
    started = spawn.start(Limits())  # bubblewrap, its init and the runner, waiting for work
    try:
        deadline = time.monotonic() + 5
        while len(pids := [started.proc.pid, *_descendants(started.proc.pid)]) < 3:
            assert time.monotonic() < deadline, pids  # the runner is the third
            time.sleep(0.01)
        assert {_uid(pid) for pid in pids} == {account.pw_uid}
    finally:
        spawn.discard(started)


# Each program gathers what it can and prints it; the test then looks for the secret anywhere in
# the traces, and checks that each probe really ran (status ok, the expected shape).
def _programs(var: Path) -> dict[str, str]:
    worker_pid = "WORKER_PID"  # the stand-in worker puts its own pid in
    paths = [
        str(var / "secret_key"), str(var.parent / ".env"), str(var / "run" / "redis.sock"),
        f"/proc/{worker_pid}/environ", f"/proc/{worker_pid}/cmdline",
        f"/proc/{worker_pid}/root{var}/secret_key", f"/proc/1/root{var}/secret_key",
        f"/proc/2/root{var}/secret_key", "/proc/1/environ", "/proc/1/cmdline",
    ]  # fmt: skip
    # The embedded PostgreSQL's and Redis's sockets, and one in the abstract namespace.
    sockets = [str(var / "run" / ".s.PGSQL.5432"), str(var / "run" / "redis.sock")]
    sockets.append("\0playground-test-worker")
    return {
        "files": (
            "found = {}\n"
            f"for path in {paths!r}:\n"
            "    try:\n"
            "        with open(path, 'rb') as f:\n"
            "            found[path] = 'READ ' + f.read().decode('latin-1')\n"
            "    except OSError as exc:\n"
            "        found[path] = type(exc).__name__\n"
            f"for path in {[str(var), str(var.parent)]!r}:\n"
            "    try:\n"
            "        found[path] = 'LISTED ' + ' '.join(__import__('os').listdir(path))\n"
            "    except OSError as exc:\n"
            "        found[path] = type(exc).__name__\n"
            "print(repr(found))\n"
        ),
        "processes": (
            "import os\n"
            "found = {}\n"
            "for path in ('/proc', '/proc/1/mem', '/proc/self/fd', '/sys', '/dev/fd/0'):\n"
            "    try:\n"
            "        found[path] = 'LISTED ' + ' '.join(os.listdir(path))\n"
            "    except OSError as exc:\n"
            "        found[path] = type(exc).__name__\n"
            "print(repr(found))\n"
        ),
        "descriptors": (
            "import os, select, stat\n"
            "def probe(fd):\n"
            "    try:\n"
            "        mode = os.fstat(fd).st_mode\n"
            "    except OSError:\n"
            "        return None\n"
            "    try:\n"
            "        ready = select.select([fd], [], [], 0)[0]\n"
            "        data = os.read(fd, 4096) if ready else 'not ready'\n"
            "    except OSError as exc:\n"
            "        data = type(exc).__name__\n"
            "    return (stat.S_ISSOCK(mode), repr(data))\n"
            "fds = {fd: probe(fd) for fd in range(1024)}\n"
            "print(repr({fd: found for fd, found in fds.items() if found}))\n"
        ),
        "sockets": (
            "import socket\n"
            "found = {}\n"
            f"for path in {sockets!r}:\n"
            "    try:\n"
            "        s = socket.socket(socket.AF_UNIX)\n"
            "        s.connect(path)\n"
            "        found[path] = 'CONNECTED'\n"
            "    except OSError as exc:\n"
            "        found[path] = type(exc).__name__\n"
            "print(repr(found))\n"
        ),
        "ptrace-and-namespaces": (
            "import ctypes\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "print('attach-1', libc.ptrace(16, 1, 0, 0))\n"
            "print('attach-parent', libc.ptrace(16, __import__('os').getppid(), 0, 0))\n"
            "print('unshare-user', libc.unshare(0x10000000))\n"
            "print('unshare-mount', libc.unshare(0x00020000))\n"
        ),
    }


def _code_copy(into: Path) -> Path:
    """The sandbox code and pyseccomp, where the worker account can read them (the checkout and
    the virtual environment may sit in a home directory it cannot enter)."""
    app = into / "app"
    shutil.copytree(REPO / "playground" / "sandbox", app / "playground" / "sandbox")
    (app / "playground" / "lib").mkdir()
    for name in ("__init__.py", "accounts.py", "paths.py", "process_metrics.py"):
        shutil.copy(REPO / "playground" / "lib" / name, app / "playground" / "lib" / name)
    (app / "playground" / "__init__.py").write_text("")
    spec = importlib.util.find_spec("pyseccomp")
    assert spec is not None
    assert spec.origin is not None
    shutil.copy(spec.origin, app / "pyseccomp.py")
    # The sandbox times its runs for Prometheus (lib/process_metrics.py).
    metrics = importlib.util.find_spec("prometheus_client")
    assert metrics is not None
    assert metrics.origin is not None
    shutil.copytree(Path(metrics.origin).parent, app / "prometheus_client")
    shutil.copy(Path(__file__).with_name("unprivileged_worker.py"), app / "worker.py")
    return app


@pytest.fixture
def worker_home() -> Iterator[tuple[Path, pwd.struct_passwd | None]]:
    """A private directory for the stand-in worker: its code, var/ (secret_key, the databases'
    socket directory) and .env, all owned by the account it runs as."""
    account = ensure_system_user(WORKER_ACCOUNT) if os.geteuid() == 0 else None
    home = Path(tempfile.mkdtemp(prefix="pg-worker-"))  # 0700
    try:
        _code_copy(home)
        var = home / "var"
        (var / "run").mkdir(parents=True)
        (var / "secret_key").write_text(SECRET)
        (var / "secret_key").chmod(0o600)
        (home / ".env").write_text(f"PLAYGROUND_SECRET_KEY={SECRET}\n")
        (home / ".env").chmod(0o600)
        var.chmod(0o700)
        if account is not None:
            for path in [home, *home.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
        yield home, account
    finally:
        shutil.rmtree(home, ignore_errors=True)


# As a container engine mounts /proc/sys by default (compose's systempaths=unconfined lifts it).
_READ_ONLY_PROC_SYS = [
    "unshare", "--mount", "--propagation", "private", "sh", "-c",
    'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"', "sh",
]  # fmt: skip


def _run_worker(
    home: Path, account: pwd.struct_passwd | None, programs: Any, read_only_proc_sys: bool
) -> dict[str, Any]:
    python = "/usr/bin/python3"
    command = [python, "-s", str(home / "app" / "worker.py"), f"--token={SECRET}"]
    if account is not None:
        # As a container with every capability dropped and no_new_privs would start it.
        command = [
            "setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
            "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
            *command,
        ]  # fmt: skip
    if read_only_proc_sys:
        command = [*_READ_ONLY_PROC_SYS, *command]
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(home / "app"),
        "PLAYGROUND_VAR_DIR": str(home / "var"),
        "PLAYGROUND_SECRET_KEY": SECRET,
        "DATABASE_URL": f"postgresql://playground:{SECRET}@/playground?host={home}/var/run",
        "PLAYGROUND_SANDBOX_POOL": "0",
    }
    done = subprocess.run(
        command, input=json.dumps(programs), capture_output=True, text=True, env=env,
        cwd=home, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "read_only_proc_sys",
    [
        False,
        pytest.param(True, marks=pytest.mark.skipif(os.geteuid() != 0, reason="mounts as root")),
    ],
    ids=["host", "read-only-proc-sys"],
)
def test_an_unprivileged_worker_keeps_its_files_secrets_and_processes_from_the_program(
    worker_home: tuple[Path, pwd.struct_passwd | None], read_only_proc_sys: bool
) -> None:
    home, account = worker_home
    var = home / "var"
    report = _run_worker(home, account, _programs(var), read_only_proc_sys)
    own = report["own"]
    # bubblewrap's --disable-userns where it works; without a writable /proc/sys it cannot,
    # and the sandbox still runs (seccomp alone refuses user namespaces: see the last probe).
    knows_it = (
        "--disable-userns"
        in subprocess.run(
            ["bwrap", "--help"], capture_output=True, text=True, check=False
        ).stdout.split()
    )
    assert own["userns_wall"] is (knows_it and not read_only_proc_sys)
    # The secrets are there for the taking, for the worker's own user:
    assert own["euid"] != 0
    assert not own["sandbox_account"]
    if account is not None:
        assert own["euid"] == account.pw_uid
    assert own["reads_secret_key"] == SECRET
    assert SECRET in own["reads_env_file"]
    assert SECRET in own["reads_own_environ"]
    assert SECRET in own["reads_own_cmdline"]

    traces = report["traces"]
    for name, trace in traces.items():
        assert trace["status"] == "ok", (name, trace["error"], trace["stdout"][-500:])
        assert SECRET not in json.dumps(trace), name
    outputs = {name: eval(trace["stdout"]) for name, trace in traces.items()  # noqa: S307
               if name != "ptrace-and-namespaces"}  # fmt: skip
    # Not one worker file, socket or /proc path of the worker is there to open or list.
    assert set(outputs["files"].values()) == {"FileNotFoundError"}, outputs["files"]
    # No /proc at all: neither the worker's processes nor bubblewrap's own init (which runs
    # without the seccomp filter: writing its memory through /proc/1/mem would be a way out).
    assert set(outputs["processes"].values()) == {"FileNotFoundError"}, outputs["processes"]
    # Descriptors: standard output (/dev/null), standard error and the protocol pipe; nothing
    # inherited from the worker, no socket.
    assert set(outputs["descriptors"]) <= {1, 2, 3}, outputs["descriptors"]
    assert not any(is_socket for is_socket, _ in outputs["descriptors"].values())
    assert set(outputs["sockets"].values()) == {"PermissionError"}, outputs["sockets"]
    assert traces["ptrace-and-namespaces"]["stdout"].split("\n")[:4] == [
        "attach-1 -1", "attach-parent -1", "unshare-user -1", "unshare-mount -1"
    ]  # fmt: skip
