"""``tfsctl serve``: a drop-in for ``tensorflow_model_server`` on real SavedModels.

gRPC PredictionService + ModelService on ``--port``, the REST API on
``--rest_api_port`` (0 = off, as in TF Serving), Prometheus metrics, file-system
and config-file polling, and a graceful SIGTERM: stop accepting, finish the
requests in flight, exit 0. TensorFlow is imported only here, when models load.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import signal
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from tfsbed.serve.batch_scheduler import BatchScheduler
from tfsbed.serve.batching import FLAG as BATCHING_FLAG
from tfsbed.serve.batching import BatchingParameters, load_batching_parameters
from tfsbed.serve.core import ServerCore
from tfsbed.serve.flags import ServeOptions, session_threads
from tfsbed.serve.metrics import Metrics
from tfsbed.serve.tls import SSLConfig, load_ssl_config, server_credentials
from tfsctl.errors import InvalidInput, ToolkitError
from tfsctl.serving import tensors
from tfsctl.serving.config import ServerConfig
from tfsctl.serving.examples import to_example
from tfsctl.serving.rules import CODE_NUMBERS, ServingError

log = logging.getLogger("tfsctl.serve")

DEFAULT_METRICS_PATH = "/monitoring/prometheus/metrics"
_PREDICT_RE = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)"
)
_STATUS_RE = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?"
)


# ---------------------------------------------------------------------- the service layer
class Service:
    """Transport-independent request handling over a ``ServerCore``."""

    def __init__(
        self, core: ServerCore, metrics: Metrics, timeout_ms: int = 0, tensor_content: bool = False
    ) -> None:
        self.core = core
        self.metrics = metrics
        self.timeout_ms = timeout_ms
        self.tensor_content = tensor_content

    def timed(self, model: str, api: str, entrypoint: str, call: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        status = "OK"
        self.metrics.started()
        try:
            return call()
        except ServingError as exc:
            status = exc.code
            raise
        finally:
            self.metrics.finished()
            self.metrics.record(model, api, entrypoint, status, time.perf_counter() - start)

    def metadata_proto(self, model: str, version: int | None, label: str | None) -> Any:
        from tfsctl.serving.protos import get_model_metadata_pb2

        servable = self.core.servable(model, version, label)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model
        response.model_spec.version.value = servable.version
        sigmap = get_model_metadata_pb2.SignatureDefMap()
        for key, sig in servable.signatures.items():
            sigmap.signature_def[key].CopyFrom(sig)
        response.metadata["signature_def"].Pack(sigmap)
        return response


# ---------------------------------------------------------------------- gRPC
def _grpc_servicers(service: Service) -> tuple[Any, Any]:
    import grpc

    from tfsbed.serve.servable import CLASSIFY as CLASSIFY_METHOD
    from tfsbed.serve.servable import REGRESS as REGRESS_METHOD
    from tfsbed.serve.servable import examples_of
    from tfsctl.serving.protos import (
        classification_pb2,
        get_model_status_pb2,
        inference_pb2,
        model_management_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
        regression_pb2,
    )

    def abort(context: Any, exc: ServingError) -> None:
        context.abort(getattr(grpc.StatusCode, exc.code, grpc.StatusCode.UNKNOWN), exc.message)

    def spec_of(spec: Any) -> tuple[int | None, str | None]:
        choice = spec.WhichOneof("version_choice")
        if choice == "version":
            return int(spec.version.value), None
        if choice == "version_label":
            return None, spec.version_label
        return None, None

    # predict_util.cc: kAsProtoField (float_val, int64_val...) unless
    # --enable_serialization_as_tensor_content selects kAsProtoContent.
    typed_fields = not service.tensor_content

    class Prediction(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request: Any, context: Any) -> Any:
            version, label = spec_of(request.model_spec)

            def call() -> Any:
                servable = service.core.servable(request.model_spec.name, version, label)
                inputs = {}
                for k, v in request.inputs.items():
                    try:
                        inputs[k] = tensors.from_tensor_proto(v)
                    except InvalidInput as exc:
                        raise ServingError("INVALID_ARGUMENT", str(exc)) from exc
                signature = request.model_spec.signature_name or "serving_default"
                outputs = servable.predict(signature, inputs, list(request.output_filter) or None)
                response = predict_pb2.PredictResponse()
                response.model_spec.name = request.model_spec.name
                response.model_spec.version.value = servable.version
                response.model_spec.signature_name = signature
                for k, v in outputs.items():
                    response.outputs[k].CopyFrom(tensors.to_tensor_proto(v, as_proto_field=typed_fields))
                return response

            try:
                return service.timed(request.model_spec.name, "predict", "GRPC", call)
            except ServingError as exc:
                abort(context, exc)

        def GetModelMetadata(self, request: Any, context: Any) -> Any:
            version, label = spec_of(request.model_spec)
            try:
                if not request.metadata_field:
                    raise ServingError(
                        "INVALID_ARGUMENT", "GetModelMetadataRequest must specify at least one metadata_field"
                    )
                for name in request.metadata_field:
                    if name != "signature_def":
                        raise ServingError("INVALID_ARGUMENT", f"Metadata field {name} is not supported")
                return service.timed(
                    request.model_spec.name,
                    "get_model_metadata",
                    "GRPC",
                    lambda: service.metadata_proto(request.model_spec.name, version, label),
                )
            except ServingError as exc:
                abort(context, exc)

        def Classify(self, request: Any, context: Any) -> Any:
            version, label = spec_of(request.model_spec)

            def call() -> Any:
                servable = service.core.servable(request.model_spec.name, version, label)
                examples, ctx = examples_of(request.input)
                rows = servable.classify(request.model_spec.signature_name, examples, ctx)
                response = classification_pb2.ClassificationResponse()
                response.model_spec.name = request.model_spec.name
                response.model_spec.version.value = servable.version
                response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
                for row in rows:
                    out = response.result.classifications.add()
                    for cls_label, score in row:
                        item = out.classes.add()
                        item.label, item.score = cls_label, score
                return response

            try:
                return service.timed(request.model_spec.name, "classify", "GRPC", call)
            except ServingError as exc:
                abort(context, exc)

        def Regress(self, request: Any, context: Any) -> Any:
            version, label = spec_of(request.model_spec)

            def call() -> Any:
                servable = service.core.servable(request.model_spec.name, version, label)
                examples, ctx = examples_of(request.input)
                values = servable.regress(request.model_spec.signature_name, examples, ctx)
                response = regression_pb2.RegressionResponse()
                response.model_spec.name = request.model_spec.name
                response.model_spec.version.value = servable.version
                response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
                for value in values:
                    response.result.regressions.add().value = value
                return response

            try:
                return service.timed(request.model_spec.name, "regress", "GRPC", call)
            except ServingError as exc:
                abort(context, exc)

        def MultiInference(self, request: Any, context: Any) -> Any:
            """multi_inference.cc: classify/regress tasks on one model, one pass over the input."""
            first = request.tasks[0].model_spec if request.tasks else None
            name = first.name if first is not None else ""

            def call() -> Any:
                if first is None:
                    raise ServingError(
                        "INVALID_ARGUMENT", "MultiInferenceRequest must specify at least one task"
                    )
                version, label = spec_of(first)
                seen: set[str] = set()
                for task in request.tasks:
                    if not task.model_spec.name:
                        raise ServingError("INVALID_ARGUMENT", "Found ModelSpec with an empty model name.")
                    if task.model_spec.name != name:
                        raise ServingError(
                            "INVALID_ARGUMENT",
                            "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
                        )
                    signature = task.model_spec.signature_name or "serving_default"
                    if signature in seen:
                        raise ServingError(
                            "INVALID_ARGUMENT", f"Duplicate evaluation of signature: {signature}"
                        )
                    seen.add(signature)
                    if task.method_name not in (CLASSIFY_METHOD, REGRESS_METHOD):
                        raise ServingError(
                            "UNIMPLEMENTED", f"Unsupported signature method_name: {task.method_name}"
                        )
                servable = service.core.servable(name, version, label)
                examples, ctx = examples_of(request.input)
                response = inference_pb2.MultiInferenceResponse()
                for task in request.tasks:
                    result = response.results.add()
                    result.model_spec.name = name
                    result.model_spec.version.value = servable.version
                    result.model_spec.signature_name = task.model_spec.signature_name or "serving_default"
                    if task.method_name == CLASSIFY_METHOD:
                        for row in servable.classify(task.model_spec.signature_name, examples, ctx):
                            out = result.classification_result.classifications.add()
                            for cls_label, score in row:
                                item = out.classes.add()
                                item.label, item.score = cls_label, score
                    else:
                        for value in servable.regress(task.model_spec.signature_name, examples, ctx):
                            result.regression_result.regressions.add().value = value
                return response

            try:
                return service.timed(name, "multi_inference", "GRPC", call)
            except ServingError as exc:
                abort(context, exc)

    class Models(model_service_pb2_grpc.ModelServiceServicer):
        def GetModelStatus(self, request: Any, context: Any) -> Any:
            version, _label = spec_of(request.model_spec)
            try:
                # GetModelStatusWithModelSpec ignores version_label: a label gets every version.
                rows = service.core.status(request.model_spec.name, version)
            except ServingError as exc:
                abort(context, exc)
            response = get_model_status_pb2.GetModelStatusResponse()
            for row in rows:
                item = response.model_version_status.add()
                item.version = row.version
                item.state = get_model_status_pb2.ModelVersionStatus.State.Value(row.state)
                item.status.error_code = CODE_NUMBERS.get(row.error_code, 2)
                item.status.error_message = row.error_message
            return response

        def HandleReloadConfigRequest(self, request: Any, context: Any) -> Any:
            response = model_management_pb2.ReloadConfigResponse()
            try:
                if request.config.WhichOneof("config") != "model_config_list":
                    raise ServingError(
                        "INVALID_ARGUMENT",
                        "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                        "Only ModelConfigList is currently supported",
                    )
                try:
                    config = ServerConfig.from_proto(request.config, "ReloadConfigRequest")
                except InvalidInput as exc:
                    raise ServingError("INVALID_ARGUMENT", str(exc)) from exc
                service.core.apply_config(config)
                log.info("Reloaded model config: %s", ", ".join(sorted(config.models)) or "(none)")
            except ServingError as exc:
                log.error("ReloadConfig failed: %s", exc.message)  # ModelServiceImpl's line
                abort(context, exc)
            return response

    return Prediction(), Models()


def start_grpc(service: Service, port: int, options: ServeOptions, tls: SSLConfig | None = None) -> Any:
    """gRPC on ``0.0.0.0:port``; with ``tls`` (``--ssl_config_file``) over TLS, as TF Serving does."""
    import grpc

    from tfsctl.serving.protos import model_service_pb2_grpc, prediction_service_pb2_grpc

    workers = options.grpc_max_threads or 16
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        options=options.channel_arguments(),
    )
    prediction, models = _grpc_servicers(service)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(prediction, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(models, server)
    address = f"0.0.0.0:{port}"
    addresses = [(address, "--port", f"gRPC port {port}")] if port else []
    if options.grpc_socket_path:  # Server::BuildAndStart: "unix:" + path, same credentials
        socket_path = options.grpc_socket_path
        addresses.append((f"unix:{socket_path}", "--grpc_socket_path", f"UNIX socket {socket_path}"))
    for where, flag, what in addresses:
        if tls is None:
            bound = server.add_insecure_port(where)
        else:
            bound = server.add_secure_port(where, server_credentials(tls))
        if bound == 0:
            raise ToolkitError(f"{flag}: cannot bind {what}")
    server.start()
    return server


# ---------------------------------------------------------------------- REST
class RestServer(ThreadingHTTPServer):
    """HTTP/1.1 keep-alive server that can drain: idle connections are closed, busy ones finish."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], service: Service, metrics_path: str) -> None:
        self.service = service
        self.metrics_path = metrics_path
        self.draining = False
        self.lock = threading.Lock()
        self.busy: set[socket.socket] = set()
        self.connections: set[socket.socket] = set()
        self.idle = threading.Condition(self.lock)
        super().__init__(address, RestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drain(self, timeout: float) -> None:
        """Stop accepting, close idle keep-alive connections, wait for busy ones to finish."""
        self.draining = True
        self.shutdown()  # stops serve_forever: no new connections
        self.server_close()
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for conn in list(self.connections - self.busy):
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)
                if not self.busy or time.monotonic() >= deadline:
                    return
                self.idle.wait(timeout=0.1)


class RestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RestServer
    server_version = "tfsctl-serve"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        with self.server.lock:
            self.server.busy.add(self.connection)
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload, ctype = self._route(method, body)
            data = payload.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            if self.server.draining:
                self.send_header("Connection", "close")
                self.close_connection = True
            # Headers and body in one write: no Nagle/delayed-ACK stall on keep-alive connections.
            buffer: list[bytes] = self._headers_buffer
            self.wfile.write(b"".join([*buffer, b"\r\n", data]))
            self._headers_buffer: list[bytes] = []
        finally:
            with self.server.lock:
                self.server.busy.discard(self.connection)
                self.server.idle.notify_all()

    def _route(self, method: str, body: bytes) -> tuple[int, str, str]:
        path = urllib.parse.urlsplit(self.path).path
        if method == "GET" and path == self.server.metrics_path:
            return 200, self.server.service.metrics.render(), "text/plain"
        if not re.fullmatch(r"(?i)/v1/.*", path):
            return 404, "", "text/plain"
        try:
            return 200, self._api(method, path, body), "application/json"
        except ServingError as exc:
            return exc.http_status, json.dumps({"error": exc.message}), "application/json"

    def _api(self, method: str, path: str, body: bytes) -> str:
        service = self.server.service
        if method == "POST" and (m := _PREDICT_RE.fullmatch(path)):
            model, version_str, label, verb = m.groups()
            model = urllib.parse.unquote(model)
            version = int(version_str) if version_str else None
            label = urllib.parse.unquote(label) if label else None
            request = _json_body(body)
            handler = {"predict": _rest_predict, "classify": _rest_classify, "regress": _rest_regress}[
                verb.lower()
            ]
            return str(
                service.timed(
                    model, verb.lower(), "REST", lambda: handler(service, model, version, label, request)
                )
            )
        if method == "GET" and (m := _STATUS_RE.fullmatch(path)):
            model, version_str, label, sub = m.groups()
            if not model:
                raise ServingError("INVALID_ARGUMENT", "Missing model name in request.")
            model = urllib.parse.unquote(model)
            version = int(version_str) if version_str else None
            label = urllib.parse.unquote(label) if label else None
            if sub:
                return _metadata_json(
                    service.timed(
                        model,
                        "get_model_metadata",
                        "REST",
                        lambda: service.metadata_proto(model, version, label),
                    )
                )
            rows = service.core.status(model, version)  # /labels/<l>: every version, as gRPC
            doc = {
                "model_version_status": [
                    {
                        "version": str(r.version),
                        "state": r.state,
                        "status": {"error_code": r.error_code, "error_message": r.error_message},
                    }
                    for r in rows
                ]
            }
            return json.dumps(doc, indent=1) + "\n"
        raise ServingError("INVALID_ARGUMENT", f"Malformed request: {method} {path}")


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ServingError(
            "INVALID_ARGUMENT", f"JSON Parse error: {exc.args[0] if exc.args else exc}"
        ) from exc
    if not isinstance(doc, dict):
        raise ServingError("INVALID_ARGUMENT", "JSON Value not an object")
    return doc


