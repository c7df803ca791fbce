"""An item may ask the probes of its program's run (issue 20: ``probe_config``, the seed and the
count of each kind) or run its program under a semantic rule (issue 21: ``rule``). Both have a
default in the database, so rows the previous release inserts during a rolling upgrade are
valid."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("classroom", "0006_item_mode_input"),
    ]

    operations = [
        migrations.AddField(
            model_name="item",
            name="probe_config",
            field=models.JSONField(blank=True, db_default={}, default=dict),
        ),
        migrations.AddField(
            model_name="item",
            name="rule",
            field=models.CharField(blank=True, db_default="", default="", max_length=32),
        ),
    ]
