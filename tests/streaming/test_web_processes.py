"""Several web processes share one run's audience: two real web servers (uvicorn, as the
launcher starts it; one sending in frames, one at once), viewers on both, some joining midway,
and every viewer sees every event exactly once and in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import ExitStack
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from websockets.asyncio.client import connect

from playground.runs.events import publish
from tests.stack import web_process
from tests.streaming.test_consumer import _owned_run, _text
from tests.streaming.test_sse_endings import forget_leases

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


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
            stack.enter_context(web_process({"DJANGO_SETTINGS_MODULE": settings}))[0]
            for settings in ("tests.streaming.frames_settings", "playground.settings")
        ]
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
