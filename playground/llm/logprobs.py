"""Teacher-forced log-probabilities: how likely a model finds a given text, token by token,
after a given prompt, without sampling anything.

Three backends compute the same thing (``Scored``: the text's tokens, where each starts in the
text, and the log-probability of each given all before it):

- ``OpenAIPromptLogprobs``: an OpenAI-compatible server that returns prompt log-probabilities
  (vLLM's ``prompt_logprobs`` on ``/v1/completions``); the prompt and the text are tokenized by
  the server's own ``/tokenize`` and sent as token ids, so each log-probability belongs to a
  known token.
- ``LlamaCppLogprobs``: llama.cpp in this process (llama-cpp-python with ``logits_all=True``),
  for a GGUF file such as the embedded model's. Its server's ``echo`` + ``logprobs`` answer is
  not used: llama-cpp-python 0.3.36 pairs each token with the distribution that follows it
  rather than the one that predicts it (one token off), and sorts the whole vocabulary per token.
- ``TransformersLogprobs``: a causal LM loaded by transformers (the ``[transformers]`` extra)
  from a local directory or a GGUF file, on the CPU; log-softmax over its logits.

A model whose engine has none of these gets ``NotSupported`` from ``backend_for``, with a
sentence that says so, never an empty figure. A text longer than the window is scored in
windows that each see the whole prompt and the ``overlap`` tokens before their own.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from playground.llm.registry import ModelSpec

Messages = list[dict[str, str]]
Prompt = str | Messages

# Tokens in one forward pass (prompt included), and how many tokens of the text before its own
# a later window sees again.
WINDOW = 2048
OVERLAP = 256
# Rows of logits turned into log-probabilities at once (llama.cpp): bounds the memory it takes.
ROWS_AT_ONCE = 128


class LogprobsError(RuntimeError):
    """The engine could not score the text; the message can be shown to any user."""


@dataclass(frozen=True)
class Scored:
    """A text scored under a model: its tokens (as text), each one's character offset in
    ``text`` and its log-probability (natural log) given the prompt and the tokens before it."""

    text: str
    tokens: tuple[str, ...]
    offsets: tuple[int, ...]
    logprobs: tuple[float, ...]
    engine: str
    supported: bool = True

    @property
    def surprise(self) -> tuple[float, ...]:
        """Each token's surprise in nats (its negative log-probability)."""
        return tuple(-lp for lp in self.logprobs)


@dataclass(frozen=True)
class NotSupported:
    """An engine that cannot give log-probabilities of a given text: the reason, for the page."""

    engine: str
    reason: str
    supported: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"supported": False, "engine": self.engine, "reason": self.reason}


class Backend(Protocol):
    engine: str

    def score(self, prompt: Prompt, text: str) -> Scored:
        """``text``'s log-probabilities after ``prompt`` (a chat's messages get the model's
        chat template and the assistant's turn, as when it answers)."""
        ...


def _ranks(values: Sequence[float]) -> list[float]:
    """Each value's rank from 0, ties given their mean rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation of two series of the same length (Pearson's on ranks)."""
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return float(cov / (vx * vy) ** 0.5)


def agreement(a: Scored, b: Scored) -> tuple[float, float]:
    """How two backends agree on the same tokens (issue 23's metric): Spearman's rho over the
    log-probabilities and their mean absolute difference in nats."""
    x, y = a.logprobs, b.logprobs
    mad = sum(abs(p - q) for p, q in zip(x, y, strict=True)) / len(x)
    return spearman(x, y), mad


# --- what the backends share: windows, offsets -------------------------------------------


def windows(n_prompt: int, n_text: int, window: int, overlap: int) -> list[tuple[int, int, int]]:
    """How to score ``n_text`` tokens after ``n_prompt`` with at most ``window`` tokens a pass:
    ``(context, start, end)`` triples over the text's tokens; a pass reads the prompt and
    ``text[context:end]`` and keeps the log-probabilities of ``text[start:end]``."""
    room = window - n_prompt
    if n_text == 0:
        return []
    if room <= overlap:
        raise LogprobsError(
            f"The prompt takes {n_prompt} tokens, which leaves too little of the model's "
            f"{window}-token window to score the text."
        )
    out = []
    start = 0
    while start < n_text:
        context = max(0, start - overlap)
        end = min(n_text, context + room)
        out.append((context, start, end))
        start = end
    return out


def char_offsets_of_bytes(text: str, pieces: Sequence[bytes]) -> list[int]:
    """The character offset in ``text`` where each byte piece starts (pieces that together are
    ``text`` in UTF-8; a piece that starts inside a character gets that character's offset)."""
    char_at: list[int] = []
    for index, ch in enumerate(text):
        char_at.extend([index] * len(ch.encode("utf-8", "surrogatepass")))
    char_at.append(len(text))
    offsets = []
    position = 0
    for piece in pieces:
        offsets.append(char_at[min(position, len(char_at) - 1)])
        position += len(piece)
    return offsets


