"""Every environment variable the code reads is documented in deploy/.env.example and the README."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_READERS = [
    ROOT / "playground" / "settings.py",
    ROOT / "playground" / "launcher.py",
    ROOT / "playground" / "lib" / "paths.py",
    ROOT / "playground" / "lib" / "worktimes.py",
    ROOT / "playground" / "sandbox" / "jail.py",
    ROOT / "playground" / "sandbox" / "warm_pool.py",
    ROOT / "playground" / "sandbox" / "setting.py",
    ROOT / "playground" / "llm" / "registry.py",
    ROOT / "playground" / "celery.py",
    ROOT / "playground" / "launcher.py",
]
_NAME = re.compile(r"""["']((?:PLAYGROUND_[A-Z0-9_]+)|DATABASE_URL|REDIS_URL)["']""")


def _read_variables() -> set[str]:
    names: set[str] = set()
    for path in _READERS:
        names |= set(_NAME.findall(path.read_text()))
    return names


def test_code_reads_the_documented_core_variables() -> None:
    names = _read_variables()
    assert {"DATABASE_URL", "REDIS_URL", "PLAYGROUND_SECRET_KEY", "PLAYGROUND_PORT"} <= names


def test_every_variable_is_in_env_example() -> None:
    example = (ROOT / "deploy" / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert _read_variables() <= documented, sorted(_read_variables() - documented)


def test_every_variable_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    in_table = set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]+)`", readme, re.MULTILINE))
    assert _read_variables() <= in_table, sorted(_read_variables() - in_table)