def _signature_name(request: Mapping[str, Any]) -> str:
    name = request.get("signature_name", "serving_default")
    if not isinstance(name, str):
        raise ServingError("INVALID_ARGUMENT", "'signature_name' key must be a string value.")
    return name or "serving_default"


def _rest_predict(
    service: Service, model: str, version: int | None, label: str | None, request: dict[str, Any]
) -> str:
    has_rows, has_cols = "instances" in request, "inputs" in request
    if has_rows == has_cols:
        if has_rows:
            raise ServingError(
                "INVALID_ARGUMENT",
                "Not formatted correctly expecting only one of 'inputs' or 'instances' keys exists",
            )
        raise ServingError("INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key")
    signature = _signature_name(request)
    servable = service.core.servable(model, version, label)
    dtypes = servable.input_dtypes(signature)
    try:
        if has_rows:
            inputs = _rows_to_tensors(request["instances"], dtypes)
        else:
            inputs = _columns_to_tensors(request["inputs"], dtypes)
    except InvalidInput as exc:
        raise ServingError("INVALID_ARGUMENT", str(exc)) from exc
    outputs = servable.predict(signature, inputs, timeout_ms=service.timeout_ms)
    try:
        if has_rows:
            return json.dumps({"predictions": tensors.rows_json(outputs)})
        return json.dumps({"outputs": tensors.columns_json(outputs)})
    except InvalidInput as exc:
        raise ServingError("INVALID_ARGUMENT", str(exc)) from exc


