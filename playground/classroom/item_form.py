"""The item form of the staff pages: ``ItemForm`` (one item of an assignment: its mode, its
program from the library or written new, its checkpoints, its model and method) and what only it
uses (the checkpoint editor's rows and their checking, the library a teacher picks from, the
configured models). Its own file because it is the one form that reaches into programs, the
sandbox's checkpoint check and the model registry; the course, assignment, roster and grade forms
in ``forms.py`` need none of that. Like them, every problem comes back as a message on a field.
A few lines over ~400 because each item mode's cleaning (``_clean_<mode>``) sits beside the
others it must stay consistent with."""

from __future__ import annotations

import keyword
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from django import forms
from django.conf import settings
from django.db.models import Q
from django.http import QueryDict

from playground.classroom import nextstate, variants
from playground.classroom.authoring import ItemData
from playground.classroom.checkpoints import check_checkpoints
from playground.classroom.models import Item, Mode, PartialCredit, Results
from playground.classroom.probing import SEED_MAX, config_of
from playground.emulation import probes
from playground.emulation.registry import REGISTRY, methods_for
from playground.lib.params import DecimalNumberField, WholeNumberField, object_id
from playground.llm.registry import RegistryError, load_models
from playground.programs.models import Program, Puzzle
from playground.programs.validation import ProgramError, check_call, check_source, strip_bom
from playground.sandbox.inside.semantics import RULES, offered

MAX_CHECKPOINTS = 50
MAX_CHECKPOINT_VARIABLES = 20
_CODE = {"spellcheck": "false", "class": "code", "autocapitalize": "off"}

ORIGINS = [("library", "From the library"), ("new", "Write a new program")]


def checkpoint_rows(data: QueryDict | None, item: Item | None, blank: int = 3) -> list[dict]:
    """The rows of the checkpoint editor: what was posted, or the item's checkpoints, then a few
    blank rows to add more."""
    if data is not None and "cp_line" in data:
        rows = [
            {"line": line, "occurrence": occurrence, "variables": variables}
            for line, occurrence, variables in zip_longest(
                data.getlist("cp_line"),
                data.getlist("cp_occurrence"),
                data.getlist("cp_variables"),
                fillvalue="",
            )
        ]
        rows = [r for r in rows if any(str(v).strip() for v in r.values())]
    elif item is not None:
        rows = [
            {
                "line": str(cp.get("line", "")),
                "occurrence": str(cp.get("occurrence", 1)),
                "variables": ", ".join(cp.get("variables", [])),
            }
            for cp in item.checkpoints
        ]
    else:
        rows = []
    return rows[:MAX_CHECKPOINTS] + [
        {"line": "", "occurrence": "", "variables": ""} for _ in range(blank)
    ]


