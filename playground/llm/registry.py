"""The configured language models.

``PLAYGROUND_MODELS`` holds a JSON list of models, or ``PLAYGROUND_MODELS_FILE`` names a JSON or
TOML file with one (TOML: ``[[models]]`` tables). Each model::

    {"name": "coder-7b", "base_url": "http://vllm:8000/v1", "model": "coder", "api_key": "",
     "context_length": 8192, "json_schema": "openai", "label": "Qwen2.5-Coder 7B (vLLM)",
     "max_concurrency": 16, "tokenizer": "vllm"}

``"api_key_env": "VLLM_API_KEY"`` instead of ``api_key`` reads the key from that variable.

Replicas: ``"base_urls": ["http://gpu1:8000/v1", "http://gpu2:8000/v1"]`` (or ``base_url`` as a
list) serves one model from several servers; the client balances over those not marked down and
retries another before the first token (``llm/replicas.py``). ``base_url`` is the first of them.
A model behind a router (vllm-router, the vLLM production stack's) is one base URL. Calls that
belong together (a Think-and-Execute plan, one user's runs) carry a stable opaque key in the
``routing_header`` (default ``X-Session-ID``, which vllm-router's ``consistent_hash`` reads first;
the production stack's ``session`` router reads the header named by its ``sessionKey``), so a
router, like our own balancing, keeps them on one replica and its prefix cache; ``""`` sends none.

With neither set, the embedded SmolLM2-135M served by llama.cpp on ``PLAYGROUND_LLM_PORT`` is
the only model (unless ``PLAYGROUND_EMBEDDED_LLM=off``).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

EMBEDDED_NAME = "smollm2-135m"
TOKENIZERS = ("", "vllm", "llama.cpp")
EMBEDDED_LABEL = "SmolLM2-135M (tiny demo model on the CPU: its predictions are mostly wrong)"
ROUTING_HEADER = "X-Session-ID"
# An HTTP header's name: RFC 9110's token characters.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


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
    # The replicas after the first (``base_urls`` in the configuration): ``base_url`` stays the
    # first, so code and tests that make a spec from one URL (or ``replace`` it) keep working.
    more_base_urls: tuple[str, ...] = ()
    # The header that carries a call's routing key (a router's session affinity); "" for none.
    routing_header: str = ROUTING_HEADER

    @property
    def base_urls(self) -> tuple[str, ...]:
        """Every replica's base URL, the first one first."""
        return (self.base_url, *self.more_base_urls)

    @property
    def chat_url(self) -> str:
        return chat_url(self.base_url)


def chat_url(base_url: str) -> str:
    return base_url.rstrip("/") + "/chat/completions"


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


def _secret_from_env(variable: str) -> str | None:
    """The contents of the file ``variable_FILE`` names (outer whitespace stripped), else the
    value of ``variable`` (the order of settings.py); None when neither is set. A file that
    cannot be read is an error."""
    path = os.environ.get(f"{variable}_FILE", "").strip()
    if not path:
        return os.environ.get(variable) or None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise RegistryError(f"Cannot read {variable}_FILE {path}: {exc.strerror}") from None


def _spec(raw: Any, where: str) -> ModelSpec:
    if not isinstance(raw, dict):
        raise RegistryError(f"{where}: each model must be an object")
    urls = raw.get("base_urls", raw.get("base_url"))
    missing = [k for k in ("name", "model") if not isinstance(raw.get(k), str) or not raw[k]]
    if not urls or not isinstance(urls, str | list):
        missing.insert(1 if "name" in missing else 0, "base_url")
    if missing:
        raise RegistryError(f"{where}: missing or empty {', '.join(missing)}")
    internal = {"embedded", "more_base_urls"}
    known = {f for f in ModelSpec.__dataclass_fields__ if f not in internal}
    unknown = set(raw) - known - {"api_key_env", "base_urls"}
    if unknown:
        raise RegistryError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    if "base_url" in raw and "base_urls" in raw:
        raise RegistryError(f"{where}: give base_url or base_urls, not both")
    first, *more = _base_urls(urls, where)
    values = {**raw, "label": raw.get("label") or raw["name"]}
    values.pop("base_urls", None)
    values.update(base_url=first, more_base_urls=tuple(more))
    header = values.get("routing_header", ROUTING_HEADER)
    if not isinstance(header, str) or (header and not _HEADER_NAME.fullmatch(header)):
        raise RegistryError(f'{where}: routing_header must be an HTTP header name (or "")')
    # The key from another variable (e.g. VLLM_API_KEY, which the vLLM server itself reads), so
    # that the secret is written once; or from the file that VARIABLE_FILE names (a mounted
    # secret), as every setting may be given.
    variable = values.pop("api_key_env", None)
    if variable is not None:
        if "api_key" in values:
            raise RegistryError(f"{where}: give api_key or api_key_env, not both")
        key = _secret_from_env(variable) if isinstance(variable, str) else None
        if not key:
            raise RegistryError(
                f"{where}: api_key_env names {variable!r}, which is not set (nor {variable}_FILE)"
            )
        values["api_key"] = key
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


def _base_urls(urls: Any, where: str) -> list[str]:
    """The replicas' base URLs: each an http(s) URL with a host, none twice."""
    listed = [urls] if isinstance(urls, str) else urls
    if not listed:
        raise RegistryError(f"{where}: base_urls must list at least one URL")
    seen: set[str] = set()
    for url in listed:
        if not isinstance(url, str):
            raise RegistryError(f"{where}: base_urls must be a list of URLs, not {url!r}")
        try:
            parts = urlsplit(url)
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            parts, port_ok = None, False
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistryError(f"{where}: base URL {url!r} must be an http:// or https:// URL")
        if not port_ok:
            raise RegistryError(f"{where}: base URL {url!r} has an invalid port")
        same = url.rstrip("/").lower()
        if same in seen:
            raise RegistryError(f"{where}: base URL {url!r} is listed twice")
        seen.add(same)
    return listed


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
