"""The real node as data: addresses, names and every configuration file it reads.

Pure: no I/O. :mod:`.runtime` writes these files and starts the processes.

Each real node is a network namespace joined to the host by a veth pair on a
host bridge (``tfsbr<n>``); the host routes the node's pod range to the node's
address, the node routes everything else back to the host. Addresses and names
derive from the cluster's port base, so two clusters on one machine (the lead's
and a test's) never share an interface, a range or a cgroup.

The settings that this machine needs and a stock node would not (cgroup v1
without systemd, no CAP_SYS_RESOURCE) are marked where they are set.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tfsbed.cluster import NODE_TYPE_LABEL

PAUSE_IMAGE = "registry.k8s.io/pause:3.10.1"
COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.14.7"
BUSYBOX_IMAGE = "docker.io/library/busybox:1.35.0"
# Registries whose images the local registry mirrors; images keep these names in manifests.
MIRRORED_REGISTRIES = ("docker.io", "registry.k8s.io", "quay.io")
REAL_NODE_TAINT = "node.tfsctl.dev/real"
# What a pod placed on the real node carries (the node registers with REAL_NODE_TAINT:NoSchedule).
REAL_NODE_TOLERATION = {"key": REAL_NODE_TAINT, "operator": "Exists", "effect": "NoSchedule"}
REGISTRY_PORT_OFFSET = 61
KUBELET_PORT = 10250
# The node's own tmpfs /run (mounted by the holder), seen by its processes only.
NODE_RUN = Path("/run")
CLUSTER_DOMAIN = "cluster.local"
# kubelet writes these machine-wide sysctls at start (protectKernelDefaults=false);
# inside the node's mount namespace each is a bind-mounted copy, so the host keeps its values.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)


@dataclass(frozen=True)
class Uplink:
    """The host side shared by a cluster's real nodes: one bridge, one /24."""

    bridge: str
    network: ipaddress.IPv4Network

    @property
    def host_ip(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def prefix(self) -> int:
        return self.network.prefixlen


@dataclass(frozen=True)
class RealNode:
    """One real node: its name in the API and everything that is its own on the host."""

    name: str
    index: int
    ip: str
    pod_cidr: str
    netns: str
    veth: str
    cgroup: str

    @property
    def labels(self) -> dict[str, str]:
        return {NODE_TYPE_LABEL: "real"}


@dataclass(frozen=True)
class Plan:
    """Where a cluster's real nodes live: uplink, pod ranges, node names."""

    port_base: int
    uplink: Uplink
    pods: ipaddress.IPv4Network
    nodes: tuple[RealNode, ...]

    @property
    def registry(self) -> str:
        """host:port of the local registry (on the uplink: reachable from the host and its nodes only)."""
        return f"{self.uplink.host_ip}:{self.port_base + REGISTRY_PORT_OFFSET}"


def node_name(index: int) -> str:
    return f"tfsctl-node-{index}"


def plan(port_base: int, count: int) -> Plan:
    """Addresses and names for ``count`` real nodes of the cluster on ``port_base``.

    The third octet (uplink ``172.31.k.0/24``) and the pod range (``10.(128+k%64).0.0/16``,
    a /24 per node) come from ``port_base // 100`` so clusters on other port bases differ.
    """
    if not 0 <= count <= 8:
        raise ValueError(f"real node count {count} must be between 0 and 8")
    k = (port_base // 100) % 256
    uplink = Uplink(f"tfsbr{port_base}", ipaddress.IPv4Network(f"172.31.{k}.0/24"))
    pods = ipaddress.IPv4Network(f"10.{128 + k % 64}.0.0/16")
    nodes = tuple(
        RealNode(
            name=node_name(i),
            index=i,
            ip=str(uplink.network.network_address + 10 + i),
            pod_cidr=str(list(pods.subnets(new_prefix=24))[i]),
            netns=f"tfsctl-{port_base}-node-{i}",
            veth=f"tfsv{port_base}n{i}",
            cgroup=f"tfsctl-{port_base}-node-{i}",
        )
        for i in range(count)
    )
    return Plan(port_base, uplink, pods, nodes)


# -- credentials -------------------------------------------------------------------------------


def kubelet_subject(node: RealNode) -> tuple[str, tuple[str, ...]]:
    """(CN, O) of a kubelet's client certificate: the Node authorizer's ``system:node:<name>``."""
    return f"system:node:{node.name}", ("system:nodes",)


KUBE_PROXY_SUBJECT: tuple[str, tuple[str, ...]] = ("system:kube-proxy", ())
"""The user the default ``system:node-proxier`` ClusterRoleBinding names."""


def kubeconfig(server: str, ca: Path, cert: Path, key: Path, user: str, tls_server_name: str) -> dict:
    """A kubeconfig with a client certificate; ``tls_server_name`` is a name in the apiserver's cert."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": server,
                    "certificate-authority": str(ca),
                    "tls-server-name": tls_server_name,
                },
            }
        ],
        "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        "current-context": "local",
    }


# -- containerd ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeDirs:
    """A node's directories under the cluster state dir (all removed by ``cluster down``)."""

    root: Path

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        """In the node's private ``/run``: socket paths stay short (a unix socket path is < 108 bytes)."""
        return NODE_RUN / "containerd"

    @property
    def containerd_socket(self) -> Path:
        """As seen inside the node (from the host: ``/proc/<holder>/root`` + this)."""
        return NODE_RUN / "containerd" / "containerd.sock"

    @property
    def certs_d(self) -> Path:
        return self.root / "containerd" / "certs.d"

    @property
    def cni_conf(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def var_lib(self) -> Path:
        """Mounted on ``/var/lib`` in the node (kubelet keeps device-plugins there whatever --root-dir)."""
        return self.root / "var-lib"

    @property
    def var_log(self) -> Path:
        """Mounted on ``/var/log`` in the node: pod and container logs."""
        return self.root / "var-log"

    @property
    def sysctls(self) -> Path:
        return self.root / "sysctl"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"


def containerd_config(dirs: NodeDirs, cni_bin: str = "/usr/lib/cni", runc: str = "/usr/sbin/runc") -> str:
    """containerd 1.6 ``config.toml`` (version 2) for one node."""
    return f"""version = 2
root = "{dirs.containerd_root}"
state = "{dirs.containerd_state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", \
"io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{dirs.containerd_socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  # no CAP_SYS_RESOURCE here: runc would fail writing a lower oom_score_adj
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        # cgroup v1 and PID 1 is not systemd
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{dirs.cni_conf}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{dirs.certs_d}"
"""


def mirror_hosts(registry: str, upstream: str) -> str:
    """``certs.d/<upstream>/hosts.toml``: pull ``upstream`` images from the local registry."""
    server = "https://registry-1.docker.io" if upstream == "docker.io" else f"https://{upstream}"
    return f'server = "{server}"\n\n[host."http://{registry}"]\n  capabilities = ["pull", "resolve"]\n'


def cni_conflist(node: RealNode, dirs: NodeDirs) -> str:
    """The node's CNI network: a bridge with host-local addresses from the node's /24."""
    doc = {
        "cniVersion": "1.0.0",
        "name": "tfsctl",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": node.pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(dirs.cni_ipam),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


# -- kubelet and kube-proxy ------------------------------------------------------------------------


# kubelet's hard eviction signals (absolute, for a disk the node shares with the host)
EVICTION_HARD = {"memory.available": "100Mi", "nodefs.available": "1Gi", "imagefs.available": "1Gi"}


def kubelet_config(
    node: RealNode, dirs: NodeDirs, ca: Path, cluster_dns: str, sync_frequency: str | None = None
) -> dict[str, Any]:
    """``KubeletConfiguration`` for one node; defaults stay (cache TTL) but for disk pressure.

    ``sync_frequency`` sets ``syncFrequency`` (default 1m: how soon a ConfigMap change reaches a
    mounted file); None keeps kubelet's default.
    """
    sync = {} if sync_frequency is None else {"syncFrequency": sync_frequency}
    return {
        **sync,
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # cgroup v1 only, and PID 1 is not systemd
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{node.cgroup}",
        # no CAP_SYS_RESOURCE: kubelet may not lower its own oom_score_adj
        "oomScoreAdj": 0,
        "address": node.ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(dirs.pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(dirs.pki / "kubelet-serving.key"),
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [cluster_dns],
        "resolvConf": str(dirs.root / "resolv.conf"),
        "containerRuntimeEndpoint": f"unix://{dirs.containerd_socket}",
        "failSwapOn": False,
        "rotateCertificates": False,
        "serializeImagePulls": False,
        "registerWithTaints": [{"key": REAL_NODE_TAINT, "value": "true", "effect": "NoSchedule"}],
        # The node's filesystem is the host's, shared with every other user of the machine: the
        # default thresholds (evict below 10% nodefs / 15% imagefs free, image GC above 85% used)
        # evicted serving pods and deleted their cached images whenever the host's disk filled
        # up from outside. Evict only when the disk is really nearly full; keep images.
        "evictionHard": dict(EVICTION_HARD),
        "imageGCHighThresholdPercent": 100,  # 100 turns image garbage collection off
    }


def kubelet_args(node: RealNode, config: Path, kubeconfig_path: Path) -> list[str]:
    labels = ",".join(f"{k}={v}" for k, v in node.labels.items())
    return [
        f"--config={config}",
        f"--kubeconfig={kubeconfig_path}",
        "--root-dir=/var/lib/kubelet",
        f"--node-ip={node.ip}",
        f"--hostname-override={node.name}",
        f"--node-labels={labels}",
        "--v=2",
    ]


# kube-proxy's modes that this kernel has (no IPVS modules here).
PROXY_MODES = ("iptables", "nftables")


def kube_proxy_config(
    node: RealNode, kubeconfig_path: Path, pods: str, mode: str = "iptables"
) -> dict[str, Any]:
    """``KubeProxyConfiguration`` that leaves machine-wide conntrack sysctls alone.

    ``mode``: ``iptables`` (the default of kube-proxy and most clusters) or ``nftables``
    (GA in Kubernetes 1.33; needs the ``nft`` binary, Debian's ``nftables``). The rules
    live in the node's network namespace either way, and go with it on ``down``.
    """
    if mode not in PROXY_MODES:
        raise ValueError(f"kube-proxy mode {mode!r}: expected one of {', '.join(PROXY_MODES)}")
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": mode,
        "clientConnection": {"kubeconfig": str(kubeconfig_path)},
        "hostnameOverride": node.name,
        "bindAddress": node.ip,
        "clusterCIDR": pods,
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "127.0.0.1:10256",
        # nf_conntrack_max is only writable from the host's namespace: keep the host's value
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


def holder_script(dirs: NodeDirs, uplink: Uplink) -> str:
    """What the node's namespace holder runs before it sleeps (``sh -c``), in its new mount namespace.

    It makes ``/run``, ``/var/lib`` and ``/var/log`` the node's own, masks the sysctls
    kubelet writes with copies, and turns on forwarding and bridge netfilter in the node's
    network namespace (both are per-namespace). ``READY`` tells the starter it is done.
    """
    lines = [
        "set -eu",
        "mount -t tmpfs -o mode=755 tmpfs /run",
        f"mount --bind {dirs.var_lib} /var/lib",
        f"mount --bind {dirs.var_log} /var/log",
    ]
    for name in KUBELET_SYSCTLS:
        copy = dirs.sysctls / name.replace("/", ".")
        lines.append(
            f"if [ -e /proc/sys/{name} ]; then cat /proc/sys/{name} > {copy}; "
            f"mount --bind {copy} /proc/sys/{name}; fi"
        )
    lines += [
        "ip link set lo up",
        "echo 1 > /proc/sys/net/ipv4/ip_forward",
        "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables",
        f"touch {dirs.root / 'READY'}",
        "exec sleep infinity",
    ]
    return "\n".join(lines) + "\n"


# -- CoreDNS -------------------------------------------------------------------------------------------


def corefile() -> str:
    """Cluster names only: there is no upstream resolver to forward to."""
    return (
        f".:53 {{\n    errors\n    health :8080\n    ready :8181\n"
        f"    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{\n"
        "        kubeconfig /etc/coredns/kubeconfig local\n"
        "        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n    }\n"
        "    cache 30\n    loop\n    reload\n}\n"
    )


def coredns_kubeconfig(server: str, tls_server_name: str) -> dict[str, Any]:
    """CoreDNS reaches the apiserver by the host address with its service-account token.

    In-cluster config would dial the ``kubernetes`` Service IP, which is not a name in the
    apiserver certificate kwokctl issues.
    """
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": server,
                    "certificate-authority": f"{sa}/ca.crt",
                    "tls-server-name": tls_server_name,
                },
            }
        ],
        "users": [{"name": "coredns", "user": {"tokenFile": f"{sa}/token"}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "coredns"}}],
        "current-context": "local",
    }


