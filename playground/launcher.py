"""The run command behind `make run` and `make test`.

    python -m playground.launcher run          # services, migrate, library, web, workers, beat
    python -m playground.launcher exec -- CMD  # services around one command (the test suite)
    python -m playground.launcher services     # only PostgreSQL and Redis, until Ctrl-C

``DATABASE_URL`` / ``REDIS_URL`` in the environment select external servers; when unset the
embedded ones are started (or reused when already listening). A process of the product that dies
is started again after a pause that grows while it keeps dying (``Supervisor``), and the others
keep running; Ctrl-C or SIGTERM stops everything started here.

An entry point, not a helper: it sits at the top of the package (beside ``asgi.py`` and
``celery.py``), outside ``lib/``, because it reaches into ``llm`` (the embedded model server) and
starts every process; nothing in the product imports it.
"""

from __future__ import annotations

import argparse
import functools
import logging
import multiprocessing
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from honcho.manager import Manager
from honcho.printer import Message
from honcho.process import Process

from playground.lib import paths
from playground.local_services import EmbeddedPostgres, EmbeddedRedis, Service, ServiceError

log = logging.getLogger("playground.launcher")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        sys.exit(f"{name} must be an integer, got {raw!r}")


@contextmanager
def embedded_services() -> Iterator[None]:
    """Start embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL (or their ``_FILE`` forms,
    settings.py) are set; stop them after."""
    base = paths.var_dir()
    wanted: list[tuple[str, str, Service, str]] = [
        ("DATABASE_URL", "PostgreSQL", EmbeddedPostgres(base), paths.embedded_database_url(base)),
        ("REDIS_URL", "Redis", EmbeddedRedis(base), paths.embedded_redis_url(base)),
    ]
    started: list[Service] = []
    try:
        for variable, label, service, url in wanted:
            if os.environ.get(variable) or os.environ.get(f"{variable}_FILE"):
                continue
            t0 = time.monotonic()
            service.start()
            started.append(service)
            how = "reused" if service.reused else f"started in {time.monotonic() - t0:.1f} s"
            print(f"{label} (embedded, {how}): {url}", flush=True)
        yield
    finally:
        for service in reversed(started):
            service.stop()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C so `kill PID` also stops the services in order."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], check=True, cwd=paths.REPO_DIR)  # noqa: S603


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def processes(host: str, port: int, *, model: bool = True) -> dict[str, list[str]]:
    """The long-running processes of the product (the Procfile, as argv lists); ``model``: with
    the embedded model server unless PLAYGROUND_EMBEDDED_LLM=off."""
    py = sys.executable
    cores = os.cpu_count() or 2
    celery = [py, "-m", "celery", "-A", "playground", "worker", "--loglevel", "INFO"]
    extra: dict[str, list[str]] = {}
    if model and os.environ.get("PLAYGROUND_EMBEDDED_LLM", "on") != "off":
        from playground.llm.embedded import EmbeddedModelMissing, server_argv

        try:
            extra["llm-server"] = server_argv()
        except EmbeddedModelMissing as exc:
            print(f"The embedded model will not start: {exc}", flush=True)
    return extra | {
        "web": [
            py,
            "-m",
            "uvicorn",
            "playground.asgi:application",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(_env_int("PLAYGROUND_WEB_WORKERS", 1)),
            "--proxy-headers",
            "--timeout-graceful-shutdown",
            "5",
            "--no-server-header",
            # Model text arrives a few bytes per message: compressing each one costs the web
            # process more CPU than it saves on the wire.
            "--ws-per-message-deflate",
            "false",
        ],
        "worker-sandbox": [
            *celery,
            "-Q",
            "sandbox",
            "-n",
            "sandbox@%h",
            "--pool",
            "prefork",
            "--concurrency",
            str(_env_int("PLAYGROUND_SANDBOX_WORKERS", cores)),
        ],
        # Also the `default` queue: periodic and unrouted tasks (short, waiting on the database).
        "worker-llm": [
            *celery,
            "-Q",
            "llm,default",
            "-n",
            "llm@%h",
            "--pool",
            "threads",
            "--concurrency",
            str(_env_int("PLAYGROUND_LLM_WORKERS", 16)),
        ],
        # Evaluation items (threads: each waits on the model and on the sandbox queue).
        "worker-batch": [
            *celery,
            "-Q",
            "batch",
            "-n",
            "batch@%h",
            "--pool",
            "threads",
            "--concurrency",
            str(_env_int("PLAYGROUND_BATCH_WORKERS", 8)),
        ],
        # The scheduler: sends the periodic tasks of CELERY_BEAT_SCHEDULE (exactly one per site);
        # its state file is CELERY_BEAT_SCHEDULE_FILENAME, under the var dir.
        "beat": [py, "-m", "celery", "-A", "playground", "beat", "--loglevel", "INFO"],
    }


