"""An index on Run.finished_at for /metrics (the runs ended in the last minutes), built without
locking the table's writes (CREATE INDEX CONCURRENTLY, outside a transaction)."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("runs", "0007_sent_as_tasks"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="run",
            index=models.Index(fields=["finished_at"], name="runs_run_finished_at_idx"),
        ),
    ]
