"""A small kubelet for process pods: the local cluster's ``tfsctl-process-0`` node.

The local cluster has no real kubelet and no container runtime. This agent
registers one Node and runs the pods bound to it as host processes, each in its
own network namespace with a pod IP reachable from the host, with volumes
materialised under a state directory, real probes, graceful deletion, kubelet
resource metrics, a loopback LoadBalancer for Services and a service VIP proxy with
/etc/hosts names so pods reach Services by DNS name.

Its kubelet endpoint (:mod:`.server`) serves what the API server proxies to a node:
``/metrics/resource``, ``/containerLogs/{ns}/{pod}/{container}`` (``pods/log``), and the
streaming endpoints of ``pods/portforward`` and ``pods/exec`` over WebSocket
(``v4.channel.k8s.io``, ``v4.base64.channel.k8s.io``; exec also the pre-v4
``channel.k8s.io`` ones), framing and channels in :mod:`.streaming`:

- ``/portForward/{ns}/{pod}?port=N[&port=M]``: port ``i`` on data channel ``2i`` and error
  channel ``2i+1`` (first message on each: the port, uint16 little-endian); one TCP
  connection to the pod IP per port; a refused dial is a text message on the error channel.
- ``/exec/{ns}/{pod}/{container}?command=..&input=1&output=1&error=1``: stdin/stdout/stderr
  on channels 0/1/2, the kubelet's ``metav1.Status`` on 3 at the end (``NonZeroExitCode``
  with the code as ``details.causes[0].message``), resize (4) ignored, no TTY. v4 cannot
  close stdin alone: send a known byte count (``head -c N | tar -x``).

The same endpoints answer ``Upgrade: SPDY/3.1`` (framing in :mod:`.spdy`), what kubectl's
exec (translated by the API server) and port-forward (tunnelled through it) reach a kubelet
with: exec negotiates ``v4.channel.k8s.io`` in ``X-Stream-Protocol-Version`` and runs on the
client's ``streamType`` error/stdin/stdout/stderr streams (stdin half-close is EOF for the
command; ``-t`` gets an InternalError Status saying to run without it); port-forward
(``portforward.k8s.io``) dials the pod once per error+data stream pair of one ``requestID``.

Pure decisions live in :mod:`.ipam`, :mod:`.probes`, :mod:`.podstatus`,
:mod:`.env` and :mod:`.metrics`; everything that touches the system or the API
is in the adapters (:mod:`.netns`, :mod:`.volumes`, :mod:`.runtime`,
:mod:`.node`, :mod:`.loadbalancer`, :mod:`.server`) wired together by
:class:`.agent.Agent`. Entry point: ``python -m tfsbed.cluster.agent``.
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
