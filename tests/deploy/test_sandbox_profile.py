"""The sandbox worker's seccomp and AppArmor profiles (deploy/seccomp, deploy/apparmor).

The generator adds to an engine's default profile exactly the system calls bubblewrap needs
without CAP_SYS_ADMIN, and changes nothing else: checked on a profile shaped like Docker's and on
Podman's own. Then for real (``--full``, Podman): the image run as the worker runs (uid 10001, no
capability, no-new-privileges, the generated profile, nothing unconfined or unmasked, a
read-only root) runs programs in the sandbox, passes the whole hostile battery
(tests/sandbox/test_hostile.py) and returns every CRUXEval output; without any one of the added
calls the sandbox cannot start; what the engine's default refuses is still refused. About 60 s.
The AppArmor profile is only compiled here: this machine's kernel has no AppArmor.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "deploy" / "seccomp" / "sandbox_profile.py"
APPARMOR_PROFILE = ROOT / "deploy" / "apparmor" / "playground-sandbox"
PODMAN_DEFAULT = Path("/usr/share/containers/seccomp.json")
# AppArmor's own list of what a kernel with mount mediation offers (the apparmor package):
# compiling against it checks the mount rules, which a kernel without AppArmor would skip.
APPARMOR_FEATURES = Path("/usr/share/apparmor-features/features")
IMAGE = "localhost/code-reasoning-playground:latest"
APP_UID = "10001"  # deploy/Dockerfile's user


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sandbox_profile", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sandbox_profile = _generator()
ADDED = set(sandbox_profile.BUBBLEWRAP_SYSCALLS)
NO_NAMESPACE_FLAGS = (
    0x7E020000  # Docker's clone mask: CLONE_NEWNS | NEWUTS | NEWIPC | ... | NEWCGROUP
)


def _outcome(profile: dict[str, Any], name: str, caps: frozenset[str], arch: str) -> set[str]:
    """What ``profile`` does with the call ``name`` for a process holding ``caps`` on ``arch``:
    the rules that apply to it (action, errno, argument filter), or the default action."""
    found = set()
    for rule in profile["syscalls"]:
        if name not in sandbox_profile._names(rule):
            continue
        includes, excludes = rule.get("includes") or {}, rule.get("excludes") or {}
        if not set(includes.get("caps") or []) <= caps or set(excludes.get("caps") or []) & caps:
            continue
        if includes.get("arches") and arch not in includes["arches"]:
            continue
        if arch in (excludes.get("arches") or []):
            continue
        found.add(f"{rule['action']} {rule.get('errnoRet')} {json.dumps(rule.get('args') or [])}")
    return found or {f"{profile['defaultAction']} {profile.get('defaultErrnoRet')} []"}


ALLOWED = {"SCMP_ACT_ALLOW None []"}


def _only_the_bubblewrap_calls_changed(default: dict[str, Any]) -> dict[str, Any]:
    profile = sandbox_profile.sandbox_profile(default)
    names = {
        n
        for rule in default["syscalls"] + profile["syscalls"]
        for n in sandbox_profile._names(rule)
    }
    for caps in (frozenset(), frozenset({"CAP_SYS_ADMIN"}), frozenset({"CAP_SYS_CHROOT"})):
        for arch in ("amd64", "arm64", "s390x"):
            for name in names | {"not_a_call"}:
                after = _outcome(profile, name, caps, arch)
                if name in ADDED:
                    assert after == ALLOWED, (name, caps, arch, after)
                else:
                    assert after == _outcome(default, name, caps, arch), (name, caps, arch)
    # The new rule is the only one that names them: no conditional rule is left to contradict it.
    naming = [r for r in profile["syscalls"] if ADDED & set(sandbox_profile._names(r))]
    assert len(naming) == 1
    assert set(naming[0]["names"]) == ADDED
    assert {k: v for k, v in profile.items() if k != "syscalls"} == {
        k: v for k, v in default.items() if k != "syscalls"
    }
    return profile


# The rule structure of moby's profiles/seccomp/default.json (20.10 to 27), in brief.
DOCKER_SHAPED: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
    "syscalls": [
        {"names": ["read", "write", "capset", "prctl", "exit_group"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["bpf", "clone", "clone3", "mount", "setns", "sethostname", "syslog", "umount",
                   "umount2", "unshare"],
         "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": NO_NAMESPACE_FLAGS, "op": "SCMP_CMP_MASKED_EQ"}],
         "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 1, "value": NO_NAMESPACE_FLAGS, "op": "SCMP_CMP_MASKED_EQ"}],
         "comment": "s390 parameter ordering for clone is different",
         "includes": {"arches": ["s390", "s390x"]}, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_CHROOT"]}},
        {"name": "pivot_root", "action": "SCMP_ACT_ERRNO"},  # the old one-name form
    ],
}  # fmt: skip


def test_a_docker_shaped_default_gains_the_bubblewrap_calls_and_nothing_else() -> None:
    before = copy.deepcopy(DOCKER_SHAPED)
    profile = _only_the_bubblewrap_calls_changed(DOCKER_SHAPED)
    assert before == DOCKER_SHAPED, "the input is left as it was"
    # Without CAP_SYS_ADMIN: clone without its namespace-flag filter, on s390 too; the rest of
    # what Docker keeps for CAP_SYS_ADMIN stays refused, clone3 still answers ENOSYS (the C
    # library falls back to clone), chroot still needs CAP_SYS_CHROOT.
    none = frozenset[str]()
    assert _outcome(profile, "clone", none, "s390x") == ALLOWED
    assert _outcome(profile, "setns", none, "amd64") == {"SCMP_ACT_ERRNO 1 []"}
    assert _outcome(profile, "bpf", none, "amd64") == {"SCMP_ACT_ERRNO 1 []"}
    assert _outcome(profile, "clone3", none, "amd64") == {"SCMP_ACT_ERRNO 38 []"}
    assert _outcome(profile, "chroot", none, "amd64") == {"SCMP_ACT_ERRNO 1 []"}
    cap_sys_admin = next(r for r in profile["syscalls"] if r.get("includes", {}).get("caps"))
    assert cap_sys_admin["names"] == ["bpf", "clone3", "setns", "syslog", "umount"]


def _require(path: Path, full: bool, why: str) -> None:
    if path.exists():
        return
    if full:
        pytest.fail(f"{path} is missing: {why}")
    pytest.skip(f"{path} is missing ({why})")


def test_podmans_default_gains_the_bubblewrap_calls_and_nothing_else(full: bool) -> None:
    _require(PODMAN_DEFAULT, full, "apt-get install podman (its containers-common ships it)")
    default = json.loads(PODMAN_DEFAULT.read_text())
    profile = _only_the_bubblewrap_calls_changed(default)
    # Podman refuses sethostname without CAP_SYS_ADMIN, and so bubblewrap's --hostname.
    assert _outcome(default, "sethostname", frozenset(), "amd64") != ALLOWED
    assert _outcome(profile, "sethostname", frozenset(), "amd64") == ALLOWED


def test_the_command_line_writes_the_profile(tmp_path: Path) -> None:
    source = tmp_path / "default.json"
    source.write_text(json.dumps(DOCKER_SHAPED))
    done = subprocess.run(
        [sys.executable, str(GENERATOR), str(source)], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == sandbox_profile.sandbox_profile(DOCKER_SHAPED)
    source.write_text('{"not": "a profile"}')
    done = subprocess.run(
        [sys.executable, str(GENERATOR), str(source)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "not a container engine's seccomp profile" in done.stderr


def test_the_apparmor_profile_compiles(full: bool, tmp_path: Path) -> None:
    """Compiled, never loaded: this kernel has no AppArmor, so no container ran under it."""
    parser = shutil.which("apparmor_parser")
    if parser is None:
        if full:
            pytest.fail("apparmor_parser is missing: apt-get install apparmor")
        pytest.skip("apparmor_parser is missing (apt-get install apparmor)")
    _require(APPARMOR_FEATURES, full, "apt-get install apparmor")

    def compile_(path: Path) -> subprocess.CompletedProcess[bytes]:
        # -S: the binary policy on stdout, loaded nowhere; -K: no cache.
        return subprocess.run(
            [parser, "-S", "-K", "--features-file", str(APPARMOR_FEATURES), str(path)],
            capture_output=True,
        )

    done = compile_(APPARMOR_PROFILE)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"playground-sandbox" in done.stdout
    # The check is not blind: a misspelt rule fails, and the mount rules are compiled, not
    # dropped (the policy without them is smaller).
    text = APPARMOR_PROFILE.read_text()
    (broken := tmp_path / "broken").write_text(text.replace("pivot_root,", "pivot_rooot,"))
    assert compile_(broken).returncode != 0
    rules = ("  mount ", "  remount ", "  pivot_root,")
    stripped = "\n".join(line for line in text.splitlines() if not line.startswith(rules))
    (without := tmp_path / "without-mounts").write_text(stripped + "\n")
    assert len(compile_(without).stdout) < len(done.stdout)


# -- For real, with Podman --------------------------------------------------------------------

CONTAINERS_CONF = """[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""
# pytest for the hostile battery inside the image, which has none: this venv's, same Python 3.11.
PYTEST_PACKAGES = ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py")
RUN_ONE = """
import json
from playground import sandbox
try:
    trace = sandbox.run("def f(n):\\n    return sum(i * i for i in range(n))\\n", call="f(10)")
    print(json.dumps({"status": trace["status"], "result": trace["result"]}))
except sandbox.SandboxUnavailable as exc:
    print(json.dumps({"unavailable": str(exc)}))
"""
CRUXEVAL = """
import ast, json
from concurrent.futures import ThreadPoolExecutor
from playground import sandbox
from pathlib import Path

path = Path("/app/playground/programs/datasets/cruxeval/cruxeval.jsonl")
items = [json.loads(line) for line in path.read_text().splitlines()]

def check(item):
    trace = sandbox.run(item["code"], call=f"f({item['input']})")
    if trace["status"] != "ok":
        return f"{item['id']}: {trace['status']} {trace['error']}"
    if ast.literal_eval(trace["result"]) != ast.literal_eval(item["output"]):
        return f"{item['id']}: got {trace['result']!r}, expected {item['output']!r}"
    return None

with ThreadPoolExecutor(max_workers=2) as workers:
    failures = [f for f in workers.map(check, items) if f]
print(json.dumps({"items": len(items), "failures": failures[:20]}))
"""
# personality(ADDR_NO_RANDOMIZE): the kernel grants it to anyone (setarch -R), the engines'
# defaults allow personality() only with a few other values: refused here means the engine's
# own rules are in force around the added ones.
REFUSED_BY_DEFAULT = """
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
status = open("/proc/self/status").read()
print(json.dumps({"seccomp": status.split("Seccomp:")[1].split()[0],
                  "personality": libc.personality(0x0040000), "errno": ctypes.get_errno()}))
"""


class Podman:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(
        self, profile: Path, *command: str, mounts: tuple[str, ...] = (), timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """``command`` in the image as deploy/compose.yml runs worker-sandbox: its user, no
        capability, no-new-privileges, ``profile``; no unconfined AppArmor or seccomp, no
        unmasked paths. The working tree's playground/ over the image's, no network but loopback."""
        argv = [
            "podman", "run", "--rm", "--user", APP_UID, "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--security-opt", f"seccomp={profile}",
            "--network", "none", "--read-only", "--health-cmd", "none",
            "-v", f"{ROOT / 'playground'}:/app/playground:ro", "-e", "PYTHONDONTWRITEBYTECODE=1",
            *mounts, IMAGE, *command,
        ]  # fmt: skip
        assert not [a for a in argv if "unconfined" in a or "unmask" in a]
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=timeout)

    def python(self, profile: Path, code: str) -> dict[str, Any]:
        done = self.run(profile, "python", "-c", code)
        assert done.returncode == 0, done.stderr[-3000:]
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    if shutil.which("podman") is None or shutil.which("runc") is None:
        pytest.fail(
            "podman and runc are missing: `make test-full` installs them "
            "(apt-get install podman runc)"
        )
    if os.geteuid() != 0:
        pytest.fail("this test runs Podman as root (CI's machines are root)")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    engine = Podman({**os.environ, "CONTAINERS_CONF": str(conf)})
    exists = subprocess.run(["podman", "image", "exists", IMAGE], env=engine.env)
    if exists.returncode != 0:
        pytest.fail(
            f"no image {IMAGE}: tests/deploy/test_containers.py builds it (make test-full), "
            "or podman build -f deploy/Dockerfile -t code-reasoning-playground:latest ."
        )
    return engine


def _write(profile: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(profile))
    return path


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The profile as an operator makes it for Podman: the command line on Podman's default."""
    path = tmp_path_factory.mktemp("seccomp") / "sandbox.json"
    with path.open("w") as out:
        subprocess.run(
            [sys.executable, str(GENERATOR), str(PODMAN_DEFAULT)], stdout=out, check=True
        )
    return path


@pytest.mark.container
@pytest.mark.full_only
def test_the_sandbox_runs_under_the_profile_and_the_engine_default_still_refuses(
    podman: Podman, generated: Path
) -> None:
    assert podman.python(generated, RUN_ONE) == {"status": "ok", "result": "285"}
    refused = podman.python(generated, REFUSED_BY_DEFAULT)
    assert refused["seccomp"] == "2", "the container runs under a seccomp filter"
    default_errno = json.loads(generated.read_text()).get("defaultErrnoRet", 1)
    assert (refused["personality"], refused["errno"]) == (-1, default_errno)


@pytest.mark.container
@pytest.mark.full_only
def test_the_hostile_battery_passes_in_the_container(podman: Podman, generated: Path) -> None:
    mounts: list[str] = []
    for name in PYTEST_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None, name
        assert spec.origin is not None, name
        origin = Path(spec.origin)
        source, target = (
            (origin.parent, name) if origin.name == "__init__.py" else (origin, origin.name)
        )
        mounts += ["-v", f"{source}:/checks/lib/{target}:ro"]
    hostile = ROOT / "tests" / "sandbox" / "test_hostile.py"
    mounts += ["-v", f"{hostile}:/checks/test_hostile.py:ro", "-e", "PYTHONPATH=/checks/lib"]
    done = podman.run(
        generated, "python", "-m", "pytest", "/checks/test_hostile.py", "-q",
        "-p", "no:cacheprovider", "--rootdir=/checks", "-c", "/dev/null", mounts=tuple(mounts),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout, done.stdout[-2000:]
    assert "failed" not in done.stdout, done.stdout[-2000:]


@pytest.mark.container
@pytest.mark.full_only
def test_every_cruxeval_program_returns_its_output_in_the_container(
    podman: Podman, generated: Path
) -> None:
    done = podman.run(generated, "python", "-c", CRUXEVAL)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"items": 800, "failures": []}


def _taken_back(profile: dict[str, Any], name: str) -> dict[str, Any]:
    """``profile`` without ``name``: clone back behind Docker's namespace-flag filter, any other
    left to the default action."""
    changed = copy.deepcopy(profile)
    for rule in changed["syscalls"]:
        rule["names"] = [n for n in sandbox_profile._names(rule) if n != name]
        rule.pop("name", None)
    changed["syscalls"] = [r for r in changed["syscalls"] if r["names"]]
    if name == "clone":
        changed["syscalls"].append({
            "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": NO_NAMESPACE_FLAGS, "op": "SCMP_CMP_MASKED_EQ"}],
        })  # fmt: skip
    return changed


@pytest.mark.container
@pytest.mark.full_only
@pytest.mark.parametrize("name", sandbox_profile.BUBBLEWRAP_SYSCALLS)
def test_without_any_one_added_call_the_sandbox_cannot_start(
    podman: Podman, generated: Path, tmp_path: Path, name: str
) -> None:
    profile = _taken_back(json.loads(generated.read_text()), name)
    answer = podman.python(_write(profile, tmp_path / f"without-{name}.json"), RUN_ONE)
    assert "bubblewrap could not create the sandbox" in answer.get("unavailable", ""), answer
