"""Migrations that are safe while the previous release still runs (deploy/README.md, "Upgrades").

During a rolling upgrade (Kubernetes, or hosts restarted one by one) the migration Job runs first
and pods of the old release keep serving until they are replaced. So a new migration may add
(tables, nullable columns, columns with a default in the database, indexes built concurrently)
but not take away what the old code still reads or writes: removing or renaming a column or a
table, or a column NOT NULL without a database default (old pods insert rows without it, and
PostgreSQL refuses them). Such a change goes in two releases: the first stops using the column,
the next removes it, in a migration that says so (``rolling_upgrade = "contract: ..."``).

Migrations that existed before this rule (``BEFORE``) are not checked."""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations
from django.db.migrations.loader import MigrationLoader
from django.db.models.fields import NOT_PROVIDED

# The last migration of each app before the rule (main at 5eb38e9).
BEFORE = {
    "accounts": 1, "benchmarks": 5, "classroom": 6, "moderation": 1, "programs": 1, "runs": 6,
    "sharing": 2,
}  # fmt: skip
PROJECT_APPS = set(BEFORE)


def _why_unsafe(operation: Any, created: set[str]) -> str | None:
    if isinstance(operation, migrations.CreateModel | AddIndexConcurrently):
        return None
    if isinstance(operation, migrations.AddField):
        field = operation.field
        if field.null or field.db_default is not NOT_PROVIDED:
            return None
        if operation.model_name in created:
            return None
        return f"{operation.model_name}.{operation.name} is NOT NULL with no database default"
    if isinstance(operation, migrations.AddIndex | migrations.AddConstraint):
        if operation.model_name in created:
            return None
        return "an index or constraint built in one transaction locks the table's writes"
    if isinstance(operation, migrations.AlterField):
        field = operation.field
        if field.null or field.db_default is not NOT_PROVIDED:
            return None
        return f"{operation.model_name}.{operation.name} may become NOT NULL under old pods"
    return f"{type(operation).__name__} takes away or rewrites what the old release uses"


def test_new_migrations_are_safe_with_the_old_release_running() -> None:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    checked = 0
    problems = []
    for (app, name), migration in sorted(loader.disk_migrations.items()):
        if app not in PROJECT_APPS or int(name[:4]) <= BEFORE[app]:
            continue
        checked += 1
        if getattr(migration, "rolling_upgrade", ""):
            continue  # it says why and how (a contract step, with its release notes)
        created = {
            op.name.lower() for op in migration.operations if isinstance(op, migrations.CreateModel)
        }
        for operation in migration.operations:
            why = _why_unsafe(operation, created)
            if why:
                problems.append(f"{app}.{name}: {why}")
    assert checked >= 2  # runs 0007 and 0008 at least: the check sees the new migrations
    assert not problems, problems


def test_the_check_refuses_what_old_pods_cannot_live_with() -> None:
    from django.db import models

    required = migrations.AddField("run", "label", models.CharField(max_length=5, default="x"))
    assert "NOT NULL" in (_why_unsafe(required, set()) or "")
    defaulted = migrations.AddField(
        "run", "label", models.CharField(max_length=5, default="x", db_default="x")
    )
    assert _why_unsafe(defaulted, set()) is None
    assert _why_unsafe(migrations.RemoveField("run", "label"), set())
    assert _why_unsafe(migrations.RenameField("run", "a", "b"), set())
    index = migrations.AddIndex("run", models.Index(fields=["label"], name="label_idx"))
    assert _why_unsafe(index, set())
    assert _why_unsafe(index, {"run"}) is None  # on a table made in the same migration
