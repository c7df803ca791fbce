"""A stand-in sandbox worker for test_identity.py, started as an unprivileged account.

Run by Debian's python3 (no virtual environment: root's may be out of reach) with PYTHONPATH at a
copy of the project's sandbox code. It holds what a real worker holds: secrets in its environment
and on its command line, a var/ with secret_key and .env, the embedded databases' unix sockets and
descriptors left inheritable. It reports what it can read itself (so the test knows the secrets
are there to steal), then runs each program of the JSON list on stdin in the real sandbox and
prints one JSON object: the traces, and its own identity.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path


def main() -> None:
    var = Path(os.environ["PLAYGROUND_VAR_DIR"])
    programs = json.load(sys.stdin)
    listeners = []
    for name in (".s.PGSQL.5432", "redis.sock"):
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(var / "run" / name))
        sock.listen()
        listeners.append(sock)
    abstract = socket.socket(socket.AF_UNIX)
    # The name is the machine's (abstract names are per network namespace): the previous case's
    # worker may still be exiting under load (EADDRINUSE in a clean run), so wait for it.
    deadline = time.monotonic() + 20
    while True:
        try:
            abstract.bind("\0playground-test-worker")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    abstract.listen()
    # Descriptors a careless worker would hand down: a secret file and the sockets, inheritable.
    held = os.open(var / "secret_key", os.O_RDONLY)
    os.set_inheritable(held, True)
    for sock in [*listeners, abstract]:
        sock.set_inheritable(True)

    from playground import sandbox
    from playground.sandbox import jail
    from playground.sandbox.warm_pool import pool

    own = {
        "euid": os.geteuid(),
        "sandbox_account": jail._sandbox_account() is not None,
        "userns_wall": bool(jail._userns_options(shutil.which("bwrap") or "bwrap")),
        "reads_secret_key": (var / "secret_key").read_text(),
        "reads_env_file": (var.parent / ".env").read_text(),
        "reads_own_environ": Path(f"/proc/{os.getpid()}/environ").read_bytes().decode(),
        "reads_own_cmdline": Path(f"/proc/{os.getpid()}/cmdline").read_bytes().decode(),
    }
    pid = str(os.getpid())
    traces = {name: sandbox.run(src.replace("WORKER_PID", pid)) for name, src in programs.items()}
    pool.drain()
    json.dump({"own": own, "traces": traces}, sys.stdout)


if __name__ == "__main__":
    main()
