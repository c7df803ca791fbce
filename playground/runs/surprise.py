"""A run's surprise: its real trace scored under the run's model (``emulation/surprise.py``),
asked for (``request``), scored on the llm queue (``score``, the task ``tasks.score_surprise``)
and kept on the run (``RunSurprise``), bounded; and what the run page shows of it.

Which engines can: vLLM (``prompt_logprobs``) and the embedded model (llama.cpp in the worker's
process with ``logits_all``); any other OpenAI-compatible engine cannot, and the run keeps that
as its state ("not supported by this engine"), never as an error or an empty figure.

A killed worker loses and doubles nothing: the task holds a lease on the run's scoring while it
works (a second copy returns "held"), stores the figures once at the end, only over a pending
row, and is acknowledged late, so the broker hands it out again if its worker dies; a pending
row no task holds past the task's time limit may be asked for again.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone

from playground.emulation import surprise as measuring
from playground.lib import leases, ratelimits, worktimes
from playground.llm.logprobs import not_supported
from playground.llm.registry import ModelSpec, RegistryError, get_model
from playground.runs.models import Run, RunSurprise
from playground.runs.pipeline import work_key

log = logging.getLogger(__name__)

# Steps of the call scored at most (a 1,035-step trace took 419 to 540 s in llama.cpp on this
# site's CPU: docs/BENCHMARKS.md), values kept per step, characters of a value's name.
MAX_STEPS = 1_000
MAX_VALUES = 20
NAME_CHARS = 64
# Surprise (nats) at the bottom of each level of the heat map, above 0 (level 0: none at all).
LEVELS = (0.0, 0.5, 2.0, 5.0, 10.0)
LEVEL_WORDS = ("none", "under 0.5", "0.5 to 2", "2 to 5", "5 to 10", "10 or more")

NO_MODEL = "This run has no model whose surprise could be measured."
NO_CALL = (
    "Only the steps of a call are scored, as the trace method asks for them: this run has none."
)
NO_TRACE = "This run has no real trace to score."
GONE = "The run's model is no longer configured on this site, so it cannot be scored."
TOO_LONG = "Scoring took longer than allowed; try again later."
FAILED = "The server failed while scoring; the error was logged. Try again later."


def why_not(run: Run) -> str:
    """Why this run cannot be scored at all (no model, no call, no real run), or ""."""
    if not run.is_emulated or not run.model:
        return NO_MODEL
    if not run.has_real_run:
        return NO_TRACE
    if not run.call:
        return NO_CALL
    return ""


def _model(run: Run) -> ModelSpec | None:
    try:
        return get_model(run.model)
    except (KeyError, RegistryError):
        return None


def stale(row: RunSurprise) -> bool:
    """A pending row that no task can still be scoring (its hard limit is past): asking again
    sends it again."""
    since = row.claimed_at or row.requested_at
    return timezone.now() - since > timedelta(seconds=worktimes.SURPRISE.hard_s)


def request(run: Run, *, budget_key: str = "", send: bool = True) -> tuple[RunSurprise, bool]:
    """Ask for the run's surprise: the row, and whether it is pending for a task (sent to the
    llm queue on commit; ``send=False``: for the caller to score itself). A row already scored,
    not supported or being scored is left as it is; a failed or stale one is asked for again.
    A model whose engine cannot score is stored as such at once, with no task."""
    now = timezone.now()
    with transaction.atomic():
        row, created = RunSurprise.objects.select_for_update().get_or_create(
            run=run, defaults={"requested_at": now, "model": run.model}
        )
        if not created and (
            row.state in (RunSurprise.State.DONE, RunSurprise.State.UNSUPPORTED)
            or (row.state == RunSurprise.State.PENDING and not stale(row))
        ):
            return row, False
        row.state = RunSurprise.State.PENDING
        row.model = run.model
        row.requested_at = now
        row.claimed_at = row.finished_at = None
        row.reason = ""
        row.budget_key = budget_key
        spec = _model(run)
        if spec is None:  # no task could score it: said at once
            row.state, row.reason, row.finished_at = RunSurprise.State.FAILED, GONE, now
            row.save()
            return row, False
        refused = not_supported(spec)
        if refused is not None:
            _set_unsupported(row, refused.engine, refused.reason)
            row.save()
            return row, False
        row.save()
        if send:
            transaction.on_commit(lambda: _send(run.pk))
    return row, True


def _send(run_id: int) -> None:
    from playground.runs.tasks import score_surprise

    score_surprise.delay(run_id)


def _set_unsupported(row: RunSurprise, engine: str, reason: str) -> None:
    row.state = RunSurprise.State.UNSUPPORTED
    row.engine = engine[:40]
    row.reason = reason
    row.data = {}
    row.finished_at = timezone.now()


def score(run_id: int) -> str:
    """The task's body: score the run's real trace under its model and store the figures once,
    over a pending row only. "held" when another task holds the work."""
    with leases.Held([work_key("surprise", run_id)], [1], worktimes.LEASE_S) as lease:
        if not lease.taken:
            return "held"
        try:
            return _score(run_id)
        except SoftTimeLimitExceeded:
            log.error("run %s: scoring its surprise passed its time limit", run_id)
            _end(run_id, state=RunSurprise.State.FAILED, reason=TOO_LONG)
        except Exception:
            log.exception("run %s: scoring its surprise failed", run_id)
            _end(run_id, state=RunSurprise.State.FAILED, reason=FAILED)
        return "failed"


def _score(run_id: int) -> str:
    with transaction.atomic():
        row = (
            RunSurprise.objects.select_for_update()
            .select_related("run")
            .filter(run_id=run_id, state=RunSurprise.State.PENDING)
            .first()
        )
        if row is None:
            return "skipped"  # gone, or scored by an earlier copy of the task
        row.claimed_at = timezone.now()
        row.save(update_fields=["claimed_at"])
    run = row.run
    trace = run.real_trace
    spec = _model(run)
    if why_not(run) or trace is None:
        return _end(run_id, state=RunSurprise.State.FAILED, reason=why_not(run) or NO_TRACE)
    if spec is None:
        return _end(run_id, state=RunSurprise.State.FAILED, reason=GONE)
    steps = trace.data.get("steps") if isinstance(trace.data, dict) else None
    measured = measuring.measure(
        spec, run.source, run.call, steps if isinstance(steps, list) else [], run.rule,
        limit=MAX_STEPS,
    )  # fmt: skip
    if measured.get("supported") is False:
        return _end(
            run_id,
            state=RunSurprise.State.UNSUPPORTED,
            engine=str(measured.get("engine", "")),
            reason=str(measured.get("reason", "")),
        )
    if "error" in measured:
        return _end(run_id, state=RunSurprise.State.FAILED, reason=str(measured["error"]))
    data = bounded(measured)
    outcome = _end(
        run_id,
        state=RunSurprise.State.DONE,
        engine=str(measured.get("engine", "")),
        data=data,
        mean=float(measured.get("mean", 0.0)),
        max_step=max((s["total"] for s in data["steps"]), default=0.0),
        tokens=int(measured.get("tokens", 0)),
    )
    if outcome == "done" and row.budget_key:
        # The model read the trace's tokens (and the prompt, once a window): counted as
        # model tokens of whoever asked, as their runs' are.
        ratelimits.spend(ratelimits.budget_name(row.budget_key), row.budget_key, data["tokens"])
    return outcome


def _end(run_id: int, *, state: str, **fields: Any) -> str:
    """Store the outcome, over a pending row only: a copy of the task that got here second (or
    a row asked for again meanwhile) changes nothing."""
    if "engine" in fields:
        fields["engine"] = fields["engine"][:40]
    done = RunSurprise.objects.filter(run_id=run_id, state=RunSurprise.State.PENDING).update(
        state=state, finished_at=timezone.now(), **fields
    )
    return str(state) if done else "skipped"


def bounded(measured: dict[str, Any]) -> dict[str, Any]:
    """What a run keeps: the figures of at most ``MAX_STEPS`` steps, ``MAX_VALUES`` values a
    step, names cut to ``NAME_CHARS``; numbers rounded (to 4 places, by ``measure``)."""
    steps = []
    for step in measured.get("steps", [])[:MAX_STEPS]:
        values = dict(list(step.get("values", {}).items())[:MAX_VALUES])
        steps.append(
            {
                "i": int(step.get("i", 0)),
                "line": int(step.get("line", 0)),
                "total": float(step.get("total", 0.0)),
                "mean": float(step.get("mean", 0.0)),
                "tokens": int(step.get("tokens", 0)),
                "values": {
                    str(name)[:NAME_CHARS]: {
                        "total": float(v.get("total", 0.0)),
                        "mean": float(v.get("mean", 0.0)),
                        "tokens": int(v.get("tokens", 0)),
                    }
                    for name, v in values.items()
                },
            }
        )
    end = measured.get("end") or {}
    return {
        "total": float(measured.get("total", 0.0)),
        "mean": float(measured.get("mean", 0.0)),
        "tokens": int(measured.get("tokens", 0)),
        "end": {"total": float(end.get("total", 0.0)), "tokens": int(end.get("tokens", 0))},
        "steps": steps,
        "call_steps": int(measured.get("call_steps", len(steps))),
    }


# --- what the run page shows ---------------------------------------------------------------


def level(nats: float) -> int:
    """The heat map's level of a surprise: 0 (none) to 5 (10 nats or more)."""
    return sum(1 for bottom in LEVELS if nats > bottom)


