"""A run's real trace in CWM's format, for users: the owner's download and a share link's follow
the trace's own access rules (a stranger gets nothing of a private run, a link holder gets it
while the link is active, an open assignment hides it from its students), and
``manage.py trace --format cwm`` prints the same text."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground import sandbox
from playground.compare import cwm
from playground.runs.models import Run, Trace
from playground.sharing.models import ShareLink
from tests.classroom.student_world import client_for
from tests.classroom.test_hidden_answers import world  # noqa: F401 (a fixture)
from tests.factories import ProgramFactory, UserFactory

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "cwm"
SOURCE = "def f(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n"
CALL = "f(3)"


def _private_run() -> tuple[Run, Client]:
    owner = UserFactory()
    client = Client()
    client.force_login(owner)
    program = ProgramFactory(owner=owner, is_public=False, source=SOURCE, call=CALL)
    run = Run.objects.create(
        program=program, source=SOURCE, call=CALL, owner=owner, status=Run.Status.DONE
    )
    real = sandbox.run(SOURCE, call=CALL)
    Trace.objects.create(
        run=run, kind="real", status="ok", step_count=len(real["steps"]), data=real
    )
    return run, client


def _download(client: Client, url: str) -> tuple[int, str, str]:
    response = client.get(url)
    return response.status_code, response["Content-Type"], response.content.decode()


@pytest.mark.django_db
def test_the_owner_downloads_the_real_trace_in_cwms_format() -> None:
    run, owner = _private_run()
    response = owner.get(reverse("runs:trace_cwm", args=[run.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="run-{run.pk}-trace.cwm.txt"'
    assert response.content == (GOLDEN / "loop.txt").read_bytes()


@pytest.mark.django_db
def test_a_stranger_gets_nothing_and_a_link_holder_gets_it_while_the_link_lasts() -> None:
    run, _ = _private_run()
    url = reverse("runs:trace_cwm", args=[run.pk])
    anonymous = Client()
    signed_in = Client()
    signed_in.force_login(UserFactory())
    for stranger in (anonymous, signed_in):
        status, _, body = _download(stranger, url)
        assert status == 404
        assert "total" not in body
    link = ShareLink.objects.create(run=run, created_by=run.owner)
    shared = reverse("sharing:trace_cwm", args=[link.token])
    assert _download(anonymous, shared) == (
        200, "text/plain; charset=utf-8", (GOLDEN / "loop.txt").read_text(),
    )  # fmt: skip
    assert _download(anonymous, url)[0] == 404  # the link opens the link's address only
    link.revoked_at = timezone.now()
    link.save(update_fields=["revoked_at"])
    assert _download(anonymous, shared)[0] == 404
    assert _download(anonymous, reverse("sharing:trace_cwm", args=["not-a-token"]))[0] == 404


@pytest.mark.django_db
def test_a_run_without_a_real_trace_says_so() -> None:
    owner = UserFactory()
    client = Client()
    client.force_login(owner)
    program = ProgramFactory(owner=owner, source=SOURCE, call=CALL)
    run = Run.objects.create(program=program, source=SOURCE, call=CALL, owner=owner)
    assert _download(client, reverse("runs:trace_cwm", args=[run.pk])) == (
        404, "text/plain; charset=utf-8", "This run has no real trace (yet).",
    )  # fmt: skip


@pytest.mark.django_db
def test_an_open_assignment_hides_the_download_from_its_students(
    world: SimpleNamespace,  # noqa: F811
) -> None:
    w = world
    student = client_for(w.s1)
    assert student.get(reverse("runs:trace_cwm", args=[w.earlier.pk])).status_code == 403
    assert student.get(reverse("runs:trace_cwm", args=[w.key.pk])).status_code == 404
    shared = reverse("sharing:trace_cwm", args=[w.share.token])
    assert Client().get(shared).status_code == 404
    assert client_for(w.instructor).get(shared).status_code == 404  # a link shows no one


def test_the_command_prints_the_trace_in_cwms_format(tmp_path: Path) -> None:
    path = tmp_path / "prog.py"
    path.write_text(SOURCE)
    out = io.StringIO()
    call_command("trace", str(path), "--call", CALL, "--format", "cwm", stdout=out)
    assert out.getvalue() == (GOLDEN / "loop.txt").read_text() + "\n"
    parsed = cwm.parse(out.getvalue(), SOURCE)
    assert parsed.ended
    assert [f.line for f in parsed.frames] == [1, 2, 3, 4, 3, 4, 3, 4, 3, 5, 5]
    with pytest.raises(CommandError, match="--format cwm is for one program"):
        call_command("trace", "--jsonl", str(path), "--format", "cwm", stdout=io.StringIO())
