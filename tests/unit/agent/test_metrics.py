from __future__ import annotations

from tfsbed.cluster.agent.metrics import ContainerSample, ResourceSample, format_resource_metrics


def sample() -> ResourceSample:
    return ResourceSample(
        timestamp=1700000000.5,
        node_cpu_seconds=123.25,
        node_memory_bytes=2e9,
        containers=[
            ContainerSample("ns", "pod-a", "main", 1.5, 1000, 1699999000),
            ContainerSample("ns", "pod-a", "side", 0.5, 24, 1699999001),
        ],
    )


def test_every_series_metrics_server_reads_is_present_with_ms_timestamp() -> None:
    text = format_resource_metrics(sample())
    assert (
        'container_cpu_usage_seconds_total{container="main",namespace="ns",pod="pod-a"} 1.5 1700000000500'
        in text
    )
    assert (
        'container_memory_working_set_bytes{container="side",namespace="ns",pod="pod-a"} 24 1700000000500'
        in text
    )
    assert 'container_start_time_seconds{container="main",namespace="ns",pod="pod-a"} 1699999000' in text
    assert "node_cpu_usage_seconds_total 123.25 1700000000500" in text
    assert "node_memory_working_set_bytes 2000000000 1700000000500" in text
    assert "resource_scrape_error 0\n" in text


def test_pod_series_sum_their_containers() -> None:
    text = format_resource_metrics(sample())
    assert 'pod_cpu_usage_seconds_total{namespace="ns",pod="pod-a"} 2 1700000000500' in text
    assert 'pod_memory_working_set_bytes{namespace="ns",pod="pod-a"} 1024 1700000000500' in text


def test_each_family_has_help_and_type_once() -> None:
    lines = format_resource_metrics(sample()).splitlines()
    assert lines.count("# TYPE container_cpu_usage_seconds_total counter") == 1
    assert sum(line.startswith("# HELP ") for line in lines) == 8


def test_label_values_are_escaped() -> None:
    s = ResourceSample(
        timestamp=1,
        node_cpu_seconds=0,
        node_memory_bytes=0,
        containers=[ContainerSample("n", 'p"q', "c", 1, 1, 1)],
    )
    assert 'pod="p\\"q"' in format_resource_metrics(s)
