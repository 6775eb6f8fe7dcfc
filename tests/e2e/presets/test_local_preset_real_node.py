"""The ``local`` preset installed from the cluster's registry onto the session cluster's real node.

Users install the chart from a registry, and the chart's default image and command run on
their nodes. Here ``cluster up`` pushed the chart to the local registry it names in
``kube-public/local-registry-hosting`` (KEP-1755, as kind publishes it), and the default
image ``tensorflow/serving:<appVersion>`` is the local drop-in (``tfsctl serve``) that the
nodes' containerd pulls from that registry under its upstream name.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from support.cluster_helpers import Cluster, RealNode, example_models_dir
from support.release_cluster import models_pv, module_namespace
from tfsbed.cluster.node import config as nconfig
from tfsctl import kubestate, paths

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RELEASE = "tfs"
FULL = "tfs-tensorflow-serving"


def _registry(cluster: Cluster) -> str:
    namespace, name = nconfig.REGISTRY_HOSTING
    cm = client.CoreV1Api(cluster.api).read_namespaced_config_map(name, namespace)
    return str(yaml.safe_load(cm.data["localRegistryHosting.v1"])["host"])


def test_the_chart_from_the_registry_runs_its_default_image_and_command_on_the_real_node(
    cluster: Cluster, real_node: RealNode, tmp_path: Path
) -> None:
    chart = yaml.safe_load((paths.CHART_DIR / "Chart.yaml").read_text())
    overrides = {
        **real_node.values(),
        "service": {"type": "ClusterIP"},
    }
    (tmp_path / "real-node.yaml").write_text(yaml.safe_dump(overrides))
    with (
        module_namespace(cluster, "e2e-preset-real") as ns,
        models_pv(cluster, ns, f"{FULL}-models", example_models_dir()),
    ):
        cluster.helm(
            "install",
            RELEASE,
            f"oci://{_registry(cluster)}/charts/tensorflow-serving",
            "--version",
            chart["version"],
            "--plain-http",
            "-n",
            ns,
            "-f",
            str(paths.VALUES_DIR / "local.yaml"),
            "-f",
            str(tmp_path / "real-node.yaml"),
            "--wait",
            "--timeout",
            "5m",
            timeout=330,
        )
        core = client.CoreV1Api(cluster.api)
        pods = core.list_namespaced_pod(ns, label_selector=kubestate.server_selector(RELEASE)).items
        assert pods
        spec = pods[0].spec
        assert spec.node_name == real_node.name
        assert spec.containers[0].image == f"tensorflow/serving:{chart['appVersion']}"
        assert spec.containers[0].command == ["tensorflow_model_server"]
        # a label resolves through metadata, as on a real TF Serving
        url = f"http://{pods[0].status.pod_ip}:8501/v1/models/fashion/labels/canary/metadata"

        with urllib.request.urlopen(url, timeout=10) as resp:
            assert json.load(resp)["model_spec"]["version"] == "2"
