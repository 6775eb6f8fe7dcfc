"""Talking to every replica at once: parallel, bounded reloads and status reads.

``PodConnector`` is the seam between "a pod" and "an address to dial": on the
local cluster (and inside a cluster network) pod IPs are routable, so
``PodIPConnector`` dials them directly; from outside (a laptop against ACK, GKE or
kind) ``PortForwardConnector`` tunnels through the API server's ``pods/portforward``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from tfsctl.errors import NotFound, ToolkitError, Unavailable
from tfsctl.release.fleet import ModelObservation, ReplicaObservation
from tfsctl.release.plan import ModelState
from tfsctl.serving.client import Endpoint, ServingClient, Transport
from tfsctl.serving.config import ModelConfig, ServerConfig, VersionPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replica:
    """One server of the fleet: a pod (Kubernetes mode) or a plain endpoint."""

    name: str
    endpoint: Endpoint
    ready: bool = True
    node: str | None = None
    # How the fleet reads this server's state: REST needs no TF Serving protos (the core
    # installs without them); gRPC only where the server has no REST API (server.restEnabled).
    transport: Transport = "rest"


class PodConnector(Protocol):
    """Turns a pod into an endpoint this host can dial."""

    def endpoint(self, pod_name: str, pod_ip: str) -> Endpoint: ...


class PodIPConnector:
    """Dial pods by IP (local cluster, or a host inside the cluster network)."""

    def __init__(self, grpc_port: int = 8500, rest_port: int = 8501) -> None:
        self.grpc_port = grpc_port
        self.rest_port = rest_port

    def endpoint(self, pod_name: str, pod_ip: str) -> Endpoint:
        return Endpoint(pod_ip, grpc_port=self.grpc_port, rest_port=self.rest_port)


class LocalPorts(Protocol):
    """Loopback ports that reach pod ports (``tfsctl.portforward.PortForwarder``)."""

    def local_port(self, pod: str, port: int) -> int: ...


class PortForwardConnector:
    """Dial pods through loopback ports forwarded by the API server (``--connect port-forward``)."""

    def __init__(self, ports: LocalPorts, grpc_port: int = 8500, rest_port: int = 8501) -> None:
        self.ports = ports
        self.grpc_port = grpc_port
        self.rest_port = rest_port

    def endpoint(self, pod_name: str, pod_ip: str) -> Endpoint:
        return Endpoint(
            "127.0.0.1",
            grpc_port=self.ports.local_port(pod_name, self.grpc_port),
            rest_port=self.ports.local_port(pod_name, self.rest_port),
        )


def parse_endpoints(spec: str) -> list[Replica]:
    """``host:grpc[:rest],...`` (rest defaults to grpc+1) -> replicas named by address."""
    replicas: list[Replica] = []
    for raw in (part.strip() for part in spec.split(",")):
        if not raw:
            continue
        pieces = raw.rsplit(":", 2) if raw.count(":") >= 2 else raw.rsplit(":", 1)
        try:
            if len(pieces) == 3:
                host, grpc_port, rest_port = pieces[0], int(pieces[1]), int(pieces[2])
            elif len(pieces) == 2:
                host, grpc_port = pieces[0], int(pieces[1])
                rest_port = grpc_port + 1
            else:
                raise ValueError(raw)
        except ValueError:
            from tfsctl.errors import InvalidInput

            raise InvalidInput(f"--endpoints: {raw!r} is not host:grpc_port[:rest_port]") from None
        replicas.append(Replica(raw, Endpoint(host, grpc_port=grpc_port, rest_port=rest_port)))
    if not replicas:
        from tfsctl.errors import InvalidInput

        raise InvalidInput("--endpoints is empty")
    return replicas


# ---------------------------------------------------------------- conversions


def state_of(model: ModelConfig) -> ModelState:
    return ModelState(model.policy, dict(model.labels))


def apply_state(config: ServerConfig, name: str, state: ModelState) -> ServerConfig:
    model = config.models[name]
    return config.with_model(model.with_policy(state.policy).with_labels(dict(state.labels)))


def chart_policy(policy: VersionPolicy) -> dict[str, object]:
    """The chart's ``versionPolicy`` value for a policy."""
    if policy.kind == "specific":
        return {"specific": {"versions": list(policy.versions)}}
    if policy.kind == "latest":
        return {"latest": {"numVersions": policy.num_versions or 1}}
    return {"all": {}}


# ---------------------------------------------------------------- fleet I/O


class FleetClient:
    """Parallel calls to every replica, each bounded by ``timeout`` seconds."""

    def __init__(
        self,
        timeout: float = 10.0,
        client_factory: Callable[[Endpoint, float], ServingClient] = ServingClient,
        max_workers: int = 16,
    ) -> None:
        self.timeout = timeout
        self._factory = client_factory
        self._clients: dict[Endpoint, ServingClient] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tfsctl-fleet")

    def __enter__(self) -> FleetClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def client(self, endpoint: Endpoint) -> ServingClient:
        if endpoint not in self._clients:
            self._clients[endpoint] = self._factory(endpoint, self.timeout)
        return self._clients[endpoint]

    def reload(self, replicas: Sequence[Replica], config: ServerConfig) -> dict[str, ToolkitError | None]:
        """HandleReloadConfigRequest on every replica; replica name -> error (None when it took it)."""
        clients = {r.name: self.client(r.endpoint) for r in replicas}

        def one(name: str) -> ToolkitError | None:
            try:
                clients[name].reload_config(config)
            except ToolkitError as exc:
                log.info("reload on %s failed: %s", name, exc)
                return exc
            return None

        return dict(zip(clients, self._pool.map(one, clients), strict=True))

    def observe(
        self, replicas: Sequence[Replica], models: Mapping[str, Iterable[str]]
    ) -> list[ReplicaObservation]:
        """Each model on every replica: GetModelStatus for its versions, GetModelMetadata by
        label for the version each label resolves to (None when unknown or not loaded)."""
        wanted = {m: list(labels) for m, labels in models.items()}

        def one(replica: Replica) -> ReplicaObservation:
            client = self.client(replica.endpoint)
            seen: dict[str, ModelObservation] = {}
            for model, labels in wanted.items():
                try:
                    rows = client.model_status(model, transport=replica.transport)
                except NotFound as exc:
                    seen[model] = ModelObservation({}, {}, error=str(exc))
                    continue
                except ToolkitError as exc:
                    return ReplicaObservation(
                        replica.name,
                        replica.endpoint.grpc_target,
                        replica.ready,
                        replica.node,
                        error=str(exc),
                    )
                resolved: dict[str, int | None] = {}
                for label in labels:
                    # GetModelMetadata by label, never GetModelStatus (which ignores labels).
                    try:
                        resolved[label] = client.label_version(model, label, transport=replica.transport)
                    except NotFound:
                        resolved[label] = None
                    except ToolkitError as exc:
                        if isinstance(exc, Unavailable):
                            return ReplicaObservation(
                                replica.name,
                                replica.endpoint.grpc_target,
                                replica.ready,
                                replica.node,
                                error=str(exc),
                            )
                        resolved[label] = None
                failed = {
                    r.version: f"{r.error_code}: {r.error_message}"
                    for r in rows
                    if r.state == "END" and r.error_code not in ("OK", "0", "")
                }
                seen[model] = ModelObservation({r.version: r.state for r in rows}, resolved, None, failed)
            return ReplicaObservation(
                replica.name, replica.endpoint.grpc_target, replica.ready, replica.node, seen
            )

        return list(self._pool.map(one, replicas))
