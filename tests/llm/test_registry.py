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
        (json.dumps([{**CODER, "base_url": []}]), "missing or empty base_url"),
        (json.dumps([{**CODER, "base_url": "gpu:8000/v1"}]), "must be an http:// or https://"),
        (json.dumps([{**CODER, "base_url": ["http://a/v1", 7]}]), "must be a list of URLs"),
        (json.dumps([{**CODER, "base_url": ["http://a/v1", "http://A/v1/"]}]), "listed twice"),
        (json.dumps([{**CODER, "base_urls": ["http://a/v1"]}]), "base_url or base_urls, not both"),
        (json.dumps([{**CODER, "base_url": "http://a:0/v1"}]), "invalid port"),
        (json.dumps([{**CODER, "routing_header": "X Session"}]), "routing_header must be"),
        (json.dumps([{**CODER, "more_base_urls": ["http://b/v1"]}]), "unknown keys more_base"),
    ],
)
def test_malformed_configuration_says_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("PLAYGROUND_MODELS", value)
    with pytest.raises(RegistryError, match=message):
        load_models()


def test_a_model_with_replicas(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    replicas = ["http://gpu1:8000/v1", "https://gpu2:8000/v1"]
    entry = {k: v for k, v in CODER.items() if k != "base_url"}
    monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([{**entry, "base_urls": replicas}]))
    (model,) = load_models()
    assert model.base_urls == tuple(replicas)
    assert model.base_url == replicas[0]  # the first replica, for code that knows one URL
    assert model.routing_header == "X-Session-ID"
    monkeypatch.setenv(
        "PLAYGROUND_MODELS",
        json.dumps([{**CODER, "base_url": replicas, "routing_header": "x-user-id"}]),
    )
    (model,) = load_models()
    assert model.base_urls == tuple(replicas)
    assert model.routing_header == "x-user-id"
    path = tmp_path / "models.toml"
    path.write_text(
        '[[models]]\nname = "coder"\nmodel = "qwen"\n'
        'base_urls = ["http://gpu1:8000/v1", "http://gpu2:8000/v1"]\n'
    )
    monkeypatch.delenv("PLAYGROUND_MODELS")
    monkeypatch.setenv("PLAYGROUND_MODELS_FILE", str(path))
    (model,) = load_models()
    assert model.more_base_urls == ("http://gpu2:8000/v1",)
