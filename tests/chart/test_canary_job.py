"""templates/canary-*.yaml: ``tfsctl canary`` as a Job of the release, with its spec and its RBAC."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from support.chart_render import CHART_DIR, FULLNAME, NAMESPACE, RELEASE, HelmError, find, kinds, render_chart
from tfsctl.canary import spec as canary_spec

pytestmark = pytest.mark.chart

CANARY = [
    "canary-job.yaml",
    "canary-configmap.yaml",
    "canary-serviceaccount.yaml",
    "canary-role.yaml",
    "canary-rolebinding.yaml",
]


def values(**canary: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "models": {"clf": {"versionPolicy": {"specific": {"versions": [1]}}, "versionLabels": {"stable": 1}}},
        "modelConfig": {"allowVersionLabelsForUnavailableModels": True},
        "canary": {
            "version": 2,
            "job": {"enabled": True, "image": {"repository": "reg/tfsctl", "tag": "0.1.0"}},
        },
    }
    for key, value in canary.items():
        base["canary"][key] = value
    return base


def job(v: dict[str, Any]) -> dict[str, Any]:
    return find(render_chart(v, show_only="canary-job.yaml"), "Job")


class TestCanaryJob:
    def test_not_rendered_by_default(self) -> None:
        assert render_chart(None, show_only=CANARY) == []

    def test_runs_tfsctl_canary_on_this_release_and_is_never_retried(self) -> None:
        rendered = job(values())
        assert rendered["metadata"]["name"] == f"{FULLNAME}-canary-2"
        assert rendered["spec"]["backoffLimit"] == 0
        pod = rendered["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        (container,) = pod["containers"]
        assert container["image"] == "reg/tfsctl:0.1.0" and container["command"] == ["tfsctl"]
        args = container["args"]
        assert args[:3] == ["canary", "clf", "2"]
        assert args[args.index("--release") + 1] == RELEASE
        assert args[args.index("--namespace") + 1] == NAMESPACE
        assert args[args.index("--connect") + 1] == "pod-ip"
        assert args[args.index("--spec") + 1] == "/etc/tfsctl-canary/spec.yaml"
        assert args[args.index("--output") + 1] == "json"
        # the install or upgrade that creates the Job holds the release until its pods are ready
        assert args[args.index("--lock-timeout") + 1] == "600"

    def test_the_jobs_pod_is_never_selected_as_a_server(self) -> None:
        docs = render_chart(values())
        pod_labels = find(docs, "Job")["spec"]["template"]["metadata"]["labels"]
        service = find(docs, "Service", FULLNAME)
        assert not all(pod_labels.get(k) == v for k, v in service["spec"]["selector"].items())
        assert pod_labels["app.kubernetes.io/component"] == "canary"
        deployment = find(docs, "Deployment")
        assert not all(
            pod_labels.get(k) == v for k, v in deployment["spec"]["selector"]["matchLabels"].items()
        )

    def test_runs_restricted_with_a_writable_home_only(self) -> None:
        pod = job(values())["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "HOME", "value": "/tmp"} in container["env"]
        assert {m["mountPath"] for m in container["volumeMounts"]} == {"/etc/tfsctl-canary", "/tmp"}

    def test_the_spec_is_mounted_from_its_configmap_as_given(self) -> None:
        given = {"profile": "regressor", "bakeSeconds": 30, "latency": {"maxP99Ratio": None}}
        docs = render_chart(values(spec=given), show_only=["canary-job.yaml", "canary-configmap.yaml"])
        cm = find(docs, "ConfigMap")
        assert yaml.safe_load(cm["data"]["spec.yaml"]) == given
        assert canary_spec.parse(yaml.safe_load(cm["data"]["spec.yaml"])).profile == "regressor"
        volumes = {v["name"]: v for v in find(docs, "Job")["spec"]["template"]["spec"]["volumes"]}
        assert volumes["spec"]["configMap"]["name"] == cm["metadata"]["name"]

    def test_a_finished_job_is_kept_unless_a_ttl_is_given(self) -> None:
        assert "ttlSecondsAfterFinished" not in job(values())["spec"]
        with_ttl = values()
        with_ttl["canary"]["job"]["ttlSecondsAfterFinished"] = 600
        assert job(with_ttl)["spec"]["ttlSecondsAfterFinished"] == 600

    def test_label_moves_render_the_packaged_chart_or_this_charts_version_from_its_registry(self) -> None:
        args = job(values())["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--chart" not in args and "--version" not in args
        v = values()
        v["canary"]["job"]["chart"] = "oci://reg.example/charts/tensorflow-serving"
        args = job(v)["spec"]["template"]["spec"]["containers"][0]["args"]
        version = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["version"]
        assert args[args.index("--chart") + 1] == "oci://reg.example/charts/tensorflow-serving"
        assert args[args.index("--version") + 1] == version
        v["canary"]["job"]["chart"] = "https://reg.example/charts"
        with pytest.raises(HelmError, match="chart"):
            job(v)

    def test_the_job_is_placed_by_its_own_values_not_the_servers(self) -> None:
        v = values()
        v["nodeSelector"] = {"gpu": "true"}
        v["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists"}]
        pod = job(v)["spec"]["template"]["spec"]
        assert "nodeSelector" not in pod and "tolerations" not in pod
        toleration = {"key": "pool", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}
        v["canary"]["job"].update(nodeSelector={"pool": "batch"}, tolerations=[toleration])
        pod = job(v)["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"pool": "batch"}
        assert pod["tolerations"] == [toleration]

    def test_the_only_model_is_the_default_and_model_name_works_too(self) -> None:
        single = values()
        single.pop("models")
        single["model"] = {"name": "half"}
        assert job(single)["spec"]["template"]["spec"]["containers"][0]["args"][1] == "half"


class TestCanaryRbac:
    def test_the_job_may_upgrade_this_release_and_hold_its_lease(self) -> None:
        docs = render_chart(values(), show_only=CANARY)
        assert sorted(kinds(docs)) == ["ConfigMap", "Job", "Role", "RoleBinding", "ServiceAccount"]
        role = find(docs, "Role")
        granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
        for need in [
            ("", "pods"),
            ("", "secrets"),
            ("", "configmaps"),
            ("apps", "deployments"),
            ("coordination.k8s.io", "leases"),
            ("batch", "jobs"),
            # the replicas tfsctl dials: the Service's ready EndpointSlices
            ("discovery.k8s.io", "endpointslices"),
        ]:
            assert need in granted, need
        binding = find(docs, "RoleBinding")
        account = find(docs, "ServiceAccount")
        assert binding["subjects"][0]["name"] == account["metadata"]["name"]
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert (
            find(docs, "Job")["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
        )

    def test_rbac_can_be_left_to_the_cluster_admin(self) -> None:
        docs = render_chart(values(rbac={"create": False}))
        canary = [
            d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "canary"
        ]
        assert sorted(kinds(canary)) == ["ConfigMap", "Job"]
        pod = find(docs, "Job")["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == f"{FULLNAME}-canary"  # the account the admin provides


class TestCanaryValidation:
    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (
                {"job": {"enabled": True, "image": {"repository": "", "tag": "1"}}},
                "canary.job.image.repository is required",
            ),
            (
                {"job": {"enabled": True, "image": {"repository": "r", "tag": ""}}},
                "canary.job.image.tag is required",
            ),
            ({"version": None}, "canary.version is required"),
            ({"model": "other"}, "canary.model (other) is not a model of this release (models: clf)"),
        ],
    )
    def test_a_job_that_cannot_run_fails_naming_the_value(self, change: dict[str, Any], message: str) -> None:
        v = values(**change)
        with pytest.raises(HelmError) as caught:
            render_chart(v, show_only="canary-job.yaml")
        assert message in caught.value.stderr

    def test_several_models_need_canary_model(self) -> None:
        v = values()
        v["models"]["other"] = copy.deepcopy(v["models"]["clf"])
        with pytest.raises(
            HelmError, match=r"canary.model is required with canary.job.enabled when models has 2"
        ):
            render_chart(v, show_only="canary-job.yaml")

    def test_a_model_without_the_stable_label_is_refused(self) -> None:
        v = values()
        v["models"]["clf"]["versionLabels"] = {}
        with pytest.raises(HelmError, match=r"models\.clf\.versionLabels has no stable label"):
            render_chart(v, show_only="canary-job.yaml")

    def test_a_bad_spec_key_is_refused_by_the_schema(self) -> None:
        with pytest.raises(HelmError, match="maxP95Ratio"):
            render_chart(values(spec={"latency": {"maxP95Ratio": 2}}), show_only="canary-job.yaml")


def test_the_charts_canary_spec_schema_is_the_toolkits() -> None:
    """One model of the spec: the chart's schema for canary.spec is tfsctl.canary.spec.SCHEMA."""
    chart = json.loads((CHART_DIR / "values.schema.json").read_text())["properties"]["canary"]["properties"][
        "spec"
    ]
    toolkit = copy.deepcopy(canary_spec.SCHEMA)
    toolkit.pop("$schema")
    assert chart == toolkit


def test_the_canary_objects_validate_against_kubernetes_openapi() -> None:
    import kubernetes_validate

    from support.chart_render import KUBERNETES_VERSION

    for doc in render_chart(values(), show_only=CANARY):
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = ".".join(str(p) for p in err.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {err.message}")