def char_offsets_of_strings(text: str, pieces: Sequence[str]) -> list[int]:
    """The character offset in ``text`` where each decoded piece starts. A piece that is not
    where it should be (a character split between tokens decodes to U+FFFD or nothing) takes
    the current offset and moves on by what it does match."""
    offsets = []
    position = 0
    for piece in pieces:
        offsets.append(min(position, len(text)))
        if text.startswith(piece, position):
            position += len(piece)
        else:
            clean = piece.replace("\ufffd", "")
            if clean and text.startswith(clean, position):
                position += len(clean)
    return offsets


def _score_windows(
    backend: _TokenBackend, prompt: Prompt, text: str, window: int, overlap: int
) -> Scored:
    prompt_ids = backend.prompt_ids(prompt)
    ids, pieces = backend.text_tokens(text)
    logprobs: list[float] = []
    decoded: list[str] = []
    parts = windows(len(prompt_ids), len(ids), window, overlap)
    remember = getattr(backend, "remember", None)
    if len(parts) > 1 and remember is not None:
        remember(prompt_ids[:-1])
    for context, start, end in parts:
        first = len(prompt_ids) + start - context
        values, names = backend.logprobs(prompt_ids + ids[context:end], first)
        if len(values) != end - start:
            raise LogprobsError("The engine returned log-probabilities for the wrong tokens.")
        logprobs.extend(values)
        decoded.extend(names)
    if pieces is None:
        tokens = decoded
        offsets = char_offsets_of_strings(text, tokens)
    else:
        tokens = [p.decode("utf-8", "replace") for p in pieces]
        offsets = char_offsets_of_bytes(text, pieces)
    for value in logprobs:
        if math.isnan(value) or value > 1e-3:
            raise LogprobsError(f"The engine returned an invalid log-probability ({value}).")
    return Scored(
        text=text,
        tokens=tuple(tokens),
        offsets=tuple(offsets),
        logprobs=tuple(min(0.0, v) for v in logprobs),
        engine=backend.engine,
    )


class _TokenBackend(Protocol):
    engine: str

    def prompt_ids(self, prompt: Prompt) -> list[int]: ...

    def text_tokens(self, text: str) -> tuple[list[int], list[bytes] | None]:
        """The text's token ids, and each token's bytes where the engine can say them exactly
        (else None: ``logprobs`` then names the tokens)."""
        ...

    def logprobs(self, ids: list[int], first: int) -> tuple[list[float], list[str]]:
        """The log-probability of ``ids[k]`` given ``ids[:k]`` for each k from ``first`` on,
        and each of those tokens as text."""
        ...


# --- vLLM (OpenAI-compatible completions with prompt_logprobs) ------------------------------


class OpenAIPromptLogprobs:
    """An OpenAI-compatible server with vLLM's ``prompt_logprobs`` and ``/tokenize``."""

    engine = "vLLM (prompt_logprobs)"

    def __init__(
        self, model: ModelSpec, *, timeout_s: float = 120.0, window: int | None = None
    ) -> None:
        self.model = model
        self.timeout_s = timeout_s
        self.window = window or model.context_length
        self.headers = {"Authorization": f"Bearer {model.api_key}"} if model.api_key else {}

    def _root(self) -> str:
        base = self.model.base_url.rstrip("/")
        return base[: -len("/v1")] if base.endswith("/v1") else base

    def _post(self, url: str, body: dict[str, Any]) -> Any:
        try:
            response = httpx.post(url, json=body, headers=self.headers, timeout=self.timeout_s)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # The address and the server's words stay out of the message (as in client.py).
            raise LogprobsError(
                f"The model {self.model.name} did not return log-probabilities "
                f"({type(exc).__name__})."
            ) from exc

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        body: dict[str, Any] = {"model": self.model.model}
        if isinstance(prompt, str):
            body |= {"prompt": prompt, "add_special_tokens": True}
        else:
            body |= {"messages": prompt, "add_generation_prompt": True}
        return self._ids(self._post(f"{self._root()}/tokenize", body))

    def text_tokens(self, text: str) -> tuple[list[int], list[bytes] | None]:
        body = {"model": self.model.model, "prompt": text, "add_special_tokens": False}
        return self._ids(self._post(f"{self._root()}/tokenize", body)), None

    @staticmethod
    def _ids(answer: Any) -> list[int]:
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in tokens
        ):
            raise LogprobsError("The model's server did not tokenize the text.")
        return tokens

    def logprobs(self, ids: list[int], first: int) -> tuple[list[float], list[str]]:
        body = {
            "model": self.model.model,
            "prompt": ids,
            "max_tokens": 1,
            "temperature": 0,
            "prompt_logprobs": 1,  # the prompt token itself is always among them
        }
        answer = self._post(f"{self.model.base_url.rstrip('/')}/completions", body)
        try:
            entries = answer["choices"][0]["prompt_logprobs"]
        except (KeyError, IndexError, TypeError):
            entries = None
        if not isinstance(entries, list) or len(entries) != len(ids):
            raise LogprobsError(
                f"The model {self.model.name} answered without prompt log-probabilities: "
                "its engine may not support them."
            )
        values, names = [], []
        for token, entry in zip(ids[first:], entries[first:], strict=True):
            found = entry.get(str(token)) if isinstance(entry, dict) else None
            if not isinstance(found, dict) or not isinstance(found.get("logprob"), int | float):
                raise LogprobsError("The model's server left out a token's log-probability.")
            values.append(float(found["logprob"]))
            names.append(str(found.get("decoded_token") or ""))
        return values, names

    def score(self, prompt: Prompt, text: str) -> Scored:
        return _score_windows(self, prompt, text, self.window, OVERLAP)


