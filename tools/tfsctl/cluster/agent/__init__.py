"""A small kubelet for process pods: the local cluster's ``tfsctl-process-0`` node.

The local cluster has no real kubelet and no container runtime. This agent
registers one Node and runs the pods bound to it as host processes, each in its
own network namespace with a pod IP reachable from the host, with volumes
materialised under a state directory, real probes, graceful deletion, kubelet
resource metrics, a loopback LoadBalancer for Services and a service VIP proxy with
/etc/hosts names so pods reach Services by DNS name.

Pure decisions live in :mod:`.ipam`, :mod:`.probes`, :mod:`.podstatus`,
:mod:`.env` and :mod:`.metrics`; everything that touches the system or the API
is in the adapters (:mod:`.netns`, :mod:`.volumes`, :mod:`.runtime`,
:mod:`.node`, :mod:`.loadbalancer`, :mod:`.server`) wired together by
:class:`.agent.Agent`. Entry point: ``python -m tfsctl.cluster.agent``.
"""

from __future__ import annotations

DEFAULT_NODE_NAME = "tfsctl-process-0"
DEFAULT_POD_CIDR = "10.244.100.0/24"
DEFAULT_LB_CIDR = "127.0.100.0/24"
DEFAULT_METRICS_PORT = 10350
BRIDGE = "tfsbr0"
NODE_TYPE_LABEL = "node.tfsctl.dev/type"
COMPONENT = "tfsctl-process-agent"
# Every process node is tainted so pods written for real clusters (which run the real
# tensorflow_model_server image) never land on it; workloads meant for it tolerate this.
PROCESS_TAINT = {"key": "node.tfsctl.dev/process", "value": "true", "effect": "NoSchedule"}
PROCESS_TOLERATION = {
    "key": "node.tfsctl.dev/process",
    "operator": "Equal",
    "value": "true",
    "effect": "NoSchedule",
}
