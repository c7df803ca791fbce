"""The Kubernetes manifests (deploy/k8s, and the GPU model servers in deploy/k8s/vllm): rendered
by kustomize as `kubectl apply -k` would, valid against Kubernetes' own schemas
(kubernetes-validate, offline, strict: an unknown field is an error), and holding what
deploy/k8s/README.md promises: one process kind per workload with the launcher's own argv, the
sandbox alone in its namespace and node pool with only the secrets it uses and no network but
its data, every pod without privileges, probes on /livez and /healthz, a disruption budget for
every workload that has replicas, an autoscaler for each scalable kind; the app's database
behind PgBouncer in transaction mode, its Redis behind three sentinels, its model behind a
router that routes on the very header the app sends; and network policies under which each
data workload and model server takes connections from its callers alone.

Not validated against a schema: KEDA's ScaledObjects and TriggerAuthentications (its CRDs are
not shipped in any package this project installs); the tests check their fields themselves.
Nothing here runs a cluster, Redis, PgBouncer or vLLM."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from playground.lib import paths, redis_roles
from playground.llm import registry

K8S = paths.REPO_DIR / "deploy" / "k8s"
# The oldest Kubernetes the manifests are for: the containers' appArmorProfile field is 1.30's.
KUBERNETES = "1.33.0"
WORKERS = {"worker-llm": "llm", "worker-batch": "batch", "worker-sandbox": "sandbox"}
SITE_NS = "playground"
SANDBOX_NS = "playground-sandbox"
APP_IMAGE = "code-reasoning-playground"
DATA = {"pgbouncer", "redis", "sentinel"}

Doc = dict[str, Any]


def _render(folder: Path) -> list[Doc]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "no kubectl: `make test` installs Debian's kubernetes-client"
    done = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    """The base: what a cluster without GPUs applies."""
    return _render(K8S)


@pytest.fixture(scope="module")
def gpu_docs() -> list[Doc]:
    """The model servers (vllm/), applied after the base where there are GPUs."""
    return _render(K8S / "vllm")


def _of(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _workloads(docs: list[Doc]) -> Iterator[Doc]:
    return (d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job"))


def _pods(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    for doc in _workloads(docs):
        yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def _app_pods(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """The pods that run the site's own image (not PgBouncer, Redis or the model servers)."""
    for name, pod in _pods(docs):
        if pod["containers"][0]["image"].split(":")[0] == APP_IMAGE:
            yield name, pod


# The "restricted" pod security level's checks on a pod's spec (Kubernetes' Pod Security
# Standards, its own and the "baseline" ones it includes), as the admission controller reads them.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}  # fmt: skip
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"}  # fmt: skip


def _restricted_violations(pod: Doc) -> list[str]:
    found = [f"host {n}" for n in ("hostNetwork", "hostPID", "hostIPC") if pod.get(n)]
    pod_security = pod.get("securityContext") or {}
    found += [f"volume {v['name']}" for v in pod.get("volumes") or []
              if not set(v) - {"name"} <= RESTRICTED_VOLUMES]  # fmt: skip
    found += [f"sysctl {s['name']}" for s in pod_security.get("sysctls") or []
              if s["name"] not in SAFE_SYSCTLS]  # fmt: skip
    for container in pod.get("initContainers", []) + pod["containers"]:
        security = container.get("securityContext") or {}
        name = container["name"]
        merged = {**pod_security, **security}
        if security.get("privileged"):
            found.append(f"{name}: privileged")
        if security.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: privilege escalation")
        if merged.get("runAsNonRoot") is not True or merged.get("runAsUser") == 0:
            found.append(f"{name}: may run as root")
        if (merged.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccomp {merged.get('seccompProfile')}")
        apparmor = (merged.get("appArmorProfile") or {}).get("type", "RuntimeDefault")
        if apparmor not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: AppArmor {apparmor}")
        capabilities = security.get("capabilities") or {}
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{name}: keeps capabilities")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: adds {capabilities['add']}")
        if security.get("procMount", "Default") != "Default":
            found.append(f"{name}: procMount {security['procMount']}")
        if set(merged.get("seLinuxOptions") or {}) & {"user", "role"}:
            found.append(f"{name}: SELinux user or role")
        found += [f"{name}: hostPort" for p in container.get("ports") or [] if p.get("hostPort")]
    return found