# --- llama.cpp in this process ------------------------------------------------------------


class LlamaCppLogprobs:
    """A GGUF model in llama.cpp (llama-cpp-python), every position's logits kept."""

    engine = "llama.cpp (logits_all)"

    def __init__(self, gguf: Path, *, window: int = WINDOW, threads: int | None = None) -> None:
        import llama_cpp  # the [embedded-model] extra

        self.window = window
        self.llm = llama_cpp.Llama(
            model_path=str(gguf),
            n_ctx=window,
            n_batch=min(window, 512),
            n_threads=threads,
            logits_all=True,
            verbose=False,
        )

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            return self._tokenize(prompt, special=True, bos=True)
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        meta = self.llm.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise LogprobsError("The GGUF file has no chat template.")
        vocab = self.llm.detokenize
        eos = vocab([self.llm.token_eos()], special=True).decode("utf-8", "replace")
        bos = vocab([self.llm.token_bos()], special=True).decode("utf-8", "replace")
        formatted = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)(
            messages=prompt  # type: ignore[arg-type]
        )
        return self._tokenize(formatted.prompt, special=True, bos=False)

    def _tokenize(self, text: str, *, special: bool, bos: bool) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=special))

    def text_tokens(self, text: str) -> tuple[list[int], list[bytes] | None]:
        ids = self._tokenize(text, special=False, bos=False)
        pieces = [self.llm.detokenize([t]) for t in ids]
        if b"".join(pieces) != text.encode("utf-8"):
            return ids, None  # names come from logprobs; offsets by matching
        return ids, pieces

    def logprobs(self, ids: list[int], first: int) -> tuple[list[float], list[str]]:
        import numpy as np

        # What is already evaluated and agrees with ids is kept (its cache and its rows of
        # logits): the prompt, for every window after the first and every text after the first.
        done = self.llm.input_ids[: self.llm.n_tokens].tolist()
        keep = 0
        for keep, (old, new) in enumerate(zip(done, ids[: len(ids) - 1], strict=False)):  # noqa: B007
            if old != new:
                break
        else:
            keep = min(len(done), len(ids) - 1)
        self.llm.n_tokens = keep
        self.llm.eval(ids[keep:])
        # Row k holds the logits after ids[k], which predict ids[k + 1]. A few rows at a time:
        # the whole window in float64 at once would take 0.8 GB more (2,048 x 49,152 x 8 bytes)
        # beside the 0.4 GB of logits llama.cpp keeps.
        values: list[float] = []
        for start in range(first - 1, len(ids) - 1, ROWS_AT_ONCE):
            end = min(start + ROWS_AT_ONCE, len(ids) - 1)
            rows = np.asarray(self.llm.scores[start:end], dtype=np.float64)
            peak = rows.max(axis=1, keepdims=True)
            norm = peak[:, 0] + np.log(np.exp(rows - peak).sum(axis=1))
            chosen = rows[np.arange(len(rows)), ids[start + 1 : end + 1]]
            values.extend(float(v) for v in chosen - norm)
        names = [self.llm.detokenize([t]).decode("utf-8", "replace") for t in ids[first:]]
        return values, names

    def score(self, prompt: Prompt, text: str) -> Scored:
        return _score_windows(self, prompt, text, self.window, OVERLAP)


# --- transformers ------------------------------------------------------------------------


def transformers_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