def parse_checkpoints(
    rows: Sequence[dict[str, str]], source: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """Checkpoints from the editor's rows, checked against the program: (checkpoints, errors).
    Blank rows are skipped; a line must hold code (execution never stops on a blank line or a
    comment) and a row names at least one variable."""
    lines = source.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line starts no line of its own
    count = f"{len(lines)} line{'s' if len(lines) != 1 else ''}"
    checkpoints: list[dict[str, Any]] = []
    errors: list[str] = []
    filled = [r for r in rows if any(str(v).strip() for v in r.values())]
    if len(filled) > MAX_CHECKPOINTS:
        errors.append(f"At most {MAX_CHECKPOINTS} checkpoints.")
    for number, row in enumerate(filled[:MAX_CHECKPOINTS], start=1):
        where = f"Checkpoint {number}"
        raw_line = str(row.get("line", "")).strip()
        if not (raw_line.isascii() and raw_line.isdigit() and len(raw_line) <= 9):
            errors.append(f"{where}: the line is a number from 1 to {len(lines)}.")
            continue
        line = int(raw_line)
        if not 1 <= line <= len(lines):
            errors.append(f"{where}: line {line} is not in the program (it has {count}).")
            continue
        text = lines[line - 1].strip()
        if not text or text.startswith("#"):
            errors.append(
                f"{where}: line {line} is blank or a comment, so execution never stops there."
            )
            continue
        raw_occurrence = str(row.get("occurrence", "")).strip() or "1"
        if not (
            raw_occurrence.isascii()
            and raw_occurrence.isdigit()
            and 1 <= int(raw_occurrence[:7]) <= 100_000
            and len(raw_occurrence) <= 7
        ):
            errors.append(f"{where}: the occurrence is a whole number from 1 to 100,000.")
            continue
        names: list[str] = []
        bad: list[str] = []
        for name in str(row.get("variables", "")).split(","):
            name = name.strip()
            if not name:
                continue
            if not name.isidentifier() or keyword.iskeyword(name):
                bad.append(name[:40])
            elif name not in names:
                names.append(name)
        if bad:
            errors.append(f"{where}: not a variable name: {', '.join(bad)}.")
            continue
        if not names:
            errors.append(f"{where}: name at least one variable (comma-separated).")
            continue
        if len(names) > MAX_CHECKPOINT_VARIABLES:
            errors.append(f"{where}: at most {MAX_CHECKPOINT_VARIABLES} variables.")
            continue
        checkpoints.append({"line": line, "occurrence": int(raw_occurrence), "variables": names})
    return checkpoints, errors


def model_choices() -> tuple[list[tuple[str, str]], str]:
    """The configured models as choices, and the configuration problem if there is one."""
    try:
        return [(m.name, m.label) for m in load_models()], ""
    except RegistryError as exc:
        return [], str(exc)


def library_programs(user: Any) -> Any:
    """The programs a staff member may put in an assignment: the built-in data sets (public) and
    their own programs."""
    return Program.objects.filter(
        Q(is_public=True, dataset__in=["cruxeval", "humaneval"]) | Q(owner=user)
    )


class ItemForm(forms.Form):
    mode = forms.ChoiceField(choices=Mode.choices, widget=forms.RadioSelect, initial=Mode.OUTPUT)
    title = forms.CharField(
        max_length=200, required=False, help_text="Optional: shown to the students."
    )
    prompt = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional instructions shown with the item.",
    )
    points = DecimalNumberField(min_value=0, max_value=1000, initial=1)
    results = forms.ChoiceField(
        choices=Results.choices,
        required=False,
        label="Students see their results",
        help_text="In exam mode, nothing before an instructor publishes the results.",
    )
    partial_credit = forms.ChoiceField(
        choices=PartialCredit.choices,
        required=False,
        initial=PartialCredit.PROPORTIONAL,
        label="Partial credit",
        help_text="Predict the trace, answer the probes, predict the next state (per step): how "
        "the parts earn credit. Answers already graded keep their grade.",
    )
    pool = forms.CharField(
        max_length=40,
        required=False,
        label="Pool",
        help_text="Optional: items of this assignment with the same pool name are one question; "
        "each student gets one of them.",
    )
    # A varied item (variants.py): per literal argument of the call, a range or choices.
    vary = forms.CharField(
        required=False,
        max_length=5000,
        label="Vary the call per student",
        widget=forms.Textarea(attrs={"rows": 3, **_CODE}),
        help_text="Optional, one line per argument (numbered from 1): 1: 1..9 for whole numbers, "
        "2: 'ab' | 'xyz' for choices. Each student gets their own call; calls that raise, run "
        "out of time or a limit are never handed out.",
    )
    vary_generator = forms.CharField(
        required=False,
        strip=False,
        label="Or a generator function",
        widget=forms.Textarea(attrs={"rows": 5, **_CODE}),
        help_text="Optional, instead of the lines above: def variant(seed, n) returning the "
        "call's arguments as a tuple, for candidate n. It runs in the sandbox only, like the "
        "program.",
    )
    variant_count = WholeNumberField(
        required=False,
        min_value=1,
        max_value=1000,
        initial=variants.DEFAULT_COUNT,
        label="Variants",
    )
    variant_seed = WholeNumberField(
        required=False, min_value=0, max_value=variants.SEED_MAX, initial=0, label="Variant seed"
    )
    origin = forms.ChoiceField(choices=ORIGINS, widget=forms.RadioSelect, initial="library")
    pick = forms.CharField(required=False, widget=forms.HiddenInput)
    source = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 12, **_CODE})
    )
    call = forms.CharField(
        required=False,
        help_text="One expression evaluated after the program, e.g. f([1, 2, 3]).",
        widget=forms.TextInput(attrs={"placeholder": "f([1, 2, 3])", **_CODE}),
    )
    model = forms.ChoiceField(required=False, label="Model")
    method = forms.ChoiceField(required=False, label="Method")
    # Answer the probes: the seed and how many questions of each kind (probes.Config).
    probe_seed = WholeNumberField(
        required=False, min_value=0, max_value=SEED_MAX, initial=0, label="Seed"
    )
    probe_coverage = WholeNumberField(
        required=False, min_value=0, max_value=probes.MAX_PER_KIND, label="Coverage"
    )
    probe_state = WholeNumberField(
        required=False, min_value=0, max_value=probes.MAX_PER_KIND, label="State"
    )
    probe_path = WholeNumberField(
        required=False, min_value=0, max_value=probes.MAX_PER_KIND, label="Path (next line)"
    )
    probe_output = WholeNumberField(required=False, min_value=0, max_value=1, label="Output")
    probe_sequence = WholeNumberField(
        required=False, min_value=0, max_value=1, label="Executed lines"
    )
    # Predict the next state: which steps are asked (nextstate.parse_choice).
    step_choice = forms.CharField(
        required=False,
        max_length=300,
        label="Asked steps",
        initial=f"every {nextstate.DEFAULT_EVERY}",
        help_text=f"“every N”: each step after the call, up to N (at most {nextstate.MAX_ASKED}); "
        "or step numbers, e.g. 3, 5, 9 (step 1 is the call). The others are shown as they ran.",
    )
    # Execute under a changed rule: one of those offered for the program (semantics.offered).
    rule = forms.ChoiceField(
        required=False,
        label="Rule",
        choices=[("", "Choose a rule"), *((name, name) for name in RULES)],
    )

    def __init__(
        self,
        *args: Any,
        user: Any,
        item: Item | None = None,
        rows: Sequence[dict[str, str]] = (),
        may_run: Callable[[Program | None, str], bool] | None = None,
        **kwargs: Any,
    ) -> None:
        if item is not None and "initial" not in kwargs:
            kwargs["initial"] = _item_initial(item)
        super().__init__(*args, **kwargs)
        self.user = user
        self.item = item
        self.rows = rows
        self.checkpoint_errors: list[str] = []
        self.check_note = ""  # why the checkpoints could not be checked against a real run
        # Whether this person may have the program run (its real trace must not reach a
        # student of an open assignment with it); the view refuses the item itself.
        self.may_run = may_run or (lambda program, source: True)
        models, self.models_problem = model_choices()
        self.fields["model"].choices = [("", "Choose a model"), *models]  # type: ignore[attr-defined]
        self.fields["method"].choices = [("", "Choose a method"), *methods_for("program").items()]  # type: ignore[attr-defined]
        self.data_out: ItemData | None = None
        for kind in probes.KINDS:
            self.fields[f"probe_{kind}"].initial = probes.DEFAULT.count(kind)

    def picked(self) -> Program | Puzzle | None:
        """What the library pick currently names (for showing it), if it exists."""
        value = self["pick"].value() or ""
        kind, _, raw = str(value).partition(":")
        pk = object_id(raw)  # "²", "٣", 5,000 digits: no such thing, not a 500
        if pk is None:
            return None
        if kind == "puzzle":
            return Puzzle.objects.filter(pk=pk).first()
        if kind == "program":
            return self._programs().filter(pk=pk).first()
        return None

    def _programs(self) -> Any:
        allowed = library_programs(self.user)
        if self.item is not None and self.item.program_id is not None:
            allowed = allowed | Program.objects.filter(pk=self.item.program_id)
        return allowed

    def clean_title(self) -> str:
        return str(self.cleaned_data.get("title") or "").strip()

    def _reachable(
        self, checkpoints: list[dict[str, Any]], program: Program | None, source: str, call: str
    ) -> list[str]:
        """Problems of checkpoints the real run never reaches or where a variable has no value,
        from the program's real trace (the item's own key when the program is unchanged, else
        a run in the sandbox now). If no trace can be had in time the item may still be saved:
        its key checks the checkpoints again, and students cannot answer until they hold."""
        if not self.may_run(program, source):
            return []  # the item is refused as a whole: say nothing about its real run
        current = self.item.key_run if self.item is not None else None
        check = check_checkpoints(
            checkpoints,
            source=source,
            call=call,
            stdin=program.stdin if program is not None else "",
            key_run=current if program is not None and program.pk == self.item_program_id else None,
        )
        self.check_note = check.unchecked
        return list(check.problems)

    @property
    def item_program_id(self) -> int | None:
        return self.item.program_id if self.item is not None else None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        mode = cleaned.get("mode")
        if mode is None or self.has_error("points"):
            return cleaned
        clean_mode = {
            Mode.OUTPUT: self._clean_output,
            Mode.INPUT: self._clean_output,  # a program and its call: the call gives the output
            Mode.TRACE: self._clean_trace,
            Mode.PUZZLE: self._clean_puzzle,
            Mode.DIVERGENCE: self._clean_divergence,
            Mode.BEAT_MODEL: self._clean_beat_model,
            Mode.PROBES: self._clean_probes,
            Mode.RULE: self._clean_rule,
            Mode.NEXT_STATE: self._clean_next_state,
        }[mode]
        what = clean_mode(cleaned)
        variation = self._clean_variation(cleaned, mode, what)
        if what is not None and not self.errors:
            self.data_out = ItemData(
                mode=mode,
                title=cleaned.get("title", ""),
                prompt=str(cleaned.get("prompt") or ""),
                points=float(cleaned["points"]),
                program=what.program,
                puzzle=what.puzzle,
                new_source=what.new_source,
                new_call=what.call,
                checkpoints=what.checkpoints,
                model=what.model,
                method=what.method,
                probe_config=what.probe_config,
                step_choice=what.step_choice,
                rule=what.rule,
                results=str(cleaned.get("results") or ""),
                partial_credit=str(cleaned.get("partial_credit") or PartialCredit.PROPORTIONAL),
                variation=variation,
                pool=str(cleaned.get("pool") or "").strip(),
            )
        return cleaned

    def _clean_variation(
        self, cleaned: dict[str, Any], mode: str, what: _Cleaned | None
    ) -> dict[str, Any]:
        """A varied item's generator, checked against the call (a form error says why not)."""
        text = str(cleaned.get("vary") or "")
        generator = str(cleaned.get("vary_generator") or "").replace("\r\n", "\n")
        if (not text.strip() and not generator.strip()) or what is None:
            return {}
        if text.strip() and generator.strip():
            self.add_error("vary_generator", "Vary the call by lines or by a generator, not both.")
            return {}
        if mode not in variants.VARIED_MODES:
            self.add_error(
                "vary",
                "Only items whose key is the real run can be varied (predict the output, the "
                "input, the trace, answer the probes, under a changed rule).",
            )
            return {}
        count = cleaned.get("variant_count") or variants.DEFAULT_COUNT
        if count > variants.cap_variants():
            self.add_error("variant_count", f"At most {variants.cap_variants()} variants.")
            return {}
        seed = cleaned.get("variant_seed") or 0
        if generator.strip():
            try:
                check_source(generator, max_bytes=settings.PLAYGROUND_MAX_SOURCE_BYTES)
                variants.check_generator(generator, what.call)
            except (ProgramError, variants.VariationError) as exc:
                self.add_error("vary_generator", str(exc))
                return {}
            return {"args": [], "generator": generator, "count": int(count), "seed": int(seed)}
        try:
            return variants.parse(text, what.call, count=int(count), seed=int(seed))
        except variants.VariationError as exc:
            self.add_error("vary", str(exc))
            return {}

    # One per mode: what the item is graded against, or None when the form already says why not.

    def _clean_output(self, cleaned: dict[str, Any]) -> _Cleaned | None:
        what = self._clean_program(cleaned)
        if what is not None:
            self._require_call(what)
        return what

    def _clean_trace(self, cleaned: dict[str, Any]) -> _Cleaned | None:
        what = self._clean_program(cleaned)
        if what is None:
            return None
        what.checkpoints, self.checkpoint_errors = parse_checkpoints(self.rows, what.source)
        if not what.checkpoints and not self.checkpoint_errors:
            self.checkpoint_errors = ["Add at least one checkpoint (line and variables)."]
        if not self.checkpoint_errors and not self.errors:
            self.checkpoint_errors = self._reachable(
                what.checkpoints, what.program, what.source, what.call
            )
        for message in self.checkpoint_errors:
            self.add_error(None, message)
        return what

    def _clean_puzzle(self, cleaned: dict[str, Any]) -> _Cleaned | None:
        picked = self.picked()
        if not isinstance(picked, Puzzle):
            self.add_error("pick", "Pick a P3 puzzle from the library search.")
            return None
        return _Cleaned(puzzle=picked)

    def _clean_divergence(self, cleaned: dict[str, Any]) -> _Cleaned | None:
        what = self._clean_program(cleaned)
        if what is not None:
            self._clean_model(cleaned, what, needs_steps=True)
        return what

    def _clean_beat_model(self, cleaned: dict[str, Any]) -> _Cleaned | None:
        what = self._clean_program(cleaned)
        if what is not None:
            self._require_call(what)
            self._clean_model(cleaned, what, needs_steps=False)
        return what

    def _clean_probes(self, cleaned: dict[str, Any]) -> _Cleaned | None:
        what = self._clean_program(cleaned)
        if what is None:
            return None
        counts: dict[str, int] = {}
        for kind in probes.KINDS:
            value = cleaned.get(f"probe_{kind}")
            counts[kind] = probes.DEFAULT.count(kind) if value is None else int(value)
        if not any(counts.values()):
            self.add_error("probe_coverage", "Ask at least one question.")
            return None
        seed = cleaned.get("probe_seed")
        what.probe_config = {"seed": 0 if seed is None else int(seed), **counts}
        return what

    def _clean_next_state(self, cleaned: dict[str, Any]) -> _Cleaned | None:
        what = self._clean_program(cleaned)
        if what is None:
            return None
        self._require_call(what)
        try:
            what.step_choice = nextstate.parse_choice(str(cleaned.get("step_choice") or ""))
        except ValueError as exc:
            self.add_error("step_choice", str(exc))
            return None
        return what

    def _clean_rule(self, cleaned: dict[str, Any]) -> _Cleaned | None:
        what = self._clean_program(cleaned)
        if what is None:
            return None
        self._require_call(what)
        what.rule = str(cleaned.get("rule") or "")
        names = [rule.name for rule in offered(what.source)]
        if not names:
            self.add_error(
                "rule", "No rule changes anything in this program: choose another program."
            )
        elif not what.rule:
            self.add_error(
                "rule", f"Choose a rule. Those that change this program: {', '.join(names)}."
            )
        elif what.rule not in names:
            self.add_error(
                "rule",
                f"The rule {what.rule} changes nothing in this program. Those that change it: "
                f"{', '.join(names)}.",
            )
        return what

    # What the modes share.

    def _clean_program(self, cleaned: dict[str, Any]) -> _Cleaned | None:
        """The program: a new one written on the form (checked), or one picked in the library."""
        if cleaned.get("origin") != "new":
            picked = self.picked()
            if not isinstance(picked, Program):
                self.add_error(
                    "pick", "Pick a program from the library search, or write a new program."
                )
                return None
            return _Cleaned(program=picked, call=picked.call)
        new_source = strip_bom(str(cleaned.get("source") or "").replace("\r\n", "\n"))
        call = str(cleaned.get("call") or "").strip()
        try:
            check_source(new_source, max_bytes=settings.PLAYGROUND_MAX_SOURCE_BYTES)
        except ProgramError as exc:
            self.add_error("source", str(exc))
            return None
        try:
            check_call(call, max_chars=settings.PLAYGROUND_MAX_CALL_CHARS)
        except ProgramError as exc:
            self.add_error("call", str(exc))
            return None
        current = self.item.program if self.item is not None else None
        if current is not None and (current.source, current.call) == (new_source, call):
            return _Cleaned(program=current, call=call)  # unchanged: keep the program and its key
        return _Cleaned(new_source=new_source, call=call)

    def _require_call(self, what: _Cleaned) -> None:
        if not what.call.strip():
            self.add_error(
                "call" if what.new_source is not None else "pick",
                "The students predict the value of a call: this program needs one "
                "(e.g. f([1, 2, 3])).",
            )

    def _clean_model(self, cleaned: dict[str, Any], what: _Cleaned, *, needs_steps: bool) -> None:
        """The model the students are compared with and how it emulates the program."""
        what.model = str(cleaned.get("model") or "")
        what.method = str(cleaned.get("method") or "")
        if self.models_problem:
            self.add_error("model", f"The site's models are misconfigured: {self.models_problem}")
        elif not what.model:
            self.add_error("model", "Choose the model the students are compared with.")
        if not what.method:
            self.add_error("method", "Choose how the model emulates the program.")
        elif needs_steps and not REGISTRY[what.method].compares_steps:
            steps = ", ".join(n for n, m in REGISTRY.items() if m.compares_steps)
            self.add_error(
                "method",
                f"Spot the divergence needs a method that writes a step trace ({steps}).",
            )


