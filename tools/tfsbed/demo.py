"""The main job, end to end on the local default (``make demo``).

The demo is the same sequence of ``tfsctl`` commands a user runs by hand, in
order, so its output doubles as a walkthrough: each step prints the command,
runs it as a subprocess and stops the demo when it fails.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfsctl.errors import ToolkitError
from tfsctl.paths import REPO_ROOT, TOOLS_DIR, VALUES_DIR


@dataclass(frozen=True)
class Step:
    """One demo step: what it shows and the tfsctl arguments that do it."""

    title: str
    args: list[str]
    action: Callable[[DemoPlan], None] | None = None


@dataclass(frozen=True)
class DemoPlan:
    release: str = "demo"
    # the second release: the same preset behind the Ingress, its HPA on the route's request rate
    qps_release: str = "demo-qps"
    namespace: str = "tfs-demo"
    model: str = "fashion"
    workdir: Path = TOOLS_DIR / "demo"
    reports: Path = REPO_ROOT / "reports"
    values: Path = VALUES_DIR / "local.yaml"
    presets: list[Path] = field(default_factory=lambda: sorted(VALUES_DIR.glob("*.yaml")))

    @property
    def repository(self) -> Path:
        return self.workdir / "models"

    @property
    def candidate(self) -> Path:
        return self.workdir / "candidate"

    @property
    def qps_volume(self) -> str:
        """The second release's PV (a PV binds one claim): the same repository, the same label."""
        return f"{self.namespace}-{self.qps_release}-models"


def steps(plan: DemoPlan) -> Iterator[Step]:
    """The demo's steps, in order (pure: no I/O beyond listing presets)."""
    for preset in plan.presets:
        yield Step(f"validate preset {preset.name}", ["validate", "-f", str(preset)])
    yield Step("start the local cluster", ["cluster", "up"])
    yield Step("remove what an earlier demo left", [], action=reset)
    yield Step(
        "generate example models (versions 1 and 2)",
        ["models", "example", str(plan.repository), "--name", plan.model, "--versions", "1,2"],
    )
    yield Step("validate the model repository", ["models", "validate", str(plan.repository)])
    yield Step(
        "expose the repository to the cluster as a PV", ["cluster", "models-volume", str(plan.repository)]
    )
    release = ["--release", plan.release, "--namespace", plan.namespace]
    yield Step(
        "deploy the local preset (stable -> 1, canary -> 2)",
        ["deploy", *release, "-f", str(plan.values), "--create-namespace"],
    )
    yield Step("fleet status", ["status", *release])
    yield Step("promote canary's version 2 to stable", ["promote", *release, plan.model, "stable", "2"])
    yield Step("roll stable back to version 1", ["rollback", *release, plan.model, "stable"])
    yield Step("promote version 2 to stable again", ["promote", *release, plan.model, "stable", "2"])
    yield Step(
        "train a new candidate (version 3 weights)",
        ["models", "example", str(plan.candidate), "--name", plan.model, "--versions", "3"],
    )
    yield Step(
        "upload it atomically as the next version",
        ["upload", str(plan.candidate / plan.model / "3"), str(plan.repository / plan.model)],
    )
    yield Step("point canary at version 3", ["promote", *release, plan.model, "canary", "3"])
    yield Step("fleet status", ["status", *release])
    yield Step("promotion history", ["history", *release])
    yield Step(
        "load test: verify the HPA scales out and back in",
        [
            "verify-autoscaling",
            *release,
            "--model",
            plan.model,
            "--model-label",
            "stable",
            "--shape",
            "step",
            "--shape-params",
            "steps=2",
            "--duration",
            "60s",
            "--users",
            "8",
            "--user-rps",
            "12",
            "--expect-max-replicas-at-least",
            "2",
            "--scale-out-within",
            "90s",
            "--scale-in-within",
            "180s",
            "--report",
            str(plan.reports / "autoscaling"),
        ],
    )
    # The ACK + ECI guide scales on the Ingress route's QPS; here Traefik serves the Ingress and
    # prometheus-adapter serves the route's rate (`autoscaling.prometheusQps`, the Prometheus form).
    yield Step(
        "expose the repository to a second release",
        ["cluster", "models-volume", str(plan.repository), "--name", plan.qps_volume],
    )
    qps = ["--release", plan.qps_release, "--namespace", plan.namespace]
    yield Step(
        "deploy it behind the Ingress, its HPA on the route's request rate",
        [
            "deploy", *qps, "-f", str(plan.values), "--timeout", "300",
            "--set", "ingress.enabled=true",
            "--set", "autoscaling.maxReplicas=3",
            "--set", "autoscaling.targetCPUUtilizationPercentage=0",
            "--set", "autoscaling.prometheusQps.enabled=true",
            "--set", "autoscaling.prometheusQps.source=ingress",
            "--set", "autoscaling.prometheusQps.targetAverageValue=4",
        ],
    )  # fmt: skip
    yield Step(
        "load test through the Ingress: verify the HPA scales on request rate",
        [
            "verify-autoscaling", *qps, "--through", "ingress",
            "--model", plan.model, "--model-label", "stable",
            "--duration", "75s", "--users", "4", "--user-rps", "3", "--p95-ms", "3000", "--p99-ms", "6000",
            "--expect-max-replicas-at-least", "2", "--scale-out-within", "90s", "--scale-in-within", "180s",
            "--report", str(plan.reports / "autoscaling-qps"),
        ],
    )  # fmt: skip


def reset(plan: DemoPlan, timeout: float = 120.0) -> None:
    """Delete an earlier demo's namespace, models PVs and files, so the demo can run again."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    from tfsbed.cluster.volumes import DEFAULT_NAME as PV_NAME
    from tfsctl.kubeclient import api_client

    core: Any = client.CoreV1Api(api_client())
    for delete, name in (
        (core.delete_namespace, plan.namespace),
        (core.delete_persistent_volume, PV_NAME),
        (core.delete_persistent_volume, plan.qps_volume),
    ):
        try:
            delete(name)
        except ApiException as exc:
            if exc.status != 404:
                raise ToolkitError(f"cannot delete {name}: {exc.reason}") from None
    deadline = time.monotonic() + timeout
    while any(ns.metadata.name == plan.namespace for ns in core.list_namespace().items):
        if time.monotonic() > deadline:
            raise ToolkitError(f"namespace {plan.namespace} still terminating after {timeout:.0f}s")
        time.sleep(1)
    shutil.rmtree(plan.workdir, ignore_errors=True)


def run(plan: DemoPlan, echo: Callable[[str], None]) -> None:
    """Run every step; raise ToolkitError naming the step that failed."""
    all_steps = list(steps(plan))
    started = time.monotonic()
    for i, step in enumerate(all_steps, 1):
        if step.action is not None:
            echo(f"\n[{i}/{len(all_steps)}] {step.title}")
            step.action(plan)
            continue
        cmd = [sys.executable, "-m", "tfsctl", *step.args]
        echo(f"\n[{i}/{len(all_steps)}] {step.title}\n$ tfsctl {shlex.join(step.args)}")
        proc = subprocess.run(cmd, cwd=REPO_ROOT)
        if proc.returncode != 0:
            raise ToolkitError(f"demo step {i} ({step.title}) failed with exit code {proc.returncode}")
    echo(
        f"\ndemo: {len(all_steps)} steps passed in {time.monotonic() - started:.0f}s; "
        f"reports: {plan.reports / 'autoscaling' / 'report.html'}, "
        f"{plan.reports / 'autoscaling-qps' / 'report.html'}"
    )
