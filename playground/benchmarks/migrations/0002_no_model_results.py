# Written by hand: a data migration only.
"""Evaluation results whose Chain of Code run never asked the model are counted apart.

Before this migration such an item (a program Python ran entirely by itself, 0 model calls)
was scored "pass" and counted as the model being right. It becomes ``no_model``: not passed, and
left out of the accuracy, the plots and paired comparisons (see ``summary.summarise``).
"""

from django.db import migrations

REASON = (
    "Python ran every line of this program itself: the model was never asked, so this item is "
    "counted apart, not as the model's."
)


def forwards(apps, schema_editor):
    Result = apps.get_model("benchmarks", "Result")
    Result.objects.filter(
        run__method="coc",
        run__program__isnull=False,
        run__model_calls=0,
        run__emulation_done=True,
        score_status__in=["pass", "fail", "unparsable"],
    ).update(score_status="no_model", passed=False, reason=REASON)


def backwards(apps, schema_editor):
    Result = apps.get_model("benchmarks", "Result")
    Result.objects.filter(score_status="no_model").update(score_status="pass", passed=True)


class Migration(migrations.Migration):
    dependencies = [
        ("benchmarks", "0001_initial"),
        ("runs", "0004_no_model_verdict"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