def _value_text(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 120 else text[:119] + "…"


def page_context(
    run: Run, real: dict[str, Any] | None, comparison: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The heat map's part of the run page: the state, and when scored each step's row (its
    number as the viewer counts, its line, nats and level, each value's text, nats and level)
    beside where the model's own emulation first diverged. None: nothing to show (the run is
    not of a program with a call and a model, or not finished)."""
    if why_not(run) or not run.is_finished or real is None:
        return None
    row = RunSurprise.objects.filter(run=run).first()
    spec = _model(run)
    refused = not_supported(spec) if spec is not None else None
    divergence = (comparison or {}).get("first_divergence") or {}
    diverged_at = divergence.get("real_step")
    context: dict[str, Any] = {
        "row": row,
        "state": row.state if row is not None else "",
        "stale": row is not None and row.state == RunSurprise.State.PENDING and stale(row),
        # Not scored, and its engine cannot be: say so at once rather than offer a button.
        "refused": refused.reason if refused is not None and row is None else "",
        # Not scored, and its model is gone from this site: nothing could score it.
        "gone": GONE if spec is None and row is None else "",
        "divergence": divergence if isinstance(diverged_at, int) else None,
        "legend": list(zip(range(len(LEVEL_WORDS)), LEVEL_WORDS, strict=True)),
        "max_steps": MAX_STEPS,
    }
    if row is None or row.state != RunSurprise.State.DONE:
        return context
    data = row.data if isinstance(row.data, dict) else {}
    listed = real.get("steps")
    real_steps: list[Any] = listed if isinstance(listed, list) else []
    rows = []
    for step in data.get("steps", []):
        i = step.get("i", 0)
        real_step = real_steps[i] if isinstance(i, int) and 0 <= i < len(real_steps) else {}
        shown = real_step.get("locals") if isinstance(real_step, dict) else None
        shown = shown if isinstance(shown, dict) else {}
        values = [
            {
                "name": name,
                "text": _value_text(shown.get(name, "")),
                "nats": v["total"],
                "level": level(v["total"]),
            }
            for name, v in step.get("values", {}).items()
        ]
        rows.append(
            {
                "i": i,
                "number": i + 1 if isinstance(i, int) else i,
                "line": step.get("line"),
                "nats": step["total"],
                "mean": step["mean"],
                "tokens": step["tokens"],
                "level": level(step["total"]),
                "values": values,
                "diverged": i == diverged_at,
            }
        )
    top = max(rows, key=lambda r: r["nats"], default=None)
    context |= {
        # For the viewers' variable tables (static/js/surprise.js): step number -> name ->
        # [nats, level].
        "panel": [
            [r["number"], {v["name"]: [v["nats"], v["level"]] for v in r["values"]}]
            for r in rows
            if r["values"]
        ],
        "data": data,
        "rows": rows,
        "top": top,
        "cut": data.get("call_steps", len(rows)) > len(rows),
        "diverged_shown": any(r["diverged"] for r in rows),
    }
    return context