def _rows_to_tensors(instances: Any, dtypes: Mapping[str, int]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise ServingError("INVALID_ARGUMENT", "Expecting 'instances' value to be an list/array")
    if not instances:
        raise ServingError("INVALID_ARGUMENT", "'instances' must be a non-empty list")
    named = all(isinstance(row, dict) and "b64" not in row for row in instances)
    if named:
        keys = set(instances[0])
        for row in instances:
            if set(row) != keys:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    "Failed to process element: 'instances': all instances must have the same named inputs",
                )
        return {k: _tensor([row[k] for row in instances], dtypes, k) for k in keys}
    if len(dtypes) != 1:
        raise ServingError(
            "INVALID_ARGUMENT",
            f"The signature has {len(dtypes)} inputs ({', '.join(sorted(dtypes))}): "
            "each instance must be an object of named inputs",
        )
    (name,) = dtypes
    return {name: _tensor(instances, dtypes, name)}


def _columns_to_tensors(inputs: Any, dtypes: Mapping[str, int]) -> dict[str, np.ndarray]:
    if isinstance(inputs, dict) and "b64" not in inputs:
        return {k: _tensor(v, dtypes, k) for k, v in inputs.items()}
    if len(dtypes) != 1:
        raise ServingError(
            "INVALID_ARGUMENT",
            f"The signature has {len(dtypes)} inputs: 'inputs' must be an object of named inputs",
        )
    (name,) = dtypes
    return {name: _tensor(inputs, dtypes, name)}


