"""templates/ingress.yaml: REST Ingress and the gRPC variant."""

from __future__ import annotations

import pytest

from support.chart_render import FULLNAME, find, render_chart

pytestmark = pytest.mark.chart

HOSTS = [{"host": "tfs.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}]


class TestIngress:
    def test_not_rendered_by_default(self) -> None:
        assert render_chart(None, show_only="ingress.yaml") == []

    def test_rest_ingress_routes_to_the_rest_port(self) -> None:
        values = {
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "hosts": HOSTS,
                "tls": [{"secretName": "tfs-tls", "hosts": ["tfs.example.com"]}],
                "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "8m"},
            }
        }
        ingress = find(render_chart(values, show_only="ingress.yaml"), "Ingress", FULLNAME)
        assert ingress["apiVersion"] == "networking.k8s.io/v1"
        assert ingress["spec"]["ingressClassName"] == "nginx"
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": FULLNAME, "port": {"number": 8501}}
        assert ingress["spec"]["tls"] == [{"hosts": ["tfs.example.com"], "secretName": "tfs-tls"}]
        assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "8m"

    def test_grpc_variant_routes_to_the_grpc_port_with_backend_protocol(self) -> None:
        values = {"ingress": {"className": "nginx", "grpc": {"enabled": True, "hosts": HOSTS}}}
        docs = render_chart(values, show_only="ingress.yaml")
        ingress = find(docs, "Ingress", f"{FULLNAME}-grpc")
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert backend["port"] == {"number": 8500}
        assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
        assert ingress["spec"]["ingressClassName"] == "nginx"
        assert len(docs) == 1

    def test_both_ingresses_can_coexist(self) -> None:
        values = {"ingress": {"enabled": True, "grpc": {"enabled": True}}}
        names = [d["metadata"]["name"] for d in render_chart(values, show_only="ingress.yaml")]
        assert names == [FULLNAME, f"{FULLNAME}-grpc"]
