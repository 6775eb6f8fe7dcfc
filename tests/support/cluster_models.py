"""Example models on a node's own disk, for presets whose pods really run.

On the local cluster's kwok nodes pods are simulated: an empty hostPath PV is enough.
Where pods really run (the real node here; every node of kind, or of any
cluster without a NAS the test can use), the models must be on the disk of the node
that runs them. :func:`place_models` does what an operator without a NAS would do:

1. a hostPath PV under ``/var/lib/tfsctl-e2e/`` pinned to one node by nodeAffinity
   (so the preset's pods follow it there);
2. a loader pod on that node, in a namespace that allows hostPath (PodSecurity
   ``privileged``), mounting the same directory at ``/models``;
3. a tar of generated example models, one per model directory and version the
   preset's render asks for, sent over ``pods/exec`` stdin (``head -c N | tar -x``:
   the v4 exec protocol has no stdin half-close).

The same code runs on the local cluster's real node (the busybox image it builds) and
on a kind node (``$TFSCTL_E2E_LOADER_IMAGE``, busybox by default).
"""

from __future__ import annotations

import io
import os
import posixpath
import shlex
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.cluster_capabilities import KWOK_NODE_ANNOTATION
from support.polling import wait_for
from tfsbed.cluster.node import config as nconfig
from tfsctl import paths
from tfsctl.serving.config import ServerConfig

LOADER_NAMESPACE = "tfsctl-e2e-loader"
LOADER_IMAGE = os.environ.get("TFSCTL_E2E_LOADER_IMAGE", nconfig.BUSYBOX_IMAGE)
NODE_ROOT = "/var/lib/tfsctl-e2e"
PRIVILEGED = {"pod-security.kubernetes.io/enforce": "privileged"}
HOSTNAME_LABEL = "kubernetes.io/hostname"


@dataclass(frozen=True)
class ModelsNeeded:
    """What a preset's pods read from its PVC: directories (relative to the volume) -> versions."""

    claim: str | None  # the PVC the models volume uses (None: no PVC-backed models)
    dirs: dict[str, tuple[int, ...]]
    remote: tuple[str, ...]  # base paths the test cannot provide (gs://, s3://, ...)


def _workload(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    return dep


def _flag(args: list[str], name: str) -> str | None:
    prefix = f"--{name}="
    return next((a[len(prefix) :] for a in args if a.startswith(prefix)), None)


def _versions(config: Any) -> tuple[int, ...]:
    policy = config.policy
    if policy.kind == "specific":
        return tuple(sorted(policy.versions))
    if policy.kind == "latest":
        return tuple(range(1, (policy.num_versions or 1) + 1))
    return (1, 2)  # all


def models_needed(docs: list[dict[str, Any]]) -> ModelsNeeded:
    """Read the render: the server's flags or model config, and where the PVC is mounted."""
    spec = _workload(docs)["spec"]["template"]["spec"]
    container = spec["containers"][0]
    args = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in spec.get("volumes", [])
        if "persistentVolumeClaim" in v
    }
    mounts = [m for m in container.get("volumeMounts", []) if m["name"] in claims]

    bases: dict[str, tuple[int, ...]] = {}
    if _flag(args, "model_name") and (base := _flag(args, "model_base_path")):
        bases[base] = (1,)
    config_file = _flag(args, "model_config_file")
    if config_file:
        (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and posixpath.basename(config_file) in d["data"]]
        config = ServerConfig.parse(cm["data"][posixpath.basename(config_file)])
        for model in config.models.values():
            bases[model.base_path] = _versions(model)

    dirs: dict[str, tuple[int, ...]] = {}
    remote: list[str] = []
    claim = None
    for base, versions in bases.items():
        mount = next(
            (
                m
                for m in mounts
                if base == m["mountPath"] or base.startswith(m["mountPath"].rstrip("/") + "/")
            ),
            None,
        )
        if mount is None:
            remote.append(base)
            continue
        claim = claims[mount["name"]]
        rel = posixpath.relpath(base, mount["mountPath"])
        rel = posixpath.normpath(posixpath.join(mount.get("subPath", ""), rel))
        dirs[rel] = versions
    return ModelsNeeded(claim, dirs, tuple(remote))