# The processes that count figures of their own for Prometheus (playground/lib/process_metrics.py).
# Each kind's processes share a directory (prometheus-client's multiprocess mode), so that one
# scrape sees all of them: uvicorn's workers, a prefork worker's pool.
COUNTING = ("web", "worker-sandbox", "worker-llm", "worker-batch")


def metrics_dir(name: str) -> Path:
    """The directory of the figures of ``name``'s processes: PROMETHEUS_MULTIPROC_DIR when the
    operator chose one, else under the var dir."""
    chosen = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(chosen) if chosen else paths.var_dir() / "metrics" / name


def fresh_metrics_dir(path: Path) -> Path:
    """``path``, created, without the files that processes of an earlier start left there:
    their pids may be anyone's now, and their totals belong to a start that is over (Prometheus
    takes a counter that starts again from zero as a restart)."""
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink(missing_ok=True)
    return path


# A process that dies is started again after BACKOFF_S[0] seconds, doubling at each death in a
# row up to BACKOFF_S[1]; one that ran STABLE_S seconds before dying starts again from the first.
BACKOFF_S = (1.0, 30.0)
STABLE_S = 60.0


def describe_exit(returncode: int) -> str:
    """How a process ended, in words: a signal by name (a shell reports its child's death by
    signal N as exit status 128 + N), else its exit status."""
    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if number:
        with suppress(ValueError):
            return f"killed by {signal.Signals(number).name}"
    return f"exit status {returncode}"


