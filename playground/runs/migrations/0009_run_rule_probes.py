"""A run may run under a semantic rule (issue 21: ``rule``, blank for standard Python) and a
probe method's run keeps what it asks (issue 20: ``probes``, the counts of each kind). Both have
a default in the database, so rows the previous release inserts during a rolling upgrade are
valid."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0008_run_finished_at_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="rule",
            field=models.CharField(blank=True, db_default="", default="", max_length=32),
        ),
        migrations.AddField(
            model_name="run",
            name="probes",
            field=models.JSONField(blank=True, db_default={}, default=dict),
        ),
    ]
