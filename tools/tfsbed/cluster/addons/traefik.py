"""The Ingress controller: Traefik's Kubernetes Ingress provider in namespace ``traefik``.

Issue 14 asks for a maintained controller, built from its Go module, that serves the chart's
Ingress as written. The ACK guide uses ingress-nginx, whose Lua balancer
(``rootfs/etc/nginx/lua/balancer/chash.lua`` and siblings) requires ``resty.chash``,
``resty.roundrobin`` (lua-resty-balancer) and ``resty.cookie``; Debian 12 packages nginx's Lua
module with ``lua-resty-core`` and ``lua-resty-lrucache`` only (``apt-cache search lua-resty``).
Traefik is one Go binary (``toolchain.TOOLS["traefik"]``)
and names a route's backend ``{namespace}-{service}-{port}`` as the guide's route label does
(``provider.Normalize(ingress.Namespace + "-" + pa.Backend.Service.Name + "-" +
portString(pa.Backend.Service.Port))`` in ``pkg/provider/kubernetes/ingress/kubernetes.go``,
``loadConfigurationFromIngresses``).

What is set, and where it comes from:

- the IngressClass ``traefik`` with controller ``traefik.io/ingress-controller``
  (``traefikDefaultIngressClassController``; ``GetIngressClasses`` in ``ingress/client.go``
  keeps only classes of that controller), annotated as the cluster's default class, so the
  apiserver's DefaultIngressClass admission gives it to an Ingress that names none;
- the RBAC of Traefik's Ingress documentation
  (``docs/content/reference/routing-configuration/kubernetes/ingress.md``), plus ``nodes``:
  3.7's provider starts a Node informer unless ``disableClusterScopeResources``
  (``clientWrapper.WatchAll`` in ``ingress/client.go``), as Traefik's Helm chart grants;
- entry points as Traefik's Helm chart names them: ``web`` (container port 8000, published
  on the node's port 80 with ``hostPort``: the host reaches the node's address over the
  uplink bridge, as a user's client reaches a node of a cloud cluster), ``metrics`` (9100,
  Prometheus format, scraped through the ``prometheus.io/*`` pod annotations that
  :mod:`.prometheus` discovers) and ``traefik`` (8080, ``/ping`` for the probes);
- Traefik reaches a Service's endpoints itself (its own load balancer over the
  EndpointSlices, ``loadService``), so kube-proxy is not on the path;
- the Ingress status gets the node's address (``ingressEndpoint.ip``, ``Provider.updateIngressStatus``),
  so ``kubectl get ingress`` shows where to send requests;
- ``global.checkNewVersion`` (on by default, ``cmd/configuration.go``) and
  ``global.sendAnonymousUsage`` are off: the local cluster reaches nothing outside.

Placement forced by the bed, not a recommendation: the apiserver runs on the host and its
certificate names the host, not the ``kubernetes`` Service IP, so Traefik reads a kubeconfig
with the host's address and the certificate's name (as CoreDNS and prometheus-adapter do).
Its provider prefers the in-cluster config whenever ``KUBERNETES_SERVICE_HOST`` is set
(``Provider.newK8sClient`` in ``ingress/kubernetes.go``), so the container sets it empty
(a container's own ``env`` wins over the Service variables the kubelet adds). The Deployment
is ``Recreate``: with one node and a ``hostPort``, a surge pod could never be scheduled.

gRPC through Traefik needs h2c to the backend. The Ingress provider takes a backend's scheme
only from its Service's annotation ``traefik.ingress.kubernetes.io/service.serversscheme``
(``getProtocol`` in ``ingress/kubernetes.go``; ``appProtocol`` is not read), for every port of
that Service, and the chart's Service carries REST beside gRPC: gRPC is not routed here yet.
"""

from __future__ import annotations

import json
from typing import Any

from tfsbed.cluster.addons import Context, rolled_out
from tfsbed.cluster.addons.prometheus import APISERVER_TLS_NAME
from tfsbed.cluster.node import config as nconfig
from tfsbed.cluster.node import images
from tfsctl.errors import Unavailable

NAMESPACE = "traefik"
NAME = "traefik"
VERSION = "3.7.10"  # toolchain.TOOLS["traefik"]
IMAGE = f"docker.io/library/traefik:v{VERSION}"
INGRESS_CLASS = "traefik"
CONTROLLER = "traefik.io/ingress-controller"
# entry point -> container port, as Traefik's Helm chart names and numbers them
WEB_PORT = 8000
METRICS_PORT = 9100
TRAEFIK_PORT = 8080
# where the host reaches the web entry point: the node's address, this port
HOST_PORT = 80
METRICS_PATH = "/metrics"
# Traefik's Helm chart runs it as this user (no root, no capability: ports above 1024 inside)
USER = 65532
CONFIG_DIR = "/etc/traefik"


def args(node: nconfig.RealNode) -> list[str]:
    """Traefik's static configuration as command-line flags (see the module docstring)."""
    return [
        f"--entryPoints.web.address=:{WEB_PORT}/tcp",
        f"--entryPoints.metrics.address=:{METRICS_PORT}/tcp",
        f"--entryPoints.traefik.address=:{TRAEFIK_PORT}/tcp",
        "--ping=true",
        "--metrics.prometheus=true",
        "--metrics.prometheus.entryPoint=metrics",
        "--providers.kubernetesingress=true",
        f"--providers.kubernetesingress.ingressendpoint.ip={node.ip}",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--log.level=INFO",
        "--log.noColor=true",  # kubectl logs reads plain text
    ]


