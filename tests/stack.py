"""The whole product started the way `make run` starts it, in a scratch directory, for tests
that need every process (the launcher's own test, end-to-end runs in a browser)."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import psycopg
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.typing import Origin

from playground.lib import paths


def stop(proc: subprocess.Popen[Any], grace: float = 15) -> None:
    """Ask a process to stop (SIGTERM); killed if it has not stopped within ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free now, never one this process handed out before: two calls in a row (a
    stack's web and model ports) can otherwise get the same number back from the kernel, and
    then whichever server binds first answers for both."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise AssertionError("no fresh free port in 50 tries")


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes whose argv or environment mentions ``text``."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline or text.encode() in environ:
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]
            found.append(f"{pid}: {shown}")
    return found


def children_of(pid: int) -> list[int]:
    """The pids of a live process's children (a prefork worker's pool processes)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


class Stack:
    """``limits_profile``: the table of limits the site runs under. Tests sign up users and
    start runs from 127.0.0.1 far faster than a person, so the load-test profile unless a test
    checks a limit (``None``: whatever the environment says, as under `make run`)."""

    def __init__(
        self,
        var_dir: Path,
        port: int,
        limits_profile: str | None = "load-test",
        *,
        sandbox_workers: int = 1,
        llm_workers: int = 2,
    ) -> None:
        self.var_dir, self.port = var_dir, port
        self.limits_profile = limits_profile
        self.sandbox_workers, self.llm_workers = sandbox_workers, llm_workers
        self.llm_port = free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.env: dict[str, str] = {}  # more environment for every process (set before start)

    def start(self, timeout: float = 120) -> float:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env.update(self.env)
        env.update(PLAYGROUND_VAR_DIR=str(self.var_dir), PLAYGROUND_PORT=str(self.port),
                   PLAYGROUND_LLM_PORT=str(self.llm_port),
                   PLAYGROUND_SANDBOX_WORKERS=str(self.sandbox_workers),
                   PLAYGROUND_LLM_WORKERS=str(self.llm_workers))  # fmt: skip
        if self.limits_profile is not None:
            env["PLAYGROUND_LIMITS_PROFILE"] = self.limits_profile
        t0 = time.monotonic()
        self.output = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "playground.launcher", "run"],
            cwd=paths.REPO_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.wait_for(re.escape(f"running at http://127.0.0.1:{self.port}/"), timeout)
        return time.monotonic() - t0

    def wait_for(self, pattern: str, timeout: float = 60, *, after: int = 0) -> None:
        """Read the launcher's output until a line (read now or before, from line ``after`` on:
        ``len(stack.output)`` at some moment waits for a line printed since) matches
        ``pattern``."""
        assert self.proc is not None
        assert self.proc.stdout is not None
        if any(re.search(pattern, line) for line in self.output[after:]):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line:
                self.output.append(line)
                if re.search(pattern, line) and len(self.output) > after:
                    return
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.05)
        raise AssertionError(
            f"no {pattern!r} in the launcher's output:\n" + "".join(self.output[-40:])
        )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def interrupt(self, timeout: float = 60) -> int:
        """What Ctrl-C in a terminal does: SIGINT to the launcher's foreground process group.
        The launcher's output is read while it stops, as a terminal would: unread, a full pipe
        would block the launcher's own printing, and with it its shutdown (a clean run's
        second stop took over 60 s once)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            self.drain()
            if time.monotonic() > deadline:
                tree = subprocess.run(
                    ["ps", "-o", "pid,stat,etime,args", "--forest", "-g", str(self.proc.pid)],
                    capture_output=True, text=True, check=False,
                ).stdout  # fmt: skip
                raise AssertionError(
                    f"the launcher did not stop within {timeout:g} s of Ctrl-C; still running:\n"
                    f"{tree}\nits last lines:\n" + "".join(self.output[-60:])
                )
            time.sleep(0.05)
        self.drain()
        return self.proc.returncode

    def drain(self) -> None:
        """Read what the launcher has printed so far (its output is read only when asked)."""
        assert self.proc is not None
        assert self.proc.stdout is not None
        while line := self.proc.stdout.readline():
            self.output.append(line)

    def pid_of(self, name: str) -> int:
        """The pid of a process the launcher started (its latest start, as the launcher's
        ``<name> started (pid=N)`` line says, read up to now)."""
        self.drain()
        found = [
            int(m.group(1))
            for line in self.output
            if (m := re.search(rf"\| {re.escape(name)} started \(pid=(\d+)\)", line))
        ]
        assert found, f"no start of {name} in the launcher's output"
        return found[-1]

    def sql(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        """Rows of a query on the stack's own database (the embedded PostgreSQL in its var
        dir), read from the test process."""
        with psycopg.connect(paths.embedded_database_url(self.var_dir), autocommit=True) as db:
            return db.execute(query, params).fetchall()

    def manage(self, code: str) -> str:
        """Run Python in ``manage.py shell`` against the stack's database; its output."""
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env.update(self.env, PLAYGROUND_VAR_DIR=str(self.var_dir))
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=paths.REPO_DIR, env=env, check=False, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode:
            raise AssertionError(f"manage.py shell failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def events(
        self, run_id: int, token: str, seconds: float = 120
    ) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """``sse_events`` on this stack's web port."""
        return sse_events(self.port, run_id, token, seconds)

    def watch_page(self, run_id: int, share: str, shown: list[str], seconds: float = 120) -> None:
        """``watch_page`` on this stack's web port."""
        watch_page(self.port, run_id, share, shown, seconds)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)


