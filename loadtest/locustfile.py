"""Load for TensorFlow Serving: REST and gRPC predict users, selectable shapes, CI thresholds.

Run it as it is::

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8501 --model fashion --model-label stable
    locust -f loadtest/locustfile.py --headless -H http://127.0.0.1:8501 -u 10 -r 10 -t 60s \\
        --transport grpc --grpc-target 127.0.0.1:8500 --shape step --shape-params steps=5 --p95-ms 300

Every ``tfsctl`` option also reads a ``TFSCTL_LOAD_*`` environment variable
(``locust --help`` lists them under "tfsctl"); the token only from there or
the web UI, never from a command line others can see. The payload is built
from the model's signature (``/metadata``) unless ``--request-file`` gives a
REST predict body. Request names read ``predict:<model>@<label>``,
``predict:<model>/<version>`` or ``predict:<model>``.

Thresholds (``--max-failure-ratio``, ``--p95-ms``, ``--p99-ms``, defaults in
``tfsctl.load.thresholds``) are checked when Locust quits; a violation sets
exit code 1 so a CI job fails. ``tfsctl loadtest`` and ``verify-autoscaling``
run this same file through Locust's library API; ``tfsctl loadtest
--distributed`` ships it to master and worker pods in a ConfigMap.

This file needs the ``tfsctl`` package (the repository's venv, or ``pip
install`` it into the Locust image): shapes, thresholds, payloads and the
runtime-free TF Serving protos live there, tested on their own.
"""

from __future__ import annotations  # noqa: I001 - locust first: gevent monkey-patching comes before any socket

import locust
import grpc
import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()  # gRPC's C core cooperates with gevent's hub (no blocked greenlets)

import logging  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gevent.lock  # noqa: E402
from locust import FastHttpUser, LoadTestShape, User, constant_throughput, events, task  # noqa: E402
from locust.exception import StopUser  # noqa: E402
from locust.runners import WorkerRunner  # noqa: E402

from tfsctl.load import options as knobs  # noqa: E402
from tfsctl.load import shapes, thresholds  # noqa: E402
from tfsctl.load import target as targets  # noqa: E402

log = logging.getLogger("tfsctl.loadtest")
__all__ = ["GrpcUser", "RestUser", "SelectedShape", "locust"]


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_: Any) -> None:
    knobs.register(parser)


class _Prepared:
    """Per-process state: the target and payload are resolved once, by the first user."""

    lock = gevent.lock.Semaphore()
    by_transport: dict[str, tuple[targets.Target, Any, Any]] = {}
    error: dict[str, str] = {}

    @classmethod
    def get(cls, user: User, transport: str) -> tuple[targets.Target, Any, Any]:
        with cls.lock:
            if transport in cls.error:
                raise StopUser()
            if transport not in cls.by_transport:
                opts = user.environment.parsed_options
                try:
                    target = targets.Target.from_options(opts, user.host or user.environment.host)
                    payload = targets.build_payload(target, transport, opts.request_file, opts.batch_size)
                except Exception as exc:  # reported once as a failed request, then users stop
                    cls.error[transport] = str(exc)
                    log.error("cannot prepare the %s payload: %s", transport, exc)
                    user.environment.events.request.fire(
                        request_type="setup",
                        name=f"metadata:{getattr(opts, 'model', '?')}",
                        response_time=0,
                        response_length=0,
                        exception=exc,
                        context={},
                    )
                    raise StopUser() from exc
                request = targets.predict_request(target, payload) if transport == "grpc" else None
                cls.by_transport[transport] = (target, payload, request)
            return cls.by_transport[transport]

    @classmethod
    def reset(cls) -> None:
        cls.by_transport.clear()
        cls.error.clear()


def _wait(user: User) -> float:
    rps = float(getattr(user.environment.parsed_options, "user_rps", 0.0) or 0.0)
    return constant_throughput(rps)(user) if rps > 0 else 0.0


