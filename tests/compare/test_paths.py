"""The path verdict beside the result's (issue 20, "right answer, wrong execution"), on hand-built
traces: a right result on a wrong path, a wrong result on the right path, a model that stops or
goes on, a real trace cut short; the verdict of a trace run carries it and the run page flags the
disagreement; a probe run's path verdict comes from its path questions."""

from __future__ import annotations

from typing import Any

import pytest

from playground.compare import compare_paths, compare_prints
from playground.emulation import probes
from playground.emulation.judging import judge_program
from playground.runs.models import Run
from tests.factories import ProgramFactory, store_traces


def _trace(
    lines: list[int], result: str | None = "6", status: str = "ok", **stats: Any
) -> dict[str, Any]:
    """A trace of ``f``: its call at line 1, a line step per number, its return."""
    steps: list[dict[str, Any]] = [
        {"i": 0, "line": 1, "func": "<module>", "event": "call"},
        {"i": 1, "line": 1, "func": "<module>"},
        {"i": 2, "line": 1, "func": "<module>", "event": "return"},
        {"i": 3, "line": 1, "func": "f", "event": "call", "locals": {"n": "3"}},
    ]
    for line in lines:
        steps.append({"i": len(steps), "line": line, "func": "f"})
    if status in ("ok",):
        steps.append({"i": len(steps), "line": lines[-1], "func": "f", "event": "return",
                      "locals": {"__return__": result}})  # fmt: skip
    return {"status": status, "steps": steps, "stdout": "", "result": result,
            "stats": {"steps": len(steps), **stats}}  # fmt: skip


REAL = [2, 3, 4, 3, 4, 3, 5]


def test_the_same_lines_in_the_same_order_agree() -> None:
    found = compare_paths(_trace(REAL), _trace(REAL), from_call=True)
    assert found["status"] == "agrees"
    assert found["lines"] == found["matched"] == len(REAL)


def test_a_skipped_loop_turn_diverges_where_it_happens() -> None:
    found = compare_paths(_trace(REAL), _trace([2, 3, 4, 3, 5]), from_call=True)
    assert found["status"] == "diverges"
    assert found["at"] == 4
    assert (found["expected"], found["got"]) == (4, 5)
    assert found["real_step"] == 4 + 4  # four module and call steps come first
    assert "after 4 lines" in found["explanation"]


def test_a_model_that_ends_early_or_goes_on_diverges() -> None:
    early = compare_paths(_trace(REAL), _trace(REAL[:3]), from_call=True)
    assert early["status"] == "diverges"
    assert (early["expected"], early["got"]) == (3, None)
    longer = compare_paths(_trace(REAL), _trace([*REAL, 4]), from_call=True)
    assert longer["status"] == "diverges"
    assert (longer["expected"], longer["got"]) == (None, 4)


def test_an_unfinished_model_trace_or_a_cut_real_one_cannot_tell() -> None:
    unfinished = _trace(REAL[:3], result=None, status="parse_error")
    assert compare_paths(_trace(REAL), unfinished, from_call=True)["status"] == "unknown"
    cut = _trace(REAL[:5], result=None, status="step_limit")
    assert compare_paths(cut, _trace(REAL), from_call=True)["status"] == "unknown"
    capped = _trace(REAL, capped=True)
    assert compare_paths(capped, _trace([*REAL, 2]), from_call=True)["status"] == "unknown"
    # A difference inside what the cut trace shows is a divergence all the same.
    assert compare_paths(cut, _trace([2, 4]), from_call=True)["status"] == "diverges"


def test_the_module_lines_count_unless_from_the_call() -> None:
    real, emulated = _trace(REAL), _trace(REAL)
    emulated["steps"][1]["line"] = 9  # a module line the model got wrong
    assert compare_paths(real, emulated, from_call=True)["status"] == "agrees"
    assert compare_paths(real, emulated)["status"] == "diverges"


def test_model_written_garbage_steps_are_read_not_trusted() -> None:
    emulated = _trace(REAL)
    emulated["steps"][5] = "not a step"
    emulated["steps"][6]["line"] = "3"
    found = compare_paths(_trace(REAL), emulated, from_call=True)
    assert found["status"] == "diverges"
    assert found["got"] == -1