def _env(container: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _config_file(docs: list[Doc], configmap: str, key: str) -> dict[str, str]:
    """A Redis config file (``directive value...`` lines) of a ConfigMap, by directive; a
    sentinel's ``sentinel monitor main ...`` is under ``monitor``."""
    settings = {}
    for line in _of(docs, "ConfigMap")[configmap]["data"][key].splitlines():
        words = line.split()
        if words and words[0] == "sentinel":
            words = words[1:]
        if words and not words[0].startswith("#"):
            settings[words[0]] = " ".join(words[1:])
    return settings


def test_every_manifest_is_valid_kubernetes(docs: list[Doc], gpu_docs: list[Doc]) -> None:
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "StatefulSet", "Job", "Service", "HorizontalPodAutoscaler",
            "PodDisruptionBudget", "NetworkPolicy", "ConfigMap", "Namespace",
            "ScaledObject", "TriggerAuthentication"} <= kinds  # fmt: skip
    for doc in docs + gpu_docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            continue
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    # Strict: a misspelt field fails (what a typo in a manifest would do at `kubectl apply`).
    web = dict(_of(docs, "Deployment")["web"])
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**web, "spec": {**web["spec"], "replica": 2}}, KUBERNETES,
                                     strict=True)  # fmt: skip
    # The GPU pieces are not in the base: a cluster without GPUs applies it alone.
    assert not [d for d in docs if d["metadata"]["name"] in ("vllm", "vllm-router")]
    assert {d["metadata"].get("namespace") for d in gpu_docs} == {SITE_NS}


def test_no_secret_is_in_the_manifests(docs: list[Doc], gpu_docs: list[Doc]) -> None:
    assert not [d for d in docs + gpu_docs if d["kind"] == "Secret"]
    for name, pod in _pods(docs + gpu_docs):
        for container in pod["containers"]:
            for variable, value in _env(container).items():
                if any(w in variable for w in ("PASSWORD", "SECRET", "API_KEY", "TOKEN")):
                    assert isinstance(value, dict), (name, variable)
                    assert "secretKeyRef" in value, (name, variable)
    # The URLs are the manifests' own; their passwords come from the variables the Secret
    # fills (Kubernetes expands $(VAR) from the variables listed before).
    for name, pod in _app_pods(docs):
        env = _env(pod["containers"][0])
        order = [e["name"] for e in pod["containers"][0]["env"]]
        assert urlsplit(env["DATABASE_URL"]).password == "$(DATABASE_PASSWORD)", name
        assert redis_roles.parse_sentinel(env["REDIS_URL"]).password == "$(REDIS_PASSWORD)", name
        assert order.index("DATABASE_PASSWORD") < order.index("DATABASE_URL"), name
        assert order.index("REDIS_PASSWORD") < order.index("REDIS_URL"), name
    # Redis's password is written at start from the Secret, never into a ConfigMap.
    for config in _of(docs, "ConfigMap").values():
        for text in config["data"].values():
            lines = [line.strip() for line in text.splitlines()]
            assert not [x for x in lines if x.startswith(("requirepass", "masterauth"))]


def test_each_process_kind_runs_the_launchers_own_argv(docs: list[Doc]) -> None:
    deployments = _of(docs, "Deployment")
    assert {name for name, _ in _app_pods(docs)} == {"web", "beat", "playground-migrate",
                                                     *WORKERS}  # fmt: skip
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


