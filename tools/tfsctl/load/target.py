"""What the load users send: the payload of a run and its gRPC ``PredictRequest``.

Used by the locustfile in every Locust process (local, master, workers). The
model signature is read once per process through ``tfsctl.serving.client`` (REST
``/metadata`` or gRPC ``GetModelMetadata``, matching the user type); protos come
from ``tfsctl.serving.protos`` (no TensorFlow runtime).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tfsctl.errors import InvalidInput
from tfsctl.load import options as knobs
from tfsctl.load import payload as payloads

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolve:
    """``--resolve HOST:PORT:ADDRESS``: REST connections for HOST:PORT go to ADDRESS.

    curl's option of that name (a pre-filled name-resolution entry): the URL and the
    ``Host`` header keep the name, so a name-based route (an Ingress rule's ``host``)
    is reached at an address no DNS knows it by, as a client that resolves the name would.
    """

    host: str
    port: int
    address: str

    @classmethod
    def parse(cls, text: str) -> Resolve:
        host, _, rest = text.partition(":")
        port, _, address = rest.partition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536 or not address:
            raise InvalidInput(
                f"--resolve {text!r}: expected HOST:PORT:ADDRESS, e.g. tfs.local:80:172.31.79.10"
            )
        return cls(host.lower(), int(port), address.strip("[]"))

    @classmethod
    def for_url(cls, text: str, url: str) -> Resolve | None:
        """The parsed ``--resolve`` (None when empty), refused unless it names ``url``'s host and port."""
        if not text:
            return None
        resolve = cls.parse(text)
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if ((parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)) != (
            resolve.host,
            resolve.port,
        ):
            raise InvalidInput(
                f"--resolve {text!r} does not name the host and port of {url!r}: "
                "it applies to the REST URL only"
            )
        return resolve


@dataclass(frozen=True)
class Target:
    """The model a run loads, resolved from parsed Locust options."""

    host: str
    grpc_target: str
    model: str
    version: int | None
    label: str | None
    signature: str
    token: str | None
    timeout: float
    resolve: Resolve | None = None

    @classmethod
    def from_options(cls, opts: Any, host: str | None) -> Target:
        if not host:
            raise InvalidInput("--host: the REST base URL of the model server is required (http://HOST:8501)")
        resolve = Resolve.for_url(str(getattr(opts, "resolve", "") or ""), host)
        version_text = str(opts.model_version or "").strip()
        try:
            version = int(version_text) if version_text else None
        except ValueError:
            raise InvalidInput(f"--model-version {version_text!r}: expected an integer") from None
        label = str(opts.model_label or "").strip() or None
        if version is not None and label:
            raise InvalidInput("--model-version and --model-label are exclusive: pick one")
        return cls(
            host=host.rstrip("/"),
            grpc_target=grpc_target_for(host, opts.grpc_target or ""),
            model=str(opts.model),
            version=version,
            label=label,
            signature=str(opts.signature),
            token=str(opts.token) or None,
            timeout=float(opts.request_timeout),
            resolve=resolve,
        )

    @property
    def name(self) -> str:
        return knobs.request_name(self.model, self.version, self.label)

    @property
    def rest_predict_path(self) -> str:
        return knobs.rest_path(self.model, self.version, self.label, "predict")

    @property
    def connect_url(self) -> str:
        """The REST base URL to connect to: ``host``, at the ``--resolve`` address when given."""
        if self.resolve is None:
            return self.host
        parts = urlsplit(self.host)
        address = f"[{self.resolve.address}]" if ":" in self.resolve.address else self.resolve.address
        return urlunsplit(parts._replace(netloc=f"{address}:{self.resolve.port}"))

    @property
    def host_header(self) -> str | None:
        """The ``Host`` header that keeps the name when connecting by ``--resolve`` address."""
        if self.resolve is None:
            return None
        return urlsplit(self.host).netloc.rpartition("@")[2]

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = self.token
        if self.host_header:
            headers["Host"] = self.host_header
        return headers

    def grpc_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", self.token),) if self.token else ()


def grpc_target_for(host: str, grpc_target: str = "", default_port: int = 8500) -> str:
    """``grpc_target`` when given, else ``host``'s hostname with ``default_port``."""
    if grpc_target:
        return grpc_target.removeprefix("grpc://")
    hostname = urlsplit(host if "://" in host else f"http://{host}").hostname
    if not hostname:
        raise InvalidInput(f"--host {host!r}: no hostname to derive the gRPC target from; pass --grpc-target")
    return f"[{hostname}]:{default_port}" if ":" in hostname else f"{hostname}:{default_port}"


def fetch_metadata(target: Target, transport: str) -> dict[str, Any]:
    """The model's ``/metadata`` (signatures) over ``transport``."""
    from tfsctl.serving.client import Endpoint, ServingClient

    parts = urlsplit(target.connect_url)
    grpc_host, _, grpc_port = target.grpc_target.rpartition(":")
    endpoint = Endpoint(
        host=(parts.hostname or grpc_host.strip("[]")) if transport == "rest" else grpc_host.strip("[]"),
        rest_port=parts.port or (443 if parts.scheme == "https" else 80),
        grpc_port=int(grpc_port),
        token=target.token,
        tls=parts.scheme == "https",
        rest_host_header=target.host_header if transport == "rest" else None,
    )
    with ServingClient(endpoint, timeout=target.timeout) as client:
        return client.metadata(
            target.model, target.version, target.label, transport="rest" if transport == "rest" else "grpc"
        )


def build_payload(
    target: Target, transport: str, request_file: str = "", batch_size: int = 1
) -> payloads.Payload:
    """The run's payload: the request file when given (dtypes from the signature), else generated."""
    metadata = fetch_metadata(target, transport)
    if request_file:
        specs = payloads.signature_inputs(metadata, target.signature)
        return payloads.from_request_file(Path(request_file), signature=target.signature, specs=specs)
    return payloads.from_metadata(metadata, target.signature, batch_size=batch_size)


def predict_request(target: Target, payload: payloads.Payload) -> Any:
    """A serialized-once ``PredictRequest`` for ``payload``."""
    import numpy as np

    from tfsctl.serving.protos import predict_pb2, types_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = target.model
    request.model_spec.signature_name = payload.signature
    if target.label:
        request.model_spec.version_label = target.label
    elif target.version is not None:
        request.model_spec.version.value = target.version
    for tensor in payload.tensors:
        proto = request.inputs[tensor.name]
        proto.dtype = types_pb2.DataType.Value(tensor.dtype)
        for size in tensor.shape:
            proto.tensor_shape.dim.add().size = size
        if tensor.dtype == "DT_STRING":
            proto.string_val.extend(str(v).encode() for v in tensor.array.ravel())
        else:
            array = np.ascontiguousarray(tensor.array, dtype=payloads.NUMPY_DTYPES[tensor.dtype])
            proto.tensor_content = array.astype(array.dtype.newbyteorder("<")).tobytes()
    return request
