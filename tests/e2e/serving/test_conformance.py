"""``tfsctl serve`` against the TF Serving project's own test models, over REST and gRPC.

half_plus_two (versions 123, 124) predicts ``x / 2 + 2`` and has classify/regress
signatures; half_plus_three predicts ``x / 2 + 3`` (a TF1 model that
``tf.saved_model.load`` cannot load); the TF2 half_plus_two is a Keras-era export.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.serving_wait import eventually
from tfsbed.serve.testing import LocalServer
from tfsctl.errors import ExitStatus, InvalidInput, ModelNotFound, NotFound, VersionNotAvailable
from tfsctl.serving.client import Endpoint, ServingClient
from tfsctl.serving.config import ModelConfig, ServerConfig, VersionPolicy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRANSPORTS = ["rest", "grpc"]


def _config(root: Path) -> ServerConfig:
    return ServerConfig(
        {
            "hp2": ModelConfig(
                "hp2",
                str(root / "hp2"),
                policy=VersionPolicy.specific(123, 124),
                labels={"stable": 123, "canary": 124},
            ),
            "hp3": ModelConfig("hp3", str(root / "hp3")),
            "tf2": ModelConfig("tf2", str(root / "tf2")),
        }
    )


@pytest.fixture(scope="module")
def server(model_root: Path) -> Iterator[LocalServer]:
    # Labels in the initial config need the allow flag, exactly as with tensorflow_model_server.
    with LocalServer(config=_config(model_root), allow_labels_for_unavailable=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: LocalServer) -> Iterator[ServingClient]:
    with server.client() as c:
        yield c


def _rest(server: LocalServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    try:
        payload = body if isinstance(body, bytes | None) else json.dumps(body).encode()
        conn.request(method, path, body=payload)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw.strip() else None
    finally:
        conn.close()


# --------------------------------------------------------------------------- status
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_status_lists_every_served_version_newest_first(client: ServingClient, transport: str) -> None:
    rows = client.model_status("hp2", transport=transport)  # type: ignore[arg-type]
    assert [(r.version, r.state, r.error_code) for r in rows] == [
        (124, "AVAILABLE", "OK"),
        (123, "AVAILABLE", "OK"),
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_status_of_one_version_and_status_by_label_ignores_the_label(
    client: ServingClient, transport: str
) -> None:
    """GetModelStatusWithModelSpec reads only model_spec.version: by label, every version comes back."""
    assert [r.version for r in client.model_status("hp2", version=123, transport=transport)] == [123]  # type: ignore[arg-type]
    for label in ("stable", "canary", "no_such_label"):
        rows = client.model_status("hp2", label=label, transport=transport)  # type: ignore[arg-type]
        assert [r.version for r in rows] == [124, 123]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_metadata_by_label_answers_with_the_resolved_version(client: ServingClient, transport: str) -> None:
    """GetModelMetadataImpl fills model_spec.version from the servable the label resolved to."""
    assert client.label_version("hp2", "stable", transport=transport) == 123  # type: ignore[arg-type]
    assert client.label_version("hp2", "canary", transport=transport) == 124  # type: ignore[arg-type]
    data = client.metadata("hp2", label="stable", transport=transport)  # type: ignore[arg-type]
    assert data["model_spec"] == {"name": "hp2", "version": "123", "signature_name": ""}


def test_rest_status_json_has_tf_serving_layout(server: LocalServer) -> None:
    status, body = _rest(server, "GET", "/v1/models/hp3")
    assert status == 200
    assert body == {
        "model_version_status": [
            {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }


# --------------------------------------------------------------------------- predict
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_half_plus_two_predicts_x_half_plus_two_in_row_format(client: ServingClient, transport: str) -> None:
    result = client.predict("hp2", [1.0, 2.0, 5.0], transport=transport)  # type: ignore[arg-type]
    assert result["predictions"] == [2.5, 3.0, 4.5]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_columnar_inputs_give_outputs(client: ServingClient, transport: str) -> None:
    result = client.predict("hp2", {"x": [[1.0], [3.0]]}, columnar=True, transport=transport)  # type: ignore[arg-type]
    assert result["outputs"] == [[2.5], [3.5]]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("model", "expected"), [("hp3", [3.5, 4.0]), ("tf2", [2.5, 3.0])])
def test_half_plus_three_and_the_tf2_model_predict(
    client: ServingClient, transport: str, model: str, expected: list[float]
) -> None:
    assert client.predict(model, [1.0, 2.0], transport=transport)["predictions"] == expected  # type: ignore[arg-type]


def test_grpc_predict_reports_the_version_a_label_resolves_to(client: ServingClient) -> None:
    assert client.predict("hp2", [1.0], label="stable", transport="grpc")["model_spec"]["version"] == "123"
    assert client.predict("hp2", [1.0], label="canary", transport="grpc")["model_spec"]["version"] == "124"
    assert client.predict("hp2", [1.0], version=123, transport="grpc")["model_spec"]["version"] == "123"
    assert client.predict("hp2", [1.0], transport="grpc")["model_spec"]["version"] == "124"


def test_rest_predict_by_label_and_version_paths(server: LocalServer) -> None:
    for path in ("/v1/models/hp2/labels/stable:predict", "/v1/models/hp2/versions/124:predict"):
        status, body = _rest(server, "POST", path, {"instances": [4.0]})
        assert (status, body) == (200, {"predictions": [4.0]})


# --------------------------------------------------------------------------- classify / regress
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_classify_and_regress_on_half_plus_two(client: ServingClient, transport: str) -> None:
    examples = [{"x": 1.0}, {"x": 4.0}]
    regress = client.regress("hp2", examples, signature="regress_x_to_y", transport=transport)  # type: ignore[arg-type]
    assert regress == {"results": [2.5, 4.0]}
    classify = client.classify("hp2", examples, signature="classify_x_to_y", transport=transport)  # type: ignore[arg-type]
    assert classify == {"results": [[["", 2.5]], [["", 4.0]]]}


def test_classify_with_a_predict_signature_is_rejected(client: ServingClient) -> None:
    """classifier.cc: without --enable_signature_method_name_check (the default) the signature's
    shape decides: serving_default has no 'inputs' tensor."""
    with pytest.raises(InvalidInput, match="No classification inputs found in SignatureDef"):
        client.classify("hp2", [{"x": 1.0}], transport="grpc")
    with pytest.raises(InvalidInput, match="No signature was found with the name: nope"):
        client.regress("hp2", [{"x": 1.0}], signature="nope", transport="grpc")


# --------------------------------------------------------------------------- metadata
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_metadata_lists_signatures_with_dtypes(client: ServingClient, transport: str) -> None:
    data = client.metadata("hp2", version=123, transport=transport)  # type: ignore[arg-type]
    assert data["model_spec"]["name"] == "hp2" and data["model_spec"]["version"] == "123"
    sigs = data["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "classify_x_to_y", "regress_x_to_y"} <= set(sigs)
    assert sigs["serving_default"]["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert sigs["serving_default"]["method_name"] == "tensorflow/serving/predict"


def test_tf2_metadata_lists_the_init_op_pseudo_signature(client: ServingClient) -> None:
    """TF Serving lists every SignatureDef; its TF2 metadata testdata has __saved_model_init_op."""
    sigs = client.metadata("tf2", transport="rest")["metadata"]["signature_def"]["signature_def"]
    assert "serving_default" in sigs
    init = sigs["__saved_model_init_op"]
    assert init["method_name"] == "" and init["inputs"] == {}
    assert init["outputs"]["__saved_model_init_op"]["name"] == "NoOp"


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_model_is_model_not_found_with_the_server_message(
    client: ServingClient, transport: str
) -> None:
    with pytest.raises(ModelNotFound, match=r"Servable not found for request: Latest\(nope\)"):
        client.predict("nope", [1.0], transport=transport)  # type: ignore[arg-type]
    with pytest.raises(ModelNotFound, match="Could not find any versions of model nope"):
        client.model_status("nope", transport=transport)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_version_and_label_are_not_found(client: ServingClient, transport: str) -> None:
    with pytest.raises(NotFound, match="Could not find version 7 of model hp2"):
        client.model_status("hp2", version=7, transport=transport)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="Unrecognized servable version label: nope"):
        client.predict("hp2", [1.0], label="nope", transport=transport)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match=r"Servable not found for request: Specific\(hp2, 7\)"):
        client.predict("hp2", [1.0], version=7, transport=transport)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
        (
            "GET",
            "/v1/models/hp2/labels/nope/metadata",
            None,
            400,
            "Unrecognized servable version label: nope",
        ),
        ("POST", "/v1/models/hp2/labels/nope:predict", {"instances": [1.0]}, 400, "Unrecognized servable"),
        ("POST", "/v1/models/hp2:predict", b"{not json", 400, "JSON Parse error"),
        ("POST", "/v1/models/hp2:predict", {"x": 1}, 400, "Missing 'inputs' or 'instances' key"),
        (
            "POST",
            "/v1/models/hp2:predict",
            {"instances": [1.0], "inputs": [1.0]},
            400,
            "expecting only one of 'inputs' or 'instances'",
        ),
        (
            "POST",
            "/v1/models/hp2:predict",
            {"signature_name": "nope", "instances": [1.0]},
            400,
            'Serving signature key "nope" not found.',
        ),
        ("POST", "/v1/models/hp2:predict", {"inputs": {"x": [1.0], "z": [2.0]}}, 400, "Sent extra: {z}"),
        ("GET", "/v1/models", None, 400, "Missing model name in request."),
        ("POST", "/v1/models/hp2:explain", {"instances": [1.0]}, 400, "Malformed request: POST"),
    ],
)
def test_rest_errors_have_tf_serving_status_codes_and_messages(
    server: LocalServer, method: str, path: str, body: Any, status: int, message: str
) -> None:
    got_status, got_body = _rest(server, method, path, body)
    assert got_status == status
    assert message in got_body["error"]


def test_rest_status_by_label_lists_every_version(server: LocalServer) -> None:
    """REST GET /v1/models/m/labels/l goes through the same GetModelStatus (ProcessModelStatusRequest)."""
    for label in ("stable", "nope"):
        status, body = _rest(server, "GET", f"/v1/models/hp2/labels/{label}")
        assert status == 200
        assert [row["version"] for row in body["model_version_status"]] == ["124", "123"]


# --------------------------------------------------------------------------- concurrency and metrics
def test_concurrent_clients_on_both_ports_get_correct_answers(server: LocalServer) -> None:
    errors: list[str] = []

    def worker(index: int) -> None:
        transport = "grpc" if index % 2 else "rest"
        with ServingClient(server.endpoint, timeout=60) as own:
            for step in range(8):
                x = float(index * 10 + step)
                try:
                    got = own.predict("hp2", [x], transport=transport)["predictions"]  # type: ignore[arg-type]
                    if got != [x / 2 + 2]:
                        errors.append(f"{transport} {x}: {got}")
                except Exception as exc:
                    errors.append(f"{transport} {x}: {exc}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_prometheus_metrics_count_requests_per_model(server: LocalServer, client: ServingClient) -> None:
    client.predict("hp3", [1.0])
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    conn.request("GET", "/monitoring/prometheus/metrics")
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    assert response.status == 200
    assert ':tensorflow:serving:request_count{model_name="hp3",status="OK"}' in text
    assert (
        ':tensorflow:serving:request_latency_count{model_name="hp3",API="predict",entrypoint="REST"}' in text
    )
    assert 'status="NOT_FOUND"' in text  # the error tests above were counted too


# --------------------------------------------------------------------------- CLI
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TFSCTL_SERVING_TOKEN": "secret-token-value"}
    return subprocess.run(
        [sys.executable, "-m", "tfsctl", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_cli_model_status_json(server: LocalServer) -> None:
    result = _cli("model-status", "hp2", "--grpc-port", str(server.grpc_port), "-o", "json")
    assert result.returncode == 0, result.stderr
    assert [row["version"] for row in json.loads(result.stdout)] == [124, 123]
    assert "secret-token-value" not in result.stdout + result.stderr


def test_cli_model_status_of_a_label_is_the_version_its_metadata_resolves_to(server: LocalServer) -> None:
    """The server's GetModelStatus ignores labels; the CLI resolves the label first (metadata)."""
    result = _cli(
        "model-status", "hp2", "--label", "stable", "--grpc-port", str(server.grpc_port), "-o", "json"
    )
    assert result.returncode == 0, result.stderr
    assert [(row["version"], row["state"]) for row in json.loads(result.stdout)] == [(123, "AVAILABLE")]


