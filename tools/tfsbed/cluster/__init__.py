"""The local Kubernetes cluster the chart is tested against.

A pinned upstream control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, metrics-server) started by ``kwokctl --runtime binary`` from
locally built binaries, with simulated nodes of several kinds:

- ``kwok`` nodes (CPU, GPU, an ACK-like ECI virtual node) whose pods only exist
  in the API, with CPU/memory usage emulated by kwok's ResourceUsage CRDs;
- the ``agent`` node ``tfsctl-process-0`` run by :mod:`tfsbed.cluster.agent`,
  whose pods really run as local processes.

:mod:`.spec` holds the pure description (nodes, ports, the kwokctl
configuration); :mod:`.local` is the adapter that starts, inspects and stops it.
This package stays import-light: nothing here imports the Kubernetes client at
module load.
"""

from __future__ import annotations

CLUSTER_NAME = "tfsctl"
PROCESS_NODE_NAME = "tfsctl-process-0"
NODE_TYPE_LABEL = "node.tfsctl.dev/type"
