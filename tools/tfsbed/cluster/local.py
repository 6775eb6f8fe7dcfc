"""Start, inspect and stop the local cluster (``tfsctl cluster up|down|status``).

``kwokctl --runtime binary`` runs the control plane from the pinned builds
(:mod:`tfsbed.toolchain`); this module adds what kwokctl does not do: it checks
ports and stale state first, verifies every component really runs (kwokctl
does not notice a component that exits at start), creates the simulated nodes,
starts the real nodes (:mod:`tfsbed.cluster.node`) and waits, bounded, until all of it is Ready.
A failed ``up`` removes what it started.

State lives under ``.tools/cluster/`` (kwokctl's workdir, the real nodes' state,
``cluster.json``); the kubeconfig is ``.tools/kubeconfig``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from tfsbed import toolchain
from tfsbed.cluster import procs
from tfsbed.cluster import spec as cspec
from tfsctl import kubestate, paths
from tfsctl.errors import Conflict, Timeout, ToolkitError, Unavailable

log = logging.getLogger(__name__)

STATE_DIR = paths.TOOLS_DIR / "cluster"

State = Literal["running", "degraded", "stopped", "absent"]
Progress = Callable[[str], None]


@dataclass
class ComponentState:
    name: str
    running: bool
    pid: int | None = None
    detail: str = ""


@dataclass
class NodeState:
    name: str
    node_type: str
    provider: str
    ready: bool


@dataclass
class ClusterStatus:
    """What ``tfsctl cluster status`` reports; ``state`` is the one-word summary."""

    name: str
    state: State
    kubeconfig: str
    server: str = ""
    workdir: str = ""
    components: list[ComponentState] = field(default_factory=list)
    nodes: list[NodeState] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class UpResult:
    status: ClusterStatus
    created: bool
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)


def _kwokctl_error(output: str) -> str:
    """The last error kwokctl logged (it logs JSON lines), else the last line of its output."""
    last = ""
    for line in output.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            last = line
            continue
        if isinstance(rec, dict) and rec.get("level") in ("ERROR", "WARN"):
            err = rec.get("err")
            last = f"{rec.get('msg', '')}: {err}" if err else str(rec.get("msg", ""))
    return last or "no output"


class LocalCluster:
    """The local cluster: pinned control plane + kwok nodes + real nodes.

    ``progress`` receives one human-readable line per step (the CLI prints them to
    stderr); the class itself never prints.
    """

    def __init__(
        self,
        spec: cspec.ClusterSpec | None = None,
        *,
        state_dir: Path = STATE_DIR,
        kubeconfig: Path = paths.LOCAL_KUBECONFIG,
        progress: Progress | None = None,
    ) -> None:
        self.spec = spec or cspec.ClusterSpec()
        self.state_dir = state_dir
        self.kubeconfig = kubeconfig
        self._progress = progress
        self._node_binaries: Any = None
        self._real: Any = None

    # -- locations ---------------------------------------------------------------------------

    @property
    def kwok_root(self) -> Path:
        return self.state_dir / "kwok"

    @property
    def workdir(self) -> Path:
        """kwokctl's directory for this cluster (config, pki, pids, logs, etcd data)."""
        return self.kwok_root / "clusters" / self.spec.name

    def _say(self, message: str) -> None:
        log.info("%s", message)
        if self._progress is not None:
            self._progress(message)

    # -- tools ---------------------------------------------------------------------------------

    def ensure_binaries(self) -> cspec.Binaries:
        """Build (first time) or reuse the pinned tools; one progress line per tool."""
        dirs: dict[str, Path] = {}
        for name in ("kubernetes", "etcd", "kwok", "metrics-server"):
            tool = toolchain.TOOLS[name]
            stamp = toolchain.tool_dir(tool) / ".complete"
            if stamp.exists():
                self._say(f"{name} v{tool.version}: cached")
            else:
                self._say(f"{name} v{tool.version}: building from source (first time only, can take minutes)")
            started = time.monotonic()
            try:
                dirs[name] = toolchain.ensure(name)
            except toolchain.ToolchainError as exc:
                raise Unavailable(f"cannot provide {name} v{tool.version}: {exc}") from exc
            if not stamp.exists() or time.monotonic() - started > 1:
                self._say(f"{name} v{tool.version}: ready in {time.monotonic() - started:.0f}s")
        k8s = dirs["kubernetes"]
        if self.spec.real_nodes or self._real_node_count():
            self._node_binaries = self._ensure_node_binaries(k8s)
        return cspec.Binaries(
            kube_apiserver=k8s / "kube-apiserver",
            kube_controller_manager=k8s / "kube-controller-manager",
            kube_scheduler=k8s / "kube-scheduler",
            kubectl=k8s / "kubectl",
            etcd=dirs["etcd"] / "etcd",
            kwok=dirs["kwok"] / "kwok",
            kwokctl=dirs["kwok"] / "kwokctl",
            metrics_server=dirs["metrics-server"] / "metrics-server",
        )

    # -- real nodes (tfsbed.cluster.node) ---------------------------------------------------------

    def _ensure_node_binaries(self, k8s: Path) -> Any:
        from tfsbed.cluster.node.runtime import NodeBinaries

        try:
            toolchain.ensure_debian()
            dns, reg = toolchain.ensure("coredns"), toolchain.ensure("registry")
        except toolchain.ToolchainError as exc:
            raise Unavailable(f"cannot provide the real node's tools: {exc}") from exc
        return NodeBinaries(
            k8s / "kubelet", k8s / "kube-proxy", k8s / "kubectl", dns / "coredns", reg / "registry"
        )

    def _real_node_count(self) -> int:
        """Nodes of an earlier ``up`` (so ``down`` and ``status`` find them without ``--real-nodes``)."""
        from tfsbed.cluster.node.runtime import leftover_count

        try:
            return int(json.loads((self.state_dir / "nodes" / "plan.json").read_text())["count"])
        except (OSError, ValueError, KeyError):
            return leftover_count(self.spec.ports.base)

    def _real_nodes(self) -> Any:
        """The real nodes' adapter, kept for this object's life (its built images with it)."""
        if self._real is None:
            self._real = self.real_nodes()
        return self._real

    def real_nodes(self) -> Any:
        """The adapter of the real nodes, or None when there are none."""
        from tfsbed.cluster.node import config as nconfig
        from tfsbed.cluster.node.runtime import NodeBinaries, RealNodes

        count = max(self.spec.real_nodes, self._real_node_count())
        if not count:
            return None
        bins = self._node_binaries
        if bins is None:
            k8s = toolchain.tool_dir(toolchain.TOOLS["kubernetes"]) / "bin"
            bins = NodeBinaries(
                k8s / "kubelet",
                k8s / "kube-proxy",
                k8s / "kubectl",
                toolchain.tool_dir(toolchain.TOOLS["coredns"]) / "bin" / "coredns",
                toolchain.tool_dir(toolchain.TOOLS["registry"]) / "bin" / "registry",
            )
        return RealNodes(
            nconfig.plan(self.spec.ports.base, count),
            self.state_dir,
            pki_dir=self.workdir / "pki",
            apiserver_port=self.spec.ports.apiserver,
            admin_kubeconfig=self.kubeconfig,
            binaries=bins,
            progress=self._progress,
            proxy_mode=self.spec.proxy_mode,
            addon_names=self.spec.addons,
            kubelet_sync_frequency=self.spec.kubelet_sync_frequency,
        )

    def _up_real_nodes(self, deadline: float) -> dict[str, float]:
        real = self._real_nodes()
        if real is None:
            return {}
        real.up(deadline)
        return {f"real-node:{k}": v for k, v in real.timings.items()}

    def _down_real_nodes(self) -> list[str]:
        real = self.real_nodes()
        return real.down() if real is not None else []

    def _kwokctl(self, binaries: cspec.Binaries, *args: str, timeout: float = 300.0) -> str:
        config = self.state_dir / "kwokctl.yaml"
        cmd = [str(binaries.kwokctl), "--name", self.spec.name]
        if config.exists():
            cmd += ["-c", str(config)]
        cmd += list(args)
        env = dict(os.environ, KWOK_WORKDIR=str(self.kwok_root))
        log.debug("running %s", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise Timeout(f"kwokctl {' '.join(args[:2])} did not finish within {timeout:.0f}s") from exc
        output = (proc.stdout or "") + (proc.stderr or "")
        with open(self.state_dir / "kwokctl.log", "a") as fh:
            fh.write(f"$ {' '.join(cmd)}\n{output}\n")
        if proc.returncode != 0:
            raise Unavailable(
                f"kwokctl {' '.join(args[:2])} failed: {_kwokctl_error(output)} "
                f"(full output in {self.state_dir / 'kwokctl.log'})"
            )
        return output

    # -- inspection ----------------------------------------------------------------------------

    def exists(self) -> bool:
        return (self.workdir / "kwok.yaml").exists()

    def component_states(self) -> list[ComponentState]:
        states = []
        for name in cspec.CONTROL_PLANE:
            pid = procs.read_pid(self.workdir / "pids" / f"{name}.pid")
            running = pid is not None and procs.pid_alive(pid, str(self.workdir))
            detail = "" if running else self._log_tail(self.workdir / "logs" / f"{name}.log")
            states.append(ComponentState(name, running, pid if running else None, detail))
        real = self.real_nodes()
        for c in real.components() if real is not None else []:
            detail = "" if c.running else f"{c.detail or 'no output'} (log: {c.log})"
            states.append(ComponentState(c.name, c.running, c.pid, detail))
        return states

    @staticmethod
    def _log_tail(path: Path) -> str:
        try:
            lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1][:300] if lines else ""

    def status(self) -> ClusterStatus:
        st = ClusterStatus(
            name=self.spec.name,
            state="absent",
            kubeconfig=str(self.kubeconfig),
            workdir=str(self.workdir),
            server=f"https://127.0.0.1:{self.spec.ports.apiserver}",
        )
        if not self.exists():
            return st
        st.components = self.component_states()
        running = [c for c in st.components if c.running]
        if not running:
            st.state = "stopped"
            return st
        api_ok = self._apiserver_ready()
        if api_ok:
            st.nodes = self._node_states()
        all_up = len(running) == len(st.components) and api_ok
        st.state = "running" if all_up and all(n.ready for n in st.nodes) else "degraded"
        for c in st.components:
            if not c.running:
                st.notes.append(f"{c.name} is not running" + (f": {c.detail}" if c.detail else ""))
        return st

    def api_client(self) -> Any:
        from kubernetes import config as kconfig

        return kconfig.new_client_from_config(config_file=str(self.kubeconfig))

    def _apiserver_ready(self) -> bool:
        if not self.kubeconfig.exists():
            return False
        try:
            with self.api_client() as api:
                method, url, headers, _body, _post = api.param_serialize(
                    "GET", "/readyz", auth_settings=["BearerToken"]
                )
                resp = api.call_api(method, url, header_params=headers, _request_timeout=3)
                return bool(resp.status == 200)
        except Exception:  # any failure means "not ready"; callers report what they know
            log.debug("apiserver readiness check failed", exc_info=True)
            return False

    def _node_states(self) -> list[NodeState]:
        from kubernetes import client

        real = replace(self.spec, real_nodes=max(self.spec.real_nodes, self._real_node_count()))
        wanted = {n.name: n for n in (*self.spec.nodes, *real.kubelet_nodes())}
        out: list[NodeState] = []
        try:
            with self.api_client() as api:
                nodes: list[Any] = client.CoreV1Api(api).list_node(_request_timeout=5).items
        except Exception:
            log.debug("listing nodes failed", exc_info=True)
            return out
        for node in nodes:
            labels = node.metadata.labels or {}
            ready = kubestate.is_ready(node)
            ns = wanted.get(node.metadata.name)
            provider = ns.provider if ns else "external"
            out.append(NodeState(node.metadata.name, labels.get(cspec.NODE_TYPE_LABEL, ""), provider, ready))
        return sorted(out, key=lambda n: n.name)

    # -- up ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, timeout: float) -> Iterator[None]:
        """One ``up``/``down`` at a time per state dir (parallel test sessions share the cluster)."""
        import fcntl

        self.state_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        with open(self.state_dir / ".lock", "w") as fh:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise Conflict(
                            f"another tfsctl cluster command holds {self.state_dir / '.lock'}; "
                            "wait for it to finish and retry"
                        ) from None
                    time.sleep(0.5)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def up(self, timeout: float = 240.0) -> UpResult:
        """Bring the cluster up, reusing a healthy one.

        The first build of the pinned tools, and of the real nodes' images, can take many
        minutes on a fresh machine; it reports its own progress and time and is not covered
        by ``timeout``, which bounds only the start itself (lock, control plane, nodes,
        metrics API).
        """
        built = time.monotonic()
        binaries = self.ensure_binaries()
        if self.spec.real_nodes:
            self._say("real nodes: building their images (cached by content)")
            self._real_nodes().build_images()
        tools_s = time.monotonic() - built
        with self._locked(timeout):
            return self._up(timeout, binaries, tools_s)

    def _up(self, timeout: float, binaries: cspec.Binaries, tools_s: float) -> UpResult:
        started = time.monotonic()
        deadline = started + timeout
        steps: dict[str, float] = {"tools": tools_s}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        created = False
        if self.exists():
            self._resume(binaries)
        else:
            self._create(binaries)
            created = True
        steps["control-plane"] = time.monotonic() - t0
        try:
            t0 = time.monotonic()
            self._bootstrap_objects(deadline)
            steps["nodes"] = time.monotonic() - t0
            t0 = time.monotonic()
            steps |= self._up_real_nodes(deadline)
            if self.spec.real_nodes:
                steps["real-nodes"] = time.monotonic() - t0
            t0 = time.monotonic()
            self._wait_metrics_api(deadline)
            steps["metrics-api"] = time.monotonic() - t0
        except BaseException:
            if created:
                self._say("start failed: removing the half-started cluster")
                self._teardown(binaries, quiet=True)
            raise
        self._write_state(binaries)
        elapsed = time.monotonic() - started
        self._say(f"cluster {self.spec.name} ready in {elapsed:.1f}s; KUBECONFIG={self.kubeconfig}")
        return UpResult(self.status(), created, elapsed, steps)

    def _check_ports(self) -> None:
        ports = dict(self.spec.ports.by_component)
        if self.spec.real_nodes:
            from tfsbed.cluster.node.config import REGISTRY_PORT_OFFSET

            ports["the local registry"] = self.spec.ports.base + REGISTRY_PORT_OFFSET
        for component, port in ports.items():
            if procs.port_in_use(port):
                raise Conflict(
                    f"port {port} for {component} is already in use by {procs.port_owner(port)}: stop it, or "
                    f"pick another port range with `tfsctl cluster up --port-base N` "
                    f"(now {self.spec.ports.base})"
                )

    def _create(self, binaries: cspec.Binaries) -> None:
        self._check_ports()
        manifests = self.state_dir / "manifests" / "metrics-server"
        manifests.mkdir(parents=True, exist_ok=True)
        for fname, text in cspec.metrics_server_manifests().items():
            (manifests / fname).write_text(text)
        cache = self.state_dir / "cache"
        # kwokctl caches rendered manifests by source path; always render ours afresh.
        shutil.rmtree(cache / "manifest", ignore_errors=True)
        config = cspec.kwokctl_config(self.spec, binaries, manifests, cache)
        if self.spec.real_nodes:
            # kubectl logs/exec: the apiserver authenticates to real kubelets with the admin certificate
            pki = self.workdir / "pki"
            patches = config["componentsPatches"]
            api = next((p for p in patches if p["name"] == "kube-apiserver"), None)
            if api is None:
                api = {"name": "kube-apiserver", "extraArgs": []}
                patches.append(api)
            api["extraArgs"] += [
                {"key": "kubelet-client-certificate", "value": str(pki / "admin.crt"), "override": False},
                {"key": "kubelet-client-key", "value": str(pki / "admin.key"), "override": False},
                # real nodes' names are not in any resolver: dial kubelets by their node IP
                {"key": "kubelet-preferred-address-types", "value": "InternalIP,Hostname", "override": False},
            ]
        (self.state_dir / "kwokctl.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        self._say(f"starting control plane: {', '.join(cspec.CONTROL_PLANE)}")
        try:
            self._kwokctl(
                binaries,
                "create",
                "cluster",
                "--kubeconfig",
                str(self.kubeconfig),
                "--timeout",
                "3m",
                "--wait",
                "90s",
            )
            self._verify_components(binaries)
        except BaseException:
            self._say("start failed: stopping what was started")
            self._teardown(binaries, quiet=True)
            raise

    def _resume(self, binaries: cspec.Binaries) -> None:
        states = [c for c in self.component_states() if c.name in cspec.CONTROL_PLANE]
        if all(c.running for c in states) and self._apiserver_ready():
            self._say(f"reusing the running cluster in {self.workdir}")
            self._check_drift(binaries)
            for c in states:
                self._say(f"{c.name}: running (pid {c.pid})")
            return
        stopped = [c.name for c in states if not c.running]
        self._say(f"restarting stopped components of the cluster in {self.workdir}: {', '.join(stopped)}")
        for c in states:
            if not c.running and c.name in self.spec.ports.by_component:
                port = self.spec.ports.by_component[c.name]
                if procs.port_in_use(port):
                    raise Conflict(
                        f"a stale cluster from an earlier run is in {self.workdir} and port {port} "
                        f"({c.name}) is held by {procs.port_owner(port)}: run `tfsctl cluster down` and retry"
                    )
        try:
            self._kwokctl(binaries, "start", "cluster", timeout=180)
            self._verify_components(binaries)
        except ToolkitError as exc:
            raise Conflict(
                f"a stale cluster from an earlier run is in {self.workdir} and could not be restarted "
                f"({exc}): run `tfsctl cluster down` and retry"
            ) from exc
        self._check_drift(binaries)

    def _check_drift(self, binaries: cspec.Binaries) -> None:
        try:
            saved = json.loads((self.state_dir / "cluster.json").read_text())
        except (OSError, ValueError):
            return
        if saved.get("fingerprint") != cspec.fingerprint(self.spec, binaries):
            self._say(
                "note: the cluster was created with another configuration; "
                "`tfsctl cluster down` then `up` applies the current one"
            )

    def _verify_components(self, binaries: cspec.Binaries, settle: float = 2.0, retry: bool = True) -> None:
        """kwokctl reports success even when a component exits right after start: check each.

        A component that exits while kube-apiserver is still coming up (metrics-server
        does, when it cannot read its client CA yet) is started once more when the
        apiserver answers, as a kubelet would restart a static pod.
        """
        time.sleep(settle)
        states = [c for c in self.component_states() if c.name in cspec.CONTROL_PLANE]
        exited = [c for c in states if not c.running]
        if retry and exited and "kube-apiserver" not in {c.name for c in exited}:
            deadline = time.monotonic() + 30
            while not self._apiserver_ready() and time.monotonic() < deadline:
                time.sleep(1)
            names = ", ".join(c.name for c in exited)
            self._say(f"{names}: exited right after start; starting again now that kube-apiserver answers")
            log.info("exited at start: %s", "; ".join(f"{c.name}: {c.detail}" for c in exited))
            self._kwokctl(binaries, "start", "cluster", timeout=180)
            self._verify_components(binaries, settle, retry=False)
            return
        for c in states:
            if not c.running:
                where = self.workdir / "logs" / f"{c.name}.log"
                raise Unavailable(f"{c.name} exited right after start: {c.detail or 'no log'} (log: {where})")
            self._say(f"{c.name}: running (pid {c.pid})")
        if not self._apiserver_ready():
            where = self.workdir / "logs" / "kube-apiserver.log"
            raise Unavailable(f"kube-apiserver does not answer /readyz (log: {where})")

    def _bootstrap_objects(self, deadline: float) -> None:
        """Default emulated usage and the kwok nodes (idempotent), then wait for them to be Ready."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        with self.api_client() as api:
            core = client.CoreV1Api(api)
            custom = client.CustomObjectsApi(api)
            usage = cspec.default_resource_usage()
            self._retry_until(
                deadline,
                "kwok ClusterResourceUsage CRD",
                lambda: self._create_or_ignore(
                    lambda: custom.create_cluster_custom_object(
                        "kwok.x-k8s.io", "v1alpha1", "clusterresourceusages", usage, _request_timeout=10
                    )
                ),
            )
            for node in self.spec.kwok_nodes():
                body = cspec.node_manifest(node)
                try:
                    core.create_node(cast(Any, body), _request_timeout=10)
                except ApiException as exc:
                    if exc.status != 409:
                        raise Unavailable(f"creating node {node.name} failed: {exc.reason}") from exc
                    core.patch_node(
                        node.name,
                        {"metadata": {"labels": body["metadata"]["labels"]}, "spec": body["spec"]},
                        _request_timeout=10,
                    )
            names = [n.name for n in self.spec.kwok_nodes()]
            self._wait_nodes_ready(core, names, deadline)
            for n in self.spec.kwok_nodes():
                self._say(f"node {n.name} ({n.node_type}, kwok): Ready")

    @staticmethod
    def _create_or_ignore(fn: Callable[[], Any]) -> bool:
        from kubernetes.client.rest import ApiException

        try:
            fn()
        except ApiException as exc:
            if exc.status == 409:
                return True
            if exc.status == 404:  # CRD not served yet
                return False
            raise
        return True

    @staticmethod
    def _retry_until(deadline: float, what: str, fn: Callable[[], bool], interval: float = 0.5) -> None:
        while True:
            if fn():
                return
            if time.monotonic() > deadline:
                raise Timeout(f"timed out waiting for {what}")
            time.sleep(interval)

    def _wait_nodes_ready(self, core: Any, names: list[str], deadline: float) -> None:
        pending = set(names)
        while pending:
            for name in sorted(pending):
                with contextlib.suppress(Exception):
                    node = core.read_node(name, _request_timeout=5)
                    if kubestate.is_ready(node):
                        pending.discard(name)
            if not pending:
                return
            if time.monotonic() > deadline:
                raise Timeout(f"nodes not Ready in time: {', '.join(sorted(pending))}")
            time.sleep(0.5)

    def _wait_metrics_api(self, deadline: float) -> None:
        from kubernetes import client

        with self.api_client() as api:
            reg = client.ApiregistrationV1Api(api)
            last = ""
            while True:
                with contextlib.suppress(Exception):
                    svc: Any = reg.read_api_service("v1beta1.metrics.k8s.io", _request_timeout=5)
                    for c in svc.status.conditions or []:
                        if c.type == "Available":
                            if c.status == "True":
                                self._say("metrics-server: metrics.k8s.io available")
                                return
                            last = f"{c.reason}: {c.message}"
                if time.monotonic() > deadline:
                    raise Timeout(
                        f"metrics.k8s.io not available in time ({last or 'APIService missing'}); "
                        f"log: {self.workdir / 'logs' / 'metrics-server.log'}"
                    )
                time.sleep(1)

    # -- down ----------------------------------------------------------------------------------

    def down(self, timeout: float = 60.0) -> list[str]:
        """Stop the real nodes, delete the cluster, remove leftovers; returns what was stopped."""
        with self._locked(max(timeout, 300.0)):
            return self._down(timeout)

    def _down(self, timeout: float) -> list[str]:
        stopped = self._down_real_nodes()
        if self.exists():
            try:
                binaries = self.ensure_binaries_quiet()
            except ToolkitError:
                binaries = None
            stopped += [
                c.name for c in self.component_states() if c.running and c.name in cspec.CONTROL_PLANE
            ]
            if binaries is not None:
                self._say(f"deleting cluster {self.spec.name}")
                with contextlib.suppress(ToolkitError):
                    self._kwokctl(
                        binaries, "delete", "cluster", "--kubeconfig", str(self.kubeconfig), timeout=120
                    )
        for pid, name in self._leftover_processes():
            self._say(f"stopping leftover {name} (pid {pid})")
            _terminate(pid, 10.0)
            stopped.append(name)
        self._remove_state()
        return stopped

    def ensure_binaries_quiet(self) -> cspec.Binaries:
        progress, self._progress = self._progress, None
        try:
            return self.ensure_binaries()
        finally:
            self._progress = progress

    def _teardown(self, binaries: cspec.Binaries, quiet: bool) -> None:
        with contextlib.suppress(ToolkitError):
            self._down_real_nodes()
        if self.exists():
            with contextlib.suppress(ToolkitError):
                self._kwokctl(
                    binaries, "delete", "cluster", "--kubeconfig", str(self.kubeconfig), timeout=120
                )
        for pid, _name in self._leftover_processes():
            _terminate(pid, 10.0)
        self._remove_state()

    def _leftover_processes(self) -> Iterator[tuple[int, str]]:
        """Processes started from this cluster's workdir (e.g. after a lost workdir)."""
        import psutil

        workdir = str(self.workdir)
        for proc in psutil.process_iter(["pid", "cmdline", "name"]):
            cmdline = proc.info.get("cmdline") or []
            if not cmdline or proc.info["pid"] == os.getpid():
                continue
            if cmdline[0].startswith(workdir + os.sep):
                yield proc.info["pid"], Path(cmdline[0]).name

    def _remove_state(self) -> None:
        for child in ("kwok", "manifests", "kwokctl.yaml", "cluster.json"):
            path = self.state_dir / child
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        with contextlib.suppress(OSError, yaml.YAMLError):
            doc = yaml.safe_load(self.kubeconfig.read_text()) or {}
            if not doc.get("contexts"):
                self.kubeconfig.unlink()

    def _write_state(self, binaries: cspec.Binaries) -> None:
        state_file = self.state_dir / "cluster.json"
        try:
            saved = json.loads(state_file.read_text())
        except (OSError, ValueError):
            saved = {
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "fingerprint": cspec.fingerprint(self.spec, binaries),
            }
        saved.update(name=self.spec.name, port_base=self.spec.ports.base, kubeconfig=str(self.kubeconfig))
        state_file.write_text(json.dumps(saved, indent=2) + "\n")


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM ``pid``, SIGKILL after ``timeout``."""
    import psutil

    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except psutil.TimeoutExpired:
        log.warning("pid %d did not stop within %.0fs after SIGTERM; sending SIGKILL", pid, timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(psutil.TimeoutExpired):
            proc.wait(timeout=5)
