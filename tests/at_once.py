"""Two copies of a periodic task at once (two beats, a message sent again), as the retention
tests run them: both start together, each on its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


def twice_at_once(task: Callable[[], T]) -> list[T]:
    """``task``'s results from two threads started together; raises what either raised."""
    results: list[T] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def beat() -> None:
        try:
            start.wait()
            results.append(task())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    return results
