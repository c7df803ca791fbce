"""Evaluations: one method and model over a data set, scored as the benchmark defines it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse

from playground.runs.models import Run


class Dataset(models.TextChoices):
    CRUXEVAL = "cruxeval", "CRUXEval output prediction"
    BBH = "bbh", "BIG-Bench Hard"
    P3 = "p3", "P3 programming puzzles"
    PROGRAMS = "programs", "A list of programs"


class Evaluation(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    FINISHED = frozenset({Status.DONE, Status.CANCELLED, Status.FAILED})

    title = models.CharField(max_length=200, blank=True)
    dataset = models.CharField(max_length=12, choices=Dataset.choices)
    # BBH: the task names; programs: the program ids (a teacher's own list).
    subset = models.JSONField(default=list, blank=True)
    method = models.CharField(max_length=16)
    model = models.CharField(max_length=100)
    temperature = models.FloatField(default=0.0)
    samples = models.PositiveSmallIntegerField(default=1, help_text="n per item, for pass@k")
    seed = models.IntegerField(default=0)
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="Items at most.")
    sample_randomly = models.BooleanField(
        default=False, help_text="Take a random sample (with the seed) rather than the first."
    )
    concurrency = models.PositiveSmallIntegerField(default=4)
    max_tokens = models.PositiveIntegerField(default=512)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    total = models.PositiveIntegerField(default=0, help_text="Item x sample results to make.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
        related_name="evaluations",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Recovery (playground.reaper): when a task last took the evaluation (cleared when it is
    # sent again) and when the reaper last sent it again.
    claimed_at = models.DateTimeField(null=True, blank=True)
    resent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # CRUXEval's task: predict the output (CRUXEval-O) or an input (CRUXEval-I).
    task = models.CharField(
        max_length=6, choices=[("output", "output"), ("input", "input")], default="output"
    )
    # "run": the site generated and scored the answers; "import": published (or any) outputs
    # read from a file and scored here without generating (benchmarks/imports.py).
    origin = models.CharField(
        max_length=6, choices=[("run", "run"), ("import", "import")], default="run"
    )
    # The scoring rules the results were scored under ("" before they were named; see
    # benchmarks/official.py's RULES_VERSION), and what the evaluation was made from (for an
    # import: the file's name and digest, the rules, the model's label).
    rules = models.CharField(max_length=32, blank=True)
    config = models.JSONField(default=dict, blank=True)
    # Counterfactual Python (issue 21): the semantic rule (sandbox/inside/semantics.py) every
    # run of the evaluation runs under and the model is told; blank: Python's own semantics.
    # Items whose program the rule changes nothing in are left out when it is made, and counted
    # in ``not_offered``. db_default: the previous release inserts rows without either column.
    rule = models.CharField(max_length=32, blank=True, default="", db_default="")
    not_offered = models.PositiveIntegerField(
        default=0, db_default=0,
        help_text="Items left out: the rule changes nothing in their program.",
    )  # fmt: skip
    # A done evaluation's results never change: its summary's numbers are counted once and
    # kept (summary.py), so that the leaderboard sorts and pages by them without reading results.
    figures = models.JSONField(
        null=True, blank=True, editable=False,
        help_text="The numbers of its summary, kept once it is done.",
    )  # fmt: skip

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.title or f"Evaluation #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("benchmarks:detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def benchmark(self) -> str:
        """What it measures, as pages name it: the data set and, where a data set of programs
        has two tasks, which (CRUXEval-O or CRUXEval-I)."""
        if self.dataset == Dataset.CRUXEVAL:
            return (
                "CRUXEval-I input prediction"
                if self.task == "input"
                else str(Dataset.CRUXEVAL.label)
            )
        label = str(Dataset(self.dataset).label) if self.dataset in Dataset.values else self.dataset
        return f"{label} (input prediction)" if self.task == "input" else label


class Result(models.Model):
    """One sample of one item: its run and its score. Made once (the unique constraint and the
    claim on ``status`` keep a resumed evaluation from scoring an item twice)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="results")
    index = models.PositiveIntegerField(help_text="Position of the item in the evaluation.")
    sample = models.PositiveSmallIntegerField(default=0)
    item_key = models.CharField(max_length=120, help_text="Data set id, e.g. sample_12.")
    item_ref = models.JSONField(default=dict, help_text="program / puzzle / task_example id.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    # Running: sent to a batch worker (or taken by the command line) at ``claimed_at``, taken by
    # the task that works on it at ``taken_at`` (which holds its lease: services.reap_evaluations).
    claimed_at = models.DateTimeField(null=True, blank=True)
    taken_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveSmallIntegerField(default=0, help_text="Tries that crashed.")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    passed = models.BooleanField(null=True)
    leakage = models.BooleanField(default=False)
    score_status = models.CharField(max_length=12, blank=True)
    reason = models.TextField(blank=True)
    prediction = models.TextField(blank=True)
    # For plots: the program's length in lines, its real steps, where the trace first diverged.
    lines = models.PositiveIntegerField(null=True, blank=True)
    steps = models.PositiveIntegerField(null=True, blank=True)
    divergence_step = models.IntegerField(null=True, blank=True)
    # The path verdict of a method that yields steps (compare/path.py): agrees, diverges,
    # unknown; blank for the others. A pass on a diverging path is a right answer reached
    # another way than the program's. db_default: rows the previous release inserts (it knows no
    # such column) get blank, so the migration is safe with it still running.
    path = models.CharField(max_length=8, blank=True, default="", db_default="")
    # Under a rule, a wrong answer that is what the program returns under Python's own
    # semantics (the model followed its priors, not the stated rule); null: not checked (right
    # answers, unreadable ones, standard evaluations).
    prior = models.BooleanField(null=True, blank=True)
    # Under a rule, whether it changed what the program does (its value, or that it raises)
    # against standard Python's run of it, kept beside (Trace kind "standard"): a rule offered
    # for a program may still leave its result as it was, and only where it does not can an
    # answer tell the rule from the model's priors. Null: no rule, or no standard run.
    changed = models.BooleanField(null=True, blank=True)
    model_seconds = models.FloatField(null=True, blank=True)
    wall_seconds = models.FloatField(null=True, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["evaluation", "index", "sample"]
        constraints = [
            models.UniqueConstraint(
                fields=["evaluation", "index", "sample"], name="result_once_per_sample"
            )
        ]
        indexes = [models.Index(fields=["evaluation", "status"])]

    def __str__(self) -> str:
        return f"{self.item_key} #{self.sample} of {self.evaluation}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "sample": self.sample,
            "item": self.item_key,
            "passed": self.passed,
            "leakage": self.leakage,
            "status": self.score_status,
            "reason": self.reason,
            "prediction": self.prediction,
            # From the id alone: an export reads no run (its source and model text are large).
            "run": reverse("runs:detail", args=[self.run_id]) if self.run_id else None,
            "lines": self.lines,
            "steps": self.steps,
            "divergence_step": self.divergence_step,
            "path": self.path,
            "prior": self.prior,
            "changed": self.changed,
        }
