"""Running one pod: sandbox, volumes, init containers, containers, probes, termination.

A :class:`PodWorker` thread owns one pod from the moment it is bound to the node
until its object is deleted. It is the only writer of that pod's status.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import psutil

from tfsctl.errors import InvalidInput, NotFound, ToolkitError

from . import env as envmod
from .podstatus import ContainerView, PodView, Termination, compute_status, status_differs
from .probes import ProbeSpec, ProbeTracker, Result, resolve_port, should_probe
from .server import ExecStarter, LogHandle
from .volumes import PodVolumes, VolumeError, build_root

if TYPE_CHECKING:
    from .agent import Agent

log = logging.getLogger(__name__)

BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET_AFTER = 600.0
TICK = 0.5


def backoff_delay(restarts: int) -> float:
    """Kubelet crash-loop back-off: immediate first restart, then 10 s doubling to 5 min."""
    if restarts <= 0:
        return 0.0
    return min(BACKOFF_INITIAL * 2 ** (restarts - 1), BACKOFF_MAX)


def which(command: str, path: str) -> str | None:
    if "/" in command:
        return command if os.access(command, os.X_OK) else None
    return shutil.which(command, path=path)


def exit_termination(returncode: int, started_at: float | None, killed_reason: str = "") -> Termination:
    signal_no = -returncode if returncode < 0 else None
    code = 128 + signal_no if signal_no else returncode
    reason = killed_reason or ("Completed" if code == 0 else "Error")
    return Termination(
        exit_code=code, reason=reason, started_at=started_at, finished_at=time.time(), signal=signal_no
    )


def index_path(log_path: Path) -> Path:
    return log_path.with_suffix(".idx")


def previous_log_path(log_path: Path) -> Path:
    return log_path.with_suffix(".previous.log")


def rotate_log(log_path: Path) -> None:
    """Before a run starts: the last run's log becomes the previous one (``kubectl logs --previous``)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if log_path.exists():
        log_path.replace(previous_log_path(log_path))
        with contextlib.suppress(FileNotFoundError):
            index_path(log_path).replace(index_path(previous_log_path(log_path)))
    else:
        index_path(log_path).unlink(missing_ok=True)


def copy_output(stream: BinaryIO, log_path: Path) -> None:
    """Copy a container's output to its log file, indexing each chunk's offset and arrival time.

    Runs until the container (and every process holding its stdout) has exited.
    """
    fd = stream.fileno()
    try:
        with open(log_path, "ab") as out, open(index_path(log_path), "a") as index:
            offset = out.tell()
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                index.write(f"{offset} {time.time():.6f}\n")
                index.flush()
                out.write(chunk)
                out.flush()
                offset += len(chunk)
    except OSError as exc:
        log.warning("log of %s not written: %s", log_path.name, exc)
    finally:
        stream.close()