def _tensor(value: Any, dtypes: Mapping[str, int], name: str) -> np.ndarray:
    return tensors.to_array(value, dtypes.get(name), name=name)


def _examples(request: Mapping[str, Any]) -> tuple[list[Any], Any]:
    examples = request.get("examples")
    if not isinstance(examples, list) or not examples:
        raise ServingError("INVALID_ARGUMENT", "'examples' key missing in JSON or not a non-empty list")
    try:
        parsed = [to_example(e) for e in examples]
        context = request.get("context")
        return parsed, (to_example(context) if context else None)
    except (InvalidInput, AttributeError) as exc:
        raise ServingError("INVALID_ARGUMENT", str(exc)) from exc


def _rest_classify(
    service: Service, model: str, version: int | None, label: str | None, request: dict[str, Any]
) -> str:
    servable = service.core.servable(model, version, label)
    examples, context = _examples(request)
    rows = servable.classify(_signature_name(request), examples, context, service.timeout_ms)
    return json.dumps({"results": [[[c, s] for c, s in row] for row in rows]})


def _rest_regress(
    service: Service, model: str, version: int | None, label: str | None, request: dict[str, Any]
) -> str:
    servable = service.core.servable(model, version, label)
    examples, context = _examples(request)
    return json.dumps(
        {"results": servable.regress(_signature_name(request), examples, context, service.timeout_ms)}
    )