class RestUser(FastHttpUser):
    """POSTs ``:predict`` on the REST API (one keep-alive connection per user)."""

    transport = "rest"
    wait_time = _wait

    def on_start(self) -> None:
        self.target, payload, _ = _Prepared.get(self, "rest")
        self.body = payload.rest_json()
        self.headers = self.target.headers()
        self.close_headers = {**self.headers, "Connection": "close"}
        # absolute: at the --resolve address when given (the Host header keeps the name)
        self.url = self.target.connect_url + self.target.rest_predict_path
        self.reconnect_every = int(self.environment.parsed_options.reconnect_every or 0)
        self.sent = 0

    @task
    def predict(self) -> None:
        self.sent += 1
        last_on_connection = self.reconnect_every and self.sent % self.reconnect_every == 0
        with self.client.post(
            self.url,
            data=self.body,
            headers=self.close_headers if last_on_connection else self.headers,
            name=self.target.name,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")


class GrpcUser(User):
    """Calls ``PredictionService/Predict`` on a persistent channel of its own.

    Each user owns its channel and its TCP connection (a local subchannel pool),
    as separate clients would: behind an L4 load balancer a connection stays
    on the pod it first reached, which ``verify-autoscaling`` reports.
    """

    transport = "grpc"
    wait_time = _wait

    def on_start(self) -> None:
        self.target, _, self.request = _Prepared.get(self, "grpc")
        self.reconnect_every = int(self.environment.parsed_options.reconnect_every or 0)
        self.sent = 0
        self._open()

    def _open(self) -> None:
        from tfsctl.serving.protos import prediction_service_pb2_grpc

        self.channel = grpc.insecure_channel(
            self.target.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)]
        )
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def on_stop(self) -> None:
        if getattr(self, "channel", None) is not None:
            self.channel.close()

    @task
    def predict(self) -> None:
        self.sent += 1
        if self.reconnect_every and self.sent % self.reconnect_every == 0:
            self.channel.close()
            self._open()
        start = time.perf_counter()
        exception: Exception | None = None
        length = 0
        try:
            response = self.stub.Predict(
                self.request, timeout=self.target.timeout, metadata=self.target.grpc_metadata() or None
            )
            length = response.ByteSize()
        except grpc.RpcError as exc:
            code = exc.code().name if hasattr(exc, "code") and exc.code() else "UNKNOWN"
            details = exc.details() if hasattr(exc, "details") else str(exc)
            exception = RuntimeError(f"gRPC {code}: {details}")
        self.environment.events.request.fire(
            request_type="grpc",
            name=self.target.name,
            response_time=(time.perf_counter() - start) * 1000.0,
            response_length=length,
            exception=exception,
            context={},
        )


class SelectedShape(LoadTestShape):
    """The shape named by ``--shape`` (constant, step, spike, soak) over -u/-r/-t."""

    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self.shape: shapes.Shape | None = None

    def reset_time(self) -> None:
        super().reset_time()
        self.shape = None  # rebuilt from the (possibly edited in the web UI) options

    def tick(self) -> tuple[int, float] | None:
        if self.shape is None:
            assert self.runner is not None
            opts = self.runner.environment.parsed_options
            self.shape = shapes.build(
                opts.shape,
                users=int(opts.num_users or 1),
                duration=float(opts.run_time) if opts.run_time else None,
                spawn_rate=float(opts.spawn_rate) if opts.spawn_rate else None,
                params=opts.shape_params or "",
            )
        return self.shape.tick(self.get_run_time())


@events.init.add_listener
def _select_user_type(environment: Any, **_: Any) -> None:
    """Keep the user class of ``--transport`` unless classes were named on the command line."""
    opts = environment.parsed_options
    if opts is None or getattr(opts, "user_classes", None):
        return
    chosen = [cls for cls in environment.user_classes if getattr(cls, "transport", None) == opts.transport]
    if chosen:
        environment.user_classes[:] = chosen
    _Prepared.reset()


@events.quitting.add_listener
def _apply_thresholds(environment: Any, **_: Any) -> None:
    """Judge the whole run against the thresholds; a violation makes Locust exit with 1."""
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return  # the master (or the local runner) judges the aggregated stats
    summary = thresholds.summarize(environment.runner.stats.total)
    verdict = thresholds.check(summary, knobs.limits_from(environment.parsed_options))
    if verdict.passed:
        log.info(
            "thresholds held: %d requests, failure ratio %.2f%%, p95 %.0f ms, p99 %.0f ms",
            summary.requests,
            summary.failure_ratio * 100,
            summary.p95_ms,
            summary.p99_ms,
        )
        return
    for violation in verdict.violations:
        log.error("threshold violated: %s", violation)
    environment.process_exit_code = 1
