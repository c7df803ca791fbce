"""The runner that the sandbox imports cannot be swapped by another local user.

It used to be copied once per process into the system temp directory under a predictable name,
and its ownership checked only the first time: a temp cleaner deleting it let anyone recreate it
with code of their own, run as the sandbox at the start of every later run. Now the worker hands
each sandbox the runner from its own memory, and nothing is left on disk to replace.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLANTED = (
    "import os\n"
    'FINAL = b\'{"final": {"status": "ok", "stdout": "planted", "error": null}}\'\n'
    "def main():\n"
    "    os.write(1, FINAL + b'\\n')\n"
)


# A worker process of its own, so that nothing this test process prepared earlier (in the shared
# temp directory) hides what a fresh worker does: one run, a pause for the test to plant its
# runner, then a second run.
WORKER = """
import json, sys
from playground import sandbox
print(sandbox.run("print('first')\\n")["stdout"], end="", flush=True)
sys.stdin.readline()
print(json.dumps(sandbox.run("print('real')\\n")), flush=True)
"""


def _as_someone_else(path: Path) -> None:
    other = pwd.getpwnam("nobody")
    for entry in [path, *path.rglob("*")]:
        os.chown(entry, other.pw_uid, other.pw_gid, follow_symlinks=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="planting as another user needs root")
def test_a_runner_recreated_by_another_user_is_never_run() -> None:
    # A temp directory of the test's own (the shared one holds other processes' files),
    # reachable by the sandbox account as /tmp is.
    temp = Path(tempfile.mkdtemp(prefix="pg-tmp-"))
    temp.chmod(0o755)
    env = {**os.environ, "TMPDIR": str(temp), "PLAYGROUND_SANDBOX_POOL": "0",
           "PYTHONPATH": str(REPO)}  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        text=True, cwd=REPO,
    )  # fmt: skip
    try:
        assert worker.stdout is not None
        assert worker.stdin is not None
        assert worker.stdout.readline() == "first\n"
        # Whatever the worker left in the temp directory, a cleaner deletes it and someone else
        # puts their own runner there under the same name.
        for copy in list(temp.iterdir()):
            shutil.rmtree(copy)
            copy.mkdir()
            (copy / "runner.py").write_text(PLANTED)
            _as_someone_else(copy)
            copy.chmod(0o755)
        worker.stdin.write("planted\n")
        worker.stdin.flush()
        trace = json.loads(worker.stdout.readline())
        assert trace["stdout"] == "real\n", trace
        assert trace["steps"]  # traced by the real runner
        assert list(temp.iterdir()) == []  # no copy of the runner on disk at all
    finally:
        worker.kill()
        worker.wait()
        shutil.rmtree(temp)
