"""The metrics pipeline: Prometheus and prometheus-adapter in namespace ``monitoring``.

Prometheus (built from its Go module: Debian's package has no Kubernetes discovery) finds
its targets through Kubernetes service discovery (``role: pod``) and scrapes the pods
annotated ``prometheus.io/scrape: "true"`` at ``prometheus.io/port`` and
``prometheus.io/path``: the chart renders these when
``server.monitoring.enabled`` (TF Serving's ``/monitoring/prometheus/metrics``), and an
Ingress controller's pods carry them for its metrics port.

prometheus-adapter (built from ``sigs.k8s.io/prometheus-adapter``) serves two aggregated
APIs from those series:

- ``custom.metrics.k8s.io``: :data:`SERVING_RATE_METRIC`, TF Serving's requests per second
  per pod (``rate`` of ``:tensorflow:serving:request_count``, labelled by ``model_name`` and
  ``status`` in ``tensorflow_serving/servables/tensorflow/util.cc``, summed per pod);
- ``external.metrics.k8s.io``: :data:`INGRESS_RATE_METRIC`, requests per second per
  Ingress route from Traefik's ``traefik_service_requests_total``. Traefik names a route's
  backend ``{namespace}-{service}-{port}@kubernetes``; ``@`` is not allowed in a label
  selector, so Prometheus copies it without the provider suffix into a ``route`` label
  (:data:`ROUTE_LABEL`) that an HPA selects on. The name cannot be split back into
  namespace and service (both may contain ``-``), so the external metric is not
  namespaced: any namespace's HPA reads a route by its ``route`` label.

The kube-apiserver runs on the host, which routes pod ranges to the real nodes but not
ClusterIPs (kube-proxy's rules live in each node's network namespace). Its
``--enable-aggregator-routing`` (dial a Service's endpoints) would not do: it refuses
ExternalName Services, which is how kwokctl registers metrics-server (a host process) for
``metrics.k8s.io``. So the adapter runs in the first real node's network (``hostNetwork``)
and its Service is an ExternalName of that node's address, fixed by the cluster's plan: the
apiserver dials ``<node IP>:6443`` and verifies the serving certificate issued here from the
cluster CA against ``prometheus-adapter.monitoring.svc``, as it does for any APIService.
This placement is forced by a control plane outside the cluster network; the adapter, its
rules and the APIServices are as on any cluster.

Local settings, not recommendations: a 5 s scrape interval and a 30 s rate window, so
tests see a rate within seconds.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from tfsbed.cluster import NODE_TYPE_LABEL
from tfsbed.cluster.addons import Context, rolled_out
from tfsbed.cluster.node import config as nconfig
from tfsbed.cluster.node import images, pki
from tfsctl.errors import Timeout, Unavailable

NAMESPACE = "monitoring"
PROMETHEUS_VERSION = "3.16.0"  # module github.com/prometheus/prometheus v0.316.0 (toolchain.py)
PROMETHEUS_IMAGE = f"docker.io/prom/prometheus:v{PROMETHEUS_VERSION}"
PROMETHEUS_PORT = 9090
ADAPTER_VERSION = "0.12.0"
ADAPTER_IMAGE = f"registry.k8s.io/prometheus-adapter/prometheus-adapter:v{ADAPTER_VERSION}"
ADAPTER_PORT = 6443
PROMETHEUS = "prometheus"
ADAPTER = "prometheus-adapter"
PROMETHEUS_URL = f"http://{PROMETHEUS}.{NAMESPACE}.svc:{PROMETHEUS_PORT}/"

# local settings (see the module docstring)
SCRAPE_INTERVAL = "5s"
RATE_WINDOW = "30s"
RELIST_INTERVAL = "10s"

SERVING_REQUEST_COUNT = ":tensorflow:serving:request_count"
TRAEFIK_SERVICE_REQUESTS = "traefik_service_requests_total"
SERVING_RATE_METRIC = "tensorflow_serving_requests_per_second"
INGRESS_RATE_METRIC = "ingress_requests_per_second"
ROUTE_LABEL = "route"
API_SERVICES = ("v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io")

_REAL_NODE = {
    "nodeSelector": {NODE_TYPE_LABEL: "real"},
    "tolerations": [dict(nconfig.REAL_NODE_TOLERATION)],
}
_RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}}
_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


# -- configuration (pure) -----------------------------------------------------------------------


# The apiserver's certificate (kwokctl's) names the host, not the ``kubernetes`` Service IP, so
# pods reach it at ``Context.server`` and verify it as this name (as CoreDNS does, config.py).
APISERVER_TLS_NAME = "localhost"
_SA = "/var/run/secrets/kubernetes.io/serviceaccount"


def scrape_config(server: str) -> dict[str, Any]:
    """``prometheus.yml``: every pod annotated ``prometheus.io/scrape: "true"``, found by pod discovery.

    ``server`` is the apiserver as pods reach it (see :data:`APISERVER_TLS_NAME`).
    """
    ann = "__meta_kubernetes_pod_annotation_prometheus_io_"
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [
            {
                "job_name": "kubernetes-pods",
                "kubernetes_sd_configs": [
                    {
                        "role": "pod",
                        "api_server": server,
                        "tls_config": {"ca_file": f"{_SA}/ca.crt", "server_name": APISERVER_TLS_NAME},
                        "authorization": {"credentials_file": f"{_SA}/token"},
                    }
                ],
                # Prometheus 3 refuses a scrape whose Content-Type it does not know unless told
                # which format to assume; exporters answer text (TF Serving: `text/plain`)
                "fallback_scrape_protocol": "PrometheusText0.0.4",
                "relabel_configs": [
                    {"source_labels": [f"{ann}scrape"], "action": "keep", "regex": "true"},
                    # a pod that ended (Job, evicted) keeps its IP in discovery for a while
                    {
                        "source_labels": ["__meta_kubernetes_pod_phase"],
                        "action": "drop",
                        "regex": "Pending|Succeeded|Failed|Unknown",
                    },
                    {
                        "source_labels": [f"{ann}path"],
                        "action": "replace",
                        "regex": "(.+)",
                        "target_label": "__metrics_path__",
                    },
                    # one target per pod: every declared container port is rewritten to the annotated one
                    {
                        "source_labels": ["__address__", f"{ann}port"],
                        "action": "replace",
                        "regex": r"([^:]+)(?::\d+)?;(\d+)",
                        "replacement": "$1:$2",
                        "target_label": "__address__",
                    },
                    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                ],
                "metric_relabel_configs": [
                    {
                        "source_labels": ["__name__", "service"],
                        "action": "replace",
                        "regex": f"{TRAEFIK_SERVICE_REQUESTS};(.+)@kubernetes",
                        "replacement": "$1",
                        "target_label": ROUTE_LABEL,
                    }
                ],
            }
        ],
    }


def adapter_rules() -> dict[str, Any]:
    """prometheus-adapter's ``--config``: the custom (per pod) and external (per route) rates."""
    return {
        "rules": [
            {
                "seriesQuery": f'{SERVING_REQUEST_COUNT}{{namespace!="",pod!=""}}',
                "resources": {
                    "overrides": {
                        "namespace": {"resource": "namespace"},
                        "pod": {"resource": "pod"},
                    }
                },
                "name": {"matches": f"^{SERVING_REQUEST_COUNT}$", "as": SERVING_RATE_METRIC},
                "metricsQuery": (
                    f"sum by (<<.GroupBy>>) (rate(<<.Series>>{{<<.LabelMatchers>>}}[{RATE_WINDOW}]))"
                ),
            }
        ],
        "externalRules": [
            {
                "seriesQuery": f'{TRAEFIK_SERVICE_REQUESTS}{{{ROUTE_LABEL}!=""}}',
                "resources": {"namespaced": False},
                "name": {"matches": f"^{TRAEFIK_SERVICE_REQUESTS}$", "as": INGRESS_RATE_METRIC},
                "metricsQuery": (
                    f"sum by ({ROUTE_LABEL}) (rate(<<.Series>>{{<<.LabelMatchers>>}}[{RATE_WINDOW}]))"
                ),
            }
        ],
    }


