"""No exception leaves a run running (or a puzzle answer "being graded") for ever: the tasks'
last resort fails it with a generic message and logs the detail.

The errors are forced with monkeypatch (a bug, a lost connection, a time limit): a real part
cannot produce them on demand. tests/runs/test_worker.py shows one through a real worker.
"""

from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from playground import sandbox
from playground.benchmarks import execution
from playground.benchmarks import services as evaluations
from playground.benchmarks.models import Result
from playground.classroom.models import Item, Mode, Submission
from playground.classroom.tasks import grade_puzzle_submission
from playground.runs import pipeline, tasks
from playground.runs.models import Run
from playground.runs.services import start_run
from tests.classroom.student_world import assignment, course_world, puzzle
from tests.factories import ProgramFactory

pytestmark = pytest.mark.django_db
SERVER_ERROR = "The server failed while running this; the error was logged. Try again later."


class Boom(RuntimeError):
    pass


def _explode(*args: object, **kwargs: object) -> None:
    raise Boom("internal detail: postgresql://user:secret@db/\nsecond line")


def _run(method: str = "real") -> Run:
    program = ProgramFactory(source="def f(x):\n    return x\n", call="f(1)", is_public=True)
    model = "smollm2-135m" if method != "real" else ""
    return start_run(program=program, user=None, anon_token="t", method=method, model=model,
                     enqueue=False)  # fmt: skip


def test_an_error_in_the_real_run_fails_it_with_a_generic_message(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    run = _run()
    monkeypatch.setattr(sandbox, "run", _explode)
    assert tasks.execute_real_run.run(run.pk) == "failed"
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert run.error == SERVER_ERROR  # nothing of the detail reaches the user
    assert run.finished_at is not None
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is Boom]
    assert logged, "the detail goes to the log"
    assert f"run {run.pk}" in logged[0].getMessage()


def test_an_error_in_the_emulation_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run("direct")
    monkeypatch.setattr(pipeline, "item_for_run", _explode)
    assert tasks.execute_emulation.run(run.pk) == "failed"
    run.refresh_from_db()
    assert (run.status, run.error) == (Run.Status.FAILED, SERVER_ERROR)


def test_a_task_past_its_soft_time_limit_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def too_long(*args: object, **kwargs: object) -> None:
        raise SoftTimeLimitExceeded()

    run = _run()
    monkeypatch.setattr(sandbox, "run", too_long)
    tasks.execute_real_run.run(run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert run.error == "The server gave up on this run: it took longer than allowed."


def test_a_finished_run_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last resort never overwrites a run that finished (or was cancelled) meanwhile."""
    run = _run()
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)

    def cancel_then_fail(*args: object, **kwargs: object) -> None:
        Run.objects.filter(pk=run.pk).update(status=Run.Status.CANCELLED)
        raise Boom("after the cancel")

    monkeypatch.setattr(sandbox, "run", cancel_then_fail)
    tasks.execute_real_run.run(run.pk)
    run.refresh_from_db()
    assert (run.status, run.error) == (Run.Status.CANCELLED, "")


def test_an_error_while_grading_a_puzzle_answer_ends_its_grading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = course_world()
    item = Item.objects.create(assignment=assignment(w.course), mode=Mode.PUZZLE, puzzle=puzzle())
    submission = Submission.objects.create(
        item=item, student=w.s1, attempt=1, answer="'ababab'", feedback={"late_factor": 1.0}
    )
    monkeypatch.setattr(sandbox, "run", _explode)
    assert grade_puzzle_submission.run(submission.pk) == "failed"
    submission.refresh_from_db()
    assert submission.status == Submission.Status.GRADED
    assert submission.score == 0.0
    assert submission.feedback["message"].startswith("This answer could not be checked")
    assert "secret" not in submission.feedback["message"]
    assert submission.feedback["late_factor"] == 1.0


def test_an_error_in_an_evaluation_item_fails_its_run_and_scores_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch worker runs the run pipeline itself; before, a run whose task raised
    stayed running for ever (and a worker restart would run it again)."""
    program = ProgramFactory(source="def f(x):\n    return x\n", call="f(1)", is_public=True)
    evaluation = evaluations.create_evaluation(
        dataset="programs", method="direct", model="smollm2-135m", subset=[program.pk],
        owner=program.owner, start=False,
    )  # fmt: skip
    result = Result.objects.get(evaluation=evaluation)
    Result.objects.filter(pk=result.pk).update(status=Result.Status.RUNNING)
    monkeypatch.setattr(sandbox, "run", _explode)
    execution.process(result.pk)
    result.refresh_from_db()
    assert result.run is not None
    assert (result.run.status, result.run.error) == (Run.Status.FAILED, SERVER_ERROR)
    assert (result.status, result.score_status) == (Result.Status.DONE, "error")