@pytest.mark.parametrize(
    ("lines", "result", "status", "path", "flag"),
    [
        ([2, 3, 4, 3, 5], "6", "correct", "diverges", "Right answer, wrong execution"),
        (REAL, "7", "wrong", "agrees", "Wrong answer, right execution"),
        (REAL, "6", "correct", "agrees", None),
        ([2, 3, 5], "7", "wrong", "diverges", None),
    ],
)
def test_a_trace_run_is_judged_on_both_and_the_page_flags_a_disagreement(
    lines: list[int], result: str, status: str, path: str, flag: str | None, db: None, client: Any
) -> None:
    real, emulated = _trace(REAL), _trace(lines, result=result)
    verdict, comparison = judge_program(
        "trace", real, call="f(3)", prediction=result, problem=None, emulated=emulated
    )
    assert verdict["status"] == status
    assert verdict["path"]["status"] == path
    program = ProgramFactory(source="def f(n):\n    pass\n", call="f(3)")
    client.force_login(program.owner)
    run = Run.objects.create(
        program=program, owner=program.owner, method="trace", model="test-model",
        status=Run.Status.DONE, emulation_done=True, verdict=verdict, comparison=comparison,
        source=program.source, call="f(3)", prediction=result,
    )  # fmt: skip
    store_traces(run, real, emulated)
    page = client.get(run.get_absolute_url()).content.decode()
    assert f'data-path="{path}"' in page
    if flag:
        assert f'<span class="tag flag" id="path-flag">{flag}</span>' in page
    else:
        assert 'id="path-flag"' not in page


def test_a_probe_runs_path_verdict_comes_from_its_path_questions() -> None:
    def mark(kind: str, status: str, step: int = 0) -> dict[str, Any]:
        return {"kind": kind, "status": status, "step": step, "question": f"{kind}?"}

    right = [mark("coverage", "correct"), mark("state", "wrong"), mark("path", "correct")]
    assert probes.path_verdict(right)["status"] == "agrees"  # a wrong value is not the path
    wrong = [mark("coverage", "correct"), mark("path", "wrong", 7), mark("sequence", "wrong", 1)]
    found = probes.path_verdict(wrong)
    assert found["status"] == "diverges"
    assert found["real_step"] == 7
    assert "2 of the 3" in found["explanation"]
    assert probes.path_verdict([mark("state", "correct")])["status"] == "unknown"
    assert probes.path_verdict([mark("path", "unparsable")])["status"] == "unknown"
    verdict = probes.summary([mark("output", "correct"), mark("path", "wrong")])
    assert verdict["status"] == "wrong"
    assert verdict["path"]["status"] == "diverges"


# -- Think-and-Execute: its plan's prints ---------------------------------------------------


def test_a_plans_prints_agree_or_diverge_at_the_first_differing_line() -> None:
    real = "i = 0\ntotal = 1\n\ni = 1   total = 3\nFinal answer: 3\n"
    same = compare_prints(real, ["i = 0", "total  = 1", "i = 1 total = 3", "Final answer: 4"])
    assert same["status"] == "agrees"  # whitespace aside; the answer is not the path
    assert same["lines"] == 3
    wrong = compare_prints(real, ["i = 0", "total = 2", "i = 1 total = 3", "Final answer: 3"])
    assert wrong["status"] == "diverges"
    assert wrong["at"] == 1
    assert "'total = 1', the model wrote 'total = 2'" in wrong["explanation"]
    short = compare_prints(real, ["i = 0", "Final answer: 3"])
    assert (short["status"], short["at"]) == ("diverges", 1)
    assert "but the model wrote no more" in short["explanation"]
    extra = compare_prints(real, ["i = 0", "total = 1", "i = 1 total = 3", "i = 2"])
    assert (extra["status"], extra["at"]) == ("diverges", 3)


def test_a_plan_that_prints_nothing_or_a_cut_output_cannot_tell() -> None:
    assert compare_prints("Final answer: 3\n", ["Final answer: 3"])["status"] == "unknown"
    cut = compare_prints("a\nb\n", ["a", "b", "c"], cut=True)
    assert cut["status"] == "unknown"
    assert "cut after 2 lines" in cut["explanation"]
    assert compare_prints("a\nb\n", ["a", "x"], cut=True)["status"] == "diverges"


def test_a_think_and_execute_runs_path_verdict_is_its_plans() -> None:
    """Right answer, wrong execution: the value is right but the simulated prints are not the
    plan's; the judge carries the plan's path verdict beside the result's."""
    plan_path = compare_prints("1\n2\n", ["1", "5"])
    verdict, _ = judge_program(
        "tae", {"status": "ok", "result": "6", "steps": []}, call="f(3)", prediction="6",
        problem=None, emulated=None, details={"plan_path": plan_path},
    )  # fmt: skip
    assert verdict["status"] == "correct"
    assert verdict["path"]["status"] == "diverges"
    without, _ = judge_program(
        "tae", {"status": "ok", "result": "6", "steps": []}, call="f(3)", prediction="6",
        problem=None, emulated=None, details={},
    )  # fmt: skip
    assert "path" not in without
