"""templates/service.yaml: ports, types and load-balancer options."""

from __future__ import annotations

from typing import Any

import pytest

from support.chart_render import FULLNAME, find, render_chart

pytestmark = pytest.mark.chart


def service(values: dict[str, Any] | None = None) -> dict[str, Any]:
    return find(render_chart(values, show_only="service.yaml"), "Service", FULLNAME)


class TestService:
    def test_ports_named_grpc_and_rest_target_the_container_ports(self) -> None:
        spec = service()["spec"]
        assert spec["type"] == "ClusterIP"
        assert [(p["name"], p["port"], p["targetPort"]) for p in spec["ports"]] == [
            ("grpc", 8500, "grpc"),
            ("rest", 8501, "rest"),
        ]

    def test_selector_matches_the_pods_only_by_name_and_instance(self) -> None:
        assert service()["spec"]["selector"] == {
            "app.kubernetes.io/name": "tensorflow-serving",
            "app.kubernetes.io/instance": "tfs",
        }

    def test_service_port_can_differ_from_the_container_port(self) -> None:
        ports = service({"service": {"type": "LoadBalancer", "grpcPort": 8000}})["spec"]["ports"]
        assert ports[0] == {
            "name": "grpc",
            "port": 8000,
            "targetPort": "grpc",
            "protocol": "TCP",
            "appProtocol": "grpc",
        }

    def test_legacy_layout_exposes_only_grpc(self) -> None:
        ports = service({"server": {"grpcPort": 9090, "restEnabled": False}})["spec"]["ports"]
        assert [(p["name"], p["port"]) for p in ports] == [("grpc", 9090)]

    def test_node_ports_are_fixed_when_given(self) -> None:
        values = {"service": {"type": "NodePort", "nodePorts": {"grpc": 30500, "rest": 30501}}}
        assert [p["nodePort"] for p in service(values)["spec"]["ports"]] == [30500, 30501]

    def test_load_balancer_annotations_source_ranges_and_traffic_policy(self) -> None:
        values = {
            "service": {
                "type": "LoadBalancer",
                "annotations": {"service.beta.kubernetes.io/alibaba-cloud-loadbalancer-spec": "slb.s1.small"},
                "loadBalancerSourceRanges": ["10.0.0.0/8"],
                "externalTrafficPolicy": "Local",
            }
        }
        svc = service(values)
        assert svc["metadata"]["annotations"] == {
            "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-spec": "slb.s1.small"
        }
        assert svc["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]
        assert svc["spec"]["externalTrafficPolicy"] == "Local"


LB = {"service": {"type": "LoadBalancer"}}
ALB_ID = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-id"
ALB_OVERRIDE = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-force-override-listeners"


class TestServiceKeepsRestOffTheLoadBalancer:
    def test_exposed_service_carries_grpc_only(self) -> None:
        docs = render_chart({"service": {"type": "LoadBalancer", "exposeRest": False}})
        exposed = find(docs, "Service", f"{FULLNAME}-grpc")["spec"]
        assert exposed["type"] == "LoadBalancer"
        assert [p["name"] for p in exposed["ports"]] == ["grpc"]
        internal = find(docs, "Service", FULLNAME)["spec"]
        assert internal["type"] == "ClusterIP"
        assert [(p["name"], p["port"]) for p in internal["ports"]] == [("grpc", 8500), ("rest", 8501)]
        assert internal["selector"] == exposed["selector"]

    def test_one_service_by_default(self) -> None:
        docs = render_chart(LB)
        assert [d["metadata"]["name"] for d in docs if d["kind"] == "Service"] == [FULLNAME]

    def test_ingress_still_routes_to_the_cluster_ip_service(self) -> None:
        values = {"service": {"type": "LoadBalancer", "exposeRest": False}, "ingress": {"enabled": True}}
        ingress = find(render_chart(values, show_only="ingress.yaml"), "Ingress", FULLNAME)
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": FULLNAME, "port": {"number": 8501}}


class TestServiceReusesAnExistingSlb:
    def test_load_balancer_id_and_listener_override_become_ccm_annotations(self) -> None:
        values = {
            "service": {
                "type": "LoadBalancer",
                "alibabaCloud": {"loadBalancerId": "lb-2ze1", "forceOverrideListeners": True},
            }
        }
        annotations = service(values)["metadata"]["annotations"]
        assert annotations[ALB_ID] == "lb-2ze1"
        assert annotations[ALB_OVERRIDE] == "true"

    def test_reused_slb_keeps_hand_made_listeners_by_default(self) -> None:
        values = {"service": {"type": "LoadBalancer", "alibabaCloud": {"loadBalancerId": "lb-2ze1"}}}
        assert service(values)["metadata"]["annotations"][ALB_OVERRIDE] == "false"

    def test_no_slb_annotations_without_an_id(self) -> None:
        assert "annotations" not in service(LB)["metadata"]