def _meta(name: str, namespace: str | None = NAMESPACE, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/name": NAME}, **extra}
    if namespace:
        meta["namespace"] = namespace
    return meta


def ingress_class() -> dict[str, Any]:
    """The IngressClass ``traefik``, the cluster's default."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": _meta(
            INGRESS_CLASS, None, annotations={"ingressclass.kubernetes.io/is-default-class": "true"}
        ),
        "spec": {"controller": CONTROLLER},
    }


def rbac() -> list[dict[str, Any]]:
    """ServiceAccount, ClusterRole and binding: what the Ingress provider watches and writes."""
    role = f"tfsctl:{NAME}"
    read = ["get", "list", "watch"]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(role, None),
            "rules": [
                {"apiGroups": [""], "resources": ["services", "secrets", "nodes"], "verbs": read},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
                {
                    "apiGroups": ["extensions", "networking.k8s.io"],
                    "resources": ["ingresses", "ingressclasses"],
                    "verbs": read,
                },
                {
                    "apiGroups": ["extensions", "networking.k8s.io"],
                    "resources": ["ingresses/status"],
                    "verbs": ["update"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(role, None),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}],
        },
    ]


def deployment(node: nconfig.RealNode) -> dict[str, Any]:
    """One Traefik pod on ``node``, its web entry point on the node's port 80."""
    labels = {"app.kubernetes.io/name": NAME}
    ping = {"httpGet": {"path": "/ping", "port": "traefik"}, "periodSeconds": 2}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(NAME),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # one node, one hostPort: see the module docstring
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(METRICS_PORT),
                        "prometheus.io/path": METRICS_PATH,
                    },
                },
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node.name},
                    "tolerations": [dict(nconfig.REAL_NODE_TOLERATION)],
                    "serviceAccountName": NAME,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": USER,
                        "runAsGroup": USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": NAME,
                            "image": IMAGE,
                            "args": args(node),
                            "env": [
                                {"name": "KUBECONFIG", "value": f"{CONFIG_DIR}/kubeconfig"},
                                {"name": "KUBERNETES_SERVICE_HOST", "value": ""},
                            ],
                            "ports": [
                                {
                                    "name": "web",
                                    "containerPort": WEB_PORT,
                                    "hostPort": HOST_PORT,
                                    "protocol": "TCP",
                                },
                                {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
                                {"name": "traefik", "containerPort": TRAEFIK_PORT, "protocol": "TCP"},
                            ],
                            "readinessProbe": ping,
                            "livenessProbe": {**ping, "periodSeconds": 10, "failureThreshold": 3},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "64Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                            "volumeMounts": [
                                {"name": "config", "mountPath": CONFIG_DIR},
                                {"name": "data", "mountPath": "/data"},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": NAME}},
                        {"name": "data", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def manifests(node: nconfig.RealNode, server: str) -> list[dict[str, Any]]:
    """Every object of the add-on, Traefik on ``node`` reaching the apiserver at ``server``."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        *rbac(),
        ingress_class(),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(NAME),
            "data": {
                "kubeconfig": json.dumps(nconfig.coredns_kubeconfig(server, APISERVER_TLS_NAME), indent=2)
            },
        },
        # in-cluster clients reach the web entry point by name as well (traefik.traefik.svc:80)
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(NAME),
            "spec": {
                "selector": {"app.kubernetes.io/name": NAME},
                "ports": [{"name": "web", "port": HOST_PORT, "targetPort": "web", "protocol": "TCP"}],
            },
        },
        deployment(node),
    ]


def entry_url(node: nconfig.RealNode) -> str:
    """Where the host sends Ingress traffic: the web entry point on the node's address."""
    return f"http://{node.ip}:{HOST_PORT}"


class Traefik:
    """Traefik as the cluster's Ingress controller (see the module docstring)."""

    name = "traefik"

    def recipes(self) -> list[images.Recipe]:
        from tfsbed import toolchain

        return [
            images.Recipe(
                IMAGE,
                # as the module's own Dockerfile lays it out: the binary at /traefik, the entrypoint
                (images.Entry("/traefik", toolchain.binary("traefik")),),
                entrypoint=("/traefik",),
                user=f"{USER}:{USER}",
                labels=images._labels(f"Traefik v{VERSION} built from its Go module, no web UI"),
            )
        ]

    def manifests(self, ctx: Context) -> list[dict[str, Any]]:
        if not ctx.plan.nodes:
            raise Unavailable("traefik: runs on a real node (`cluster up` with `--real-nodes` above 0)")
        return manifests(ctx.plan.nodes[0], ctx.server)

    def wait(self, ctx: Context, deadline: float) -> None:
        rolled_out(ctx, NAMESPACE, f"deployment/{NAME}", deadline, NAME)
        ctx.say(f"traefik: IngressClass {INGRESS_CLASS} (default) served at {entry_url(ctx.plan.nodes[0])}")