def example_versions(count: int) -> Path:
    """``fashion/1..count`` generated once under .tools/ (TF is slow to start; reuse)."""
    root = paths.TOOLS_DIR / "cluster-data" / "example-versions"
    marker = root / f".complete-{count}"
    if not marker.exists():
        from tfsctl.models.example import generate

        root.mkdir(parents=True, exist_ok=True)
        generate(root, "fashion", versions=tuple(range(1, count + 1)))
        marker.write_text(f"fashion 1..{count}\n")
    return root / "fashion"


def models_tar(dirs: dict[str, tuple[int, ...]]) -> bytes:
    """A tar with ``<dir>/<version>/saved_model.pb + variables/`` for every needed directory."""
    source = example_versions(max(v for versions in dirs.values() for v in versions))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755 if info.isdir() else 0o644
            return info

        for rel, versions in sorted(dirs.items()):
            for version in versions:
                arcname = posixpath.normpath(posixpath.join(rel, str(version)))
                tar.add(source / str(version), arcname=arcname, filter=normalise)
    return buf.getvalue()


@dataclass(frozen=True)
class TargetNode:
    name: str
    hostname: str  # its kubernetes.io/hostname label, what a PV's nodeAffinity can select
    real: bool  # pods really run there (not a kwok-simulated node)


def _tolerates(tolerations: list[dict[str, Any]], taint: Any) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.effect:
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t["key"] == taint.key:
                return True
        elif t.get("key") == taint.key and t.get("value", "") == (taint.value or ""):
            return True
    return False


def target_node(api: Any, docs: list[dict[str, Any]]) -> TargetNode | None:
    """A Ready node the preset's pods can be scheduled on, real nodes first (None: no such node).

    Matches the pod's nodeSelector, its tolerations against NoSchedule/NoExecute taints, and
    ``nvidia.com/gpu`` when the container asks for it; untainted nodes before tainted ones.
    """
    from kubernetes import client

    spec = _workload(docs)["spec"]["template"]["spec"]
    selector = spec.get("nodeSelector") or {}
    tolerations = spec.get("tolerations") or []
    gpu = any(
        "nvidia.com/gpu" in ((c.get("resources") or {}).get("limits") or {}) for c in spec["containers"]
    )
    found: list[TargetNode] = []
    for node in client.CoreV1Api(api).list_node().items:
        labels = node.metadata.labels or {}
        if not any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or []):
            continue
        if any(labels.get(k) != v for k, v in selector.items()):
            continue
        taints = [t for t in node.spec.taints or [] if t.effect in ("NoSchedule", "NoExecute")]
        if not all(_tolerates(tolerations, t) for t in taints):
            continue
        if gpu and "nvidia.com/gpu" not in (node.status.allocatable or {}):
            continue
        real = KWOK_NODE_ANNOTATION not in (node.metadata.annotations or {})
        found.append(TargetNode(node.metadata.name, labels.get(HOSTNAME_LABEL, node.metadata.name), real))
    found.sort(key=lambda n: (not n.real, n.name))
    return found[0] if found else None


