"""Every preset in values/: schema-valid, renders, lints, validates against Kubernetes 1.35 OpenAPI,
and renders the scenario it documents."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from support.chart_render import (
    CHART_DIR,
    FULLNAME,
    KUBERNETES_VERSION,
    default_values,
    find,
    merge_values,
    parse_model_server_config,
    presets,
    render_chart,
    run_helm,
    server_container,
)

pytestmark = pytest.mark.chart

PRESETS = presets()
EXPECTED = {
    "ack-eci-bert-oss.yaml",
    "ack-nas-mnist-cpu.yaml",
    "ack-nas-mnist-gpu.yaml",
    "gke-resnet-cpu-hpa.yaml",
    "local.yaml",
    "pai-eas-multi-model.yaml",
    "slb-classic-grpc.yaml",
}


@cache
def schema() -> dict[str, Any]:
    return dict(json.loads((CHART_DIR / "values.schema.json").read_text()))


@cache
def rendered(name: str) -> list[dict[str, Any]]:
    return render_chart(values_files=[_preset(name)])


def _preset(name: str) -> Path:
    return next(p for p in PRESETS if p.name == name)


def preset_values(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load(_preset(name).read_text()))


def model_config(name: str) -> Any:
    data = find(rendered(name), "ConfigMap", f"{FULLNAME}-config")["data"]
    return parse_model_server_config(data["model_config.pbtxt"])


def pod_spec(name: str) -> dict[str, Any]:
    return dict(find(rendered(name), "Deployment")["spec"]["template"]["spec"])


def test_every_scenario_has_a_preset() -> None:
    assert {p.name for p in PRESETS} == EXPECTED


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
class TestPreset:
    def test_preset_is_valid_against_the_values_schema(self, preset: Path) -> None:
        values = yaml.safe_load(preset.read_text())
        jsonschema.Draft7Validator(schema()).validate(values)
        jsonschema.Draft7Validator(schema()).validate(merge_values(default_values(), values))

    def test_preset_is_commented(self, preset: Path) -> None:
        lines = preset.read_text().splitlines()
        assert lines[1].startswith("# Scenario:"), "the second line names the scenario"
        assert sum(1 for line in lines if line.strip().startswith("#")) >= 5

    def test_preset_holds_no_secrets(self, preset: Path) -> None:
        text = preset.read_text().lower()
        for marker in ("akid:", "aksecret:", "accesskeyid", "accesskeysecret", "password:", "token:"):
            assert marker not in text

    def test_preset_renders_the_core_resources(self, preset: Path) -> None:
        docs = rendered(preset.name)
        assert find(docs, "Deployment", FULLNAME)
        assert find(docs, "Service", FULLNAME)
        assert server_container(docs)["name"] == "tensorflow-serving"

    def test_rendered_manifests_validate_against_kubernetes_openapi(self, preset: Path) -> None:
        for doc in rendered(preset.name):
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as err:
                path = ".".join(str(p) for p in err.path)
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {err.message}")

    def test_chart_lints_strictly_with_the_preset(self, preset: Path) -> None:
        out = run_helm(["lint", "--strict", str(CHART_DIR), "-f", str(preset)])
        assert "0 chart(s) failed" in out


class TestAckNasMnist:
    @pytest.mark.parametrize("name", ["ack-nas-mnist-gpu.yaml", "ack-nas-mnist-cpu.yaml"])
    def test_serves_mnist_from_the_nas_pv_on_grpc_9090_behind_a_load_balancer(self, name: str) -> None:
        docs = rendered(name)
        args = server_container(docs)["args"]
        assert "--model_name=mnist" in args
        assert "--model_base_path=/serving/model/mnist" in args
        assert "--port=9090" in args
        claim = find(docs, "PersistentVolumeClaim")["spec"]
        assert claim["selector"] == {"matchLabels": {"model": "mnist"}}
        assert claim["storageClassName"] == ""
        mount = next(m for m in server_container(docs)["volumeMounts"] if m["name"] == "models")
        assert mount["mountPath"] == "/serving/model/mnist"
        service = find(docs, "Service", f"{FULLNAME}-grpc")["spec"]
        assert service["type"] == "LoadBalancer"
        assert [(p["name"], p["port"]) for p in service["ports"]] == [("grpc", 9090)], (
            "REST stays off the SLB"
        )
        assert find(docs, "Deployment")["spec"]["replicas"] == 1

    def test_gpu_variant_runs_the_gpu_image_on_one_gpu(self) -> None:
        container = server_container(rendered("ack-nas-mnist-gpu.yaml"))
        assert container["image"].endswith("-gpu")
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1

    def test_cpu_variant_runs_the_cpu_image_without_gpus(self) -> None:
        container = server_container(rendered("ack-nas-mnist-cpu.yaml"))
        assert not container["image"].endswith("-gpu")
        assert "nvidia.com/gpu" not in container["resources"]["limits"]


class TestPaiEasMultiModel:
    def test_three_models_with_their_version_policies_and_labels(self) -> None:
        configs = {c.name: c for c in model_config("pai-eas-multi-model.yaml").model_config_list.config}
        assert configs["modelA"].model_version_policy.WhichOneof("policy_choice") == "all"
        assert list(configs["modelB"].model_version_policy.specific.versions) == [1, 2]
        assert dict(configs["modelB"].version_labels) == {"stable": 1, "canary": 2}
        assert configs["modelC"].model_version_policy.latest.num_versions == 2

    def test_config_polled_every_30s_with_labels_for_unavailable_versions(self) -> None:
        docs = rendered("pai-eas-multi-model.yaml")
        args = server_container(docs)["args"]
        assert "--model_config_file_poll_wait_seconds=30" in args
        assert "--allow_version_labels_for_unavailable_models=true" in args
        assert "--port=8500" in args and "--rest_api_port=8501" in args
        annotations = find(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
        assert "checksum/model-config" not in annotations


class TestAckEciBertOss:
    def test_claim_binds_the_guides_oss_pv_by_name(self) -> None:
        docs = rendered("ack-eci-bert-oss.yaml")
        assert not [d for d in docs if d["kind"] == "PersistentVolume"], "the guide's PV already exists"
        claim = find(docs, "PersistentVolumeClaim")["spec"]
        assert claim["volumeName"] == "model-csi-pv"
        assert (claim["accessModes"], claim["storageClassName"]) == (["ReadWriteMany"], "")

    def test_eci_only_gpu_spec_with_image_cache(self) -> None:
        docs = rendered("ack-eci-bert-oss.yaml")
        annotations = find(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
        assert annotations["k8s.aliyun.com/eci-use-specs"] == "ecs.gn6i-c4g1.xlarge"
        assert annotations["k8s.aliyun.com/eci-auto-imc"] == "true"
        pod = pod_spec("ack-eci-bert-oss.yaml")
        required = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert required["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["virtual-kubelet"]
        assert server_container(docs)["resources"]["limits"]["nvidia.com/gpu"] == 1

    def test_serves_the_specific_timestamp_version(self) -> None:
        config = model_config("ack-eci-bert-oss.yaml").model_config_list.config[0]
        assert list(config.model_version_policy.specific.versions) == [1623831335]

    def test_hpa_scales_1_to_10_on_sls_ingress_qps_per_pod(self) -> None:
        docs = rendered("ack-eci-bert-oss.yaml")
        spec = find(docs, "HorizontalPodAutoscaler")["spec"]
        assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 10)
        [metric] = spec["metrics"]
        assert metric["external"]["metric"]["name"] == "sls_ingress_qps"
        assert set(metric["external"]["metric"]["selector"]["matchLabels"]) == {
            "sls.project",
            "sls.logstore",
            "sls.ingress.route",
        }
        assert metric["external"]["metric"]["selector"]["matchLabels"]["sls.logstore"] == "nginx-ingress"
        assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "10"}
        assert "replicas" not in find(docs, "Deployment")["spec"]

    def test_internet_ingress_on_the_rest_port(self) -> None:
        ingress = find(rendered("ack-eci-bert-oss.yaml"), "Ingress")
        assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] == {
            "number": 8501
        }


class TestGkeResnetCpuHpa:
    def test_cpu_hpa_with_sized_requests_and_a_pdb(self) -> None:
        docs = rendered("gke-resnet-cpu-hpa.yaml")
        metric = find(docs, "HorizontalPodAutoscaler")["spec"]["metrics"][0]
        assert metric["resource"]["name"] == "cpu"
        assert server_container(docs)["resources"]["requests"]["cpu"] == "4"
        assert find(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
        assert "-gpu" not in server_container(docs)["image"]


class TestSlbClassicGrpc:
    def test_load_balancer_exposes_grpc_on_8000_for_n_cpu_replicas(self) -> None:
        docs = rendered("slb-classic-grpc.yaml")
        service = find(docs, "Service", f"{FULLNAME}-grpc")
        assert service["spec"]["type"] == "LoadBalancer"
        [grpc] = service["spec"]["ports"]
        assert (grpc["name"], grpc["port"], grpc["targetPort"]) == ("grpc", 8000, "grpc")
        assert "--port=8000" in server_container(docs)["args"], "SLB backend port = application port"
        assert find(docs, "Deployment")["spec"]["replicas"] == 2
        assert "nvidia.com/gpu" not in server_container(docs)["resources"].get("limits", {})
        annotations = service["metadata"]["annotations"]
        assert annotations["service.beta.kubernetes.io/alibaba-cloud-loadbalancer-id"].startswith("lb-")
        assert (
            annotations["service.beta.kubernetes.io/alibaba-cloud-loadbalancer-force-override-listeners"]
            == "true"
        )

    def test_at_most_one_replica_per_node(self) -> None:
        terms = pod_spec("slb-classic-grpc.yaml")["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert [t["topologyKey"] for t in terms] == ["kubernetes.io/hostname"]
        assert find(rendered("slb-classic-grpc.yaml"), "Deployment")["spec"]["strategy"]["rollingUpdate"] == {
            "maxSurge": 0,
            "maxUnavailable": 1,
        }


class TestLocal:
    def test_matches_the_shared_local_contract(self) -> None:
        docs = rendered("local.yaml")
        container = server_container(docs)
        # the chart's default image and command: on the local cluster the image is the drop-in
        assert container["command"] == ["tensorflow_model_server"]
        assert container["image"].startswith("tensorflow/serving:")
        assert "--model_config_file_poll_wait_seconds=2" in container["args"]
        assert container["resources"]["requests"]["cpu"] == "100m"
        assert container["readinessProbe"]["httpGet"] == {"path": "/v1/models/fashion", "port": "rest"}
        assert pod_spec("local.yaml")["nodeSelector"] == {"node.tfsctl.dev/type": "real"}
        assert find(docs, "PersistentVolumeClaim")["spec"]["selector"]["matchLabels"] == {
            "model": "local-examples"
        }
        assert find(docs, "Service")["spec"]["type"] == "LoadBalancer"
        hpa = find(docs, "HorizontalPodAutoscaler")["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 4)
        assert hpa["metrics"][0]["resource"]["name"] == "cpu"
        assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] <= 60

    def test_serves_fashion_with_stable_and_canary_labels(self) -> None:
        [config] = model_config("local.yaml").model_config_list.config
        assert config.name == "fashion"
        assert list(config.model_version_policy.specific.versions) == [1, 2]
        assert dict(config.version_labels) == {"stable": 1, "canary": 2}
