"""Kubernetes adapter (python client) and the release-backed ConfigStore.

``KubeAdapter`` reads what a release made (Deployment, HPA, EndpointSlices, pods,
ConfigMap), holds the promotion Lease ``tfsctl-promote-<release>`` and keeps
the promotion history in the ConfigMap ``<fullname>-tfsctl-history``.
``ReleaseStore`` persists each promotion step with ``helm upgrade`` of the
release's values (so the chart's ConfigMap changes and the Helm history stays
meaningful) and finds replicas through the Service's ready endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tfsctl import kubestate
from tfsctl.errors import Conflict, ExitStatus, NotFound, ToolkitError, Unavailable
from tfsctl.release import history
from tfsctl.release.helm import HelmAdapter
from tfsctl.release.history import PromotionRecord
from tfsctl.release.replicas import (
    PodConnector,
    PodIPConnector,
    PortForwardConnector,
    Replica,
    chart_policy,
    state_of,
)
from tfsctl.release.scale import Autoscaler
from tfsctl.release.values import get_path
from tfsctl.serving.client import Transport
from tfsctl.serving.config import ServerConfig

log = logging.getLogger(__name__)

CHART_NAME = "tensorflow-serving"
CONFIG_KEY = "model_config.pbtxt"
HISTORY_KEY = "history.json"
SETTLE_MARGIN_SECONDS = 2.0


def fullname(release: str, values: dict[str, Any]) -> str:
    """``tensorflow-serving.fullname`` (helm create rule, 63-char truncation)."""
    override = get_path(values, "fullnameOverride")
    if override:
        return str(override)[:63].rstrip("-")
    name = str(get_path(values, "nameOverride") or CHART_NAME)
    full = release if name in release else f"{release}-{name}"
    return full[:63].rstrip("-")


def status_message(exc: Any) -> str:
    """The API server's ``Status.message`` of an ApiException (what it says is wrong), else reason."""
    import json

    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.reason or f"HTTP {exc.status}")


