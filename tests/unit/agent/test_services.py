"""Service VIPs and the hosts files of process-node pods (pure parts, plus in-place writes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsbed.cluster.agent import PROCESS_TAINT
from tfsbed.cluster.agent.ipam import AddressPool
from tfsbed.cluster.agent.node import with_process_taint
from tfsbed.cluster.agent.services import (
    render_hosts,
    render_resolv_conf,
    reserved_pod_addresses,
    service_cidr_of,
    service_names,
    wants_vip,
    write_in_place,
)


def _service(**spec: object) -> dict[str, object]:
    return {"metadata": {"namespace": "ns", "name": "web"}, "spec": spec}


class TestVipSlice:
    def test_is_the_last_eighth_of_the_pod_cidr(self) -> None:
        assert service_cidr_of("10.244.100.0/24") == "10.244.100.224/27"
        assert service_cidr_of("10.244.150.0/24") == "10.244.150.224/27"

    def test_pod_ipam_never_hands_out_the_gateway_or_a_vip(self) -> None:
        reserved = reserved_pod_addresses("10.244.100.0/24", "10.244.100.224/27")
        pool = AddressPool("10.244.100.0/24", reserved)
        got = {pool.allocate(str(i)) for i in range(222)}
        assert "10.244.100.1" not in got
        assert max(int(a.rsplit(".", 1)[1]) for a in got) == 223
        with pytest.raises(Exception, match="no free address"):
            pool.allocate("one-too-many")

    def test_vips_come_from_the_slice_without_network_and_broadcast(self) -> None:
        pool = AddressPool("10.244.100.224/27")
        vips = [pool.allocate(str(i)) for i in range(30)]
        assert vips[0] == "10.244.100.225" and vips[-1] == "10.244.100.254"

    def test_slice_outside_the_pod_cidr_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not inside the pod CIDR"):
            reserved_pod_addresses("10.244.100.0/24", "10.244.101.224/27")


class TestWhichServicesGetAVip:
    def test_cluster_ip_and_load_balancer_services_with_tcp_ports(self) -> None:
        assert wants_vip(_service(type="ClusterIP", ports=[{"port": 80}]))
        assert wants_vip(_service(type="LoadBalancer", ports=[{"port": 80, "protocol": "TCP"}]))

    def test_not_headless_external_name_udp_only_or_portless(self) -> None:
        assert not wants_vip(_service(clusterIP="None", ports=[{"port": 80}]))
        assert not wants_vip(_service(type="ExternalName", externalName="example.org"))
        assert not wants_vip(_service(ports=[{"port": 53, "protocol": "UDP"}]))
        assert not wants_vip(_service())


class TestHostsFile:
    VIPS = {("ns", "web"): "10.244.100.225", ("other", "db"): "10.244.100.226"}

    def test_maps_every_name_form_of_a_service_in_the_pods_namespace(self) -> None:
        text = render_hosts("ns", "client", "10.244.100.7", self.VIPS)
        assert "10.244.100.225\tweb web.ns web.ns.svc web.ns.svc.cluster.local\n" in text

    def test_other_namespaces_only_by_qualified_names(self) -> None:
        text = render_hosts("ns", "client", "10.244.100.7", self.VIPS)
        assert "10.244.100.226\tdb.other db.other.svc db.other.svc.cluster.local\n" in text
        assert service_names("ns", ("other", "db"))[0] == "db.other"

    def test_has_localhost_and_the_pods_own_hostname(self) -> None:
        lines = render_hosts("ns", "client", "10.244.100.7", {}).splitlines()
        assert "127.0.0.1\tlocalhost" in lines
        assert "10.244.100.7\tclient" in lines

    def test_is_stable_whatever_the_order_of_services(self) -> None:
        reordered = dict(reversed(list(self.VIPS.items())))
        assert render_hosts("ns", "c", None, self.VIPS) == render_hosts("ns", "c", None, reordered)

    def test_resolver_only_asks_the_pods_own_loopback(self) -> None:
        text = render_resolv_conf("ns")
        assert [line for line in text.splitlines() if line.startswith("nameserver")] == [
            "nameserver 127.0.0.1"
        ]
        assert "search ns.svc.cluster.local" in text

    def test_rewrite_keeps_the_inode_so_bind_mounts_see_it(self, tmp_path: Path) -> None:
        path = tmp_path / "netns" / "hosts"
        assert write_in_place(path, "a\n")
        inode = path.stat().st_ino
        assert not write_in_place(path, "a\n")
        assert write_in_place(path, "b\n")
        assert path.stat().st_ino == inode and path.read_text() == "b\n"


class TestProcessTaint:
    def test_is_added_to_a_node_without_it_keeping_others(self) -> None:
        other = {"key": "example.com/x", "effect": "NoExecute"}
        assert with_process_taint([other]) == [other, PROCESS_TAINT]

    def test_leaves_a_node_that_has_it_alone(self) -> None:
        assert with_process_taint([dict(PROCESS_TAINT)]) is None

    def test_replaces_a_stale_value_of_the_same_key(self) -> None:
        stale = {**PROCESS_TAINT, "value": "false"}
        assert with_process_taint([stale]) == [PROCESS_TAINT]
