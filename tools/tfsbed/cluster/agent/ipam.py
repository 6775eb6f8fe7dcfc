"""Address allocation: pod IPs from the node's CIDR and loopback LoadBalancer IPs.

:class:`AddressPool` is pure (keys -> addresses); :class:`PersistentPool` keeps
the same mapping in a JSON file so addresses survive an agent restart.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
from pathlib import Path

from tfsctl.errors import Conflict, InvalidInput


class AddressPool:
    """Hands out the lowest free host address of a network, one per key.

    ``reserved`` are never handed out (the gateway). The same key always gets the
    address it already holds.
    """

    def __init__(
        self,
        network: str,
        reserved: tuple[str, ...] = (),
        allocations: dict[str, str] | None = None,
    ) -> None:
        try:
            self.network = ipaddress.IPv4Network(network, strict=True)
        except ValueError as exc:
            raise InvalidInput(f"CIDR {network!r} is not a valid IPv4 network: {exc}") from exc
        self.reserved = {ipaddress.IPv4Address(r) for r in reserved}
        self.allocations: dict[str, str] = {}
        for key, addr in (allocations or {}).items():
            if ipaddress.IPv4Address(addr) in self.network:
                self.allocations[key] = addr

    def allocate(self, key: str) -> str:
        if key in self.allocations:
            return self.allocations[key]
        taken = {ipaddress.IPv4Address(a) for a in self.allocations.values()} | self.reserved
        for host in self.network.hosts():
            if host not in taken:
                self.allocations[key] = str(host)
                return str(host)
        raise Conflict(f"no free address left in {self.network} ({len(self.allocations)} allocated)")

    def release(self, key: str) -> str | None:
        return self.allocations.pop(key, None)

    def get(self, key: str) -> str | None:
        return self.allocations.get(key)


def gateway_of(network: str) -> str:
    """The first host address of ``network`` (the bridge's address)."""
    return str(next(ipaddress.IPv4Network(network).hosts()))


class PersistentPool:
    """An :class:`AddressPool` saved to ``path`` (JSON) after every change; thread-safe."""

    def __init__(self, path: Path, network: str, reserved: tuple[str, ...] = ()) -> None:
        self.path = path
        self._lock = threading.Lock()
        saved: dict[str, str] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text())
                if data.get("network") == network:
                    saved = dict(data.get("allocations", {}))
            except (OSError, ValueError):
                saved = {}
        self._pool = AddressPool(network, reserved, saved)

    @property
    def allocations(self) -> dict[str, str]:
        with self._lock:
            return dict(self._pool.allocations)

    def allocate(self, key: str) -> str:
        with self._lock:
            addr = self._pool.allocate(key)
            self._save()
            return addr

    def release(self, key: str) -> str | None:
        with self._lock:
            addr = self._pool.release(key)
            self._save()
            return addr

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._pool.get(key)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"network": str(self._pool.network), "allocations": self._pool.allocations}, indent=1)
        )
        os.replace(tmp, self.path)