def translate(exc: Exception, what: str) -> ToolkitError:
    """An error of the kubernetes client as a toolkit error: the API server's Status.message kept."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        detail = f"{exc.status} {exc.reason}: {exc.body}"
        if exc.status == 404:
            return NotFound(f"{what}: not found", detail=detail)
        if exc.status == 409:
            return Conflict(f"{what}: {status_message(exc)}", detail=detail)
        if exc.status in (401, 403):
            return Unavailable(
                f"{what}: the API server refused: {status_message(exc)} (check the kubeconfig's user)",
                detail=detail,
            )
        if exc.status == 422:
            return ToolkitError(f"{what}: {status_message(exc)}", exit_status=ExitStatus.USAGE, detail=detail)
        return ToolkitError(f"{what}: {exc.status} {status_message(exc)}", detail=detail)
    reason = getattr(exc, "reason", None) or exc
    return Unavailable(f"{what}: cannot reach the cluster ({reason})", detail=repr(exc))


@dataclass(frozen=True)
class PodInfo:
    name: str
    ip: str | None
    node: str | None
    ready: bool
    phase: str  # the pod's phase, or "Terminating" once it is being deleted
    age_seconds: float | None = None


class KubeAdapter:
    """Thin wrapper over the Kubernetes API for one namespace."""

    def __init__(self, api: Any, namespace: str, request_timeout: float = 15.0) -> None:
        from kubernetes import client

        self.namespace = namespace
        self.timeout = request_timeout
        self.api = api
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.autoscaling = client.AutoscalingV2Api(api)
        self.discovery = client.DiscoveryV1Api(api)
        self.coordination = client.CoordinationV1Api(api)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, _request_timeout=self.timeout, **kwargs)
        except Exception as exc:
            raise translate(exc, what) from None

    def require_namespace(self) -> None:
        """NotFound, saying how to create it, when the namespace does not exist."""
        try:
            self.core.read_namespace(self.namespace, _request_timeout=self.timeout)
        except Exception as exc:
            if getattr(exc, "status", None) == 403:
                return  # this user may not read namespaces; the release's own calls say more
            err = translate(exc, f"namespace {self.namespace}")
            if isinstance(err, NotFound):
                raise NotFound(
                    f"namespace {self.namespace} does not exist: pass --create-namespace, or "
                    f"`kubectl create namespace {self.namespace}`"
                ) from None
            raise err from None

    def ensure_namespace(self, pod_security: str = "restricted") -> bool:
        """Create the namespace (PodSecurity ``pod_security`` enforced) unless it exists; True if created."""
        from kubernetes.client.rest import ApiException

        try:
            self.core.read_namespace(self.namespace, _request_timeout=self.timeout)
            return False
        except ApiException as exc:
            if exc.status != 404:
                raise translate(exc, f"namespace {self.namespace}") from None
        except Exception as exc:
            raise translate(exc, f"namespace {self.namespace}") from None
        labels = {"pod-security.kubernetes.io/enforce": pod_security}
        body = {"metadata": {"name": self.namespace, "labels": labels}}
        self._call(f"namespace {self.namespace}", self.core.create_namespace, body)
        return True

    def persistent_volumes(self) -> list[dict[str, Any]]:
        """The cluster's PersistentVolumes as plain manifest dicts (for ``tfsctl.release.binding``)."""
        items = self._call("PersistentVolumes", self.core.list_persistent_volume).items
        return [self.api.sanitize_for_serialization(v) for v in items]

    def claim_names(self) -> set[str]:
        """Names of the PersistentVolumeClaims in the namespace."""
        items = self._call(
            f"PersistentVolumeClaims in {self.namespace}",
            self.core.list_namespaced_persistent_volume_claim,
            self.namespace,
        ).items
        return {c.metadata.name for c in items if c.metadata}

    def config_text(self, full: str) -> str:
        cm = self._call(
            f"ConfigMap {self.namespace}/{full}-config",
            self.core.read_namespaced_config_map,
            f"{full}-config",
            self.namespace,
        )
        text = (cm.data or {}).get(CONFIG_KEY)
        if text is None:
            raise NotFound(f"ConfigMap {self.namespace}/{full}-config has no key {CONFIG_KEY}")
        return str(text)

    def autoscaler(self, full: str) -> Autoscaler | None:
        try:
            hpa = self.autoscaling.read_namespaced_horizontal_pod_autoscaler(
                full, self.namespace, _request_timeout=self.timeout
            )
        except Exception as exc:
            err = translate(exc, f"HorizontalPodAutoscaler {self.namespace}/{full}")
            if isinstance(err, NotFound):
                return None
            raise err from None
        return Autoscaler(full, int(hpa.spec.min_replicas or 1), int(hpa.spec.max_replicas))

    def deployment_replicas(self, full: str) -> tuple[int | None, int]:
        dep = self._call(
            f"Deployment {self.namespace}/{full}", self.apps.read_namespaced_deployment, full, self.namespace
        )
        return dep.spec.replicas, int(dep.status.ready_replicas or 0)

    def pods(self, release: str) -> list[PodInfo]:
        selector = kubestate.server_selector(release)
        items = self._call(
            f"pods of {release}", self.core.list_namespaced_pod, self.namespace, label_selector=selector
        ).items
        out = []
        now = dt.datetime.now(dt.timezone.utc)
        for p in items:
            ready = kubestate.is_ready(p)
            phase = p.status.phase or ""
            if kubestate.is_terminating(p):
                ready, phase = False, "Terminating"
            created = p.metadata.creation_timestamp
            age = (now - created).total_seconds() if created is not None else None
            out.append(PodInfo(p.metadata.name, p.status.pod_ip, p.spec.node_name, ready, phase, age))
        return sorted(out, key=lambda p: p.name)

    def ready_endpoints(self, full: str) -> list[tuple[str, str, str | None]]:
        """(pod name, address, node) of every ready endpoint of Service ``full``."""
        slices = self._call(
            f"EndpointSlices of {full}",
            self.discovery.list_namespaced_endpoint_slice,
            self.namespace,
            label_selector=f"kubernetes.io/service-name={full}",
        ).items
        seen: dict[str, tuple[str, str, str | None]] = {}
        for s in slices:
            for ep in s.endpoints or []:
                if ep.conditions is not None and ep.conditions.ready is False:
                    continue
                if ep.conditions is not None and ep.conditions.terminating:
                    continue
                name = ep.target_ref.name if ep.target_ref is not None else ep.addresses[0]
                seen[name] = (name, ep.addresses[0], ep.node_name)
        return sorted(seen.values())

    # -------------------------------------------------------------- lease lock
    def lease_holder(self, name: str) -> str | None:
        """Who holds Lease ``name`` now (None when it is absent, unreadable or expired)."""
        try:
            current = self.coordination.read_namespaced_lease(
                name, self.namespace, _request_timeout=self.timeout
            )
        except Exception:
            return None
        spec = current.spec
        if spec is None:
            return None
        renew = spec.renew_time or spec.acquire_time
        now = dt.datetime.now(dt.timezone.utc)
        if renew is None or (now - renew).total_seconds() > (spec.lease_duration_seconds or 0):
            return None
        return str(spec.holder_identity)

    @contextlib.contextmanager
    def lease(self, name: str, timeout: float, duration: int = 30) -> Iterator[None]:
        """Hold Lease ``name`` (renewed every ``duration``/3 s, so a killed holder frees it within
        ``duration``); wait up to ``timeout`` for another holder, then Conflict."""
        from kubernetes import client

        holder = f"{os.environ.get('USER', 'tfsctl')}@{socket.gethostname()}:{os.getpid()}"
        deadline = time.monotonic() + timeout
        while True:
            now = dt.datetime.now(dt.timezone.utc)
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=name, namespace=self.namespace),
                spec=client.V1LeaseSpec(
                    holder_identity=holder, lease_duration_seconds=duration, acquire_time=now, renew_time=now
                ),
            )
            try:
                self.coordination.create_namespaced_lease(self.namespace, body, _request_timeout=self.timeout)
                break
            except Exception as exc:
                err = translate(exc, f"Lease {self.namespace}/{name}")
                if not isinstance(err, Conflict):
                    raise err from None
            current = self._call(
                f"Lease {name}", self.coordination.read_namespaced_lease, name, self.namespace
            )
            renew = current.spec.renew_time or current.spec.acquire_time
            expired = renew is None or (now - renew).total_seconds() > (
                current.spec.lease_duration_seconds or 0
            )
            if expired:
                log.warning("taking over expired lease %s from %s", name, current.spec.holder_identity)
                with contextlib.suppress(Exception):
                    self.coordination.delete_namespaced_lease(
                        name,
                        self.namespace,
                        _request_timeout=self.timeout,
                        body=client.V1DeleteOptions(
                            preconditions=client.V1Preconditions(
                                resource_version=current.metadata.resource_version
                            )
                        ),
                    )
                continue
            if time.monotonic() >= deadline:
                raise Conflict(
                    f"a promotion of this release is in progress (Lease {self.namespace}/{name} held by "
                    f"{current.spec.holder_identity}); waited {timeout:.0f}s: retry when it is done or "
                    f"raise --lock-timeout (the Lease expires {current.spec.lease_duration_seconds}s "
                    "after its holder stops renewing it)"
                )
            time.sleep(1.0)
        stop = threading.Event()

        def keep_renewed() -> None:
            while not stop.wait(duration / 3):
                try:
                    lease = self.coordination.read_namespaced_lease(
                        name, self.namespace, _request_timeout=self.timeout
                    )
                    if lease.spec is not None:
                        lease.spec.renew_time = dt.datetime.now(dt.timezone.utc)
                    self.coordination.replace_namespaced_lease(
                        name, self.namespace, lease, _request_timeout=self.timeout
                    )
                except Exception as exc:  # the next renewal retries; expiry is the worst case
                    log.warning("renewing Lease %s failed: %s", name, exc)

        renewer = threading.Thread(target=keep_renewed, name="tfsctl-lease", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join(self.timeout)
            with contextlib.suppress(Exception):
                self.coordination.delete_namespaced_lease(name, self.namespace, _request_timeout=self.timeout)

    # -------------------------------------------------------------- history
    def read_history(self, full: str) -> list[PromotionRecord]:
        try:
            cm = self.core.read_namespaced_config_map(
                f"{full}-tfsctl-history", self.namespace, _request_timeout=self.timeout
            )
        except Exception as exc:
            err = translate(exc, "history ConfigMap")
            if isinstance(err, NotFound):
                return []
            raise err from None
        return history.loads((cm.data or {}).get(HISTORY_KEY))

    def write_history(self, full: str, records: list[PromotionRecord]) -> None:
        from kubernetes import client

        name = f"{full}-tfsctl-history"
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name=name, namespace=self.namespace, labels={"app.kubernetes.io/managed-by": "tfsctl"}
            ),
            data={HISTORY_KEY: history.dumps(records)},
        )
        try:
            self.core.replace_namespaced_config_map(name, self.namespace, body, _request_timeout=self.timeout)
        except Exception as exc:
            if not isinstance(translate(exc, name), NotFound):
                raise translate(exc, name) from None
            self._call(name, self.core.create_namespaced_config_map, self.namespace, body)


