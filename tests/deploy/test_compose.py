"""The shipped deploy/compose.yml: the model server is not published and needs a key the app
sends; the container that runs submitted programs gets no secrets; one scheduler; every queue
has a worker; no documented setup trusts X-Forwarded-For from anyone (`*`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from playground.celery import app
from playground.launcher import processes
from playground.llm.registry import load_models

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yml"
DEPLOY_README = ROOT / "deploy" / "README.md"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())  # resolves the `<<: *app` merge keys
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    return dict(_compose()["services"])


def _environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment as name -> value (None: passed through from .env by name)."""
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    pairs = (item.split("=", 1) for item in env)
    return {p[0]: (p[1] if len(p) == 2 else None) for p in pairs}


def _queues(argv: list[str]) -> set[str]:
    return set(argv[argv.index("-Q") + 1].split(",")) if "-Q" in argv else set()


READ = re.compile(
    r"""(?:env\.[a-z_]+\(|environ\.get\(|getenv\(|environ\[|_env_[a-z_]+\()\s*["'](PLAYGROUND_[A-Z0-9_]+)"""
)


def _code_variables() -> set[str]:
    """Every PLAYGROUND_* variable any module of the product reads from the environment."""
    names: set[str] = set()
    for path in (ROOT / "playground").rglob("*.py"):
        names |= set(READ.findall(path.read_text()))
    return names


# -- M9: the model server ----------------------------------------------------------------------


def test_the_model_server_is_not_published_and_requires_a_key() -> None:
    services = _services()
    vllm = services["vllm"]
    assert "ports" not in vllm, "vLLM must stay on the Compose network (or loopback, with a reason)"
    key = _environment(vllm)["VLLM_API_KEY"]
    # `:?`: Compose refuses to start when the key is unset or empty (no silent open server).
    assert key is not None
    assert key.startswith("${VLLM_API_KEY:?"), key
    # The only published port is the web server's, on loopback unless the operator says otherwise.
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert published == {"web": ["${PLAYGROUND_HOST:-127.0.0.1}:${PLAYGROUND_PORT:-8000}:8000"]}


def test_the_documented_model_configuration_sends_that_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PLAYGROUND_MODELS line of deploy/README.md, with VLLM_API_KEY in the environment (the
    app containers get .env), gives the model the key; the client sends it as a bearer token."""
    line = re.search(r"^PLAYGROUND_MODELS=(.+)$", DEPLOY_README.read_text(), re.MULTILINE)
    assert line is not None
    monkeypatch.setenv("PLAYGROUND_MODELS", line.group(1))
    monkeypatch.setenv("VLLM_API_KEY", "k3y-from-dot-env")
    monkeypatch.delenv("PLAYGROUND_MODELS_FILE", raising=False)
    (model,) = load_models()
    assert model.api_key == "k3y-from-dot-env"
    assert model.base_url == "http://vllm:8000/v1"
    vllm_command = _services()["vllm"]["command"]
    assert model.model == vllm_command[vllm_command.index("--served-model-name") + 1]
    for name in ("web", "worker-llm", "worker-batch"):
        assert _services()[name]["env_file"], f"{name} must get VLLM_API_KEY from .env"
    # Without the variable the configuration says what is missing instead of sending no key.
    monkeypatch.delenv("VLLM_API_KEY")
    with pytest.raises(ValueError, match="VLLM_API_KEY"):
        load_models()


def test_an_api_key_is_given_once() -> None:
    entry = {"name": "m", "base_url": "http://x/v1", "model": "m", "api_key": "a",
             "api_key_env": "VLLM_API_KEY"}  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLLM_API_KEY", "b")
        mp.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        with pytest.raises(ValueError, match="not both"):
            load_models()


# -- L8(b): the sandbox worker's environment ---------------------------------------------------

SECRET = re.compile(r"SECRET|KEY|TOKEN|PASSWORD|MODELS|EMAIL|HF_")


def test_the_sandbox_worker_gets_no_secrets_only_what_it_reads() -> None:
    sandbox = _services()["worker-sandbox"]
    assert not sandbox.get("env_file"), "no .env: it holds the secret key and model keys"
    assert "appvar:/app/var" not in (sandbox.get("volumes") or []), "appvar may hold secret_key"
    env = _environment(sandbox)
    # Not the site's key: it signs nothing and says so (settings.py refuses to start a process
    # without the key on a database server otherwise).
    assert env.pop("PLAYGROUND_SECRET_KEY_UNUSED") == "true"
    assert not [name for name in env if SECRET.search(name)], env
    # What the sandbox and the tasks it runs read: the database and Redis, the sandbox's own
    # settings and limits, the host names (unsafe-local is refused unless they are loopback).
    # A new PLAYGROUND_SANDBOX* or PLAYGROUND_MAX_* variable anywhere must be added to the list.
    needed = {"DATABASE_URL", "REDIS_URL", "PLAYGROUND_ALLOWED_HOSTS", "PLAYGROUND_HOST"}
    needed |= {
        name
        for name in _code_variables()
        if name.startswith(("PLAYGROUND_SANDBOX", "PLAYGROUND_MAX_"))
        and not name.endswith("_WORKERS")  # process counts: Compose reads them, not the worker
    }
    assert needed <= set(env), f"add to worker-sandbox's environment: {sorted(needed - set(env))}"
    # Database and Redis default to the Compose services, like the other containers'.
    assert env["DATABASE_URL"] == _environment(_services()["worker-llm"])["DATABASE_URL"]
    assert env["REDIS_URL"] == _environment(_services()["worker-llm"])["REDIS_URL"]


def test_only_the_sandbox_tasks_reach_the_sandbox_worker() -> None:
    """The sandbox worker has no model keys, so no task that calls a model may be routed to it:
    Chain of Code and puzzle runs (the model drives a sandbox) run in execute_emulation, on the
    llm queue, which sends their code to the sandbox queue as jobs (run_sandbox_job) and answers
    Chain of Code's pauses itself; a task without a route goes to `default`, not `sandbox`."""
    app.loader.import_default_modules()
    routes = {
        name: app.amqp.router.route({}, name)["queue"].name
        for name in app.tasks
        if name.startswith("playground.")
    }
    assert {n for n, q in routes.items() if q == "sandbox"} == {
        "playground.runs.tasks.execute_real_run",
        "playground.runs.tasks.run_sandbox_job",
        "playground.classroom.tasks.grade_puzzle_submission",
        "playground.classroom.tasks.check_checkpoints",
        "playground.benchmarks.tasks.rescore_evaluation",
        "playground.classroom.tasks.make_variants",  # a varied item's candidates: no model
    }
    assert routes["playground.runs.tasks.execute_emulation"] == "llm"
    assert app.amqp.router.route({}, "playground.not.routed")["queue"].name == "default"
    assert _queues(_services()["worker-sandbox"]["command"]) == {"sandbox"}


