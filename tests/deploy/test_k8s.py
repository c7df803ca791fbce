"""The Kubernetes manifests (deploy/k8s): rendered by kustomize as `kubectl apply -k` would,
valid against Kubernetes' own schemas (kubernetes-validate, offline, strict: an unknown field is
an error), and holding what deploy/k8s/README.md promises: one process kind per workload with
the launcher's own argv, the sandbox alone in its namespace and node pool with only the secrets
it uses and no network but its data, every pod without privileges, probes on /livez and
/healthz, a disruption budget and an autoscaler for each scalable kind.

Not validated against a schema: KEDA's ScaledObjects (its CRDs are not shipped in any package
this project installs); the test checks their fields itself. Nothing here runs a cluster."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
import yaml

from playground.lib import paths

K8S = paths.REPO_DIR / "deploy" / "k8s"
# The oldest Kubernetes the manifests are for: the containers' appArmorProfile field is 1.30's.
KUBERNETES = "1.33.0"
WORKERS = {"worker-llm": "llm", "worker-batch": "batch", "worker-sandbox": "sandbox"}
SANDBOX_NS = "playground-sandbox"


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "no kubectl: `make test` installs Debian's kubernetes-client"
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _of(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _pods(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_every_manifest_is_valid_kubernetes(docs: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Job", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "NetworkPolicy", "ConfigMap", "Namespace", "ScaledObject"} <= kinds  # fmt: skip
    for doc in docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            continue
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    # Strict: a misspelt field fails (what a typo in a manifest would do at `kubectl apply`).
    web = dict(_of(docs, "Deployment")["web"])
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**web, "spec": {**web["spec"], "replica": 2}}, KUBERNETES,
                                     strict=True)  # fmt: skip


def test_no_secret_is_in_the_manifests(docs: list[dict[str, Any]]) -> None:
    assert not [d for d in docs if d["kind"] == "Secret"]
    for _, pod in _pods(docs):
        for container in pod["containers"]:
            for name, value in _env(container).items():
                if name in ("PLAYGROUND_SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
                    assert isinstance(value, dict), name
                    assert "secretKeyRef" in value, name


def test_each_process_kind_runs_the_launchers_own_argv(docs: list[dict[str, Any]]) -> None:
    deployments = _of(docs, "Deployment")
    assert set(deployments) == {"web", "beat", *WORKERS}
    # The web pod runs the image's command (`launcher serve web`, tests/deploy/
    # test_image_command.py checks it is the argv `make run` starts).
    assert "command" not in deployments["web"]["spec"]["template"]["spec"]["containers"][0]
    for name in ("beat", *WORKERS):
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["python", "-m", "playground.launcher", "serve", name]
    # Each worker is restarted when its heartbeat (playground/celery.py, in its var dir) is
    # two minutes old: wedged, or cut from the broker.
    for name in WORKERS:
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        check = container["livenessProbe"]["exec"]["command"][-1]
        assert "find /app/var/alive -type f -newermt '-120 seconds'" in check, name
    job = _of(docs, "Job")["playground-migrate"]["spec"]["template"]["spec"]["containers"][0]
    assert "manage.py migrate" in " ".join(job["command"])
    assert "load_library" in " ".join(job["command"])


def test_the_sandbox_is_alone_with_what_it_needs(docs: list[dict[str, Any]]) -> None:
    sandbox = _of(docs, "Deployment")["worker-sandbox"]
    assert sandbox["metadata"]["namespace"] == SANDBOX_NS
    others = [d for d in docs if d["metadata"].get("namespace") == SANDBOX_NS]
    assert {d["kind"] for d in others} == {
        "Deployment", "PodDisruptionBudget", "ScaledObject", "ConfigMap", "NetworkPolicy"
    }  # fmt: skip
    assert [d["metadata"]["name"] for d in others if d["kind"] == "Deployment"] == [
        "worker-sandbox"
    ]
    pod = sandbox["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"playground.dev/pool": "sandbox"}
    assert pod["tolerations"][0]["key"] == "playground.dev/sandbox"
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    env = _env(container)
    # Only the database's and Redis's addresses, from its own Secret; no site key.
    assert "PLAYGROUND_SECRET_KEY" not in env
    secrets = {v["secretKeyRef"]["name"] for v in env.values() if isinstance(v, dict)
               and "secretKeyRef" in v}  # fmt: skip
    assert secrets == {"playground-sandbox-secrets"}
    config = _of(docs, "ConfigMap")["playground-sandbox-config"]["data"]
    assert config["PLAYGROUND_SECRET_KEY_UNUSED"] == "true"
    assert container["envFrom"] == [{"configMapRef": {"name": "playground-sandbox-config"}}]
    # What bubblewrap needs, and nothing more: no capability, no privilege escalation.
    assert pod["securityContext"]["seccompProfile"] == {"type": "Unconfined"}
    assert container["securityContext"]["appArmorProfile"] == {"type": "Unconfined"}
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "privileged" not in container["securityContext"]
    # No other pod starts sandboxes, and none of them lifts a profile.
    for name, other in _pods(docs):
        if name != "worker-sandbox":
            assert other["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert "appArmorProfile" not in other["containers"][0]["securityContext"], name


def test_every_pod_runs_unprivileged_with_limits(docs: list[dict[str, Any]]) -> None:
    namespaces = _of(docs, "Namespace")
    labels = namespaces["playground"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, pod in _pods(docs):
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
            # The app writes only its var dir and /tmp, both volumes of the pod.
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/app/var", "/tmp"} <= mounts, name


def test_the_web_pods_are_probed_on_livez_and_healthz_with_an_allowed_host(
    docs: list[dict[str, Any]],
) -> None:
    container = _of(docs, "Deployment")["web"]["spec"]["template"]["spec"]["containers"][0]
    allowed = _of(docs, "ConfigMap")["playground-config"]["data"]["PLAYGROUND_ALLOWED_HOSTS"]
    probes = {k: container[k]["httpGet"] for k in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/livez"  # the process, not its dependencies
    assert probes["readinessProbe"]["path"] == "/healthz"
    for probe in probes.values():
        host = {h["name"]: h["value"] for h in probe["httpHeaders"]}["Host"]
        assert host in allowed.split(","), host  # or Django answers 400 and the pod restarts
    env = _env(container)
    # One uvicorn process per core of its limit (a container sees the host's cores).
    assert env["PLAYGROUND_WEB_WORKERS"] == {
        "resourceFieldRef": {"resource": "limits.cpu", "divisor": "1"}
    }


def test_every_scalable_kind_has_an_autoscaler_and_a_disruption_budget(
    docs: list[dict[str, Any]],
) -> None:
    deployments = _of(docs, "Deployment")
    budgets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PodDisruptionBudget"}
    assert set(budgets) == {"web", *WORKERS}  # beat: one pod, which a drain may move
    for name, budget in budgets.items():
        selected = budget["spec"]["selector"]["matchLabels"]
        assert selected == deployments[name]["spec"]["selector"]["matchLabels"], name
    hpa = _of(docs, "HorizontalPodAutoscaler")["web"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "web"
    assert hpa["minReplicas"] >= 2  # a budget of one available needs two to drain a node
    scaled = _of(docs, "ScaledObject")
    assert set(scaled) == set(WORKERS)
    for name, queue in WORKERS.items():
        spec = scaled[name]["spec"]
        assert scaled[name]["metadata"]["namespace"] == deployments[name]["metadata"]["namespace"]
        assert spec["scaleTargetRef"]["name"] == name
        assert spec["minReplicaCount"] >= 1  # taken items leave the list: empty is not idle
        assert spec["maxReplicaCount"] > spec["minReplicaCount"]
        lists = [t["metadata"]["listName"] for t in spec["triggers"] if t["type"] == "redis"]
        assert lists == [queue], name
        # KEDA sets the replicas: a count in the Deployment would fight it at each apply.
        assert "replicas" not in deployments[name]["spec"], name
    assert any(t["type"] == "cron" for t in scaled["worker-sandbox"]["spec"]["triggers"])


def test_the_sandbox_namespace_may_reach_nothing_but_dns_and_its_data(
    docs: list[dict[str, Any]],
) -> None:
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    sandbox = [p for p in policies if p["metadata"]["namespace"] == SANDBOX_NS]
    deny = [p for p in sandbox if p["spec"]["podSelector"] == {}]
    assert len(deny) == 1
    assert set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "egress" not in deny[0]["spec"]
    assert "ingress" not in deny[0]["spec"]
    allowed_ports = {
        port["port"]
        for policy in sandbox
        for rule in policy["spec"].get("egress", [])
        for port in rule["ports"]
    }
    assert allowed_ports == {53, 5432, 6432, 6379, 26379}
    for policy in sandbox:
        for rule in policy["spec"].get("egress", []):
            assert rule.get("to"), "an egress rule without peers would allow everywhere"
            for peer in rule["to"]:
                assert "ipBlock" not in peer
                assert peer.get("podSelector"), "a whole namespace is too wide"
    # The site's namespace takes connections only to the web pods (and its data pods).
    site = [p for p in policies if p["metadata"]["namespace"] == "playground"]
    assert any(p["spec"]["podSelector"] == {} and p["spec"]["policyTypes"] == ["Ingress"]
               and "ingress" not in p["spec"] for p in site)  # fmt: skip
