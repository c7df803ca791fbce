"""The hiding policy as a table: every surface x every role x every assignment state (with and
without exam mode), first for ``hiding.decide`` itself against the table written out below, then
for the real pages, API routes and forms of each surface, which must do what ``decide`` says.
Later changes keep this file green: a new surface gets a row here and a probe below.

The table, for a student of the assignment's course (S = show or allow, H = hidden / refused as
hidden, E = refused by exam mode); each state has two letters: exam mode off, then on.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground.benchmarks.models import Evaluation, Result
from playground.classroom import variants
from playground.classroom.models import (
    Assignment,
    Course,
    Item,
    Membership,
    Mode,
    Results,
    Role,
    Submission,
)
from playground.classroom.visibility import (
    EXAM_MESSAGE,
    HIDDEN_MESSAGE,
    State,
    Surface,
    Verdict,
    Viewer,
    decide,
    state_of,
)
from playground.programs.models import Program
from playground.programs.signals import ANON_TOKEN_KEY
from playground.runs.models import Run
from playground.sharing.models import ShareLink
from tests.classroom.student_world import (
    SECRET,
    client_for,
    hand_made_key,
    library_program,
    puzzle,
    real_trace,
)
from tests.factories import UserFactory

#                      upcoming  open  late  others  closed
STUDENT_TABLE = """
LIBRARY      item      S S       H H   H H   H H     S S
RUN          item      S S       H H   H H   H H     S S
START_RUN    item      S S       H E   H E   H H     S S
EVALUATION   item      S S       H H   H H   H H     S S
PREVIEW      item      S S       H E   H E   H H     S S
SAVE_ITEM    item      S S       H E   H E   H H     S S
SHARE        item      S S       H H   H H   H H     S S
LIBRARY      other     S S       S S   S S   S S     S S
RUN          other     S S       S S   S S   S S     S S
START_RUN    other     S S       S E   S E   S S     S S
EVALUATION   other     S S       S S   S S   S S     S S
PREVIEW      other     S S       S E   S E   S S     S S
SAVE_ITEM    other     S S       S E   S E   S S     S S
SHARE        other     S S       S S   S S   S S     S S
START_EVALUATION -     S S       S E   S E   S S     S S
NEW_COURSE   -         S S       S E   S E   S S     S S
SCORE        item      S H       S H   S H   S H     S H
SCORE        other     S S       S S   S S   S S     S S
"""
# A student's own results of an item (issue 24), by the item's results rule and whether an
# instructor has published the assignment's results. The "SCORE item" row above is the rule an
# item has by default (the assignment's "after each attempt"), unpublished: in exam mode nothing
# is shown before publishing. "After the due time" means after the student's own window (late
# period and extension included): "others" and "closed". A timed exam's states are the same
# five, for the student's own clock (TIMED_TABLE below).
RESULTS_TABLE = """
SCORE  now        unpublished  S H   S H   S H   S H   S H
SCORE  now        published    S S   S S   S S   S S   S S
SCORE  due        unpublished  H H   H H   H H   S H   S H
SCORE  due        published    S S   S S   S S   S S   S S
SCORE  published  unpublished  H H   H H   H H   H H   H H
SCORE  published  published    S S   S S   S S   S S   S S
SCORE  never      unpublished  H H   H H   H H   H H   H H
SCORE  never      published    H H   H H   H H   H H   H H
"""
# The modes whose key is more than the call's value (issue 20: the probes' true answers, all from
# the real run; issue 21: the run under a rule, and the standard run beside it) are hidden as any
# item is, on their own programs: their rows must be the "item" rows above, and their surfaces
# are probed for real below (a run, a share link, starting a run: under the item's rule).
MODE_TABLE = """
LIBRARY      probes    S S       H H   H H   H H     S S
RUN          probes    S S       H H   H H   H H     S S
SHARE        probes    S S       H H   H H   H H     S S
LIBRARY      rule      S S       H H   H H   H H     S S
RUN          rule      S S       H H   H H   H H     S S
START_RUN    rule      S S       H E   H E   H H     S S
SHARE        rule      S S       H H   H H   H H     S S
RUN          varied    S S       H H   H H   H H     S S
SHARE        varied    S S       H H   H H   H H     S S
LIBRARY      nextstate S S       H H   H H   H H     S S
RUN          nextstate S S       H H   H H   H H     S S
SHARE        nextstate S S       H H   H H   H H     S S
"""
# Predict the next state (issue 24): its key is the real run, every step of it; the item page
# reveals a step only after its prediction (tests/classroom/test_next_state.py), and everywhere
# else the run is hidden as any item's.
# A varied item (issue 24: each student gets their own call, variants.py): a variant's key is a
# real run of the item's program on another call. Its rows are the item rows too: one's own run
# of the program on a variant's call, and a share link of a variant's key run, hide the variant's
# value as they hide the item's (the program text, not the call, is what the policy knows).
VARIED = "varied"
# Everyone else (anonymous visitors, people outside the course, assistants, instructors) sees and
# starts everything, except a share link of an item's run: a link reaches whoever holds it.
STATES = [State.UPCOMING, State.OPEN, State.LATE, State.OTHERS, State.CLOSED]
LETTER = {"S": Verdict.SHOW, "H": Verdict.HIDDEN, "E": Verdict.EXAM}


def _student_table() -> dict[tuple[Surface, bool, State, bool], Verdict]:
    table = {}
    for line in STUDENT_TABLE.strip().splitlines():
        name, thing, *letters = line.split()
        assert len(letters) == 2 * len(STATES), line
        for i, state in enumerate(STATES):
            for exam in (False, True):
                letter = letters[2 * i + exam]
                for is_item in (True, False) if thing == "-" else (thing == "item",):
                    table[Surface[name], is_item, state, exam] = LETTER[letter]
    return table


def _mode_table() -> dict[tuple[Surface, str, State, bool], Verdict]:
    table = {}
    for line in MODE_TABLE.strip().splitlines():
        name, mode, *letters = line.split()
        assert len(letters) == 2 * len(STATES), line
        for i, state in enumerate(STATES):
            for exam in (False, True):
                table[Surface[name], mode, state, exam] = LETTER[letters[2 * i + exam]]
    return table


def _results_table() -> dict[tuple[str, bool, State, bool], Verdict]:
    table = {}
    for line in RESULTS_TABLE.strip().splitlines():
        _, rule, published, *letters = line.split()
        assert len(letters) == 2 * len(STATES), line
        for i, state in enumerate(STATES):
            for exam in (False, True):
                key = (rule, published == "published", state, exam)
                table[key] = LETTER[letters[2 * i + exam]]
    return table


def test_the_results_table_covers_every_rule() -> None:
    table = _results_table()
    rules = {rule for rule, *_ in table}
    assert rules == {r.value for r in Results if r.value}
    assert len(table) == len(rules) * 2 * len(STATES) * 2


def test_decide_follows_the_results_table() -> None:
    for (rule, published, state, exam), want in _results_table().items():
        for viewer in Viewer:
            got = decide(
                Surface.SCORE, viewer, state, exam_mode=exam, is_item=True, results=rule,
                published=published,
            )  # fmt: skip
            expect = want if viewer is Viewer.STUDENT else Verdict.SHOW
            assert got is expect, (rule, published, state, exam, viewer)


def test_the_default_rule_is_the_results_tables_now_row() -> None:
    """An item that follows its assignment's "after each attempt" is the "now" row, unpublished."""
    items, results = _student_table(), _results_table()
    for state, exam in itertools.product(STATES, (False, True)):
        assert items[Surface.SCORE, True, state, exam] is results["now", False, state, exam]


