"""The backup and restore that deploy/README.md documents, done for real on PostgreSQL: a course
with its students, an assignment and a graded answer, a run with its real trace; `pg_dump -Fc`
(the documented command), every table wiped, `pg_restore --clean --if-exists` (the documented
command); afterwards every table holds exactly the rows it held (compared by content), and the
site reads the run's trace and the course's roster from the restored database."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from playground.classroom.models import Item, Membership, Mode, Submission
from playground.lib import paths
from playground.local_services import _package_dir
from playground.runs import pipeline
from playground.runs.models import Run, Trace
from tests.classroom.student_world import assignment, course_world, library_program, puzzle

pytestmark = pytest.mark.django_db(transaction=True)

README = paths.REPO_DIR / "deploy" / "README.md"
# The server's own tools (the embedded PostgreSQL's; a server of its own version reads its dump).
BIN = _package_dir("pgserver") / "pginstall" / "bin"


def _contents() -> dict[str, tuple[int, str]]:
    """Every table of the site: its row count and a digest of its rows (ordered by their text)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        tables = sorted(row[0] for row in cursor.fetchall())
        found = {}
        for table in tables:
            name = connection.ops.quote_name(table)  # a name from the catalogue, quoted
            rows = "string_agg(t::text, E'\\n' ORDER BY t::text)"
            query = f"SELECT count(*), md5(coalesce({rows}, '')) FROM public.{name} t"  # noqa: S608
            cursor.execute(query)
            count, digest = cursor.fetchone()
            found[table] = (count, digest)
    return found


def _connection_args() -> list[str]:
    """Where the test database is, as the tools take it (the socket directory as -h)."""
    connection.ensure_connection()
    info = connection.connection.info
    return ["-h", info.host, "-p", str(info.port), "-U", info.user, "-d", info.dbname]


def test_a_dump_restored_after_a_wipe_gives_back_every_run_and_class(tmp_path: Path) -> None:
    world = course_world()
    item = Item.objects.create(
        assignment=assignment(world.course), mode=Mode.PUZZLE, puzzle=puzzle()
    )
    Submission.objects.create(
        item=item, student=world.s1, attempt=1, answer="'ababab'", score=1.0, credit=1.0,
        status=Submission.Status.GRADED, feedback={"late_factor": 1.0},
    )  # fmt: skip
    program = library_program()
    run = Run.objects.create(program=program, source=program.source, call=program.call)
    assert pipeline.execute_real(run.pk) == "ok"
    before = _contents()
    assert before["runs_trace"][0] == 1
    assert before["classroom_membership"][0] == 3

    dump = tmp_path / "playground.dump"
    subprocess.run(
        [str(BIN / "pg_dump"), "-Fc", *_connection_args(), "-f", str(dump)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    call_command("flush", "--noinput")  # the wipe
    assert Run.objects.count() == 0
    assert Membership.objects.count() == 0
    subprocess.run(
        [str(BIN / "pg_restore"), "--clean", "--if-exists", *_connection_args(), str(dump)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip

    assert _contents() == before
    restored = Run.objects.get(pk=run.pk)
    trace = Trace.objects.get(run=restored, kind=Trace.Kind.REAL)
    assert trace.data["result"] == "'zq-7731'"
    roster = Membership.objects.filter(course=world.course).values_list("user__username", flat=True)
    assert sorted(roster) == ["student1", "student2", "teacher"]
    assert Submission.objects.get(item=item).score == 1.0


def test_the_readme_documents_the_commands_this_test_runs() -> None:
    text = README.read_text()
    assert "pg_dump -U playground -Fc playground" in text
    assert "pg_restore -U playground -d playground --clean --if-exists" in text
