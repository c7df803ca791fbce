"""The model registry from the environment or a file, with clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playground.llm.registry import EMBEDDED_NAME, RegistryError, get_model, load_models

CODER = {"name": "coder", "base_url": "http://gpu:8000/v1", "model": "qwen", "json_schema": True}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PLAYGROUND_MODELS", "PLAYGROUND_MODELS_FILE", "PLAYGROUND_EMBEDDED_LLM"):
        monkeypatch.delenv(name, raising=False)


def test_default_is_the_embedded_demo_model() -> None:
    (model,) = load_models()
    assert model.name == EMBEDDED_NAME
    assert model.embedded
    assert "mostly wrong" in model.label
    assert model.base_url == "http://127.0.0.1:8001/v1"


def test_no_model_when_the_embedded_one_is_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_EMBEDDED_LLM", "off")
    assert load_models() == []


def test_models_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PLAYGROUND_MODELS", json.dumps([CODER, {**CODER, "name": "other", "label": "Other"}])
    )
    models = load_models()
    assert [m.name for m in models] == ["coder", "other"]
    assert models[0].label == "coder"  # the name when no label is given
    assert models[0].json_schema == "openai"
    assert models[0].chat_url == "http://gpu:8000/v1/chat/completions"
    assert get_model("other").label == "Other"
    with pytest.raises(KeyError):
        get_model("missing")


def test_models_from_a_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(
        '[[models]]\nname = "coder"\nbase_url = "http://gpu:8000/v1"\nmodel = "qwen"\n'
        'api_key = "sk-secret"\nmax_concurrency = 32\n'
    )
    monkeypatch.setenv("PLAYGROUND_MODELS_FILE", str(path))
    (model,) = load_models()
    assert model.max_concurrency == 32
    assert model.api_key == "sk-secret"
    assert "sk-secret" not in repr(model)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"name": "x"}', "expected a list"),
        (json.dumps([{"name": "x"}]), "missing or empty base_url, model"),
        (json.dumps([{**CODER, "temperature": 2}]), "unknown keys temperature"),
        (json.dumps([{**CODER, "max_concurrency": "many"}]), "max_concurrency must be int"),
        (json.dumps([CODER, CODER]), "names must be unique"),
        (json.dumps([{**CODER, "json_schema": "yes"}]), "json_schema must be"),
    ],
)
def test_malformed_configuration_says_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("PLAYGROUND_MODELS", value)
    with pytest.raises(RegistryError, match=message):
        load_models()