def coredns_manifests(server: str, tls_server_name: str) -> list[dict[str, Any]]:
    """ServiceAccount, RBAC, ConfigMap, Service ``kube-dns`` and Deployment for CoreDNS in kube-system."""
    meta = {"namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}}
    kcfg = json.dumps(coredns_kubeconfig(server, tls_server_name), indent=2)
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", **meta}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", **meta},
            "data": {"Corefile": corefile(), "kubeconfig": kcfg},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", **meta},
            "spec": {
                "selector": {"k8s-app": "kube-dns"},
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", **meta},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                "template": {
                    "metadata": {"labels": {"k8s-app": "kube-dns"}},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "dnsPolicy": "Default",
                        "priorityClassName": "system-cluster-critical",
                        "nodeSelector": {NODE_TYPE_LABEL: "real"},
                        "tolerations": [dict(REAL_NODE_TOLERATION)],
                        "containers": [
                            {
                                "name": "coredns",
                                "image": COREDNS_IMAGE,
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                ],
                                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}},
                                "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}},
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "32Mi"},
                                    "limits": {"memory": "128Mi"},
                                },
                                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
    ]


def registry_config(storage: Path, addr: str) -> dict[str, Any]:
    """distribution's ``config.yml``: filesystem storage, plain HTTP on the uplink address."""
    return {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text"},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": addr},
    }


