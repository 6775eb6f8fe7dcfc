"""templates/NOTES.txt: the post-install runbook and its warnings."""

from __future__ import annotations

import pytest

from support.chart_render import FULLNAME, render_notes

pytestmark = pytest.mark.chart

SIZED = {
    "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
    "replicaCount": 2,
}
FASHION = {"fashion": {"versionPolicy": {"specific": {"versions": [1, 2]}}, "versionLabels": {"stable": 1}}}


class TestNotes:
    def test_lists_rest_and_grpc_addresses(self) -> None:
        notes = render_notes(
            {**SIZED, "models": FASHION, "modelConfig": {"allowVersionLabelsForUnavailableModels": True}}
        )
        assert f"port-forward svc/{FULLNAME} 8500:8500 8501:8501" in notes
        assert "gRPC: $SERVING_HOST:8500" in notes
        assert "REST: http://$SERVING_HOST:8501" in notes

    def test_load_balancer_address_comes_from_the_service_status(self) -> None:
        notes = render_notes({**SIZED, "model": {"name": "m"}, "service": {"type": "LoadBalancer"}})
        assert "status.loadBalancer.ingress[0].ip" in notes

    def test_shows_model_version_and_label_paths_and_a_status_check(self) -> None:
        notes = render_notes(
            {**SIZED, "models": FASHION, "modelConfig": {"allowVersionLabelsForUnavailableModels": True}}
        )
        assert "status    GET  /v1/models/fashion" in notes
        assert "/v1/models/fashion/versions/<N>" in notes
        assert "/v1/models/fashion/labels/stable[:predict] -> version 1" in notes
        assert "curl -s http://$SERVING_HOST:8501/v1/models/fashion" in notes
        assert "helm test tfs -n serving" in notes

    def test_no_warnings_for_a_sized_pinned_multi_replica_release(self) -> None:
        assert "WARNINGS" not in render_notes(
            {**SIZED, "models": FASHION, "modelConfig": {"allowVersionLabelsForUnavailableModels": True}}
        )

    def test_warns_when_resources_are_empty(self) -> None:
        assert "resources is empty" in render_notes({"model": {"name": "m"}, "replicaCount": 2})

    @pytest.mark.parametrize("tag", ["latest", "nightly", "latest-gpu"])
    def test_warns_when_the_tag_floats(self, tag: str) -> None:
        notes = render_notes(
            {
                **SIZED,
                "model": {"name": "m"},
                "image": {"tag": tag},
                "gpu": {"count": 1 if "gpu" in tag else 0},
            }
        )
        assert "floats: pin a version" in notes

    def test_warns_when_polling_and_the_memory_limit_cannot_hold_a_second_copy(self) -> None:
        models = {"a": {"memoryHint": "1Gi"}, "b": {"memoryHint": "2Gi"}}
        values = {
            **SIZED,
            "models": models,
            "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "4Gi"}},
        }
        notes = render_notes(values)
        assert (
            "resources.limits.memory (4Gi) is below all models plus a second copy of the largest (5120 MiB)"
            in notes
        )

    def test_no_reload_warning_when_the_limit_has_room(self) -> None:
        models = {"a": {"memoryHint": "1Gi"}, "b": {"memoryHint": "2Gi"}}
        values = {
            **SIZED,
            "models": models,
            "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "6Gi"}},
        }
        assert "second copy" not in render_notes(values)

    def test_warns_about_an_empty_model_list(self) -> None:
        assert "No model is configured yet" in render_notes(SIZED)

    def test_legacy_layout_lists_no_rest_paths(self) -> None:
        notes = render_notes(
            {**SIZED, "model": {"name": "mnist"}, "server": {"grpcPort": 9090, "restEnabled": False}}
        )
        assert "REST: disabled" in notes
        assert "/v1/models/mnist" not in notes
        assert "checks the gRPC port answers" in notes


class TestNotesTls:
    def test_says_grpc_is_tls_only_and_rest_stays_plain(self) -> None:
        tls = {"enabled": True, "secretName": "tfserving-grpc-tls", "clientVerify": True}
        notes = render_notes({**SIZED, "model": {"name": "m"}, "server": {"tls": tls}})
        assert "gRPC is TLS only (certificate from Secret tfserving-grpc-tls" in notes
        assert "--ca-file ca.crt --cert-file client.crt --key-file client.key" in notes
        assert "REST stays plain HTTP" in notes
        assert f"rollout restart deployment/{FULLNAME}" in notes

    def test_no_tls_lines_by_default(self) -> None:
        notes = render_notes({**SIZED, "model": {"name": "m"}})
        assert "TLS" not in notes

    def test_says_how_tfsctl_serve_batches_only_when_it_is_the_server(self) -> None:
        batching = {"enabled": True}
        values = {**SIZED, "model": {"name": "m"}, "server": {"batching": batching}}
        assert "requests are batched as in TF Serving" not in render_notes(values)
        local = {**values, "server": {"batching": batching, "command": ["tfsctl", "serve"]}}
        assert "requests are batched as in TF Serving" in render_notes(local)


class TestNotesForGuideValues:
    INTERNAL = {**SIZED, "model": {"name": "m"}, "service": {"type": "LoadBalancer", "exposeRest": False}}

    def test_rest_kept_off_the_load_balancer_is_listed_in_cluster_only(self) -> None:
        notes = render_notes(self.INTERNAL)
        assert (
            f"REST: in-cluster only (service.exposeRest false): http://{FULLNAME}.serving.svc:8501" in notes
        )
        assert f"curl -s http://{FULLNAME}.serving.svc:8501/v1/models/m" in notes
        assert f"get svc {FULLNAME}-grpc -o jsonpath" in notes, "the address comes from the exposed Service"
        assert "REST: http://$SERVING_HOST" not in notes

    def test_no_warning_for_helm_test_it_reaches_rest_on_the_cluster_ip_service(self) -> None:
        assert "WARNINGS" not in render_notes(self.INTERNAL)

    def test_warns_when_one_replica_per_node_meets_a_surge(self) -> None:
        notes = render_notes({**SIZED, "model": {"name": "m"}, "podAntiAffinity": {"mode": "required"}})
        assert "podAntiAffinity.mode is required and updateStrategy.maxSurge is 1" in notes
        calm = {
            "podAntiAffinity": {"mode": "required"},
            "updateStrategy": {"maxSurge": 0, "maxUnavailable": 1},
        }
        assert "WARNINGS" not in render_notes({**SIZED, "model": {"name": "m"}, **calm})
