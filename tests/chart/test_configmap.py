"""templates/configmap.yaml: model_config.pbtxt, batching and monitoring files."""

from __future__ import annotations

from typing import Any

import pytest

from support.chart_render import FULLNAME, find, parse_model_server_config, render_chart


def parse_batching_parameters(text: str) -> Any:
    """The rendered file as ``tfsctl serve`` reads it (TF Serving's BatchingParameters, validated)."""
    from tfsbed.serve.batching import parse_batching_parameters as parse

    return parse(text, "batching_parameters.pbtxt")


pytestmark = pytest.mark.chart

MODELS = {
    "modelA": {"versionPolicy": {"all": {}}},
    "modelB": {
        "basePath": "/data/b",
        "versionPolicy": {"specific": {"versions": [1, 2]}},
        "versionLabels": {"stable": 1, "canary": 2},
    },
    "modelC": {"platform": "tensorflow", "versionPolicy": {"latest": {"numVersions": 2}}},
    "modelD": {},
}


def config_data(values: dict[str, Any] | None) -> dict[str, str]:
    docs = render_chart(values, show_only="configmap.yaml")
    return dict(find(docs, "ConfigMap", f"{FULLNAME}-config")["data"])


class TestConfigMap:
    def test_model_config_parses_as_model_server_config(self) -> None:
        config = parse_model_server_config(
            config_data({"models": MODELS, "modelConfig": {"allowVersionLabelsForUnavailableModels": True}})[
                "model_config.pbtxt"
            ]
        )
        by_name = {c.name: c for c in config.model_config_list.config}
        assert sorted(by_name) == ["modelA", "modelB", "modelC", "modelD"]
        assert by_name["modelA"].model_version_policy.WhichOneof("policy_choice") == "all"
        assert list(by_name["modelB"].model_version_policy.specific.versions) == [1, 2]
        assert dict(by_name["modelB"].version_labels) == {"stable": 1, "canary": 2}
        assert by_name["modelC"].model_version_policy.latest.num_versions == 2
        assert not by_name["modelD"].HasField("model_version_policy")

    def test_base_path_defaults_under_the_models_mount(self) -> None:
        values = {
            "models": MODELS,
            "modelConfig": {"allowVersionLabelsForUnavailableModels": True},
            "persistence": {"mountPath": "/serving/"},
        }
        config = parse_model_server_config(config_data(values)["model_config.pbtxt"])
        paths = {c.name: c.base_path for c in config.model_config_list.config}
        assert paths["modelA"] == "/serving/modelA"
        assert paths["modelB"] == "/data/b"
        assert {c.model_platform for c in config.model_config_list.config} == {"tensorflow"}

    def test_large_timestamp_versions_render_as_integers(self) -> None:
        models = {
            "bert": {
                "versionPolicy": {"specific": {"versions": [1623831335]}},
                "versionLabels": {"prod": 1623831335},
            }
        }
        text = config_data(
            {"models": models, "modelConfig": {"allowVersionLabelsForUnavailableModels": True}}
        )["model_config.pbtxt"]
        assert "versions: 1623831335" in text
        config = parse_model_server_config(text)
        assert config.model_config_list.config[0].version_labels["prod"] == 1623831335

    def test_empty_models_render_an_empty_model_list(self) -> None:
        config = parse_model_server_config(config_data(None)["model_config.pbtxt"])
        assert config.HasField("model_config_list")
        assert len(config.model_config_list.config) == 0

    def test_single_model_mode_renders_no_config_map(self) -> None:
        assert render_chart({"model": {"name": "mnist"}}, show_only="configmap.yaml") == []

    def test_single_model_with_batching_renders_only_the_batching_file(self) -> None:
        data = config_data({"model": {"name": "mnist"}, "server": {"batching": {"enabled": True}}})
        assert sorted(data) == ["batching_parameters.pbtxt"]

    def test_batching_parameters_file(self) -> None:
        batching = {
            "enabled": True,
            "maxBatchSize": 16,
            "batchTimeoutMicros": 2000,
            "allowedBatchSizes": [4, 16],
        }
        text = config_data({"server": {"batching": batching}})["batching_parameters.pbtxt"]
        assert "max_batch_size { value: 16 }" in text
        assert "batch_timeout_micros { value: 2000 }" in text
        assert "allowed_batch_sizes: 4\nallowed_batch_sizes: 16" in text

    def test_monitoring_config_enables_prometheus_on_the_path(self) -> None:
        text = config_data({"server": {"monitoring": {"enabled": True, "path": "/metrics"}}})[
            "monitoring_config.pbtxt"
        ]
        assert "prometheus_config {" in text
        assert "enable: true" in text
        assert 'path: "/metrics"' in text

    def test_batching_parameters_parse_as_tf_serving_batching_parameters(self) -> None:
        batching = {
            "enabled": True,
            "maxBatchSize": 16,
            "batchTimeoutMicros": 2000,
            "maxEnqueuedBatches": 7,
            "numBatchThreads": 3,
            "allowedBatchSizes": [4, 8, 16],
            "padVariableLengthInputs": True,
        }
        params = parse_batching_parameters(
            config_data({"server": {"batching": batching}})["batching_parameters.pbtxt"]
        )
        assert params.max_batch_size == 16
        assert params.batch_timeout_micros == 2000
        assert params.max_enqueued_batches == 7
        assert params.num_batch_threads == 3
        assert params.allowed_batch_sizes == (4, 8, 16)
        assert params.pad_variable_length_inputs is True

    def test_default_batching_parameters_parse_without_allowed_sizes(self) -> None:
        params = parse_batching_parameters(
            config_data({"server": {"batching": {"enabled": True}}})["batching_parameters.pbtxt"]
        )
        assert params.max_batch_size == 32
        assert params.allowed_batch_sizes == ()
        assert params.pad_variable_length_inputs is False

    def test_tls_adds_nothing_to_the_config_map(self) -> None:
        data = config_data({"server": {"tls": {"enabled": True, "secretName": "tfserving-grpc-tls"}}})
        assert sorted(data) == ["model_config.pbtxt"]