def adapter_dns_names() -> tuple[str, ...]:
    """Names the apiserver may verify the adapter's certificate against (it uses ``<svc>.<ns>.svc``)."""
    base = f"{ADAPTER}.{NAMESPACE}"
    return (base, f"{base}.svc", f"{base}.svc.{nconfig.CLUSTER_DOMAIN}")


def _meta(name: str, app: str, namespace: str | None = NAMESPACE) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/name": app}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _binding(
    kind: str, name: str, role_kind: str, role: str, sa: str, ns: str | None = None
) -> dict[str, Any]:
    meta = _meta(name, sa, ns)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}],
    }


def prometheus_manifests(server: str) -> list[dict[str, Any]]:
    """ServiceAccount, RBAC for discovery, ConfigMap, Service and Deployment of Prometheus."""
    labels = {"app.kubernetes.io/name": PROMETHEUS}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(PROMETHEUS, PROMETHEUS)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta("tfsctl:prometheus", PROMETHEUS, None),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods", "services", "endpoints", "nodes"],
                    "verbs": ["get", "list", "watch"],
                },
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            ],
        },
        _binding("ClusterRoleBinding", "tfsctl:prometheus", "ClusterRole", "tfsctl:prometheus", PROMETHEUS),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(PROMETHEUS, PROMETHEUS),
            "data": {"prometheus.yml": json.dumps(scrape_config(server), indent=2)},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(PROMETHEUS, PROMETHEUS),
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": PROMETHEUS_PORT, "targetPort": "http"}],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(PROMETHEUS, PROMETHEUS),
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        **_REAL_NODE,
                        "serviceAccountName": PROMETHEUS,
                        "securityContext": {**_RESTRICTED_POD, "fsGroup": 65534},
                        "terminationGracePeriodSeconds": 5,
                        "containers": [
                            {
                                "name": PROMETHEUS,
                                "image": PROMETHEUS_IMAGE,
                                "args": [
                                    "--config.file=/etc/prometheus/prometheus.yml",
                                    "--storage.tsdb.path=/prometheus",
                                    "--storage.tsdb.retention.time=6h",
                                    f"--web.listen-address=:{PROMETHEUS_PORT}",
                                ],
                                "ports": [{"name": "http", "containerPort": PROMETHEUS_PORT}],
                                "readinessProbe": {
                                    "httpGet": {"path": "/-/ready", "port": "http"},
                                    "periodSeconds": 2,
                                },
                                "securityContext": _RESTRICTED_CONTAINER,
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "128Mi"},
                                    "limits": {"memory": "512Mi"},
                                },
                                "volumeMounts": [
                                    {"name": "config", "mountPath": "/etc/prometheus"},
                                    {"name": "data", "mountPath": "/prometheus"},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "config", "configMap": {"name": PROMETHEUS}},
                            {"name": "data", "emptyDir": {}},
                        ],
                    },
                },
            },
        },
    ]


