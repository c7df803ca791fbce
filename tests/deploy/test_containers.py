"""deploy/ brought up for real: the image built from deploy/Dockerfile, the stack of
deploy/compose.yml started with Podman, then what a user does through it: a program run in the
sandbox container, an emulation streamed from a model server that requires its key, an API client
on the Server-Sent Events and a browser's websocket on the shared page. Torn down at the end.

No registry can be reached here, so the base image is made from Debian's packages (mmdebstrap,
then ``podman import``: ``../shared/NOTES.md``) and PostgreSQL and Redis run from it
(``containers/compose.ci.yml``); everything else is deploy/'s own, built from a copy of this
working tree with the ``deploy/.env`` a newcomer writes from ``.env.example``. The model is the
oracle on this host, reached from the containers as ``host.containers.internal``.

Podman 4.3 (Debian 12) runs no healthchecks by itself (they need systemd's timers) and so cannot
honour ``depends_on: condition: service_healthy``: the test starts the services in the order
those conditions give (databases healthy, the migration done, then the rest), checking each
health as Compose would. Needs root, podman, runc and mmdebstrap: ``make test-full`` installs them.
About 3 minutes from nothing (base 1 min, image 1 min), 1 minute when the images are there.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.oracle import Oracle, oracle_server
from tests.stack import free_port, model_text, sse_events, watch_page

pytestmark = [pytest.mark.slow, pytest.mark.container, pytest.mark.full_only]

ROOT = Path(__file__).resolve().parents[2]
CI_DIR = Path(__file__).resolve().parent / "containers"
# What the base needs: the image's runtime (Python 3.11 under /usr, bubblewrap, libseccomp, tini,
# the CA list) and what compose.ci.yml runs in place of the postgres and redis images.
BASE_PACKAGES = (
    "python3,python3-venv,python-is-python3,bubblewrap,libseccomp2,tini,ca-certificates,"
    "postgresql,redis-server"
)
SUITE = "bookworm"
# Podman as NOTES.md says it runs here: runc (crun refuses this host's cgroups), no default
# ulimits (setrlimit is refused), cgroupfs.
CONTAINERS_CONF = """[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
PODMAN_SECCOMP = (
    "/usr/share/containers/seccomp.json"  # Podman's default profile (containers-common)
)
MAKE_TOKEN = """
from django.contrib.auth import get_user_model
from playground.accounts.tokens import create_token
user = get_user_model().objects.create_user("containers", password="not used here")
print(create_token(user=user, name="containers", scope="run")[1])
"""
LOOP = (
    "def f(n):\n    total = 0\n    for i in range(n):\n        total += i * i\n    return total\n"
)
WORKERS = ("worker-sandbox", "worker-llm", "worker-batch")


@dataclass
class Engine:
    """Podman on this host, configured as NOTES.md says, and the timings of each phase."""

    env: dict[str, str]
    compose: list[str]
    timings: dict[str, float] = field(default_factory=dict)

    def podman(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        done = subprocess.run(
            ["podman", *args], capture_output=True, text=True, env=self.env, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)[:200]}: {done.stderr[-3000:]}")
        return done.stdout

    def logs(self, container: str, *args: str) -> str:
        """A container's output: its stdout and stderr (Celery logs on stderr), which
        ``podman logs`` writes to its own stdout and stderr."""
        done = subprocess.run(
            ["podman", "logs", *args, container],
            capture_output=True, text=True, env=self.env, timeout=60,
        )  # fmt: skip
        return done.stdout + done.stderr

    def timed(self, phase: str, started: float) -> None:
        self.timings[phase] = round(time.monotonic() - started, 1)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    missing = [tool for tool in ("podman", "runc", "mmdebstrap") if shutil.which(tool) is None]
    compose = Path(sys.executable).parent / "podman-compose"
    if missing or not compose.exists():
        pytest.fail(
            f"missing {missing or ['podman-compose']}: `make test-full` installs them "
            "(apt-get install podman runc mmdebstrap; podman-compose from the [dev] extra)"
        )
    if os.geteuid() != 0:
        pytest.fail("the containers test runs Podman as root (CI's machines are root)")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return Engine(env={**os.environ, "CONTAINERS_CONF": str(conf)}, compose=[str(compose)])


@pytest.fixture(scope="module")
def base_image(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Debian base, named after what it holds: built once per package list and kept."""
    digest = hashlib.sha256(f"{SUITE} {BASE_PACKAGES}".encode()).hexdigest()[:12]
    name = f"localhost/playground-ci-base:{digest}"
    if _exists(engine, name):
        return name
    started = time.monotonic()
    rootfs = tmp_path_factory.mktemp("base") / "rootfs.tar"
    done = subprocess.run(
        ["mmdebstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", SUITE, str(rootfs)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    engine.podman("import", "--quiet", str(rootfs), name)
    rootfs.unlink()
    engine.timed("base image (mmdebstrap + import)", started)
    return name


def _exists(engine: Engine, name: str) -> bool:
    done = subprocess.run(["podman", "image", "exists", name], env=engine.env, check=False)
    return done.returncode == 0


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This working tree as a clone would have it (tracked and new files, not what .gitignore
    keeps out: no .venv, no var/), with deploy/.env written as deploy/README.md tells a
    newcomer: .env.example with the secret key, the model and its key filled in."""
    copy = tmp_path_factory.mktemp("tree")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.split(b"\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = copy / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return copy


def _write_env(tree: Path, values: dict[str, str]) -> None:
    """deploy/.env from .env.example: each given variable's line (commented out or not) set."""
    lines, done = [], set()
    for line in (tree / "deploy/.env.example").read_text().splitlines():
        name = line.lstrip("# ").split("=", 1)[0]
        if "=" in line and name in values and name not in done:
            lines.append(f"{name}={values[name]}")
            done.add(name)
        else:
            lines.append(line)
    assert done == set(values), f"not in .env.example: {set(values) - done}"
    (tree / "deploy/.env").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def image(
    engine: Engine, base_image: str, tree: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """deploy/Dockerfile built on the base, without the embedded model (its default). pip sees
    this host's CA list (a TLS proxy may stand between CI and PyPI) through a mount of the
    build only: nothing of it stays in the image."""
    started = time.monotonic()
    mounts: list[str] = []
    if HOST_CA.exists():
        pip_conf = tmp_path_factory.mktemp("pip") / "pip.conf"
        pip_conf.write_text(f"[global]\ncert = {HOST_CA}\n")
        mounts = ["-v", f"{HOST_CA}:{HOST_CA}:ro", "-v", f"{pip_conf}:/etc/pip.conf:ro"]
    engine.podman(
        "build", "--quiet", "--format", "docker", *mounts,
        "--build-arg", f"BASE_IMAGE={base_image}",
        "-f", "deploy/Dockerfile", "-t", "code-reasoning-playground:latest", str(tree),
        timeout=900,
    )  # fmt: skip
    engine.timed("image build", started)
    return "code-reasoning-playground:latest"


@dataclass
class Site:
    port: int
    project: str
    oracle: Oracle
    token: str


def _wait(what: str, check: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(1)
    raise AssertionError(f"{what}: not within {seconds:.0f} s")


@pytest.fixture(scope="module")
def site(engine: Engine, base_image: str, image: str, tree: Path) -> Iterator[Site]:
    project = f"ci-{os.getpid()}"
    port = free_port()
    key = f"ci-model-key-{secrets.token_hex(8)}"
    oracle = Oracle(chunk_delay=0.05)
    # On every interface: the containers reach this host on their network's gateway.
    with oracle_server(oracle, host="0.0.0.0", api_key=key) as model:  # noqa: S104
        model_port = model.base_url.rsplit(":", 1)[1].split("/")[0]
        spec = {
            "name": "oracle", "base_url": f"http://host.containers.internal:{model_port}/v1",
            "model": "oracle", "api_key_env": "VLLM_API_KEY", "first_token_s": 30,
        }  # fmt: skip
        _write_env(tree, {
            "PLAYGROUND_SECRET_KEY": secrets.token_urlsafe(50),
            "VLLM_API_KEY": key,
            "PLAYGROUND_MODELS": json.dumps([spec]),
            "PLAYGROUND_EMBEDDED_LLM": "off",
        })  # fmt: skip
        # The sandbox worker's seccomp profile, made as deploy/README.md says: from the engine's
        # own default (Podman's here) plus what bubblewrap needs. Its AppArmor profile only
        # where the kernel has AppArmor (this kind of host has not; Podman then refuses a name).
        profile = subprocess.run(
            [sys.executable, "deploy/seccomp/sandbox_profile.py", PODMAN_SECCOMP],
            cwd=tree, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        (tree / "deploy/seccomp/sandbox.json").write_text(profile)
        apparmor = "unconfined"
        if _apparmor_enabled():
            subprocess.run(["apparmor_parser", "-r", "-W", "deploy/apparmor/playground-sandbox"],
                           cwd=tree, check=True)  # fmt: skip
            apparmor = "playground-sandbox"
        env = {
            **engine.env,
            "PLAYGROUND_SANDBOX_APPARMOR": apparmor,
            "PLAYGROUND_CI_BASE": base_image,
            "PLAYGROUND_PORT": str(port),
            # Not the default 172.16.238.0/24: another project on this host may hold it.
            "PLAYGROUND_DOCKER_SUBNET": f"10.213.{secrets.randbelow(250) + 1}.0/24",
        }
        compose = [
            *engine.compose, "-p", project, "-f", "compose.yml",
            "-f", "../tests/deploy/containers/compose.ci.yml",
        ]  # fmt: skip

        def up(*services: str) -> None:
            done = subprocess.run(
                [*compose, "up", "-d", "--no-build", "--no-deps", *services],
                cwd=tree / "deploy", env=env, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

        def healthy(service: str) -> bool:
            done = subprocess.run(
                ["podman", "healthcheck", "run", f"{project}_{service}_1"],
                env=engine.env, capture_output=True, text=True,
            )  # fmt: skip
            return done.returncode == 0

        try:
            started = time.monotonic()
            up("postgres", "redis")
            for service in ("postgres", "redis"):
                _wait(f"{service} healthy", lambda service=service: healthy(service), 120)
            up("migrate")
            code = engine.podman("wait", f"{project}_migrate_1", timeout=600).strip()
            logs = engine.logs(f"{project}_migrate_1")
            assert code == "0", f"migrate exited {code}:\n{logs[-3000:]}"
            assert "Library:" in logs, "the library was not loaded"
            up("web", *WORKERS, "beat")
            _wait("web answers /healthz", lambda: _healthz(port), 120)
            for worker in WORKERS:  # each worker's heartbeat: its consumer holds the broker
                _wait(f"{worker} healthy", lambda worker=worker: healthy(worker), 120)
            engine.timed("stack up (databases, migrate, web and workers healthy)", started)
            out = engine.podman("exec", f"{project}_web_1", "python", "manage.py", "shell",
                                "-c", MAKE_TOKEN)  # fmt: skip
            yield Site(port, project, oracle, out.strip().splitlines()[-1])
        finally:
            for name in _containers(engine, project):
                tail = engine.logs(name, "--tail", "15")
                print(f"--- {name}\n{tail}")
            started = time.monotonic()
            subprocess.run([*compose, "down", "-v"], cwd=tree / "deploy", env=env,
                           capture_output=True, timeout=300)  # fmt: skip
            engine.timed("down", started)
            print("timings (s):", json.dumps(engine.timings))
            assert not _containers(engine, project), "containers left behind"


def _apparmor_enabled() -> bool:
    flag = Path("/sys/module/apparmor/parameters/enabled")
    return flag.exists() and flag.read_text().strip() == "Y"


def _healthz(port: int) -> bool:
    try:
        return httpx.get(
            f"http://127.0.0.1:{port}/healthz", headers={"Host": "localhost"}, timeout=5
        ).is_success
    except httpx.HTTPError:
        return False


def _containers(engine: Engine, project: str) -> list[str]:
    out = engine.podman("ps", "-a", "--format", "{{.Names}}",
                        "--filter", f"name={project}_", check=False)  # fmt: skip
    return out.split()


def test_a_user_runs_and_watches_an_emulation_through_the_compose_stack(
    engine: Engine, site: Site
) -> None:
    started = time.monotonic()
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{site.port}",
        headers={"Authorization": f"Bearer {site.token}", "Host": "localhost"}, timeout=60,
    )  # fmt: skip
    response = api.post(
        "/api/runs", json={"source": LOOP, "call": "f(12)", "method": "trace", "model": "oracle"}
    )
    assert response.status_code == 201, response.text
    run_id = int(response.json()["id"])
    share = engine.podman(
        "exec", f"{site.project}_web_1", "python", "manage.py", "shell", "-c",
        f"from playground.sharing.models import ShareLink\n"
        f"print(ShareLink.objects.create(run_id={run_id}).token)",
    ).strip().splitlines()[-1]  # fmt: skip
    shown: list[str] = []
    browser = threading.Thread(target=watch_page, args=(site.port, run_id, share, shown, 120))
    browser.start()
    events = list(sse_events(site.port, run_id, site.token, 120))
    browser.join(130)

    assert events, "the API client saw no event"
    assert events[-1][1] == "done", events[-3:]
    done = events[-1][2]
    # The real run (the sandbox worker's container) and the model's (worker-llm's, the model on
    # this host with its key) agree at every step: the oracle answers from the real execution.
    assert done["comparison"]["real_result"] == str(sum(i * i for i in range(12)))
    assert done["comparison"]["full_match"] is True, done
    stored = api.get(f"/api/runs/{run_id}").json()
    assert stored["status"] == "done"
    assert (stored["trace"]["source"], stored["trace"]["status"]) == ("real", "ok")
    assert model_text(events) == stored["emulation"]["text"] != ""
    assert shown == [stored["emulation"]["text"]], "the websocket viewer's text differs"
    # Every request the site sent the model bore the key from deploy/.env; one without is refused.
    assert (site.oracle.seen["trace"], site.oracle.refused) == (1, 0)
    # The real run was the sandbox worker's, the only container that starts sandboxes.
    sandbox_log = engine.logs(f"{site.project}_worker-sandbox_1")
    assert f"run-{run_id}-real-0" in sandbox_log
    assert "succeeded" in sandbox_log
    engine.timed("a run, its emulation and two viewers", started)


def test_the_model_server_and_the_sandbox_worker_keep_their_walls(
    engine: Engine, site: Site
) -> None:
    """What the compose file promises, checked on the running containers rather than on the
    file: the sandbox worker holds no secret and no capability; no model server was started
    on a CPU host (the GPU profile)."""
    sandbox = json.loads(engine.podman("inspect", f"{site.project}_worker-sandbox_1"))[0]
    env = dict(item.split("=", 1) for item in sandbox["Config"]["Env"])
    assert not {"PLAYGROUND_SECRET_KEY", "VLLM_API_KEY", "PLAYGROUND_MODELS"} & set(env)
    assert sandbox["EffectiveCaps"] in (None, []), sandbox["EffectiveCaps"]
    assert sandbox["Config"]["User"] == "playground"
    # Under its own seccomp profile (not unconfined), with /proc and /sys still masked.
    options = sandbox["HostConfig"]["SecurityOpt"] or []
    assert [o for o in options if o.startswith("seccomp=")] == ["seccomp=./seccomp/sandbox.json"]
    status = engine.podman("exec", f"{site.project}_worker-sandbox_1", "cat", "/proc/self/status")
    assert "\nSeccomp:\t2\n" in status, "the sandbox worker runs with no seccomp filter"
    assert not [o for o in options if "unmask" in o or "unconfined" in o[:9]], options
    web = json.loads(engine.podman("inspect", f"{site.project}_web_1"))[0]
    assert any(item.startswith("PLAYGROUND_SECRET_KEY=") for item in web["Config"]["Env"])
    assert not [name for name in _containers(engine, site.project) if "vllm" in name]
