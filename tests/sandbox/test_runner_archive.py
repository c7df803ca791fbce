"""The runner archive ships every module of ``inside/``, so that a module split off
(coc_rewrite.py from the Chain of Code runtime) reaches the sandbox without a list to update."""

from __future__ import annotations

import io
import zipfile

from playground.sandbox import jail


def test_every_inside_module_ships() -> None:
    names = set(zipfile.ZipFile(io.BytesIO(jail.runner_archive())).namelist())
    modules = {path.name for path in jail.INSIDE.glob("*.py")}
    assert {"runner.py", "tracer.py", "coc_rewrite.py", "coc_runtime.py"} <= modules
    assert modules <= names
    assert "seccomp.bpf" in names
