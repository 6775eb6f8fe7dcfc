"""Pure parts of the cluster adapters: manifests, master output, HPA metrics, Prometheus counts."""

from __future__ import annotations

import json

from kubernetes import client

from tfsctl.load import distributed, kube
from tfsctl.load.options import LoadSettings


def request(token: str | None = "Bearer s3cret") -> distributed.DistributedRequest:
    settings = LoadSettings(
        host="http://127.0.100.1:8501", label="stable", users=20, duration=60, token=token
    )
    return distributed.DistributedRequest(
        settings=settings,
        workers=3,
        namespace="load",
        node_selector={"node.tfsctl.dev/type": "process"},
        name="lt",
    )


class TestDistributedManifests:
    def test_renders_configmap_master_and_workers_running_the_locustfile(self) -> None:
        config_map, master, workers = distributed.render(request(), "10.244.100.7", "print('hi')\n")
        assert config_map["kind"] == "ConfigMap"
        assert config_map["data"] == {"locustfile.py": "print('hi')\n"}
        master_pod = master["spec"]["template"]["spec"]
        (container,) = master_pod["containers"]
        assert container["command"] == ["python", "-m", "tfsctl.load.master", "/artifacts", "locust"]
        assert {"name": "artifacts", "mountPath": "/artifacts"} in container["volumeMounts"]
        assert container["workingDir"] == "/loadtest"
        assert container["args"][:4] == ["-f", "locustfile.py", "--master", "--headless"]
        assert container["args"][container["args"].index("--expect-workers") + 1] == "3"
        assert master_pod["nodeSelector"] == {"node.tfsctl.dev/type": "process"}
        assert workers["spec"]["parallelism"] == 3
        worker_args = workers["spec"]["template"]["spec"]["containers"][0]["args"]
        assert worker_args == ["-f", "locustfile.py", "--worker", "--master-host", "10.244.100.7"]

    def test_the_token_travels_in_a_secret_never_in_a_pod_spec(self) -> None:
        docs = distributed.render(request(), "10.0.0.1", "")
        assert "s3cret" not in json.dumps(docs)
        secret = distributed.secret(request())
        assert secret["stringData"]["TFSCTL_LOAD_TOKEN"] == "Bearer s3cret"
        assert secret["stringData"]["TFSCTL_LOAD_LABEL"] == "stable"
        envs = [d["spec"]["template"]["spec"]["containers"][0]["envFrom"] for d in docs[1:]]
        assert envs == [[{"secretRef": {"name": "lt"}}]] * 2

    def test_master_json_stats_are_found_after_the_log_lines(self) -> None:
        stats = [
            {"name": "predict:fashion@stable", "method": "POST", "num_requests": 10, "num_failures": 1,
             "response_times": {"12": 9, "80": 1}, "start_time": 100.0, "last_request_timestamp": 110.0},
        ]  # fmt: skip
        output = "[2026-01-01] master: Ramping to 20 users\n" + json.dumps(stats, indent=4) + "\n"
        entries = distributed.parse_master_output(output)
        assert entries == stats
        summary = distributed.summarize(entries)
        assert (summary.requests, summary.failures, summary.p95_ms, summary.rps) == (10, 1, 80.0, 1.0)


class TestKubeAdapterParsing:
    def test_counts_requests_of_the_model_across_statuses(self) -> None:
        text = (
            "# TYPE :tensorflow:serving:request_count counter\n"
            ':tensorflow:serving:request_count{model_name="fashion",status="OK"} 120\n'
            ':tensorflow:serving:request_count{model_name="fashion",status="NOT_FOUND"} 3\n'
            ':tensorflow:serving:request_count{model_name="other",status="OK"} 50\n'
        )
        assert kube.parse_request_counts(text, "fashion") == 123
        assert kube.parse_request_counts(text, "absent") == 0

    def test_hpa_status_becomes_a_point_with_metric_values_next_to_targets(self) -> None:
        hpa = client.V2HorizontalPodAutoscaler(
            metadata=client.V1ObjectMeta(name="tfs"),
            spec=client.V2HorizontalPodAutoscalerSpec(
                min_replicas=1,
                max_replicas=4,
                scale_target_ref=client.V2CrossVersionObjectReference(kind="Deployment", name="tfs"),
                metrics=[
                    client.V2MetricSpec(
                        type="Resource",
                        resource=client.V2ResourceMetricSource(
                            name="cpu",
                            target=client.V2MetricTarget(type="Utilization", average_utilization=50),
                        ),
                    )
                ],
            ),
            status=client.V2HorizontalPodAutoscalerStatus(
                current_replicas=2,
                desired_replicas=3,
                current_metrics=[
                    client.V2MetricStatus(
                        type="Resource",
                        resource=client.V2ResourceMetricStatus(
                            name="cpu", current=client.V2MetricValueStatus(average_utilization=180)
                        ),
                    )
                ],
            ),
        )
        point = kube.hpa_point(hpa, 12.3456)
        assert (point.t, point.current, point.desired, point.min_replicas, point.max_replicas) == (
            12.346,
            2,
            3,
            1,
            4,
        )
        (metric,) = point.metrics
        assert metric.describe() == "cpu 180%/50%"
        assert metric.above_target
