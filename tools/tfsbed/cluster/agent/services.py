"""Services from inside process-node pods: a small kube-proxy plus /etc/hosts in place of cluster DNS.

The process node has no cluster DNS and no ClusterIP routing, so a pod that curls
``http://<svc>.<ns>.svc:8501`` would hang. Instead, every Service with TCP ports
and a ready-or-not endpoint on this node gets a **service VIP** from a reserved
slice at the top of the pod CIDR (``10.244.100.224/27`` for ``10.244.100.0/24``;
pod IPs are never allocated there). The VIP is added (``/32``) to the host side
of the pod bridge, so pods reach it on-link, and the agent proxies TCP on
``VIP:port`` to ready endpoints on this node with the load balancer's
:class:`~.loadbalancer.Listener`. ``ip netns exec`` bind-mounts
``/etc/netns/<netns>/hosts`` over ``/etc/hosts``: the agent writes there the
service names (``<svc>``, ``<svc>.<ns>``, ``<svc>.<ns>.svc``,
``<svc>.<ns>.svc.cluster.local`` for the pod's namespace, the qualified forms for
other namespaces), ``localhost`` and the pod's hostname, and rewrites it in place
(same inode, so running pods see it) when Services change. A ``resolv.conf`` that
names only the pod's own loopback keeps any other lookup from leaving the node.

Only 127.0.0.0/8 and the pod network itself are ever addressed.

Pure parts: :func:`service_cidr_of`, :func:`reserved_pod_addresses`,
:func:`wants_vip`, :func:`render_hosts`, :func:`render_resolv_conf`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .ipam import PersistentPool
from .loadbalancer import Backend, Listener, local_backends, reconcile_listeners

log = logging.getLogger(__name__)

CLUSTER_DOMAIN = "cluster.local"
NETNS_ETC = Path("/etc/netns")
ServiceKey = tuple[str, str]  # (namespace, name)


def service_cidr_of(pod_cidr: str) -> str:
    """The reserved VIP slice of ``pod_cidr``: its last eighth (``x.y.z.224/27`` of a /24) (pure)."""
    network = ipaddress.IPv4Network(pod_cidr)
    prefix = min(network.prefixlen + 3, 30)
    return str(list(network.subnets(new_prefix=prefix))[-1])


def reserved_pod_addresses(pod_cidr: str, service_cidr: str) -> tuple[str, ...]:
    """Addresses pod IPAM must never hand out: the gateway and the whole VIP slice (pure)."""
    network = ipaddress.IPv4Network(pod_cidr)
    vips = ipaddress.IPv4Network(service_cidr)
    if not vips.subnet_of(network):
        raise ValueError(f"service CIDR {service_cidr} is not inside the pod CIDR {pod_cidr}")
    return (str(next(network.hosts())), *(str(a) for a in vips))


def wants_vip(service: dict[str, Any]) -> bool:
    """A Service gets a VIP when it has TCP ports and is not headless (pure)."""
    spec = service.get("spec") or {}
    if spec.get("clusterIP") == "None" or spec.get("type") == "ExternalName":
        return False
    return any((p.get("protocol") or "TCP") == "TCP" for p in spec.get("ports") or [])


def service_names(namespace: str, service: ServiceKey, domain: str = CLUSTER_DOMAIN) -> list[str]:
    """The names a pod in ``namespace`` resolves to ``service`` (short forms only in its own namespace)."""
    svc_ns, name = service
    qualified = [f"{name}.{svc_ns}", f"{name}.{svc_ns}.svc", f"{name}.{svc_ns}.svc.{domain}"]
    return [name, *qualified] if svc_ns == namespace else qualified


def render_hosts(
    namespace: str,
    hostname: str,
    pod_ip: str | None,
    vips: dict[ServiceKey, str],
    domain: str = CLUSTER_DOMAIN,
) -> str:
    """The pod's ``/etc/hosts``: loopback, its own name, then every Service VIP (pure, sorted)."""
    lines = [
        "# Written by the tfsctl process node agent (services of this cluster; refreshed on change).",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    if pod_ip:
        lines.append(f"{pod_ip}\t{hostname}")
    own = sorted(k for k in vips if k[0] == namespace)
    others = sorted(k for k in vips if k[0] != namespace)
    for key in [*own, *others]:
        lines.append(f"{vips[key]}\t{' '.join(service_names(namespace, key, domain))}")
    return "\n".join(lines) + "\n"


def render_resolv_conf(namespace: str, domain: str = CLUSTER_DOMAIN) -> str:
    """A resolver that only asks the pod's own loopback: unknown names fail fast, nothing leaves (pure)."""
    return (
        "# Written by the tfsctl process node agent: names resolve from /etc/hosts only.\n"
        "nameserver 127.0.0.1\n"
        f"search {namespace}.svc.{domain} svc.{domain} {domain}\n"
        "options ndots:1 timeout:1 attempts:1\n"
    )


def write_in_place(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` keeping its inode (a bind mount of it stays valid); True if changed."""
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:  # O_TRUNC, same inode
        out.write(text)
    return True


def write_pod_etc(
    netns: str, namespace: str, hostname: str, pod_ip: str | None, vips: dict[ServiceKey, str]
) -> bool:
    """Write ``/etc/netns/<netns>/{hosts,resolv.conf}``; True when the hosts file changed."""
    etc = NETNS_ETC / netns
    write_in_place(etc / "resolv.conf", render_resolv_conf(namespace))
    return write_in_place(etc / "hosts", render_hosts(namespace, hostname, pod_ip, vips))


def remove_pod_etc(netns: str) -> None:
    etc = NETNS_ETC / netns
    for name in ("hosts", "resolv.conf"):
        with contextlib.suppress(OSError):
            (etc / name).unlink()
    with contextlib.suppress(OSError):
        etc.rmdir()


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15)


class ServiceProxy:
    """Service VIPs on the bridge, their listeners, and the pods' hosts files (thread: the LB loop)."""

    def __init__(
        self,
        bridge: str,
        service_cidr: str,
        pool: PersistentPool,
        pods: Callable[[], list[tuple[str, str, str, str | None]]],
    ) -> None:
        self.bridge = bridge
        self.service_network = ipaddress.IPv4Network(service_cidr)
        self.pool = pool
        self.pods = pods  # -> [(netns, namespace, hostname, pod IP)] of running sandboxes
        self.listeners: dict[tuple[str, int], Listener] = {}
        self._failed: set[tuple[str, int]] = set()
        self.vips: dict[ServiceKey, str] = {}

    def reconcile(
        self,
        services: list[dict[str, Any]],
        slices_by_service: dict[str, list[dict[str, Any]]],
        is_local: Callable[[dict[str, Any]], bool],
    ) -> None:
        wanted: dict[tuple[str, int], list[Backend]] = {}
        vips: dict[ServiceKey, str] = {}
        existing = set()
        for service in services:
            meta = service["metadata"]
            key = f"{meta['namespace']}/{meta['name']}"
            existing.add(key)
            if not wants_vip(service):
                continue
            has_local, backends = local_backends(service, slices_by_service.get(key, []), is_local)
            ip = self.pool.get(key)
            if ip is None and not has_local:
                continue  # endpoints only on simulated nodes (or none yet): nothing to proxy to
            if ip is None:
                try:
                    ip = self.pool.allocate(key)
                except Exception as exc:  # the slice is full: say so once per pass
                    log.warning("service %s gets no VIP: %s", key, exc)
                    continue
                log.info("service %s: VIP %s", key, ip)
            vips[(meta["namespace"], meta["name"])] = ip
            for port, ready in backends.items():
                wanted[(ip, port)] = ready
        for key in set(self.pool.allocations) - existing:
            log.info("service VIP %s of %s released", self.pool.release(key), key)
        self._sync_addresses(set(vips.values()))
        reconcile_listeners(self.listeners, wanted, self._failed, "service proxy")
        self.vips = vips
        self.refresh_hosts()

    def refresh_hosts(self) -> None:
        vips = dict(self.vips)
        for netns, namespace, hostname, pod_ip in self.pods():
            try:
                if write_pod_etc(netns, namespace, hostname, pod_ip, vips):
                    log.debug("hosts of %s (%s/%s) updated", netns, namespace, hostname)
            except OSError as exc:
                log.warning("hosts file of %s not written: %s", netns, exc)

    def _sync_addresses(self, wanted: set[str]) -> None:
        """Exactly ``wanted`` of the VIP slice as /32s on the bridge (others left alone)."""
        out = _ip("-o", "-4", "addr", "show", "dev", self.bridge).stdout
        present = set()
        for line in out.splitlines():
            parts = line.split()
            if "inet" not in parts:
                continue
            addr = parts[parts.index("inet") + 1]
            iface = ipaddress.IPv4Interface(addr)
            if iface.network.prefixlen == 32 and iface.ip in self.service_network:
                present.add(str(iface.ip))
        for vip in sorted(present - wanted):
            _ip("addr", "del", f"{vip}/32", "dev", self.bridge)
        for vip in sorted(wanted - present):
            done = _ip("addr", "add", f"{vip}/32", "dev", self.bridge)
            if done.returncode != 0:
                log.warning("service VIP %s not added to %s: %s", vip, self.bridge, done.stderr.strip())

    def close(self) -> None:
        for listener in self.listeners.values():
            listener.close()
        self.listeners.clear()


def hostname_of(pod: dict[str, Any]) -> str:
    """The pod's hostname as the kubelet sets it (``spec.hostname`` or the pod name)."""
    spec = pod.get("spec") or {}
    return str(spec.get("hostname") or pod["metadata"]["name"])
