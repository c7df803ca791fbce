"""`make run`'s launcher: starts everything (web, the workers and the one scheduler), serves the
library, starts a killed worker again while the rest keep serving, stops every process on
Ctrl-C, and a second start comes back quickly with the same data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from playground.lib import paths
from tests.stack import Stack, processes_mentioning, running_stack

pytestmark = pytest.mark.slow


@pytest.fixture
def stack() -> Iterator[Stack]:
    """A site of its own, not started: starting and stopping it is what this test checks."""
    with running_stack() as s:
        yield s


def test_run_serves_the_library_stops_cleanly_and_restarts_fast(stack: Stack) -> None:
    stack.env = {"PLAYGROUND_LEASE_S": "6", "PLAYGROUND_REAP_EVERY_S": "2"}
    stack.start()
    status, body = stack.get("/healthz")
    assert status == 200, body
    status, body = stack.get("/library/?dataset=cruxeval")
    assert status == 200
    assert "CRUXEval sample_0" in body
    for worker in ("sandbox", "llm", "batch"):
        stack.wait_for(rf"{worker}@\S+ ready\.")
    # The one scheduler: a celery beat process of this stack, keeping its state in the var dir.
    stack.wait_for(r"beat +\| .*beat: Starting\.\.\.")
    # (honcho starts each process through /bin/sh -c "exec ...": the shell becomes the program)
    tree = processes_mentioning(str(stack.var_dir))
    beats = [p for p in tree if " beat " in p and "/bin/sh -c" not in p]
    assert len(beats) == 1, beats
    assert "celery -A playground beat" in beats[0]
    assert list(stack.var_dir.glob("celerybeat-schedule*")), sorted(stack.var_dir.iterdir())
    # A sandbox worker killed in the middle of a run: the launcher starts it again while the
    # rest keep serving, and the reaper sends the run again once the dead worker's lease has
    # lapsed (6 s here, `stack.env`); the run finishes with one trace. Before, the launcher
    # stopped every process, and a run taken by a killed worker came back after 20 minutes.
    run_id = int(
        stack.manage(
            "from playground.programs.models import Program\n"
            "from playground.runs.services import start_run\n"
            "p = Program.objects.create(source='import time\\ntime.sleep(2)\\nx = 1\\n',"
            " title='sleeps', is_public=True)\n"
            "print(start_run(program=p, user=None, anon_token='t').pk)"
        ).split()[-1]
    )
    deadline = time.monotonic() + 30
    while not stack.sql("SELECT 1 FROM runs_run WHERE id = %s AND real_claimed_at IS NOT NULL",
                        run_id):  # fmt: skip
        assert time.monotonic() < deadline, "the sandbox worker never took the run"
        time.sleep(0.1)
    mark = len(stack.output)
    t0 = time.monotonic()
    os.kill(stack.pid_of("worker-sandbox"), signal.SIGKILL)
    stack.wait_for(r"worker-sandbox died \(killed by SIGKILL\)", 30, after=mark)
    status, _ = stack.get("/healthz")
    assert status == 200
    while stack.sql("SELECT status FROM runs_run WHERE id = %s", run_id) != [("done",)]:
        assert time.monotonic() - t0 < 60, stack.sql("SELECT * FROM runs_run WHERE id = %s", run_id)
        time.sleep(0.2)
    recovered_s = time.monotonic() - t0
    print(f"the killed worker's run finished {recovered_s:.1f} s after the kill")
    assert stack.sql("SELECT resends FROM runs_run WHERE id = %s", run_id) == [(1,)]
    traces = "SELECT count(*) FROM runs_trace WHERE run_id = %s AND kind = 'real'"
    assert stack.sql(traces, run_id) == [(1,)]
    assert recovered_s < 40, recovered_s
    assert not any(" died " in line for line in stack.output[mark:] if "worker-sandbox" not in line)
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
    assert processes_mentioning(str(stack.var_dir)) == []

    seconds = stack.start()
    assert seconds < 15, f"second start took {seconds:.1f} s"
    status, body = stack.get("/library/?dataset=user")
    assert status == 200
    assert "survives restarts" in body
    assert stack.interrupt() in (0, 130)
    time.sleep(0.5)
    assert processes_mentioning(str(stack.var_dir)) == []
