"""For tests of data migrations: the test database migrated back to a state, filled with rows of
that state's models, then migrated forward to the migration under test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

Targets = list[tuple[str, str]]


def migrate(targets: Targets) -> Any:
    """Migrate the database to ``targets``; the historical apps there."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def apps_at(targets: Targets) -> Iterator[Any]:
    """For a fixture (``yield from apps_at(BEFORE)``, with ``transactional_db``): the historical
    apps at ``targets``, and the database migrated back to the latest state afterwards."""
    yield migrate(targets)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
