"""The kubelet's ``/metrics/resource`` in Prometheus text format (pure formatting).

metrics-server reads exactly these series (names, labels, millisecond
timestamps) from every node; the values come from :mod:`.sampler`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ContainerSample:
    namespace: str
    pod: str
    container: str
    cpu_seconds: float
    memory_bytes: float
    start_time: float


@dataclass
class ResourceSample:
    timestamp: float
    node_cpu_seconds: float
    node_memory_bytes: float
    containers: list[ContainerSample] = field(default_factory=list)
    scrape_error: bool = False


_CPU = "[STABLE] Cumulative cpu time consumed by the {} in core-seconds"
_MEM = "[STABLE] Current working set of the {} in bytes"
_HELP = {
    "container_cpu_usage_seconds_total": ("counter", _CPU.format("container")),
    "container_memory_working_set_bytes": ("gauge", _MEM.format("container")),
    "container_start_time_seconds": (
        "gauge",
        "[STABLE] Start time of the container since unix epoch in seconds",
    ),
    "node_cpu_usage_seconds_total": ("counter", _CPU.format("node")),
    "node_memory_working_set_bytes": ("gauge", _MEM.format("node")),
    "pod_cpu_usage_seconds_total": ("counter", _CPU.format("pod")),
    "pod_memory_working_set_bytes": ("gauge", _MEM.format("pod")),
    "resource_scrape_error": (
        "gauge",
        "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
    ),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _num(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


def format_resource_metrics(sample: ResourceSample) -> str:
    """Render ``sample`` the way the kubelet's resource metrics endpoint does."""
    ts = str(int(sample.timestamp * 1000))
    series: dict[str, list[str]] = {name: [] for name in _HELP}

    def add(name: str, value: float, *, with_ts: bool = True, **labels: str) -> None:
        series[name].append(f"{name}{_labels(**labels)} {_num(value)}" + (f" {ts}" if with_ts else ""))

    pods: dict[tuple[str, str], list[ContainerSample]] = {}
    for c in sorted(sample.containers, key=lambda c: (c.namespace, c.pod, c.container)):
        pods.setdefault((c.namespace, c.pod), []).append(c)
        for name, value in (
            ("container_cpu_usage_seconds_total", c.cpu_seconds),
            ("container_memory_working_set_bytes", c.memory_bytes),
            ("container_start_time_seconds", c.start_time),
        ):
            add(name, value, container=c.container, namespace=c.namespace, pod=c.pod)
    for (namespace, pod), containers in pods.items():
        add(
            "pod_cpu_usage_seconds_total",
            sum(c.cpu_seconds for c in containers),
            namespace=namespace,
            pod=pod,
        )
        add(
            "pod_memory_working_set_bytes",
            sum(c.memory_bytes for c in containers),
            namespace=namespace,
            pod=pod,
        )
    add("node_cpu_usage_seconds_total", sample.node_cpu_seconds)
    add("node_memory_working_set_bytes", sample.node_memory_bytes)
    add("resource_scrape_error", 1 if sample.scrape_error else 0, with_ts=False)
    lines: list[str] = []
    for name in sorted(series):
        kind, help_text = _HELP[name]
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *series[name]]
    return "\n".join(lines) + "\n"