def _default_signals() -> None:
    """In the child, before its command starts: SIGINT and SIGTERM back to their defaults (the
    wrapper ignores them, and an ignored signal stays ignored across exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class SupervisedProcess(Process):
    """One of honcho's processes that is started again when it dies, after a backoff, until the
    site stops (``stopping``), instead of ending the site: under `make run` a killed worker (an
    out-of-memory kill, a SIGKILL) costs its own work, which the reaper sends again, not every
    other process."""

    def __init__(self, cmd: str, *, stopping: Any, **kwargs: Any) -> None:
        super().__init__(cmd, **kwargs)
        self.stopping = stopping

    def run(self, events: Any = None, ignore_signals: bool = False) -> None:
        self._events = events
        if ignore_signals:  # as honcho's: the manager stops the child, never this wrapper
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        deaths = 0
        while True:
            started = time.monotonic()
            self._child = self._child_ctor(
                self.cmd, env=self.env, cwd=self.cwd, preexec_fn=_default_signals
            )
            self._send_message({"pid": self._child.pid}, type="start")
            if self.stopping.is_set():  # the site began stopping while this one started
                self._kill_group(signal.SIGTERM)
            for line in iter(self._child.stdout.readline, b""):
                if not self.quiet:
                    self._send_message(line)
            self._child.stdout.close()
            self._child.wait()
            returncode = self._child.returncode
            if self.stopping.is_set():
                break
            # What the dead process left behind in its group (a prefork worker's pool children)
            # goes with it: the new one starts its own.
            self._kill_group(signal.SIGKILL)
            ran = time.monotonic() - started
            deaths = 1 if ran >= STABLE_S else deaths + 1
            delay = min(BACKOFF_S[1], BACKOFF_S[0] * 2 ** (deaths - 1))
            self._say(
                f"{self.name} died ({describe_exit(returncode)}) after {ran:.0f} s; "
                f"starting it again in {delay:g} s (death {deaths} in a row)\n"
            )
            if self.stopping.wait(delay):
                break
        self._send_message({"returncode": returncode}, type="stop")

    def _kill_group(self, signum: int) -> None:
        assert self._child is not None
        with suppress(OSError):
            os.killpg(self._child.pid, signum)

    def _say(self, text: str) -> None:
        if self._events is not None:
            self._events.put(Message("line", text, self._clock.now(), "system", None))


class Supervisor(Manager):
    """honcho's manager, but a process that dies is started again (``SupervisedProcess``)
    rather than stopping every other one; Ctrl-C or SIGTERM still stops them all."""

    def __init__(self) -> None:
        super().__init__()
        self.stopping = multiprocessing.Event()
        self._process_ctor = functools.partial(SupervisedProcess, stopping=self.stopping)

    def terminate(self) -> None:
        self.stopping.set()
        super().terminate()

    def kill(self) -> None:
        self.stopping.set()
        super().kill()


def _announce_when_up(host: str, port: int, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                break
        except OSError:
            stop.wait(0.2)
    else:
        return
    shown = f"[{host}]" if ":" in host else host
    print(
        f"\n  The playground is running at http://{shown}:{port}/  (Ctrl-C stops it)"
        f"\n  Its figures for Prometheus (queues, runs, models, requests, tasks): "
        f"http://{shown}:{port}/metrics\n",
        flush=True,
    )


def cmd_run(args: argparse.Namespace) -> int:
    """`make run`: the whole product with embedded defaults."""
    host = os.environ.get("PLAYGROUND_HOST", "127.0.0.1")
    port = _env_int("PLAYGROUND_PORT", 8000)
    if not _port_free(host, port):
        print(f"Port {port} on {host} is in use: stop what holds it or set PLAYGROUND_PORT.")
        return 1
    with _sigterm_as_interrupt(), embedded_services():
        _manage("migrate", "--noinput", "--verbosity", "0")
        _manage("load_library")
        manager = Supervisor()
        # One directory for every process of this host: the web process's /metrics shows the
        # workers' figures too, so the workers open no port of their own (three could not share
        # one, and a scrape of both would count them twice).
        counting = {
            **os.environ,
            "PROMETHEUS_MULTIPROC_DIR": str(fresh_metrics_dir(metrics_dir("run"))),
            "PLAYGROUND_WORKER_METRICS_PORT": "",
        }
        for name, argv in processes(host, port).items():
            # exec: the process honcho starts (and names by pid) is the program, not a shell
            # waiting on it, so a signal to that pid reaches the program.
            manager.add_process(
                name, f"exec {shlex.join(argv)}", cwd=str(paths.REPO_DIR),
                env=counting if name in COUNTING else None,
            )  # fmt: skip
        stop = threading.Event()
        threading.Thread(target=_announce_when_up, args=(host, port, stop), daemon=True).start()
        try:
            # Handles SIGINT/SIGTERM itself: terminates every process, then kills after 5 s.
            manager.loop()
        finally:
            stop.set()
        return manager.returncode or 0


def cmd_exec(args: argparse.Namespace) -> int:
    """Run one command with the services up (make test runs pytest this way)."""
    if not args.command:
        print("exec needs a command after --")
        return 2
    with _sigterm_as_interrupt(), embedded_services():
        return subprocess.run(args.command, check=False).returncode  # noqa: S603


def cmd_serve(args: argparse.Namespace) -> int:
    """Become one of the product's processes, with the argv `run` gives it (the container image's
    command: the same web server flags as `make run`, by construction). No embedded services."""
    argv = processes(args.host, args.port, model=args.process == "llm-server").get(args.process)
    if argv is None:
        print(f"No process {args.process!r} here (PLAYGROUND_EMBEDDED_LLM=off?)", file=sys.stderr)
        return 2
    if args.process in COUNTING:
        # Emptied before the process starts, while nothing writes there yet.
        path = fresh_metrics_dir(metrics_dir(args.process))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    sys.stdout.flush()
    os.execv(argv[0], argv)  # noqa: S606


def cmd_services(args: argparse.Namespace) -> int:
    """Keep only PostgreSQL and Redis running, for `pytest` or `manage.py` from another shell."""
    with _sigterm_as_interrupt(), embedded_services():
        print("Services are up; Ctrl-C stops them.", flush=True)
        signal.pause()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m playground.launcher")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="start the whole product").set_defaults(func=cmd_run)
    p_exec = sub.add_parser("exec", help="run a command with the services up")
    p_exec.add_argument("command", nargs=argparse.REMAINDER)
    p_exec.set_defaults(func=cmd_exec)
    sub.add_parser("services", help="only PostgreSQL and Redis").set_defaults(func=cmd_services)
    p_serve = sub.add_parser("serve", help="become one process of the product (an image's command)")
    p_serve.add_argument(
        "process", choices=["web", "worker-sandbox", "worker-llm", "worker-batch", "beat",
                            "llm-server"],
    )  # fmt: skip
    p_serve.add_argument("--host", default=os.environ.get("PLAYGROUND_HOST", "127.0.0.1"))
    p_serve.add_argument("--port", type=int, default=_env_int("PLAYGROUND_PORT", 8000))
    p_serve.set_defaults(func=cmd_serve)
    args = parser.parse_args(argv)
    if getattr(args, "command", None) and args.command[0] == "--":
        args.command = args.command[1:]
    try:
        return int(args.func(args))
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except subprocess.CalledProcessError as exc:
        print(f"error: {shlex.join(map(str, exc.cmd))} failed with code {exc.returncode}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
