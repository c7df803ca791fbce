"""The image installs exactly what pyproject.toml declares: deploy/requirements*.lock (written by
`make lock`) pin every package with its hashes, agree with pyproject.toml's pins, and hold
nothing production does not run (no embedded PostgreSQL, Redis or model, no test tools)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
STALE = "run `make lock` after changing pyproject.toml"


def _lock(name: str) -> dict[str, tuple[str, list[str]]]:
    """A lock file's packages: canonical name -> (version, hashes)."""
    text = (DEPLOY / name).read_text()
    packages: dict[str, tuple[str, list[str]]] = {}
    # One requirement per block: "name==version ; marker \" then "--hash=..." lines.
    for block in re.split(r"\n(?=\S)", text):
        if block.startswith("#") or not block.strip():
            continue
        head = block.split("\\", 1)[0].strip()
        requirement = Requirement(head)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1, f"{name}: {head!r} is not pinned"
        assert specifiers[0].operator == "==", f"{name}: {head!r} is not pinned with =="
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
        packages[canonicalize_name(requirement.name)] = (specifiers[0].version, hashes)
    return packages


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for line in requirements:
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


@pytest.mark.parametrize(
    ("lock", "declared"),
    [
        ("requirements.lock", PROJECT["dependencies"]),
        (
            "requirements-model.lock",
            PROJECT["dependencies"] + PROJECT["optional-dependencies"]["embedded-model"],
        ),
    ],
)
def test_each_lock_pins_what_pyproject_declares_with_hashes(lock: str, declared: list[str]) -> None:
    packages = _lock(lock)
    for name, (_version, hashes) in packages.items():
        assert hashes, f"{lock}: {name} has no hash (pip --require-hashes would refuse it)"
    for name, version in _pins(declared).items():
        assert name in packages, f"{lock} lacks {name}: {STALE}"
        assert packages[name][0] == version, (
            f"{lock} has {name}=={packages[name][0]}, pyproject.toml {version}: {STALE}"
        )


def test_the_production_lock_holds_nothing_production_does_not_run() -> None:
    """No embedded PostgreSQL, Redis or model and no test tool, unless a production dependency
    itself needs it (uvicorn[standard] brings PyYAML, which the tests also declare)."""
    text = (DEPLOY / "requirements.lock").read_text()
    extras = PROJECT["optional-dependencies"]
    never = _pins(extras["local"]) | _pins(extras["embedded-model"]) | _pins(extras["dev"])
    for name in set(never) - set(_pins(PROJECT["dependencies"])):
        block = re.search(rf"^{re.escape(name)}==.*?(?=^\S|\Z)", text, re.MULTILINE | re.DOTALL)
        if block is None:
            continue
        needed_by = re.findall(r"#\s+(?:via )?([\w.\[\]-]+)", block.group(0))
        assert needed_by, f"{name} is in the image, needed by nothing"
        assert set(needed_by) != {"code-reasoning-playground"}, f"{name} is in the image"


def test_the_weights_lock_is_the_makefiles_weights() -> None:
    weights = re.search(r"^WEIGHTS := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert weights is not None
    requirement = Requirement(weights.group(1))
    packages = _lock("requirements-weights.lock")
    assert list(packages) == [canonicalize_name(requirement.name)]
    (specifier,) = requirement.specifier
    assert packages[canonicalize_name(requirement.name)][0] == specifier.version, STALE


def test_the_image_installs_the_lock_and_only_the_lock() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    installs = re.findall(r"pip install ([^\n\\]*)", dockerfile)
    assert installs, "the Dockerfile installs nothing with pip"
    for command in installs:
        assert "--require-hashes" in command, command
        assert "--no-deps" in command, command
    assert "ARG BASE_IMAGE" in dockerfile
    assert "FROM ${BASE_IMAGE} AS runtime" in dockerfile
