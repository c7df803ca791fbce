"""Predict the next state (issue 24): Item.mode gains the choice, Item.step_choice (which steps
are asked, with a database default) and StepPrediction (a student's prediction of one step)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    # The mode's AlterField changes only its choices (no SQL; the previous release never writes
    # the new mode); the new column has a database default and the new table is new.
    rolling_upgrade = "choices only, a column with a database default, a new table"

    dependencies = [
        ("classroom", "0015_course_gradebook_weights"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="item",
            name="step_choice",
            field=models.JSONField(blank=True, db_default={}, default=dict),
        ),
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
                    ("nextstate", "Predict the next state"),
                ],
                max_length=12,
            ),
        ),
        migrations.CreateModel(
            name="StepPrediction",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "step",
                    models.PositiveIntegerField(
                        help_text="Index of the call's steps (0: the call)."
                    ),
                ),
                (
                    "answer",
                    models.JSONField(
                        help_text="The prediction as entered: line, event, changed, value."
                    ),
                ),
                ("mark", models.JSONField(blank=True, default=dict)),
                ("answered_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "item",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="step_predictions",
                        to="classroom.item",
                    ),
                ),
                (
                    "student",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["item", "student", "step"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("item", "student", "step"), name="step_prediction_once"
                    )
                ],
            },
        ),
    ]