def adapter_manifests(
    node: nconfig.RealNode, server: str, ca_cert_pem: bytes, serving: pki.Issued
) -> list[dict[str, Any]]:
    """prometheus-adapter on ``node``: RBAC, config, serving Secret, Service and the APIServices."""
    labels = {"app.kubernetes.io/name": ADAPTER}
    api_services = [
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": _meta(name, ADAPTER, None),
            "spec": {
                "service": {"name": ADAPTER, "namespace": NAMESPACE, "port": ADAPTER_PORT},
                "group": name.split(".", 1)[1],
                "version": "v1beta1",
                "caBundle": base64.b64encode(ca_cert_pem).decode(),
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        }
        for name in API_SERVICES
    ]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(ADAPTER, ADAPTER)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta("tfsctl:prometheus-adapter", ADAPTER, None),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["namespaces", "pods", "services", "nodes"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
        _binding(
            "ClusterRoleBinding",
            "tfsctl:prometheus-adapter",
            "ClusterRole",
            "tfsctl:prometheus-adapter",
            ADAPTER,
        ),
        # delegated authentication and authorization of the requests the apiserver proxies
        _binding(
            "ClusterRoleBinding",
            "tfsctl:prometheus-adapter:auth-delegator",
            "ClusterRole",
            "system:auth-delegator",
            ADAPTER,
        ),
        _binding(
            "RoleBinding",
            "tfsctl:prometheus-adapter:auth-reader",
            "Role",
            "extension-apiserver-authentication-reader",
            ADAPTER,
            "kube-system",
        ),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": "tfsctl:custom-metrics-reader",
                "labels": {
                    "app.kubernetes.io/name": ADAPTER,
                    "rbac.authorization.k8s.io/aggregate-to-admin": "true",
                    "rbac.authorization.k8s.io/aggregate-to-edit": "true",
                    "rbac.authorization.k8s.io/aggregate-to-view": "true",
                },
            },
            "rules": [
                {
                    "apiGroups": ["custom.metrics.k8s.io", "external.metrics.k8s.io"],
                    "resources": ["*"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(ADAPTER, ADAPTER),
            "data": {
                "config.yaml": json.dumps(adapter_rules(), indent=2),
                # its listers and delegated authn/authz, with the ServiceAccount token
                "kubeconfig": json.dumps(nconfig.coredns_kubeconfig(server, APISERVER_TLS_NAME), indent=2),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta(f"{ADAPTER}-serving", ADAPTER),
            "type": "kubernetes.io/tls",
            "data": {
                "tls.crt": base64.b64encode(serving.cert_pem).decode(),
                "tls.key": base64.b64encode(serving.key_pem).decode(),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(ADAPTER, ADAPTER),
            # the apiserver (on the host) dials the node's address: see the module docstring
            "spec": {
                "type": "ExternalName",
                "externalName": node.ip,
                "ports": [{"name": "https", "port": ADAPTER_PORT}],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(ADAPTER, ADAPTER),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeSelector": {"kubernetes.io/hostname": node.name},
                        "tolerations": _REAL_NODE["tolerations"],
                        "hostNetwork": True,
                        "dnsPolicy": "ClusterFirstWithHostNet",
                        "serviceAccountName": ADAPTER,
                        "securityContext": _RESTRICTED_POD,
                        "terminationGracePeriodSeconds": 5,
                        "containers": [
                            {
                                "name": ADAPTER,
                                "image": ADAPTER_IMAGE,
                                "args": [
                                    f"--secure-port={ADAPTER_PORT}",
                                    "--tls-cert-file=/var/run/serving-cert/tls.crt",
                                    "--tls-private-key-file=/var/run/serving-cert/tls.key",
                                    f"--prometheus-url={PROMETHEUS_URL}",
                                    f"--metrics-relist-interval={RELIST_INTERVAL}",
                                    "--config=/etc/adapter/config.yaml",
                                    "--lister-kubeconfig=/etc/adapter/kubeconfig",
                                    "--authentication-kubeconfig=/etc/adapter/kubeconfig",
                                    "--authorization-kubeconfig=/etc/adapter/kubeconfig",
                                    "--v=2",
                                ],
                                "ports": [{"name": "https", "containerPort": ADAPTER_PORT}],
                                "readinessProbe": {
                                    "httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"},
                                    "periodSeconds": 2,
                                },
                                "securityContext": _RESTRICTED_CONTAINER,
                                "resources": {
                                    "requests": {"cpu": "20m", "memory": "64Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                                "volumeMounts": [
                                    {"name": "config", "mountPath": "/etc/adapter"},
                                    {"name": "serving-cert", "mountPath": "/var/run/serving-cert"},
                                    {"name": "tmp", "mountPath": "/tmp"},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "config", "configMap": {"name": ADAPTER}},
                            {"name": "serving-cert", "secret": {"secretName": f"{ADAPTER}-serving"}},
                            {"name": "tmp", "emptyDir": {}},
                        ],
                    },
                },
            },
        },
        *api_services,
    ]


# -- the add-on -----------------------------------------------------------------------------------


class MetricsPipeline:
    """Prometheus and prometheus-adapter (see the module docstring)."""

    name = "metrics-pipeline"

    def recipes(self) -> list[images.Recipe]:
        from tfsbed import toolchain

        work = images.images_cache() / "files"
        prometheus = toolchain.binary("prometheus")
        adapter = toolchain.binary("prometheus-adapter")
        return [
            images.Recipe(
                PROMETHEUS_IMAGE,
                (images.Entry("/bin/prometheus", prometheus), *images.passwd_files(work)),
                entrypoint=("/bin/prometheus",),
                user="65534:65534",
                labels=images._labels(f"Prometheus {PROMETHEUS_VERSION} built from its Go module, no web UI"),
            ),
            images.Recipe(
                ADAPTER_IMAGE,
                (images.Entry("/adapter", adapter), *images.passwd_files(work)),
                entrypoint=("/adapter",),
                user="65534:65534",
                labels=images._labels(f"prometheus-adapter v{ADAPTER_VERSION} built from its Go module"),
            ),
        ]

    def manifests(self, ctx: Context) -> list[dict[str, Any]]:
        if not ctx.ca_cert or not ctx.ca_key:
            raise Unavailable("metrics-pipeline: the cluster CA is needed to issue the adapter's certificate")
        serving = pki.issue(
            ctx.ca_cert,
            ctx.ca_key,
            f"{ADAPTER}.{NAMESPACE}.svc",
            client=False,
            server_names=adapter_dns_names(),
        )
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        if not ctx.plan.nodes:
            raise Unavailable(
                "metrics-pipeline: runs on a real node (`cluster up` with `--real-nodes` above 0)"
            )
        node = ctx.plan.nodes[0]
        return [
            namespace,
            *prometheus_manifests(ctx.server),
            *adapter_manifests(node, ctx.server, ctx.ca_cert, serving),
        ]

    def wait(self, ctx: Context, deadline: float) -> None:
        for name in (PROMETHEUS, ADAPTER):
            rolled_out(ctx, NAMESPACE, f"deployment/{name}", deadline, name)
        pending = list(API_SERVICES)
        while pending:
            pending = [a for a in pending if not _available(ctx, a)]
            if not pending:
                break
            if time.monotonic() > deadline:
                raise Timeout(
                    f"APIService {', '.join(pending)} not Available in time: {_reason(ctx, pending[0])}"
                )
            time.sleep(1)
        ctx.say(f"metrics-pipeline: {', '.join(API_SERVICES)} Available")


def _conditions(ctx: Context, name: str) -> dict[str, dict[str, str]]:
    try:
        doc = json.loads(ctx.kubectl("get", "apiservice", name, "-o", "json"))
    except (Unavailable, ValueError):
        return {}
    return {c["type"]: c for c in doc.get("status", {}).get("conditions", [])}


def _available(ctx: Context, name: str) -> bool:
    return _conditions(ctx, name).get("Available", {}).get("status") == "True"


def _reason(ctx: Context, name: str) -> str:
    c = _conditions(ctx, name).get("Available", {})
    return f"{c.get('reason', 'no status')}: {c.get('message', '')}".strip(": ")
