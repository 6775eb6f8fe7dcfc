"""ServingClient against small real servers on loopback that record what they receive.

They answer with TF Serving's shapes (JSON bodies, HTTP codes, gRPC status codes)
so the client's header handling and error mapping run for real.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest

from tfsbed.serve.testing import free_port
from tfsctl.errors import InvalidInput, ModelNotFound, NotFound, Timeout, Unavailable, VersionNotAvailable
from tfsctl.serving.client import Endpoint, ServingClient
from tfsctl.serving.protos import get_model_status_pb2, model_service_pb2_grpc

RECORDED: dict[str, Any] = {}

REST_ANSWERS: dict[str, tuple[int, dict[str, Any]]] = {
    "/v1/models/ok": (
        200,
        {"model_version_status": [{"version": "3", "state": "AVAILABLE", "status": {"error_code": "OK"}}]},
    ),
    "/v1/models/missing": (404, {"error": "Could not find any versions of model missing"}),
    "/v1/models/ok/labels/nope": (400, {"error": "Unrecognized servable version label: nope"}),
    "/v1/models/ok/versions/9": (404, {"error": "Could not find version 9 of model ok"}),
    "/v1/models/bad": (400, {"error": "Malformed request"}),
    "/v1/models/busy": (503, {"error": "server is draining"}),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        RECORDED["rest_authorization"] = self.headers.get("Authorization")
        if self.path == "/v1/models/slow":
            time.sleep(2)
        status, body = REST_ANSWERS.get(self.path, (404, {"error": "no route"}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client timed out
            self.wfile.write(data)


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def GetModelStatus(self, request: Any, context: Any) -> Any:
        RECORDED["grpc_metadata"] = dict(context.invocation_metadata())
        name = request.model_spec.name
        if name == "missing":
            context.abort(grpc.StatusCode.NOT_FOUND, "Could not find any versions of model missing")
        if name == "loading":
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "Request to assign label to version 2 of model loading, which is not currently available "
                "for inference",
            )
        if name == "slow":
            time.sleep(2)
        response = get_model_status_pb2.GetModelStatusResponse()
        row = response.model_version_status.add()
        row.version = 3
        row.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    http_server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(), grpc_server)
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    yield Endpoint("127.0.0.1", grpc_port, http_server.server_address[1], token="Bearer-xyz")
    grpc_server.stop(0)
    http_server.shutdown()
    http_server.server_close()


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_authorization_token_is_sent_on_both_transports(endpoint: Endpoint, transport: str) -> None:
    with ServingClient(endpoint) as client:
        rows = client.model_status("ok", transport=transport)  # type: ignore[arg-type]
    assert [(r.version, r.state) for r in rows] == [(3, "AVAILABLE")]
    if transport == "rest":
        assert RECORDED["rest_authorization"] == "Bearer-xyz"
    else:
        assert RECORDED["grpc_metadata"]["authorization"] == "Bearer-xyz"


def test_token_stays_out_of_the_endpoint_repr(endpoint: Endpoint) -> None:
    assert "Bearer-xyz" not in repr(endpoint)


@pytest.mark.parametrize(
    ("model", "kwargs", "error", "message"),
    [
        ("missing", {}, ModelNotFound, "Could not find any versions of model missing"),
        ("ok", {"label": "nope"}, NotFound, "Unrecognized servable version label: nope"),
        ("ok", {"version": 9}, NotFound, "Could not find version 9 of model ok"),
        ("bad", {}, InvalidInput, "Malformed request"),
        ("busy", {}, Unavailable, "server is draining"),
    ],
)
def test_rest_errors_map_to_toolkit_errors_with_the_server_message(
    endpoint: Endpoint, model: str, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with ServingClient(endpoint) as client, pytest.raises(error, match=message):
        client.model_status(model, transport="rest", **kwargs)


def test_grpc_errors_map_to_toolkit_errors(endpoint: Endpoint) -> None:
    with ServingClient(endpoint) as client:
        with pytest.raises(ModelNotFound, match="Could not find any versions of model missing"):
            client.model_status("missing")
        with pytest.raises(VersionNotAvailable, match="not currently available for inference"):
            client.model_status("loading")


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_slow_server_raises_timeout(endpoint: Endpoint, transport: str) -> None:
    with (
        ServingClient(endpoint, timeout=0.5) as client,
        pytest.raises(Timeout, match=r"no answer within 0\.5s"),
    ):
        client.model_status("slow", transport=transport)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_refused_port_is_unavailable(transport: str) -> None:
    port = free_port()
    with (
        ServingClient(Endpoint("127.0.0.1", port, port), timeout=5) as client,
        pytest.raises(
            Unavailable, match=f"cannot reach 127.0.0.1:{port}|cannot reach http://127.0.0.1:{port}"
        ),
    ):
        client.model_status("m", transport=transport)  # type: ignore[arg-type]


def test_version_and_label_together_are_rejected_before_any_call(endpoint: Endpoint) -> None:
    with ServingClient(endpoint) as client, pytest.raises(InvalidInput, match="not both"):
        client.model_status("ok", version=1, label="stable", transport="rest")
