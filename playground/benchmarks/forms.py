"""The form that starts an evaluation: every number bounded (the same bounds in the HTML), every
choice checked against what this site has, each error next to its field, nothing typed lost.

The bounds here are what one evaluation may ask for at all; an account that is not staff may
also ask for at most ``evaluation_results.user`` results (items x samples) in one, from the table
of limits (playground/lib/ratelimits.py), checked here before anything is made. How many it may
start an hour is the view's (a 429)."""

from __future__ import annotations

from typing import Any

from django import forms

from playground.benchmarks import services
from playground.benchmarks.access import listable_programs
from playground.benchmarks.models import Dataset
from playground.emulation.registry import REGISTRY
from playground.lib import ratelimits
from playground.lib.params import WholeNumberField
from playground.llm.registry import RegistryError, load_models
from playground.programs.models import Dataset as ProgramDataset
from playground.programs.models import Program, Puzzle, Task
from playground.sandbox import RULES

# The largest data set holds 6,511 items (BIG-Bench Hard); a list of programs 1,000 ids.
MAX_ITEMS = 10_000
MAX_SAMPLES = 100
MAX_CONCURRENCY = 64
# A run's seed is the evaluation's plus the sample's number, in a 32-bit column.
MAX_SEED = 2_000_000_000
MAX_TASKS_TEXT = 4_000
MAX_PROGRAMS_TEXT = 20_000

_DATASET_LABELS = dict(Dataset.choices)


def _whole_number(
    label: str, low: int, high: int, initial: int, *, called: str = "", empty: str = "", **kw: Any
) -> forms.IntegerField:
    """A bounded whole-number field, not required (left empty it takes ``initial``, see
    ``_or_initial``), whose every error says the rule in the form's words ("``called``: a whole
    number from 1 to 100."; ``called`` defaults to the label)."""
    rule = f"{called or label}: a whole number from {low:,} to {high:,}{empty}."
    return WholeNumberField(
        label=label,
        required=False,
        min_value=low,
        max_value=high,
        initial=initial,
        error_messages={"invalid": rule, "min_value": rule, "max_value": rule, "required": rule},
        **kw,
    )


def _short(label: str) -> str:
    """A method's name without its description ("Chain of Code: Python runs...")."""
    return label.split(":")[0].strip()


MAX_MORE_MODELS = 4  # models besides the main one in one start


