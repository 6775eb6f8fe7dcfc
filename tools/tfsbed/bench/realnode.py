"""Real-node benchmark (issue 13): cluster up with one real node, image builds, and moving a label.

Starts its own throw-away cluster (one real node, every add-on, kubelet's
default ``syncFrequency``) on a fresh temporary state dir, at ``$TFSBED_BENCH_PORT_BASE``
(default :data:`BENCH_PORT_BASE`), and always brings it down again: nothing is left behind.

- ``up`` cold (fresh state dir; tools and images come from the shared cache, their own time is
  the ``tools`` step), ``down``, then ``up`` again on the same state dir (cached).
- Image builds: every recipe the real node runs, built into an empty image cache (a temporary
  directory beside the real one, so hard links work as in a real build), then removed.
- For 1, 3 and 10 replicas of the ``local`` preset on the real node: the time from the start of
  a label move (``stable`` 1 -> 2) to every Ready replica resolving ``stable`` to 2, for
  ``tfsctl promote`` (two config revisions with a wait between), for a plain values edit of the
  model config (TF Serving's ``pollWaitSeconds`` poll picks it up once kubelet refreshes the
  mounted ConfigMap), and for the edit plus a rollout restart. A probe sends REST predict
  requests to the label through the Service's MetalLB LoadBalancer address meanwhile.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tfsbed.bench import Table
from tfsbed.cluster import volumes
from tfsbed.probe import PredictProbe

BENCH_PORT_BASE = 29600
RELEASE = "tfs"
FULL = "tfs-tensorflow-serving"
LABEL = "stable"
METHODS = ("tfsctl promote", "two edits by hand, each waited for", "one edit + rollout restart")
MOVE_TIMEOUT = 600.0
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}

T = TypeVar("T")


# -- pure parts ------------------------------------------------------------------------------------


def placement_values(node: str) -> dict[str, Any]:
    """Chart values that put a release's pods on the real node ``node`` (its hostname and taint).

    The type label is set too (Helm merges maps); the tolerations list replaces the preset's.
    """
    from tfsbed.cluster import NODE_TYPE_LABEL
    from tfsbed.cluster.node import config as nconfig

    return {
        "nodeSelector": {"kubernetes.io/hostname": node, NODE_TYPE_LABEL: "real"},
        "tolerations": [dict(nconfig.REAL_NODE_TOLERATION)],
    }


def release_values(
    preset: Mapping[str, Any],
    node: str,
    model: str,
    replicas: int,
    version: int,
    loaded: Sequence[int] = (),
) -> dict[str, Any]:
    """The local preset for ``model`` with ``LABEL`` on ``version``, ``replicas`` fixed pods.

    The versions served are ``loaded`` (default: ``version`` only).

    Small requests (the machine has 2 cores), the chart's default command (the drop-in image's
    ``tensorflow_model_server``), a MetalLB LoadBalancer, no HPA.
    """
    values = json.loads(json.dumps(dict(preset)))  # deep copy
    values.update(placement_values(node))
    values["models"] = {
        model: {
            "versionPolicy": {"specific": {"versions": list(loaded or [version])}},
            "versionLabels": {LABEL: version},
        }
    }
    values["service"] = {"type": "LoadBalancer"}
    values["autoscaling"] = {"enabled": False}
    values["replicaCount"] = replicas
    values["resources"] = {"requests": {"cpu": "20m", "memory": "128Mi"}}
    return values


def all_serving(labels: Mapping[str, int | None], replicas: int, version: int) -> bool:
    """Whether exactly ``replicas`` Ready pods answer and every one resolves the label to ``version``."""
    return len(labels) == replicas and all(v == version for v in labels.values())


@dataclass
class MoveResult:
    method: str
    replicas: int
    seconds: float
    ok: int
    failed: int
    first_failures: list[str] = field(default_factory=list)
    returned: float | None = None  # tfsctl promote: when the command itself exited


def fmt_seconds(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.median(values):.1f} (min {min(values):.1f}, max {max(values):.1f})"


def moves_table(results: Sequence[MoveResult], poll_wait: int, quick: bool) -> Table:
    table = Table(
        f"Moving label {LABEL} 1 -> 2 on the real node (kubelet's default syncFrequency)",
        [
            "method",
            "replicas",
            "seconds to every replica serving stable=2",
            "command returned s",
            "failed / total requests",
        ],
        notes=[
            "seconds: from the start of the move until every Ready, non-terminating pod of the release "
            f"resolves `{LABEL}` to 2 (`GET /v1/models/<m>/labels/{LABEL}/metadata` on each pod IP, "
            "sampled every second); command returned: when `tfsctl promote` exited (after it also "
            "saw version 1 retired)",
            "tfsctl promote: `tfsctl promote <m> stable 2` (load 2, wait, move the label, retire 1); "
            "two edits: the values a user would write, through `tfsctl deploy --no-wait`: first "
            "versions [1, 2] (waiting until every pod reports 2 AVAILABLE), then stable -> 2 with "
            f"versions [2]; TF Serving polls its config every {poll_wait}s once kubelet refreshes the "
            "mounted ConfigMap; one edit alone (versions [2], stable -> 2) is rejected by the server "
            "('Request to assign label to version 2 of model clf, which is not currently available for "
            "inference') and never serves 2 without a restart; "
            "restart: that one edit plus a rollout restart "
            "(the `kubectl.kubernetes.io/restartedAt` annotation)",
            "requests: REST predict on the label through the Service's MetalLB LoadBalancer address, "
            "one at a time, 20 per second at most",
            "command: python -m tfsbed.bench --only realnode" + (" --quick" if quick else ""),
        ],
    )
    for r in results:
        returned = "-" if r.returned is None else f"{r.returned:.1f}"
        table.rows.append(
            [r.method, str(r.replicas), f"{r.seconds:.1f}", returned, f"{r.failed} / {r.ok + r.failed}"]
        )
    failures = [
        f"{r.method} x{r.replicas}: {'; '.join(r.first_failures)}" for r in results if r.first_failures
    ]
    table.notes += [f"first failures: {f}" for f in failures]
    return table


def up_table(cold_total: float, cold: Mapping[str, float], down: float, cached_total: float,
             cached: Mapping[str, float]) -> Table:  # fmt: skip
    table = Table(
        "Cluster up with one real node (`cluster up`, all add-ons)",
        ["step", "cold (fresh state dir) s", "cached (again after down) s"],
        notes=[
            "cold: a fresh state dir, tools and images already in the shared cache (their first build "
            "is the next table and the cluster area's); cached: the same state dir brought up again "
            "after `down`; totals are the wall time of `LocalCluster.up`",
            "steps are `UpResult.steps`; real-node:image:* are `images.build` seconds of the cold run "
            "(the cached run reuses that run's build list, so its image:* cells repeat them); `tools` "
            "covers the toolchain check and every image build or cache lookup",
        ],
    )
    table.rows.append(["total", f"{cold_total:.1f}", f"{cached_total:.1f}"])
    for step in dict.fromkeys([*cold, *cached]):
        table.rows.append(
            [
                f"  {step}",
                f"{cold[step]:.1f}" if step in cold else "-",
                f"{cached[step]:.1f}" if step in cached else "-",
            ]
        )
    table.rows.append(["`down` between them", f"{down:.1f}", "-"])
    return table


def images_table(builds: Sequence[tuple[str, float]]) -> Table:
    table = Table(
        "Real-node images: build into an empty image cache",
        ["image", "build s"],
        notes=[
            "each recipe of the real node (`RealNodes._recipes`) built with `images.build` while "
            "`images.images_cache` points at an empty directory beside the shared cache (same file "
            "system, so trees are hard-linked as in a real first build); a base image is built once, "
            "with the first image on it; the directory is removed after",
        ],
    )
    table.rows += [[ref, f"{secs:.1f}"] for ref, secs in builds]
    table.rows.append(["all", f"{sum(s for _, s in builds):.1f}"])
    return table


# -- I/O -----------------------------------------------------------------------------------------


def say(line: str) -> None:
    """A progress line on stderr (a run takes many minutes)."""
    print(f"bench: realnode: {line}", file=sys.stderr, flush=True)


def _tfsctl(kubeconfig: Path, *args: str, timeout: float = 600.0) -> str:
    tools = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), PYTHONPATH=tools)
    proc = subprocess.run(
        [sys.executable, "-m", "tfsctl", *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"tfsctl {' '.join(args[:2])} exited {proc.returncode}: {last[0]}")
    return proc.stdout


def _wait(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if value := cond():
                return value
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout:.0f}s")


@dataclass
class Bed:
    """One namespace on the cluster with a models PV, and the calls the moves need."""

    api: Any
    kubeconfig: Path
    node: str
    model: str
    models_dir: Path
    preset: dict[str, Any]
    namespace: str = field(default_factory=lambda: f"bench-real-{uuid.uuid4().hex[:5]}")

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api)

    def _ask_each_pod(self, path: str, parse: Callable[[Any], T], failed: T) -> dict[str, T]:
        """Ready, non-terminating pod -> ``parse`` of its JSON answer at ``path`` (``failed``: none)."""
        from tfsctl import kubestate

        selector = kubestate.server_selector(RELEASE)
        out: dict[str, T] = {}
        for pod in self.core.list_namespaced_pod(self.namespace, label_selector=selector).items:
            if not kubestate.is_ready(pod) or kubestate.is_terminating(pod):
                continue
            try:
                with urllib.request.urlopen(f"http://{pod.status.pod_ip}:8501{path}", timeout=3) as resp:
                    out[pod.metadata.name] = parse(json.load(resp))
            except (OSError, ValueError, KeyError):
                out[pod.metadata.name] = failed
        return out

    def labels(self) -> dict[str, int | None]:
        """Ready, non-terminating pod -> the version it resolves ``LABEL`` to (None: no answer)."""
        path = f"/v1/models/{self.model}/labels/{LABEL}/metadata"
        return self._ask_each_pod(path, lambda doc: int(doc["model_spec"]["version"]), None)

    def wait_serving(self, replicas: int, version: int, timeout: float = MOVE_TIMEOUT) -> None:
        _wait(lambda: all_serving(self.labels(), replicas, version), timeout,
              f"{replicas} replicas serving {LABEL}={version}")  # fmt: skip

    def deploy(self, replicas: int, version: int, wait: bool, tmp: Path, loaded: Sequence[int] = ()) -> None:
        values = tmp / f"values-{replicas}-{version}.yaml"
        chart = release_values(self.preset, self.node, self.model, replicas, version, loaded)
        values.write_text(yaml.safe_dump(chart))
        _tfsctl(self.kubeconfig, "deploy", "--release", RELEASE, "-n", self.namespace, "--timeout", "540",
                "-f", str(values), *([] if wait else ["--no-wait"]))  # fmt: skip

    def available(self) -> dict[str, set[int]]:
        """Ready, non-terminating pod -> the versions it reports AVAILABLE."""

        def versions(doc: Any) -> set[int]:
            return {int(s["version"]) for s in doc["model_version_status"] if s["state"] == "AVAILABLE"}

        return self._ask_each_pod(f"/v1/models/{self.model}", versions, set())

    def restart(self) -> None:
        from kubernetes import client

        stamp = dt.datetime.now(dt.timezone.utc).isoformat()
        body = {
            "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}
        }
        client.AppsV1Api(self.api).patch_namespaced_deployment(FULL, self.namespace, body)

    def lb_ip(self) -> str:
        def ip() -> str | None:
            svc = self.core.read_namespaced_service(FULL, self.namespace)
            ingress = (svc.status.load_balancer and svc.status.load_balancer.ingress) or []
            return ingress[0].ip if ingress else None

        return str(_wait(ip, 120, f"LoadBalancer address of {self.namespace}/{FULL}"))

    @contextlib.contextmanager
    def namespace_and_pv(self) -> Iterator[None]:
        core = self.core
        core.create_namespace({"metadata": {"name": self.namespace, "labels": RESTRICTED}})
        pv = f"{self.namespace}-models"
        core.create_persistent_volume(
            volumes.models_pv_manifest(
                pv, self.models_dir, volumes.DEFAULT_LABELS, claim=(self.namespace, f"{FULL}-models")
            )
        )
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                core.delete_namespace(self.namespace, grace_period_seconds=0)
            with contextlib.suppress(Exception):
                core.delete_persistent_volume(pv)


def _move(bed: Bed, method: str, replicas: int, tmp: Path) -> MoveResult:
    probe = PredictProbe(
        f"http://{bed.lb_ip()}:8501/v1/models/{bed.model}/labels/{LABEL}:predict",
        json.dumps({"instances": [[0.1, 0.2, 0.3, 0.4]]}).encode(),
    )
    probe.start()
    time.sleep(1.0)  # the probe is answering before the move starts
    started = time.monotonic()
    first: list[float] = []
    done = threading.Event()

    def watch() -> None:  # the first moment every replica serves 2, while the commands run
        while not done.is_set() and not first:
            with contextlib.suppress(Exception):
                if all_serving(bed.labels(), replicas, 2):
                    first.append(time.monotonic() - started)
            done.wait(1.0)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    returned: float | None = None
    try:
        if method == METHODS[0]:
            _tfsctl(bed.kubeconfig, "promote", bed.model, LABEL, "2", "--release", RELEASE,
                    "-n", bed.namespace, "--timeout", str(int(MOVE_TIMEOUT)))  # fmt: skip
            returned = time.monotonic() - started
        elif method == METHODS[1]:
            # TF Serving rejects a label on a version it has not loaded yet (the whole reload fails),
            # so by hand it is two edits too: load 2, wait until every pod has it, then move the label
            bed.deploy(replicas, 1, wait=False, tmp=tmp, loaded=(1, 2))
            _wait(lambda: (a := bed.available()) and len(a) == replicas and all(2 in v for v in a.values()),
                  MOVE_TIMEOUT, f"version 2 AVAILABLE on {replicas} replicas")  # fmt: skip
            bed.deploy(replicas, 2, wait=False, tmp=tmp)
        else:
            bed.deploy(replicas, 2, wait=False, tmp=tmp)
            bed.restart()
        bed.wait_serving(replicas, 2)
        seconds = first[0] if first else time.monotonic() - started
        time.sleep(1.0)
    finally:
        done.set()
        watcher.join(10)
        probe.stop()
    say(f"{method} x{replicas}: {seconds:.1f}s, {len(probe.failed)} of {probe.ok + len(probe.failed)} failed")
    return MoveResult(method, replicas, seconds, probe.ok, len(probe.failed), probe.failed[:2], returned)


def _moves(api: Any, kubeconfig: Path, node: str, counts: Sequence[int]) -> tuple[list[MoveResult], int]:
    from tfsbed.canary_models import MODEL, canary_models_dir
    from tfsctl import paths

    preset = yaml.safe_load((paths.VALUES_DIR / "local.yaml").read_text())
    results: list[MoveResult] = []
    for n in counts:
        bed = Bed(api, kubeconfig, node, MODEL, canary_models_dir(), preset)
        with bed.namespace_and_pv(), tempfile.TemporaryDirectory(prefix="tfsctl-bench-real-") as tmp:
            bed.deploy(n, 1, wait=True, tmp=Path(tmp))
            bed.wait_serving(n, 1)
            for i, method in enumerate(METHODS):
                if i:  # back to stable=1 (untimed): the edit plus a restart starts every pod on it
                    bed.deploy(n, 1, wait=False, tmp=Path(tmp))
                    bed.restart()
                    bed.wait_serving(n, 1)
                results.append(_move(bed, method, n, Path(tmp)))
    return results, int(preset["modelConfig"]["pollWaitSeconds"])


def image_builds(lc: Any) -> list[tuple[str, float]]:
    """(image ref, seconds) for every real-node recipe built into an empty image cache."""
    from unittest import mock

    from tfsbed import toolchain
    from tfsbed.cluster.node import images

    root = toolchain.cache_root()
    root.mkdir(parents=True, exist_ok=True)
    empty = Path(tempfile.mkdtemp(prefix=".bench-images-", dir=root))
    try:
        with mock.patch.object(images, "images_cache", lambda: empty):
            recipes = lc._real_nodes()._recipes()
            out = []
            for recipe in recipes:
                started = time.monotonic()
                images.build(recipe)
                out.append((recipe.ref, time.monotonic() - started))
            return out
    finally:
        shutil.rmtree(empty, ignore_errors=True)


def collect(quick: bool) -> list[Table]:
    from tfsbed.cluster import spec as cspec
    from tfsbed.cluster.local import LocalCluster
    from tfsbed.cluster.node import config as nconfig

    port_base = int(os.environ.get("TFSBED_BENCH_PORT_BASE", BENCH_PORT_BASE))
    counts = (1,) if quick else (1, 3, 10)
    with tempfile.TemporaryDirectory(prefix="tfsctl-bench-realnode-") as tmp:
        lc = LocalCluster(
            cspec.ClusterSpec(ports=cspec.Ports(port_base), real_nodes=1),
            state_dir=Path(tmp) / "state",
            kubeconfig=Path(tmp) / "kubeconfig",
            progress=say,
        )
        try:
            started = time.monotonic()
            cold = lc.up(timeout=600)
            cold_total = time.monotonic() - started
            started = time.monotonic()
            lc.down(timeout=120)
            down = time.monotonic() - started
            started = time.monotonic()
            cached = lc.up(timeout=600)
            cached_total = time.monotonic() - started
            moves, poll_wait = _moves(lc.api_client(), lc.kubeconfig, nconfig.node_name(0), counts)
        finally:
            lc.down(timeout=120)
        say("building every real-node image into an empty image cache")
        builds = image_builds(lc)
    return [
        up_table(cold_total, cold.steps, down, cached_total, cached.steps),
        images_table(builds),
        moves_table(moves, poll_wait, quick),
    ]