class TransformersLogprobs:
    """A causal LM in transformers on the CPU, from a local directory or a GGUF file (which
    transformers dequantises); nothing is downloaded."""

    engine = "transformers"

    def __init__(
        self,
        path: Path,
        *,
        window: int = WINDOW,
        dtype: str = "float32",
        threads: int | None = None,
    ) -> None:
        if not transformers_available():
            raise LogprobsError(
                "transformers is not installed: pip install -e '.[transformers]' "
                "(make test-full installs it)."
            )
        # Imported by name, so that mypy reads the same code with the extra installed or not.
        torch = importlib.import_module("torch")
        transformers = importlib.import_module("transformers")
        self.torch = torch
        if threads:
            torch.set_num_threads(threads)
        self.window = window
        where: dict[str, Any] = {"local_files_only": True}
        if path.is_file():
            where["gguf_file"] = path.name
            path = path.parent
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, **where)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            path, dtype=getattr(torch, dtype), **where
        )
        self.model.eval()
        self._prefix: tuple[list[int], Any] = ([], None)

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            return list(self.tokenizer(prompt)["input_ids"])
        ids = self.tokenizer.apply_chat_template(
            prompt, add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        return [int(i) for i in ids]

    def text_tokens(self, text: str) -> tuple[list[int], list[bytes] | None]:
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = [int(i) for i in encoded["input_ids"]]
        spans = encoded["offset_mapping"]
        # Byte-level BPE: the spans tile the text; each token's bytes are its span's.
        pieces, cursor = [], 0
        for start, end in spans:
            if start != cursor:
                return ids, None
            pieces.append(text[start:end].encode("utf-8"))
            cursor = end
        return ids, pieces if cursor == len(text) else None

    def remember(self, prefix: list[int]) -> None:
        """Keep the attention cache of ``prefix`` (the prompt, when the text takes several
        windows): each window then computes only its own tokens."""
        with self.torch.inference_mode():
            out = self.model(self.torch.tensor([prefix]), use_cache=True, logits_to_keep=1)
        self._prefix = (prefix, out.cache)

    def logprobs(self, ids: list[int], first: int) -> tuple[list[float], list[str]]:
        torch = self.torch
        keep = len(ids) - first + 1
        with torch.inference_mode():
            tensor = torch.tensor([ids])
            prefix, cache = self._prefix
            if prefix and len(prefix) < first and ids[: len(prefix)] == prefix:
                out = self.model(
                    tensor[:, len(prefix) :],
                    cache=copy.deepcopy(cache),
                    logits_to_keep=keep,
                )
            else:
                out = self.model(tensor, logits_to_keep=keep)
            logits = out.logits[0]
            # logits[j] is at position len(ids) - (len(ids) - first + 1) + j = first - 1 + j.
            rows = torch.log_softmax(logits[:-1].float(), dim=-1)
            chosen = rows.gather(1, tensor[0, first:].unsqueeze(1))[:, 0]
        names = [self.tokenizer.decode([t]) for t in ids[first:]]
        return [float(v) for v in chosen.tolist()], names

    def score(self, prompt: Prompt, text: str) -> Scored:
        try:
            return _score_windows(self, prompt, text, self.window, OVERLAP)
        finally:
            self._prefix = ([], None)


# --- which engines support it --------------------------------------------------------------

# For the page and docs/BENCHMARKS.md: whether each engine gives the log-probabilities of a
# text it did not write.
ENGINES: dict[str, str] = {
    "vllm": "yes: prompt_logprobs on /v1/completions",
    "llama.cpp": "only with logits_all (this site runs the embedded GGUF in process)",
    "transformers": "yes: computed from the logits (the [transformers] extra)",
    "other": "no: an OpenAI-compatible chat server gives log-probabilities only of what it writes",
}


def not_supported(model: ModelSpec) -> NotSupported | None:
    """Why ``model``'s engine cannot score a given text, or None when it can: decided from the
    model's record alone (nothing is loaded or asked), so that a page can say so at once."""
    if model.tokenizer == "vllm":
        return None
    if model.embedded:
        from playground.llm import embedded

        if not embedded.server_available():
            return NotSupported(
                "llama.cpp", "llama-cpp-python is not installed, so the model cannot be scored."
            )
        return None
    return NotSupported(
        "unknown",
        f"The model {model.label} is not served by an engine that returns the log-probabilities "
        "of a given text (vLLM's prompt_logprobs): its surprise cannot be measured.",
    )


def backend_for(model: ModelSpec) -> Backend | NotSupported:
    """How to score text under ``model``: vLLM's prompt log-probabilities, the embedded model
    in llama.cpp in this process, or the reason it cannot be done."""
    if (refused := not_supported(model)) is not None:
        return refused
    if model.tokenizer == "vllm":
        return OpenAIPromptLogprobs(model)
    from playground.llm import embedded

    return LlamaCppLogprobs(embedded.gguf_path())
