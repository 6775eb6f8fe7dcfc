"""Real worker nodes of the local cluster: upstream containerd, kubelet and kube-proxy.

Beside the kwok nodes (``tfsctl cluster up --real-nodes N``, one by default).
:mod:`.config` is the pure description (addresses, every configuration file),
:mod:`.pki` issues node credentials from the cluster CA, :mod:`.images` builds the
images nodes pull (no registry is reachable here) and :mod:`.runtime` starts,
inspects and stops the processes.
"""

from __future__ import annotations