class ReleaseStore:
    """A Helm release as the ConfigStore of a promotion (Kubernetes mode)."""

    strict = False
    # The servers apply the ConfigMap themselves: they poll it (modelConfig.pollWaitSeconds), or,
    # with polling off, a config change rolls the pods. No gRPC push, so the core needs no TF
    # Serving protos to promote (settle_seconds already waits out a poll period per step).
    push_reload = False

    def __init__(
        self,
        helm: HelmAdapter,
        kube: KubeAdapter,
        release: str,
        runner: asyncio.Runner,
        connector: PodConnector | None = None,
        helm_timeout: float = 120.0,
        connect: str = "auto",
    ) -> None:
        self.helm = helm
        self.kube = kube
        self.release = release
        self.namespace = kube.namespace
        self.runner = runner
        self.helm_timeout = helm_timeout
        try:
            info = runner.run(helm.require_deployed(release, self.namespace))
        except Conflict:
            # A pending helm operation under a live tfsctl Lease is that change's own upgrade:
            # say so, as taking the Lease would (the Lease is taken only after this check).
            holder = kube.lease_holder(lease_name(release))
            if holder is None:
                raise
            raise Conflict(
                f"a promotion of this release is in progress (Lease {self.namespace}/{lease_name(release)} "
                f"held by {holder}): retry when it is done"
            ) from None
        self._revision = info.revision
        self.user_values: dict[str, Any] = runner.run(helm.values(release, self.namespace))
        computed = runner.run(helm.values(release, self.namespace, computed=True))
        self.full = fullname(release, computed)
        self.grpc_port = int(get_path(computed, "server.grpcPort", 8500))
        self.rest_port = int(get_path(computed, "server.restPort", 8501))
        self.transport: Transport = "rest" if get_path(computed, "server.restEnabled", True) else "grpc"
        self.connect = connect
        self._connector = connector
        self._forwarder: Any = None
        # The kubelet updates the mounted ConfigMap some time after helm changes it, and the server
        # re-applies that file every pollWaitSeconds: a step must hold one poll period (+ margin).
        poll = float(get_path(computed, "modelConfig.pollWaitSeconds", 0) or 0)
        self.settle_seconds = poll + SETTLE_MARGIN_SECONDS if poll > 0 else 0.0
        if not get_path(computed, "models"):
            raise NotFound(
                f"release {self.namespace}/{release} is in single-model mode (values `model`): labels need "
                "the multi-model `models` map"
            )

    def describe(self) -> str:
        return f"release {self.namespace}/{self.release}"

    @property
    def connector(self) -> PodConnector:
        """How replicas are dialled: ``--connect`` pod-ip, port-forward, or auto (chosen on first use)."""
        if self._connector is None:
            mode = self.connect
            if mode == "auto":
                mode = self._probe_connect_mode()
            if mode == "pod-ip":
                self._connector = PodIPConnector(self.grpc_port, self.rest_port)
            else:
                from tfsctl.portforward import PortForwarder

                self._forwarder = PortForwarder(self.kube.api, self.namespace)
                self._connector = PortForwardConnector(self._forwarder, self.grpc_port, self.rest_port)
        return self._connector

    def _probe_connect_mode(self) -> str:
        """pod-ip when a ready pod's REST port answers from here, else port-forward."""
        from tfsctl.portforward import pod_ip_reachable

        endpoints = self.kube.ready_endpoints(self.full)
        if endpoints and pod_ip_reachable(endpoints[0][1], self.rest_port):
            log.info("--connect auto: pod IPs are reachable, dialling them directly")
            return "pod-ip"
        log.info("--connect auto: pod IPs are not reachable from here, forwarding through the API server")
        return "port-forward"

    def close(self) -> None:
        if self._forwarder is not None:
            self._forwarder.close()

    def read(self) -> ServerConfig:
        return ServerConfig.parse(self.kube.config_text(self.full), source=f"ConfigMap {self.full}-config")

    def write(self, config: ServerConfig, reason: str) -> ServerConfig:
        values = dict(self.user_values)
        models = dict(values.get("models") or {})
        for name, model in config.models.items():
            entry = dict(models.get(name) or {})
            state = state_of(model)
            entry["versionPolicy"] = chart_policy(state.policy)  # replaced whole: exactly one kind
            entry["versionLabels"] = dict(state.labels)
            models[name] = entry
        values["models"] = models
        info = self.runner.run(
            self.helm.upgrade(
                self.release,
                self.namespace,
                values,
                atomic=False,
                wait=False,
                timeout=self.helm_timeout,
                description=f"tfsctl: {reason}",
            )
        )
        self.user_values = values
        self._revision = info.revision
        return self.read()

    def replicas(self) -> list[Replica]:
        return [
            Replica(name, self.connector.endpoint(name, ip), True, node, self.transport)
            for name, ip, node in self.kube.ready_endpoints(self.full)
        ]

    def repository_versions(self, model: str) -> list[int] | None:
        return None

    @contextlib.contextmanager
    def lock(self, timeout: float) -> Iterator[None]:
        """The release's Lease (promote, scale and deploy all take it), then fresh values: what was
        read before waiting may predate the holder's changes."""
        with self.kube.lease(lease_name(self.release), timeout):
            info = self.runner.run(self.helm.require_deployed(self.release, self.namespace))
            self._revision = info.revision
            self.user_values = self.runner.run(self.helm.values(self.release, self.namespace))
            yield

    def read_history(self) -> list[PromotionRecord]:
        return self.kube.read_history(self.full)

    def append_history(self, record: PromotionRecord) -> None:
        self.kube.write_history(self.full, history.append(self.read_history(), record))

    def revision(self) -> int | None:
        return self._revision


def lease_name(release: str) -> str:
    """The Lease that serialises every tfsctl change to ``release`` (promote, rollback, scale, deploy)."""
    return f"tfsctl-promote-{release}"