def test_the_sandbox_worker_runs_under_its_own_profiles_with_nothing_lifted() -> None:
    """Not unconfined: the generated seccomp profile (the engine's default plus bubblewrap's
    calls: tests/deploy/test_sandbox_profile.py runs the sandbox under it) and the AppArmor
    profile of deploy/apparmor; /proc stays masked; no capability, no new privileges."""
    sandbox = _services()["worker-sandbox"]
    options = sandbox["security_opt"]
    assert options == [
        "seccomp=./seccomp/sandbox.json",
        "apparmor=${PLAYGROUND_SANDBOX_APPARMOR:-playground-sandbox}",
        "no-new-privileges:true",
    ]
    assert sandbox["cap_drop"] == ["ALL"]
    # No other container names a profile: they keep the engine's defaults.
    for name, service in _services().items():
        if name != "worker-sandbox":
            named = [
                o
                for o in service.get("security_opt") or []
                if o.startswith(("seccomp", "apparmor"))
            ]
            assert named == [], name
    # The profile is generated from the engine's own default (never committed), by this script.
    deploy = COMPOSE.parent
    assert (deploy / "seccomp" / "sandbox_profile.py").is_file()
    assert "deploy/seccomp/sandbox.json" in (ROOT / ".gitignore").read_text().splitlines()
    profile = (deploy / "apparmor" / "playground-sandbox").read_text()
    assert re.search(r"^profile playground-sandbox ", profile, re.MULTILINE)
    assert "deny mount," not in profile


# -- The scheduler and the queues ---------------------------------------------------------------


def test_compose_runs_exactly_one_beat_and_a_worker_for_every_queue() -> None:
    services = _services()
    beats = [name for name, s in services.items() if "beat" in (s.get("command") or [])]
    assert beats == ["beat"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "playground", "beat"]
    assert "deploy" not in services["beat"], "no replicas of the scheduler"
    assert not any("-B" in (s.get("command") or []) for s in services.values())
    consumed = set().union(*(_queues(s.get("command") or []) for s in services.values()))
    app.loader.import_default_modules()
    routed = {app.amqp.router.route({}, name)["queue"].name for name in app.tasks}
    assert routed - {"celery"} <= consumed, routed - consumed


def test_every_worker_is_checked_by_its_heartbeat_not_by_a_celery_client() -> None:
    # playground/celery.py's Heartbeat keeps <var dir>/alive/<node> fresh while the worker has
    # its broker; `celery inspect ping` started a Celery client at each check (seconds of CPU).
    for name, service in _services().items():
        if name.startswith("worker-"):
            check = " ".join(service["healthcheck"]["test"])
            assert "find /app/var/alive -type f -newermt '-120 seconds'" in check, name
            assert "inspect" not in check, name


def test_make_run_starts_beat_and_a_worker_for_every_queue() -> None:
    procs = processes("127.0.0.1", 8000)
    assert procs["beat"][1:6] == ["-m", "celery", "-A", "playground", "beat"]
    consumed = set().union(*(_queues(argv) for argv in procs.values()))
    assert {"sandbox", "llm", "batch", "default"} <= consumed


# -- M5: whom uvicorn believes -----------------------------------------------------------------

WILDCARD = re.compile(r"""(FORWARDED_ALLOW_IPS\s*[=:]\s*["']?\*|forwarded-allow-ips[= ]["']?\*)""")


@pytest.mark.parametrize(
    "path",
    ["deploy/README.md", "deploy/compose.yml", "deploy/.env.example", "deploy/Dockerfile",
     "README.md", "playground/launcher.py"],
)  # fmt: skip
def test_no_documented_setup_trusts_forwarded_headers_from_everyone(path: str) -> None:
    assert not WILDCARD.search((ROOT / path).read_text())


def test_the_documented_trusted_addresses_are_the_compose_network() -> None:
    readme = DEPLOY_README.read_text()
    documented = re.search(r"^FORWARDED_ALLOW_IPS=(\S+)", readme, re.MULTILINE)
    assert documented is not None
    (subnet,) = _compose()["networks"]["default"]["ipam"]["config"]
    assert subnet["subnet"] == f"${{PLAYGROUND_DOCKER_SUBNET:-{documented.group(1)}}}"
