"""A ``tfsctl serve`` pod on the process node serves a model from a PVC with a mounted model config."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from support.agent_node import create, pod_spec, require_process_node, wait_for, wait_ready_pods
from support.models_examples import generate_once

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.usefixtures("requires_process_node")]

MODEL_CONFIG = """model_config_list {
  config {
    name: "fashion"
    base_path: "/models/fashion"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
  }
}
"""


def test_tfsctl_serve_pod_serves_model_from_mounted_config_and_claim(
    cluster: Any, namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    api = cluster.api
    require_process_node(api)
    models = generate_once(tmp_path_factory.mktemp("agent-models")).parent
    core = client.CoreV1Api(api)
    pv_name = f"{namespace}-models"
    core.create_persistent_volume({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"], "storageClassName": "",
                 "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": str(models)},
                 "claimRef": {"namespace": namespace, "name": "models"}},
    })  # fmt: skip
    try:
        container = {
            "name": "tensorflow-serving",
            "command": ["tfsctl", "serve"],
            "args": ["--port=8500", "--rest_api_port=8501",
                     "--model_config_file=/etc/tfserving/model_config.pbtxt",
                     "--model_config_file_poll_wait_seconds=2"],
            "ports": [{"name": "grpc", "containerPort": 8500}, {"name": "rest", "containerPort": 8501}],
            "readinessProbe": {"httpGet": {"path": "/v1/models/fashion", "port": "rest"}, "periodSeconds": 2},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/tfserving"},
                             {"name": "models", "mountPath": "/models", "readOnly": True}],
        }  # fmt: skip
        spec = pod_spec(
            [container],
            volumes=[
                {"name": "config", "configMap": {"name": "serving-config"}},
                {"name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}},
            ],
        )
        create(
            api, namespace,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "serving-config"},
             "data": {"model_config.pbtxt": MODEL_CONFIG}},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "models"},
             "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "", "volumeName": pv_name,
                      "resources": {"requests": {"storage": "1Gi"}}}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "serving"},
             "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "serving"}},
                      "template": {"metadata": {"labels": {"app": "serving"}}, "spec": spec}}},
        )  # fmt: skip
        (pod,) = wait_ready_pods(api, namespace, "app=serving", 1, timeout=240)
        base = f"http://{pod.status.pod_ip}:8501/v1/models/fashion"
        with urllib.request.urlopen(base, timeout=10) as resp:
            states = {s["version"]: s["state"] for s in json.load(resp)["model_version_status"]}
        assert states == {"1": "AVAILABLE", "2": "AVAILABLE"}
        body = json.dumps({"instances": [[[[0.0]] * 28] * 28]}).encode()
        request = urllib.request.Request(f"{base}/versions/1:predict", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as resp:
            predictions = json.load(resp)["predictions"]
        assert len(predictions) == 1 and len(predictions[0]) == 10

        def label_moved() -> bool:
            try:
                # GetModelStatus ignores labels; metadata by label answers with the version it resolves to
                with urllib.request.urlopen(f"{base}/labels/stable/metadata", timeout=10) as resp:
                    return bool(json.load(resp)["model_spec"]["version"] == "2")
            except urllib.error.HTTPError:
                return False

        labelled = MODEL_CONFIG.replace("} }", '} }\n    version_labels { key: "stable" value: 2 }')
        core.patch_namespaced_config_map(
            "serving-config", namespace, {"data": {"model_config.pbtxt": labelled}}
        )
        wait_for(label_moved, 60, "the new stable label from the ConfigMap, without a restart")
        restarts = (
            core.read_namespaced_pod(pod.metadata.name, namespace).status.container_statuses[0].restart_count
        )
        assert restarts == 0
    finally:
        core.delete_persistent_volume(pv_name)
