"""Does an HPA's ``sls.ingress.route`` selector name a route that the rendered Ingress produces? Pure.

ack-alibaba-cloud-metrics-adapter serves ``sls_ingress_qps`` per route as ingress-nginx logs it to SLS: the
upstream name ``<namespace>-<service>-<port>``, where the port is the backend's as the Ingress names it (the
number when set, else the port name). Source: kubernetes/ingress-nginx
internal/ingress/controller/util.go ``upstreamName``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ROUTE_LABEL = "sls.ingress.route"


def upstream_name(namespace: str, backend: Mapping[str, Any]) -> str:
    """``<namespace>-<service>-<port>`` for an Ingress ``backend`` (``{"service": {"name", "port"}}``)."""
    service = backend.get("service") or {}
    port = service.get("port") or {}
    if port.get("number"):
        return f"{namespace}-{service.get('name')}-{int(port['number'])}"
    if port.get("name"):
        return f"{namespace}-{service.get('name')}-{port['name']}"
    return f"{namespace}-INVALID"


def ingress_routes(docs: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every route the Ingresses in ``docs`` produce."""
    routes: set[str] = set()
    for doc in docs:
        if not doc or doc.get("kind") != "Ingress":
            continue
        namespace = (doc.get("metadata") or {}).get("namespace", "default")
        spec = doc.get("spec") or {}
        if spec.get("defaultBackend"):
            routes.add(upstream_name(namespace, spec["defaultBackend"]))
        for rule in spec.get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                routes.add(upstream_name(namespace, path.get("backend") or {}))
    return routes


def route_problems(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per HPA External metric whose ``sls.ingress.route`` no rendered Ingress produces."""
    docs = [d for d in docs if d]
    routes = ingress_routes(docs)
    out = []
    for doc in docs:
        if doc.get("kind") != "HorizontalPodAutoscaler":
            continue
        for metric in (doc.get("spec") or {}).get("metrics") or []:
            selector = ((metric.get("external") or {}).get("metric") or {}).get("selector") or {}
            route = (selector.get("matchLabels") or {}).get(ROUTE_LABEL)
            if route is not None and route not in routes:
                produced = ", ".join(sorted(routes)) or "none (no Ingress is rendered)"
                out.append(
                    f"autoscaling.externalMetrics: {ROUTE_LABEL} {route} is not a route of the chart's "
                    f"Ingress ({produced}), so the HPA never sees traffic: use autoscaling.slsIngressQps"
                )
    return out