REGISTRY_HOSTING = ("kube-public", "local-registry-hosting")


def registry_hosting(plan: Plan) -> dict[str, Any]:
    """The ConfigMap by which a cluster tells tools where its local registry is.

    The standard of KEP-1755 (``sig-cluster-lifecycle/generic/1755-communicating-a-local-registry``),
    which kind, k3d and minikube publish: ``localRegistryHosting.v1`` in
    ``kube-public/local-registry-hosting``. ``host`` is how the host pushes,
    ``hostFromContainerRuntime`` how the nodes' containerd pulls: the same address here.
    """
    hosting = {
        "host": plan.registry,
        "hostFromContainerRuntime": plan.registry,
        "help": "tfsctl cluster up --real-nodes N pushes images and the chart (oci://<host>/charts) here",
    }
    namespace, name = REGISTRY_HOSTING
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"localRegistryHosting.v1": yaml.safe_dump(hosting, sort_keys=False)},
    }


def mirror_path(image: str) -> str:
    """``repo:tag`` under which the local registry serves a mirrored image name.

    containerd asks a mirror for the path the upstream registry would serve: Docker Hub's
    official images live under ``library/``; ``registry.k8s.io/x`` is ``x``.
    """
    host, _, rest = image.partition("/")
    if host not in MIRRORED_REGISTRIES:
        raise ValueError(f"image {image!r} is not on a mirrored registry ({', '.join(MIRRORED_REGISTRIES)})")
    if host == "docker.io" and "/" not in rest.split(":")[0]:
        rest = f"library/{rest}"
    return rest
