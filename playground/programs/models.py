"""Programs, puzzles and reasoning tasks: the built-in library and what users submit."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse


class Dataset(models.TextChoices):
    CRUXEVAL = "cruxeval", "CRUXEval"
    HUMANEVAL = "humaneval", "HumanEval"
    USER = "user", "User programs"


class ProgramQuerySet(models.QuerySet["Program"]):
    def visible_to(self, user: object, anon_token: str | None) -> ProgramQuerySet:
        """Public programs plus the ones owned by this user or this anonymous session."""
        mine = Q(pk__in=[])
        if getattr(user, "is_authenticated", False):
            mine = Q(owner=user)
        elif anon_token:
            mine = Q(owner__isnull=True, anon_owner=anon_token)
        return self.filter(Q(is_public=True) | mine)


class Program(models.Model):
    """A Python program with the call that exercises it: a library item or a user's submission."""

    title = models.CharField(max_length=200, blank=True)
    source = models.TextField()
    call = models.TextField(
        blank=True, help_text="Expression evaluated after the program, e.g. f([1, 2, 3])."
    )
    stdin = models.TextField(blank=True)
    expected_output = models.TextField(
        blank=True, help_text="repr of the expected value of the call, where the data set has it."
    )
    dataset = models.CharField(max_length=16, choices=Dataset.choices, default=Dataset.USER)
    external_id = models.CharField(max_length=64, blank=True, help_text="Id in the data set.")
    extra = models.JSONField(default=dict, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="programs",
    )
    # Anonymous visitors own programs through a random token kept in their session; it survives
    # the session-key rotation at login, when the programs move to the new account.
    anon_owner = models.CharField(max_length=64, blank=True, db_index=True)
    is_public = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProgramQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "external_id"],
                condition=~Q(external_id=""),
                name="program_unique_external_id",
            )
        ]
        indexes = [models.Index(fields=["dataset", "id"]), models.Index(fields=["owner", "-id"])]

    def __str__(self) -> str:
        return self.display_title

    def get_absolute_url(self) -> str:
        return reverse("programs:detail", args=[self.pk])

    @property
    def display_title(self) -> str:
        return self.title or f"Program #{self.pk}"

    @property
    def is_builtin(self) -> bool:
        return self.dataset != Dataset.USER


class Puzzle(models.Model):
    """A P3 programming puzzle: find ``x`` such that ``sat(x)`` is true."""

    name = models.CharField(
        max_length=120, unique=True, help_text="Family:instance, e.g. Study_1:0"
    )
    family = models.CharField(max_length=120, db_index=True)
    source_index = models.PositiveIntegerField(help_text="Position in the source puzzles.json.")
    sat = models.TextField()
    ans_type = models.CharField(max_length=200)
    sol_header = models.TextField(blank=True)
    sol_docstring = models.TextField(blank=True)
    sol_bodies = models.JSONField(default=list, blank=True)
    module = models.CharField(max_length=100, db_index=True)
    notes = models.TextField(blank=True)
    weight = models.FloatField(default=1.0)

    class Meta:
        ordering = ["source_index"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("programs:puzzle", args=[self.name])

    @property
    def description(self) -> str:
        """The puzzle's docstring, without quotes and indentation."""
        return self.sol_docstring.strip().strip('"').strip()

    def reference_solutions(self) -> list[str]:
        """Each known solution as a complete ``sol()`` function."""
        return [f"{self.sol_header}\n{self.sol_docstring}\n{body}" for body in self.sol_bodies]


class Task(models.Model):
    """A BIG-Bench Hard task: a family of natural-language reasoning examples."""

    name = models.SlugField(max_length=80, unique=True)
    canary = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("programs:task", args=[self.name])

    @property
    def title(self) -> str:
        return self.name.replace("_", " ").capitalize()


class TaskExample(models.Model):
    """One instance of a task: the question (with its options) and the exact expected answer."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="examples")
    index = models.PositiveIntegerField()
    input = models.TextField()
    target = models.TextField()

    class Meta:
        ordering = ["task", "index"]
        constraints = [
            models.UniqueConstraint(fields=["task", "index"], name="task_example_unique_index")
        ]

    def __str__(self) -> str:
        return f"{self.task.name} #{self.index}"

    def get_absolute_url(self) -> str:
        return reverse("programs:task_example", args=[self.task.name, self.index])
