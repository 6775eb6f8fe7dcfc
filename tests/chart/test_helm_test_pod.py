"""templates/tests/test-models.yaml: the `helm test` pod checks every model and label is AVAILABLE."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.chart_render import FULLNAME, find, render_chart
from support.cluster_helpers import example_models_dir
from support.serving_tls import Pki, make_pki, write_ssl_config
from tfsbed.serve.testing import LocalServer
from tfsctl.serving.config import ModelConfig, ServerConfig, VersionPolicy

pytestmark = pytest.mark.chart

MODELS = {
    "fashion": {
        "versionPolicy": {"specific": {"versions": [1, 2]}},
        "versionLabels": {"stable": 1, "canary": 2},
    },
    "mnist": {},
}


def render_test_pod(values: dict[str, Any] | None) -> dict[str, Any]:
    return find(render_chart(values, show_only="tests/test-models.yaml"), "Pod")


def script(values: dict[str, Any] | None) -> str:
    return str(render_test_pod(values)["spec"]["containers"][0]["command"][2])


class TestHelmTestPod:
    def test_is_a_helm_test_hook_run_with_sh_and_curl(self) -> None:
        pod = render_test_pod(
            {"models": MODELS, "modelConfig": {"allowVersionLabelsForUnavailableModels": True}}
        )
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        assert pod["spec"]["restartPolicy"] == "Never"
        container = pod["spec"]["containers"][0]
        assert container["image"].startswith("curlimages/curl:")
        assert container["command"][:2] == ["sh", "-c"]

    def test_checks_every_model_and_version_for_available(self) -> None:
        text = script({"models": MODELS, "modelConfig": {"allowVersionLabelsForUnavailableModels": True}})
        for path in (
            "/v1/models/fashion",
            "/v1/models/fashion/versions/1",
            "/v1/models/fashion/versions/2",
            "/v1/models/mnist",
        ):
            assert f"check '{path}'" in text
        assert '"AVAILABLE"' in text
        assert 'exit "$failed"' in text

    def test_checks_each_label_by_the_version_its_metadata_resolves_to(self) -> None:
        """GetModelStatus ignores labels on TF Serving; metadata by label carries model_spec.version."""
        text = script({"models": MODELS, "modelConfig": {"allowVersionLabelsForUnavailableModels": True}})
        assert "check_label '/v1/models/fashion/labels/stable/metadata' 1" in text
        assert "check_label '/v1/models/fashion/labels/canary/metadata' 2" in text
        assert "check '/v1/models/fashion/labels/" not in text

    def test_reaches_the_service_rest_port(self) -> None:
        assert f'base="http://{FULLNAME}.serving.svc:8501"' in script({"model": {"name": "mnist"}})

    def test_host_can_be_overridden(self) -> None:
        assert 'base="http://127.0.100.1:8501"' in script(
            {"model": {"name": "m"}, "tests": {"host": "127.0.100.1"}}
        )

    def test_is_not_selected_by_the_service(self) -> None:
        labels = render_test_pod({"model": {"name": "mnist"}})["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] != "tensorflow-serving"

    def test_inherits_the_server_node_selector(self) -> None:
        pod = render_test_pod({"model": {"name": "m"}, "nodeSelector": {"node.tfsctl.dev/type": "real"}})
        assert pod["spec"]["nodeSelector"] == {"node.tfsctl.dev/type": "real"}

    def test_inherits_the_server_tolerations(self) -> None:
        toleration = {
            "key": "node.tfsctl.dev/real",
            "operator": "Exists",
            "effect": "NoSchedule",
        }
        pod = render_test_pod({"model": {"name": "m"}, "tolerations": [toleration]})
        assert pod["spec"]["tolerations"] == [toleration]

    def test_legacy_layout_checks_model_status_over_grpc(self) -> None:
        text = script({"model": {"name": "m"}, "server": {"grpcPort": 9090, "restEnabled": False}})
        assert "--http2-prior-knowledge" in text
        assert ":9090/tensorflow.serving.ModelService/GetModelStatus" in text
        assert "grpc '\\000\\000\\000\\000\\005\\012\\003\\012\\001m'" in text

    def test_can_be_disabled(self) -> None:
        assert render_chart({"tests": {"enabled": False}}, show_only="tests/test-models.yaml") == []


TLS = {"enabled": True, "secretName": "tfserving-grpc-tls"}


class TestHelmTestPodTls:
    def test_rest_checks_stay_plain_http_with_grpc_tls(self) -> None:
        values = {
            "models": MODELS,
            "modelConfig": {"allowVersionLabelsForUnavailableModels": True},
            "server": {"tls": TLS},
        }
        pod = render_test_pod(values)
        text = str(pod["spec"]["containers"][0]["command"][2])
        assert f'base="http://{FULLNAME}.serving.svc:8501"' in text
        assert "check_label '/v1/models/fashion/labels/canary/metadata' 2" in text
        assert "volumes" not in pod["spec"]

    def test_legacy_layout_checks_grpc_over_tls(self) -> None:
        values = {"model": {"name": "m"}, "server": {"grpcPort": 9090, "restEnabled": False, "tls": TLS}}
        pod = render_test_pod(values)
        text = str(pod["spec"]["containers"][0]["command"][2])
        assert "--http2-prior-knowledge" not in text
        assert f"https://{FULLNAME}.serving.svc:9090/tensorflow.serving.ModelService/GetModelStatus" in text
        assert "--cert" not in text
        assert "volumes" not in pod["spec"]

    def test_legacy_layout_with_mutual_tls_presents_the_secret_certificate(self) -> None:
        tls = {**TLS, "clientVerify": True}
        values = {"model": {"name": "m"}, "server": {"grpcPort": 9090, "restEnabled": False, "tls": tls}}
        pod = render_test_pod(values)
        container = pod["spec"]["containers"][0]
        text = str(container["command"][2])
        assert (
            "--cert 'var/run/tfserving/tls-client/tls.crt' --key 'var/run/tfserving/tls-client/tls.key'"
            in text
        )
        assert container["workingDir"] == "/"
        assert container["volumeMounts"][0]["mountPath"] == "/var/run/tfserving/tls-client"
        (volume,) = pod["spec"]["volumes"]
        assert volume["secret"]["secretName"] == "tfserving-grpc-tls"
        assert [i["key"] for i in volume["secret"]["items"]] == ["tls.crt", "tls.key"]
        assert pod["spec"]["securityContext"]["fsGroup"] == 65534


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def run_legacy_test_against(
    server: LocalServer, tls: dict[str, Any], root: Path
) -> subprocess.CompletedProcess[str]:
    """Render the gRPC-only test pod for ``server`` and run its script with real sh and curl in ``root``."""
    values = {
        "model": {"name": "fashion"},
        "server": {"grpcPort": server.grpc_port, "restEnabled": False, "tls": tls},
        "tests": {"host": "127.0.0.1"},
    }
    container = render_test_pod(values)["spec"]["containers"][0]
    root.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        container["command"], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )


class TestHelmTestPodGrpcRun:
    """The gRPC-only test script against a real ``tfsctl serve`` (plain, TLS and mutual TLS)."""

    def test_plain_grpc_check_passes_for_an_available_model(self, tmp_path: Path) -> None:
        with LocalServer("fashion", example_models_dir() / "fashion") as server:
            out = run_legacy_test_against(server, {"enabled": False}, tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "ok   fashion AVAILABLE (gRPC)" in out.stdout

    def test_grpc_check_fails_for_an_unknown_model(self, tmp_path: Path) -> None:
        with LocalServer("other", example_models_dir() / "fashion") as server:
            out = run_legacy_test_against(server, {"enabled": False}, tmp_path)
        assert out.returncode == 1
        assert "FAIL fashion is not AVAILABLE (gRPC GetModelStatus)" in out.stdout

    def test_tls_and_mutual_tls_checks_pass(self, tmp_path: Path, pki: Pki) -> None:
        for client_verify in (False, True):
            config = write_ssl_config(
                tmp_path / f"ssl-{client_verify}.pbtxt", pki, client_verify=client_verify
            )
            root = tmp_path / f"root-{client_verify}"
            # the test pod finds the Secret's certificate and key here (workingDir "/")
            client_dir = root / "var/run/tfserving/tls-client"
            client_dir.mkdir(parents=True)
            shutil.copy(pki.client.cert, client_dir / "tls.crt")
            shutil.copy(pki.client.key, client_dir / "tls.key")
            tls = {"enabled": True, "secretName": "tls", "clientVerify": client_verify}
            with LocalServer(
                "fashion", example_models_dir() / "fashion", flags=[f"--ssl_config_file={config}"]
            ) as server:
                out = run_legacy_test_against(server, tls, root)
                plain = run_legacy_test_against(server, {"enabled": False}, tmp_path / "plain")
            assert out.returncode == 0, out.stdout + out.stderr
            assert "ok   fashion AVAILABLE (gRPC)" in out.stdout
            assert plain.returncode == 1, "a plaintext check must not pass against the TLS port"


def run_rest_test_against(server: LocalServer, labels: dict[str, int]) -> subprocess.CompletedProcess[str]:
    """Render the REST test pod for ``server`` (fashion with ``labels``) and run it with real sh and curl."""
    values = {
        "models": {"fashion": {"versionPolicy": {"specific": {"versions": [1, 2]}}, "versionLabels": labels}},
        "modelConfig": {"allowVersionLabelsForUnavailableModels": True},
        "service": {"restPort": server.rest_port},
        "tests": {"host": "127.0.0.1"},
    }
    container = render_test_pod(values)["spec"]["containers"][0]
    return subprocess.run(container["command"], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def labelled_server() -> Iterator[LocalServer]:
    """``tfsctl serve`` with fashion 1 and 2, labels stable -> 1 and canary -> 2."""
    config = ServerConfig(
        {
            "fashion": ModelConfig(
                "fashion",
                str(example_models_dir() / "fashion"),
                policy=VersionPolicy.specific(1, 2),
                labels={"stable": 1, "canary": 2},
            )
        }
    )
    with LocalServer(config=config, allow_labels_for_unavailable=True) as srv:
        yield srv


class TestHelmTestPodRestRun:
    """The REST test script against a real ``tfsctl serve`` (``labelled_server``)."""

    def test_labels_resolving_to_their_configured_versions_pass(self, labelled_server: LocalServer) -> None:
        out = run_rest_test_against(labelled_server, {"stable": 1, "canary": 2})
        assert out.returncode == 0, out.stdout + out.stderr
        assert "ok   /v1/models/fashion/labels/stable/metadata resolves to version 1" in out.stdout
        assert "ok   /v1/models/fashion/labels/canary/metadata resolves to version 2" in out.stdout

    def test_a_label_resolving_to_another_version_fails(self, labelled_server: LocalServer) -> None:
        """A status check by label would pass here (every version is AVAILABLE); metadata does not."""
        out = run_rest_test_against(labelled_server, {"stable": 2, "canary": 2})
        assert out.returncode == 1
        assert "FAIL /v1/models/fashion/labels/stable/metadata does not resolve to version 2" in out.stdout
