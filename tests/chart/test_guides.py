"""Each preset against the objects of the guide it stands for (tests/chart/guides/*.yaml, written from the
guides in ../shared/seeds/): the claim binds the guide's PV under Kubernetes' binding rule, the HPA selects
the route the chart's Ingress produces, the Service exposes the guide's ports, and the server runs the
guide's model, flags and image.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.chart_render import PRESETS_DIR, find, parse_model_server_config, render_chart, server_container
from tfsctl.release.binding import bind, check_claims
from tfsctl.release.routes import ingress_routes, route_problems, upstream_name

pytestmark = pytest.mark.chart

GUIDES = Path(__file__).parent / "guides"


@cache
def guide(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((GUIDES / name).read_text()))


def guide_object(name: str, kind: str) -> dict[str, Any]:
    [obj] = [o for o in guide(name)["objects"] if o["kind"] == kind]
    return dict(obj)


@cache
def _render(preset: str, release: str, namespace: str) -> tuple[dict[str, Any], ...]:
    return tuple(render_chart(values_files=[PRESETS_DIR / preset], release=release, namespace=namespace))


def rendered(guide_name: str, preset: str | None = None) -> list[dict[str, Any]]:
    g = guide(guide_name)
    return list(_render(preset or g["preset"], g["release"], g["namespace"]))


def exposed_service(docs: list[dict[str, Any]], release: str) -> dict[str, Any]:
    """The Service a load balancer or node port front (``-grpc`` when REST is off it), or ``<fullname>``."""
    outside = [d for d in docs if d["kind"] == "Service" and d["spec"]["type"] != "ClusterIP"]
    if outside:
        [service] = outside
        return service
    return find(docs, "Service", f"{release}-tensorflow-serving")


class TestAckEciBert:
    """Guide: ACK + ECI elastic BERT. Preset: ack-eci-bert-oss.yaml."""

    G = "ack-eci-bert.yaml"

    def test_claim_binds_the_guides_oss_pv(self) -> None:
        claim = find(rendered(self.G), "PersistentVolumeClaim")
        assert bind(claim, [guide_object(self.G, "PersistentVolume")]).volume == "model-csi-pv"

    def test_while_the_guides_claim_holds_the_pv_deploy_is_told_why(self) -> None:
        """The guide's model-pvc bound model-csi-pv: our claim cannot take it until that claim is gone."""
        volume = guide_object(self.G, "PersistentVolume")
        volume["spec"]["claimRef"] = {"namespace": "default", "name": "model-pvc"}
        result = bind(find(rendered(self.G), "PersistentVolumeClaim"), [volume])
        assert result.reason.endswith("PV model-csi-pv is bound to default/model-pvc")

    def test_or_the_release_mounts_the_guides_claim_itself(self) -> None:
        claim_name, _ = guide(self.G)["arena"]["data"].split(":")
        g = guide(self.G)
        docs = render_chart(
            {"persistence": {"existingClaim": claim_name, "volumeName": ""}},
            values_files=[PRESETS_DIR / g["preset"]],
            release=g["release"],
            namespace=g["namespace"],
        )
        assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
        pod = find(docs, "Deployment")["spec"]["template"]["spec"]
        [models] = [v for v in pod["volumes"] if v["name"] == "models"]
        assert models["persistentVolumeClaim"]["claimName"] == claim_name

    def test_claim_asks_what_the_guides_own_claim_asks(self) -> None:
        ours = find(rendered(self.G), "PersistentVolumeClaim")["spec"]
        theirs = guide_object(self.G, "PersistentVolumeClaim")["spec"]
        for key in ("accessModes", "volumeName", "storageClassName", "resources"):
            assert ours[key] == theirs[key], key

    def test_the_route_rule_reproduces_the_guides_own_hpa_and_ingress(self) -> None:
        """Our copy of ingress-nginx's upstream naming gives the route the guide's HPA selects."""
        objects = guide(self.G)["objects"]
        assert route_problems(objects) == []
        ingress = guide_object(self.G, "Ingress")
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]
        assert (
            upstream_name("default", backend) == "default-bert-tfserving-202207181536-tensorflow-serving-8501"
        )

    def test_hpa_selects_the_route_the_charts_ingress_produces(self) -> None:
        docs = rendered(self.G)
        [metric] = find(docs, "HorizontalPodAutoscaler")["spec"]["metrics"]
        route = metric["external"]["metric"]["selector"]["matchLabels"]["sls.ingress.route"]
        assert ingress_routes(docs) == {route}
        assert route == "default-bert-tfserving-tensorflow-serving-8501"
        assert route_problems(docs) == []

    def test_hpa_metric_has_the_guides_shape(self) -> None:
        ours = find(rendered(self.G), "HorizontalPodAutoscaler")["spec"]
        theirs = guide_object(self.G, "HorizontalPodAutoscaler")["spec"]
        assert (ours["minReplicas"], ours["maxReplicas"]) == (theirs["minReplicas"], theirs["maxReplicas"])
        [mine], [guides] = ours["metrics"], theirs["metrics"]
        assert mine["type"] == guides["type"] == "External"
        assert mine["external"]["metric"]["name"] == guides["external"]["metric"]["name"]
        assert mine["external"]["target"] == guides["external"]["target"]
        labels = mine["external"]["metric"]["selector"]["matchLabels"]
        assert labels.keys() == guides["external"]["metric"]["selector"]["matchLabels"].keys()
        assert labels["sls.logstore"] == "nginx-ingress"
        assert labels["sls.project"].startswith("k8s-log-")

    def test_ingress_matches_the_guides_console_ingress(self) -> None:
        ours = find(rendered(self.G), "Ingress")["spec"]
        theirs = guide_object(self.G, "Ingress")["spec"]
        mine, guides = ours["rules"][0], theirs["rules"][0]
        assert mine["host"] == guides["host"]
        path, guide_path = mine["http"]["paths"][0], guides["http"]["paths"][0]
        assert (path["path"], path["pathType"]) == (guide_path["path"], guide_path["pathType"])
        assert path["backend"]["service"]["port"] == guide_path["backend"]["service"]["port"]
        assert ours["ingressClassName"] == theirs["ingressClassName"]

    def test_service_exposes_the_ports_arena_creates(self) -> None:
        ours = exposed_service(rendered(self.G), "bert-tfserving")["spec"]
        theirs = guide_object(self.G, "Service")["spec"]
        assert ours["type"] == theirs["type"] == "ClusterIP"
        assert sorted(p["port"] for p in ours["ports"]) == sorted(p["port"] for p in theirs["ports"])

    def test_server_runs_the_arena_model_image_gpus_and_eci_annotations(self) -> None:
        docs = rendered(self.G)
        arena = guide(self.G)["arena"]
        container = server_container(docs)
        assert container["image"] == arena["image"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == arena["gpus"]
        _, mount_path = arena["data"].split(":")
        mount = next(m for m in container["volumeMounts"] if m["name"] == "models")
        assert mount["mountPath"] == mount_path
        [config] = parse_model_server_config(
            find(docs, "ConfigMap")["data"]["model_config.pbtxt"]
        ).model_config_list.config
        assert (config.name, config.base_path) == (arena["model-name"], arena["model-path"])
        policy, version = arena["version-policy"].split(":")
        assert policy == "specific" and list(config.model_version_policy.specific.versions) == [int(version)]
        pod = find(docs, "Deployment")["spec"]["template"]
        spec = arena["annotations"]["k8s.aliyun.com/eci-use-specs"]
        assert pod["metadata"]["annotations"]["k8s.aliyun.com/eci-use-specs"] == spec
        # eci_only: required placement on the virtual node (the guide's pods run on virtual-kubelet-*)
        required = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert required["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["virtual-kubelet"]


@pytest.mark.parametrize("preset", guide("ack-nas-mnist.yaml")["presets"])
class TestAckNasMnist:
    """Guide: ACK Helm chart acs-tensorflow-serving with a NAS PV. Presets: ack-nas-mnist-{gpu,cpu}.yaml."""

    G = "ack-nas-mnist.yaml"

    def test_claim_binds_the_guides_nas_pv_by_label(self, preset: str) -> None:
        [result] = check_claims(rendered(self.G, preset), [guide_object(self.G, "PersistentVolume")])
        assert result.volume == "pv-nas", result.reason

    def test_claim_requests_what_the_guides_values_request(self, preset: str) -> None:
        flavour = "gpu" if "gpu" in preset else "cpu"
        pvc = guide(self.G)["chartValues"][flavour]["persistence"]["pvc"]
        spec = find(rendered(self.G, preset), "PersistentVolumeClaim")["spec"]
        assert spec["resources"]["requests"]["storage"] == pvc["storage"]
        assert spec["selector"]["matchLabels"] == pvc["matchLabels"]

    def test_load_balancer_exposes_the_guides_port_only(self, preset: str) -> None:
        flavour = "gpu" if "gpu" in preset else "cpu"
        values = guide(self.G)["chartValues"][flavour]
        spec = exposed_service(rendered(self.G, preset), "mnist")["spec"]
        assert spec["type"] == values["serviceType"]
        assert [p["port"] for p in spec["ports"]] == [values["port"]]

    def test_rest_stays_reachable_in_cluster(self, preset: str) -> None:
        spec = find(rendered(self.G, preset), "Service", "mnist-tensorflow-serving")["spec"]
        assert spec["type"] == "ClusterIP"
        assert [p["name"] for p in spec["ports"]] == ["grpc", "rest"]

    def test_server_runs_the_guides_args_and_mount(self, preset: str) -> None:
        flavour = "gpu" if "gpu" in preset else "cpu"
        values = guide(self.G)["chartValues"][flavour]
        container = server_container(rendered(self.G, preset))
        assert set(values["args"]) <= set(container["args"])
        mount = next(m for m in container["volumeMounts"] if m["name"] == "models")
        assert mount["mountPath"] == values["mountPath"]
        assert container["resources"].get("limits", {}).get("nvidia.com/gpu", 0) == values.get("gpuCount", 0)


def test_the_claim_the_nas_presets_used_to_make_stays_pending_with_a_reason() -> None:
    """Before issue 12 the NAS presets asked 10Gi ReadOnlyMany of the guide's 5Gi ReadWriteMany PV."""
    old = {
        "metadata": {"name": "mnist-tensorflow-serving-models", "namespace": "default"},
        "spec": {
            "accessModes": ["ReadOnlyMany"],
            "storageClassName": "",
            "selector": {"matchLabels": {"model": "mnist"}},
            "resources": {"requests": {"storage": "10Gi"}},
        },
    }
    result = bind(old, [guide_object("ack-nas-mnist.yaml", "PersistentVolume")])
    assert result.volume is None
    assert "PV pv-nas offers 5Gi, less than the 10Gi the claim requests" in result.reason


class TestSlbClassic:
    """Guide: Container Service with a Server Load Balancer and OSS. Preset: slb-classic-grpc.yaml."""

    G = "slb-classic.yaml"

    def test_listener_ports_match_service_and_application_ports(self) -> None:
        listener = guide(self.G)["loadBalancer"]["listener"]
        docs = rendered(self.G)
        [port] = exposed_service(docs, "mnist")["spec"]["ports"]
        assert port["port"] == listener["frontendPort"]
        container_port = next(p for p in server_container(docs)["ports"] if p["name"] == port["targetPort"])
        assert container_port["containerPort"] == listener["backendPort"]
        assert port["protocol"] == listener["protocol"]

    def test_reuses_the_existing_internet_slb(self) -> None:
        annotations = exposed_service(rendered(self.G), "mnist")["metadata"]["annotations"]
        assert annotations["service.beta.kubernetes.io/alibaba-cloud-loadbalancer-id"].startswith("lb-")
        assert (
            annotations["service.beta.kubernetes.io/alibaba-cloud-loadbalancer-force-override-listeners"]
            == "true"
        )
        address_type = annotations["service.beta.kubernetes.io/alibaba-cloud-loadbalancer-address-type"]
        assert address_type == guide(self.G)["loadBalancer"]["addressType"]

    def test_at_most_one_instance_per_node(self) -> None:
        assert guide(self.G)["instances"]["maxPerNode"] == 1
        deployment = find(rendered(self.G), "Deployment")["spec"]
        pod = deployment["template"]["spec"]
        [term] = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"] == deployment["selector"], "the term must select the release's own pods"

    def test_model_folder_at_the_bucket_root_and_keys_only_by_secret(self) -> None:
        docs = rendered(self.G)
        name = guide(self.G)["modelName"]
        args = server_container(docs)["args"]
        assert f"--model_name={name}" in args and f"--model_base_path=/models/{name}" in args
        volume = find(docs, "PersistentVolume")["spec"]["csi"]
        assert volume["volumeAttributes"]["path"] == "/"
        assert volume["nodePublishSecretRef"]["name"]
        assert not {"akId", "akSecret"} & volume["volumeAttributes"].keys()
        assert bind(find(docs, "PersistentVolumeClaim"), [find(docs, "PersistentVolume")]).ok


class TestPaiEas:
    """Guide: PAI-EAS multi-model TF Serving. Preset: pai-eas-multi-model.yaml."""

    G = "pai-eas.yaml"

    def test_model_config_is_the_guides(self) -> None:
        docs = rendered(self.G)
        config = parse_model_server_config(find(docs, "ConfigMap")["data"]["model_config.pbtxt"])
        got = {c.name: c for c in config.model_config_list.config}
        want = guide(self.G)["modelConfig"]
        assert got.keys() == want.keys()
        for name, spec in want.items():
            assert got[name].base_path.rstrip("/") == spec["base_path"].rstrip("/")
            policy = got[name].model_version_policy
            kind = next(iter(spec["policy"]))
            assert policy.WhichOneof("policy_choice") == kind
            if kind == "specific":
                assert list(policy.specific.versions) == spec["policy"]["specific"]
            if kind == "latest":
                assert policy.latest.num_versions == spec["policy"]["latest"]
            assert dict(got[name].version_labels) == spec.get("labels", {})

    def test_flags_ports_image_and_mount_are_the_guides(self) -> None:
        g = guide(self.G)
        docs = rendered(self.G)
        container = server_container(docs)
        for flag in g["command"].split()[2:]:
            assert flag in container["args"], flag
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == g["ports"]
        assert container["image"].endswith(":" + g["image"].split(":")[1])
        mount = next(m for m in container["volumeMounts"] if m["name"] == "models")
        assert mount["mountPath"] == g["mountPath"]

    def test_oss_uri_mounted_from_a_secret_reference(self) -> None:
        bucket, _, path = guide(self.G)["uri"].removeprefix("oss://").partition("/")
        docs = rendered(self.G)
        csi = find(docs, "PersistentVolume")["spec"]["csi"]
        assert csi["volumeAttributes"]["bucket"] == bucket
        assert csi["volumeAttributes"]["path"].strip("/") == path.strip("/")
        assert csi["nodePublishSecretRef"]["name"] == "oss-secret"
        assert bind(find(docs, "PersistentVolumeClaim"), [find(docs, "PersistentVolume")]).ok


class TestGkeResnet:
    """Guide: GKE lab, ResNet101 autoscaled on CPU. Preset: gke-resnet-cpu-hpa.yaml."""

    G = "gke-resnet.yaml"

    def test_serves_resnet_autoscaled_on_cpu(self) -> None:
        docs = rendered(self.G)
        assert f"--model_name={guide(self.G)['model']}" in server_container(docs)["args"]
        metrics = find(docs, "HorizontalPodAutoscaler")["spec"]["metrics"]
        assert [m["resource"]["name"] for m in metrics] == [guide(self.G)["autoscaling"]["metric"]]


def test_tfsctl_validate_flags_a_route_the_charts_ingress_cannot_produce(tmp_path: Path) -> None:
    """The ECI preset as it was: a hand-written route ending in 8501 while the Ingress named its port."""
    from tfsctl.release import ops

    old = {
        "autoscaling": {
            "slsIngressQps": {"enabled": False},
            "externalMetrics": [
                {
                    "name": "sls_ingress_qps",
                    "selector": {
                        "matchLabels": {"sls.ingress.route": "default-bert-tensorflow-serving-8501"}
                    },
                    "targetAverageValue": "10",
                }
            ],
        }
    }
    override = tmp_path / "old-route.yaml"
    override.write_text(yaml.safe_dump(old))
    preset = PRESETS_DIR / "ack-eci-bert-oss.yaml"
    report = ops.validate([preset, override], [], None, None, release="bert-tfserving", namespace="default")
    [problem] = report.problems
    assert "sls.ingress.route default-bert-tensorflow-serving-8501 is not a route" in problem
    assert "default-bert-tfserving-tensorflow-serving-8501" in problem
    assert not ops.validate([preset], [], None, None, release="bert-tfserving", namespace="default").problems
