"""The agent's Kubernetes adapter: informers (list + bounded watches) and the few writes it makes."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from tfsctl.errors import NotFound

from . import COMPONENT
from .volumes import VolumeError

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
Handler = Callable[[str, dict[str, Any]], None]


def key_of(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class Informer:
    """Keeps ``cache`` equal to a list/watch of one resource and calls ``handler(event, obj)``.

    Watches are bounded (``timeout_seconds``) and re-established from the last
    resourceVersion; an expired version or any error leads to a fresh list that
    is diffed against the cache, so handlers never miss a deletion.
    """

    def __init__(
        self,
        name: str,
        list_fn: Callable[..., Any],
        stop: threading.Event,
        handler: Handler | None = None,
        watch_timeout: int = 60,
        **kwargs: Any,
    ) -> None:
        self.name = name
        self.list_fn = list_fn
        self.kwargs = kwargs
        self.stop = stop
        self.handler = handler
        self.watch_timeout = watch_timeout
        self.cache: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.synced = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"informer-{name}", daemon=True)

    def start(self) -> Informer:
        self.thread.start()
        return self

    def get(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            return self.cache.get(key)

    def items(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.cache.values())

    def _emit(self, event: str, obj: dict[str, Any]) -> None:
        if self.handler is None:
            return
        try:
            self.handler(event, obj)
        except Exception:
            log.exception("%s informer handler failed on %s %s", self.name, event, key_of(obj))

    def _list(self) -> str:
        resp = self.list_fn(_preload_content=False, _request_timeout=30, **self.kwargs)
        body = json.loads(resp.data)
        fresh = {key_of(o): o for o in body.get("items") or []}
        with self.lock:
            old = self.cache
            self.cache = fresh
        for key, obj in old.items():
            if key not in fresh:
                self._emit("DELETED", obj)
        for key, obj in fresh.items():
            prev = old.get(key)
            if prev is None:
                self._emit("ADDED", obj)
            elif prev["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self._emit("MODIFIED", obj)
        self.synced.set()
        return str(body["metadata"].get("resourceVersion", ""))

    def _run(self) -> None:
        delay = 0.5
        while not self.stop.is_set():
            try:
                version = self._list()
                delay = 0.5
                while not self.stop.is_set():
                    stream = watch.Watch().stream(
                        self.list_fn,
                        resource_version=version,
                        timeout_seconds=self.watch_timeout,
                        _request_timeout=self.watch_timeout + 15,
                        allow_watch_bookmarks=True,
                        **self.kwargs,
                    )
                    for event in stream:
                        kind = event["type"]
                        obj = event["raw_object"]
                        if kind == "ERROR":
                            raise ApiException(status=obj.get("code", 500), reason=obj.get("message", ""))
                        version = obj.get("metadata", {}).get("resourceVersion", version)
                        if kind == "BOOKMARK":
                            continue
                        with self.lock:
                            if kind == "DELETED":
                                self.cache.pop(key_of(obj), None)
                            else:
                                self.cache[key_of(obj)] = obj
                        self._emit(kind, obj)
                        if self.stop.is_set():
                            return
            except (ApiException, HTTPError, OSError, ValueError) as exc:
                if self.stop.is_set():
                    return
                log.debug("%s watch restarts after: %s", self.name, exc)
                self.stop.wait(delay)
                delay = min(delay * 2, 5.0)


def now_rfc3339(micro: bool = False) -> str:
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ"
    return dt.datetime.now(dt.timezone.utc).strftime(fmt)


class Kube:
    """Writes the agent makes, and the lookups volumes need."""

    def __init__(self, api: client.ApiClient, node_name: str) -> None:
        self.api = api
        self.core: Any = client.CoreV1Api(api)  # dict bodies: the typed stubs want models
        self.node_name = node_name
        self.configmaps: Informer | None = None
        self.secrets: Informer | None = None

    # -- pods
    def patch_pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.core.patch_namespaced_pod_status(
            name, namespace, {"status": status}, _content_type=MERGE_PATCH, _request_timeout=15
        )

    def delete_pod(self, namespace: str, name: str, uid: str) -> None:
        try:
            self.core.delete_namespaced_pod(
                name,
                namespace,
                body=client.V1DeleteOptions(
                    grace_period_seconds=0, preconditions=client.V1Preconditions(uid=uid)
                ),
                _request_timeout=15,
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def event(self, obj: dict[str, Any], etype: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        stamp = now_rfc3339()
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "kind": obj.get("kind") or "Pod",
                "apiVersion": obj.get("apiVersion") or "v1",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": etype,
            "reason": reason,
            "message": message[:1000],
            "source": {"component": COMPONENT, "host": self.node_name},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.node_name,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self.core.create_namespaced_event(meta["namespace"], body, _request_timeout=10)
        except (ApiException, HTTPError, OSError) as exc:
            log.debug("event %s for %s not recorded: %s", reason, meta["name"], exc)

    # -- volume sources
    def configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._cached(self.configmaps, self.core.read_namespaced_config_map, namespace, name)

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._cached(self.secrets, self.core.read_namespaced_secret, namespace, name)

    def _cached(
        self, informer: Informer | None, read: Callable[..., Any], namespace: str, name: str
    ) -> dict[str, Any] | None:
        if informer is not None and informer.synced.is_set():
            return informer.get(f"{namespace}/{name}")
        try:
            resp = read(name, namespace, _preload_content=False, _request_timeout=10)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(json.loads(resp.data))

    def lookup(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.configmap(namespace, name) if kind == "configmap" else self.secret(namespace, name)

    def claim_path(self, namespace: str, claim: str) -> str:
        try:
            pvc = self.core.read_namespaced_persistent_volume_claim(claim, namespace, _request_timeout=10)
        except ApiException as exc:
            if exc.status == 404:
                raise VolumeError(f"persistentvolumeclaim {namespace}/{claim} not found") from exc
            raise
        if not pvc.spec.volume_name or (pvc.status and pvc.status.phase != "Bound"):
            raise VolumeError(f"persistentvolumeclaim {namespace}/{claim} is not bound yet")
        pv = self.core.read_persistent_volume(pvc.spec.volume_name, _request_timeout=10)
        if pv.spec.host_path is not None:
            return str(pv.spec.host_path.path)
        if pv.spec.local is not None:
            return str(pv.spec.local.path)
        raise VolumeError(
            f"persistentvolume {pv.metadata.name} (claim {namespace}/{claim}) is neither hostPath nor local: "
            "the process node can only use volumes that are directories on this host",
            fatal=True,
        )

    def token(self, pod: dict[str, Any], audience: str | None, expiration: int) -> str:
        meta = pod["metadata"]
        body = {
            "spec": {
                "audiences": [audience] if audience else None,
                "expirationSeconds": max(expiration, 600),
                "boundObjectRef": {
                    "kind": "Pod",
                    "apiVersion": "v1",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            }
        }
        resp = self.core.create_namespaced_service_account_token(
            pod["spec"].get("serviceAccountName") or "default", meta["namespace"], body, _request_timeout=10
        )
        return str(resp.status.token)


def retry_api(fn: Callable[[], Any], attempts: int = 3, what: str = "api call") -> Any:
    """Run ``fn`` a few times on transient errors (conflicts, connection resets)."""
    for attempt in range(attempts):
        try:
            return fn()
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"{what}: not found") from exc
            if attempt == attempts - 1:
                raise
        except (HTTPError, OSError):
            if attempt == attempts - 1:
                raise
        time.sleep(0.3 * (attempt + 1))
    return None