def _metadata_json(response: Any) -> str:
    from google.protobuf import json_format

    from tfsctl.serving.protos import get_model_metadata_pb2

    sigmap = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(sigmap)
    options: dict[str, Any] = {
        "preserving_proto_field_name": True,
        "always_print_fields_with_no_presence": True,
    }
    spec = json_format.MessageToDict(response.model_spec, **options)
    sigs = json_format.MessageToDict(sigmap, **options)
    return json.dumps({"model_spec": spec, "metadata": {"signature_def": sigs}}, indent=1) + "\n"


# ---------------------------------------------------------------------- main
def _read_config(options: ServeOptions) -> ServerConfig:
    if not options.model_config_file:
        return ServerConfig.single(options.model_name, options.model_base_path)
    path = options.model_config_file
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InvalidInput(f"--model_config_file: cannot read {path}: {exc.strerror}") from exc
    return ServerConfig.parse(text, source=path)


def _metrics_path(options: ServeOptions) -> str:
    if not options.monitoring_config_file:
        return DEFAULT_METRICS_PATH
    path = options.monitoring_config_file
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InvalidInput(f"--monitoring_config_file: cannot read {path}: {exc.strerror}") from exc
    match = re.search(r'path\s*:\s*"([^"]+)"', text)
    return match.group(1) if match else DEFAULT_METRICS_PATH


def _batching_parameters(options: ServeOptions) -> BatchingParameters | None:
    """TF Serving's rules: the file only with ``--enable_batching``; the flag alone uses the defaults."""
    if not options.enable_batching:
        if options.batching_parameters_file:
            raise InvalidInput(
                f"{BATCHING_FLAG} is set without --enable_batching=true (TensorFlow Serving rejects this too)"
            )
        return None
    if not options.batching_parameters_file:
        return BatchingParameters.flag_only()
    return load_batching_parameters(options.batching_parameters_file)


def _make_loader(
    options: ServeOptions, batcher: BatchScheduler | None = None
) -> Callable[[str, int, str], Any]:
    from tfsbed.serve.servable import Servable

    tags = tuple(t.strip() for t in options.saved_model_tags.split(",") if t.strip()) or ("serve",)

    def load(name: str, version: int, path: str) -> Servable:
        servable = Servable(
            name,
            version,
            path,
            tags,
            *session_threads(options),
            batcher,
            options.enable_signature_method_name_check,
        )
        if options.enable_model_warmup:
            try:
                count = servable.warmup()
            except ServingError as exc:
                servable.close()
                raise ServingError(
                    exc.code,
                    f"Loading servable: {{name: {name} version: {version}}} failed: warmup: {exc.message}",
                ) from exc
            if count:
                log.info(
                    "Finished reading warmup data for model at %s. Number of warmup records read: %d.",
                    path,
                    count,
                )
        return servable

    return load


