"""An evaluation keeps the whole configuration it ran with and a digest of it: equal settings,
equal digests; any setting changed (sampling, budget, items, the method's prompts, the model's
engine, the rules), another digest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from playground.benchmarks import services
from playground.emulation import registry
from playground.programs.library import import_library

pytestmark = pytest.mark.django_db


def _config(**changes: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "dataset": "cruxeval", "subset": [], "method": "direct", "model": "smollm2-135m",
        "temperature": 0.0, "seed": 0, "samples": 1, "max_tokens": 256, "limit": 20,
        "sample_randomly": False, "rules": "site-1",
    }  # fmt: skip
    return services.configuration(**{**settings, **changes})


def test_the_digest_covers_every_setting() -> None:
    base = _config()
    assert base == _config()
    assert len(base["digest"]) == 64
    assert base["engine_model"]  # the engine's own model id, not only the site's name for it
    assert base["method_digest"] == registry.method_digest("direct")
    changes = [
        {"temperature": 0.8}, {"seed": 1}, {"samples": 10}, {"max_tokens": 128},
        {"limit": None}, {"sample_randomly": True}, {"rules": "official-1"},
        {"method": "cot"}, {"model": "another"}, {"dataset": "programs", "subset": ["3"]},
    ]  # fmt: skip
    digests = {json.dumps(c): _config(**c)["digest"] for c in changes}
    assert base["digest"] not in digests.values()
    assert len(set(digests.values())) == len(changes)


def test_the_method_digest_follows_its_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reworded prompt (the file of the method's module) is another method digest."""
    before = registry.method_digest("input-cot")
    assert before != registry.method_digest("input-direct")  # one module, two records
    registry.method_digest.cache_clear()
    original = Path.read_bytes

    def reworded(path: Path) -> bytes:
        text = original(path)
        return text + b"\n# reworded" if path.name == "input_prediction.py" else text

    monkeypatch.setattr(Path, "read_bytes", reworded)
    try:
        assert registry.method_digest("input-cot") != before
        assert registry.method_digest("direct") == registry.method_digest.__wrapped__("direct")
    finally:
        registry.method_digest.cache_clear()


def test_a_new_evaluation_stores_it_and_the_summary_shows_it() -> None:
    import_library()
    evaluation = services.create_evaluation(
        dataset="cruxeval", method="input-cot", model="smollm2-135m", limit=3, start=False,
        max_tokens=1024,
    )  # fmt: skip
    config = evaluation.config
    assert (config["method"], config["rules"], config["limit"]) == ("input-cot", "official-1", 3)
    assert (
        config["digest"]
        == _config(method="input-cot", max_tokens=1024, limit=3, rules="official-1")["digest"]
    )
    from playground.benchmarks.summary import summarise

    assert summarise(evaluation)["config"]["digest"] == config["digest"]


def test_the_evaluation_page_lists_the_configuration(client: Any) -> None:
    import_library()
    evaluation = services.create_evaluation(
        dataset="cruxeval", method="direct", model="smollm2-135m", limit=2, start=False
    )
    evaluation.status = "done"
    evaluation.save()
    page = client.get(evaluation.get_absolute_url()).content.decode()
    assert f"<code>{evaluation.config['digest'][:12]}</code>" in page
    assert evaluation.config["method_digest"] in page
