"""factory_boy factories for the models tests create."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model

from playground.programs.models import Dataset, Program, Puzzle
from playground.runs.models import Run, Trace


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery staple")


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Program

    title = factory.Sequence(lambda n: f"Program {n}")
    source = "def f(x):\n    return x + 1\n"
    call = "f(1)"
    dataset = Dataset.USER
    owner = factory.SubFactory(UserFactory)
    is_public = False


class PuzzleFactory(factory.django.DjangoModelFactory):
    """A P3 puzzle of the library: find a string of three "ab"s (unless told another ``sat``)."""

    class Meta:
        model = Puzzle

    name = factory.Sequence(lambda n: f"Study_{n}:0")
    family = factory.LazyAttribute(lambda p: p.name.split(":")[0])
    source_index = 0
    module = "study"
    ans_type = "str"
    sat = "def sat(s: str):\n    return s == 'ab' * 3\n"


class RunFactory(factory.django.DjangoModelFactory):
    """A run of a program, with the program's text copied in as ``start_run`` copies it (a real
    run, queued, unless told otherwise)."""

    class Meta:
        model = Run

    program = factory.SubFactory(ProgramFactory)
    source = factory.LazyAttribute(lambda r: r.program.source if r.program else "")
    call = factory.LazyAttribute(lambda r: r.program.call if r.program else "")


def store_traces(run: Run, real: dict[str, Any], emulated: dict[str, Any]) -> None:
    """Store a finished run's real and emulated traces as the pipeline stores them."""
    for kind, data in (("real", real), ("emulated", emulated)):
        Trace.objects.create(
            run=run, kind=kind, status=data["status"], step_count=len(data["steps"]), data=data
        )