# A timed exam (issue 24) from one student's side: the window is 09:00 to 13:00, 30 minutes each;
# this student starts at 10:00 (their end: 10:30). Each moment is one of the five states, by the
# student's own clock, so every row above applies to it as written (exam mode: no run while the
# student may still start or is working; after their end, hidden but free, as "others").
TIMED_TABLE = """
08:59:59  not-started  upcoming
09:30:00  not-started  open
10:00:00  started      open
10:30:00  started      open
10:30:01  started      others
10:15:00  handed-in    others
12:59:59  never        open
13:00:01  never        closed
13:00:01  started      closed
"""


@pytest.mark.django_db
def test_a_timed_exams_states_follow_the_students_own_clock() -> None:
    from datetime import UTC, datetime

    from playground.classroom import exams

    day = datetime(2026, 6, 1, tzinfo=UTC)

    def at(clock: str) -> Any:
        h, m, sec = map(int, clock.split(":"))
        return day.replace(hour=h, minute=m, second=sec)

    course = Course.objects.create(title="Exams")
    a = Assignment.objects.create(
        course=course, title="Midterm", opens_at=at("09:00:00"), due_at=at("13:00:00"),
        time_limit=30, exam_mode=True,
    )  # fmt: skip
    for n, line in enumerate(TIMED_TABLE.strip().splitlines()):
        clock, phase, state_name = line.split()
        student = UserFactory(username=f"timed{n}")
        Membership.objects.create(course=course, user=student, role=Role.STUDENT)
        if phase in ("started", "handed-in"):
            exams.start(assignment=a, student=student, now=at("10:00:00"))
        if phase == "handed-in":
            exams.finish(assignment=a, student=student, now=at("10:10:00"))
        want = State[state_name.upper()]
        got = state_of(a, student, at(clock))
        assert got is want, line
        # And so the rows above: a run of anything refused while the student works (exam mode).
        run = decide(Surface.START_RUN, Viewer.STUDENT, got, exam_mode=True, is_item=False)
        assert run is _student_table()[Surface.START_RUN, False, want, True], line