@dataclass
class _Cleaned:
    """What one mode's cleaning decided the item is graded against (the rest of ``ItemData``)."""

    program: Program | None = None
    puzzle: Puzzle | None = None
    new_source: str | None = None  # a new program written on the form
    call: str = ""
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    model: str = ""
    method: str = ""
    probe_config: dict[str, int] = field(default_factory=dict)
    step_choice: dict[str, Any] = field(default_factory=dict)
    rule: str = ""

    @property
    def source(self) -> str:
        if self.new_source is not None:
            return self.new_source
        return self.program.source if self.program is not None else ""


def _item_initial(item: Item) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "mode": item.mode,
        "title": item.title,
        "prompt": item.prompt,
        "points": item.points,
        "origin": "library",
        "model": item.model,
        "method": item.method,
        "rule": item.rule,
        "results": item.results,
        "partial_credit": item.partial_credit,
        "pool": item.pool,
        "step_choice": nextstate.choice_text(item.step_choice),
    }
    if variants.is_varied(item):
        initial["vary"] = variants.as_text(item.variation)
        initial["vary_generator"] = item.variation.get("generator", "")
        initial["variant_count"] = item.variation.get("count", variants.DEFAULT_COUNT)
        initial["variant_seed"] = item.variation.get("seed", 0)
    config, seed = config_of(item)
    initial["probe_seed"] = seed
    initial.update({f"probe_{kind}": config.count(kind) for kind in probes.KINDS})
    if item.puzzle_id is not None:
        initial["pick"] = f"puzzle:{item.puzzle_id}"
    elif item.program is not None:
        initial["pick"] = f"program:{item.program_id}"
        initial["source"] = item.program.source
        initial["call"] = item.program.call
    return initial
