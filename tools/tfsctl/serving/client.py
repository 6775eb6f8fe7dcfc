"""A TF Serving client over REST and gRPC with one result shape for both.

``ServingClient`` is synchronous, thread-safe and a context manager. REST uses
``http.client`` with one keep-alive connection per thread; gRPC one channel. Every
call takes a version number or a version label; an ``Authorization`` token (as
PAI-EAS endpoints require) is sent on both transports and never logged. Server
errors become ``tfsctl.errors`` exceptions carrying the server's message.

Results are the REST JSON layout on both transports (status rows, metadata
``{"model_spec", "metadata": {"signature_def"}}``, ``predictions``/``outputs``,
classify/regress ``results``); gRPC predictions also carry the ``model_spec`` that
answered, which REST does not report.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from tfsctl.errors import (
    InvalidInput,
    ModelNotFound,
    NotFound,
    Timeout,
    ToolkitError,
    Unavailable,
    VersionNotAvailable,
)
from tfsctl.serving.config import ServerConfig

log = logging.getLogger(__name__)

Transport = Literal["rest", "grpc"]

# google.rpc / tensorflow.error code numbers (grpc.StatusCode values share them).
_CODE_NAMES = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}
_HTTP_TO_CODE = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ABORTED", 401: "UNAUTHENTICATED"}
_HTTP_TO_CODE |= {403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED"}
_HTTP_TO_CODE |= {501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED", 500: "INTERNAL"}


@dataclass(frozen=True)
class Endpoint:
    """Where a model server listens. ``token`` is sent as the ``Authorization`` header.

    TLS: ``tls`` turns it on for gRPC and, unless ``rest_tls`` says otherwise, for REST.
    ``ca_file`` is the PEM bundle that signs the server certificate (system CAs when
    None); ``cert_file`` + ``key_file`` are the client certificate for servers that
    verify clients (TF Serving's ``client_verify: true``). TF Serving's
    ``--ssl_config_file`` secures gRPC only, its REST port stays plain HTTP: talk to it
    with ``tls=True, rest_tls=False``.
    """

    host: str
    grpc_port: int = 8500
    rest_port: int = 8501
    token: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    rest_tls: bool | None = None
    # the REST ``Host`` header when it is not ``host:rest_port``: a name-based route (an
    # Ingress rule's host) reached at an address (``tfsctl loadtest --resolve``)
    rest_host_header: str | None = None

    @property
    def rest_uses_tls(self) -> bool:
        return self.tls if self.rest_tls is None else self.rest_tls

    @property
    def rest_url(self) -> str:
        return f"{'https' if self.rest_uses_tls else 'http'}://{self._host}:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"{self._host}:{self.grpc_port}"

    @property
    def _host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def check_tls_files(self) -> None:
        """``InvalidInput`` naming the field when a TLS file is missing or unreadable, or half a key pair."""
        if (self.cert_file is None) != (self.key_file is None):
            raise InvalidInput(
                "cert_file and key_file: give both (a client certificate and its key) or neither"
            )
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None:
                _read_pem(name, path)


def _read_pem(name: str, path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InvalidInput(f"{name}: cannot read {path}: {exc.strerror}") from exc
    if b"-----BEGIN " not in data:
        raise InvalidInput(f"{name}: {path} is not a PEM file (no -----BEGIN line)")
    return data


def _tls_hint(details: str, endpoint: Endpoint) -> str | None:
    """A readable cause for a failed TLS (or plaintext-vs-TLS) connection, from gRPC's details."""
    low = details.lower()
    if "handshake" in low or "certificate_verify_failed" in low or "ssl_error" in low:
        trust = f"CA file {endpoint.ca_file}" if endpoint.ca_file else "the system CAs"
        if "certificate_verify_failed" in low:
            return f"TLS handshake failed: the server certificate is not trusted by {trust}"
        return "TLS handshake failed"
    if "socket closed" in low or "connection reset" in low:
        if endpoint.tls and endpoint.cert_file is None:
            return "the server closed the TLS connection (does it require a client certificate?)"
        if endpoint.tls:
            return "the server closed the TLS connection (was the client certificate rejected?)"
        return "the server closed the connection (does it expect TLS?)"
    return None


@dataclass(frozen=True)
class VersionStatus:
    """One row of GetModelStatus."""

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


def error_for(code: str, message: str, where: str = "") -> ToolkitError:
    """The ``tfsctl.errors`` exception for a TF Serving status code and message."""
    text = f"{where}: {message}" if where else message
    if code == "NOT_FOUND":
        if "Servable not found" in message or "Could not find any versions of model" in message:
            return ModelNotFound(text)
        return NotFound(text)
    if "Unrecognized servable version label" in message:
        return NotFound(text)
    if "not currently available" in message or "Servable not available" in message:
        return VersionNotAvailable(text)
    if code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE"):
        return InvalidInput(text)
    if code == "UNAVAILABLE":
        return Unavailable(text)
    if code == "DEADLINE_EXCEEDED":
        return Timeout(text)
    return ToolkitError(f"{text} ({code})")


class ServingClient:
    """Talks to one TF Serving endpoint (``tensorflow_model_server`` or ``tfsctl serve``)."""

    def __init__(self, endpoint: Endpoint, timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._channel: Any = None
        self._stubs: dict[str, Any] = {}
        self._connections: list[http.client.HTTPConnection] = []
        self._signatures: dict[tuple[str, int | None, str | None, str], dict[str, Any]] = {}

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None
                self._stubs.clear()
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    # ------------------------------------------------------------------ API
    def model_status(
        self, model: str, version: int | None = None, label: str | None = None, transport: Transport = "grpc"
    ) -> list[VersionStatus]:
        """Status of every version (or of one version) of ``model``.

        A ``label`` is sent as TF Serving's API allows, but the server ignores it and answers
        with every version: resolve labels with ``label_version``.
        """
        if transport == "rest":
            body = self._rest("GET", self._path(model, version, label))
            rows = body.get("model_version_status", [])
            return [
                VersionStatus(
                    int(r.get("version", 0)),
                    str(r.get("state", "UNKNOWN")),
                    str(r.get("status", {}).get("error_code", "OK")),
                    str(r.get("status", {}).get("error_message", "")),
                )
                for r in rows
            ]
        from tfsctl.serving.protos import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model, version, label)
        response = self._grpc("model", "GetModelStatus", request, model)
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return [
            VersionStatus(
                int(s.version),
                str(state_name(s.state)),
                _CODE_NAMES.get(int(s.status.error_code), str(s.status.error_code)),
                s.status.error_message,
            )
            for s in response.model_version_status
        ]

    def metadata(
        self, model: str, version: int | None = None, label: str | None = None, transport: Transport = "grpc"
    ) -> dict[str, Any]:
        """``{"model_spec": {...}, "metadata": {"signature_def": {...}}}`` as TF Serving's REST API."""
        if transport == "rest":
            return dict(self._rest("GET", self._path(model, version, label) + "/metadata"))
        from google.protobuf import json_format

        from tfsctl.serving.protos import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self._spec(request.model_spec, model, version, label)
        request.metadata_field.append("signature_def")
        response = self._grpc("prediction", "GetModelMetadata", request, model)
        sigmap = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sigmap)
        options = {"preserving_proto_field_name": True}
        spec = json_format.MessageToDict(response.model_spec, **options)
        spec.setdefault("signature_name", "")
        sigs = json_format.MessageToDict(sigmap, **options)
        return {"model_spec": spec, "metadata": {"signature_def": sigs}}

    def label_version(self, model: str, label: str, transport: Transport = "grpc") -> int:
        """The version ``label`` resolves to on this server, read the way the real server tells it.

        GetModelMetadata by label answers with the resolved ``model_spec.version``
        (``get_model_metadata_impl.cc``). GetModelStatus cannot be used: it ignores
        ``version_label`` and lists every version (``get_model_status_impl.cc``). Raises
        ``NotFound`` for an unknown label and ``ModelNotFound`` when the label names a
        version that is not loaded.
        """
        if transport == "rest":
            spec = self._rest("GET", self._path(model, None, label) + "/metadata").get("model_spec", {})
            return int(spec.get("version", -1))
        from tfsctl.serving.protos import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self._spec(request.model_spec, model, None, label)
        request.metadata_field.append("signature_def")
        response = self._grpc("prediction", "GetModelMetadata", request, model)
        return int(response.model_spec.version.value)

    def predict(
        self,
        model: str,
        inputs: Any,
        version: int | None = None,
        label: str | None = None,
        signature: str = "serving_default",
        transport: Transport = "rest",
        columnar: bool = False,
    ) -> dict[str, Any]:
        """Predict. ``inputs``: rows (a list; or ``{name: rows}``) or, with ``columnar``, tensors.

        Returns ``{"predictions": rows}`` (row format) or ``{"outputs": ...}`` (columnar).
        """
        if transport == "rest":
            body: dict[str, Any] = {"signature_name": signature}
            if columnar:
                body["inputs"] = inputs
            else:
                body["instances"] = _instances(inputs)
            return dict(self._rest("POST", self._path(model, version, label) + ":predict", body))
        from tfsctl.serving import tensors
        from tfsctl.serving.protos import predict_pb2

        sig = self._signature(model, version, label, signature)
        named = _named_inputs(inputs, sig, columnar)
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, model, version, label, signature)
        for name, value in named.items():
            dtype = sig["inputs"].get(name, {}).get("dtype")
            dtype_enum = _dtype_enum(dtype) if dtype else None
            request.inputs[name].CopyFrom(tensors.to_tensor_proto(value, dtype_enum, name=name))
        response = self._grpc("prediction", "Predict", request, model)
        outputs = {k: tensors.from_tensor_proto(v) for k, v in response.outputs.items()}
        spec = {"name": response.model_spec.name, "signature_name": response.model_spec.signature_name}
        if response.model_spec.HasField("version"):
            spec["version"] = str(response.model_spec.version.value)
        if columnar:
            return {"outputs": tensors.columns_json(outputs), "model_spec": spec}
        return {"predictions": tensors.rows_json(outputs), "model_spec": spec}

    def classify(
        self,
        model: str,
        examples: Sequence[Mapping[str, Any]],
        version: int | None = None,
        label: str | None = None,
        signature: str = "serving_default",
        transport: Transport = "rest",
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Classify tf.Examples given as ``{feature: value(s)}``; ``{"results": [[[class, score]...]]}``."""
        if transport == "rest":
            body = _example_body(examples, signature, context)
            return dict(self._rest("POST", self._path(model, version, label) + ":classify", body))
        from tfsctl.serving.protos import classification_pb2

        request = classification_pb2.ClassificationRequest()
        self._spec(request.model_spec, model, version, label, signature)
        _fill_input(request.input, examples, context)
        response = self._grpc("prediction", "Classify", request, model)
        results = [
            [[c.label, float(str(np.float32(c.score)))] for c in cls.classes]
            for cls in response.result.classifications
        ]
        return {"results": results}

    def regress(
        self,
        model: str,
        examples: Sequence[Mapping[str, Any]],
        version: int | None = None,
        label: str | None = None,
        signature: str = "serving_default",
        transport: Transport = "rest",
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Regress tf.Examples given as ``{feature: value(s)}``; ``{"results": [value, ...]}``."""
        if transport == "rest":
            body = _example_body(examples, signature, context)
            return dict(self._rest("POST", self._path(model, version, label) + ":regress", body))
        from tfsctl.serving.protos import regression_pb2

        request = regression_pb2.RegressionRequest()
        self._spec(request.model_spec, model, version, label, signature)
        _fill_input(request.input, examples, context)
        response = self._grpc("prediction", "Regress", request, model)
        return {"results": [float(str(np.float32(r.value))) for r in response.result.regressions]}

    def reload_config(self, config: ServerConfig) -> None:
        """Replace the server's whole model config (gRPC ``HandleReloadConfigRequest``)."""
        from tfsctl.serving.protos import model_management_pb2

        request = model_management_pb2.ReloadConfigRequest()
        # The config's message class is the core's own (tfsctl.serving.schema); the request's is
        # TF Serving's generated one: they meet on the wire format.
        request.config.ParseFromString(config.to_proto().SerializeToString())
        response = self._grpc("model", "HandleReloadConfigRequest", request, "reload config")
        code = int(response.status.error_code)
        if code != 0:
            raise error_for(
                _CODE_NAMES.get(code, str(code)), response.status.error_message, "HandleReloadConfigRequest"
            )
        with self._lock:
            self._signatures.clear()

    # ------------------------------------------------------------------ REST
    def _path(self, model: str, version: int | None, label: str | None) -> str:
        if version is not None and label is not None:
            raise InvalidInput("give a version or a label, not both")
        path = "/v1/models/" + urllib.parse.quote(model, safe="")
        if version is not None:
            path += f"/versions/{int(version)}"
        elif label is not None:
            path += "/labels/" + urllib.parse.quote(label, safe="")
        return path

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            host = self.endpoint.host
            port = self.endpoint.rest_port
            if self.endpoint.rest_uses_tls:
                context = self._ssl_context()
                conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=context)
            else:
                conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
            conn.connect()
            if conn.sock is not None:  # headers and body go out without waiting for ACKs
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _rest(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Accept": "application/json"}
        if self.endpoint.token:
            headers["Authorization"] = self.endpoint.token
        if self.endpoint.rest_host_header:
            headers["Host"] = self.endpoint.rest_host_header  # http.client then sends no Host of its own
        payload = None
        if body is not None:
            payload = json.dumps(body, default=_json_default).encode()
            headers["Content-Type"] = "application/json"
        where = f"{method} {self.endpoint.rest_url}{path}"
        for attempt in (1, 2):
            try:
                conn = self._connection()
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                break
            except TimeoutError as exc:
                self._drop_connection()
                raise Timeout(f"{where}: no answer within {self.timeout:g}s") from exc
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                # A kept-alive connection the server has closed: retry once on a fresh one.
                self._drop_connection()
                if attempt == 2:
                    raise Unavailable(f"{where}: connection closed by server: {exc}") from exc
            except ssl.SSLCertVerificationError as exc:
                self._drop_connection()
                trust = f"CA file {self.endpoint.ca_file}" if self.endpoint.ca_file else "the system CAs"
                raise Unavailable(
                    f"{where}: TLS handshake with {self.endpoint.rest_url} failed: the server certificate "
                    f"is not trusted by {trust} ({exc.verify_message})"
                ) from exc
            except ssl.SSLError as exc:
                self._drop_connection()
                raise Unavailable(
                    f"{where}: TLS with {self.endpoint.rest_url} failed: {exc.reason or exc}"
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()
                raise Unavailable(f"{where}: cannot reach {self.endpoint.rest_url}: {exc}") from exc
        try:
            data = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            data = {"error": raw.decode(errors="replace").strip()}
        if response.status != 200:
            message = data.get("error", "") if isinstance(data, dict) else str(data)
            code = _HTTP_TO_CODE.get(response.status, "UNKNOWN")
            raise error_for(code, str(message) or f"HTTP {response.status}", where)
        return data

    def _ssl_context(self) -> ssl.SSLContext:
        endpoint = self.endpoint
        endpoint.check_tls_files()
        try:
            context = ssl.create_default_context(cafile=endpoint.ca_file)
        except ssl.SSLError as exc:
            raise InvalidInput(f"ca_file: {endpoint.ca_file} holds no usable certificate: {exc}") from exc
        if endpoint.cert_file and endpoint.key_file:
            try:
                context.load_cert_chain(endpoint.cert_file, endpoint.key_file)
            except ssl.SSLError as exc:
                raise InvalidInput(
                    f"cert_file/key_file: {endpoint.cert_file} and {endpoint.key_file} are not a matching "
                    f"PEM certificate and key: {exc.reason or exc}"
                ) from exc
        return context

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # ------------------------------------------------------------------ gRPC
    def _stub(self, service: str) -> Any:
        with self._lock:
            if self._channel is None:
                import grpc

                options = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]
                endpoint = self.endpoint
                if endpoint.tls:
                    endpoint.check_tls_files()
                    pem = {
                        n: _read_pem(n, p)
                        for n in ("ca_file", "cert_file", "key_file")
                        if (p := getattr(endpoint, n))
                    }
                    creds = grpc.ssl_channel_credentials(
                        root_certificates=pem.get("ca_file"),
                        private_key=pem.get("key_file"),
                        certificate_chain=pem.get("cert_file"),
                    )
                    self._channel = grpc.secure_channel(endpoint.grpc_target, creds, options)
                else:
                    self._channel = grpc.insecure_channel(self.endpoint.grpc_target, options)
            if service not in self._stubs:
                from tfsctl.serving.protos import model_service_pb2_grpc, prediction_service_pb2_grpc

                if service == "model":
                    self._stubs[service] = model_service_pb2_grpc.ModelServiceStub(self._channel)
                else:
                    self._stubs[service] = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
            return self._stubs[service]

    def _grpc(self, service: str, method: str, request: Any, what: str) -> Any:
        import grpc

        metadata = [("authorization", self.endpoint.token)] if self.endpoint.token else None
        where = f"gRPC {method} {self.endpoint.grpc_target}"
        try:
            return getattr(self._stub(service), method)(request, timeout=self.timeout, metadata=metadata)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            name = code.name if code is not None else "UNKNOWN"
            hint = _tls_hint(details or "", self.endpoint) if name == "UNAVAILABLE" else None
            if hint is not None:
                raise Unavailable(f"{where}: {hint}: {details}") from exc
            if name == "UNAVAILABLE" and ("connect" in (details or "").lower()):
                raise Unavailable(f"{where}: cannot reach {self.endpoint.grpc_target}: {details}") from exc
            if name == "DEADLINE_EXCEEDED":
                raise Timeout(f"{where}: no answer within {self.timeout:g}s") from exc
            raise error_for(name, details or "", where) from exc

    def _spec(
        self, spec: Any, model: str, version: int | None, label: str | None, signature: str | None = None
    ) -> None:
        if version is not None and label is not None:
            raise InvalidInput("give a version or a label, not both")
        spec.name = model
        if version is not None:
            spec.version.value = int(version)
        if label is not None:
            spec.version_label = label
        if signature:
            spec.signature_name = signature

    def _signature(self, model: str, version: int | None, label: str | None, name: str) -> dict[str, Any]:
        key = (model, version, label, name)
        with self._lock:
            cached = self._signatures.get(key)
        if cached is not None:
            return cached
        sigs = self.metadata(model, version, label, "grpc")["metadata"]["signature_def"]
        sigdef = sigs.get("signature_def", {}).get(name or "serving_default")
        if sigdef is None:
            # Let the server produce its own error for an unknown signature.
            sigdef = {"inputs": {}, "outputs": {}}
        with self._lock:
            self._signatures[key] = sigdef
        return dict(sigdef)


def _dtype_enum(name: str) -> int | None:
    from tfsctl.serving.protos import types_pb2

    try:
        return int(types_pb2.DataType.Value(name))
    except ValueError:
        return None


def _json_default(value: Any) -> Any:
    """``json.dumps`` hook: numpy arrays and scalars, and bytes as ``{"b64": ...}``."""
    if isinstance(value, np.ndarray):
        if value.dtype != object:
            return value.tolist()
        from tfsctl.serving import tensors

        return tensors.to_json_value(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _instances(inputs: Any) -> list[Any]:
    """Row-format instances from a list of rows or a ``{name: rows}`` mapping."""
    if isinstance(inputs, Mapping):
        sizes = {len(v) if isinstance(v, list | tuple | np.ndarray) else -1 for v in inputs.values()}
        if len(sizes) != 1 or -1 in sizes:
            raise InvalidInput("predict inputs: every named input needs the same number of rows")
        return [{k: v[i] for k, v in inputs.items()} for i in range(sizes.pop())]
    if isinstance(inputs, np.ndarray):
        return list(inputs)
    if not isinstance(inputs, list | tuple):
        raise InvalidInput("predict inputs: row format needs a list of instances")
    return list(inputs)


def _named_inputs(inputs: Any, sig: Mapping[str, Any], columnar: bool) -> dict[str, Any]:
    """``{input name: tensor value}`` for a gRPC PredictRequest."""
    names = sorted(sig.get("inputs", {}))
    if isinstance(inputs, Mapping):
        return dict(inputs)
    rows = inputs
    if isinstance(rows, list) and rows and all(isinstance(r, Mapping) for r in rows) and not columnar:
        keys = set(rows[0])
        return {k: [r[k] for r in rows] for k in keys}
    if len(names) != 1:
        raise InvalidInput(
            f"predict inputs: the signature has inputs {names}; pass a mapping of input name to values"
        )
    return {names[0]: rows}


def _example_body(
    examples: Sequence[Mapping[str, Any]], signature: str, context: Mapping[str, Any] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"signature_name": signature, "examples": [dict(e) for e in examples]}
    if context:
        body["context"] = dict(context)
    return body


def _fill_input(
    message: Any, examples: Sequence[Mapping[str, Any]], context: Mapping[str, Any] | None
) -> None:
    from tfsctl.serving.examples import to_example

    if context:
        target = message.example_list_with_context
        target.context.CopyFrom(to_example(context))
        for example in examples:
            target.examples.add().CopyFrom(to_example(example))
    else:
        for example in examples:
            message.example_list.examples.add().CopyFrom(to_example(example))
