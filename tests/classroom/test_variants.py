"""Varied items (variants.py): the generator as typed, candidates that raise or run past a limit
never handed out (each candidate's key a real run in the sandbox), a student's variant stable and
two students on different ones, grading against the student's own key, what staff and students
see, the making idempotent, and who may see a variant's key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse

from playground.classroom import authoring, submissions, variants
from playground.classroom.models import Item, Membership, Mode, Role, Submission, Variant
from playground.runs.models import Run
from tests.classroom.student_world import assignment, client_for, course_world, library_program
from tests.factories import UserFactory
from tests.limits import assert_refused, fresh_address, public

pytestmark = pytest.mark.django_db

# 100 // (n - 3): n = 3 raises ZeroDivisionError; n = 2 loops until the step limit. Every other
# n in 1..9 returns its own value (-50, 100, 50, 33, 25, 20, 16).
SOURCE = "def f(n):\n    while n == 2:\n        pass\n    return 100 // (n - 3)\n"
CALL = "f(5)"
GOOD = {1: "-50", 4: "100", 5: "50", 6: "33", 7: "25", 8: "20", 9: "16"}


def test_the_generator_is_read_from_the_form_and_checked_against_the_call() -> None:
    spec = variants.parse("1: 1..9\n2: 'ab' | \"xyz\" | 'ab'", "g(3, 'ab')", count=5, seed=2)
    assert spec == {
        "args": [{"index": 0, "range": [1, 9]}, {"index": 1, "choices": ["'ab'", "'xyz'"]}],
        "count": 5,
        "seed": 2,
    }
    assert variants.parse(variants.as_text(spec), "g(3, 'ab')", count=5, seed=2) == spec
    assert variants.parse("  \n", "g(3)") == {}
    for text, call, why in [
        ("3: 1..2", "g(1, 2)", "there is no argument 3"),
        ("1: 1..9", "g(x)", "not a literal"),
        ("1: 9..1", "g(1)", "is empty"),
        ("1: __import__('os')", "g(1)", "not a Python literal"),
        ("1 1..9", "g(1)", "write the argument's number"),
        ("1: 1..9", "g()", "Only a call with arguments"),
        ("1: 1..2\n1: 3..4", "g(1)", "varied twice"),
    ]:
        with pytest.raises(variants.VariationError, match=why):
            variants.parse(text, call)


def test_candidates_are_distinct_and_in_an_order_the_item_and_seed_fix() -> None:
    spec = variants.parse("1: 1..9\n2: 'a' | 'b'", "g(0, 'a')")
    first = variants.candidates(spec, "g(0, 'a')", item_id=7, limit=40)
    assert len(first) == 18 == len(set(first))  # the whole space: 9 x 2
    assert first == variants.candidates(spec, "g(0, 'a')", item_id=7, limit=40)
    assert first != variants.candidates(spec, "g(0, 'a')", item_id=8, limit=40)
    assert variants.candidates(spec, "g(0, 'a')", item_id=7, limit=5) == first[:5]
    big = variants.parse("1: 1..1000000000", "g(0)")
    sampled = variants.candidates(big, "g(0)", item_id=7, limit=40)
    assert len(sampled) == 40 == len(set(sampled))


@pytest.fixture
def varied(
    eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[..., Item]:
    """A varied item whose variants are made by the real task in the sandbox (run at once)."""

    def make(a: Any, *, mode: str = Mode.OUTPUT, count: int = 8, seed: int = 0) -> Item:
        program = library_program(source=SOURCE, call=CALL, expected="50")
        data = authoring.ItemData(
            mode=mode, title="Divide", prompt="", points=2.0, program=program, puzzle=None,
            new_source=None, new_call="", checkpoints=[], model="", method="",
            variation=variants.parse("1: 1..9", CALL, count=count, seed=seed),
        )  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            item, _ = authoring.save_item(
                assignment=a, item=None, data=data, by=a.course.created_by
            )
        item.refresh_from_db()
        return item

    return make


def test_a_candidate_that_raises_or_hits_a_limit_is_never_handed_out(
    varied: Callable[..., Item],
) -> None:
    w = course_world()
    item = varied(assignment(w.course), count=8)
    made = {v.call: v for v in Variant.objects.filter(item=item)}
    # All 9 candidates were needed (8 wanted): two refused, with the reason.
    assert set(made) == {f"f({n})" for n in range(1, 10)}
    assert made["f(3)"].status == Variant.Status.REFUSED
    assert "ZeroDivisionError" in made["f(3)"].problem
    assert made["f(2)"].status == Variant.Status.REFUSED
    assert "limit" in made["f(2)"].problem
    good = variants.valid(item)
    assert {v.call for v in good} == {f"f({n})" for n in GOOD}
    for v in good:  # each valid variant's key is its own real run
        assert v.run is not None
        assert v.run.call == v.call
        assert v.run.status == Run.Status.DONE
        assert v.run.real_trace.data["result"] == GOOD[int(v.call[2:-1])]
    # Too few valid ones: the item's page says so.
    progress = variants.progress(item)
    assert progress.done
    assert (progress.valid, progress.wanted) == (7, 8)
    assert "Only 7 valid variants of the 8 wanted" in progress.short
    # However many students: never f(2) nor f(3).
    students = [UserFactory() for _ in range(30)]
    got = {variants.variant_for(item, s).call for s in students}  # type: ignore[union-attr]
    assert got <= {f"f({n})" for n in GOOD}
    assert len(got) > 3


def test_a_students_variant_is_stable_and_two_students_get_different_ones(
    varied: Callable[..., Item],
) -> None:
    w = course_world()
    item = varied(assignment(w.course), count=7)
    one = variants.variant_for(item, w.s1)
    assert one is not None
    # The draw is a digest of item, student and seed: over a few classmates (each joining the
    # course), one falls on another variant than student1 (all seven alike: 1 in 7 ** 9).
    other = w.s2
    for _ in range(8):
        if variants.variant_for(item, other).pk != one.pk:  # type: ignore[union-attr]
            break
        other = UserFactory()
        Membership.objects.create(course=w.course, user=other, role=Role.STUDENT)
    two = variants.variant_for(item, other)
    assert two is not None
    assert one.call != two.call
    again = Item.objects.get(pk=item.pk)  # a fresh read: the same, every time
    for _ in range(3):
        assert variants.variant_for(again, w.s1).pk == one.pk  # type: ignore[union-attr]
    assert variants.index_for(item.pk, w.s1.pk, 0, 7) == variants.index_for(item.pk, w.s1.pk, 0, 7)
    # Their pages ask their own call, never the item's own f(5) (unless that is their variant).
    for student, mine in ((w.s1, one), (other, two)):
        page = client_for(student).get(item.get_absolute_url()).content.decode()
        assert f"The call: <code>{mine.call}</code>" in page
        assert GOOD[int(mine.call[2:-1])] not in page.split("The call:")[1].split("</p>")[0]


def test_each_answer_is_graded_against_the_students_own_variant(
    varied: Callable[..., Item],
) -> None:
    w = course_world()
    item = varied(assignment(w.course), count=7)
    one = variants.variant_for(item, w.s1)
    two = variants.variant_for(item, w.s2)
    assert one is not None
    assert two is not None
    others = [n for n in GOOD if f"f({n})" != one.call]
    # student1 answers another variant's value: wrong; then their own: right.
    wrong = GOOD[others[0]]
    sub, _ = submissions.submit(item=variants.for_student(item, w.s1), student=w.s1, answer=wrong)
    assert sub is not None
    assert sub.score == 0.0
    assert sub.variant_id == one.pk
    own = GOOD[int(one.call[2:-1])]
    sub, _ = submissions.submit(item=variants.for_student(item, w.s1), student=w.s1, answer=own)
    assert sub is not None
    assert sub.score == 1.0
    assert sub.variant_id == one.pk
    # Through the page too: the view grades with the student's own key.
    own_two = GOOD[int(two.call[2:-1])]
    url = reverse("classroom:submit", args=[w.course.pk, item.assignment_id, item.pk])
    client_for(w.s2).post(url, {"answer": own_two})
    last = Submission.objects.filter(item=item, student=w.s2).latest("attempt")
    assert last.score == 1.0
    assert last.variant_id == two.pk
    # The staff's submissions list names each answer's variant.
    staff = client_for(w.instructor)
    listing = staff.get(
        reverse("classroom:submissions", args=[w.course.pk, item.assignment_id])
        + f"?student={w.s1.pk}"
    ).content.decode()
    assert f"variant <code>{one.call}</code>" in listing
    assert "What this student got" in listing
    book = staff.get(reverse("classroom:gradebook", args=[w.course.pk, item.assignment_id]))
    assert f"<code>{two.call}</code>" in book.content.decode()


def test_predict_the_input_is_graded_against_the_variants_output(
    varied: Callable[..., Item], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    w = course_world()
    item = varied(assignment(w.course), mode=Mode.INPUT, count=7)
    mine = variants.variant_for(item, w.s1)
    assert mine is not None
    n = int(mine.call[2:-1])
    seen = variants.for_student(item, w.s1)
    with django_capture_on_commit_callbacks(execute=True):
        sub, _ = submissions.submit(item=seen, student=w.s1, answer=f"f({n})")
    assert sub is not None
    sub.refresh_from_db()
    assert sub.score == 1.0, sub.feedback
    other = next(k for k in GOOD if GOOD[k] != GOOD[n])
    with django_capture_on_commit_callbacks(execute=True):
        sub, _ = submissions.submit(item=seen, student=w.s1, answer=f"f({other})")
    assert sub is not None
    sub.refresh_from_db()
    assert sub.score == 0.0


def test_making_again_runs_and_doubles_nothing_and_a_killed_worker_resumes(
    varied: Callable[..., Item],
) -> None:
    w = course_world()
    item = varied(assignment(w.course), count=3)
    rows, runs = Variant.objects.filter(item=item).count(), Run.objects.count()
    assert variants.make(item.pk, variants.spec_key(item)) == "ok"
    assert (Variant.objects.filter(item=item).count(), Run.objects.count()) == (rows, runs)
    # A worker killed after it made a candidate's row and run, before running it: the next
    # task runs that same run and makes no second one.
    Item.objects.filter(pk=item.pk).update(variation={**item.variation, "count": 5})
    item.refresh_from_db()
    key = variants.spec_key(item)
    calls = variants.candidates(item.variation, CALL, item_id=item.pk, limit=40)
    left = variants._candidate(item, key, 0, calls[0])
    assert left.run is not None
    assert not Run.objects.get(pk=left.run_id).is_finished
    assert variants.make(item.pk, key) == "ok"
    left.refresh_from_db()
    assert left.status != Variant.Status.PENDING
    assert left.run_id is not None
    assert Variant.objects.filter(item=item, spec=key, number=0).count() == 1
    assert len(variants.valid(item)) == 5
    # A task of an older generator finds the item changed and does nothing.
    assert variants.make(item.pk, "0" * 64) == "stale"


def test_the_form_refuses_a_generator_that_does_not_fit() -> None:
    w = course_world()
    a = assignment(w.course)
    client = client_for(w.instructor)
    url = reverse("classroom:item_new", args=[w.course.pk, a.pk])
    response = client.post(
        url,
        {"mode": "output", "points": "1", "origin": "new", "source": SOURCE, "call": "f(5)",
         "vary": "2: 1..9", "variant_count": "4"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "The call has 1 argument: there is no argument 2." in response.content.decode()
    response = client.post(
        url,
        {"mode": "output", "points": "1", "origin": "new", "source": SOURCE, "call": "f(5)",
         "vary": "1: 1..9", "variant_count": "500"},
    )  # fmt: skip
    assert "At most 20 variants." in response.content.decode()
    assert not Item.objects.filter(assignment=a).exists()


# Who may see a variant's key: its run page, and the item's page that lists the variants with
# their values. People: anonymous, a student of the course, an outsider, an assistant, the
# instructor (as tests/classroom/test_permissions.py).
KEY_PAGES = {
    "item page (variants with values)": ["login", 403, 404, 200, 200],
    "the variant's key run": [404, 404, 404, 404, 200],
}


def test_who_may_see_a_variants_key(varied: Callable[..., Item]) -> None:
    w = course_world()
    assistant = UserFactory(username="assistant")
    Membership.objects.create(course=w.course, user=assistant, role=Role.ASSISTANT)
    item = varied(assignment(w.course), count=3)
    mine = variants.variant_for(item, w.s1)
    assert mine is not None
    assert mine.run is not None
    value = GOOD[int(mine.call[2:-1])]
    urls = {
        "item page (variants with values)": reverse(
            "classroom:item_edit", args=[w.course.pk, item.assignment_id, item.pk]
        ),
        "the variant's key run": reverse("runs:detail", args=[mine.run.pk]),
    }
    people = [None, w.s1, w.outsider, assistant, w.instructor]
    for name, url in urls.items():
        got = []
        for person in people:
            response = client_for(person).get(url)
            code = response.status_code
            if code == 302 and "login" in response.headers.get("Location", ""):
                got.append("login")
                continue
            got.append(code)
            body = response.content.decode()
            if code == 200:
                assert f"<code>{value}</code>" in body or value in body, (name, person)
            else:
                assert mine.call not in body or name == "item page (variants with values)"
        assert got == KEY_PAGES[name], name


def test_no_answer_is_taken_before_a_variant_is_ready_nor_when_none_is_valid() -> None:
    w = course_world()
    program = library_program(source=SOURCE, call=CALL, expected="50")
    item = Item.objects.create(
        assignment=assignment(w.course), mode=Mode.OUTPUT, program=program,
        variation=variants.parse("1: 2..3", CALL),
    )  # fmt: skip
    client = client_for(w.s1)
    url = reverse("classroom:submit", args=[w.course.pk, item.assignment_id, item.pk])
    page = client.get(item.get_absolute_url()).content.decode()
    assert "This item is still being prepared" in page
    client.post(url, {"answer": "50"})
    # Every candidate refused (2 loops, 3 divides by zero): none is ever asked.
    key = variants.spec_key(item)
    for number, call in enumerate(
        variants.candidates(item.variation, CALL, item_id=item.pk, limit=40)
    ):
        item.variants.create(spec=key, number=number, call=call, status="refused", problem="x")
    assert variants.progress(item).short.startswith("No valid variant")
    page = client.get(item.get_absolute_url()).content.decode()
    assert "none of its variants can be asked" in page
    client.post(url, {"answer": "50"})
    assert not Submission.objects.filter(item=item).exists()
    staff = client_for(w.instructor).get(
        reverse("classroom:item_edit", args=[w.course.pk, item.assignment_id, item.pk])
    )
    assert "No valid variant: every one of the 2 candidates" in staff.content.decode()


def test_the_form_saves_a_generator_and_a_pool(
    eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    w = course_world()
    a = assignment(w.course)
    url = reverse("classroom:item_new", args=[w.course.pk, a.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(w.instructor).post(
            url,
            {"mode": "output", "points": "1", "origin": "new", "source": SOURCE,
             "call": "f(5)", "vary": "1: 4..6", "variant_count": "3", "pool": "B"},
        )  # fmt: skip
    assert response.status_code == 302
    item = Item.objects.get(assignment=a)
    assert item.pool == "B"
    assert item.variation == {"args": [{"index": 0, "range": [4, 6]}], "count": 3, "seed": 0}
    assert {v.call for v in variants.valid(item)} == {"f(4)", "f(5)", "f(6)"}
    edit = (
        client_for(w.instructor)
        .get(reverse("classroom:item_edit", args=[w.course.pk, a.pk, item.pk]))
        .content.decode()
    )
    assert "3 valid of 3 wanted" in edit
    assert "<code>33</code>" in edit  # f(6)'s value, for the staff


def test_a_generators_candidate_runs_are_counted_and_refused_over_the_limit(
    settings: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    settings.PLAYGROUND_LIMITS = public({"variant_runs.user": "12/h"})
    w = course_world()
    a = assignment(w.course)
    client = client_for(w.instructor)
    client.defaults["REMOTE_ADDR"] = fresh_address()
    url = reverse("classroom:item_new", args=[w.course.pk, a.pk])
    form = {"mode": "output", "points": "1", "origin": "new", "source": SOURCE, "call": "f(5)",
            "variant_count": "3"}  # fmt: skip
    # 1..9: nine candidates may be run (counted before anything is saved or run).
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post(url, {**form, "vary": "1: 1..9"}).status_code == 302
    # Nine more would pass the 12 an hour: refused, nothing saved, the form kept as typed.
    refused = client.post(url, {**form, "vary": "1: 1..9", "title": "Kept"})
    shown = assert_refused(refused, "Too many variant candidates run: at most 12 an hour.")
    assert 'value="Kept"' in refused.content.decode()
    assert "The item was not saved" in shown
    assert Item.objects.filter(assignment=a).count() == 1
    # Without a generator, saving starts no candidate and is not counted.
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post(url, form).status_code == 302


def test_preparing_again_retries_the_candidates_the_server_failed(
    varied: Callable[..., Item], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    w = course_world()
    item = varied(assignment(w.course), count=3)
    # Say the sandbox was down for one of them: its run failed, the candidate was refused.
    lost = variants.valid(item)[0]
    assert lost.run is not None
    Run.objects.filter(pk=lost.run.pk).update(status=Run.Status.FAILED, error="sandbox down")
    Variant.objects.filter(pk=lost.pk).update(status="refused", problem="sandbox down")
    assert len(variants.valid(item)) == 2
    edit = reverse("classroom:item_edit", args=[w.course.pk, item.assignment_id, item.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for(w.instructor).post(edit, {"prepare": "1"}).status_code == 302
    again = variants.valid(item)
    assert len(again) == 3
    assert lost.call in {v.call for v in again}  # the same candidate, run anew
    assert not variants.failed(item).exists()


# A generator function: candidate n is f(n + 1), except n = 1 (it raises) and n = 5 (two values
# for one argument). Run in the sandbox only, like the program.
GENERATOR = (
    "def variant(seed, n):\n"
    "    if n == 1:\n"
    "        raise ValueError('not this one')\n"
    "    if n == 5:\n"
    "        return ('two', 'values')\n"
    "    return (n + 1,)\n"
)


def test_a_generator_function_run_in_the_sandbox_makes_the_candidates(
    eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    w = course_world()
    a = assignment(w.course)
    url = reverse("classroom:item_new", args=[w.course.pk, a.pk])
    form = {"mode": "output", "points": "1", "origin": "new", "source": SOURCE, "call": "f(5)",
            "variant_count": "4"}  # fmt: skip
    client = client_for(w.instructor)
    bad = client.post(url, {**form, "vary_generator": "def other(n):\n    return (n,)\n"})
    assert "The generator defines variant(seed, n)" in bad.content.decode()
    both = client.post(url, {**form, "vary_generator": GENERATOR, "vary": "1: 1..9"})
    assert "not both" in both.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        saved = client.post(url, {**form, "vary_generator": GENERATOR})
    assert saved.status_code == 302
    item = Item.objects.get(assignment=a)
    made = {v.number: v for v in Variant.objects.filter(item=item)}
    assert "ValueError" in made[1].problem
    assert made[1].status == "refused"
    assert made[2].call == "f(3)"
    assert "ZeroDivisionError" in made[2].problem
    assert "2 values for 1 argument" in made[5].problem
    assert [v.call for v in variants.valid(item)] == ["f(1)", "f(4)", "f(5)", "f(7)"]
    mine = variants.variant_for(item, w.s1)
    assert mine is not None
    value = GOOD[int(mine.call[2:-1])]
    sub, _ = submissions.submit(item=variants.for_student(item, w.s1), student=w.s1, answer=value)
    assert sub is not None
    assert sub.score == 1.0