def test_the_modes_rows_are_the_rows_of_any_item() -> None:
    items = _student_table()
    assert {mode for _, mode, _, _ in _mode_table()} == {
        Mode.PROBES,
        Mode.RULE,
        VARIED,
        Mode.NEXT_STATE,
    }
    for (surface, _, state, exam), verdict in _mode_table().items():
        assert verdict is items[surface, True, state, exam], (surface, state, exam)


def expected(surface: Surface, viewer: Viewer, state: State, exam: bool, is_item: bool) -> Verdict:
    """The written table (not ``decide``): what every surface must do."""
    student = _student_table()[surface, is_item, state, exam]
    if viewer is Viewer.STUDENT or surface is Surface.SHARE:
        return student
    return Verdict.SHOW


def test_the_table_covers_every_surface() -> None:
    assert {surface for surface, *_ in _student_table()} == set(Surface)
    assert len(_student_table()) == len(Surface) * 2 * len(STATES) * 2


@pytest.mark.parametrize("surface", list(Surface), ids=lambda s: s.name)
def test_decide_follows_the_table(surface: Surface) -> None:
    for viewer, state, exam, is_item in itertools.product(
        Viewer, STATES, (False, True), (True, False)
    ):
        got = decide(surface, viewer, state, exam_mode=exam, is_item=is_item)
        want = expected(surface, viewer, state, exam, is_item)
        assert got is want, (surface, viewer, state, exam, is_item)


# -- The real surfaces -------------------------------------------------------------------------

OTHER_SOURCE = "def g(n):\n    return str(n) * 2\n"
OTHER_CALL = "g(4123)"
OTHER_SECRET = "41234123"
SOLUTION_MARK = "the-reference-solution"


@dataclass
class World:
    """One assignment in one state, and everything each kind of viewer could reach it by."""

    state: State
    exam: bool
    course: Course
    assignment: Assignment
    program: Program  # the item's program (its result: SECRET)
    other: Program  # a public program in no assignment (its result: OTHER_SECRET)
    puzzle_name: str
    share: ShareLink
    evaluation: Evaluation
    users: dict[Viewer, Any]
    clients: dict[Viewer, Client]
    earlier: dict[Viewer, Run]  # each viewer's own run of the item's program, from before
    own_items: dict[Viewer, tuple[Course, Assignment, Item]]  # an item on it in their own course
    # The probes and rule items: each mode's program, its secret, its key's share link, and each
    # viewer's own earlier run of it (under the rule, for the rule's).
    modes: dict[str, ModeItem]
    graded: Submission  # the student's graded answer to the item (right)


@dataclass
class ModeItem:
    program: Program
    secret: str
    share: ShareLink
    earlier: dict[Viewer, Run]


def _times(state: State) -> dict[str, Any]:
    now = timezone.now()
    hour, day = timedelta(hours=1), timedelta(days=1)
    return {
        State.UPCOMING: {"opens_at": now + hour, "due_at": now + day},
        State.OPEN: {"opens_at": now - hour, "due_at": now + day},
        State.LATE: {"opens_at": now - day, "due_at": now - hour, "late_until": now + day},
        # The student's window is over; another student's extension is not.
        State.OTHERS: {"opens_at": now - day, "due_at": now - hour},
        State.CLOSED: {"opens_at": now - 3 * day, "due_at": now - 2 * day},
    }[state]


def _stored_run(
    program: Program, result: str, *, rule: str = "", call: str = "", **owner: Any
) -> Run:
    run = Run.objects.create(
        program=program, source=program.source, call=call or program.call,
        status=Run.Status.DONE, rule=rule, **owner,
    )  # fmt: skip
    run.traces.create(kind="real", status="ok", data=real_trace(f"'{result}'"))
    if rule:
        run.traces.create(kind="standard", status="ok", data=real_trace("'standard'"))
    return run


