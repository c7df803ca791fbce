# Written by hand: a data migration only.
"""Chain of Code runs of a program that never asked the model get their own verdict.

Before this migration such a run (Python ran every line itself, 0 model calls) was judged like
any other: "correct" (or "wrong"/"unknown") as if the model had answered, and so counted as the
model being right on run pages, in evaluations and in classroom statistics. Its verdict becomes
``no_model``. Runs that did call the model, and every other method, are left as they are.
"""

from django.db import migrations

EXPLANATION = (
    "Python ran every line of this program itself, so the model was never asked: this run says "
    "nothing about the model."
)
JUDGED = ("correct", "wrong", "unknown")


def forwards(apps, schema_editor):
    Run = apps.get_model("runs", "Run")
    runs = Run.objects.filter(
        method="coc", program__isnull=False, model_calls=0, emulation_done=True
    ).only("id", "verdict")
    for run in runs.iterator():
        verdict = run.verdict if isinstance(run.verdict, dict) else {}
        if verdict.get("status") not in JUDGED:
            continue
        Run.objects.filter(pk=run.pk).update(
            verdict={"status": "no_model", "explanation": EXPLANATION, "leakage": False}
        )


def backwards(apps, schema_editor):
    # The real run decides what the old verdict said: a value means "correct".
    Run = apps.get_model("runs", "Run")
    Run.objects.filter(verdict__status="no_model").update(
        verdict={"status": "correct", "explanation": "Python ran every line.", "leakage": False}
    )


class Migration(migrations.Migration):
    dependencies = [("runs", "0003_emulation_methods")]

    operations = [migrations.RunPython(forwards, backwards)]
