"""Several web processes share one run's audience: two real web servers (uvicorn, as the
launcher starts it; one sending in frames, one at once), viewers on both, some joining midway,
and every viewer sees every event exactly once and in order."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connection, connections
from websockets.asyncio.client import connect

from playground.launcher import processes
from playground.lib import paths
from playground.runs.events import publish
from tests.stack import free_port
from tests.streaming.test_consumer import _owned_run, _text
from tests.streaming.test_sse_endings import forget_leases

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@contextmanager
def _web_server(settings_module: str) -> Iterator[int]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": paths.database_url(connection.settings_dict),
        "PLAYGROUND_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": settings_module,
    }
    proc = subprocess.Popen(
        processes("127.0.0.1", port)["web"],
        cwd=paths.REPO_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


async def _viewer(port: int, run_id: int, cookie: str) -> tuple[Any, list[str]]:
    headers = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"}
    ws = await connect(f"ws://127.0.0.1:{port}/ws/runs/{run_id}/", additional_headers=headers)
    return ws, [str(await ws.recv())]  # the state: joined


async def _until_finished(ws: Any, got: list[str]) -> list[str]:
    while "Finished." not in got[-1]:
        got.append(str(await asyncio.wait_for(ws.recv(), 10)))
    await ws.close()
    return got


@pytest_asyncio.fixture(autouse=True)
async def _clean() -> AsyncIterator[None]:
    await sync_to_async(forget_leases)()
    yield
    await sync_to_async(connections.close_all)()


async def test_viewers_on_two_web_processes_see_every_event_once_in_order() -> None:
    run, client = await sync_to_async(_owned_run)()
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    key = run.events_key
    words = [f"w{i} " for i in range(60)]
    with ExitStack() as stack:
        ports = [
            stack.enter_context(_web_server("tests.streaming.frames_settings")),
            stack.enter_context(_web_server("playground.settings")),
        ]
        await asyncio.gather(*(sync_to_async(_wait_until_up)(port) for port in ports))
        await sync_to_async(publish)(key, "token", text=words[0])
        viewers = [await _viewer(port, run.pk, cookie) for port in ports for _ in range(3)]
        for i, word in enumerate(words[1:], start=1):
            await sync_to_async(publish)(key, "token", text=word)
            if i == 30:  # one more on each process, while the run goes on
                viewers += [await _viewer(port, run.pk, cookie) for port in ports]
            await asyncio.sleep(0.003)
        await sync_to_async(publish)(key, "done", verdict=None)
        seen = await asyncio.gather(*(_until_finished(ws, got) for ws, got in viewers))
    for got in seen:
        assert _text(got) == "".join(words)
    frames_viewer, at_once_viewer = seen[0], seen[3]
    assert len(frames_viewer) < len(at_once_viewer) / 2  # the first process did send frames
