"""Pod status computed from what the runtime observed, as the kubelet reports it (pure)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

State = Literal["waiting", "running", "terminated"]


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Termination:
    exit_code: int
    reason: str
    started_at: float | None
    finished_at: float
    message: str = ""
    signal: int | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": rfc3339(self.started_at),
            "finishedAt": rfc3339(self.finished_at),
        }
        if self.message:
            out["message"] = self.message
        if self.signal is not None:
            out["signal"] = self.signal
        return out


@dataclass
class ContainerView:
    """What the runtime knows about one container right now."""

    name: str
    image: str
    state: State = "waiting"
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: float | None = None
    termination: Termination | None = None  # set when state == "terminated"
    last_termination: Termination | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    container_id: str = ""
    will_restart: bool = True

    def to_api(self) -> dict[str, Any]:
        state: dict[str, Any]
        if self.state == "running":
            state = {"running": {"startedAt": rfc3339(self.started_at)}}
        elif self.state == "terminated" and self.termination is not None:
            state = {"terminated": self.termination.to_api()}
        else:
            waiting: dict[str, Any] = {"reason": self.reason}
            if self.message:
                waiting["message"] = self.message
            state = {"waiting": waiting}
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": f"process://{self.image}",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": state,
            "lastState": {"terminated": self.last_termination.to_api()} if self.last_termination else {},
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


@dataclass
class PodView:
    """Everything the status depends on."""

    init_containers: list[ContainerView]
    containers: list[ContainerView]
    initialized: bool
    pod_ip: str | None
    host_ip: str
    start_time: float
    failed_reason: str = ""  # the agent gave up on the pod (unsupported volume...)
    failed_message: str = ""
    previous_conditions: list[dict[str, Any]] = field(default_factory=list)


def phase(view: PodView) -> str:
    """The pod phase by the kubelet's rules."""
    if view.failed_reason:
        return "Failed"
    if any(
        c.state == "terminated" and not c.will_restart and (c.termination and c.termination.exit_code)
        for c in view.init_containers
    ):
        return "Failed"
    if not view.initialized:
        return "Pending"
    containers = view.containers
    if any(c.state == "running" for c in containers):
        return "Running"
    if containers and all(c.state == "terminated" and not c.will_restart for c in containers):
        failed = any(c.termination is not None and c.termination.exit_code != 0 for c in containers)
        return "Failed" if failed else "Succeeded"
    if any(c.restart_count > 0 or c.state == "terminated" for c in containers):
        return "Running"  # restarting after an exit
    return "Pending"


def _condition(previous: dict[str, dict[str, Any]], ctype: str, ok: bool, now: float, reason: str = ""):
    status = "True" if ok else "False"
    before = previous.get(ctype)
    changed = before is None or before.get("status") != status
    cond: dict[str, Any] = {
        "type": ctype,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": rfc3339(now) if changed else before.get("lastTransitionTime"),  # type: ignore[union-attr]
    }
    if reason and not ok:
        cond["reason"] = reason
    return cond


def compute_status(view: PodView, now: float) -> dict[str, Any]:
    """The ``status`` object to write for the pod (lists are written whole)."""
    previous = {c.get("type", ""): c for c in view.previous_conditions}
    pod_phase = phase(view)
    terminal = pod_phase in ("Succeeded", "Failed")
    containers_ready = bool(view.containers) and all(c.ready for c in view.containers) and not terminal
    not_ready = [c.name for c in view.containers if not c.ready]
    reason = "PodCompleted" if terminal else "ContainersNotReady"
    scheduled = previous.get("PodScheduled") or {
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": None,
        "lastTransitionTime": rfc3339(now),
    }
    conditions = [
        _condition(previous, "PodReadyToStartContainers", view.pod_ip is not None, now),
        _condition(previous, "Initialized", view.initialized, now, "ContainersNotInitialized"),
        _condition(previous, "Ready", containers_ready, now, reason),
        _condition(previous, "ContainersReady", containers_ready, now, reason),
        scheduled,
    ]
    if not_ready and not terminal:
        for cond in conditions[2:4]:
            if cond["status"] == "False":
                cond["message"] = f"containers with unready status: [{' '.join(not_ready)}]"
    status: dict[str, Any] = {
        "phase": pod_phase,
        "conditions": conditions,
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "startTime": rfc3339(view.start_time),
        "containerStatuses": [c.to_api() for c in view.containers],
        "qosClass": None,
    }
    status.pop("qosClass")
    if view.init_containers:
        status["initContainerStatuses"] = [c.to_api() for c in view.init_containers]
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    if view.failed_reason:
        status["reason"] = view.failed_reason
        status["message"] = view.failed_message
    return status


def status_differs(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``new`` says something ``old`` does not (ignoring transition timestamps)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("lastTransitionTime", "lastProbeTime")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return bool(strip({k: old.get(k) for k in new}) != strip(new))