PROBES_SOURCE = "def p(s):\n    t = s.upper()\n    return t + '!'\n"
RULE_SOURCE = "def r(a, b):\n    return 'qv' + str(a + b) + 'zk-ruled'\n"
MODE_RULE = "swap-add-sub"
VARIED_SOURCE = "def v(n):\n    return 'vq' + str(n * 111) + 'zk-varied'\n"
VARIANT_CALL = "v(7)"  # the item's own call is v(2): the variant's value is another
NEXT_SOURCE = "def n(k):\n    word = 'nx' + str(k * 3)\n    return word + 'zk-next'\n"
MODES = (Mode.PROBES, Mode.RULE, VARIED, Mode.NEXT_STATE)
# ``decide`` knows no modes: their rows are checked hidden (open) and shown (closed), which keeps
# the table's cost down; the rows themselves equal the item rows in every state (above).
MODE_STATES = (State.OPEN, State.CLOSED)


def _mode_item(
    assignment: Assignment, mode: str, instructor: Any, users: dict[Viewer, Any]
) -> ModeItem:
    """An item of this mode on a program of its own, with its key (under the rule, for the
    rule's) shared by the instructor, and each viewer's earlier run of the program."""
    source, call, secret, number = {
        Mode.PROBES: (PROBES_SOURCE, "p('probe-q')", "PROBE-Q!", 9003),
        Mode.RULE: (RULE_SOURCE, "r(9, 4)", "qv5zk-ruled", 9004),  # 9 - 4: + subtracts
        VARIED: (VARIED_SOURCE, "v(2)", "vq777zk-varied", 9005),  # the variant v(7)'s value
        Mode.NEXT_STATE: (NEXT_SOURCE, "n(41)", "nx123zk-next", 9006),
    }[mode]
    program = library_program(
        source=source, call=call, expected=f"'{secret}'", title=f"CRUXEval sample_{number}",
        external_id=f"sample_{number}",
    )  # fmt: skip
    rule = MODE_RULE if mode == Mode.RULE else ""
    varied = mode == VARIED
    item = Item.objects.create(
        assignment=assignment, mode=Mode.OUTPUT if varied else mode, program=program, rule=rule,
        position=2, variation={"args": [{"index": 0, "range": [1, 9]}]} if varied else {},
    )  # fmt: skip
    # A varied item: the key that matters is its variant's (a run of the program on v(7)).
    variant_call = VARIANT_CALL if varied else ""
    key = _stored_run(program, secret, rule=rule, call=variant_call, owner=instructor)
    if varied:
        item.variants.create(
            spec=variants.spec_key(item), number=0, call=VARIANT_CALL, run=key, status="valid"
        )
    else:
        Item.objects.filter(pk=item.pk).update(key_run=key)
    earlier = {}
    for viewer, user in users.items():
        owner = {"owner": user} if user is not None else {"anon_owner": "anon-token-of-the-visitor"}
        earlier[viewer] = _stored_run(program, secret, rule=rule, call=variant_call, **owner)
    share = ShareLink.objects.create(run=key, created_by=instructor)
    return ModeItem(program, secret, share, earlier)


