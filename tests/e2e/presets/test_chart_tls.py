"""The chart with `server.tls` and `server.batching` on, installed with the local preset on the real node.

The server certificate comes from a throwaway CA (``support.serving_tls``) and is stored as a
``kubernetes.io/tls`` Secret with ``ca.crt``, as cert-manager would. Its SANs cover the real
node's pod CIDR, because the test talks to the pod IP (a real client would use the Service name).
The init container assembles the SSLConfig from the Secret; ``tfsctl serve`` then serves gRPC over
TLS only, while REST (probes, ``helm test``) stays plain HTTP, as in TF Serving. Batching is
checked by what is observable: the flags, the parameters file in the ConfigMap, a 3-row predict
padded to the next allowed batch size (8), as TF Serving's batching-session metrics show.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from support.cluster_helpers import Cluster, RealNode, pods, render, wait_for
from support.cluster_presets import create_prerequisites, delete_prerequisites
from support.serving_tls import Pair, make_server_pki
from tfsctl import paths
from tfsctl.errors import ToolkitError, Unavailable
from tfsctl.serving.client import Endpoint, ServingClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RELEASE = "tls"
FULLNAME = f"{RELEASE}-tensorflow-serving"
SECRET = "tfserving-grpc-tls"
SELECTOR = f"app.kubernetes.io/instance={RELEASE}"
SERVER_SELECTOR = f"{SELECTOR},app.kubernetes.io/component=server"
SELECTOR_TEST = f"{SELECTOR},app.kubernetes.io/component=test"
LOCAL_PRESET = paths.VALUES_DIR / "local.yaml"
BATCHING = {
    "enabled": True,
    "maxBatchSize": 8,
    "batchTimeoutMicros": 2000,
    "maxEnqueuedBatches": 10,
    "numBatchThreads": 1,
    "allowedBatchSizes": [2, 8],
}
EXTRA: dict[str, Any] = {
    "server": {"tls": {"enabled": True, "secretName": SECRET}, "batching": BATCHING},
    # one replica keeps the test to one pod on the shared real node
    "autoscaling": {"maxReplicas": 1},
}


@dataclass(frozen=True)
class Certs:
    ca: Pair
    server: Pair  # for the Service names and every address of the real node's pod CIDR


def make_certs(directory: Path, namespace: str, pod_cidr: str) -> Certs:
    dns = [FULLNAME, f"{FULLNAME}.{namespace}", f"{FULLNAME}.{namespace}.svc"]
    return Certs(*make_server_pki(directory, dns, pod_cidr))


def _pod_cidr(cluster: Cluster, node: str) -> str:
    spec = client.CoreV1Api(cluster.api).read_node(node).spec
    cidr = spec.pod_cidr if spec else None
    assert cidr, f"node {node} has no spec.podCIDR: the certificate cannot cover its pod IPs"
    return str(cidr)


@dataclass(frozen=True)
class Install:
    namespace: str
    pod: Any  # V1Pod, Ready
    certs: Certs
    helm_test: Any  # CompletedProcess of `helm test`


@pytest.fixture()
def install(cluster: Cluster, namespace: str, real_node: RealNode, tmp_path: Path) -> Iterator[Install]:
    """The local preset plus TLS and batching, installed and Ready; uninstalled afterwards."""
    certs = make_certs(tmp_path, namespace, _pod_cidr(cluster, real_node.name))
    core = client.CoreV1Api(cluster.api)
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=SECRET),
        type="kubernetes.io/tls",
        string_data={
            "tls.crt": certs.server.cert_pem,
            "tls.key": certs.server.key_pem,
            "ca.crt": certs.ca.cert_pem,
        },
    )
    core.create_namespaced_secret(namespace, secret)
    docs = render(paths.CHART_DIR, RELEASE, namespace, [LOCAL_PRESET], EXTRA)
    pvs = create_prerequisites(cluster, namespace, docs)
    extra = tmp_path / "tls-batching.yaml"
    extra.write_text(yaml.safe_dump(EXTRA))
    try:
        cluster.helm(
            "upgrade", "--install", RELEASE, str(paths.CHART_DIR), "-n", namespace,
            "-f", str(LOCAL_PRESET), "-f", str(extra), "--wait", "--timeout", "5m",
            timeout=360,
        )  # fmt: skip
        (pod,) = wait_for(
            lambda: [
                p
                for p in pods(cluster.api, namespace, SERVER_SELECTOR)
                if p.status.pod_ip
                and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
            ],
            timeout=60,
            what="the server pod to be Ready with an IP",
        )
        # helm test (REST model checks) must pass with gRPC on TLS; no --logs (a passed pod is deleted)
        helm_test = cluster.helm(
            "test", RELEASE, "-n", namespace, "--timeout", "3m", check=False, timeout=240
        )
        if helm_test.returncode != 0:
            logs = cluster.kubectl("logs", "-n", namespace, "-l", SELECTOR_TEST, check=False)
            pytest.fail(f"helm test failed:\n{helm_test.stdout}{helm_test.stderr}\n{logs.stdout}")
        yield Install(namespace, pod, certs, helm_test)
    finally:
        cluster.helm(
            "uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "2m", check=False, timeout=180
        )
        delete_prerequisites(cluster, pvs)


def _tls_client(install: Install) -> ServingClient:
    endpoint = Endpoint(
        host=install.pod.status.pod_ip, tls=True, ca_file=str(install.certs.ca.cert), rest_tls=False
    )
    return ServingClient(endpoint, timeout=10.0)


def _log(cluster: Cluster, install: Install, container: str) -> str:
    return str(
        client.CoreV1Api(cluster.api).read_namespaced_pod_log(
            install.pod.metadata.name, install.namespace, container=container, _request_timeout=30
        )
    )


def check_grpc_serves_model_status_over_tls(install: Install) -> None:
    with _tls_client(install) as serving:
        versions = serving.model_status("fashion", transport="grpc")
        stable = serving.label_version("fashion", "stable", transport="grpc")  # status ignores labels
    assert {(v.version, v.state) for v in versions} == {(1, "AVAILABLE"), (2, "AVAILABLE")}
    assert stable == 1


def check_plaintext_grpc_is_refused(install: Install) -> None:
    plain = Endpoint(host=install.pod.status.pod_ip)
    with ServingClient(plain, timeout=10.0) as serving, pytest.raises(Unavailable) as caught:
        serving.model_status("fashion", transport="grpc")
    assert "does it expect TLS?" in str(caught.value)


def check_a_client_that_does_not_trust_the_ca_is_refused(install: Install, tmp_path: Path) -> None:
    directory = tmp_path / "other-ca"
    directory.mkdir()
    other = make_certs(directory, install.namespace, "10.0.0.0/30")  # a second, unrelated CA
    endpoint = Endpoint(host=install.pod.status.pod_ip, tls=True, ca_file=str(other.ca.cert), rest_tls=False)
    with ServingClient(endpoint, timeout=10.0) as serving, pytest.raises(ToolkitError) as caught:
        serving.model_status("fashion", transport="grpc")
    assert "TLS handshake failed" in str(caught.value)


def check_rest_stays_plain_http_and_helm_test_passed(install: Install) -> None:
    with _tls_client(install) as serving:
        versions = serving.model_status("fashion", transport="rest")
    assert {v.state for v in versions} == {"AVAILABLE"}
    assert re.search(r"Phase:\s+Succeeded", install.helm_test.stdout), install.helm_test.stdout


def check_ssl_config_is_assembled_at_start_and_never_logged(cluster: Cluster, install: Install) -> None:
    init_log = _log(cluster, install, "ssl-config")
    assert (
        f"wrote /etc/tfserving-tls/ssl_config.pbtxt from Secret {SECRET} (client_verify: false)" in init_log
    )
    server_log = _log(cluster, install, "tensorflow-serving")
    assert "gRPC uses TLS from --ssl_config_file" in server_log
    for text in (init_log, server_log):
        assert "BEGIN" not in text
    config_map = client.CoreV1Api(cluster.api).read_namespaced_config_map(
        f"{FULLNAME}-config", install.namespace
    )
    assert "BEGIN" not in yaml.safe_dump(config_map.data)


def check_batching_flags_reach_the_server_and_predict_works(cluster: Cluster, install: Install) -> None:
    (container,) = [c for c in install.pod.spec.containers if c.name == "tensorflow-serving"]
    assert "--enable_batching=true" in container.args
    assert "--batching_parameters_file=/etc/tfserving/batching_parameters.pbtxt" in container.args
    config_map = client.CoreV1Api(cluster.api).read_namespaced_config_map(
        f"{FULLNAME}-config", install.namespace
    )
    text = (config_map.data or {})["batching_parameters.pbtxt"]
    assert "max_batch_size { value: 8 }" in text
    assert "allowed_batch_sizes: 2\nallowed_batch_sizes: 8" in text
    image = [[[0.5] for _ in range(28)] for _ in range(28)]
    with _tls_client(install) as serving:
        out = serving.predict("fashion", {"images": [image, image, image]}, transport="grpc")
    rows = out["predictions"]
    assert len(rows) == 3
    for row in rows:
        scores = row["scores"] if isinstance(row, dict) else row
        assert len(scores) == 10
        assert abs(sum(scores) - 1.0) < 1e-3
    # the 3 rows ran as one batch padded to the next allowed size, 8 (metrics on the plain REST port)
    metrics = _metrics(install)
    padded = re.search(
        r':tensorflow:serving:batching_session:padding_size_sum\{model_name="fashion",'
        r'execution_batch_size="8"\} (\S+)',
        metrics,
    )
    assert padded and float(padded.group(1)) >= 5, metrics[-2000:]


def _metrics(install: Install) -> str:
    import urllib.request

    url = f"http://{install.pod.status.pod_ip}:8501/monitoring/prometheus/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def test_local_preset_with_tls_and_batching_serves_grpc_over_tls_only(
    cluster: Cluster, install: Install, tmp_path: Path
) -> None:
    # one install (a minute of start-up on the shared real node), every check against it
    check_grpc_serves_model_status_over_tls(install)
    check_plaintext_grpc_is_refused(install)
    check_a_client_that_does_not_trust_the_ca_is_refused(install, tmp_path)
    check_rest_stays_plain_http_and_helm_test_passed(install)
    check_ssl_config_is_assembled_at_start_and_never_logged(cluster, install)
    check_batching_flags_reach_the_server_and_predict_works(cluster, install)
