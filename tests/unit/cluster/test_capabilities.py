"""Capability checks: an external cluster skips naming what it lacks; the local one fails with the fix."""

from __future__ import annotations

import pytest

from support.cluster_capabilities import (
    SKIP_PREFIX,
    Capabilities,
    infer_node_type,
    require_kwok_usage,
    require_loadbalancer,
    require_node_type,
    require_real_node,
)

EVERYTHING = Capabilities(
    labelled_types=frozenset({"cpu", "gpu", "eci", "real"}),
    ready_types=frozenset({"cpu", "gpu", "eci", "real"}),
    real_nodes=("tfsctl-node-0",),
    loadbalancer=True,
    kwok_nodes=True,
    usage_crds=True,
    metrics_api=True,
)
KIND = Capabilities(node_types={"kind-control-plane": "cpu"}, ready_types=frozenset({"cpu"}))


@pytest.mark.parametrize("local", [True, False])
def test_present_capabilities_neither_skip_nor_fail(local: bool) -> None:
    assert require_real_node(EVERYTHING, local) == "tfsctl-node-0"
    require_loadbalancer(EVERYTHING, local)
    require_kwok_usage(EVERYTHING, local)
    for kind in ("cpu", "gpu", "eci", "real"):
        require_node_type(EVERYTHING, local, kind, labelled=True)


def test_external_cluster_without_a_real_node_or_metallb_skips_naming_it() -> None:
    with pytest.raises(pytest.skip.Exception, match=rf"{SKIP_PREFIX} a Ready real node"):
        require_real_node(KIND, local=False)
    with pytest.raises(pytest.skip.Exception, match=rf"{SKIP_PREFIX} a LoadBalancer the host reaches"):
        require_loadbalancer(KIND, local=False)


def test_local_cluster_without_a_real_node_fails_with_how_to_start_it() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"--real-nodes. must not be 0"):
        require_real_node(KIND, local=True)
    with pytest.raises(pytest.fail.Exception, match=r"installs the metallb add-on"):
        require_loadbalancer(KIND, local=True)


def test_missing_usage_emulation_names_each_missing_part() -> None:
    no_metrics = Capabilities(kwok_nodes=True, usage_crds=True, metrics_api=False)
    with pytest.raises(pytest.skip.Exception, match=r"metrics.k8s.io") as err:
        require_kwok_usage(no_metrics, local=False)
    assert "kwok-simulated nodes" not in str(err.value)
    with pytest.raises(pytest.fail.Exception, match=r"tfsctl cluster down && tfsctl cluster up"):
        require_kwok_usage(KIND, local=True)


def test_unlabelled_nodes_serve_cpu_workloads_but_not_node_selectors_or_gpus() -> None:
    require_node_type(KIND, False, "cpu")
    with pytest.raises(pytest.skip.Exception, match=r"labelled node.tfsctl.dev/type=cpu"):
        require_node_type(KIND, False, "cpu", labelled=True)
    with pytest.raises(pytest.skip.Exception, match=r"nvidia.com/gpu"):
        require_node_type(KIND, False, "gpu")
    with pytest.raises(pytest.skip.Exception, match=r"the local cluster's real node"):
        require_node_type(KIND, False, "real")


def test_node_type_comes_from_the_label_else_from_cloud_labels_and_gpu_allocatable() -> None:
    assert infer_node_type({"node.tfsctl.dev/type": "real"}, {}) == "real"
    assert infer_node_type({"type": "virtual-kubelet"}, {}) == "eci"
    assert infer_node_type({}, {"nvidia.com/gpu": "1"}) == "gpu"
    assert infer_node_type({"kubernetes.io/hostname": "kind-worker"}, {"cpu": "8"}) == "cpu"