def _world(state: State, exam: bool) -> World:
    instructor, assistant = UserFactory(username="teacher"), UserFactory(username="assistant")
    student, other_student = UserFactory(username="student1"), UserFactory(username="student2")
    outsider = UserFactory(username="outsider")
    course = Course.objects.create(title="Execution 101", created_by=instructor)
    for user, role in ((instructor, Role.INSTRUCTOR), (assistant, Role.ASSISTANT),
                       (student, Role.STUDENT), (other_student, Role.STUDENT)):  # fmt: skip
        Membership.objects.create(course=course, user=user, role=role)
    program = library_program()
    other = library_program(
        source=OTHER_SOURCE, call=OTHER_CALL, expected=f"'{OTHER_SECRET}'",
        title="CRUXEval sample_9002", external_id="sample_9002",
    )  # fmt: skip
    the_puzzle = puzzle()
    assignment = Assignment.objects.create(
        course=course, title="Loops", exam_mode=exam, **_times(state)
    )
    if state is State.OTHERS:
        assignment.extensions.create(
            student=other_student, due_at=timezone.now() + timedelta(days=1)
        )
    item = Item.objects.create(assignment=assignment, mode=Mode.OUTPUT, program=program)
    key = hand_made_key(item, real=real_trace(f"'{SECRET}'"), owner=instructor)
    Item.objects.create(assignment=assignment, mode=Mode.PUZZLE, puzzle=the_puzzle, position=1)
    graded = Submission.objects.create(
        item=item, student=student, attempt=1, answer=f"'{SECRET}'", score=1.0, credit=1.0,
        status=Submission.Status.GRADED, feedback={"message": "Right."},
    )  # fmt: skip
    share = ShareLink.objects.create(run=key, created_by=instructor)

    evaluation = Evaluation.objects.create(
        dataset="cruxeval", method="direct", model="tiny", status="done", total=2
    )
    for index, (prog, secret) in enumerate(((program, SECRET), (other, OTHER_SECRET))):
        Result.objects.create(
            evaluation=evaluation, index=index, item_key=prog.external_id,
            item_ref={"program": prog.pk}, status=Result.Status.DONE, passed=True,
            prediction=f"'{secret}'", score_status="pass",
        )  # fmt: skip

    users = {
        Viewer.ANONYMOUS: None,
        Viewer.OUTSIDER: outsider,
        Viewer.STUDENT: student,
        Viewer.ASSISTANT: assistant,
        Viewer.INSTRUCTOR: instructor,
    }
    clients = {viewer: client_for(user) for viewer, user in users.items()}
    earlier, own_items = {}, {}
    for viewer, user in users.items():
        if user is None:
            session = clients[viewer].session
            session[ANON_TOKEN_KEY] = "anon-token-of-the-visitor"
            session.save()
            owner: dict[str, Any] = {"anon_owner": "anon-token-of-the-visitor"}
        else:
            owner = {"owner": user}
        earlier[viewer] = _stored_run(program, SECRET, **owner)
        if user is not None:  # a course of their own, with an item on the same program
            mine = Course.objects.create(title=f"{user.username}'s course", created_by=user)
            Membership.objects.create(course=mine, user=user, role=Role.INSTRUCTOR)
            own = Assignment.objects.create(course=mine, title="Mine", **_times(State.OPEN))
            own_item = Item.objects.create(assignment=own, mode=Mode.OUTPUT, program=program)
            hand_made_key(own_item, real=real_trace(f"'{SECRET}'"), owner=user)
            own_items[viewer] = (mine, own, own_item)
    modes = (
        {mode: _mode_item(assignment, mode, instructor, users) for mode in MODES}
        if state in MODE_STATES
        else {}
    )
    return World(
        state=state, exam=exam, course=course, assignment=assignment, program=program,
        other=other, puzzle_name=the_puzzle.name, share=share, evaluation=evaluation,
        users=users, clients=clients, earlier=earlier, own_items=own_items, modes=modes,
        graded=graded,
    )  # fmt: skip


def _text(response: Any) -> str:
    return response.content.decode() if not getattr(response, "streaming", False) else ""


def _refused_as(response: Any, verdict: Verdict) -> bool:
    """Whether a start-something response says no for this reason (403 with the message)."""
    body = _text(response)
    if verdict is Verdict.HIDDEN:
        return response.status_code == 403 and "still open" in body
    return response.status_code == 403 and "Exam mode" in body


# Each probe does one thing a viewer can do and returns what the site did: a Verdict.
Probe = Callable[[World, Viewer], Verdict | None]


def _shows(body: str, secret: str, hidden_marks: tuple[str, ...]) -> Verdict:
    if secret in body:
        return Verdict.SHOW
    assert any(mark in body for mark in hidden_marks), body[:2000]
    return Verdict.HIDDEN


def probe_library(w: World, v: Viewer, *, item: bool, mode: str = "") -> Verdict:
    program, secret = (w.program, SECRET) if item else (w.other, OTHER_SECRET)
    if mode:
        program, secret = w.modes[mode].program, w.modes[mode].secret
    response = w.clients[v].get(reverse("programs:detail", args=[program.pk]))
    assert response.status_code == 200
    return _shows(_text(response), secret, ("still open",))


def probe_puzzle_page(w: World, v: Viewer) -> Verdict:
    response = w.clients[v].get(reverse("programs:puzzle", args=[w.puzzle_name]))
    assert response.status_code == 200
    return _shows(_text(response), SOLUTION_MARK, ("still open",))


