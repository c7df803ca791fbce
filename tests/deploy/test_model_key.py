"""M9 end to end: a real OpenAI-compatible server that requires a key (llama.cpp's, standing in for
vLLM, which checks VLLM_API_KEY the same way: a bearer token on /v1), and the model configuration
documented in deploy/README.md, which reads the key from VLLM_API_KEY. `manage.py llm check` finds
the model up with the key and down without the right one."""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.core.management import CommandError, call_command

from playground.llm.embedded import EmbeddedServerFailed, serving
from playground.llm.registry import EMBEDDED_NAME

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The embedded model's server, started with an API key; yields (base URL, key)."""
    key = secrets.token_urlsafe(32)
    log = tmp_path_factory.mktemp("keyed") / "server.log"
    try:
        with serving(
            threads=2,
            extra=[f"--api_key={key}"],  # one argument: a key may start with "-"
            headers={"Authorization": f"Bearer {key}"},
            log=log,
        ) as base:
            yield base, key
    except EmbeddedServerFailed as exc:
        pytest.fail(str(exc))


def _documented_models(base_url: str) -> str:
    """deploy/README.md's PLAYGROUND_MODELS line, pointed at the test's server and model."""
    line = re.search(
        r"^PLAYGROUND_MODELS=(.+)$", (ROOT / "deploy/README.md").read_text(), re.MULTILINE
    )
    assert line is not None
    text = line.group(1)
    for old, new in (('"http://vllm:8000/v1"', f'"{base_url}"'), ('"coder"', f'"{EMBEDDED_NAME}"')):
        assert old in text, f"the documented model entry changed: no {old}"
        text = text.replace(old, new)
    return text


def _check() -> str:
    out = io.StringIO()
    try:
        call_command("llm", "check", "--timeout", "60", stdout=out)
    except CommandError as exc:
        return out.getvalue() + f"\nCommandError: {exc}"
    return out.getvalue()


def test_the_documented_configuration_sends_the_key_the_server_requires(
    keyed_server: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, key = keyed_server
    # The server refuses a request without the key: what an outsider who reached it would get.
    anonymous = httpx.post(f"{base}/chat/completions", json={"messages": []}, timeout=10)
    assert anonymous.status_code == 401

    monkeypatch.delenv("PLAYGROUND_MODELS_FILE", raising=False)
    monkeypatch.setenv("PLAYGROUND_MODELS", _documented_models(base))
    monkeypatch.setenv("VLLM_API_KEY", key)
    report = _check()
    assert report.startswith("UP    coder-7b"), report

    monkeypatch.setenv("VLLM_API_KEY", "not-the-key")
    report = _check()
    assert report.startswith("DOWN  coder-7b"), report
    assert "CommandError: 1 of 1 model(s) down." in report
