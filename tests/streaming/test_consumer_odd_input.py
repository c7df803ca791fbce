"""The run websocket with an odd address: a share token holding a NUL, a slash or 5,000
characters, or a run id past 64 bits, is refused like an unknown one (a NUL reached the
database and a slash reverse(): the consumer raised)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections

from playground.asgi import application
from playground.streaming.consumers import REFUSED

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest_asyncio.fixture(autouse=True)
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


@pytest.mark.parametrize(
    "path",
    [
        "/ws/runs/1/?share=%00",
        "/ws/runs/1/?share=a%2Fb",
        "/ws/runs/1/?share=" + "x" * 5000,
        "/ws/runs/1/?share=%ED%A0%80",
        "/ws/runs/99999999999999999999/",
        "/ws/runs/99999999999999999999/?share=abc",
    ],
)
async def test_an_odd_address_is_refused_not_a_crash(path: str) -> None:
    communicator = WebsocketCommunicator(
        application, path, headers=[(b"origin", b"http://127.0.0.1")]
    )
    connected, code = await communicator.connect()
    assert not connected
    assert code == REFUSED
    await communicator.disconnect()