def probe_run(w: World, v: Viewer, *, mode: str = "") -> Verdict:
    """Every way to read one's own earlier run of the item's program: all agree."""
    run = w.modes[mode].earlier[v] if mode else w.earlier[v]
    secret = w.modes[mode].secret if mode else SECRET
    client = w.clients[v]
    verdicts = set()
    for url in (
        reverse("runs:detail", args=[run.pk]),
        reverse("runs:status", args=[run.pk]),
        reverse("runs:trace_json", args=[run.pk]),
        f"/api/runs/{run.pk}",
    ):
        response = client.get(url)
        if response.status_code == 403:
            assert secret not in _text(response), url
            verdicts.add(Verdict.HIDDEN)
        else:
            assert response.status_code == 200, url
            # (The status fragment of a finished run is empty: the page reloads itself.)
            assert secret in _text(response) or "status" in url, url
            verdicts.add(Verdict.SHOW)
    mine = _text(client.get(reverse("runs:mine")))
    verdicts.add(Verdict.HIDDEN if "hidden while an assignment is open" in mine else Verdict.SHOW)
    listed = client.get("/api/runs")  # the API's "My runs"
    row = next(r for r in listed.json()["results"] if r["id"] == run.pk)
    verdicts.add(Verdict.HIDDEN if row["hidden"] else Verdict.SHOW)
    assert row["hidden"] is (row["status"] is None), row
    assert not row["hidden"] or secret not in _text(listed)
    assert len(verdicts) == 1, (url, verdicts)
    return verdicts.pop()


def _start_verdict(response: Any, allowed: int) -> Verdict:
    if response.status_code == allowed:
        return Verdict.SHOW
    for verdict in (Verdict.HIDDEN, Verdict.EXAM):
        if _refused_as(response, verdict):
            return verdict
    body = _text(response)
    if "Exam mode" in body:
        return Verdict.EXAM
    raise AssertionError((response.status_code, body[:500]))


def probe_start_run(w: World, v: Viewer, *, item: bool) -> Verdict:
    program = w.program if item else w.other
    client = w.clients[v]
    page = _start_verdict(client.post(reverse("runs:start", args=[program.pk])), 302)
    api = client.post(
        "/api/runs", {"source": program.source, "call": program.call}, "application/json"
    )
    if api.status_code == 403:
        detail = api.json()["detail"]
        api_verdict = Verdict.HIDDEN if detail == HIDDEN_MESSAGE else Verdict.EXAM
        assert detail.startswith(EXAM_MESSAGE[:10]) or detail == HIDDEN_MESSAGE
    else:
        assert api.status_code == 201, api.content
        api_verdict = Verdict.SHOW
    assert page is api_verdict, (page, api_verdict)
    return page


def probe_evaluation(w: World, v: Viewer, *, item: bool) -> Verdict:
    client = w.clients[v]
    secret = SECRET if item else OTHER_SECRET
    verdicts = set()
    for name in ("benchmarks:detail", "benchmarks:export_json", "benchmarks:export_csv"):
        response = client.get(reverse(name, args=[w.evaluation.pk]))
        # The exports are streamed (and end): read to their end.
        body = (
            b"".join(response.streaming_content).decode() if response.streaming else _text(response)
        )
        verdicts.add(_shows(body, secret, ("hidden while an assignment is open",)))
    assert len(verdicts) == 1, verdicts
    return verdicts.pop()


def probe_preview(w: World, v: Viewer, *, item: bool) -> Verdict | None:
    if v not in w.own_items:
        return None  # no course of one's own without an account
    course, own, own_item = w.own_items[v]
    if not item:
        own_item = Item.objects.create(assignment=own, mode=Mode.OUTPUT, program=w.other)
        hand_made_key(own_item, real=real_trace(f"'{OTHER_SECRET}'"), owner=w.users[v])
    url = reverse("classroom:item_edit", args=[course.pk, own.pk, own_item.pk])
    body = _text(w.clients[v].get(url))
    secret = SECRET if item else OTHER_SECRET
    if secret in body:
        return Verdict.SHOW
    assert 'id="preview-refusal"' in body
    return Verdict.EXAM if "Exam mode" in body else Verdict.HIDDEN


def probe_save_item(w: World, v: Viewer, *, item: bool) -> Verdict | None:
    if v not in w.own_items:
        return None
    course, own, _ = w.own_items[v]
    program = w.program if item else w.other
    before = Item.objects.filter(assignment=own).count()
    response = w.clients[v].post(
        reverse("classroom:item_new", args=[course.pk, own.pk]),
        {"mode": Mode.OUTPUT, "origin": "library", "pick": f"program:{program.pk}", "points": "1"},
    )
    if response.status_code == 302:
        assert Item.objects.filter(assignment=own).count() == before + 1
        return Verdict.SHOW
    assert Item.objects.filter(assignment=own).count() == before
    body = _text(response)
    if "Exam mode" in body:
        return Verdict.EXAM
    assert "still open" in body, body[:3000]
    return Verdict.HIDDEN