def kill_tree(pid: int, sig: int) -> None:
    """Signal a container's process group and any descendant that left it."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        children = []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.send_signal(sig)


@dataclass
class Container:
    """One container of the pod and its current run."""

    spec: dict[str, Any]
    init: bool
    view: ContainerView
    proc: subprocess.Popen[bytes] | None = None
    run_id: int = 0
    env: dict[str, str] = field(default_factory=dict)
    trackers: dict[str, ProbeTracker] = field(default_factory=dict)
    next_start: float = 0.0
    crashes: int = 0
    kill_reason: str = ""
    copier: threading.Thread | None = None  # copies this run's output into its log
    lock: threading.Lock = field(default_factory=threading.Lock)
    execs: list[subprocess.Popen[bytes]] = field(default_factory=list)  # commands run by /exec

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pids(self) -> list[int]:
        if not self.running() or self.proc is None:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            return [root.pid] + [c.pid for c in root.children(recursive=True)]
        except psutil.Error:
            return []


class PodWorker:
    """Owns one pod bound to the node (see module docstring)."""

    def __init__(self, agent: Agent, pod: dict[str, Any]) -> None:
        self.agent = agent
        self.pod = pod
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.dir = agent.state_dir / "pods" / self.uid
        self.spec: dict[str, Any] = pod["spec"]
        self.host_network = bool(self.spec.get("hostNetwork"))
        self.netns: str | None = None
        self.pod_ip: str | None = None
        self.gone = threading.Event()
        self.wakeup = threading.Event()
        self.finished = threading.Event()
        self.start_time = time.time()
        self.initialized = False
        self.failed_reason = ""
        self.failed_message = ""
        self.volumes: PodVolumes | None = None
        self.last_status: dict[str, Any] = {}
        self._events: set[tuple[str, str]] = set()
        previous = {
            s["name"]: s
            for s in (pod.get("status") or {}).get("containerStatuses")
            or [] + ((pod.get("status") or {}).get("initContainerStatuses") or [])
        }
        self.init_containers = [
            self._container(c, True, previous) for c in self.spec.get("initContainers") or []
        ]
        self.containers = [self._container(c, False, previous) for c in self.spec["containers"]]
        self.thread = threading.Thread(
            target=self._main, name=f"pod-{self.namespace}/{self.name}", daemon=True
        )

    @staticmethod
    def _container(spec: dict[str, Any], init: bool, previous: dict[str, Any]) -> Container:
        view = ContainerView(name=spec["name"], image=str(spec.get("image") or ""))
        view.restart_count = int((previous.get(spec["name"]) or {}).get("restartCount") or 0)
        return Container(spec=spec, init=init, view=view)

    # -- inputs from the agent
    def start(self) -> None:
        self.thread.start()

    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        self.wakeup.set()

    def deleted(self) -> None:
        self.gone.set()
        self.wakeup.set()

    # -- helpers
    def _stop_reason(self) -> str:
        if self.gone.is_set():
            return "gone"
        if self.pod["metadata"].get("deletionTimestamp"):
            return "deleted"
        if self.agent.stopping.is_set():
            return "shutdown"
        return ""

    def _event(self, etype: str, reason: str, message: str) -> None:
        if (reason, message) in self._events:
            return
        self._events.add((reason, message))
        log.info("%s/%s: %s: %s", self.namespace, self.name, reason, message)
        self.agent.kube.event(self.pod, etype, reason, message)

    def _sleep(self, seconds: float) -> None:
        self.wakeup.wait(seconds)
        self.wakeup.clear()

    def _restart_policy(self) -> str:
        return str(self.spec.get("restartPolicy") or "Always")

    def _will_restart(self, container: Container, exit_code: int) -> bool:
        if container.init:
            return self._restart_policy() != "Never" and exit_code != 0
        policy = self._restart_policy()
        return policy == "Always" or (policy == "OnFailure" and exit_code != 0)

    # -- status
    def _publish(self, force: bool = False) -> None:
        view = PodView(
            init_containers=[c.view for c in self.init_containers],
            containers=[c.view for c in self.containers],
            initialized=self.initialized,
            pod_ip=self.pod_ip,
            host_ip=self.agent.host_ip,
            start_time=self.start_time,
            failed_reason=self.failed_reason,
            failed_message=self.failed_message,
            previous_conditions=list((self.pod.get("status") or {}).get("conditions") or []),
        )
        status = compute_status(view, time.time())
        if not force and not status_differs(self.last_status, status):
            return
        try:
            self.agent.kube.patch_pod_status(self.namespace, self.name, status)
            self.last_status = status
        except Exception as exc:
            log.warning("%s/%s: status not written: %s", self.namespace, self.name, exc)

    # -- main
    def _main(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("%s/%s: pod worker crashed", self.namespace, self.name)
            self._terminate("gone")
        finally:
            self.finished.set()
            self.agent.worker_done(self.uid, self)

    def _run(self) -> None:
        status = self.pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            self._wait_for_deletion()
            return
        if status.get("startTime"):
            import datetime as dt

            self.start_time = (
                dt.datetime.strptime(status["startTime"], "%Y-%m-%dT%H:%M:%SZ")
                .replace(tzinfo=dt.timezone.utc)
                .timestamp()
            )
        if not self._sandbox() or not self._setup_volumes():
            self._finish()
            return
        for container in self.init_containers:
            if not self._run_init(container):
                self._finish()
                return
        self.initialized = True
        self._publish()
        self._loop()
        self._finish()

    def _finish(self) -> None:
        reason = self._stop_reason()
        if reason:
            self._terminate(reason)
        else:  # terminal phase: stop the sandbox, keep the object for its owner (helm test, Jobs)
            self._terminate("completed")
            self._wait_for_deletion()

    def _wait_for_deletion(self) -> None:
        while not self._stop_reason():
            self._sleep(5)
        if self._stop_reason() == "deleted":
            self._release()
            self.agent.kube.delete_pod(self.namespace, self.name, self.uid)
        elif self._stop_reason() == "gone":
            self._release()

    def _sandbox(self) -> bool:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.host_network:
            self.pod_ip = self.agent.host_ip
            return True
        while True:
            if self._stop_reason():
                return False
            try:
                self.pod_ip = self.agent.ipam.allocate(self.uid)
                self.netns = self.agent.network.create(self.uid, self.pod_ip)
                self.agent.write_pod_etc(self.netns, self.pod, self.pod_ip)
                self._publish()
                return True
            except ToolkitError as exc:
                self._event("Warning", "FailedCreatePodSandBox", str(exc))
                self._sleep(5)

    def _setup_volumes(self) -> bool:
        self.volumes = PodVolumes(self.pod, self.dir, self.agent.kube)
        for container in self.init_containers + self.containers:
            container.view.reason = "PodInitializing" if not container.init else "ContainerCreating"
        while True:
            if self._stop_reason():
                return False
            try:
                self.volumes.setup()
                for container in self.init_containers + self.containers:
                    build_root(
                        self._root(container), container.spec.get("volumeMounts") or [], self.volumes.paths
                    )
                return True
            except VolumeError as exc:
                if exc.fatal:
                    self.failed_reason, self.failed_message = "UnsupportedVolume", str(exc)
                    self._event("Warning", "FailedMount", str(exc))
                    for container in self.init_containers + self.containers:
                        container.view.will_restart = False
                    self._publish()
                    return False
                self._event("Warning", "FailedMount", f"MountVolume.SetUp failed: {exc}")
                self._publish()
                self._sleep(2)
            except Exception as exc:
                self._event("Warning", "FailedMount", f"MountVolume.SetUp failed: {exc}")
                self._sleep(2)

    def _root(self, container: Container) -> Path:
        return self.dir / "roots" / container.name

    # -- containers
    def _start(self, container: Container) -> bool:
        """Start one run of ``container``; on an unrecoverable spec error mark it so and return False."""
        view = container.view
        try:
            env = envmod.resolve_env(
                self.pod_with_ip(), container.spec, self.agent.kube.lookup, self._base_env()
            )
            env["TFSCTL_FS_ROOT"] = str(self._root(container))
            argv = envmod.command_line(container.spec, env)
            exe = which(argv[0], env["PATH"])
            if exe is None:
                raise InvalidInput(f"executable {argv[0]!r} not found on PATH {env['PATH']}")
        except NotFound as exc:
            view.state, view.reason, view.message = "waiting", "CreateContainerConfigError", str(exc)
            self._event("Warning", "Failed", f"Error: {exc}")
            container.next_start = time.time() + 2
            return False
        except (InvalidInput, ToolkitError) as exc:
            view.state, view.reason, view.message = "waiting", "RunContainerError", str(exc)
            self._event("Warning", "Failed", f"Error: {exc}")
            container.next_start = time.time() + max(2.0, backoff_delay(view.restart_count + 1))
            return False
        cwd = self._root(container) / str(container.spec.get("workingDir") or "").lstrip("/")
        if not cwd.is_dir():
            cwd = self._root(container)
        command = [exe, *argv[1:]]
        if self.netns:
            command = ["ip", "netns", "exec", self.netns, *command]
        log_path = self.agent.log_path(self.namespace, self.name, container.name)
        rotate_log(log_path)
        container.proc = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert container.proc.stdout is not None
        container.copier = threading.Thread(
            target=copy_output,
            args=(container.proc.stdout, log_path),
            name=f"log-{self.name}/{container.name}",
            daemon=True,
        )
        container.copier.start()
        now = time.time()
        container.env = env
        container.run_id += 1
        container.kill_reason = ""
        view.state, view.reason, view.message = "running", "", ""
        view.started_at = now
        view.termination = None
        view.container_id = f"process://{self.uid}/{container.name}/{container.run_id}"
        container.trackers = {}
        for kind in ("startup", "readiness", "liveness"):
            probe = container.spec.get(f"{kind}Probe")
            if probe and not container.init:
                container.trackers[kind] = ProbeTracker(ProbeSpec.from_dict(kind, probe), now)
        view.started = "startup" not in container.trackers
        view.ready = view.started and "readiness" not in container.trackers and not container.init
        self._record_pids()
        self._event("Normal", "Started", f"Started container {container.name} (pid {container.proc.pid})")
        if container.trackers:
            threading.Thread(
                target=self._prober,
                args=(container, container.run_id),
                name=f"probe-{self.name}",
                daemon=True,
            ).start()
        return True

    def pod_with_ip(self) -> dict[str, Any]:
        pod = dict(self.pod)
        status = dict(pod.get("status") or {})
        status["podIP"] = self.pod_ip
        status["podIPs"] = [{"ip": self.pod_ip}] if self.pod_ip else []
        status["hostIP"] = self.agent.host_ip
        pod["status"] = status
        return pod

    def _base_env(self) -> dict[str, str]:
        return {
            "PATH": self.agent.process_path,
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOSTNAME": self.name,
        }

    def _record_pids(self) -> None:
        pids = {c.name: c.proc.pid for c in self.init_containers + self.containers if c.proc and c.running()}
        (self.dir / "pids.json").write_text(json.dumps(pids))

    def _exited(self, container: Container) -> None:
        assert container.proc is not None
        term = exit_termination(container.proc.returncode, container.view.started_at, container.kill_reason)
        view = container.view
        view.state, view.termination, view.ready = "terminated", term, False
        view.will_restart = self._will_restart(container, term.exit_code)
        if term.finished_at - (view.started_at or term.finished_at) > BACKOFF_RESET_AFTER:
            container.crashes = 0
        container.next_start = time.time() + backoff_delay(container.crashes)
        container.crashes += 1
        message = f"container {container.name} exited with {term.exit_code} ({term.reason})"
        if view.will_restart:
            message += f", restarting in {container.next_start - time.time():.0f}s"
        if term.exit_code == 0:
            self._event("Normal", "Completed", message)
        else:
            self._event("Warning", "BackOff", message)

    def _maybe_restart(self, container: Container) -> None:
        view = container.view
        if view.state == "running" or not view.will_restart or time.time() < container.next_start:
            return
        if view.state == "terminated":
            view.last_termination = view.termination
            view.restart_count += 1
        self._start(container)

    def _run_init(self, container: Container) -> bool:
        """Run an init container to completion (restarting it per policy); False when the pod cannot go on."""
        while not self._stop_reason():
            if container.proc is not None and container.view.state == "running" and not container.running():
                self._exited(container)
            view = container.view
            if (
                view.state == "terminated"
                and view.termination is not None
                and view.termination.exit_code == 0
            ):
                view.will_restart = False
                self._publish()
                return True
            if view.state == "terminated" and not view.will_restart:
                self._publish()
                return False
            self._maybe_restart(container)
            self._publish()
            self._sleep(TICK)
        return False

    def _loop(self) -> None:
        last_sync = 0.0
        for container in self.containers:
            self._start(container)
        while True:
            if self._stop_reason():
                return
            now = time.time()
            if self.volumes is not None and now - last_sync >= 0.5:
                last_sync = now
                for name in self.volumes.sync():
                    log.info("%s/%s: volume %s updated", self.namespace, self.name, name)
            for container in self.containers:
                with container.lock:
                    if container.kill_reason and container.running():
                        self._stop_container(container, self._grace(), "")
                    if (
                        container.proc is not None
                        and container.view.state == "running"
                        and not container.running()
                    ):
                        self._exited(container)
                    if container.view.state != "running":
                        self._maybe_restart(container)
                    self._update_ready(container)
            self._publish()
            if all(c.view.state == "terminated" and not c.view.will_restart for c in self.containers):
                return
            self._sleep(TICK)

    @staticmethod
    def _update_ready(container: Container) -> None:
        view = container.view
        if view.state != "running":
            view.ready = False
            return
        startup = container.trackers.get("startup")
        view.started = startup is None or startup.passing
        readiness = container.trackers.get("readiness")
        view.ready = view.started and (readiness is None or readiness.passing)

    # -- probes
    def _prober(self, container: Container, run_id: int) -> None:
        while container.run_id == run_id and not self.finished.is_set() and not self._stop_reason():
            if not container.running():
                return
            started = "startup" not in container.trackers or container.trackers["startup"].passing
            due: list[tuple[float, str]] = []
            for kind, tracker in container.trackers.items():
                if should_probe(kind, True, started) and not tracker.done():  # type: ignore[arg-type]
                    due.append((tracker.next_due(), kind))
            if not due:
                self.finished.wait(TICK)
                continue
            when, kind = min(due)
            wait = when - time.time()
            if wait > 0:
                self.finished.wait(min(wait, TICK))
                continue
            tracker = container.trackers[kind]
            ok, detail = self._probe(container, tracker.spec)
            if container.run_id != run_id:
                return
            flipped = tracker.record(Result.SUCCESS if ok else Result.FAILURE, time.time())
            if not ok:
                self._event("Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {detail}")
            if tracker.failed_for_good():
                action = "will be restarted" if self._restart_policy() != "Never" else "will be killed"
                self._event("Normal", "Killing", f"Container {container.name} failed {kind} probe, {action}")
                container.kill_reason = "Error"
                self.wakeup.set()
                return
            if flipped:
                self.wakeup.set()

    def _probe(self, container: Container, spec: ProbeSpec) -> tuple[bool, str]:
        action = spec.action
        host = str(action.get("host") or self.pod_ip or "127.0.0.1")
        try:
            if spec.handler == "exec":
                command = [str(part) for part in action.get("command") or []]
                return self._exec(container, command, spec.timeout)
            port = resolve_port(action.get("port"), container.spec)
            if spec.handler == "tcpSocket":
                with socket.create_connection((host, port), timeout=spec.timeout):
                    return True, ""
            if spec.handler == "httpGet":
                return http_probe(host, port, action, spec.timeout)
            if spec.handler == "grpc":
                return grpc_probe(host, port, str(action.get("service") or ""), spec.timeout)
            return False, f"probe handler {spec.handler or '?'} is not supported"
        except (OSError, ValueError, http.client.HTTPException) as exc:
            return False, f"{spec.handler} {host}: {exc}"

    def _exec(self, container: Container, command: list[str], timeout: float) -> tuple[bool, str]:
        if not command:
            return False, "exec probe has no command"
        exe = which(command[0], container.env.get("PATH", self.agent.process_path))
        if exe is None:
            return False, f"executable {command[0]!r} not found"
        argv = [exe, *command[1:]]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        try:
            proc = subprocess.run(
                argv,
                env=container.env or None,
                cwd=self._root(container),
                capture_output=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return False, f"command {command!r} timed out after {timeout:g}s"
        output = (proc.stdout + proc.stderr).decode(errors="replace").strip()[-300:]
        return proc.returncode == 0, f"command {command!r} exited with {proc.returncode}: {output}"

    # -- termination
    def _grace(self) -> float:
        meta = self.pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = self.spec.get("terminationGracePeriodSeconds")
        return float(30 if grace is None else grace)

    def _stop_container(self, container: Container, grace: float, reason: str) -> None:
        """preStop, SIGTERM, wait up to ``grace`` seconds in total, SIGKILL."""
        proc = container.proc
        if proc is None or proc.poll() is not None:
            return
        deadline = time.time() + grace
        pre_stop = (container.spec.get("lifecycle") or {}).get("preStop") or {}
        if pre_stop and grace > 0:
            self._pre_stop(container, pre_stop, deadline)
        kill_tree(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            log.info(
                "%s/%s: %s did not stop within %gs, killing", self.namespace, self.name, container.name, grace
            )
        kill_tree(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("%s/%s: %s survived SIGKILL", self.namespace, self.name, container.name)
        for exec_proc in list(container.execs):  # exec'd commands die with their container
            if exec_proc.poll() is None:
                kill_tree(exec_proc.pid, signal.SIGKILL)
        if reason:
            container.kill_reason = reason

    def _pre_stop(self, container: Container, hook: dict[str, Any], deadline: float) -> None:
        remaining = max(0.1, deadline - time.time())
        try:
            if hook.get("exec"):
                ok, detail = self._exec(
                    container, [str(p) for p in hook["exec"].get("command") or []], remaining
                )
            elif hook.get("httpGet"):
                port = resolve_port(hook["httpGet"].get("port"), container.spec)
                host = str(hook["httpGet"].get("host") or self.pod_ip)
                ok, detail = http_probe(host, port, hook["httpGet"], remaining)
            elif hook.get("sleep"):
                time.sleep(min(float(hook["sleep"].get("seconds") or 0), remaining))
                ok, detail = True, ""
            else:
                ok, detail = False, "unsupported preStop handler"
        except (OSError, ValueError, http.client.HTTPException) as exc:
            ok, detail = False, str(exc)
        if not ok:
            self._event("Warning", "FailedPreStopHook", f"PreStopHook of {container.name} failed: {detail}")

    def _terminate(self, reason: str) -> None:
        """Stop every container; release the sandbox; delete the object when it was deleted."""
        grace = self._grace()
        if reason == "shutdown":
            grace = min(grace, self.agent.shutdown_grace)
        elif reason == "gone":
            grace = min(grace, 2.0)
        running = [c for c in self.init_containers + self.containers if c.running()]
        if running:
            self._event("Normal", "Killing", f"Stopping containers {[c.name for c in running]} ({reason})")
        threads = [
            threading.Thread(target=self._stop_container, args=(c, grace, ""), daemon=True) for c in running
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(grace + 15)
        for c in running:
            if c.proc is not None and c.proc.poll() is not None and c.view.state == "running":
                c.view.state = "terminated"
                c.view.termination = exit_termination(c.proc.returncode, c.view.started_at)
                c.view.ready = False
                c.view.will_restart = reason == "shutdown" and self._will_restart(
                    c, c.view.termination.exit_code
                )
        if self.netns:
            self.agent.network.delete(self.uid)
            self.netns = None
        if reason == "shutdown":
            self._publish(force=True)
            return
        if reason == "completed":
            self._publish()
            return
        self._release()
        if reason == "deleted":
            self.agent.kube.delete_pod(self.namespace, self.name, self.uid)

    def _release(self) -> None:
        if self.netns:
            self.agent.network.delete(self.uid)
            self.netns = None
        self.agent.ipam.release(self.uid)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _named_container(self, container_name: str) -> Container:
        """The (init) container called ``container_name``; NotFound naming the valid ones."""
        by_name = {c.name: c for c in self.init_containers + self.containers}
        container = by_name.get(container_name)
        if container is None:
            raise NotFound(
                f"container {container_name} is not valid for pod {self.name} "
                f"(containers: {', '.join(by_name)})"
            )
        return container

    # -- logs
    def log_handle(self, container_name: str, previous: bool) -> LogHandle:
        """The log of ``container_name``'s current (or previous) run; NotFound when there is none."""
        container = self._named_container(container_name)
        path = self.agent.log_path(self.namespace, self.name, container_name)
        view = container.view
        if previous:
            last = view.last_termination
            if last is None:
                raise NotFound(
                    f"previous terminated container {container_name!r} in pod {self.name!r} not found"
                )
            previous_path = previous_log_path(path)
            return LogHandle(previous_path, index_path(previous_path), lambda: False, last.started_at or 0.0)
        copier = container.copier
        if copier is None:
            raise NotFound(
                f"container {container_name!r} in pod {self.name!r} is waiting to start: "
                f"{view.reason or 'ContainerCreating'}"
            )
        return LogHandle(path, index_path(path), copier.is_alive, view.started_at or 0.0)

    # -- exec (the kubelet's /exec endpoint)
    def exec_starter(self, container_name: str) -> ExecStarter:
        """How to start a command in ``container_name`` like exec probes; NotFound unless it runs.

        The command gets the container's environment (``TFSCTL_FS_ROOT`` included), its
        PATH lookup, working directory and the pod's network namespace, in a process
        group of its own (so a session that ends early can kill what it started).
        """
        container = self._named_container(container_name)
        if not container.running():
            raise NotFound(
                f"container {container_name!r} in pod {self.namespace}/{self.name} is not running "
                f"({container.view.reason or container.view.state})"
            )
        env = dict(container.env)
        root = self._root(container)
        cwd = root / str(container.spec.get("workingDir") or "").lstrip("/")
        if not cwd.is_dir():
            cwd = root
        netns = self.netns
        search_path = env.get("PATH", self.agent.process_path)

        def start(argv: list[str], stdin: bool, stdout: bool, stderr: bool) -> subprocess.Popen[bytes]:
            exe = which(argv[0], search_path)
            if exe is None:
                raise NotFound(f'exec: "{argv[0]}": executable file not found in $PATH')
            command = [exe, *argv[1:]]
            if netns:
                command = ["ip", "netns", "exec", netns, *command]
            try:
                proc = subprocess.Popen(
                    command,
                    env=env or None,
                    cwd=cwd,
                    stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                    stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                    stderr=subprocess.PIPE if stderr else subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ToolkitError(f'exec: "{argv[0]}": {exc.strerror or exc}') from exc
            container.execs[:] = [p for p in container.execs if p.poll() is None] + [proc]
            return proc

        return start

    # -- metrics
    def usage(self) -> list[tuple[str, float, float, float]]:
        """(container, cpu seconds, working set bytes, start time) of each running container."""
        out = []
        for container in self.containers:
            pids = container.pids()
            if not pids or container.view.started_at is None:
                continue
            cpu = 0.0
            mem = 0.0
            for pid in pids:
                try:
                    proc = psutil.Process(pid)
                    with proc.oneshot():
                        times = proc.cpu_times()
                        cpu += times.user + times.system
                        mem += proc.memory_info().rss
                except psutil.Error:
                    continue
            out.append((container.name, cpu, mem, container.view.started_at))
        return out


def http_probe(host: str, port: int, action: dict[str, Any], timeout: float) -> tuple[bool, str]:
    path = str(action.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    headers = {h["name"]: h.get("value", "") for h in action.get("httpHeaders") or []}
    headers.setdefault("User-Agent", "kube-probe/1.35")
    conn: http.client.HTTPConnection
    if str(action.get("scheme") or "HTTP").upper() == "HTTPS":
        conn = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl._create_unverified_context()
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read(1024)
    finally:
        conn.close()
    if 200 <= resp.status < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {resp.status} ({body[:200].decode(errors='replace')})"


def grpc_probe(host: str, port: int, service: str, timeout: float) -> tuple[bool, str]:
    """``grpc.health.v1.Health/Check`` without the generated stubs (the messages are one string/enum)."""
    import grpc

    encoded = service.encode()
    request = (b"\x0a" + bytes([len(encoded)]) + encoded) if encoded else b""
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        call = channel.unary_unary("/grpc.health.v1.Health/Check")
        try:
            response = call(request, timeout=timeout)
        except grpc.RpcError as exc:
            return False, f"gRPC health check failed: {exc.code().name}"
    if response == b"\x08\x01":
        return True, ""
    return False, f"gRPC service not SERVING (response {response!r})"
