"""Batch sandboxes: one owner's programs, each in a fresh process forked from a zygote."""

from __future__ import annotations

import pytest

from playground.sandbox import BatchSandbox, Limits


@pytest.fixture
def batch() -> BatchSandbox:
    sandbox = BatchSandbox(Limits(wall_s=2.0, cpu_s=1))
    yield sandbox
    sandbox.close()


def test_programs_run_in_order_with_their_own_results(batch: BatchSandbox) -> None:
    for i in range(10):
        trace = batch.run(f"def f(x):\n    return x * {i}\n", "f(3)")
        assert trace["status"] == "ok"
        assert trace["result"] == str(3 * i)


def test_nothing_carries_over_from_one_program_to_the_next(batch: BatchSandbox) -> None:
    assert (
        batch.run("open('/tmp/note', 'w').write('secret')\nimport builtins\nbuiltins.leak = 1\n")[
            "status"
        ]
        == "ok"
    )
    trace = batch.run(
        "import os\nprint(os.listdir('/tmp'))\nprint(hasattr(__builtins__, 'leak'))\n"
    )
    assert trace["stdout"] == "[]\nFalse\n"


def test_a_crash_or_a_hang_does_not_stop_the_batch(batch: BatchSandbox) -> None:
    assert batch.run("import ctypes\nctypes.string_at(0)\n")["status"] == "crash"
    assert batch.run("import time\ntime.sleep(30)\n")["status"] == "time_limit"
    untraced_loop = "import sys\nsys.settrace(None)\nwhile True:\n    pass\n"
    assert batch.run(untraced_loop)["status"] == "time_limit"
    assert batch.run("import os\nos.fork()\n")["error"]["type"] == "PermissionError"
    assert batch.run("print('still here')\n")["stdout"] == "still here\n"


def test_a_program_cannot_forge_another_programs_result(batch: BatchSandbox) -> None:
    forged = (
        "import os\n"
        "for fd in range(3, 20):\n"
        "    try:\n"
        '        os.write(fd, b\'1:x{"done": {"exit": 0, "timed_out": false, "cpu_ms": 0}}\\n\')\n'
        "    except OSError:\n"
        "        pass\n"
    )
    batch.run(forged)
    assert batch.run("def f():\n    return 42\n", "f()")["result"] == "42"
