"""Which add-ons a cluster's real nodes get (``ClusterSpec.addons``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsbed.cluster import addons
from tfsbed.cluster.node import config as nconfig
from tfsbed.cluster.node.runtime import NodeBinaries, RealNodes


def _nodes(names: tuple[str, ...] | None) -> RealNodes:
    bins = NodeBinaries(
        *(Path(f"/nonexistent/{b}") for b in ("kubelet", "kube-proxy", "kubectl", "coredns", "registry"))
    )
    return RealNodes(
        nconfig.plan(31900, 1),
        Path("/nonexistent/state"),
        pki_dir=Path("/nonexistent/pki"),
        apiserver_port=31901,
        admin_kubeconfig=Path("/nonexistent/kubeconfig"),
        binaries=bins,
        addon_names=names,
    )


def test_every_addon_by_default_in_install_order() -> None:
    assert addons.select(None) == addons.ADDONS
    assert _nodes(None).addons == addons.ADDONS


def test_none_at_all() -> None:
    assert _nodes(()).addons == []


def test_by_name_keeps_install_order() -> None:
    first = addons.ADDONS[0].name
    assert [a.name for a in addons.select((first,))] == [first]


def test_an_unknown_name_is_refused_naming_it_and_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown add-on ingress-nginx: the add-ons are .*metrics-pipeline"):
        addons.select(("ingress-nginx", addons.ADDONS[0].name))
