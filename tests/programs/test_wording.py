"""Numbers read as people write them: "1 line", never "1 lines" (the program page said "1 lines"
on 3103616), with the noun in the plural for every other count."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from playground.lib.wording import counted
from playground.programs.models import Dataset, Program, Task, TaskExample
from playground.streaming.fragments import status_text
from tests.factories import ProgramFactory

pytestmark = pytest.mark.django_db

# A count of one followed by a plural noun: what no page may say.
ONE_PLURAL = re.compile(
    r"\b1 (lines|characters|steps|examples|problems|puzzles|short functions|reasoning tasks)\b"
)


def test_counted_picks_the_noun_for_the_number() -> None:
    assert counted(1, "line") == "1 line"
    assert counted(0, "line") == "0 lines"
    assert counted(2, "line") == "2 lines"
    assert counted(12345, "step") == "12,345 steps"
    assert counted(1, "entry,entries") == "1 entry"
    assert counted(3, "entry,entries") == "3 entries"
    assert counted(None, "step") == "None steps"  # never an exception in a template


def test_a_one_line_program_has_one_line_and_a_longer_one_lines(client: Client) -> None:
    one = ProgramFactory(source="x = 1\n", call="", is_public=True)
    page = client.get(one.get_absolute_url()).content.decode()
    assert "6 characters · 1 line ·" in page
    assert not ONE_PLURAL.search(page)
    two = ProgramFactory(source="def f(x):\n    return x\n", is_public=True)
    assert "2 lines ·" in client.get(two.get_absolute_url()).content.decode()
    single = ProgramFactory(source="1", call="", is_public=True)
    assert "1 character · 1 line ·" in client.get(single.get_absolute_url()).content.decode()


def test_library_counts_of_one_are_singular(client: Client) -> None:
    Program.objects.create(title="c", source="def f():\n    return 1\n", call="f()",
                           dataset=Dataset.CRUXEVAL, is_public=True)  # fmt: skip
    Program.objects.create(title="h", source="def g():\n    return 1\n", call="g()",
                           dataset=Dataset.HUMANEVAL, is_public=True)  # fmt: skip
    task = Task.objects.create(name="navigate")
    TaskExample.objects.create(task=task, index=0, input="Go north.", target="Yes")
    pages = {
        "home": client.get("/").content.decode(),
        "task": client.get(task.get_absolute_url()).content.decode(),
    }
    for name, page in pages.items():
        assert not ONE_PLURAL.search(page), (name, ONE_PLURAL.search(page))
    assert "1 short function," in pages["home"]
    assert "1 reasoning task with 1 example," in pages["home"]
    assert "1 example ·" in pages["task"]


def test_the_live_status_of_a_one_step_trace_is_singular() -> None:
    text = status_text({"type": "emulated", "steps": 1, "status": "ok"})
    assert text == "The model's trace is complete (1 step, ok)."
    assert "(3 steps," in status_text({"type": "emulated", "steps": 3, "status": "ok"})