def test_cli_predict_and_metadata(server: LocalServer) -> None:
    result = _cli(
        "predict", "hp2", "-d", "[1.0, 6.0]", "--rest-port", str(server.rest_port), "--label", "stable"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2.5", "5.0"]
    meta = _cli("metadata", "hp3", "--grpc-port", str(server.grpc_port))
    assert meta.returncode == 0 and "input  x: DT_FLOAT" in meta.stdout


def test_cli_unknown_model_exits_not_found_with_message(server: LocalServer) -> None:
    result = _cli("predict", "nope", "-d", "[1.0]", "--rest-port", str(server.rest_port))
    assert result.returncode == ExitStatus.NOT_FOUND
    assert (
        "tfsctl: error:" in result.stderr and "Servable not found for request: Latest(nope)" in result.stderr
    )


# --------------------------------------------------------------------------- reload (changes config: last)
def test_reload_checks_labels_against_what_is_loaded_before_the_config_applies(
    client: ServingClient, model_root: Path
) -> None:
    """ServerCore::ReloadConfig: UpdateModelVersionLabelMap runs before the new policy applies, so a
    label may move to a version the same reload retires; the label then names an unloaded version."""
    config = _config(model_root)
    hp2 = config.models["hp2"]
    client.reload_config(
        config.with_model(hp2.with_policy(VersionPolicy.specific(123)).with_labels({"stable": 124}))
    )
    eventually(lambda: client.model_status("hp2", version=124)[0].state == "END", what="hp2 124 unloaded")
    with pytest.raises(ModelNotFound, match=r"Servable not found for request: Specific\(hp2, 124\)"):
        client.predict("hp2", [1.0], label="stable", transport="grpc")


def test_reload_that_loads_a_version_and_moves_a_label_to_it_fails_as_a_whole(
    client: ServingClient, model_root: Path
) -> None:
    """UpdateModelVersionLabelMap before AddModelsViaModelConfigList: moving an existing label to a
    version the same reload would load is FAILED_PRECONDITION (even with the allow flag), and the
    version is not loaded."""
    config = _config(model_root)
    hp2 = config.models["hp2"].with_policy(VersionPolicy.specific(123))
    client.reload_config(config.with_model(hp2.with_labels({"stable": 123})))
    assert client.label_version("hp2", "stable") == 123
    both = hp2.with_policy(VersionPolicy.specific(123, 124)).with_labels({"stable": 124})
    with pytest.raises(
        VersionNotAvailable,
        match="Request to assign label to version 124 of model hp2, which is not currently available",
    ):
        client.reload_config(config.with_model(both))
    assert client.model_status("hp2", version=124)[0].state == "END"
    assert client.predict("hp2", [1.0], label="stable", transport="grpc")["model_spec"]["version"] == "123"


def test_reload_applies_a_whole_new_config_and_labels_move_in_two_phases(
    client: ServingClient, model_root: Path
) -> None:
    # The previous reload dropped 124 from the policy; loading it and labelling it are two changes.
    config = _config(model_root)
    loading = config.models["hp2"].with_policy(VersionPolicy.specific(123, 124)).with_labels({"stable": 123})
    client.reload_config(ServerConfig({"hp2": loading}))
    eventually(
        lambda: client.model_status("hp2", version=124)[0].state == "AVAILABLE", what="hp2 124 AVAILABLE"
    )
    client.reload_config(ServerConfig({"hp2": loading.with_labels({"stable": 124})}))
    assert client.predict("hp2", [1.0], label="stable", transport="grpc")["model_spec"]["version"] == "124"
    with pytest.raises(NotFound, match="Unrecognized servable version label: canary"):
        client.predict("hp2", [1.0], label="canary", transport="grpc")
    with pytest.raises(ModelNotFound, match=r"Latest\(hp3\)"):
        client.predict("hp3", [1.0], transport="grpc")


def test_token_is_sent_on_both_transports_and_ignored_by_the_server(server: LocalServer) -> None:
    endpoint = Endpoint("127.0.0.1", server.grpc_port, server.rest_port, token="abc")
    with ServingClient(endpoint) as c:
        assert c.predict("hp2", [2.0], transport="rest")["predictions"] == [3.0]
        assert c.predict("hp2", [2.0], transport="grpc")["predictions"] == [3.0]
    assert "abc" not in repr(endpoint)
