"""Trace.kind gains a choice, ``standard``: a run under a rule keeps the same program's run under
standard Python beside its real trace."""

from django.db import migrations, models


class Migration(migrations.Migration):
    # Only the field's choices change: Django checks them, the database never sees them (no SQL
    # is run), and the previous release never writes the new kind.
    rolling_upgrade = "choices only: no change in the database"

    dependencies = [
        ("runs", "0009_run_rule_probes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="trace",
            name="kind",
            field=models.CharField(
                choices=[
                    ("real", "Real execution"),
                    ("emulated", "Emulated by a model"),
                    ("standard", "Standard Python"),
                ],
                max_length=12,
            ),
        ),
    ]