def probe_share(w: World, v: Viewer, *, item: bool, mode: str = "") -> Verdict:
    link = w.share if item else ShareLink.objects.create(run=_stored_run(w.other, OTHER_SECRET))
    secret = SECRET if item else OTHER_SECRET
    if mode:
        link, secret = w.modes[mode].share, w.modes[mode].secret
    verdicts = set()
    for name in ("sharing:view", "sharing:embed", "sharing:status"):
        response = w.clients[v].get(reverse(name, args=[link.token]))
        if response.status_code == 404:
            assert secret not in _text(response)
            verdicts.add(Verdict.HIDDEN)
        else:
            assert response.status_code == 200
            verdicts.add(Verdict.SHOW)
    assert len(verdicts) == 1
    return verdicts.pop()


def probe_start_rule_run(w: World, v: Viewer) -> Verdict:
    """Starting a run of the rule item's program under its rule, from its page and the API."""
    program = w.modes[Mode.RULE].program
    client = w.clients[v]
    page = _start_verdict(
        client.post(reverse("runs:start", args=[program.pk]), {"rule": MODE_RULE}), 302
    )
    api = client.post(
        "/api/runs",
        {"source": program.source, "call": program.call, "rule": MODE_RULE},
        "application/json",
    )
    if api.status_code == 403:
        api_verdict = Verdict.HIDDEN if api.json()["detail"] == HIDDEN_MESSAGE else Verdict.EXAM
    else:
        assert api.status_code == 201, api.content
        assert api.json()["rule"] == MODE_RULE
        api_verdict = Verdict.SHOW
    assert page is api_verdict, (page, api_verdict)
    return page


def probe_start_evaluation(w: World, v: Viewer) -> Verdict | None:
    if w.users[v] is None:
        return None  # evaluations need an account
    before = Evaluation.objects.count()
    response = w.clients[v].post(
        reverse("benchmarks:start"),
        {"dataset": "cruxeval", "method": "direct", "model": "smollm2-135m", "limit": "1"},
        follow=True,
    )
    if Evaluation.objects.count() == before + 1:
        return Verdict.SHOW
    assert "Exam mode" in _text(response)
    return Verdict.EXAM


def probe_new_course(w: World, v: Viewer) -> Verdict | None:
    if w.users[v] is None:
        return None
    before = Course.objects.count()
    response = w.clients[v].post(reverse("classroom:course_new"), {"title": "Another"})
    if response.status_code == 302:
        assert Course.objects.count() == before + 1
        return Verdict.SHOW
    assert Course.objects.count() == before
    assert _refused_as(response, Verdict.EXAM)
    return Verdict.EXAM


def probe_score(w: World, v: Viewer) -> Verdict | None:
    """The student's own result of the item: in the API's submissions and on the item page
    (both agree); staff read it in the API."""
    if v in (Viewer.ANONYMOUS, Viewer.OUTSIDER):
        return None  # not in the course: no submissions to read
    if v is Viewer.STUDENT and w.state is State.UPCOMING:
        return None  # the assignment is not shown to students before it opens
    client = w.clients[v]
    url = f"/api/courses/{w.course.pk}/assignments/{w.assignment.pk}/submissions"
    response = client.get(url)
    assert response.status_code == 200, response.content
    row = next(r for r in response.json() if r["id"] == w.graded.pk)
    api = Verdict.SHOW if row.get("score") == 1.0 else Verdict.HIDDEN
    assert api is Verdict.SHOW or not {"score", "credit", "message"} & set(row), row
    if v is Viewer.STUDENT:
        body = _text(client.get(w.graded.item.get_absolute_url()))
        page = Verdict.SHOW if 'data-score="1.0"' in body else Verdict.HIDDEN
        assert page is Verdict.SHOW or 'id="results-wait"' in body, body[:3000]
        assert page is api, (page, api)
    return api


def _probes() -> Iterator[tuple[Surface, bool, Probe]]:
    for item in (True, False):
        yield Surface.LIBRARY, item, lambda w, v, i=item: probe_library(w, v, item=i)
        yield Surface.START_RUN, item, lambda w, v, i=item: probe_start_run(w, v, item=i)
        yield Surface.EVALUATION, item, lambda w, v, i=item: probe_evaluation(w, v, item=i)
        yield Surface.PREVIEW, item, lambda w, v, i=item: probe_preview(w, v, item=i)
        yield Surface.SAVE_ITEM, item, lambda w, v, i=item: probe_save_item(w, v, item=i)
        yield Surface.SHARE, item, lambda w, v, i=item: probe_share(w, v, item=i)
    yield Surface.LIBRARY, True, probe_puzzle_page
    yield Surface.RUN, True, probe_run
    yield Surface.START_EVALUATION, False, probe_start_evaluation
    yield Surface.NEW_COURSE, False, probe_new_course
    yield Surface.SCORE, True, probe_score


