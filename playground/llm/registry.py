"""The configured language models.

``PLAYGROUND_MODELS`` holds a JSON list of models, or ``PLAYGROUND_MODELS_FILE`` names a JSON or
TOML file with one (TOML: ``[[models]]`` tables). Each model::

    {"name": "coder-7b", "base_url": "http://vllm:8000/v1", "model": "coder", "api_key": "",
     "context_length": 8192, "json_schema": "openai", "label": "Qwen2.5-Coder 7B (vLLM)",
     "max_concurrency": 16, "tokenizer": "vllm"}

``"api_key_env": "VLLM_API_KEY"`` instead of ``api_key`` reads the key from that variable.

With neither set, the embedded SmolLM2-135M served by llama.cpp on ``PLAYGROUND_LLM_PORT`` is
the only model (unless ``PLAYGROUND_EMBEDDED_LLM=off``).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EMBEDDED_NAME = "smollm2-135m"
TOKENIZERS = ("", "vllm", "llama.cpp")
EMBEDDED_LABEL = "SmolLM2-135M (tiny demo model on the CPU: its predictions are mostly wrong)"


class RegistryError(ValueError):
    """The model configuration is malformed; the message says where."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    base_url: str
    model: str
    label: str
    api_key: str = field(default="", repr=False)
    context_length: int = 4096
    # Constrained JSON output: "" (none), "openai" (response_format json_schema: vLLM, hosted
    # APIs) or "json_object" (llama-cpp-python's {"type": "json_object", "schema": ...}).
    json_schema: str = ""
    max_concurrency: int = 4
    # How to count a prompt's tokens before sending it (refused when it and the answer's limit
    # do not fit in context_length): "vllm" (its /tokenize, chat template applied), "llama.cpp"
    # (llama-cpp-python's /extras/tokenize/count) or "" (no endpoint: a bound from the bytes).
    tokenizer: str = ""
    # Seconds to the first token (and the longest pause between two), and for a whole answer.
    first_token_s: float = 60.0
    total_s: float = 300.0
    embedded: bool = False

    @property
    def chat_url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


def embedded_port() -> int:
    raw = os.environ.get("PLAYGROUND_LLM_PORT", "8001")
    if not raw.isdigit():
        raise RegistryError(f"PLAYGROUND_LLM_PORT must be a port number, not {raw!r}")
    return int(raw)


def embedded_model() -> ModelSpec:
    return ModelSpec(
        name=EMBEDDED_NAME,
        base_url=f"http://127.0.0.1:{embedded_port()}/v1",
        model=EMBEDDED_NAME,
        label=EMBEDDED_LABEL,
        context_length=2048,
        json_schema="json_object",
        max_concurrency=2,
        tokenizer="llama.cpp",
        embedded=True,
    )


def _spec(raw: Any, where: str) -> ModelSpec:
    if not isinstance(raw, dict):
        raise RegistryError(f"{where}: each model must be an object")
    missing = [
        k for k in ("name", "base_url", "model") if not isinstance(raw.get(k), str) or not raw[k]
    ]
    if missing:
        raise RegistryError(f"{where}: missing or empty {', '.join(missing)}")
    known = {f for f in ModelSpec.__dataclass_fields__ if f != "embedded"} | {"api_key_env"}
    unknown = set(raw) - known
    if unknown:
        raise RegistryError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    values = {**raw, "label": raw.get("label") or raw["name"]}
    # The key from another variable (e.g. VLLM_API_KEY, which the vLLM server itself reads), so
    # that the secret is written once.
    variable = values.pop("api_key_env", None)
    if variable is not None:
        if "api_key" in values:
            raise RegistryError(f"{where}: give api_key or api_key_env, not both")
        if not isinstance(variable, str) or not os.environ.get(variable):
            raise RegistryError(f"{where}: api_key_env names {variable!r}, which is not set")
        values["api_key"] = os.environ[variable]
    for key in ("context_length", "max_concurrency"):
        if key in values and (not isinstance(values[key], int) or isinstance(values[key], bool)):
            raise RegistryError(f"{where}: {key} must be int")
    for key in ("first_token_s", "total_s"):
        value = values.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
            raise RegistryError(f"{where}: {key} must be a number of seconds, 0 to 3600")
    dialect = values.get("json_schema", "")
    if dialect is True:
        dialect = "openai"
    elif dialect is False:
        dialect = ""
    if dialect not in ("", "openai", "json_object"):
        raise RegistryError(f'{where}: json_schema must be true, false, "openai" or "json_object"')
    values["json_schema"] = dialect
    if values.get("tokenizer", "") not in TOKENIZERS:
        raise RegistryError(f'{where}: tokenizer must be "vllm", "llama.cpp" or ""')
    return ModelSpec(**values)


def load_models() -> list[ModelSpec]:
    """Every configured model, in configuration order (the first is the default)."""
    text = os.environ.get("PLAYGROUND_MODELS", "").strip()
    path = os.environ.get("PLAYGROUND_MODELS_FILE", "").strip()
    where = "PLAYGROUND_MODELS"
    data: Any = None
    if path:
        where = path
        try:
            content = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise RegistryError(
                f"Cannot read PLAYGROUND_MODELS_FILE {path}: {exc.strerror}"
            ) from None
        try:
            data = (
                tomllib.loads(content).get("models")
                if path.endswith(".toml")
                else json.loads(content)
            )
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise RegistryError(f"{path} is not valid: {exc}") from None
    elif text:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RegistryError(f"PLAYGROUND_MODELS is not valid JSON: {exc}") from None
    if data is None:
        return (
            [] if os.environ.get("PLAYGROUND_EMBEDDED_LLM", "on") == "off" else [embedded_model()]
        )
    if not isinstance(data, list):
        raise RegistryError(f"{where}: expected a list of models")
    models = [_spec(item, f"{where}[{i}]") for i, item in enumerate(data)]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise RegistryError(f"{where}: model names must be unique")
    return models


def get_model(name: str) -> ModelSpec:
    for spec in load_models():
        if spec.name == name:
            return spec
    raise KeyError(name)
