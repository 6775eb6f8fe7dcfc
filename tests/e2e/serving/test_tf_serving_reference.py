"""The facts TF Serving's own integration tests assert, held against ``tfsctl serve``.

Reference: tensorflow_serving/model_servers/tensorflow_model_server_test.py and
test_util/tensorflow_model_server_test_base.py (their CPU SavedModel cases). The
servers run with the flags that test base always passes (``--grpc_socket_path``,
``--rest_api_timeout_in_ms``, ``--grpc_channel_arguments=grpc.so_reuseaddr=1``), and
the requests are built the way a client written against the real server builds them:
raw protos on a plain gRPC channel, reading ``float_val`` and ``model_spec.version``.
Each test names the upstream test it reproduces; the facts are theirs, the code ours.
"""

from __future__ import annotations

import http.client
import json
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from support.serving_wait import eventually
from tfsbed.serve.testing import LocalServer
from tfsctl.serving.protos import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
    types_pb2,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RPC_TIMEOUT = 30.0
VERSION = 123  # the one version directory (00000123) of each reference model


def _harness_flags(workdir: Path) -> list[str]:
    """What TensorflowModelServerTestBase.RunServer adds to every server it starts."""
    monitoring = workdir / "monitoring_config.txt"
    monitoring.write_text(
        'prometheus_config: {\n  enable: true,\n  path: "/monitoring/prometheus/metrics"\n}\n'
    )
    return [
        f"--grpc_socket_path={workdir / 'tf_serving.sock'}",
        "--rest_api_timeout_in_ms=5000",
        "--grpc_channel_arguments=grpc.so_reuseaddr=1",
        f"--monitoring_config_file={monitoring}",
    ]


def _stubs(target: str) -> tuple[Any, Any, Any]:
    channel = grpc.insecure_channel(target)
    return (
        channel,
        prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
    )


def _verify_predict(
    target: str,
    model: str,
    expected: float,
    *,
    specify_output: bool = True,
    signature: str = "serving_default",
) -> None:
    """VerifyPredictRequest: x = [2.0] as float_val, y back in float_val, model_spec with the version."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].float_val.append(2.0)
    request.inputs["x"].tensor_shape.dim.add().size = 1
    if specify_output:
        request.output_filter.append("y")
    channel, prediction, _ = _stubs(target)
    with channel:
        result = prediction.Predict(request, RPC_TIMEOUT)
    assert "y" in result.outputs
    assert result.outputs["y"].dtype == types_pb2.DT_FLOAT
    assert len(result.outputs["y"].float_val) == 1
    assert result.outputs["y"].float_val[0] == expected
    _verify_model_spec(result.model_spec, model, signature, VERSION)


def _verify_model_spec(spec: Any, name: str, signature: str, version: int) -> None:
    """_VerifyModelSpec: name, signature_name and version.value of a response's model_spec."""
    assert (spec.name, spec.signature_name, spec.version.value) == (name, signature, version)


def _rest(port: int, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=RPC_TIMEOUT)
    try:
        conn.request(
            "POST" if body is not None else "GET", path, body=json.dumps(body) if body is not None else None
        )
        response = conn.getresponse()
        raw = response.read().decode()
        return response.status, (json.loads(raw) if raw.strip().startswith(("{", "[")) else raw)
    finally:
        conn.close()


