"""The process node agent: wires node registration, pod workers, metrics and the load balancer."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from kubernetes import client, config

from tfsctl.errors import Conflict, InvalidInput, NotFound, ToolkitError, Unavailable

from . import BRIDGE, DEFAULT_LB_CIDR, DEFAULT_METRICS_PORT, DEFAULT_NODE_NAME, DEFAULT_POD_CIDR
from .ipam import PersistentPool
from .kube import Informer, Kube
from .loadbalancer import LoadBalancerController
from .metrics import ContainerSample, ResourceSample, format_resource_metrics
from .netns import Network
from .node import NodeKeeper
from .runtime import PodWorker, kill_tree
from .server import ExecStarter, KubeletServer, LogHandle
from .services import ServiceProxy, hostname_of, reserved_pod_addresses, service_cidr_of, write_pod_etc

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class AgentConfig:
    kubeconfig: Path | None
    state_dir: Path
    node_name: str = DEFAULT_NODE_NAME
    pod_cidr: str = DEFAULT_POD_CIDR
    lb_cidr: str = DEFAULT_LB_CIDR
    metrics_port: int = DEFAULT_METRICS_PORT
    host_ip: str = "127.0.0.1"
    shutdown_grace: float = 30.0
    bridge: str = BRIDGE
    node_type: str = "process"  # value of node.tfsctl.dev/type (tests use their own to keep pods apart)
    service_cidr: str | None = None  # service VIP slice of pod_cidr; None: its last eighth


def node_usage() -> tuple[float, float]:
    """(busy CPU seconds of the host, memory working set) like the node's cgroup root reports."""
    times = psutil.cpu_times()
    busy = sum(times) - times.idle - getattr(times, "iowait", 0.0)
    memory = psutil.virtual_memory()
    return busy, float(memory.total - memory.available)


