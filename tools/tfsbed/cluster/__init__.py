"""The local Kubernetes cluster the chart is tested against.

A pinned upstream control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, metrics-server) started by ``kwokctl --runtime binary`` from
locally built binaries, with simulated nodes of several kinds:

- ``kwok`` nodes (CPU, GPU, an ACK-like ECI virtual node) whose pods only exist
  in the API, with CPU/memory usage emulated by kwok's ResourceUsage CRDs;
- real nodes (upstream containerd + kubelet + kube-proxy, :mod:`.node`), where
  pods run in containers from images built here, as on a user's node.

:mod:`.spec` holds the pure description (nodes, ports, the kwokctl
configuration); :mod:`.local` is the adapter that starts, inspects and stops it.
This package stays import-light: nothing here imports the Kubernetes client at
module load.
"""

from __future__ import annotations

CLUSTER_NAME = "tfsctl"
NODE_TYPE_LABEL = "node.tfsctl.dev/type"
