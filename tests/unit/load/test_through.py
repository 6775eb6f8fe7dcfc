"""``verify-autoscaling --through service|ingress``: where the load enters, from fake API objects."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tfsctl.errors import InvalidInput, NotFound, Unavailable
from tfsctl.load import kube, through
from tfsctl.load.options import LoadSettings

OBJECTS = kube.ReleaseObjects(
    namespace="ns", deployment="tfs-tensorflow-serving", selector={}, hpa="h", min_replicas=1,
    max_replicas=3, service="tfs-tensorflow-serving", rest_url="http://10.0.0.9:8501",
    grpc_target="10.0.0.9:8500", rest_port=8501,
)  # fmt: skip


def ingress(
    name: str = "tfs-tensorflow-serving",
    host: str | None = "tfs.local",
    path: str = "/",
    port: int = 8501,
    tls_hosts: list[str] | None = None,
    ip: str | None = "172.31.79.10",
    hostname: str | None = None,
    class_name: str | None = "traefik",
) -> client.V1Ingress:
    backend = client.V1IngressBackend(
        service=client.V1IngressServiceBackend(
            name="tfs-tensorflow-serving", port=client.V1ServiceBackendPort(number=port)
        )
    )
    paths = [client.V1HTTPIngressPath(path=path, path_type="Prefix", backend=backend)]
    status = client.V1IngressStatus(
        load_balancer=client.V1IngressLoadBalancerStatus(
            ingress=[client.V1IngressLoadBalancerIngress(ip=ip, hostname=hostname)]
            if ip or hostname
            else None
        )
    )
    return client.V1Ingress(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1IngressSpec(
            ingress_class_name=class_name,
            rules=[client.V1IngressRule(host=host, http=client.V1HTTPIngressRuleValue(paths=paths))],
            tls=[client.V1IngressTLS(hosts=tls_hosts)] if tls_hosts else None,
        ),
        status=status,
    )


class FakeNetworking:
    def __init__(self, items: list[Any], classes: list[client.V1IngressClass] | None = None) -> None:
        self.items = items
        self.classes = classes or []
        self.selectors: list[str] = []

    def list_namespaced_ingress(self, namespace: str, label_selector: str, **_: Any) -> Any:
        self.selectors.append(label_selector)
        if isinstance(self.items, Exception):
            raise self.items
        return SimpleNamespace(items=self.items)

    def read_ingress_class(self, name: str, **_: Any) -> client.V1IngressClass:
        for ic in self.classes:
            if ic.metadata is not None and ic.metadata.name == name:
                return ic
        raise ApiException(status=404, reason="Not Found")

    def list_ingress_class(self, **_: Any) -> Any:
        return SimpleNamespace(items=self.classes)


def ingress_class(name: str, controller: str, default: bool = False) -> client.V1IngressClass:
    annotations = {kube.DEFAULT_CLASS_ANNOTATION: "true"} if default else None
    return client.V1IngressClass(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations),
        spec=client.V1IngressClassSpec(controller=controller),
    )


def view(networking: FakeNetworking) -> kube.ClusterView:
    v = object.__new__(kube.ClusterView)
    v.networking = networking
    return v


def request(
    where: str = "ingress", target: str | None = None, **settings: Any
) -> tuple[str, str | None, LoadSettings, str]:
    """The leading arguments of ``through.load_route``: through, target, settings, release."""
    return where, target, LoadSettings(host="x", **settings), "tfs"


class TestIngressRoute:
    def test_url_by_the_rule_host_connecting_to_the_status_ip(self) -> None:
        fake = FakeNetworking([ingress()])
        route = view(fake).ingress_route("tfs", OBJECTS)
        assert (route.url, route.resolve) == ("http://tfs.local", "tfs.local:80:172.31.79.10")
        assert fake.selectors == ["app.kubernetes.io/instance=tfs"]

    def test_a_path_is_kept_and_a_status_hostname_is_used(self) -> None:
        route = view(
            FakeNetworking([ingress(path="/serving/", ip=None, hostname="lb.example")])
        ).ingress_route("tfs", OBJECTS)
        assert (route.url, route.resolve) == ("http://tfs.local/serving", "tfs.local:80:lb.example")

    def test_a_tls_host_is_https_on_443(self) -> None:
        route = view(FakeNetworking([ingress(tls_hosts=["tfs.local"])])).ingress_route("tfs", OBJECTS)
        assert (route.url, route.port) == ("https://tfs.local", 443)

    def test_the_grpc_route_is_passed_over_for_the_rest_one(self) -> None:
        grpc = ingress(name="tfs-tensorflow-serving-grpc", host="grpc.local", port=8500)
        route = view(FakeNetworking([grpc, ingress()])).ingress_route("tfs", OBJECTS)
        assert route.name == "tfs-tensorflow-serving"

    def test_no_ingress_names_the_value_to_set(self) -> None:
        with pytest.raises(NotFound, match=r"^release tfs: no Ingress labelled .*set ingress.enabled=true"):
            view(FakeNetworking([])).ingress_route("tfs", OBJECTS)

    def test_no_rule_host_is_one_line(self) -> None:
        with pytest.raises(NotFound, match=r"Ingress ns/tfs-tensorflow-serving: no rule has a host"):
            view(FakeNetworking([ingress(host=None)])).ingress_route("tfs", OBJECTS)

    def test_a_wildcard_host_is_refused(self) -> None:
        with pytest.raises(InvalidInput, match=r"first rule host \*.local is a wildcard"):
            view(FakeNetworking([ingress(host="*.local")])).ingress_route("tfs", OBJECTS)

    def test_no_status_address_names_the_ingress_class_controller(self) -> None:
        fake = FakeNetworking([ingress(ip=None)], [ingress_class("traefik", "traefik.io/ingress-controller")])
        with pytest.raises(
            Unavailable,
            match=r"no status.loadBalancer address yet \(IngressClass traefik's controller "
            r"traefik.io/ingress-controller publishes it\); pass --resolve tfs.local:80:ADDRESS",
        ):
            view(fake).ingress_route("tfs", OBJECTS)

    def test_no_status_address_names_the_default_class_or_its_absence(self) -> None:
        fake = FakeNetworking(
            [ingress(ip=None, class_name=None)], [ingress_class("nginx", "k8s.io/nginx", True)]
        )
        with pytest.raises(Unavailable, match=r"the default IngressClass nginx's controller k8s.io/nginx"):
            view(fake).ingress_route("tfs", OBJECTS)
        with pytest.raises(Unavailable, match=r"no ingressClassName and no default IngressClass"):
            view(FakeNetworking([ingress(ip=None, class_name=None)])).ingress_route("tfs", OBJECTS)
        with pytest.raises(Unavailable, match=r"no IngressClass ghost exists"):
            view(FakeNetworking([ingress(ip=None, class_name="ghost")])).ingress_route("tfs", OBJECTS)

    def test_without_an_address_but_with_resolve_it_is_not_needed(self) -> None:
        route = view(FakeNetworking([ingress(ip=None)])).ingress_route("tfs", OBJECTS, need_address=False)
        assert route.address == ""

    def test_an_unreadable_ingress_list_is_one_line(self) -> None:
        fake = FakeNetworking(ApiException(status=403, reason="Forbidden"))  # type: ignore[arg-type]
        with pytest.raises(Unavailable, match=r"^namespace ns: cannot read ingresses \(Forbidden\)$"):
            view(fake).ingress_route("tfs", OBJECTS)


class TestLoadRoute:
    def test_ingress_gives_url_resolve_and_the_report_entries(self) -> None:
        host, resolve, route = through.load_route(*request(), view(FakeNetworking([ingress()])), OBJECTS)
        assert (host, resolve) == ("http://tfs.local", "tfs.local:80:172.31.79.10")
        assert route == {"through": "ingress", "ingress": "tfs-tensorflow-serving",
                         "resolve": "tfs.local:80:172.31.79.10"}  # fmt: skip

    def test_an_explicit_resolve_wins_over_the_status_address(self) -> None:
        req = request(resolve="tfs.local:80:10.1.1.1")
        host, resolve, _ = through.load_route(*req, view(FakeNetworking([ingress(ip=None)])), OBJECTS)
        assert (host, resolve) == ("http://tfs.local", "tfs.local:80:10.1.1.1")

    def test_an_explicit_resolve_for_another_host_is_refused(self) -> None:
        req = request(resolve="other.local:80:10.1.1.1")
        with pytest.raises(InvalidInput, match=r"does not name the host and port of 'http://tfs.local'"):
            through.load_route(*req, view(FakeNetworking([ingress()])), OBJECTS)

    def test_service_is_todays_behaviour_and_target_wins(self) -> None:
        fake = FakeNetworking([])
        assert through.load_route(*request("service"), view(fake), OBJECTS) == (
            "http://10.0.0.9:8501", "", {"through": "service", "resolve": ""},
        )  # fmt: skip
        host, _, _ = through.load_route(*request("service", target="http://a:1"), view(fake), OBJECTS)
        assert host == "http://a:1" and fake.selectors == []  # the Ingress is not read

    def test_service_without_an_address_asks_for_target(self) -> None:
        objects = kube.ReleaseObjects(**{**OBJECTS.__dict__, "rest_url": None})
        with pytest.raises(InvalidInput, match=r"no LoadBalancer ingress address yet; pass --target"):
            through.load_route(*request("service"), view(FakeNetworking([])), objects)


class TestCheckThrough:
    def test_ingress_with_target_conflicts(self) -> None:
        with pytest.raises(InvalidInput, match=r"^--through ingress and --target http://x conflict"):
            through.check_through("ingress", "http://x", "rest")

    def test_ingress_with_grpc_is_service_only(self) -> None:
        with pytest.raises(InvalidInput, match=r"REST only; --transport grpc goes through the Service"):
            through.check_through("ingress", None, "grpc")

    def test_an_unknown_through_is_refused_and_service_takes_anything(self) -> None:
        with pytest.raises(InvalidInput, match=r"^--through 'pod': expected one of service, ingress$"):
            through.check_through("pod", None, "rest")
        through.check_through("service", "http://x", "grpc")  # no error: today's flags
