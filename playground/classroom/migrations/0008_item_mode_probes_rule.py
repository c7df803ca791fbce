"""Item.mode gains two choices: "Answer the probes" (issue 20) and "Execute under a changed rule"
(issue 21)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    # Only the field's choices change: Django checks them, the database never sees them (no SQL
    # is run), and the previous release never writes the new modes.
    rolling_upgrade = "choices only: no change in the database"

    dependencies = [
        ("classroom", "0007_item_probes_rule"),
    ]

    operations = [
        migrations.AlterField(
            model_name="item",
            name="mode",
            field=models.CharField(
                choices=[
                    ("output", "Predict the output"),
                    ("input", "Predict the input"),
                    ("trace", "Predict the trace"),
                    ("puzzle", "Solve the puzzle"),
                    ("divergence", "Spot the divergence"),
                    ("beat", "Beat the model"),
                    ("probes", "Answer the probes"),
                    ("rule", "Execute under a changed rule"),
                ],
                max_length=12,
            ),
        ),
    ]
