"""RunSurprise: a run's real trace scored under its model (issue 23), a table of its own."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0010_trace_standard_kind"),
    ]

    operations = [
        migrations.CreateModel(
            name="RunSurprise",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("pending", "Being scored"),
                            ("done", "Scored"),
                            ("unsupported", "Not supported by this engine"),
                            ("failed", "Failed"),
                        ],
                        default="pending",
                        max_length=12,
                    ),
                ),
                ("model", models.CharField(blank=True, max_length=100)),
                ("engine", models.CharField(blank=True, max_length=40)),
                ("data", models.JSONField(blank=True, default=dict)),
                ("reason", models.TextField(blank=True)),
                ("mean", models.FloatField(blank=True, null=True)),
                ("max_step", models.FloatField(blank=True, null=True)),
                ("tokens", models.PositiveIntegerField(default=0)),
                ("budget_key", models.CharField(blank=True, max_length=100)),
                ("requested_at", models.DateTimeField()),
                ("claimed_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "run",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="surprise",
                        to="runs.run",
                    ),
                ),
            ],
        ),
    ]
