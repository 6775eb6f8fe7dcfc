"""tfsctl.release.binding: Kubernetes' PV binding rule as data (pinned against the API server by
tests/e2e/presets/test_guide_binding.py) and tfsctl.release.routes: ingress-nginx's route names."""

from __future__ import annotations

from typing import Any

import pytest

from tfsctl.release.binding import bind, check_claims, quantity, selector_matches
from tfsctl.release.routes import ingress_routes, route_problems, upstream_name


def pv(
    name: str, size: str = "5Gi", modes: tuple[str, ...] = ("ReadWriteMany",), **extra: Any
) -> dict[str, Any]:
    labels = extra.pop("labels", {})
    spec = {"capacity": {"storage": size}, "accessModes": list(modes), **extra}
    return {"kind": "PersistentVolume", "metadata": {"name": name, "labels": labels}, "spec": spec}


def pvc(size: str = "5Gi", modes: tuple[str, ...] = ("ReadWriteMany",), **spec: Any) -> dict[str, Any]:
    body = {"accessModes": list(modes), "storageClassName": "", "resources": {"requests": {"storage": size}}}
    return {
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "models", "namespace": "ns"},
        "spec": {**body, **spec},
    }


MNIST = {"matchLabels": {"model": "mnist"}}


class TestQuantity:
    @pytest.mark.parametrize(
        ("text", "value"), [("5Gi", 5 * 2**30), ("500M", 500 * 10**6), ("1e3", 1000), ("100m", 0.1), ("2", 2)]
    )
    def test_parses_kubernetes_quantities(self, text: str, value: float) -> None:
        assert float(quantity(text)) == pytest.approx(value)

    def test_rejects_garbage(self) -> None:
        with pytest.raises(ValueError, match="not a Kubernetes quantity"):
            quantity("5 gigs")