def _mode_probes() -> Iterator[tuple[Surface, str, Probe]]:
    for mode in (Mode.PROBES, Mode.RULE, Mode.NEXT_STATE):
        yield Surface.LIBRARY, mode, lambda w, v, m=mode: probe_library(w, v, item=True, mode=m)
        yield Surface.RUN, mode, lambda w, v, m=mode: probe_run(w, v, mode=m)
        yield Surface.SHARE, mode, lambda w, v, m=mode: probe_share(w, v, item=True, mode=m)
    # A varied item: a run on a variant's call, and a share link of the variant's key run.
    yield Surface.RUN, VARIED, lambda w, v: probe_run(w, v, mode=VARIED)
    yield Surface.SHARE, VARIED, lambda w, v: probe_share(w, v, item=True, mode=VARIED)
    yield Surface.START_RUN, Mode.RULE, probe_start_rule_run


def test_every_mode_row_is_probed() -> None:
    assert {(surface, mode) for surface, mode, _ in _mode_probes()} == {
        (surface, mode) for surface, mode, _, _ in _mode_table()
    }


def test_every_surface_is_probed() -> None:
    assert {surface for surface, _, _ in _probes()} == set(Surface)


@pytest.mark.django_db
@pytest.mark.parametrize("exam", [False, True], ids=["exam-off", "exam-on"])
@pytest.mark.parametrize("state", STATES, ids=lambda s: s.name.lower())
def test_every_surface_does_what_the_table_says(state: State, exam: bool) -> None:
    w = _world(state, exam)
    wrong = []
    # Starting things comes last: a run or a course made by one probe must not change another's.
    for surface, item, probe in sorted(_probes(), key=lambda p: p[0] in _STARTING):
        for viewer in Viewer:
            got = probe(w, viewer)
            if got is None:
                continue
            want = expected(surface, viewer, state, exam, item)
            if got is not want:
                wrong.append(f"{surface.name} ({'item' if item else 'other'}) for {viewer.name}: "
                             f"the site says {got.name}, the table {want.name}")  # fmt: skip
    # The modes' items: a student (hidden), an instructor (shown) and a visitor (a share link
    # reaches anyone) tell the rows apart; the other roles are the same code path as these.
    for surface, mode, probe in sorted(_mode_probes(), key=lambda p: p[0] in _STARTING):
        if state not in MODE_STATES:
            break
        for viewer in (Viewer.STUDENT, Viewer.INSTRUCTOR, Viewer.ANONYMOUS):
            got = probe(w, viewer)
            student = _mode_table()[surface, mode, state, exam]
            want = student if viewer is Viewer.STUDENT or surface is Surface.SHARE else Verdict.SHOW
            if got is not want:
                wrong.append(f"{surface.name} ({mode} item) for {viewer.name}: "
                             f"the site says {got.name}, the table {want.name}")  # fmt: skip
    assert wrong == []


_STARTING = {Surface.START_RUN, Surface.SAVE_ITEM, Surface.START_EVALUATION, Surface.NEW_COURSE}


@pytest.mark.django_db
def test_the_probes_see_a_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probes can fail: with the policy switched off, a student sees the item's result."""
    import playground.classroom.visibility as hiding

    monkeypatch.setattr(hiding, "decide", lambda *a, **k: Verdict.SHOW)
    w = _world(State.OPEN, exam=True)
    assert probe_library(w, Viewer.STUDENT, item=True) is Verdict.SHOW
    assert probe_run(w, Viewer.STUDENT) is Verdict.SHOW
    assert probe_evaluation(w, Viewer.STUDENT, item=True) is Verdict.SHOW
    assert probe_preview(w, Viewer.STUDENT, item=True) is Verdict.SHOW
    assert probe_share(w, Viewer.ANONYMOUS, item=True) is Verdict.SHOW
    for mode in (Mode.PROBES, Mode.RULE, Mode.NEXT_STATE):
        assert probe_run(w, Viewer.STUDENT, mode=mode) is Verdict.SHOW
        assert probe_share(w, Viewer.ANONYMOUS, item=True, mode=mode) is Verdict.SHOW
    assert probe_new_course(w, Viewer.STUDENT) is Verdict.SHOW
    assert expected(Surface.LIBRARY, Viewer.STUDENT, State.OPEN, True, True) is Verdict.HIDDEN