def pinned_pv(name: str, hostname: str, claim_ref: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    """A hostPath PV on one node for the claim ``claim_ref`` (capacity/access modes from the PVC spec)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": dict((spec.get("selector") or {}).get("matchLabels") or {})},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec["accessModes"],
            "storageClassName": spec.get("storageClassName", ""),
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": f"{NODE_ROOT}/{name}", "type": "DirectoryOrCreate"},
            "claimRef": claim_ref,
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": HOSTNAME_LABEL, "operator": "In", "values": [hostname]}
                            ]
                        }
                    ]
                }
            },
        },
    }


def _loader_pod(name: str, node: str, host_dir: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "tfsctl-e2e-loader"}},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {
                    "name": "loader",
                    "image": LOADER_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"],
                    "volumeMounts": [{"name": "models", "mountPath": "/models"}],
                }
            ],
            "volumes": [{"name": "models", "hostPath": {"path": host_dir, "type": "DirectoryOrCreate"}}],
        },
    }


def exec_in(api: Any, namespace: str, pod: str, script: str, stdin: bytes | None = None) -> tuple[int, str]:
    """Run ``sh -c script`` in ``pod`` (v4 exec protocol); (exit code, stdout+stderr)."""
    from kubernetes import client
    from kubernetes.stream import stream

    ws = stream(
        client.CoreV1Api(api).connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=["sh", "-c", script],
        stdin=stdin is not None,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
        _headers={"sec-websocket-protocol": "v4.channel.k8s.io"},
    )
    try:
        if stdin is not None:
            ws.write_stdin(stdin)
        ws.run_forever(timeout=120)
        output = ws.read_stdout() + ws.read_stderr()
        code = ws.returncode
    finally:
        ws.close()
    assert code is not None, f"exec in {namespace}/{pod} did not finish: {output}"
    return int(code), output


def _loader_name(pv_name: str) -> str:
    return f"load-{pv_name}"[:63].rstrip("-")


def remove_models(api: Any, pv_name: str) -> None:
    """Empty ``NODE_ROOT/pv_name`` through its loader pod and delete the pod (nothing if none)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api)
    pod = _loader_name(pv_name)
    try:
        core.read_namespaced_pod(pod, LOADER_NAMESPACE)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    try:
        exec_in(api, LOADER_NAMESPACE, pod, "rm -rf /models/*")
    finally:
        core.delete_namespaced_pod(pod, LOADER_NAMESPACE, grace_period_seconds=0)


def place_models(api: Any, pv_name: str, node: str, dirs: dict[str, tuple[int, ...]]) -> None:
    """Load example models into ``NODE_ROOT/pv_name`` on ``node`` (undo: :func:`remove_models`)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": LOADER_NAMESPACE, "labels": PRIVILEGED}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    pod = _loader_name(pv_name)
    core.create_namespaced_pod(LOADER_NAMESPACE, _loader_pod(pod, node, f"{NODE_ROOT}/{pv_name}"))

    def running() -> bool:
        status = core.read_namespaced_pod(pod, LOADER_NAMESPACE).status
        waiting = [
            s.state.waiting.reason
            for s in status.container_statuses or []
            if s.state and s.state.waiting and s.state.waiting.reason not in (None, "ContainerCreating")
        ]
        assert not waiting, f"loader pod {pod} on {node} cannot start: {waiting} (image {LOADER_IMAGE})"
        return status.phase == "Running"

    try:
        wait_for(running, 180, f"loader pod {LOADER_NAMESPACE}/{pod} on {node} to run")
        data = models_tar(dirs)
        target = "/models"
        code, output = exec_in(
            api,
            LOADER_NAMESPACE,
            pod,
            # trailing "/": find descends into /models even where it is a symlink
            f"head -c {len(data)} | tar -x -C {target} && find {target}/ -name saved_model.pb | sort",
            stdin=data,
        )
        assert code == 0, f"loading models on {node} failed ({code}): {output}"
        found = sorted(
            posixpath.normpath(line).split("/models/", 1)[1]
            for line in output.split()
            if "saved_model.pb" in line
        )
        want = sorted(
            posixpath.normpath(posixpath.join(rel, str(v), "saved_model.pb"))
            for rel, versions in dirs.items()
            for v in versions
        )
        assert found == want, f"models on {node}: {found}, wanted {want} ({shlex.quote(output)})"
    except BaseException:
        remove_models(api, pv_name)
        raise