class EvaluationForm(forms.Form):
    dataset = forms.ChoiceField(label="Data set", choices=Dataset.choices)
    tasks = forms.CharField(
        label="BIG-Bench Hard tasks",
        required=False,
        max_length=MAX_TASKS_TEXT,
        help_text="Task names separated by commas or spaces; empty for every task.",
        widget=forms.TextInput(attrs={"placeholder": "navigate, word_sorting"}),
    )
    programs = forms.CharField(
        label="Program ids",
        required=False,
        max_length=MAX_PROGRAMS_TEXT,
        help_text="Your programs or public ones, e.g. 12, 15, 40.",
        widget=forms.TextInput(attrs={"placeholder": "12, 15, 40", "inputmode": "numeric"}),
    )
    method = forms.ChoiceField(label="Method")
    model = forms.ChoiceField(label="Model")
    also = forms.MultipleChoiceField(
        label="Also with (optional)",
        required=False,
        help_text="More models (Ctrl or ⌘ picks several): one evaluation each, run side by "
        "side, each within its model's own limit of requests at once.",
    )
    limit = _whole_number(
        "Items at most", 1, MAX_ITEMS, 20,
        empty=", or empty for every item", help_text="Empty for every item of the data set.",
    )  # fmt: skip
    random = forms.BooleanField(label="a random sample (with the seed)", required=False)
    samples = _whole_number(
        "Samples per item (pass@k)", 1, MAX_SAMPLES, 1, called="Samples per item"
    )
    seed = _whole_number("Seed", 0, MAX_SEED, 0)
    concurrency = _whole_number(
        "Requests at once", 1, MAX_CONCURRENCY, 4,
        help_text="How many items the model server works on at the same time.",
    )  # fmt: skip
    title = forms.CharField(label="Title", required=False, max_length=200)
    rule = forms.ChoiceField(
        label="Semantics",
        required=False,
        choices=[("", "Python's own")] + [(name, name) for name in RULES],
        help_text="Run every program under a changed rule, told to the model (programs the "
        "rule changes nothing in are left out). Pair it with the same evaluation under "
        "Python's own semantics to see how much the model leans on its priors.",
    )
    twin = forms.BooleanField(
        label="and its standard twin (the same evaluation under Python's own semantics)",
        required=False,
    )

    def __init__(self, *args: Any, owner: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.fields["rule"].error_messages["invalid_choice"] = (
            f"Choose a rule from the list: {', '.join(RULES)}."
        )
        method, model = self.fields["method"], self.fields["model"]
        assert isinstance(method, forms.ChoiceField)
        assert isinstance(model, forms.ChoiceField)
        method.choices = [(k, m.label) for k, m in REGISTRY.items()]
        dataset = self.fields["dataset"]
        assert isinstance(dataset, forms.ChoiceField)
        # CRUXEval's two tasks are one data set: the method's answer (a value or a call) says
        # which is measured (the evaluation's ``task``).
        dataset.choices = [
            (key, "CRUXEval: output prediction, or input prediction with an input method")
            if key == Dataset.CRUXEVAL
            else (key, label)
            for key, label in Dataset.choices
        ]
        try:
            models = load_models()
        except RegistryError:
            models = []
        model.choices = [(m.name, m.label) for m in models]
        also = self.fields["also"]
        assert isinstance(also, forms.MultipleChoiceField)
        also.choices = model.choices
        also.widget.attrs["size"] = str(min(4, max(2, len(models))))
        also.error_messages["invalid_choice"] = "Choose models this site offers."
        model.error_messages["invalid_choice"] = (
            "Choose a model this site offers."
            if models
            else "This site offers no model now (its model configuration is broken)."
        )
        for name in ("dataset", "method"):
            self.fields[name].error_messages["invalid_choice"] = (
                f"Choose a {self.fields[name].label.lower()} from the list."  # type: ignore[union-attr]
            )
        self.subset: list[str] = []
        # Staff are not capped (nor counted: see views.start); everyone else is told the caps.
        self.limited = not getattr(owner, "is_staff", False)
        self.most_results = ratelimits.cap("evaluation_results.user") if self.limited else None
        self.most_often = ratelimits.describe_rate("evaluations.user") if self.limited else ""

    # Left empty (or left out by a script), a number takes its usual value.
    def clean_samples(self) -> int:
        return self._or_initial("samples")

    def clean_seed(self) -> int:
        return self._or_initial("seed")

    def clean_concurrency(self) -> int:
        return self._or_initial("concurrency")

    def _or_initial(self, name: str) -> int:
        value = self.cleaned_data.get(name)
        return int(self.fields[name].initial) if value is None else int(value)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        dataset, method = cleaned.get("dataset"), cleaned.get("method")
        if dataset is None or method is None:
            return cleaned
        kind = services.KIND[Dataset(dataset)]
        spec = REGISTRY[method]
        if kind not in spec.kinds:
            fitting = " or ".join(_short(m.label) for m in REGISTRY.values() if kind in m.kinds)
            self.add_error(
                "method",
                f"{_short(spec.label)} does not apply to {_DATASET_LABELS[dataset]}: "
                f"choose {fitting}.",
            )
        why_no_rule = services.rule_refusal(cleaned.get("rule", ""), dataset=dataset, method=method)
        if why_no_rule is not None:
            self.add_error("rule", why_no_rule)
        # The data set's own problems are said too, in the same answer.
        if dataset == Dataset.BBH:
            self._clean_tasks(cleaned.get("tasks", ""))
        elif dataset == Dataset.PROGRAMS:
            self._clean_programs(cleaned.get("programs", ""))
        elif not self._has_items(dataset):
            self.add_error(
                "dataset",
                f"{_DATASET_LABELS[dataset]} has no items on this site: its library has not "
                "been imported (the operator runs manage.py load_library).",
            )
        if not self.errors:
            self._clean_size(cleaned)
        return cleaned

    def clean_also(self) -> list[str]:
        """The other models, each once, without the main one."""
        main = self.cleaned_data.get("model")
        chosen = [m for m in dict.fromkeys(self.cleaned_data.get("also") or []) if m != main]
        if len(chosen) > MAX_MORE_MODELS:
            raise forms.ValidationError(f"At most {MAX_MORE_MODELS} more models at once.")
        return chosen

    @property
    def per_model(self) -> int:
        """Evaluations made per model: one, or two with a rule and its standard twin."""
        return 2 if self.cleaned_data.get("rule") and self.cleaned_data.get("twin") else 1

    @property
    def models(self) -> list[str]:
        """Every model asked for (valid forms only): the main one first."""
        return [self.cleaned_data["model"], *self.cleaned_data.get("also", [])]

    def _clean_size(self, cleaned: dict[str, Any]) -> None:
        """Refuse, before anything is made, an evaluation with more results than the account
        may ask for, saying how many it would make (all the models' evaluations together)."""
        if self.most_results is None:
            return
        items = services.item_count(cleaned["dataset"], self.subset)
        limit = cleaned.get("limit")
        models = 1 + len(cleaned.get("also") or [])
        count = models * self.per_model
        results = (items if limit is None else min(items, limit)) * cleaned["samples"] * count
        refusal = services.too_many_results(results, self.most_results)
        if refusal is not None and count > 1:
            each = "one per model" if self.per_model == 1 else "under the rule and standard"
            refusal = refusal.replace("This evaluation", f"These {count} evaluations ({each})")
        if refusal is not None:
            self.add_error(None, refusal)

    @staticmethod
    def _has_items(dataset: str) -> bool:
        if dataset == Dataset.CRUXEVAL:
            return Program.objects.filter(dataset=ProgramDataset.CRUXEVAL).exists()
        return Puzzle.objects.exists()

    @staticmethod
    def _words(text: str) -> list[str]:
        return [t for t in text.replace(",", " ").split() if t]

    def _clean_tasks(self, text: str) -> None:
        known = set(Task.objects.values_list("name", flat=True))
        if not known:
            self.add_error(
                "dataset",
                "BIG-Bench Hard has no tasks on this site: its library has not been imported "
                "(the operator runs manage.py load_library).",
            )
            return
        names = list(dict.fromkeys(self._words(text)))
        unknown = [n for n in names if n not in known]
        if unknown:
            shown = ", ".join(repr(n[:40]) for n in unknown[:3])
            self.add_error(
                "tasks",
                f"No BIG-Bench Hard task is called {shown}. The tasks are listed in the "
                "library (for example boolean_expressions, navigate, word_sorting).",
            )
            return
        self.subset = names

    def _clean_programs(self, text: str) -> None:
        words = self._words(text)
        try:
            ids = services.program_ids(words)
        except services.EvaluationError as exc:
            self.add_error("programs", str(exc))
            return
        found = set(listable_programs(self.owner).filter(pk__in=ids).values_list("pk", flat=True))
        missing = [i for i in ids if i not in found]
        if missing:
            # The same words whether it does not exist or is someone else's: no oracle.
            self.add_error(
                "programs",
                f"No program with id {missing[0]} among your programs and the public ones.",
            )
            return
        self.subset = [str(i) for i in ids]


class ImportForm(forms.Form):
    """Uploading outputs to score (benchmarks/imports.py): what they are, and the file. The
    file is checked whole before anything is made; its checks run on the batch worker."""

    dataset = forms.ChoiceField(
        label="Data set",
        choices=[
            (Dataset.CRUXEVAL, "CRUXEval"), (Dataset.BBH, "BIG-Bench Hard"),
            (Dataset.P3, "P3 programming puzzles (a .jsonl file)"),
        ],
    )  # fmt: skip
    task = forms.ChoiceField(
        label="CRUXEval task",
        choices=[
            ("output", "output prediction (CRUXEval-O)"),
            ("input", "input prediction (CRUXEval-I)"),
        ],
        initial="output",
        required=False,
    )
    method = forms.ChoiceField(
        label="How the outputs answer",
        required=False,
        help_text="BIG-Bench Hard: a chain of thought closed by “So the answer is …”, or the "
        "answer alone. Elsewhere: the method the outputs are labelled with.",
    )
    model = forms.CharField(label="Model (a label)", max_length=100)
    file = forms.FileField(
        label="File",
        help_text='CRUXEval\'s generations JSON ({"sample_0": [...], ...}), one BIG-Bench Hard '
        '<task>.json ({"outputs": [...]}), or a .jsonl of {"id", "predictions"} lines; '
        "at most the site's upload size (2.5 MB; larger files: manage.py bench import).",
    )

    def __init__(self, *args: Any, owner: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        method = self.fields["method"]
        assert isinstance(method, forms.ChoiceField)
        method.choices = [("", "the usual one")] + [
            (name, m.label)
            for name, m in REGISTRY.items()
            if m.task_answer or m.predicts_input or "puzzle" in m.tasks or "program" in m.kinds
        ]
        self.limited = not getattr(owner, "is_staff", False)
        self.most_often = ratelimits.describe_rate("imports.user") if self.limited else ""