class Agent:
    """Run with :meth:`run`; :meth:`request_stop` (or SIGTERM/SIGINT) stops every pod gracefully."""

    def __init__(self, cfg: AgentConfig, api: client.ApiClient) -> None:
        self.cfg = cfg
        self.api = api
        self.state_dir = cfg.state_dir
        self.host_ip = cfg.host_ip
        self.shutdown_grace = cfg.shutdown_grace
        self.stop = threading.Event()  # informers and loops
        self.stopping = threading.Event()  # pod workers: stop containers
        self.network = Network(cfg.bridge, cfg.pod_cidr)
        self.service_cidr = cfg.service_cidr or service_cidr_of(cfg.pod_cidr)
        try:
            reserved = reserved_pod_addresses(cfg.pod_cidr, self.service_cidr)
        except ValueError as exc:
            raise InvalidInput(f"--service-cidr: {exc}") from exc
        self.ipam = PersistentPool(cfg.state_dir / "ipam.json", cfg.pod_cidr, reserved)
        self.service_pool = PersistentPool(cfg.state_dir / "services.json", self.service_cidr)
        self.proxy = ServiceProxy(cfg.bridge, self.service_cidr, self.service_pool, self.sandboxes)
        self.lb_pool = PersistentPool(cfg.state_dir / "loadbalancers.json", cfg.lb_cidr)
        self.kube = Kube(api, cfg.node_name)
        self.workers: dict[str, PodWorker] = {}
        self.lock = threading.Lock()
        venv_bin = str(Path(sys.executable).parent)
        self.process_path = os.pathsep.join([venv_bin, os.environ.get("PATH") or DEFAULT_PATH])
        self.server: KubeletServer | None = None
        self.node: NodeKeeper | None = None
        self.pods: Informer | None = None

    def log_path(self, namespace: str, pod: str, container: str) -> Path:
        return self.state_dir / "logs" / f"{namespace}_{pod}_{container}.log"

    def _worker(self, namespace: str, pod: str) -> PodWorker:
        with self.lock:
            worker = next(
                (w for w in self.workers.values() if w.namespace == namespace and w.name == pod), None
            )
        if worker is None:
            raise NotFound(f"pod {namespace}/{pod} is not running on node {self.cfg.node_name}")
        return worker

    def container_log(self, namespace: str, pod: str, container: str, previous: bool) -> LogHandle:
        """The kubelet's log lookup for ``/containerLogs`` (raises NotFound naming what is missing)."""
        return self._worker(namespace, pod).log_handle(container, previous)

    def pod_address(self, namespace: str, pod: str) -> str:
        """Where ``/portForward`` connects: the pod's IP (the host's for hostNetwork pods)."""
        worker = self._worker(namespace, pod)
        if worker.pod_ip is None:
            raise NotFound(f"pod {namespace}/{pod} has no IP yet on node {self.cfg.node_name}")
        return worker.pod_ip

    def exec_starter(self, namespace: str, pod: str, container: str) -> ExecStarter:
        """What ``/exec`` runs commands with (raises NotFound naming the missing pod or container)."""
        return self._worker(namespace, pod).exec_starter(container)

    # -- service names inside pods
    def sandboxes(self) -> list[tuple[str, str, str, str | None]]:
        """(netns, namespace, hostname, pod IP) of every pod with its own network namespace."""
        with self.lock:
            workers = list(self.workers.values())
        return [(w.netns, w.namespace, hostname_of(w.pod), w.pod_ip) for w in workers if w.netns]

    def write_pod_etc(self, netns: str, pod: dict[str, Any], pod_ip: str | None) -> None:
        """The pod's hosts/resolv.conf before its first container starts (then kept by the proxy)."""
        meta = pod["metadata"]
        try:
            write_pod_etc(netns, meta["namespace"], hostname_of(pod), pod_ip, dict(self.proxy.vips))
        except OSError as exc:
            raise ToolkitError(f"/etc/netns/{netns}: hosts file not written: {exc}") from exc

    # -- lifecycle
    def request_stop(self) -> None:
        self.stopping.set()

    def _lock_bridge(self) -> None:
        """One agent per bridge on a host: a second one would fight over routes and pod IPs."""
        path = Path(tempfile.gettempdir()) / f"tfsctl-agent-{self.cfg.bridge}.lock"
        self._lock_file = open(path, "a+")  # noqa: SIM115 - held for the agent's lifetime
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.seek(0)
            owner = self._lock_file.read().strip() or "another agent"
            raise Conflict(
                f"bridge {self.cfg.bridge} is used by a running process node agent ({owner}): stop it, "
                "or give this one another --bridge and --pod-cidr"
            ) from None
        self._lock_file.truncate(0)
        self._lock_file.write(f"pid {os.getpid()}, state dir {self.state_dir}")
        self._lock_file.flush()

    def run(self, ready: threading.Event | None = None) -> None:
        Network.check_permitted()
        self._lock_bridge()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._cleanup_stale()
        self.network.ensure_bridge()
        try:
            self.server = KubeletServer(
                self.host_ip,
                self.cfg.metrics_port,
                self.state_dir / "pki",
                self.render_metrics,
                self.container_log,
                address_provider=self.pod_address,
                exec_provider=self.exec_starter,
            )
        except OSError as exc:
            raise Unavailable(
                f"--metrics-port {self.cfg.metrics_port}: cannot listen on {self.host_ip}: {exc.strerror}"
            ) from exc
        self.server.start()
        self.node = NodeKeeper(
            self.api,
            self.cfg.node_name,
            self.cfg.pod_cidr,
            self.host_ip,
            self.server.port,
            self.stop,
            self.cfg.node_type,
        )
        self.node.register()
        self.node.start()
        core = client.CoreV1Api(self.api)
        self.kube.configmaps = Informer(
            "configmaps", core.list_config_map_for_all_namespaces, self.stop
        ).start()
        self.kube.secrets = Informer("secrets", core.list_secret_for_all_namespaces, self.stop).start()
        self.kube.configmaps.synced.wait(30)
        self.kube.secrets.synced.wait(30)
        self.pods = Informer(
            "pods",
            core.list_pod_for_all_namespaces,
            self.stop,
            self._on_pod,
            field_selector=f"spec.nodeName={self.cfg.node_name}",
        )
        self.pods.start()
        lb = LoadBalancerController(
            self.api, self.kube, self.cfg.node_name, self.cfg.pod_cidr, self.lb_pool, self.stop, self.proxy
        )
        lb.start()
        log.info(
            "process node %s ready (pods %s, kubelet endpoint https://%s:%d)",
            self.cfg.node_name,
            self.cfg.pod_cidr,
            self.host_ip,
            self.server.port,
        )
        if ready is not None:
            ready.set()
        while not self.stopping.wait(1.0):
            pass
        self._shutdown()

    def _shutdown(self) -> None:
        log.info("stopping: terminating %d pods (grace at most %gs)", len(self.workers), self.shutdown_grace)
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.wakeup.set()
        deadline = time.time() + self.shutdown_grace + 20
        for worker in workers:
            worker.finished.wait(max(0.1, deadline - time.time()))
        if self.node is not None:
            try:
                self.node.post_status(False, "KubeletStopped")
            except Exception as exc:
                log.warning("node status not written on shutdown: %s", exc)
        self.stop.set()
        if self.server is not None:
            self.server.stop()

    def _cleanup_stale(self) -> None:
        """Kill processes and remove namespaces an earlier agent left behind."""
        pods_dir = self.state_dir / "pods"
        for pids_file in pods_dir.glob("*/pids.json"):
            try:
                recorded: dict[str, Any] = json.loads(pids_file.read_text())
            except (OSError, ValueError):
                continue
            for entry in recorded.values():
                pid, created = entry if isinstance(entry, list) else (entry, None)
                try:
                    proc = psutil.Process(int(pid))
                    if created is not None and abs(proc.create_time() - float(created)) > 1:
                        continue  # the pid was reused by an unrelated process
                except psutil.Error:
                    continue
                log.info("killing stale container process %d", pid)
                kill_tree(int(pid), signal.SIGKILL)
        self.network.cleanup_stale([d.name for d in pods_dir.iterdir()] if pods_dir.exists() else [])
        self.network.detach_stale_links()
        if pods_dir.exists():
            shutil.rmtree(pods_dir, ignore_errors=True)

    # -- pods
    def _on_pod(self, event: str, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        with self.lock:
            worker = self.workers.get(uid)
            if event == "DELETED":
                if worker is not None:
                    worker.deleted()
                return
            if worker is not None:
                worker.update(pod)
                return
            if self.stopping.is_set():
                return
            worker = self.workers[uid] = PodWorker(self, pod)
        log.info("pod %s/%s bound to this node", pod["metadata"]["namespace"], pod["metadata"]["name"])
        worker.start()

    def worker_done(self, uid: str, worker: PodWorker) -> None:
        with self.lock:
            if self.workers.get(uid) is worker:
                del self.workers[uid]

    # -- metrics
    def render_metrics(self) -> str:
        cpu, memory = node_usage()
        sample = ResourceSample(timestamp=time.time(), node_cpu_seconds=cpu, node_memory_bytes=memory)
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            try:
                for name, cpu_s, mem, started in worker.usage():
                    sample.containers.append(
                        ContainerSample(worker.namespace, worker.name, name, cpu_s, mem, started)
                    )
            except Exception as exc:
                log.debug("usage of %s failed: %s", worker.name, exc)
                sample.scrape_error = True
        return format_resource_metrics(sample)


def load_api(kubeconfig: Path | None) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(kubeconfig) if kubeconfig else None, client_configuration=configuration
    )
    return client.ApiClient(configuration)


def run(cfg: AgentConfig, ready: threading.Event | None = None) -> None:
    """Run the agent until SIGTERM/SIGINT (installs the handlers when called in the main thread)."""
    agent = Agent(cfg, load_api(cfg.kubeconfig))
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: agent.request_stop())
    agent.run(ready)
