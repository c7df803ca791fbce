"""Benchmark: how much the embedded model leans on its priors (issue 21). The same CRUXEval
items under Python's own semantics and under changed rules, output prediction, paired item by
item: accuracy both ways, the difference with its interval, McNemar's exact p, and how many
answers wrong under a rule are what Python would normally return. For docs/BENCHMARKS.md
("Counterfactual semantics").

    .venv/bin/python -m playground.launcher exec -- \
        .venv/bin/python bench/counterfactual.py [N] [--method direct] \
            [--rule swap-add-sub --rule swap-lt-gt]

Needs the database (the launcher's exec starts it). Starts its own embedded model server
(llama.cpp, SmolLM2-135M, 2 threads) on a free port and runs, in this process as a user would,
`manage.py bench cruxeval --method M --limit N` and then the same with `--rule R` for each
rule: the first N items in the library's order, seed 0; under a rule only the items it may
change (the others are left out, counted). Each rule's evaluation pairs with the standard one
by its configuration's digest (benchmarks/paired.py). Prints markdown tables: on every item
both scored, and on those whose outcome the rule changed. No baseline ratio: this measures
accuracy, not speed (wall times are printed). The evaluations are kept (/evaluations/<id>/).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

import django  # noqa: E402

django.setup()

from django.core.management import CommandError, call_command  # noqa: E402

from playground.llm.embedded import serving  # noqa: E402
from playground.llm.registry import embedded_model  # noqa: E402
from playground.programs.library import import_library  # noqa: E402
from playground.sandbox import RULES  # noqa: E402


def _bench(model: str, method: str, n: int, rule: str = "") -> tuple[dict[str, Any], float]:
    out = io.StringIO()
    started = time.perf_counter()
    call_command(
        "bench", "cruxeval", method=method, model=model, limit=n, rule=rule, json=True,
        stdout=out,
    )  # fmt: skip
    return json.loads(out.getvalue()), time.perf_counter() - started


def _pct(share: dict[str, Any]) -> str:
    return f"{100 * share['accuracy']:.1f}"


def _row(label: str, f: dict[str, Any]) -> str:
    low, high = f["difference"]["ci95"]
    prior = f["prior_following"]
    return (
        f"| {label} | {f['n']} | {_pct(f['standard'])} | {_pct(f['under_rule'])} | "
        f"{100 * f['difference']['value']:+.1f} ({100 * low:+.1f} to {100 * high:+.1f}) | "
        f"{f['only_standard_right']} | {f['only_rule_right']} | {f['p']:.3g} | "
        f"{prior['count']} of {prior['of']} |"
    )


HEADER = (
    "| rule | items both scored | standard % | under the rule % | difference, points (95% CI) "
    "| right only standard | right only under the rule | McNemar exact p | wrong under the "
    "rule with Python's usual answer |\n|---|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=100, help="CRUXEval items (first N)")
    parser.add_argument("--method", default="direct")
    parser.add_argument("--rule", action="append", choices=list(RULES), dest="rules")
    args = parser.parse_args()
    rules = args.rules or ["swap-add-sub", "swap-lt-gt"]
    call_command("migrate", verbosity=0)
    import_library()
    with serving(threads=2) as base_url:
        spec = replace(embedded_model(), base_url=base_url)
        os.environ["PLAYGROUND_MODELS"] = json.dumps(
            [{"name": spec.name, "base_url": spec.base_url, "model": spec.model}]
        )
        standard, wall = _bench(spec.name, args.method, args.n)
        print(
            f"standard: evaluation #{standard['id']}, {standard['passed']}/{standard['n']} "
            f"({wall:.0f} s)"
        )
        rows = []
        for rule in rules:
            try:
                under, wall = _bench(spec.name, args.method, args.n, rule)
            except CommandError as exc:  # e.g. the rule changes none of the N programs
                print(f"{rule}: {exc}")
                continue
            pairs = [r for r in under["paired"] if r["standard_id"] == standard["id"]]
            print(
                f"{rule}: evaluation #{under['id']}, {under['n']} items scored, "
                f"{under['not_offered']} not offered, {under['no_value']} with no value under "
                f"it ({wall:.0f} s)"
            )
            if not pairs:
                print(f"{rule}: not paired with #{standard['id']} (another configuration?)")
                continue
            rows.append((rule, under, pairs[0]))
    print(f"\n{args.n} CRUXEval items, method {args.method}, {spec.name}; all items both scored:")
    print()
    print(HEADER)
    for rule, _, row in rows:
        print(_row(f"`{rule}`", row))
    print("\nThe items whose outcome the rule changed (the only ones that tell the rule from the "
          "model's priors):\n")  # fmt: skip
    print(HEADER)
    for rule, _, row in rows:
        print(_row(f"`{rule}`", row["changed"]))
    print("\nUnder each rule: items offered (of N), left out as not offered, no value under it:")
    for rule, under, _ in rows:
        offered = under["total"]
        print(f"- `{rule}`: {offered} offered, {under['not_offered']} not offered, "
              f"{under['no_value']} with no value under it")  # fmt: skip


if __name__ == "__main__":
    main()
