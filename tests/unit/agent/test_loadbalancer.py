from __future__ import annotations

from typing import Any

from tfsbed.cluster.agent.loadbalancer import local_backends, manages

SERVICE: dict[str, Any] = {
    "spec": {
        "type": "LoadBalancer",
        "ports": [{"name": "grpc", "port": 8500}, {"name": "rest", "port": 8501}],
    }
}


def endpoint(ip: str, node: str, ready: bool = True) -> dict[str, Any]:
    return {"addresses": [ip], "nodeName": node, "conditions": {"ready": ready}}


def slice_(*endpoints: dict[str, Any]) -> dict[str, Any]:
    return {
        "addressType": "IPv4",
        "endpoints": list(endpoints),
        "ports": [{"name": "grpc", "port": 9500}, {"name": "rest", "port": 9501}],
    }


def is_local(ep: dict[str, Any]) -> bool:
    return bool(ep.get("nodeName") == "proc")


def test_ready_local_endpoints_map_service_ports_to_target_ports() -> None:
    has_local, backends = local_backends(
        SERVICE, [slice_(endpoint("10.0.0.3", "proc"), endpoint("10.0.0.2", "proc"))], is_local
    )
    assert has_local
    assert backends == {
        8500: [("10.0.0.2", 9500), ("10.0.0.3", 9500)],
        8501: [("10.0.0.2", 9501), ("10.0.0.3", 9501)],
    }


def test_unready_and_remote_endpoints_are_not_backends() -> None:
    has_local, backends = local_backends(
        SERVICE,
        [slice_(endpoint("10.0.0.2", "proc", ready=False), endpoint("10.0.1.9", "kwok-cpu-0"))],
        is_local,
    )
    assert has_local  # an unready local pod still makes the service one this node balances
    assert backends == {8500: [], 8501: []}


def test_service_with_only_simulated_endpoints_is_not_local() -> None:
    has_local, _ = local_backends(SERVICE, [slice_(endpoint("10.0.1.9", "kwok-cpu-0"))], is_local)
    assert not has_local


def test_only_unclassed_or_own_class_load_balancers_are_managed() -> None:
    assert manages({"spec": {"type": "LoadBalancer"}})
    assert manages({"spec": {"type": "LoadBalancer", "loadBalancerClass": "tfsctl.dev/loopback"}})
    assert not manages({"spec": {"type": "LoadBalancer", "loadBalancerClass": "service.k8s.aws/nlb"}})
    assert not manages({"spec": {"type": "ClusterIP"}})
