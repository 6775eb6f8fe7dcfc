"""Start, inspect and stop the real nodes and the local registry (the adapter of :mod:`.config`).

Per node: a network namespace with a veth to the host bridge, a *holder* process
that owns the node's private mount namespace (``/run``, ``/var/lib``, ``/var/log``
and kubelet's sysctls are the node's own there), and containerd, kubelet and
kube-proxy entered into both namespaces with ``nsenter``. Every process of a node,
pods included, lives under the node's cgroup (``/<cgroup>`` in each v1 hierarchy;
kubelet's ``cgroupRoot``), which is how ``down`` finds and ends them all.

What ``down`` removes, in order: processes (by cgroup), cgroups, the host route,
veth and namespace, the registry, the bridge, then the state directory (only once
no mount of ours remains). Nothing is left on the host: iptables rules live in the
node's namespace and go with it.
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
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from tfsbed.cluster import addons, procs
from tfsbed.cluster.node import config as nconfig
from tfsbed.cluster.node import images, pki, toolkit
from tfsctl.errors import Conflict, Timeout, Unavailable

log = logging.getLogger(__name__)

CGROUP_FS = Path("/sys/fs/cgroup")
CONTAINERD = "/usr/bin/containerd"
COMPONENTS = ("containerd", "kubelet", "kube-proxy")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class NodeBinaries:
    kubelet: Path
    kube_proxy: Path
    kubectl: Path
    coredns: Path
    registry: Path


@dataclass
class Component:
    name: str
    running: bool
    pid: int | None
    log: Path
    detail: str = ""


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _tail(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def _run(cmd: list[str], what: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise Unavailable(f"{what} failed: {(proc.stderr or proc.stdout).strip() or 'no output'}")
    return proc


def _hierarchies() -> list[Path]:
    """Every mounted hierarchy (the v1 controllers, name=systemd and the controller-less v2 mount).

    runc makes a container's cgroup in each, so the node's cgroup is made (and removed) in each.
    """
    out = []
    for d in sorted(CGROUP_FS.iterdir()):
        if (d / "cgroup.procs").exists() and not d.is_symlink():
            out.append(d)
    return out


class RealNodes:
    """The real nodes of one local cluster and the registry their images come from."""

    def __init__(
        self,
        plan: nconfig.Plan,
        state_dir: Path,
        *,
        pki_dir: Path,
        apiserver_port: int,
        admin_kubeconfig: Path,
        binaries: NodeBinaries,
        progress: Progress | None = None,
        proxy_mode: str = "iptables",
        addon_names: tuple[str, ...] | None = None,
        kubelet_sync_frequency: str | None = None,
    ) -> None:
        self.plan = plan
        self.root = state_dir / "nodes"
        self.pki_dir = pki_dir
        self.apiserver_port = apiserver_port
        self.admin_kubeconfig = admin_kubeconfig
        self.binaries = binaries
        self.proxy_mode = proxy_mode
        self.addons = addons.select(addon_names)
        self.kubelet_sync_frequency = kubelet_sync_frequency
        self._progress = progress
        self._built: list[tuple[images.Recipe, images.Built]] | None = None
        self.timings: dict[str, float] = {}

    def _say(self, msg: str) -> None:
        log.info("%s", msg)
        if self._progress is not None:
            self._progress(msg)

    def dirs(self, node: nconfig.RealNode) -> nconfig.NodeDirs:
        return nconfig.NodeDirs(self.root / node.name)

    @property
    def registry_dir(self) -> Path:
        return self.root / "registry"

    @property
    def server(self) -> str:
        return f"https://{self.plan.uplink.host_ip}:{self.apiserver_port}"

    # -- status ----------------------------------------------------------------------------------

    def components(self) -> list[Component]:
        out: list[Component] = []
        if not self.plan.nodes:
            return out
        rlog = self.registry_dir / "registry.log"
        pid = procs.read_pid(self.registry_dir / "registry.pid")
        out.append(Component("registry", _alive(pid), pid if _alive(pid) else None, rlog))
        for node in self.plan.nodes:
            d = self.dirs(node)
            for name in COMPONENTS:
                pid = procs.read_pid(d.pids / f"{name}.pid")
                up = _alive(pid)
                out.append(Component(f"{node.name}/{name}", up, pid if up else None, d.logs / f"{name}.log"))
        for c in out:
            if not c.running:
                c.detail = _tail(c.log)
        return out

    def running_proxy_mode(self) -> str:
        """kube-proxy's mode on the running nodes (as ``up`` recorded it)."""
        try:
            return str(json.loads((self.root / "plan.json").read_text()).get("proxy_mode", "iptables"))
        except (OSError, ValueError):
            return "iptables"

    def started(self) -> bool:
        """Whether an earlier ``up`` left anything of ours (state, a namespace, the bridge)."""
        return (
            self.root.exists() or self._bridge_exists() or any(self._netns_exists(n) for n in self.plan.nodes)
        )

    # -- up --------------------------------------------------------------------------------------

    def up(self, deadline: float) -> None:
        """Registry, images, CoreDNS objects, then every node until Ready; a failure removes it all."""
        if not self.plan.nodes:
            return
        comps = self.components()
        if comps and all(c.running for c in comps):
            running = self.running_proxy_mode()
            if running != self.proxy_mode:
                raise Conflict(
                    f"the real nodes run kube-proxy in {running} mode, not {self.proxy_mode}: "
                    "`tfsctl cluster down` first to change --proxy-mode"
                )
            self._say(f"real nodes: reusing {', '.join(n.name for n in self.plan.nodes)}")
            self._wait_ready(deadline)
            return
        if self.started():
            self._say("real nodes: removing a stale node from an earlier run")
            self.down()
        self.root.mkdir(parents=True)
        # how many nodes there are, for `down` and `status` without --real-nodes
        plan = {"count": len(self.plan.nodes), "proxy_mode": self.proxy_mode}
        (self.root / "plan.json").write_text(json.dumps(plan) + "\n")
        try:
            t0 = time.monotonic()
            self._check_ports()
            self._bridge_up()
            self._start_registry()
            self.timings["registry"] = time.monotonic() - t0
            t0 = time.monotonic()
            self._push_images()
            self.timings["images"] = time.monotonic() - t0
            self._push_chart()
            dns_ip = self._apply_coredns()
            t0 = time.monotonic()
            for node in self.plan.nodes:
                self._start_node(node, dns_ip)
            self._wait_ready(deadline)
            self.timings["nodes-ready"] = time.monotonic() - t0
            t0 = time.monotonic()
            self._wait_coredns(deadline)
            self.timings["coredns"] = time.monotonic() - t0
            self._install_addons(deadline)
        except BaseException:
            self._say("real nodes: start failed, removing what was started")
            self.down()
            raise

    def _check_ports(self) -> None:

        port = self.plan.port_base + nconfig.REGISTRY_PORT_OFFSET
        if procs.port_in_use(port):
            raise Conflict(
                f"port {port} for the local registry is in use by {procs.port_owner(port)}: "
                "stop it or use `--port-base`"
            )

    def _bridge_exists(self) -> bool:
        return Path(f"/sys/class/net/{self.plan.uplink.bridge}").exists()

    @staticmethod
    def _netns_exists(node: nconfig.RealNode) -> bool:
        return Path(f"/run/netns/{node.netns}").exists()

    def _bridge_up(self) -> None:
        up = self.plan.uplink
        _run(["ip", "link", "add", up.bridge, "type", "bridge"], f"creating bridge {up.bridge}")
        _run(["ip", "addr", "add", f"{up.host_ip}/{up.prefix}", "dev", up.bridge], f"addressing {up.bridge}")
        _run(["ip", "link", "set", up.bridge, "up"], f"bringing up {up.bridge}")

    def _start_registry(self) -> None:
        d = self.registry_dir
        (d / "data").mkdir(parents=True, exist_ok=True)
        cfg = d / "config.yml"
        cfg.write_text(yaml.safe_dump(nconfig.registry_config(d / "data", self.plan.registry)))
        with open(d / "registry.log", "ab") as logf:
            proc = subprocess.Popen(
                [str(self.binaries.registry), "serve", str(cfg)],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (d / "registry.pid").write_text(f"{proc.pid}\n")
        until = time.monotonic() + 20
        while True:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://{self.plan.registry}/v2/", timeout=2),
            ):
                break
            if proc.poll() is not None:
                raise Unavailable(
                    f"the local registry exited: {_tail(d / 'registry.log') or 'no output'} "
                    f"(log: {d / 'registry.log'})"
                )
            if time.monotonic() > until:
                raise Timeout(
                    f"the local registry does not answer on {self.plan.registry} (log: {d / 'registry.log'})"
                )
            time.sleep(0.2)
        self._say(f"registry: serving on {self.plan.registry} (pid {proc.pid})")

    def _recipes(self) -> list[images.Recipe]:
        recipes = images.node_images(self.binaries.coredns)
        recipes.append(
            images.serving_recipe(images.chart_app_version(), images.images_cache() / "files" / "serving")
        )
        # the chart's canary Job (canary.job.image): tfsctl's core and helm
        recipes.append(toolkit.toolkit_recipe(images.images_cache() / "files" / "tfsctl"))
        recipes.append(
            images.loadtest_recipe(images.chart_app_version(), images.images_cache() / "files" / "serving")
        )
        for addon in self.addons:
            recipes.extend(addon.recipes())
        return recipes

    def build_images(self) -> list[tuple[images.Recipe, images.Built]]:
        """Build every image the nodes run, or find it cached (by content); kept for ``up``.

        A first build takes minutes on a fresh machine (the drop-in's virtualenv); like the
        tools' first build it comes before ``up``'s timeout starts, so callers run it first.
        """
        if self._built is None:
            self._built = [(r, images.build(r)) for r in self._recipes()]
        return self._built

    def _push_images(self) -> None:
        for recipe, built in self.build_images():
            how = "cached" if built.cached else f"built in {built.seconds:.1f}s"
            t0 = time.monotonic()
            images.push(built, self.plan.registry)
            self.timings[f"image:{recipe.name}"] = built.seconds
            self._say(
                f"image {recipe.ref}: {how} (sha256:{built.digest[:12]}), "
                f"pushed in {time.monotonic() - t0:.1f}s"
            )

    @property
    def chart_repository(self) -> str:
        """Where the chart is pushed: ``helm install oci://<this>/tensorflow-serving --plain-http``."""
        return f"oci://{self.plan.registry}/charts"

    def _push_chart(self) -> None:
        """``helm package`` + ``helm push`` the chart, so it is installed from a registry as users do."""
        import tempfile

        from tfsbed import toolchain
        from tfsctl import paths

        helm = str(toolchain.binary("helm"))
        with tempfile.TemporaryDirectory(prefix="tfsctl-chart-") as tmp:
            out = _run([helm, "package", str(paths.CHART_DIR), "-d", tmp], "helm package")
            tgz = out.stdout.strip().rsplit(": ", 1)[-1]
            _run(
                [helm, "push", tgz, self.chart_repository, "--plain-http"],
                f"helm push to {self.chart_repository}",
            )
        self._say(f"chart: pushed to {self.chart_repository}/tensorflow-serving")

    def _kubectl(self, *args: str, stdin: str | None = None, timeout: float = 60.0) -> str:
        cmd = [str(self.binaries.kubectl), "--kubeconfig", str(self.admin_kubeconfig), *args]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise Unavailable(f"kubectl {' '.join(args[:3])} failed: {proc.stderr.strip()}")
        return proc.stdout

    def _apply_coredns(self) -> str:
        docs = [*nconfig.coredns_manifests(self.server, "localhost"), nconfig.registry_hosting(self.plan)]
        self._kubectl(
            "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
        )
        ip = self._kubectl(
            "get", "service", "kube-dns", "-n", "kube-system", "-o", "jsonpath={.spec.clusterIP}"
        )
        self._say(f"coredns: Service kube-system/kube-dns at {ip}")
        return ip.strip()

    def _addon_context(self) -> addons.Context:
        return addons.Context(
            plan=self.plan,
            server=self.server,
            kubectl=self._kubectl,
            say=self._say,
            ca_cert=(self.pki_dir / "ca.crt").read_bytes(),
            ca_key=(self.pki_dir / "ca.key").read_bytes(),
        )

    def _install_addons(self, deadline: float) -> None:
        ctx = self._addon_context()
        for addon in self.addons:
            t0 = time.monotonic()
            docs = addon.manifests(ctx)
            self._kubectl(
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                "-",
                stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}),
            )
            addon.wait(ctx, deadline)
            self.timings[f"addon:{addon.name}"] = time.monotonic() - t0
            self._say(f"{addon.name}: available")

    def _wait_coredns(self, deadline: float) -> None:
        left = max(5, int(deadline - time.monotonic()))
        try:
            self._kubectl(
                "rollout",
                "status",
                "deployment/coredns",
                "-n",
                "kube-system",
                f"--timeout={left}s",
                timeout=left + 10,
            )
        except Unavailable as exc:
            raise Timeout(f"CoreDNS not available in time: {exc}") from exc
        self._say("coredns: available")

    # -- one node ----------------------------------------------------------------------------------

    def _issue(self, dirs: nconfig.NodeDirs, node: nconfig.RealNode) -> None:
        ca_crt = (self.pki_dir / "ca.crt").read_bytes()
        ca_key = (self.pki_dir / "ca.key").read_bytes()
        dirs.pki.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.pki_dir / "ca.crt", dirs.pki / "ca.crt")
        cn, orgs = nconfig.kubelet_subject(node)
        issued = {
            "kubelet-client": pki.issue(ca_crt, ca_key, cn, orgs),
            "kubelet-serving": pki.issue(
                ca_crt, ca_key, cn, orgs, client=False, server_ips=(node.ip,), server_names=(node.name,)
            ),
            "kube-proxy": pki.issue(ca_crt, ca_key, *nconfig.KUBE_PROXY_SUBJECT),
        }
        for name, cert in issued.items():
            (dirs.pki / f"{name}.crt").write_bytes(cert.cert_pem)
            key = dirs.pki / f"{name}.key"
            key.touch(mode=0o600)
            key.write_bytes(cert.key_pem)

    def _write_configs(self, dirs: nconfig.NodeDirs, node: nconfig.RealNode, dns_ip: str) -> None:
        for d in (
            dirs.certs_d,
            dirs.cni_conf,
            dirs.cni_ipam,
            dirs.var_lib,
            dirs.var_log,
            dirs.sysctls,
            dirs.logs,
            dirs.pids,
            dirs.containerd_root,
        ):
            d.mkdir(parents=True, exist_ok=True)
        (dirs.root / "containerd.toml").write_text(nconfig.containerd_config(dirs))
        for upstream in nconfig.MIRRORED_REGISTRIES:
            (dirs.certs_d / upstream).mkdir(parents=True, exist_ok=True)
            (dirs.certs_d / upstream / "hosts.toml").write_text(
                nconfig.mirror_hosts(self.plan.registry, upstream)
            )
        (dirs.cni_conf / "10-tfsctl.conflist").write_text(nconfig.cni_conflist(node, dirs))
        (dirs.root / "resolv.conf").write_text("# no upstream resolver on this machine\n")
        ca = dirs.pki / "ca.crt"
        for user, name in (
            (nconfig.kubelet_subject(node)[0], "kubelet"),
            ("system:kube-proxy", "kube-proxy"),
        ):
            cert = dirs.pki / f"{'kubelet-client' if name == 'kubelet' else name}.crt"
            doc = nconfig.kubeconfig(self.server, ca, cert, cert.with_suffix(".key"), user, "localhost")
            (dirs.root / f"{name}.kubeconfig").write_text(yaml.safe_dump(doc))
        kcfg = nconfig.kubelet_config(node, dirs, ca, dns_ip, self.kubelet_sync_frequency)
        (dirs.root / "kubelet.yaml").write_text(yaml.safe_dump(kcfg))
        pcfg = nconfig.kube_proxy_config(
            node, dirs.root / "kube-proxy.kubeconfig", str(self.plan.pods), self.proxy_mode
        )
        (dirs.root / "kube-proxy.yaml").write_text(yaml.safe_dump(pcfg))

    def _make_cgroups(self, node: nconfig.RealNode) -> None:
        for h in _hierarchies():
            for rel in (node.cgroup, f"{node.cgroup}/node"):
                path = h / rel
                path.mkdir(exist_ok=True)
                if h.name == "cpuset":
                    for f in ("cpuset.cpus", "cpuset.mems"):
                        if not (path / f).read_text().strip():
                            (path / f).write_text((path.parent / f).read_text())

    @staticmethod
    def _joiner(node: nconfig.RealNode) -> Callable[[], None]:
        targets = [h / node.cgroup / "node" / "cgroup.procs" for h in _hierarchies()]

        def join() -> None:
            for t in targets:
                with open(t, "w") as fh:
                    fh.write("0")

        return join

    def _network(self, node: nconfig.RealNode) -> None:
        up = self.plan.uplink
        ns = node.netns
        _run(["ip", "netns", "add", ns], f"creating network namespace {ns}")
        _run(
            ["ip", "link", "add", node.veth, "type", "veth", "peer", "name", "eth0", "netns", ns],
            f"creating veth {node.veth}",
        )
        _run(["ip", "link", "set", node.veth, "master", up.bridge, "up"], f"attaching {node.veth}")
        _run(
            ["ip", "-n", ns, "addr", "add", f"{node.ip}/{up.prefix}", "dev", "eth0"],
            f"addressing {node.name}",
        )
        _run(["ip", "-n", ns, "link", "set", "eth0", "up"], f"bringing up {node.name}'s eth0")
        _run(["ip", "-n", ns, "route", "add", "default", "via", up.host_ip], f"routing {node.name}")
        _run(["ip", "route", "add", node.pod_cidr, "via", node.ip], f"routing {node.pod_cidr} to {node.name}")
        # pod to pod across nodes: straight over the bridge (the host need not forward)
        for other in self.plan.nodes:
            if other != node:
                route = ["ip", "-n", ns, "route", "add", other.pod_cidr, "via", other.ip]
                _run(route, f"routing {node.name} to {other.name}")

    def _spawn(self, dirs: nconfig.NodeDirs, node: nconfig.RealNode, name: str, cmd: list[str]) -> int:
        with open(dirs.logs / f"{name}.log", "ab") as logf:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self._joiner(node),  # joins the node's cgroup before exec
                cwd=str(dirs.root),
            )
        (dirs.pids / f"{name}.pid").write_text(f"{proc.pid}\n")
        return proc.pid

    def _enter(self, dirs: nconfig.NodeDirs) -> list[str]:
        holder = procs.read_pid(dirs.pids / "holder.pid")
        return ["nsenter", "-t", str(holder), "-m", "-n", "--"]

    def _start_node(self, node: nconfig.RealNode, dns_ip: str) -> None:
        started = time.monotonic()
        dirs = self.dirs(node)
        self._write_configs(dirs, node, dns_ip)
        self._issue(dirs, node)
        self._make_cgroups(node)
        self._network(node)
        script = nconfig.holder_script(dirs, self.plan.uplink)
        self._spawn(
            dirs,
            node,
            "holder",
            [
                "nsenter",
                f"--net=/run/netns/{node.netns}",
                "--",
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                script,
            ],
        )
        self._wait_file(dirs.root / "READY", dirs, "holder", 10)
        self._spawn(
            dirs,
            node,
            "containerd",
            [*self._enter(dirs), CONTAINERD, "--config", str(dirs.root / "containerd.toml")],
        )
        holder = procs.read_pid(dirs.pids / "holder.pid")
        self._wait_file(Path(f"/proc/{holder}/root{dirs.containerd_socket}"), dirs, "containerd", 30)
        self._spawn(
            dirs,
            node,
            "kubelet",
            [
                *self._enter(dirs),
                str(self.binaries.kubelet),
                *nconfig.kubelet_args(node, dirs.root / "kubelet.yaml", dirs.root / "kubelet.kubeconfig"),
            ],
        )
        self._spawn(
            dirs,
            node,
            "kube-proxy",
            [*self._enter(dirs), str(self.binaries.kube_proxy), f"--config={dirs.root / 'kube-proxy.yaml'}"],
        )
        self._say(
            f"node {node.name}: containerd, kubelet, kube-proxy started in {time.monotonic() - started:.1f}s "
            f"(netns {node.netns}, ip {node.ip}, pods {node.pod_cidr}, logs {dirs.logs})"
        )

    def _wait_file(self, path: Path, dirs: nconfig.NodeDirs, name: str, seconds: float) -> None:
        until = time.monotonic() + seconds
        while not path.exists():
            pid = procs.read_pid(dirs.pids / f"{name}.pid")
            where = dirs.logs / f"{name}.log"
            if not _alive(pid):
                raise Unavailable(
                    f"{dirs.root.name}/{name} exited at start: {_tail(where) or 'no output'} (log: {where})"
                )
            if time.monotonic() > until:
                raise Timeout(f"{dirs.root.name}/{name} not ready within {seconds:.0f}s (log: {where})")
            time.sleep(0.1)

    def crashed(self) -> Component | None:
        for c in self.components():
            if not c.running:
                return c
        return None

    def _wait_ready(self, deadline: float) -> None:
        pending = {n.name for n in self.plan.nodes}
        while pending:
            for name in sorted(pending):
                with contextlib.suppress(Unavailable, subprocess.TimeoutExpired):
                    out = self._kubectl(
                        "get",
                        "node",
                        name,
                        "-o",
                        'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
                        timeout=10,
                    )
                    if out.strip() == "True":
                        self._record_pod_cidr(name)
                        pending.discard(name)
                        self._say(f"node {name} (real: containerd + kubelet + kube-proxy): Ready")
            if not pending:
                return
            if (c := self.crashed()) is not None:
                raise Unavailable(f"{c.name} exited: {c.detail or 'no output'} (log: {c.log})")
            if time.monotonic() > deadline:
                raise Timeout(
                    f"real nodes not Ready in time: {', '.join(sorted(pending))} (logs under {self.root})"
                )
            time.sleep(0.5)

    def _record_pod_cidr(self, name: str) -> None:
        """Set the node's ``spec.podCIDR(s)`` to its CNI range, as kube-controller-manager's node
        IPAM does on a kubeadm cluster (``--allocate-node-cidrs``); clients read a node's pod range
        there. The field is immutable once set, so a resumed node is left as it is."""
        (node,) = [n for n in self.plan.nodes if n.name == name]
        current = self._kubectl("get", "node", name, "-o", "jsonpath={.spec.podCIDR}", timeout=10).strip()
        if current:
            return
        patch = {"spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]}}
        self._kubectl("patch", "node", name, "--type=merge", "-p", json.dumps(patch), timeout=10)

    # -- down --------------------------------------------------------------------------------------

    def down(self) -> list[str]:
        """Stop everything of ours and remove it; returns the components that were running."""
        stopped = [c.name for c in self.components() if c.running]
        for node in self.plan.nodes:
            self._stop_node(node)
        pid = procs.read_pid(self.registry_dir / "registry.pid")
        if _alive(pid):
            assert pid is not None
            _terminate(pid)
        if self._bridge_exists():
            _run(["ip", "link", "del", self.plan.uplink.bridge], "deleting the bridge", check=False)
        if self.root.exists():
            left = mounts_under(self.root)
            if left:
                raise Unavailable(
                    f"mounts of the real node remain, not removing {self.root}: {', '.join(left[:3])}"
                )
            shutil.rmtree(self.root, ignore_errors=True)
        return stopped

    def _stop_node(self, node: nconfig.RealNode) -> None:
        dirs = self.dirs(node)
        for name in ("kube-proxy", "kubelet", "containerd"):
            pid = procs.read_pid(dirs.pids / f"{name}.pid")
            if _alive(pid):
                assert pid is not None
                _terminate(pid, timeout=10)
        kill_cgroup(node.cgroup)
        _run(["ip", "route", "del", node.pod_cidr], "route", check=False)
        if Path(f"/sys/class/net/{node.veth}").exists():
            _run(["ip", "link", "del", node.veth], f"deleting {node.veth}", check=False)
        if self._netns_exists(node):
            _run(["ip", "netns", "del", node.netns], f"deleting {node.netns}", check=False)


def leftover_count(port_base: int) -> int:
    """How many real nodes of this port base left a namespace or cgroup (found without any state)."""
    highest = -1
    for found in (
        *Path("/run/netns").glob(f"tfsctl-{port_base}-node-*"),
        *CGROUP_FS.glob(f"*/tfsctl-{port_base}-node-*"),
    ):
        with contextlib.suppress(ValueError):
            highest = max(highest, int(found.name.rsplit("-", 1)[1]))
    return highest + 1


def _terminate(pid: int, timeout: float = 10.0) -> None:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        proc = psutil.Process(pid)
        proc.terminate()
        try:
            proc.wait(timeout)
        except psutil.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(psutil.TimeoutExpired):
                proc.wait(5)


def _cgroup_dirs(name: str) -> Iterator[Path]:
    """Every directory of cgroup ``/<name>`` and below, deepest first, in every hierarchy."""
    for h in _hierarchies():
        top = h / name
        if top.is_dir():
            yield from sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
            yield top


def cgroup_pids(name: str) -> set[int]:
    pids: set[int] = set()
    for d in _cgroup_dirs(name):
        with contextlib.suppress(OSError):
            pids |= {int(x) for x in (d / "cgroup.procs").read_text().split()}
    return pids


def kill_cgroup(name: str, timeout: float = 15.0) -> None:
    """SIGKILL every process in cgroup ``/<name>`` (pods, shims, the node's daemons), then remove it."""
    until = time.monotonic() + timeout
    while pids := cgroup_pids(name):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):  # our own children (the holder): reap
                os.waitpid(pid, os.WNOHANG)
        if time.monotonic() > until:
            raise Unavailable(f"processes {sorted(pids)[:5]} in cgroup /{name} do not exit")
        time.sleep(0.2)
    for d in _cgroup_dirs(name):
        for _ in range(20):
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)


def mounts_under(root: Path) -> list[str]:
    """Mount points below ``root`` as the host sees them (there must be none once a node is down)."""
    prefix = str(root.resolve())
    out = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4]
            if point == prefix or point.startswith(prefix + "/"):
                out.append(point)
    return out