def serve(options: ServeOptions, ready: Callable[[], None] | None = None) -> int:
    """Run the server until SIGTERM/SIGINT; returns the exit status (0 after a clean drain)."""
    if options.version:
        from tfsctl import __version__

        log.warning("TensorFlow ModelServer (tfsctl serve %s)", __version__)
        return 0
    for name in options.ignored:
        log.info("--%s accepted; it has no effect in tfsctl serve", name)
    batching = _batching_parameters(options)
    # Every file is checked before a model loads: a bad flag never leaves a half-started server.
    tls = load_ssl_config(options.ssl_config_file) if options.ssl_config_file else None
    config = _read_config(options)
    metrics_path = _metrics_path(options)

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        log.info("Received signal %d: draining", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    batcher = BatchScheduler(batching) if batching is not None else None
    if batching is not None:
        log.info("Batching: %s", batching)
    core = ServerCore(
        _make_loader(options, batcher),
        options.allow_version_labels_for_unavailable_models,
        load_retries=options.max_num_load_retries,
        load_retry_interval=options.load_retry_interval_micros / 1e6,
    )

    def close_core() -> None:
        core.close()
        if batcher is not None:
            batcher.close()

    try:
        core.apply_config(config, initial=True)
    except ServingError as exc:
        close_core()
        raise ToolkitError(f"Failed to start server. Error: {exc}") from exc
    while not stop.is_set():  # TF Serving blocks start-up until the initial models loaded
        core.wait_until_settled(timeout=1.0)
        with_versions = all(core_has_versions(core, n) for n in config.models)
        if with_versions:
            break
    if errors := core.load_errors():
        close_core()
        raise ToolkitError(f"Failed to start server. Error: {errors[0]}")
    if stop.is_set():
        close_core()
        return 0

    metrics = Metrics(extra=batcher.stats.render if batcher is not None else None)
    service = Service(
        core, metrics, options.rest_api_timeout_in_ms, options.enable_serialization_as_tensor_content
    )
    grpc_server = start_grpc(service, options.port, options, tls)
    if options.port:
        log.info("Running gRPC ModelServer at 0.0.0.0:%d ...", options.port)
    if options.grpc_socket_path:
        log.info("Running gRPC ModelServer at UNIX socket %s ...", options.grpc_socket_path)
    if tls is not None:
        log.info(
            "gRPC uses TLS from --ssl_config_file (client certificates %s); REST stays plain HTTP "
            "as in TensorFlow Serving",
            "required" if tls.client_verify else "not requested",
        )
    rest: RestServer | None = None
    if options.rest_api_port:
        try:
            rest = RestServer(("0.0.0.0", options.rest_api_port), service, metrics_path)
        except OSError as exc:
            grpc_server.stop(0)
            raise ToolkitError(
                f"--rest_api_port: cannot bind {options.rest_api_port}: {exc.strerror}"
            ) from exc
        threading.Thread(target=rest.serve_forever, name="rest", daemon=True).start()
        log.info("Exporting HTTP/REST API at:localhost:%d ...", options.rest_api_port)

    pollers = []
    if options.file_system_poll_wait_seconds > 0:
        pollers.append(_poller(stop, options.file_system_poll_wait_seconds, core.poll_filesystem, "fs-poll"))
    if options.model_config_file and options.model_config_file_poll_wait_seconds > 0:
        pollers.append(
            _poller(
                stop, options.model_config_file_poll_wait_seconds, _config_poll(options, core), "config-poll"
            )
        )
    if ready is not None:
        ready()
    stop.wait()

    grace = 30.0
    log.info("Stopping: no new requests, finishing those in flight")
    grpc_done = grpc_server.stop(grace)
    if rest is not None:
        rest.drain(grace)
    grpc_done.wait(grace)
    for thread in pollers:
        thread.join(timeout=5)
    close_core()
    log.info("Server stopped")
    return 0


def core_has_versions(core: ServerCore, model: str) -> bool:
    try:
        return any(r.state in ("AVAILABLE", "END") for r in core.status(model))
    except ServingError:
        return False


def _poller(
    stop: threading.Event, interval: float, action: Callable[[], None], name: str
) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(interval):
            try:
                action()
            except Exception:
                log.exception("%s failed", name)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread


def _config_poll(options: ServeOptions, core: ServerCore) -> Callable[[], None]:
    last_error: list[str] = [""]

    def poll() -> None:
        # Server::PollFilesystemAndReloadConfig's two log lines: the file, then the reload.
        try:
            config = _read_config(options)
            core.apply_config(config)
        except (ServingError, ToolkitError) as exc:
            if str(exc) != last_error[0]:
                if isinstance(exc, ServingError):
                    log.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", exc.message)
                else:
                    log.error("Failed to read ModelServerConfig file: %s", exc)
            last_error[0] = str(exc)
            return
        if last_error[0]:
            log.info("Model config %s applied", options.model_config_file)
        last_error[0] = ""

    return poll
