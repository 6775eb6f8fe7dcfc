"""Cluster adapter for ``verify-autoscaling``: find the release, watch its HPA and Deployment, count per pod.

Takes a ``kubernetes.client.ApiClient`` in the constructor. Watches use the
Kubernetes watch API with a server-side ``timeout_seconds`` and are re-opened
until ``stop()``; every call is bounded. Under Locust's gevent monkey-patching
the blocking reads here yield to the load greenlets.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tfsctl import kubestate
from tfsctl.errors import InvalidInput, NotFound, ReleaseNotFound, ToolkitError, Unavailable
from tfsctl.load.evaluate import HpaPoint, ReadyPoint
from tfsctl.load.metrics import MetricSpec, current_values, selector_string, specs

log = logging.getLogger(__name__)

INSTANCE_LABEL = kubestate.INSTANCE_LABEL
COMPONENT_LABEL = kubestate.COMPONENT_LABEL
DEFAULT_METRICS_PATH = "/monitoring/prometheus/metrics"
WATCH_SECONDS = 30


@dataclass(frozen=True)
class ReleaseObjects:
    """What verify-autoscaling needs to know about a release."""

    namespace: str
    deployment: str
    selector: dict[str, str]
    hpa: str
    min_replicas: int
    max_replicas: int
    service: str
    rest_url: str | None  # from the LoadBalancer ingress, None when it has none
    grpc_target: str | None
    rest_port_name: str = "rest"
    metrics: tuple[MetricSpec, ...] = ()  # the HPA's spec.metrics
    pod_selector: str = ""  # the Deployment's selector as the HPA sends it (labels.Selector.String())
    replicas: int = 0  # the Deployment's current spec.replicas (what the HPA divides per-pod targets by)
    rest_port: int = 8501  # the Service's rest port (the Ingress backend)


@dataclass(frozen=True)
class IngressRoute:
    """How load reaches the release through its Ingress: the URL by host name, and where to connect."""

    name: str  # the Ingress
    url: str  # http(s)://<first rule host><path>
    host: str
    port: int  # 80, or 443 when spec.tls covers the host
    address: str  # status.loadBalancer.ingress[0] ip or hostname

    @property
    def resolve(self) -> str:
        """The ``--resolve HOST:PORT:ADDRESS`` entry that connects to the address by the host name."""
        return f"{self.host}:{self.port}:{self.address}"


DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"


def hpa_point(hpa: Any, t: float) -> HpaPoint:
    status = hpa.status
    return HpaPoint(
        t=round(t, 3),
        current=int(status.current_replicas or 0) if status else 0,
        desired=int(status.desired_replicas or 0) if status else 0,
        min_replicas=int(hpa.spec.min_replicas or 1),
        max_replicas=int(hpa.spec.max_replicas),
        metrics=current_values(hpa),
    )


def ready_point(deployment: Any, t: float) -> ReadyPoint:
    status = deployment.status
    return ReadyPoint(
        t=round(t, 3),
        ready=int(status.ready_replicas or 0) if status else 0,
        replicas=int(deployment.spec.replicas or 0),
    )


_COUNT = re.compile(r"^:tensorflow:serving:request_count\{([^}]*)\}\s+([0-9.eE+]+)", re.M)


def parse_request_counts(text: str, model: str) -> int:
    """Sum of TF Serving's ``:tensorflow:serving:request_count`` for ``model`` (all statuses)."""
    total = 0.0
    for labels, value in _COUNT.findall(text):
        if f'model_name="{model}"' in labels:
            total += float(value)
    return int(total)


