"""Creating an evaluation (its items checked, its result rows written, its task queued),
cancelling it, and sending again the ones a dead worker left unfinished (the reaper's sweep).
Working through one, on the batch worker, is ``execution``."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from playground import sandbox
from playground.benchmarks.access import listable_programs
from playground.benchmarks.models import Dataset, Evaluation, Result
from playground.benchmarks.official import RULES_VERSION
from playground.benchmarks.scoring import RULES_VERSION as SITE_RULES
from playground.benchmarks.tasks import run_evaluation
from playground.emulation.registry import REGISTRY, method_digest
from playground.lib import leases, worktimes
from playground.llm.registry import RegistryError, get_model
from playground.programs.models import Dataset as ProgramDataset
from playground.programs.models import Program, Puzzle, TaskExample
from playground.runs.pipeline import work_key

log = logging.getLogger(__name__)
KIND = {Dataset.CRUXEVAL: "program", Dataset.PROGRAMS: "program", Dataset.BBH: "task",
        Dataset.P3: "puzzle"}  # fmt: skip


class EvaluationError(ValueError):
    """The evaluation asked for cannot be made; the message says why."""


MAX_LISTED_PROGRAMS = 1000
# Result rows written per INSERT: a large evaluation's rows are never all in memory at once.
RESULT_BATCH = 500


def program_ids(subset: list[Any]) -> list[int]:
    """The ids of a list of programs, each a plain decimal number (any other text is refused
    with a message that names it, never a 500)."""
    if len(subset) > MAX_LISTED_PROGRAMS:
        raise EvaluationError(f"A list of programs holds {MAX_LISTED_PROGRAMS:,} ids at most.")
    ids: list[int] = []
    for raw in subset:
        text = str(raw).strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 18):
            raise EvaluationError(f"{text[:40]!r} is not a program id (a number such as 42).")
        if int(text) not in ids:
            ids.append(int(text))
    if not ids:
        raise EvaluationError("List the ids of the programs to evaluate (e.g. 12, 15, 40).")
    return ids


def _items(dataset: str, subset: list[Any], owner: Any = None) -> list[tuple[str, dict[str, int]]]:
    """(key, reference) of every item of the data set, in the data set's order."""
    if dataset == Dataset.CRUXEVAL:
        rows = Program.objects.filter(dataset=ProgramDataset.CRUXEVAL).order_by("id")
        return [(p.external_id, {"program": p.pk}) for p in rows.only("id", "external_id")]
    if dataset == Dataset.PROGRAMS:
        ids = program_ids(subset)
        found = {p.pk: p for p in listable_programs(owner).filter(pk__in=ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            # The same words whether it does not exist or is someone else's: no oracle.
            raise EvaluationError(
                f"No program with id {missing[0]} among your programs and the public ones."
            )
        return [(found[i].display_title, {"program": i}) for i in ids]
    if dataset == Dataset.BBH:
        examples = TaskExample.objects.select_related("task").order_by("task__name", "index")
        if subset:
            examples = examples.filter(task__name__in=subset)
        return [(f"{e.task.name}#{e.index}", {"task_example": e.pk}) for e in examples]
    if dataset == Dataset.P3:
        return [(p.name, {"puzzle": p.pk}) for p in Puzzle.objects.order_by("source_index")]
    raise EvaluationError(f"Unknown data set {dataset!r}.")


def item_count(dataset: str, subset: list[Any]) -> int:
    """How many items the data set (or its chosen part) holds, counted in the database; a list
    of programs is taken as checked (``_items`` checks it again)."""
    if dataset == Dataset.CRUXEVAL:
        return Program.objects.filter(dataset=ProgramDataset.CRUXEVAL).count()
    if dataset == Dataset.PROGRAMS:
        return len(subset)
    if dataset == Dataset.BBH:
        examples = TaskExample.objects.all()
        return (examples.filter(task__name__in=subset) if subset else examples).count()
    if dataset == Dataset.P3:
        return Puzzle.objects.count()
    raise EvaluationError(f"Unknown data set {dataset!r}.")


def too_many_results(results: int, most: int | None) -> str | None:
    """Why an evaluation of ``results`` results may not be made by someone allowed ``most``
    (None: no cap, the operator and staff), or None when it may."""
    if most is None or results <= most:
        return None
    return (
        f"This evaluation would make {results:,} results; at most {most:,} for your account: "
        "lower the limit or the samples."
    )


def configuration(
    *, dataset: str, subset: list[Any], method: str, model: str, temperature: float, seed: int,
    samples: int, max_tokens: int, limit: int | None, sample_randomly: bool, rules: str,
    rule: str = "",
) -> dict[str, Any]:  # fmt: skip
    """Everything an evaluation ran with, and ``digest``, a digest of all of it: the method
    (with ``method_digest``: its prompts and how answers are read), the model (by name and by
    the engine's own model id), sampling, budget, items, the scoring rules' version and the
    semantic rule. Two evaluations with the same digest asked the same question the same way.
    ``rule`` is recorded only when there is one, so that an evaluation under Python's own
    semantics has the digest it had before rules existed (its twin's: ``paired.py``)."""
    try:
        engine = get_model(model).model
    except (KeyError, RegistryError):
        engine = ""
    record: dict[str, Any] = {
        "dataset": dataset, "subset": subset, "limit": limit, "random": sample_randomly,
        "method": method, "method_digest": method_digest(method, rule), "model": model,
        "engine_model": engine, "temperature": temperature, "seed": seed, "samples": samples,
        "max_tokens": max_tokens, "rules": rules,
    }  # fmt: skip
    if rule:
        record["rule"] = rule
    return with_digest(record)


def with_digest(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with ``digest``, the digest of everything else in it."""
    record = {k: v for k, v in record.items() if k != "digest"}
    record["digest"] = hashlib.sha256(
        json.dumps(record, sort_keys=True, default=str).encode()
    ).hexdigest()
    return record


def create_evaluation(
    *,
    dataset: str,
    method: str,
    model: str,
    subset: list[Any] | None = None,
    owner: Any = None,
    limit: int | None = None,
    sample_randomly: bool = False,
    samples: int = 1,
    seed: int = 0,
    temperature: float = 0.0,
    concurrency: int = 4,
    max_tokens: int = 512,
    title: str = "",
    start: bool = True,
    max_results: int | None = None,
    rule: str = "",
) -> Evaluation:
    """Make the evaluation and its result rows (item x sample), and queue it on ``batch``.
    ``max_results``: the most item x sample results the requester may ask for (None: no cap).
    ``rule``: every run under that semantic rule (blank: Python's own); the chosen items whose
    program it changes nothing in are left out, and counted (``not_offered``)."""
    spec = REGISTRY.get(method)
    kind = KIND.get(dataset)  # type: ignore[call-overload]
    if spec is None or kind is None or kind not in spec.kinds:
        raise EvaluationError(f"The method {method!r} does not apply to the data set {dataset!r}.")
    if not 1 <= samples <= 100:
        raise EvaluationError("Samples per item: 1 to 100.")
    why_not = rule_refusal(rule, dataset=dataset, method=method)
    if why_not is not None:
        raise EvaluationError(why_not)
    items = _items(dataset, list(subset or []), owner)
    if sample_randomly and limit is not None and limit < len(items):
        # A reproducible sample of the data set, not a secret: the seed makes it repeatable.
        chosen = sorted(random.Random(seed).sample(range(len(items)), limit))  # noqa: S311
        items = [items[i] for i in chosen]
    elif limit is not None:
        items = items[:limit]
    if not items:
        raise EvaluationError("The data set has no items (is the library imported?).")
    # Chosen first, then left out: the same items as the standard twin's, less those the rule
    # does not touch, so that the two pair item by item (paired.py).
    chosen_count = len(items)
    if rule:
        items = _offered(items, rule)
        if not items:
            raise EvaluationError(
                f"The rule {rule} changes nothing in any of the {chosen_count:,} chosen "
                "programs: there is nothing to evaluate under it."
            )
    refusal = too_many_results(len(items) * samples, max_results)
    if refusal is not None:
        raise EvaluationError(refusal)
    # CRUXEval-I's official check appends an assert to the program, which a rule would rewrite:
    # under one, the site's own check (scoring.score_cruxeval_input_under_rule) scores it.
    standard_rules = RULES_VERSION if spec.predicts_input else SITE_RULES
    rules = SITE_RULES if rule else standard_rules
    config = configuration(
        dataset=dataset, subset=list(subset or []), method=method, model=model,
        temperature=temperature, seed=seed, samples=samples, max_tokens=max_tokens, limit=limit,
        sample_randomly=sample_randomly, rules=rules, rule=rule,
    )  # fmt: skip
    if rule:
        # The digest of the same evaluation under Python's own semantics: its standard twin.
        config["standard_twin"] = configuration(
            dataset=dataset, subset=list(subset or []), method=method, model=model,
            temperature=temperature, seed=seed, samples=samples, max_tokens=max_tokens,
            limit=limit, sample_randomly=sample_randomly, rules=standard_rules,
        )["digest"]  # fmt: skip
    with transaction.atomic():
        evaluation = Evaluation.objects.create(
            title=title, dataset=dataset, subset=list(subset or []), method=method, model=model,
            temperature=temperature, samples=samples, seed=seed, limit=limit,
            sample_randomly=sample_randomly, concurrency=max(1, min(concurrency, 64)),
            max_tokens=max_tokens, owner=owner if getattr(owner, "pk", None) else None,
            total=len(items) * samples,
            # The method's answer decides the task: a call (CRUXEval-I), scored by CRUXEval's
            # official rules (the only ones it has), or a value (the site's rules, scoring.py).
            task="input" if spec.predicts_input else "output",
            rules=rules, config=config, rule=rule, not_offered=chosen_count - len(items),
        )  # fmt: skip
        rows = (
            Result(evaluation=evaluation, index=i, sample=s, item_key=key[:120], item_ref=ref)
            for i, (key, ref) in enumerate(items)
            for s in range(samples)
        )
        while batch := list(islice(rows, RESULT_BATCH)):
            Result.objects.bulk_create(batch)
        if start:
            transaction.on_commit(lambda: send(evaluation.pk, "run"))
    return evaluation


def start_standard_twin(
    evaluation: Evaluation, *, owner: Any, max_results: int | None = None, start: bool = True
) -> Evaluation:
    """Make (and queue) the standard twin of an evaluation under a rule: the same data set,
    subset, items, method, model, seed and parameters under Python's own semantics, so that the
    two pair (``paired.py``). Refused when the method, model or scoring rules changed since,
    so that a twin would not ask the same question."""
    config = evaluation.config if isinstance(evaluation.config, dict) else {}
    wanted = config.get("standard_twin") if evaluation.rule else None
    if not wanted:
        raise EvaluationError("Only an evaluation under a rule has a standard twin to start.")
    spec = REGISTRY.get(evaluation.method)
    rules = RULES_VERSION if spec is not None and spec.predicts_input else SITE_RULES
    asked: dict[str, Any] = {
        "dataset": evaluation.dataset, "subset": list(evaluation.subset or []),
        "method": evaluation.method, "model": evaluation.model,
        "temperature": evaluation.temperature, "seed": evaluation.seed,
        "samples": evaluation.samples, "max_tokens": evaluation.max_tokens,
        "limit": evaluation.limit, "sample_randomly": evaluation.sample_randomly,
    }  # fmt: skip
    if configuration(**asked, rules=rules)["digest"] != wanted:
        raise EvaluationError(
            "The method, the model or the scoring rules have changed since this evaluation "
            "ran: a standard run now would not ask the same question. Start both again."
        )
    return create_evaluation(
        **asked, owner=owner, concurrency=evaluation.concurrency, start=start,
        title=f"{evaluation.title or f'Evaluation #{evaluation.pk}'} (standard)"[:200],
        max_results=max_results,
    )  # fmt: skip


def rule_refusal(rule: str, *, dataset: str, method: str) -> str | None:
    """Why an evaluation of ``method`` over ``dataset`` cannot run under ``rule``, or None (no
    rule, or one it can run under)."""
    if not rule:
        return None
    if rule not in sandbox.RULES:
        return f"There is no rule {rule[:40]!r}; the rules are: {', '.join(sandbox.RULES)}."
    if KIND.get(dataset) != "program":  # type: ignore[call-overload]
        return "Only programs run under a rule: choose CRUXEval or a list of programs."
    spec = REGISTRY.get(method)
    if spec is None:
        return f"There is no method {method[:40]!r}."
    if not spec.changed_semantics:
        return f"{spec.name} cannot run under a rule: {spec.why_no_rule}"
    return None


def _offered(
    items: list[tuple[str, dict[str, int]]], rule: str
) -> list[tuple[str, dict[str, int]]]:
    """The items whose program ``rule`` may change (parsed here, never run)."""
    ids = [ref["program"] for _, ref in items]
    sources: dict[int, str] = {}
    for start in range(0, len(ids), RESULT_BATCH):
        chunk = ids[start : start + RESULT_BATCH]
        sources.update(Program.objects.filter(pk__in=chunk).values_list("pk", "source"))
    return [
        (key, ref) for key, ref in items if sandbox.sites(rule, sources.get(ref["program"], "")) > 0
    ]


def cancel(evaluation: Evaluation) -> bool:
    return bool(
        Evaluation.objects.filter(pk=evaluation.pk)
        .exclude(status__in=Evaluation.FINISHED)
        .update(status=Evaluation.Status.CANCELLED, finished_at=timezone.now())
    )


def reap_evaluations(now: datetime | None = None) -> list[tuple[int, str]]:
    """The reaper's sweep of evaluations (playground.reaper; timings in lib/worktimes.py).

    An evaluation a live process drives (the command line, an import's scorer: they hold its
    lease) is left alone. Otherwise its results whose task died (taken, and the lease lapsed) or
    whose message was lost (sent ``LOST_AFTER_S`` ago, never taken, not in the broker: see
    ``execution.release_lost``) go back to pending with one more failure (one that reaches
    ``MAX_FAILURES`` is scored an error, never a "wrong"), and its window is topped up
    (``execution.dispatch``): which also starts one whose first task is still queued, and
    finishes one whose last item's worker died after scoring. An import that no live process
    holds is sent again. Returns (evaluation id, why) for each
    evaluation where something was lost."""
    from playground.benchmarks.execution import dispatch, release_lost

    now = now or timezone.now()
    rows = list(
        Evaluation.objects.filter(
            status__in=[Evaluation.Status.QUEUED, Evaluation.Status.RUNNING]
        ).values("pk", "claimed_at", "resent_at", "created_at", "origin")
    )
    held = leases.live_many([work_key("evaluation", row["pk"]) for row in rows])
    found: list[tuple[int, str]] = []
    for row, alive in zip(rows, held, strict=True):
        if alive:
            continue
        if row["origin"] == "import":
            why = _reap_import(row, now)
            if why:
                found.append((row["pk"], why))
            continue
        lost = release_lost(row["pk"], now)
        if lost:
            log.warning("evaluation %s: %d lost item(s) put back", row["pk"], lost)
            found.append((row["pk"], f"{lost} item(s) put back"))
        dispatch(row["pk"])
    return found


def _reap_import(row: Mapping[str, Any], now: datetime) -> str:
    """An import's checks run in one process holding its lease: sent again when that process
    died (it took it and the lease lapsed) or no process took it in time; "" when neither."""
    unclaimed_before = now - timedelta(seconds=worktimes.UNCLAIMED_AFTER_S)
    if row["claimed_at"] is not None:
        why = "its worker stopped"
    elif (row["resent_at"] or row["created_at"]) < unclaimed_before:
        why = "no worker took it"
    else:
        return ""
    with transaction.atomic():
        if not Evaluation.objects.filter(
            pk=row["pk"], claimed_at=row["claimed_at"], resent_at=row["resent_at"]
        ).update(claimed_at=None, resent_at=now):
            return ""  # taken again meanwhile, or another sweep sent it
        # The chunk it was checking: nobody holds it now (one process per import).
        Result.objects.filter(evaluation_id=row["pk"], status=Result.Status.RUNNING).update(
            status=Result.Status.PENDING
        )
        transaction.on_commit(lambda: send(row["pk"], "import"))
    log.warning("import %s sent again (%s)", row["pk"], why)
    return why


def send(evaluation_id: int, origin: str) -> None:
    """Queue the evaluation's task: on ``batch`` (its items ask the model there and send their
    code to the sandbox queue), or, for imported outputs, whose work is all checks that run
    code, on the sandbox queue itself."""
    queue = (
        settings.PLAYGROUND_SANDBOX_QUEUE if origin == "import" else settings.PLAYGROUND_BATCH_QUEUE
    )
    run_evaluation.apply_async(args=(evaluation_id,), queue=queue)


def held_elsewhere(evaluation: Evaluation) -> bool:
    """Whether a task holds the evaluation now (it is being worked on by a worker)."""
    return bool(leases.live(work_key("evaluation", evaluation.pk)))


def resume_interrupted_one(evaluation: Evaluation) -> None:
    """Continue one evaluation in this process: results left running by a killed process go
    back to pending (never scored: the claim is released, the score not yet written); those a
    live worker holds stay its own. Not while a process holds the whole evaluation
    (``held_elsewhere``: the caller refuses first)."""
    running = list(
        Result.objects.filter(evaluation=evaluation, status=Result.Status.RUNNING).values_list(
            "pk", flat=True
        )
    )
    alive = leases.live_many([work_key("result", pk) for pk in running])
    dead = [pk for pk, live in zip(running, alive, strict=True) if not live]
    Result.objects.filter(pk__in=dead, status=Result.Status.RUNNING).update(
        status=Result.Status.PENDING, taken_at=None
    )
    Evaluation.objects.filter(pk=evaluation.pk).update(
        status=Evaluation.Status.RUNNING, finished_at=None, figures=None
    )


def queue_rescore(evaluation: Evaluation) -> None:
    """Queue the evaluation's re-scoring (rescoring.py) on the sandbox queue (its checks run
    code)."""
    from playground.benchmarks.tasks import rescore_evaluation

    transaction.on_commit(lambda: rescore_evaluation.delay(evaluation.pk))


MAX_UPLOAD_BYTES = 2_621_440  # the site's body limit (settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def import_upload(data: dict[str, Any], *, owner: Any) -> Evaluation:
    """An upload of outputs (the import form, the API): checked whole, the evaluation and its
    pending results made in one transaction, and its checks queued on the batch worker.
    Raises ImportRefused (nothing made) when the file cannot be imported."""
    from playground.benchmarks import imports

    upload = data["file"]
    if upload.size > MAX_UPLOAD_BYTES:
        raise imports.ImportRefused(f"The file is larger than {MAX_UPLOAD_BYTES:,} bytes.")
    dataset, task = data["dataset"], data.get("task") or "output"
    method = data.get("method") or imports.default_method(dataset, task)
    plan = imports.plan_upload(
        upload.read(), filename=upload.name or "", dataset=dataset, task=task, method=method,
        model=data["model"],
    )  # fmt: skip
    with transaction.atomic():
        evaluation = imports.create(plan, owner=owner)
        transaction.on_commit(lambda: send(evaluation.pk, "import"))
    return evaluation
