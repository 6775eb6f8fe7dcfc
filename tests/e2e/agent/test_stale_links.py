"""A restarted agent detaches what a killed one left on its bridge (real iproute2, no cluster)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tfsbed.cluster.agent.netns import Network

pytestmark = pytest.mark.e2e

BRIDGE = "tfsstale0"


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15)


@pytest.fixture()
def network() -> Iterator[Network]:
    Network.check_permitted()
    net = Network(BRIDGE, "10.244.199.0/28")
    net.ensure_bridge()
    try:
        yield net
    finally:
        ip("link", "delete", "vtfsstaletst")
        ip("netns", "delete", "tfsp-staletest")
        ip("link", "delete", BRIDGE)


def test_interfaces_left_on_the_bridge_by_a_killed_agent_are_detached(network: Network) -> None:
    # What a SIGKILLed agent leaves: a pod namespace whose veth still sits on the bridge with its IP.
    assert ip("netns", "add", "tfsp-staletest").returncode == 0
    assert ip("link", "add", "vtfsstaletst", "type", "veth", "peer", "name", "ptfsstaletst").returncode == 0
    assert ip("link", "set", "ptfsstaletst", "netns", "tfsp-staletest").returncode == 0
    assert ip("link", "set", "vtfsstaletst", "master", BRIDGE, "up").returncode == 0

    assert network.detach_stale_links() == ["vtfsstaletst"]

    assert ip("-o", "link", "show", "master", BRIDGE).stdout.strip() == ""
    assert network.detach_stale_links() == []