# ------------------------------------------------------------------- half_plus_two (TF1), --model_name
class TestDefaultModelHalfPlusTwo:
    """Servers started as RunServer('default', saved_model_half_plus_two_cpu)."""

    @pytest.fixture(scope="class")
    @classmethod
    def server(
        cls, tf_serving_testdata: Path, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[LocalServer]:
        workdir = tmp_path_factory.mktemp("reference")
        with LocalServer(
            "default", tf_serving_testdata / "saved_model_half_plus_two_cpu", flags=_harness_flags(workdir)
        ) as srv:
            srv.socket_path = workdir / "tf_serving.sock"  # type: ignore[attr-defined]
            yield srv

    @pytest.fixture
    def target(self, server: LocalServer) -> str:
        return f"127.0.0.1:{server.grpc_port}"

    def test_get_model_status(self, target: str) -> None:
        """testGetModelStatus: one version, 123, AVAILABLE, error_code 0."""
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "default"
        channel, _, models = _stubs(target)
        with channel:
            result = models.GetModelStatus(request, RPC_TIMEOUT)
        assert len(result.model_version_status) == 1
        status = result.model_version_status[0]
        assert status.version == VERSION
        assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
        assert status.status.error_code == 0

    def test_get_model_metadata(self, target: str) -> None:
        """testGetModelMetadata: model_spec default/123, one metadata entry, signature_def."""
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = "default"
        request.metadata_field.append("signature_def")
        channel, prediction, _ = _stubs(target)
        with channel:
            result = prediction.GetModelMetadata(request, RPC_TIMEOUT)
        assert result.model_spec.name == "default"
        assert result.model_spec.version.value == VERSION
        assert len(result.metadata) == 1
        assert "signature_def" in result.metadata

    def test_classify(self, target: str) -> None:
        """testClassify: classify_x_to_y on x = 2.0 gives one class scoring 3.0."""
        _classify(target)

    def test_regress(self, target: str) -> None:
        """testRegress: regress_x_to_y on x = 2.0 gives 3.0."""
        _regress(target)

    def test_multi_inference(self, target: str) -> None:
        """testMultiInference: regress and classify tasks in one request, both 3.0, both model_specs."""
        request = inference_pb2.MultiInferenceRequest()
        for signature, method in (
            ("regress_x_to_y", "tensorflow/serving/regress"),
            ("classify_x_to_y", "tensorflow/serving/classify"),
        ):
            task = request.tasks.add()
            task.model_spec.name = "default"
            task.model_spec.signature_name = signature
            task.method_name = method
        request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
        channel, prediction, _ = _stubs(target)
        with channel:
            result = prediction.MultiInference(request, RPC_TIMEOUT)
        assert len(result.results) == 2
        assert result.results[0].regression_result.regressions[0].value == 3.0
        assert result.results[1].classification_result.classifications[0].classes[0].score == 3.0
        for i in range(2):
            _verify_model_spec(
                result.results[i].model_spec, "default", request.tasks[i].model_spec.signature_name, VERSION
            )

    def test_predict_saved_model(self, target: str) -> None:
        """testPredictSavedModel (_TestPredict): 3.0 in float_val, with and without output_filter."""
        _verify_predict(target, "default", 3.0)
        _verify_predict(target, "default", 3.0, specify_output=False)

    def test_predict_uds(self, server: LocalServer) -> None:
        """testPredictUDS: the same Predict over --grpc_socket_path."""
        _verify_predict(f"unix:{server.socket_path}", "default", 3.0, specify_output=False)  # type: ignore[attr-defined]

    def test_good_grpc_channel_args(self, target: str) -> None:
        """testGoodGrpcChannelArgs: the server started with --grpc_channel_arguments serves Predict."""
        _verify_predict(target, "default", 3.0, specify_output=False)

    def test_classify_rest(self, server: LocalServer) -> None:
        """testClassifyREST."""
        body = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
        assert _rest(server.rest_port, "/v1/models/default:classify", body) == (
            200,
            {"results": [[["", 3.0]]]},
        )

    def test_regress_rest(self, server: LocalServer) -> None:
        """testRegressREST."""
        body = {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}
        assert _rest(server.rest_port, "/v1/models/default:regress", body) == (200, {"results": [3.0]})

    def test_predict_rest(self, server: LocalServer) -> None:
        """testPredictREST."""
        body = {"instances": [2.0, 3.0, 4.0]}
        assert _rest(server.rest_port, "/v1/models/default:predict", body) == (
            200,
            {"predictions": [3.0, 3.5, 4.0]},
        )

    def test_predict_columnar_rest(self, server: LocalServer) -> None:
        """testPredictColumnarREST."""
        body = {"inputs": [2.0, 3.0, 4.0]}
        assert _rest(server.rest_port, "/v1/models/default:predict", body) == (
            200,
            {"outputs": [3.0, 3.5, 4.0]},
        )

    def test_get_status_rest(self, server: LocalServer) -> None:
        """testGetStatusREST: the exact JSON document."""
        assert _rest(server.rest_port, "/v1/models/default") == (
            200,
            {
                "model_version_status": [
                    {
                        "version": "123",
                        "state": "AVAILABLE",
                        "status": {"error_code": "OK", "error_message": ""},
                    }
                ]
            },
        )

    def test_get_model_metadata_rest(self, server: LocalServer) -> None:
        """testGetModelMetadataREST: the facts of half_plus_two_model_metadata.json (compared sorted)."""
        status, body = _rest(server.rest_port, "/v1/models/default/metadata")
        assert status == 200
        assert body["model_spec"] == {"name": "default", "signature_name": "", "version": "123"}
        sigs = body["metadata"]["signature_def"]["signature_def"]
        assert set(sigs) == {
            "regress_x2_to_y3",
            "serving_default",
            "classify_x_to_y",
            "regress_x_to_y2",
            "regress_x_to_y",
        }
        batch_of_one = {"dim": [{"size": "-1", "name": ""}, {"size": "1", "name": ""}], "unknown_rank": False}
        assert sigs["serving_default"] == {
            "inputs": {"x": {"dtype": "DT_FLOAT", "tensor_shape": batch_of_one, "name": "x:0"}},
            "outputs": {"y": {"dtype": "DT_FLOAT", "tensor_shape": batch_of_one, "name": "y:0"}},
            "method_name": "tensorflow/serving/predict",
            "defaults": {},
        }
        assert sigs["classify_x_to_y"]["inputs"]["inputs"] == {
            "dtype": "DT_STRING",
            "tensor_shape": {"dim": [], "unknown_rank": True},
            "name": "tf_example:0",
        }
        assert sigs["classify_x_to_y"]["outputs"]["scores"]["name"] == "y:0"
        assert sigs["regress_x2_to_y3"]["inputs"]["inputs"]["name"] == "x2:0"
        assert sigs["regress_x2_to_y3"]["outputs"]["outputs"]["name"] == "y3:0"
        assert sigs["regress_x_to_y2"]["outputs"]["outputs"]["name"] == "y2:0"
        assert {s["method_name"] for k, s in sigs.items() if k.startswith("regress")} == {
            "tensorflow/serving/regress"
        }

    def test_prometheus_endpoint(self, server: LocalServer) -> None:
        """testPrometheusEndpoint: metric type information at the monitoring config's path."""
        status, text = _rest(server.rest_port, "/monitoring/prometheus/metrics")
        assert status == 200
        assert "# TYPE" in text


def _classify(target: str) -> None:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "classify_x_to_y"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
    channel, prediction, _ = _stubs(target)
    with channel:
        result = prediction.Classify(request, RPC_TIMEOUT)
    assert len(result.result.classifications) == 1
    assert len(result.result.classifications[0].classes) == 1
    assert result.result.classifications[0].classes[0].score == 3.0
    _verify_model_spec(result.model_spec, "default", "classify_x_to_y", VERSION)


def _regress(target: str) -> None:
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "regress_x_to_y"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
    channel, prediction, _ = _stubs(target)
    with channel:
        result = prediction.Regress(request, RPC_TIMEOUT)
    assert len(result.result.regressions) == 1
    assert result.result.regressions[0].value == 3.0
    _verify_model_spec(result.model_spec, "default", "regress_x_to_y", VERSION)


# --------------------------------------------------------------------------- half_plus_two (TF2)
class TestDefaultModelHalfPlusTwoTf2:
    """RunServer('default', saved_model_half_plus_two_tf2_cpu)."""

    @pytest.fixture(scope="class")
    @classmethod
    def target(cls, tf_serving_testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        workdir = tmp_path_factory.mktemp("reference-tf2")
        with LocalServer(
            "default",
            tf_serving_testdata / "saved_model_half_plus_two_tf2_cpu",
            flags=_harness_flags(workdir),
        ) as srv:
            yield f"127.0.0.1:{srv.grpc_port}"

    def test_classify_tf2(self, target: str) -> None:
        """testClassifyTf2."""
        _classify(target)

    def test_regress_tf2(self, target: str) -> None:
        """testRegressTf2."""
        _regress(target)

    def test_multi_inference_tf2(self, target: str) -> None:
        """testMultiInferenceTf2 (one task each way: the same facts as the TF1 model)."""
        request = inference_pb2.MultiInferenceRequest()
        task = request.tasks.add()
        task.model_spec.name, task.model_spec.signature_name = "default", "regress_x_to_y"
        task.method_name = "tensorflow/serving/regress"
        request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
        channel, prediction, _ = _stubs(target)
        with channel:
            result = prediction.MultiInference(request, RPC_TIMEOUT)
        assert result.results[0].regression_result.regressions[0].value == 3.0
        _verify_model_spec(result.results[0].model_spec, "default", "regress_x_to_y", VERSION)


# --------------------------------------------------------------------------- model config files
def _config_text(models: dict[str, Path]) -> str:
    entries = "".join(
        f'  config: {{\n    name: "{name}",\n    base_path: "{path}",\n'
        '    model_platform: "tensorflow"\n  },\n'
        for name, path in models.items()
    )
    return "model_config_list: {\n" + entries.rstrip(",\n") + "\n}\n"


class TestGoodModelConfigAndZeroPollPeriod:
    """testGoodModelConfig on good_model_config.txt's two models, then
    testModelConfigReloadWithZeroPollPeriod: with poll period 0 a rewritten file is never read."""

    @pytest.fixture(scope="class")
    @classmethod
    def server(
        cls, tf_serving_testdata: Path, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[LocalServer]:
        workdir = tmp_path_factory.mktemp("reference-config")
        config = workdir / "good_model_config.conf"
        config.write_text(
            _config_text(
                {
                    "half_plus_two": tf_serving_testdata / "saved_model_half_plus_two_cpu",
                    "half_plus_three": tf_serving_testdata / "saved_model_half_plus_three",
                }
            )
        )
        with LocalServer(config=config, config_poll_seconds=0, flags=_harness_flags(workdir)) as srv:
            yield srv

    def test_good_model_config(self, server: LocalServer) -> None:
        target = f"127.0.0.1:{server.grpc_port}"
        _verify_predict(target, "half_plus_two", 3.0)
        _verify_predict(target, "half_plus_two", 3.0, specify_output=False)
        _verify_predict(target, "half_plus_three", 4.0)
        _verify_predict(target, "half_plus_three", 4.0, specify_output=False)

    def test_model_config_reload_with_zero_poll_period(
        self, server: LocalServer, tf_serving_testdata: Path
    ) -> None:
        assert server.config_file is not None
        server.config_file.write_text(
            _config_text({"half_plus_three": tf_serving_testdata / "saved_model_half_plus_three"})
        )
        time.sleep(2)  # poll period 0 + 1 second, as the upstream test waits
        _verify_predict(f"127.0.0.1:{server.grpc_port}", "half_plus_two", 3.0, specify_output=False)


class TestModelConfigReload:
    """testModelConfigReload: with poll period 1 a rewritten file replaces the served models."""

    def test_model_config_reload(self, tf_serving_testdata: Path, tmp_path: Path) -> None:
        config = tmp_path / "model_config.txt"
        config.write_text(
            _config_text({"half_plus_two": tf_serving_testdata / "saved_model_half_plus_two_cpu"})
        )
        with LocalServer(config=config, config_poll_seconds=1, flags=_harness_flags(tmp_path)) as server:
            target = f"127.0.0.1:{server.grpc_port}"
            _verify_predict(target, "half_plus_two", 3.0, specify_output=False)
            config.write_text(
                _config_text({"half_plus_three": tf_serving_testdata / "saved_model_half_plus_three"})
            )

            def reloaded() -> bool:
                try:
                    _verify_predict(target, "half_plus_three", 4.0, specify_output=False)
                except grpc.RpcError:
                    return False
                return True

            eventually(reloaded, timeout=60, what="half_plus_three served after the config file changed")


def test_bad_model_config(tmp_path: Path) -> None:
    """testBadModelConfig: bad_model_config.txt ('improperly formatted file') stops the server with
    'Error parsing text-format tensorflow.serving.ModelServerConfig' on stderr."""
    bad = tmp_path / "bad_model_config.txt"
    bad.write_text("improperly formatted file")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfsctl",
            "serve",
            "--port=0",
            f"--grpc_socket_path={tmp_path / 's.sock'}",
            f"--model_config_file={bad}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in result.stderr


class TestSerializationAsTensorContent:
    """--enable_serialization_as_tensor_content (server.cc) switches Predict outputs to kAsProtoContent."""

    @pytest.fixture(scope="class")
    @classmethod
    def target(cls, tf_serving_testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        workdir = tmp_path_factory.mktemp("reference-content")
        flags = [*_harness_flags(workdir), "--enable_serialization_as_tensor_content=true"]
        with LocalServer(
            "default", tf_serving_testdata / "saved_model_half_plus_two_cpu", flags=flags
        ) as srv:
            yield f"127.0.0.1:{srv.grpc_port}"

    def test_outputs_come_back_in_tensor_content(self, target: str) -> None:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "default"
        request.inputs["x"].dtype = types_pb2.DT_FLOAT
        request.inputs["x"].float_val.append(2.0)
        request.inputs["x"].tensor_shape.dim.add().size = 1
        channel, prediction, _ = _stubs(target)
        with channel:
            result = prediction.Predict(request, RPC_TIMEOUT)
        y = result.outputs["y"]
        assert len(y.float_val) == 0
        assert y.tensor_content == struct.pack("<f", 3.0)

    def test_a_reload_without_a_model_config_list_is_invalid_argument(self, target: str) -> None:
        """ModelServiceImpl::HandleReloadConfigRequest accepts only a ModelConfigList."""
        request = model_management_pb2.ReloadConfigRequest()
        channel, _, models = _stubs(target)
        with channel, pytest.raises(grpc.RpcError) as info:
            models.HandleReloadConfigRequest(request, RPC_TIMEOUT)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Only ModelConfigList is currently supported" in (info.value.details() or "")
        status = get_model_status_pb2.GetModelStatusRequest()
        status.model_spec.name = "default"
        channel, _, models = _stubs(target)
        with channel:
            rows = models.GetModelStatus(status, RPC_TIMEOUT).model_version_status
        assert [(r.version, r.state) for r in rows] == [
            (VERSION, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
        ]