def test_the_sandbox_is_alone_with_what_it_needs(docs: list[Doc]) -> None:
    sandbox = _of(docs, "Deployment")["worker-sandbox"]
    assert sandbox["metadata"]["namespace"] == SANDBOX_NS
    others = [d for d in docs if d["metadata"].get("namespace") == SANDBOX_NS]
    assert {d["kind"] for d in others} == {
        "Deployment", "PodDisruptionBudget", "ScaledObject", "TriggerAuthentication",
        "ConfigMap", "NetworkPolicy",
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
    # Only the database's and Redis's passwords, from its own Secret; no site key, no model key.
    assert "PLAYGROUND_SECRET_KEY" not in env
    assert "VLLM_API_KEY" not in env
    secrets = {v["secretKeyRef"]["name"] for v in env.values() if isinstance(v, dict)
               and "secretKeyRef" in v}  # fmt: skip
    assert secrets == {"playground-sandbox-secrets"}
    config = _of(docs, "ConfigMap")["playground-sandbox-config"]["data"]
    assert config["PLAYGROUND_SECRET_KEY_UNUSED"] == "true"
    assert container["envFrom"] == [{"configMapRef": {"name": "playground-sandbox-config"}}]
    # KEDA reads the sandbox queue with the sandbox namespace's own Secret.
    auth = [d for d in others if d["kind"] == "TriggerAuthentication"]
    assert {r["name"] for a in auth for r in a["spec"]["secretTargetRef"]} == {
        "playground-sandbox-secrets"
    }
    # What bubblewrap needs, and nothing more: the runtime's profiles with its namespace and
    # mount calls allowed (deploy/seccomp, deploy/apparmor), no capability, no privilege
    # escalation, /proc masked. That meets the "restricted" pod security level.
    assert pod["securityContext"]["seccompProfile"] == {
        "type": "Localhost", "localhostProfile": "playground-sandbox.json"
    }  # fmt: skip
    assert container["securityContext"]["appArmorProfile"] == {
        "type": "Localhost", "localhostProfile": "playground-sandbox"
    }  # fmt: skip
    assert (paths.REPO_DIR / "deploy" / "apparmor" / "playground-sandbox").is_file()
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "privileged" not in container["securityContext"]
    assert _restricted_violations(pod) == []
    unconfined = {
        **pod,
        "securityContext": {**pod["securityContext"], "seccompProfile": {"type": "Unconfined"}},
    }
    assert _restricted_violations(unconfined) == ["worker: seccomp {'type': 'Unconfined'}"]
    # No other pod starts sandboxes, and none of them lifts a profile.
    for name, other in _pods(docs):
        if name != "worker-sandbox":
            assert other["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert "appArmorProfile" not in other["containers"][0]["securityContext"], name


def test_every_pod_runs_unprivileged_with_limits(docs: list[Doc], gpu_docs: list[Doc]) -> None:
    namespaces = _of(docs, "Namespace")
    for namespace in (SITE_NS, SANDBOX_NS):  # the sandbox's Localhost profiles fit "restricted"
        labels = namespaces[namespace]["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted", namespace
    pods = list(_pods(docs + gpu_docs))
    assert {name for name, _ in pods} >= {*DATA, "vllm", "vllm-router"}
    for name, pod in pods:
        # Only the router reads the API (its pod discovery); no other pod holds a token.
        assert pod["automountServiceAccountToken"] is (name == "vllm-router"), name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
            # An image by tag (the comments ask for a digest on top), never a moving one;
            # probed, since nothing else restarts a wedged server.
            image = container["image"]
            if not image.startswith(APP_IMAGE):
                assert "livenessProbe" in container, name
                assert "readinessProbe" in container, name
                assert ":" in image, image
                assert not image.endswith((":latest", ":main")), image
    for name, pod in _app_pods(docs):
        # The app writes only its var dir and /tmp, both volumes of the pod.
        mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        assert {"/app/var", "/tmp"} <= mounts, name
    # The router may read pods, and nothing else.
    role = _of(gpu_docs, "Role")["vllm-router-pod-reader"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"],
                              "verbs": ["get", "list", "watch"]}]  # fmt: skip


def test_the_web_pods_are_probed_on_livez_and_healthz_with_an_allowed_host(
    docs: list[Doc],
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


def test_every_workload_has_a_disruption_budget_and_the_workers_an_autoscaler(
    docs: list[Doc], gpu_docs: list[Doc]
) -> None:
    everything = docs + gpu_docs
    workloads = {d["metadata"]["name"]: d for d in _workloads(everything) if d["kind"] != "Job"}
    budgets = _of(everything, "PodDisruptionBudget")
    # beat: one pod, which a drain may move.
    assert set(budgets) == set(workloads) - {"beat"}
    assert set(budgets) >= {"web", *WORKERS, *DATA, "vllm", "vllm-router"}
    for name, budget in budgets.items():
        selected = budget["spec"]["selector"]["matchLabels"]
        assert selected == workloads[name]["spec"]["selector"]["matchLabels"], name
        replicas = workloads[name]["spec"].get("replicas")
        if replicas and "minAvailable" in budget["spec"]:
            # A budget that a drain can meet: one pod may always go.
            assert budget["spec"]["minAvailable"] < replicas, name
    hpa = _of(docs, "HorizontalPodAutoscaler")["web"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "web"
    assert hpa["minReplicas"] >= 2  # a budget of one available needs two to drain a node
    deployments = _of(docs, "Deployment")
    scaled = _of(docs, "ScaledObject")
    auths = {(d["metadata"]["namespace"], d["metadata"]["name"]): d
             for d in docs if d["kind"] == "TriggerAuthentication"}  # fmt: skip
    sentinels = _sentinel_addresses(docs)
    assert set(scaled) == set(WORKERS)
    for name, queue in WORKERS.items():
        spec = scaled[name]["spec"]
        namespace = scaled[name]["metadata"]["namespace"]
        assert namespace == deployments[name]["metadata"]["namespace"]
        assert spec["scaleTargetRef"]["name"] == name
        assert spec["minReplicaCount"] >= 1  # taken items leave the list: empty is not idle
        assert spec["maxReplicaCount"] > spec["minReplicaCount"]
        redis = [t for t in spec["triggers"] if t["type"].startswith("redis")]
        assert [t["metadata"]["listName"] for t in redis] == [queue], name
        for trigger in redis:
            # Through the same sentinels as the app, with the password of its own namespace.
            assert trigger["type"] == "redis-sentinel"
            assert trigger["metadata"]["addresses"].split(",") == sentinels
            assert trigger["metadata"]["sentinelMaster"] == _sentinel_master(docs)
            auth = auths[(namespace, trigger["authenticationRef"]["name"])]
            params = {r["parameter"] for r in auth["spec"]["secretTargetRef"]}
            assert params == {"password", "sentinelPassword"}
        # KEDA sets the replicas: a count in the Deployment would fight it at each apply.
        assert "replicas" not in deployments[name]["spec"], name
    assert any(t["type"] == "cron" for t in scaled["worker-sandbox"]["spec"]["triggers"])


def _sentinel_master(docs: list[Doc]) -> str:
    return _config_file(docs, "redis-config", "sentinel.conf")["monitor"].split()[0]


def _sentinel_addresses(docs: list[Doc]) -> list[str]:
    """host:port of each sentinel pod, as its headless Service names it."""
    sentinel = _of(docs, "StatefulSet")["sentinel"]
    service = _of(docs, "Service")[sentinel["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"
    port = service["spec"]["ports"][0]["port"]
    namespace = sentinel["metadata"]["namespace"]
    return [f"sentinel-{i}.{service['metadata']['name']}.{namespace}.svc.cluster.local:{port}"
            for i in range(sentinel["spec"]["replicas"])]  # fmt: skip


def test_the_database_is_reached_through_pgbouncer_in_transaction_mode(docs: list[Doc]) -> None:
    service = _of(docs, "Service")["pgbouncer"]
    deployment = _of(docs, "Deployment")["pgbouncer"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    host = f"pgbouncer.{service['metadata']['namespace']}.svc.cluster.local"
    port = service["spec"]["ports"][0]["port"]
    configs = _of(docs, "ConfigMap")
    for name, pod in _app_pods(docs):
        container = pod["containers"][0]
        url = urlsplit(_env(container)["DATABASE_URL"])
        # Fully qualified: the sandbox's namespace resolves no short name of the site's.
        assert (url.scheme, url.hostname, url.port) == ("postgresql", host, port), name
        # Transaction pooling: the app must know (no server-side cursors).
        own = [configs[e["configMapRef"]["name"]]["data"] for e in container["envFrom"]
               if e["configMapRef"]["name"] in configs]  # fmt: skip
        assert any(c.get("PLAYGROUND_DB_PGBOUNCER") == "true" for c in own), name
    ini = configparser.ConfigParser(inline_comment_prefixes=(";",))
    ini.read_string(configs["pgbouncer-config"]["data"]["pgbouncer.ini"])
    settings = ini["pgbouncer"]
    assert settings["pool_mode"] == "transaction"
    assert int(settings["listen_port"]) == service["spec"]["ports"][0]["port"]
    assert "extra_float_digits" in settings["ignore_startup_parameters"]  # psycopg sends it
    # Server connections under PostgreSQL's 100 whatever the replicas (deploy/README.md).
    per_pod = int(settings["default_pool_size"]) + int(settings["reserve_pool_size"])
    assert per_pod * deployment["spec"]["replicas"] < 100
    assert list(ini["databases"]) == ["playground"]
    # The login from a Secret mounted where auth_file points, not from the ConfigMap.
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    secrets = {v["name"] for v in pod["volumes"] if "secret" in v}
    assert [Path(settings["auth_file"]).parent.as_posix()] == [mounts[s] for s in secrets]
    assert container["command"][-1].startswith(mounts["config"])
    assert deployment["spec"]["replicas"] >= 2


def test_redis_fails_over_by_three_sentinels_that_the_app_asks(docs: list[Doc]) -> None:
    redis = _of(docs, "StatefulSet")["redis"]
    service = _of(docs, "Service")[redis["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"
    assert redis["spec"]["replicas"] == 3  # one primary, two replicas
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    mounts = {m["name"]: m["mountPath"] for m in
              redis["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}  # fmt: skip
    conf = _config_file(docs, "redis-config", "redis.conf")
    assert mounts["data"] == conf["dir"]  # the append-only file on the persistent volume
    assert conf["appendonly"] == "yes"
    assert conf["maxmemory-policy"] == "noeviction"  # the broker's queues and leases
    # The primary refuses writes without a replica (the app waits for one: WAIT 1), yet a
    # drain (the budget's one pod at a time) never leaves it without one.
    budget = _of(docs, "PodDisruptionBudget")["redis"]["spec"]["maxUnavailable"]
    assert 1 <= int(conf["min-replicas-to-write"]) <= redis["spec"]["replicas"] - 1 - budget
    sentinel = _config_file(docs, "redis-config", "sentinel.conf")
    replicas = _of(docs, "StatefulSet")["sentinel"]["spec"]["replicas"]
    master, _, _, quorum = sentinel["monitor"].split()
    assert (int(quorum), replicas) == (2, 3)  # a majority: two sentinels of three
    assert int(sentinel["down-after-milliseconds"].split()[1]) <= 5000  # deploy/README.md
    # Every app pod asks these very sentinels for this very primary, with the password.
    for name, pod in _app_pods(docs):
        url = _env(pod["containers"][0])["REDIS_URL"].replace("$(REDIS_PASSWORD)", "pw")
        target = redis_roles.parse_sentinel(url)
        assert [f"{h}:{p}" for h, p in target.sentinels] == _sentinel_addresses(docs), name
        assert target.master == master, name
        assert (target.password, target.sentinel_password) == ("pw", "pw"), name
    # Redis and the sentinels take the password from the Secret, not from the ConfigMap.
    for name in ("redis", "sentinel"):
        container = _of(docs, "StatefulSet")[name]["spec"]["template"]["spec"]["containers"][0]
        assert _env(container)["REDIS_PASSWORD"]["secretKeyRef"]["key"] == "redis-password"


def test_the_router_routes_on_the_header_the_app_sends(
    docs: list[Doc], gpu_docs: list[Doc], monkeypatch: pytest.MonkeyPatch
) -> None:
    models = _of(gpu_docs, "ConfigMap")["playground-models"]["data"]["PLAYGROUND_MODELS"]
    monkeypatch.delenv("PLAYGROUND_MODELS_FILE", raising=False)
    monkeypatch.setenv("PLAYGROUND_MODELS", models)
    monkeypatch.setenv("VLLM_API_KEY", "a key")
    [spec] = registry.load_models()  # as the app reads it
    router = _of(gpu_docs, "Deployment")["vllm-router"]["spec"]["template"]["spec"]
    args = router["containers"][0]["args"]

    def flag(name: str) -> str:
        return str(args[args.index(name) + 1])

    assert flag("--routing-logic") == "session"
    assert flag("--session-key") == spec.routing_header == registry.ROUTING_HEADER
    service = _of(gpu_docs, "Service")["vllm-router"]
    url = urlsplit(spec.base_url)
    assert url.hostname == f"vllm-router.{service['metadata']['namespace']}.svc.cluster.local"
    assert url.port == service["spec"]["ports"][0]["port"]
    # The router finds the vLLM pods: their namespace, their labels, their port.
    vllm = _of(gpu_docs, "Deployment")["vllm"]
    labels = vllm["spec"]["template"]["metadata"]["labels"]
    key, _, value = flag("--k8s-label-selector").partition("=")
    assert labels[key] == value
    assert flag("--k8s-namespace") == vllm["metadata"]["namespace"]
    server = vllm["spec"]["template"]["spec"]
    container = server["containers"][0]
    assert int(flag("--k8s-port")) == container["ports"][0]["containerPort"]
    served = container["args"][container["args"].index("--served-model-name") + 1]
    assert served == spec.model == "coder"
    assert "--enable-prefix-caching" in container["args"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert any(t["key"] == "nvidia.com/gpu" for t in server["tolerations"])
    # One key: the server requires it, the router's discovery sends it, the callers send it.
    key_ref = _env(container)["VLLM_API_KEY"]["secretKeyRef"]
    assert _env(router["containers"][0])["VLLM_API_KEY"]["secretKeyRef"] == key_ref
    assert spec.api_key == "a key"
    callers = {"web", "worker-llm", "worker-batch"}
    for name, pod in _app_pods(docs):
        app = pod["containers"][0]
        reads_models = {"configMapRef": {"name": "playground-models", "optional": True}}
        assert (reads_models in app["envFrom"]) is (name in callers), name
        if name in callers:
            secret = _env(app)["VLLM_API_KEY"]["secretKeyRef"]
            assert {**secret, "optional": False} == {**key_ref, "optional": False}, name


# Who may connect to what, by evaluating the NetworkPolicies on the pods the manifests make (and
# two that they do not: KEDA's operator, and anybody in another namespace).
Pod = tuple[str, str, dict[str, str]]  # name, namespace, labels
KEDA: Pod = ("keda-operator", "keda", {"app.kubernetes.io/name": "keda-operator"})
STRANGER: Pod = ("stranger", "default", {"app.kubernetes.io/component": "web"})
PROMETHEUS: Pod = ("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def _admits(policy: Doc, source: Pod, port: int) -> bool:
    for rule in policy["spec"].get("ingress", []):
        if rule.get("ports") and port not in [p["port"] for p in rule["ports"]]:
            continue
        if not rule.get("from"):
            return True
        for peer in rule["from"]:
            assert "ipBlock" not in peer
            namespace_labels = {"kubernetes.io/metadata.name": source[1]}
            if "namespaceSelector" in peer:
                in_namespace = _matches(peer["namespaceSelector"], namespace_labels)
            else:
                in_namespace = source[1] == policy["metadata"]["namespace"]
            if in_namespace and _matches(peer.get("podSelector", {}), source[2]):
                return True
    return False


def _callers(everything: list[Doc], target: str, port: int) -> set[str]:
    pods: list[Pod] = [
        (d["metadata"]["name"], d["metadata"]["namespace"], d["spec"]["template"]["metadata"]
         ["labels"]) for d in _workloads(everything)
    ]  # fmt: skip
    [(_, namespace, labels)] = [p for p in pods if p[0] == target]
    policies = [p for p in everything if p["kind"] == "NetworkPolicy"
                and p["metadata"]["namespace"] == namespace and "Ingress" in p["spec"]
                ["policyTypes"] and _matches(p["spec"]["podSelector"], labels)]  # fmt: skip
    assert policies, f"{target}: no policy selects it, so anybody may connect"
    sources = [*pods, KEDA, STRANGER, PROMETHEUS]
    return {s[0] for s in sources if any(_admits(p, s, port) for p in policies)}


def test_each_data_workload_and_model_server_admits_only_its_callers(
    docs: list[Doc], gpu_docs: list[Doc]
) -> None:
    everything = docs + gpu_docs
    app = {"web", "worker-llm", "worker-batch", "beat", "playground-migrate"}
    assert _callers(everything, "pgbouncer", 6432) == {*app, "worker-sandbox"}
    redis_clients = {*app, "worker-sandbox", "redis", "sentinel", "keda-operator"}
    assert _callers(everything, "redis", 6379) == redis_clients
    assert _callers(everything, "sentinel", 26379) == redis_clients
    assert _callers(everything, "vllm-router", 8000) == {"web", "worker-llm", "worker-batch"}
    assert _callers(everything, "vllm", 8000) == {"vllm-router"}
    assert _callers(everything, "web", 8000) >= {"stranger"}  # the site itself is public
    for target in ("beat", "worker-llm", "worker-sandbox"):
        assert _callers(everything, target, 8000) == set(), target


def test_prometheus_alone_reaches_each_workers_figures(docs: list[Doc]) -> None:
    """Every worker answers its own figures on the pod's address, scraped by annotation; the app
    checks nobody on that port, so the network must: Prometheus's namespace alone gets in."""
    for name, pod in _pods(docs):
        if not name.startswith("worker-"):
            continue
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        port = int(env["PLAYGROUND_WORKER_METRICS_PORT"])
        assert env["PLAYGROUND_WORKER_METRICS_HOST"] == "0.0.0.0", name  # noqa: S104
        assert {"name": "metrics", "containerPort": port} in container["ports"], name
        workload = next(d for d in _workloads(docs) if d["metadata"]["name"] == name)
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port), name
        assert _callers(docs, name, port) == {"prometheus"}, name
    assert "prometheus" in _callers(docs, "web", 8000)


def test_the_sandbox_namespace_may_reach_nothing_but_dns_and_its_data(docs: list[Doc]) -> None:
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    sandbox = [p for p in policies if p["metadata"]["namespace"] == SANDBOX_NS]
    deny = [p for p in sandbox if p["spec"]["podSelector"] == {}]
    assert len(deny) == 1
    assert set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "egress" not in deny[0]["spec"]
    assert "ingress" not in deny[0]["spec"]
    reached: dict[int, set[str]] = {}
    for policy in sandbox:
        for rule in policy["spec"].get("egress", []):
            assert rule.get("to"), "an egress rule without peers would allow everywhere"
            for peer in rule["to"]:
                assert "ipBlock" not in peer
                assert peer.get("podSelector"), "a whole namespace is too wide"
                target = peer["podSelector"]["matchLabels"]
                for port in rule["ports"]:
                    name = target.get("app.kubernetes.io/component", target.get("k8s-app"))
                    reached.setdefault(port["port"], set()).add(name)
    # DNS, and each data port on the workload that serves it only (not PostgreSQL itself).
    assert reached == {53: {"kube-dns"}, 6432: {"pgbouncer"}, 6379: {"redis"},
                       26379: {"sentinel"}}  # fmt: skip
    # The site's namespace takes connections only where a policy lets them in.
    site = [p for p in policies if p["metadata"]["namespace"] == SITE_NS]
    assert any(p["spec"]["podSelector"] == {} and p["spec"]["policyTypes"] == ["Ingress"]
               and "ingress" not in p["spec"] for p in site)  # fmt: skip
