"""The chart's ``canary.job`` run in the cluster: ``tfsctl canary`` as a Job, no laptop in the loop.

One release, one Job run (CPU is scarce): the ``local`` preset on the session cluster's
real node (kubelet + containerd), ``clf`` served by 2 pods with stable -> 1, and
``canary.version`` 2, which computes the same function (``tfsbed.canary_models.SAME``).
The Job's image is the toolkit image ``cluster up --real-nodes`` builds and pushes
(``tfsbed.cluster.node.toolkit``: the product's wheel and helm, no test bed), placed on
the real node by ``canary.job.nodeSelector``/``tolerations``. It runs in the namespace
under PodSecurity ``restricted``, as the pod's ServiceAccount with only the chart's Role.

The test asserts what a GitOps pipeline gates on and what the fleet then serves:

- the Job succeeds (exit 0 = promoted) and its log's JSON says ``promoted``;
- every replica resolves ``stable`` to 2 itself (``GET /v1/models/clf/labels/stable/metadata``,
  TF Serving's ``GetModelMetadata`` by label);
- the release history records the canary move and the promotion, each carried by a Helm
  revision the Job made (``tfsctl history``, ``helm history``).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from kubernetes import client

from support.cluster_helpers import Cluster, RealNode, pinned, run_tool, wait_for
from support.release_cluster import models_pv, module_namespace, tfsctl
from tfsbed.canary_models import MODEL, SAME, canary_models_dir
from tfsbed.cluster.node import toolkit
from tfsctl import __version__, kubestate, paths

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RELEASE = "tfs"
FULL = "tfs-tensorflow-serving"
JOB = f"{FULL}-canary-{SAME}"
SELECTOR = kubestate.server_selector(RELEASE)
# A short bake: the paired requests need only show the two versions agree. The label moves are not
# short: each step is a ConfigMap change that the real node's kubelet puts into the pods' volume on its
# next sync (syncFrequency, 1 min by default) before TF Serving's 2 s poll reads it.
SPEC = {
    "bakeSeconds": 3,
    "intervalSeconds": 1,
    "maxRequestRate": 20,
    "loadTimeoutSeconds": 300,
    "inputs": {"count": 4, "batchSize": 2},
    # p50 is robust on a shared 2-core machine; p99 of a few dozen samples is not
    "latency": {"maxP50Ratio": 3.0, "maxP99Ratio": None, "minSamples": 5},
}
# The Job runs about 2 minutes here; its deadline and the wait stay under pytest's 600 s timeout so a
# stuck Job fails with its log and the namespace's events, not with pytest's stack dump.
JOB_DEADLINE = 450


@dataclass
class JobRun:
    cluster: Cluster
    namespace: str
    job: Any
    log: str
    seconds: float

    def ready_pods(self) -> list[Any]:
        core = client.CoreV1Api(self.cluster.api)
        pods = core.list_namespaced_pod(self.namespace, label_selector=SELECTOR).items
        return [p for p in pods if kubestate.serves(p)]


def _job_log(cluster: Cluster, namespace: str) -> str:
    done = cluster.kubectl("logs", "-n", namespace, f"job/{JOB}", check=False)
    return done.stdout + done.stderr


def _finished(batch: Any, namespace: str) -> Any:
    job = batch.read_namespaced_job(JOB, namespace)
    return job if (job.status.succeeded or job.status.failed) else None


@pytest.fixture(scope="module")
def run(cluster: Cluster, real_node: RealNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobRun]:
    tmp = tmp_path_factory.mktemp("canary-job")
    placement = real_node.values()
    values = yaml.safe_load((paths.VALUES_DIR / "local.yaml").read_text())
    values.update(placement)
    values["models"] = {
        MODEL: {"versionPolicy": {"specific": {"versions": [1]}}, "versionLabels": {"stable": 1}}
    }
    values["server"]["command"] = ["tensorflow_model_server"]  # the drop-in image's own server
    values["server"]["extraArgs"] = ["--max_num_load_retries=0"]
    values["service"] = {"type": "ClusterIP"}
    values["autoscaling"] = {"enabled": False}
    values["replicaCount"] = 2
    values["canary"] = {
        "model": MODEL,
        "version": SAME,
        "spec": SPEC,
        "job": {
            "enabled": True,
            # the name the local registry mirrors (tfsbed.cluster.node.toolkit.image_ref)
            "image": {"repository": toolkit.IMAGE_REPOSITORY, "tag": __version__},
            "timeout": 300,
            "activeDeadlineSeconds": JOB_DEADLINE,
            **placement,
        },
    }
    (tmp / "values.yaml").write_text(yaml.safe_dump(values))
    batch = client.BatchV1Api(cluster.api)
    with (
        module_namespace(cluster, "e2e-canary-job") as ns,
        models_pv(cluster, ns, f"{FULL}-models", canary_models_dir()),
    ):
        started = time.monotonic()
        # --no-wait: the Job itself waits for the fleet, as it does after a GitOps sync
        done = tfsctl(
            cluster, "deploy", "--release", RELEASE, "-n", ns, "--no-wait", "-f", str(tmp / "values.yaml")
        )
        assert done.returncode == 0, done.stderr
        try:
            job = wait_for(
                lambda: _finished(batch, ns),
                timeout=JOB_DEADLINE + 30,
                what=f"Job {ns}/{JOB} to finish",
                interval=3,
            )
        except Exception:
            print(_job_log(cluster, ns))
            print(cluster.kubectl("get", "pods,events", "-n", ns, "-o", "wide", check=False).stdout)
            raise
        seconds = time.monotonic() - started
        log = _job_log(cluster, ns)
        ran = (job.status.completion_time or job.status.start_time) - job.status.start_time
        print(
            f"measured: install to Job finished {seconds:.1f}s; "
            f"the Job ran {ran.total_seconds():.0f}s (status.startTime -> completionTime)"
        )
        print(log)
        yield JobRun(cluster, ns, job, log, seconds)


def _verdict(log: str) -> dict[str, Any]:
    """The Job's stdout, ``tfsctl canary --output json``: the document from its ``{`` line to its ``}``
    line (stderr's diagnostics share the container log)."""
    lines = log.splitlines()
    start, end = lines.index("{"), len(lines) - lines[::-1].index("}")
    return dict(json.loads("\n".join(lines[start:end])))


def test_the_job_promotes_the_version_and_succeeds(run: JobRun) -> None:
    assert run.job.status.succeeded == 1, f"Job {JOB} failed:\n{run.log}"
    verdict = _verdict(run.log)
    assert verdict["decision"] == "promoted", verdict["reason"]
    assert verdict["stable"] == {"before": 1, "after": SAME}
    assert verdict["failed_checks"] == []
    assert verdict["requests_sent"] > 0


def test_every_replica_resolves_stable_to_the_new_version(run: JobRun) -> None:
    pods = run.ready_pods()
    assert len(pods) == 2
    for pod in pods:
        url = f"http://{pod.status.pod_ip}:8501/v1/models/{MODEL}/labels/stable/metadata"
        with urllib.request.urlopen(url, timeout=10) as resp:
            spec = json.load(resp)["model_spec"]
        assert spec["version"] == str(SAME), f"{pod.metadata.name}: stable -> {spec}"


def test_the_release_history_records_the_jobs_moves(run: JobRun) -> None:
    done = tfsctl(run.cluster, "history", "--release", RELEASE, "-n", run.namespace, "-o", "json")
    assert done.returncode == 0, done.stderr
    moves = [(r["label"], r["from_version"], r["to_version"], r["action"]) for r in json.loads(done.stdout)]
    assert moves == [("canary", None, SAME, "promote"), ("stable", 1, SAME, "promote")]
    records = json.loads(done.stdout)
    # written from inside the cluster: the Job's pod, not this machine
    assert all(r["who"].split("@", 1)[1].startswith(JOB) for r in records), records
    helm = run_tool(
        [pinned("helm"), "history", RELEASE, "-n", run.namespace, "-o", "json"], run.cluster.kubeconfig
    )
    revisions = json.loads(helm.stdout)
    # revision 1 is the install; every later one is a label move of the Job's (ReleaseStore.write)
    assert revisions[-1]["revision"] == records[-1]["revision"]
    assert len(revisions) > 1
    assert all(r["description"].startswith("tfsctl: ") for r in revisions[1:]), revisions