class ClusterView:
    """Reads and watches the objects of one release."""

    def __init__(self, api: Any) -> None:
        from kubernetes import client

        self.api = api
        # typed as Any: the generated models make every field Optional, the objects read here are complete
        self.apps: Any = client.AppsV1Api(api)
        self.core: Any = client.CoreV1Api(api)
        self.autoscaling: Any = client.AutoscalingV2Api(api)
        self.networking: Any = client.NetworkingV1Api(api)
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True

    # ------------------------------------------------------------------ discovery
    def resolve(self, release: str, namespace: str) -> ReleaseObjects:
        from kubernetes.client.exceptions import ApiException

        selector = f"{INSTANCE_LABEL}={release}"
        try:
            deployments = self.apps.list_namespaced_deployment(
                namespace, label_selector=selector, _request_timeout=20
            )
            hpas = self.autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace, _request_timeout=20)
            services = self.core.list_namespaced_service(
                namespace, label_selector=selector, _request_timeout=20
            )
        except ApiException as exc:
            raise Unavailable(
                f"namespace {namespace}: cannot read deployments/HPAs/services ({exc.reason})"
            ) from exc
        except OSError as exc:
            raise Unavailable(f"cannot reach the cluster: {exc}") from exc
        servers = [d for d in deployments.items if (d.metadata.labels or {}).get(COMPONENT_LABEL) == "server"]
        candidates = servers or deployments.items
        if not candidates:
            raise ReleaseNotFound(
                f"release {release}: no Deployment labelled {selector} in namespace {namespace}"
            )
        deployment = candidates[0]
        name = deployment.metadata.name
        hpa = next(
            (
                h
                for h in hpas.items
                if h.spec.scale_target_ref.kind == "Deployment" and h.spec.scale_target_ref.name == name
            ),
            None,
        )
        if hpa is None:
            raise NotFound(
                f"release {release}: no HorizontalPodAutoscaler targets Deployment {name} in namespace "
                f"{namespace} (set autoscaling.enabled=true)"
            )
        service = next(
            (s for s in services.items if any(p.name == "rest" for p in s.spec.ports or [])),
            None,
        )
        if service is None:
            raise NotFound(f"release {release}: no Service with a port named rest in namespace {namespace}")
        ports = {p.name: p.port for p in service.spec.ports or []}
        ingress = (
            (service.status.load_balancer.ingress or [])
            if service.status and service.status.load_balancer
            else []
        )
        address = (ingress[0].ip or ingress[0].hostname) if ingress else None
        return ReleaseObjects(
            namespace=namespace,
            deployment=name,
            selector=dict(deployment.spec.selector.match_labels or {}),
            hpa=hpa.metadata.name,
            min_replicas=int(hpa.spec.min_replicas or 1),
            max_replicas=int(hpa.spec.max_replicas),
            service=service.metadata.name,
            rest_url=f"http://{address}:{ports['rest']}" if address else None,
            grpc_target=f"{address}:{ports['grpc']}" if address and "grpc" in ports else None,
            metrics=specs(hpa),
            pod_selector=selector_string(deployment.spec.selector),
            replicas=int(deployment.spec.replicas or 0),
            rest_port=int(ports["rest"]),
        )

    def ingress_route(self, release: str, objects: ReleaseObjects, need_address: bool = True) -> IngressRoute:
        """The release's REST Ingress (label instance=<release>, backend the release's Service):
        its first rule host and path, and the address its controller published in the status.

        ``need_address=False`` (an explicit ``--resolve``) leaves ``address`` empty when the status has none.
        """
        from kubernetes.client.exceptions import ApiException

        namespace = objects.namespace
        selector = f"{INSTANCE_LABEL}={release}"
        try:
            items = self.networking.list_namespaced_ingress(
                namespace, label_selector=selector, _request_timeout=20
            ).items
        except ApiException as exc:
            raise Unavailable(f"namespace {namespace}: cannot read ingresses ({exc.reason})") from exc
        except OSError as exc:
            raise Unavailable(f"cannot reach the cluster: {exc}") from exc

        def serves_rest(ing: Any) -> bool:
            for rule in ing.spec.rules or []:
                for path in (rule.http.paths if rule.http else None) or []:
                    svc = path.backend.service if path.backend else None
                    if svc is None or svc.name != objects.service:
                        continue
                    port = svc.port
                    if port and (port.name == objects.rest_port_name or port.number == objects.rest_port):
                        return True
            return False

        ingress = next((i for i in items if serves_rest(i)), None)
        if ingress is None:
            raise NotFound(
                f"release {release}: no Ingress labelled {selector} routes to Service {objects.service} port "
                f"{objects.rest_port} in namespace {namespace} "
                "(set ingress.enabled=true, or use --through service)"
            )
        name = ingress.metadata.name
        rule = next((r for r in ingress.spec.rules or [] if r.host), None)
        if rule is None:
            raise NotFound(
                f"Ingress {namespace}/{name}: no rule has a host (set ingress.hosts[0].host), "
                "so there is no URL to load it by; or use --through service"
            )
        host = str(rule.host).lower()
        if host.startswith("*"):
            raise InvalidInput(
                f"Ingress {namespace}/{name}: the first rule host {host} is a wildcard, not a URL; "
                "use --through service with --target http://NAME --resolve NAME:80:ADDRESS"
            )
        paths = (rule.http.paths if rule.http else None) or []
        path = str(paths[0].path or "/") if paths else "/"
        tls = any(host in (t.hosts or []) for t in ingress.spec.tls or [])
        scheme, port = ("https", 443) if tls else ("http", 80)
        url = f"{scheme}://{host}{path.rstrip('/')}"
        lb = ingress.status.load_balancer if ingress.status else None
        entries = (lb.ingress or []) if lb else []
        address = str(entries[0].ip or entries[0].hostname or "") if entries else ""
        if not address and need_address:
            raise Unavailable(
                f"Ingress {namespace}/{name} has no status.loadBalancer address yet "
                f"({self._controller(ingress)} publishes it); pass --resolve {host}:{port}:ADDRESS"
            )
        return IngressRoute(name=name, url=url, host=host, port=port, address=address)

    def _controller(self, ingress: Any) -> str:
        """Who serves ``ingress`` (its IngressClass's controller), for the line on an empty status."""
        from kubernetes.client.exceptions import ApiException

        class_name = ingress.spec.ingress_class_name
        try:
            if class_name:
                spec = self.networking.read_ingress_class(class_name, _request_timeout=10).spec
                return f"IngressClass {class_name}'s controller {spec.controller}"
            for ic in self.networking.list_ingress_class(_request_timeout=10).items:
                if (ic.metadata.annotations or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
                    return f"the default IngressClass {ic.metadata.name}'s controller {ic.spec.controller}"
        except ApiException as exc:
            if class_name and exc.status == 404:
                return f"no IngressClass {class_name} exists, so no controller"
            return f"IngressClass {class_name or '(default)'} unreadable: {exc.reason}"
        except OSError as exc:
            return f"IngressClass unreadable: {exc}"
        return "no ingressClassName and no default IngressClass, so no controller"

    def current(self, objects: ReleaseObjects, t: float) -> tuple[HpaPoint, ReadyPoint]:
        hpa = self.autoscaling.read_namespaced_horizontal_pod_autoscaler(
            objects.hpa, objects.namespace, _request_timeout=20
        )
        deployment = self.apps.read_namespaced_deployment(
            objects.deployment, objects.namespace, _request_timeout=20
        )
        return hpa_point(hpa, t), ready_point(deployment, t)

    # ------------------------------------------------------------------ watches
    def _watch(
        self, list_fn: Callable[..., Any], namespace: str, name: str, on_object: Callable[[Any], None]
    ) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        resource_version: str | None = None
        while not self._stopped:
            w = watch.Watch()
            try:
                kwargs: dict[str, Any] = {
                    "field_selector": f"metadata.name={name}",
                    "timeout_seconds": WATCH_SECONDS,
                    "_request_timeout": WATCH_SECONDS + 10,
                }
                if resource_version:
                    kwargs["resource_version"] = resource_version
                for event in w.stream(list_fn, namespace, **kwargs):
                    obj = event["object"]
                    resource_version = obj.metadata.resource_version
                    on_object(obj)
                    if self._stopped:
                        break
            except ApiException as exc:
                if exc.status == 410:  # history compacted: start over from a fresh list
                    resource_version = None
                    continue
                log.warning("watch %s/%s: %s; retrying", namespace, name, exc.reason)
                time.sleep(1)
            except (OSError, ToolkitError) as exc:
                log.warning("watch %s/%s: %s; retrying", namespace, name, exc)
                time.sleep(1)
            finally:
                w.stop()

    def watch_hpa(
        self, objects: ReleaseObjects, clock: Callable[[], float], record: Callable[[HpaPoint], None]
    ) -> None:
        self._watch(
            self.autoscaling.list_namespaced_horizontal_pod_autoscaler,
            objects.namespace,
            objects.hpa,
            lambda obj: record(hpa_point(obj, clock())),
        )

    def watch_deployment(
        self, objects: ReleaseObjects, clock: Callable[[], float], record: Callable[[ReadyPoint], None]
    ) -> None:
        self._watch(
            self.apps.list_namespaced_deployment,
            objects.namespace,
            objects.deployment,
            lambda obj: record(ready_point(obj, clock())),
        )

    # ------------------------------------------------------------------ per-pod counts
    def pod_counts(self, objects: ReleaseObjects, model: str) -> tuple[dict[str, int], str]:
        """Request counts of ``model`` on each ready pod, and a note on pods that could not be read."""
        selector = ",".join(f"{k}={v}" for k, v in objects.selector.items())
        pods = self.core.list_namespaced_pod(objects.namespace, label_selector=selector, _request_timeout=10)
        counts: dict[str, int] = {}
        notes: list[str] = []
        for pod in pods.items:
            if not kubestate.serves(pod):
                continue
            port = next(
                (
                    p.container_port
                    for c in pod.spec.containers
                    for p in c.ports or []
                    if p.name == objects.rest_port_name
                ),
                8501,
            )
            path = (pod.metadata.annotations or {}).get("prometheus.io/path", DEFAULT_METRICS_PATH)
            # through the API server's pod proxy: works from outside the cluster network too
            where = f"pod {pod.metadata.name}:{port}{path}"
            try:
                status, text = self._proxy_get(objects.namespace, pod.metadata.name, port, path)
            except Exception as exc:
                notes.append(f"GET {where}: {exc}")
                continue
            if status == 200:
                counts[pod.metadata.name] = parse_request_counts(text, model)
            else:
                notes.append(f"GET {where}: HTTP {status} (enable server.monitoring in the chart)")
        return counts, "; ".join(notes)

    def _proxy_get(self, namespace: str, pod: str, port: int, path: str) -> tuple[int, str]:
        """GET ``path`` on ``pod:port`` via ``pods/proxy``: (HTTP status, body)."""
        method, url, headers, _body, _post = self.api.param_serialize(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy{path}",
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(method, url, header_params=headers, _request_timeout=5)
        return int(response.status), response.read().decode(errors="replace")
