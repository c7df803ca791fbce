"""`make run`'s launcher: starts everything, serves the library, stops every process on Ctrl-C,
and a second start comes back quickly with the same data."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from playground.lib import paths

pytestmark = pytest.mark.slow


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes_mentioning(text: str) -> list[str]:
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


class Stack:
    def __init__(self, var_dir: Path, port: int) -> None:
        self.var_dir, self.port = var_dir, port
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 120) -> float:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env.update(PLAYGROUND_VAR_DIR=str(self.var_dir), PLAYGROUND_PORT=str(self.port),
                   PLAYGROUND_SANDBOX_WORKERS="1", PLAYGROUND_LLM_WORKERS="2")  # fmt: skip
        t0 = time.monotonic()
        self.output = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "playground.lib.launcher", "run"],
            cwd=paths.REPO_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.wait_for(re.escape(f"running at http://127.0.0.1:{self.port}/"), timeout)
        return time.monotonic() - t0

    def wait_for(self, pattern: str, timeout: float = 60) -> None:
        """Read the launcher's output until a line (read now or before) matches ``pattern``."""
        assert self.proc is not None
        assert self.proc.stdout is not None
        if any(re.search(pattern, line) for line in self.output):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line:
                self.output.append(line)
                if re.search(pattern, line):
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
        """What Ctrl-C in a terminal does: SIGINT to the launcher's foreground process group."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
def stack() -> Iterator[Stack]:
    # A short path: unix socket names are limited to 107 bytes.
    with tempfile.TemporaryDirectory(prefix="pgl-") as tmp:
        s = Stack(Path(tmp), _free_port())
        yield s
        s.kill()
        for line in _processes_mentioning(tmp):
            pid = int(line.split(":")[0])
            os.kill(pid, signal.SIGKILL)


def test_run_serves_the_library_stops_cleanly_and_restarts_fast(stack: Stack) -> None:
    stack.start()
    status, body = stack.get("/healthz")
    assert status == 200, body
    status, body = stack.get("/library/?dataset=cruxeval")
    assert status == 200
    assert "CRUXEval sample_0" in body
    for worker in ("sandbox", "llm", "batch"):
        stack.wait_for(rf"{worker}@\S+ ready\.")
    # Leave some data behind to find after the restart.
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["PLAYGROUND_VAR_DIR"] = str(stack.var_dir)
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from playground.programs.models import Program; "
         "Program.objects.create(source='x = 1', title='survives restarts', is_public=True)"],
        cwd=paths.REPO_DIR, env=env, check=True,
    )  # fmt: skip

    assert stack.interrupt() in (0, 130)
    time.sleep(0.5)
    assert _processes_mentioning(str(stack.var_dir)) == []

    seconds = stack.start()
    assert seconds < 15, f"second start took {seconds:.1f} s"
    status, body = stack.get("/library/?dataset=user")
    assert status == 200
    assert "survives restarts" in body
    assert stack.interrupt() in (0, 130)
    time.sleep(0.5)
    assert _processes_mentioning(str(stack.var_dir)) == []
