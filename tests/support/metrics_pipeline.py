"""The metrics-pipeline add-on from a test: its Prometheus's address and API, and steady traffic.

``prometheus_url`` finds the ready Prometheus pod (the host routes pod ranges to the real
nodes); ``prom`` reads its HTTP API; ``Background`` calls ``send`` at a steady rate in a
thread and counts what each call returned, so a test has series for the pipeline to see.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Hashable
from typing import Any

from kubernetes import client

from support.cluster_helpers import Cluster
from tfsbed.cluster.addons import prometheus as P
from tfsctl import kubestate

# the host's requests go straight to pods and nodes, whatever proxy the environment names
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
FAILED = "error"  # what Background counts for a call that raised OSError


def prometheus_url(cluster: Cluster) -> str:
    """``http://<pod IP>:<port>`` of the ready Prometheus of the metrics-pipeline add-on."""
    pods = (
        client.CoreV1Api(cluster.api)
        .list_namespaced_pod(P.NAMESPACE, label_selector=f"app.kubernetes.io/name={P.PROMETHEUS}")
        .items
    )
    ready = [p for p in pods if kubestate.is_ready(p)]
    assert ready, (
        "no ready Prometheus in namespace monitoring: `tfsctl cluster up --real-nodes 1` installs the "
        "metrics-pipeline add-on (`tfsctl cluster down` first if it was started before it existed)"
    )
    return f"http://{ready[0].status.pod_ip}:{P.PROMETHEUS_PORT}"


def prom(url: str, path: str, **params: str) -> Any:
    """``data`` of a Prometheus HTTP API answer, asserting its ``status`` is ``success``."""
    with DIRECT.open(f"{url}{path}?{urllib.parse.urlencode(params)}", timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]


class Background:
    """``send(i)`` for i = 0, 1, ... at ``rate`` per second in the block; ``results`` counts answers."""

    def __init__(self, send: Callable[[int], Hashable], rate: float = 8.0) -> None:
        self.send, self.rate = send, rate
        self.results: dict[Hashable, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def sent(self) -> int:
        """Calls that returned (did not raise OSError)."""
        return sum(n for key, n in self.results.items() if key != FAILED)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            try:
                key = self.send(i)
            except OSError:
                key = FAILED
            self.results[key] = self.results.get(key, 0) + 1
            i += 1
            self._stop.wait(1 / self.rate)

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
