"""A loopback L4 load balancer for Services of type LoadBalancer.

Each such Service with endpoints on this node gets ``127.0.100.N`` (persisted),
published as ``status.loadBalancer.ingress[0]``; the agent listens on that IP and
every TCP service port and forwards each accepted connection, round-robin, to a
ready endpoint on this node (the only pods the host can reach). Like a cloud L4
balancer, a long-lived connection (a gRPC channel) stays on one pod.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import logging
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from .ipam import PersistentPool
from .kube import MERGE_PATCH, Informer, Kube

if TYPE_CHECKING:
    from .services import ServiceProxy

log = logging.getLogger(__name__)

LB_CLASS = "tfsctl.dev/loopback"
Backend = tuple[str, int]


def manages(service: dict[str, Any]) -> bool:
    spec = service.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and spec.get("loadBalancerClass") in (None, LB_CLASS)


def local_backends(
    service: dict[str, Any], slices: list[dict[str, Any]], is_local: Callable[[dict[str, Any]], bool]
) -> tuple[bool, dict[int, list[Backend]]]:
    """(any endpoint on this node, service port -> ready local backends) for ``service`` (pure)."""
    has_local = False
    backends: dict[int, list[Backend]] = {}
    ports = [
        p for p in (service.get("spec") or {}).get("ports") or [] if (p.get("protocol") or "TCP") == "TCP"
    ]
    for port in ports:
        backends[int(port["port"])] = []
    for eps in slices:
        if eps.get("addressType") not in (None, "IPv4"):
            continue
        slice_ports = {(p.get("name") or ""): int(p["port"]) for p in eps.get("ports") or [] if p.get("port")}
        for endpoint in eps.get("endpoints") or []:
            if not is_local(endpoint):
                continue
            has_local = True
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for port in ports:
                target = slice_ports.get(port.get("name") or "")
                if target is None:
                    continue
                for address in endpoint.get("addresses") or []:
                    backends[int(port["port"])].append((address, target))
    for port_backends in backends.values():
        port_backends.sort()
    return has_local, backends


class Listener:
    """Accepts on ``(ip, port)`` and splices each connection to the next backend."""

    def __init__(self, ip: str, port: int) -> None:
        self.ip, self.port = ip, port
        self.backends: list[Backend] = []
        self._counter = itertools.count()
        self._closed = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(128)
        self.sock.settimeout(1.0)
        self.thread = threading.Thread(target=self._accept, name=f"lb-{ip}:{port}", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self.sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        backends = list(self.backends)
        upstream = None
        if backends:
            first = next(self._counter)
            for i in range(len(backends)):
                address = backends[(first + i) % len(backends)]
                try:
                    upstream = socket.create_connection(address, timeout=3)
                    break
                except OSError as exc:
                    log.debug("lb %s:%d: backend %s refused: %s", self.ip, self.port, address, exc)
        if upstream is None:
            conn.close()
            return
        conn.settimeout(None)
        upstream.settimeout(None)
        for sock in (conn, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pump = threading.Thread(target=_pump, args=(upstream, conn), daemon=True)
        pump.start()
        _pump(conn, upstream)
        pump.join(3600)
        conn.close()
        upstream.close()


def reconcile_listeners(
    listeners: dict[tuple[str, int], Listener],
    wanted: dict[tuple[str, int], Any],
    failed: set[tuple[str, int]],
    what: str,
) -> None:
    """Close listeners no longer wanted, open missing ones, and give each its ready backends.

    An address that cannot be bound is logged once (in ``failed``) and retried on the next call.
    """
    for address in list(listeners):
        if address not in wanted:
            listeners.pop(address).close()
    for address, ready in wanted.items():
        listener = listeners.get(address)
        if listener is None:
            try:
                listener = listeners[address] = Listener(*address)
                log.info("%s listening on %s:%d", what, *address)
            except OSError as exc:
                if address not in failed:
                    log.warning("%s cannot listen on %s:%d: %s", what, *address, exc)
                    failed.add(address)
                continue
        listener.backends = ready


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


class LoadBalancerController:
    """Watches Services and EndpointSlices and keeps IPs, statuses and listeners in line."""

    def __init__(
        self,
        api: client.ApiClient,
        kube: Kube,
        node_name: str,
        pod_cidr: str,
        pool: PersistentPool,
        stop: threading.Event,
        proxy: ServiceProxy | None = None,
    ) -> None:
        self.core: Any = client.CoreV1Api(api)  # dict bodies: the typed stubs want models
        self.kube = kube
        self.node_name = node_name
        self.network = ipaddress.IPv4Network(pod_cidr)
        self.pool = pool
        self.stop = stop
        self.proxy = proxy  # service VIPs + hosts files, fed from the same informers
        self.trigger = threading.Event()
        self.listeners: dict[tuple[str, int], Listener] = {}
        self._failed: set[tuple[str, int]] = set()
        notify = lambda _event, _obj: self.trigger.set()  # noqa: E731
        self.services = Informer("services", self.core.list_service_for_all_namespaces, stop, notify)
        discovery: Any = client.DiscoveryV1Api(api)
        self.slices = Informer(
            "endpointslices", discovery.list_endpoint_slice_for_all_namespaces, stop, notify
        )
        self.thread = threading.Thread(target=self._run, name="loadbalancer", daemon=True)

    def start(self) -> None:
        self.services.start()
        self.slices.start()
        self.thread.start()

    def _is_local(self, endpoint: dict[str, Any]) -> bool:
        if endpoint.get("nodeName") == self.node_name:
            return True
        return any(
            ipaddress.IPv4Address(a) in self.network for a in endpoint.get("addresses") or [] if "." in a
        )

    def _run(self) -> None:
        self.services.synced.wait(60)
        self.slices.synced.wait(60)
        while not self.stop.is_set():
            self.trigger.wait(5)
            self.trigger.clear()
            try:
                self.reconcile()
            except Exception:
                log.exception("load balancer reconcile failed")
        self.close()

    def close(self) -> None:
        for listener in self.listeners.values():
            listener.close()
        self.listeners.clear()
        if self.proxy is not None:
            self.proxy.close()

    def reconcile(self) -> None:
        slices_by_service: dict[str, list[dict[str, Any]]] = {}
        for eps in self.slices.items():
            meta = eps["metadata"]
            owner = (meta.get("labels") or {}).get("kubernetes.io/service-name")
            if owner:
                slices_by_service.setdefault(f"{meta['namespace']}/{owner}", []).append(eps)
        wanted: dict[tuple[str, int], list[Backend]] = {}
        managed = set()
        for service in self.services.items():
            if not manages(service):
                continue
            key = f"{service['metadata']['namespace']}/{service['metadata']['name']}"
            has_local, backends = local_backends(service, slices_by_service.get(key, []), self._is_local)
            ip = self.pool.get(key)
            if ip is None and not has_local:
                continue  # all endpoints on simulated nodes: no balancer can reach them
            ip = self.pool.allocate(key)
            managed.add(key)
            self._publish(service, ip)
            for port, ready in backends.items():
                wanted[(ip, port)] = ready
        for key in set(self.pool.allocations) - managed:
            if not any(
                f"{s['metadata']['namespace']}/{s['metadata']['name']}" == key and manages(s)
                for s in self.services.items()
            ):
                log.info("load balancer IP %s of %s released", self.pool.release(key), key)
        reconcile_listeners(self.listeners, wanted, self._failed, "load balancer")
        if self.proxy is not None:
            self.proxy.reconcile(self.services.items(), slices_by_service, self._is_local)

    def _publish(self, service: dict[str, Any], ip: str) -> None:
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if ingress and ingress[0].get("ip") == ip:
            return
        meta = service["metadata"]
        body = {"status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}}
        try:
            self.core.patch_namespaced_service_status(
                meta["name"], meta["namespace"], body, _content_type=MERGE_PATCH, _request_timeout=10
            )
            log.info("service %s/%s: load balancer ingress %s", meta["namespace"], meta["name"], ip)
            self.kube.event(
                {"kind": "Service", "apiVersion": "v1", "metadata": meta},
                "Normal",
                "EnsuredLoadBalancer",
                f"Ensured loopback load balancer {ip}",
            )
        except (ApiException, HTTPError, OSError) as exc:
            log.warning("service %s/%s: status not written: %s", meta["namespace"], meta["name"], exc)