_TOKEN_OPEN = '<span hx-swap-oob="beforeend:#model-output">'
# The page's model box swapped whole, or a token appended to it, in the order they come.
_MODEL_TEXT = re.compile(
    r'(<pre id="model-output"[^>]*>.*?</pre>)|(' + re.escape(_TOKEN_OPEN) + r".*?</span>)",
    re.DOTALL,
)


def sse_events(
    port: int, run_id: int, token: str, seconds: float = 120
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """An API client on the run's Server-Sent Events, written as a client should be: after
    a lost connection or a refusal (a web process starting again) it reconnects, sending the
    last id it saw (``Last-Event-ID``). Yields each event's id, kind and data, until the
    run's end arrives or ``seconds`` pass (then it stops; the caller checks what it saw)."""
    base, last = f"http://127.0.0.1:{port}", None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        headers = {"Authorization": f"Bearer {token}"}
        if last is not None:
            headers["Last-Event-ID"] = str(last)
        try:
            with httpx.stream("GET", f"{base}/runs/{run_id}/events", headers=headers,
                              timeout=30) as stream:  # fmt: skip
                if stream.status_code != 200:
                    time.sleep(0.3)
                    continue
                event_id, kind, data = None, None, ""
                for line in stream.iter_lines():
                    if line.startswith("id: "):
                        event_id = int(line[4:])
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        data += line[6:]
                    elif line == "" and kind is not None:
                        if event_id is not None:
                            last = event_id
                            yield event_id, kind, json.loads(data or "{}")
                            if kind in ("done", "failed", "cancelled"):
                                return
                        event_id, kind, data = None, None, ""
        except httpx.HTTPError:
            time.sleep(0.3)


def watch_page(port: int, run_id: int, share: str, shown: list[str], seconds: float = 120) -> None:
    """A browser's websocket on the run's shared page: the model's text as the page builds
    it (the box swapped whole: the state sent on connecting, or emptied when the model
    starts again; each token appended), until the run's end arrives; ``shown`` gets the
    text. Reconnects (and starts again from the state) if closed."""
    url = f"ws://127.0.0.1:{port}/ws/runs/{run_id}/?share={share}"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with connect(url, origin=Origin(f"http://127.0.0.1:{port}")) as socket_:
                text = ""
                for message in socket_:
                    assert isinstance(message, str)
                    for whole, token in _MODEL_TEXT.findall(message):
                        if token:
                            text += html.unescape(token[len(_TOKEN_OPEN) : -len("</span>")])
                        else:
                            text = html.unescape(re.sub(r"^<pre[^>]*>|</pre>$", "", whole))
                    if 'id="run-live-end"' in message:
                        shown.append(text)
                        return
        except (ConnectionClosed, OSError):
            time.sleep(0.3)


def model_text(events: list[tuple[int, str, dict[str, Any]]]) -> str:
    """The model's text as an API client on the Server-Sent Events builds it: its tokens since
    the last ``restarted`` event (the model started again after its worker died)."""
    text = ""
    for _, kind, data in events:
        if kind == "restarted":
            text = ""
        elif kind == "token":
            text += data["text"]
    return text


@contextmanager
def web_process(
    env: dict[str, str] | None = None,
    *,
    app: tuple[Path, str] | None = None,
    cpus: str | None = None,
    log: Path | None = None,
    timeout: float = 90,
    via_launcher: bool = False,
) -> Iterator[tuple[int, int]]:
    """One web server as the launcher starts it (its own argv: uvicorn serving
    ``playground.asgi:application``) on a free port, on this process's database (the test
    database under pytest), answering ``/healthz``; yields its port and pid, and stops it after.
    ``env``: more environment; ``app``: a directory and ``module:attribute`` of another ASGI
    application to serve in its place; ``cpus``: pinned to those cores (``taskset -c``);
    ``log``: where its output goes (shown if it fails to start); ``via_launcher``: started as
    the container image starts it, ``python -m playground.launcher serve web``."""
    from django.db import connection

    from playground.launcher import processes

    port = free_port()
    argv = processes("127.0.0.1", port, model=False)["web"]
    if via_launcher:
        argv = [sys.executable, "-m", "playground.launcher", "serve", "web",
                "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    if app is not None:
        where = argv.index("playground.asgi:application")
        argv[where : where + 1] = ["--app-dir", str(app[0]), app[1]]
    if cpus is not None:
        argv = ["taskset", "-c", cpus, *argv]
    full_env = {
        **os.environ,
        "DATABASE_URL": paths.database_url(connection.settings_dict),
        "PLAYGROUND_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONPATH": str(paths.REPO_DIR),
        **(env or {}),
    }
    with (log or Path(os.devnull)).open("w") as out:
        proc = subprocess.Popen(argv, cwd=paths.REPO_DIR, env=full_env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                shown = log.read_text()[-3000:] if log is not None else "(no log kept)"
                raise RuntimeError(f"the web server did not start:\n{shown}")
            time.sleep(0.2)
        yield port, proc.pid
    finally:
        stop(proc)


@contextmanager
def running_stack() -> Iterator[Stack]:
    """A Stack in a fresh directory; everything it started is killed afterwards."""
    # A short path: unix socket names are limited to 107 bytes.
    with tempfile.TemporaryDirectory(prefix="pgl-") as tmp:
        stack = Stack(Path(tmp), free_port())
        try:
            yield stack
        finally:
            # Ctrl-C first, as a user would: workers then close their pre-started sandboxes.
            if stack.proc is not None and stack.proc.poll() is None:
                with suppress(AssertionError):  # it did not stop: killed below
                    stack.interrupt(timeout=30)
            stack.kill()
            for line in processes_mentioning(tmp):
                os.kill(int(line.split(":")[0]), signal.SIGKILL)


@contextmanager
def serving_stack(*, model: bool) -> Iterator[Stack]:
    """The whole product started and ready: web, the sandbox and llm workers and, with
    ``model``, the embedded model server."""
    with running_stack() as stack:
        stack.start()
        for worker in ("sandbox", "llm"):
            stack.wait_for(rf"{worker}@\S+ ready\.")
        if model:
            stack.wait_for(r"Uvicorn running on http://127\.0\.0\.1:" + str(stack.llm_port))
        # The site itself answers on its port (not another server that took it first, which
        # would fail every test of the session with a 404 far from the cause).
        status, text = stack.get("/healthz")
        assert status == 200, (status, text[:300], "".join(stack.output[-40:]))
        yield stack
