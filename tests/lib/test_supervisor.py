"""`make run`'s supervisor: a process that dies is started again after a growing pause, with a
line that says what happened, while the others keep running; Ctrl-C or SIGTERM stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from playground.launcher import describe_exit
from playground.lib import paths

SCRIPT = textwrap.dedent(
    """
    import sys
    from playground import launcher

    launcher.BACKOFF_S = (0.2, 0.8)  # seconds, as (1, 30) under `make run`
    launcher.STABLE_S = 3600.0
    manager = launcher.Supervisor()
    # Dies at once, every time: started again after 0.2, 0.4, 0.8, 0.8... s.
    manager.add_process("crasher", "echo crasher up; exit 3")
    # Keeps running, and writes its pid down for the test.
    manager.add_process("steady", "echo $$ > {pidfile}; echo steady up; exec sleep 600")
    manager.loop()
    sys.exit(manager.returncode)
    """
)


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    pidfile = tmp_path / "steady.pid"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(pidfile=pidfile)],
        cwd=paths.REPO_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    return proc, pidfile


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def test_a_dead_process_is_started_again_with_backoff_and_the_rest_keep_running(
    tmp_path: Path,
) -> None:
    proc, pidfile = _start(tmp_path)
    try:
        time.sleep(3.0)
        assert proc.poll() is None, "the site stopped because one process died"
        steady = int(pidfile.read_text())
        assert _alive(steady)
        os.killpg(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, output  # as honcho's own: 128 + SIGTERM
    lines = output.splitlines()
    deaths = [line for line in lines if "crasher died (exit status 3)" in line]
    # 0.2 + 0.4 + 0.8 + 0.8 ... seconds apart: four or five deaths in 3 s, not dozens.
    assert 3 <= len(deaths) <= 7, output
    assert "starting it again in 0.2 s (death 1 in a row)" in deaths[0]
    assert "starting it again in 0.4 s (death 2 in a row)" in deaths[1]
    assert "starting it again in 0.8 s (death 3 in a row)" in deaths[2]
    starts = sum("crasher started (pid=" in line for line in lines)
    assert starts in (len(deaths), len(deaths) + 1), output  # each death, one start after it
    assert sum("steady up" in line for line in lines) == 1, output  # never restarted
    assert not _alive(steady), "SIGTERM to the supervisor left a process running"


def test_a_process_killed_by_a_signal_is_named_and_started_again(tmp_path: Path) -> None:
    proc, pidfile = _start(tmp_path)
    try:
        deadline = time.monotonic() + 10
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        first = int(pidfile.read_text())
        pidfile.unlink()
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pidfile.exists(), "the killed process was not started again"
        second = int(pidfile.read_text())
        assert second != first
        assert _alive(second)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, output
    assert "steady died (killed by SIGKILL)" in output, output
    assert not _alive(second)


@pytest.mark.parametrize(
    ("returncode", "words"),
    [(-9, "killed by SIGKILL"), (137, "killed by SIGKILL"), (143, "killed by SIGTERM"),
     (1, "exit status 1"), (0, "exit status 0"), (255, "exit status 255")],
)  # fmt: skip
def test_exit_statuses_in_words(returncode: int, words: str) -> None:
    assert describe_exit(returncode) == words
