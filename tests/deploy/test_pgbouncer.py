"""The whole product on PostgreSQL through PgBouncer in transaction mode (Debian's `pgbouncer`),
as deploy/README.md advises for many workers and pods: migrations, a real run from the API to its
verdict (the sandbox, the model, the event stream), pages, all through a pool of a few server
connections shared by every process's clients.

Transaction pooling hands a client a server connection for one transaction only, so nothing may
outlive one: ``PLAYGROUND_DB_PGBOUNCER=1`` turns off Django's server-side cursors (``.iterator()``
declares one WITH HOLD, which stays on the server connection it was made on). Prepared statements
need nothing: Django binds parameters on the client (psycopg's ClientCursor never prepares).
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from playground.lib import paths
from playground.local_services import PG_SYSTEM_USER, EmbeddedPostgres, ensure_system_user
from tests.oracle import Oracle, oracle_server
from tests.stack import Stack, free_port, running_stack

pytestmark = [pytest.mark.slow, pytest.mark.full_only]  # `make test-full` (about 25 s)

POOL_SIZE = 4
MAKE_TOKEN = """
from django.contrib.auth import get_user_model
from playground.accounts.tokens import create_token
user = get_user_model().objects.create_user("pooled", password="not used here")
print(create_token(user=user, name="pooled", scope="run")[1])
"""
PROGRAM = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"


@contextmanager
def pgbouncer(base: Path, socket_dir: Path) -> Iterator[int]:
    """PgBouncer on a loopback port in front of the embedded PostgreSQL's socket; yields the
    port. It refuses to run as root: it runs as the embedded server's own account."""
    port = free_port()
    where = base / "pgbouncer"
    where.mkdir(parents=True, exist_ok=True)
    (where / "users.txt").write_text('"postgres" ""\n')
    (where / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"playground = host={socket_dir} port=5432 dbname=playground user=postgres\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {where / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {POOL_SIZE}\nmax_client_conn = 500\n"
        "admin_users = postgres\nignore_startup_parameters = extra_float_digits,options\n"
        f"logfile = {where / 'pgbouncer.log'}\npidfile = {where / 'pgbouncer.pid'}\n"
    )
    args = ["pgbouncer", str(where / "pgbouncer.ini")]
    if os.geteuid() == 0:
        account = ensure_system_user(PG_SYSTEM_USER)
        for path in (where, *where.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)
        args = [
            "pgbouncer",
            "-u",
            pwd.getpwuid(account.pw_uid).pw_name,
            str(where / "pgbouncer.ini"),
        ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            with suppress(psycopg.OperationalError):
                psycopg.connect(_admin(port), autocommit=True).close()
                break
            assert proc.poll() is None, (where / "pgbouncer.log").read_text()
            assert time.monotonic() < deadline, "PgBouncer did not start"
            time.sleep(0.2)
        yield port
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _admin(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/pgbouncer"


def _pools(port: int) -> dict[str, Any]:
    """PgBouncer's SHOW POOLS row of the playground database."""
    with psycopg.connect(_admin(port), autocommit=True) as admin:
        cursor = admin.execute("SHOW POOLS")
        names = [c.name for c in cursor.description or []]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return next(row for row in rows if row["database"] == "playground")


@pytest.fixture(scope="module")
def pooled_site() -> Iterator[tuple[Stack, int, str]]:
    with running_stack() as stack, oracle_server(Oracle()) as model:
        postgres = EmbeddedPostgres(stack.var_dir)
        postgres.start()
        try:
            with pgbouncer(stack.var_dir, paths.socket_dir(stack.var_dir)) as port:
                spec = {"name": "oracle", "base_url": model.base_url, "model": "oracle"}
                stack.env = {
                    "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/playground",
                    "PLAYGROUND_SECRET_KEY": "pgbouncer-test-" + "k" * 40,  # a database server
                    "PLAYGROUND_DB_PGBOUNCER": "1",
                    "PLAYGROUND_EMBEDDED_LLM": "off",
                    "PLAYGROUND_MODELS": json.dumps([spec]),
                }
                stack.start(timeout=180)
                for worker in ("sandbox", "llm"):
                    stack.wait_for(rf"{worker}@\S+ ready\.")
                token = stack.manage(MAKE_TOKEN).strip().splitlines()[-1]
                yield stack, port, token
                stack.kill()
        finally:
            postgres.stop()


def test_a_run_goes_from_the_api_to_its_verdict_through_pgbouncer(
    pooled_site: tuple[Stack, int, str],
) -> None:
    stack, port, token = pooled_site
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.port}", timeout=30) as api:
        ids = []
        for n in range(8):
            response = api.post("/api/runs", headers=bearer, json={
                "source": PROGRAM, "call": f"f([1, 2, {n}])", "method": "direct", "model": "oracle",
            })  # fmt: skip
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        deadline = time.monotonic() + 120
        while True:
            runs = [api.get(f"/api/runs/{pk}", headers=bearer).json() for pk in ids]
            if all(run["status"] in ("done", "failed") for run in runs):
                break
            assert time.monotonic() < deadline, runs
            time.sleep(0.5)
        for run in runs:
            assert run["status"] == "done", run
            assert run["emulation"]["verdict"]["status"] == "correct", run
        # A page that reads a lot, and a run's event stream (replayed to its end).
        assert api.get("/library/").status_code == 200
        replay = api.get(f"/runs/{ids[0]}/events", headers=bearer)
        assert replay.status_code == 200
        assert replay.text.rstrip().splitlines()[-1].startswith('data: {"seq"'), replay.text
        assert "event: done" in replay.text

    # Many requests at once: the web process's pooled connections take turns on PgBouncer's
    # few server connections, each running the same queries many times.
    def read_runs(_: int) -> list[int]:
        with httpx.Client(base_url=f"http://127.0.0.1:{stack.port}", timeout=30) as api:
            return [api.get(f"/api/runs/{pk}", headers=bearer).status_code for pk in ids * 3]

    with ThreadPoolExecutor(8) as pool:
        codes = [code for codes in pool.map(read_runs, range(8)) for code in codes]
    assert codes == [200] * len(codes), Counter(codes)

    pools = _pools(port)
    # Every process (web, the workers, the scheduler) shared at most POOL_SIZE server
    # connections, over many more transactions than that.
    assert pools["sv_active"] + pools["sv_idle"] + pools["sv_used"] <= POOL_SIZE, pools
    with psycopg.connect(_admin(port), autocommit=True) as admin:
        cursor = admin.execute("SHOW STATS")
        names = [c.name for c in cursor.description or []]
        stats = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    pooled = next(row for row in stats if row["database"] == "playground")
    assert pooled["total_xact_count"] > 100, pooled
    print(
        f"through PgBouncer: {pooled['total_xact_count']} transactions on at most "
        f"{POOL_SIZE} server connections"
    )