class TestSelector:
    def test_match_labels_and_expressions(self) -> None:
        sel = {
            "matchLabels": {"model": "mnist"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}],
        }
        assert selector_matches(sel, {"model": "mnist", "tier": "a"})
        assert not selector_matches(sel, {"model": "mnist", "tier": "b"})
        assert not selector_matches({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, {})
        assert selector_matches({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, {})
        assert selector_matches(None, {"anything": "goes"})


class TestBindBySelector:
    def test_binds_the_labelled_pv(self) -> None:
        assert (
            bind(pvc(selector=MNIST), [pv("other"), pv("pv-nas", labels={"model": "mnist"})]).volume
            == "pv-nas"
        )

    def test_picks_the_smallest_pv_that_fits(self) -> None:
        volumes = [
            pv("big", "50Gi", labels={"model": "mnist"}),
            pv("small", "6Gi", labels={"model": "mnist"}),
        ]
        assert bind(pvc(selector=MNIST), volumes).volume == "small"

    def test_no_pv_matches_the_selector(self) -> None:
        result = bind(pvc(selector=MNIST), [pv("other", labels={"model": "bert"})])
        assert not result.ok
        assert result.reason == "claim ns/models: no PV matches the selector model=mnist"

    def test_capacity_too_small(self) -> None:
        result = bind(pvc("10Gi", selector=MNIST), [pv("pv-nas", labels={"model": "mnist"})])
        assert result.reason == "claim ns/models: PV pv-nas offers 5Gi, less than the 10Gi the claim requests"

    def test_access_mode_not_offered(self) -> None:
        result = bind(pvc(modes=("ReadOnlyMany",), selector=MNIST), [pv("pv-nas", labels={"model": "mnist"})])
        assert (
            result.reason == "claim ns/models: PV pv-nas offers access modes ReadWriteMany, not ReadOnlyMany"
        )

    def test_storage_class_differs(self) -> None:
        result = bind(pvc(selector=MNIST), [pv("pv-nas", labels={"model": "mnist"}, storageClassName="nas")])
        assert "PV pv-nas has storage class 'nas', the claim asks for ''" in result.reason

    def test_beta_annotation_decides_the_class(self) -> None:
        volume = pv("pv-nas", labels={"model": "mnist"}, storageClassName="nas")
        claim = pvc(selector=MNIST)
        claim["metadata"]["annotations"] = {"volume.beta.kubernetes.io/storage-class": "nas"}
        assert bind(claim, [volume]).volume == "pv-nas"

    def test_pv_bound_to_another_claim_is_not_free(self) -> None:
        volume = pv("pv-nas", labels={"model": "mnist"}, claimRef={"namespace": "x", "name": "y"})
        assert bind(pvc(selector=MNIST), [volume]).reason == "claim ns/models: PV pv-nas is bound to x/y"

    def test_released_pv_says_how_to_reuse_it(self) -> None:
        volume = pv("pv-nas", labels={"model": "mnist"}, claimRef={"namespace": "x", "name": "y"})
        volume["status"] = {"phase": "Released"}
        assert "clear spec.claimRef" in bind(pvc(selector=MNIST), [volume]).reason

    def test_pv_pre_bound_to_this_claim_wins(self) -> None:
        volumes = [
            pv("a", labels={"model": "mnist"}),
            pv("b", "9Gi", claimRef={"namespace": "ns", "name": "models"}),
        ]
        assert bind(pvc(selector=MNIST), volumes).volume == "b"

    def test_pre_bound_pv_is_taken_whatever_its_labels_and_class(self) -> None:
        volume = pv("b", storageClassName="nas", claimRef={"namespace": "ns", "name": "models"})
        assert bind(pvc(selector=MNIST), [volume]).volume == "b"

    def test_named_class_is_left_to_provisioning(self) -> None:
        result = bind(pvc(storageClassName="alicloud-nas"), [])
        assert result.ok and result.provisioned and result.volume is None


class TestBindByName:
    def test_binds_the_named_pv_without_looking_at_labels(self) -> None:
        assert (
            bind(pvc(volumeName="model-csi-pv", selector=MNIST), [pv("model-csi-pv")]).volume
            == "model-csi-pv"
        )

    def test_no_pv_of_that_name(self) -> None:
        result = bind(pvc(volumeName="model-csi-pv"), [pv("other")])
        assert result.reason == "claim ns/models: no PV named model-csi-pv (persistence.volumeName)"

    def test_named_pv_too_small(self) -> None:
        assert (
            "offers 5Gi, less than the 20Gi"
            in bind(pvc("20Gi", volumeName="model-csi-pv"), [pv("model-csi-pv")]).reason
        )


def test_check_claims_counts_the_pvs_the_manifests_create() -> None:
    docs = [pvc(selector=MNIST), pv("chart-pv", labels={"model": "mnist"})]
    [result] = check_claims(docs, [])
    assert result.volume == "chart-pv"


BACKEND = {"service": {"name": "bert-tensorflow-serving", "port": {"number": 8501}}}


def ingress(backend: dict[str, Any]) -> dict[str, Any]:
    rule = {"http": {"paths": [{"path": "/", "backend": backend}]}}
    return {"kind": "Ingress", "metadata": {"namespace": "default"}, "spec": {"rules": [rule]}}


def hpa(route: str) -> dict[str, Any]:
    metric = {"name": "sls_ingress_qps", "selector": {"matchLabels": {"sls.ingress.route": route}}}
    return {
        "kind": "HorizontalPodAutoscaler",
        "spec": {"metrics": [{"type": "External", "external": {"metric": metric}}]},
    }


class TestRoutes:
    def test_upstream_name_uses_the_port_number_else_its_name(self) -> None:
        assert upstream_name("default", BACKEND) == "default-bert-tensorflow-serving-8501"
        named = {"service": {"name": "bert-tensorflow-serving", "port": {"name": "rest"}}}
        assert upstream_name("default", named) == "default-bert-tensorflow-serving-rest"

    def test_matching_route_is_no_problem(self) -> None:
        docs = [ingress(BACKEND), hpa("default-bert-tensorflow-serving-8501")]
        assert ingress_routes(docs) == {"default-bert-tensorflow-serving-8501"}
        assert route_problems(docs) == []

    def test_a_route_the_ingress_cannot_produce_is_flagged_in_one_line(self) -> None:
        named = {"service": {"name": "bert-tensorflow-serving", "port": {"name": "rest"}}}
        [problem] = route_problems([ingress(named), hpa("default-bert-tensorflow-serving-8501")])
        assert "sls.ingress.route default-bert-tensorflow-serving-8501 is not a route" in problem
        assert "default-bert-tensorflow-serving-rest" in problem and "\n" not in problem

    def test_no_ingress_at_all(self) -> None:
        [problem] = route_problems([hpa("default-x-8501")])
        assert "none (no Ingress is rendered)" in problem
