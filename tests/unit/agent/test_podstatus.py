from __future__ import annotations

from tfsbed.cluster.agent.podstatus import (
    ContainerView,
    PodView,
    Termination,
    compute_status,
    phase,
    status_differs,
)


def view(*containers: ContainerView, initialized: bool = True, **kw: object) -> PodView:
    return PodView(
        init_containers=[],
        containers=list(containers),
        initialized=initialized,
        pod_ip=kw.get("pod_ip", "10.244.100.2"),
        host_ip="127.0.0.1",
        start_time=1000.0,
    )  # type: ignore[arg-type]


def running(name: str = "c", ready: bool = True) -> ContainerView:
    return ContainerView(
        name=name, image="img", state="running", started_at=1000.0, ready=ready, started=True
    )


def terminated(code: int, will_restart: bool, name: str = "c") -> ContainerView:
    term = Termination(
        exit_code=code, reason="Completed" if code == 0 else "Error", started_at=1000, finished_at=1010
    )
    return ContainerView(
        name=name, image="img", state="terminated", termination=term, will_restart=will_restart
    )


def conditions(status: dict) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


def test_running_ready_pod_reports_ip_and_all_conditions_true() -> None:
    status = compute_status(view(running()), now=1001)
    assert status["phase"] == "Running"
    assert status["podIP"] == "10.244.100.2"
    assert status["podIPs"] == [{"ip": "10.244.100.2"}]
    assert conditions(status) == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    assert status["containerStatuses"][0]["state"] == {"running": {"startedAt": "1970-01-01T00:16:40Z"}}


def test_unready_container_makes_pod_not_ready_with_message() -> None:
    status = compute_status(view(running("a"), running("b", ready=False)), now=1001)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "ContainersNotReady"
    assert "[b]" in ready["message"]


def test_phase_succeeded_when_all_exit_zero_without_restart() -> None:
    assert phase(view(terminated(0, False, "a"), terminated(0, False, "b"))) == "Succeeded"


def test_phase_failed_when_one_exits_nonzero_without_restart() -> None:
    assert phase(view(terminated(0, False, "a"), terminated(1, False, "b"))) == "Failed"


def test_phase_running_while_a_crashed_container_waits_to_restart() -> None:
    assert phase(view(terminated(1, True))) == "Running"


def test_phase_pending_until_initialized() -> None:
    assert phase(view(ContainerView(name="c", image="i"), initialized=False)) == "Pending"


def test_phase_failed_when_agent_gave_up() -> None:
    v = view(ContainerView(name="c", image="i"))
    v.failed_reason, v.failed_message = "UnsupportedVolume", "volume x"
    status = compute_status(v, now=1)
    assert (status["phase"], status["reason"]) == ("Failed", "UnsupportedVolume")


def test_transition_time_kept_when_condition_unchanged() -> None:
    first = compute_status(view(running()), now=1000)
    v = view(running())
    v.previous_conditions = first["conditions"]
    again = compute_status(v, now=2000)
    ready = next(c for c in again["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "1970-01-01T00:16:40Z"


def test_terminated_state_and_last_state_rendered() -> None:
    c = running()
    c.last_termination = Termination(exit_code=137, reason="Error", started_at=900, finished_at=950, signal=9)
    c.restart_count = 1
    api = c.to_api()
    assert api["restartCount"] == 1
    assert api["lastState"]["terminated"]["exitCode"] == 137


def test_status_differs_ignores_timestamps_only() -> None:
    a = compute_status(view(running()), now=1000)
    b = compute_status(view(running()), now=5000)
    assert not status_differs(a, b)
    assert status_differs(a, compute_status(view(running(ready=False)), now=1000))
