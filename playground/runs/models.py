"""Runs of a program (real, and later emulated by a model) and the traces they produce."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse

from playground.emulation.registry import REGISTRY, Method
from playground.programs.models import Program, Puzzle, TaskExample
from playground.sandbox.inside.semantics import RULES
from playground.sandbox.schema import upgrade


def method_label(name: str) -> str:
    """What pages call a run's method: its label in the registry, "Real execution only" for a
    run without a model, or the stored name of a method this site no longer offers."""
    if name == "real":
        return "Real execution only"
    method = REGISTRY.get(name)
    return method.label if method is not None else name


class Run(models.Model):
    """One execution request. The program's text is copied so a run never changes afterwards.

    A run is of a program (run for real, and emulated by a model if a method is chosen), of a P3
    puzzle (the model proposes an answer, the sandbox checks it) or of one instance of a
    reasoning task (the model answers; compared with the task's target)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = frozenset({Status.DONE, Status.FAILED, Status.CANCELLED})

    program = models.ForeignKey(
        Program, null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    puzzle = models.ForeignKey(
        Puzzle, null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    task_example = models.ForeignKey(
        TaskExample, null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    # "real" (the sandbox only) or an emulation method from playground.emulation.registry, which
    # also runs the program for real to judge the model against it.
    method = models.CharField(max_length=16, default="real")
    model = models.CharField(max_length=100, blank=True, help_text="Registry name of the model.")
    temperature = models.FloatField(default=0.0)
    seed = models.IntegerField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(default=512)
    emulated_text = models.TextField(blank=True, help_text="The model's answer, as it streamed.")
    emulation_done = models.BooleanField(default=False)
    prediction = models.TextField(blank=True)
    verdict = models.JSONField(default=dict, blank=True)
    comparison = models.JSONField(
        null=True, blank=True, help_text="The emulated trace against the real one (compare/)."
    )
    details = models.JSONField(
        default=dict, blank=True, help_text="What the method adds: plan, attempts, program..."
    )
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    model_calls = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    source = models.TextField()
    call = models.TextField(blank=True)
    stdin = models.TextField(blank=True)
    limits = models.JSONField(
        default=dict, blank=True, help_text="Overrides of the sandbox limits."
    )
    error = models.TextField(blank=True, help_text="Why the run failed, for the user.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="runs",
    )
    anon_owner = models.CharField(max_length=64, blank=True, db_index=True)
    # Whose allowance of model tokens the run's calls count against ("user:<id>", "ip:<address>",
    # ratelimits.whose), set when the run is made, since the worker has no request; empty: the
    # site's own work (a staff member's evaluation, the command line), not counted.
    budget_key = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Recovery (playground.reaper, lib/worktimes.py): when a task last took each part of the run
    # (cleared when the part is sent again), when and how often the reaper sent a part again.
    real_claimed_at = models.DateTimeField(null=True, blank=True)
    emulation_claimed_at = models.DateTimeField(null=True, blank=True)
    resent_at = models.DateTimeField(null=True, blank=True)
    resends = models.PositiveSmallIntegerField(default=0)
    # Its parts were sent as tasks under the ids the reaper looks for in the broker
    # (runs/recovery.py); False for an evaluation's runs, which its batch task executes itself.
    # A default in the database too: web pods of the previous release, still running during a
    # rolling upgrade, insert runs without this column.
    sent_as_tasks = models.BooleanField(default=True, db_default=True)
    # The semantic rule the program runs under (sandbox/inside/semantics.py: its real trace is
    # the rewritten program run for real, and every model is told the rule); blank: standard
    # Python. Defaults in the database, for rows the previous release inserts.
    rule = models.CharField(max_length=32, blank=True, default="", db_default="")
    # What a probe method asks (emulation/probes.Config: how many of each kind); empty: its
    # default. With ``seed``, it fixes the questions, so a rerun or a share asks the same ones.
    probes = models.JSONField(default=dict, blank=True, db_default={})

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["owner", "-id"]),
            models.Index(fields=["status"]),
            # /metrics reads the runs ended lately every few seconds (playground/metrics.py).
            models.Index(fields=["finished_at"], name="runs_run_finished_at_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(program__isnull=False, puzzle__isnull=True, task_example__isnull=True)
                    | models.Q(
                        program__isnull=True, puzzle__isnull=False, task_example__isnull=True
                    )
                    | models.Q(
                        program__isnull=True, puzzle__isnull=True, task_example__isnull=False
                    )
                ),
                name="run_of_exactly_one_item",
            )
        ]

    def __str__(self) -> str:
        return f"Run #{self.pk} of {self.subject}"

    def get_absolute_url(self) -> str:
        return reverse("runs:detail", args=[self.pk])

    @property
    def events_key(self) -> str:
        """The name of the run's live events (``runs.events``) and of their channel-layer group:
        the database and the run's creation time as well as its id, so that a recreated database
        (tests, a restored backup) never meets the events of an older run with the same id, and
        two sites sharing one Redis never meet at all. Made from the row, without a query."""
        database = "".join(c for c in str(settings.DATABASES["default"]["NAME"]) if c.isalnum())
        return f"run-{database[:30]}-{self.pk}-{int(self.created_at.timestamp() * 1_000_000)}"

    @property
    def kind(self) -> str:
        """What was run: ``program``, ``puzzle`` or ``task``."""
        if self.puzzle_id is not None:
            return "puzzle"
        if self.task_example_id is not None:
            return "task"
        return "program"

    @property
    def subject(self) -> Program | Puzzle | TaskExample:
        """The library item or program this is a run of."""
        item = self.program or self.puzzle or self.task_example
        assert item is not None
        return item

    @property
    def subject_title(self) -> str:
        item = self.subject
        return item.display_title if isinstance(item, Program) else str(item)

    @property
    def has_real_run(self) -> bool:
        """Whether the program itself runs in the sandbox (puzzles run sat(answer) instead)."""
        return self.kind == "program"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def is_emulated(self) -> bool:
        return self.method != "real"

    @property
    def spec(self) -> Method | None:
        """The registry's record of the run's method (its facts); None for a real-only run."""
        return REGISTRY.get(self.method)

    @property
    def compares_from_call(self) -> bool:
        """Whether the model traced only the call, so that its steps, and the real ones they are
        compared with, start at the call."""
        spec = self.spec
        return spec is not None and spec.compares_from_call and bool(self.call)

    @property
    def real_trace(self) -> Trace | None:
        """The ground truth: the program run for real (under the run's rule, if it has one)."""
        return self.traces.filter(kind=Trace.Kind.REAL).first()

    @property
    def standard_trace(self) -> Trace | None:
        """A run under a rule: the same program run under standard Python, shown beside it."""
        return self.traces.filter(kind=Trace.Kind.STANDARD).first() if self.rule else None

    @property
    def rule_text(self) -> str:
        """The sentence the model is told about the run's rule; "" for standard Python (or a
        rule this site no longer has)."""
        rule = RULES.get(self.rule) if self.rule else None
        return rule.text if rule is not None else ""

    @property
    def emulated_trace(self) -> Trace | None:
        return self.traces.filter(kind=Trace.Kind.EMULATED).first()

    def comparison_of(
        self, real: dict[str, Any] | None, emulated: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The comparison to show with these (read, so current-schema) traces: the stored one,
        or, when it was made against a real trace of an older schema whose upgrade changed
        steps it compared (a return that is now an unwind), the same comparison made again."""
        stored = self.comparison
        if (
            not stored
            or "steps" not in stored
            or real is None
            or emulated is None
            or real.get("upgraded_from") != 1  # v2 -> v3 changes no step
            or not any(isinstance(s, dict) and s.get("event") == "unwind" for s in real["steps"])
        ):
            return stored
        from playground.compare import compare_traces

        return compare_traces(real, emulated, from_call=self.compares_from_call).as_dict()

    def as_dict(self) -> dict[str, Any]:
        """The run as the JSON API and ``/runs/<id>/trace.json`` give it."""
        trace = self.real_trace
        emulated = self.emulated_trace
        standard = self.standard_trace
        real_data = trace.data if trace else None
        emulated_data = emulated.data if emulated else None
        return {
            "id": self.pk,
            "url": self.get_absolute_url(),
            "events_url": reverse("runs:events", args=[self.pk]),
            "kind": self.kind,
            "program_id": self.program_id,
            "puzzle": self.puzzle.name if self.puzzle_id and self.puzzle else None,
            "task_example": str(self.task_example) if self.task_example_id else None,
            "status": self.status,
            "method": self.method,
            "model": self.model or None,
            "error": self.error or None,
            # Under a rule: its name and sentence; "trace" is the run under it (the ground
            # truth) and "standard_trace" the same program under standard Python.
            "rule": self.rule or None,
            "rule_text": self.rule_text or None,
            "probes": self.probes or None,
            "seed": self.seed,
            "trace": real_data,
            "standard_trace": standard.data if standard else None,
            "emulation": (
                {
                    "text": self.emulated_text,
                    "prediction": self.prediction or None,
                    "verdict": self.verdict or None,
                    "trace": emulated_data,
                    "comparison": self.comparison_of(real_data, emulated_data),
                    "details": self.details or None,
                    "model_calls": self.model_calls,
                    "prompt_tokens": self.prompt_tokens,
                    "completion_tokens": self.completion_tokens,
                }
                if self.is_emulated
                else None
            ),
        }


class Trace(models.Model):
    """A trace (playground/sandbox/schema.py), validated before it is stored. Whatever version
    it was stored in, ``data`` reads in the current schema: every load goes through
    ``schema.upgrade`` (run pages, share links, the API, comparisons, evaluations, grading)."""

    class Kind(models.TextChoices):
        REAL = "real", "Real execution"
        EMULATED = "emulated", "Emulated by a model"
        # A run under a rule: the same program under standard Python, for comparison only.
        STANDARD = "standard", "Standard Python"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="traces")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=16)
    step_count = models.PositiveIntegerField(default=0)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "kind"], name="trace_one_per_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} trace of run #{self.run_id} ({self.status})"

    @classmethod
    def from_db(cls, *args: Any, **kwargs: Any) -> Trace:
        # The one place stored traces are read: older schema versions are upgraded here, so no
        # reader ever sees one (a deferred ``data`` loads through here too, on first access).
        trace = super().from_db(*args, **kwargs)
        if "data" in trace.__dict__:
            trace.data = upgrade(trace.data)
        return trace


class Plan(models.Model):
    """A Think-and-Execute plan: written once per task (or program) and model, then reused.
    Stored under a digest of everything that shaped it (``tae.plan_digest``); only whole plans
    are stored. Staff purge them with ``manage.py plans purge`` or the admin."""

    key = models.CharField(max_length=100, help_text="Digest of what shaped the plan.")
    subject = models.CharField(
        max_length=100, blank=True, db_index=True, help_text="task:<name> or program:<sha256>"
    )
    model = models.CharField(max_length=100, db_index=True)
    data = models.JSONField(help_text="analysis, pseudocode, title")
    uses = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "model"], name="plan_unique_key")]

    def __str__(self) -> str:
        return f"Plan for {self.subject or self.key} ({self.model})"


class RunSurprise(models.Model):
    """How surprised the run's model is by the run's real trace (``runs/surprise.py``): asked
    for from the run page, an evaluation or ``manage.py surprise``, scored on the llm queue. A
    row of its own, not a column of ``Run``: runs are read everywhere, and its figures only on
    the run page and the evaluation's ranking (``mean``, ``max_step``)."""

    class State(models.TextChoices):
        PENDING = "pending", "Being scored"
        DONE = "done", "Scored"
        UNSUPPORTED = "unsupported", "Not supported by this engine"
        FAILED = "failed", "Failed"

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="surprise")
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    model = models.CharField(max_length=100, blank=True)
    engine = models.CharField(max_length=40, blank=True)
    # The figures (surprise.bounded: per step and per value, at most MAX_STEPS steps); the
    # reason or the error, for the page, when there are none.
    data = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    # For ranking: the mean surprise per token over the trace, and the largest step's.
    mean = models.FloatField(null=True, blank=True)
    max_step = models.FloatField(null=True, blank=True)
    tokens = models.PositiveIntegerField(default=0)
    # Whose allowance of model tokens it counts against (ratelimits.whose; empty: the site's).
    budget_key = models.CharField(max_length=100, blank=True)
    requested_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Surprise of run #{self.run_id} ({self.state})"
