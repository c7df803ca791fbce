"""Every websocket route (playground/streaming/routing.py, read from the routing table) with
hostile path parameters and query values: the consumer accepts or refuses, and never raises."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections

from playground.asgi import application
from playground.streaming.routing import websocket_urlpatterns
from tests.fuzz import hostile
from tests.fuzz.harness import routes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest_asyncio.fixture(autouse=True)
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


async def test_every_websocket_route_refuses_hostile_addresses(full: bool) -> None:
    failures: list[str] = []
    tried = 0
    for route in routes(websocket_urlpatterns):
        paths = []
        for name, numeric in route.params.items():
            for segment in hostile.segments(full, numeric=numeric).values():
                paths.append(route.path({**dict.fromkeys(route.params, "1"), name: segment}))
        base = route.path(dict.fromkeys(route.params, "1"))
        for value in hostile.table(full).values():
            paths.append(f"{base}?share={value}&after={value}")
        for path in paths:
            tried += 1
            communicator = WebsocketCommunicator(
                application, path, headers=[(b"origin", b"http://127.0.0.1")]
            )
            try:
                await communicator.connect(timeout=5)
            except ValueError:
                pass  # no route matches (a hostile int segment): the router's answer
            except Exception as exc:
                failures.append(f"{path[:120]}: {type(exc).__name__}: {exc}")
            finally:
                await communicator.disconnect()
    assert tried >= 18
    assert not failures, "\n".join(failures)
