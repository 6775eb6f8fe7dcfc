"""Pod networking with iproute2: a host bridge and one network namespace per pod."""

from __future__ import annotations

import ipaddress
import logging
import subprocess

from tfsctl.errors import ToolkitError, Unavailable

log = logging.getLogger(__name__)

NETNS_PREFIX = "tfsp-"


def netns_name(uid: str) -> str:
    return NETNS_PREFIX + uid.replace("-", "")[:12]


def _host_veth(uid: str) -> str:
    return "vtfs" + uid.replace("-", "")[:11]  # interface names are at most 15 bytes


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15)
    if check and proc.returncode != 0:
        raise ToolkitError(f"ip {' '.join(args)}: {proc.stderr.strip() or f'exit {proc.returncode}'}")
    return proc


class Network:
    """The bridge ``bridge`` carrying ``cidr``; its first address is the host's (and pods' gateway)."""

    def __init__(self, bridge: str, cidr: str) -> None:
        self.bridge = bridge
        self.network = ipaddress.IPv4Network(cidr)
        self.gateway = str(next(self.network.hosts()))

    @staticmethod
    def check_permitted() -> None:
        """Fail with one line when network namespaces cannot be created here."""
        probe = NETNS_PREFIX + "permcheck"
        try:
            _ip("netns", "add", probe)
        except (ToolkitError, OSError) as exc:
            raise Unavailable(
                f"the process node needs 'ip netns' (root with CAP_SYS_ADMIN/CAP_NET_ADMIN), "
                f"which is not permitted here: {exc}"
            ) from exc
        _ip("netns", "delete", probe, check=False)

    def ensure_bridge(self) -> None:
        if _ip("link", "show", self.bridge, check=False).returncode != 0:
            _ip("link", "add", self.bridge, "type", "bridge")
        addr = f"{self.gateway}/{self.network.prefixlen}"
        if addr not in _ip("-o", "addr", "show", "dev", self.bridge).stdout:
            _ip("addr", "add", addr, "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def create(self, uid: str, pod_ip: str) -> str:
        """Create the pod's namespace with ``eth0`` = ``pod_ip`` on the bridge; return its name."""
        name = netns_name(uid)
        self.delete(uid)
        host, peer = _host_veth(uid), "p" + _host_veth(uid)[1:]
        _ip("netns", "add", name)
        try:
            _ip("link", "add", host, "type", "veth", "peer", "name", peer)
            _ip("link", "set", peer, "netns", name)
            _ip("link", "set", host, "master", self.bridge, "up")
            _ip("-n", name, "link", "set", peer, "name", "eth0")
            _ip("-n", name, "addr", "add", f"{pod_ip}/{self.network.prefixlen}", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
            _ip("-n", name, "link", "set", "lo", "up")
            _ip("-n", name, "route", "add", "default", "via", self.gateway)
        except ToolkitError:
            self.delete(uid)
            raise
        return name

    def delete(self, uid: str) -> None:
        from .services import remove_pod_etc  # the namespace's /etc/netns files go with it

        _ip("link", "delete", _host_veth(uid), check=False)
        _ip("netns", "delete", netns_name(uid), check=False)
        remove_pod_etc(netns_name(uid))

    def detach_stale_links(self) -> list[str]:
        """Delete every interface enslaved to the bridge; call only while holding the bridge's lock.

        An agent that holds the lock and runs no pod yet owns none of them: they are
        what a killed agent left (possibly from another checkout's state directory),
        and their pod IPs would clash with the addresses this agent hands out.
        """
        out = _ip("-o", "link", "show", "master", self.bridge, check=False).stdout
        lines = [line for line in out.splitlines() if line.count(":") >= 2]
        names = [line.split(":")[1].strip().split("@")[0] for line in lines]
        for name in names:
            _ip("link", "delete", name, check=False)
        if names:
            log.info("detached %d stale interfaces from %s", len(names), self.bridge)
        return names

    def cleanup_stale(self, uids: list[str]) -> list[str]:
        """Delete the namespaces of ``uids`` (pods an earlier agent ran); their veth pairs go with them.

        Only namespaces this agent's state directory recorded are touched, so another
        agent on another bridge keeps its pods.
        """
        existing = set(_ip("netns", "list", check=False).stdout.split())
        removed = []
        for uid in uids:
            name = netns_name(uid)
            if name in existing:
                self.delete(uid)
                removed.append(name)
        if removed:
            log.info("removed %d stale pod network namespaces", len(removed))
        return removed
